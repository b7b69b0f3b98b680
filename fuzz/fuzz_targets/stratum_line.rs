//! Any bytes as a Stratum v1 request line: the request parser, then, for
//! a `mining.submit`, its fields and the share's header, hash and
//! difficulty check against a fixed job.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use powchain::consensus::{BlockHash, BlockTemplate, CompactTarget};
use powchain::node::stratum::difficulty::meets;
use powchain::node::stratum::job::{Job, Template};
use powchain::node::stratum::{parse_request, parse_submit};

fuzz_target!(|data: &[u8]| {
    if data.len() > powchain::node::stratum::MAX_LINE {
        return;
    }
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(req) = parse_request(line) else {
        return;
    };
    if req.method != "mining.submit" {
        return;
    }
    let Ok(s) = parse_submit(&req.params) else {
        return;
    };
    let block = BlockTemplate {
        height: 7,
        version: 1,
        prev_blockhash: BlockHash([3; 32]),
        bits: CompactTarget::from_consensus(0x1e10_0000),
        min_time: 0,
        transactions: vec![vec![1, 2, 3]],
        miner_id: String::new(),
    };
    let t = Arc::new(Template::new(1, block, 1_700_000_000, true).unwrap());
    let (coinb1, coinb2) = t.coinbase_parts(&s.worker.chars().take(64).collect::<String>());
    let job = Job {
        id: s.job_id.clone(),
        template: Arc::clone(&t),
        difficulty: 1e-6,
        coinb1,
        coinb2,
    };
    let (header, coinbase) = job.header([1, 2, 3, 4], s.extranonce2, s.ntime, s.nonce);
    let _ = meets(&header.block_hash(), job.difficulty, &t.target);
    let _ = job.block(header, coinbase);
});
