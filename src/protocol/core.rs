//! [`NodeCore`]: one powchain node's behaviour, driven by inputs with an
//! explicit time and answering with outputs (see the module docs of
//! [`crate::protocol`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use thiserror::Error;

use super::mempool::{Mempool, TxError};
use super::messages::{
    truncate_reason, BlockBatch, Handshake, SyncRequest, SyncResponse, MAX_BLOCKS_PER_RESPONSE,
    MAX_LOCATOR, PROTOCOL_VERSION, RESPONSE_BLOCK_BYTES,
};
use super::peers::{
    peer_action, DecodeErrorKind, Offence, PeerAction, PeerBook, ProtocolFault,
    MAX_FRUITLESS_SYNCS, SYNC_TIMEOUT_SECS,
};
use super::{
    BlockSource, Command, GossipId, InboundId, Input, NodeEvent, Outbox, Output, RequestId, Topic,
    Verdict,
};
use crate::chain::{BlockStatus, ChainError, ChainStore, ChainUpdate, Precheck, StoreError};
use crate::consensus::difficulty::next_work_required;
use crate::consensus::{Block, ChainView, Params, Txid, Work};
use crate::miner::worker::BlockTemplate;

mod traitor;
use self::traitor::Traitor;
use super::strategy::Strategy;

/// Seconds between handshake rounds with every peer (catches up after lost
/// messages and after a partition heals).
pub const HANDSHAKE_INTERVAL_SECS: u64 = 5;
/// Seconds between two dials of the same configured address.
pub const REDIAL_SECS: u64 = 2;
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
/// Sync requests a peer may send per second before it is penalised and
/// refused (each may cost up to [`RESPONSE_BLOCK_BYTES`] of reads).
pub const MAX_REQUESTS_PER_SEC: u32 = 10;

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
    /// Mempool bounds: bytes and count.
    pub mempool_bytes: usize,
    /// Mempool bounds: count.
    pub mempool_count: usize,
    /// How this node mines and what it tells peers (honest by default).
    pub strategy: Strategy,
    /// Seconds between handshake rounds ([`HANDSHAKE_INTERVAL_SECS`]; the
    /// simulator stretches it with the block time).
    pub handshake_interval_secs: u64,
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
            max_peers: crate::config::DEFAULT_MAX_PEERS,
            mempool_bytes: 16 * 1024 * 1024,
            mempool_count: 50_000,
            strategy: Strategy::Honest,
            handshake_interval_secs: HANDSHAKE_INTERVAL_SECS,
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
}

/// One node's protocol state machine.
pub struct NodeCore {
    params: Arc<Params>,
    config: CoreConfig,
    chain: ChainStore,
    mempool: Mempool,
    peers: PeerBook,
    mining: bool,
    /// The tip the current mining job builds on.
    job_tip: Option<crate::consensus::BlockHash>,
    partitioned: BTreeSet<PeerId>,
    last_dial_ms: HashMap<Multiaddr, u64>,
    next_handshake_ms: u64,
    next_request_id: u64,
    stats: CoreStats,
    /// The time of the input being handled, Unix ms.
    clock_ms: u64,
    /// A traitor strategy's state.
    traitor: Traitor,
    /// Cache of [`NodeCore::peer_name`].
    peer_names: HashMap<PeerId, String>,
}

