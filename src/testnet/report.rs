//! The testnet's end-of-run report: agreement, stale blocks, re-orgs and
//! propagation, read from every node's API.

use std::time::Duration;

use crate::clock::after;
use std::collections::HashSet;
use std::path::Path;

use super::{NodeProc, TestnetPlan};
use crate::api::types::{
    BlockView, DelayPercentiles, MinerShare, Reorg, Stale, Status, TestnetReport,
};

/// The value at fraction `p` (0..=1) of sorted samples, nearest rank;
/// `None` with no samples.
#[must_use]
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[idx.min(sorted.len() - 1)])
}

/// Percentiles of unsorted samples.
#[must_use]
pub fn percentiles(mut samples: Vec<f64>) -> DelayPercentiles {
    samples.sort_by(f64::total_cmp);
    DelayPercentiles {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        mean: (!samples.is_empty()).then(|| samples.iter().sum::<f64>() / samples.len() as f64),
        samples: samples.len(),
    }
}

/// Builds the report from the nodes' final state.
pub(crate) fn build(
    a: &TestnetPlan,
    nodes: &[NodeProc],
    statuses: &[Option<Status>],
    agreed: bool,
    started_ms: u64,
    start_bits: crate::consensus::CompactTarget,
    dir: &Path,
) -> TestnetReport {
    let secs = Duration::from_secs;
    let block_time = secs(u64::from(a.block_time));
    let steady_ms = after(started_ms, 5 * block_time);
    // The partition window: from the cut to two block times after the heal
    // (the light side re-orgs once it has synced).
    let window = a.partition.map(|p| {
        (
            after(started_ms, secs(p.start)),
            after(started_ms, secs(p.end) + 2 * block_time),
        )
    });
    let in_window = |t: u64| window.is_some_and(|(s, e)| (s..e).contains(&t));
    let mut stale_seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let (mut reorgs_steady, mut max_steady, mut reorgs_part, mut max_part) =
        (0u64, 0u64, 0u64, 0u64);
    let heights: Vec<u64> = statuses
        .iter()
        .map(|s| s.as_ref().map_or(0, |v| u64::from(v.height)))
        .collect();
    let common_height = heights.iter().copied().min().unwrap_or(0);
    let mut stale_hashes = HashSet::new();
    let mut reorgs = 0u64;
    let mut max_depth = 0u64;
    let mut per_node_reorgs = Vec::new();
    let mut stale_consistent = true;
    for (n, st) in nodes.iter().zip(statuses) {
        let from_status = st.as_ref().map(|v| v.stale as u64);
        let from_metrics = n
            .client
            .metric("powchain_stale_blocks")
            .ok()
            .flatten()
            .map(|v| v as u64);
        if let Ok(list) = n.client.get::<Vec<Stale>>("/stale") {
            if from_status != Some(list.len() as u64) || from_metrics != Some(list.len() as u64) {
                stale_consistent = false;
            }
            for st in list {
                let t = stale_seen.entry(st.hash.clone()).or_insert(st.seen_ms);
                *t = (*t).min(st.seen_ms);
                stale_hashes.insert(st.hash);
            }
        } else {
            stale_consistent = false;
        }
        let list = n.client.get::<Vec<Reorg>>("/reorgs").unwrap_or_default();
        for r in &list {
            max_depth = max_depth.max(u64::from(r.depth));
            if in_window(r.time_ms) {
                reorgs_part += 1;
                max_part = max_part.max(u64::from(r.depth));
            } else if r.time_ms >= steady_ms {
                reorgs_steady += 1;
                max_steady = max_steady.max(u64::from(r.depth));
            }
        }
        reorgs += list.len() as u64;
        per_node_reorgs.push(list.len() as u64);
    }
    // Propagation: per block of the final chain, arrival at each node minus
    // the earliest arrival (the miner's own, when it found the block).
    // Blocks first seen in the first 5 s (peers still connecting) or from
    // the cut to 5 s after the heal (held back by the partition, then
    // fetched by sync) are left out of `propagation_ms`;
    // `propagation_all_ms` keeps every block.
    let cut_ms = a.partition.map(|p| {
        (
            after(started_ms, secs(p.start)),
            after(started_ms, secs(p.end + 5)),
        )
    });
    let warmup_end_ms = (started_ms + 5000) as f64;
    let mut delays = Vec::new();
    let mut all_delays = Vec::new();
    let first_height = 1.max(common_height.saturating_sub(200));
    for h in first_height..=common_height {
        let arrivals: Vec<f64> = nodes
            .iter()
            .filter_map(|n| {
                n.client
                    .get::<BlockView>(&format!("/blocks/height/{h}"))
                    .ok()
            })
            .map(|v| v.received_ms as f64)
            .collect();
        if arrivals.len() == nodes.len() {
            let min = arrivals.iter().copied().fold(f64::INFINITY, f64::min);
            let connected = min >= warmup_end_ms
                && !cut_ms.is_some_and(|(a, b)| (a as f64..b as f64).contains(&min));
            let mut first = true;
            for t in arrivals {
                if t == min && first {
                    first = false;
                    continue;
                }
                all_delays.push(t - min);
                if connected {
                    delays.push(t - min);
                }
            }
        }
    }
    let propagation = percentiles(delays);
    // Best-chain blocks by when node0 stored them.
    let chain_seen: Vec<u64> = nodes.first().map_or_else(Vec::new, |n0| {
        (1.max(common_height.saturating_sub(2000))..=common_height)
            .filter_map(|h| {
                n0.client
                    .get::<BlockView>(&format!("/blocks/height/{h}"))
                    .ok()
            })
            .map(|v| v.received_ms)
            .collect()
    });
    let steady = |t: u64| t >= steady_ms && !in_window(t);
    let stale_steady = stale_seen.values().filter(|&&t| steady(t)).count() as u64;
    let stale_partition = stale_seen.values().filter(|&&t| in_window(t)).count() as u64;
    let blocks_steady = chain_seen.iter().filter(|&&t| steady(t)).count() as u64 + stale_steady;
    let stale = stale_hashes.len() as u64;
    let blocks_total = common_height + stale;
    let stale_rate = if blocks_total == 0 {
        0.0
    } else {
        stale as f64 / blocks_total as f64
    };
    let mean_delay_ms = propagation.mean.unwrap_or(0.0);
    let expected = 1.0 - (-(mean_delay_ms / 1000.0) / f64::from(a.block_time)).exp();
    TestnetReport {
        nodes: a.nodes,
        nodes_info: nodes.iter().map(|n| n.info.clone()).collect(),
        agreed,
        common_height,
        heights,
        tips: statuses
            .iter()
            .map(|s| s.as_ref().map(|v| v.tip.clone()).unwrap_or_default())
            .collect(),
        blocks_total,
        stale,
        stale_rate,
        stale_rate_expected_from_delay: expected,
        reorgs,
        reorgs_per_node: per_node_reorgs,
        max_reorg_depth: max_depth,
        stale_consistent,
        propagation_ms: propagation,
        propagation_all_ms: percentiles(all_delays),
        block_time: a.block_time,
        duration: a.duration,
        topology: a.topology.to_string(),
        partition: a.partition.map(|p| p.to_string()),
        logs: a.keep.then(|| dir.display().to_string()),
        start_bits: start_bits.to_string(),
        steady_from_secs: 5 * u64::from(a.block_time),
        blocks_steady,
        stale_steady,
        stale_rate_steady: if blocks_steady == 0 {
            0.0
        } else {
            stale_steady as f64 / blocks_steady as f64
        },
        reorgs_steady,
        max_reorg_depth_steady: max_steady,
        stale_partition,
        reorgs_partition: reorgs_part,
        max_reorg_depth_partition: max_part,
        ..TestnetReport::default()
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.1} ms"))
}

