//! [`NodeCore`]: one powchain node's behaviour, driven by inputs with an
//! explicit time and answering with outputs (see the module docs of
//! [`crate::protocol`]).
//!
//! `NodeCore` itself only dispatches. Each concern owns its state and its
//! part of the protocol, in a file of its own:
//!
//! | file | manager | owns |
//! |---|---|---|
//! | `peering.rs` | [`peering::Peering`] | connections, dialling, slots, partitions, penalties |
//! | `sync.rs` | [`sync::Syncing`] | handshakes, keep-alives, locators, block batches; a [`SyncState`] per peer |
//! | `relay.rs` | (stateless) | gossip of blocks and transactions, serving sync requests |
//! | `mining.rs` | [`mining::Mining`] | the mining switch, jobs, own blocks, the strategy's actions |
//! | `update.rs` | (stateless) | a [`ChainUpdate`](crate::chain::ChainUpdate) turned into events, mempool changes and a new job |
//!
//! The shape follows nakamoto's `p2p` state machine, which fans inputs out
//! to a peer, sync and ping manager, each owning its state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use thiserror::Error;

use super::mempool::Mempool;
use super::peers::PeerBook;
use super::strategy::StrategySpec;
use super::{Input, NodeEvent, Outbox, Output, RequestId, Topic, Verdict};
use crate::chain::{ChainStore, StoreError};
use crate::consensus::BlockTemplate;
use crate::consensus::{Params, Txid};

mod mining;
mod peering;
pub use peering::MAX_DISCOVERED_PEERS;
mod relay;
mod sync;
mod update;

pub use sync::SyncState;

/// Most connected peers by default (`max_peers`).
pub const DEFAULT_MAX_PEERS: usize = 64;
/// The least time between two dials of the same configured address.
pub const REDIAL: Duration = Duration::from_secs(2);
/// Sync requests in flight at once, over all peers.
pub const MAX_SYNCS_IN_FLIGHT: usize = 2;
/// A gossip block whose branch leaves the best chain more than this many
/// blocks below the tip, with less chainwork than the tip, is neither
/// stored nor relayed: an anti-DoS rule in the spirit of Core's
/// `AcceptBlock`, which does not process unrequested blocks with less work
/// than its tip. Such a branch cannot become best soon, and a fork off an
/// old block at an easy target costs little work. A branch that really
/// has more work still arrives: its peer's handshake claims the work, and
/// blocks this node requested by sync are not held to this rule.
pub const MAX_UNREQUESTED_FORK_DEPTH: u32 = 6;
/// Shortest keep-alive handshake interval, seconds.
pub const MIN_KEEPALIVE_SECS: u64 = 5;
/// Longest keep-alive handshake interval, seconds.
pub const MAX_KEEPALIVE_SECS: u64 = 3_600;
/// Block times per keep-alive handshake round.
pub const KEEPALIVE_BLOCK_TIMES: u64 = 10;

/// The keep-alive handshake interval for a network whose blocks come every
/// `block_time_secs`: [`KEEPALIVE_BLOCK_TIMES`] block times, clamped to
/// [`MIN_KEEPALIVE_SECS`]..=[`MAX_KEEPALIVE_SECS`]. Handshakes are
/// otherwise event-driven (on connect and after a re-org), so a peer that
/// missed gossip learns of a heavier chain within this interval.
#[must_use]
pub fn keepalive_secs(block_time_secs: u32) -> u64 {
    (u64::from(block_time_secs) * KEEPALIVE_BLOCK_TIMES)
        .clamp(MIN_KEEPALIVE_SECS, MAX_KEEPALIVE_SECS)
}

/// A failure that stops the node (never a peer's doing).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The block store failed: durability is lost.
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
}

/// Settings of one core.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// This node's peer id.
    pub local_peer_id: PeerId,
    /// Written into the coinbase of mined blocks.
    pub miner_id: String,
    /// Whether a miner is attached.
    pub has_miner: bool,
    /// Whether mining starts switched on.
    pub mining: bool,
    /// Peers to dial and keep dialled.
    pub peers: Vec<Multiaddr>,
    /// Most connected peers; inbound connections beyond
    /// `max_peers - peers.len()` are closed, so configured peers keep their
    /// slots.
    pub max_peers: usize,
    /// Whether peers are also found by discovery (mDNS, `--mdns`): then
    /// outbound connections to peers not configured are capped at
    /// [`MAX_DISCOVERED_PEERS`] and share the inbound slots, so
    /// configured peers keep theirs (issue 22, item 10).
    pub discovery: bool,
    /// Mempool bounds: bytes.
    pub mempool_bytes: usize,
    /// Mempool bounds: count.
    pub mempool_count: usize,
    /// How this node mines and what it tells peers (honest by default).
    pub strategy: StrategySpec,
    /// Seconds between keep-alive handshakes (`None`: [`keepalive_secs`]
    /// of the network's block time).
    pub keepalive_secs: Option<u64>,
}

