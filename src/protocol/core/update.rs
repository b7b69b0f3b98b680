//! What a stored block changed: a [`ChainUpdate`] turned into penalties
//! for orphans that proved invalid (on the peer that sent them, the origin
//! of the data), the strategy's view of public blocks, events, mempool
//! changes, handshakes on a tip change that gossip did not announce (a
//! re-org, a sync), and a new mining job.

use super::{strategy_ctx, CoreError, NodeCore};
use crate::chain::ChainUpdate;
use crate::protocol::peers::Offence;
use crate::protocol::{BlockSource, NodeEvent, Outbox};

impl NodeCore {
    /// Passes on what the chain store reported for a block from `source`
    /// (`delay_secs`: from its header time to its arrival, gossip only).
    pub(super) fn apply_update(
        &mut self,
        now_ms: u64,
        update: &ChainUpdate,
        source: &BlockSource,
        delay_secs: Option<f64>,
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        for r in &update.rejected_orphans {
            tracing::warn!(hash = %r.hash, error = %r.error, "orphan failed once its parent arrived");
            self.stats.blocks_rejected += 1;
            let from = r
                .from_peer
                .as_ref()
                .and_then(|p| p.parse::<libp2p::PeerId>().ok());
            Self::event(
                out,
                NodeEvent::Rejected {
                    hash: Some(r.hash),
                    peer: from,
                    reason: r.error.to_string(),
                },
            );
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
        if !self.mining.strategy.is_honest()
            && matches!(source, BlockSource::Gossip(_) | BlockSource::Sync(_))
            && !update.added.is_empty()
        {
            let mut heights: Vec<(u32, crate::consensus::BlockHash)> = update
                .added
                .iter()
                .filter_map(|h| self.chain.block_info(h).map(|i| (i.height, *h)))
                .collect();
            heights.sort_unstable();
            for (height, hash) in heights {
                let actions = self.mining.strategy.on_public_block(
                    &strategy_ctx!(self, now_ms),
                    hash,
                    height,
                );
                self.run_actions(now_ms, actions, out)?;
            }
        }
        for h in &update.added {
            if let Some(info) = self.chain.block_info(h) {
                Self::event(
                    out,
                    NodeEvent::Block {
                        hash: *h,
                        height: info.height,
                        source: source.clone(),
                        active: info.in_best_chain,
                        delay_secs: if *h == update.hash { delay_secs } else { None },
                    },
                );
            }
        }
        let Some(change) = &update.tip_change else {
            return Ok(());
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
            Self::event(out, NodeEvent::Reorg(r.clone()));
        }
        // Handshakes are event-driven: a new tip is announced to every
        // peer by a handshake unless the block itself announced it, that is
        // a one-block extension by a block that gossip carries on (one
        // received by gossip, or one mined here). After a re-org the peers
        // on the branch we left may not ask for ours by themselves (gossip
        // refuses deep low-work forks); after a sync the blocks came by
        // request-response, which nobody else sees.
        let gossiped = matches!(source, BlockSource::Gossip(_) | BlockSource::Mined)
            && change.new_tip == update.hash
            && change.connected.len() == 1;
        if change.reorg.is_some() || !gossiped {
            // Once per input, after every block of a sync batch.
            self.sync.tip_unannounced = true;
        }
        tracing::info!(height = change.new_height, tip = %change.new_tip, "new best tip");
        Self::event(
            out,
            NodeEvent::Tip {
                hash: change.new_tip,
                height: change.new_height,
            },
        );
        self.mining.job_dirty = true;
        Ok(())
    }
}
