//! The traitor strategies' side of [`NodeCore`]: which template the miner
//! gets, what happens to a block it finds, how public blocks move a
//! private branch, and what is hidden from peers (see
//! [`crate::protocol::strategy`] for the strategies and their sources).

use std::collections::{BTreeMap, BTreeSet};

use libp2p::PeerId;

use super::NodeCore;
use crate::chain::{ChainError, ChainUpdate};
use crate::consensus::difficulty::next_work_required;
use crate::consensus::{sha256d, Block, BlockHash, ChainView, CompactTarget, Txid};
use crate::miner::worker::BlockTemplate;
use crate::protocol::messages::Handshake;
use crate::protocol::strategy::{SpamKind, Strategy, TraitorEvent};
use crate::protocol::{BlockSource, NodeEvent, Outbox, Output, Topic};

/// An own block kept private.
/// A double-spend round (Rosenfeld 2014's race).
#[derive(Clone, Debug)]
struct Round {
    number: u64,
    fork_height: u32,
    conflict_block: BlockHash,
    private_tip: BlockHash,
    private_height: u32,
    payment: Txid,
    /// Height of the public block holding the payment, once seen.
    payment_height: Option<u32>,
}

/// Two blocks at one height and the peers that were given the second.
#[derive(Clone, Debug)]
struct Equivocation {
    first: BlockHash,
    second: BlockHash,
    second_bytes: Vec<u8>,
    second_half: BTreeSet<PeerId>,
    height: u32,
    chainwork: [u8; 32],
}

/// A traitor's state. Empty and unused for the honest strategy.
#[derive(Debug, Default)]
pub(super) struct Traitor {
    pub(super) strategy: Strategy,
    /// Own blocks stored but not published (never served), by height: they
    /// form one private branch. Their bytes stay in the chain store only.
    withheld: BTreeMap<u32, BlockHash>,
    /// Height of the longest chain the public knows: blocks from peers
    /// and blocks this node published.
    public_height: u32,
    /// Height of the tip of the private branch (SM1's `private chain`).
    private_height: u32,
    /// SM1's `privateBranchLen`.
    private_len: u32,
    round: Option<Round>,
    rounds: u64,
    /// Equivocate: the first block of a pair, waiting for its twin.
    held: Option<Block>,
    equivocation: Option<Equivocation>,
    spam_sent: usize,
}

impl Traitor {
    pub(super) fn new(strategy: Strategy, height: u32) -> Traitor {
        Traitor {
            strategy,
            public_height: height,
            private_height: height,
            ..Traitor::default()
        }
    }

    fn spam_kind(&self) -> SpamKind {
        SpamKind::ALL[self.spam_sent % SpamKind::ALL.len()]
    }
}

/// Bits for half of `bits`' target: valid proof of work for it is valid
/// for `bits` too, but the difficulty rule asked for `bits`.
fn harder(bits: CompactTarget) -> CompactTarget {
    let exponent = bits.0 >> 24;
    let mantissa = bits.0 & 0x007f_ffff;
    if mantissa >= 0x0001_0000 {
        CompactTarget((exponent << 24) | (mantissa >> 1))
    } else {
        CompactTarget(((exponent - 1) << 24) | ((mantissa << 7) & 0x007f_ffff))
    }
}

impl NodeCore {
    /// The template the miner should work on under this node's strategy;
    /// the honest one is [`NodeCore::template`].
    #[must_use]
    pub fn mining_template(&self) -> BlockTemplate {
        let t = &self.traitor;
        match t.strategy {
            Strategy::Honest | Strategy::Selfish | Strategy::Withhold => self.template(),
            Strategy::DoubleSpend { .. } => match &t.round {
                // Pre-mining: the block that will hold the conflicting
                // transaction, on the best tip.
                None => {
                    let mut tpl = self
                        .template_on(&self.chain.tip())
                        .unwrap_or_else(|| self.template());
                    tpl.transactions = vec![self.conflict_tx(t.rounds + 1)];
                    tpl
                }
                Some(r) => self
                    .template_on(&r.private_tip)
                    .unwrap_or_else(|| self.template()),
            },
            Strategy::Equivocate => {
                let mut tpl = self.template();
                if t.held.is_some() {
                    // The twin: same parent and height, another body.
                    tpl.transactions = vec![b"powchain equivocation twin".to_vec()];
                }
                tpl
            }
            Strategy::SpamInvalid => {
                let mut tpl = self.template();
                match t.spam_kind() {
                    SpamKind::MerkleRoot => {}
                    SpamKind::Bits => tpl.bits = harder(tpl.bits),
                    SpamKind::TimeTooNew => {
                        let limit = self.clock_ms / 1000 + self.params.max_future_block_time_secs;
                        tpl.min_time = u32::try_from(limit + 3600).unwrap_or(u32::MAX);
                    }
                    SpamKind::CoinbaseHeight => tpl.height += 1,
                }
                tpl
            }
        }
    }

