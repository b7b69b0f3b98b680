//! Header and block validation against a parent's context.
//!
//! Order follows Core: context-free proof of work first (`CheckBlockHeader`
//! / `CheckProofOfWork`), then the contextual rules
//! (`ContextualCheckBlockHeader`): difficulty bits, median-time-past,
//! BIP94 time-warp, and the future limit.

use super::block::{Block, Coinbase};
use super::difficulty::next_work_required;
use super::error::{BlockError, HeaderError};
use super::header::BlockHeader;
use super::params::Params;
use super::pow::{CompactTarget, Target};
use super::time::{
    median_time_past, MAX_FUTURE_BLOCK_TIME_SECS, MAX_TIMEWARP_SECS, MEDIAN_TIME_SPAN,
};

/// What the rules need to know of an ancestor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AncestorInfo {
    /// Timestamp, Unix seconds.
    pub time: u32,
    /// Compact target.
    pub bits: CompactTarget,
}

/// The branch a new header builds on, seen from its parent (the view's tip).
/// Implemented by the chain store (a walk over parent links) and by
/// [`SliceView`] (a contiguous run of headers, e.g. a headers file).
pub trait ChainView {
    /// Height of the parent of the header being checked.
    fn tip_height(&self) -> u32;
    /// Time and bits of the ancestor at `height` (`<= tip_height`) on this
    /// branch; `None` if the view does not reach that far back.
    fn ancestor(&self, height: u32) -> Option<AncestorInfo>;
    /// Median time of the last 11 blocks ending at the tip (fewer near
    /// genesis), as Core's `GetMedianTimePast`.
    fn median_time_past(&self) -> u32 {
        let tip = self.tip_height();
        let mut times = [0u32; MEDIAN_TIME_SPAN];
        let mut n = 0;
        for i in 0..MEDIAN_TIME_SPAN as u32 {
            if i > tip {
                break;
            }
            match self.ancestor(tip - i) {
                Some(a) => {
                    times[n] = a.time;
                    n += 1;
                }
                None => break,
            }
        }
        median_time_past(&times[..n])
    }
    /// Latest timestamp among the same (up to) 11 blocks. A time above it
    /// is above their median too, so the median is only needed when a
    /// header's time is not above this.
    fn max_time_past(&self) -> u32 {
        let tip = self.tip_height();
        (0..MEDIAN_TIME_SPAN as u32)
            .take_while(|&i| i <= tip)
            .filter_map(|i| self.ancestor(tip - i))
            .map(|a| a.time)
            .max()
            .unwrap_or(0)
    }
}

/// A [`ChainView`] over a contiguous slice of headers: `headers[i]` is at
/// height `base_height + i`, and the last one is the parent.
#[derive(Clone, Copy, Debug)]
pub struct SliceView<'a> {
    /// Headers, oldest first; the last is the tip.
    pub headers: &'a [BlockHeader],
    /// Height of `headers[0]`.
    pub base_height: u32,
}

impl ChainView for SliceView<'_> {
    fn tip_height(&self) -> u32 {
        self.base_height + self.headers.len() as u32 - 1
    }
    fn ancestor(&self, height: u32) -> Option<AncestorInfo> {
        let idx = height.checked_sub(self.base_height)? as usize;
        self.headers.get(idx).map(|h| AncestorInfo {
            time: h.time,
            bits: h.bits,
        })
    }
    fn median_time_past(&self) -> u32 {
        let n = self.headers.len().min(MEDIAN_TIME_SPAN);
        let mut times = [0u32; MEDIAN_TIME_SPAN];
        for (slot, h) in times
            .iter_mut()
            .zip(&self.headers[self.headers.len() - n..])
        {
            *slot = h.time;
        }
        median_time_past(&times[..n])
    }
    fn max_time_past(&self) -> u32 {
        let n = self.headers.len().min(MEDIAN_TIME_SPAN);
        self.headers[self.headers.len() - n..]
            .iter()
            .map(|h| h.time)
            .max()
            .unwrap_or(0)
    }
}

/// Context-free proof of work (Core `CheckProofOfWork`): `bits` decodes,
/// the target is within the pow limit, and the hash meets it. Returns the
/// target.
///
/// # Errors
/// [`HeaderError::BadCompact`], [`HeaderError::TargetAboveLimit`] or
/// [`HeaderError::HighHash`].
pub fn check_proof_of_work(
    header: &BlockHeader,
    pow_limit: &Target,
) -> Result<Target, HeaderError> {
    check_proof_of_work_hash(header, &header.block_hash(), pow_limit)
}

