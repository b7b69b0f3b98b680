//! Any bytes as a block (Bitcoin serialization, opaque transactions):
//! decoding never panics or over-allocates, a decoded block re-encodes to
//! the same bytes, and the body checks (merkle root, mutation, coinbase)
//! run on it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use powchain::consensus::{Block, Params};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Block::decode(data, 1_000_000) {
        assert_eq!(b.encode(), data);
        static PARAMS: std::sync::OnceLock<Params> = std::sync::OnceLock::new();
        let params = PARAMS.get_or_init(Params::regtest);
        let _ = b.check_body(params.max_block_bytes);
        let _ = powchain::consensus::check_block_at_height(params, &b, 1);
    }
});
