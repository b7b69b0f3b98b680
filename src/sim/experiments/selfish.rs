//! `sim selfish`: a selfish pool (SM1, the optimal MDP policy or a
//! stubborn strategy) against honest nodes whose latencies realise γ.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::{derive_seed, parallel, sim_params, SIM_BLOCK_TIME_MS};
use crate::protocol::strategy::mdp::{SelfishMdp, DEFAULT_MAX_LEN};
use crate::protocol::{PublishReason, StrategySpec, TraitorEvent};
use crate::sim::stats::{eyal_sirer, mean_ci95, selfish_threshold};
use crate::sim::{Network, SimConfig};

/// The pool's strategy in `sim selfish` (`--strategy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelfishStrategy {
    /// Eyal–Sirer SM1 (`sm1`, the node's `selfish`).
    Sm1,
    /// The optimal policy of Sapirshtein–Sompolinsky–Zohar's MDP, solved at
    /// the row's α and asked γ (`optimal`, the node's
    /// `optimal-selfish:α:γ`).
    Optimal,
    /// Nayak et al.'s stubborn strategies (`stubborn:LETTERS`, e.g. `L`,
    /// `FT2`).
    Stubborn(String),
}

impl SelfishStrategy {
    /// The node strategy the pool runs at (α, γ).
    #[must_use]
    pub fn spec(&self, alpha: f64, gamma: f64) -> StrategySpec {
        let text = match self {
            SelfishStrategy::Sm1 => "selfish".to_string(),
            SelfishStrategy::Optimal => format!("optimal-selfish:{alpha}:{gamma}"),
            SelfishStrategy::Stubborn(l) => format!("stubborn:{l}"),
        };
        text.parse().expect("a checked selfish strategy")
    }
}

impl std::fmt::Display for SelfishStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelfishStrategy::Sm1 => f.write_str("sm1"),
            SelfishStrategy::Optimal => f.write_str("optimal"),
            SelfishStrategy::Stubborn(l) => write!(f, "stubborn:{l}"),
        }
    }
}

/// A `--strategy` of `sim selfish` that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum SelfishStrategyError {
    /// Not `sm1`, `optimal` or `stubborn:...`.
    #[error(transparent)]
    Form(#[from] crate::value::ValueError),
    /// `stubborn:` with letters the stubborn strategy refuses.
    #[error(transparent)]
    Stubborn(#[from] crate::protocol::strategy::StrategyParseError),
}

impl std::str::FromStr for SelfishStrategy {
    type Err = SelfishStrategyError;

    /// `sm1`, `optimal` or `stubborn:[L][F][Tj]`.
    fn from_str(s: &str) -> Result<SelfishStrategy, SelfishStrategyError> {
        match s {
            "sm1" => Ok(SelfishStrategy::Sm1),
            "optimal" => Ok(SelfishStrategy::Optimal),
            _ => {
                let letters = s.strip_prefix("stubborn:").ok_or_else(|| {
                    crate::value::ValueError::form(s, "sm1, optimal or stubborn:[L][F][Tj]")
                })?;
                s.parse::<StrategySpec>()?;
                Ok(SelfishStrategy::Stubborn(letters.to_string()))
            }
        }
    }
}

impl Serialize for SelfishStrategy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `sim selfish` settings.
#[derive(Clone, Debug)]
pub struct SelfishConfig {
    /// The pool's strategy.
    pub strategy: SelfishStrategy,
    /// Pool shares.
    pub alphas: Vec<f64>,
    /// Target tie-breaking shares (realised by the network's latencies).
    pub gammas: Vec<f64>,
    /// Blocks mined per (α, γ), pool and honest together.
    pub blocks: u64,
    /// Honest nodes (equal shares).
    pub honest_nodes: usize,
    /// Seed.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
}

/// One (α, γ) point (SPEC's `sim selfish` row).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SelfishRow {
    /// the pool's strategy (`sm1`, `optimal`, `stubborn:...`)
    pub strategy: SelfishStrategy,
    /// pool share
    pub alpha: f64,
    /// tie-breaking share asked for
    pub gamma: f64,
    /// share of honest hashrate that mined on the pool's block in the
    /// races, as the network delivered it
    pub gamma_realised: f64,
    /// races (SM1 "match" publications)
    pub races: u64,
    /// blocks mined
    pub blocks: u64,
    /// the pool's share of the final best chain
    pub revenue_sim: f64,
    /// 95% interval (batch means over 20 stretches of the chain)
    pub ci95: [f64; 2],
    /// Eyal–Sirer eq. (8) at α and the realised γ
    pub revenue_eyal_sirer: f64,
    /// (1 − γ)/(3 − 2γ) at the realised γ
    pub threshold: f64,
    /// blocks not on the final best chain / blocks mined
    pub stale_rate: f64,
    /// `optimal`: the MDP's optimal relative revenue at α and the asked γ
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_mdp: Option<f64>,
    /// `optimal`: the MDP's optimal relative revenue at α and the realised
    /// γ (what `revenue_sim` should match)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_mdp_realised: Option<f64>,
    /// `optimal`: the MDP's truncation (most blocks of either branch)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mdp_max_len: Option<u32>,
}

/// `sim selfish` output.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SelfishReport {
    /// the seed
    pub seed: u64,
    /// one row per (α, γ), α-major
    pub results: Vec<SelfishRow>,
    /// wall time, s (not deterministic)
    pub seconds: f64,
}