/// [`check_proof_of_work`] with the header's hash already computed.
///
/// # Errors
/// As [`check_proof_of_work`].
pub fn check_proof_of_work_hash(
    header: &BlockHeader,
    hash: &crate::consensus::BlockHash,
    pow_limit: &Target,
) -> Result<Target, HeaderError> {
    let target = Target::from_compact(header.bits)?;
    if target > *pow_limit {
        return Err(HeaderError::TargetAboveLimit {
            target: target.to_hex(),
            limit: pow_limit.to_hex(),
        });
    }
    if !target.is_met_by(hash) {
        return Err(HeaderError::HighHash {
            hash: hash.to_hex(),
            target: target.to_hex(),
        });
    }
    Ok(target)
}

/// Full header check of `header` on top of `parent` (the view's tip):
/// proof of work, difficulty bits, time > median-time-past, BIP94 where the
/// network enforces it, and time <= `now_secs` + 2 h. The caller has
/// already matched `prev_blockhash` to the parent.
///
/// # Errors
/// The first [`HeaderError`] found.
pub fn check_header(
    params: &Params,
    header: &BlockHeader,
    parent: &dyn ChainView,
    now_secs: u64,
) -> Result<Target, HeaderError> {
    let target = check_proof_of_work(header, &params.pow_limit)?;
    check_header_context(params, header, parent, now_secs)?;
    Ok(target)
}

/// The contextual half of [`check_header`] (no proof of work): difficulty
/// bits, median-time-past, BIP94, future limit.
///
/// # Errors
/// The first [`HeaderError`] found.
pub fn check_header_context(
    params: &Params,
    header: &BlockHeader,
    parent: &dyn ChainView,
    now_secs: u64,
) -> Result<(), HeaderError> {
    let expected = next_work_required(params, parent).unwrap_or(params.pow_limit_bits);
    if header.bits != expected {
        return Err(HeaderError::BadDiffBits {
            got: header.bits.0,
            expected: expected.0,
        });
    }
    // time > max(previous 11) implies time > their median: sort only when not.
    if header.time <= parent.max_time_past() {
        let mtp = parent.median_time_past();
        if header.time <= mtp {
            return Err(HeaderError::TimeTooOld {
                time: header.time,
                mtp,
            });
        }
    }
    if params.enforce_bip94 {
        if let super::params::DifficultyRule::Bitcoin { interval, .. } = params.difficulty {
            let height = parent.tip_height() + 1;
            if height.is_multiple_of(interval) {
                if let Some(prev) = parent.ancestor(height - 1) {
                    if header.time < prev.time.saturating_sub(MAX_TIMEWARP_SECS) {
                        return Err(HeaderError::TimeWarp {
                            time: header.time,
                            prev_time: prev.time,
                        });
                    }
                }
            }
        }
    }
    if u64::from(header.time) > now_secs + MAX_FUTURE_BLOCK_TIME_SECS {
        return Err(HeaderError::TimeTooNew {
            time: header.time,
            now: now_secs,
        });
    }
    Ok(())
}

/// Body checks of a block at `height` (Core `CheckBlock` plus BIP34's
/// height-in-coinbase): size limit, merkle root, no mutation
/// ([`Block::check_body`]), then [`check_block_at_height`].
///
/// # Errors
/// The first [`BlockError`] found.
pub fn check_block(params: &Params, block: &Block, height: u32) -> Result<(), BlockError> {
    block.check_body(params.max_block_bytes)?;
    check_block_at_height(params, block, height)
}

/// The body rules that need the block's height, for a block whose
/// [`Block::check_body`] already passed: on powchain's networks a
/// well-formed coinbase carrying `height` (as BIP34) and no transaction
/// above the size limit.
///
/// # Errors
/// [`BlockError::BadCoinbaseHeight`], [`BlockError::TooLarge`] or a
/// coinbase decoding error.
pub fn check_block_at_height(
    params: &Params,
    block: &Block,
    height: u32,
) -> Result<(), BlockError> {
    if params.mining_allowed {
        let cb = Coinbase::decode(&block.txdata[0])?;
        if cb.height != height {
            return Err(BlockError::BadCoinbaseHeight {
                got: cb.height,
                expected: height,
            });
        }
        if let Some(big) = block
            .txdata
            .iter()
            .find(|tx| tx.len() > params.max_tx_bytes)
        {
            return Err(BlockError::TooLarge {
                got: big.len(),
                limit: params.max_tx_bytes,
            });
        }
    }
    Ok(())
}
