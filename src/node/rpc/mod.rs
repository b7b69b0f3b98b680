//! Bitcoin Core's JSON-RPC and REST interfaces (SPEC "Bitcoin Core
//! interfaces"), so Core RPC clients, fork-observer and scenario scripts
//! work against powchain unchanged.
//!
//! The envelope follows Core v28+ (`src/httprpc.cpp`, `src/rpc/request.cpp`):
//! JSON-RPC 2.0 requests get HTTP 200 with only `result` or `error` (204 for
//! a notification); legacy 1.0 requests get both fields and HTTP 500 on an
//! error (404 for -32601, 400 for -32600); batches get 200. Access is Core's:
//! the peer's address must be in `--rpc-allow-ip` (else 403), then HTTP
//! Basic credentials from `<data dir>/.cookie` or `--rpc-user` /
//! `--rpc-password` (else 401 with `WWW-Authenticate: Basic
//! realm="jsonrpc"`). REST (`--rest`) is GET only and needs no credentials,
//! as Core's `-rest`.

mod convert;
mod methods;
mod mining;
mod rest;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use ipnet::IpNet;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::Shared;

/// Core's cookie user name (`__cookie__:<password>` in `.cookie`).
pub const COOKIE_USER: &str = "__cookie__";
/// The cookie file in the data dir, as Core names it.
pub const RPC_COOKIE_FILE: &str = ".cookie";
/// Largest request body, bytes: a `submitblock` of the largest block in
/// hex plus JSON (Core's limit is 32 MB; powchain blocks are smaller).
pub const MAX_RPC_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most requests in one batch; a larger batch is refused whole with
/// -32600 before any is run.
pub const MAX_BATCH: usize = 1_000;

/// Core's RPC error codes (`src/rpc/protocol.h`).
pub mod code {
    /// `RPC_MISC_ERROR`.
    pub const MISC: i32 = -1;
    /// `RPC_TYPE_ERROR`.
    pub const TYPE: i32 = -3;
    /// `RPC_INVALID_ADDRESS_OR_KEY` (also "Block not found").
    pub const INVALID_ADDRESS_OR_KEY: i32 = -5;
    /// `RPC_INVALID_PARAMETER`.
    pub const INVALID_PARAMETER: i32 = -8;
    /// `RPC_DESERIALIZATION_ERROR`.
    pub const DESERIALIZATION: i32 = -22;
    /// `RPC_VERIFY_REJECTED`.
    pub const VERIFY_REJECTED: i32 = -26;
    /// `RPC_IN_WARMUP`.
    pub const IN_WARMUP: i32 = -28;
    /// `RPC_INVALID_REQUEST`.
    pub const INVALID_REQUEST: i32 = -32600;
    /// `RPC_METHOD_NOT_FOUND`.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// `RPC_INVALID_PARAMS`.
    pub const INVALID_PARAMS: i32 = -32602;
    /// `RPC_PARSE_ERROR`.
    pub const PARSE: i32 = -32700;
}

/// An RPC error: Core's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    /// Core's code ([`code`]).
    pub code: i32,
    /// The message.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

/// Who may use the RPC server and how it answers.
#[derive(Clone, Debug)]
pub struct RpcAccess {
    /// `user:password` accepted in HTTP Basic auth (the cookie's, or
    /// `--rpc-user`/`--rpc-password`).
    pub credentials: String,
    /// Networks whose addresses may connect (`--rpc-allow-ip`; loopback by
    /// default).
    pub allow: Vec<IpNet>,
    /// Serve `/rest/*` (`--rest`).
    pub rest: bool,
}

struct RpcState {
    shared: Arc<Shared>,
    access: RpcAccess,
}

/// The RPC (and REST) router.
pub fn router(shared: Arc<Shared>, access: RpcAccess) -> Router {
    let rest = access.rest;
    let state = Arc::new(RpcState { shared, access });
    let mut r = Router::new()
        .route("/", post(rpc))
        .route("/wallet/{name}", post(rpc));
    if rest {
        r = r.merge(rest::routes());
    }
    r.fallback(|| async { (StatusCode::NOT_FOUND, "") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            check_access,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_RPC_BODY_BYTES))
        .with_state(state)
}

