//! Shared by the targets that drive a real protocol core.

use std::sync::Arc;

use powchain::chain::{ChainStore, MemStore};
use powchain::consensus::Params;
use powchain::protocol::{CoreConfig, Input, NodeCore};

/// A fresh protocol core on regtest with an in-memory store, and a
/// connected inbound peer; params and ids are built once.
pub fn fresh_core() -> (NodeCore, libp2p::PeerId) {
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
            link: powchain::protocol::Link::Inbound,
            address: None,
        },
        &mut out,
    )
    .expect("in-memory store");
    (core, *peer)
}
