//! Chain store scenarios: races, ties, deep re-orgs, orphans, invalid
//! branches, pool limits, restart, and delivery-order independence.

use std::sync::Arc;

use crate::util::{regtest_block, regtest_chain, NOW_MS};
use powchain::chain::orphans::OrphanLimits;
use powchain::chain::{
    BlockStatus, ChainError, ChainStore, MemStore, Precheck, RedbStore, TipStatus,
};
use powchain::consensus::{Block, Params};
use proptest::prelude::*;

fn store() -> (Arc<Params>, ChainStore) {
    let p = Arc::new(Params::regtest());
    let cs = ChainStore::open(Arc::clone(&p), Box::new(MemStore::default())).unwrap();
    (p, cs)
}

fn t0(p: &Params) -> u32 {
    p.genesis.header.time + 1
}

#[test]
fn two_way_race_then_the_longer_branch_wins() {
    let (p, mut cs) = store();
    let base = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 5, 0);
    for b in &base {
        assert_eq!(
            cs.accept_block(b.clone(), None, NOW_MS).unwrap().status,
            BlockStatus::Connected
        );
    }
    let tip5 = base[4].block_hash();
    let a = regtest_block(&p, tip5, 6, t0(&p) + 10, 1, vec![]);
    let b = regtest_block(&p, tip5, 6, t0(&p) + 10, 2, vec![]);
    assert_eq!(
        cs.accept_block(a.clone(), Some("pa"), NOW_MS)
            .unwrap()
            .status,
        BlockStatus::Connected
    );
    assert_eq!(
        cs.accept_block(b.clone(), Some("pb"), NOW_MS)
            .unwrap()
            .status,
        BlockStatus::SideBranch
    );
    assert_eq!(cs.tip(), a.block_hash());
    assert_eq!(cs.stale_count(), 1);
    // b's side gets the next block: re-org of depth 1.
    let b2 = regtest_block(&p, b.block_hash(), 7, t0(&p) + 11, 2, vec![]);
    let u = cs.accept_block(b2.clone(), Some("pb"), NOW_MS).unwrap();
    assert_eq!(u.status, BlockStatus::Connected);
    let r = u.tip_change.unwrap().reorg.unwrap();
    assert_eq!(r.depth, 1);
    assert_eq!(r.disconnected, vec![a.block_hash()]);
    assert_eq!(r.connected, vec![b.block_hash(), b2.block_hash()]);
    assert_eq!(r.fork_point, tip5);
    assert_eq!(cs.tip(), b2.block_hash());
    assert_eq!(cs.reorg_count(), 1);
    assert_eq!(cs.stale_blocks()[0].hash, a.block_hash());
    let tips = cs.chain_tips();
    assert_eq!(tips.len(), 2);
    assert!(tips
        .iter()
        .any(|t| t.status == TipStatus::ValidFork && t.hash == a.block_hash() && t.branchlen == 1));
    assert!(tips
        .iter()
        .any(|t| t.status == TipStatus::Active && t.height == 7));
}

#[test]
fn equal_work_keeps_the_first_seen() {
    let (p, mut cs) = store();
    let a = regtest_block(&p, p.genesis_hash, 1, t0(&p), 1, vec![]);
    let b = regtest_block(&p, p.genesis_hash, 1, t0(&p), 2, vec![]);
    cs.accept_block(b.clone(), None, NOW_MS).unwrap();
    cs.accept_block(a.clone(), None, NOW_MS).unwrap();
    assert_eq!(cs.tip(), b.block_hash());
    assert_eq!(cs.reorg_count(), 0);
}

