//! Any bytes as a sync request frame (handshake or GetBlocks): decoding is
//! bounded, and a decoded request handed to a real core is answered once.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use powchain::chain::{ChainStore, MemStore};
use powchain::consensus::Params;
use powchain::p2p::protocol::decode;
use powchain::protocol::{CoreConfig, InboundId, Input, NodeCore, Output, SyncRequest};

fuzz_target!(|data: &[u8]| {
    if data.len() > powchain::protocol::messages::MAX_REQUEST_BYTES {
        return;
    }
    let Ok(request) = decode::<SyncRequest>(data) else {
        return;
    };
    let (mut core, peer) = fresh_core();
    let mut out = Vec::new();
    core.handle(
        1_780_272_000_000,
        Input::Request {
            peer,
            id: InboundId(1),
            request,
        },
        &mut out,
    )
    .expect("in-memory store");
    let answers = out
        .iter()
        .filter(|o| matches!(o, Output::Respond { .. }))
        .count();
    assert_eq!(answers, 1);
});

/// A fresh protocol core on regtest with an in-memory store, and a
/// connected inbound peer; params and ids are built once.
fn fresh_core() -> (NodeCore, libp2p::PeerId) {
    static SETUP: std::sync::OnceLock<(Arc<Params>, libp2p::PeerId, libp2p::PeerId)> =
        std::sync::OnceLock::new();
    let (params, me, peer) = SETUP.get_or_init(|| {
        (
            Arc::new(Params::regtest()),
            powchain::sim::sim_peer_id(1, 0),
            powchain::sim::sim_peer_id(9, 9),
        )
    });
    let chain = ChainStore::open(Arc::clone(params), Box::new(MemStore::default()))
        .expect("in-memory store");
    let mut core = NodeCore::new(chain, CoreConfig::new(*me));
    let mut out = Vec::new();
    core.handle(
        1_780_272_000_000,
        Input::PeerConnected {
            peer: *peer,
            outbound: false,
            address: None,
        },
        &mut out,
    )
    .expect("in-memory store");
    (core, *peer)
}