impl CoreConfig {
    /// Defaults for a node with id `local_peer_id`.
    #[must_use]
    pub fn new(local_peer_id: PeerId) -> CoreConfig {
        CoreConfig {
            local_peer_id,
            miner_id: String::new(),
            has_miner: false,
            mining: false,
            peers: Vec::new(),
            max_peers: DEFAULT_MAX_PEERS,
            discovery: false,
            mempool_bytes: 16 * 1024 * 1024,
            mempool_count: 50_000,
            strategy: StrategySpec::honest(),
            keepalive_secs: None,
        }
    }
}

/// Counters of what the core did (for metrics and reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Blocks received from peers (gossip and sync).
    pub blocks_received: u64,
    /// Blocks forwarded or published.
    pub blocks_relayed: u64,
    /// Blocks refused.
    pub blocks_rejected: u64,
    /// Blocks this node mined and stored.
    pub blocks_mined: u64,
    /// Sync requests sent.
    pub sync_requests: u64,
    /// Peers' `GetBlocks` refused for now because the serving allowance
    /// was spent ([`crate::protocol::budget`]).
    pub requests_deferred: u64,
}

/// One node's protocol state machine.
pub struct NodeCore {
    params: Arc<Params>,
    config: CoreConfig,
    chain: ChainStore,
    mempool: Mempool,
    peers: PeerBook,
    peering: peering::Peering,
    sync: sync::Syncing,
    mining: mining::Mining,
    stats: CoreStats,
    next_request_id: u64,
    /// Cache of [`NodeCore::peer_name`].
    peer_names: HashMap<PeerId, String>,
}

/// The read-only view a strategy decides on, built from the core's fields
/// (disjoint from the strategy's own, so both can be borrowed at once).
macro_rules! strategy_ctx {
    ($core:expr, $now:expr) => {
        $crate::protocol::strategy::StrategyContext {
            chain: &$core.chain,
            params: &$core.params,
            peers: &$core.peers,
            mempool: &$core.mempool,
            miner_id: &$core.config.miner_id,
            now_ms: $now,
        }
    };
}
use strategy_ctx;

impl NodeCore {
    /// A core over an opened chain store. Nothing happens until
    /// [`Input::Start`].
    #[must_use]
    pub fn new(chain: ChainStore, config: CoreConfig) -> NodeCore {
        let params = Arc::clone(chain.params());
        let keepalive_ms = 1000
            * config
                .keepalive_secs
                .unwrap_or_else(|| keepalive_secs(params.block_time_secs))
                .max(1);
        NodeCore {
            mempool: Mempool::new(
                config.mempool_bytes,
                config.mempool_count,
                params.max_tx_bytes,
            ),
            mining: mining::Mining::new(&config, chain.tip(), chain.height()),
            sync: sync::Syncing::new(keepalive_ms),
            peering: peering::Peering::default(),
            params,
            config,
            chain,
            peers: PeerBook::default(),
            stats: CoreStats::default(),
            next_request_id: 0,
            peer_names: HashMap::new(),
        }
    }

    /// The chain store (read only: every change goes through inputs).
    #[must_use]
    pub fn chain(&self) -> &ChainStore {
        &self.chain
    }