#[test]
fn reorg_100_deep() {
    let (p, mut cs) = store();
    let main = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 100, 1);
    let side = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 101, 2);
    for b in &main {
        cs.accept_block(b.clone(), None, NOW_MS).unwrap();
    }
    let mut last = None;
    for b in &side {
        last = Some(cs.accept_block(b.clone(), None, NOW_MS).unwrap());
    }
    let r = last.unwrap().tip_change.unwrap().reorg.unwrap();
    assert_eq!(r.depth, 100);
    assert_eq!(r.connected.len(), 101);
    assert_eq!(r.fork_point, p.genesis_hash);
    assert_eq!(cs.height(), 101);
    assert_eq!(cs.stale_count(), 100);
    assert_eq!(cs.info_at_height(50).unwrap().hash, side[49].block_hash());
    // The locator starts at the tip and ends at genesis.
    let loc = cs.locator();
    assert_eq!(loc[0], cs.tip());
    assert_eq!(*loc.last().unwrap(), p.genesis_hash);
    assert!(loc.len() < 25);
}

#[test]
fn orphan_chain_delivered_child_first_connects() {
    let (p, mut cs) = store();
    let chain = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 10, 3);
    for b in chain.iter().rev().take(9) {
        let u = cs.accept_block(b.clone(), Some("peer"), NOW_MS).unwrap();
        assert_eq!(u.status, BlockStatus::Orphan);
        // The missing ancestor is the parent of the lowest orphan held.
        assert_eq!(u.missing, Some(b.header.prev_blockhash));
    }
    assert_eq!(cs.orphans().len(), 9);
    let u = cs
        .accept_block(chain[0].clone(), Some("peer"), NOW_MS)
        .unwrap();
    assert_eq!(u.added.len(), 10);
    assert_eq!(cs.height(), 10);
    assert_eq!(cs.tip(), chain[9].block_hash());
    assert!(cs.orphans().is_empty());
}

#[test]
fn invalid_block_in_a_branch_poisons_its_descendants() {
    let (p, mut cs) = store();
    let good = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 3, 4);
    for b in &good {
        cs.accept_block(b.clone(), None, NOW_MS).unwrap();
    }
    // A block whose coinbase claims the wrong height.
    let bad = regtest_block(&p, good[2].block_hash(), 99, t0(&p) + 5, 5, vec![]);
    let e = cs
        .accept_block(bad.clone(), Some("evil"), NOW_MS)
        .unwrap_err();
    assert!(matches!(e, ChainError::Invalid { .. }), "{e}");
    assert!(e.is_peer_fault());
    let child = regtest_block(&p, bad.block_hash(), 5, t0(&p) + 6, 5, vec![]);
    let child_hash = child.block_hash();
    let child_header = child.header;
    assert!(matches!(
        cs.accept_block(child, Some("evil"), NOW_MS),
        Err(ChainError::InvalidAncestor { .. })
    ));
    assert!(matches!(
        cs.accept_block(bad, Some("evil"), NOW_MS),
        Err(ChainError::KnownInvalid(_))
    ));
    assert_eq!(cs.height(), 3);
    // Core's getchaintips: the invalid branch has one tip, its leaf, two
    // blocks off the best chain; its header is kept.
    let invalid: Vec<_> = cs
        .chain_tips()
        .into_iter()
        .filter(|t| t.status == TipStatus::Invalid)
        .map(|t| (t.hash, t.height, t.branchlen))
        .collect();
    assert_eq!(invalid, vec![(child_hash, 5, 2)]);
    assert_eq!(cs.header_of(&child_hash), Some(child_header));
    // A time at the median-time-past is invalid too.
    let mut stale_time = regtest_block(&p, good[2].block_hash(), 4, good[1].header.time, 6, vec![]);
    stale_time.header.time = good[1].header.time;
    assert!(cs.accept_block(stale_time, None, NOW_MS).is_err());
    // An orphan that turns out invalid once its parent arrives is rejected.
    let parent = regtest_block(&p, good[2].block_hash(), 4, t0(&p) + 7, 7, vec![]);
    let bad_orphan = regtest_block(&p, parent.block_hash(), 77, t0(&p) + 8, 7, vec![]);
    assert_eq!(
        cs.accept_block(bad_orphan.clone(), Some("x"), NOW_MS)
            .unwrap()
            .status,
        BlockStatus::Orphan
    );
    let u = cs.accept_block(parent, None, NOW_MS).unwrap();
    assert_eq!(u.rejected_orphans.len(), 1);
    assert_eq!(u.rejected_orphans[0].hash, bad_orphan.block_hash());
    assert_eq!(cs.height(), 4);
}