    /// The next block's template on any stored block `parent` (a private
    /// branch), as [`NodeCore::template`] builds one on the best tip, with
    /// no transactions; `None` if `parent` is not stored.
    #[must_use]
    pub fn template_on(&self, parent: &BlockHash) -> Option<BlockTemplate> {
        let info = self.chain.block_info(parent)?;
        let view = self.chain.view_at(parent)?;
        let bits = next_work_required(&self.params, &view).unwrap_or(self.params.pow_limit_bits);
        Some(BlockTemplate {
            height: info.height + 1,
            version: 1,
            prev_blockhash: *parent,
            bits,
            min_time: view.median_time_past() + 1,
            transactions: Vec::new(),
            miner_id: self.config.miner_id.clone(),
        })
    }

    fn conflict_tx(&self, round: u64) -> Vec<u8> {
        format!(
            "powchain double-spend round {round} by {}: the coin goes back to the attacker",
            self.config.miner_id
        )
        .into_bytes()
    }

    fn payment_tx(&self, round: u64) -> Vec<u8> {
        format!(
            "powchain double-spend round {round} by {}: payment to the merchant",
            self.config.miner_id
        )
        .into_bytes()
    }

    fn traitor_event(&self, e: TraitorEvent, out: &mut impl Outbox) {
        tracing::info!(strategy = %self.traitor.strategy, event = ?e, "traitor");
        out.push(Output::Event(NodeEvent::Traitor(e)));
    }

    /// A block the miner found, under a strategy other than honest.
    pub(super) fn traitor_mined(
        &mut self,
        now_ms: u64,
        mut block: Block,
        out: &mut impl Outbox,
    ) -> Result<(), ChainError> {
        match self.traitor.strategy {
            Strategy::Honest => {
                self.accept_own_block(now_ms, block, out)?;
            }
            Strategy::Selfish => {
                let delta_prev =
                    i64::from(self.traitor.private_height) - i64::from(self.traitor.public_height);
                self.keep_private(now_ms, block, out)?;
                self.traitor.private_len += 1;
                if delta_prev == 0 && self.traitor.private_len == 2 {
                    // SM1: a block found during the race (state 0') wins it.
                    self.publish_withheld(u32::MAX, "override", out);
                    self.traitor.private_len = 0;
                }
            }
            Strategy::Withhold => {
                self.keep_private(now_ms, block, out)?;
            }
            Strategy::DoubleSpend { .. } => {
                let parent_height = self
                    .chain
                    .block_info(&block.header.prev_blockhash)
                    .map_or(0, |i| i.height);
                let hash = block.block_hash();
                self.keep_private(now_ms, block, out)?;
                match &mut self.traitor.round {
                    Some(r) => {
                        r.private_tip = hash;
                        r.private_height = parent_height + 1;
                    }
                    None => {
                        self.traitor.rounds += 1;
                        let number = self.traitor.rounds;
                        let payment = self.payment_tx(number);
                        let txid = Txid(sha256d(&payment));
                        self.traitor.round = Some(Round {
                            number,
                            fork_height: parent_height,
                            conflict_block: hash,
                            private_tip: hash,
                            private_height: parent_height + 1,
                            payment: txid,
                            payment_height: None,
                        });
                        // Pay the merchant only now (Rosenfeld's pre-mining).
                        out.push(Output::Publish {
                            topic: Topic::Transactions,
                            data: payment,
                        });
                        self.traitor_event(
                            TraitorEvent::Paid {
                                round: number,
                                conflict_block: hash,
                                payment: txid,
                            },
                            out,
                        );
                    }
                }
                self.double_spend_decide(now_ms, out);
                // The private tip moved even when the best tip did not.
                self.refresh_job(now_ms, out);
            }
            Strategy::Equivocate => match self.traitor.held.take() {
                Some(first)
                    if first.header.prev_blockhash == block.header.prev_blockhash
                        && first.block_hash() != block.block_hash() =>
                {
                    self.equivocate(now_ms, first, block, out)?;
                }
                _ => {
                    // Hold it and mine its twin on the same parent.
                    self.traitor.held = Some(block);
                    self.refresh_job(now_ms, out);
                }
            },
            Strategy::SpamInvalid => {
                let kind = self.traitor.spam_kind();
                if kind == SpamKind::MerkleRoot {
                    block
                        .txdata
                        .push(b"powchain spam: not in the merkle root".to_vec());
                }
                let hash = block.block_hash();
                self.traitor.spam_sent += 1;
                self.publish_block(block.encode(), out);
                self.traitor_event(TraitorEvent::Spam { hash, kind }, out);
                self.refresh_job(now_ms, out);
            }
        }
        Ok(())
    }

