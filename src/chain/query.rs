//! Queries for the API: block info, stored blocks, stale blocks and
//! getchaintips-style tips.

use super::{BlockInfo, ChainStore, ChainTip, StoreError, TipStatus, Work};
use crate::consensus::block::Block;
use crate::consensus::BlockHash;
use serde::{Deserialize, Serialize};

impl ChainStore {
    pub(super) fn info(&self, id: u32) -> BlockInfo {
        let e = &self.entries[id as usize];
        BlockInfo {
            hash: e.hash,
            header: e.header,
            height: e.height,
            chainwork: e.chainwork,
            in_best_chain: e.in_active,
            received_ms: e.received_ms,
            seq: e.seq,
        }
    }

    /// Index data of a stored block.
    #[must_use]
    pub fn block_info(&self, hash: &BlockHash) -> Option<BlockInfo> {
        self.ids.get(hash).map(|&id| self.info(id))
    }

    /// The block at `height` on the best chain.
    #[must_use]
    pub fn info_at_height(&self, height: u32) -> Option<BlockInfo> {
        self.active.get(height as usize).map(|&id| self.info(id))
    }

    /// A stored block's serialization.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure.
    pub fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        match self.ids.get(hash) {
            Some(&id) => self.store.get_block(self.entries[id as usize].seq),
            None => Ok(None),
        }
    }

    /// A stored block, decoded.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or corrupt record.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        let Some(&id) = self.ids.get(hash) else {
            return Ok(None);
        };
        let seq = self.entries[id as usize].seq;
        match self.store.get_block(seq)? {
            Some(b) => Block::decode(&b, usize::MAX)
                .map(Some)
                .map_err(|e| StoreError::Damaged {
                    store: self.store.location(),
                    what: format!("record {seq} (block {hash}) does not decode: {e}"),
                }),
            None => Ok(None),
        }
    }

    /// Miner id from a stored block's coinbase, when it has one. Kept in
    /// the index: no store read.
    #[must_use]
    pub fn miner_id(&self, hash: &BlockHash) -> Option<String> {
        let id = *self.ids.get(hash)?;
        self.miners
            .name(self.entries[id as usize].miner)
            .map(str::to_string)
    }

    /// The header of a stored block or of one remembered as invalid
    /// (Core keeps the headers of invalid blocks too).
    #[must_use]
    pub fn header_of(&self, hash: &BlockHash) -> Option<crate::consensus::BlockHeader> {
        if let Some(&id) = self.ids.get(hash) {
            return Some(self.entries[id as usize].header);
        }
        self.invalid.get(hash).map(|inv| inv.header)
    }

    /// The block remembered as invalid under `hash`.
    #[must_use]
    pub fn invalid_block(&self, hash: &BlockHash) -> Option<&super::InvalidBlock> {
        self.invalid.get(hash)
    }

    /// Median time past of the block `hash` and its ten ancestors (BIP 113;
    /// Core's `GetMedianTimePast`), stored blocks only.
    #[must_use]
    pub fn median_time_past(&self, hash: &BlockHash) -> Option<u32> {
        let mut id = *self.ids.get(hash)?;
        let mut times = Vec::with_capacity(11);
        loop {
            let e = &self.entries[id as usize];
            times.push(e.header.time);
            if times.len() == 11 || e.parent == super::NO_PARENT {
                break;
            }
            id = e.parent;
        }
        Some(crate::consensus::time::median_time_past(&times))
    }

    /// Stale blocks (valid, off the best chain), newest first.
    #[must_use]
    pub fn stale_blocks(&self) -> Vec<BlockInfo> {
        let mut v: Vec<BlockInfo> = (0..self.entries.len() as u32)
            .filter(|&i| !self.entries[i as usize].in_active)
            .map(|i| self.info(i))
            .collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.seq));
        v
    }

    /// Chain tips like Core's `getchaintips`: the active tip, every valid
    /// block with no child (`valid-fork`, with its branch length), and the
    /// invalid blocks whose height is known (`invalid`).
    #[must_use]
    pub fn chain_tips(&self) -> Vec<ChainTip> {
        let mut tips = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.in_active && i as u32 == *self.active.last().expect("active") {
                tips.push(ChainTip {
                    hash: e.hash,
                    height: e.height,
                    branchlen: 0,
                    status: TipStatus::Active,
                });
            } else if e.children == 0 && !e.in_active {
                let mut cur = i as u32;
                while !self.entries[cur as usize].in_active {
                    cur = self.entries[cur as usize].parent;
                }
                tips.push(ChainTip {
                    hash: e.hash,
                    height: e.height,
                    branchlen: e.height - self.entries[cur as usize].height,
                    status: TipStatus::ValidFork,
                });
            }
        }
        // Invalid tips as Core lists them: invalid blocks that no other
        // invalid block builds on, with the branch length down to the best
        // chain (through their invalid ancestors to the stored block they
        // left from).
        let parents: std::collections::HashSet<BlockHash> = self
            .invalid
            .values()
            .map(|inv| inv.header.prev_blockhash)
            .collect();
        for (hash, inv) in &self.invalid {
            let Some(height) = inv.height else { continue };
            if parents.contains(hash) {
                continue;
            }
            let mut cur = inv.header.prev_blockhash;
            let mut steps = 0usize;
            while let Some(up) = self.invalid.get(&cur) {
                cur = up.header.prev_blockhash;
                steps += 1;
                if steps > self.invalid.len() {
                    break;
                }
            }
            let Some(&stored) = self.ids.get(&cur) else {
                continue;
            };
            let mut fork = stored;
            while !self.entries[fork as usize].in_active {
                fork = self.entries[fork as usize].parent;
            }
            tips.push(ChainTip {
                hash: *hash,
                height,
                branchlen: height.saturating_sub(self.entries[fork as usize].height),
                status: TipStatus::Invalid,
            });
        }
        tips.sort_by(|a, b| b.height.cmp(&a.height).then(a.hash.cmp(&b.hash)));
        tips
    }

    /// Where a header on a known parent would sit: how many blocks below
    /// the best tip its branch leaves the best chain (0 when it extends
    /// the tip), and the chainwork it would have. `None` for an unknown
    /// parent. Walks parent links up to the best chain.
    #[must_use]
    pub fn branch_position(
        &self,
        header: &crate::consensus::BlockHeader,
    ) -> Option<BranchPosition> {
        let &parent = self.ids.get(&header.prev_blockhash)?;
        let mut cur = parent;
        while !self.entries[cur as usize].in_active {
            cur = self.entries[cur as usize].parent;
        }
        let fork_height = self.entries[cur as usize].height;
        let work = crate::consensus::Target::from_compact(header.bits)
            .map(|t| t.to_work())
            .unwrap_or_default();
        Some(BranchPosition {
            fork_depth: self.height() - fork_height,
            chainwork: self.entries[parent as usize].chainwork + work,
        })
    }
}

