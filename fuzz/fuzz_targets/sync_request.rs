//! Any bytes as a sync request frame (handshake or GetBlocks): decoding is
//! bounded, and a decoded request handed to a real core is answered once.
#![no_main]
#[path = "common/core.rs"]
mod core_setup;
use core_setup::fresh_core;
use libfuzzer_sys::fuzz_target;
use powchain::p2p::protocol::decode;
use powchain::protocol::{InboundId, Input, Output, SyncRequest};

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
