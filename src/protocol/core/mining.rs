//! Mining: the switch, the jobs handed to the miner, the blocks it finds,
//! and the strategy's answers to them (the [`Action`]s it returns are
//! carried out here).

use super::{strategy_ctx, CoreConfig, CoreError, NodeCore};
use crate::chain::{ChainError, ChainUpdate, Precheck};
use crate::consensus::{Block, BlockHash, BlockTemplate};
use crate::protocol::strategy::{Action, Strategy, TraitorEvent};
use crate::protocol::{BlockSource, NodeEvent, Outbox, Output, Topic};

/// The mining manager's own state.
#[derive(Debug)]
pub struct Mining {
    /// Whether mining is switched on (and a miner attached).
    pub on: bool,
    /// The tip the current job builds on.
    pub job_tip: Option<BlockHash>,
    /// The job handed out last (an identical one is not sent again: the
    /// miner would only restart).
    pub last_job: Option<BlockTemplate>,
    /// The strategy and its state.
    pub strategy: Box<dyn Strategy>,
    /// A new job is due at the end of the input being handled.
    pub job_dirty: bool,
    /// New transactions wait for a new job until then, Unix ms (at most
    /// one job per [`TX_JOB_DELAY_MS`] for transactions, so a flood of
    /// them does not rebuild templates without end).
    pub tx_job_at_ms: Option<u64>,
}

/// How long a transaction that entered the mempool waits, at most, to be
/// in the miner's job, ms (Core's miners ask for a new template every few
/// seconds for the same reason).
pub const TX_JOB_DELAY_MS: u64 = 1_000;

impl Mining {
    pub fn new(config: &CoreConfig, tip: BlockHash, height: u32) -> Mining {
        Mining {
            on: config.mining && config.has_miner,
            job_tip: None,
            last_job: None,
            strategy: config.strategy.build(tip, height),
            job_dirty: false,
            tx_job_at_ms: None,
        }
    }

    /// A transaction entered the mempool at `now_ms`: the job takes it in
    /// within [`TX_JOB_DELAY_MS`].
    pub fn tx_arrived(&mut self, now_ms: u64) {
        if self.on && self.tx_job_at_ms.is_none() {
            self.tx_job_at_ms = Some(now_ms + TX_JOB_DELAY_MS);
        }
    }

    /// Whether the transactions' new job is due at `now_ms`.
    pub fn tx_job_due(&mut self, now_ms: u64) -> bool {
        if self.tx_job_at_ms.is_some_and(|t| now_ms >= t) {
            self.tx_job_at_ms = None;
            true
        } else {
            false
        }
    }
}

impl NodeCore {
    /// A block the miner (or `/generate`, or the simulator) found. One on a
    /// tip that is no longer the job's came from an old job: publishing it
    /// would only make a stale block.
    pub(super) fn on_mined(
        &mut self,
        now_ms: u64,
        block: Block,
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        // The miner waits for a new job after every find: it gets one,
        // even if the template did not change (a refused or old block).
        self.mining.last_job = None;
        self.mining.job_dirty = true;
        let parent = block.header.prev_blockhash;
        if self.mining.job_tip != Some(parent)
            && self.mining_template(now_ms).prev_blockhash != parent
        {
            tracing::debug!("discarding a block mined on an old job");
            return Ok(());
        }
        let actions = self
            .mining
            .strategy
            .on_mined(&strategy_ctx!(self, now_ms), block);
        self.run_actions(now_ms, actions, out)
    }

    /// Switches mining; a strategy may cash in a private lead first.
    pub(super) fn set_mining(&mut self, now_ms: u64, on: bool, out: &mut impl Outbox) {
        tracing::info!(mining = on, "mining switched");
        if !on {
            let actions = self.mining.strategy.on_stop(&strategy_ctx!(self, now_ms));
            if let Err(e) = self.run_actions(now_ms, actions, out) {
                tracing::error!("while stopping the strategy: {e}");
            }
        }
        self.mining.on = on && self.config.has_miner;
        self.mining.job_dirty = true;
    }