/// One-way latencies of the selfish-mining network, ms: honest to honest,
/// anyone to the pool, and the pool to the honest nodes it reaches first
/// ("close") and last ("far"). The pool hears every block at once and its
/// block beats an honest one to the close nodes only, so the share of
/// honest hashrate that sees the pool's block first in a tie — Eyal &
/// Sirer's γ — is a property of the network, measured, not a coin.
const HONEST_MS: u64 = 100;
const TO_POOL_MS: u64 = 10;
const POOL_CLOSE_MS: u64 = 10;
const POOL_FAR_MS: u64 = 1_000;

fn selfish_point(alpha: f64, gamma: f64, cfg: &SelfishConfig, seed: u64) -> SelfishRow {
    let n = cfg.honest_nodes.max(2);
    let mut config = SimConfig::new(HONEST_MS, seed);
    config.strategies = vec![cfg.strategy.spec(alpha, gamma)];
    config.shares = vec![Some(alpha)];
    let mut net = Network::with_config(sim_params(SIM_BLOCK_TIME_MS / 1000.0), n + 1, &config);
    net.record.keep_events = false;
    let close = ((gamma * n as f64).round() as usize).min(n);
    for a in 1..=n {
        for b in a + 1..=n {
            net.connect(a, b);
        }
        net.connect(0, a);
        net.set_latency(a, 0, TO_POOL_MS);
        net.set_latency(
            0,
            a,
            if a <= close {
                POOL_CLOSE_MS
            } else {
                POOL_FAR_MS
            },
        );
    }
    net.run_for(1_000);
    let honest_share = 1.0 - alpha;
    let mut gamma_samples = Vec::new();
    let mut seen = 0usize;
    for _ in 0..cfg.blocks {
        let gap = net.draw_gap_ms(SIM_BLOCK_TIME_MS);
        net.run_for(gap);
        // A match published since the last discovery is decided by the
        // block found now: which honest miners are on the pool's block?
        let race = net.record.traitor_events[seen..]
            .iter()
            .rev()
            .find_map(|(_, _, e)| match e {
                TraitorEvent::Published {
                    hashes,
                    why: PublishReason::Match,
                } => hashes.last().copied(),
                _ => None,
            });
        seen = net.record.traitor_events.len();
        if let Some(r) = race {
            let on_pool: f64 = (1..=n)
                .filter(|&i| net.tip(i) == r)
                .map(|i| net.nodes[i].hashrate_share)
                .sum();
            gamma_samples.push(on_pool / honest_share);
        }
        let who = net.draw_miner();
        net.mine_job(who);
    }
    // The pool stops: it publishes a private lead, as a finite run must to
    // count what the long-run analysis counts.
    net.command(0, crate::protocol::Command::SetMining(false))
        .expect("in-memory store never fails");
    net.run_for(60_000);
    // The final best chain of an honest node, genesis excluded.
    let chain = net.nodes[1].core.chain();
    let height = chain.height();
    let mut pool_flags = Vec::with_capacity(height as usize);
    for h in 1..=height {
        if let Some(info) = chain.info_at_height(h) {
            pool_flags.push(
                net.record
                    .mined
                    .get(&info.hash)
                    .is_some_and(|m| m.miner == 0),
            );
        }
    }
    let pool_blocks = pool_flags.iter().filter(|&&p| p).count();
    let revenue = pool_blocks as f64 / pool_flags.len().max(1) as f64;
    let batch = (pool_flags.len() / 20).max(1);
    let batches: Vec<f64> = pool_flags
        .chunks(batch)
        .filter(|c| c.len() == batch)
        .map(|c| c.iter().filter(|&&p| p).count() as f64 / batch as f64)
        .collect();
    let (_, ci) = mean_ci95(&batches);
    let gamma_realised = if gamma_samples.is_empty() {
        0.0
    } else {
        gamma_samples.iter().sum::<f64>() / gamma_samples.len() as f64 + 0.0
    };
    let mined = net.record.mined_order.len() as u64;
    let mdp = |g: f64| SelfishMdp::solve(alpha, g, DEFAULT_MAX_LEN).revenue;
    let optimal = cfg.strategy == SelfishStrategy::Optimal;
    SelfishRow {
        strategy: cfg.strategy.clone(),
        revenue_mdp: optimal.then(|| mdp(gamma)),
        revenue_mdp_realised: optimal.then(|| mdp(gamma_realised)),
        mdp_max_len: optimal.then_some(DEFAULT_MAX_LEN),
        alpha,
        gamma,
        gamma_realised,
        races: gamma_samples.len() as u64,
        blocks: mined,
        revenue_sim: revenue,
        ci95: ci,
        revenue_eyal_sirer: eyal_sirer(alpha, gamma_realised),
        threshold: selfish_threshold(gamma_realised),
        stale_rate: (mined - u64::from(height)) as f64 / mined.max(1) as f64,
    }
}

/// `powchain sim selfish`.
#[must_use]
pub fn selfish(config: &SelfishConfig, progress: &(dyn Fn(u64) + Sync)) -> SelfishReport {
    let started = Instant::now();
    let mut jobs = Vec::new();
    for (ai, &a) in config.alphas.iter().enumerate() {
        for (gi, &g) in config.gammas.iter().enumerate() {
            jobs.push((ai, gi, a, g));
        }
    }
    let done = AtomicUsize::new(0);
    let results = parallel(jobs.len(), config.threads, |j| {
        let (ai, gi, a, g) = jobs[j];
        let r = selfish_point(
            a,
            g,
            config,
            derive_seed(config.seed, ai as u64, gi as u64, 0),
        );
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(d as u64 * config.blocks);
        r
    });
    SelfishReport {
        seed: config.seed,
        results,
        seconds: started.elapsed().as_secs_f64(),
    }
}
