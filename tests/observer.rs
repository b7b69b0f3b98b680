//! The fork observer's data routes on a real node process: `GET /tree`,
//! the `GET /events` stream read by `powchain watch`, and `powchain tree`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{get, Node, BIN};
use serde_json::{json, Value};

#[test]
fn generated_blocks_reach_the_event_stream_and_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(
        &dir.path().join("r"),
        &["--network".into(), "regtest".into()],
    );
    // A subscriber first: `powchain watch --json` prints one JSON line
    // an event.
    let mut watch = Command::new(BIN)
        .args(["watch", "--api", &node.api, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    // The stream is open once a peer-less node's subscriber count shows in
    // nothing we can read; generate until the first event arrives.
    let mut hashes: Vec<String> = Vec::new();
    let mut events: Vec<Value> = Vec::new();
    for _ in 0..20 {
        let h = node.post("/generate", &json!({ "blocks": 1 })).unwrap();
        hashes.push(h[0].as_str().unwrap().to_string());
        if let Ok(v) = rx.recv_timeout(Duration::from_millis(500)) {
            events.push(v);
            break;
        }
    }
    assert!(!events.is_empty(), "no event on /events after 20 blocks");
    let first_seen = hashes.len();
    let more = node.post("/generate", &json!({ "blocks": 3 })).unwrap();
    let more: Vec<String> = more
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    // Each new block arrives as `block` (active, with its miner) and `tip`.
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(5)) {
        events.push(v);
        let tips = events.iter().filter(|e| e["event"] == "tip").count();
        if tips >= first_seen.min(1) + 3 && events.iter().any(|e| e["data"]["hash"] == more[2]) {
            break;
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    for h in &more {
        let b = events
            .iter()
            .find(|e| e["event"] == "block" && e["data"]["hash"] == *h)
            .unwrap_or_else(|| panic!("no block event for {h}: {events:?}"));
        assert_eq!(b["data"]["status"], "active");
        assert!(b["data"]["miner"].is_string(), "{b}");
        assert!(b["data"]["chainwork"].is_string(), "{b}");
        assert!(events
            .iter()
            .any(|e| e["event"] == "tip" && e["data"]["hash"] == *h));
    }
    let height = (hashes.len() + 3) as u64;

    // /tree: every best-chain block of this short chain is drawn, the tip
    // is the last generated block, heights ascend, nothing is hidden.
    let t = get(&node.api, "/tree").unwrap();
    assert_eq!(t["tip"], more[2]);
    let blocks = t["blocks"].as_array().unwrap();
    assert_eq!(blocks.len() as u64, height + 1, "{t}");
    assert!(blocks.iter().all(|b| b["status"] == "active"));
    assert_eq!(blocks.last().unwrap()["height"], height);
    assert!(t["hidden"].as_array().unwrap().is_empty());
    // A window, and a refused one.
    let w = get(&node.api, "/tree?from_height=1&to_height=2").unwrap();
    assert_eq!(w["blocks"].as_array().unwrap().len(), 2);
    assert!(get(&node.api, "/tree?from_height=5&to_height=2").is_none());
    assert!(get(&node.api, "/tree?from_height=x").is_none());

    // `powchain tree --json` prints the same tree; the text form one line
    // a block with the tip marked.
    let out = Command::new(BIN)
        .args(["tree", "--api", &node.api, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tip"], t["tip"]);
    assert_eq!(v["blocks"].as_array().unwrap().len(), blocks.len());
    let out = Command::new(BIN)
        .args(["tree", "--api", &node.api])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), blocks.len(), "{text}");
    assert!(text.lines().last().unwrap().contains("* tip"), "{text}");
}