    /// Carries out a strategy's actions in order.
    pub(super) fn run_actions(
        &mut self,
        now_ms: u64,
        actions: Vec<Action>,
        out: &mut impl Outbox,
    ) -> Result<(), CoreError> {
        for a in actions {
            match a {
                Action::PublishOwn(block) => {
                    self.store_own(now_ms, block, true, out)?;
                }
                Action::KeepPrivate(block) => {
                    let hash = block.block_hash();
                    if self.store_own(now_ms, block, false, out)? {
                        let height = self.chain.block_info(&hash).map_or(0, |i| i.height);
                        self.traitor_event(TraitorEvent::Withheld { hash, height }, out);
                    }
                }
                Action::Store(block) => {
                    self.store_own(now_ms, block, false, out)?;
                }
                Action::Publish { blocks, reason } => {
                    let mut hashes = Vec::with_capacity(blocks.len());
                    for hash in blocks {
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
                    if !hashes.is_empty() {
                        self.traitor_event(
                            TraitorEvent::Published {
                                hashes,
                                why: reason,
                            },
                            out,
                        );
                    }
                }
                Action::PublishUnstored(block) => self.publish_block(block.encode(), out),
                Action::PublishTx(tx) => out.push(Output::Publish {
                    topic: Topic::Transactions,
                    data: tx,
                }),
                Action::DropTx(txid) => {
                    self.mempool.remove(&txid);
                }
                Action::Event(e) => self.traitor_event(e, out),
                Action::NewJob => self.mining.job_dirty = true,
                Action::Handshake => self.handshake_all(now_ms, out),
            }
        }
        Ok(())
    }

    fn traitor_event(&self, e: TraitorEvent, out: &mut impl Outbox) {
        tracing::info!(strategy = %self.config.strategy, event = ?e, "traitor");
        Self::event(out, NodeEvent::Traitor(e));
    }

    /// Stores an own block; with `publish`, publishes it (before the
    /// durable write when [`crate::chain::ChainStore::precheck`] finds it
    /// valid, else once stored). False when the chain refused it (logged;
    /// a new job follows).
    fn store_own(
        &mut self,
        now_ms: u64,
        block: Block,
        publish: bool,
        out: &mut impl Outbox,
    ) -> Result<bool, CoreError> {
        let unpublished = if publish {
            let bytes = block.encode();
            if matches!(self.chain.precheck(&block, now_ms), Ok(Precheck::Valid)) {
                self.publish_block(bytes, out);
                None
            } else {
                Some(bytes)
            }
        } else {
            None
        };
        let update: ChainUpdate = match self.chain.accept_block(block, None, now_ms) {
            Ok(u) => u,
            Err(ChainError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::error!("own block rejected: {e}");
                self.mining.job_dirty = true;
                return Ok(false);
            }
        };
        self.stats.blocks_mined += 1;
        if let Some(bytes) = unpublished {
            self.publish_block(bytes, out);
        }
        self.apply_update(now_ms, &update, &BlockSource::Mined, None, out)?;
        Ok(true)
    }

    fn publish_block(&mut self, bytes: Vec<u8>, out: &mut impl Outbox) {
        self.stats.blocks_relayed += 1;
        out.push(Output::Publish {
            topic: Topic::Blocks,
            data: bytes,
        });
    }

    /// Hands the miner its job: the strategy's template, or none.
    pub(super) fn refresh_job(&mut self, now_ms: u64, out: &mut impl Outbox) {
        if !self.config.has_miner {
            return;
        }
        self.mining.tx_job_at_ms = None;
        if self.mining.on {
            let t = self.mining_template(now_ms);
            self.mining.job_tip = Some(t.prev_blockhash);
            if self.mining.last_job.as_ref() != Some(&t) {
                self.mining.last_job = Some(t.clone());
                out.push(Output::MiningJob(Some(t)));
            }
        } else {
            self.mining.job_tip = None;
            self.mining.last_job = None;
            out.push(Output::MiningJob(None));
        }
    }
}
