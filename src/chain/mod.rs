//! The chain store: block tree, fork choice, re-orgs, orphan pool, tips,
//! locators, and durable storage. No networking inside: every call returns
//! what changed ([`ChainUpdate`]) and the node passes that on.
//!
//! Fork choice: the valid chain with the most chainwork; equal work keeps
//! the block seen first (Core's `CBlockIndexWorkComparator` uses arrival
//! order the same way).

pub mod headers;
pub mod orphans;
pub mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::consensus::block::{Block, Coinbase};
use crate::consensus::pow::Work;
use crate::consensus::validation::{check_header_context, check_proof_of_work_hash, AncestorInfo};
use crate::consensus::{
    check_block_at_height, BlockError, BlockHash, BlockHeader, ChainView, Params,
};

pub use orphans::{OrphanLimits, OrphanPool, OrphanReject};
pub use store::{BlockStore, MemStore, RedbStore, StoreError, StoredBlock};

/// Why a block was not accepted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The block breaks a consensus rule (the sender should be penalised).
    #[error("invalid block {hash}: {source}")]
    Invalid {
        /// the block
        hash: BlockHash,
        /// the rule
        source: BlockError,
    },
    /// The block builds on a block known to be invalid.
    #[error("block {hash} descends from invalid block {ancestor}")]
    InvalidAncestor {
        /// the block
        hash: BlockHash,
        /// the invalid ancestor
        ancestor: BlockHash,
    },
    /// The block was already found invalid.
    #[error("block {0} is already known to be invalid")]
    KnownInvalid(BlockHash),
    /// The orphan pool would not take it (peer over its limit).
    #[error("orphan {hash} refused: {reason:?}")]
    OrphanRefused {
        /// the block
        hash: BlockHash,
        /// why
        reason: orphans::OrphanReject,
    },
    /// Storage failed: fatal for the node.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChainError {
    /// Whether the peer that sent the block deserves a penalty.
    #[must_use]
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, ChainError::Store(_))
    }
}

/// What happened to a submitted block itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockStatus {
    /// Connected to the best chain (it is, or leads to, the new tip).
    Connected,
    /// Stored on a side branch: a stale block.
    SideBranch,
    /// Parent unknown: waiting in the orphan pool.
    Orphan,
    /// Already known.
    Duplicate,
}

/// What [`ChainStore::precheck`] found a block to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precheck {
    /// Valid on top of a known parent: [`ChainStore::accept_block`] would
    /// store it.
    Valid,
    /// Header, proof of work and body pass, but the parent is unknown.
    Orphan,
    /// Already stored or waiting as an orphan.
    Known,
}

/// One re-org: the best tip moved to a block that does not descend from
/// the old tip.
#[derive(Clone, Debug, Serialize)]
pub struct ReorgEvent {
    /// When, Unix milliseconds.
    pub time_ms: u64,
    /// Blocks disconnected.
    pub depth: u32,
    /// The last common block.
    pub fork_point: BlockHash,
    /// Height of the fork point.
    pub fork_height: u32,
    /// Tip before.
    pub old_tip: BlockHash,
    /// Tip after.
    pub new_tip: BlockHash,
    /// Disconnected blocks, old tip first.
    pub disconnected: Vec<BlockHash>,
    /// Connected blocks, fork point's child first.
    pub connected: Vec<BlockHash>,
}

/// A change of best tip during one call.
#[derive(Clone, Debug)]
pub struct TipChange {
    /// Tip before the call.
    pub old_tip: BlockHash,
    /// Tip after the call.
    pub new_tip: BlockHash,
    /// New tip's height.
    pub new_height: u32,
    /// Blocks disconnected (old tip first); empty when the chain just grew.
    pub disconnected: Vec<BlockHash>,
    /// Blocks connected (lowest first).
    pub connected: Vec<BlockHash>,
    /// The re-org event, when blocks were disconnected.
    pub reorg: Option<ReorgEvent>,
}

