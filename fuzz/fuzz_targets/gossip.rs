//! Any bytes as a gossip message on the blocks topic, handed to a real
//! protocol core (in-memory store): it never panics, and always answers
//! with exactly one verdict for the message.
#![no_main]
#[path = "common/core.rs"]
mod core_setup;
use core_setup::fresh_core;
use libfuzzer_sys::fuzz_target;
use powchain::protocol::{GossipId, Input, Output, Topic};

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
