//! Any bytes as a gossip message on the blocks topic, handed to a real
//! protocol core (in-memory store): it never panics, and always answers
//! with exactly one verdict for the message.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use powchain::chain::{ChainStore, MemStore};
use powchain::consensus::Params;
use powchain::protocol::{CoreConfig, GossipId, Input, NodeCore, Output, Topic};

fuzz_target!(|data: &[u8]| {
    let (mut core, peer) = fresh_core();
    let mut out = Vec::new();
    core.handle(
        1_780_272_000_000,
        Input::Gossip {
            peer,
            id: GossipId::of(data),
            topic: Topic::Blocks,
            data: data.to_vec(),
        },
        &mut out,
    )
    .expect("in-memory store");
    let verdicts = out
        .iter()
        .filter(|o| matches!(o, Output::Verdict { .. }))
        .count();
    assert_eq!(verdicts, 1);
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
