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
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::{now_ms, CoreMsg, Shared};
use crate::api::types::{
    BlockTree, BlockView, ErrorBody, GenerateRequest, Header, HealAck, MiningRequest, OrphanView,
    PartitionAck, PartitionRequest, PeerRequest, Reorg, Stale, Status, Tip, TxAccepted, TxRequest,
};
use crate::chain::BlockInfo;
use crate::consensus::BlockHash;
use crate::protocol::{Command, Input};

type ApiResult<T> = Result<Json<T>, (StatusCode, Json<ErrorBody>)>;

fn err(code: StatusCode, msg: impl Into<String>) -> (StatusCode, Json<ErrorBody>) {
    (code, Json(ErrorBody { error: msg.into() }))
}

/// Who may do what on the API (SPEC "API access").
#[derive(Clone, Debug)]
pub struct ApiAccess {
    /// The cookie's token: every POST needs `Authorization: Bearer <token>`.
    pub token: String,
    /// Serve `/admin/*` (`--admin`); otherwise those routes are 404.
    pub admin: bool,
    /// Which `Host` header values are answered (IP literals, `localhost`,
    /// `--allow-host` names; others get 403: DNS rebinding).
    pub hosts: crate::api::host::HostRule,
}

/// The router over `shared`: routes, then the access rules, then errors
/// turned into JSON `{"error"}`.
pub fn router(shared: Arc<Shared>, access: ApiAccess) -> Router {
    let mut r = Router::new()
        .route("/", get(crate::observer::server::page))
        .route("/status", get(status))
        .route("/tips", get(tips))
        .route("/blocks/{hash}", get(block_by_hash))
        .route("/blocks/height/{h}", get(block_by_height))
        .route("/stale", get(stale))
        .route("/orphans", get(orphans))
        .route("/reorgs", get(reorgs))
        .route("/tree", get(tree))
        .route("/events", get(super::events::events))
        .route("/generate", post(generate))
        .route("/tx", post(submit_tx))
        .route("/metrics", get(metrics));
    if access.admin {
        r = r
            .route("/admin/mining", post(admin_mining))
            .route("/admin/partition", post(admin_partition))
            .route("/admin/heal", post(admin_heal))
            .route("/admin/peer", post(admin_peer));
    }
    r.fallback(|| async { err(StatusCode::NOT_FOUND, "no such route") })
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(access),
            check_access,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// Largest request body, bytes (a transaction's hex plus JSON).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

async fn check_access(
    State(access): State<Arc<ApiAccess>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if access
        .hosts
        .refuses(req.headers().get(header::HOST).map(|h| h.as_bytes()))
    {
        return err(StatusCode::FORBIDDEN, "Host header names another server").into_response();
    }
    if req.method() == axum::http::Method::POST {
        let want = format!("Bearer {}", access.token);
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), want.as_bytes())) {
            return err(
                StatusCode::UNAUTHORIZED,
                "POST needs Authorization: Bearer <token from api.cookie>",
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// Compares without an early exit (credentials).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Turns axum's plain-text rejections (bad JSON, wrong content type, body
/// too large, bad path) into `{"error": "..."}` with the same status.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let msg = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.trim().to_string()
    };
    err(status, msg).into_response()
}

/// Serves the API on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, access: ApiAccess) {
    tokio::spawn(super::events::render(Arc::clone(&shared)));
    if let Err(e) = axum::serve(listener, router(shared, access)).await {
        tracing::error!("HTTP API stopped: {e}");
    }
}

async fn status(State(s): State<Arc<Shared>>) -> Json<Status> {
    Json(s.status())
}

async fn tips(State(s): State<Arc<Shared>>) -> Json<Vec<Tip>> {
    let core = s.core();
    Json(core.chain().chain_tips().iter().map(Tip::from).collect())
}

