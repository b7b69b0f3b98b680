//! `powchain watch` and `powchain tree`: a node's event stream and fork
//! tree in a terminal.

use clap::Args;

use crate::value::printable;

use super::{failed, print_json, CliError};
use crate::api::types::ApiEvent;
use crate::api::ApiClient;
use crate::chain::TreeStatus;

/// `powchain watch` flags.
#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// The node's HTTP API address.
    #[arg(long, default_value = "127.0.0.1:18632")]
    pub api: String,
    /// Print each event as one JSON line `{"event","data"}`.
    #[arg(long)]
    pub json: bool,
}

/// Prints a node's `GET /events` stream, one line an event, until the
/// node stops or the user interrupts.
///
/// # Errors
/// [`CliError::Failed`] when the node cannot be reached or the stream
/// breaks.
pub fn run_watch(a: &WatchArgs) -> Result<(), CliError> {
    let client = ApiClient::new(&a.api);
    client
        .events(|kind, data| {
            if a.json {
                let data: serde_json::Value =
                    serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
                println!("{}", serde_json::json!({ "event": kind, "data": data }));
            } else {
                println!("{}", event_line(kind, data));
            }
            true
        })
        .map_err(|e| failed(e.to_string()))
}

/// The first `n` characters of a hash's display form (all of a shorter
/// one).
fn short_hash(h: &dyn std::fmt::Display, n: usize) -> String {
    let h = h.to_string();
    h.get(..n).unwrap_or(&h).to_string()
}

/// One terminal line for an event (strings from the node, such as miner
/// ids, with their control characters escaped: [`printable`]): the time it is printed (UTC,
/// `HH:MM:SS.mmm`), the kind, and the fields that matter.
#[must_use]
pub fn event_line(kind: &str, data: &str) -> String {
    let ms = crate::clock::now_ms();
    let clock = format!(
        "{:02}:{:02}:{:02}.{:03}",
        (ms / 3_600_000) % 24,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000
    );
    let short = |h: &dyn std::fmt::Display| short_hash(h, 16);
    let what = ApiEvent::from_sse(kind, data).ok().map(|e| match e {
        ApiEvent::Block(b) => format!(
            "{} height {} {} miner {} prev {}",
            short(&b.hash),
            b.height.map_or("?".into(), |h| h.to_string()),
            b.status,
            printable(b.miner.as_deref().unwrap_or("-")),
            short(&b.prev)
        ),
        ApiEvent::Tip(t) => format!("{} height {}", short(&t.hash), t.height),
        ApiEvent::Reorg(r) => format!(
            "depth {} at height {}: {} -> {}",
            r.depth,
            r.fork_height,
            short(&r.old_tip),
            short(&r.new_tip)
        ),
        ApiEvent::Stale(s) => format!(
            "{} height {} miner {}",
            short(&s.hash),
            s.height,
            printable(s.miner_id.as_deref().unwrap_or("-"))
        ),
        ApiEvent::Orphan(o) => format!(
            "{} claims parent {} from {}",
            short(&o.hash),
            short(&o.prev_blockhash),
            printable(o.from_peer.as_deref().unwrap_or("local"))
        ),
        ApiEvent::Peer(p) => format!(
            "{} {}",
            printable(&p.peer),
            if p.connected { "connected" } else { "gone" }
        ),
        ApiEvent::Lagged(n) => format!("missed {n} events"),
    });
    format!(
        "{clock} {kind:<6} {}",
        what.unwrap_or_else(|| printable(data).into_owned())
    )
}

/// `powchain tree` flags.
#[derive(Debug, Args, Clone)]
pub struct TreeArgs {
    /// The node's HTTP API address.
    #[arg(long, default_value = "127.0.0.1:18632")]
    pub api: String,
    /// Lowest height (default: 100 below the highest block).
    #[arg(long)]
    pub from_height: Option<u32>,
    /// Highest height (default: the highest block).
    #[arg(long)]
    pub to_height: Option<u32>,
    /// Print the `/tree` JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the tree as an SVG picture to this file.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
}

/// `powchain replay` flags.
#[derive(Debug, Args, Clone)]
pub struct ReplayArgs {
    /// A testnet directory kept with `powchain testnet --keep`.
    pub dir: std::path::PathBuf,
    /// Serve the fork-observer page at this address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub ui: std::net::SocketAddr,
    /// A host name the page answers in the `Host` header besides IP
    /// literals and `localhost` (repeatable; other names get 403).
    #[arg(long = "allow-host", value_name = "NAME", value_parser = crate::value::host_name)]
    pub allow_host: Vec<String>,
}

