//! Node configuration: a TOML file, then command-line flags on top, into
//! one validated [`NodeConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use serde::Deserialize;
use thiserror::Error;

use crate::consensus::{CompactTarget, Network};
use crate::miner::Backend;

/// Why a `bits` value is refused.
#[derive(Debug, Error)]
pub enum BitsError {
    /// Not hex digits that fit 32 bits.
    #[error("not 8 hex digits: {0}")]
    Hex(#[source] std::num::ParseIntError),
    /// Negative, overflowing or zero (Core's `SetCompact` flags).
    #[error(transparent)]
    Compact(#[from] crate::consensus::CompactError),
}

/// A bad configuration value or file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A `bits` value (8 hex digits, Core's compact form) that does not parse
    /// or decodes to no valid target.
    #[error("bad bits {given:?}: {source}")]
    Bits {
        /// The text given.
        given: String,
        /// Why.
        #[source]
        source: BitsError,
    },
    /// A value of the wrong form (the network's name, a number).
    #[error(transparent)]
    Value(#[from] crate::value::ValueError),
    /// A miner backend that this build or CPU cannot run.
    #[error(transparent)]
    Backend(#[from] crate::miner::BackendError),
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// the file
        path: PathBuf,
        /// why
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node config.
    #[error("config file {path}: {message}")]
    Parse {
        /// the file
        path: PathBuf,
        /// why
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{0}")]
    Invalid(String),
}

/// The TOML file's shape: every field optional; flags override.
///
/// ```toml
/// network = "testnet"
/// block_time = 2
/// data_dir = "/tmp/powchain-node1"
/// listen = ["/ip4/127.0.0.1/tcp/18633"]
/// peers = ["/ip4/127.0.0.1/tcp/18634"]
/// mine = true
/// threads = 1
/// miner_id = "node1"
/// api = "127.0.0.1:18632"
/// backend = "auto"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `mainnet`, `testnet` or `regtest`.
    pub network: Option<String>,
    /// Testnet block time, seconds.
    pub block_time: Option<u32>,
    /// Testnet starting bits, 8 hex digits (part of the network's identity).
    pub start_bits: Option<String>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Listen multiaddrs.
    pub listen: Option<Vec<String>>,
    /// Peers to dial.
    pub peers: Option<Vec<String>>,
    /// Mine?
    pub mine: Option<bool>,
    /// Mining threads.
    pub threads: Option<usize>,
    /// Name written into mined coinbases.
    pub miner_id: Option<String>,
    /// HTTP API address.
    pub api: Option<String>,
    /// Miner backend name.
    pub backend: Option<String>,
    /// mDNS LAN discovery.
    pub mdns: Option<bool>,
    /// Host names the HTTP API answers besides IP literals and
    /// `localhost` (`--allow-host`).
    pub allow_hosts: Option<Vec<String>>,
    /// Most connected peers.
    pub max_peers: Option<usize>,
    /// Strategy: `honest` (default), `selfish`, `double-spend:Z`, ...
    pub strategy: Option<String>,
    /// Hashrate cap of the miner, H/s.
    pub max_hashrate: Option<f64>,
    /// Testnet: hold the difficulty at the start bits.
    pub fixed_difficulty: Option<bool>,
    /// Core-compatible JSON-RPC address (`--rpc`).
    pub rpc: Option<String>,
    /// Stratum v1 address (`--stratum`).
    pub stratum: Option<String>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// A complete, validated node configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Network.
    pub network: Network,
    /// Testnet block time, seconds (`None` = default).
    pub block_time_secs: Option<u32>,
    /// Testnet: bits of blocks 1 and 2 (`None`: the pow limit).
    pub start_bits: Option<CompactTarget>,
    /// With `mine`: start with mining paused until `/admin/mining`.
    pub paused: bool,
    /// Data directory (chain database, node key).
    pub data_dir: PathBuf,
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial and keep dialling.
    pub peers: Vec<Multiaddr>,
    /// Whether to mine.
    pub mine: bool,
    /// Mining threads.
    pub threads: usize,
    /// Written into coinbases.
    pub miner_id: String,
    /// HTTP API bind address.
    pub api: SocketAddr,
    /// Hashing backend.
    pub backend: Backend,
    /// mDNS LAN discovery.
    pub mdns: bool,
    /// Most connected peers; further connections are closed at once.
    pub max_peers: usize,
    /// Serve the `/admin/*` routes (SPEC "API access"; `testnet` sets it).
    pub admin: bool,
    /// The API's `Host` rule: IP literals, `localhost` and these names.
    pub hosts: crate::api::host::HostRule,
    /// Traitor strategy (honest by default).
    pub strategy: crate::protocol::StrategySpec,
    /// Cap of the miner's hashrate, H/s (testnets give each node its share
    /// of the machine this way).
    pub max_hashrate: Option<f64>,
    /// Testnet: difficulty held at the start bits
    /// ([`crate::consensus::Params::with_fixed_difficulty`]).
    pub fixed_difficulty: bool,
    /// The JSON-RPC (and REST) server, when on.
    pub rpc: Option<RpcConfig>,
    /// The Stratum v1 server, when on.
    pub stratum: Option<StratumConfig>,
}

/// Default limit on connected peers.
pub use crate::protocol::core::DEFAULT_MAX_PEERS;

/// Default P2P port of a network.
#[must_use]
pub fn default_p2p_port(network: Network) -> u16 {
    match network {
        Network::Mainnet => 8633,
        Network::Testnet => 18633,
        Network::Regtest => 18733,
    }
}

/// Default API port of a network.
#[must_use]
pub fn default_api_port(network: Network) -> u16 {
    default_p2p_port(network) - 1
}

/// Default data directory: `$HOME/.powchain/<network id>`.
#[must_use]
pub fn default_data_dir(network_id: &str) -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(
            || PathBuf::from(".powchain"),
            |h| PathBuf::from(h).join(".powchain"),
        )
        .join(network_id)
}

/// Overrides from the command line (all optional).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--network`
    pub network: Option<String>,
    /// `--block-time`
    pub block_time: Option<u32>,
    /// `--start-bits`
    pub start_bits: Option<CompactTarget>,
    /// `--paused`
    pub paused: bool,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--listen` (replaces the file's list when given)
    pub listen: Vec<String>,
    /// `--peer` (added to the file's list)
    pub peers: Vec<String>,
    /// `--mine`
    pub mine: bool,
    /// `--threads`
    pub threads: Option<usize>,
    /// `--miner-id`
    pub miner_id: Option<String>,
    /// `--api`
    pub api: Option<String>,
    /// `--backend`
    pub backend: Option<String>,
    /// `--mdns`
    pub mdns: bool,
    /// `--max-peers`
    pub max_peers: Option<usize>,
    /// `--admin`
    pub admin: bool,
    /// `--allow-host NAME` (repeatable; replaces the file's list).
    pub allow_hosts: Vec<String>,
    /// `--strategy`
    pub strategy: Option<crate::protocol::StrategySpec>,
    /// `--max-hashrate`
    pub max_hashrate: Option<f64>,
    /// `--fixed-difficulty`
    pub fixed_difficulty: bool,
    /// `--rpc`, `--rpc-user`, `--rpc-password`, `--rpc-allow-ip`, `--rest`.
    pub rpc: RpcOverrides,
    /// `--stratum`, `--stratum-difficulty`, `--stratum-shares-per-minute`.
    pub stratum: StratumOverrides,
}

/// The Stratum flags.
#[derive(Debug, Default, Clone)]
pub struct StratumOverrides {
    /// `--stratum ADDR`.
    pub addr: Option<SocketAddr>,
    /// `--stratum-difficulty D` (fixed share difficulty).
    pub difficulty: Option<f64>,
    /// `--stratum-shares-per-minute N` (the variable difficulty's aim).
    pub shares_per_minute: Option<f64>,
}

/// The Stratum v1 server's settings (SPEC "Stratum v1").
#[derive(Debug, Clone)]
pub struct StratumConfig {
    /// Where it listens (port 0 allowed).
    pub addr: SocketAddr,
    /// A fixed share difficulty; `None`: varied per connection.
    pub difficulty: Option<f64>,
    /// What the variable difficulty aims at, shares a minute per
    /// connection.
    pub shares_per_minute: f64,
}

/// The Stratum settings from the flags and the file's `stratum` key.
fn stratum_config(
    o: StratumOverrides,
    file_addr: Option<&str>,
) -> Result<Option<StratumConfig>, ConfigError> {
    let addr = match (o.addr, file_addr) {
        (Some(a), _) => a,
        (None, Some(text)) => text
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("bad stratum address '{text}': {e}")))?,
        (None, None) => {
            if o.difficulty.is_some() || o.shares_per_minute.is_some() {
                return Err(ConfigError::Invalid(
                    "--stratum-difficulty and --stratum-shares-per-minute need --stratum ADDR"
                        .into(),
                ));
            }
            return Ok(None);
        }
    };
    let positive = |what: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(ConfigError::Invalid(format!("{what} {v} must be positive")))
        }
    };
    Ok(Some(StratumConfig {
        addr,
        difficulty: o
            .difficulty
            .map(|d| positive("stratum difficulty", d))
            .transpose()?,
        shares_per_minute: positive(
            "stratum shares per minute",
            o.shares_per_minute
                .unwrap_or(crate::node::stratum::difficulty::DEFAULT_SHARES_PER_MINUTE),
        )?,
    }))
}

/// The JSON-RPC flags.
#[derive(Debug, Default, Clone)]
pub struct RpcOverrides {
    /// `--rpc ADDR`.
    pub addr: Option<SocketAddr>,
    /// `--rpc-user`.
    pub user: Option<String>,
    /// `--rpc-password`.
    pub password: Option<String>,
    /// `--rpc-allow-ip CIDR` (repeatable).
    pub allow_ip: Vec<ipnet::IpNet>,
    /// `--rest`.
    pub rest: bool,
}

/// The Core-compatible JSON-RPC server's settings (SPEC "Bitcoin Core
/// interfaces").
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Where it listens (port 0 allowed).
    pub addr: SocketAddr,
    /// `--rpc-user` and `--rpc-password`; `None`: Core's cookie.
    pub user: Option<(String, String)>,
    /// Who may connect (default loopback).
    pub allow: Vec<ipnet::IpNet>,
    /// Serve Core's REST interface on the same port.
    pub rest: bool,
}

impl RpcConfig {
    /// Loopback only: Core's default `-rpcallowip`.
    #[must_use]
    pub fn loopback() -> Vec<ipnet::IpNet> {
        vec![
            "127.0.0.0/8".parse().expect("a CIDR"),
            "::1/128".parse().expect("a CIDR"),
        ]
    }
}

/// Parses 8 hex digits of compact bits, refusing encodings that are not a
/// positive target.
///
/// # Errors
/// [`ConfigError::Invalid`].
pub fn parse_bits(text: &str) -> Result<CompactTarget, ConfigError> {
    let given = || text.chars().take(crate::value::MAX_ECHO_CHARS).collect();
    let v = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).map_err(|e| {
        ConfigError::Bits {
            given: given(),
            source: BitsError::Hex(e),
        }
    })?;
    let bits = CompactTarget::from_consensus(v);
    crate::consensus::Target::from_compact(bits).map_err(|e| ConfigError::Bits {
        given: given(),
        source: BitsError::Compact(e),
    })?;
    Ok(bits)
}

/// [`parse_bits`] for clap's `value_parser` (`--start-bits`).
///
/// # Errors
/// [`ConfigError::Invalid`] for bad bits.
pub fn parse_bits_arg(s: &str) -> Result<CompactTarget, ConfigError> {
    parse_bits(s)
}

/// The RPC settings from the flags and the file's `rpc` key.
fn rpc_config(o: RpcOverrides, file_addr: Option<&str>) -> Result<Option<RpcConfig>, ConfigError> {
    let addr = match (o.addr, file_addr) {
        (Some(a), _) => a,
        (None, Some(text)) => text
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("bad rpc address '{text}': {e}")))?,
        (None, None) => {
            if o.user.is_some() || o.password.is_some() || o.rest || !o.allow_ip.is_empty() {
                return Err(ConfigError::Invalid(
                    "--rpc-user, --rpc-password, --rpc-allow-ip and --rest need --rpc ADDR".into(),
                ));
            }
            return Ok(None);
        }
    };
    let user = match (o.user, o.password) {
        (Some(u), Some(p)) => {
            if u.contains(':') {
                return Err(ConfigError::Invalid(
                    "--rpc-user must not contain ':'".into(),
                ));
            }
            Some((u, p))
        }
        (None, None) => None,
        _ => {
            return Err(ConfigError::Invalid(
                "--rpc-user and --rpc-password go together".into(),
            ))
        }
    };
    let mut allow = o.allow_ip;
    if allow.is_empty() {
        allow = RpcConfig::loopback();
    }
    Ok(Some(RpcConfig {
        addr,
        user,
        allow,
        rest: o.rest,
    }))
}

fn parse_addrs(v: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    v.iter()
        .map(|s| {
            s.parse::<Multiaddr>()
                .map_err(|e| ConfigError::Invalid(format!("bad multiaddr '{s}': {e}")))
        })
        .collect()
}

impl NodeConfig {
    /// Merges a file (optional) and flags into a validated config.
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable file or an invalid value.
    pub fn resolve(file: Option<&Path>, o: Overrides) -> Result<NodeConfig, ConfigError> {
        let f = match file {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        Self::merge(f, o)
    }

    /// Merges a parsed file and flags into a validated config.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for an invalid value.
    pub fn merge(f: FileConfig, o: Overrides) -> Result<NodeConfig, ConfigError> {
        let network: Network = o
            .network
            .or(f.network)
            .unwrap_or_else(|| "testnet".into())
            .parse()?;
        let block_time_secs = o.block_time.or(f.block_time);
        if let Some(bt) = block_time_secs {
            if bt == 0 || bt > 86_400 {
                return Err(ConfigError::Invalid(format!(
                    "block time {bt} s is out of range (1..=86400)"
                )));
            }
            if network != Network::Testnet {
                return Err(ConfigError::Invalid(
                    "--block-time applies to testnet only".into(),
                ));
            }
        }
        let start_bits = match (o.start_bits, f.start_bits) {
            (Some(b), _) => Some(b),
            (None, Some(text)) => Some(parse_bits(&text)?),
            (None, None) => None,
        };
        if start_bits.is_some() && network != Network::Testnet {
            return Err(ConfigError::Invalid(
                "start bits apply to testnet only".into(),
            ));
        }
        let fixed_difficulty = o.fixed_difficulty || f.fixed_difficulty.unwrap_or(false);
        if fixed_difficulty && (network != Network::Testnet || start_bits.is_none()) {
            return Err(ConfigError::Invalid(
                "a fixed difficulty applies to a testnet with start bits only".into(),
            ));
        }
        // The id only (building the params would mine a genesis block).
        let params_id = match network {
            Network::Testnet => crate::consensus::Params::testnet_id(
                block_time_secs
                    .unwrap_or(crate::consensus::params::DEFAULT_TESTNET_BLOCK_TIME_SECS),
                start_bits,
                fixed_difficulty,
            ),
            Network::Mainnet => "mainnet".to_string(),
            Network::Regtest => "regtest".to_string(),
        };
        let listen = if o.listen.is_empty() {
            f.listen
                .unwrap_or_else(|| vec![format!("/ip4/0.0.0.0/tcp/{}", default_p2p_port(network))])
        } else {
            o.listen
        };
        let mut peers = f.peers.unwrap_or_default();
        peers.extend(o.peers);
        let mine = o.mine || f.mine.unwrap_or(false);
        if mine && network == Network::Mainnet {
            return Err(ConfigError::Invalid(
                "mainnet is header validation only: no mining".into(),
            ));
        }
        let threads = o
            .threads
            .or(f.threads)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if threads == 0 || threads > 1024 {
            return Err(ConfigError::Invalid(format!(
                "threads {threads} is out of range (1..=1024)"
            )));
        }
        let api = o
            .api
            .or(f.api)
            .unwrap_or_else(|| format!("127.0.0.1:{}", default_api_port(network)));
        let api: SocketAddr = api
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("bad --api address '{api}': {e}")))?;
        let backend: Backend = o
            .backend
            .or(f.backend)
            .unwrap_or_else(|| "auto".into())
            .parse::<Backend>()?
            .require()?;
        let miner_id = o
            .miner_id
            .or(f.miner_id)
            .unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| "powchain".into()));
        Ok(NodeConfig {
            network,
            block_time_secs,
            start_bits,
            paused: o.paused,
            data_dir: o
                .data_dir
                .or(f.data_dir)
                .unwrap_or_else(|| default_data_dir(&params_id)),
            listen: parse_addrs(&listen)?,
            peers: parse_addrs(&peers)?,
            mine,
            threads,
            miner_id,
            api,
            backend,
            mdns: o.mdns || f.mdns.unwrap_or(false),
            max_peers: o
                .max_peers
                .or(f.max_peers)
                .unwrap_or(DEFAULT_MAX_PEERS)
                .max(1),
            admin: o.admin,
            hosts: crate::api::host::HostRule::with_names(if o.allow_hosts.is_empty() {
                f.allow_hosts.as_deref().unwrap_or_default()
            } else {
                &o.allow_hosts
            })
            .map_err(|e| ConfigError::Invalid(e.to_string()))?,
            strategy: match (o.strategy, f.strategy) {
                (Some(s), _) => s,
                (None, Some(text)) => {
                    text.parse()
                        .map_err(|e: crate::protocol::strategy::StrategyParseError| {
                            ConfigError::Invalid(e.to_string())
                        })?
                }
                (None, None) => crate::protocol::StrategySpec::honest(),
            },
            fixed_difficulty,
            rpc: rpc_config(o.rpc, f.rpc.as_deref())?,
            stratum: stratum_config(o.stratum, f.stratum.as_deref())?,
            max_hashrate: match o.max_hashrate.or(f.max_hashrate) {
                Some(h) if h.is_nan() || h <= 0.0 => {
                    return Err(ConfigError::Invalid(format!(
                        "max hashrate {h} H/s must be positive"
                    )))
                }
                other => other,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.toml");
        std::fs::write(&p, "network = \"testnet\"\nblock_time = 3\nthreads = 2\nminer_id = \"a\"\npeers = [\"/ip4/127.0.0.1/tcp/1\"]\n").unwrap();
        let c = NodeConfig::resolve(
            Some(&p),
            Overrides {
                threads: Some(1),
                peers: vec!["/ip4/127.0.0.1/tcp/2".into()],
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.block_time_secs, Some(3));
        assert_eq!(c.threads, 1);
        assert_eq!(c.miner_id, "a");
        assert_eq!(c.peers.len(), 2);
        std::fs::write(&p, "bogus = 1\n").unwrap();
        assert!(matches!(
            NodeConfig::resolve(Some(&p), Overrides::default()),
            Err(ConfigError::Parse { .. })
        ));
        let bad = Overrides {
            network: Some("regtest".into()),
            block_time: Some(2),
            ..Overrides::default()
        };
        assert!(NodeConfig::resolve(None, bad).is_err());
    }

    #[test]
    fn shipped_config_files_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                NodeConfig::resolve(Some(&path), Overrides::default())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }
}