    /// Stores an own block without publishing it.
    fn keep_private(
        &mut self,
        now_ms: u64,
        block: Block,
        out: &mut impl Outbox,
    ) -> Result<ChainUpdate, ChainError> {
        let hash = block.block_hash();
        let update = self.chain.accept_block(block, None, now_ms)?;
        self.stats.blocks_mined += 1;
        let height = self.chain.block_info(&hash).map_or(0, |i| i.height);
        self.traitor.withheld.insert(height, hash);
        self.traitor.private_height = height;
        self.traitor_event(TraitorEvent::Withheld { hash, height }, out);
        self.apply_update(now_ms, &update, &BlockSource::Mined, out);
        Ok(update)
    }

    /// Publishes the withheld blocks at heights up to `max_height`, lowest
    /// first.
    fn publish_withheld(&mut self, max_height: u32, why: &'static str, out: &mut impl Outbox) {
        let now = match max_height.checked_add(1) {
            Some(first_kept) => {
                let later = self.traitor.withheld.split_off(&first_kept);
                std::mem::replace(&mut self.traitor.withheld, later)
            }
            None => std::mem::take(&mut self.traitor.withheld),
        };
        if now.is_empty() {
            return;
        }
        let mut hashes = Vec::with_capacity(now.len());
        for (height, hash) in now {
            self.traitor.public_height = self.traitor.public_height.max(height);
            match self.chain.block_bytes(&hash) {
                Ok(Some(bytes)) => {
                    hashes.push(hash);
                    self.publish_block(bytes, out);
                }
                Ok(None) | Err(_) => {
                    tracing::error!(%hash, "a withheld block cannot be read back; not published");
                }
            }
        }
        self.traitor_event(TraitorEvent::Published { hashes, why }, out);
    }

    /// Blocks from peers were stored: the public chain may have grown.
    pub(super) fn traitor_public_blocks(
        &mut self,
        now_ms: u64,
        added: &[BlockHash],
        out: &mut impl Outbox,
    ) {
        let mut heights: Vec<(u32, BlockHash)> = added
            .iter()
            .filter_map(|h| self.chain.block_info(h).map(|i| (i.height, *h)))
            .collect();
        heights.sort_unstable();
        for (height, hash) in heights {
            if let Some(r) = &mut self.traitor.round {
                if r.payment_height.is_none() && height > r.fork_height {
                    let holds =
                        self.chain.block(&hash).ok().flatten().is_some_and(|b| {
                            b.txdata.iter().any(|tx| Txid(sha256d(tx)) == r.payment)
                        });
                    if holds {
                        r.payment_height = Some(height);
                    }
                }
            }
            if height <= self.traitor.public_height {
                continue;
            }
            let delta_prev =
                i64::from(self.traitor.private_height) - i64::from(self.traitor.public_height);
            self.traitor.public_height = height;
            match self.traitor.strategy {
                Strategy::Selfish => self.selfish_on_public(delta_prev, height, out),
                Strategy::DoubleSpend { .. } => self.double_spend_decide(now_ms, out),
                Strategy::Withhold => {
                    self.traitor.private_height = self.traitor.private_height.max(height);
                }
                Strategy::Honest | Strategy::Equivocate | Strategy::SpamInvalid => {
                    self.traitor.private_height = height;
                }
            }
        }
    }

