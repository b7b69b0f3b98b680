//! `powchain sim`: experiments on the real protocol core in virtual time
//! (SPEC "Simulation and traitors").

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{default_threads, print_json, progress_bar, CliError};
use crate::protocol::StrategySpec;
use crate::sim::experiments::{self, DoubleSpendConfig, NetworkConfig, SelfishConfig, SimTopology};
use crate::sim::{plot, LatencyModel};
use crate::value::{self, ValueError};

/// `powchain sim` subcommands.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The experiment.
    #[command(subcommand)]
    pub experiment: Experiment,
}

/// The experiments.
#[derive(Debug, Subcommand)]
pub enum Experiment {
    /// Nakamoto §11's double spend as Rosenfeld's race, against both closed forms.
    DoubleSpend(DoubleSpendArgs),
    /// Eyal–Sirer selfish mining: the pool's revenue against the closed form.
    Selfish(SelfishArgs),
    /// A whole network: stale rate, propagation, re-orgs, chain quality, common prefix.
    Network(NetworkArgs),
}

/// `sim double-spend` flags.
#[derive(Debug, Args)]
pub struct DoubleSpendArgs {
    /// Attacker hashrate shares: `0.1,0.3` or `0.05..0.45:0.05`.
    #[arg(long, value_parser = parse_fractions)]
    pub q: FloatList,
    /// Confirmations: `6` , `1,2,6` or `0..10`.
    #[arg(long, value_parser = parse_counts)]
    pub z: CountList,
    /// Rounds per (q, z).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub trials: u64,
    /// Seed: same seed and arguments, same JSON.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores; the result does not depend on it).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the success-vs-z plot here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sim selfish` flags.
#[derive(Debug, Args)]
pub struct SelfishArgs {
    /// Pool shares: `0.1,0.3` or `0.1..0.45:0.05`.
    #[arg(long, value_parser = parse_fractions)]
    pub alpha: FloatList,
    /// Tie-breaking shares to build the network for: `0,0.5,1`.
    #[arg(long, value_parser = parse_fractions)]
    pub gamma: FloatList,
    /// The pool's strategy: `sm1` (Eyal-Sirer), `optimal` (the optimal
    /// policy of Sapirshtein-Sompolinsky-Zohar's MDP, solved per row) or
    /// `stubborn:[L][F][Tj]` (Nayak et al.'s lead-, equal-fork- and
    /// trail-stubborn parts, combinable).
    #[arg(long, default_value = "sm1")]
    pub strategy: experiments::SelfishStrategy,
    /// Blocks mined per (alpha, gamma).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(10..=100_000_000))]
    pub blocks: u64,
    /// Honest nodes (equal shares).
    #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=1000))]
    pub honest_nodes: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the revenue-vs-alpha plot here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Topology of `sim network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TopologyArg {
    /// Random D-regular graph.
    Random,
    /// A line.
    Line,
    /// A ring.
    Ring,
    /// Everyone linked to everyone.
    Full,
}

/// `sim network` flags.
#[derive(Debug, Args)]
pub struct NetworkArgs {
    /// Nodes.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=100_000))]
    pub nodes: usize,
    /// Blocks to mine.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub blocks: u64,
    /// Mean block interval, seconds.
    #[arg(long, default_value_t = 600.0, value_parser = crate::value::positive)]
    pub block_time: f64,
    /// Degree of the random regular graph.
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub degree: usize,
    /// Topology.
    #[arg(long, value_enum, default_value_t = TopologyArg::Random)]
    pub topology: TopologyArg,
    /// Link latency: `fixed:MS`, `uniform:LO-HI` or `bitcoin`.
    #[arg(long, default_value = "bitcoin")]
    pub latency: LatencyModel,
    /// Link bandwidth, Mbit/s (default unlimited).
    #[arg(long, value_parser = crate::value::positive)]
    pub bandwidth_mbit: Option<f64>,
    /// Probability that a message is lost.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Partition the two halves from START to END simulated seconds.
    #[arg(long, value_parser = parse_window)]
    pub partition: Option<(f64, f64)>,
    /// A traitor: NODE:STRATEGY (repeatable).
    #[arg(long, value_parser = parse_adversary)]
    pub adversary: Vec<(usize, StrategySpec)>,
    /// A node's hashrate share: NODE:FRACTION (repeatable; the rest share equally).
    #[arg(long, value_parser = parse_share)]
    pub hashrate_share: Vec<(usize, f64)>,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sweep: run once per fixed link latency in this list (ms, e.g.
    /// `100,1000,5000`) instead of --latency, and plot the stale rate
    /// against the measured delay beside 1 - e^(-d/T).
    #[arg(long, value_parser = parse_latencies)]
    pub sweep_latency: Option<CountList>,
    /// Write the plot here (propagation, or stale rate vs delay with
    /// --sweep-latency).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sim network --sweep-latency` output: one run per latency.
#[derive(Debug, serde::Serialize)]
pub struct SweepReport {
    /// the seed
    pub seed: u64,
    /// one run per latency, in the order given
    pub runs: Vec<SweepRun>,
}

/// One run of a sweep.
#[derive(Debug, serde::Serialize)]
pub struct SweepRun {
    /// the fixed one-way link latency, ms
    pub latency_ms: u32,
    /// the run
    pub report: experiments::NetworkReport,
}

/// A parsed list of fractions.
#[derive(Clone, Debug)]
pub struct FloatList(pub Vec<f64>);

/// A parsed list of counts.
#[derive(Clone, Debug)]
pub struct CountList(pub Vec<u32>);

/// `0.1,0.3` or `LO..HI:STEP` (inclusive), each in [0, 1].
fn parse_fractions(s: &str) -> Result<FloatList, ValueError> {
    let mut out = Vec::new();
    for part in s.split(',') {
        if let Some((lo, rest)) = part.split_once("..") {
            let (hi, step) = rest.split_once(':').unwrap_or((rest, "0.05"));
            let (lo, hi, step) = (value::float(lo)?, value::float(hi)?, value::float(step)?);
            if step.is_nan() || step <= 0.0 || hi < lo {
                return Err(ValueError::range(
                    part,
                    "a range needs LO <= HI and STEP > 0",
                ));
            }
            let n = ((hi - lo) / step + 1e-9).floor() as u64;
            if n > 10_000 {
                return Err(ValueError::range(part, "at most 10,000 points"));
            }
            for i in 0..=n {
                out.push(((lo + i as f64 * step) * 1e9).round() / 1e9);
            }
        } else {
            out.push(value::float(part)?);
        }
    }
    if out.is_empty() || out.iter().any(|x| !(0.0..=1.0).contains(x)) {
        return Err(ValueError::range(s, "every value must be in [0, 1]"));
    }
    Ok(FloatList(out))
}

/// `6`, `1,2,6` or `LO..HI` (inclusive), each at most 1,000.
fn parse_counts(s: &str) -> Result<CountList, ValueError> {
    let mut out = Vec::new();
    for part in s.split(',') {
        if let Some((lo, hi)) = part.split_once("..") {
            let (lo, hi): (u32, u32) = (value::int(lo)?, value::int(hi)?);
            if hi < lo || hi > 1000 {
                return Err(ValueError::range(part, "a range needs LO <= HI <= 1000"));
            }
            out.extend(lo..=hi);
        } else {
            let z: u32 = value::int(part)?;
            if z > 1000 {
                return Err(ValueError::range(part, "at most 1000 confirmations"));
            }
            out.push(z);
        }
    }
    Ok(CountList(out))
}

/// `100,1000,5000`: link latencies, ms (at most 600,000, at most 50).
fn parse_latencies(s: &str) -> Result<CountList, ValueError> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let ms: u32 = value::int(part)?;
        if ms > 600_000 {
            return Err(ValueError::range(part, "at most 600000 ms"));
        }
        out.push(ms);
    }
    if out.len() > 50 {
        return Err(ValueError::range(s, "at most 50 latencies"));
    }
    Ok(CountList(out))
}

