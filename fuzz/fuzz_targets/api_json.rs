//! Any bytes as the JSON body of each POST route.
#![no_main]
use libfuzzer_sys::fuzz_target;
use powchain::api::types::{
    GenerateRequest, MiningRequest, PartitionRequest, PeerRequest, TxRequest,
};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<GenerateRequest>(data);
    if let Ok(t) = serde_json::from_slice::<TxRequest>(data) {
        let _ = hex::decode(t.hex.trim());
    }
    let _ = serde_json::from_slice::<MiningRequest>(data);
    if let Ok(p) = serde_json::from_slice::<PartitionRequest>(data) {
        for id in &p.peers {
            let _ = id.parse::<libp2p::PeerId>();
        }
    }
    if let Ok(p) = serde_json::from_slice::<PeerRequest>(data) {
        let _ = p.addr.parse::<libp2p::Multiaddr>();
    }
});
