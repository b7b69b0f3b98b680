//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use powchain::consensus::block::{Block, Coinbase};
use powchain::consensus::merkle::merkle_root;
use powchain::consensus::{sha256d, BlockHash, BlockHeader, Params, Target};

/// A real-data file under `tests/data/` (copied from `../shared/data`, whose
/// README there gives the expected values). The data is part of the
/// repository, so a missing file is a broken checkout: the test fails.
#[track_caller]
pub fn test_data(file: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    assert!(p.exists(), "{} is missing from the repository", p.display());
    p
}

/// Mines a regtest block on `parent` (height `height`, time `time`) with
/// extra transactions; `salt` makes sibling blocks differ.
pub fn regtest_block(
    params: &Params,
    parent: BlockHash,
    height: u32,
    time: u32,
    salt: u64,
    txs: Vec<Vec<u8>>,
) -> Block {
    let coinbase = Coinbase {
        height,
        extranonce: salt,
        miner_id: format!("t{salt}"),
    }
    .encode();
    let mut txdata = vec![coinbase];
    txdata.extend(txs);
    let leaves: Vec<[u8; 32]> = txdata.iter().map(|t| sha256d(t)).collect();
    let mut header = BlockHeader {
        version: 1,
        prev_blockhash: parent,
        merkle_root: merkle_root(&leaves).root,
        time,
        bits: params.pow_limit_bits,
        nonce: 0,
    };
    let target: Target = params.pow_limit;
    while !target.is_met_by(&header.block_hash()) {
        header.nonce += 1;
    }
    Block { header, txdata }
}

/// A chain of `n` regtest blocks on `parent` (at `parent_height`), times
/// increasing from `t0`.
pub fn regtest_chain(
    params: &Params,
    parent: BlockHash,
    parent_height: u32,
    t0: u32,
    n: u32,
    salt: u64,
) -> Vec<Block> {
    let mut out = Vec::new();
    let mut prev = parent;
    for i in 0..n {
        let b = regtest_block(params, prev, parent_height + 1 + i, t0 + i, salt, vec![]);
        prev = b.block_hash();
        out.push(b);
    }
    out
}

/// "now" for tests: far enough after the genesis of our networks.
pub const NOW_MS: u64 = 1_800_000_000_000;

// ---- real processes ----

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `powchain` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_powchain");

/// GET JSON from a node's API.
pub fn get(api: &str, path: &str) -> Option<Value> {
    powchain::api::ApiClient::new(api).get::<Value>(path).ok()
}

/// GET text (e.g. `/metrics`) from a node's API.
pub fn get_text(api: &str, path: &str) -> Option<String> {
    powchain::api::ApiClient::new(api).get_text(path).ok()
}

/// POST JSON to the API of the node whose data dir is `dir`, with the
/// token from its `api.cookie` (read at each call: a restarted node has a
/// new one).
pub fn post_to(dir: &std::path::Path, api: &str, path: &str, body: &Value) -> Option<Value> {
    powchain::api::ApiClient::new(api)
        .with_data_dir(dir)
        .post::<_, Value>(path, body)
        .ok()
}

/// Polls `f` every 200 ms until it holds; panics after `secs`.
#[track_caller]
pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A `powchain node` process, killed on drop.
pub struct Node {
    /// The process.
    pub child: Child,
    /// Its API address (bound by the node on port 0).
    pub api: String,
    /// Its data dir.
    pub dir: PathBuf,
}

impl Node {
    /// Starts `powchain node` with a data dir, P2P and API on port 0 of
    /// 127.0.0.1, and extra flags; returns once its API answers, at the
    /// address the node reports on stderr (no port is probed and handed
    /// over). Its log is `<dir>.log`.
    #[track_caller]
    pub fn spawn(dir: &std::path::Path, extra: &[String]) -> Node {
        Node::spawn_wrapped(dir, extra, &[])
    }

    /// [`Node::spawn`] under a wrapper command (`["faketime", "-f",
    /// "+7230s"]`: the node's clock runs ahead); `[]`: none.
    #[track_caller]
    pub fn spawn_wrapped(dir: &std::path::Path, extra: &[String], wrapper: &[&str]) -> Node {
        let log_path = dir.with_extension("log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = match wrapper {
            [] => Command::new(BIN),
            [program, args @ ..] => {
                let mut c = Command::new(program);
                c.args(args).arg(BIN);
                c
            }
        };
        command.arg("node").arg("--data-dir").arg(dir);
        // Loopback defaults, unless `extra` names its own.
        if !extra.iter().any(|a| a == "--listen") {
            command.args(["--listen", "/ip4/127.0.0.1/tcp/0"]);
        }
        if !extra.iter().any(|a| a == "--api") {
            command.args(["--api", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let api =
            powchain::testnet::wait_for_api_line(&log_path, &mut child, Duration::from_secs(30))
                .unwrap();
        let node = Node {
            child,
            api,
            dir: dir.to_path_buf(),
        };
        wait_for("the node's API and listen address", 30, || {
            get(&node.api, "/status").is_some_and(|s| !s["listen"].as_array().unwrap().is_empty())
        });
        node
    }

    /// Its dialable address, `/p2p/<id>` included (its first listen address).
    pub fn addr(&self) -> String {
        get(&self.api, "/status").unwrap()["listen"][0]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// POST JSON with the node's API token.
    pub fn post(&self, path: &str, body: &Value) -> Option<Value> {
        post_to(&self.dir, &self.api, path, body)
    }

    /// A `/status` field as u64.
    #[track_caller]
    pub fn status_u64(&self, key: &str) -> u64 {
        get(&self.api, "/status")
            .and_then(|s| s[key].as_u64())
            .unwrap_or(0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real-process tests mine on the machine's cores and several measure
/// what the mining does (block rates, hashrate shares, propagation). Two at
/// once on a 2-core machine starve each other's miners (a clean-clone CI
/// run saw a selfish testnet find 106 blocks in 75 s instead of ~600 while
/// the p2p tests ran beside it), so every test of the `processes` binary
/// holds this lock: they run one at a time, the in-memory ones in parallel.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
