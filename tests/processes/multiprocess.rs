//! Real `powchain` processes on 127.0.0.1: a partitioned testnet that
//! must re-org and agree, and a mining node killed with SIGKILL that must
//! keep every block it reported and rejoin.

use std::process::Command;

use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{get, get_text, post_to, wait_for, Node, BIN};

/// Runs `powchain testnet ARGS` (with `--json`), requires exit 0 and
/// returns the report.
fn run_testnet(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .arg("testnet")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}); stderr:\n{stderr}"));
    eprintln!("{report:#}");
    assert!(out.status.success(), "testnet failed: {stderr}");
    report
}

fn spawn_node(dir: &std::path::Path, peers: &[String], id: &str) -> Node {
    let mut args: Vec<String> = [
        "--network",
        "testnet",
        "--block-time",
        "1",
        "--mine",
        "--threads",
        "1",
        "--miner-id",
        id,
        "--admin",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for p in peers {
        args.push("--peer".into());
        args.push(p.clone());
    }
    Node::spawn(dir, &args)
}

#[test]
fn three_node_testnet_partitions_reorgs_and_agrees() {
    let _serial = crate::util::one_at_a_time();
    let report = run_testnet(&[
        "--nodes",
        "3",
        "--duration",
        "50",
        "--block-time",
        "1",
        // 20 s apart: the lone node (a third of the hashrate, about one
        // block in 3 s at first) finds none with probability e^(-20/3),
        // about 0.1%; at 14 s it was 1%, and a clean-clone CI run met it.
        // The connected windows that propagation is measured in (after the
        // first 5 s, before the cut, and from 5 s after the heal) add up
        // to 20 s of 1-s blocks, so they hold no block with probability
        // about e^-20 (they were 4 s, and a run once had no sample).
        "--partition",
        "12:32",
        "--rpc",
        "--stratum",
        "--json",
    ]);
    assert_eq!(report["agreed"], true);
    assert_eq!(report["nodes"], 3);
    // --rpc and --stratum: every node's Core RPC address and cookie and its
    // Stratum port, for outside tools.
    let info = report["nodes_info"].as_array().unwrap();
    assert_eq!(info.len(), 3);
    for (i, n) in info.iter().enumerate() {
        assert_eq!(n["name"], format!("node{i}"));
        assert!(
            n["rpc"]
                .as_str()
                .is_some_and(|r| r.starts_with("127.0.0.1:")),
            "{n}"
        );
        assert!(
            n["cookie"].as_str().is_some_and(|c| c.ends_with(".cookie")),
            "{n}"
        );
        // The bound port (the testnet asked for port 0).
        let stratum: std::net::SocketAddr = n["stratum"]
            .as_str()
            .expect("a Stratum address")
            .parse()
            .unwrap();
        assert!(stratum.ip().is_loopback() && stratum.port() != 0, "{n}");
    }
    assert!(report["common_height"].as_u64().unwrap() >= 10);
    assert!(
        report["reorgs"].as_u64().unwrap() >= 1,
        "a partition must end in a re-org"
    );
    assert!(report["max_reorg_depth"].as_u64().unwrap() >= 1);
    assert!(report["stale"].as_u64().unwrap() >= 1);
    assert_eq!(
        report["stale_consistent"], true,
        "stale counts differ between /status, /stale and /metrics"
    );
    let heights = report["heights"].as_array().unwrap();
    assert!(heights.iter().all(|h| h == &report["common_height"]));
    assert!(report["propagation_ms"]["p50"].as_f64().is_some());
    // The testnet measured its hashrate and started above the pow limit,
    // and the partition's re-org is reported apart from ordinary races.
    let bits = report["start_bits"].as_str().unwrap();
    assert_ne!(bits, "1f00ffff", "the testnet started at its pow limit");
    assert!(report["reorgs_partition"].as_u64().unwrap() >= 1);
    assert!(
        report["stale_partition"].as_u64().unwrap() >= 1,
        "the lighter side's blocks went stale in the partition window"
    );
    // With mining only once connected and the right difficulty from the
    // first block, the first seconds make no deep re-org.
    assert!(
        report["max_reorg_depth_steady"].as_u64().unwrap() <= 2,
        "{report}"
    );
}

#[test]
fn sigkilled_miner_keeps_its_blocks_and_rejoins() {
    let _serial = crate::util::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let b = spawn_node(&dir.path().join("b"), &[], "b");
    let b_addr = b.addr();
    let a_dir = dir.path().join("a");
    let mut a = spawn_node(&a_dir, std::slice::from_ref(&b_addr), "a");
    wait_for("node a to mine 8 blocks", 60, || {
        get(&a.api, "/status").is_some_and(|s| s["height"].as_u64().unwrap_or(0) >= 8)
    });
    let before = get(&a.api, "/status").unwrap();
    let height_before = before["height"].as_u64().unwrap();
    let tip_before = before["tip"].as_str().unwrap().to_string();
    let hashes_before: Vec<String> = (1..=height_before)
        .map(|h| {
            get(&a.api, &format!("/blocks/height/{h}")).unwrap()["hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    a.child.kill().unwrap(); // SIGKILL
    a.child.wait().unwrap();
    drop(a);
    let a = spawn_node(&a_dir, &[b_addr], "a");
    // The store is reopened before the API binds: the restarted node has
    // at least every block it had.
    let after = get(&a.api, "/status").unwrap();
    assert!(after["height"].as_u64().unwrap() >= height_before);
    // Every block reported before the kill is still stored.
    assert!(
        get(&a.api, &format!("/blocks/{tip_before}")).is_some(),
        "tip {tip_before} lost"
    );
    for h in &hashes_before {
        assert!(
            get(&a.api, &format!("/blocks/{h}")).is_some(),
            "block {h} lost"
        );
    }
    // It rejoins: stop mining and both converge on one tip.
    wait_for("a to reconnect", 30, || {
        get(&a.api, "/status").is_some_and(|s| s["peers"].as_u64() == Some(1))
    });
    for n in [&a, &b] {
        n.post("/admin/mining", &json!({ "enabled": false }))
            .unwrap();
    }
    wait_for("agreement", 30, || {
        let (sa, sb) = (
            get(&a.api, "/status").unwrap(),
            get(&b.api, "/status").unwrap(),
        );
        sa["tip"] == sb["tip"]
    });
}

/// SPEC "API access", against a node started without `--admin`: a POST
/// without the cookie's token is 401, `/admin/*` is 404, a foreign `Host`
/// is 403, and every error is JSON `{"error"}`.
fn api_access_rules(node: &Node) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = |p: &str| format!("http://{}{p}", node.api);
    let check = |mut r: ureq::http::Response<ureq::Body>, code: u16| {
        assert_eq!(r.status().as_u16(), code);
        let v: serde_json::Value = r.body_mut().read_json().unwrap();
        assert!(v["error"].is_string(), "{v}");
    };
    // No token, a wrong token.
    check(
        agent
            .post(&url("/generate"))
            .send_json(json!({ "blocks": 1 }))
            .unwrap(),
        401,
    );
    check(
        agent
            .post(&url("/generate"))
            .header("Authorization", "Bearer 00")
            .send_json(json!({ "blocks": 1 }))
            .unwrap(),
        401,
    );
    // The admin routes do not exist without --admin, even with the token.
    let token = powchain::node::read_cookie(&node.dir).unwrap();
    check(
        agent
            .post(&url("/admin/partition"))
            .header("Authorization", &format!("Bearer {token}"))
            .send_json(json!({ "peers": [] }))
            .unwrap(),
        404,
    );
    // DNS rebinding: a page served as evil.example reaching the port.
    check(
        agent
            .get(&url("/status"))
            .header("Host", "evil.example")
            .call()
            .unwrap(),
        403,
    );
    // Malformed JSON with the token: 4xx with a JSON body.
    let r = agent
        .post(&url("/generate"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send("{not json")
        .unwrap();
    let code = r.status().as_u16();
    assert!((400..500).contains(&code), "{code}");
    check(r, code);
    // The cookie is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(node.dir.join(powchain::node::COOKIE_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn regtest_generate_tx_and_api_routes() {
    let _serial = crate::util::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(
        &dir.path().join("r"),
        &["--network".into(), "regtest".into()],
    );
    let txid = node.post("/tx", &json!({ "hex": "deadbeef" })).unwrap();
    let txid = txid["txid"].as_str().unwrap().to_string();
    assert!(
        node.post("/tx", &json!({ "hex": "zz" })).is_none(),
        "bad hex must be refused"
    );
    let hashes = node.post("/generate", &json!({ "blocks": 5 })).unwrap();
    assert_eq!(hashes.as_array().unwrap().len(), 5);
    api_access_rules(&node);
    let st = get(&node.api, "/status").unwrap();
    assert_eq!(st["height"], 5);
    assert_eq!(st["network"], "regtest");
    for key in [
        "genesis",
        "peer_id",
        "listen",
        "tip",
        "chainwork",
        "peers",
        "mining",
        "hashrate",
        "orphans",
        "stale",
        "reorgs",
    ] {
        assert!(!st[key].is_null(), "status lacks {key}");
    }
    let b1 = get(&node.api, "/blocks/height/1").unwrap();
    assert_eq!(
        b1["txids"][1], txid,
        "the mined block carries the submitted transaction"
    );
    assert_eq!(b1["in_best_chain"], true);
    let raw = hex::decode(b1["raw"].as_str().unwrap()).unwrap();
    let block = powchain::consensus::Block::decode(&raw, 1_000_000).unwrap();
    assert_eq!(block.block_hash().to_string(), b1["hash"]);
    let tips = get(&node.api, "/tips").unwrap();
    assert_eq!(tips[0]["status"], "active");
    assert_eq!(tips[0]["height"], 5);
    for path in ["/stale", "/orphans", "/reorgs"] {
        assert!(get(&node.api, path).unwrap().is_array(), "{path}");
    }
    let metrics = get_text(&node.api, "/metrics").unwrap();
    assert!(metrics.contains("powchain_height 5"), "{metrics}");
    assert!(metrics.contains("powchain_blocks_mined_total 5"));
    // `powchain status --json` prints the same object.
    let out = Command::new(BIN)
        .args(["status", "--api", &node.api, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tip"], st["tip"]);
    // SIGTERM: the node shuts down cleanly (exit 0) and keeps its blocks.
    let mut node = node;
    powchain::testnet::terminate(&node.child);
    let status = node.child.wait().unwrap();
    assert!(status.success(), "node exited with {status}");
}

#[test]
fn cli_exit_codes_and_mine_header_finds_real_nonces() {
    let _serial = crate::util::one_at_a_time();
    let bad = Command::new(BIN).args(["header", "abcd"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // What cannot run is refused at once with exit 2 and one line (issue
    // 22, item 11): before, a full topology of 100,000 nodes tried to
    // build 5·10^9 links, and an infinite block time ran and reported
    // nonsense.
    for extra in [
        &["--nodes", "100000", "--topology", "full"][..],
        &["--nodes", "10", "--block-time", "inf"],
        &["--nodes", "10", "--bandwidth-mbit", "0"],
    ] {
        let out = Command::new(BIN)
            .args(["sim", "network", "--blocks", "1"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{extra:?}: {stderr}");
    }
    // Mainnet block 1: start 3 million nonces below the real one.
    let h1 = "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299";
    let real_nonce: u64 = 2_573_394_689;
    let out = Command::new(BIN)
        .args([
            "mine-header",
            h1,
            "--start-nonce",
            &(real_nonce - 3_000_000).to_string(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nonce"].as_u64(), Some(real_nonce));
    assert_eq!(
        v["hash"],
        "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
    );
    // A header at a real 2024 difficulty from the retarget CSV.
    let csv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mainnet-retarget-boundaries.csv");
    {
        let text = std::fs::read_to_string(csv).expect("tests/data is in the repository");
        let last = text.lines().last().unwrap();
        let f: Vec<&str> = last.split(',').collect();
        let h = powchain::consensus::BlockHeader::from_hex(f[1]).unwrap();
        let start = h.nonce.saturating_sub(2_000_000);
        let out = Command::new(BIN)
            .args([
                "mine-header",
                f[1],
                "--start-nonce",
                &start.to_string(),
                "--json",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["nonce"].as_u64(),
            Some(u64::from(h.nonce)),
            "height {}",
            f[0]
        );
        assert_eq!(v["hash"], f[2]);
    }
    // No solution from the top nonce: exit 1.
    let none = Command::new(BIN)
        .args(["mine-header", h1, "--start-nonce", "4294967295"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
}

/// Kills a node with SIGKILL at random moments while it writes blocks,
/// eight times; every reopen must hold every block an API response had
/// reported, and a best chain whose links are whole.
#[test]
fn store_survives_repeated_sigkill_during_writes() {
    let _serial = crate::util::one_at_a_time();
    use rand::{Rng, SeedableRng};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("crash");
    let args = ["--network".to_string(), "regtest".to_string()];
    let reported: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for round in 0..8 {
        let mut node = Node::spawn(&data, &args);
        // Everything reported so far survived the previous kill.
        for h in reported.lock().unwrap().iter() {
            assert!(
                get(&node.api, &format!("/blocks/{h}")).is_some(),
                "round {round}: block {h} lost"
            );
        }
        let height = node.status_u64("height");
        for hgt in (1..=height).rev().take(50) {
            let b = get(&node.api, &format!("/blocks/height/{hgt}")).unwrap();
            let parent = get(&node.api, &format!("/blocks/height/{}", hgt - 1)).unwrap();
            assert_eq!(
                b["prev_blockhash"], parent["hash"],
                "round {round}: broken link at {hgt}"
            );
        }
        // Write in the background; kill at a random moment.
        let writer = {
            let api = node.api.clone();
            let dir = node.dir.clone();
            let reported = Arc::clone(&reported);
            std::thread::spawn(move || {
                while let Some(v) = post_to(&dir, &api, "/generate", &json!({ "blocks": 5 })) {
                    let hashes: Vec<String> = v
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| h.as_str().unwrap().to_string())
                        .collect();
                    reported.lock().unwrap().extend(hashes);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
        node.child.kill().unwrap();
        node.child.wait().unwrap();
        writer.join().unwrap();
    }
    let node = Node::spawn(&data, &args);
    let all = reported.lock().unwrap();
    assert!(all.len() >= 40, "only {} blocks were written", all.len());
    for h in all.iter() {
        assert!(
            get(&node.api, &format!("/blocks/{h}")).is_some(),
            "block {h} lost"
        );
    }
    assert!(node.status_u64("height") >= all.len() as u64);
}

/// Eyal–Sirer on real processes: a selfish node with 45% of the hashrate
/// (its miner capped, the two honest ones share the rest, the difficulty
/// held) ends with a larger share of the best chain than of the blocks it
/// mined, the honest nodes agree, and the report carries the traitor
/// figures. Selfish mining pays only on average over many blocks (over 150
/// blocks a 45% pool earns less than 45% in about one run in ten, by the
/// simulator), so the start bits are set for about 8 blocks a second:
/// about 600 blocks in 75 s, where such a run is rare (1 in 40 seeds of
/// `powchain sim selfish --alpha 0.45 --gamma 0 --blocks 500
/// --honest-nodes 2` came near 45%, none below).
#[test]
fn a_selfish_miner_earns_more_than_its_hashrate_share() {
    let _serial = crate::util::one_at_a_time();
    let counter = std::sync::atomic::AtomicU64::new(0);
    let rate = powchain::miner::bench::measure_hashrate(
        powchain::miner::Backend::auto(),
        3,
        0.5,
        &counter,
    );
    // The testnet caps the miners at 80% of the rate it measures; a
    // target 8 times easier than one block a second at that rate.
    let bits = powchain::testnet::start_bits_for(rate * powchain::testnet::CAP_BUDGET / 8.0, 1);
    let bits = bits.to_string();
    let report = run_testnet(&[
        "--nodes",
        "3",
        "--duration",
        "75",
        "--block-time",
        "1",
        "--topology",
        "full",
        "--adversary",
        "0:selfish",
        "--hashrate-share",
        "0:0.45",
        "--start-bits",
        &bits,
        "--json",
    ]);
    assert_eq!(report["agreed"], true, "the honest nodes agree");
    let miners = report["miners"].as_array().unwrap();
    assert_eq!(miners.len(), 3);
    assert_eq!(miners[0]["strategy"], "selfish");
    assert_eq!(miners[1]["strategy"], "honest");
    let pool = &miners[0];
    let mined = pool["mined_share"].as_f64().unwrap();
    let chain = pool["chain_share"].as_f64().unwrap();
    // Blocks mined, not hashes: Poisson noise over ~300 blocks (sd about
    // 3 points) plus the CPU the three nodes' core threads take from the
    // largest cap on 2 cores. Eight runs of this set-up gave 0.37-0.49
    // (the commit before this bound's change: 0.41 and 0.47), so the bound
    // is 0.35: above the 1/3 that equal uncapped miners would get.
    assert!(
        (0.35..0.55).contains(&mined),
        "the cap held the pool near 45%: {mined}"
    );
    assert!(
        chain > mined,
        "selfish mining pays at 0.45: {chain} <= {mined}"
    );
    let quality = report["chain_quality"].as_f64().unwrap();
    assert!((quality - (1.0 - chain)).abs() < 1e-9);
    assert!(report["common_prefix_max"].as_u64().is_some());
    assert!(
        report["common_height"].as_u64().unwrap() >= 200,
        "hundreds of blocks: {}",
        report["common_height"]
    );
}
