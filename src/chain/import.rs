//! Importing blocks: precheck, context-free and contextual checks, the
//! orphan pool, durable batches, fork choice and re-orgs.

use super::orphans;
use super::{
    is_not_yet_valid, BlockStatus, ChainError, ChainStore, ChainUpdate, Precheck, RejectedOrphan,
    ReorgEvent, StoreError, StoredBlock, TipChange, REORG_HISTORY,
};
use crate::consensus::block::{Block, Coinbase};
use crate::consensus::validation::{check_header_context, check_proof_of_work_hash};
use crate::consensus::{check_block_at_height, BlockError, BlockHash, BlockHeader};

impl ChainStore {
    /// Re-indexes one stored record on open, in arrival order. Its header
    /// is checked again as it was when stored: it decodes, its parent was
    /// stored before it, its hash meets its own `bits` and the pow limit,
    /// and `bits` and time follow the contextual rules on the parent's
    /// branch (`check_header_context`, with the future-time limit left out:
    /// the block was not too new when it came). Headers only: cheap.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] naming the record when any check fails (a
    /// changed byte in a header breaks one of them, or the hash, and so
    /// the next record's link); [`StoreError::WrongNetwork`] when record 0
    /// is another network's genesis.
    pub(super) fn reload(&mut self, rec: super::StoredHeader) -> Result<(), StoreError> {
        let damaged = |what: String| StoreError::Damaged {
            store: self.store.location(),
            what: format!("record {}: {what}", rec.seq),
        };
        let header = match rec.header.as_ref().map(|h| BlockHeader::decode_slice(h)) {
            Some(Ok(h)) => h,
            _ => return Err(damaged("no 80-byte header".into())),
        };
        let hash = header.block_hash();
        if rec.seq == 0 {
            if hash != self.params.genesis_hash {
                return Err(StoreError::WrongNetwork {
                    found: hash.to_string(),
                    expected: self.params.genesis_hash.to_string(),
                });
            }
            self.insert_entry(
                hash,
                header,
                super::index::NO_PARENT,
                rec.seq,
                rec.received_ms,
                None,
            );
        } else {
            let Some(&parent) = self.ids.get(&header.prev_blockhash) else {
                return Err(damaged(format!(
                    "block {hash}: its parent {} is not stored before it",
                    header.prev_blockhash
                )));
            };
            check_proof_of_work_hash(&header, &hash, &self.params.pow_limit)
                .map_err(|e| damaged(format!("block {hash}: {e}")))?;
            check_header_context(
                &self.params,
                &header,
                &self.view(parent),
                u64::from(u32::MAX),
            )
            .map_err(|e| damaged(format!("block {hash}: {e}")))?;
            if !self.ids.contains_key(&hash) {
                self.insert_entry(
                    hash,
                    header,
                    parent,
                    rec.seq,
                    rec.received_ms,
                    rec.miner_id.as_deref(),
                );
            }
        }
        self.next_seq = self.next_seq.max(rec.seq + 1);
        Ok(())
    }

    /// Accepts a block from a peer (`Some(peer)`) or from this node's miner
    /// (`None`), at node time `now_ms` (Unix ms). On success the block (and
    /// any orphans it unlocked) is durable before this returns.
    ///
    /// # Errors
    /// [`ChainError`]: invalid, descends from invalid, refused orphan, or
    /// a storage failure.
    pub fn accept_block(
        &mut self,
        block: Block,
        from_peer: Option<&str>,
        now_ms: u64,
    ) -> Result<ChainUpdate, ChainError> {
        self.accept_blocks(vec![block], from_peer, now_ms)
            .pop()
            .expect("one result per block")
    }

    /// Accepts a batch (e.g. a sync response) with one durable commit.
    /// Returns one result per block, in order.
    pub fn accept_blocks(
        &mut self,
        blocks: Vec<Block>,
        from_peer: Option<&str>,
        now_ms: u64,
    ) -> Vec<Result<ChainUpdate, ChainError>> {
        let old_tip = *self.active.last().expect("genesis is always active");
        let first_new = self.entries.len();
        let mut pending: Vec<StoredBlock> = Vec::new();
        let mut results: Vec<Result<ChainUpdate, ChainError>> = blocks
            .into_iter()
            .map(|b| self.accept_one(b, from_peer, now_ms, &mut pending))
            .collect();
        if let Err(e) = self.store.put_blocks(&pending) {
            // Durability is lost: report it on every block of the batch,
            // the cause on the first.
            let msg = e.to_string();
            let mut cause = Some(e);
            return results
                .into_iter()
                .map(|_| {
                    Err(ChainError::Store(
                        cause
                            .take()
                            .unwrap_or_else(|| StoreError::BatchFailed(msg.clone())),
                    ))
                })
                .collect();
        }
        // Move the tip once for the whole batch.
        let best = self.best_candidate(old_tip, first_new);
        if best != old_tip {
            let change = self.move_tip(old_tip, best, now_ms);
            if let Some(last_ok) = results.iter_mut().rev().find_map(|r| r.as_mut().ok()) {
                last_ok.tip_change = Some(change);
            }
            for r in results.iter_mut().flatten() {
                if r.status == BlockStatus::SideBranch
                    && self
                        .ids
                        .get(&r.hash)
                        .is_some_and(|&id| self.entries[id as usize].in_active)
                {
                    r.status = BlockStatus::Connected;
                }
            }
        }
        results
    }

