//! Stratum v1 as a miner speaks it: a test miner that knows only the
//! protocol (subscribe, authorize, notify's byte orders, submit) mines
//! shares and a block on a node; the block carries the worker's name and
//! reaches a second node; every kind of bad share and line is refused with
//! its code and counted by reason.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use powchain::consensus::sha256d;
use ruint::aliases::U256;
use serde_json::{json, Value};

use crate::util::{get, get_text, wait_for, Node};

/// Block target `2^236` (about a million hashes a block): bits `1e100000`.
const BITS: &str = "1e100000";
/// Share difficulty `2^-24`: a share every 256 hashes (`2^224 / D = 2^248`).
const SHARE_EXP: u32 = 24;

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
    /// Server messages that came while waiting for a reply.
    pending: Vec<Value>,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            next_id: 1,
            pending: Vec::new(),
        }
    }

    fn line(&mut self) -> Option<Value> {
        let mut text = String::new();
        match self.reader.read_line(&mut text) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&text).unwrap()),
        }
    }

    /// Sends a request and returns its reply (server messages before it
    /// are kept for [`Client::message`]).
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"id": id, "method": method, "params": params});
        writeln!(self.writer, "{req}").unwrap();
        loop {
            let v = self.line().expect("the server closed the connection");
            if v["id"] == json!(id) {
                return v;
            }
            self.pending.push(v);
        }
    }

    /// The next server message named `method`.
    fn message(&mut self, method: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|m| m["method"] == method) {
            return self.pending.remove(i);
        }
        loop {
            let v = self.line().expect("the server closed the connection");
            if v["method"] == method {
                return v;
            }
            self.pending.push(v);
        }
    }
}

/// A job as the miner reads it from `mining.notify`.
struct MinerJob {
    id: String,
    header: [u8; 80],
    extranonce2: [u8; 4],
    ntime: String,
    target: U256,
}

/// Builds the 80-byte header from notify's fields as a Stratum miner
/// does: prevhash words swapped back, the coinbase from coinb1,
/// extranonce1, extranonce2 and coinb2, the root up the branch, version,
/// nbits and ntime from big-endian hex.
fn miner_job(notify: &Value, extranonce1: &str, extranonce2: [u8; 4]) -> MinerJob {
    let p = &notify["params"];
    let s = |i: usize| p[i].as_str().unwrap().to_string();
    let be32 = |t: &str| u32::from_str_radix(t, 16).unwrap();
    let mut prev = hex::decode(s(1)).unwrap();
    for w in prev.chunks_exact_mut(4) {
        w.reverse();
    }
    let mut coinbase = hex::decode(s(2)).unwrap();
    coinbase.extend(hex::decode(extranonce1).unwrap());
    coinbase.extend(extranonce2);
    coinbase.extend(hex::decode(s(3)).unwrap());
    let mut root = sha256d(&coinbase);
    for step in p[4].as_array().unwrap() {
        let mut buf = root.to_vec();
        buf.extend(hex::decode(step.as_str().unwrap()).unwrap());
        root = sha256d(&buf);
    }
    let bits = be32(&s(6));
    let mut header = [0u8; 80];
    header[0..4].copy_from_slice(&be32(&s(5)).to_le_bytes());
    header[4..36].copy_from_slice(&prev);
    header[36..68].copy_from_slice(&root);
    header[68..72].copy_from_slice(&be32(&s(7)).to_le_bytes());
    header[72..76].copy_from_slice(&bits.to_le_bytes());
    let size = bits >> 24;
    let target = U256::from(bits & 0x00ff_ffff) << (8 * (size as usize - 3));
    MinerJob {
        id: s(0),
        header,
        extranonce2,
        ntime: s(7),
        target,
    }
}

/// A nonce's hash as the 256-bit little-endian integer.
fn hash_of(job: &MinerJob, nonce: u32) -> ([u8; 32], U256) {
    let mut h = job.header;
    h[76..80].copy_from_slice(&nonce.to_le_bytes());
    let hash = sha256d(&h);
    (hash, U256::from_le_bytes(hash))
}

fn submit_params(worker: &str, job: &MinerJob, nonce: u32) -> Value {
    json!([
        worker,
        job.id,
        hex::encode(job.extranonce2),
        job.ntime,
        format!("{nonce:08x}")
    ])
}

fn error_code(reply: &Value) -> u64 {
    reply["error"][0]
        .as_u64()
        .unwrap_or_else(|| panic!("an error reply: {reply}"))
}

