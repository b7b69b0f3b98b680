//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use powchain::consensus::block::{Block, Coinbase};
use powchain::consensus::merkle::merkle_root;
use powchain::consensus::{sha256d, BlockHash, BlockHeader, Params, Target};

/// `../shared/data` relative to the repo root, or `None` (with a loud
/// message) when it is absent.
pub fn shared_data(file: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(file);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "\n!!!!! SKIPPED: {} is absent; this test needs ../shared/data !!!!!\n",
            p.display()
        );
        None
    }
}

/// Mines a regtest block on `parent` (height `height`, time `time`) with
/// extra transactions; `salt` makes sibling blocks differ.
pub fn regtest_block(
    params: &Params,
    parent: BlockHash,
    height: u32,
    time: u32,
    salt: u64,
    txs: Vec<Vec<u8>>,
) -> Block {
    let coinbase = Coinbase {
        height,
        extranonce: salt,
        miner_id: format!("t{salt}"),
    }
    .encode();
    let mut txdata = vec![coinbase];
    txdata.extend(txs);
    let leaves: Vec<[u8; 32]> = txdata.iter().map(|t| sha256d(t)).collect();
    let mut header = BlockHeader {
        version: 1,
        prev_blockhash: parent,
        merkle_root: merkle_root(&leaves).root,
        time,
        bits: params.pow_limit_bits,
        nonce: 0,
    };
    let target: Target = params.pow_limit;
    while !target.is_met_by(&header.block_hash()) {
        header.nonce += 1;
    }
    Block { header, txdata }
}

/// A chain of `n` regtest blocks on `parent` (at `parent_height`), times
/// increasing from `t0`.
pub fn regtest_chain(
    params: &Params,
    parent: BlockHash,
    parent_height: u32,
    t0: u32,
    n: u32,
    salt: u64,
) -> Vec<Block> {
    let mut out = Vec::new();
    let mut prev = parent;
    for i in 0..n {
        let b = regtest_block(params, prev, parent_height + 1 + i, t0 + i, salt, vec![]);
        prev = b.block_hash();
        out.push(b);
    }
    out
}

/// "now" for tests: far enough after the genesis of our networks.
pub const NOW_MS: u64 = 1_800_000_000_000;
