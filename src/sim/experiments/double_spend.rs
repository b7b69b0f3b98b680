//! `sim double-spend`: Rosenfeld's race of Nakamoto 2008 §11 on two real
//! cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::{derive_seed, parallel, sim_params, SIM_BLOCK_TIME_MS, TRIALS_PER_NETWORK};
use crate::consensus::BlockHash;
use crate::protocol::{StrategySpec, TraitorEvent};
use crate::sim::stats::{nakamoto, rosenfeld, wilson95};
use crate::sim::{Network, SimConfig};

/// `sim double-spend` settings.
#[derive(Clone, Debug)]
pub struct DoubleSpendConfig {
    /// Attacker hashrate shares.
    pub qs: Vec<f64>,
    /// Confirmations the merchant waits for.
    pub zs: Vec<u32>,
    /// Trials per (q, z).
    pub trials: u64,
    /// Seed.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
}

/// One (q, z) point (SPEC's `sim double-spend` row).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DoubleSpendRow {
    /// attacker share
    pub q: f64,
    /// confirmations
    pub z: u32,
    /// rounds run
    pub trials: u64,
    /// rounds whose conflicting block ended on the merchant's best chain
    pub successes: u64,
    /// successes / trials
    pub p_sim: f64,
    /// Wilson 95% interval of `p_sim`
    pub ci95: [f64; 2],
    /// Nakamoto 2008 §11
    pub p_nakamoto: f64,
    /// Rosenfeld 2014 (the race simulated)
    pub p_rosenfeld: f64,
    /// blocks behind at which the attacker gave up
    pub give_up_behind: u32,
    /// blocks mined in all the trials
    pub blocks: u64,
}

/// `sim double-spend` output.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DoubleSpendReport {
    /// the seed
    pub seed: u64,
    /// one row per (q, z), q-major
    pub results: Vec<DoubleSpendRow>,
    /// wall time, s (not deterministic)
    pub seconds: f64,
}

/// Blocks behind at which a `q` attacker gives up: the smallest depth
/// whose catch-up chance (q/p)^D (Nakamoto §11) is below 1e-7, far under
/// any interval this tool reports; 2,000 where q ≥ 1/2 (he always catches
/// up eventually; the cap ends the walk).
#[must_use]
pub fn give_up_depth(q: f64) -> u32 {
    let p = 1.0 - q;
    if q >= p {
        return 2_000;
    }
    if q <= 0.0 {
        return 1;
    }
    ((1e-7f64).ln() / (q / p).ln()).ceil().clamp(1.0, 2_000.0) as u32
}

/// Runs `trials` double-spend rounds of an attacker with share `q` against
/// a merchant waiting `z` confirmations; returns (successes, blocks).
///
/// Two cores, 1 ms apart: node 0 is the merchant and the honest network
/// (share 1 − q), node 1 runs `double-spend:z:D`. A round is a success
/// when the block holding the conflicting transaction is on the
/// merchant's best chain once the round is over.
fn double_spend_chunk(q: f64, z: u32, trials: u64, seed: u64) -> (u64, u64) {
    let d = give_up_depth(q);
    let mut config = SimConfig::new(1, seed);
    config.strategies = vec![StrategySpec::honest(), StrategySpec::double_spend(z, d)];
    config.shares = vec![Some(1.0 - q), Some(q)];
    let mut net = Network::with_config(sim_params(SIM_BLOCK_TIME_MS / 1000.0), 2, &config);
    net.record.keep_events = false;
    net.connect(0, 1);
    net.run_for(100);
    let mut done = 0u64;
    let mut successes = 0u64;
    let mut seen = 0usize;
    while done < trials {
        net.mine_next(SIM_BLOCK_TIME_MS);
        if net.record.traitor_events.len() == seen {
            continue;
        }
        let ended: Vec<BlockHash> = net.record.traitor_events[seen..]
            .iter()
            .filter_map(|(_, _, e)| match e {
                TraitorEvent::RoundEnded { conflict_block, .. } => Some(*conflict_block),
                _ => None,
            })
            .collect();
        seen = net.record.traitor_events.len();
        if ended.is_empty() {
            continue;
        }
        // Let the published branch reach the merchant (no mining meanwhile:
        // the Poisson process is memoryless).
        net.run_for(50);
        for b in ended {
            done += 1;
            if net.nodes[0]
                .core
                .chain()
                .block_info(&b)
                .is_some_and(|i| i.in_best_chain)
            {
                successes += 1;
            }
        }
    }
    (successes, net.record.mined_order.len() as u64)
}

/// `powchain sim double-spend`.
#[must_use]
pub fn double_spend(
    config: &DoubleSpendConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> DoubleSpendReport {
    let started = Instant::now();
    let chunks_per_point = config.trials.div_ceil(TRIALS_PER_NETWORK).max(1);
    let mut jobs = Vec::new();
    for (qi, &q) in config.qs.iter().enumerate() {
        for (zi, &z) in config.zs.iter().enumerate() {
            for c in 0..chunks_per_point {
                let n = TRIALS_PER_NETWORK.min(config.trials - c * TRIALS_PER_NETWORK);
                jobs.push((qi, zi, q, z, c, n));
            }
        }
    }
    let done = AtomicUsize::new(0);
    let results = parallel(jobs.len(), config.threads, |j| {
        let (qi, zi, q, z, c, n) = jobs[j];
        let r = double_spend_chunk(q, z, n, derive_seed(config.seed, qi as u64, zi as u64, c));
        let d = done.fetch_add(n as usize, Ordering::Relaxed) + n as usize;
        progress(d as u64);
        r
    });
    let mut rows = Vec::new();
    let mut k = 0;
    for &q in &config.qs {
        for &z in &config.zs {
            let (mut s, mut blocks) = (0, 0);
            for r in &results[k..k + chunks_per_point as usize] {
                s += r.0;
                blocks += r.1;
            }
            k += chunks_per_point as usize;
            let p_sim = s as f64 / config.trials.max(1) as f64;
            rows.push(DoubleSpendRow {
                q,
                z,
                trials: config.trials,
                successes: s,
                p_sim,
                ci95: wilson95(s, config.trials),
                p_nakamoto: nakamoto(q, z),
                p_rosenfeld: rosenfeld(q, z),
                give_up_behind: give_up_depth(q),
                blocks,
            });
        }
    }
    DoubleSpendReport {
        seed: config.seed,
        results: rows,
        seconds: started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn give_up_depth_bounds_the_lost_catch_ups() {
        for q in [0.05, 0.1, 0.3, 0.45] {
            let d = give_up_depth(q);
            assert!((q / (1.0 - q)).powi(d as i32) < 1e-7, "{q}");
            assert!((q / (1.0 - q)).powi(d as i32 - 1) >= 1e-7, "{q}");
        }
        assert_eq!(give_up_depth(0.5), 2_000);
    }
}
