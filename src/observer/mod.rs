//! The fork observer: one page (`GET /`, [`PAGE`]) that draws the block
//! tree of one node or of every node of a testnet, live from their event
//! streams, with a playback of the recorded events; the merged tree
//! behind it ([`merge_trees`]); the event recorder ([`Recorder`]); and
//! the same tree as an SVG picture ([`svg`]).
//!
//! The page needs no build step and no outside network: it is one HTML
//! file with its CSS and script, compiled into the binary. Against a node
//! it reads the node's `/tree`, `/status` and `/events`; against
//! `powchain testnet --ui` or `powchain replay` it reads the observer
//! server's `/tree` (merged, with a `nodes` list), `/log` (every recorded
//! event, for playback) and `/events` (the merged live stream, each event
//! naming its `node`).

pub mod server;
pub mod svg;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::types::{BlockTree, EventKind, HiddenRun, TreeBlock};
use crate::api::ApiClient;
use crate::chain::TreeStatus;
use crate::consensus::BlockHash;

/// The fork-observer page: HTML, CSS and script in one file.
pub const PAGE: &str = include_str!("page.html");

/// Entries a [`Recorder`] keeps (the oldest are dropped beyond it).
pub const MAX_LOG_ENTRIES: usize = 500_000;

/// Longest line [`Recorder::load`] reads from a kept log, bytes (an entry
/// is one event of a few hundred bytes).
pub const MAX_LOG_LINE_BYTES: usize = 64 * 1024;

/// Largest `trees.json` `replay` reads, bytes (the final trees of a kept
/// run: a few hundred KB for a long testnet).
pub const MAX_TREES_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// One recorded event: what a node's `/events` said, when, and which node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When the observer received it (seeded blocks: when the node
    /// received the block), Unix ms.
    pub t_ms: u64,
    /// The node's name (`node0` ...).
    pub node: String,
    /// The SSE event name: `block`, `tip`, `reorg`, `stale`, `orphan`,
    /// `peer`.
    pub event: EventKind,
    /// The event's JSON.
    pub data: serde_json::Value,
}

/// A node the observer watches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRef {
    /// Its name.
    pub name: String,
    /// Its API address, `host:port`.
    pub api: String,
}

/// A node's tip in [`MergedTree::nodes`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTip {
    /// The node's name.
    pub name: String,
    /// Its best tip.
    pub tip: BlockHash,
    /// Its height (`None` when the tip is not in its tree).
    pub height: Option<u32>,
    /// Its API address, when known (live testnets).
    #[serde(default)]
    pub api: Option<String>,
}

/// One block of [`MergedTree`]: the block as the best node sees it (or
/// the first node that knows it), plus the nodes whose best chain holds
/// it and when each node received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedBlock {
    /// The block (`status` from the best node's view; a block the best
    /// node does not know is `stale` unless invalid or an orphan).
    #[serde(flatten)]
    pub block: TreeBlock,
    /// Nodes whose best chain holds it.
    pub active_on: Vec<String>,
    /// When each node that stores it received it, Unix ms.
    pub seen_ms: BTreeMap<String, u64>,
}

/// The tree over several nodes: `GET /tree` of the observer server (the
/// node's `/tree` shape plus `nodes`, `active_on`, `seen_ms`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedTree {
    /// The best tip among the nodes (most chainwork; ties: the first).
    pub tip: BlockHash,
    /// Every block any node shows, by height then first arrival.
    pub blocks: Vec<MergedBlock>,
    /// Straight runs of the best chain left out.
    pub hidden: Vec<HiddenRun>,
    /// Each node's tip.
    pub nodes: Vec<NodeTip>,
}

