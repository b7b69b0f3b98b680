//! `powchain testnet`: N real `powchain node` processes on loopback.
//!
//! Each node gets its own data dir (with a pre-generated key, so every
//! `--peer` address carries the peer's `/p2p/<id>`), P2P and API ports,
//! one mining thread and `--miner-id nodeI`. A live table shows each node;
//! `--partition START:END` cuts the network into two halves between those
//! seconds (each node drops and refuses the other half's peers through its
//! `/admin/partition` route) and heals it. At the end mining stops, the
//! nodes are given time to agree, and the report says whether they did.
//! Nodes are stopped and the temporary dirs removed on exit and on Ctrl-C.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use libp2p::identity::Keypair;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::cli::{http_get_json, http_post_json, CliError};

/// `powchain testnet` flags.
#[derive(Debug, Args, Clone)]
pub struct TestnetArgs {
    /// Number of node processes.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Seconds of mining.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Target block time, seconds.
    #[arg(long, default_value_t = 2)]
    pub block_time: u32,
    /// line, ring, full or random.
    #[arg(long, default_value = "ring")]
    pub topology: String,
    /// Cut the network into two halves from START to END seconds, e.g. 20:35.
    #[arg(long)]
    pub partition: Option<String>,
    /// Mining threads per node.
    #[arg(long, default_value_t = 1)]
    pub threads_per_node: usize,
    /// Seed for the random topology.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the node data dirs and logs (printed at the end).
    #[arg(long)]
    pub keep: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// The links of a topology: pairs (dialer, listener).
///
/// # Errors
/// A message for an unknown topology name.
pub fn topology_edges(name: &str, n: usize, seed: u64) -> Result<Vec<(usize, usize)>, String> {
    let mut edges = Vec::new();
    match name {
        "line" => edges.extend((1..n).map(|i| (i, i - 1))),
        "ring" => {
            edges.extend((1..n).map(|i| (i, i - 1)));
            if n > 2 {
                edges.push((0, n - 1));
            }
        }
        "full" => {
            for i in 0..n {
                for j in 0..i {
                    edges.push((i, j));
                }
            }
        }
        "random" => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for i in 1..n {
                edges.push((i, rng.random_range(0..i)));
            }
            for i in 0..n {
                let j = rng.random_range(0..n);
                if i != j && !edges.contains(&(i, j)) && !edges.contains(&(j, i)) {
                    edges.push((i, j));
                }
            }
        }
        other => {
            return Err(format!(
                "unknown topology '{other}' (line, ring, full or random)"
            ))
        }
    }
    Ok(edges)
}

/// Parses `START:END` seconds.
///
/// # Errors
/// A message for bad syntax or order.
pub fn parse_partition(s: &str, duration: u64) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(':')
        .ok_or("partition must be START:END seconds, e.g. 20:35")?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("bad partition start '{a}'"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("bad partition end '{b}'"))?;
    if a >= b || b > duration {
        return Err(format!(
            "partition {a}:{b} must satisfy START < END <= duration ({duration})"
        ));
    }
    Ok((a, b))
}

struct NodeProc {
    child: Child,
    api: String,
    peer_id: String,
    /// The node's API token (its `api.cookie`), read once the API is up.
    token: Option<String>,
}

/// Sends SIGTERM to a child process (ignoring one that already exited).
pub fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
}

