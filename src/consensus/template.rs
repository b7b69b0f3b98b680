//! [`BlockTemplate`]: what a miner works on, as the protocol core hands it
//! out (Core's `getblocktemplate` in spirit, BIP 22).

use super::{BlockHash, CompactTarget};

/// What to mine on: everything but the coinbase's extranonce, the time and
/// the nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTemplate {
    /// Height of the block to mine.
    pub height: u32,
    /// Header version.
    pub version: i32,
    /// The tip to build on.
    pub prev_blockhash: BlockHash,
    /// Required bits (from the difficulty rule).
    pub bits: CompactTarget,
    /// Smallest valid time: median-time-past + 1. The miner uses
    /// `max(now, min_time)`.
    pub min_time: u32,
    /// Transactions after the coinbase.
    pub transactions: Vec<Vec<u8>>,
    /// Written into the coinbase.
    pub miner_id: String,
}
