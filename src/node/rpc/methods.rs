//! The JSON-RPC methods, with the names, parameters, result fields and
//! error codes of Bitcoin Core v30 (SPEC "Bitcoin Core interfaces").
//!
//! Fields that have no meaning in powchain carry the neutral value Core
//! itself gives in that case (README, "Using the tools you know"): no fees
//! (`relayfee`, `mempoolminfee`, ... are 0), no pruning (`pruned: false`),
//! no service bits (`localservices` all zero, `localservicesnames: []`),
//! no warnings (`warnings: []`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::convert::{
    block_not_found, chain_name, client_version, difficulty, network_hash_ps, opt_bool, opt_u64,
    req_hash, req_i64, req_str, req_u32, target_hex, type_error,
};
use super::mining::{block_template, long_poll, submit_block};
use super::{code, Params, RpcError};
use crate::chain::{BlockInfo, ChainStore};
use crate::consensus::{BlockHash, BlockHeader};
use crate::node::{CoreMsg, Shared};

/// Every method served, in `help` order.
pub const METHODS: &[&str] = &[
    "getbestblockhash",
    "getblock",
    "getblockchaininfo",
    "getblockcount",
    "getblockhash",
    "getblockheader",
    "getchaintips",
    "getdifficulty",
    "getmempoolinfo",
    "getrawmempool",
    "waitforblockheight",
    "waitfornewblock",
    "getconnectioncount",
    "getnetworkinfo",
    "getpeerinfo",
    "getmininginfo",
    "getnetworkhashps",
    "sendrawtransaction",
    "generatetoaddress",
    "submitblock",
    "getblocktemplate",
    "help",
    "stop",
    "uptime",
];

/// Longest wait `waitfornewblock` and `waitforblockheight` allow, ms
/// (Core waits without end when the timeout is 0; a bounded wait keeps a
/// client from pinning a connection forever).
pub const MAX_WAIT_MS: u64 = 3_600_000;

