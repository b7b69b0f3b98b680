//! Bitcoin Core's JSON-RPC and REST, checked with the field's own client
//! crate (`corepc-client`, its Core v30 module): every method that carries
//! no transactions is called through it and its typed result deserializes
//! from powchain's answer, on a node with a stale branch and an invalid
//! branch. The envelope (auth, statuses, batches, bad input) is checked
//! with raw HTTP.

#![allow(deprecated)] // corepc-client 0.18 marks its sync client deprecated in favour of a regtest-only crate; it is still the typed Core v30 client.

use std::io::{Read, Write};
use std::str::FromStr;
use std::time::Duration;

use corepc_client::bitcoin;
use corepc_client::client_sync::v30::Client;
use corepc_client::client_sync::Auth;
use corepc_client::types::v30 as core;
use powchain::consensus::{Block, BlockHash, BlockHeader, Params};
use serde_json::{json, Value};

use crate::util::{get, regtest_block, wait_for, Node};

/// One HTTP/1.1 request on a fresh connection: (status, body).
fn http(addr: &str, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = auth.map_or(String::new(), |a| {
        use base64::Engine;
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(a)
        )
    });
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn rpc_node(dir: &std::path::Path, name: &str, extra: &[&str]) -> (Node, String) {
    let mut args: Vec<String> = ["--network", "regtest", "--admin"]
        .iter()
        .map(ToString::to_string)
        .collect();
    args.extend(extra.iter().map(ToString::to_string));
    let node = Node::spawn(&dir.join(name), &args);
    let rpc = get(&node.api, "/status").unwrap()["rpc"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (node, rpc)
}

fn bhash(h: &str) -> bitcoin::BlockHash {
    bitcoin::BlockHash::from_str(h).unwrap()
}

#[test]
fn core_rpc_client_reads_a_node_with_forks() {
    let _serial = crate::util::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (a, rpc) = rpc_node(dir.path(), "a", &["--rpc", "127.0.0.1:0", "--rest"]);
    assert!(!rpc.is_empty(), "status.rpc names the bound address");
    let cookie = dir.path().join("a").join(".cookie");
    let text = std::fs::read_to_string(&cookie).unwrap();
    assert!(
        text.starts_with("__cookie__:") && text.len() == 11 + 64,
        "{text}"
    );
    let client =
        Client::new_with_auth(&format!("http://{rpc}"), Auth::CookieFile(cookie.clone())).unwrap();

    // A mines 3 blocks as "alice"; B, apart, mines 4. Joined, A re-orgs
    // onto B's heavier branch: A's 3 blocks are a stale branch.
    let mined: core::GenerateToAddress = client
        .call("generatetoaddress", &[json!(3), json!("alice")])
        .unwrap();
    assert_eq!(mined.0.len(), 3);
    let (b, _) = rpc_node(dir.path(), "b", &[]);
    b.post("/generate", &json!({"blocks": 4})).unwrap();
    a.post("/admin/peer", &json!({"addr": b.addr()})).unwrap();
    wait_for("A to re-org onto B's branch", 30, || {
        client.get_block_count().is_ok_and(|c| c.0 == 4)
    });

    // An invalid block on A's tip (its coinbase claims height 99) and a
    // child of it; then a valid block; then junk and a duplicate.
    let params = Params::regtest();
    let tip_hex = client.get_best_block_hash().unwrap().0;
    let tip = BlockHash::from_hex(&tip_hex).unwrap();
    let now = client
        .get_block_header_verbose(&bhash(&tip_hex))
        .unwrap()
        .time as u32
        + 1;
    let bad = regtest_block(&params, tip, 99, now, 1, vec![]);
    let submit = |b: &Block| -> Value {
        client
            .call("submitblock", &[json!(hex::encode(b.encode()))])
            .unwrap()
    };
    assert_eq!(submit(&bad), json!("bad-cb-height"));
    let child = regtest_block(&params, bad.block_hash(), 6, now + 1, 2, vec![]);
    assert_eq!(submit(&child), json!("bad-prevblk"));
    assert_eq!(submit(&bad), json!("duplicate-invalid"));
    let good = regtest_block(&params, tip, 5, now, 3, vec![]);
    assert_eq!(submit(&good), Value::Null);
    assert_eq!(submit(&good), json!("duplicate"));
    let junk: Result<Value, _> = client.call("submitblock", &[json!("00ff")]);
    assert!(format!("{junk:?}").contains("-22"), "{junk:?}");

    // getchaintips: the active tip, A's stale branch of 3 and the invalid
    // block (one block off the best chain).
    let tips: core::GetChainTips = client.get_chain_tips().unwrap();
    let by = |status: core::ChainTipsStatus| {
        tips.0
            .iter()
            .filter(|t| t.status == status)
            .map(|t| (t.height, t.branch_length))
            .collect::<Vec<_>>()
    };
    assert_eq!(by(core::ChainTipsStatus::Active), vec![(5, 0)], "{tips:?}");
    assert_eq!(
        by(core::ChainTipsStatus::ValidFork),
        vec![(3, 3)],
        "{tips:?}"
    );
    // (The child of the invalid block was refused as `bad-prevblk` before
    // it reached the chain; tests/in_memory/chain.rs checks a longer
    // invalid branch's branchlen.)
    assert_eq!(by(core::ChainTipsStatus::Invalid), vec![(5, 1)], "{tips:?}");
    // getblockheader <hash> false: each tip's 80 bytes, which hash to it.
    for t in &tips.0 {
        let raw: core::GetBlockHeader = client.get_block_header(&bhash(&t.hash)).unwrap();
        let bytes: [u8; 80] = hex::decode(&raw.0).unwrap().try_into().unwrap();
        assert_eq!(BlockHeader::decode(&bytes).block_hash().to_string(), t.hash);
        let verbose: core::GetBlockHeaderVerbose =
            client.get_block_header_verbose(&bhash(&t.hash)).unwrap();
        assert_eq!(verbose.hash, t.hash);
        assert_eq!(verbose.height, t.height);
        if t.status != core::ChainTipsStatus::Active {
            assert_eq!(verbose.confirmations, -1, "off the best chain");
        }
    }
    let info: core::GetBlockchainInfo = client.get_blockchain_info().unwrap();
    assert_eq!((info.chain.as_str(), info.blocks), ("regtest", 5));
    assert!(info.warnings.is_empty() && !info.pruned);
    info.into_model()
        .expect("Core's model accepts the hashes, bits and target");
    let hash1: core::GetBlockHash = client.get_block_hash(1).unwrap();
    let verbose1 = client.get_block_header_verbose(&bhash(&hash1.0)).unwrap();
    assert_eq!(verbose1.confirmations, 5);
    assert!(verbose1.next_block_hash.is_some());
    assert!(client.get_difficulty().unwrap().0 > 0.0);
    let mempool: core::GetMempoolInfo = client.get_mempool_info().unwrap();
    assert_eq!(mempool.size, 0);
    let raw: core::GetRawMempool = client.call("getrawmempool", &[]).unwrap();
    assert!(raw.0.is_empty());
    let hash1_early: core::GetBlockHash = client.get_block_hash(1).unwrap();
    let net: core::GetNetworkInfo = client.get_network_info().unwrap();
    assert_eq!(net.connections, 1);
    assert!(net.local_services_names.is_empty());
    // fork-observer reads the subversion through Core's model, the header
    // by hash through it too (a bitcoin::block::Header).
    assert!(net
        .clone()
        .into_model()
        .unwrap()
        .subversion
        .starts_with("/powchain:"));
    let model = client
        .get_block_header(&bhash(&hash1_early.0))
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(model.0.block_hash().to_string(), hash1_early.0);
    let peers: core::GetPeerInfo = client.get_peer_info().unwrap();
    assert_eq!(peers.0.len(), 1);
    assert_eq!(client.get_connection_count().unwrap().0, 1);
    let mining: core::GetMiningInfo = client.get_mining_info().unwrap();
    assert_eq!(mining.blocks, 5);
    assert_eq!(mining.next.height, 6);
    assert!(client.get_network_hash_ps().unwrap() > 0.0);
    let waited: core::WaitForNewBlock = client.call("waitfornewblock", &[json!(200)]).unwrap();
    assert_eq!(waited.height, 5);
    let reached: core::WaitForBlockHeight = client
        .call("waitforblockheight", &[json!(5), json!(200)])
        .unwrap();
    assert_eq!(reached.height, 5);
    let _uptime: u32 = client.uptime().unwrap();
    assert!(client.help().unwrap().contains("getchaintips"));
    // getblock: verbosity 0 is the block's serialization; 1 lists txids.
    let zero: core::GetBlockVerboseZero = client
        .call("getblock", &[json!(hash1.0), json!(0)])
        .unwrap();
    let block = Block::decode(&hex::decode(&zero.0).unwrap(), params.max_block_bytes).unwrap();
    assert_eq!(block.block_hash().to_string(), hash1.0);
    let one: Value = client
        .call("getblock", &[json!(hash1.0), json!(1)])
        .unwrap();
    for field in [
        "hash",
        "confirmations",
        "size",
        "weight",
        "height",
        "version",
        "merkleroot",
        "tx",
        "time",
        "mediantime",
        "nonce",
        "bits",
        "difficulty",
        "chainwork",
        "nTx",
        "previousblockhash",
    ] {
        assert!(one.get(field).is_some(), "getblock 1 lacks {field}: {one}");
    }

    // REST: headers in both forms, block, hash by height, chain info.
    let (s, body) = http(
        &rpc,
        "GET",
        &format!("/rest/headers/{}.hex?count=3", hash1.0),
        None,
        "",
    );
    assert_eq!((s, body.trim().len()), (200, 3 * 160));
    let (s, body) = http(
        &rpc,
        "GET",
        &format!("/rest/headers/2/{}.json", hash1.0),
        None,
        "",
    );
    assert_eq!(s, 200);
    let hs: Vec<core::GetBlockHeaderVerbose> = serde_json::from_str(&body).unwrap();
    assert_eq!(hs.len(), 2);
    let (s, _) = http(
        &rpc,
        "GET",
        &format!("/rest/headers/2001/{}.bin", hash1.0),
        None,
        "",
    );
    assert_eq!(s, 400);
    let (s, body) = http(&rpc, "GET", "/rest/blockhashbyheight/1.json", None, "");
    assert_eq!(
        (
            s,
            serde_json::from_str::<Value>(&body).unwrap()["blockhash"].clone()
        ),
        (200, json!(hash1.0))
    );
    let (s, _) = http(&rpc, "GET", "/rest/blockhashbyheight/99.json", None, "");
    assert_eq!(s, 404);
    let (s, body) = http(
        &rpc,
        "GET",
        &format!("/rest/block/{}.hex", hash1.0),
        None,
        "",
    );
    assert_eq!((s, body.trim()), (200, zero.0.as_str()));
    let (s, body) = http(&rpc, "GET", "/rest/chaininfo.json", None, "");
    assert_eq!(s, 200);
    serde_json::from_str::<core::GetBlockchainInfo>(&body).unwrap();

    // getblocktemplate (BIP 22/23): Core's raw template struct reads it;
    // a block built from its coinbasetxn and mined is accepted.
    let gbt_req = [json!({"rules": ["segwit"]})];
    let gbt: core::GetBlockTemplate = client.call("getblocktemplate", &gbt_req).unwrap();
    assert_eq!(gbt.height, 6);
    let raw: Value = client.call("getblocktemplate", &gbt_req).unwrap();
    let coinbase = hex::decode(raw["coinbasetxn"]["data"].as_str().unwrap()).unwrap();
    let mut txdata = vec![coinbase];
    for t in &gbt.transactions {
        txdata.push(hex::decode(&t.data).unwrap());
    }
    let leaves: Vec<[u8; 32]> = txdata
        .iter()
        .map(|t| powchain::consensus::sha256d(t))
        .collect();
    let bits = u32::from_str_radix(&gbt.bits, 16).unwrap();
    let mut header = BlockHeader {
        version: gbt.version,
        prev_blockhash: BlockHash::from_hex(&gbt.previous_block_hash).unwrap(),
        merkle_root: powchain::consensus::merkle::merkle_root(&leaves).root,
        time: gbt.current_time as u32,
        bits: powchain::consensus::CompactTarget::from_consensus(bits),
        nonce: 0,
    };
    let target = powchain::consensus::Target::from_compact(header.bits).unwrap();
    while !target.is_met_by(&header.block_hash()) {
        header.nonce += 1;
    }
    let templated = Block { header, txdata };
    assert_eq!(submit(&templated), Value::Null);
    assert_eq!(
        client.get_best_block_hash().unwrap().0,
        templated.block_hash().to_string()
    );
    // Long polling: a request with the current longpollid returns once a
    // new block arrives.
    let id: Value =
        client.call::<Value>("getblocktemplate", &gbt_req).unwrap()["longpollid"].clone();
    let poller = {
        let rpc = rpc.clone();
        let cookie = cookie.clone();
        std::thread::spawn(move || {
            let c =
                Client::new_with_auth(&format!("http://{rpc}"), Auth::CookieFile(cookie)).unwrap();
            let t: core::GetBlockTemplate = c
                .call(
                    "getblocktemplate",
                    &[json!({"rules": ["segwit"], "longpollid": id})],
                )
                .unwrap();
            t.height
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let _: core::GenerateToAddress = client
        .call("generatetoaddress", &[json!(1), json!("bob")])
        .unwrap();
    assert_eq!(
        poller.join().unwrap(),
        8,
        "the long poll returned the next template"
    );

    // stop: the node shuts down cleanly and removes its cookie.
    let stopping: String = client.stop().unwrap();
    assert!(stopping.contains("stopping"));
    wait_for("the node to stop and remove its cookie", 20, || {
        !cookie.exists()
    });
}

#[test]
fn the_rpc_envelope_is_cores_and_bad_input_costs_nothing() {
    let _serial = crate::util::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (_a, rpc) = rpc_node(
        dir.path(),
        "a",
        &[
            "--rpc",
            "127.0.0.1:0",
            "--rpc-user",
            "u",
            "--rpc-password",
            "p",
        ],
    );
    let ok = Some("u:p");
    // Wrong or missing credentials: 401 with Core's realm.
    for auth in [None, Some("u:wrong")] {
        let (s, _) = http(&rpc, "POST", "/", auth, r#"{"method":"getblockcount"}"#);
        assert_eq!(s, 401);
    }
    // Legacy 1.0: both fields; 404 for an unknown method; 500 for others.
    let (s, b) = http(&rpc, "POST", "/", ok, r#"{"id":1,"method":"nosuch"}"#);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (s, v["error"]["code"].clone(), v["result"].clone()),
        (404, json!(-32601), Value::Null)
    );
    let (s, b) = http(
        &rpc,
        "POST",
        "/",
        ok,
        r#"{"id":1,"method":"getblockhash","params":[99]}"#,
    );
    assert_eq!(
        (
            s,
            serde_json::from_str::<Value>(&b).unwrap()["error"]["code"].clone()
        ),
        (500, json!(-8))
    );
    // 2.0: 200 with only `error`, and 204 for a notification.
    let (s, b) = http(
        &rpc,
        "POST",
        "/",
        ok,
        r#"{"jsonrpc":"2.0","id":7,"method":"getblockhash","params":["x"]}"#,
    );
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(
        (s, v.get("result").is_none(), v["error"]["code"].clone()),
        (200, true, json!(-3))
    );
    let (s, b) = http(
        &rpc,
        "POST",
        "/",
        ok,
        r#"{"jsonrpc":"2.0","method":"getblockcount"}"#,
    );
    assert_eq!((s, b.as_str()), (204, ""));
    // Garbage, a batch of 10,000 and an oversized body: clear errors.
    let (s, b) = http(&rpc, "POST", "/", ok, "{not json");
    assert_eq!(
        (
            s,
            serde_json::from_str::<Value>(&b).unwrap()["error"]["code"].clone()
        ),
        (500, json!(-32700))
    );
    let batch = format!(
        "[{}]",
        vec![r#"{"jsonrpc":"2.0","id":1,"method":"getblockcount"}"#; 10_000].join(",")
    );
    let (s, b) = http(&rpc, "POST", "/", ok, &batch);
    assert_eq!(
        (
            s,
            serde_json::from_str::<Value>(&b).unwrap()["error"]["code"].clone()
        ),
        (400, json!(-32600))
    );
    let big = format!(
        r#"{{"id":1,"method":"submitblock","params":["{}"]}}"#,
        "0".repeat(9 * 1024 * 1024)
    );
    let (s, _) = http(&rpc, "POST", "/", ok, &big);
    assert_eq!(s, 413);
    // A small batch: 200, one answer per request with an id.
    let (s, b) = http(
        &rpc,
        "POST",
        "/",
        ok,
        r#"[{"jsonrpc":"2.0","id":1,"method":"getblockcount"},{"jsonrpc":"2.0","method":"getblockcount"},{"id":3,"method":"nosuch"}]"#,
    );
    let v: Vec<Value> = serde_json::from_str(&b).unwrap();
    assert_eq!((s, v.len()), (200, 2));
    // Named parameters, and a junk submitblock.
    let (_, b) = http(
        &rpc,
        "POST",
        "/",
        ok,
        r#"{"jsonrpc":"2.0","id":1,"method":"getblockhash","params":{"height":0}}"#,
    );
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["result"],
        json!(Params::regtest().genesis_hash.to_string())
    );
    let (_, b) = http(
        &rpc,
        "POST",
        "/",
        ok,
        r#"{"jsonrpc":"2.0","id":1,"method":"submitblock","params":["zz"]}"#,
    );
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["error"]["code"],
        json!(-22)
    );
    // The node still answers.
    let (s, b) = http(
        &rpc,
        "POST",
        "/",
        ok,
        r#"{"jsonrpc":"2.0","id":1,"method":"getblockcount"}"#,
    );
    assert_eq!(
        (
            s,
            serde_json::from_str::<Value>(&b).unwrap()["result"].clone()
        ),
        (200, json!(0))
    );
}

#[test]
fn only_allowed_addresses_reach_the_rpc_port() {
    let _serial = crate::util::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // Allow only a network 127.0.0.1 is not in: 403 before any auth.
    let (_a, rpc) = rpc_node(
        dir.path(),
        "a",
        &["--rpc", "127.0.0.1:0", "--rpc-allow-ip", "10.0.0.0/8"],
    );
    let (s, _) = http(&rpc, "POST", "/", None, r#"{"method":"getblockcount"}"#);
    assert_eq!(s, 403);
}