/// Owns the processes and the temp dir; stops and removes them on drop.
struct Cluster {
    nodes: Vec<NodeProc>,
    dir: PathBuf,
    keep: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            // SIGTERM: the node stops its miner and closes its store.
            terminate(&n.child);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for n in &mut self.nodes {
            loop {
                match n.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = n.child.kill();
                        let _ = n.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> Result<u16, CliError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::Failed {
            message: format!("no free port: {e}"),
            json: None,
        })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// One un-labelled value from a node's `/metrics`.
fn metric_value(api: &str, name: &str) -> Option<u64> {
    let text = crate::cli::http_get_text(api, "/metrics").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

fn status_all(nodes: &[NodeProc]) -> Vec<Option<Value>> {
    nodes
        .iter()
        .map(|n| http_get_json(&n.api, "/status").ok())
        .collect()
}

fn render_table(statuses: &[Option<Value>], elapsed: u64, phase: &str) -> String {
    let mut s = format!("t={elapsed:>4}s  {phase}\n");
    s.push_str(&format!(
        "{:<6} {:>6} {:<18} {:>5} {:>10} {:>6} {:>7} {:>6}\n",
        "node", "height", "tip", "peers", "MH/s", "stale", "orphans", "reorgs"
    ));
    for (i, st) in statuses.iter().enumerate() {
        match st {
            Some(v) => {
                let tip = v["tip"].as_str().unwrap_or("");
                s.push_str(&format!(
                    "node{:<2} {:>6} {:<18} {:>5} {:>10.2} {:>6} {:>7} {:>6}\n",
                    i,
                    v["height"],
                    format!("..{}", &tip[tip.len().saturating_sub(16)..]),
                    v["peers"],
                    v["hashrate"].as_f64().unwrap_or(0.0) / 1e6,
                    v["stale"],
                    v["orphans"],
                    v["reorgs"]
                ));
            }
            None => s.push_str(&format!("node{i:<2} (not answering)\n")),
        }
    }
    s
}

/// Runs the testnet and prints the report.
///
/// # Errors
/// [`CliError::Usage`] for bad flags; [`CliError::Failed`] when nodes fail
/// to start or do not agree by the end.
#[allow(clippy::too_many_lines)]
pub fn run(a: &TestnetArgs) -> Result<(), CliError> {
    if !(1..=32).contains(&a.nodes) {
        return Err(CliError::Usage("--nodes must be 1..=32".into()));
    }
    if a.duration == 0 || a.block_time == 0 {
        return Err(CliError::Usage(
            "--duration and --block-time must be positive".into(),
        ));
    }
    let edges = topology_edges(&a.topology, a.nodes, a.seed).map_err(CliError::Usage)?;
    let partition = a
        .partition
        .as_deref()
        .map(|p| parse_partition(p, a.duration))
        .transpose()
        .map_err(CliError::Usage)?;
    let fail = |m: String| CliError::Failed {
        message: m,
        json: None,
    };

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupted);
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = tokio::signal::ctrl_c().await;
                });
                flag.store(true, Ordering::Release);
            }
        });
    }

    let dir = std::env::temp_dir().join(format!(
        "powchain-testnet-{}-{}",
        std::process::id(),
        crate::node::now_ms()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("create {}: {e}", dir.display())))?;
    let exe = std::env::current_exe().map_err(|e| fail(format!("own executable: {e}")))?;
    let mut cluster = Cluster {
        nodes: Vec::new(),
        dir: dir.clone(),
        keep: a.keep,
    };

    let mut addrs = Vec::new();
    let mut keys = Vec::new();
    for i in 0..a.nodes {
        let key = Keypair::generate_secp256k1();
        let node_dir = dir.join(format!("node{i}"));
        crate::node::write_key(&node_dir, &key).map_err(|e| fail(e.to_string()))?;
        let p2p = free_port()?;
        let api = free_port()?;
        let id = key.public().to_peer_id();
        addrs.push((
            format!("/ip4/127.0.0.1/tcp/{p2p}/p2p/{id}"),
            format!("127.0.0.1:{api}"),
            p2p,
        ));
        keys.push(id);
    }
    for i in 0..a.nodes {
        let node_dir = dir.join(format!("node{i}"));
        let log = std::fs::File::create(dir.join(format!("node{i}.log")))
            .map_err(|e| fail(e.to_string()))?;
        let mut cmd = Command::new(&exe);
        cmd.arg("node")
            .args([
                "--network",
                "testnet",
                "--block-time",
                &a.block_time.to_string(),
            ])
            .arg("--data-dir")
            .arg(&node_dir)
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", addrs[i].2)])
            .args(["--api", &addrs[i].1])
            .arg("--admin")
            .args([
                "--mine",
                "--threads",
                &a.threads_per_node.to_string(),
                "--miner-id",
                &format!("node{i}"),
            ]);
        for &(d, l) in &edges {
            if d == i {
                cmd.args(["--peer", &addrs[l].0]);
            }
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info,libp2p=warn");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| fail(format!("spawn node {i}: {e}")))?;
        cluster.nodes.push(NodeProc {
            child,
            api: addrs[i].1.clone(),
            peer_id: keys[i].to_string(),
            token: None,
        });
    }
    eprintln!(
        "testnet: {} nodes, topology {}, block time {} s, {} s{}; logs in {}",
        a.nodes,
        a.topology,
        a.block_time,
        a.duration,
        partition
            .map(|(s, e)| format!(", partition {s}-{e} s"))
            .unwrap_or_default(),
        dir.display()
    );
    // Wait for every API.
    let up_deadline = Instant::now() + Duration::from_secs(30);
    while status_all(&cluster.nodes).iter().any(Option::is_none) {
        if Instant::now() > up_deadline || interrupted.load(Ordering::Acquire) {
            return Err(fail(format!(
                "nodes did not start; see logs in {}",
                dir.display()
            )));
        }
        for (i, n) in cluster.nodes.iter_mut().enumerate() {
            if let Ok(Some(st)) = n.child.try_wait() {
                cluster.keep = true;
                return Err(fail(format!(
                    "node {i} exited ({st}); see {}",
                    dir.join(format!("node{i}.log")).display()
                )));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, n) in cluster.nodes.iter_mut().enumerate() {
        n.token = crate::node::read_cookie(&dir.join(format!("node{i}"))).ok();
    }

    let tty = std::io::stderr().is_terminal() && !a.json;
    let started = Instant::now();
    let started_ms = crate::node::now_ms();
    let half = a.nodes / 2;
    let mut partitioned = false;
    let mut healed = false;
    let mut last_lines = 0usize;
    let mut last_print = 0u64;
    loop {
        if interrupted.load(Ordering::Acquire) {
            return Err(fail("interrupted".into()));
        }
        let elapsed = started.elapsed().as_secs();
        if elapsed >= a.duration {
            break;
        }
        if let Some((ps, pe)) = partition {
            if !partitioned && elapsed >= ps && half > 0 {
                for (i, n) in cluster.nodes.iter().enumerate() {
                    let other: Vec<String> = cluster
                        .nodes
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| (*j < half) != (i < half))
                        .map(|(_, m)| m.peer_id.clone())
                        .collect();
                    let _ = http_post_json(
                        &n.api,
                        "/admin/partition",
                        &json!({ "peers": other }),
                        n.token.as_deref(),
                    );
                }
                partitioned = true;
                eprintln!(
                    "-- t={elapsed}s: partition: nodes 0..{half} | {half}..{}",
                    a.nodes
                );
            }
            if partitioned && !healed && elapsed >= pe {
                for n in &cluster.nodes {
                    let _ = http_post_json(&n.api, "/admin/heal", &json!({}), n.token.as_deref());
                }
                healed = true;
                eprintln!("-- t={elapsed}s: partition healed");
            }
        }
        let phase = if partitioned && !healed {
            "PARTITIONED"
        } else {
            "connected"
        };
        let statuses = status_all(&cluster.nodes);
        let table = render_table(&statuses, elapsed, phase);
        if tty {
            if last_lines > 0 {
                eprint!("\x1b[{last_lines}A");
            }
            eprint!("{table}");
            let _ = std::io::stderr().flush();
            last_lines = table.lines().count();
        } else if !a.json && (elapsed >= last_print + 10 || last_print == 0) {
            eprint!("{table}");
            last_print = elapsed.max(1);
        }
        std::thread::sleep(Duration::from_millis(1000));
    }

    // Stop mining, then give the nodes time to converge.
    for n in &cluster.nodes {
        let _ = http_post_json(
            &n.api,
            "/admin/mining",
            &json!({ "enabled": false }),
            n.token.as_deref(),
        );
    }
    if partitioned && !healed {
        for n in &cluster.nodes {
            let _ = http_post_json(&n.api, "/admin/heal", &json!({}), n.token.as_deref());
        }
    }
    let settle = Duration::from_secs(u64::from(a.block_time).max(3) * 5);
    let settle_deadline = Instant::now() + settle;
    let mut statuses;
    let agreed = loop {
        statuses = status_all(&cluster.nodes);
        let tips: Vec<Option<&str>> = statuses
            .iter()
            .map(|s| s.as_ref().and_then(|v| v["tip"].as_str()))
            .collect();
        let all_same = tips.iter().all(|t| t.is_some() && *t == tips[0]);
        if all_same || Instant::now() > settle_deadline || interrupted.load(Ordering::Acquire) {
            break all_same;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    if !a.json {
        eprint!(
            "{}",
            render_table(&statuses, started.elapsed().as_secs(), "final")
        );
    }

    let heights: Vec<u64> = statuses
        .iter()
        .map(|s| s.as_ref().and_then(|v| v["height"].as_u64()).unwrap_or(0))
        .collect();
    let common_height = heights.iter().copied().min().unwrap_or(0);
    let mut stale_hashes = std::collections::HashSet::new();
    let mut reorgs = 0u64;
    let mut max_depth = 0u64;
    let mut per_node_reorgs = Vec::new();
    let mut stale_consistent = true;
    for (n, st) in cluster.nodes.iter().zip(&statuses) {
        let from_status = st.as_ref().and_then(|v| v["stale"].as_u64());
        let from_metrics = metric_value(&n.api, "powchain_stale_blocks");
        if let Ok(Value::Array(list)) = http_get_json(&n.api, "/stale") {
            if from_status != Some(list.len() as u64) || from_metrics != Some(list.len() as u64) {
                stale_consistent = false;
            }
            for s in list {
                if let Some(h) = s["hash"].as_str() {
                    stale_hashes.insert(h.to_string());
                }
            }
        }
        let mut count = 0;
        if let Ok(Value::Array(list)) = http_get_json(&n.api, "/reorgs") {
            for r in &list {
                count += 1;
                max_depth = max_depth.max(r["depth"].as_u64().unwrap_or(0));
            }
        }
        reorgs += count;
        per_node_reorgs.push(count);
    }
    // Propagation: per block of the final chain, arrival at each node minus
    // the earliest arrival (the miner's own, when it found the block).
    // Propagation on a connected network: blocks first seen in the first
    // 5 s (peers still connecting) or from the cut to 5 s after the heal
    // (held back by the partition, then fetched by sync) are left out of
    // `propagation_ms`; `propagation_all_ms` keeps every block.
    let cut_ms = partition.map(|(ps, pe)| (started_ms + ps * 1000, started_ms + pe * 1000 + 5000));
    let warmup_end_ms = (started_ms + 5000) as f64;
    let mut delays = Vec::new();
    let mut all_delays = Vec::new();
    let first_height = 1.max(common_height.saturating_sub(200));
    for h in first_height..=common_height {
        let arrivals: Vec<f64> = cluster
            .nodes
            .iter()
            .filter_map(|n| http_get_json(&n.api, &format!("/blocks/height/{h}")).ok())
            .filter_map(|v| v["received_ms"].as_f64())
            .collect();
        if arrivals.len() == cluster.nodes.len() {
            let min = arrivals.iter().copied().fold(f64::INFINITY, f64::min);
            let connected = min >= warmup_end_ms
                && !cut_ms.is_some_and(|(a, b)| (a as f64..b as f64).contains(&min));
            let mut first = true;
            for t in arrivals {
                if t == min && first {
                    first = false;
                    continue;
                }
                all_delays.push(t - min);
                if connected {
                    delays.push(t - min);
                }
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    all_delays.sort_by(f64::total_cmp);
    let p50 = percentile(&delays, 0.5);
    let p99 = percentile(&delays, 0.99);
    let mean_delay_ms = if delays.is_empty() {
        0.0
    } else {
        delays.iter().sum::<f64>() / delays.len() as f64
    };
    let stale = stale_hashes.len() as u64;
    let blocks_total = common_height + stale;
    let stale_rate = if blocks_total == 0 {
        0.0
    } else {
        stale as f64 / blocks_total as f64
    };
    let expected = 1.0 - (-(mean_delay_ms / 1000.0) / f64::from(a.block_time)).exp();
    let report = json!({
        "nodes": a.nodes,
        "agreed": agreed,
        "common_height": common_height,
        "heights": heights,
        "tips": statuses.iter().map(|s| s.as_ref().and_then(|v| v["tip"].as_str()).unwrap_or("").to_string()).collect::<Vec<_>>(),
        "blocks_total": blocks_total,
        "stale": stale,
        "stale_rate": stale_rate,
        "stale_rate_expected_from_delay": expected,
        "reorgs": reorgs,
        "reorgs_per_node": per_node_reorgs,
        "max_reorg_depth": max_depth,
        "stale_consistent": stale_consistent,
        "propagation_ms": { "p50": p50, "p99": p99, "mean": mean_delay_ms, "samples": delays.len() },
        "propagation_all_ms": { "p50": percentile(&all_delays, 0.5), "p99": percentile(&all_delays, 0.99), "samples": all_delays.len() },
        "block_time": a.block_time,
        "duration": a.duration,
        "topology": a.topology,
        "partition": a.partition,
        "logs": a.keep.then(|| dir.display().to_string()),
    });
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!(
            "agreed:            {agreed} (common height {common_height}, heights {heights:?})"
        );
        println!("blocks mined:      {blocks_total} ({stale} stale, rate {:.1}%; 1-exp(-d/T) with mean d {:.1} ms, T {} s: {:.2}%)", stale_rate * 100.0, mean_delay_ms, a.block_time, expected * 100.0);
        println!("re-orgs:           {reorgs} (deepest {max_depth} blocks), per node {per_node_reorgs:?}");
        println!(
            "propagation:       p50 {p50:.1} ms, p99 {p99:.1} ms over {} arrivals while connected; all {}: p50 {:.1} ms, p99 {:.1} ms",
            delays.len(),
            all_delays.len(),
            percentile(&all_delays, 0.5),
            percentile(&all_delays, 0.99)
        );
        if a.keep {
            println!("logs and data:     {}", dir.display());
        }
    }
    drop(cluster);
    if agreed {
        Ok(())
    } else {
        Err(CliError::Failed {
            message: "the nodes did not agree on one tip by the end".into(),
            json: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies_connect_everyone() {
        for name in ["line", "ring", "full", "random"] {
            for n in 1..8 {
                let e = topology_edges(name, n, 3).unwrap();
                let mut seen = vec![false; n];
                seen[0] = true;
                for _ in 0..n {
                    for &(a, b) in &e {
                        if seen[a] || seen[b] {
                            seen[a] = true;
                            seen[b] = true;
                        }
                    }
                }
                assert!(seen.iter().all(|&s| s), "{name} {n}");
            }
        }
        assert!(topology_edges("star", 3, 0).is_err());
        assert_eq!(parse_partition("20:35", 60).unwrap(), (20, 35));
        assert!(parse_partition("35:20", 60).is_err());
        assert!(parse_partition("20:70", 60).is_err());
    }
}
