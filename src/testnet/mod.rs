//! `powchain testnet`: N real `powchain node` processes on loopback.
//!
//! Each node gets its own data dir and binds port 0 for P2P and the API;
//! the testnet reads the bound API address from the node's log line, its
//! listen address from `/status`, then links the nodes as the topology
//! says through each node's `/admin/peer` route, so no port is probed and
//! handed over (no race with other programs). A live table shows each
//! node; `--partition START:END` cuts the network into two halves between
//! those seconds (through `/admin/partition`) and heals it. At the end
//! mining stops, the nodes are given time to agree, and the report says
//! whether they did. Nodes are stopped and the temporary dirs removed on
//! exit and on Ctrl-C.

mod process;
pub mod report;
pub mod topology;

pub use process::{terminate, wait_for_api_line, wait_for_line, API_LINE};
pub(crate) use process::{Cluster, NodeProc};

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::api::types::{
    HealAck, MiningRequest, PartitionAck, PartitionRequest, Status, TestnetReport,
};
use crate::api::ApiClient;
pub use topology::{Partition, Topology};

/// Why a testnet run failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TestnetError {
    /// Bad flags.
    #[error("{0}")]
    Usage(String),
    /// A node could not be started or reached.
    #[error("{0}")]
    Start(String),
    /// Files or processes.
    #[error("{0}")]
    Io(String),
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// The nodes did not agree by the end (the report was printed).
    #[error("the nodes did not agree on one tip by the end")]
    Disagreed(Box<TestnetReport>),
}

/// What a testnet run does (`powchain testnet`'s flags, parsed by
/// `cli::testnet`).
#[derive(Debug, Clone)]
pub struct TestnetPlan {
    /// Number of node processes.
    pub nodes: usize,
    /// Seconds of mining.
    pub duration: u64,
    /// Target block time, seconds.
    pub block_time: u32,
    /// How the nodes are linked.
    pub topology: Topology,
    /// Cut the network into two halves from START to END seconds, e.g. 20:35.
    pub partition: Option<Partition>,
    /// Mining threads per node.
    pub threads_per_node: usize,
    /// Bits of the first blocks, 8 hex digits; by default measured: a short
    /// bench of all the nodes' mining threads at once, so the first block
    /// already takes about one block time.
    pub start_bits: Option<crate::consensus::CompactTarget>,
    /// Seed for the random topology.
    pub seed: u64,
    /// Keep the node data dirs and logs (printed at the end), and the
    /// observer's event log and final trees (`observer/` there) for
    /// `powchain replay DIR`.
    pub keep: bool,
    /// Serve the fork-observer page over all nodes at this address
    /// (e.g. 127.0.0.1:8080; port 0 picks one, printed on stderr).
    pub ui: Option<std::net::SocketAddr>,
    /// The `Host` rule of the `--ui` page (`--allow-host`).
    pub ui_hosts: crate::api::host::HostRule,
    /// Write the final fork tree over all nodes as an SVG picture.
    pub svg: Option<std::path::PathBuf>,
    /// A traitor: NODE:STRATEGY, node index from 0 (repeatable).
    pub adversary: Vec<(usize, crate::protocol::StrategySpec)>,
    /// A node's share of the hashrate: NODE:FRACTION (repeatable; the
    /// others share the rest equally). Enforced by a per-node hashrate cap
    /// (80% of the measured machine rate shared out), so shares hold on a
    /// 2-core machine. With shares or traitors the difficulty is held at
    /// the start bits (`node --fixed-difficulty`): the capped hashrate is
    /// known, and the papers' models assume a constant difficulty.
    pub hashrate_share: Vec<(usize, f64)>,
    /// Print one JSON document.
    pub json: bool,
    /// Every node serves Core's JSON-RPC and REST on port 0.
    pub rpc: bool,
    /// Every node serves Stratum v1 on port 0 (outside miners may join).
    pub stratum: bool,
}