    /// The network parameters.
    #[must_use]
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }

    /// The peer book.
    #[must_use]
    pub fn peers(&self) -> &PeerBook {
        &self.peers
    }

    /// What sync knows of a connected peer.
    #[must_use]
    pub fn sync_state(&self, peer: &PeerId) -> Option<&SyncState> {
        self.sync.get(peer)
    }

    /// Transactions waiting.
    #[must_use]
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// The mempool, read-only (Core's `getmempoolinfo`, `getrawmempool`).
    #[must_use]
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// Whether mining is switched on.
    #[must_use]
    pub fn mining(&self) -> bool {
        self.mining.on
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// This node's strategy.
    #[must_use]
    pub fn strategy(&self) -> &StrategySpec {
        &self.config.strategy
    }

    /// This node's id.
    #[must_use]
    pub fn local_peer_id(&self) -> PeerId {
        self.config.local_peer_id
    }

    /// The template the miner should work on under this node's strategy
    /// (the honest one is [`NodeCore::template`]), as of `now_ms`.
    #[must_use]
    pub fn mining_template(&self, now_ms: u64) -> BlockTemplate {
        self.mining.strategy.template(&strategy_ctx!(self, now_ms))
    }

    /// The honest template: the next block on the best tip.
    #[must_use]
    pub fn template(&self) -> BlockTemplate {
        strategy_ctx!(self, 0).best_template()
    }

    /// When the core wants its next [`Input::Tick`], Unix ms: the earliest
    /// of a redial, a sync timeout, a keep-alive handshake, a new job for
    /// new transactions and an orphan's expiry. `None`: nothing is pending (an idle core sets no timer).
    /// A driver may tick earlier; a tick before the deadline does nothing
    /// but prune.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.peering.next_dial_ms(&self.config, &self.peers),
            self.sync.next_deadline_ms(self.peers.is_empty()),
            self.mining.tx_job_at_ms,
            self.chain.orphans().next_expiry_ms(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles one input at time `now_ms` (Unix ms): the only way the
    /// core's state changes.
    ///
    /// # Errors
    /// [`CoreError`] when storage fails; the node must stop.
    pub fn handle(
        &mut self,
        now_ms: u64,
        input: Input,
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        match input {
            Input::Start => {
                self.dial_peers(now_ms, out);
                self.mining.job_dirty = true;
            }
            Input::PeerConnected {
                peer,
                link,
                address,
            } => self.on_connected(now_ms, peer, link, address, out),
            Input::PeerDisconnected { peer } => self.on_disconnected(now_ms, peer, out),
            Input::Gossip {
                peer,
                id,
                topic,
                data,
            } => match topic {
                Topic::Blocks => self.on_block_gossip(now_ms, peer, id, &data, out)?,
                Topic::Transactions => self.on_tx_gossip(now_ms, peer, id, data, out),
                Topic::Other => {
                    out.push(Output::Verdict {
                        peer,
                        id,
                        verdict: Verdict::Reject,
                    });
                    self.offence(
                        now_ms,
                        peer,
                        &super::Offence::Protocol(super::ProtocolFault::UnknownTopic),
                        "gossip on an unknown topic",
                        out,
                    );
                }
            },
            Input::Request { peer, id, request } => self.on_request(now_ms, peer, id, request, out),
            Input::Response { peer, id, response } => {
                self.on_response(now_ms, peer, id, response, out)?;
            }
            Input::RequestFailed {
                peer,
                id,
                error,
                malformed,
            } => self.on_request_failed(now_ms, peer, id, &error, malformed, out),
            Input::Mined(block) => self.on_mined(now_ms, block, out)?,
            Input::SubmitTx(tx) => {
                let result = self.submit_tx(now_ms, tx, out);
                out.push(Output::TxResult(result));
            }
            Input::Command(c) => self.on_command(now_ms, c, out),
            Input::Tick => self.on_tick(now_ms, out),
        }
        if std::mem::take(&mut self.sync.tip_unannounced) {
            self.handshake_all(now_ms, out);
        }
        if std::mem::take(&mut self.mining.job_dirty) {
            self.refresh_job(now_ms, out);
        }
        Ok(())
    }

    fn on_tick(&mut self, now_ms: u64, out: &mut impl Outbox) {
        if self.mining.tx_job_due(now_ms) {
            self.mining.job_dirty = true;
        }
        self.dial_peers(now_ms, out);
        self.chain.expire_orphans(now_ms);
        self.sync_timeouts(now_ms, out);
        self.keepalive(now_ms, out);
        self.peers.prune(now_ms);
        self.start_syncs(now_ms, out);
    }

    /// A transaction from the operator (`POST /tx`): into the mempool and
    /// gossiped.
    fn submit_tx(
        &mut self,
        now_ms: u64,
        tx: Vec<u8>,
        out: &mut impl Outbox,
    ) -> Result<Txid, super::mempool::TxError> {
        let txid = self.mempool.add(tx.clone())?;
        self.mining.tx_arrived(now_ms);
        out.push(Output::Publish {
            topic: Topic::Transactions,
            data: tx,
        });
        Ok(txid)
    }

    /// A peer's id as text (base58 once per peer: it is written with
    /// every block the chain store takes from it).
    fn peer_name(&mut self, peer: PeerId) -> String {
        if self.peer_names.len() > 4096 {
            self.peer_names.clear();
        }
        self.peer_names
            .entry(peer)
            .or_insert_with(|| peer.to_string())
            .clone()
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request_id += 1;
        RequestId(self.next_request_id)
    }

    fn event(out: &mut impl Outbox, e: NodeEvent) {
        out.push(Output::Event(e));
    }
}
