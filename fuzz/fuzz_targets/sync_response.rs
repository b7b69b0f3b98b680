//! Any bytes as a sync response frame: decoding is bounded by the frame
//! (no claimed count allocates), and a batch of blocks decodes or fails
//! cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use powchain::p2p::protocol::decode;
use powchain::protocol::messages::BlockBatch;
use powchain::protocol::SyncResponse;

fuzz_target!(|data: &[u8]| {
    if let Ok(SyncResponse::Blocks(batch)) = decode::<SyncResponse>(data) {
        let _ = batch.decode(1_000_000);
    }
    // The batch decoder on raw bytes too.
    let _ = BlockBatch(data.to_vec()).decode(1_000_000);
});
