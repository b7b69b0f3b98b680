//! Chain store: connecting a run of regtest blocks (in memory), and a
//! re-org of depth 1,000.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use powchain::chain::{ChainStore, MemStore, RedbStore};
use powchain::consensus::block::{Block, Coinbase};
use powchain::consensus::merkle::merkle_root;
use powchain::consensus::{sha256d, BlockHash, BlockHeader, Params};

fn chain_of(p: &Params, parent: BlockHash, h0: u32, n: u32, salt: u64) -> Vec<Block> {
    let mut out = Vec::new();
    let mut prev = parent;
    for i in 0..n {
        let cb = Coinbase {
            height: h0 + 1 + i,
            extranonce: salt,
            miner_id: String::new(),
        }
        .encode();
        let mut header = BlockHeader {
            version: 1,
            prev_blockhash: prev,
            merkle_root: merkle_root(&[sha256d(&cb)]).root,
            time: p.genesis.header.time + 1 + i,
            bits: p.pow_limit_bits,
            nonce: 0,
        };
        while !p.pow_limit.is_met_by(&header.block_hash()) {
            header.nonce += 1;
        }
        prev = header.block_hash();
        out.push(Block {
            header,
            txdata: vec![cb],
        });
    }
    out
}

fn chain(c: &mut Criterion) {
    let p = Arc::new(Params::regtest());
    let blocks = chain_of(&p, p.genesis_hash, 0, 10_000, 1);
    let mut g = c.benchmark_group("chain");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("connect_10000_blocks", |b| {
        b.iter_batched(
            || {
                (
                    ChainStore::open(Arc::clone(&p), Box::new(MemStore::default())).unwrap(),
                    blocks.clone(),
                )
            },
            |(mut cs, blocks)| {
                let _ = cs.accept_blocks(blocks, None, 1_800_000_000_000);
                cs
            },
            BatchSize::LargeInput,
        );
    });
    let main = chain_of(&p, p.genesis_hash, 0, 1000, 2);
    let side = chain_of(&p, p.genesis_hash, 0, 1001, 3);
    g.throughput(Throughput::Elements(1));
    g.bench_function("reorg_depth_1000_last_block", |b| {
        b.iter_batched(
            || {
                let mut cs =
                    ChainStore::open(Arc::clone(&p), Box::new(MemStore::default())).unwrap();
                let _ = cs.accept_blocks(main.clone(), None, 1_800_000_000_000);
                let _ = cs.accept_blocks(side[..1000].to_vec(), None, 1_800_000_000_000);
                (cs, side[1000].clone())
            },
            |(mut cs, last)| {
                let u = cs.accept_block(last, None, 1_800_000_000_000).unwrap();
                assert_eq!(u.tip_change.unwrap().disconnected.len(), 1000);
                cs
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();

    // Reopening a redb store of 100,000 blocks (index rebuilt from disk).
    let dir = std::env::temp_dir().join(format!("powchain-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chain.redb");
    {
        let big = chain_of(&p, p.genesis_hash, 0, 100_000, 4);
        let mut cs =
            ChainStore::open(Arc::clone(&p), Box::new(RedbStore::open(&path).unwrap())).unwrap();
        for r in cs.accept_blocks(big, None, 1_800_000_000_000) {
            r.unwrap();
        }
    }
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.bench_function("reopen_100000_blocks", |b| {
        b.iter(|| {
            let cs = ChainStore::open(Arc::clone(&p), Box::new(RedbStore::open(&path).unwrap()))
                .unwrap();
            assert_eq!(cs.height(), 100_000);
            cs
        });
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, chain);
criterion_main!(benches);