    /// The best of the old tip and the entries added since `first_new`
    /// (this batch's blocks, appended in order).
    pub(super) fn best_candidate(&self, old_tip: u32, first_new: usize) -> u32 {
        let mut best = old_tip;
        for (i, e) in self.entries.iter().enumerate().skip(first_new) {
            if e.chainwork > self.entries[best as usize].chainwork {
                best = i as u32;
            }
        }
        best
    }

    pub(super) fn move_tip(&mut self, old_tip: u32, new_tip: u32, now_ms: u64) -> TipChange {
        let (disc, conn) = self.set_active_to(new_tip);
        let hashes = |v: &[u32]| {
            v.iter()
                .map(|&i| self.entries[i as usize].hash)
                .collect::<Vec<_>>()
        };
        let disconnected = hashes(&disc);
        let connected = hashes(&conn);
        let reorg = if disconnected.is_empty() {
            None
        } else {
            let fork = self.entries[conn[0] as usize].parent;
            let ev = ReorgEvent {
                time_ms: now_ms,
                depth: disconnected.len() as u32,
                fork_point: self.entries[fork as usize].hash,
                fork_height: self.entries[fork as usize].height,
                old_tip: self.entries[old_tip as usize].hash,
                new_tip: self.entries[new_tip as usize].hash,
                disconnected: disconnected.clone(),
                connected: connected.clone(),
            };
            self.reorg_count += 1;
            if self.reorgs.len() == REORG_HISTORY {
                self.reorgs.pop_front();
            }
            self.reorgs.push_back(ev.clone());
            Some(ev)
        };
        TipChange {
            old_tip: self.entries[old_tip as usize].hash,
            new_tip: self.entries[new_tip as usize].hash,
            new_height: self.entries[new_tip as usize].height,
            disconnected,
            connected,
            reorg,
        }
    }

    /// Every check [`ChainStore::accept_block`] makes, without storing or
    /// remembering anything: so a node can relay a block before the
    /// (slower, durable) write, as BIP152's high-bandwidth relay does once
    /// the header and proof of work check out. Here the body and, where
    /// the parent is known, the contextual rules are checked as well, so a
    /// relayed block is one `accept_block` will take.
    ///
    /// # Errors
    /// The same [`ChainError`]s as `accept_block` (storage errors aside);
    /// after an error, `accept_block` on the same block fails the same way
    /// and records the verdict.
    pub fn precheck(&self, block: &Block, now_ms: u64) -> Result<Precheck, ChainError> {
        let hash = block.block_hash();
        if self.ids.contains_key(&hash) || self.orphans.contains(&hash) {
            return Ok(Precheck::Known);
        }
        self.context_free_checks(block, hash)?;
        let Some(&parent) = self.ids.get(&block.header.prev_blockhash) else {
            return Ok(Precheck::Orphan);
        };
        self.check_in_context(block, parent, now_ms)
            .map_err(|source| ChainError::Invalid { hash, source })?;
        Ok(Precheck::Valid)
    }

    /// Checks that need no parent: not known invalid, proof of work, body
    /// (size, merkle root, mutation), and a parent not known invalid.
    pub(super) fn context_free_checks(
        &self,
        block: &Block,
        hash: BlockHash,
    ) -> Result<(), ChainError> {
        if self.invalid.contains_key(&hash) {
            return Err(ChainError::KnownInvalid(hash));
        }
        // A block with bad proof of work costs nothing to make and is never
        // stored, not even as an orphan.
        if let Err(e) = check_proof_of_work_hash(&block.header, &hash, &self.params.pow_limit) {
            return Err(ChainError::Invalid {
                hash,
                source: e.into(),
            });
        }
        // A wrong merkle root may be a corrupted copy of a valid block: it
        // is not remembered as invalid (as Core's `BLOCK_MUTATED`).
        block
            .check_body(self.params.max_block_bytes)
            .map_err(|source| ChainError::Invalid { hash, source })?;
        let parent_hash = block.header.prev_blockhash;
        if self.invalid.contains_key(&parent_hash) {
            return Err(ChainError::InvalidAncestor {
                hash,
                ancestor: parent_hash,
            });
        }
        Ok(())
    }

    /// The header's contextual rules on the parent's branch and the body
    /// rules that need the height.
    pub(super) fn check_in_context(
        &self,
        block: &Block,
        parent: u32,
        now_ms: u64,
    ) -> Result<(), BlockError> {
        let height = self.entries[parent as usize].height + 1;
        let view = self.view(parent);
        check_header_context(
            &self.params,
            &block.header,
            &view,
            crate::clock::unix_secs(now_ms),
        )?;
        check_block_at_height(&self.params, block, height)
    }

