//! The chain store: block tree, fork choice, re-orgs, orphan pool, tips,
//! locators, and durable storage. No networking inside: every call returns
//! what changed ([`ChainUpdate`]) and the node passes that on.
//!
//! Fork choice: the valid chain with the most chainwork; equal work keeps
//! the block seen first (Core's `CBlockIndexWorkComparator` uses arrival
//! order the same way).
//!
//! - this file: the types, opening and replaying a store, the tip;
//! - `import`: precheck, checks, the orphan pool, batches, re-orgs;
//! - `index`: arena entries, the active chain, branch views;
//! - `query`: block info, stale blocks, getchaintips;
//! - `locator`: locators, fork points, blocks for a sync response;
//! - [`headers`]: validation of a bare header chain (`verify-headers`);
//! - [`orphans`]: the bounded orphan pool; [`store`]: redb and in-memory.

pub mod headers;
mod import;
mod index;
mod locator;
pub mod orphans;
mod query;
pub mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::consensus::pow::Work;
use crate::consensus::{BlockError, BlockHash, BlockHeader, Params};

pub use orphans::{OrphanLimits, OrphanPool, OrphanReject};
pub use query::{
    fold_straight_runs, BlockTree, BranchPosition, HiddenRun, ShownHeights, TreeBlock, TreeStatus,
    TREE_CONTEXT, TREE_DEFAULT_SPAN,
};
pub use store::{BlockStore, MemStore, RedbStore, StoreError, StoredBlock, StoredHeader};

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

/// A block remembered as invalid: its header (so `getblockheader` and
/// `getchaintips` can show it as Core does), its height when known and
/// why it failed.
#[derive(Clone, Debug)]
pub struct InvalidBlock {
    /// Its header.
    pub header: BlockHeader,
    /// Its height, when its branch is known.
    pub height: Option<u32>,
    /// The rule it broke.
    pub reason: String,
}

/// One re-org: the best tip moved to a block that does not descend from
/// the old tip.
///
/// Also the JSON of a `GET /reorgs` entry and of an `event: reorg` on
/// `GET /events` (hashes as display hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    too_new_time(e).is_some()
}

/// The header time (Unix s) of a block that failed only for being too
/// new ([`is_not_yet_valid`]): it becomes valid once the clock plus the
/// future limit reaches it.
#[must_use]
pub fn too_new_time(e: &BlockError) -> Option<u32> {
    match e {
        BlockError::Header(crate::consensus::HeaderError::TimeTooNew { time, .. }) => Some(*time),
        _ => None,
    }
}

/// Hasher of the block-hash index: foldhash's fast hasher with a
/// per-process random seed. Only blocks that passed validation enter the
/// index, so grinding colliding keys costs proof of work.
pub(crate) type IndexHasher = foldhash::fast::RandomState;

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
    /// Core's status of the tip.
    pub status: TipStatus,
}

/// A chain tip's status as Bitcoin Core's `getchaintips` names it (the
/// statuses powchain can have: it validates every block fully, so no
/// `headers-only` or `valid-headers` tip exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TipStatus {
    /// The best chain's tip.
    Active,
    /// A fully validated branch off the best chain.
    ValidFork,
    /// A block found invalid.
    Invalid,
}

impl TipStatus {
    /// Core's word: `active`, `valid-fork`, `invalid`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TipStatus::Active => "active",
            TipStatus::ValidFork => "valid-fork",
            TipStatus::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for TipStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Blocks found invalid, with their header.
    invalid: HashMap<BlockHash, InvalidBlock, IndexHasher>,
    /// The keys of `invalid`, oldest first (its eviction order).
    invalid_order: VecDeque<BlockHash>,
    reorgs: VecDeque<ReorgEvent>,
    reorg_count: u64,
    max_invalid: usize,
    work_cache: (crate::consensus::CompactTarget, Work),
    /// Distinct miner ids of stored blocks (an entry's `miner` indexes
    /// it), so no route reads a whole block for its coinbase.
    miners: index::MinerNames,
}

/// How many re-org events are kept for the API.
pub const REORG_HISTORY: usize = 1000;

use index::{Entry, NO_PARENT};

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
            invalid: HashMap::with_hasher(IndexHasher::default()),
            invalid_order: VecDeque::new(),
            reorgs: VecDeque::new(),
            reorg_count: 0,
            max_invalid: 10_000,
            work_cache: (
                crate::consensus::CompactTarget::from_consensus(0),
                Work::ZERO,
            ),
            miners: index::MinerNames::default(),
        };
        // Only headers are read back (88 bytes a block): a store of any
        // size reopens in memory proportional to its block count.
        let mut loaded: Vec<StoredHeader> = Vec::new();
        cs.store.load_headers(&mut |h| loaded.push(h))?;
        if loaded.is_empty() {
            let g = StoredBlock {
                seq: 0,
                received_ms: crate::clock::from_unix_secs(u64::from(params.genesis.header.time)),
                bytes: params.genesis.encode(),
            };
            cs.store.put_blocks(std::slice::from_ref(&g))?;
            loaded.push(StoredHeader {
                seq: 0,
                received_ms: g.received_ms,
                header: Some(params.genesis.header.encode()),
                miner_id: None,
            });
        }
        for rec in loaded {
            cs.reload(rec)?;
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

    /// Drops expired orphans (`now_ms`: Unix ms); returns how many.
    pub fn expire_orphans(&mut self, now_ms: u64) -> usize {
        self.orphans.expire(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index memory goal: under 256 bytes a block. An entry is 184 bytes
    /// (176 before the miner id's index joined it, issue 22 item 4);
    /// the hash map adds about 48 (key, id, control byte, load factor) and
    /// the active chain 4.
    #[test]
    fn index_entry_stays_small() {
        assert!(
            std::mem::size_of::<Entry>() <= 184,
            "{}",
            std::mem::size_of::<Entry>()
        );
        let per_block = std::mem::size_of::<Entry>() + (32 + 4 + 1) * 8 / 7 + 4;
        assert!(per_block < 256, "{per_block}");
    }

    /// A full invalid-block cache forgets its oldest entry, whatever the
    /// hasher's seed: the same inputs forget the same blocks in every
    /// process (the simulator's determinism).
    #[test]
    fn a_full_invalid_cache_evicts_in_insertion_order() {
        let mut cs =
            ChainStore::open(Arc::new(Params::regtest()), Box::new(MemStore::default())).unwrap();
        cs.max_invalid = 3;
        let h = |i: u8| BlockHash([i; 32]);
        for i in 1..=5 {
            cs.remember_invalid(
                h(i),
                Some(u32::from(i)),
                BlockHeader {
                    prev_blockhash: h(0),
                    ..cs.tip_header()
                },
                "bad".into(),
            );
        }
        assert_eq!(cs.invalid_count(), 3);
        for i in 1..=2 {
            assert!(!cs.knows(&h(i)), "block {i} should be forgotten first");
        }
        for i in 3..=5 {
            assert!(cs.knows(&h(i)), "block {i} should be remembered");
        }
    }
}
