//! Sync: handshakes (on connect, after a re-org and as a keep-alive),
//! block requests by locator to peers that claim more chainwork, batches
//! in answer, and what a peer's claims are worth (a [`SyncState`] per
//! peer, owned here).

use std::collections::BTreeMap;

use libp2p::PeerId;

use super::{strategy_ctx, CoreError, NodeCore, MAX_SYNCS_IN_FLIGHT};
use crate::chain::ChainError;
use crate::clock::after;
use crate::consensus::Work;
use crate::protocol::messages::{
    truncate_reason, BlockBatch, Handshake, SyncRequest, SyncResponse, MAX_BLOCKS_PER_RESPONSE,
    MAX_LOCATOR, PROTOCOL_VERSION, REFUSED_RETRY_MS,
};
use crate::protocol::peers::{
    peer_action, Offence, ProtocolFault, MAX_FRUITLESS_SYNCS, SYNC_TIMEOUT,
};
use crate::protocol::{BlockSource, Outbox, Output, RequestId};

/// What sync knows of one connected peer.
#[derive(Clone, Debug, Default)]
pub struct SyncState {
    handshake: Option<Handshake>,
    claimed_work: Work,
    /// The block request in flight, and when it was sent (Unix ms).
    sync_in_flight: Option<(RequestId, u64)>,
    handshake_in_flight: Option<RequestId>,
    /// Sync answers in a row that brought nothing new.
    fruitless: u32,
    disbelieved: bool,
    /// No block request before this (Unix ms): its last answer held blocks
    /// refused only as too new, valid from then on.
    not_before_ms: Option<u64>,
}

impl SyncState {
    /// Its latest handshake.
    #[must_use]
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_ref()
    }

    /// The chainwork its handshake claims.
    #[must_use]
    pub fn claimed_work(&self) -> Work {
        self.claimed_work
    }

    /// Whether its claims are no longer believed: it answered
    /// [`MAX_FRUITLESS_SYNCS`] requests in a row with nothing new while
    /// claiming more work than ours.
    #[must_use]
    pub fn disbelieved(&self) -> bool {
        self.disbelieved
    }

    /// Whether a block request to it is in flight.
    #[must_use]
    pub fn syncing(&self) -> bool {
        self.sync_in_flight.is_some()
    }
}

/// The sync manager's own state.
#[derive(Debug)]
pub struct Syncing {
    peers: BTreeMap<PeerId, SyncState>,
    keepalive_ms: u64,
    next_keepalive_ms: u64,
    /// The best tip changed in a way gossip did not announce (a re-org,
    /// blocks from a sync): handshake every peer once this input is done.
    pub(super) tip_unannounced: bool,
}

impl Syncing {
    /// Keep-alive handshakes every `keepalive_ms`.
    pub fn new(keepalive_ms: u64) -> Syncing {
        Syncing {
            peers: BTreeMap::new(),
            keepalive_ms,
            next_keepalive_ms: 0,
            tip_unannounced: false,
        }
    }

    pub(super) fn connected(&mut self, peer: PeerId) {
        self.peers.entry(peer).or_default();
    }

    pub(super) fn disconnected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// A connected peer's state.
    pub fn get(&self, peer: &PeerId) -> Option<&SyncState> {
        self.peers.get(peer)
    }

    /// The next keep-alive (when any peer is connected), sync timeout or
    /// retry of blocks that were too new, Unix ms.
    pub fn next_deadline_ms(&self, no_peers: bool) -> Option<u64> {
        let timeouts = self
            .peers
            .values()
            .filter_map(|s| s.sync_in_flight.map(|(_, t)| after(t, SYNC_TIMEOUT) + 1));
        let retries = self.peers.values().filter_map(|s| s.not_before_ms);
        let keepalive = (!no_peers).then_some(self.next_keepalive_ms);
        timeouts.chain(retries).chain(keepalive).min()
    }
}

impl NodeCore {
    fn our_handshake(&self) -> Handshake {
        Handshake {
            version: PROTOCOL_VERSION,
            network_id: self.params.network_id.clone(),
            genesis: self.params.genesis_hash,
            tip: self.chain.tip(),
            height: self.chain.height(),
            chainwork: self.chain.chainwork().to_u256().to_be_bytes::<32>(),
        }
    }