/// `START:END` seconds, `0 <= START < END`.
fn parse_window(s: &str) -> Result<(f64, f64), ValueError> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| ValueError::form(s, "START:END seconds"))?;
    let (a, b) = (value::float(a)?, value::float(b)?);
    if !(0.0..b).contains(&a) {
        return Err(ValueError::range(s, "need 0 <= START < END"));
    }
    Ok((a, b))
}

/// A bad `--adversary NODE:STRATEGY`.
#[derive(Debug, thiserror::Error)]
pub enum AdversaryError {
    /// Not `NODE:STRATEGY`, or a bad node index.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The strategy is not registered or its arguments are wrong.
    #[error(transparent)]
    Strategy(#[from] crate::protocol::strategy::StrategyParseError),
}

/// `NODE:STRATEGY`.
///
/// # Errors
/// [`AdversaryError`].
pub fn parse_adversary(s: &str) -> Result<(usize, StrategySpec), AdversaryError> {
    let (node, strategy) = s
        .split_once(':')
        .ok_or_else(|| ValueError::form(s, "NODE:STRATEGY"))?;
    let node: usize = value::int(node)?;
    Ok((node, strategy.parse()?))
}

/// `NODE:FRACTION`, the fraction in (0, 1].
///
/// # Errors
/// [`ValueError`].
pub fn parse_share(s: &str) -> Result<(usize, f64), ValueError> {
    let (node, f) = s
        .split_once(':')
        .ok_or_else(|| ValueError::form(s, "NODE:FRACTION"))?;
    let node: usize = value::int(node)?;
    let f = value::float(f)?;
    if f.is_nan() || f <= 0.0 || f > 1.0 {
        return Err(ValueError::range(s, "the fraction must be in (0, 1]"));
    }
    Ok((node, f))
}

/// Runs `powchain sim`.
///
/// # Errors
/// [`CliError::Usage`] for bad arguments, [`CliError::Failed`] when a plot
/// cannot be written.
pub fn run(a: &SimArgs) -> Result<(), CliError> {
    match &a.experiment {
        Experiment::DoubleSpend(d) => double_spend(d),
        Experiment::Selfish(s) => selfish(s),
        Experiment::Network(n) => network(n),
    }
}

fn double_spend(a: &DoubleSpendArgs) -> Result<(), CliError> {
    let config = DoubleSpendConfig {
        qs: a.q.0.clone(),
        zs: a.z.0.clone(),
        trials: a.trials,
        seed: a.seed,
        threads: a.threads.unwrap_or_else(default_threads),
    };
    let total = a.trials * (config.qs.len() * config.zs.len()) as u64;
    let pb = progress_bar(
        Some(total),
        "{msg} [{bar:30}] {human_pos}/{human_len} rounds ({per_sec}, eta {eta})",
        "double-spend",
    );
    let report = experiments::double_spend(&config, &|n| pb.set_position(n));
    pb.finish_and_clear();
    if let Some(path) = &a.svg {
        plot::double_spend_svg(&report, path).map_err(|e| super::failed(e.to_string()))?;
    }
    if a.json {
        print_json(&report);
    } else {
        println!(
            "{:>5} {:>3} {:>9} {:>10} {:>23} {:>10} {:>10}",
            "q", "z", "trials", "p_sim", "95% interval", "Rosenfeld", "Nakamoto"
        );
        for r in &report.results {
            println!(
                "{:>5} {:>3} {:>9} {:>10.6} [{:>9.6}, {:>9.6}] {:>10.6} {:>10.6}",
                r.q, r.z, r.trials, r.p_sim, r.ci95[0], r.ci95[1], r.p_rosenfeld, r.p_nakamoto
            );
        }
        eprintln!("{:.1} s, seed {}", report.seconds, report.seed);
    }
    Ok(())
}

fn selfish(a: &SelfishArgs) -> Result<(), CliError> {
    let config = SelfishConfig {
        strategy: a.strategy.clone(),
        alphas: a.alpha.0.clone(),
        gammas: a.gamma.0.clone(),
        blocks: a.blocks,
        honest_nodes: a.honest_nodes,
        seed: a.seed,
        threads: a.threads.unwrap_or_else(default_threads),
    };
    if config.alphas.iter().any(|&x| x >= 0.5) {
        return Err(CliError::Usage(
            "alpha must be below 0.5 (at 0.5 or more the pool is the majority)".into(),
        ));
    }
    let total = a.blocks * (config.alphas.len() * config.gammas.len()) as u64;
    let pb = progress_bar(
        Some(total),
        "{msg} [{bar:30}] {human_pos}/{human_len} blocks (eta {eta})",
        "selfish",
    );
    let report = experiments::selfish(&config, &|n| pb.set_position(n));
    pb.finish_and_clear();
    if let Some(path) = &a.svg {
        plot::selfish_svg(&report, path).map_err(|e| super::failed(e.to_string()))?;
    }
    if a.json {
        print_json(&report);
    } else {
        println!(
            "{:>12} {:>5} {:>5} {:>9} {:>8} {:>19} {:>11} {:>9} {:>9} {:>7}",
            "strategy",
            "alpha",
            "gamma",
            "realised",
            "revenue",
            "95% interval",
            "Eyal-Sirer",
            "MDP",
            "threshold",
            "stale"
        );
        for r in &report.results {
            let mdp = r
                .revenue_mdp_realised
                .map_or_else(|| "-".to_string(), |m| format!("{m:.5}"));
            println!(
                "{:>12} {:>5} {:>5} {:>9.3} {:>8.4} [{:>7.4}, {:>7.4}] {:>11.4} {:>9} {:>9.4} {:>7.4}",
                r.strategy.to_string(),
                r.alpha,
                r.gamma,
                r.gamma_realised,
                r.revenue_sim,
                r.ci95[0],
                r.ci95[1],
                r.revenue_eyal_sirer,
                mdp,
                r.threshold,
                r.stale_rate
            );
        }
        if let Some(t) = report.results.iter().find_map(|r| r.mdp_max_len) {
            eprintln!("MDP: Sapirshtein-Sompolinsky-Zohar 2016, lengths truncated at {t} blocks, at the realised gamma");
        }
        eprintln!("{:.1} s, seed {}", report.seconds, report.seed);
    }
    Ok(())
}

/// Memory a simulated node takes besides its links, bytes (measured: `sim
/// network --nodes 2000` and `4000 --blocks 1`, max RSS 53 and 83 MB).
const NODE_BYTES: u128 = 8 * 1024;
/// Memory a simulated link takes, both cores' peer state included, bytes
/// (measured: `--topology full`, 100 and 200 nodes, 43 and 78 MB).
const LINK_BYTES: u128 = 2_500;

/// Refuses (exit 2, one line) a network whose nodes and links cannot fit
/// in the memory this machine has available, estimated before anything
/// is allocated: `nodes · 8 KiB + links · 2.5 KB`. A full topology of
/// 100,000 nodes has 5·10^9 links (12 TB).
fn fits_in_memory(c: &NetworkConfig) -> Result<(), CliError> {
    let n = c.nodes as u128;
    let links = match c.topology {
        SimTopology::Full => n * n.saturating_sub(1) / 2,
        SimTopology::RandomRegular => n * c.degree.min(c.nodes.saturating_sub(1)) as u128 / 2,
        SimTopology::Line => n.saturating_sub(1),
        SimTopology::Ring => n,
    };
    let need = n * NODE_BYTES + links * LINK_BYTES;
    let Some(have) = available_memory() else {
        return Ok(());
    };
    if need > u128::from(have) {
        return Err(CliError::Usage(format!(
            "{} nodes with {links} links need about {:.1} GB, more than the {:.1} GB available",
            c.nodes,
            need as f64 / 1e9,
            have as f64 / 1e9
        )));
    }
    Ok(())
}

/// Bytes this process may still take: `MemAvailable` of `/proc/meminfo`,
/// or the cgroup's `memory.max` if lower; `None` where neither is known.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)?;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    Some(cgroup.map_or(available, |c| c.min(available)))
}