/// Everything one `accept_*` call changed.
#[derive(Debug)]
pub struct ChainUpdate {
    /// The submitted block.
    pub hash: BlockHash,
    /// What happened to it.
    pub status: BlockStatus,
    /// Blocks newly stored by this call, in order (the block, then any
    /// orphans it let connect).
    pub added: Vec<BlockHash>,
    /// The tip change, if any.
    pub tip_change: Option<TipChange>,
    /// For an orphan: the missing ancestor the network should fetch.
    pub missing: Option<BlockHash>,
    /// Orphans that turned out invalid once their parent arrived.
    pub rejected_orphans: Vec<RejectedOrphan>,
}

/// An orphan that failed once its parent arrived: the origin of the data
/// is the peer that gave it to this node.
#[derive(Debug)]
pub struct RejectedOrphan {
    /// The orphan.
    pub hash: BlockHash,
    /// Who sent it (`None`: this node).
    pub from_peer: Option<String>,
    /// Why it failed.
    pub error: ChainError,
}

/// Whether a block failed only because its time is too far ahead of this
/// node's clock (`time-too-new`): it may become valid later, so it is
/// neither remembered as invalid nor held against its sender.
#[must_use]
pub fn is_not_yet_valid(e: &BlockError) -> bool {
    matches!(
        e,
        BlockError::Header(crate::consensus::HeaderError::TimeTooNew { .. })
    )
}

/// Hasher of the block-hash index: foldhash's fast hasher with a
/// per-process random seed. Only blocks that passed validation enter the
/// index, so grinding colliding keys costs proof of work.
type IndexHasher = foldhash::fast::RandomState;

/// Index entry of one stored, valid block.
#[derive(Clone, Debug)]
struct Entry {
    hash: BlockHash,
    header: BlockHeader,
    chainwork: Work,
    seq: u64,
    received_ms: u64,
    height: u32,
    parent: u32,
    children: u32,
    in_active: bool,
}

const NO_PARENT: u32 = u32::MAX;

/// A block as the API shows it.
#[derive(Clone, Debug)]
pub struct BlockInfo {
    /// Hash.
    pub hash: BlockHash,
    /// Header.
    pub header: BlockHeader,
    /// Height.
    pub height: u32,
    /// Chainwork up to and including it.
    pub chainwork: Work,
    /// Whether it is on the best chain.
    pub in_best_chain: bool,
    /// When it arrived, Unix ms.
    pub received_ms: u64,
    /// Arrival sequence number.
    pub seq: u64,
}

/// One entry of `getchaintips`.
#[derive(Clone, Debug, Serialize)]
pub struct ChainTip {
    /// Tip hash.
    pub hash: BlockHash,
    /// Tip height.
    pub height: u32,
    /// Blocks between the tip and the best chain (0 for the active tip).
    pub branchlen: u32,
    /// `active`, `valid-fork` or `invalid`.
    pub status: &'static str,
}

/// The chain store.
pub struct ChainStore {
    params: Arc<Params>,
    store: Box<dyn BlockStore>,
    entries: Vec<Entry>,
    ids: HashMap<BlockHash, u32, IndexHasher>,
    active: Vec<u32>,
    next_seq: u64,
    orphans: OrphanPool,
    invalid: HashMap<BlockHash, (Option<u32>, String)>,
    reorgs: VecDeque<ReorgEvent>,
    reorg_count: u64,
    max_invalid: usize,
    work_cache: (crate::consensus::CompactTarget, Work),
}

/// How many re-org events are kept for the API.
pub const REORG_HISTORY: usize = 1000;

impl ChainStore {
    /// Opens a store: loads every stored block in arrival order and rebuilds
    /// the index and tip; stores the genesis block into an empty store.
    ///
    /// # Errors
    /// [`ChainError::Store`] on a read/write failure or a store that holds
    /// another network's genesis.
    pub fn open(params: Arc<Params>, store: Box<dyn BlockStore>) -> Result<ChainStore, ChainError> {
        Self::open_with(params, store, OrphanLimits::default())
    }

