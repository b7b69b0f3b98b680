//! The messages of the request-response protocol `/powchain/sync/1`, as
//! plain data: the handshake, block requests and their answers. The wire
//! codec (length-prefixed bincode frames) lives in `p2p::protocol`; these
//! types are what the protocol core reads and writes.
//!
//! Every collection in a message is bounded by what it costs on the wire:
//! a locator is a list of fixed 32-byte hashes, and a batch of blocks is
//! one byte string ([`BlockBatch`]) holding a CompactSize count and the
//! blocks in Bitcoin's serialization, read by a counted decoder that
//! allocates only for bytes really present.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::consensus::block::{read_compact_size, write_compact_size};
use crate::consensus::{Block, BlockHash, DecodeError};

/// Version carried in every handshake.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest request frame, bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Largest response frame, bytes (a batch of blocks).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Most blocks in one `Blocks` response.
pub const MAX_BLOCKS_PER_RESPONSE: u32 = 500;

/// Most bytes of blocks a node puts in one response (at least one block is
/// always sent); well under [`MAX_RESPONSE_BYTES`].
pub const RESPONSE_BLOCK_BYTES: usize = 8 * 1024 * 1024;

/// The refusal reason of a `GetBlocks` that came while the serving
/// allowance was spent ([`crate::protocol::budget`]).
pub const BUSY_REASON: &str = "serving allowance spent";

/// How long a node waits before it asks a peer again after the peer
/// refused a sync request, ms (an honest peer refuses while its serving
/// allowance refills: asking at once would be a flood).
pub const REFUSED_RETRY_MS: u64 = 1000;

/// Most locator hashes accepted (Core's `MAX_LOCATOR_SZ`).
pub const MAX_LOCATOR: usize = 101;

/// Longest refusal reason kept from a peer, bytes; the rest is cut.
pub const MAX_REASON_BYTES: usize = 256;

/// Exchanged when a connection opens and every few seconds after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    /// [`PROTOCOL_VERSION`].
    pub version: u16,
    /// Network id (`testnet-bt2`, `regtest`, ...).
    pub network_id: String,
    /// Genesis hash: peers with another genesis are refused.
    pub genesis: BlockHash,
    /// Best tip.
    pub tip: BlockHash,
    /// Best height.
    pub height: u32,
    /// Best chainwork, 32 bytes big-endian.
    pub chainwork: [u8; 32],
}

/// A request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "Here is my chain": answered with the peer's handshake.
    Handshake(Handshake),
    /// Best-chain blocks after the fork point of `locator`.
    GetBlocks {
        /// Block locator, newest first (at most [`MAX_LOCATOR`]).
        locator: Vec<BlockHash>,
        /// Most blocks wanted.
        max_blocks: u32,
    },
}

/// A response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The responder's handshake.
    Handshake(Handshake),
    /// Blocks in Bitcoin's serialization, lowest first.
    Blocks(BlockBatch),
    /// The request was refused (reason).
    Refused(String),
}

/// A batch of blocks: a CompactSize count, then each block in Bitcoin's
/// serialization (self-delimiting). Held as one byte string, so decoding
/// the message allocates exactly the bytes on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockBatch(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// Why a [`BlockBatch`] could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// More blocks claimed than the protocol allows.
    #[error("batch claims {got} blocks, limit {limit}")]
    TooManyBlocks {
        /// claimed
        got: u64,
        /// [`MAX_BLOCKS_PER_RESPONSE`]
        limit: u32,
    },
    /// A block in the batch is malformed.
    #[error("block {index} of the batch: {source}")]
    Block {
        /// position in the batch
        index: usize,
        /// the decoding error
        source: DecodeError,
    },
    /// Bytes left after the claimed blocks.
    #[error("{0} trailing bytes after the batch")]
    Trailing(usize),
}

impl BlockBatch {
    /// Builds a batch from blocks already serialized.
    #[must_use]
    pub fn from_serialized(blocks: &[Vec<u8>]) -> BlockBatch {
        let mut out = Vec::with_capacity(9 + blocks.iter().map(Vec::len).sum::<usize>());
        write_compact_size(&mut out, blocks.len() as u64);
        for b in blocks {
            out.extend_from_slice(b);
        }
        BlockBatch(out)
    }

