//! Typed consensus errors. Each header/block error names the rule it broke
//! with the short reject reason Bitcoin Core uses (`high-hash`,
//! `bad-diffbits`, `time-too-old`, ...), so logs and `verify-headers` output
//! can be compared with Core's.

use thiserror::Error;

/// A compact `bits` value that Bitcoin Core's `arith_uint256::SetCompact`
/// flags as negative or overflowing, or that decodes to zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CompactError {
    /// The sign bit (0x00800000) is set with a non-zero mantissa.
    #[error("compact bits {0:#010x} encode a negative target")]
    Negative(u32),
    /// The exponent pushes the mantissa past 256 bits.
    #[error("compact bits {0:#010x} overflow 256 bits")]
    Overflow(u32),
    /// The target is zero: no hash can meet it.
    #[error("compact bits {0:#010x} encode a zero target")]
    Zero(u32),
}

/// Malformed bytes: wrong length, bad hex, truncated serialization.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Input had the wrong length.
    #[error("wrong length: got {got} bytes, expected {expected}")]
    Length {
        /// bytes received
        got: usize,
        /// bytes required
        expected: usize,
    },
    /// Input was not valid hex.
    #[error("bad hex: {0}")]
    BadHex(String),
    /// Serialization ended early.
    #[error("truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// offset where reading stopped
        offset: usize,
        /// bytes missing
        needed: usize,
    },
    /// A CompactSize was not in its shortest form, or too large.
    #[error("non-canonical or oversized CompactSize at offset {0}")]
    BadCompactSize(usize),
    /// Bytes left over after the last transaction.
    #[error("{0} trailing bytes after the block")]
    TrailingBytes(usize),
    /// A count or length above the network's limit.
    #[error("{what} is {got}, limit {limit}")]
    TooLarge {
        /// what was too large
        what: &'static str,
        /// value received
        got: u64,
        /// maximum allowed
        limit: u64,
    },
}

/// A header that breaks a consensus rule. The `rule()` string is Core's
/// reject reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// `bits` is not a valid compact target.
    #[error("bad-diffbits: {0}")]
    BadCompact(#[from] CompactError),
    /// The target is easier than the network's pow limit.
    #[error("bad-diffbits: target {target} above pow limit {limit}")]
    TargetAboveLimit {
        /// target from the header's bits (hex)
        target: String,
        /// the network's pow limit (hex)
        limit: String,
    },
    /// The header hash is above its own target (Core `CheckProofOfWork`).
    #[error("high-hash: hash {hash} above target {target}")]
    HighHash {
        /// block hash (display hex)
        hash: String,
        /// target (hex)
        target: String,
    },
    /// `bits` differs from the difficulty rule's result (Core
    /// `ContextualCheckBlockHeader`, `GetNextWorkRequired`).
    #[error("bad-diffbits: got bits {got:08x} but expected {expected:08x}")]
    BadDiffBits {
        /// bits in the header
        got: u32,
        /// bits the rule requires
        expected: u32,
    },
    /// Timestamp at or below the median of the previous 11 blocks.
    #[error("time-too-old: time {time} is not above median-time-past {mtp}")]
    TimeTooOld {
        /// header time (Unix s)
        time: u32,
        /// median-time-past (Unix s)
        mtp: u32,
    },
    /// Timestamp more than 2 hours in the future of the node's clock.
    #[error("time-too-new: time {time} is beyond the future limit of node time {now}")]
    TimeTooNew {
        /// header time (Unix s)
        time: u32,
        /// node's time (Unix s)
        now: u64,
    },
    /// BIP94: the first block of a retarget window may not be more than
    /// 600 s before its parent.
    #[error("time-timewarp-attack: time {time} is more than 600 s before parent time {prev_time}")]
    TimeWarp {
        /// header time
        time: u32,
        /// parent's time
        prev_time: u32,
    },
    /// `prev_blockhash` does not name the expected parent.
    #[error("bad-prevblk: prev_blockhash {got} but expected {expected}")]
    BadPrevBlock {
        /// prev hash in the header
        got: String,
        /// hash of the actual previous header
        expected: String,
    },
}

impl HeaderError {
    /// The short rule name (Core's reject reason).
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            HeaderError::BadCompact(_)
            | HeaderError::TargetAboveLimit { .. }
            | HeaderError::BadDiffBits { .. } => "bad-diffbits",
            HeaderError::HighHash { .. } => "high-hash",
            HeaderError::TimeTooOld { .. } => "time-too-old",
            HeaderError::TimeTooNew { .. } => "time-too-new",
            HeaderError::TimeWarp { .. } => "time-timewarp-attack",
            HeaderError::BadPrevBlock { .. } => "bad-prevblk",
        }
    }
}

/// A block that breaks a consensus rule beyond its header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The header is invalid.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The bytes do not parse.
    #[error("bad-blk-encoding: {0}")]
    Decode(#[from] DecodeError),
    /// No transactions at all.
    #[error("bad-blk-length: a block needs at least the coinbase")]
    NoTransactions,
    /// Serialized size above the limit.
    #[error("bad-blk-length: {got} bytes, limit {limit}")]
    TooLarge {
        /// serialized size in bytes
        got: usize,
        /// limit in bytes
        limit: usize,
    },
    /// Merkle root in the header differs from the transactions'.
    #[error("bad-txnmrklroot: header has {header} but transactions give {computed}")]
    BadMerkleRoot {
        /// merkle root from the header (display hex)
        header: String,
        /// merkle root computed (display hex)
        computed: String,
    },
    /// The transaction list repeats a pair (CVE-2012-2459).
    #[error("bad-txns-duplicate: merkle tree is mutated (CVE-2012-2459)")]
    MutatedMerkle,
    /// Transaction 0 is not a well-formed coinbase.
    #[error("bad-cb-missing: {0}")]
    BadCoinbase(String),
    /// Coinbase height differs from the block's height (as BIP34).
    #[error("bad-cb-height: coinbase says height {got} but block is at {expected}")]
    BadCoinbaseHeight {
        /// height in the coinbase
        got: u32,
        /// height of the block
        expected: u32,
    },
}

impl BlockError {
    /// The short rule name (Core's reject reason).
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            BlockError::Header(h) => h.rule(),
            BlockError::Decode(_) => "bad-blk-encoding",
            BlockError::NoTransactions | BlockError::TooLarge { .. } => "bad-blk-length",
            BlockError::BadMerkleRoot { .. } => "bad-txnmrklroot",
            BlockError::MutatedMerkle => "bad-txns-duplicate",
            BlockError::BadCoinbase(_) => "bad-cb-missing",
            BlockError::BadCoinbaseHeight { .. } => "bad-cb-height",
        }
    }
}
