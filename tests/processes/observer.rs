//! The fork observer's data routes on a real node process: `GET /tree`,
//! the `GET /events` stream read by `powchain watch`, and `powchain tree`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::{get, Node, BIN};
use serde_json::{json, Value};

#[test]
fn generated_blocks_reach_the_event_stream_and_the_tree() {
    let _serial = crate::util::one_at_a_time();
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

    // `powchain tree --svg` draws every block it listed.
    let svg_path = dir.path().join("tree.svg");
    let out = Command::new(BIN)
        .args(["tree", "--api", &node.api, "--svg"])
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    assert_eq!(
        svg.matches("<rect").count(),
        blocks.len() * 2 + 1,
        "fill and border per block, and the background"
    );

    node_page_and_grafana(&node.api);
    replay_of_a_kept_log(&node.api, dir.path());
}

/// The node serves the fork-observer page at `/`, every asset inline; the
/// Grafana dashboard's queries name metrics the node exports.
fn node_page_and_grafana(api: &str) {
    let mut resp = ureq::get(&format!("http://{api}/")).call().unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = resp.body_mut().read_to_string().unwrap();
    for needle in [
        "data-hash",
        "data-node",
        "EventSource(\"events\")",
        "fetch(\"tree\")",
    ] {
        assert!(html.contains(needle), "page lacks {needle}");
    }
    // Every asset inline: no script, style sheet or image fetched.
    for outside in ["<script src", "<link", "<img", "@import", "url("] {
        assert!(
            !html.contains(outside),
            "the page loads an asset: {outside}"
        );
    }

    let metrics = crate::util::get_text(api, "/metrics").unwrap();
    let exported: std::collections::BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split([' ', '{']).next())
        .map(str::to_string)
        .collect();
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/grafana/powchain.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut named = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("powchain_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exported.contains(&name),
                    "dashboard query {expr} names {name}, not exported: {exported:?}"
                );
                named += 1;
                rest = &rest[i + name.len()..];
            }
        }
    }
    assert!(named >= 10, "only {named} metric names in the dashboard");
}

/// The status code of `GET path` sent with `Host: host`.
fn status_with_host(addr: &str, path: &str, host: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

/// `powchain replay DIR --ui ADDR` serves a kept run: the saved trees
/// merged, the log for playback, the page.
fn replay_of_a_kept_log(api: &str, dir: &std::path::Path) {
    let kept = dir.join("kept");
    let odir = kept.join("observer");
    std::fs::create_dir_all(&odir).unwrap();
    let tree: Value = get(api, "/tree?collapse=false").unwrap();
    std::fs::write(
        odir.join("trees.json"),
        json!([["node0", tree]]).to_string(),
    )
    .unwrap();
    let log: String = tree["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            json!({"t_ms": b["received_ms"], "node": "node0", "event": "block", "data": b})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(odir.join("events.jsonl"), log).unwrap();
    let err_path = dir.join("replay.err");
    let mut child = Command::new(BIN)
        .args(["replay"])
        .arg(&kept)
        .args(["--ui", "127.0.0.1:0", "--allow-host", "observer.testnet"])
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let ui = powchain::testnet::wait_for_line(
        &err_path,
        &mut child,
        powchain::observer::server::OBSERVER_LINE,
        "replay",
        "serve its page",
        Duration::from_secs(10),
    )
    .unwrap();
    let ui = ui
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut merged = None;
    crate::util::wait_for("the replay's /tree", 20, || {
        merged = get(&ui, "/tree");
        merged.is_some()
    });
    let merged = merged.unwrap();
    assert_eq!(merged["nodes"][0]["name"], "node0");
    assert_eq!(merged["tip"], tree["tip"]);
    let entries = get(&ui, "/log").unwrap();
    assert_eq!(
        entries.as_array().unwrap().len(),
        tree["blocks"].as_array().unwrap().len()
    );
    let page = crate::util::get_text(&ui, "/").unwrap();
    assert!(page.contains("data-hash"));
    // The Host rule (issue 22, item 8): a name is answered only when
    // listed (DNS rebinding sends the attacker's name); IP literals are.
    for (host, code) in [
        ("evil.example", 403),
        ("observer.testnet:8080", 200),
        ("10.88.0.5:8080", 200),
        ("localhost", 200),
    ] {
        assert_eq!(status_with_host(&ui, "/log", host), code, "Host: {host}");
    }
    let _ = child.kill();
    let _ = child.wait();
    // A directory without a kept log is refused with a reason.
    let out = Command::new(BIN)
        .args(["replay"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("testnet --keep"));
}