/// Runs `method` with `params` on `shared`.
///
/// # Errors
/// Core's [`RpcError`]s: -32601 for an unknown method, -1 for a wrong
/// number of arguments, -3 for a wrong type, -5 for an unknown block, -8
/// for a bad parameter.
pub async fn call(shared: Arc<Shared>, method: &str, params: Params) -> Result<Value, RpcError> {
    match method {
        "waitfornewblock" => {
            let p = params.in_order(method, &["timeout"])?;
            wait_for(&shared, opt_u64(&p, 0, "timeout")?, None).await
        }
        "waitforblockheight" => {
            let p = params.in_order(method, &["height", "timeout"])?;
            let height = req_u32(&p, 0, "height")?;
            wait_for(&shared, opt_u64(&p, 1, "timeout")?, Some(height)).await
        }
        "sendrawtransaction" => {
            let p = params.in_order(method, &["hexstring", "maxfeerate", "maxburnamount"])?;
            let hex = req_str(&p, 0, "hexstring")?;
            let bytes = hex::decode(hex)
                .map_err(|_| RpcError::new(code::DESERIALIZATION, "TX decode failed"))?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            shared
                .commands
                .send(CoreMsg::SubmitTx(bytes, tx))
                .map_err(|_| stopping())?;
            match rx.await {
                Ok(Ok(txid)) => Ok(json!(txid.to_string())),
                Ok(Err(e)) => Err(RpcError::new(code::VERIFY_REJECTED, e.to_string())),
                Err(_) => Err(stopping()),
            }
        }
        "generatetoaddress" => {
            let p = params.in_order(method, &["nblocks", "address", "maxtries"])?;
            let n = req_u32(&p, 0, "nblocks")?;
            let miner = req_str(&p, 1, "address")?.to_string();
            if n > 1_000 {
                return Err(RpcError::new(
                    code::INVALID_PARAMETER,
                    "nblocks: at most 1000 at a time",
                ));
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            shared
                .commands
                .send(CoreMsg::Generate(n, Some(miner), tx))
                .map_err(|_| stopping())?;
            match rx.await {
                Ok(Ok(hashes)) => Ok(json!(hashes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>())),
                Ok(Err(e)) => Err(RpcError::new(code::MISC, e.to_string())),
                Err(_) => Err(stopping()),
            }
        }
        "getblocktemplate" => {
            let p = params.in_order(method, &["template_request"])?;
            let request = match p.first() {
                None | Some(Value::Null) => serde_json::Map::new(),
                Some(Value::Object(o)) => o.clone(),
                Some(_) => return Err(type_error("template_request", "object")),
            };
            match request.get("mode").and_then(Value::as_str) {
                None | Some("template") => {}
                Some(m) => {
                    return Err(RpcError::new(
                        code::INVALID_PARAMETER,
                        format!("Invalid mode {}", m.chars().take(20).collect::<String>()),
                    ))
                }
            }
            if let Some(id) = request.get("longpollid").and_then(Value::as_str) {
                long_poll(&shared, id).await;
            }
            let shared = Arc::clone(&shared);
            tokio::task::spawn_blocking(move || Ok(block_template(&shared)))
                .await
                .unwrap_or_else(|_| Err(RpcError::new(code::MISC, "internal error")))
        }
        "submitblock" => {
            let p = params.in_order(method, &["hexdata", "dummy"])?;
            submit_block(&shared, req_str(&p, 0, "hexdata")?).await
        }
        "stop" => {
            params.in_order(method, &["wait"])?;
            shared.stop.notify_one();
            Ok(json!("powchain stopping"))
        }
        _ => {
            let method = method.to_string();
            tokio::task::spawn_blocking(move || read_only(&shared, &method, params))
                .await
                .unwrap_or_else(|_| Err(RpcError::new(code::MISC, "internal error")))
        }
    }
}

pub(super) fn stopping() -> RpcError {
    RpcError::new(code::MISC, "powchain is shutting down")
}

/// The methods that only read the chain, the mempool and the peers.
pub(super) fn read_only(shared: &Shared, method: &str, params: Params) -> Result<Value, RpcError> {
    let core = shared.core();
    let chain = core.chain();
    // Each arm reads its parameters once.
    let params_of = |names: &[&str]| params.in_order(method, names);
    match method {
        "getbestblockhash" => {
            params_of(&[])?;
            Ok(json!(chain.tip().to_string()))
        }
        "getblockcount" => {
            params_of(&[])?;
            Ok(json!(chain.height()))
        }
        "getblockhash" => {
            let p = params_of(&["height"])?;
            let h = req_i64(&p, 0, "height")?;
            let info = u32::try_from(h)
                .ok()
                .and_then(|h| chain.info_at_height(h))
                .ok_or_else(|| {
                    RpcError::new(code::INVALID_PARAMETER, "Block height out of range")
                })?;
            Ok(json!(info.hash.to_string()))
        }
        "getblockheader" => {
            let p = params_of(&["blockhash", "verbose"])?;
            let hash = req_hash(&p, 0, "blockhash")?;
            let verbose = opt_bool(&p, 1, "verbose")?.unwrap_or(true);
            let header = chain.header_of(&hash).ok_or_else(block_not_found)?;
            if !verbose {
                return Ok(json!(hex::encode(header.encode())));
            }
            Ok(header_json(chain, &hash, &header, None))
        }
        "getblock" => {
            let p = params_of(&["blockhash", "verbosity"])?;
            let hash = req_hash(&p, 0, "blockhash")?;
            let verbosity = match p.get(1) {
                None | Some(Value::Null) => 1,
                Some(Value::Bool(b)) => i64::from(*b),
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| type_error("verbosity", "number"))?,
            };
            let block = chain
                .block(&hash)
                .map_err(|e| RpcError::new(code::MISC, e.to_string()))?
                .ok_or_else(block_not_found)?;
            if verbosity <= 0 {
                return Ok(json!(hex::encode(block.encode())));
            }
            Ok(block_json(chain, &hash, &block, verbosity >= 2))
        }
        "getblockchaininfo" => {
            params_of(&[])?;
            let tip = chain.tip_header();
            let bits = tip.bits;
            Ok(json!({
                "chain": chain_name(shared.params.network),
                "blocks": chain.height(),
                "headers": chain.height(),
                "bestblockhash": chain.tip().to_string(),
                "bits": bits.to_string(),
                "target": target_hex(bits),
                "difficulty": difficulty(bits),
                "time": tip.time,
                "mediantime": chain.median_time_past(&chain.tip()).unwrap_or(tip.time),
                "verificationprogress": 1.0,
                "initialblockdownload": false,
                "chainwork": chain.chainwork().to_hex(),
                "size_on_disk": 0,
                "pruned": false,
                "warnings": [],
            }))
        }
        "getchaintips" => {
            params_of(&[])?;
            let tips: Vec<Value> = chain
                .chain_tips()
                .iter()
                .map(|t| {
                    json!({"height": t.height, "hash": t.hash.to_string(),
                           "branchlen": t.branchlen, "status": t.status.as_str()})
                })
                .collect();
            Ok(Value::Array(tips))
        }
        "getdifficulty" => {
            params_of(&[])?;
            Ok(json!(difficulty(chain.tip_header().bits)))
        }
        "getmempoolinfo" => {
            params_of(&[])?;
            let m = core.mempool();
            Ok(json!({
                "loaded": true, "size": m.len(), "bytes": m.bytes(), "usage": m.bytes(),
                "total_fee": 0.0, "maxmempool": m.max_bytes(), "mempoolminfee": 0.0,
                "minrelaytxfee": 0.0, "incrementalrelayfee": 0.0, "unbroadcastcount": 0,
                "fullrbf": true, "permitbaremultisig": true, "maxdatacarriersize": 100_000,
            }))
        }
        "getrawmempool" => {
            let p = params_of(&["verbose", "mempool_sequence"])?;
            if opt_bool(&p, 0, "verbose")?.unwrap_or(false) {
                return Err(RpcError::new(
                    code::INVALID_PARAMETER,
                    "verbose: powchain transactions carry no fees or ancestry; use verbose=false",
                ));
            }
            let ids: Vec<String> = core
                .mempool()
                .txids()
                .iter()
                .map(ToString::to_string)
                .collect();
            Ok(json!(ids))
        }
        "getconnectioncount" => {
            params_of(&[])?;
            Ok(json!(core.peers().iter().count()))
        }
        "getnetworkinfo" => {
            params_of(&[])?;
            let (inbound, outbound) = core.peers().iter().fold((0, 0), |(i, o), (_, p)| {
                if p.link == crate::protocol::Link::Inbound {
                    (i + 1, o)
                } else {
                    (i, o + 1)
                }
            });
            let net = |name: &str, reachable: bool| {
                json!({"name": name, "limited": !reachable, "reachable": reachable,
                       "proxy": "", "proxy_randomize_credentials": false})
            };
            Ok(json!({
                "version": client_version(),
                "subversion": format!("/powchain:{}/", env!("CARGO_PKG_VERSION")),
                "protocolversion": crate::protocol::messages::PROTOCOL_VERSION,
                "localservices": "0000000000000000",
                "localservicesnames": [],
                "localrelay": true,
                "timeoffset": 0,
                "connections": inbound + outbound,
                "connections_in": inbound,
                "connections_out": outbound,
                "networkactive": true,
                "networks": [net("ipv4", true), net("ipv6", true), net("onion", false),
                             net("i2p", false), net("cjdns", false)],
                "relayfee": 0.0,
                "incrementalfee": 0.0,
                "localaddresses": [],
                "warnings": [],
            }))
        }
        "getpeerinfo" => {
            params_of(&[])?;
            let peers: Vec<Value> = core
                .peers()
                .iter()
                .enumerate()
                .map(|(i, (id, p))| {
                    let inbound = p.link == crate::protocol::Link::Inbound;
                    json!({
                        "id": i, "addr": p.address.as_ref().map_or_else(|| id.to_string(), ToString::to_string),
                        "network": "ipv4", "services": "0000000000000000", "servicesnames": [],
                        "relaytxes": true, "lastsend": 0, "lastrecv": 0, "last_transaction": 0,
                        "last_block": 0, "bytessent": 0, "bytesrecv": 0, "conntime": 0,
                        "timeoffset": 0, "version": crate::protocol::messages::PROTOCOL_VERSION,
                        "subver": "", "inbound": inbound, "bip152_hb_to": false,
                        "bip152_hb_from": false, "permissions": [], "minfeefilter": 0.0,
                        "bytessent_per_msg": {}, "bytesrecv_per_msg": {},
                        "connection_type": if inbound { "inbound" } else { "outbound-full-relay" },
                        "transport_protocol_type": "libp2p", "session_id": id.to_string(),
                    })
                })
                .collect();
            Ok(Value::Array(peers))
        }
        "getmininginfo" => {
            params_of(&[])?;
            let bits = chain.tip_header().bits;
            let next_bits = chain
                .view_at(&chain.tip())
                .and_then(|v| crate::consensus::difficulty::next_work_required(&shared.params, &v))
                .unwrap_or(bits);
            Ok(json!({
                "blocks": chain.height(),
                "bits": bits.to_string(),
                "difficulty": difficulty(bits),
                "target": target_hex(bits),
                "networkhashps": network_hash_ps(chain, 120, None),
                "pooledtx": core.mempool_len(),
                "blockmintxfee": 0.0,
                "chain": chain_name(shared.params.network),
                "next": {"height": chain.height() + 1, "bits": next_bits.to_string(),
                         "difficulty": difficulty(next_bits), "target": target_hex(next_bits)},
                "warnings": [],
            }))
        }
        "getnetworkhashps" => {
            let p = params_of(&["nblocks", "height"])?;
            let n = match p.first() {
                None | Some(Value::Null) => 120,
                Some(v) => v.as_i64().ok_or_else(|| type_error("nblocks", "number"))?,
            };
            let height = match p.get(1) {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let h = v.as_i64().ok_or_else(|| type_error("height", "number"))?;
                    (h >= 0).then(|| u32::try_from(h).unwrap_or(u32::MAX))
                }
            };
            if height.is_some_and(|h| h > chain.height()) {
                return Err(RpcError::new(
                    code::INVALID_PARAMETER,
                    "Block does not exist at specified height",
                ));
            }
            Ok(json!(network_hash_ps(chain, n, height)))
        }
        "uptime" => {
            params_of(&[])?;
            Ok(json!(shared.started.elapsed().as_secs()))
        }
        "help" => {
            let p = params_of(&["command"])?;
            match p.first().and_then(Value::as_str) {
                None => Ok(json!(METHODS.join("\n"))),
                Some(m) if METHODS.contains(&m) => Ok(json!(format!(
                    "{m}\n(see Bitcoin Core's help {m}; powchain serves its v30 shape)"
                ))),
                Some(m) => Ok(json!(format!("help: unknown command: {m}"))),
            }
        }
        // A long name is not echoed back.
        other if other.len() > 64 => Err(RpcError::new(code::METHOD_NOT_FOUND, "Method not found")),
        other => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("Method not found: {other}"),
        )),
    }
}