/// Prints the report: one JSON document with `--json`, else text.
pub(crate) fn print(a: &TestnetPlan, r: &TestnetReport, dir: &Path) {
    if a.json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    println!(
        "agreed:            {} (common height {}, heights {:?}); start bits {}",
        r.agreed, r.common_height, r.heights, r.start_bits
    );
    println!(
        "blocks mined:      {} over the whole run ({} stale, rate {:.1}%; 1-exp(-d/T) with mean d {}, T {} s: {:.2}%)",
        r.blocks_total,
        r.stale,
        r.stale_rate * 100.0,
        ms(r.propagation_ms.mean),
        a.block_time,
        r.stale_rate_expected_from_delay * 100.0
    );
    println!(
        "steady state:      from {} s: {} blocks, {} stale (rate {:.1}%, textbook {:.2}%), {} re-orgs (deepest {})",
        r.steady_from_secs,
        r.blocks_steady,
        r.stale_steady,
        r.stale_rate_steady * 100.0,
        r.stale_rate_expected_from_delay * 100.0,
        r.reorgs_steady,
        r.max_reorg_depth_steady
    );
    if a.partition.is_some() {
        println!(
            "partition:         {} stale blocks, {} re-orgs (deepest {}) from the cut to 2 block times after the heal",
            r.stale_partition, r.reorgs_partition, r.max_reorg_depth_partition
        );
    }
    println!(
        "re-orgs:           {} over the whole run (deepest {} blocks), per node {:?}",
        r.reorgs, r.max_reorg_depth, r.reorgs_per_node
    );
    println!(
        "propagation:       p50 {}, p99 {} over {} arrivals while connected; all {}: p50 {}, p99 {}",
        ms(r.propagation_ms.p50),
        ms(r.propagation_ms.p99),
        r.propagation_ms.samples,
        r.propagation_all_ms.samples,
        ms(r.propagation_all_ms.p50),
        ms(r.propagation_all_ms.p99),
    );
    if let Some(miners) = &r.miners {
        for m in miners {
            println!(
                "miner {:<6}       {:<14} hashrate share {:>5.1}%, mined {:>5.1}%, best chain {:>5.1}%",
                m.node,
                m.strategy,
                m.hashrate_share * 100.0,
                m.mined_share * 100.0,
                m.chain_share * 100.0
            );
        }
    }
    if let (Some(q), Some(k)) = (r.chain_quality, r.common_prefix_max) {
        println!(
            "chain quality:     {:.1}% of the best chain honest; common prefix: honest nodes disagreed on up to {k} blocks",
            q * 100.0
        );
    }
    if a.keep {
        println!("logs and data:     {}", dir.display());
    }
}