/// See [`ChainStore::branch_position`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchPosition {
    /// Blocks between the fork point and the best tip.
    pub fork_depth: u32,
    /// The block's chainwork.
    pub chainwork: crate::consensus::Work,
}

/// Where a block of the fork tree stands (SPEC `GET /tree`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TreeStatus {
    /// On the best chain.
    Active,
    /// Valid, stored, off the best chain.
    Stale,
    /// Found invalid (not stored; its claimed parent is kept).
    Invalid,
    /// In the orphan pool: its parent is unknown here.
    Orphan,
}

impl TreeStatus {
    /// The JSON word: `active`, `stale`, `invalid`, `orphan`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TreeStatus::Active => "active",
            TreeStatus::Stale => "stale",
            TreeStatus::Invalid => "invalid",
            TreeStatus::Orphan => "orphan",
        }
    }
}

impl std::fmt::Display for TreeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One block of [`BlockTree`]; also the JSON of a `GET /tree` block and of
/// an `event: block` on `GET /events` (hashes and chainwork as hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeBlock {
    /// Its hash.
    pub hash: BlockHash,
    /// Its (claimed) parent.
    pub prev: BlockHash,
    /// Its height; for an orphan the one its coinbase claims (BIP 34),
    /// `None` when that does not decode, and for an invalid block the
    /// one its parent gives, when known.
    pub height: Option<u32>,
    /// Miner id from the coinbase (stored blocks and orphans that carry
    /// one; `None` for invalid blocks, whose body is not kept).
    pub miner: Option<String>,
    /// Where it stands.
    pub status: TreeStatus,
    /// Chainwork up to and including it (stored blocks only).
    pub chainwork: Option<Work>,
    /// When it reached this node, Unix ms (stored blocks: the index's
    /// arrival time; orphans: their arrival second).
    pub received_ms: Option<u64>,
}

/// A straight run of the best chain left out of [`BlockTree::blocks`]:
/// heights `from_height..=to_height`, `count` blocks (fork-observer's
/// "N blocks hidden").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiddenRun {
    /// First hidden height.
    pub from_height: u32,
    /// Last hidden height.
    pub to_height: u32,
    /// Blocks hidden.
    pub count: u32,
}

