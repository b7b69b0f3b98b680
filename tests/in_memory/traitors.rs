//! Traitor strategies run by the real protocol core in memory (the
//! simulator's network, virtual time): what each one does to honest nodes.

use powchain::consensus::Params;
use powchain::protocol::{NodeEvent, StrategySpec, TraitorEvent};
use powchain::sim::{Network, SimConfig};

fn net_with(strategies: Vec<StrategySpec>, n: usize) -> Network {
    let mut cfg = SimConfig::new(20, 11);
    cfg.strategies = strategies;
    Network::with_config(Params::regtest(), n, &cfg)
}

/// spam-invalid: blocks with valid proof of work that break the merkle
/// root, the bits, the time or the coinbase height. The honest nodes
/// store none of them, relay none of them and ban the spammer — and never
/// the honest node between them.
#[test]
fn spam_invalid_bans_the_spammer_and_stores_nothing() {
    let mut net = net_with(vec!["spam-invalid".parse().unwrap()], 3);
    net.connect(0, 1);
    net.connect(1, 2);
    net.run_for(500);
    for _ in 0..8 {
        net.mine_job(0);
        net.run_for(500);
    }
    let spam: Vec<_> = net
        .record
        .traitor_events
        .iter()
        .filter(|(_, _, e)| matches!(e, TraitorEvent::Spam { .. }))
        .collect();
    assert!(spam.len() >= 4, "every kind sent: {spam:?}");
    for i in [1, 2] {
        assert_eq!(
            net.nodes[i].core.chain().block_count(),
            1,
            "node {i} stored spam"
        );
        assert_eq!(net.height(i), 0);
    }
    let spammer = net.nodes[0].peer_id;
    let relayer = net.nodes[1].peer_id;
    assert!(net.nodes[1].core.peers().is_banned(&spammer, net.now_ms()));
    assert!(!net.nodes[2].core.peers().is_banned(&relayer, net.now_ms()));
    // Node 2 never saw a spam block: node 1 relayed none.
    assert_eq!(net.nodes[2].core.stats().blocks_received, 0);
    // And the honest pair still works.
    net.mine(1);
    net.run_for(500);
    assert_eq!(net.height(2), 1);
}

/// equivocate: two blocks at one height, one to each half of the peers.
/// The honest halves hold different tips until the next block, then all
/// converge on one chain.
#[test]
fn equivocation_splits_the_honest_nodes_until_the_next_block() {
    let mut net = net_with(vec!["equivocate".parse().unwrap()], 5);
    for i in 1..5 {
        net.connect(0, i);
    }
    net.connect(1, 2);
    net.connect(2, 3);
    net.connect(3, 4);
    net.run_for(500);
    net.mine_job(0);
    net.mine_job(0);
    net.run_for(2_000);
    let (first, second) = net
        .record
        .traitor_events
        .iter()
        .find_map(|(_, _, e)| match e {
            TraitorEvent::Equivocated { first, second, .. } => Some((*first, *second)),
            _ => None,
        })
        .expect("the equivocator sent two blocks");
    assert_ne!(first, second);
    let tips: Vec<_> = (1..5).map(|i| net.tip(i)).collect();
    assert!(tips.iter().all(|t| *t == first || *t == second), "{tips:?}");
    assert!(
        tips.contains(&first) && tips.contains(&second),
        "two halves: {tips:?}"
    );
    assert!((1..5).all(|i| net.height(i) == 1));
    // The next honest block decides it.
    net.mine(1);
    net.run_for(3_000);
    let t = net.tip(1);
    assert!((1..5).all(|i| net.tip(i) == t), "converged");
    assert_eq!(net.height(4), 2);
}

/// withhold: blocks mined and never published nor served: a node that
/// syncs from the withholder gets nothing, the withholder's handshake
/// shows only the public chain.
#[test]
fn withheld_blocks_are_neither_published_nor_served() {
    let mut net = net_with(vec!["withhold".parse().unwrap()], 2);
    net.run_for(100);
    for _ in 0..3 {
        net.mine_job(0);
        net.run_for(100);
    }
    assert_eq!(net.height(0), 3);
    net.connect(0, 1);
    net.run_for(10_000);
    assert_eq!(net.height(1), 0, "nothing withheld reached the honest node");
    assert_eq!(net.nodes[1].core.chain().block_count(), 1);
    // The honest node's blocks still reach the withholder.
    net.mine(1);
    net.run_for(500);
    assert!(net.nodes[0].core.chain().block_info(&net.tip(1)).is_some());
    let withheld = net
        .record
        .traitor_events
        .iter()
        .filter(|(_, _, e)| matches!(e, TraitorEvent::Withheld { .. }))
        .count();
    assert_eq!(withheld, 3);
    assert!(!net.nodes[0]
        .events
        .iter()
        .any(|(_, e)| matches!(e, NodeEvent::Traitor(TraitorEvent::Published { .. }))));
}