fn block_view(s: &Shared, info: &BlockInfo) -> ApiResult<BlockView> {
    let core = s.core();
    let block = core
        .chain()
        .block(&info.hash)
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "block body not stored"))?;
    let miner_id = core.chain().miner_id(&info.hash);
    Ok(Json(BlockView {
        header: Header::of(&info.header),
        height: info.height,
        chainwork: info.chainwork.to_hex(),
        in_best_chain: info.in_best_chain,
        received_ms: info.received_ms,
        miner_id,
        size: block.serialized_size(),
        txids: block.txids().iter().map(ToString::to_string).collect(),
        raw: hex::encode(block.encode()),
    }))
}

async fn block_by_hash(
    State(s): State<Arc<Shared>>,
    Path(hash): Path<String>,
) -> ApiResult<BlockView> {
    let hash =
        BlockHash::from_hex(&hash).map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))?;
    blocking(move || {
        let info = s
            .core()
            .chain()
            .block_info(&hash)
            .ok_or_else(|| err(StatusCode::NOT_FOUND, format!("block {hash} not found")))?;
        block_view(&s, &info)
    })
    .await
}

async fn block_by_height(State(s): State<Arc<Shared>>, Path(h): Path<u32>) -> ApiResult<BlockView> {
    blocking(move || {
        let info = s.core().chain().info_at_height(h).ok_or_else(|| {
            err(
                StatusCode::NOT_FOUND,
                format!("no block at height {h} on the best chain"),
            )
        })?;
        block_view(&s, &info)
    })
    .await
}

/// Runs a handler that reads blocks from the store on tokio's blocking
/// pool, so store reads never hold up the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// `GET /stale?limit=N` query: at most `N` stale blocks, newest first
/// (1..=[`MAX_STALE_LIST`], default [`MAX_STALE_LIST`]).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StaleQuery {
    limit: Option<usize>,
}

/// Most stale blocks one `GET /stale` lists (about 2 MB of JSON); the
/// count of all of them is `status.stale`.
pub const MAX_STALE_LIST: usize = 10_000;

async fn stale(
    State(s): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<StaleQuery>,
) -> ApiResult<Vec<Stale>> {
    let limit = q.limit.unwrap_or(MAX_STALE_LIST);
    if !(1..=MAX_STALE_LIST).contains(&limit) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            format!("limit must be 1..={MAX_STALE_LIST}"),
        ));
    }
    // From the index: block infos and miner ids, no block read.
    let core = s.core();
    let chain = core.chain();
    Ok(Json(
        chain
            .stale_blocks()
            .iter()
            .take(limit)
            .map(|b| Stale::of(b, chain.miner_id(&b.hash)))
            .collect(),
    ))
}

async fn orphans(State(s): State<Arc<Shared>>) -> Json<Vec<OrphanView>> {
    let core = s.core();
    let now = now_ms();
    Json(
        core.chain()
            .orphans()
            .list()
            .iter()
            .map(|o| OrphanView::of(o, now))
            .collect(),
    )
}

async fn reorgs(State(s): State<Arc<Shared>>) -> Json<Vec<Reorg>> {
    let core = s.core();
    Json(core.chain().reorgs())
}

/// `GET /tree` query: the height window (both optional, inclusive).
#[derive(Debug, serde::Deserialize)]
struct TreeQuery {
    from_height: Option<u32>,
    to_height: Option<u32>,
    /// `false`: list every best-chain block of the window (no hidden
    /// runs), as the testnet observer asks before merging.
    collapse: Option<bool>,
}

/// Heights one `GET /tree` may span: bounds the work and the answer.
pub const MAX_TREE_SPAN: u32 = 10_000;

/// Blocks one `GET /tree` answer may hold (about 4 MB of JSON): a window
/// with more (many stale or invalid blocks in it) is refused with 400 and
/// asked to be narrower.
pub const MAX_TREE_BLOCKS: usize = 20_000;