    /// [`ChainStore::open`] with explicit orphan-pool limits.
    ///
    /// # Errors
    /// As [`ChainStore::open`].
    pub fn open_with(
        params: Arc<Params>,
        store: Box<dyn BlockStore>,
        limits: OrphanLimits,
    ) -> Result<ChainStore, ChainError> {
        let mut cs = ChainStore {
            params: Arc::clone(&params),
            store,
            entries: Vec::new(),
            ids: HashMap::with_hasher(IndexHasher::default()),
            active: Vec::new(),
            next_seq: 0,
            orphans: OrphanPool::new(limits),
            invalid: HashMap::new(),
            reorgs: VecDeque::new(),
            reorg_count: 0,
            max_invalid: 10_000,
            work_cache: (crate::consensus::CompactTarget(0), Work::ZERO),
        };
        let mut loaded: Vec<StoredBlock> = Vec::new();
        cs.store.load_all(&mut |b| loaded.push(b))?;
        if loaded.is_empty() {
            let g = StoredBlock {
                seq: 0,
                received_ms: u64::from(params.genesis.header.time) * 1000,
                bytes: params.genesis.encode(),
            };
            cs.store.put_blocks(std::slice::from_ref(&g))?;
            loaded.push(g);
        }
        for rec in loaded {
            let header = match rec.bytes.get(..80).map(BlockHeader::decode_slice) {
                Some(Ok(h)) => h,
                _ => {
                    return Err(StoreError::Corrupt {
                        seq: rec.seq,
                        reason: "no 80-byte header".into(),
                    }
                    .into())
                }
            };
            let hash = header.block_hash();
            if rec.seq == 0 {
                if hash != params.genesis_hash {
                    return Err(StoreError::WrongNetwork {
                        found: hash.to_string(),
                        expected: params.genesis_hash.to_string(),
                    }
                    .into());
                }
                cs.insert_entry(hash, header, NO_PARENT, rec.seq, rec.received_ms);
            } else if let Some(&parent) = cs.ids.get(&header.prev_blockhash) {
                if !cs.ids.contains_key(&hash) {
                    cs.insert_entry(hash, header, parent, rec.seq, rec.received_ms);
                }
            } else {
                tracing::warn!(seq = rec.seq, %hash, "stored block has no stored parent; skipped");
                continue;
            }
            cs.next_seq = cs.next_seq.max(rec.seq + 1);
        }
        // Rebuild the active chain from the best entry.
        let best = cs.best_entry();
        cs.set_active_to(best);
        Ok(cs)
    }

    /// The network parameters.
    #[must_use]
    pub fn params(&self) -> &Arc<Params> {
        &self.params
    }

    fn insert_entry(
        &mut self,
        hash: BlockHash,
        header: BlockHeader,
        parent: u32,
        seq: u64,
        received_ms: u64,
    ) -> u32 {
        let (height, parent_work) = if parent == NO_PARENT {
            (0, Work::ZERO)
        } else {
            let p = &mut self.entries[parent as usize];
            p.children += 1;
            (p.height + 1, p.chainwork)
        };
        // Consecutive blocks nearly always share bits: one division per change.
        let work = if self.work_cache.0 == header.bits {
            self.work_cache.1
        } else {
            let w = crate::consensus::Target::from_compact(header.bits)
                .map(|t| t.to_work())
                .unwrap_or(Work::ZERO);
            self.work_cache = (header.bits, w);
            w
        };
        let id = self.entries.len() as u32;
        self.entries.push(Entry {
            hash,
            header,
            chainwork: parent_work + work,
            seq,
            received_ms,
            height,
            parent,
            children: 0,
            in_active: false,
        });
        self.ids.insert(hash, id);
        id
    }

    /// The entry with the most chainwork; the earliest seen among equals.
    fn best_entry(&self) -> u32 {
        let mut best = 0u32;
        for (i, e) in self.entries.iter().enumerate() {
            let b = &self.entries[best as usize];
            if e.chainwork > b.chainwork || (e.chainwork == b.chainwork && e.seq < b.seq) {
                best = i as u32;
            }
        }
        best
    }