/// The block hash at `height` on `node`'s best chain.
fn hash_at(node: &NodeProc, height: u32) -> Option<String> {
    node.client
        .get::<BlockView>(&format!("/blocks/height/{height}"))
        .ok()
        .map(|b| b.header.hash)
}

/// The longest suffix on which two honest nodes' best chains disagree now:
/// for each pair of distinct tips, the higher tip's height minus the
/// height of their last common block (found by comparing hashes height by
/// height from the lower tip down, at most 500 steps).
pub(crate) fn disagreement(
    nodes: &[NodeProc],
    statuses: &[Option<Status>],
    honest: &[usize],
) -> u64 {
    let mut reps: Vec<(usize, &Status)> = Vec::new();
    for &i in honest {
        if let Some(Some(s)) = statuses.get(i) {
            if !reps.iter().any(|(_, r)| r.tip == s.tip) {
                reps.push((i, s));
            }
        }
    }
    let mut worst = 0u64;
    for (k, &(a, sa)) in reps.iter().enumerate() {
        for &(b, sb) in &reps[k + 1..] {
            let mut h = sa.height.min(sb.height);
            let mut steps = 0;
            while h > 0 && steps < 500 {
                match (hash_at(&nodes[a], h), hash_at(&nodes[b], h)) {
                    (Some(x), Some(y)) if x == y => break,
                    (None, _) | (_, None) => break,
                    _ => {}
                }
                h -= 1;
                steps += 1;
            }
            worst = worst.max(u64::from(sa.height.max(sb.height) - h));
        }
    }
    worst
}

/// Adds each miner's hashrate share, mined share and share of the final
/// best chain (read block by block from the first honest node), and the
/// honest share of that chain (chain quality).
pub(crate) fn add_traitor_figures(
    a: &TestnetPlan,
    nodes: &[NodeProc],
    honest: &[usize],
    report: &mut TestnetReport,
) {
    let shares = a.shares();
    let reference = honest.first().copied().unwrap_or(0);
    let height = report.heights.get(reference).copied().unwrap_or(0) as u32;
    let mut by_miner: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut counted = 0u64;
    for h in 1..=height {
        if let Ok(b) = nodes[reference]
            .client
            .get::<BlockView>(&format!("/blocks/height/{h}"))
        {
            counted += 1;
            *by_miner.entry(b.miner_id.unwrap_or_default()).or_insert(0) += 1;
        }
    }
    let mined: Vec<f64> = nodes
        .iter()
        .map(|n| {
            n.client
                .metric("powchain_blocks_mined_total")
                .ok()
                .flatten()
                .unwrap_or(0.0)
        })
        .collect();
    let mined_total: f64 = mined.iter().sum::<f64>().max(1.0);
    let mut honest_blocks = 0u64;
    let miners = (0..a.nodes)
        .map(|i| {
            let name = format!("node{i}");
            let in_chain = by_miner.get(&name).copied().unwrap_or(0);
            if honest.contains(&i) {
                honest_blocks += in_chain;
            }
            MinerShare {
                node: name,
                strategy: a.strategy(i).to_string(),
                hashrate_share: shares[i],
                mined_share: mined[i] / mined_total,
                chain_share: in_chain as f64 / counted.max(1) as f64,
            }
        })
        .collect();
    report.miners = Some(miners);
    report.chain_quality = Some(honest_blocks as f64 / counted.max(1) as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_nothing_are_none() {
        let p = percentiles(Vec::new());
        assert_eq!((p.p50, p.p99, p.mean, p.samples), (None, None, None, 0));
        let p = percentiles(vec![3.0, 1.0, 2.0]);
        assert_eq!((p.p50, p.p99, p.samples), (Some(2.0), Some(3.0), 3));
    }
}