/// Binds `config.addr`, writes Core's cookie in `data_dir` (unless
/// `--rpc-user` is given), records the bound address in `status.rpc`,
/// announces it on stderr (`powchain: JSON-RPC on ADDR`) and spawns
/// [`serve`]; the task runs until aborted.
///
/// # Errors
/// [`super::NodeError::Api`] when the address cannot be bound, `Io` when
/// the cookie cannot be written.
pub async fn start(
    config: &crate::config::RpcConfig,
    data_dir: &std::path::Path,
    shared: &Arc<Shared>,
) -> Result<tokio::task::JoinHandle<()>, super::NodeError> {
    use super::NodeError;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| NodeError::Api(format!("bind JSON-RPC {}: {e}", config.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Api(e.to_string()))?;
    let credentials = match &config.user {
        Some((u, p)) => format!("{u}:{p}"),
        None => write_cookie(data_dir)?,
    };
    shared.info.lock().expect("info lock").rpc = Some(addr.to_string());
    tracing::info!(rpc = %addr, rest = config.rest, "JSON-RPC listening");
    eprintln!("powchain: JSON-RPC on {addr}");
    let access = RpcAccess {
        credentials,
        allow: config.allow.clone(),
        rest: config.rest,
    };
    Ok(tokio::spawn(serve(listener, Arc::clone(shared), access)))
}

/// Serves JSON-RPC (and REST) on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, access: RpcAccess) {
    let app = router(shared, access).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("JSON-RPC server stopped: {e}");
    }
}

/// Core's order: the address first (403), then the credentials (401);
/// REST needs no credentials.
async fn check_access(
    State(state): State<Arc<RpcState>>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let ip = from.ip().to_canonical();
    if !state.access.allow.iter().any(|net| net.contains(&ip)) {
        return (StatusCode::FORBIDDEN, "").into_response();
    }
    if req.uri().path().starts_with("/rest/") {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        });
    let ok = given
        .is_some_and(|g| super::api::constant_time_eq(&g, state.access.credentials.as_bytes()));
    if !ok {
        // Core waits 250 ms before answering a wrong password (brute force).
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let mut resp = (StatusCode::UNAUTHORIZED, "").into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"jsonrpc\""),
        );
        return resp;
    }
    next.run(req).await
}

/// One request's protocol version, as Core tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    Legacy,
    V2,
}

async fn rpc(State(state): State<Arc<RpcState>>, body: axum::body::Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &legacy_error(Value::Null, &RpcError::new(code::PARSE, "Parse error")),
        );
    };
    match v {
        Value::Array(batch) => {
            if batch.len() > MAX_BATCH {
                let e = RpcError::new(
                    code::INVALID_REQUEST,
                    format!("a batch of {} requests: at most {MAX_BATCH}", batch.len()),
                );
                return reply(StatusCode::BAD_REQUEST, &legacy_error(Value::Null, &e));
            }
            let mut out = Vec::with_capacity(batch.len());
            for item in batch {
                let (_, answer) = run_one(&state, item).await;
                if let Some(a) = answer {
                    out.push(a);
                }
            }
            reply(StatusCode::OK, &Value::Array(out))
        }
        Value::Object(_) => match run_one(&state, v).await {
            (_, None) => StatusCode::NO_CONTENT.into_response(),
            (status, Some(a)) => reply(status, &a),
        },
        _ => reply(
            StatusCode::BAD_REQUEST,
            &legacy_error(
                Value::Null,
                &RpcError::new(code::INVALID_REQUEST, "Top-level object parse error"),
            ),
        ),
    }
}

