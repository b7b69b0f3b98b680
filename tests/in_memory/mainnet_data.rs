//! Consensus rules against real Bitcoin mainnet data in `tests/data`
//! (expected values from its README).

use powchain::chain::headers::verify_header_chain;
use powchain::cli::read_headers_file;
use powchain::consensus::block::bitcoin_block_from_bytes;
use powchain::consensus::difficulty::bitcoin_retarget;
use powchain::consensus::pow::{CompactTarget, Work};
use powchain::consensus::validation::{check_header_context, SliceView};
use powchain::consensus::{BlockHeader, HeaderError, Params, Target};

const NOW: u64 = 1_800_000_000;

#[test]
fn all_40000_headers_validate_with_exact_tip_and_chainwork() {
    let path = crate::util::test_data("mainnet-headers-0-39999.bin");
    let headers = read_headers_file(&path).unwrap();
    assert_eq!(headers.len(), 40_000);
    let r = verify_header_chain(&Params::mainnet(), &headers, NOW, |_| {}).unwrap();
    assert_eq!(r.tip_height, 39_999);
    assert_eq!(
        r.tip,
        "000000002509f3a013a1d21b89fe33306a45b1fcbb485dd4d310e4f9b2c09945"
    );
    assert_eq!(r.chainwork.to_short_hex(), "0xa83ac5f88180");
    assert_eq!(
        r.chainwork.to_hex(),
        "0000000000000000000000000000000000000000000000000000a83ac5f88180"
    );
    // Spot values from the README.
    let cw = |h: usize| {
        verify_header_chain(&Params::mainnet(), &headers[..=h], NOW, |_| {})
            .unwrap()
            .chainwork
    };
    assert_eq!(cw(2015).to_short_hex(), "0x7e007e007e0");
    assert_eq!(cw(2016).to_short_hex(), "0x7e107e107e1");
    assert_eq!(cw(32256).to_short_hex(), "0x7e01acd42dd2");
    assert_eq!(
        headers[32256].bits,
        CompactTarget::from_consensus(0x1d00d86a)
    );
}

#[test]
fn second_segment_bridges_and_retargets_at_40320() {
    let (main, seg) = (
        crate::util::test_data("mainnet-headers-0-39999.bin"),
        crate::util::test_data("mainnet-headers-40319-44351.bin"),
    );
    let main = read_headers_file(&main).unwrap();
    let seg = read_headers_file(&seg).unwrap();
    assert_eq!(seg.len(), 4033);
    assert_eq!(
        seg[0].block_hash().to_string(),
        "000000008135b689ad1557d4e148a8b9e58e2c4a67240fc87962abb69710231a"
    );
    // chainwork(39999) + 320 * work(0x1d008cc3) = chainwork(40319).
    let cw39999 = Work::from_hex("a83ac5f88180").unwrap();
    let w = Target::from_compact(CompactTarget::from_consensus(0x1d008cc3))
        .unwrap()
        .to_work();
    let mut cw = cw39999;
    for _ in 0..320 {
        cw = cw + w;
    }
    assert_eq!(cw.to_short_hex(), "0xaa80bfeea100");
    // Retarget at 40320 from time(38304), time(40319), bits(40319).
    let limit = Params::mainnet().pow_limit;
    let got = bitcoin_retarget(
        limit,
        1_209_600,
        seg[0].bits,
        seg[0].time,
        main[38_304].time,
    );
    assert_eq!(got, CompactTarget::from_consensus(0x1c654657));
    assert_eq!(seg[1].bits, got);
    // Links, proof of work and chainwork through the segment.
    for i in 1..seg.len() {
        assert_eq!(
            seg[i].prev_blockhash,
            seg[i - 1].block_hash(),
            "link at {}",
            40_319 + i
        );
        powchain::consensus::validation::check_proof_of_work(&seg[i], &limit).unwrap();
        cw = cw + Target::from_compact(seg[i].bits).unwrap().to_work();
    }
    assert_eq!(
        seg.last().unwrap().block_hash().to_string(),
        "000000001a2e0c63d7d012003c9173acfd04ccd6372027718979228c461b5ed5"
    );
    assert_eq!(cw.to_short_hex(), "0xdc2fb8af3b80");
}