/// Core's `blockToJSON` for a stored block: the header's fields, sizes, and
/// `tx` as txids, or (`tx_details`, verbosity 2) as objects with each
/// transaction's hex.
pub(super) fn block_json(
    chain: &ChainStore,
    hash: &BlockHash,
    block: &crate::consensus::Block,
    tx_details: bool,
) -> Value {
    let size = block.serialized_size();
    let txs: Vec<Value> = if tx_details {
        block
            .txdata
            .iter()
            .zip(block.txids())
            .map(|(tx, id)| {
                json!({"txid": id.to_string(), "hash": id.to_string(),
                       "size": tx.len(), "vsize": tx.len(), "weight": tx.len() * 4,
                       "hex": hex::encode(tx)})
            })
            .collect()
    } else {
        block.txids().iter().map(|t| json!(t.to_string())).collect()
    };
    let mut v = header_json(chain, hash, &block.header, Some(block.txdata.len()));
    v["size"] = json!(size);
    v["strippedsize"] = json!(size);
    v["weight"] = json!(size * 4);
    v["tx"] = Value::Array(txs);
    v
}

/// Core's `blockheaderToJSON` (and the header part of `blockToJSON`).
pub(super) fn header_json(
    chain: &ChainStore,
    hash: &BlockHash,
    h: &BlockHeader,
    n_tx: Option<usize>,
) -> Value {
    let info: Option<BlockInfo> = chain.block_info(hash);
    let (height, confirmations, chainwork, next) = match &info {
        Some(i) if i.in_best_chain => (
            Some(i.height),
            i64::from(chain.height() - i.height + 1),
            Some(i.chainwork),
            chain
                .info_at_height(i.height + 1)
                .map(|n| n.hash.to_string()),
        ),
        Some(i) => (Some(i.height), -1, Some(i.chainwork), None),
        None => (
            chain.invalid_block(hash).and_then(|b| b.height),
            -1,
            None,
            None,
        ),
    };
    let n_tx = n_tx.or_else(|| chain.block(hash).ok().flatten().map(|b| b.txdata.len()));
    let mut v = json!({
        "hash": hash.to_string(),
        "confirmations": confirmations,
        "height": height,
        "version": h.version,
        "versionHex": format!("{:08x}", h.version),
        "merkleroot": crate::consensus::Txid(h.merkle_root).to_string(),
        "time": h.time,
        "mediantime": chain.median_time_past(hash).unwrap_or(h.time),
        "nonce": h.nonce,
        "bits": h.bits.to_string(),
        "target": target_hex(h.bits),
        "difficulty": difficulty(h.bits),
        "chainwork": chainwork.map_or_else(|| "0".repeat(64), |w| w.to_hex()),
        "nTx": n_tx.unwrap_or(0),
    });
    if h.prev_blockhash != BlockHash::ZERO {
        v["previousblockhash"] = json!(h.prev_blockhash.to_string());
    }
    if let Some(n) = next {
        v["nextblockhash"] = json!(n);
    }
    v
}

/// Waits for a new tip (or for `height`), at most `timeout_ms` (0: the
/// longest, [`MAX_WAIT_MS`]); answers the tip then: `{"hash","height"}`.
async fn wait_for(
    shared: &Arc<Shared>,
    timeout_ms: u64,
    height: Option<u32>,
) -> Result<Value, RpcError> {
    let mut rx = shared.events.subscribe();
    let start = {
        let core = shared.core();
        (core.chain().tip(), core.chain().height())
    };
    let done = |tip: BlockHash, h: u32| match height {
        Some(want) => h >= want,
        None => tip != start.0,
    };
    let timeout = Duration::from_millis(if timeout_ms == 0 {
        MAX_WAIT_MS
    } else {
        timeout_ms.min(MAX_WAIT_MS)
    });
    if !done(start.0, start.1) {
        let _ = tokio::time::timeout(timeout, async {
            loop {
                match rx.recv().await {
                    Ok(crate::protocol::NodeEvent::Tip { hash, height }) if done(hash, height) => {
                        break
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    _ => {}
                }
            }
        })
        .await;
    }
    let core = shared.core();
    Ok(json!({"hash": core.chain().tip().to_string(), "height": core.chain().height()}))
}
