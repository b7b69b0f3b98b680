//! Header and block validation against a parent's context.
//!
//! Order follows Core: context-free proof of work first (`CheckBlockHeader`
//! / `CheckProofOfWork`), then the contextual rules
//! (`ContextualCheckBlockHeader`): difficulty bits, median-time-past,
//! BIP94 time-warp, and the future limit.

use super::block::{Block, Coinbase};
pub use super::chain_view::{AncestorInfo, ChainView, SliceView};
use super::difficulty::next_work_required;
use super::error::{BlockError, HeaderError};
use super::header::BlockHeader;
use super::params::Params;
use super::pow::Target;
use super::time::MAX_TIMEWARP_SECS;

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
            got: header.bits.to_consensus(),
            expected: expected.to_consensus(),
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
    if u64::from(header.time) > now_secs + params.max_future_block_time_secs {
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
/// [`BlockError::NoTransactions`], [`BlockError::BadCoinbaseHeight`],
/// [`BlockError::TooLarge`] or a coinbase decoding error.
pub fn check_block_at_height(
    params: &Params,
    block: &Block,
    height: u32,
) -> Result<(), BlockError> {
    if params.mining_allowed {
        let first = block.txdata.first().ok_or(BlockError::NoTransactions)?;
        let cb = Coinbase::decode(first)?;
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