    /// Makes `tip` the active tip, rewriting `active` from the fork point.
    /// Returns (disconnected ids old-tip-first, connected ids lowest-first).
    fn set_active_to(&mut self, tip: u32) -> (Vec<u32>, Vec<u32>) {
        let mut connected = Vec::new();
        let mut cur = tip;
        while cur != NO_PARENT && !self.entries[cur as usize].in_active {
            connected.push(cur);
            cur = self.entries[cur as usize].parent;
        }
        connected.reverse();
        let fork_height = if cur == NO_PARENT {
            -1i64
        } else {
            i64::from(self.entries[cur as usize].height)
        };
        let mut disconnected = Vec::new();
        while self.active.len() as i64 > fork_height + 1 {
            let id = self.active.pop().expect("non-empty active chain");
            self.entries[id as usize].in_active = false;
            disconnected.push(id);
        }
        for &id in &connected {
            self.entries[id as usize].in_active = true;
            self.active.push(id);
        }
        (disconnected, connected)
    }

    /// The best tip's hash.
    #[must_use]
    pub fn tip(&self) -> BlockHash {
        self.entries[*self.active.last().expect("genesis is always active") as usize].hash
    }

    /// The best tip's height.
    #[must_use]
    pub fn height(&self) -> u32 {
        self.active.len() as u32 - 1
    }

    /// The best tip's chainwork.
    #[must_use]
    pub fn chainwork(&self) -> Work {
        self.entries[*self.active.last().expect("genesis is always active") as usize].chainwork
    }

    /// The best tip's header.
    #[must_use]
    pub fn tip_header(&self) -> BlockHeader {
        self.entries[*self.active.last().expect("genesis is always active") as usize].header
    }

