//! `powchain testnet`'s flags (the run itself is [`crate::testnet`]).

use clap::Args;

use crate::testnet::{Partition, TestnetPlan, Topology};

/// `powchain testnet` flags.
#[derive(Debug, Args, Clone)]
pub struct TestnetArgs {
    /// Number of node processes.
    #[arg(long, default_value_t = 4, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=32))]
    pub nodes: usize,
    /// Seconds of mining.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: u64,
    /// Target block time, seconds.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub block_time: u32,
    /// How the nodes are linked.
    #[arg(long, value_enum, default_value_t = Topology::Ring)]
    pub topology: Topology,
    /// Cut the network into two halves from START to END seconds, e.g. 20:35.
    #[arg(long)]
    pub partition: Option<Partition>,
    /// Mining threads per node.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub threads_per_node: usize,
    /// Bits of the first blocks, 8 hex digits; by default measured: a short
    /// bench of all the nodes' mining threads at once, so the first block
    /// already takes about one block time.
    #[arg(long, value_parser = crate::config::parse_bits_arg)]
    pub start_bits: Option<crate::consensus::CompactTarget>,
    /// Seed for the random topology.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Keep the node data dirs and logs (printed at the end), and the
    /// observer's event log and final trees (`observer/` there) for
    /// `powchain replay DIR`.
    #[arg(long)]
    pub keep: bool,
    /// Serve the fork-observer page over all nodes at this address
    /// (e.g. 127.0.0.1:8080; port 0 picks one, printed on stderr).
    #[arg(long)]
    pub ui: Option<std::net::SocketAddr>,
    /// A host name the --ui page answers in the `Host` header besides IP
    /// literals and `localhost` (repeatable; other names get 403: DNS
    /// rebinding).
    #[arg(long = "allow-host", value_name = "NAME", value_parser = crate::value::host_name)]
    pub allow_host: Vec<String>,
    /// Write the final fork tree over all nodes as an SVG picture.
    #[arg(long)]
    pub svg: Option<std::path::PathBuf>,
    /// A traitor: NODE:STRATEGY, node index from 0 (repeatable).
    #[arg(long, value_parser = super::sim::parse_adversary)]
    pub adversary: Vec<(usize, crate::protocol::StrategySpec)>,
    /// A node's share of the hashrate: NODE:FRACTION (repeatable; the
    /// others share the rest equally). Enforced by a per-node hashrate cap
    /// (80% of the measured machine rate shared out), so shares hold on a
    /// 2-core machine. With shares or traitors the difficulty is held at
    /// the start bits (`node --fixed-difficulty`): the capped hashrate is
    /// known, and the papers' models assume a constant difficulty.
    #[arg(long, value_parser = super::sim::parse_share)]
    pub hashrate_share: Vec<(usize, f64)>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Give every node Bitcoin Core's JSON-RPC and REST on port 0; each
    /// node's RPC address and cookie are printed and listed in the
    /// report's `nodes_info`.
    #[arg(long)]
    pub rpc: bool,
    /// Give every node a Stratum v1 server on port 0 (cpuminer and other
    /// outside miners can join a node); listed in `nodes_info` as
    /// `stratum`.
    #[arg(long)]
    pub stratum: bool,
}

impl TestnetArgs {
    /// The run these flags ask for.
    #[must_use]
    pub fn plan(&self) -> TestnetPlan {
        TestnetPlan {
            nodes: self.nodes,
            duration: self.duration,
            block_time: self.block_time,
            topology: self.topology,
            partition: self.partition,
            threads_per_node: self.threads_per_node,
            start_bits: self.start_bits,
            seed: self.seed,
            keep: self.keep,
            ui: self.ui,
            ui_hosts: crate::api::host::HostRule::with_names(&self.allow_host).unwrap_or_default(),
            svg: self.svg.clone(),
            adversary: self.adversary.clone(),
            hashrate_share: self.hashrate_share.clone(),
            json: self.json,
            rpc: self.rpc,
            stratum: self.stratum,
        }
    }
}
