//! Targets, compact `bits`, and work, as 256-bit integers.
//!
//! Mirrors Bitcoin Core's `arith_uint256::SetCompact` / `GetCompact`
//! (src/arith_uint256.cpp) and `GetBlockProof` (src/chain.cpp).

use ruint::aliases::U256;
use serde::{Deserialize, Serialize};
use std::fmt;

use super::error::CompactError;
use super::hash::BlockHash;

/// The compact ("nBits") encoding of a target: a one-byte base-256 exponent
/// and a 23-bit mantissa with a sign bit, as in Bitcoin's block header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct CompactTarget(u32);

impl CompactTarget {
    /// From the header's `bits` field as Core reads it (`nBits`).
    #[must_use]
    pub const fn from_consensus(bits: u32) -> CompactTarget {
        CompactTarget(bits)
    }

    /// The header's `bits` field (`nBits`).
    #[must_use]
    pub const fn to_consensus(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompactTarget({:08x})", self.0)
    }
}

impl fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A 256-bit proof-of-work target: a header is valid iff its hash, read as a
/// little-endian 256-bit integer, is `<=` the target.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Target(U256);

/// Expected number of hashes to find a block at a target: `2^256 / (target+1)`.
/// Summed from genesis it is the chain's **chainwork**.
///
/// Serde: 64 big-endian hex digits in human-readable formats (Core's
/// `chainwork` field), the 32 big-endian bytes otherwise.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Work(U256);

impl Serialize for Work {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.to_be_bytes().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Work {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            if text.len() > 66 {
                return Err(serde::de::Error::custom(
                    "chainwork: more than 64 hex digits",
                ));
            }
            Work::from_hex(&text).ok_or_else(|| serde::de::Error::custom("chainwork: not hex"))
        } else {
            <[u8; 32]>::deserialize(d).map(Work::from_be_bytes)
        }
    }
}

impl Target {
    /// A target from its 256-bit value (what Core's `arith_uint256` holds).
    #[must_use]
    pub const fn from_u256(value: U256) -> Target {
        Target(value)
    }

    /// The 256-bit value (for the difficulty rules' arithmetic).
    #[must_use]
    pub const fn to_u256(self) -> U256 {
        self.0
    }

    /// Decodes compact bits exactly like Core's `SetCompact`, rejecting
    /// negative, overflowing and zero encodings.
    ///
    /// # Errors
    /// [`CompactError`] for those three cases.
    pub fn from_compact(bits: CompactTarget) -> Result<Target, CompactError> {
        let c = bits.0;
        let size = c >> 24;
        let mut word = c & 0x007f_ffff;
        // Core shifts a small mantissa first, then derives the flags from
        // what is left of it.
        if size <= 3 {
            word >>= 8 * (3 - size);
        }
        let negative = word != 0 && (c & 0x0080_0000) != 0;
        let overflow =
            word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
        if negative {
            return Err(CompactError::Negative(c));
        }
        if overflow {
            return Err(CompactError::Overflow(c));
        }
        let value = if size <= 3 {
            U256::from(word)
        } else {
            U256::from(word) << (8 * (size as usize - 3))
        };
        if value.is_zero() {
            return Err(CompactError::Zero(c));
        }
        Ok(Target(value))
    }

    /// Encodes to compact bits exactly like Core's `GetCompact` (lossy: keeps
    /// the top 3 significant bytes, rounding down).
    #[must_use]
    pub fn to_compact(&self) -> CompactTarget {
        let bits = self.0.bit_len();
        let mut size = bits.div_ceil(8) as u32;
        let mut compact: u32 = if size <= 3 {
            (self.0.as_limbs()[0] << (8 * (3 - size))) as u32
        } else {
            let shifted = self.0 >> (8 * (size as usize - 3));
            shifted.as_limbs()[0] as u32
        };
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        CompactTarget(compact | (size << 24))
    }

    /// Whether `hash` (little-endian 256-bit integer) meets this target.
    #[inline]
    #[must_use]
    pub fn is_met_by(&self, hash: &BlockHash) -> bool {
        U256::from_le_bytes(hash.0) <= self.0
    }

    /// The work a block at this target represents: `2^256 / (target + 1)`,
    /// computed as Core's `GetBlockProof` does: `~target / (target + 1) + 1`.
    #[must_use]
    pub fn to_work(&self) -> Work {
        if self.0 == U256::MAX {
            return Work::from_u256(U256::from(1u8));
        }
        Work::from_u256((!self.0) / (self.0 + U256::from(1u8)) + U256::from(1u8))
    }

    /// 64 hex digits, big-endian.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_be_bytes::<32>())
    }

    /// Expected hashes to find a block: the same number as [`Target::to_work`],
    /// as an `f64` for rates and ETAs.
    #[must_use]
    pub fn expected_hashes(&self) -> f64 {
        u256_to_f64(self.to_work().0)
    }
}

impl Work {
    /// Work from its 256-bit value.
    #[must_use]
    pub const fn from_u256(value: U256) -> Work {
        Work(value)
    }

    /// The 256-bit value.
    #[must_use]
    pub const fn to_u256(self) -> U256 {
        self.0
    }

    /// Chainwork as Core serializes it in `getblockchaininfo`'s
    /// `chainwork` (32 bytes, big-endian) and powchain in handshakes.
    #[must_use]
    pub fn from_be_bytes(bytes: [u8; 32]) -> Work {
        Work::from_u256(U256::from_be_bytes(bytes))
    }

