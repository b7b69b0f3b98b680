//! The HTTP API (SPEC "Node HTTP API"), JSON over axum, bound to
//! 127.0.0.1 unless told otherwise. Extra, non-SPEC routes under `/admin`
//! drive the local testnet (mining switch, partition, heal).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use libp2p::PeerId;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{now_ms, CoreMsg, Shared};
use crate::chain::BlockInfo;
use crate::consensus::{BlockHash, Target};
use crate::protocol::{Command, Input};

type ApiResult = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn err(code: StatusCode, msg: impl Into<String>) -> (StatusCode, Json<Value>) {
    (code, Json(json!({ "error": msg.into() })))
}

/// The router over `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/tips", get(tips))
        .route("/blocks/{hash}", get(block_by_hash))
        .route("/blocks/height/{h}", get(block_by_height))
        .route("/stale", get(stale))
        .route("/orphans", get(orphans))
        .route("/reorgs", get(reorgs))
        .route("/generate", post(generate))
        .route("/tx", post(submit_tx))
        .route("/metrics", get(metrics))
        .route("/admin/mining", post(admin_mining))
        .route("/admin/partition", post(admin_partition))
        .route("/admin/heal", post(admin_heal))
        .with_state(shared)
}

/// Serves the API on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    if let Err(e) = axum::serve(listener, router(shared)).await {
        tracing::error!("HTTP API stopped: {e}");
    }
}

async fn status(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(s.status_json())
}

async fn tips(State(s): State<Arc<Shared>>) -> Json<Value> {
    let core = s.core();
    let chain = core.chain();
    Json(serde_json::to_value(chain.chain_tips()).unwrap_or(Value::Null))
}

/// JSON object for a header (SPEC `header` shape: hash, version,
/// prev_blockhash, merkle_root, time, bits, nonce, target, work; plus
/// `pow_valid`). Hashes in display hex, `bits` as 8 hex digits, target and
/// work as 64 hex digits.
#[must_use]
pub fn header_json(h: &crate::consensus::BlockHeader) -> Value {
    let target = Target::from_compact(h.bits);
    json!({
        "hash": h.block_hash().to_string(),
        "version": h.version,
        "prev_blockhash": h.prev_blockhash.to_string(),
        "merkle_root": h.merkle_root_hex(),
        "time": h.time,
        "bits": h.bits.to_string(),
        "nonce": h.nonce,
        "target": target.map(|t| t.to_hex()).unwrap_or_default(),
        "work": target.map(|t| t.to_work().to_hex()).unwrap_or_default(),
        "pow_valid": target.is_ok_and(|t| t.is_met_by(&h.block_hash())),
    })
}

fn block_json(s: &Shared, info: &BlockInfo) -> ApiResult {
    let core = s.core();
    let chain = core.chain();
    let block = chain
        .block(&info.hash)
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "block body not stored"))?;
    let h = &info.header;
    let miner_id = crate::consensus::Coinbase::decode(&block.txdata[0])
        .ok()
        .map(|c| c.miner_id);
    let mut v = header_json(h);
    let extra = json!({
        "height": info.height,
        "chainwork": info.chainwork.to_hex(),
        "in_best_chain": info.in_best_chain,
        "received_ms": info.received_ms,
        "miner_id": miner_id,
        "size": block.serialized_size(),
        "txids": block.txids().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "raw": hex::encode(block.encode()),
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    Ok(Json(v))
}

async fn block_by_hash(State(s): State<Arc<Shared>>, Path(hash): Path<String>) -> ApiResult {
    let hash =
        BlockHash::from_hex(&hash).map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))?;
    let info = s
        .core()
        .chain()
        .block_info(&hash)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("block {hash} not found")))?;
    block_json(&s, &info)
}

async fn block_by_height(State(s): State<Arc<Shared>>, Path(h): Path<u32>) -> ApiResult {
    let info = s.core().chain().info_at_height(h).ok_or_else(|| {
        err(
            StatusCode::NOT_FOUND,
            format!("no block at height {h} on the best chain"),
        )
    })?;
    block_json(&s, &info)
}

