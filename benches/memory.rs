//! Peak memory of the two storage paths that once held everything at once
//! (issue 11, item 9), on a redb store in a temp dir:
//! - restart: reopening a store of 100,000 blocks (the replay streams the
//!   stored headers; it does not load every block's bytes);
//! - re-org: a 5,000-block re-org of ~100 KB blocks (about 500 MB
//!   disconnected and as much connected, streamed block by block).
//!
//! Run: `cargo bench --bench memory` (about two minutes; needs ~1.5 GB of
//! disk in the temp dir). Prints the growth of the process's peak resident
//! memory (VmHWM, reset before each phase through /proc/self/clear_refs)
//! and fails if a phase grows by more than its bound.

use std::sync::Arc;
use std::time::Instant;

use powchain::chain::{ChainStore, RedbStore};
use powchain::consensus::block::{Block, Coinbase};
use powchain::consensus::merkle::merkle_root;
use powchain::consensus::{sha256d, BlockHash, BlockHeader, Params};

fn status_kb(field: &str) -> u64 {
    powchain::sim::experiments::proc_status_kb(None, field).unwrap_or(0)
}

/// Resets VmHWM to the current RSS; returns the current RSS, KiB.
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kb("VmRSS:")
}

fn block(p: &Params, prev: BlockHash, height: u32, time: u32, salt: u64, body: usize) -> Block {
    let cb = Coinbase {
        height,
        extranonce: salt,
        miner_id: String::new(),
    }
    .encode();
    let mut txdata = vec![cb];
    if body > 0 {
        let mut tx = vec![(salt & 0xff) as u8; body];
        tx[..4].copy_from_slice(&height.to_le_bytes());
        txdata.push(tx);
    }
    let leaves: Vec<[u8; 32]> = txdata.iter().map(|t| sha256d(t)).collect();
    let mut header = BlockHeader {
        version: 1,
        prev_blockhash: prev,
        merkle_root: merkle_root(&leaves).root,
        time,
        bits: p.pow_limit_bits,
        nonce: 0,
    };
    while !p.pow_limit.is_met_by(&header.block_hash()) {
        header.nonce += 1;
    }
    Block { header, txdata }
}

/// Appends `n` blocks of `body` bytes on `parent` (at `h0`), returns the tip.
fn extend(
    cs: &mut ChainStore,
    p: &Params,
    parent: BlockHash,
    h0: u32,
    n: u32,
    salt: u64,
    body: usize,
) -> BlockHash {
    let mut prev = parent;
    for i in 0..n {
        let h = h0 + 1 + i;
        let b = block(p, prev, h, p.genesis.header.time + h, salt, body);
        prev = b.block_hash();
        cs.accept_block(b, None, u64::from(p.genesis.header.time + h + 10) * 1000)
            .expect("valid block");
    }
    prev
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let p = Arc::new(Params::regtest());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failed = false;

    // Restart of a 100,000-block store.
    let path = dir.path().join("restart.redb");
    {
        let t = Instant::now();
        let mut cs = ChainStore::open(
            Arc::clone(&p),
            Box::new(RedbStore::open(&path).expect("redb")),
        )
        .expect("open");
        extend(&mut cs, &p, p.genesis_hash, 0, 100_000, 1, 0);
        eprintln!("built 100,000 blocks in {:.1} s", t.elapsed().as_secs_f64());
    }
    let base = reset_peak();
    let t = Instant::now();
    let cs = ChainStore::open(
        Arc::clone(&p),
        Box::new(RedbStore::open(&path).expect("redb")),
    )
    .expect("reopen");
    let grew = status_kb("VmHWM:").saturating_sub(base);
    println!(
        "restart of 100,000 blocks: height {}, {:.2} s, peak RSS +{} MiB",
        cs.height(),
        t.elapsed().as_secs_f64(),
        grew / 1024
    );
    assert_eq!(cs.height(), 100_000);
    if grew > 256 * 1024 {
        eprintln!("FAIL: restart grew peak memory by more than 256 MiB");
        failed = true;
    }
    drop(cs);

    // A 5,000-block re-org of ~100 KB blocks.
    let path = dir.path().join("reorg.redb");
    let mut cs = ChainStore::open(
        Arc::clone(&p),
        Box::new(RedbStore::open(&path).expect("redb")),
    )
    .expect("open");
    let t = Instant::now();
    extend(&mut cs, &p, p.genesis_hash, 0, 5_000, 2, 99_000);
    let side = extend(&mut cs, &p, p.genesis_hash, 0, 5_000, 3, 99_000);
    eprintln!(
        "built two 5,000-block branches of ~100 KB blocks in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let before_tip = cs.tip();
    // Through the protocol core, as a node takes it: the chain store's
    // re-org, then the mempool takes back the disconnected blocks'
    // transactions and drops the connected ones, one block read at a time.
    let mut core = powchain::protocol::NodeCore::new(
        cs,
        powchain::protocol::CoreConfig::new(powchain::sim::sim_peer_id(1, 0)),
    );
    let base = reset_peak();
    let t = Instant::now();
    let b = block(&p, side, 5_001, p.genesis.header.time + 5_001, 3, 99_000);
    let mut out = Vec::new();
    let data = b.encode();
    core.handle(
        u64::from(p.genesis.header.time + 6_000) * 1000,
        powchain::protocol::Input::Gossip {
            peer: powchain::sim::sim_peer_id(2, 0),
            id: powchain::protocol::GossipId::of(&data),
            topic: powchain::protocol::Topic::Blocks,
            data,
        },
        &mut out,
    )
    .expect("the heavier branch");
    let cs = core.chain();
    let grew = status_kb("VmHWM:").saturating_sub(base);
    let depth = cs.reorgs().last().map_or(0, |r| r.depth);
    println!(
        "re-org of {depth} blocks (~{} MB each way) through the core: {:.2} s, peak RSS +{} MiB, mempool {} transactions",
        5_000 * 99 / 1000,
        t.elapsed().as_secs_f64(),
        grew / 1024,
        core.mempool_len()
    );
    assert_ne!(cs.tip(), before_tip);
    assert_eq!(depth, 5_000);
    if grew > 256 * 1024 {
        eprintln!("FAIL: the re-org grew peak memory by more than 256 MiB");
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
}