    /// Mining stops: a selfish miner cashes in a private lead (it would win
    /// anyway: no more public blocks are coming), so a finite run counts
    /// the blocks the long-run analysis counts.
    pub(super) fn traitor_stop(&mut self, out: &mut impl Outbox) {
        if self.traitor.strategy == Strategy::Selfish
            && self.traitor.private_height > self.traitor.public_height
        {
            self.publish_withheld(u32::MAX, "stop", out);
            self.traitor.private_len = 0;
        }
    }

    /// SM1's "others found a block" (Eyal & Sirer 2014, Algorithm 1).
    fn selfish_on_public(&mut self, delta_prev: i64, height: u32, out: &mut impl Outbox) {
        match delta_prev {
            i64::MIN..=0 => {
                // They win: adopt the public chain.
                self.traitor.withheld.clear();
                self.traitor.private_len = 0;
                self.traitor.private_height = self.chain.height().max(height);
                self.traitor_event(TraitorEvent::Adopted { height }, out);
            }
            1 => {
                // Same length: publish the last block and race (state 0').
                self.publish_withheld(height, "match", out);
            }
            2 => {
                // One ahead of their new block: publish all, win.
                self.publish_withheld(u32::MAX, "override", out);
                self.traitor.private_len = 0;
            }
            _ => {
                // Far ahead: publish the first unpublished block.
                self.publish_withheld(height, "lead", out);
            }
        }
    }

    /// Rosenfeld's rule: publish once the private branch is longer than the
    /// public chain and the payment has its confirmations; give up when
    /// `give_up_behind` blocks behind.
    fn double_spend_decide(&mut self, now_ms: u64, out: &mut impl Outbox) {
        let Strategy::DoubleSpend {
            confirmations,
            give_up_behind,
        } = self.traitor.strategy
        else {
            return;
        };
        let Some(r) = self.traitor.round.clone() else {
            return;
        };
        let public = self.traitor.public_height;
        let confirmed = match r.payment_height {
            Some(ph) if public >= ph => public - ph + 1,
            _ => 0,
        };
        let published = if r.private_height > public && confirmed >= confirmations {
            self.publish_withheld(u32::MAX, "double-spend", out);
            true
        } else if public >= r.private_height + give_up_behind {
            self.traitor.withheld.clear();
            // The conflicting transaction came back to the mempool when the
            // private branch lost the best chain; it is abandoned.
            let conflict = Txid(sha256d(&self.conflict_tx(r.number)));
            self.mempool.remove(&conflict);
            false
        } else {
            return;
        };
        self.traitor.round = None;
        self.traitor.private_height = self.traitor.public_height;
        self.traitor_event(
            TraitorEvent::RoundEnded {
                round: r.number,
                conflict_block: r.conflict_block,
                published,
                private_len: r.private_height - r.fork_height,
                public_len: public.saturating_sub(r.fork_height),
            },
            out,
        );
        self.refresh_job(now_ms, out);
    }

    /// Stores both blocks and announces one to each half of the peers: a
    /// handshake naming it as our tip, so each half asks for it and gets
    /// its own (the sync answers below).
    fn equivocate(
        &mut self,
        now_ms: u64,
        first: Block,
        second: Block,
        out: &mut impl Outbox,
    ) -> Result<(), ChainError> {
        let (a, b) = (first.block_hash(), second.block_hash());
        let second_bytes = second.encode();
        let ua = self.chain.accept_block(first, None, now_ms)?;
        let ub = self.chain.accept_block(second, None, now_ms)?;
        self.stats.blocks_mined += 2;
        let Some(info) = self.chain.block_info(&a) else {
            return Ok(());
        };
        let peers: Vec<PeerId> = self.peers.iter().map(|(id, _)| *id).collect();
        let second_half: BTreeSet<PeerId> = peers.iter().skip(1).step_by(2).copied().collect();
        self.traitor.equivocation = Some(Equivocation {
            first: a,
            second: b,
            second_bytes,
            second_half,
            height: info.height,
            chainwork: info.chainwork.0.to_be_bytes::<32>(),
        });
        self.traitor.public_height = self.traitor.public_height.max(info.height);
        self.traitor_event(
            TraitorEvent::Equivocated {
                first: a,
                second: b,
                height: info.height,
            },
            out,
        );
        for p in peers {
            self.send_handshake(p, out);
        }
        self.apply_update(now_ms, &ua, &BlockSource::Mined, out);
        self.apply_update(now_ms, &ub, &BlockSource::Mined, out);
        Ok(())
    }