#[test]
fn every_retarget_to_832608_recomputes_from_the_csv() {
    let path = crate::util::test_data("mainnet-retarget-boundaries.csv");
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows = std::collections::BTreeMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let height: u32 = f[0].parse().unwrap();
        let header = BlockHeader::from_hex(f[1]).unwrap();
        assert_eq!(header.block_hash().to_string(), f[2], "hash at {height}");
        rows.insert(height, (header, Work::from_hex(f[3]).unwrap()));
    }
    assert_eq!(rows.len(), 827);
    let limit = Params::mainnet().pow_limit;
    let mut checked = 0;
    for k in 1..=413u32 {
        let h = k * 2016;
        let (last, last_cw) = &rows[&(h - 1)];
        let (new, new_cw) = &rows[&h];
        let (first, _) = &rows[&(h - 2016)];
        let got = bitcoin_retarget(limit, 1_209_600, last.bits, last.time, first.time);
        assert_eq!(got, new.bits, "retarget at height {h}");
        // cw(h) - cw(h-1) = work(bits(h))
        let w = Target::from_compact(new.bits).unwrap().to_work();
        assert_eq!(*last_cw + w, *new_cw, "chainwork step at {h}");
        if let Some((_, cw_end)) = rows.get(&(h + 2015)) {
            let mut c = *new_cw;
            let mut w2015 = Work::ZERO;
            for _ in 0..2015 {
                w2015 = w2015 + w;
            }
            c = c + w2015;
            assert_eq!(c, *cw_end, "chainwork over the period from {h}");
        }
        checked += 1;
    }
    assert_eq!(checked, 413);
}

#[test]
fn raw_blocks_merkle_roots() {
    let cases = [
        (
            "block-000000.hex",
            1,
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        ),
        (
            "block-000001.hex",
            1,
            "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098",
            "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
        ),
        (
            "block-000170.hex",
            2,
            "7dac2c5666815c17a3b36427de37bb9d2e2c5ccec3f8633eb91a4205cb4c10ff",
            "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee",
        ),
        (
            "block-277647.hex",
            213,
            "36ac31298eb05c23be1f775d635104705e4560c6532b95c158023c6dc9af06c3",
            "0000000000000000054a714e580b16c583701712ab91060e92dbde6eb1e052a8",
        ),
    ];
    for (file, ntx, root, hash) in cases {
        let path = crate::util::test_data(file);
        let bytes = hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap();
        let block = bitcoin_block_from_bytes(&bytes).unwrap();
        assert_eq!(block.txdata.len(), ntx, "{file}");
        assert_eq!(block.block_hash().to_string(), hash);
        let m = block.compute_merkle_root();
        assert!(!m.mutated);
        let mut r = m.root;
        r.reverse();
        assert_eq!(hex::encode(r), root, "{file}");
        assert_eq!(block.header.merkle_root_hex(), root);
        block.check_body(1_000_000).unwrap();
        let txids = block.txids();
        if file == "block-000170.hex" {
            assert_eq!(
                txids[0].to_string(),
                "b1fea52486ce0c62bb442b530a3f0132b826c74e473d1f2c220bfa78111c5082"
            );
            assert_eq!(
                txids[1].to_string(),
                "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
            );
        }
        if file == "block-277647.hex" {
            assert_eq!(
                txids[0].to_string(),
                "0fc1f998e6fc1fa43a879cea4a54fe9947e02b925ebc46237a2406c50e0f07ea"
            );
            assert_eq!(
                txids[212].to_string(),
                "19808b177b72ec2e7043bb5ac468b7e6e90085853d1c5051788d522a11223ce6"
            );
            // Duplicating the last transaction gives the same root but is mutated.
            let mut dup = block.clone();
            dup.txdata.push(dup.txdata[212].clone());
            let dm = dup.compute_merkle_root();
            assert_eq!(dm.root, m.root);
            assert!(dm.mutated);
            assert!(matches!(
                dup.check_body(1_000_000),
                Err(powchain::consensus::BlockError::MutatedMerkle)
            ));
        }
    }
}