    pub(super) fn remember_invalid(
        &mut self,
        hash: BlockHash,
        height: Option<u32>,
        header: BlockHeader,
        reason: String,
    ) {
        // Full: forget the oldest (insertion order, so which entry goes
        // is the same on every run of the same inputs).
        while self.invalid.len() >= self.max_invalid {
            match self.invalid_order.pop_front() {
                Some(k) => {
                    self.invalid.remove(&k);
                }
                None => break,
            }
        }
        let entry = super::InvalidBlock {
            header,
            height,
            reason,
        };
        if self.invalid.insert(hash, entry).is_none() {
            self.invalid_order.push_back(hash);
        }
    }

    pub(super) fn accept_one(
        &mut self,
        block: Block,
        from_peer: Option<&str>,
        now_ms: u64,
        pending: &mut Vec<StoredBlock>,
    ) -> Result<ChainUpdate, ChainError> {
        let hash = block.block_hash();
        let mut update = ChainUpdate {
            hash,
            status: BlockStatus::Duplicate,
            added: Vec::new(),
            tip_change: None,
            missing: None,
            rejected_orphans: Vec::new(),
        };
        if self.ids.contains_key(&hash) || self.orphans.contains(&hash) {
            if self.orphans.contains(&hash) {
                update.missing = Some(self.orphans.missing_root(&block.header.prev_blockhash));
            }
            return Ok(update);
        }
        match self.context_free_checks(&block, hash) {
            Err(ChainError::InvalidAncestor { ancestor, .. }) => {
                let height = self
                    .invalid
                    .get(&ancestor)
                    .and_then(|inv| inv.height.map(|h| h + 1));
                self.remember_invalid(
                    hash,
                    height,
                    block.header,
                    format!("descends from invalid block {ancestor}"),
                );
                return Err(ChainError::InvalidAncestor { hash, ancestor });
            }
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        let parent_hash = block.header.prev_blockhash;
        let Some(&parent) = self.ids.get(&parent_hash) else {
            let size = block.serialized_size();
            let orphan = orphans::Orphan {
                block,
                hash,
                from_peer: from_peer.map(str::to_string),
                received_ms: now_ms,
                size,
            };
            self.orphans.expire(now_ms);
            self.orphans
                .insert(orphan)
                .map_err(|reason| ChainError::OrphanRefused { hash, reason })?;
            update.status = BlockStatus::Orphan;
            update.missing = Some(self.orphans.missing_root(&parent_hash));
            return Ok(update);
        };
        self.connect_checked(block, hash, parent, now_ms, pending)?;
        update.status = BlockStatus::SideBranch;
        update.added.push(hash);
        // Orphans waiting for this block (and their descendants).
        let mut queue = vec![hash];
        while let Some(p) = queue.pop() {
            for o in self.orphans.take_children(&p) {
                let parent_id = self.ids[&p];
                match self.connect_checked(o.block, o.hash, parent_id, now_ms, pending) {
                    Ok(()) => {
                        update.added.push(o.hash);
                        queue.push(o.hash);
                    }
                    Err(e) => {
                        let not_yet = matches!(&e, ChainError::Invalid { source, .. } if is_not_yet_valid(source));
                        if !not_yet {
                            self.reject_orphan_descendants(o.hash);
                        }
                        update.rejected_orphans.push(RejectedOrphan {
                            hash: o.hash,
                            from_peer: o.from_peer.clone(),
                            error: e,
                        });
                    }
                }
            }
        }
        Ok(update)
    }

    pub(super) fn reject_orphan_descendants(&mut self, hash: BlockHash) {
        let mut queue = vec![hash];
        while let Some(p) = queue.pop() {
            for o in self.orphans.take_children(&p) {
                self.remember_invalid(
                    o.hash,
                    None,
                    o.block.header,
                    format!("descends from invalid block {p}"),
                );
                queue.push(o.hash);
            }
        }
    }

    /// Contextual checks against the parent's branch, then index + stage.
    pub(super) fn connect_checked(
        &mut self,
        block: Block,
        hash: BlockHash,
        parent: u32,
        now_ms: u64,
        pending: &mut Vec<StoredBlock>,
    ) -> Result<(), ChainError> {
        if let Err(source) = self.check_in_context(&block, parent, now_ms) {
            // "Too new" is not invalid, only not yet valid on this node's
            // clock (Core does not mark `time-too-new` as failed): it is
            // taken when offered again later.
            if !is_not_yet_valid(&source) {
                let height = self.entries[parent as usize].height + 1;
                self.remember_invalid(hash, Some(height), block.header, source.to_string());
            }
            return Err(ChainError::Invalid { hash, source });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let miner = block
            .txdata
            .first()
            .and_then(|tx| Coinbase::decode(tx).ok());
        self.insert_entry(
            hash,
            block.header,
            parent,
            seq,
            now_ms,
            miner.as_ref().map(|c| c.miner_id.as_str()),
        );
        pending.push(StoredBlock {
            seq,
            received_ms: now_ms,
            bytes: block.encode(),
        });
        Ok(())
    }
}