/// Merges the nodes' trees (name, `/tree`, best fetched uncollapsed over
/// one window: [`fetch_trees`]): the union of their blocks, each with the
/// nodes that hold it on their best chain and its arrival time at each,
/// and each node's tip; then the best chain's straight runs collapsed
/// into hidden runs. The best node is the one whose tip has the most
/// chainwork.
#[must_use]
pub fn merge_trees(trees: &[(String, BlockTree)]) -> MergedTree {
    let tip_work = |t: &BlockTree| {
        t.blocks
            .iter()
            .find(|b| b.hash == t.tip)
            .and_then(|b| b.chainwork)
            .unwrap_or_default()
    };
    let best = trees
        .iter()
        .enumerate()
        .max_by(|a, b| {
            tip_work(&a.1 .1)
                .cmp(&tip_work(&b.1 .1))
                .then(b.0.cmp(&a.0))
        })
        .map(|(i, _)| i);
    let mut order: Vec<BlockHash> = Vec::new();
    let mut merged: HashMap<BlockHash, MergedBlock> = HashMap::new();
    // The best node first, so that its view of each block wins.
    let visit: Vec<usize> = best
        .into_iter()
        .chain((0..trees.len()).filter(|&i| Some(i) != best))
        .collect();
    for &i in &visit {
        let (name, tree) = &trees[i];
        for b in &tree.blocks {
            let m = merged.entry(b.hash).or_insert_with(|| {
                order.push(b.hash);
                let mut block = b.clone();
                if Some(i) != best && block.status == TreeStatus::Active {
                    block.status = TreeStatus::Stale;
                }
                MergedBlock {
                    block,
                    active_on: Vec::new(),
                    seen_ms: BTreeMap::new(),
                }
            });
            if b.status == TreeStatus::Active {
                m.active_on.push(name.clone());
            }
            if let Some(ms) = b.received_ms {
                if b.status == TreeStatus::Active || b.status == TreeStatus::Stale {
                    m.seen_ms.insert(name.clone(), ms);
                }
            }
            if m.block.miner.is_none() {
                m.block.miner.clone_from(&b.miner);
            }
        }
    }
    let mut blocks: Vec<MergedBlock> = order
        .into_iter()
        .filter_map(|h| merged.remove(&h))
        .collect();
    for b in &mut blocks {
        b.active_on.sort();
    }
    blocks.sort_by_key(|b| {
        (
            b.block.height.unwrap_or(u32::MAX),
            b.seen_ms.values().min().copied().unwrap_or(u64::MAX),
        )
    });
    let nodes: Vec<NodeTip> = trees
        .iter()
        .map(|(name, t)| NodeTip {
            name: name.clone(),
            tip: t.tip,
            height: t
                .blocks
                .iter()
                .find(|b| b.hash == t.tip)
                .and_then(|b| b.height),
            api: None,
        })
        .collect();
    let hidden = collapse(&mut blocks, &nodes);
    MergedTree {
        tip: best.map(|i| trees[i].1.tip).unwrap_or_default(),
        blocks,
        hidden,
        nodes,
    }
}

/// Collapses the best chain's straight runs like
/// [`crate::chain::ChainStore::tree`] does for one node: best-chain
/// blocks are kept within [`crate::chain::TREE_CONTEXT`] heights of any
/// other block's parent, of any node's tip and of the window's ends; the
/// rest become hidden runs.
fn collapse(blocks: &mut Vec<MergedBlock>, nodes: &[NodeTip]) -> Vec<HiddenRun> {
    let active: BTreeSet<u32> = blocks
        .iter()
        .filter(|b| b.block.status == TreeStatus::Active)
        .filter_map(|b| b.block.height)
        .collect();
    let (Some(&lo), Some(&hi)) = (active.first(), active.last()) else {
        return Vec::new();
    };
    let fork_parents: Vec<u32> = blocks
        .iter()
        .filter(|b| b.block.status != TreeStatus::Active)
        .filter_map(|b| b.block.height.map(|h| h.saturating_sub(1)))
        .collect();
    let tips = nodes.iter().filter_map(|n| n.height);
    let (shown, hidden) = crate::chain::fold_straight_runs(
        lo,
        hi,
        fork_parents.into_iter().chain(tips).chain([lo, hi]),
    );
    blocks.retain(|b| {
        b.block.status != TreeStatus::Active || b.block.height.is_none_or(|h| shown.contains(h))
    });
    hidden
}

/// The trees of running nodes over one common window (the 100 heights up
/// to the highest node's height), uncollapsed, ready for
/// [`merge_trees`]; nodes that do not answer are left out.
#[must_use]
pub fn fetch_trees(nodes: &[NodeRef]) -> Vec<(String, BlockTree)> {
    let clients: Vec<(String, ApiClient)> = nodes
        .iter()
        .map(|n| (n.name.clone(), ApiClient::new(&n.api)))
        .collect();
    let top = clients
        .iter()
        .filter_map(|(_, c)| c.status().ok().map(|s| s.height))
        .max()
        .unwrap_or(0);
    let from = top.saturating_sub(crate::chain::TREE_DEFAULT_SPAN - 1);
    // A little headroom above the highest height seen: nodes keep mining
    // between the `/status` calls and the `/tree` calls.
    clients
        .iter()
        .filter_map(|(name, c)| {
            c.tree_with(Some(from), Some(top.saturating_add(16)), false)
                .ok()
                .map(|t| (name.clone(), t))
        })
        .collect()
}

