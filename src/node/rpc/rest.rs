//! Core's REST interface (`-rest`; `src/rest.cpp`): GET only, no
//! credentials, on the RPC port. Formats `.bin` (raw bytes), `.hex` (hex
//! and a newline) and `.json` (the RPC's objects).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use super::{methods, Params, RpcState};
use crate::consensus::BlockHash;

/// Most headers one `/rest/headers` request returns (Core's
/// `MAX_REST_HEADERS_RESULTS`).
pub const MAX_REST_HEADERS: u32 = 2_000;
/// Headers returned when `?count=` is absent (Core's default).
pub const DEFAULT_REST_HEADERS: u32 = 5;

pub(super) fn routes() -> Router<Arc<RpcState>> {
    Router::new()
        .route("/rest/headers/{what}", get(headers_new))
        .route("/rest/headers/{count}/{what}", get(headers_old))
        .route("/rest/block/{what}", get(block))
        .route("/rest/blockhashbyheight/{what}", get(hash_by_height))
        .route("/rest/chaininfo.json", get(chaininfo))
        .route(
            "/rest/{*rest}",
            get(|| async { text(StatusCode::NOT_FOUND, "not found\r\n") }),
        )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Bin,
    Hex,
    Json,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// `name.ext` into the name and its format (Core's `ParseDataFormat`).
fn split(what: &str) -> Result<(&str, Format), RestError> {
    let (name, ext) = what.rsplit_once('.').unwrap_or((what, ""));
    let f = match ext {
        "bin" => Format::Bin,
        "hex" => Format::Hex,
        "json" => Format::Json,
        _ => {
            return Err(RestError(
                StatusCode::NOT_FOUND,
                "output format not found (available: .bin, .hex, .json)".into(),
            ))
        }
    };
    Ok((name, f))
}

fn parse_hash(s: &str) -> Result<BlockHash, RestError> {
    let bad = || {
        RestError(
            StatusCode::BAD_REQUEST,
            format!("Invalid hash: {}", s.chars().take(80).collect::<String>()),
        )
    };
    if s.len() != 64 {
        return Err(bad());
    }
    BlockHash::from_hex(s).map_err(|_| bad())
}

/// A REST refusal: Core's status and its one-line text.
struct RestError(StatusCode, String);

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        text(self.0, format!("{}\r\n", self.1))
    }
}

fn respond(f: Format, bytes: Vec<u8>, json: Value) -> Response {
    match f {
        Format::Bin => {
            let mut r = bytes.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        Format::Hex => text(StatusCode::OK, format!("{}\n", hex::encode(bytes))),
        Format::Json => {
            let mut r = (json.to_string() + "\n").into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
    }
}

#[derive(serde::Deserialize)]
struct CountQuery {
    count: Option<String>,
}

async fn headers_new(
    State(s): State<Arc<RpcState>>,
    Path(what): Path<String>,
    Query(q): Query<CountQuery>,
) -> Response {
    let count = q.count.unwrap_or_else(|| DEFAULT_REST_HEADERS.to_string());
    headers(&s, &count, &what).await
}

async fn headers_old(
    State(s): State<Arc<RpcState>>,
    Path((count, what)): Path<(String, String)>,
) -> Response {
    headers(&s, &count, &what).await
}

/// Headers from `hash` along the active chain towards the tip, at most
/// `count` (1 to 2,000; Core answers 400 otherwise). A hash off the
/// active chain gives none, as Core.
async fn headers(s: &Arc<RpcState>, count: &str, what: &str) -> Response {
    let (name, f) = match split(what) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let n = match count.parse::<u32>() {
        Ok(n) if (1..=MAX_REST_HEADERS).contains(&n) => n,
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                "Header count is invalid or out of acceptable range (1-{MAX_REST_HEADERS}): {}\r\n",
                count.chars().take(20).collect::<String>()
            ),
            )
        }
    };
    let hash = match parse_hash(name) {
        Ok(h) => h,
        Err(r) => return r.into_response(),
    };
    let shared = Arc::clone(&s.shared);
    tokio::task::spawn_blocking(move || {
        let core = shared.core();
        let chain = core.chain();
        let mut bytes = Vec::new();
        let mut json = Vec::new();
        if let Some(start) = chain.block_info(&hash).filter(|i| i.in_best_chain) {
            for h in start.height..start.height.saturating_add(n) {
                let Some(i) = chain.info_at_height(h) else {
                    break;
                };
                bytes.extend_from_slice(&i.header.encode());
                if f == Format::Json {
                    json.push(methods::header_json(chain, &i.hash, &i.header, None));
                }
            }
        }
        respond(f, bytes, Value::Array(json))
    })
    .await
    .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\r\n"))
}

async fn block(State(s): State<Arc<RpcState>>, Path(what): Path<String>) -> Response {
    let (name, f) = match split(&what) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let hash = match parse_hash(name) {
        Ok(h) => h,
        Err(r) => return r.into_response(),
    };
    let shared = Arc::clone(&s.shared);
    tokio::task::spawn_blocking(move || {
        let core = shared.core();
        let chain = core.chain();
        let Ok(Some(block)) = chain.block(&hash) else {
            return text(StatusCode::NOT_FOUND, format!("{hash} not found\r\n"));
        };
        let json = if f == Format::Json {
            methods::block_json(chain, &hash, &block, true)
        } else {
            Value::Null
        };
        respond(f, block.encode(), json)
    })
    .await
    .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\r\n"))
}

async fn hash_by_height(State(s): State<Arc<RpcState>>, Path(what): Path<String>) -> Response {
    let (name, f) = match split(&what) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let Ok(height) = name.parse::<u32>() else {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid height: {}\r\n",
                name.chars().take(20).collect::<String>()
            ),
        );
    };
    let info = s.shared.core().chain().info_at_height(height);
    let Some(info) = info else {
        return text(StatusCode::NOT_FOUND, "Block height out of range\r\n");
    };
    match f {
        Format::Hex => text(StatusCode::OK, format!("{}\n", info.hash)),
        _ => respond(
            f,
            info.hash.0.to_vec(),
            serde_json::json!({"blockhash": info.hash.to_string()}),
        ),
    }
}

async fn chaininfo(State(s): State<Arc<RpcState>>) -> Response {
    let shared = Arc::clone(&s.shared);
    tokio::task::spawn_blocking(move || {
        match methods::read_only(&shared, "getblockchaininfo", Params::Positional(Vec::new())) {
            Ok(v) => respond(Format::Json, Vec::new(), v),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{}\r\n", e.message),
            ),
        }
    })
    .await
    .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\r\n"))
}