#[test]
fn broken_headers_are_rejected_with_rule_and_height() {
    let path = crate::util::test_data("mainnet-headers-0-39999.bin");
    let headers = read_headers_file(&path).unwrap();
    let params = Params::mainnet();
    let mut h = headers[..3000].to_vec();
    // A flipped bit in the merkle root at height 1234: proof of work fails.
    h[1234].merkle_root[5] ^= 0x10;
    let e = verify_header_chain(&params, &h, NOW, |_| {}).unwrap_err();
    assert_eq!((e.height, e.rule), (1234, "high-hash"));
    // A broken parent link at height 2000.
    let mut h = headers[..3000].to_vec();
    h[2000].prev_blockhash.0[0] ^= 1;
    let e = verify_header_chain(&params, &h, NOW, |_| {}).unwrap_err();
    assert_eq!((e.height, e.rule), (2000, "bad-prevblk"));
    // Wrong bits at the retarget height 32256 (contextual rule).
    let view = SliceView {
        headers: &headers[..32256],
        base_height: 0,
    };
    let mut bad = headers[32256];
    bad.bits = CompactTarget::from_consensus(0x1d00ffff);
    assert_eq!(
        check_header_context(&params, &bad, &view, NOW),
        Err(HeaderError::BadDiffBits {
            got: 0x1d00ffff,
            expected: 0x1d00d86a
        })
    );
    check_header_context(&params, &headers[32256], &view, NOW).unwrap();
    // A timestamp at the median-time-past of the previous 11 (height 5000).
    let view = SliceView {
        headers: &headers[..5000],
        base_height: 0,
    };
    let mut times: Vec<u32> = headers[4989..5000].iter().map(|h| h.time).collect();
    times.sort_unstable();
    let mtp = times[5];
    let mut old = headers[5000];
    old.time = mtp;
    assert_eq!(
        check_header_context(&params, &old, &view, NOW),
        Err(HeaderError::TimeTooOld { time: mtp, mtp })
    );
    old.time = mtp + 1;
    check_header_context(&params, &old, &view, NOW).unwrap();
    // More than two hours ahead of the node's clock.
    let mut new = headers[5000];
    new.time = (NOW + 7201) as u32;
    assert!(matches!(
        check_header_context(&params, &new, &view, NOW),
        Err(HeaderError::TimeTooNew { .. })
    ));
}

#[test]
fn genesis_of_another_network_is_refused() {
    let path = crate::util::test_data("mainnet-headers-0-39999.bin");
    let headers = read_headers_file(&path).unwrap();
    let e = verify_header_chain(&Params::regtest(), &headers[..10], NOW, |_| {}).unwrap_err();
    assert_eq!((e.height, e.rule), (0, "bad-genesis"));
}

/// Inputs the fuzzers found crashing, kept as regressions (fuzz/, issue 11).
#[test]
fn fuzz_regressions_are_refused_cleanly() {
    // A block of a real header and a transaction count of zero: the
    // coinbase-height rule indexed the missing coinbase (found by the
    // `block` target, 2026-11-23).
    let bytes = std::fs::read(crate::util::test_data(
        "fuzz-regressions/block-no-transactions.bin",
    ))
    .unwrap();
    let block = powchain::consensus::Block::decode(&bytes, 1_000_000).unwrap();
    assert!(block.txdata.is_empty());
    let params = Params::regtest();
    assert_eq!(
        powchain::consensus::check_block_at_height(&params, &block, 1),
        Err(powchain::consensus::BlockError::NoTransactions)
    );
}
