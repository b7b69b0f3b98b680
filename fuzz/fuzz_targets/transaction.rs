//! Any bytes as a gossiped transaction: the mempool's checks and the
//! coinbase decoder never panic, and the mempool's bounds hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use powchain::protocol::mempool::Mempool;

fuzz_target!(|data: &[u8]| {
    let _ = powchain::consensus::Coinbase::decode(data);
    static PEER: std::sync::OnceLock<libp2p::PeerId> = std::sync::OnceLock::new();
    let peer = *PEER.get_or_init(|| powchain::sim::sim_peer_id(1, 1));
    let mut m = Mempool::new(4096, 16, 1000);
    for chunk in data.chunks(97) {
        let _ = m.add_from(chunk.to_vec(), Some(peer));
    }
    assert!(m.len() <= 16);
});