/// Records every event of the watched nodes (for playback and `--keep`)
/// and fans them out to the observer server's `/events` subscribers.
#[derive(Clone)]
pub struct Recorder {
    log: Arc<Mutex<Vec<LogEntry>>>,
    live: tokio::sync::broadcast::Sender<LogEntry>,
    stop: Arc<AtomicBool>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl Recorder {
    /// An empty recorder.
    #[must_use]
    pub fn new() -> Recorder {
        Recorder {
            log: Arc::new(Mutex::new(Vec::new())),
            live: tokio::sync::broadcast::channel(4096).0,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A recorder holding a saved log (replay).
    #[must_use]
    pub fn from_log(entries: Vec<LogEntry>) -> Recorder {
        let r = Recorder::new();
        *r.log.lock().expect("log lock") = entries;
        r
    }

    /// Appends an entry and sends it to live subscribers.
    pub fn push(&self, e: LogEntry) {
        {
            let mut log = self.log.lock().expect("log lock");
            if log.len() >= MAX_LOG_ENTRIES {
                log.drain(..MAX_LOG_ENTRIES / 10);
            }
            log.push(e.clone());
        }
        let _ = self.live.send(e);
    }

    /// Every entry so far.
    #[must_use]
    pub fn entries(&self) -> Vec<LogEntry> {
        self.log.lock().expect("log lock").clone()
    }

    /// Entries `from..from + n` as JSON array elements (each but the very
    /// first preceded by a comma), and where the next chunk starts;
    /// `None` past the end. `/log` streams the log this way, one chunk
    /// under the lock at a time, instead of copying it whole per request.
    #[must_use]
    pub fn json_chunk(&self, from: usize, n: usize) -> Option<(Vec<u8>, usize)> {
        let log = self.log.lock().expect("log lock");
        if from >= log.len() {
            return None;
        }
        let to = from.saturating_add(n).min(log.len());
        let mut out = Vec::new();
        for (i, e) in log[from..to].iter().enumerate() {
            if from + i > 0 {
                out.push(b',');
            }
            if serde_json::to_writer(&mut out, e).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        Some((out, to))
    }

    /// A live subscription to new entries.
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<LogEntry> {
        self.live.subscribe()
    }

    /// Watches `node` on a thread: first its current `/tree` (each block
    /// recorded as a `block` event at the time the node received it, and
    /// its tip as a `tip` event), then its `/events` stream, reconnecting
    /// after a break until [`Recorder::stop`].
    pub fn watch(&self, node: NodeRef) {
        let r = self.clone();
        std::thread::Builder::new()
            .name(format!("observe-{}", node.name))
            .spawn(move || {
                let client = ApiClient::new(&node.api);
                while !r.stop.load(Ordering::Acquire) {
                    if let Ok(t) = client.tree_with(None, None, false) {
                        r.seed(&node.name, &t);
                    }
                    let _ = client.events(|kind, data| {
                        // Only events of a known kind and shape are kept.
                        if let Ok(e) = crate::api::types::ApiEvent::from_sse(kind, data) {
                            r.push(LogEntry {
                                t_ms: crate::clock::now_ms(),
                                node: node.name.clone(),
                                event: e.kind(),
                                data: e.data(),
                            });
                        }
                        !r.stop.load(Ordering::Acquire)
                    });
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
            .expect("spawn an observer thread");
    }

    /// Records a node's tree as `block` events and its tip as a `tip`.
    pub fn seed(&self, node: &str, t: &BlockTree) {
        let now = crate::clock::now_ms();
        for b in &t.blocks {
            if let Ok(data) = serde_json::to_value(b) {
                self.push(LogEntry {
                    t_ms: b.received_ms.unwrap_or(now),
                    node: node.to_string(),
                    event: EventKind::Block,
                    data,
                });
            }
        }
        if let Some(tip) = t.blocks.iter().find(|b| b.hash == t.tip) {
            self.push(LogEntry {
                t_ms: tip.received_ms.unwrap_or(now),
                node: node.to_string(),
                event: EventKind::Tip,
                data: serde_json::json!({ "hash": tip.hash, "height": tip.height }),
            });
        }
    }

    /// Stops the watcher threads (each at its next event or keep-alive).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Writes the log as JSON lines.
    ///
    /// # Errors
    /// The file's I/O error.
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for e in self.entries() {
            serde_json::to_writer(&mut f, &e)?;
            f.write_all(b"\n")?;
        }
        f.flush()
    }

    /// Reads a log written by [`Recorder::save`] line by line; lines that
    /// do not decode are skipped (a log cut short by a crash still
    /// replays). The file is hostile until checked: a line longer than
    /// [`MAX_LOG_LINE_BYTES`] is skipped without being held, and reading
    /// stops after [`MAX_LOG_ENTRIES`] entries (what a recorder keeps), so
    /// memory is bounded by what a real log holds, whatever the file's size.
    ///
    /// # Errors
    /// The file's I/O error.
    pub fn load(path: &std::path::Path) -> std::io::Result<Vec<LogEntry>> {
        use std::io::{BufRead, Read};
        let mut r = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut out = Vec::new();
        let mut line = Vec::new();
        while out.len() < MAX_LOG_ENTRIES {
            line.clear();
            let n = Read::by_ref(&mut r)
                .take(MAX_LOG_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.last() != Some(&b'\n') && n > MAX_LOG_LINE_BYTES {
                // Too long: skip to the end of the line.
                loop {
                    let buf = r.fill_buf()?;
                    if buf.is_empty() {
                        break;
                    }
                    match buf.iter().position(|&b| b == b'\n') {
                        Some(i) => {
                            r.consume(i + 1);
                            break;
                        }
                        None => {
                            let len = buf.len();
                            r.consume(len);
                        }
                    }
                }
                continue;
            }
            if let Ok(e) = serde_json::from_slice(&line) {
                out.push(e);
            }
        }
        if out.len() == MAX_LOG_ENTRIES {
            tracing::warn!(
                path = %path.display(),
                "replay: the log holds more than {MAX_LOG_ENTRIES} entries; the rest is not loaded"
            );
        }
        Ok(out)
    }
}

/// Where [`layout`] puts things.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Per drawn block: its index in [`MergedTree::blocks`], column, row.
    pub blocks: Vec<(usize, u32, u32)>,
    /// The column of each [`MergedTree::hidden`] run (row 0), same order.
    pub hidden: Vec<u32>,
}

/// Where each block sits in a left-to-right drawing: column by height
/// (hidden runs take one column each), row 0 for the best chain, forks
/// and orphans on rows below, a branch on one row while it stays
/// straight. Shared by the SVG picture; the page's script follows the
/// same rules.
#[must_use]
pub fn layout(tree: &MergedTree) -> Layout {
    // Columns: heights drawn plus one per hidden run.
    let mut cols: BTreeSet<u32> = tree.blocks.iter().filter_map(|b| b.block.height).collect();
    for h in &tree.hidden {
        cols.insert(h.from_height);
    }
    let col_of: HashMap<u32, u32> = cols
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, i as u32))
        .collect();
    let unknown_col = cols.len() as u32;
    let mut row_of: HashMap<BlockHash, u32> = HashMap::new();
    let mut taken: std::collections::HashSet<(u32, u32)> = std::collections::HashSet::new();
    let mut next_row = 1;
    let mut out = Vec::new();
    for (i, b) in tree.blocks.iter().enumerate() {
        let col = b
            .block
            .height
            .and_then(|h| col_of.get(&h).copied())
            .unwrap_or(unknown_col);
        let row = if b.block.status == TreeStatus::Active {
            0
        } else {
            let parent_row = row_of.get(&b.block.prev).copied();
            match parent_row {
                Some(r) if r > 0 && !taken.contains(&(col, r)) => r,
                _ => {
                    while taken.contains(&(col, next_row)) {
                        next_row += 1;
                    }
                    let r = next_row;
                    next_row += 1;
                    r
                }
            }
        };
        taken.insert((col, row));
        row_of.insert(b.block.hash, row);
        out.push((i, col, row));
    }
    Layout {
        blocks: out,
        hidden: tree.hidden.iter().map(|h| col_of[&h.from_height]).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::pow::Work;
    use ruint::aliases::U256;

    /// A made-up block hash named `name` (its sha256d).
    fn h(name: &str) -> BlockHash {
        BlockHash(crate::consensus::sha256d(name.as_bytes()))
    }

    fn block(hash: &str, prev: &str, height: u32, status: &str, work: u8, ms: u64) -> TreeBlock {
        TreeBlock {
            hash: h(hash),
            prev: h(prev),
            height: Some(height),
            miner: None,
            status: serde_json::from_value(serde_json::json!(status)).unwrap(),
            chainwork: Some(Work::from_u256(U256::from(work))),
            received_ms: Some(ms),
        }
    }

    /// Two nodes split by a partition: each holds its own branch active
    /// and does not know the other's tip. The merge takes the node with
    /// more work as best, marks the other branch stale, keeps both tips
    /// and every arrival time, and lays the branch out below the best
    /// chain.
    #[test]
    fn merging_two_partitioned_nodes() {
        let a = BlockTree {
            tip: h("a3"),
            blocks: vec![
                block("g", "-", 0, "active", 1, 10),
                block("a1", "g", 1, "active", 2, 20),
                block("a2", "a1", 2, "active", 3, 30),
                block("a3", "a2", 3, "active", 4, 40),
            ],
            hidden: vec![],
        };
        let b = BlockTree {
            tip: h("b2"),
            blocks: vec![
                block("g", "-", 0, "active", 1, 11),
                block("a1", "g", 1, "active", 2, 25),
                block("b2", "a1", 2, "active", 3, 31),
            ],
            hidden: vec![],
        };
        let m = merge_trees(&[("node0".into(), a), ("node1".into(), b)]);
        assert_eq!(m.tip, h("a3"));
        assert_eq!(m.blocks.len(), 5);
        let get = |name: &str| m.blocks.iter().find(|b| b.block.hash == h(name)).unwrap();
        assert_eq!(get("b2").block.status, TreeStatus::Stale);
        assert_eq!(get("b2").active_on, vec!["node1".to_string()]);
        assert_eq!(
            get("a1").active_on,
            vec!["node0".to_string(), "node1".to_string()]
        );
        assert_eq!(get("a1").seen_ms["node1"], 25);
        assert_eq!(m.nodes[1].tip, h("b2"));
        assert_eq!(m.nodes[1].height, Some(2));
        let l = layout(&m);
        let pos = |name: &str| {
            let i = m
                .blocks
                .iter()
                .position(|b| b.block.hash == h(name))
                .unwrap();
            l.blocks
                .iter()
                .find(|x| x.0 == i)
                .map(|x| (x.1, x.2))
                .unwrap()
        };
        assert_eq!(pos("a2"), (2, 0));
        assert_eq!(pos("b2"), (2, 1));
        assert_eq!(pos("a3"), (3, 0));
    }

    #[test]
    fn a_log_survives_save_and_load() {
        let r = Recorder::new();
        r.push(LogEntry {
            t_ms: 5,
            node: "node0".into(),
            event: EventKind::Tip,
            data: serde_json::json!({"hash": "ab", "height": 1}),
        });
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        r.save(&p).unwrap();
        std::fs::write(&p, std::fs::read_to_string(&p).unwrap() + "{broken\n").unwrap();
        assert_eq!(Recorder::load(&p).unwrap(), r.entries());
        // A line longer than MAX_LOG_LINE_BYTES is skipped, not held; the
        // entries around it still load.
        let good = std::fs::read_to_string(&p).unwrap();
        let long = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(MAX_LOG_LINE_BYTES * 3));
        std::fs::write(&p, format!("{good}{long}{good}")).unwrap();
        assert_eq!(Recorder::load(&p).unwrap().len(), 2);
        // `/log`'s chunks join into the same JSON array.
        for _ in 0..4 {
            r.push(r.entries()[0].clone());
        }
        let mut json = b"[".to_vec();
        let mut at = 0;
        while let Some((chunk, next)) = r.json_chunk(at, 2) {
            json.extend(chunk);
            at = next;
        }
        json.push(b']');
        let back: Vec<LogEntry> = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, r.entries());
    }

    /// Issue 22, item 8: a crafted `trees.json` whose active heights are 0
    /// and 4,000,000,000 (then u32::MAX) cost 8.8 s a `GET /tree` (and
    /// overflowed a window size); the merge now costs what its blocks do.
    #[test]
    fn a_crafted_tree_with_far_apart_heights_merges_at_once() {
        for far in [4_000_000_000, u32::MAX] {
            let t = BlockTree {
                tip: h("far"),
                blocks: vec![
                    block("g", "none", 0, "active", 1, 1),
                    block("far", "g", far, "active", 2, 2),
                ],
                hidden: Vec::new(),
            };
            let started = std::time::Instant::now();
            let m = merge_trees(&[("node0".into(), t)]);
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{:?}",
                started.elapsed()
            );
            assert_eq!(m.blocks.len(), 2);
            assert_eq!(m.hidden.len(), 1);
            assert_eq!(m.hidden[0].count, far - 1 - 2 * crate::chain::TREE_CONTEXT);
        }
    }
}
