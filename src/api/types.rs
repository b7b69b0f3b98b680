//! JSON shapes of the CLI and the HTTP API (SPEC "JSON shapes" and "Node
//! HTTP API"). Field names are the contract; hashes are display-order hex
//! (byte-reversed, as Bitcoin prints them), `bits` 8 hex digits, target,
//! work and chainwork 64 hex digits.

use serde::{Deserialize, Serialize};

use crate::chain::{BlockInfo, ChainTip, TipStatus};
pub use crate::chain::{BlockTree, HiddenRun, ReorgEvent, TreeBlock};
use crate::consensus::{BlockHash, BlockHeader, Target};

/// `GET /status`, `powchain status --json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `mainnet`, `testnet` or `regtest`.
    pub network: String,
    /// The network id (`testnet-bt2`, ...).
    pub network_id: String,
    /// Genesis hash.
    pub genesis: String,
    /// This node's libp2p peer id.
    pub peer_id: String,
    /// Full dialable multiaddrs, `/p2p/<peer_id>` included.
    pub listen: Vec<String>,
    /// The HTTP API's bound address.
    pub api: String,
    /// Bound Core-compatible JSON-RPC address (`null` when off).
    #[serde(default)]
    pub rpc: Option<String>,
    /// The Stratum v1 server (`null` when off).
    #[serde(default)]
    pub stratum: Option<StratumStatus>,
    /// Best height.
    pub height: u32,
    /// Best tip.
    pub tip: String,
    /// Best chainwork, 64 hex digits.
    pub chainwork: String,
    /// The tip's bits, 8 hex digits.
    pub bits: String,
    /// Connected peers.
    pub peers: usize,
    /// Their ids.
    pub peer_ids: Vec<String>,
    /// Mining now.
    pub mining: bool,
    /// Local hashrate, H/s.
    pub hashrate: f64,
    /// Miner backend.
    pub backend: String,
    /// Miner threads.
    pub threads: usize,
    /// Coinbase miner id.
    pub miner_id: String,
    /// Blocks in the orphan pool.
    pub orphans: usize,
    /// Stale blocks stored.
    pub stale: usize,
    /// Re-orgs since start.
    pub reorgs: u64,
    /// Invalid blocks remembered.
    pub invalid: usize,
    /// Peers banned now.
    pub banned: usize,
    /// Transactions in the mempool.
    pub mempool: usize,
    /// Valid blocks stored, genesis included.
    pub blocks: usize,
    /// Target block time, seconds.
    pub block_time: u32,
}

/// `status.stratum` (SPEC "Stratum v1"); `/metrics` has the same figures
/// as `powchain_stratum_*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StratumStatus {
    /// Bound address.
    pub addr: String,
    /// Connected clients.
    pub clients: u64,
    /// Shares accepted.
    pub shares_accepted: u64,
    /// Shares and requests refused, all reasons.
    pub shares_rejected: u64,
    /// Refusals by reason: `stale`, `unknown_job`, `duplicate`,
    /// `low_difficulty`, `unauthorized`, `not_subscribed`, `other`.
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Blocks found through Stratum.
    pub blocks: u64,
    /// The workers' hashrate estimated from accepted share difficulty,
    /// H/s (an estimate, as pools give it).
    pub hashrate_estimate: f64,
}

/// SPEC `header`: `powchain header --json` and the header part of a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Block hash.
    pub hash: String,
    /// Version.
    pub version: i32,
    /// Parent hash.
    pub prev_blockhash: String,
    /// Merkle root (display order).
    pub merkle_root: String,
    /// Unix seconds.
    pub time: u32,
    /// Compact target, 8 hex digits.
    pub bits: String,
    /// Nonce.
    pub nonce: u32,
    /// Target, 64 hex digits (empty for invalid bits).
    pub target: String,
    /// Work of this header, 64 hex digits (empty for invalid bits).
    pub work: String,
    /// Whether the hash meets the target.
    pub pow_valid: bool,
}

impl Header {
    /// The JSON shape of `h`.
    #[must_use]
    pub fn of(h: &BlockHeader) -> Header {
        let target = Target::from_compact(h.bits);
        let hash = h.block_hash();
        Header {
            hash: hash.to_string(),
            version: h.version,
            prev_blockhash: h.prev_blockhash.to_string(),
            merkle_root: h.merkle_root_hex(),
            time: h.time,
            bits: h.bits.to_string(),
            nonce: h.nonce,
            target: target.map(|t| t.to_hex()).unwrap_or_default(),
            work: target.map(|t| t.to_work().to_hex()).unwrap_or_default(),
            pow_valid: target.is_ok_and(|t| t.is_met_by(&hash)),
        }
    }
}

