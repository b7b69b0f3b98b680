//! Queries for the API: block info, stored blocks, stale blocks and
//! getchaintips-style tips.

use super::{BlockInfo, ChainStore, ChainTip, StoreError};
use crate::consensus::block::{Block, Coinbase};
use crate::consensus::BlockHash;

impl ChainStore {
    pub(super) fn info(&self, id: u32) -> BlockInfo {
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

    /// Where a header on a known parent would sit: how many blocks below
    /// the best tip its branch leaves the best chain (0 when it extends
    /// the tip), and the chainwork it would have. `None` for an unknown
    /// parent. Walks parent links up to the best chain.
    #[must_use]
    pub fn branch_position(
        &self,
        header: &crate::consensus::BlockHeader,
    ) -> Option<BranchPosition> {
        let &parent = self.ids.get(&header.prev_blockhash)?;
        let mut cur = parent;
        while !self.entries[cur as usize].in_active {
            cur = self.entries[cur as usize].parent;
        }
        let fork_height = self.entries[cur as usize].height;
        let work = crate::consensus::Target::from_compact(header.bits)
            .map(|t| t.to_work())
            .unwrap_or_default();
        Some(BranchPosition {
            fork_depth: self.height() - fork_height,
            chainwork: self.entries[parent as usize].chainwork + work,
        })
    }
}

/// See [`ChainStore::branch_position`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchPosition {
    /// Blocks between the fork point and the best tip.
    pub fork_depth: u32,
    /// The block's chainwork.
    pub chainwork: crate::consensus::Work,
}
