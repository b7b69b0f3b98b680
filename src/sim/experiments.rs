//! The experiments of `powchain sim`: Rosenfeld's double-spend race,
//! Eyal–Sirer selfish mining and a whole network's stale rate, chain
//! quality and common prefix, each run on the real protocol cores of a
//! [`Network`] in virtual time.
//!
//! Determinism: every random draw comes from a ChaCha8 stream seeded from
//! the run's seed and the point's position in the grid (never from the
//! thread that runs it), so a seed and arguments give the same results on
//! any number of threads.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::stats::{
    eyal_sirer, mean_ci95, nakamoto, quantile, rosenfeld, selfish_threshold, stale_rate_model,
    wilson95,
};
use super::{LatencyModel, Network, SimConfig};
use crate::consensus::{BlockHash, Params};
use crate::protocol::strategy::mdp::{SelfishMdp, DEFAULT_MAX_LEN};
use crate::protocol::{PublishReason, StrategySpec, TraitorEvent};

/// Mean block interval of the simulated miners, virtual ms (Bitcoin's).
pub const SIM_BLOCK_TIME_MS: f64 = 600_000.0;

/// Double-spend trials run on one [`Network`] before it is rebuilt (the
/// in-memory chains would otherwise grow without bound).
const TRIALS_PER_NETWORK: u64 = 2_000;

/// A derived seed for grid point `a, b` and chunk `c` of a run seeded
/// `seed` (SplitMix64 over the four numbers).
fn derive_seed(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    let mut x = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for v in [b, c] {
        x = x.wrapping_add(v.wrapping_mul(0xbf58_476d_1ce4_e5b9));
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
    }
    x
}

/// Runs `jobs` on up to `threads` threads, results in job order.
fn parallel<T: Send>(jobs: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..jobs).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.max(1)) {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= jobs {
                    return;
                }
                let r = f(j);
                results.lock().expect("results lock")[j] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

/// A kB field of `/proc/PID/status` (`/proc/self/status` for `None`),
/// e.g. `"VmHWM:"` (peak resident memory) or `"VmRSS:"`, in KiB; `None`
/// where the file or the field does not exist.
#[must_use]
pub fn proc_status_kb(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = pid.map_or_else(
        || "/proc/self/status".to_string(),
        |p| format!("/proc/{p}/status"),
    );
    std::fs::read_to_string(path).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
    })
}

/// Peak resident memory of this process, bytes (`VmHWM`; 0 where
/// `/proc` does not exist).
#[must_use]
pub fn peak_rss_bytes() -> u64 {
    proc_status_kb(None, "VmHWM:").map_or(0, |kb| kb * 1024)
}

// ----- double spend --------------------------------------------------------

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
    net.record_events = false;
    net.connect(0, 1);
    net.run_for(100);
    let mut done = 0u64;
    let mut successes = 0u64;
    let mut seen = 0usize;
    while done < trials {
        net.mine_next(SIM_BLOCK_TIME_MS);
        if net.traitor_events.len() == seen {
            continue;
        }
        let ended: Vec<BlockHash> = net.traitor_events[seen..]
            .iter()
            .filter_map(|(_, _, e)| match e {
                TraitorEvent::RoundEnded { conflict_block, .. } => Some(*conflict_block),
                _ => None,
            })
            .collect();
        seen = net.traitor_events.len();
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
    (successes, net.mined_order.len() as u64)
}