fn network(a: &NetworkArgs) -> Result<(), CliError> {
    if !(0.0..1.0).contains(&a.loss) {
        return Err(CliError::Usage("--loss must be in [0, 1)".into()));
    }
    let config = NetworkConfig {
        nodes: a.nodes,
        blocks: a.blocks,
        block_time_secs: a.block_time,
        degree: a.degree,
        topology: match a.topology {
            TopologyArg::Random => SimTopology::RandomRegular,
            TopologyArg::Line => SimTopology::Line,
            TopologyArg::Ring => SimTopology::Ring,
            TopologyArg::Full => SimTopology::Full,
        },
        latency: a.latency,
        bandwidth_bytes_per_sec: a.bandwidth_mbit.map(|m| (m * 125_000.0).max(1.0) as u64),
        loss: a.loss,
        partition: a.partition,
        adversaries: a.adversary.clone(),
        shares: a.hashrate_share.clone(),
        seed: a.seed,
    };
    fits_in_memory(&config)?;
    if let Some(list) = &a.sweep_latency {
        return sweep(a, &config, &list.0);
    }
    let pb = progress_bar(
        Some(a.blocks),
        "{msg} [{bar:30}] {human_pos}/{human_len} blocks (eta {eta})",
        "network",
    );
    let report = experiments::network(&config, &|n| pb.set_position(n))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    pb.finish_and_clear();
    if let Some(path) = &a.svg {
        plot::propagation_svg(
            &report.arrival_ms,
            report.stale_rate,
            report.stale_rate_model,
            path,
        )
        .map_err(|e| super::failed(e.to_string()))?;
    }
    if a.json {
        print_json(&report);
    } else {
        let r = &report;
        println!(
            "{} nodes, {} blocks mined, best chain {}, stale {} (rate {:.4}; model 1-e^(-d/T) {:.4} for d = {:.0} ms)",
            r.nodes, r.blocks_mined, r.best_chain, r.stale, r.stale_rate, r.stale_rate_model, r.propagation_mean_ms
        );
        println!(
            "propagation p50 {} ms, p90 {} ms, p99 {} ms; re-orgs {} (deepest {}); chain growth {:.3} per block time",
            r.propagation_ms.p50, r.propagation_ms.p90, r.propagation_ms.p99, r.reorgs, r.max_reorg_depth, r.chain_growth_per_block_time
        );
        println!(
            "chain quality {:.4}; common prefix violated up to {} blocks",
            r.chain_quality, r.common_prefix_max
        );
        eprintln!(
            "{} events in {:.1} s ({:.0}/s), peak RSS {} MiB, seed {}",
            r.events,
            r.seconds,
            r.events_per_sec,
            r.peak_rss_bytes / (1 << 20),
            r.seed
        );
    }
    Ok(())
}