/// `GET /blocks/{hash}`, `GET /blocks/height/{h}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Header fields.
    #[serde(flatten)]
    pub header: Header,
    /// Height.
    pub height: u32,
    /// Chainwork up to and including it.
    pub chainwork: String,
    /// On the best chain.
    pub in_best_chain: bool,
    /// When this node stored it, Unix ms.
    pub received_ms: u64,
    /// Miner id from its coinbase.
    pub miner_id: Option<String>,
    /// Serialized size, bytes.
    pub size: usize,
    /// Transaction ids, coinbase first.
    pub txids: Vec<String>,
    /// Bitcoin serialization, hex.
    pub raw: String,
}

/// One entry of `GET /tips` (Core's `getchaintips`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    /// Tip hash.
    pub hash: String,
    /// Height.
    pub height: u32,
    /// Blocks from the tip down to the best chain.
    pub branchlen: u32,
    /// `active`, `valid-fork` or `invalid`.
    pub status: TipStatus,
}

impl From<&ChainTip> for Tip {
    fn from(t: &ChainTip) -> Tip {
        Tip {
            hash: t.hash.to_string(),
            height: t.height,
            branchlen: t.branchlen,
            status: t.status,
        }
    }
}

/// One entry of `GET /stale`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stale {
    /// Hash.
    pub hash: String,
    /// Height.
    pub height: u32,
    /// Miner id from its coinbase.
    pub miner_id: Option<String>,
    /// When this node stored it, Unix ms.
    pub seen_ms: u64,
    /// Parent.
    pub prev_blockhash: String,
}

impl Stale {
    /// The JSON shape of a stale block with its miner id.
    #[must_use]
    pub fn of(b: &BlockInfo, miner_id: Option<String>) -> Stale {
        Stale {
            hash: b.hash.to_string(),
            height: b.height,
            miner_id,
            seen_ms: b.received_ms,
            prev_blockhash: b.header.prev_blockhash.to_string(),
        }
    }
}

/// One entry of `GET /orphans`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanView {
    /// Hash.
    pub hash: String,
    /// Claimed parent.
    pub prev_blockhash: String,
    /// Which peer sent it.
    pub from_peer: Option<String>,
    /// Seconds in the pool.
    pub age_secs: u64,
    /// Serialized size, bytes.
    pub size: usize,
}

impl OrphanView {
    /// The JSON shape of an orphan at `now_ms` (Unix ms); its age in whole
    /// seconds.
    #[must_use]
    pub fn of(o: &crate::chain::orphans::Orphan, now_ms: u64) -> OrphanView {
        OrphanView {
            hash: o.hash.to_string(),
            prev_blockhash: o.block.header.prev_blockhash.to_string(),
            from_peer: o.from_peer.clone(),
            age_secs: (now_ms.saturating_sub(o.received_ms)) / 1000,
            size: o.size,
        }
    }
}

/// One entry of `GET /reorgs` and the data of an `event: reorg`: the
/// chain's own [`ReorgEvent`] (hashes as display hex).
pub type Reorg = ReorgEvent;

/// `POST /tx` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxAccepted {
    /// The transaction id.
    pub txid: String,
}

/// `POST /tx` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRequest {
    /// Raw transaction bytes, hex.
    pub hex: String,
}

/// `POST /generate` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// Blocks to mine (1..=10000).
    pub blocks: u32,
}

/// `POST /admin/mining` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiningRequest {
    /// Mining on or off.
    pub enabled: bool,
}

/// `POST /admin/partition` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRequest {
    /// Peer ids to drop and refuse.
    pub peers: Vec<String>,
}

/// `POST /admin/peer` body and answer: a peer to dial and keep dialled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRequest {
    /// Its multiaddr, `/p2p/<id>` included.
    pub addr: String,
}

/// `POST /admin/partition` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionAck {
    /// Peers now refused.
    pub blocked: usize,
}

/// `POST /admin/heal` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealAck {
    /// Always true.
    pub healed: bool,
}