    /// The handshake this node shows `peer`: its best tip, or what its
    /// strategy shows instead.
    pub(super) fn handshake_for(&self, now_ms: u64, peer: &PeerId) -> Handshake {
        let mut hs = self.our_handshake();
        if !self.mining.strategy.is_honest() {
            self.mining
                .strategy
                .handshake(&strategy_ctx!(self, now_ms), peer, &mut hs);
        }
        hs
    }

    pub(super) fn send_handshake(&mut self, now_ms: u64, peer: PeerId, out: &mut impl Outbox) {
        let id = self.request_id();
        if let Some(s) = self.sync.peers.get_mut(&peer) {
            s.handshake_in_flight = Some(id);
        }
        out.push(Output::SendRequest {
            peer,
            id,
            request: SyncRequest::Handshake(self.handshake_for(now_ms, &peer)),
        });
    }

    /// A handshake to every peer that has none in flight.
    pub(super) fn handshake_all(&mut self, now_ms: u64, out: &mut impl Outbox) {
        let peers: Vec<PeerId> = self
            .sync
            .peers
            .iter()
            .filter(|(_, s)| s.handshake_in_flight.is_none())
            .map(|(id, _)| *id)
            .collect();
        for p in peers {
            self.send_handshake(now_ms, p, out);
        }
    }

    /// The keep-alive round, when due.
    pub(super) fn keepalive(&mut self, now_ms: u64, out: &mut impl Outbox) {
        if now_ms >= self.sync.next_keepalive_ms {
            self.sync.next_keepalive_ms = now_ms + self.sync.keepalive_ms;
            self.handshake_all(now_ms, out);
        }
    }

    /// Sync requests that were never answered.
    pub(super) fn sync_timeouts(&mut self, now_ms: u64, out: &mut impl Outbox) {
        let late: Vec<PeerId> = self
            .sync
            .peers
            .iter()
            .filter(|(_, s)| {
                s.sync_in_flight
                    .is_some_and(|(_, t)| now_ms > after(t, SYNC_TIMEOUT))
            })
            .map(|(id, _)| *id)
            .collect();
        for peer in late {
            if let Some(s) = self.sync.peers.get_mut(&peer) {
                s.sync_in_flight = None;
            }
            self.offence(
                now_ms,
                peer,
                &Offence::Protocol(ProtocolFault::SyncTimeout),
                "sync request unanswered",
                out,
            );
        }
    }

    /// Checks and records a handshake; false (and a ban) for another
    /// network.
    pub(super) fn on_handshake(
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
        if let Some(s) = self.sync.peers.get_mut(&peer) {
            let claimed = Work::from_u256(ruint::aliases::U256::from_be_bytes(hs.chainwork));
            // A new, higher claim after a disbelieved one is still not
            // believed; a claim at or below ours needs no belief.
            s.claimed_work = claimed;
            s.handshake = Some(hs);
            if claimed <= ours {
                s.fruitless = 0;
            }
        }
        self.start_syncs(now_ms, out);
        true
    }

    /// Sends block requests to peers that claim more work than ours, one
    /// per peer and at most [`MAX_SYNCS_IN_FLIGHT`] in all; peers whose
    /// claims never materialised are skipped.
    pub(super) fn start_syncs(&mut self, now_ms: u64, out: &mut impl Outbox) {
        let ours = self.chain.chainwork();
        let in_flight = self.sync.peers.values().filter(|s| s.syncing()).count();
        let mut candidates: Vec<(Work, PeerId)> = self
            .sync
            .peers
            .iter()
            .filter(|(_, s)| {
                !s.disbelieved
                    && !s.syncing()
                    && s.claimed_work > ours
                    && s.not_before_ms.is_none_or(|t| now_ms >= t)
            })
            .map(|(id, s)| (s.claimed_work, *id))
            .collect();
        // The best claim first; ties in peer-id order (deterministic).
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let free = MAX_SYNCS_IN_FLIGHT.saturating_sub(in_flight);
        for (_, peer) in candidates.into_iter().take(free) {
            self.request_blocks(now_ms, peer, out);
        }
    }

