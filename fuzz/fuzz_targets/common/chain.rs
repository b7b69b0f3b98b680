//! Shared by the targets that need a stored regtest chain.

use powchain::chain::ChainStore;
use powchain::consensus::{Block, Params};

/// "Now" for accepting and reopening, Unix ms: after every block's time.
pub const NOW_MS: u64 = 4_000_000_000_000;

/// A regtest chain of `n` blocks on genesis, mined by a one-node
/// simulation (deterministic: seed 7), and accepted into `chain`; returns
/// the blocks, lowest first.
pub fn mine_into(chain: &mut ChainStore, n: usize) -> Vec<Block> {
    let mut net = powchain::sim::Network::new(Params::regtest(), 1, 10, 7);
    let blocks: Vec<Block> = (0..n)
        .map(|_| {
            let h = net.mine(0);
            net.nodes[0]
                .core
                .chain()
                .block(&h)
                .expect("read")
                .expect("mined block")
        })
        .collect();
    for b in &blocks {
        chain.accept_block(b.clone(), None, NOW_MS).expect("accept");
    }
    blocks
}