/// Every error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// One line of `powchain bench --json`'s `results`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// Backend name.
    pub backend: String,
    /// Threads.
    pub threads: usize,
    /// H/s, counted from hashes performed.
    pub hashes_per_sec: f64,
    /// Against the `sha2` crate's compression on one thread.
    pub ratio_to_reference: f64,
    /// Against OpenSSL's SHA-256 on one thread, when measured.
    pub ratio_to_openssl: Option<f64>,
    /// Fraction of the SHA unit's `sha256rnds2` ceiling, per thread
    /// (SHA-NI kernels only).
    pub fraction_of_sha_unit_ceiling: Option<f64>,
    /// Fraction of the op-mix ceiling (the kernel's whole instruction mix
    /// issued dependency-free), per thread (SHA-NI kernels only).
    #[serde(default)]
    pub fraction_of_op_mix_ceiling: Option<f64>,
}

/// `powchain mine-header --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MineHeaderResult {
    /// The solving nonce (`None`: none from the start).
    pub nonce: Option<u32>,
    /// The block hash with it.
    pub hash: Option<String>,
    /// Nonces hashed.
    pub hashes: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// H/s.
    pub hashes_per_sec: f64,
    /// Backend used.
    pub backend: String,
    /// Threads used.
    pub threads: usize,
}

/// `powchain verify-headers --json` for a valid file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyHeadersReport {
    /// Headers read.
    pub headers: usize,
    /// Height of the last one.
    pub tip_height: u32,
    /// Its hash.
    pub tip: String,
    /// Chainwork up to it, 64 hex digits.
    pub chainwork: String,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Headers per second.
    pub headers_per_sec: f64,
    /// The network whose rules applied.
    pub network: String,
    /// Always true here.
    pub valid: bool,
}

/// Percentiles of a delay distribution, milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DelayPercentiles {
    /// Median; `None` with no samples.
    pub p50: Option<f64>,
    /// 99th percentile; `None` with no samples.
    pub p99: Option<f64>,
    /// Mean; `None` with no samples.
    pub mean: Option<f64>,
    /// Samples.
    pub samples: usize,
}

/// One node of a testnet as outside tools reach it (`nodes_info`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAccess {
    /// `node0` ... `node{N-1}`.
    pub name: String,
    /// Its HTTP API, `host:port`.
    pub api: String,
    /// Its Core JSON-RPC (and REST), `host:port`; `null` without `--rpc`.
    pub rpc: Option<String>,
    /// Its Core cookie file (`__cookie__:<hex>`); `null` without `--rpc`.
    pub cookie: Option<String>,
    /// Its Stratum v1 server, `host:port`; `null` without `--stratum`.
    #[serde(default)]
    pub stratum: Option<String>,
}

/// `powchain testnet --json` (SPEC `testnet`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TestnetReport {
    /// Node processes.
    pub nodes: usize,
    /// How outside tools reach each node (SPEC: `nodes_info`).
    #[serde(default)]
    pub nodes_info: Vec<NodeAccess>,
    /// Whether every node had the same tip at the end.
    pub agreed: bool,
    /// The lowest final height.
    pub common_height: u64,
    /// Each node's final height, `node0` first.
    pub heights: Vec<u64>,
    /// Each node's final tip.
    pub tips: Vec<String>,
    /// Blocks on the final best chain plus stale blocks seen anywhere.
    pub blocks_total: u64,
    /// Distinct stale blocks over all nodes.
    pub stale: u64,
    /// `stale / blocks_total`.
    pub stale_rate: f64,
    /// The textbook 1 - exp(-d/T) for the measured mean delay d.
    pub stale_rate_expected_from_delay: f64,
    /// Re-orgs summed over nodes.
    pub reorgs: u64,
    /// Re-orgs per node.
    pub reorgs_per_node: Vec<u64>,
    /// Deepest re-org on any node.
    pub max_reorg_depth: u64,
    /// `/stale`, `/status` and `/metrics` agreed on every node.
    pub stale_consistent: bool,
    /// Propagation while connected (first arrival to each other node).
    pub propagation_ms: DelayPercentiles,
    /// Propagation over every block of the final chain.
    pub propagation_all_ms: DelayPercentiles,
    /// Target block time, seconds.
    pub block_time: u32,
    /// Seconds of mining.
    pub duration: u64,
    /// Topology name.
    pub topology: String,
    /// The partition, `START:END`, if any.
    pub partition: Option<String>,
    /// Kept logs and data, if `--keep`.
    pub logs: Option<String>,
    /// Bits of the first blocks (from the measured hashrate).
    pub start_bits: String,
    /// The steady state starts this many seconds after mining starts (five
    /// block times: the first blocks still settle the difficulty).
    pub steady_from_secs: u64,
    /// Blocks first seen in the steady state outside the partition window
    /// (best chain and stale).
    pub blocks_steady: u64,
    /// Stale blocks among them: ordinary races.
    pub stale_steady: u64,
    /// `stale_steady / blocks_steady`.
    pub stale_rate_steady: f64,
    /// Re-orgs in the steady state outside the partition window, over all
    /// nodes.
    pub reorgs_steady: u64,
    /// The deepest of them.
    pub max_reorg_depth_steady: u64,
    /// Stale blocks first seen from the cut to two block times after the
    /// heal: the partition's, reported apart from races.
    pub stale_partition: u64,
    /// Re-orgs in the same window (the lighter side's deep one among them).
    pub reorgs_partition: u64,
    /// The deepest of them.
    pub max_reorg_depth_partition: u64,
    /// With traitors or hashrate shares: each miner's share of the
    /// hashrate and of the final best chain (Eyal–Sirer's relative revenue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miners: Option<Vec<MinerShare>>,
    /// With traitors: the honest share of the final best chain (Garay–
    /// Kiayias–Leonardos' chain quality).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_quality: Option<f64>,
    /// With traitors: the deepest suffix on which two honest nodes'
    /// chains disagreed at any one-second sample (common prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_prefix_max: Option<u64>,
}

