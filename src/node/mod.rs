//! The node: the protocol core ([`crate::protocol::NodeCore`]) driven by
//! tokio, libp2p and redb, with the miner and the HTTP API.
//!
//! - [`runtime`]: the driver. The swarm task maps libp2p events to core
//!   inputs and executes the core's outputs; the core runs on its own
//!   thread, so a durable block write never stalls the swarm.
//! - [`api`]: the HTTP API (SPEC "Node HTTP API").
//! - [`metrics`]: Prometheus metrics.
//! - [`key`]: the identity key file.

pub mod api;
pub mod events;
pub mod gate;
pub mod key;
pub mod metrics;
pub mod rpc;
pub mod runtime;
pub mod stratum;
mod swarm;

use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;
use tokio::sync::oneshot;

use crate::api::types::Status;
use crate::chain::ChainError;
use crate::consensus::{BlockHash, Params, Txid};
use crate::protocol::{CoreError, Input, NodeCore};
use metrics::Metrics;

pub use crate::api::{read_cookie, COOKIE_FILE};
pub use crate::clock::now_ms;
pub use key::{load_or_create_key, write_key};
pub use runtime::run;

/// A node failure (start-up or fatal at run time).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Data dir or key file trouble.
    #[error("{0}")]
    Io(String),
    /// The chain store failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The protocol core stopped on a storage failure.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// libp2p set-up failed.
    #[error("p2p: {0}")]
    P2p(String),
    /// The API could not bind.
    #[error("api: {0}")]
    Api(String),
}

/// Messages into the core thread.
#[derive(Debug)]
pub enum CoreMsg {
    /// A protocol input.
    Input(Input),
    /// `POST /tx`.
    SubmitTx(
        Vec<u8>,
        oneshot::Sender<Result<Txid, crate::protocol::TxError>>,
    ),
    /// `POST /generate` and `generatetoaddress` (regtest): mine N blocks
    /// now, with this miner id in their coinbase (`None`: the node's).
    Generate(
        u32,
        Option<String>,
        oneshot::Sender<Result<Vec<BlockHash>, runtime::GenerateError>>,
    ),
    /// Answered once every message sent before it was handled (the RPC's
    /// `submitblock` waits on it for its block's verdict).
    Barrier(oneshot::Sender<()>),
    /// Stop the core thread.
    Stop,
}

/// Live, API-visible facts the core does not hold.
#[derive(Debug, Default, Clone)]
pub struct NodeInfo {
    /// Our peer id.
    pub peer_id: String,
    /// Dialable listen addresses, `/p2p/<id>` included.
    pub listen: Vec<String>,
    /// The HTTP API's bound address.
    pub api: String,
    /// Bound JSON-RPC address, when on.
    pub rpc: Option<String>,
    /// Bound Stratum address, when on.
    pub stratum: Option<String>,
    /// H/s over the last seconds.
    pub hashrate: f64,
    /// Miner backend.
    pub backend: String,
    /// Miner threads.
    pub threads: usize,
    /// Miner id.
    pub miner_id: String,
}

/// State shared between the driver and the API.
pub struct Shared {
    /// Network parameters.
    pub params: Arc<Params>,
    /// The protocol core (chain, mempool, peers). The API locks it to read.
    pub core: Mutex<NodeCore>,
    /// Live facts.
    pub info: Mutex<NodeInfo>,
    /// Metrics.
    pub metrics: Metrics,
    /// Messages into the core thread.
    pub commands: std::sync::mpsc::Sender<CoreMsg>,
    /// The bound on peers' gossip and requests queued in `commands`
    /// ([`gate`]).
    pub gate: gate::InputGate,
    /// Every [`crate::protocol::NodeEvent`] the core emits, for `GET
    /// /events` subscribers (a subscriber more than [`EVENT_BUFFER`]
    /// events behind skips ahead).
    pub events: tokio::sync::broadcast::Sender<crate::protocol::NodeEvent>,
    /// The `GET /events` feed: core events rendered once, shared by every
    /// subscriber ([`events`]).
    pub feed: events::EventFeed,
    /// Notified by the RPC `stop`: the node shuts down as on SIGTERM.
    pub stop: tokio::sync::Notify,
    /// When the node started (RPC `uptime`).
    pub started: std::time::Instant,
}

/// Events buffered for a slow `GET /events` subscriber.
pub const EVENT_BUFFER: usize = 4096;

impl Shared {
    /// `status.stratum`, read from the Stratum metrics.
    fn stratum_status(&self, addr: String) -> crate::api::types::StratumStatus {
        let m = &self.metrics.stratum;
        let rejected: std::collections::BTreeMap<String, u64> = stratum::Reject::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), m.rejected(*r).get()))
            .collect();
        crate::api::types::StratumStatus {
            addr,
            clients: u64::try_from(m.clients.get()).unwrap_or(0),
            shares_accepted: m.shares_accepted.get(),
            shares_rejected: rejected.values().sum(),
            rejected,
            blocks: m.blocks.get(),
            hashrate_estimate: m.hashrate_estimate.get(),
        }
    }

    /// The locked core.
    ///
    /// # Panics
    /// If a thread panicked while holding it.
    pub fn core(&self) -> MutexGuard<'_, NodeCore> {
        self.core.lock().expect("core lock")
    }

    /// The `/status` object (SPEC: `powchain status --json`).
    #[must_use]
    pub fn status(&self) -> Status {
        let core = self.core();
        let chain = core.chain();
        let info = self.info.lock().expect("info lock").clone();
        let peer_ids: Vec<String> = core.peers().iter().map(|(p, _)| p.to_string()).collect();
        Status {
            network: self.params.network.to_string(),
            network_id: self.params.network_id.clone(),
            genesis: self.params.genesis_hash.to_string(),
            peer_id: info.peer_id,
            listen: info.listen,
            api: info.api,
            rpc: info.rpc,
            stratum: info.stratum.map(|addr| self.stratum_status(addr)),
            height: chain.height(),
            tip: chain.tip().to_string(),
            chainwork: chain.chainwork().to_hex(),
            bits: chain.tip_header().bits.to_string(),
            peers: peer_ids.len(),
            peer_ids,
            mining: core.mining(),
            hashrate: info.hashrate,
            backend: info.backend,
            threads: info.threads,
            miner_id: info.miner_id,
            orphans: chain.orphans().len(),
            stale: chain.stale_count(),
            reorgs: chain.reorg_count(),
            invalid: chain.invalid_count(),
            banned: core.peers().banned_count(now_ms()),
            mempool: core.mempool_len(),
            blocks: chain.block_count(),
            block_time: self.params.block_time_secs,
        }
    }
}
