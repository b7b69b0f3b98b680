//! `GET /events` (SPEC): server-sent events, one per thing the page
//! draws. Each core event is turned into its SSE events once, by one task
//! ([`render`]), and the rendered events are shared by every subscriber,
//! so a thousand subscribers cost a thousand socket writes, not a thousand
//! renders with a thousand core locks. Subscribers are capped at
//! [`MAX_EVENT_SUBSCRIBERS`]; one more is answered 503.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::sync::broadcast;

use super::{now_ms, Shared, EVENT_BUFFER};
use crate::api::types::{ApiEvent, ErrorBody, OrphanView, PeerEvent, Stale, TipEvent};
use crate::consensus::BlockHash;

/// Most `GET /events` streams open at once; one more is answered 503
/// ("too many event subscribers").
pub const MAX_EVENT_SUBSCRIBERS: usize = 256;

/// The rendered event feed: what [`render`] made of each core event, and
/// the count of open streams.
pub struct EventFeed {
    rendered: broadcast::Sender<Arc<[Event]>>,
    subscribers: AtomicUsize,
}

impl Default for EventFeed {
    fn default() -> Self {
        EventFeed {
            rendered: broadcast::channel(EVENT_BUFFER).0,
            subscribers: AtomicUsize::new(0),
        }
    }
}

impl EventFeed {
    /// Open `GET /events` streams.
    #[must_use]
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }
}

/// Renders every core event once into its SSE events and shares them
/// with the subscribers; runs for the node's life (spawned by
/// `api::serve`). With no subscriber, events are skipped unrendered. A
/// renderer that falls [`EVENT_BUFFER`] events behind the core sends one
/// `lagged` event.
pub async fn render(shared: Arc<Shared>) {
    use broadcast::error::RecvError;
    let mut rx = shared.events.subscribe();
    loop {
        let batch: Vec<Event> = match rx.recv().await {
            Ok(e) => {
                if shared.feed.rendered.receiver_count() == 0 {
                    continue;
                }
                // The core lock may be held by the core thread for a
                // while: wait for it off the runtime's workers.
                let s = Arc::clone(&shared);
                tokio::task::spawn_blocking(move || {
                    api_events(&s, &e).iter().filter_map(sse).collect()
                })
                .await
                .unwrap_or_default()
            }
            Err(RecvError::Lagged(n)) => sse(&ApiEvent::Lagged(n)).into_iter().collect(),
            Err(RecvError::Closed) => return,
        };
        if !batch.is_empty() {
            let _ = shared.feed.rendered.send(batch.into());
        }
    }
}

/// Counts one open stream; dropped with the stream.
struct Subscribed(Arc<Shared>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.feed.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `GET /events`: the shared rendered feed, from now on; 503 beyond
/// [`MAX_EVENT_SUBSCRIBERS`]. A subscriber more than [`EVENT_BUFFER`]
/// batches behind gets one `lagged` event and skips ahead.
pub async fn events(State(s): State<Arc<Shared>>) -> Response {
    use broadcast::error::RecvError;
    let taken = s
        .feed
        .subscribers
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < MAX_EVENT_SUBSCRIBERS).then_some(n + 1)
        });
    if taken.is_err() {
        tracing::debug!("GET /events refused: {MAX_EVENT_SUBSCRIBERS} subscribers");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ErrorBody {
                error: format!("too many event subscribers (at most {MAX_EVENT_SUBSCRIBERS})"),
            }),
        )
            .into_response();
    }
    let rx = s.feed.rendered.subscribe();
    let guard = Subscribed(s);
    let stream = futures::stream::unfold(
        (rx, guard, std::collections::VecDeque::<Event>::new()),
        |(mut rx, guard, mut pending)| async move {
            loop {
                if let Some(ev) = pending.pop_front() {
                    return Some((Ok::<_, std::convert::Infallible>(ev), (rx, guard, pending)));
                }
                match rx.recv().await {
                    Ok(batch) => pending.extend(batch.iter().cloned()),
                    Err(RecvError::Lagged(n)) => pending.extend(sse(&ApiEvent::Lagged(n))),
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// An [`ApiEvent`] as an SSE event: its kind as the name, its data as JSON.
fn sse(e: &ApiEvent) -> Option<Event> {
    Event::default()
        .event(e.kind().as_str())
        .json_data(e.data())
        .ok()
}

/// The API events one core event makes.
fn api_events(s: &Shared, e: &crate::protocol::NodeEvent) -> Vec<ApiEvent> {
    use crate::protocol::NodeEvent;
    let core = s.core();
    let chain = core.chain();
    let block = |hash: &BlockHash| chain.tree_block(hash).map(ApiEvent::Block);
    match e {
        NodeEvent::Block { hash, .. } => block(hash).into_iter().collect(),
        NodeEvent::Rejected {
            hash: Some(hash), ..
        } => block(hash).into_iter().collect(),
        NodeEvent::Tip { hash, height } => vec![ApiEvent::Tip(TipEvent {
            hash: *hash,
            height: *height,
        })],
        NodeEvent::Reorg(r) => {
            let mut v = vec![ApiEvent::Reorg(r.clone())];
            for h in &r.disconnected {
                if let Some(b) = chain.block_info(h) {
                    v.push(ApiEvent::Stale(Stale::of(&b, chain.miner_id(h))));
                }
            }
            v
        }
        NodeEvent::Orphan { hash, .. } => {
            let now = now_ms();
            chain
                .orphans()
                .get(hash)
                .map(|o| ApiEvent::Orphan(OrphanView::of(o, now)))
                .into_iter()
                .collect()
        }
        NodeEvent::Peer { peer, connected } => vec![ApiEvent::Peer(PeerEvent {
            peer: peer.to_string(),
            connected: *connected,
        })],
        NodeEvent::Rejected { hash: None, .. }
        | NodeEvent::Penalised { .. }
        | NodeEvent::Traitor(_) => Vec::new(),
    }
}
