//! The observer's HTTP server (`powchain testnet --ui ADDR`, `powchain
//! replay DIR --ui ADDR`): the page, the merged `/tree`, the recorded
//! `/log` and the merged live `/events`. GET only, bound where asked
//! (127.0.0.1 by default in the CLI).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use futures::StreamExt;

use super::{merge_trees, MergedTree, NodeRef, Recorder, PAGE};
use crate::api::host::HostRule;
use crate::api::types::BlockTree;

/// The start of the stderr line that gives the page's address
/// (`powchain: fork observer on http://ADDR/`), printed by `testnet --ui`
/// and `replay` once the server accepts connections.
pub const OBSERVER_LINE: &str = "powchain: fork observer on ";

/// Where the tree comes from.
#[derive(Clone)]
pub enum TreeSource {
    /// Running nodes: each `/tree` is read at each request.
    Live(Vec<NodeRef>),
    /// A finished run's final trees (replay).
    Saved(Vec<(String, BlockTree)>),
}

impl TreeSource {
    /// The merged tree now (live: nodes that do not answer are left out).
    #[must_use]
    pub fn merged(&self) -> MergedTree {
        match self {
            TreeSource::Live(nodes) => {
                let mut m = merge_trees(&super::fetch_trees(nodes));
                for t in &mut m.nodes {
                    t.api = nodes
                        .iter()
                        .find(|n| n.name == t.name)
                        .map(|n| n.api.clone());
                }
                m
            }
            TreeSource::Saved(trees) => merge_trees(trees),
        }
    }
}

#[derive(Clone)]
struct Observer {
    source: TreeSource,
    recorder: Recorder,
}

/// The router: `/` (the page), `/tree`, `/log`, `/events`; a request
/// whose `Host` the rule refuses gets 403 (DNS rebinding: a page under
/// the attacker's name must not read the nodes' trees, log and API
/// addresses).
pub fn router(source: TreeSource, recorder: Recorder, hosts: HostRule) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/tree", get(tree))
        .route("/log", get(log))
        .route("/events", get(events))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such route") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(hosts),
            check_host,
        ))
        .with_state(Arc::new(Observer { source, recorder }))
}

async fn check_host(
    State(hosts): State<Arc<HostRule>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if hosts.refuses(req.headers().get(header::HOST).map(|h| h.as_bytes())) {
        return (StatusCode::FORBIDDEN, "Host header names another server").into_response();
    }
    next.run(req).await
}

/// Binds `addr` and serves on a background thread with its own runtime;
/// returns the bound address (port 0 allowed).
///
/// # Errors
/// The bind error.
pub fn spawn(
    addr: std::net::SocketAddr,
    source: TreeSource,
    recorder: Recorder,
    hosts: HostRule,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    // The thread reports once it accepts connections (or why it cannot),
    // so the address is printed only when the page can be served.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("observer-http".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let l = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                if let Err(e) = axum::serve(l, router(source, recorder, hosts)).await {
                    tracing::error!("observer server stopped: {e}");
                }
            });
        })?;
    ready_rx
        .recv()
        .map_err(|_| std::io::Error::other("the observer server thread ended"))??;
    Ok(bound)
}

pub(crate) async fn page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(PAGE)).into_response()
}

async fn tree(State(o): State<Arc<Observer>>) -> Json<MergedTree> {
    let o2 = Arc::clone(&o);
    Json(
        tokio::task::spawn_blocking(move || o2.source.merged())
            .await
            .unwrap_or_else(|_| merge_trees(&[])),
    )
}

/// `GET /log`: the recorded log as one JSON array, streamed in chunks of
/// [`LOG_CHUNK`] entries (each serialized under the log's lock, then
/// sent), so a request costs one chunk of memory, not a copy of the log.
async fn log(State(o): State<Arc<Observer>>) -> Response {
    let rec = o.recorder.clone();
    let entries = futures::stream::unfold(0usize, move |at| {
        let rec = rec.clone();
        async move {
            let (bytes, next) = rec.json_chunk(at, LOG_CHUNK)?;
            Some((bytes, next))
        }
    });
    let body = futures::stream::once(async { b"[".to_vec() })
        .chain(entries)
        .chain(futures::stream::once(async { b"]".to_vec() }))
        .map(|b| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(b)));
    (
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// Entries of one `/log` chunk.
const LOG_CHUNK: usize = 1000;

async fn events(
    State(o): State<Arc<Observer>>,
) -> axum::response::sse::Sse<
    impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use tokio::sync::broadcast::error::RecvError;
    let rx = o.recorder.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let mut data = e.data.clone();
                    if let Some(obj) = data.as_object_mut() {
                        obj.insert("node".into(), e.node.clone().into());
                        obj.insert("t_ms".into(), e.t_ms.into());
                    }
                    let ev = axum::response::sse::Event::default()
                        .event(e.event.as_str())
                        .json_data(&data)
                        .unwrap_or_default();
                    return Some((Ok(ev), rx));
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    });
    axum::response::sse::Sse::new(stream).keep_alive(axum::response::sse::KeepAlive::default())
}