async fn tree(
    State(s): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<TreeQuery>,
) -> ApiResult<BlockTree> {
    if let (Some(a), Some(b)) = (q.from_height, q.to_height) {
        if a > b {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "from_height is above to_height",
            ));
        }
        if b - a >= MAX_TREE_SPAN {
            return Err(err(
                StatusCode::BAD_REQUEST,
                format!("at most {MAX_TREE_SPAN} heights per request"),
            ));
        }
    }
    let to = q
        .to_height
        .or_else(|| q.from_height.map(|f| f.saturating_add(MAX_TREE_SPAN - 1)));
    // From the index (miner ids included): no block read.
    let tree = {
        let core = s.core();
        core.chain()
            .tree_with(q.from_height, to, q.collapse.unwrap_or(true))
    };
    if tree.blocks.len() > MAX_TREE_BLOCKS {
        return Err(err(
            StatusCode::BAD_REQUEST,
            format!(
                "the window holds {} blocks, more than {MAX_TREE_BLOCKS}: ask for fewer heights",
                tree.blocks.len()
            ),
        ));
    }
    Ok(Json(tree))
}

fn shutting_down() -> (StatusCode, Json<ErrorBody>) {
    err(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down")
}

async fn generate(
    State(s): State<Arc<Shared>>,
    Json(req): Json<GenerateRequest>,
) -> ApiResult<Vec<String>> {
    if req.blocks == 0 || req.blocks > 10_000 {
        return Err(err(StatusCode::BAD_REQUEST, "blocks must be 1..=10000"));
    }
    let (tx, rx) = oneshot::channel();
    s.commands
        .send(CoreMsg::Generate(req.blocks, None, tx))
        .map_err(|_| shutting_down())?;
    match rx.await {
        Ok(Ok(hashes)) => Ok(Json(hashes.iter().map(ToString::to_string).collect())),
        Ok(Err(e)) => Err(err(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
        Err(_) => Err(shutting_down()),
    }
}

async fn submit_tx(
    State(s): State<Arc<Shared>>,
    Json(req): Json<TxRequest>,
) -> ApiResult<TxAccepted> {
    let bytes = hex::decode(req.hex.trim())
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("bad hex: {e}")))?;
    let (tx, rx) = oneshot::channel();
    s.commands
        .send(CoreMsg::SubmitTx(bytes, tx))
        .map_err(|_| shutting_down())?;
    match rx.await {
        Ok(Ok(txid)) => Ok(Json(TxAccepted {
            txid: txid.to_string(),
        })),
        Ok(Err(e)) => Err(err(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())),
        Err(_) => Err(shutting_down()),
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

async fn admin_mining(
    State(s): State<Arc<Shared>>,
    Json(req): Json<MiningRequest>,
) -> ApiResult<MiningRequest> {
    s.commands
        .send(CoreMsg::Input(Input::Command(Command::SetMining(
            req.enabled,
        ))))
        .map_err(|_| shutting_down())?;
    Ok(Json(req))
}

async fn admin_partition(
    State(s): State<Arc<Shared>>,
    Json(req): Json<PartitionRequest>,
) -> ApiResult<PartitionAck> {
    let peers = req
        .peers
        .iter()
        .map(|p| {
            p.parse::<PeerId>()
                .map_err(|e| err(StatusCode::BAD_REQUEST, format!("bad peer id {p}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let blocked = peers.len();
    s.commands
        .send(CoreMsg::Input(Input::Command(Command::Partition(peers))))
        .map_err(|_| shutting_down())?;
    Ok(Json(PartitionAck { blocked }))
}

async fn admin_peer(
    State(s): State<Arc<Shared>>,
    Json(req): Json<PeerRequest>,
) -> ApiResult<PeerRequest> {
    let addr: libp2p::Multiaddr = req
        .addr
        .parse()
        .map_err(|e| err(StatusCode::BAD_REQUEST, format!("bad multiaddr: {e}")))?;
    s.commands
        .send(CoreMsg::Input(Input::Command(Command::AddPeer(addr))))
        .map_err(|_| shutting_down())?;
    Ok(Json(req))
}

async fn admin_heal(State(s): State<Arc<Shared>>) -> ApiResult<HealAck> {
    s.commands
        .send(CoreMsg::Input(Input::Command(Command::Heal)))
        .map_err(|_| shutting_down())?;
    Ok(Json(HealAck { healed: true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac"));
    }
}