#[test]
fn bad_proof_of_work_is_never_stored() {
    let (p, mut cs) = store();
    let mut b = regtest_block(&p, p.genesis_hash, 1, t0(&p), 1, vec![]);
    // Find a nonce that fails the (very easy) regtest target.
    while p.pow_limit.is_met_by(&b.header.block_hash()) {
        b.header.nonce += 1;
    }
    let e = cs.accept_block(b, Some("x"), NOW_MS).unwrap_err();
    assert!(e.to_string().contains("high-hash"), "{e}");
    assert_eq!(cs.block_count(), 1);
    assert!(cs.orphans().is_empty());
}

#[test]
fn orphan_pool_overflow_per_peer_limit_and_expiry() {
    let p = Arc::new(Params::regtest());
    let limits = OrphanLimits {
        max_count: 5,
        max_bytes: 1 << 20,
        max_per_peer: 3,
        expiry_secs: 60,
    };
    let mut cs =
        ChainStore::open_with(Arc::clone(&p), Box::new(MemStore::default()), limits).unwrap();
    let fake_parent = powchain::consensus::BlockHash([9u8; 32]);
    let orphans: Vec<Block> = (0..8)
        .map(|i| regtest_block(&p, fake_parent, 5, t0(&p), i, vec![]))
        .collect();
    for b in &orphans[..3] {
        cs.accept_block(b.clone(), Some("flooder"), NOW_MS).unwrap();
    }
    assert!(matches!(
        cs.accept_block(orphans[3].clone(), Some("flooder"), NOW_MS),
        Err(ChainError::OrphanRefused { .. })
    ));
    for (i, b) in orphans[3..8].iter().enumerate() {
        cs.accept_block(
            b.clone(),
            Some(&format!("peer{i}")),
            NOW_MS + 1000 * i as u64,
        )
        .unwrap();
    }
    assert_eq!(cs.orphans().len(), 5);
    assert!(cs.orphans().evicted() >= 3);
    assert_eq!(cs.expire_orphans(NOW_MS + 1_000_000), 5);
    assert!(cs.orphans().is_empty());
}

#[test]
fn redb_store_reopens_with_the_same_tip_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let p = Arc::new(Params::regtest());
    let main = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 20, 1);
    let side = regtest_chain(&p, main[9].block_hash(), 10, t0(&p) + 20, 5, 2);
    let (tip, count, stale) = {
        let mut cs =
            ChainStore::open(Arc::clone(&p), Box::new(RedbStore::open(&path).unwrap())).unwrap();
        for b in main.iter().chain(&side) {
            cs.accept_block(b.clone(), None, NOW_MS).unwrap();
        }
        (cs.tip(), cs.block_count(), cs.stale_count())
    };
    let cs = ChainStore::open(Arc::clone(&p), Box::new(RedbStore::open(&path).unwrap())).unwrap();
    assert_eq!(cs.tip(), tip);
    assert_eq!(cs.block_count(), count);
    assert_eq!(cs.stale_count(), stale);
    assert_eq!(cs.block(&side[4].block_hash()).unwrap().unwrap(), side[4]);
    drop(cs);
    // Another network's store is refused.
    let other = Arc::new(Params::testnet(2));
    assert!(ChainStore::open(other, Box::new(RedbStore::open(&path).unwrap())).is_err());
}