/// Regtest's rules (minimum difficulty, so a simulated block costs a few
/// hashes) with the block time the experiment simulates, so the cores'
/// own timers (keep-alive handshakes) run at the network's pace.
fn sim_params(block_time_secs: f64) -> Params {
    let mut p = Params::regtest();
    p.block_time_secs = block_time_secs.round().clamp(1.0, f64::from(u32::MAX)) as u32;
    p
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

// ----- selfish mining ------------------------------------------------------

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

impl std::str::FromStr for SelfishStrategy {
    type Err = String;

    /// `sm1`, `optimal` or `stubborn:[L][F][Tj]`.
    fn from_str(s: &str) -> Result<SelfishStrategy, String> {
        match s {
            "sm1" => Ok(SelfishStrategy::Sm1),
            "optimal" => Ok(SelfishStrategy::Optimal),
            _ => {
                let letters = s.strip_prefix("stubborn:").ok_or_else(|| {
                    format!("unknown selfish strategy {s:?}: expected sm1, optimal or stubborn:[L][F][Tj]")
                })?;
                s.parse::<StrategySpec>().map_err(|e| e.to_string())?;
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
    net.record_events = false;
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
        let race = net.traitor_events[seen..]
            .iter()
            .rev()
            .find_map(|(_, _, e)| match e {
                TraitorEvent::Published {
                    hashes,
                    why: PublishReason::Match,
                } => hashes.last().copied(),
                _ => None,
            });
        seen = net.traitor_events.len();
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
            pool_flags.push(net.mined.get(&info.hash).is_some_and(|m| m.miner == 0));
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
    let mined = net.mined_order.len() as u64;
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

// ----- whole network -------------------------------------------------------

/// How the simulated nodes are linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimTopology {
    /// A random D-regular graph (ring lattice shuffled by degree-keeping
    /// edge swaps).
    RandomRegular,
    /// node i – node i+1.
    Line,
    /// A line closed into a ring.
    Ring,
    /// Everyone to everyone.
    Full,
}

/// `sim network` settings.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Nodes.
    pub nodes: usize,
    /// Blocks to mine.
    pub blocks: u64,
    /// Mean block interval, s.
    pub block_time_secs: f64,
    /// Degree of the random regular graph.
    pub degree: usize,
    /// Topology.
    pub topology: SimTopology,
    /// Link latency.
    pub latency: LatencyModel,
    /// Link bandwidth, bytes/s.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Message loss probability.
    pub loss: f64,
    /// (start, end) simulated seconds of a partition into two halves.
    pub partition: Option<(f64, f64)>,
    /// Traitors: (node, strategy).
    pub adversaries: Vec<(usize, StrategySpec)>,
    /// Hashrate shares fixed by the user: (node, share).
    pub shares: Vec<(usize, f64)>,
    /// Seed.
    pub seed: u64,
}

/// `sim network` output (SPEC's shape, plus the re-org histogram and the
/// mean delay the model uses).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NetworkReport {
    /// the seed
    pub seed: u64,
    /// nodes
    pub nodes: usize,
    /// blocks mined
    pub blocks_mined: u64,
    /// height of the final best chain of the first honest node
    pub best_chain: u32,
    /// mined blocks not on it
    pub stale: u64,
    /// stale / blocks_mined
    pub stale_rate: f64,
    /// 1 − e^(−d/T) for d = the mean propagation delay
    pub stale_rate_model: f64,
    /// block arrival delay at every other node, ms
    pub propagation_ms: Percentiles,
    /// mean arrival delay, ms
    pub propagation_mean_ms: f64,
    /// re-orgs at all nodes together
    pub reorgs: u64,
    /// deepest re-org
    pub max_reorg_depth: u32,
    /// re-org depth -> count
    pub reorg_depths: BTreeMap<u32, u64>,
    /// best-chain blocks per block interval elapsed
    pub chain_growth_per_block_time: f64,
    /// honest share of the final best chain
    pub chain_quality: f64,
    /// the longest suffix two honest nodes' chains disagreed on at any
    /// block discovery (Garay–Kiayias–Leonardos' common-prefix k)
    pub common_prefix_max: u32,
    /// queue events processed
    pub events: u64,
    /// events per wall second (not deterministic)
    pub events_per_sec: f64,
    /// wall time, s (not deterministic)
    pub seconds: f64,
    /// peak resident memory of the process, bytes (not deterministic)
    pub peak_rss_bytes: u64,
    /// every arrival delay, ms, sorted (for the plot; not in the JSON)
    #[serde(skip)]
    pub arrival_ms: Vec<u32>,
}

/// Delay percentiles, ms.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Percentiles {
    /// median
    pub p50: u32,
    /// 90th
    pub p90: u32,
    /// 99th
    pub p99: u32,
}

/// The links of `topology` over `n` nodes.
///
/// # Errors
/// A text when a D-regular graph on n nodes cannot exist.
pub fn topology_links(
    topology: SimTopology,
    n: usize,
    degree: usize,
    rng: &mut impl Rng,
) -> Result<Vec<(usize, usize)>, String> {
    let mut links = Vec::new();
    match topology {
        SimTopology::Line | SimTopology::Ring => {
            for i in 0..n.saturating_sub(1) {
                links.push((i, i + 1));
            }
            if topology == SimTopology::Ring && n > 2 {
                links.push((n - 1, 0));
            }
        }
        SimTopology::Full => {
            for a in 0..n {
                for b in a + 1..n {
                    links.push((a, b));
                }
            }
        }
        SimTopology::RandomRegular => {
            if degree >= n || (n * degree) % 2 == 1 || degree == 0 {
                return Err(format!(
                    "no {degree}-regular graph on {n} nodes (need degree < nodes and an even nodes × degree)"
                ));
            }
            // Ring lattice: each node to its degree/2 successors (and, for
            // an odd degree, the node opposite), then random
            // degree-keeping swaps of two edges (a,b),(c,d) -> (a,d),(c,b).
            let mut set: HashSet<(usize, usize)> = HashSet::new();
            let key = |a: usize, b: usize| (a.min(b), a.max(b));
            for i in 0..n {
                for k in 1..=degree / 2 {
                    set.insert(key(i, (i + k) % n));
                }
                if degree % 2 == 1 {
                    set.insert(key(i, (i + n / 2) % n));
                }
            }
            let mut edges: Vec<(usize, usize)> = set.iter().copied().collect();
            edges.sort_unstable();
            let swaps = edges.len() * 10;
            for _ in 0..swaps {
                let i = rng.random_range(0..edges.len());
                let j = rng.random_range(0..edges.len());
                let ((a, b), (c, d)) = (edges[i], edges[j]);
                let (a, b) = if rng.random::<bool>() { (a, b) } else { (b, a) };
                if a == d || c == b || a == c || b == d {
                    continue;
                }
                let (e1, e2) = (key(a, d), key(c, b));
                if set.contains(&e1) || set.contains(&e2) {
                    continue;
                }
                set.remove(&edges[i]);
                set.remove(&edges[j]);
                set.insert(e1);
                set.insert(e2);
                edges[i] = e1;
                edges[j] = e2;
            }
            edges.sort_unstable();
            links = edges;
        }
    }
    Ok(links)
}

/// The longest suffix on which two of `tips` disagree, walking parent
/// links of the blocks the simulator made.
fn common_prefix_k(net: &Network, tips: &[BlockHash]) -> u32 {
    let height = |h: &BlockHash| net.mined.get(h).map_or(0, |m| m.height);
    let mut worst = 0;
    for (i, a) in tips.iter().enumerate() {
        for b in &tips[i + 1..] {
            let (mut x, mut y) = (*a, *b);
            let (ha, hb) = (height(a), height(b));
            while x != y {
                let (hx, hy) = (height(&x), height(&y));
                if hx == 0 && hy == 0 {
                    break;
                }
                if hx >= hy {
                    x = net.mined.get(&x).map_or(x, |m| m.parent);
                }
                if hy >= hx {
                    y = net.mined.get(&y).map_or(y, |m| m.parent);
                }
            }
            let hc = height(&x);
            worst = worst.max(ha.max(hb) - hc);
        }
    }
    worst
}

/// `powchain sim network`.
///
/// # Errors
/// A text when the topology cannot be built.
pub fn network(config: &NetworkConfig, progress: &dyn Fn(u64)) -> Result<NetworkReport, String> {
    let started = Instant::now();
    let n = config.nodes.max(2);
    let block_ms = config.block_time_secs * 1000.0;
    let mut sim = SimConfig::new(0, config.seed);
    sim.latency = config.latency;
    sim.strategies = vec![StrategySpec::honest(); n];
    for (i, s) in &config.adversaries {
        let i = *i;
        if i >= n {
            return Err(format!("adversary node {i} is not among {n} nodes"));
        }
        sim.strategies[i] = s.clone();
    }
    sim.shares = vec![None; n];
    for &(i, f) in &config.shares {
        if i >= n {
            return Err(format!("hashrate share for node {i}, not among {n} nodes"));
        }
        sim.shares[i] = Some(f);
    }
    let mut net = Network::with_config(sim_params(config.block_time_secs), n, &sim);
    net.record_events = false;
    net.bandwidth_bytes_per_sec = config.bandwidth_bytes_per_sec;
    net.loss = config.loss;
    let mut topo_rng = ChaCha8Rng::seed_from_u64(derive_seed(config.seed, 1, 0, 0));
    let mut links = topology_links(config.topology, n, config.degree, &mut topo_rng)?;
    links.shuffle(&mut topo_rng);
    // Each link is one core's configured peer: the cores dial them (and
    // redial them after the partition heals).
    for (a, b) in links {
        net.add_peer(a, b);
    }
    net.run_for(1_000);
    let honest: Vec<usize> = (0..n).filter(|&i| sim.strategies[i].is_honest()).collect();
    let reference = *honest.first().ok_or("every node is a traitor")?;
    let start_ms = net.now_ms();
    let side: Vec<usize> = (0..n / 2).collect();
    let mut partition = config.partition.map(|(a, b)| {
        (
            start_ms + (a * 1000.0) as u64,
            start_ms + (b * 1000.0) as u64,
            false,
        )
    });
    let mut common_prefix_max = 0;
    for k in 0..config.blocks {
        let due = net.now_ms() + net.draw_gap_ms(block_ms);
        if let Some((from, to, cut)) = &mut partition {
            if !*cut && *from <= due && net.now_ms() <= *from {
                net.run_for(*from - net.now_ms());
                net.partition(&side);
                *cut = true;
            }
            if *cut && *to <= due && net.now_ms() <= *to {
                net.run_for(*to - net.now_ms());
                net.heal();
                *cut = false;
                *to = 0;
                *from = u64::MAX;
            }
        }
        net.run_for(due - net.now_ms());
        let mut tips: Vec<BlockHash> = honest.iter().map(|&i| net.tip(i)).collect();
        tips.sort_unstable();
        tips.dedup();
        if tips.len() > 1 {
            common_prefix_max = common_prefix_max.max(common_prefix_k(&net, &tips));
        }
        let who = net.draw_miner();
        net.mine_job(who);
        if k % 64 == 0 {
            progress(k);
        }
    }
    if partition.is_some_and(|(_, _, cut)| cut) {
        net.heal();
    }
    let mined_until = net.now_ms();
    // Let the last blocks and any partition heal settle.
    for _ in 0..30 {
        net.run_for(((block_ms / 10.0) as u64).max(10_000));
        if honest.iter().all(|&i| net.tip(i) == net.tip(reference)) {
            break;
        }
    }
    progress(config.blocks);
    let chain = net.nodes[reference].core.chain();
    let best_chain = chain.height();
    let mut honest_blocks = 0u64;
    for h in 1..=best_chain {
        if let Some(info) = chain.info_at_height(h) {
            if net
                .mined
                .get(&info.hash)
                .is_some_and(|m| sim.strategies[m.miner].is_honest())
            {
                honest_blocks += 1;
            }
        }
    }
    let blocks_mined = net.mined_order.len() as u64;
    let stale = blocks_mined.saturating_sub(u64::from(best_chain));
    let mut arrivals = std::mem::take(&mut net.arrival_ms);
    arrivals.sort_unstable();
    let mean = if arrivals.is_empty() {
        0.0
    } else {
        arrivals.iter().map(|&a| f64::from(a)).sum::<f64>() / arrivals.len() as f64
    };
    let mut reorg_depths = BTreeMap::new();
    for &d in &net.reorg_depths {
        *reorg_depths.entry(d).or_insert(0u64) += 1;
    }
    let elapsed_blocks = (mined_until - start_ms) as f64 / block_ms;
    let seconds = started.elapsed().as_secs_f64();
    Ok(NetworkReport {
        seed: config.seed,
        nodes: n,
        blocks_mined,
        best_chain,
        stale,
        stale_rate: stale as f64 / blocks_mined.max(1) as f64,
        stale_rate_model: stale_rate_model(mean, block_ms),
        propagation_ms: Percentiles {
            p50: quantile(&arrivals, 0.5),
            p90: quantile(&arrivals, 0.9),
            p99: quantile(&arrivals, 0.99),
        },
        propagation_mean_ms: (mean * 1000.0).round() / 1000.0,
        reorgs: net.reorg_depths.len() as u64,
        max_reorg_depth: net.reorg_depths.iter().copied().max().unwrap_or(0),
        reorg_depths,
        chain_growth_per_block_time: f64::from(best_chain) / elapsed_blocks.max(1e-9),
        chain_quality: honest_blocks as f64 / f64::from(best_chain.max(1)),
        common_prefix_max,
        events: net.stats.events,
        events_per_sec: net.stats.events as f64 / seconds.max(1e-9),
        seconds,
        peak_rss_bytes: peak_rss_bytes(),
        arrival_ms: arrivals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_regular_graphs_are_regular_and_simple() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (n, d) in [(10, 3), (50, 8), (7, 4)] {
            let links = topology_links(SimTopology::RandomRegular, n, d, &mut rng).unwrap();
            let mut deg = vec![0; n];
            let mut set = HashSet::new();
            for &(a, b) in &links {
                assert_ne!(a, b);
                assert!(set.insert((a.min(b), a.max(b))), "duplicate link");
                deg[a] += 1;
                deg[b] += 1;
            }
            assert!(deg.iter().all(|&x| x == d), "{n} {d}: {deg:?}");
        }
        assert!(topology_links(SimTopology::RandomRegular, 7, 3, &mut rng).is_err());
        assert!(topology_links(SimTopology::RandomRegular, 4, 4, &mut rng).is_err());
    }

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