    /// The handshake this node shows `peer`: its best tip, or the last
    /// block it has not hidden; an equivocator shows each half its block.
    pub(super) fn handshake_for(&self, peer: &PeerId) -> Handshake {
        let mut hs = self.our_handshake();
        if self.traitor.strategy.is_honest() {
            return hs;
        }
        if let Some(e) = &self.traitor.equivocation {
            if hs.tip == e.first && e.second_half.contains(peer) {
                hs.tip = e.second;
                hs.height = e.height;
                hs.chainwork = e.chainwork;
            }
        }
        if !self.traitor.withheld.is_empty() {
            let mut h = self.chain.height();
            while h > 0 {
                match self.chain.info_at_height(h) {
                    Some(i) if self.is_withheld(&i.hash, h) => h -= 1,
                    _ => break,
                }
            }
            if let Some(i) = self.chain.info_at_height(h) {
                hs.tip = i.hash;
                hs.height = i.height;
                hs.chainwork = i.chainwork.0.to_be_bytes::<32>();
            }
        }
        hs
    }

    /// Whether `hash`, stored at `height`, is a withheld block.
    fn is_withheld(&self, hash: &BlockHash, height: u32) -> bool {
        self.traitor.withheld.get(&height) == Some(hash)
    }

    /// Cuts hidden blocks out of a sync answer (a traitor never serves its
    /// private branch) and gives the equivocator's second half its block.
    pub(super) fn traitor_filter_blocks(&self, peer: &PeerId, blocks: &mut Vec<Vec<u8>>) {
        if self.traitor.strategy.is_honest() {
            return;
        }
        if let Some(cut) = blocks.iter().position(|b| {
            b.len() >= 80 && {
                let hash = BlockHash(sha256d(&b[..80]));
                self.chain
                    .block_info(&hash)
                    .is_some_and(|i| self.is_withheld(&hash, i.height))
            }
        }) {
            blocks.truncate(cut);
        }
        if let Some(e) = &self.traitor.equivocation {
            if e.second_half.contains(peer) {
                if let Some(i) = blocks
                    .iter()
                    .position(|b| b.len() >= 80 && BlockHash(sha256d(&b[..80])) == e.first)
                {
                    blocks.truncate(i);
                    blocks.push(e.second_bytes.clone());
                }
            }
        }
    }

    /// Whether valid blocks of others are relayed. A miner that keeps a
    /// private branch (selfish, double-spend, withhold) does not help a
    /// competing block travel: in a race it would carry the rival to the
    /// very nodes it wants to reach first.
    pub(super) fn relays_others(&self) -> bool {
        matches!(
            self.traitor.strategy,
            Strategy::Honest | Strategy::Equivocate | Strategy::SpamInvalid
        )
    }

    /// Whether this node skips the honest node's refusal of deep low-work
    /// forks from gossip: a traitor must see the public chain grow even
    /// while its private branch is far ahead.
    pub(super) fn sees_every_fork(&self) -> bool {
        !self.traitor.strategy.is_honest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Target;

    #[test]
    fn harder_bits_halve_the_target() {
        for bits in [0x207f_ffffu32, 0x1d00_ffff, 0x1e0f_ffff] {
            let t = Target::from_compact(CompactTarget(bits)).unwrap();
            let h = Target::from_compact(harder(CompactTarget(bits))).unwrap();
            assert!(h.0 < t.0, "{bits:08x}");
            assert!(h.0 >= t.0 / ruint::aliases::U256::from(4u8), "{bits:08x}");
        }
    }
}