    /// Whether the block is stored (valid, not orphan).
    #[must_use]
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.ids.contains_key(hash)
    }

    /// Whether the block is known at all: stored, orphan or invalid.
    #[must_use]
    pub fn knows(&self, hash: &BlockHash) -> bool {
        self.ids.contains_key(hash)
            || self.orphans.contains(hash)
            || self.invalid.contains_key(hash)
    }

    /// Number of valid blocks stored, genesis included.
    #[must_use]
    pub fn block_count(&self) -> usize {
        self.entries.len()
    }

    /// Stale blocks: valid blocks not on the best chain.
    #[must_use]
    pub fn stale_count(&self) -> usize {
        self.entries.len() - self.active.len()
    }

    /// Re-orgs since this store was opened.
    #[must_use]
    pub fn reorg_count(&self) -> u64 {
        self.reorg_count
    }

    /// The orphan pool.
    #[must_use]
    pub fn orphans(&self) -> &OrphanPool {
        &self.orphans
    }

    /// Recent re-orgs, newest first.
    #[must_use]
    pub fn reorgs(&self) -> Vec<ReorgEvent> {
        self.reorgs.iter().rev().cloned().collect()
    }

    /// Invalid blocks remembered.
    #[must_use]
    pub fn invalid_count(&self) -> usize {
        self.invalid.len()
    }

    fn view(&self, tip: u32) -> BranchView<'_> {
        BranchView { cs: self, tip }
    }

    /// A view of the branch ending at the current best tip, for templates.
    #[must_use]
    pub fn tip_view(&self) -> impl ChainView + '_ {
        self.view(*self.active.last().expect("genesis is always active"))
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
    fn best_candidate(&self, old_tip: u32, first_new: usize) -> u32 {
        let mut best = old_tip;
        for (i, e) in self.entries.iter().enumerate().skip(first_new) {
            if e.chainwork > self.entries[best as usize].chainwork {
                best = i as u32;
            }
        }
        best
    }

    fn move_tip(&mut self, old_tip: u32, new_tip: u32, now_ms: u64) -> TipChange {
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
    fn context_free_checks(&self, block: &Block, hash: BlockHash) -> Result<(), ChainError> {
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
    fn check_in_context(&self, block: &Block, parent: u32, now_ms: u64) -> Result<(), BlockError> {
        let height = self.entries[parent as usize].height + 1;
        let view = self.view(parent);
        check_header_context(&self.params, &block.header, &view, now_ms / 1000)?;
        check_block_at_height(&self.params, block, height)
    }

    fn remember_invalid(&mut self, hash: BlockHash, height: Option<u32>, reason: String) {
        if self.invalid.len() >= self.max_invalid {
            if let Some(k) = self.invalid.keys().next().copied() {
                self.invalid.remove(&k);
            }
        }
        self.invalid.insert(hash, (height, reason));
    }

    fn accept_one(
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
                    .and_then(|(h, _)| h.map(|h| h + 1));
                self.remember_invalid(
                    hash,
                    height,
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
                received_secs: now_ms / 1000,
                size,
            };
            self.orphans.expire(now_ms / 1000);
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

    fn reject_orphan_descendants(&mut self, hash: BlockHash) {
        let mut queue = vec![hash];
        while let Some(p) = queue.pop() {
            for o in self.orphans.take_children(&p) {
                self.remember_invalid(o.hash, None, format!("descends from invalid block {p}"));
                queue.push(o.hash);
            }
        }
    }

    /// Contextual checks against the parent's branch, then index + stage.
    fn connect_checked(
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
                self.remember_invalid(hash, Some(height), source.to_string());
            }
            return Err(ChainError::Invalid { hash, source });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert_entry(hash, block.header, parent, seq, now_ms);
        pending.push(StoredBlock {
            seq,
            received_ms: now_ms,
            bytes: block.encode(),
        });
        Ok(())
    }

    fn info(&self, id: u32) -> BlockInfo {
        let e = &self.entries[id as usize];
        BlockInfo {
            hash: e.hash,
            header: e.header,
            height: e.height,
            chainwork: e.chainwork,
            in_best_chain: e.in_active,
            received_ms: e.received_ms,
            seq: e.seq,
        }
    }

    /// Index data of a stored block.
    #[must_use]
    pub fn block_info(&self, hash: &BlockHash) -> Option<BlockInfo> {
        self.ids.get(hash).map(|&id| self.info(id))
    }

    /// The block at `height` on the best chain.
    #[must_use]
    pub fn info_at_height(&self, height: u32) -> Option<BlockInfo> {
        self.active.get(height as usize).map(|&id| self.info(id))
    }

    /// A stored block's serialization.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure.
    pub fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        match self.ids.get(hash) {
            Some(&id) => self.store.get_block(self.entries[id as usize].seq),
            None => Ok(None),
        }
    }

    /// A stored block, decoded.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or corrupt record.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        let Some(&id) = self.ids.get(hash) else {
            return Ok(None);
        };
        let seq = self.entries[id as usize].seq;
        match self.store.get_block(seq)? {
            Some(b) => Block::decode(&b, usize::MAX)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    seq,
                    reason: format!("block {hash}: {e}"),
                }),
            None => Ok(None),
        }
    }

    /// Miner id from a stored block's coinbase, when it has one.
    #[must_use]
    pub fn miner_id(&self, hash: &BlockHash) -> Option<String> {
        let b = self.block(hash).ok()??;
        Coinbase::decode(b.txdata.first()?).ok().map(|c| c.miner_id)
    }

    /// Stale blocks (valid, off the best chain), newest first.
    #[must_use]
    pub fn stale_blocks(&self) -> Vec<BlockInfo> {
        let mut v: Vec<BlockInfo> = (0..self.entries.len() as u32)
            .filter(|&i| !self.entries[i as usize].in_active)
            .map(|i| self.info(i))
            .collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.seq));
        v
    }

    /// Chain tips like Core's `getchaintips`: the active tip, every valid
    /// block with no child (`valid-fork`, with its branch length), and the
    /// invalid blocks whose height is known (`invalid`).
    #[must_use]
    pub fn chain_tips(&self) -> Vec<ChainTip> {
        let mut tips = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.in_active && i as u32 == *self.active.last().expect("active") {
                tips.push(ChainTip {
                    hash: e.hash,
                    height: e.height,
                    branchlen: 0,
                    status: "active",
                });
            } else if e.children == 0 && !e.in_active {
                let mut cur = i as u32;
                while !self.entries[cur as usize].in_active {
                    cur = self.entries[cur as usize].parent;
                }
                tips.push(ChainTip {
                    hash: e.hash,
                    height: e.height,
                    branchlen: e.height - self.entries[cur as usize].height,
                    status: "valid-fork",
                });
            }
        }
        for (hash, (height, _)) in &self.invalid {
            if let Some(h) = height {
                tips.push(ChainTip {
                    hash: *hash,
                    height: *h,
                    branchlen: 0,
                    status: "invalid",
                });
            }
        }
        tips.sort_by(|a, b| b.height.cmp(&a.height).then(a.hash.cmp(&b.hash)));
        tips
    }

    /// A block locator from the best tip (Core's `GetLocator`): the last 10
    /// blocks one by one, then exponentially spaced back, then genesis.
    #[must_use]
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut h = self.height() as i64;
        let mut step = 1i64;
        while h > 0 {
            out.push(self.entries[self.active[h as usize] as usize].hash);
            if out.len() >= 10 {
                step *= 2;
            }
            h -= step;
        }
        out.push(self.params.genesis_hash);
        out
    }

    /// The fork point of a peer's locator with our best chain: the first
    /// locator hash on our best chain (genesis if none is).
    #[must_use]
    pub fn find_fork(&self, locator: &[BlockHash]) -> u32 {
        locator
            .iter()
            .find_map(|h| {
                self.ids
                    .get(h)
                    .filter(|&&id| self.entries[id as usize].in_active)
            })
            .map_or(0, |&id| self.entries[id as usize].height)
    }

    /// Best-chain blocks after the locator's fork point: at most
    /// `max_count` blocks and about `max_bytes` bytes (always at least one).
    ///
    /// # Errors
    /// [`StoreError`] on a read failure.
    pub fn blocks_after(
        &self,
        locator: &[BlockHash],
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let fork = self.find_fork(locator);
        let mut out = Vec::new();
        let mut bytes = 0;
        for h in fork + 1..=self.height() {
            if out.len() >= max_count {
                break;
            }
            let id = self.active[h as usize];
            let Some(b) = self.store.get_block(self.entries[id as usize].seq)? else {
                break;
            };
            bytes += b.len();
            out.push(b);
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Drops expired orphans; returns how many.
    pub fn expire_orphans(&mut self, now_secs: u64) -> usize {
        self.orphans.expire(now_secs)
    }
}

/// [`ChainView`] over the branch ending at `tip`: ancestors on the best
/// chain are found by height at once, others by walking parent links.
struct BranchView<'a> {
    cs: &'a ChainStore,
    tip: u32,
}