    /// The 32 big-endian bytes of [`Work::from_be_bytes`].
    #[must_use]
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0.to_be_bytes::<32>()
    }

    /// Zero work.
    pub const ZERO: Work = Work::from_u256(U256::ZERO);

    /// 64 hex digits, big-endian (Core's `chainwork` field).
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_be_bytes::<32>())
    }

    /// As an `f64` (rates: Core's `getnetworkhashps` divides work by time).
    #[must_use]
    pub fn to_f64(&self) -> f64 {
        u256_to_f64(self.0)
    }

    /// Minimal hex with a `0x` prefix, e.g. `0x100010001`.
    #[must_use]
    pub fn to_short_hex(&self) -> String {
        format!("{:#x}", self.0)
    }

    /// Parses 64 (or fewer) big-endian hex digits, an optional `0x` first.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Work> {
        let s = s.trim().trim_start_matches("0x");
        U256::from_str_radix(s, 16).ok().map(Work)
    }

    /// Saturating sum (chainwork cannot realistically reach 2^256).
    #[must_use]
    pub fn saturating_add(self, other: Work) -> Work {
        Work::from_u256(self.0.saturating_add(other.0))
    }

    /// As an `f64` (for display and rates).
    #[must_use]
    pub fn as_f64(&self) -> f64 {
        u256_to_f64(self.0)
    }
}

impl std::ops::Add for Work {
    type Output = Work;
    fn add(self, rhs: Work) -> Work {
        self.saturating_add(rhs)
    }
}

fn u256_to_f64(v: U256) -> f64 {
    v.as_limbs().iter().rev().fold(0.0f64, |acc, &limb| {
        acc * 18_446_744_073_709_551_616.0 + limb as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(bits: u32) -> Result<Target, CompactError> {
        Target::from_compact(CompactTarget(bits))
    }

    #[test]
    fn set_compact_matches_core_test_vectors() {
        // Vectors from Bitcoin Core's src/test/arith_uint256_tests.cpp (bignum_SetCompact).
        assert!(matches!(t(0), Err(CompactError::Zero(_))));
        assert!(matches!(t(0x00123456), Err(CompactError::Zero(_))));
        assert!(matches!(t(0x01003456), Err(CompactError::Zero(_))));
        assert!(matches!(t(0x02000056), Err(CompactError::Zero(_))));
        assert!(matches!(t(0x03000000), Err(CompactError::Zero(_))));
        assert!(matches!(t(0x04000000), Err(CompactError::Zero(_))));
        assert!(matches!(t(0x00923456), Err(CompactError::Zero(_))));
        assert!(matches!(t(0x01803456), Err(CompactError::Zero(_))));
        assert_eq!(t(0x01123456).unwrap().0, U256::from(0x12u32));
        assert_eq!(t(0x01123456).unwrap().to_compact().0, 0x01120000);
        assert_eq!(t(0x02123456).unwrap().0, U256::from(0x1234u32));
        assert_eq!(t(0x03123456).unwrap().0, U256::from(0x123456u32));
        assert_eq!(t(0x04123456).unwrap().0, U256::from(0x12345600u32));
        assert!(matches!(t(0x04923456), Err(CompactError::Negative(_))));
        assert_eq!(t(0x05009234).unwrap().0, U256::from(0x92340000u64));
        assert_eq!(t(0x05009234).unwrap().to_compact().0, 0x05009234);
        assert_eq!(
            t(0x20123456).unwrap().0,
            U256::from(0x123456u32) << (8 * 29)
        );
        assert_eq!(t(0x20123456).unwrap().to_compact().0, 0x20123456);
        assert!(matches!(t(0xff123456), Err(CompactError::Overflow(_))));
        assert!(matches!(t(0x01fedcba), Err(CompactError::Negative(_))));
        // 0x80 in the top mantissa byte must be re-encoded with a larger exponent.
        assert_eq!(
            Target::from_u256(U256::from(0x80u32)).to_compact().0,
            0x02008000
        );
    }

    #[test]
    fn difficulty_one_work() {
        // README of tests/data: the work of one 0x1d00ffff block is 0x100010001.
        let w = t(0x1d00ffff).unwrap().to_work();
        assert_eq!(w.to_short_hex(), "0x100010001");
        assert_eq!(
            t(0x1d00ffff).unwrap().to_hex(),
            "00000000ffff0000000000000000000000000000000000000000000000000000"
        );
    }

    proptest! {
        #[test]
        fn compact_round_trip_for_representable_targets(mantissa in 1u32..0x0080_0000, exp in 1u32..=32) {
            // Every normalised (exponent, mantissa) pair that fits in 256 bits.
            let bits = (exp << 24) | mantissa;
            let Ok(target) = t(bits) else { return Ok(()); };
            let back = target.to_compact();
            // GetCompact(SetCompact(x)) gives the canonical encoding of the same value.
            prop_assert_eq!(t(back.0).unwrap(), target);
            prop_assert_eq!(back.to_compact_canonical(), back);
        }

        #[test]
        fn compact_truncates_any_u256_downwards(limbs in proptest::array::uniform4(any::<u64>())) {
            let v = U256::from_limbs(limbs);
            prop_assume!(!v.is_zero());
            let c = Target::from_u256(v).to_compact();
            let back = t(c.0).unwrap();
            prop_assert!(back.0 <= v);
            prop_assert_eq!(back.to_compact(), c);
            prop_assert_eq!(back.0.bit_len(), v.bit_len());
        }
    }

    impl CompactTarget {
        fn to_compact_canonical(self) -> CompactTarget {
            t(self.0).unwrap().to_compact()
        }
    }
}