#[test]
fn a_stratum_miner_finds_a_block_with_its_worker_name_and_bad_shares_are_refused_by_reason() {
    let _serial = crate::util::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let net: Vec<String> = [
        "--network",
        "testnet",
        "--start-bits",
        BITS,
        "--fixed-difficulty",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let b = Node::spawn(&dir.path().join("b"), &net);
    let mut a_args = net.clone();
    a_args.extend(
        [
            "--peer",
            &b.addr(),
            "--stratum",
            "127.0.0.1:0",
            "--stratum-difficulty",
            &format!("{}", 2f64.powi(-(SHARE_EXP as i32))),
        ]
        .iter()
        .map(ToString::to_string),
    );
    let a = Node::spawn(&dir.path().join("a"), &a_args);
    let stratum = get(&a.api, "/status").unwrap()["stratum"]["addr"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the nodes to connect", 30, || a.status_u64("peers") == 1);

    let mut c = Client::connect(&stratum);
    // Before subscribing: 25; the worker is not authorized: 24.
    let r = c.call("mining.authorize", json!(["alice.rig1", "x"]));
    assert_eq!(error_code(&r), 25, "{r}");
    let r = c.call(
        "mining.submit",
        json!(["alice.rig1", "1", "00000000", "00000000", "00000000"]),
    );
    assert_eq!(error_code(&r), 25, "{r}");
    let sub = c.call("mining.subscribe", json!(["test-miner/1.0"]));
    let res = &sub["result"];
    assert_eq!(res[0][0][0], "mining.set_difficulty", "{sub}");
    assert_eq!(res[0][1][0], "mining.notify", "{sub}");
    let extranonce1 = res[1].as_str().unwrap().to_string();
    assert_eq!(extranonce1.len(), 8, "4 bytes of extranonce1");
    assert_eq!(res[2], 4, "extranonce2_size 4");
    assert!(sub["error"].is_null());
    let r = c.call(
        "mining.submit",
        json!(["alice.rig1", "1", "00000000", "00000000", "00000000"]),
    );
    assert_eq!(error_code(&r), 24, "{r}");
    assert_eq!(
        c.call("mining.extranonce.subscribe", json!([]))["result"],
        true
    );
    let r = c.call("mining.authorize", json!(["alice.rig1", "x"]));
    assert_eq!(r["result"], true, "{r}");
    // set_difficulty comes before the first notify.
    let d = c.message("mining.set_difficulty");
    // (serde_json's default float parser may be 1 ulp off.)
    let sent = d["params"][0].as_f64().unwrap();
    assert!(
        (sent / 2f64.powi(-(SHARE_EXP as i32)) - 1.0).abs() < 1e-12,
        "{d}"
    );
    assert!(c.pending.iter().all(|m| m["method"] != "mining.notify"));
    let notify = c.message("mining.notify");
    assert_eq!(
        notify["params"][8], true,
        "the first job is clean: {notify}"
    );
    let share_target = U256::from(1u8) << (224 + SHARE_EXP as usize);

    // Shares that are not blocks: accepted; one of them again: duplicate;
    // a hash above the share target: low difficulty.
    let job = miner_job(&notify, &extranonce1, [0, 0, 0, 1]);
    let (mut shares, mut weak, mut block) = (Vec::new(), None, None);
    let mut spare = None;
    for nonce in 0..u32::MAX {
        let (_, v) = hash_of(&job, nonce);
        if v <= job.target {
            if block.is_none() {
                block = Some(nonce);
            }
        } else if v <= share_target {
            if shares.len() < 5 {
                shares.push(nonce);
            } else if spare.is_none() {
                spare = Some(nonce);
            }
        } else if weak.is_none() {
            weak = Some(nonce);
        }
        if block.is_some() && spare.is_some() && weak.is_some() {
            break;
        }
    }
    for &n in &shares {
        let r = c.call("mining.submit", submit_params("alice.rig1", &job, n));
        assert_eq!(r["result"], true, "{r}");
    }
    let r = c.call(
        "mining.submit",
        submit_params("alice.rig1", &job, shares[0]),
    );
    assert_eq!(error_code(&r), 22, "duplicate: {r}");
    let r = c.call(
        "mining.submit",
        submit_params("alice.rig1", &job, weak.unwrap()),
    );
    assert_eq!(error_code(&r), 23, "low difficulty: {r}");
    let mut unknown = submit_params("alice.rig1", &job, shares[1]);
    unknown[1] = json!("ffffffffffff");
    let r = c.call("mining.submit", unknown);
    assert_eq!(error_code(&r), 21, "unknown job: {r}");
    let r = c.call(
        "mining.submit",
        json!(["alice.rig1", job.id, "0001", job.ntime, "00000000"]),
    );
    assert_eq!(error_code(&r), 20, "a short extranonce2: {r}");
    let r = c.call("mining.submit", submit_params("mallory", &job, shares[1]));
    assert_eq!(error_code(&r), 24, "a worker not authorized here: {r}");

    // The block: accepted, in the chain with the worker's name, relayed.
    let r = c.call(
        "mining.submit",
        submit_params("alice.rig1", &job, block.unwrap()),
    );
    assert_eq!(r["result"], true, "{r}");
    let (hash, _) = hash_of(&job, block.unwrap());
    let hash = powchain::consensus::BlockHash(hash).to_string();
    wait_for("the block on node a", 20, || {
        get(&a.api, "/status").unwrap()["tip"] == hash
    });
    let stored = get(&a.api, &format!("/blocks/{hash}")).unwrap();
    assert_eq!(stored["miner_id"], "alice.rig1", "{stored}");
    assert_eq!(stored["height"], 1);
    wait_for("the block relayed to node b", 30, || {
        get(&b.api, "/status").unwrap()["tip"] == hash
    });
    // A new clean job on the block; a share of the old job is stale.
    let next = c.message("mining.notify");
    assert_eq!(next["params"][8], true, "{next}");
    assert_ne!(next["params"][0], json!(job.id));
    let r = c.call(
        "mining.submit",
        submit_params("alice.rig1", &job, spare.unwrap()),
    );
    assert_eq!(error_code(&r), 21, "stale: {r}");

    // Garbage and unknown methods get code 20 and cost the connection
    // nothing; the requests Stratum clients send are answered.
    writeln!(c.writer, "this is not json").unwrap();
    let r = c.line().unwrap();
    assert_eq!(error_code(&r), 20, "{r}");
    assert_eq!(error_code(&c.call("mining.steal", json!([]))), 20);
    assert_eq!(c.call("mining.ping", json!([]))["result"], "pong");
    assert!(c.call("client.get_version", json!([]))["result"]
        .as_str()
        .unwrap()
        .starts_with("powchain/"));

    // A line over 8 KiB: an error, then the connection is closed.
    let mut big = Client::connect(&stratum);
    let long = "x".repeat(10_000);
    let _ = big.writer.write_all(long.as_bytes());
    let r = big.line().expect("an error line first");
    assert_eq!(error_code(&r), 20, "{r}");
    assert!(big.line().is_none(), "closed after an over-long line");
    // Sixteen lines that are not requests: closed.
    let mut noisy = Client::connect(&stratum);
    for _ in 0..16 {
        let _ = writeln!(noisy.writer, "[1,2,3]");
    }
    let mut replies = 0;
    while noisy.line().is_some() {
        replies += 1;
    }
    assert_eq!(replies, 16, "each bad line answered, then closed");

    // The connection limit: 256 clients; the next is told and closed.
    wait_for("the closed clients to go", 10, || {
        get(&a.api, "/status").unwrap()["stratum"]["clients"] == 1
    });
    let idle: Vec<TcpStream> = (0..255)
        .map(|_| TcpStream::connect(&stratum).unwrap())
        .collect();
    wait_for("256 clients", 20, || {
        get(&a.api, "/status").unwrap()["stratum"]["clients"] == 256
    });
    let mut over = Client::connect(&stratum);
    let r = over.line().expect("a refusal line");
    assert_eq!(error_code(&r), 20, "{r}");
    assert!(over.line().is_none());
    drop(idle);
    // The miner's connection still works.
    assert_eq!(c.call("mining.ping", json!([]))["result"], "pong");

    let st = &get(&a.api, "/status").unwrap()["stratum"];
    assert_eq!(st["shares_accepted"], 6, "five shares and the block: {st}");
    assert_eq!(st["blocks"], 1, "{st}");
    let rej = &st["rejected"];
    assert_eq!(rej["duplicate"], 1, "{st}");
    assert_eq!(rej["low_difficulty"], 1, "{st}");
    assert_eq!(rej["stale"], 1, "{st}");
    assert_eq!(rej["unknown_job"], 1, "{st}");
    assert_eq!(rej["unauthorized"], 2, "{st}");
    assert_eq!(rej["not_subscribed"], 1, "{st}");
    assert!(st["hashrate_estimate"].as_f64().unwrap() > 0.0, "{st}");
    let metrics = get_text(&a.api, "/metrics").unwrap();
    for line in [
        "powchain_stratum_shares_accepted_total 6",
        "powchain_stratum_blocks_total 1",
        "powchain_stratum_shares_rejected_total{reason=\"duplicate\"} 1",
        "powchain_stratum_shares_rejected_total{reason=\"stale\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in /metrics:\n{metrics}");
    }
}
