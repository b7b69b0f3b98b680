//! Relay: gossip of blocks and transactions (verdicts, early relay of
//! blocks that pass every rule, refusal of deep low-work forks), and the
//! answers to peers' sync requests.

use crate::protocol::peers::Admission;
use libp2p::PeerId;

use super::{strategy_ctx, CoreError, NodeCore, MAX_UNREQUESTED_FORK_DEPTH};
use crate::chain::{BlockStatus, ChainError, Precheck};
use crate::consensus::{Block, BlockError, BlockHash, HeaderError};
use crate::protocol::messages::{
    BlockBatch, SyncRequest, SyncResponse, BUSY_REASON, MAX_BLOCKS_PER_RESPONSE, MAX_LOCATOR,
    RESPONSE_BLOCK_BYTES,
};
use crate::protocol::peers::{peer_action, DecodeErrorKind, Offence, ProtocolFault};
use crate::protocol::{BlockSource, GossipId, InboundId, NodeEvent, Outbox, Output, Verdict};

impl NodeCore {
    /// Answers a peer's sync request (rate-limited per peer by the peer
    /// book: each may cost many block reads).
    pub(super) fn on_request(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: InboundId,
        request: SyncRequest,
        out: &mut impl Outbox,
    ) {
        match self.peers.admit_request(&peer, now_ms) {
            Admission::Admitted => {}
            Admission::NotAPeer => {
                out.push(Output::Respond {
                    peer,
                    id,
                    response: SyncResponse::Refused("not a connected peer".into()),
                });
                return;
            }
            Admission::Flood => {
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
                    SyncResponse::Handshake(self.handshake_for(now_ms, &peer))
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
                    match self.peers.serve_allowance(&peer, now_ms) {
                        Err(retry_ms) => {
                            // Not the asker's fault (the node-wide
                            // allowance may be spent by others): no
                            // penalty; an honest asker waits and asks again.
                            self.stats.requests_deferred += 1;
                            SyncResponse::Refused(format!(
                                "{BUSY_REASON}; ask again in {retry_ms} ms"
                            ))
                        }
                        Ok(allowance) => self.serve_blocks(
                            now_ms,
                            peer,
                            &locator,
                            max_blocks,
                            allowance.min(RESPONSE_BLOCK_BYTES),
                        ),
                    }
                }
            }
        };
        out.push(Output::Respond { peer, id, response });
    }

    /// The best-chain blocks after `locator`, at most `max_blocks` (and
    /// [`MAX_BLOCKS_PER_RESPONSE`]) and about `max_bytes` (the last block
    /// read may pass it), charged to the peer's allowance.
    fn serve_blocks(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        locator: &[BlockHash],
        max_blocks: u32,
        max_bytes: usize,
    ) -> SyncResponse {
        let max = max_blocks.min(MAX_BLOCKS_PER_RESPONSE) as usize;
        match self.chain.blocks_after(locator, max, max_bytes) {
            Ok(mut v) => {
                self.peers
                    .charge_served(&peer, v.iter().map(Vec::len).sum(), now_ms);
                if !self.mining.strategy.is_honest() {
                    self.mining
                        .strategy
                        .serve(&strategy_ctx!(self, now_ms), &peer, &mut v);
                }
                SyncResponse::Blocks(BlockBatch::from_serialized(&v))
            }
            Err(e) => {
                tracing::error!("cannot read blocks for a peer: {e}");
                SyncResponse::Refused("read failure".into())
            }
        }
    }

    fn verdict(out: &mut impl Outbox, peer: PeerId, id: GossipId, verdict: Verdict) {
        out.push(Output::Verdict { peer, id, verdict });
    }

    pub(super) fn on_block_gossip(
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
                Self::verdict(out, peer, id, Verdict::Reject);
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
        if matches!(precheck, Ok(Precheck::Valid)) && !self.mining.strategy.sees_every_fork() {
            if let Some(pos) = self.chain.branch_position(&block.header) {
                if pos.fork_depth > MAX_UNREQUESTED_FORK_DEPTH
                    && pos.chainwork < self.chain.chainwork()
                {
                    tracing::info!(%hash, fork_depth = pos.fork_depth, "low-work fork from gossip neither stored nor relayed");
                    Self::verdict(out, peer, id, Verdict::Ignore);
                    Self::event(
                        out,
                        NodeEvent::Rejected {
                            hash: Some(hash),
                            peer: Some(peer),
                            reason: format!(
                                "low-work fork {} blocks below the tip (unrequested)",
                                pos.fork_depth
                            ),
                        },
                    );
                    return Ok(());
                }
            }
        }
        match &precheck {
            Ok(Precheck::Valid) => {
                if self.mining.strategy.relays_others() {
                    Self::verdict(out, peer, id, Verdict::Accept);
                    self.stats.blocks_relayed += 1;
                } else {
                    Self::verdict(out, peer, id, Verdict::Ignore);
                }
            }
            Ok(Precheck::Known) => {
                Self::verdict(out, peer, id, Verdict::Ignore);
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
                    Self::verdict(out, peer, id, Verdict::Ignore);
                }
                if update.status == BlockStatus::Orphan {
                    Self::event(
                        out,
                        NodeEvent::Orphan {
                            hash,
                            missing: update.missing,
                        },
                    );
                    tracing::info!(%hash, missing = ?update.missing.map(|m| m.to_string()), "orphan block; fetching ancestors");
                    self.request_blocks(now_ms, peer, out);
                }
                self.apply_update(
                    now_ms,
                    &update,
                    &BlockSource::Gossip(peer),
                    Some(delay_secs),
                    out,
                )?;
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
        hash: BlockHash,
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
            Self::verdict(out, peer, id, verdict);
        }
        Self::event(
            out,
            NodeEvent::Rejected {
                hash: Some(hash),
                peer: Some(peer),
                reason: e.to_string(),
            },
        );
        self.offence(now_ms, peer, &Offence::Chain(e), &e.to_string(), out);
    }

    pub(super) fn on_tx_gossip(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        id: GossipId,
        data: Vec<u8>,
        out: &mut impl Outbox,
    ) {
        let verdict = match self.mempool.add_from(data, Some(peer)) {
            Ok(_) => {
                self.mining.tx_arrived(now_ms);
                Verdict::Accept
            }
            Err(e) => {
                if peer_action(&Offence::Tx(&e)).is_some() {
                    self.offence(now_ms, peer, &Offence::Tx(&e), &e.to_string(), out);
                    Verdict::Reject
                } else {
                    Verdict::Ignore
                }
            }
        };
        Self::verdict(out, peer, id, verdict);
    }
}

/// Whether a block error is found without the parent's context (so the
/// chain store does not remember it and a second check is pure cost).
fn is_context_free(e: &BlockError) -> bool {
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