/// One miner of a testnet with traitors (SPEC `testnet` `miners`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinerShare {
    /// `node0` …
    pub node: String,
    /// Its strategy.
    pub strategy: String,
    /// Its share of the testnet's hashrate (enforced by a per-node cap).
    pub hashrate_share: f64,
    /// Its share of the blocks mined (stale ones included), as counted by
    /// the node: the share it really had.
    pub mined_share: f64,
    /// Its share of the final best chain of the first honest node.
    pub chain_share: f64,
}

/// Data of an `event: tip` on `GET /events`: the new best tip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipEvent {
    /// Hash.
    pub hash: BlockHash,
    /// Height.
    pub height: u32,
}

/// Data of an `event: peer` on `GET /events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEvent {
    /// The peer's id.
    pub peer: String,
    /// Connected (true) or gone.
    pub connected: bool,
}

/// The kinds of `GET /events` events: the SSE event names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A block was stored or refused ([`TreeBlock`]).
    Block,
    /// The best tip moved ([`TipEvent`]).
    Tip,
    /// A re-org ([`Reorg`]).
    Reorg,
    /// A block a re-org disconnected ([`Stale`]).
    Stale,
    /// A block went into the orphan pool ([`OrphanView`]).
    Orphan,
    /// A peer came or went ([`PeerEvent`]).
    Peer,
    /// This subscriber fell behind and missed this many events.
    Lagged,
}

impl EventKind {
    /// The SSE event name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Block => "block",
            EventKind::Tip => "tip",
            EventKind::Reorg => "reorg",
            EventKind::Stale => "stale",
            EventKind::Orphan => "orphan",
            EventKind::Peer => "peer",
            EventKind::Lagged => "lagged",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `GET /events` event with its typed data: the SSE event name is the
/// variant ([`EventKind`]), the SSE data its JSON. The server, `powchain
/// watch` and the observer share it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "lowercase")]
pub enum ApiEvent {
    /// `event: block`.
    Block(TreeBlock),
    /// `event: tip`.
    Tip(TipEvent),
    /// `event: reorg`.
    Reorg(ReorgEvent),
    /// `event: stale`.
    Stale(Stale),
    /// `event: orphan`.
    Orphan(OrphanView),
    /// `event: peer`.
    Peer(PeerEvent),
    /// `event: lagged`: events this subscriber missed.
    Lagged(u64),
}

impl ApiEvent {
    /// Its kind (the SSE event name).
    #[must_use]
    pub fn kind(&self) -> EventKind {
        match self {
            ApiEvent::Block(_) => EventKind::Block,
            ApiEvent::Tip(_) => EventKind::Tip,
            ApiEvent::Reorg(_) => EventKind::Reorg,
            ApiEvent::Stale(_) => EventKind::Stale,
            ApiEvent::Orphan(_) => EventKind::Orphan,
            ApiEvent::Peer(_) => EventKind::Peer,
            ApiEvent::Lagged(_) => EventKind::Lagged,
        }
    }

    /// The SSE data: its JSON.
    #[must_use]
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => m.remove("data").unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    /// Reads an SSE event: its name and its data.
    ///
    /// # Errors
    /// The JSON error when the name is unknown or the data does not have
    /// that kind's shape.
    pub fn from_sse(kind: &str, data: &str) -> Result<ApiEvent, serde_json::Error> {
        let data: serde_json::Value = serde_json::from_str(data)?;
        serde_json::from_value(serde_json::json!({ "event": kind, "data": data }))
    }
}
