//! Any bytes at the JSON-RPC and REST server (issue 22's fuzz targets for
//! this round's decoders): the real router of `powchain node --rpc
//! --rest` (`powchain::node::rpc::router`) over a regtest node with 20
//! blocks, driven in process. The first byte chooses: even, the rest is
//! the body of an authorized `POST /` (the JSON-RPC envelope, batches,
//! every method's parameters); odd, it is the path after `/rest/` of a
//! `GET` (`headers`, `block`, `blockhashbyheight`, `chaininfo`, formats).
//! Any answer but a panic or a hang is fine. There is no core thread: a
//! method that needs one (`submitblock`, `generatetoaddress`) gets its
//! error.
#![no_main]
#[path = "common/chain.rs"]
mod common;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::ConnectInfo;
use libfuzzer_sys::fuzz_target;
use powchain::chain::{ChainStore, MemStore};
use powchain::consensus::Params;
use powchain::node::rpc::{router, RpcAccess};
use powchain::node::{NodeInfo, Shared};
use powchain::protocol::{CoreConfig, NodeCore};
use tower::ServiceExt;

struct Setup {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let params = Arc::new(Params::regtest());
        let mut chain =
            ChainStore::open(Arc::clone(&params), Box::new(MemStore::default())).expect("open");
        common::mine_into(&mut chain, 20);
        let me = powchain::sim::sim_peer_id(1, 0);
        // The core thread's end of the channel is dropped: commands fail.
        let (commands, _) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            params: Arc::clone(&params),
            core: std::sync::Mutex::new(NodeCore::new(chain, CoreConfig::new(me))),
            info: std::sync::Mutex::new(NodeInfo::default()),
            metrics: powchain::node::metrics::Metrics::new(),
            commands,
            gate: powchain::node::gate::InputGate::default(),
            events: tokio::sync::broadcast::channel(16).0,
            feed: powchain::node::events::EventFeed::default(),
            stop: tokio::sync::Notify::new(),
            started: std::time::Instant::now(),
        });
        let access = RpcAccess {
            credentials: "u:p".into(),
            allow: vec!["127.0.0.0/8".parse().expect("net")],
            rest: true,
        };
        Setup {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            app: router(shared, access),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let s = setup();
    let request = if choice % 2 == 0 {
        http::Request::post("/")
            // base64("u:p")
            .header("authorization", "Basic dTpw")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(rest.to_vec()))
    } else {
        let Ok(path) = std::str::from_utf8(rest) else {
            return;
        };
        let Ok(uri) = format!("/rest/{path}").parse::<http::Uri>() else {
            return;
        };
        http::Request::get(uri).body(axum::body::Body::empty())
    };
    let Ok(mut request) = request else {
        return;
    };
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
    s.runtime.block_on(async {
        let answer = s.app.clone().oneshot(request).await.expect("infallible");
        let status = answer.status();
        let body = axum::body::to_bytes(answer.into_body(), 64 << 20).await;
        // RPC_HTTP_PRINT=1: show each answer (to check the seeds reach the
        // methods, not a 403 or 401).
        if std::env::var_os("RPC_HTTP_PRINT").is_some() {
            let text = body
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            eprintln!("{status} {}", text.chars().take(160).collect::<String>());
        }
    });
});