fn sweep(a: &NetworkArgs, base: &NetworkConfig, latencies: &[u32]) -> Result<(), CliError> {
    let pb = progress_bar(
        Some(a.blocks * latencies.len() as u64),
        "{msg} [{bar:30}] {human_pos}/{human_len} blocks (eta {eta})",
        "sweep",
    );
    let mut runs = Vec::new();
    for (k, &ms) in latencies.iter().enumerate() {
        let config = NetworkConfig {
            latency: LatencyModel::Fixed(u64::from(ms)),
            ..base.clone()
        };
        let done = k as u64 * a.blocks;
        let report = experiments::network(&config, &|n| pb.set_position(done + n))
            .map_err(|e| CliError::Usage(e.to_string()))?;
        runs.push(SweepRun {
            latency_ms: ms,
            report,
        });
    }
    pb.finish_and_clear();
    if let Some(path) = &a.svg {
        let points: Vec<plot::StalePoint> = runs
            .iter()
            .map(|r| plot::StalePoint {
                delay_ms: r.report.propagation_mean_ms,
                stale_rate: r.report.stale_rate,
                blocks: r.report.blocks_mined,
            })
            .collect();
        plot::stale_vs_delay_svg(&points, a.block_time * 1000.0, path)
            .map_err(|e| super::failed(e.to_string()))?;
    }
    let report = SweepReport { seed: a.seed, runs };
    if a.json {
        print_json(&report);
    } else {
        println!(
            "{:>10} {:>14} {:>10} {:>10} {:>8}",
            "link ms", "mean delay ms", "stale", "model", "re-orgs"
        );
        for r in &report.runs {
            println!(
                "{:>10} {:>14.0} {:>10.4} {:>10.4} {:>8}",
                r.latency_ms,
                r.report.propagation_mean_ms,
                r.report.stale_rate,
                r.report.stale_rate_model,
                r.report.reorgs
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges_parse() {
        assert_eq!(parse_fractions("0.1,0.3").unwrap().0, vec![0.1, 0.3]);
        assert_eq!(
            parse_fractions("0.1..0.3:0.1").unwrap().0,
            vec![0.1, 0.2, 0.3]
        );
        assert!(parse_fractions("1.5").is_err());
        assert!(parse_fractions("0.3..0.1").is_err());
        assert_eq!(parse_counts("0..3").unwrap().0, vec![0, 1, 2, 3]);
        assert_eq!(parse_counts("1,6").unwrap().0, vec![1, 6]);
        assert!(parse_counts("5..2").is_err());
        assert_eq!(
            parse_adversary("0:double-spend:6").unwrap(),
            (
                0,
                StrategySpec::double_spend(6, crate::protocol::strategy::DEFAULT_GIVE_UP_BEHIND)
            )
        );
        assert!(parse_adversary("x:selfish").is_err());
        assert!(parse_share("1:0").is_err());
        assert_eq!(parse_window("10:20").unwrap(), (10.0, 20.0));
    }
}