fn deliver(p: &Arc<Params>, blocks: &[Block]) -> ChainStore {
    let mut cs = ChainStore::open(Arc::clone(p), Box::new(MemStore::default())).unwrap();
    for b in blocks {
        let _ = cs.accept_block(b.clone(), Some("peer"), NOW_MS);
    }
    cs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Any delivery order of the same blocks ends with the same chainwork,
    /// the same known blocks, no orphans left, and the same tip when no two
    /// tips have equal work.
    #[test]
    fn delivery_order_does_not_matter(seed in any::<u64>(), fork_at in 1u32..6, side_len in 1u32..8) {
        use rand::{seq::SliceRandom, SeedableRng};
        let p = Arc::new(Params::regtest());
        let main = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 8, 1);
        let side = regtest_chain(&p, main[fork_at as usize - 1].block_hash(), fork_at, t0(&p) + 100, side_len, 2);
        let mut all: Vec<Block> = main.iter().chain(&side).cloned().collect();
        let reference = deliver(&p, &all);
        all.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let shuffled = deliver(&p, &all);
        prop_assert_eq!(shuffled.chainwork(), reference.chainwork());
        prop_assert_eq!(shuffled.block_count(), reference.block_count());
        prop_assert!(shuffled.orphans().is_empty());
        let main_len = 8;
        let side_tip = fork_at + side_len;
        if side_tip != main_len {
            prop_assert_eq!(shuffled.tip(), reference.tip());
        }
    }
}

/// `precheck` (used to relay a block before it is written) gives the
/// verdict `accept_block` would give, and stores or remembers nothing.
#[test]
fn precheck_agrees_with_accept_and_stores_nothing() {
    let (p, mut cs) = store();
    let base = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 3, 0);
    cs.accept_block(base[0].clone(), None, NOW_MS).unwrap();
    let count = cs.block_count();
    // Valid on a known parent; an orphan (parent base[1] unknown); known.
    assert_eq!(cs.precheck(&base[1], NOW_MS).unwrap(), Precheck::Valid);
    assert_eq!(cs.precheck(&base[2], NOW_MS).unwrap(), Precheck::Orphan);
    assert_eq!(cs.precheck(&base[0], NOW_MS).unwrap(), Precheck::Known);
    assert_eq!(cs.block_count(), count);
    assert_eq!(cs.orphans().len(), 0);
    // Wrong coinbase height (a contextual body rule), wrong merkle root and
    // a time before median-time-past: each refused, as accept_block does.
    let bad_height = regtest_block(&p, base[0].block_hash(), 7, t0(&p) + 5, 9, vec![]);
    let mut bad_merkle = base[1].clone();
    bad_merkle.txdata.push(vec![1, 2, 3]);
    let too_old = regtest_block(
        &p,
        base[0].block_hash(),
        2,
        p.genesis.header.time,
        9,
        vec![],
    );
    for bad in [bad_height, bad_merkle, too_old] {
        let pre = cs.precheck(&bad, NOW_MS).unwrap_err().to_string();
        let acc = cs
            .accept_block(bad, Some("x"), NOW_MS)
            .unwrap_err()
            .to_string();
        assert_eq!(pre, acc);
    }
    assert_eq!(cs.block_count(), count);
    // Bad proof of work: refused by both.
    let mut bad_pow = base[1].clone();
    while p.pow_limit.is_met_by(&bad_pow.header.block_hash()) {
        bad_pow.header.nonce += 1;
    }
    assert!(matches!(
        cs.precheck(&bad_pow, NOW_MS),
        Err(ChainError::Invalid { .. })
    ));
    // And the valid one is then accepted as precheck said.
    assert_eq!(
        cs.accept_block(base[1].clone(), None, NOW_MS)
            .unwrap()
            .status,
        BlockStatus::Connected
    );
}

