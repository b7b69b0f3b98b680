//! The block index: arena entries with parent links and chainwork, the
//! active chain by height, fork choice's best entry, and the
//! [`ChainView`] of any branch for the contextual rules.

use std::collections::HashMap;

use super::ChainStore;
use crate::consensus::pow::Work;
use crate::consensus::validation::AncestorInfo;
use crate::consensus::{BlockHash, BlockHeader, ChainView};

/// Index entry of one stored, valid block.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) hash: BlockHash,
    pub(super) header: BlockHeader,
    pub(super) chainwork: Work,
    pub(super) seq: u64,
    pub(super) received_ms: u64,
    pub(super) height: u32,
    pub(super) parent: u32,
    pub(super) children: u32,
    pub(super) in_active: bool,
    /// Index into [`MinerNames`], or [`NO_MINER`].
    pub(super) miner: u32,
}

/// No miner id (a block without our coinbase).
pub(super) const NO_MINER: u32 = u32::MAX;

/// Miner ids kept once each: a testnet has a few miners and thousands of
/// blocks. Grows by at most one 64-byte name per stored block.
#[derive(Default)]
pub(super) struct MinerNames {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl MinerNames {
    /// The index of `name`, added when new.
    pub(super) fn intern(&mut self, name: Option<&str>) -> u32 {
        let Some(name) = name else {
            return NO_MINER;
        };
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The name at `id`.
    pub(super) fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(|n| &**n)
    }
}

pub(super) const NO_PARENT: u32 = u32::MAX;

impl ChainStore {
    pub(super) fn insert_entry(
        &mut self,
        hash: BlockHash,
        header: BlockHeader,
        parent: u32,
        seq: u64,
        received_ms: u64,
        miner: Option<&str>,
    ) -> u32 {
        let miner = self.miners.intern(miner);
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
            miner,
            children: 0,
            in_active: false,
        });
        self.ids.insert(hash, id);
        id
    }

    /// The entry with the most chainwork; the earliest seen among equals.
    pub(super) fn best_entry(&self) -> u32 {
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
    pub(super) fn set_active_to(&mut self, tip: u32) -> (Vec<u32>, Vec<u32>) {
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

    pub(super) fn view(&self, tip: u32) -> BranchView<'_> {
        BranchView { cs: self, tip }
    }

    /// A view of the branch ending at `hash` (any stored block), for a
    /// template on a branch that is not the best chain (a traitor's private
    /// branch); `None` if the block is not stored.
    #[must_use]
    pub fn view_at(&self, hash: &BlockHash) -> Option<impl ChainView + '_> {
        self.ids.get(hash).map(|&id| self.view(id))
    }

    /// A view of the branch ending at the current best tip, for templates.
    #[must_use]
    pub fn tip_view(&self) -> impl ChainView + '_ {
        self.view(*self.active.last().expect("genesis is always active"))
    }
}

/// [`ChainView`] over the branch ending at `tip`: ancestors on the best
/// chain are found by height at once, others by walking parent links.
pub(super) struct BranchView<'a> {
    pub(super) cs: &'a ChainStore,
    pub(super) tip: u32,
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