/// The block tree near the tip: every stored, invalid and orphan block in
/// a height window, with the straight stretches of the best chain
/// collapsed ([`ChainStore::tree`]); also the JSON of `GET /tree`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockTree {
    /// The best tip.
    pub tip: BlockHash,
    /// The blocks drawn, by height then arrival.
    pub blocks: Vec<TreeBlock>,
    /// The collapsed runs, by height.
    pub hidden: Vec<HiddenRun>,
}

/// Heights below the best tip [`ChainStore::tree`] shows by default.
pub const TREE_DEFAULT_SPAN: u32 = 100;

/// Best-chain blocks kept on each side of a fork, and at the tip, when
/// straight runs are collapsed.
pub const TREE_CONTEXT: u32 = 2;

/// How far above the highest stored block the default tree window lists
/// orphans (by their claimed heights): the next blocks whose parents are
/// on the way, never a claim far off that would take the window with it.
pub const ORPHANS_ABOVE_TOP: u32 = 16;

impl ChainStore {
    /// A block as the fork tree shows it: stored (active or stale),
    /// remembered as invalid, or in the orphan pool; `None` when unknown.
    #[must_use]
    pub fn tree_block(&self, hash: &BlockHash) -> Option<TreeBlock> {
        if let Some(&id) = self.ids.get(hash) {
            let mut b = stored_tree_block(&self.entries[id as usize]);
            b.miner = self.miner_id(hash);
            return Some(b);
        }
        if let Some(inv) = self.invalid.get(hash) {
            return Some(invalid_tree_block(*hash, inv));
        }
        self.orphans.get(hash).map(orphan_tree_block)
    }

    /// The fork tree in heights `from..=to` (default: the
    /// [`TREE_DEFAULT_SPAN`] heights up to the highest stored block; an
    /// orphan's claimed height never moves it). Every
    /// non-best block in the window is listed; the best chain is listed
    /// within [`TREE_CONTEXT`] heights of any of them, of the window's
    /// ends and of the tip, and the rest of it is collapsed into
    /// [`HiddenRun`]s. Orphans whose claimed height is unknown are listed
    /// whatever the window. Costs one pass over the index.
    #[must_use]
    pub fn tree(&self, from: Option<u32>, to: Option<u32>) -> BlockTree {
        self.tree_with(from, to, true)
    }

    /// [`ChainStore::tree`], with the best chain's straight runs collapsed
    /// or (`collapse` false) every best-chain block of the window listed:
    /// what an observer merging several nodes' trees needs.
    #[must_use]
    pub fn tree_with(&self, from: Option<u32>, to: Option<u32>, collapse: bool) -> BlockTree {
        let orphans: Vec<TreeBlock> = self
            .orphans
            .list()
            .into_iter()
            .map(orphan_tree_block)
            .collect();
        // The default top is the highest *stored* block: an orphan's
        // height is only what its coinbase claims, and an untrusted claim
        // must not choose what an honest view shows.
        // Orphans just above it (the next blocks, their parents on the
        // way) are listed up to ORPHANS_ABOVE_TOP higher.
        let top = self.entries.iter().map(|e| e.height).max().unwrap_or(0);
        let orphans_to = to.unwrap_or(top.saturating_add(ORPHANS_ABOVE_TOP));
        let to = to.unwrap_or(top);
        let from = from
            .unwrap_or(to.saturating_sub(TREE_DEFAULT_SPAN - 1))
            .min(to);
        let in_window = |h: u32| (from..=to).contains(&h);

        let mut forks: Vec<TreeBlock> = self
            .entries
            .iter()
            .filter(|e| !e.in_active && in_window(e.height))
            .map(stored_tree_block)
            .collect();
        forks.extend(
            self.invalid
                .iter()
                .filter(|(_, inv)| inv.height.is_none_or(in_window))
                .map(|(hash, inv)| invalid_tree_block(*hash, inv)),
        );
        forks.extend(
            orphans
                .into_iter()
                .filter(|o| o.height.is_none_or(|h| (from..=orphans_to).contains(&h))),
        );

        // Best-chain heights to show: near a fork, the window's ends and
        // the tip.
        let best_top = self.height().min(to);
        let (shown, hidden) = if collapse {
            let fork_parents = forks
                .iter()
                .filter_map(|f| f.height.map(|h| h.saturating_sub(1)));
            fold_straight_runs(from, best_top, fork_parents.chain([from, best_top]))
        } else {
            (ShownHeights::all(from, best_top), Vec::new())
        };
        let mut blocks: Vec<TreeBlock> = shown
            .iter()
            .map(|h| stored_tree_block(&self.entries[self.active[h as usize] as usize]))
            .collect();
        blocks.extend(forks);
        // Miner ids come from the index.
        for b in &mut blocks {
            if matches!(b.status, TreeStatus::Active | TreeStatus::Stale) {
                b.miner = self.miner_id(&b.hash);
            }
        }
        blocks.sort_by_key(|b| {
            (
                b.height.unwrap_or(u32::MAX),
                b.received_ms.unwrap_or(u64::MAX),
            )
        });
        BlockTree {
            tip: self.tip(),
            blocks,
            hidden,
        }
    }
}