/// The fork tree (`GET /tree`): a 30-block chain with a stale block at
/// height 20, an invalid block at 25 and an orphan. Every non-best block
/// is listed with its status; the best chain is shown near the fork, the
/// window's ends and the tip, the rest collapsed into hidden runs that,
/// with the shown blocks, cover every best-chain height exactly once.
#[test]
fn the_fork_tree_lists_every_fork_and_collapses_straight_runs() {
    use powchain::chain::{TreeStatus, TREE_CONTEXT};
    let (p, mut cs) = store();
    let main = regtest_chain(&p, p.genesis_hash, 0, t0(&p), 30, 0);
    for b in &main {
        cs.accept_block(b.clone(), None, NOW_MS).unwrap();
    }
    let stale = regtest_block(&p, main[18].block_hash(), 20, t0(&p) + 19, 9, vec![]);
    cs.accept_block(stale.clone(), Some("pa"), NOW_MS).unwrap();
    let bad = regtest_block(&p, main[23].block_hash(), 99, t0(&p) + 24, 8, vec![]);
    assert!(cs.accept_block(bad.clone(), Some("evil"), NOW_MS).is_err());
    let missing = regtest_block(&p, main[29].block_hash(), 31, t0(&p) + 40, 7, vec![]);
    let orphan = regtest_block(&p, missing.block_hash(), 32, t0(&p) + 41, 7, vec![]);
    cs.accept_block(orphan.clone(), Some("pb"), NOW_MS).unwrap();

    let t = cs.tree(None, None);
    assert_eq!(t.tip, main[29].block_hash());
    let find = |h| t.blocks.iter().find(|b| b.hash == h).unwrap();
    let s = find(stale.block_hash());
    assert_eq!(
        (s.status, s.height, s.prev),
        (TreeStatus::Stale, Some(20), main[18].block_hash())
    );
    let i = find(bad.block_hash());
    assert_eq!(
        (i.status, i.height, i.prev),
        (TreeStatus::Invalid, Some(25), main[23].block_hash())
    );
    let o = find(orphan.block_hash());
    assert_eq!((o.status, o.height), (TreeStatus::Orphan, Some(32)));
    // The tip, the fork's neighbourhood and the window's bottom are drawn.
    let active: Vec<u32> = t
        .blocks
        .iter()
        .filter(|b| b.status == TreeStatus::Active)
        .map(|b| b.height.unwrap())
        .collect();
    for h in [0, 19, 24, 28, 29, 30] {
        assert!(active.contains(&h), "height {h} not drawn: {active:?}");
    }
    // Straight stretches are hidden: 3..=16 (fork at 19 shows 17..=21).
    assert!(!t.hidden.is_empty(), "{:?}", t.hidden);
    assert_eq!(t.hidden[0].from_height, 1 + TREE_CONTEXT);
    let hidden: u32 = t.hidden.iter().map(|h| h.count).sum();
    assert_eq!(
        hidden as usize + active.len(),
        31,
        "{:?} {active:?}",
        t.hidden
    );
    for h in &t.hidden {
        assert_eq!(h.count, h.to_height - h.from_height + 1);
        assert!(!active
            .iter()
            .any(|a| (h.from_height..=h.to_height).contains(a)));
    }
    // A window: heights 20..=22 only, no collapse needed.
    let w = cs.tree(Some(20), Some(22));
    assert!(w
        .blocks
        .iter()
        .all(|b| (20..=22).contains(&b.height.unwrap())));
    assert_eq!(w.blocks.len(), 4, "3 best-chain blocks and the stale one");
    assert!(w.hidden.is_empty());
    // Each block is also found alone, as the event stream reports it.
    assert_eq!(
        cs.tree_block(&stale.block_hash()).unwrap().status,
        TreeStatus::Stale
    );
    assert_eq!(
        cs.tree_block(&bad.block_hash()).unwrap().status,
        TreeStatus::Invalid
    );
    assert_eq!(
        cs.tree_block(&orphan.block_hash()).unwrap().status,
        TreeStatus::Orphan
    );
    assert!(cs.tree_block(&missing.block_hash()).is_none());
}

