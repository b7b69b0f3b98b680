//! `sim network`: a whole network's stale rate, propagation, chain
//! quality and common prefix.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{derive_seed, peak_rss_bytes, sim_params};
use crate::consensus::BlockHash;
use crate::protocol::StrategySpec;
use crate::sim::stats::{quantile, stale_rate_model};
use crate::sim::{LatencyModel, Network, SimConfig};

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

/// Why `sim network` cannot run as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// `--topology random-regular` with an impossible degree.
    #[error("no {degree}-regular graph on {nodes} nodes (need degree < nodes and an even nodes × degree)")]
    NoRegularGraph {
        /// Nodes asked for.
        nodes: usize,
        /// Degree asked for.
        degree: usize,
    },
    /// `--adversary NODE:...` names no node.
    #[error("adversary node {node} is not among {nodes} nodes")]
    AdversaryNotANode {
        /// The index given.
        node: usize,
        /// Nodes in the network.
        nodes: usize,
    },
    /// `--share NODE:...` names no node.
    #[error("hashrate share for node {node}, not among {nodes} nodes")]
    ShareNotANode {
        /// The index given.
        node: usize,
        /// Nodes in the network.
        nodes: usize,
    },
    /// Every node runs a traitor strategy: no honest node to measure.
    #[error("every node is a traitor: no honest node to measure agreement on")]
    NoHonestNode,
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
) -> Result<Vec<(usize, usize)>, NetworkError> {
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
                return Err(NetworkError::NoRegularGraph { nodes: n, degree });
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
    let height = |h: &BlockHash| net.record.mined.get(h).map_or(0, |m| m.height);
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
                    x = net.record.mined.get(&x).map_or(x, |m| m.parent);
                }
                if hy >= hx {
                    y = net.record.mined.get(&y).map_or(y, |m| m.parent);
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
pub fn network(
    config: &NetworkConfig,
    progress: &dyn Fn(u64),
) -> Result<NetworkReport, NetworkError> {
    let started = Instant::now();
    let n = config.nodes.max(2);
    let block_ms = config.block_time_secs * 1000.0;
    let mut sim = SimConfig::new(0, config.seed);
    sim.latency = config.latency;
    sim.strategies = vec![StrategySpec::honest(); n];
    for (i, s) in &config.adversaries {
        let i = *i;
        if i >= n {
            return Err(NetworkError::AdversaryNotANode { node: i, nodes: n });
        }
        sim.strategies[i] = s.clone();
    }
    sim.shares = vec![None; n];
    for &(i, f) in &config.shares {
        if i >= n {
            return Err(NetworkError::ShareNotANode { node: i, nodes: n });
        }
        sim.shares[i] = Some(f);
    }
    let mut net = Network::with_config(sim_params(config.block_time_secs), n, &sim);
    net.record.keep_events = false;
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
    let reference = *honest.first().ok_or(NetworkError::NoHonestNode)?;
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
                .record
                .mined
                .get(&info.hash)
                .is_some_and(|m| sim.strategies[m.miner].is_honest())
            {
                honest_blocks += 1;
            }
        }
    }
    let blocks_mined = net.record.mined_order.len() as u64;
    let stale = blocks_mined.saturating_sub(u64::from(best_chain));
    let mut arrivals = std::mem::take(&mut net.record.arrival_ms);
    arrivals.sort_unstable();
    let mean = if arrivals.is_empty() {
        0.0
    } else {
        arrivals.iter().map(|&a| f64::from(a)).sum::<f64>() / arrivals.len() as f64
    };
    let mut reorg_depths = BTreeMap::new();
    for &d in &net.record.reorg_depths {
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
        reorgs: net.record.reorg_depths.len() as u64,
        max_reorg_depth: net.record.reorg_depths.iter().copied().max().unwrap_or(0),
        reorg_depths,
        chain_growth_per_block_time: f64::from(best_chain) / elapsed_blocks.max(1e-9),
        chain_quality: honest_blocks as f64 / f64::from(best_chain.max(1)),
        common_prefix_max,
        events: net.record.stats.events,
        events_per_sec: net.record.stats.events as f64 / seconds.max(1e-9),
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
}
