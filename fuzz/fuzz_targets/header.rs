//! Any bytes as an 80-byte header: decoding never panics, a decoded
//! header re-encodes to the same bytes, and the proof-of-work check and
//! the JSON shape accept whatever decoded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use powchain::consensus::BlockHeader;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = BlockHeader::decode_slice(data) {
        assert_eq!(&h.encode()[..], &data[..80]);
        static PARAMS: std::sync::OnceLock<powchain::consensus::Params> =
            std::sync::OnceLock::new();
        let params = PARAMS.get_or_init(powchain::consensus::Params::mainnet);
        let _ = powchain::consensus::validation::check_proof_of_work(&h, &params.pow_limit);
        let _ = powchain::api::types::Header::of(&h);
    }
});