fn reply(status: StatusCode, v: &Value) -> Response {
    let mut resp = (status, v.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn legacy_error(id: Value, e: &RpcError) -> Value {
    json!({"result": null, "error": {"code": e.code, "message": e.message}, "id": id})
}

/// Runs one request; the HTTP status it would get alone and its answer
/// (`None` for a JSON-RPC 2.0 notification).
async fn run_one(state: &Arc<RpcState>, req: Value) -> (StatusCode, Option<Value>) {
    let Value::Object(obj) = req else {
        let e = RpcError::new(code::INVALID_REQUEST, "Invalid Request object");
        return (StatusCode::BAD_REQUEST, Some(legacy_error(Value::Null, &e)));
    };
    let id = obj.get("id").cloned();
    let version = match obj.get("jsonrpc") {
        None => Version::Legacy,
        Some(Value::String(s)) if s == "1.0" => Version::Legacy,
        Some(Value::String(s)) if s == "2.0" => Version::V2,
        Some(_) => {
            let e = RpcError::new(code::INVALID_REQUEST, "JSON-RPC version not supported");
            return (
                StatusCode::BAD_REQUEST,
                Some(legacy_error(id.unwrap_or(Value::Null), &e)),
            );
        }
    };
    let result = match (obj.get("method"), obj.get("params")) {
        (Some(Value::String(m)), params) => match params {
            None | Some(Value::Null) => Ok((m.clone(), Params::Positional(Vec::new()))),
            Some(Value::Array(a)) => Ok((m.clone(), Params::Positional(a.clone()))),
            Some(Value::Object(o)) => Ok((m.clone(), Params::Named(o.clone()))),
            Some(_) => Err(RpcError::new(
                code::INVALID_REQUEST,
                "Params must be an array or object",
            )),
        },
        (None, _) => Err(RpcError::new(code::INVALID_REQUEST, "Missing method")),
        (Some(_), _) => Err(RpcError::new(
            code::INVALID_REQUEST,
            "Method must be a string",
        )),
    };
    let result = match result {
        Ok((method, params)) => {
            let shared = Arc::clone(&state.shared);
            methods::call(shared, &method, params).await
        }
        Err(e) => Err(e),
    };
    if version == Version::V2 && id.is_none() {
        return (StatusCode::NO_CONTENT, None);
    }
    let id = id.unwrap_or(Value::Null);
    match (version, result) {
        (Version::V2, Ok(r)) => (
            StatusCode::OK,
            Some(json!({"jsonrpc": "2.0", "result": r, "id": id})),
        ),
        (Version::V2, Err(e)) => (
            StatusCode::OK,
            Some(
                json!({"jsonrpc": "2.0", "error": {"code": e.code, "message": e.message}, "id": id}),
            ),
        ),
        (Version::Legacy, Ok(r)) => (
            StatusCode::OK,
            Some(json!({"result": r, "error": null, "id": id})),
        ),
        (Version::Legacy, Err(e)) => {
            let status = match e.code {
                code::INVALID_REQUEST => StatusCode::BAD_REQUEST,
                code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, Some(legacy_error(id, &e)))
        }
    }
}

/// A request's parameters: by position or by name.
#[derive(Debug, Clone)]
pub enum Params {
    /// `"params": [...]`.
    Positional(Vec<Value>),
    /// `"params": {...}`.
    Named(serde_json::Map<String, Value>),
}

impl Params {
    /// The parameters in the order of `names`, named ones placed by name
    /// (Core's `transformNamedArguments`); an unknown name is an error.
    ///
    /// # Errors
    /// -8 for an unknown named parameter, -1 for too many.
    pub fn in_order(self, method: &str, names: &[&str]) -> Result<Vec<Value>, RpcError> {
        match self {
            Params::Positional(v) => {
                if v.len() > names.len() {
                    return Err(RpcError::new(
                        code::MISC,
                        format!(
                            "{method}: takes at most {} arguments, got {} (see help {method})",
                            names.len(),
                            v.len()
                        ),
                    ));
                }
                Ok(v)
            }
            Params::Named(m) => {
                if let Some(k) = m.keys().find(|k| !names.contains(&k.as_str())) {
                    return Err(RpcError::new(
                        code::INVALID_PARAMETER,
                        format!("Unknown named parameter {k}"),
                    ));
                }
                let mut out = vec![Value::Null; names.len()];
                for (i, n) in names.iter().enumerate() {
                    if let Some(v) = m.get(*n) {
                        out[i] = v.clone();
                    }
                }
                while out.last() == Some(&Value::Null) {
                    out.pop();
                }
                Ok(out)
            }
        }
    }
}

/// Writes Core's cookie (`__cookie__:<64 hex>`, mode 0600) and returns the
/// `user:password` it holds.
///
/// # Errors
/// The node error of the write.
pub fn write_cookie(data_dir: &std::path::Path) -> Result<String, super::NodeError> {
    let creds = format!("{COOKIE_USER}:{}", hex::encode(rand::random::<[u8; 32]>()));
    super::key::write_private_file(&data_dir.join(RPC_COOKIE_FILE), creds.as_bytes())?;
    Ok(creds)
}