impl NodeCore {
    /// A core over an opened chain store.
    #[must_use]
    pub fn new(chain: ChainStore, config: CoreConfig) -> NodeCore {
        let params = Arc::clone(chain.params());
        let height = chain.height();
        NodeCore {
            mempool: Mempool::new(
                config.mempool_bytes,
                config.mempool_count,
                params.max_tx_bytes,
            ),
            params,
            mining: config.mining && config.has_miner,
            traitor: Traitor::new(config.strategy, height),
            config,
            chain,
            peers: PeerBook::default(),
            job_tip: None,
            partitioned: BTreeSet::new(),
            last_dial_ms: HashMap::new(),
            next_handshake_ms: 0,
            next_request_id: 0,
            stats: CoreStats::default(),
            clock_ms: 0,
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

    /// Transactions waiting.
    #[must_use]
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// Whether mining is switched on.
    #[must_use]
    pub fn mining(&self) -> bool {
        self.mining
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// This node's strategy.
    #[must_use]
    pub fn strategy(&self) -> Strategy {
        self.traitor.strategy
    }

    /// This node's id.
    #[must_use]
    pub fn local_peer_id(&self) -> PeerId {
        self.config.local_peer_id
    }

    /// Starts the node: dials configured peers and hands the miner its
    /// first job.
    pub fn start(&mut self, now_ms: u64, out: &mut impl Outbox) {
        self.clock_ms = now_ms;
        self.dial_peers(now_ms, out);
        self.refresh_job(now_ms, out);
        self.next_handshake_ms = now_ms + self.config.handshake_interval_secs * 1000;
    }

    /// Handles one input at time `now_ms` (Unix ms).
    ///
    /// # Errors
    /// [`CoreError`] when storage fails; the node must stop.
    pub fn handle(
        &mut self,
        now_ms: u64,
        input: Input,
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        self.clock_ms = now_ms;
        match input {
            Input::PeerConnected {
                peer,
                outbound,
                address,
            } => self.on_connected(now_ms, peer, outbound, address, out),
            Input::PeerDisconnected { peer } => {
                if self.peers.disconnect(&peer).is_some() {
                    out.push(Output::Event(NodeEvent::Peer {
                        peer,
                        connected: false,
                    }));
                    self.start_syncs(out);
                }
            }
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
                        &Offence::Protocol(ProtocolFault::UnknownTopic),
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
            } => {
                tracing::debug!(%peer, error = truncate_reason(&error), "request failed");
                let mut ours = false;
                if let Some(p) = self.peers.get_mut(&peer) {
                    if p.sync_in_flight.is_some_and(|(r, _)| r == id) {
                        p.sync_in_flight = None;
                        ours = true;
                    }
                    if p.handshake_in_flight == Some(id) {
                        p.handshake_in_flight = None;
                        ours = true;
                    }
                }
                if ours && malformed {
                    self.offence(
                        now_ms,
                        peer,
                        &Offence::Protocol(ProtocolFault::MalformedBatch),
                        "undecodable response",
                        out,
                    );
                }
                self.start_syncs(out);
            }
            Input::Mined(block) => {
                // A block on a tip that is no longer ours came from an old
                // job: publishing it would only make a stale block.
                if self.job_tip == Some(block.header.prev_blockhash) {
                    let res = if self.traitor.strategy.is_honest() {
                        self.accept_own_block(now_ms, block, out).map(|_| ())
                    } else {
                        self.traitor_mined(now_ms, block, out)
                    };
                    match res {
                        Ok(()) => {}
                        Err(ChainError::Store(e)) => return Err(e.into()),
                        Err(e) => {
                            tracing::error!("own block rejected: {e}");
                            self.refresh_job(now_ms, out);
                        }
                    }
                } else {
                    tracing::debug!("discarding a block mined on an old job");
                }
            }
            Input::Command(c) => self.on_command(now_ms, c, out),
            Input::Tick => self.on_tick(now_ms, out),
        }
        Ok(())
    }

    // ----- peers ---------------------------------------------------------

    fn our_handshake(&self) -> Handshake {
        Handshake {
            version: PROTOCOL_VERSION,
            network_id: self.params.network_id.clone(),
            genesis: self.params.genesis_hash,
            tip: self.chain.tip(),
            height: self.chain.height(),
            chainwork: self.chain.chainwork().0.to_be_bytes::<32>(),
        }
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

    fn on_connected(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        outbound: bool,
        address: Option<Multiaddr>,
        out: &mut impl Outbox,
    ) {
        if self.peers.is_banned(&peer, now_ms) || self.partitioned.contains(&peer) {
            out.push(Output::Disconnect(peer));
            return;
        }
        let known = self.peers.get(&peer).is_some();
        // Inbound slots are what the configured (outbound) peers leave.
        let inbound_slots = self
            .config
            .max_peers
            .saturating_sub(self.config.peers.len());
        if !known && !outbound && self.peers.inbound_count() >= inbound_slots {
            tracing::info!(%peer, max = self.config.max_peers, "inbound slots full; closing");
            out.push(Output::Disconnect(peer));
            return;
        }
        if !known && outbound && self.peers.len() >= self.config.max_peers {
            out.push(Output::Disconnect(peer));
            return;
        }
        self.peers.connect(peer, outbound, address);
        if !known {
            out.push(Output::Event(NodeEvent::Peer {
                peer,
                connected: true,
            }));
            self.send_handshake(peer, out);
        }
    }

    fn send_handshake(&mut self, peer: PeerId, out: &mut impl Outbox) {
        let id = self.request_id();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.handshake_in_flight = Some(id);
        }
        out.push(Output::SendRequest {
            peer,
            id,
            request: SyncRequest::Handshake(self.handshake_for(&peer)),
        });
    }

    /// Applies the table's action for `offence` to `peer`; bans and
    /// disconnects when the score falls through the threshold.
    fn offence(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        offence: &Offence<'_>,
        why: &str,
        out: &mut impl Outbox,
    ) {
        let Some(action) = peer_action(offence) else {
            return;
        };
        self.penalise(now_ms, peer, action, why, out);
    }

    fn penalise(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        action: PeerAction,
        why: &str,
        out: &mut impl Outbox,
    ) {
        let banned = self.peers.penalise(peer, action, now_ms);
        tracing::warn!(%peer, ?action, why, banned, "peer penalised");
        out.push(Output::Event(NodeEvent::Penalised {
            peer,
            action,
            reason: why.to_string(),
            banned,
        }));
        if banned {
            out.push(Output::Ban {
                peer,
                until_ms: now_ms + super::peers::BAN_SECS * 1000,
            });
            out.push(Output::Disconnect(peer));
            if self.peers.disconnect(&peer).is_some() {
                out.push(Output::Event(NodeEvent::Peer {
                    peer,
                    connected: false,
                }));
            }
        }
    }

    fn dial_peers(&mut self, now_ms: u64, out: &mut impl Outbox) {
        let connected_addrs: Vec<&Multiaddr> = self
            .peers
            .iter()
            .filter_map(|(_, p)| p.address.as_ref())
            .collect();
        let mut to_dial = Vec::new();
        for addr in &self.config.peers {
            let pid = addr.iter().find_map(|p| match p {
                Protocol::P2p(id) => Some(id),
                _ => None,
            });
            let skip = match pid {
                Some(id) => {
                    self.peers.get(&id).is_some()
                        || self.partitioned.contains(&id)
                        || self.peers.is_banned(&id, now_ms)
                }
                None => connected_addrs.contains(&addr),
            };
            if skip {
                continue;
            }
            if self
                .last_dial_ms
                .get(addr)
                .is_some_and(|&t| now_ms < t + REDIAL_SECS * 1000)
            {
                continue;
            }
            to_dial.push(addr.clone());
        }
        for addr in to_dial {
            self.last_dial_ms.insert(addr.clone(), now_ms);
            out.push(Output::Dial(addr));
        }
    }

    fn on_tick(&mut self, now_ms: u64, out: &mut impl Outbox) {
        self.dial_peers(now_ms, out);
        self.chain.expire_orphans(now_ms / 1000);
        // Sync requests that were never answered.
        let late: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.sync_in_flight
                    .is_some_and(|(_, t)| now_ms > t + SYNC_TIMEOUT_SECS * 1000)
            })
            .map(|(id, _)| *id)
            .collect();
        for peer in late {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.sync_in_flight = None;
            }
            self.offence(
                now_ms,
                peer,
                &Offence::Protocol(ProtocolFault::SyncTimeout),
                "sync request unanswered",
                out,
            );
        }
        if now_ms >= self.next_handshake_ms {
            self.next_handshake_ms = now_ms + self.config.handshake_interval_secs * 1000;
            let peers: Vec<PeerId> = self
                .peers
                .iter()
                .filter(|(_, p)| p.handshake_in_flight.is_none())
                .map(|(id, _)| *id)
                .collect();
            for p in peers {
                self.send_handshake(p, out);
            }
        }
        self.peers.prune(now_ms);
        self.start_syncs(out);
    }

    fn on_command(&mut self, now_ms: u64, c: Command, out: &mut impl Outbox) {
        match c {
            Command::SetMining(on) => {
                tracing::info!(mining = on, "mining switched");
                if !on {
                    self.traitor_stop(out);
                }
                self.mining = on && self.config.has_miner;
                self.refresh_job(now_ms, out);
            }
            Command::Partition(peers) => {
                tracing::warn!(
                    peers = peers.len(),
                    "partition: dropping and refusing peers"
                );
                for p in &peers {
                    out.push(Output::Disconnect(*p));
                }
                self.partitioned = peers.into_iter().collect();
            }
            Command::AddPeer(addr) => {
                if !self.config.peers.contains(&addr) {
                    tracing::info!(%addr, "peer added");
                    self.config.peers.push(addr);
                }
                self.dial_peers(now_ms, out);
            }
            Command::Heal => {
                tracing::warn!("partition healed");
                self.partitioned.clear();
                self.last_dial_ms.clear();
                self.dial_peers(now_ms, out);
            }
        }
    }

    /// Submits a transaction from the operator (`POST /tx`) and gossips it.
    ///
    /// # Errors
    /// The mempool's [`TxError`].
    pub fn submit_tx(&mut self, tx: Vec<u8>, out: &mut impl Outbox) -> Result<Txid, TxError> {
        let txid = self.mempool.add(tx.clone())?;
        out.push(Output::Publish {
            topic: Topic::Transactions,
            data: tx,
        });
        Ok(txid)
    }

    // ----- sync ----------------------------------------------------------

    fn on_request(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: InboundId,
        request: SyncRequest,
        out: &mut impl Outbox,
    ) {
        // Rate limit per peer: each request may cost many block reads.
        if let Some(p) = self.peers.get_mut(&peer) {
            let (n, start) = p.requests_in_window;
            p.requests_in_window = if now_ms >= start + 1000 {
                (1, now_ms)
            } else {
                (n + 1, start)
            };
            if p.requests_in_window.0 > MAX_REQUESTS_PER_SEC {
                out.push(Output::Respond {
                    peer,
                    id,
                    response: SyncResponse::Refused("too many requests".into()),
                });
                self.offence(
                    now_ms,
                    peer,
                    &Offence::Protocol(ProtocolFault::RequestFlood),
                    "request flood",
                    out,
                );
                return;
            }
        }
        let response = match request {
            SyncRequest::Handshake(hs) => {
                if self.on_handshake(now_ms, peer, hs, out) {
                    SyncResponse::Handshake(self.handshake_for(&peer))
                } else {
                    SyncResponse::Refused("wrong network".into())
                }
            }
            SyncRequest::GetBlocks {
                locator,
                max_blocks,
            } => {
                if locator.len() > MAX_LOCATOR {
                    self.offence(
                        now_ms,
                        peer,
                        &Offence::Protocol(ProtocolFault::OversizedLocator),
                        "oversized locator",
                        out,
                    );
                    SyncResponse::Refused(format!("locator longer than {MAX_LOCATOR}"))
                } else {
                    let max = max_blocks.min(MAX_BLOCKS_PER_RESPONSE) as usize;
                    match self.chain.blocks_after(&locator, max, RESPONSE_BLOCK_BYTES) {
                        Ok(mut v) => {
                            self.traitor_filter_blocks(&peer, &mut v);
                            SyncResponse::Blocks(BlockBatch::from_serialized(&v))
                        }
                        Err(e) => {
                            tracing::error!("cannot read blocks for a peer: {e}");
                            SyncResponse::Refused("read failure".into())
                        }
                    }
                }
            }
        };
        out.push(Output::Respond { peer, id, response });
    }

    /// Checks and records a handshake; false (and a ban) for another
    /// network.
    fn on_handshake(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        hs: Handshake,
        out: &mut impl Outbox,
    ) -> bool {
        if hs.genesis != self.params.genesis_hash || hs.network_id != self.params.network_id {
            tracing::warn!(%peer, network = truncate_reason(&hs.network_id), genesis = %hs.genesis, "peer is on another network");
            self.offence(
                now_ms,
                peer,
                &Offence::Protocol(ProtocolFault::WrongNetwork),
                "another network",
                out,
            );
            return false;
        }
        if hs.version != PROTOCOL_VERSION {
            self.offence(
                now_ms,
                peer,
                &Offence::Protocol(ProtocolFault::UnknownVersion),
                "unknown protocol version",
                out,
            );
            return false;
        }
        let ours = self.chain.chainwork();
        if let Some(p) = self.peers.get_mut(&peer) {
            let claimed = Work(ruint::aliases::U256::from_be_bytes(hs.chainwork));
            // A new, higher claim after a disbelieved one is still not
            // believed; a claim at or below ours needs no belief.
            p.claimed_work = claimed;
            p.handshake = Some(hs);
            if claimed <= ours {
                p.fruitless = 0;
            }
        }
        self.start_syncs(out);
        true
    }

    /// Sends block requests to peers that claim more work than ours, one
    /// per peer and at most [`MAX_SYNCS_IN_FLIGHT`] in all; peers whose
    /// claims never materialised are skipped.
    fn start_syncs(&mut self, out: &mut impl Outbox) {
        let ours = self.chain.chainwork();
        let in_flight = self
            .peers
            .iter()
            .filter(|(_, p)| p.sync_in_flight.is_some())
            .count();
        let mut candidates: Vec<(Work, PeerId)> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.disbelieved && p.sync_in_flight.is_none() && p.claimed_work > ours)
            .map(|(id, p)| (p.claimed_work, *id))
            .collect();
        // The best claim first; ties in peer-id order (deterministic).
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let free = MAX_SYNCS_IN_FLIGHT.saturating_sub(in_flight);
        for (_, peer) in candidates.into_iter().take(free) {
            self.request_blocks(peer, out);
        }
    }

    /// Asks `peer` for the blocks after our locator (unless a request to it
    /// is already in flight).
    fn request_blocks(&mut self, peer: PeerId, out: &mut impl Outbox) {
        if self
            .peers
            .get(&peer)
            .is_none_or(|p| p.sync_in_flight.is_some())
        {
            return;
        }
        let id = self.request_id();
        let mut locator = self.chain.locator();
        locator.truncate(MAX_LOCATOR);
        self.stats.sync_requests += 1;
        out.push(Output::SendRequest {
            peer,
            id,
            request: SyncRequest::GetBlocks {
                locator,
                max_blocks: MAX_BLOCKS_PER_RESPONSE,
            },
        });
        // Sent at the time of the input being handled.
        if let Some(p) = self.peers.get_mut(&peer) {
            p.sync_in_flight = Some((id, self.clock_ms));
        }
    }

    fn on_response(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: RequestId,
        response: SyncResponse,
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        let (was_handshake, was_sync) = match self.peers.get_mut(&peer) {
            Some(p) => {
                let hs = p.handshake_in_flight == Some(id);
                let sy = p.sync_in_flight.is_some_and(|(r, _)| r == id);
                if hs {
                    p.handshake_in_flight = None;
                }
                if sy {
                    p.sync_in_flight = None;
                }
                (hs, sy)
            }
            None => (false, false),
        };
        match response {
            SyncResponse::Handshake(hs) if was_handshake => {
                self.on_handshake(now_ms, peer, hs, out);
            }
            SyncResponse::Blocks(batch) if was_sync => {
                self.on_blocks(now_ms, peer, &batch, out)?;
            }
            SyncResponse::Refused(why) if was_handshake || was_sync => {
                tracing::warn!(%peer, why = truncate_reason(&why), "peer refused our request");
                self.start_syncs(out);
            }
            SyncResponse::Handshake(_) | SyncResponse::Blocks(_) | SyncResponse::Refused(_) => {
                // An answer to a question not asked (or no longer waited
                // for): dropped unread.
                self.offence(
                    now_ms,
                    peer,
                    &Offence::Protocol(ProtocolFault::UnsolicitedResponse),
                    "unsolicited response",
                    out,
                );
            }
        }
        Ok(())
    }

    fn on_blocks(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        batch: &BlockBatch,
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        let blocks = match batch.decode(self.params.max_block_bytes) {
            Ok(b) => b,
            Err(e) => {
                self.stats.blocks_rejected += 1;
                self.offence(
                    now_ms,
                    peer,
                    &Offence::Protocol(ProtocolFault::MalformedBatch),
                    &format!("malformed sync batch: {e}"),
                    out,
                );
                self.start_syncs(out);
                return Ok(());
            }
        };
        let full = blocks.len() == MAX_BLOCKS_PER_RESPONSE as usize;
        let work_before = self.chain.chainwork();
        let stored_before = self.chain.block_count();
        self.stats.blocks_received += blocks.len() as u64;
        let results = if blocks.is_empty() {
            Vec::new()
        } else {
            let name = self.peer_name(peer);
            self.chain.accept_blocks(blocks, Some(&name), now_ms)
        };
        let mut worst: Option<ChainError> = None;
        for r in results {
            match r {
                Ok(update) => self.apply_update(now_ms, &update, &BlockSource::Sync(peer), out),
                Err(ChainError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    self.stats.blocks_rejected += 1;
                    if worst.is_none() && peer_action(&Offence::Chain(&e)).is_some() {
                        worst = Some(e);
                    }
                }
            }
        }
        if let Some(e) = worst {
            self.offence(
                now_ms,
                peer,
                &Offence::Chain(&e),
                &format!("invalid block in sync: {e}"),
                out,
            );
        }
        // Progress: more chainwork, or new blocks on some branch. A peer
        // that claims more work than ours and keeps answering with nothing
        // new is lying about its chain.
        let progressed =
            self.chain.chainwork() > work_before || self.chain.block_count() > stored_before;
        let ours = self.chain.chainwork();
        if let Some(p) = self.peers.get_mut(&peer) {
            if progressed {
                p.fruitless = 0;
            } else if p.claimed_work > ours {
                p.fruitless += 1;
            }
        }
        let fruitless = self.peers.get(&peer).map_or(0, |p| p.fruitless);
        if fruitless > 0 {
            self.offence(
                now_ms,
                peer,
                &Offence::Protocol(ProtocolFault::FruitlessSync),
                "claimed chainwork not delivered",
                out,
            );
            if fruitless >= MAX_FRUITLESS_SYNCS {
                if let Some(p) = self.peers.get_mut(&peer) {
                    tracing::warn!(%peer, "no longer believing the peer's chainwork");
                    p.disbelieved = true;
                }
            }
        }
        let still_behind = self
            .peers
            .get(&peer)
            .is_some_and(|p| !p.disbelieved && p.claimed_work > self.chain.chainwork());
        if progressed && (full || still_behind) {
            self.request_blocks(peer, out);
        }
        self.start_syncs(out);
        Ok(())
    }

    // ----- blocks --------------------------------------------------------

    fn on_block_gossip(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: GossipId,
        data: &[u8],
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        let block = match Block::decode(data, self.params.max_block_bytes) {
            Ok(b) => b,
            Err(e) => {
                out.push(Output::Verdict {
                    peer,
                    id,
                    verdict: Verdict::Reject,
                });
                self.stats.blocks_rejected += 1;
                self.offence(
                    now_ms,
                    peer,
                    &Offence::Protocol(ProtocolFault::MalformedBlock(DecodeErrorKind::from(&e))),
                    &format!("malformed block: {e}"),
                    out,
                );
                return Ok(());
            }
        };
        self.stats.blocks_received += 1;
        let hash = block.block_hash();
        // Relay before the durable write when every rule passes on a known
        // parent; orphans are never relayed (Core relays only blocks it can
        // connect), and failures wait for `accept_block`'s verdict.
        let precheck = self.chain.precheck(&block, now_ms);
        if matches!(precheck, Ok(Precheck::Valid)) {
            if let Some(pos) = self.chain.branch_position(&block.header) {
                if pos.fork_depth > MAX_UNREQUESTED_FORK_DEPTH
                    && pos.chainwork < self.chain.chainwork()
                    && !self.sees_every_fork()
                {
                    tracing::info!(%hash, fork_depth = pos.fork_depth, "low-work fork from gossip neither stored nor relayed");
                    out.push(Output::Verdict {
                        peer,
                        id,
                        verdict: Verdict::Ignore,
                    });
                    out.push(Output::Event(NodeEvent::Rejected {
                        hash: Some(hash),
                        peer: Some(peer),
                        reason: format!(
                            "low-work fork {} blocks below the tip (unrequested)",
                            pos.fork_depth
                        ),
                    }));
                    return Ok(());
                }
            }
        }
        match &precheck {
            Ok(Precheck::Valid) => {
                if self.relays_others() {
                    out.push(Output::Verdict {
                        peer,
                        id,
                        verdict: Verdict::Accept,
                    });
                    self.stats.blocks_relayed += 1;
                } else {
                    out.push(Output::Verdict {
                        peer,
                        id,
                        verdict: Verdict::Ignore,
                    });
                }
            }
            Ok(Precheck::Known) => {
                out.push(Output::Verdict {
                    peer,
                    id,
                    verdict: Verdict::Ignore,
                });
                return Ok(());
            }
            Ok(Precheck::Orphan) => {}
            // A body that fails a context-free rule (proof of work, size,
            // merkle root, mutation) is not remembered by the chain store
            // (it may be a corrupted copy of a valid block), so hashing it
            // again in `accept_block` would only double the cost of junk:
            // the verdict is given here. Contextual failures still go
            // through `accept_block`, which remembers them.
            Err(e @ ChainError::Invalid { source, .. }) if is_context_free(source) => {
                self.reject_gossip_block(now_ms, peer, Some(id), hash, e, out);
                return Ok(());
            }
            Err(_) => {}
        }
        let delay_secs = (now_ms as f64 / 1000.0 - f64::from(block.header.time)).max(0.0);
        let name = self.peer_name(peer);
        let res = self.chain.accept_block(block, Some(&name), now_ms);
        let early = matches!(precheck, Ok(Precheck::Valid));
        match res {
            Ok(update) => {
                if !early {
                    // Orphans and duplicates are not forwarded.
                    out.push(Output::Verdict {
                        peer,
                        id,
                        verdict: Verdict::Ignore,
                    });
                }
                if update.status == BlockStatus::Orphan {
                    out.push(Output::Event(NodeEvent::Orphan {
                        hash,
                        missing: update.missing,
                    }));
                    tracing::info!(%hash, missing = ?update.missing.map(|m| m.to_string()), "orphan block; fetching ancestors");
                    self.request_blocks(peer, out);
                }
                self.apply_update_with_delay(
                    now_ms,
                    &update,
                    &BlockSource::Gossip(peer),
                    Some(delay_secs),
                    out,
                );
            }
            Err(ChainError::Store(e)) => return Err(e.into()),
            Err(e) => {
                // After an early Accept the verdict is given already.
                let verdict_id = (!early).then_some(id);
                self.reject_gossip_block(now_ms, peer, verdict_id, hash, &e, out);
            }
        }
        Ok(())
    }

    /// A gossip block the chain refused: the verdict (when `id` is given:
    /// Reject if the peer is at fault, else Ignore), the event, and the
    /// table's penalty.
    fn reject_gossip_block(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: Option<GossipId>,
        hash: crate::consensus::BlockHash,
        e: &ChainError,
        out: &mut impl Outbox,
    ) {
        self.stats.blocks_rejected += 1;
        if let Some(id) = id {
            let verdict = if peer_action(&Offence::Chain(e)).is_some() {
                Verdict::Reject
            } else {
                Verdict::Ignore
            };
            out.push(Output::Verdict { peer, id, verdict });
        }
        out.push(Output::Event(NodeEvent::Rejected {
            hash: Some(hash),
            peer: Some(peer),
            reason: e.to_string(),
        }));
        self.offence(now_ms, peer, &Offence::Chain(e), &e.to_string(), out);
    }

    fn on_tx_gossip(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: GossipId,
        data: Vec<u8>,
        out: &mut impl Outbox,
    ) {
        let verdict = match self.mempool.add_from(data, Some(peer)) {
            Ok(_) => Verdict::Accept,
            Err(e) => {
                let action = peer_action(&Offence::Tx(&e));
                if action.is_some() {
                    self.offence(now_ms, peer, &Offence::Tx(&e), &e.to_string(), out);
                    Verdict::Reject
                } else {
                    Verdict::Ignore
                }
            }
        };
        out.push(Output::Verdict { peer, id, verdict });
    }

    /// Stores and publishes a block this node made. When
    /// [`ChainStore::precheck`] finds it valid it is published before the
    /// durable write; otherwise only once `accept_block` has taken it.
    ///
    /// # Errors
    /// `accept_block`'s [`ChainError`]; the block is then not published.
    pub fn accept_own_block(
        &mut self,
        now_ms: u64,
        block: Block,
        out: &mut impl Outbox,
    ) -> Result<ChainUpdate, ChainError> {
        self.clock_ms = now_ms;
        let bytes = block.encode();
        let valid = self.chain.precheck(&block, now_ms);
        let unpublished = if matches!(valid, Ok(Precheck::Valid)) {
            self.publish_block(bytes, out);
            None
        } else {
            Some(bytes)
        };
        let update = self.chain.accept_block(block, None, now_ms)?;
        self.stats.blocks_mined += 1;
        if let Some(bytes) = unpublished {
            self.publish_block(bytes, out);
        }
        self.apply_update(now_ms, &update, &BlockSource::Mined, out);
        Ok(update)
    }

    fn publish_block(&mut self, bytes: Vec<u8>, out: &mut impl Outbox) {
        self.stats.blocks_relayed += 1;
        out.push(Output::Publish {
            topic: Topic::Blocks,
            data: bytes,
        });
    }

    fn apply_update(
        &mut self,
        now_ms: u64,
        update: &ChainUpdate,
        source: &BlockSource,
        out: &mut impl Outbox,
    ) {
        self.apply_update_with_delay(now_ms, update, source, None, out);
    }

    /// Passes on what the chain store reported: penalties for orphans that
    /// failed (on the peer that gave them, the origin of the data), events,
    /// mempool changes and a new mining job.
    fn apply_update_with_delay(
        &mut self,
        now_ms: u64,
        update: &ChainUpdate,
        source: &BlockSource,
        delay_secs: Option<f64>,
        out: &mut impl Outbox,
    ) {
        for r in &update.rejected_orphans {
            tracing::warn!(hash = %r.hash, error = %r.error, "orphan failed once its parent arrived");
            self.stats.blocks_rejected += 1;
            let from = r.from_peer.as_ref().and_then(|p| p.parse::<PeerId>().ok());
            out.push(Output::Event(NodeEvent::Rejected {
                hash: Some(r.hash),
                peer: from,
                reason: r.error.to_string(),
            }));
            if let Some(p) = from {
                self.offence(
                    now_ms,
                    p,
                    &Offence::Chain(&r.error),
                    "sent an orphan that proved invalid",
                    out,
                );
            }
        }
        if !self.traitor.strategy.is_honest()
            && matches!(source, BlockSource::Gossip(_) | BlockSource::Sync(_))
            && !update.added.is_empty()
        {
            self.traitor_public_blocks(now_ms, &update.added, out);
        }
        for h in &update.added {
            if let Some(info) = self.chain.block_info(h) {
                out.push(Output::Event(NodeEvent::Block {
                    hash: *h,
                    height: info.height,
                    source: source.clone(),
                    active: info.in_best_chain,
                    delay_secs: if *h == update.hash { delay_secs } else { None },
                }));
            }
        }
        let Some(change) = &update.tip_change else {
            return;
        };
        // The mempool only cares when it holds transactions or a re-org
        // returns some: skip reading blocks back otherwise.
        if !self.mempool.is_empty() || !change.disconnected.is_empty() {
            for h in &change.disconnected {
                if let Ok(Some(b)) = self.chain.block(h) {
                    self.mempool.readd_block(&b);
                }
            }
            for h in &change.connected {
                if let Ok(Some(b)) = self.chain.block(h) {
                    self.mempool.remove_block(&b);
                }
            }
        }
        if let Some(r) = &change.reorg {
            tracing::warn!(
                depth = r.depth, fork_height = r.fork_height, old_tip = %r.old_tip, new_tip = %r.new_tip,
                connected = r.connected.len(), "re-org"
            );
            out.push(Output::Event(NodeEvent::Reorg(r.clone())));
        }
        tracing::info!(height = change.new_height, tip = %change.new_tip, "new best tip");
        out.push(Output::Event(NodeEvent::Tip {
            hash: change.new_tip,
            height: change.new_height,
        }));
        self.refresh_job(now_ms, out);
    }

    // ----- mining --------------------------------------------------------

    /// The template a miner should work on now, at `now_ms`: the next
    /// block on the best tip, bits from the difficulty rule, time at least
    /// median-time-past + 1, the mempool's oldest transactions.
    #[must_use]
    pub fn template(&self) -> BlockTemplate {
        let view = self.chain.tip_view();
        let bits = next_work_required(&self.params, &view).unwrap_or(self.params.pow_limit_bits);
        let min_time = view.median_time_past() + 1;
        BlockTemplate {
            height: self.chain.height() + 1,
            version: 1,
            prev_blockhash: self.chain.tip(),
            bits,
            min_time,
            transactions: self.mempool.select(self.params.max_block_bytes - 1024),
            miner_id: self.config.miner_id.clone(),
        }
    }

    fn refresh_job(&mut self, _now_ms: u64, out: &mut impl Outbox) {
        if !self.config.has_miner {
            return;
        }
        if self.mining {
            let t = self.mining_template();
            self.job_tip = Some(t.prev_blockhash);
            out.push(Output::MiningJob(Some(t)));
        } else {
            self.job_tip = None;
            out.push(Output::MiningJob(None));
        }
    }
}

/// Whether a block error is found without the parent's context (so the
/// chain store does not remember it and a second check is pure cost).
fn is_context_free(e: &crate::consensus::BlockError) -> bool {
    use crate::consensus::{BlockError, HeaderError};
    match e {
        BlockError::Header(h) => matches!(
            h,
            HeaderError::HighHash { .. }
                | HeaderError::BadCompact(_)
                | HeaderError::TargetAboveLimit { .. }
        ),
        BlockError::Decode(_)
        | BlockError::NoTransactions
        | BlockError::TooLarge { .. }
        | BlockError::BadMerkleRoot { .. }
        | BlockError::MutatedMerkle => true,
        BlockError::BadCoinbase(_) | BlockError::BadCoinbaseHeight { .. } => false,
    }
}