    /// Builds a batch from blocks.
    #[must_use]
    pub fn from_blocks(blocks: &[Block]) -> BlockBatch {
        let enc: Vec<Vec<u8>> = blocks.iter().map(Block::encode).collect();
        Self::from_serialized(&enc)
    }

    /// Size on the wire, bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the batch has no bytes at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads the blocks, each at most `max_block_bytes`. The count is
    /// checked against [`MAX_BLOCKS_PER_RESPONSE`] before anything is
    /// allocated, and each block only takes the bytes it really has.
    ///
    /// # Errors
    /// [`BatchError`] for a count over the limit, a malformed block or
    /// trailing bytes.
    pub fn decode(&self, max_block_bytes: usize) -> Result<Vec<Block>, BatchError> {
        let bytes = &self.0;
        let mut pos = 0;
        let count = read_compact_size(bytes, &mut pos)
            .map_err(|source| BatchError::Block { index: 0, source })?;
        if count > u64::from(MAX_BLOCKS_PER_RESPONSE) {
            return Err(BatchError::TooManyBlocks {
                got: count,
                limit: MAX_BLOCKS_PER_RESPONSE,
            });
        }
        // A block is at least 81 bytes: reserve no more than the input can
        // hold, whatever the count claims; a count the bytes cannot back
        // fails on the first missing block.
        let mut blocks = Vec::with_capacity((count as usize).min(bytes.len() / 81));
        for index in 0..count as usize {
            let b = Block::decode_prefix(bytes, &mut pos, max_block_bytes)
                .map_err(|source| BatchError::Block { index, source })?;
            blocks.push(b);
        }
        if pos != bytes.len() {
            return Err(BatchError::Trailing(bytes.len() - pos));
        }
        Ok(blocks)
    }
}

/// Cuts a peer's text (a refusal reason) to [`MAX_REASON_BYTES`] at a
/// character boundary, so a hostile peer cannot fill the logs.
#[must_use]
pub fn truncate_reason(s: &str) -> &str {
    if s.len() <= MAX_REASON_BYTES {
        return s;
    }
    let mut end = MAX_REASON_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Params;

    #[test]
    fn batch_round_trip_and_bounds() {
        let g = Params::regtest().genesis;
        let batch = BlockBatch::from_blocks(&[g.clone(), g.clone()]);
        assert_eq!(batch.decode(1 << 20).unwrap(), vec![g.clone(), g.clone()]);
        // A count over the limit is refused before any block is read.
        let mut huge = Vec::new();
        write_compact_size(&mut huge, u64::MAX);
        assert!(matches!(
            BlockBatch(huge).decode(1 << 20),
            Err(BatchError::TooManyBlocks { .. })
        ));
        // A count the bytes cannot hold reads what is there, then fails on
        // the missing block instead of reserving for the claim.
        let mut claim = Vec::new();
        write_compact_size(&mut claim, 400);
        claim.extend_from_slice(&g.encode());
        assert!(matches!(
            BlockBatch(claim).decode(1 << 20),
            Err(BatchError::Block { .. } | BatchError::Trailing(_))
        ));
        // Trailing bytes.
        let mut t = BlockBatch::from_blocks(std::slice::from_ref(&g)).0;
        t.push(0);
        assert_eq!(BlockBatch(t).decode(1 << 20), Err(BatchError::Trailing(1)));
        // A block larger than the limit.
        assert!(BlockBatch::from_blocks(&[g]).decode(81).is_err());
    }

    #[test]
    fn reasons_are_cut_at_a_char_boundary() {
        let long = "é".repeat(1000);
        let cut = truncate_reason(&long);
        assert!(cut.len() <= MAX_REASON_BYTES);
        assert!(cut.len() >= MAX_REASON_BYTES - 1);
        assert_eq!(truncate_reason("short"), "short");
    }
}