impl BranchView<'_> {
    /// Timestamps of the tip and up to 10 ancestors (fewer near genesis),
    /// newest first, by one walk over parent links.
    fn recent_times(&self) -> ([u32; 11], usize) {
        let mut times = [0u32; 11];
        let mut n = 0;
        let mut id = self.tip;
        while n < 11 && id != NO_PARENT {
            let e = &self.cs.entries[id as usize];
            times[n] = e.header.time;
            n += 1;
            id = e.parent;
        }
        (times, n)
    }

    fn ancestor_id(&self, height: u32) -> Option<u32> {
        let mut id = self.tip;
        loop {
            let e = &self.cs.entries[id as usize];
            if height > e.height {
                return None;
            }
            if e.height == height {
                return Some(id);
            }
            if e.in_active {
                return self.cs.active.get(height as usize).copied();
            }
            id = e.parent;
        }
    }
}

impl ChainView for BranchView<'_> {
    fn tip_height(&self) -> u32 {
        self.cs.entries[self.tip as usize].height
    }
    fn ancestor(&self, height: u32) -> Option<AncestorInfo> {
        self.ancestor_id(height).map(|id| {
            let h = &self.cs.entries[id as usize].header;
            AncestorInfo {
                time: h.time,
                bits: h.bits,
            }
        })
    }
    fn max_time_past(&self) -> u32 {
        let (times, n) = self.recent_times();
        times[..n].iter().copied().max().unwrap_or(0)
    }
    fn median_time_past(&self) -> u32 {
        let (times, n) = self.recent_times();
        crate::consensus::time::median_time_past(&times[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index memory goal: under 256 bytes a block. An entry is 176 bytes;
    /// the hash map adds about 48 (key, id, control byte, load factor) and
    /// the active chain 4.
    #[test]
    fn index_entry_stays_small() {
        assert!(
            std::mem::size_of::<Entry>() <= 176,
            "{}",
            std::mem::size_of::<Entry>()
        );
        let per_block = std::mem::size_of::<Entry>() + (32 + 4 + 1) * 8 / 7 + 4;
        assert!(per_block < 256, "{per_block}");
    }
}