impl TestnetPlan {
    /// Node `i`'s strategy.
    #[must_use]
    pub fn strategy(&self, i: usize) -> crate::protocol::StrategySpec {
        self.adversary
            .iter()
            .rev()
            .find(|(n, _)| *n == i)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    /// Whether any node has a strategy or a share set (the report then
    /// adds miners, chain quality and common prefix).
    #[must_use]
    pub fn staged(&self) -> bool {
        !self.adversary.is_empty() || !self.hashrate_share.is_empty()
    }

    /// Each node's hashrate share: the ones given, the rest split equally.
    #[must_use]
    pub fn shares(&self) -> Vec<f64> {
        let mut shares: Vec<Option<f64>> = vec![None; self.nodes];
        for &(i, f) in &self.hashrate_share {
            if i < self.nodes {
                shares[i] = Some(f);
            }
        }
        let given: f64 = shares.iter().flatten().sum();
        let unset = shares.iter().filter(|s| s.is_none()).count();
        let rest = if unset > 0 {
            (1.0 - given).max(0.0) / unset as f64
        } else {
            0.0
        };
        shares.into_iter().map(|s| s.unwrap_or(rest)).collect()
    }
}

/// Share of the measured machine hashrate handed out as caps when shares
/// are enforced: below 1, so that every cap binds and the CPU is not the
/// limit.
pub const CAP_BUDGET: f64 = 0.8;

/// How long the testnet waits after the last link before mining starts:
/// three gossipsub heartbeats (500 ms each), so the mesh has formed.
pub const MESH_SETTLE: Duration = Duration::from_millis(1500);

/// The starting bits for an aggregate hashrate of `hashes_per_sec` and a
/// block time: target = 2^256 / (hashes_per_sec x block time), so that a
/// block takes about one block time from the first (work = 2^256 /
/// (target + 1) expected hashes).
#[must_use]
pub fn start_bits_for(
    hashes_per_sec: f64,
    block_time_secs: u32,
) -> crate::consensus::CompactTarget {
    use ruint::aliases::U256;
    let expected = (hashes_per_sec * f64::from(block_time_secs)).max(1.0);
    let expected = U256::from(expected.min(1e30) as u128);
    crate::consensus::Target::from_u256(U256::MAX / expected).to_compact()
}

fn render_table(statuses: &[Option<Status>], elapsed: u64, phase: &str) -> String {
    let mut s = format!("t={elapsed:>4}s  {phase}\n");
    s.push_str(&format!(
        "{:<6} {:>6} {:<18} {:>5} {:>10} {:>6} {:>7} {:>6}\n",
        "node", "height", "tip", "peers", "MH/s", "stale", "orphans", "reorgs"
    ));
    for (i, st) in statuses.iter().enumerate() {
        match st {
            Some(v) => {
                let tip = &v.tip;
                s.push_str(&format!(
                    "node{:<2} {:>6} {:<18} {:>5} {:>10.2} {:>6} {:>7} {:>6}\n",
                    i,
                    v.height,
                    format!("..{}", &tip[tip.len().saturating_sub(16)..]),
                    v.peers,
                    v.hashrate / 1e6,
                    v.stale,
                    v.orphans,
                    v.reorgs
                ));
            }
            None => s.push_str(&format!("node{i:<2} (not answering)\n")),
        }
    }
    s
}

fn status_all(nodes: &[NodeProc]) -> Vec<Option<Status>> {
    nodes.iter().map(|n| n.client.status().ok()).collect()
}

/// Runs the testnet and prints the report (human text, or one JSON
/// document with `--json`).
///
/// # Errors
/// [`TestnetError`]: bad flags, nodes that fail to start, Ctrl-C, or nodes
/// that do not agree by the end.
#[allow(clippy::too_many_lines)]
pub fn run(a: &TestnetPlan) -> Result<TestnetReport, TestnetError> {
    if let Some(p) = a.partition {
        if p.end > a.duration {
            return Err(TestnetError::Usage(format!(
                "partition {p} must end by the duration ({} s)",
                a.duration
            )));
        }
    }
    for &(i, _) in a.adversary.iter().chain(
        a.hashrate_share
            .iter()
            .map(|(i, _)| (*i, crate::protocol::StrategySpec::honest()))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        if i >= a.nodes {
            return Err(TestnetError::Usage(format!(
                "node {i} is not among the {} nodes (indices from 0)",
                a.nodes
            )));
        }
    }
    let given: f64 = a.hashrate_share.iter().map(|(_, f)| f).sum();
    if given > 1.0 + 1e-9 {
        return Err(TestnetError::Usage(format!(
            "hashrate shares add up to {given}, more than 1"
        )));
    }
    if (0..a.nodes).all(|i| !a.strategy(i).is_honest()) {
        return Err(TestnetError::Usage(
            "at least one node must be honest".into(),
        ));
    }
    let edges = a.topology.edges(a.nodes, a.seed);
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
    let io = |e: String| TestnetError::Io(e);
    let dir = std::env::temp_dir().join(format!(
        "powchain-testnet-{}-{}",
        std::process::id(),
        crate::node::now_ms()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| io(format!("create {}: {e}", dir.display())))?;
    let exe = std::env::current_exe().map_err(|e| io(format!("own executable: {e}")))?;
    let mut cluster = Cluster {
        nodes: Vec::new(),
        starting: Vec::new(),
        dir: dir.clone(),
        keep: a.keep,
    };
    // With shares, every node's miner is capped at its share of 80% of
    // the measured rate.
    let mut caps: Option<Vec<f64>> = None;
    let start_bits = match a.start_bits {
        Some(b) if !a.staged() => b,
        given => {
            let threads = a.nodes * a.threads_per_node;
            let counter = std::sync::atomic::AtomicU64::new(0);
            let mut rate = crate::miner::bench::measure_hashrate(
                crate::miner::Backend::auto(),
                threads,
                0.5,
                &counter,
            );
            if a.staged() {
                let budget = rate * CAP_BUDGET;
                caps = Some(a.shares().iter().map(|s| s * budget).collect());
                eprintln!(
                    "testnet: hashrate caps (H/s): {}",
                    a.shares()
                        .iter()
                        .enumerate()
                        .map(|(i, s)| format!("node{i} {:.0} ({:.0}%)", s * budget, s * 100.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                rate = budget;
            }
            let bits = given.unwrap_or_else(|| start_bits_for(rate, a.block_time));
            eprintln!(
                "testnet: {:.2} MH/s measured over {threads} mining threads; starting bits {bits} \
                 (about {:.0} hashes a block, {} s at that rate)",
                rate / 1e6,
                crate::consensus::Target::from_compact(bits)
                    .map(|t| t.expected_hashes())
                    .unwrap_or(0.0),
                a.block_time
            );
            bits
        }
    };
    // Start every node on port 0, mining paused.
    for i in 0..a.nodes {
        let node_dir = dir.join(format!("node{i}"));
        let log = std::fs::File::create(dir.join(format!("node{i}.log")))
            .map_err(|e| io(e.to_string()))?;
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
            .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"])
            .arg("--admin")
            .args(["--start-bits", &start_bits.to_string(), "--paused"])
            .args([
                "--mine",
                "--threads",
                &a.threads_per_node.to_string(),
                "--miner-id",
                &format!("node{i}"),
            ]);
        if a.rpc {
            cmd.args(["--rpc", "127.0.0.1:0", "--rest"]);
        }
        if a.stratum {
            cmd.args(["--stratum", "127.0.0.1:0"]);
        }
        let strategy = a.strategy(i);
        if !strategy.is_honest() {
            cmd.args(["--strategy", &strategy.to_string()]);
        }
        if let Some(c) = &caps {
            // Capped miners make a known hashrate: hold the difficulty
            // there, as the selfish-mining and double-spend models assume.
            cmd.args(["--max-hashrate", &format!("{:.0}", c[i].max(1.0))])
                .arg("--fixed-difficulty");
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info,libp2p=warn");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| TestnetError::Start(format!("spawn node {i}: {e}")))?;
        cluster.starting.push(child);
    }
    // Read each node's bound addresses.
    for (i, mut child) in std::mem::take(&mut cluster.starting)
        .into_iter()
        .enumerate()
    {
        let log = dir.join(format!("node{i}.log"));
        let api = match wait_for_api_line(&log, &mut child, Duration::from_secs(30)) {
            Ok(a) => a,
            Err(e) => {
                cluster.starting.push(child);
                cluster.keep = true;
                return Err(e);
            }
        };
        let client = ApiClient::new(&api).with_data_dir(&dir.join(format!("node{i}")));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            match client.status() {
                Ok(s) if !s.listen.is_empty() => break s,
                _ if Instant::now() > deadline || interrupted.load(Ordering::Acquire) => {
                    cluster.starting.push(child);
                    cluster.keep = true;
                    return Err(TestnetError::Start(format!(
                        "node {i} does not report a listen address; see {}",
                        log.display()
                    )));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let info = process::node_access(i, &api, &status, &dir);
        cluster.nodes.push(NodeProc {
            child,
            client,
            peer_id: status.peer_id.clone(),
            listen: status.listen[0].clone(),
            info,
        });
    }
    // Link them.
    for &(d, l) in &edges {
        let addr = cluster.nodes[l].listen.clone();
        cluster.nodes[d]
            .client
            .post::<_, serde_json::Value>("/admin/peer", &serde_json::json!({ "addr": addr }))
            .map_err(|e| TestnetError::Start(format!("link node{d} -> node{l}: {e}")))?;
    }
    // Mine only once every node has its topology's peers and gossipsub has
    // had a few heartbeats to form its mesh.
    let mut degree = vec![0usize; a.nodes];
    for &(d, l) in &edges {
        degree[d] += 1;
        degree[l] += 1;
    }
    let link_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let statuses = status_all(&cluster.nodes);
        let linked = statuses
            .iter()
            .zip(&degree)
            .all(|(s, &d)| s.as_ref().is_some_and(|s| s.peers >= d));
        if linked {
            break;
        }
        if Instant::now() > link_deadline || interrupted.load(Ordering::Acquire) {
            cluster.keep = true;
            return Err(TestnetError::Start(format!(
                "the nodes did not connect within 30 s; see logs in {}",
                dir.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(MESH_SETTLE);
    for n in &cluster.nodes {
        n.client
            .post::<_, MiningRequest>("/admin/mining", &MiningRequest { enabled: true })
            .map_err(|e| TestnetError::Start(format!("start mining: {e}")))?;
    }
    // The observer: records every node's events (page, playback, --keep).
    let observed: Vec<crate::observer::NodeRef> = cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| crate::observer::NodeRef {
            name: format!("node{i}"),
            api: n.client.api().to_string(),
        })
        .collect();
    let targets = write_prometheus_targets(&observed);
    let recorder = crate::observer::Recorder::new();
    if a.ui.is_some() || a.keep {
        for n in &observed {
            recorder.watch(n.clone());
        }
    }
    if let Some(addr) = a.ui {
        let bound = crate::observer::server::spawn(
            addr,
            crate::observer::server::TreeSource::Live(observed.clone()),
            recorder.clone(),
            a.ui_hosts.clone(),
        )
        .map_err(|e| TestnetError::Start(format!("fork observer on {addr}: {e}")))?;
        eprintln!("{}http://{bound}/", crate::observer::server::OBSERVER_LINE);
    }
    eprintln!("-- mining started: every node has its topology's peers; timings count from now");
    eprintln!(
        "testnet: {} nodes, topology {}, block time {} s, {} s{}; logs in {}",
        a.nodes,
        a.topology,
        a.block_time,
        a.duration,
        a.partition
            .map(|p| format!(", partition {}-{} s", p.start, p.end))
            .unwrap_or_default(),
        dir.display()
    );

    let tty = std::io::stderr().is_terminal() && !a.json;
    let started = Instant::now();
    let started_ms = crate::node::now_ms();
    let half = a.nodes / 2;
    let honest: Vec<usize> = (0..a.nodes)
        .filter(|&i| a.strategy(i).is_honest())
        .collect();
    let mut common_prefix_max = 0u64;
    let mut partitioned = false;
    let mut healed = false;
    let mut last_lines = 0usize;
    let mut last_print = 0u64;
    loop {
        if interrupted.load(Ordering::Acquire) {
            return Err(TestnetError::Interrupted);
        }
        let elapsed = started.elapsed().as_secs();
        if elapsed >= a.duration {
            break;
        }
        if let Some(p) = a.partition {
            if !partitioned && elapsed >= p.start && half > 0 {
                for (i, n) in cluster.nodes.iter().enumerate() {
                    let other: Vec<String> = cluster
                        .nodes
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| (*j < half) != (i < half))
                        .map(|(_, m)| m.peer_id.clone())
                        .collect();
                    let _ = n.client.post::<_, PartitionAck>(
                        "/admin/partition",
                        &PartitionRequest { peers: other },
                    );
                }
                partitioned = true;
                eprintln!(
                    "-- t={elapsed}s: partition: nodes 0..{half} | {half}..{}",
                    a.nodes
                );
            }
            if partitioned && !healed && elapsed >= p.end {
                heal_all(&cluster.nodes);
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
        if a.staged() {
            common_prefix_max =
                common_prefix_max.max(report::disagreement(&cluster.nodes, &statuses, &honest));
        }
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
        let _ = n
            .client
            .post::<_, MiningRequest>("/admin/mining", &MiningRequest { enabled: false });
    }
    if partitioned && !healed {
        heal_all(&cluster.nodes);
    }
    let settle = Duration::from_secs(u64::from(a.block_time).max(3) * 5);
    let settle_deadline = Instant::now() + settle;
    let mut statuses;
    let agreed = loop {
        statuses = status_all(&cluster.nodes);
        // Traitors may keep private tips: agreement is the honest nodes'.
        let tips: Vec<Option<&str>> = statuses
            .iter()
            .enumerate()
            .filter(|(i, _)| honest.contains(i))
            .map(|(_, s)| s.as_ref().map(|v| v.tip.as_str()))
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
    let mut report = report::build(
        a,
        &cluster.nodes,
        &statuses,
        agreed,
        started_ms,
        start_bits,
        &dir,
    );
    if a.staged() {
        report::add_traitor_figures(a, &cluster.nodes, &honest, &mut report);
        report.common_prefix_max = Some(common_prefix_max);
    }
    report::print(a, &report, &dir);
    observer_outputs(a, &observed, &recorder, &dir);
    if let Some(t) = targets {
        let _ = std::fs::remove_file(t);
    }
    drop(cluster);
    if agreed {
        Ok(report)
    } else {
        Err(TestnetError::Disagreed(Box::new(report)))
    }
}

/// Writes the nodes' API addresses for Prometheus's file-based discovery
/// (`config/grafana/prometheus.yml`): one target group per node, labelled
/// with its name, in `$TMPDIR/powchain-prometheus/testnet-<pid>.json`.
/// Returns the file, removed at the end of the run; `None` (and a note)
/// when it cannot be written.
fn write_prometheus_targets(nodes: &[crate::observer::NodeRef]) -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join("powchain-prometheus");
    let path = dir.join(format!("testnet-{}.json", std::process::id()));
    let groups: Vec<serde_json::Value> = nodes
        .iter()
        .map(|n| serde_json::json!({ "targets": [n.api], "labels": { "node": n.name } }))
        .collect();
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&groups).unwrap_or_default(),
        )
    });
    match written {
        Ok(()) => Some(path),
        Err(e) => {
            eprintln!(
                "testnet: no Prometheus targets file ({}: {e})",
                path.display()
            );
            None
        }
    }
}

/// At the end of a run: the SVG of the merged tree (`--svg`), and with
/// `--keep` the observer's event log and each node's final tree for
/// `powchain replay`. Failures are reported, not fatal: the run's report
/// stands.
fn observer_outputs(
    a: &TestnetPlan,
    nodes: &[crate::observer::NodeRef],
    recorder: &crate::observer::Recorder,
    dir: &std::path::Path,
) {
    recorder.stop();
    if a.svg.is_none() && !a.keep {
        return;
    }
    let trees = crate::observer::fetch_trees(nodes);
    if let Some(path) = &a.svg {
        let merged = crate::observer::merge_trees(&trees);
        match crate::observer::svg::render(&merged)
            .map_err(|e| e.to_string())
            .and_then(|svg| std::fs::write(path, svg).map_err(|e| e.to_string()))
        {
            Ok(()) => eprintln!("testnet: fork tree written to {}", path.display()),
            Err(e) => eprintln!("testnet: could not write {}: {e}", path.display()),
        }
    }
    if a.keep {
        let odir = dir.join("observer");
        let saved = std::fs::create_dir_all(&odir)
            .and_then(|()| recorder.save(&odir.join("events.jsonl")))
            .and_then(|()| {
                let json = serde_json::to_vec(&trees).map_err(std::io::Error::other)?;
                std::fs::write(odir.join("trees.json"), json)
            });
        match saved {
            Ok(()) => eprintln!(
                "testnet: event log kept; show it again with: powchain replay {} --ui 127.0.0.1:8080",
                dir.display()
            ),
            Err(e) => eprintln!("testnet: could not keep the event log: {e}"),
        }
    }
}

fn heal_all(nodes: &[NodeProc]) {
    for n in nodes {
        let _ = n
            .client
            .post::<_, HealAck>("/admin/heal", &serde_json::json!({}));
    }
}