/// Issue 22, item 6: an orphan's claimed height (its coinbase's, checked
/// by nothing until its parent arrives) does not choose the default tree
/// window. Before the fix one orphan claiming height 4,000,000,000 moved
/// the window to 3,999,999,901..=4,000,000,000, off the whole chain.
#[test]
fn an_orphans_claimed_height_does_not_move_the_tree_window() {
    let (p, mut cs) = store();
    for b in regtest_chain(&p, p.genesis_hash, 0, t0(&p), 10, 3) {
        cs.accept_block(b, None, NOW_MS).unwrap();
    }
    let liar = regtest_block(
        &p,
        powchain::consensus::BlockHash([0x5a; 32]),
        4_000_000_000,
        t0(&p) + 20,
        99,
        vec![],
    );
    let u = cs.accept_block(liar.clone(), Some("liar"), NOW_MS).unwrap();
    assert_eq!(u.status, BlockStatus::Orphan);
    let tree = cs.tree(None, None);
    let tip = tree
        .blocks
        .iter()
        .find(|b| b.hash == cs.tip())
        .expect("the tip is in the default window");
    assert_eq!(tip.height, Some(10));
    // The orphan is listed where it claims to be when that window is asked for.
    let far = cs.tree(Some(3_999_999_990), Some(4_000_000_000));
    assert!(far.blocks.iter().any(|b| b.hash == liar.block_hash()));
}

/// Issue 22, item 8: a window's span costs nothing by itself. Heights 0
/// and u32::MAX used to overflow the dense vector's size (a panic) and
/// 0..=4,000,000,000 allocated 4 GB and took 8.8 s.
#[test]
fn folding_a_huge_window_costs_what_its_anchors_cost() {
    use powchain::chain::{fold_straight_runs, TREE_CONTEXT};
    let (shown, hidden) = fold_straight_runs(0, u32::MAX, [0, 4_000_000_000, u32::MAX]);
    let heights: Vec<u32> = shown.iter().collect();
    // 0..=2, 4e9-2..=4e9+2 and u32::MAX-2..=u32::MAX.
    assert_eq!(
        heights.len() as u32,
        2 * (TREE_CONTEXT + 1) + 2 * TREE_CONTEXT + 1
    );
    assert!(shown.contains(0) && shown.contains(4_000_000_002) && shown.contains(u32::MAX));
    assert!(!shown.contains(3) && !shown.contains(4_000_000_003));
    assert_eq!(hidden.len(), 2);
    assert_eq!(hidden[0].from_height, TREE_CONTEXT + 1);
    assert_eq!(hidden[1].to_height, u32::MAX - TREE_CONTEXT - 1);
    let covered: u64 =
        hidden.iter().map(|r| u64::from(r.count)).sum::<u64>() + heights.len() as u64;
    assert_eq!(covered, 1 << 32);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// The folded window matches the dense definition: a height is shown
    /// when it lies within TREE_CONTEXT of an anchor, and the hidden runs
    /// are exactly the maximal runs of the others.
    #[test]
    fn folding_matches_the_dense_definition(
        from in 0u32..50,
        len in 0u32..60,
        anchors in proptest::collection::vec(0u32..120, 0..8),
    ) {
        use powchain::chain::{fold_straight_runs, TREE_CONTEXT};
        let to = from + len;
        let (shown, hidden) = fold_straight_runs(from, to, anchors.clone());
        let near = |h: u32| anchors.iter().any(|&a| h.abs_diff(a) <= TREE_CONTEXT);
        let dense: Vec<u32> = (from..=to).filter(|&h| near(h)).collect();
        prop_assert_eq!(shown.iter().collect::<Vec<_>>(), dense);
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for h in (from..=to).filter(|&h| !near(h)) {
            match runs.last_mut() {
                Some(r) if r.1 + 1 == h => r.1 = h,
                _ => runs.push((h, h)),
            }
        }
        let got: Vec<(u32, u32)> = hidden.iter().map(|r| (r.from_height, r.to_height)).collect();
        prop_assert_eq!(got, runs);
        prop_assert!(hidden.iter().all(|r| r.count == r.to_height - r.from_height + 1));
    }
}
