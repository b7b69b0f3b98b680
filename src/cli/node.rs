//! `powchain node`.

use std::path::PathBuf;

use clap::Args;

use super::{failed, BackendArg, CliError};
use crate::consensus::Network;

/// `powchain node` flags.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// TOML config file (see config/).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// mainnet, testnet or regtest (default testnet).
    #[arg(long)]
    pub network: Option<Network>,
    /// Testnet target block time, seconds (part of the network's identity).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub block_time: Option<u32>,
    /// Testnet: bits of blocks 1 and 2, 8 hex digits (`powchain testnet`
    /// sets them from the measured hashrate so the first block takes about
    /// one block time). Part of the network's identity, like the block time.
    #[arg(long, value_parser = crate::config::parse_bits_arg)]
    pub start_bits: Option<crate::consensus::CompactTarget>,
    /// With --mine: start with mining paused until `POST /admin/mining`
    /// (`testnet` starts mining once every node has its peers).
    #[arg(long, requires = "mine")]
    pub paused: bool,
    /// Data directory (default `~/.powchain/<network id>`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen multiaddr (repeatable; port 0 picks a free port, reported in
    /// `status` and on stderr).
    #[arg(long)]
    pub listen: Vec<libp2p::Multiaddr>,
    /// Peer multiaddr to dial and keep dialling (repeatable).
    #[arg(long)]
    pub peer: Vec<libp2p::Multiaddr>,
    /// Mine blocks.
    #[arg(long)]
    pub mine: bool,
    /// Mining threads (default: all cores).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub threads: Option<usize>,
    /// Name written into the coinbase of mined blocks.
    #[arg(long)]
    pub miner_id: Option<String>,
    /// HTTP API address (default 127.0.0.1:18632 on testnet; port 0 picks one).
    #[arg(long)]
    pub api: Option<std::net::SocketAddr>,
    /// Miner backend.
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// Discover peers on the LAN with mDNS (needs multicast).
    #[arg(long)]
    pub mdns: bool,
    /// Most connected peers (default 64).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub max_peers: Option<usize>,
    /// Serve the `/admin/*` routes (mining switch, partition, heal); off
    /// by default, `testnet` passes it.
    #[arg(long)]
    pub admin: bool,
    /// A host name the HTTP API answers in the `Host` header besides IP
    /// literals and `localhost` (repeatable; other names get 403, which
    /// stops DNS rebinding), e.g. a container's or a Service's name.
    #[arg(long = "allow-host", value_name = "NAME", value_parser = crate::value::host_name)]
    pub allow_host: Vec<String>,
    /// How this node mines and what it tells peers: honest (default),
    /// selfish, `double-spend:Z[:GIVE_UP]`, withhold, equivocate, spam-invalid.
    #[arg(long)]
    pub strategy: Option<crate::protocol::StrategySpec>,
    /// Cap the miner at this many hashes per second (a node's share of the
    /// machine on a testnet).
    #[arg(long)]
    pub max_hashrate: Option<f64>,
    /// Testnet: hold the difficulty at --start-bits (part of the network's
    /// identity); `testnet` passes it with --hashrate-share or --adversary.
    #[arg(long, requires = "start_bits")]
    pub fixed_difficulty: bool,
    /// Serve Bitcoin Core's JSON-RPC on ADDR (port 0 picks one; the bound
    /// address is `status.rpc` and printed on stderr). Credentials: Core's
    /// cookie `<data dir>/.cookie`, or --rpc-user/--rpc-password.
    #[arg(long)]
    pub rpc: Option<std::net::SocketAddr>,
    /// JSON-RPC user name (with --rpc-password) instead of the cookie.
    #[arg(long, requires = "rpc_password")]
    pub rpc_user: Option<String>,
    /// JSON-RPC password (with --rpc-user).
    #[arg(long, requires = "rpc_user")]
    pub rpc_password: Option<String>,
    /// Addresses allowed to connect to the JSON-RPC port, as CIDR or one
    /// address (repeatable; default loopback only; others get 403).
    #[arg(long, value_parser = parse_allow_ip)]
    pub rpc_allow_ip: Vec<ipnet::IpNet>,
    /// Serve Core's REST interface (GET `/rest/...`, no credentials) on
    /// the JSON-RPC port.
    #[arg(long)]
    pub rest: bool,
    /// Serve Stratum v1 on ADDR for outside miners (cpuminer, cgminer...;
    /// port 0 picks one; the bound address is `status.stratum.addr` and
    /// printed on stderr).
    #[arg(long)]
    pub stratum: Option<std::net::SocketAddr>,
    /// Fixed Stratum share difficulty (difficulty 1: 2^224, as
    /// cpuminer-opt reckons; may be far below 1). Default: varied per
    /// connection to aim at --stratum-shares-per-minute.
    #[arg(long, requires = "stratum")]
    pub stratum_difficulty: Option<f64>,
    /// Shares a minute the variable Stratum difficulty aims at, per
    /// connection (default 20).
    #[arg(long, requires = "stratum")]
    pub stratum_shares_per_minute: Option<f64>,
}

/// `--rpc-allow-ip`: a CIDR (`10.0.0.0/8`) or one address (`10.1.2.3`).
fn parse_allow_ip(s: &str) -> Result<ipnet::IpNet, crate::value::ValueError> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| crate::value::ValueError::form(s, "an address or CIDR, e.g. 10.0.0.0/8"))
}

/// Runs `powchain node` until SIGINT/SIGTERM.
///
/// # Errors
/// [`CliError::Usage`] for a bad config, [`CliError::Failed`] when the node fails.
pub fn run(a: NodeArgs) -> Result<(), CliError> {
    let backend = a.backend.map(BackendArg::resolve).transpose()?;
    let overrides = crate::config::Overrides {
        network: a.network.map(|n| n.to_string()),
        block_time: a.block_time,
        start_bits: a.start_bits,
        paused: a.paused,
        data_dir: a.data_dir,
        listen: a.listen.iter().map(ToString::to_string).collect(),
        peers: a.peer.iter().map(ToString::to_string).collect(),
        mine: a.mine,
        threads: a.threads,
        miner_id: a.miner_id,
        api: a.api.map(|s| s.to_string()),
        backend: backend.map(|b| b.name().to_string()),
        mdns: a.mdns,
        max_peers: a.max_peers,
        admin: a.admin,
        allow_hosts: a.allow_host,
        strategy: a.strategy,
        max_hashrate: a.max_hashrate,
        fixed_difficulty: a.fixed_difficulty,
        rpc: crate::config::RpcOverrides {
            addr: a.rpc,
            user: a.rpc_user,
            password: a.rpc_password,
            allow_ip: a.rpc_allow_ip,
            rest: a.rest,
        },
        stratum: crate::config::StratumOverrides {
            addr: a.stratum,
            difficulty: a.stratum_difficulty,
            shares_per_minute: a.stratum_shares_per_minute,
        },
    };
    let config = crate::config::NodeConfig::resolve(a.config.as_deref(), overrides)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| failed(format!("tokio runtime: {e}")))?;
    rt.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending().await,
                    }
                } => {}
            }
        };
        crate::node::run(config, shutdown)
            .await
            .map_err(|e| failed(e.to_string()))
    })
}
