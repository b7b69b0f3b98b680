//! The 80-byte Bitcoin block header.

use serde::{Deserialize, Serialize};

use super::error::DecodeError;
use super::hash::{sha256d, BlockHash};
use super::pow::CompactTarget;

/// Size of a serialized header in bytes.
pub const HEADER_SIZE: usize = 80;

/// A Bitcoin block header. Serialized as 80 bytes, all integers
/// little-endian: `version` i32, `prev_blockhash` \[32\], `merkle_root` \[32\],
/// `time` u32 (Unix s), `bits` u32 (compact target), `nonce` u32.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Block version (signalling bits on mainnet; informational here).
    pub version: i32,
    /// Hash of the parent block, internal byte order.
    pub prev_blockhash: BlockHash,
    /// Merkle root of the block's transactions, internal byte order.
    pub merkle_root: [u8; 32],
    /// Block timestamp, Unix seconds.
    pub time: u32,
    /// Compact encoding of the target this header's hash must meet.
    pub bits: CompactTarget,
    /// The nonce the miner varies.
    pub nonce: u32,
}

impl BlockHeader {
    /// Serializes to the 80-byte wire form.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(&self.prev_blockhash.0);
        b[36..68].copy_from_slice(&self.merkle_root);
        b[68..72].copy_from_slice(&self.time.to_le_bytes());
        b[72..76].copy_from_slice(&self.bits.to_consensus().to_le_bytes());
        b[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// Parses exactly 80 bytes.
    #[must_use]
    pub fn decode(b: &[u8; HEADER_SIZE]) -> BlockHeader {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut prev = [0u8; 32];
        prev.copy_from_slice(&b[4..36]);
        let mut merkle = [0u8; 32];
        merkle.copy_from_slice(&b[36..68]);
        BlockHeader {
            version: u32_at(0) as i32,
            prev_blockhash: BlockHash(prev),
            merkle_root: merkle,
            time: u32_at(68),
            bits: CompactTarget::from_consensus(u32_at(72)),
            nonce: u32_at(76),
        }
    }

    /// Parses a slice that must be exactly 80 bytes.
    ///
    /// # Errors
    /// [`DecodeError::Length`] for any other length.
    pub fn decode_slice(b: &[u8]) -> Result<BlockHeader, DecodeError> {
        let arr: &[u8; HEADER_SIZE] = b.try_into().map_err(|_| DecodeError::Length {
            got: b.len(),
            expected: HEADER_SIZE,
        })?;
        Ok(Self::decode(arr))
    }

    /// Parses 160 hex digits.
    ///
    /// # Errors
    /// [`DecodeError::BadHex`] or [`DecodeError::Length`].
    pub fn from_hex(s: &str) -> Result<BlockHeader, DecodeError> {
        let bytes = hex::decode(s.trim()).map_err(|e| DecodeError::BadHex(e.to_string()))?;
        Self::decode_slice(&bytes)
    }

    /// The block hash: sha256d of the 80 serialized bytes. No allocation.
    #[inline]
    #[must_use]
    pub fn block_hash(&self) -> BlockHash {
        BlockHash(sha256d(&self.encode()))
    }

    /// Merkle root in display (byte-reversed) hex.
    #[must_use]
    pub fn merkle_root_hex(&self) -> String {
        let mut r = self.merkle_root;
        r.reverse();
        hex::encode(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bitcoin mainnet genesis header (height 0), a published constant.
    const GENESIS_HEX: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

    #[test]
    fn genesis_decodes_and_hashes() {
        let h = BlockHeader::from_hex(GENESIS_HEX).unwrap();
        assert_eq!(h.version, 1);
        assert_eq!(h.time, 1_231_006_505);
        assert_eq!(h.bits.to_consensus(), 0x1d00ffff);
        assert_eq!(h.nonce, 2_083_236_893);
        assert_eq!(
            h.block_hash().to_hex(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        assert_eq!(
            h.merkle_root_hex(),
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
        );
        assert_eq!(hex::encode(h.encode()), GENESIS_HEX);
    }

    proptest::proptest! {
        #[test]
        fn encode_decode_round_trip(bytes in proptest::array::uniform32(proptest::prelude::any::<u8>()),
                                    more in proptest::array::uniform32(proptest::prelude::any::<u8>()),
                                    version in proptest::prelude::any::<i32>(),
                                    time in proptest::prelude::any::<u32>(),
                                    bits in proptest::prelude::any::<u32>(),
                                    nonce in proptest::prelude::any::<u32>()) {
            let h = BlockHeader {
                version,
                prev_blockhash: BlockHash(bytes),
                merkle_root: more,
                time,
                bits: CompactTarget::from_consensus(bits),
                nonce,
            };
            let enc = h.encode();
            proptest::prop_assert_eq!(BlockHeader::decode(&enc), h);
            proptest::prop_assert_eq!(BlockHeader::from_hex(&hex::encode(enc)).unwrap(), h);
            proptest::prop_assert_eq!(h.block_hash(), BlockHash(sha256d(&enc)));
        }
    }

    #[test]
    fn wrong_length_is_an_error() {
        assert!(matches!(
            BlockHeader::from_hex("00"),
            Err(DecodeError::Length {
                got: 1,
                expected: 80
            })
        ));
    }
}
