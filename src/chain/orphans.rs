//! The orphan pool: blocks whose parent this node does not have yet.
//!
//! Bounded in count, bytes and per peer; entries expire by age. Indexed by
//! hash and by claimed parent, so when a parent connects its waiting
//! children are found at once (as btcd's `orphanBlocks` / `prevOrphans`).

use std::collections::HashMap;

use crate::consensus::{Block, BlockHash};

/// Limits of the orphan pool.
#[derive(Clone, Copy, Debug)]
pub struct OrphanLimits {
    /// Most orphans held.
    pub max_count: usize,
    /// Most bytes of orphan blocks held.
    pub max_bytes: usize,
    /// Most orphans held from one peer.
    pub max_per_peer: usize,
    /// Age after which an orphan is dropped, seconds.
    pub expiry_secs: u64,
}

impl Default for OrphanLimits {
    fn default() -> Self {
        OrphanLimits {
            max_count: 512,
            max_bytes: 32 * 1024 * 1024,
            max_per_peer: 128,
            expiry_secs: 600,
        }
    }
}

/// An orphan block waiting for its parent.
#[derive(Clone, Debug)]
pub struct Orphan {
    /// The block.
    pub block: Block,
    /// Its hash.
    pub hash: BlockHash,
    /// Which peer sent it (`None`: local).
    pub from_peer: Option<String>,
    /// When it arrived, Unix milliseconds (as block infos keep it).
    pub received_ms: u64,
    /// Serialized size, bytes.
    pub size: usize,
}

/// Why an orphan was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrphanReject {
    /// Already in the pool.
    Duplicate,
    /// That peer already has `max_per_peer` orphans here.
    PeerLimit,
    /// Larger than the whole pool.
    TooLarge,
}

/// The pool itself.
#[derive(Default)]
pub struct OrphanPool {
    limits: OrphanLimits,
    by_hash: HashMap<BlockHash, Orphan, super::IndexHasher>,
    by_parent: HashMap<BlockHash, Vec<BlockHash>, super::IndexHasher>,
    per_peer: HashMap<String, usize>,
    bytes: usize,
    evicted: u64,
}

impl OrphanPool {
    /// An empty pool with `limits`.
    #[must_use]
    pub fn new(limits: OrphanLimits) -> OrphanPool {
        OrphanPool {
            limits,
            ..OrphanPool::default()
        }
    }

    /// Number of orphans held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Bytes held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Orphans dropped for space or age since start.
    #[must_use]
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Whether `hash` is held.
    #[must_use]
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Adds an orphan, evicting the oldest ones while the pool is over its
    /// count or byte limit.
    ///
    /// # Errors
    /// [`OrphanReject`] when it is a duplicate, the peer is at its limit, or
    /// the block alone exceeds the byte limit.
    pub fn insert(&mut self, orphan: Orphan) -> Result<(), OrphanReject> {
        if self.by_hash.contains_key(&orphan.hash) {
            return Err(OrphanReject::Duplicate);
        }
        if orphan.size > self.limits.max_bytes {
            return Err(OrphanReject::TooLarge);
        }
        if let Some(peer) = &orphan.from_peer {
            if self.per_peer.get(peer).copied().unwrap_or(0) >= self.limits.max_per_peer {
                return Err(OrphanReject::PeerLimit);
            }
        }
        while self.by_hash.len() >= self.limits.max_count
            || self.bytes + orphan.size > self.limits.max_bytes
        {
            let Some(oldest) = self
                .by_hash
                .values()
                .min_by_key(|o| (o.received_ms, o.hash))
                .map(|o| o.hash)
            else {
                break;
            };
            self.remove(&oldest);
            self.evicted += 1;
        }
        if let Some(peer) = &orphan.from_peer {
            *self.per_peer.entry(peer.clone()).or_default() += 1;
        }
        self.bytes += orphan.size;
        self.by_parent
            .entry(orphan.block.header.prev_blockhash)
            .or_default()
            .push(orphan.hash);
        self.by_hash.insert(orphan.hash, orphan);
        Ok(())
    }

    /// Removes and returns one orphan.
    pub fn remove(&mut self, hash: &BlockHash) -> Option<Orphan> {
        let o = self.by_hash.remove(hash)?;
        self.bytes -= o.size;
        let parent = o.block.header.prev_blockhash;
        if let Some(v) = self.by_parent.get_mut(&parent) {
            v.retain(|h| h != hash);
            if v.is_empty() {
                self.by_parent.remove(&parent);
            }
        }
        if let Some(peer) = &o.from_peer {
            if let Some(n) = self.per_peer.get_mut(peer) {
                *n -= 1;
                if *n == 0 {
                    self.per_peer.remove(peer);
                }
            }
        }
        Some(o)
    }

    /// Removes and returns the orphans whose parent is `parent`, oldest first.
    pub fn take_children(&mut self, parent: &BlockHash) -> Vec<Orphan> {
        let Some(hashes) = self.by_parent.get(parent).cloned() else {
            return Vec::new();
        };
        let mut out: Vec<Orphan> = hashes.iter().filter_map(|h| self.remove(h)).collect();
        out.sort_by_key(|o| o.received_ms);
        out
    }

    /// The missing ancestor at the root of the orphan chain that `hash`
    /// (or its parent) belongs to: the hash the network should fetch.
    #[must_use]
    pub fn missing_root(&self, parent: &BlockHash) -> BlockHash {
        let mut cur = *parent;
        let mut steps = 0;
        while let Some(o) = self.by_hash.get(&cur) {
            cur = o.block.header.prev_blockhash;
            steps += 1;
            if steps > self.limits.max_count {
                break;
            }
        }
        cur
    }

    /// Drops orphans older than the expiry; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let expiry_ms = self.limits.expiry_secs.saturating_mul(1000);
        let old: Vec<BlockHash> = self
            .by_hash
            .values()
            .filter(|o| now_ms.saturating_sub(o.received_ms) > expiry_ms)
            .map(|o| o.hash)
            .collect();
        for h in &old {
            self.remove(h);
        }
        self.evicted += old.len() as u64;
        old.len()
    }

    /// When the oldest orphan expires, Unix ms (`None`: the pool is
    /// empty): the first millisecond at which [`OrphanPool::expire`] drops
    /// it.
    #[must_use]
    pub fn next_expiry_ms(&self) -> Option<u64> {
        self.by_hash
            .values()
            .map(|o| o.received_ms)
            .min()
            .map(|t| t + self.limits.expiry_secs.saturating_mul(1000) + 1)
    }

    /// The orphan with this hash.
    #[must_use]
    pub fn get(&self, hash: &BlockHash) -> Option<&Orphan> {
        self.by_hash.get(hash)
    }

    /// Every orphan, oldest first.
    #[must_use]
    pub fn list(&self) -> Vec<&Orphan> {
        let mut v: Vec<&Orphan> = self.by_hash.values().collect();
        v.sort_by_key(|o| (o.received_ms, o.hash));
        v
    }
}