async fn stale(State(s): State<Arc<Shared>>) -> Json<Value> {
    let core = s.core();
    let chain = core.chain();
    let list: Vec<Value> = chain
        .stale_blocks()
        .iter()
        .map(|b| {
            json!({
                "hash": b.hash.to_string(),
                "height": b.height,
                "miner_id": chain.miner_id(&b.hash),
                "seen_ms": b.received_ms,
                "prev_blockhash": b.header.prev_blockhash.to_string(),
            })
        })
        .collect();
    Json(Value::Array(list))
}

async fn orphans(State(s): State<Arc<Shared>>) -> Json<Value> {
    let core = s.core();
    let chain = core.chain();
    let now = now_ms() / 1000;
    let list: Vec<Value> = chain
        .orphans()
        .list()
        .iter()
        .map(|o| {
            json!({
                "hash": o.hash.to_string(),
                "prev_blockhash": o.block.header.prev_blockhash.to_string(),
                "from_peer": o.from_peer,
                "age_secs": now.saturating_sub(o.received_secs),
                "size": o.size,
            })
        })
        .collect();
    Json(Value::Array(list))
}

async fn reorgs(State(s): State<Arc<Shared>>) -> Json<Value> {
    let core = s.core();
    let chain = core.chain();
    Json(serde_json::to_value(chain.reorgs()).unwrap_or(Value::Null))
}

#[derive(Deserialize)]
struct GenerateReq {
    blocks: u32,
}

async fn generate(State(s): State<Arc<Shared>>, Json(req): Json<GenerateReq>) -> ApiResult {
    if req.blocks == 0 || req.blocks > 10_000 {
        return Err(err(StatusCode::BAD_REQUEST, "blocks must be 1..=10000"));
    }
    let (tx, rx) = oneshot::channel();
    s.commands
        .send(CoreMsg::Generate(req.blocks, tx))
        .map_err(|_| err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"))?;
    match rx.await {
        Ok(Ok(hashes)) => Ok(Json(json!(hashes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()))),
        Ok(Err(e)) => Err(err(StatusCode::BAD_REQUEST, e)),
        Err(_) => Err(err(
            StatusCode::SERVICE_UNAVAILABLE,
            "node is shutting down",
        )),
    }
}

#[derive(Deserialize)]
struct TxReq {
    hex: String,
}

async fn submit_tx(State(s): State<Arc<Shared>>, Json(req): Json<TxReq>) -> ApiResult {
    let bytes = hex::decode(req.hex.trim())
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("bad hex: {e}")))?;
    let (tx, rx) = oneshot::channel();
    s.commands
        .send(CoreMsg::SubmitTx(bytes, tx))
        .map_err(|_| err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"))?;
    match rx.await {
        Ok(Ok(txid)) => Ok(Json(json!({ "txid": txid.to_string() }))),
        Ok(Err(e)) => Err(err(StatusCode::BAD_REQUEST, e)),
        Err(_) => Err(err(
            StatusCode::SERVICE_UNAVAILABLE,
            "node is shutting down",
        )),
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct MiningReq {
    enabled: bool,
}

async fn admin_mining(State(s): State<Arc<Shared>>, Json(req): Json<MiningReq>) -> ApiResult {
    s.commands
        .send(CoreMsg::Input(Input::Command(Command::SetMining(
            req.enabled,
        ))))
        .map_err(|_| err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"))?;
    Ok(Json(json!({ "mining": req.enabled })))
}

#[derive(Deserialize)]
struct PartitionReq {
    peers: Vec<String>,
}

async fn admin_partition(State(s): State<Arc<Shared>>, Json(req): Json<PartitionReq>) -> ApiResult {
    let peers = req
        .peers
        .iter()
        .map(|p| {
            p.parse::<PeerId>()
                .map_err(|e| err(StatusCode::BAD_REQUEST, format!("bad peer id {p}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let n = peers.len();
    s.commands
        .send(CoreMsg::Input(Input::Command(Command::Partition(peers))))
        .map_err(|_| err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"))?;
    Ok(Json(json!({ "blocked": n })))
}

async fn admin_heal(State(s): State<Arc<Shared>>) -> ApiResult {
    s.commands
        .send(CoreMsg::Input(Input::Command(Command::Heal)))
        .map_err(|_| err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down"))?;
    Ok(Json(json!({ "healed": true })))
}