/// Heights a folded tree shows: sorted, disjoint, inclusive ranges. Its
/// size grows with the anchors, never with the window's span, so a window
/// of 0..=u32::MAX costs what its anchors cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShownHeights(Vec<(u32, u32)>);

impl ShownHeights {
    /// Every height of `from..=to` (none when `from > to`).
    #[must_use]
    pub fn all(from: u32, to: u32) -> ShownHeights {
        ShownHeights(if from <= to {
            vec![(from, to)]
        } else {
            Vec::new()
        })
    }

    /// Whether `h` is shown.
    #[must_use]
    pub fn contains(&self, h: u32) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < h);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= h)
    }

    /// The shown heights, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().flat_map(|&(lo, hi)| lo..=hi)
    }
}

/// Which heights `from..=to` of a best chain a tree shows when its
/// straight runs are folded (fork-observer's "N blocks hidden"): those
/// within [`TREE_CONTEXT`] heights of an anchor (a fork's parent, a tip,
/// an end of the window), the rest as [`HiddenRun`]s. Returns the shown
/// heights and the runs by height; both empty when `from > to`. Costs
/// O(a log a) for `a` anchors, whatever the span (a crafted window of
/// 0..=4,000,000,000 once took 8.8 s and 0..=u32::MAX overflowed). Serves
/// one node's tree and the observer's merged tree.
#[must_use]
pub fn fold_straight_runs(
    from: u32,
    to: u32,
    anchors: impl IntoIterator<Item = u32>,
) -> (ShownHeights, Vec<HiddenRun>) {
    if from > to {
        return (ShownHeights::default(), Vec::new());
    }
    let mut spans: Vec<(u32, u32)> = anchors
        .into_iter()
        .filter_map(|h| {
            let lo = h.saturating_sub(TREE_CONTEXT).max(from);
            let hi = h.saturating_add(TREE_CONTEXT).min(to);
            (lo <= hi).then_some((lo, hi))
        })
        .collect();
    spans.sort_unstable();
    let mut shown: Vec<(u32, u32)> = Vec::with_capacity(spans.len());
    for (lo, hi) in spans {
        match shown.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => shown.push((lo, hi)),
        }
    }
    let mut hidden = Vec::new();
    let mut gap = |lo: u32, hi: u32| {
        hidden.push(HiddenRun {
            from_height: lo,
            to_height: hi,
            count: hi - lo + 1,
        });
    };
    // The next height not yet covered; None once `to` is passed.
    let mut next = Some(from);
    for &(lo, hi) in &shown {
        if let Some(n) = next {
            if lo > n {
                gap(n, lo - 1);
            }
        }
        next = hi.checked_add(1);
    }
    if let Some(n) = next {
        if n <= to {
            gap(n, to);
        }
    }
    (ShownHeights(shown), hidden)
}

/// A stored block as the tree shows it: active or stale.
fn stored_tree_block(e: &super::Entry) -> TreeBlock {
    TreeBlock {
        hash: e.hash,
        prev: e.header.prev_blockhash,
        height: Some(e.height),
        status: if e.in_active {
            TreeStatus::Active
        } else {
            TreeStatus::Stale
        },
        miner: None,
        chainwork: Some(e.chainwork),
        received_ms: Some(e.received_ms),
    }
}

/// A block remembered as invalid as the tree shows it.
fn invalid_tree_block(hash: BlockHash, inv: &super::InvalidBlock) -> TreeBlock {
    TreeBlock {
        hash,
        prev: inv.header.prev_blockhash,
        height: inv.height,
        miner: None,
        status: TreeStatus::Invalid,
        chainwork: None,
        received_ms: None,
    }
}

/// An orphan as the tree shows it: its height is the one its coinbase
/// claims (BIP 34), unchecked.
fn orphan_tree_block(o: &crate::chain::orphans::Orphan) -> TreeBlock {
    let coinbase = o
        .block
        .txdata
        .first()
        .and_then(|tx| crate::consensus::block::Coinbase::decode(tx).ok());
    TreeBlock {
        hash: o.hash,
        prev: o.block.header.prev_blockhash,
        height: coinbase.as_ref().map(|c| c.height),
        miner: coinbase.map(|c| c.miner_id),
        status: TreeStatus::Orphan,
        chainwork: None,
        received_ms: Some(o.received_ms),
    }
}