/// Serves a kept testnet run's page (final merged tree, playback over
/// its event log) until interrupted.
///
/// # Errors
/// [`CliError::Failed`] when the directory holds no kept log or the
/// address cannot be bound.
pub fn run_replay(a: &ReplayArgs) -> Result<(), CliError> {
    let odir = a.dir.join("observer");
    let log = crate::observer::Recorder::load(&odir.join("events.jsonl")).map_err(|e| {
        failed(format!(
            "{}: {e} (was the run kept with `testnet --keep`?)",
            odir.join("events.jsonl").display()
        ))
    })?;
    let trees_path = odir.join("trees.json");
    let trees: Vec<(String, crate::api::types::BlockTree)> = std::fs::metadata(&trees_path)
        .map_err(|e| e.to_string())
        .and_then(|m| {
            let limit = crate::observer::MAX_TREES_FILE_BYTES;
            if m.len() > limit {
                Err(format!(
                    "{} bytes, more than the {limit} a kept run writes",
                    m.len()
                ))
            } else {
                std::fs::read(&trees_path).map_err(|e| e.to_string())
            }
        })
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| failed(format!("{}: {e}", odir.join("trees.json").display())))?;
    let events = log.len();
    let bound = crate::observer::server::spawn(
        a.ui,
        crate::observer::server::TreeSource::Saved(trees),
        crate::observer::Recorder::from_log(log),
        crate::api::host::HostRule::with_names(&a.allow_host).unwrap_or_default(),
    )
    .map_err(|e| failed(format!("bind {}: {e}", a.ui)))?;
    eprintln!("powchain: replaying {events} events (Ctrl-C stops)");
    eprintln!("{}http://{bound}/", crate::observer::server::OBSERVER_LINE);
    loop {
        std::thread::park();
    }
}

/// Prints a node's fork tree: one line a height, the best chain's block
/// first, then the other blocks at that height with their status.
///
/// # Errors
/// [`CliError::Failed`] when the node does not answer.
pub fn run_tree(a: &TreeArgs) -> Result<(), CliError> {
    let client = ApiClient::new(&a.api);
    let t = client
        .tree(a.from_height, a.to_height)
        .map_err(|e| failed(e.to_string()))?;
    if let Some(path) = &a.svg {
        let name = client
            .status()
            .map_or_else(|_| "node".to_string(), |s| s.miner_id);
        // Uncollapsed: the picture collapses the straight runs itself.
        let full = client
            .tree_with(a.from_height, a.to_height, false)
            .map_err(|e| failed(e.to_string()))?;
        let svg = crate::observer::svg::render(&crate::observer::merge_trees(&[(name, full)]))
            .map_err(|e| failed(format!("draw the tree: {e}")))?;
        std::fs::write(path, svg).map_err(|e| failed(format!("{}: {e}", path.display())))?;
        eprintln!("tree: written to {}", path.display());
    }
    if a.json {
        print_json(&t);
        return Ok(());
    }
    let short = |h: &dyn std::fmt::Display| short_hash(h, 12);
    let mut rows: Vec<(Option<u32>, String)> = t
        .hidden
        .iter()
        .map(|h| {
            (
                Some(h.from_height),
                format!(
                    "{:>8}  ... {} blocks hidden ({}..={})",
                    h.from_height, h.count, h.from_height, h.to_height
                ),
            )
        })
        .collect();
    for b in &t.blocks {
        let mark = match b.status {
            TreeStatus::Active if b.hash == t.tip => "* tip".to_string(),
            TreeStatus::Active => "*".to_string(),
            other => format!("  {other}"),
        };
        rows.push((
            b.height,
            format!(
                "{:>8}  {} {:<10} miner {:<10} prev {}",
                b.height.map_or("?".into(), |h| h.to_string()),
                short(&b.hash),
                mark,
                printable(b.miner.as_deref().unwrap_or("-")),
                short(&b.prev)
            ),
        ));
    }
    rows.sort_by_key(|r| r.0.unwrap_or(u32::MAX));
    for (_, line) in rows {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miner_id_cannot_write_escapes_to_the_terminal() {
        // A stale block whose coinbase's miner id holds an OSC title
        // sequence and a screen clear.
        let data = serde_json::json!({
            "hash": "00".repeat(32),
            "height": 7,
            "miner_id": "evil\u{1b}]0;owned\u{7}\u{1b}[2J",
            "seen_ms": 0,
            "prev_blockhash": "11".repeat(32),
        })
        .to_string();
        let line = event_line("stale", &data);
        assert!(line.contains("height 7 miner evil"), "{line}");
        assert!(!line.chars().any(char::is_control), "{line:?}");
        // Garbage that is not an event is escaped too.
        assert!(!event_line("block", "\u{1b}[31mred")
            .chars()
            .any(char::is_control));
    }
}