    /// Asks `peer` for the blocks after our locator (unless a request to it
    /// is already in flight).
    pub(super) fn request_blocks(&mut self, now_ms: u64, peer: PeerId, out: &mut impl Outbox) {
        if self.sync.peers.get(&peer).is_none_or(SyncState::syncing) {
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
        if let Some(s) = self.sync.peers.get_mut(&peer) {
            s.sync_in_flight = Some((id, now_ms));
            s.not_before_ms = None;
        }
    }

    pub(super) fn on_request_failed(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: RequestId,
        error: &str,
        malformed: bool,
        out: &mut impl Outbox,
    ) {
        tracing::debug!(%peer, error = truncate_reason(error), "request failed");
        let mut ours = false;
        if let Some(s) = self.sync.peers.get_mut(&peer) {
            if s.sync_in_flight.is_some_and(|(r, _)| r == id) {
                s.sync_in_flight = None;
                ours = true;
            }
            if s.handshake_in_flight == Some(id) {
                s.handshake_in_flight = None;
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
        self.start_syncs(now_ms, out);
    }

    pub(super) fn on_response(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: RequestId,
        response: SyncResponse,
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        let (was_handshake, was_sync) = match self.sync.peers.get_mut(&peer) {
            Some(s) => {
                let hs = s.handshake_in_flight == Some(id);
                let sy = s.sync_in_flight.is_some_and(|(r, _)| r == id);
                if hs {
                    s.handshake_in_flight = None;
                }
                if sy {
                    s.sync_in_flight = None;
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
                if was_sync {
                    if let Some(s) = self.sync.peers.get_mut(&peer) {
                        s.not_before_ms = Some(now_ms + REFUSED_RETRY_MS);
                    }
                }
                self.start_syncs(now_ms, out);
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
                self.start_syncs(now_ms, out);
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
        // The earliest time a block refused only as too new becomes valid.
        let mut valid_from_ms: Option<u64> = None;
        let future_ms = self.params.max_future_block_time_secs * 1000;
        for r in results {
            match r {
                Ok(update) => {
                    self.apply_update(now_ms, &update, &BlockSource::Sync(peer), None, out)?;
                }
                Err(ChainError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    self.stats.blocks_rejected += 1;
                    let too_new = match &e {
                        ChainError::Invalid { source, .. } => crate::chain::too_new_time(source),
                        _ => None,
                    };
                    if let Some(time) = too_new {
                        // Valid once now + the future limit reaches it
                        // (a second more for the seconds' rounding).
                        let at = (u64::from(time) * 1000).saturating_sub(future_ms) + 1000;
                        valid_from_ms = Some(valid_from_ms.map_or(at, |v| v.min(at)));
                    }
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
        let mut fruitless = 0;
        if let Some(s) = self.sync.peers.get_mut(&peer) {
            if progressed {
                s.fruitless = 0;
            } else if let Some(at) = valid_from_ms {
                // "Not yet", neither a lie nor fruitless: ask again then.
                tracing::debug!(%peer, retry_ms = at.saturating_sub(now_ms), "sync: blocks too new; asking again when valid");
                s.not_before_ms = Some(at.max(now_ms + 1));
            } else if s.claimed_work > ours {
                s.fruitless += 1;
            }
            fruitless = s.fruitless;
        }
        if fruitless > 0 {
            self.offence(
                now_ms,
                peer,
                &Offence::Protocol(ProtocolFault::FruitlessSync),
                "claimed chainwork not delivered",
                out,
            );
            if fruitless >= MAX_FRUITLESS_SYNCS {
                if let Some(s) = self.sync.peers.get_mut(&peer) {
                    tracing::warn!(%peer, "no longer believing the peer's chainwork");
                    s.disbelieved = true;
                }
            }
        }
        let still_behind = self
            .sync
            .peers
            .get(&peer)
            .is_some_and(|s| !s.disbelieved && s.claimed_work > self.chain.chainwork());
        if progressed && valid_from_ms.is_none() && (full || still_behind) {
            self.request_blocks(now_ms, peer, out);
        }
        self.start_syncs(now_ms, out);
        Ok(())
    }
}
