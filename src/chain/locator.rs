//! Block locators (Core's `GetLocator`), the fork point of a peer's
//! locator, and the blocks after it for a sync response.

use super::{ChainStore, StoreError};
use crate::consensus::BlockHash;

impl ChainStore {
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
}
