//! Difficulty rules: which `bits` the next block must carry.
//!
//! - [`bitcoin_next_bits`]: Bitcoin's 2016-block retarget, as Core's
//!   `GetNextWorkRequired` / `CalculateNextWorkRequired` (src/pow.cpp).
//! - [`asert_next_bits`]: a per-block exponential rule for local testnets,
//!   after aserti3-2d (Bitcoin Cash, Nov 2020; Jonathan Toomim, Mark Lundeberg).
//! - Fixed: regtest keeps its pow limit forever.

use ruint::aliases::U256;

use super::chain_view::ChainView;
use super::params::{DifficultyRule, Params};
use super::pow::{CompactTarget, Target};

/// The `bits` the block after `view`'s tip must carry.
///
/// Returns `None` only when the view lacks an ancestor that the rule needs
/// (a chain store bug, never a peer's fault).
#[must_use]
pub fn next_work_required(params: &Params, view: &dyn ChainView) -> Option<CompactTarget> {
    match params.difficulty {
        // Regtest's start bits are its pow limit; a fixed-difficulty
        // testnet holds its start bits.
        DifficultyRule::Fixed => Some(params.start_bits),
        DifficultyRule::Bitcoin {
            interval,
            target_timespan_secs,
        } => bitcoin_next_bits(params.pow_limit, interval, target_timespan_secs, view),
        DifficultyRule::Asert { half_life_secs } => asert_next_bits(
            params.pow_limit,
            params.start_bits,
            params.block_time_secs,
            half_life_secs,
            view,
        ),
    }
}

/// Bitcoin's retarget (Core `GetNextWorkRequired` without the testnet
/// min-difficulty exception). Off a boundary the parent's bits carry over.
/// At height `h` with `h % interval == 0` the window is the `interval`
/// blocks ending at the parent, so the timespan covers only `interval - 1`
/// intervals (the well-known off-by-one, kept for consensus); it is clamped
/// to `[timespan/4, timespan*4]`, the parent's target is scaled by it and
/// capped at the pow limit, then re-encoded with `GetCompact`.
#[must_use]
pub fn bitcoin_next_bits(
    pow_limit: Target,
    interval: u32,
    target_timespan_secs: u32,
    view: &dyn ChainView,
) -> Option<CompactTarget> {
    let parent_height = view.tip_height();
    let parent = view.ancestor(parent_height)?;
    if !(parent_height + 1).is_multiple_of(interval) {
        return Some(parent.bits);
    }
    let first = view.ancestor(parent_height + 1 - interval)?;
    Some(bitcoin_retarget(
        pow_limit,
        target_timespan_secs,
        parent.bits,
        parent.time,
        first.time,
    ))
}

/// Core's `CalculateNextWorkRequired`: the arithmetic of one retarget.
#[must_use]
pub fn bitcoin_retarget(
    pow_limit: Target,
    target_timespan_secs: u32,
    last_bits: CompactTarget,
    last_time: u32,
    first_time: u32,
) -> CompactTarget {
    let timespan = i64::from(target_timespan_secs);
    let actual = (i64::from(last_time) - i64::from(first_time)).clamp(timespan / 4, timespan * 4);
    let Ok(last) = Target::from_compact(last_bits) else {
        return pow_limit.to_compact();
    };
    let new = match last.to_u256().checked_mul(U256::from(actual as u64)) {
        Some(v) => v / U256::from(timespan as u64),
        None => pow_limit.to_u256(),
    };
    let new = if new > pow_limit.to_u256() {
        pow_limit.to_u256()
    } else {
        new
    };
    Target::from_u256(new).to_compact()
}

/// Per-block ASERT, relative form: the parent's target is scaled by
/// `2^((t_parent - t_grandparent - block_time) / half_life)`. Summed over
/// blocks this is aserti3-2d's absolute schedule (target doubles for every
/// `half_life` seconds the chain runs behind its ideal block times), without
/// needing the anchor block on every step. `2^x` for the fractional part
/// uses aserti3-2d's cubic approximation in 16.16 fixed point.
///
/// The first two blocks after genesis carry `start_bits` (the pow limit, or
/// the testnet's measured starting difficulty): genesis' time is a fixed
/// constant, not when a testnet starts.
#[must_use]
pub fn asert_next_bits(
    pow_limit: Target,
    start_bits: CompactTarget,
    block_time_secs: u32,
    half_life_secs: u32,
    view: &dyn ChainView,
) -> Option<CompactTarget> {
    let parent_height = view.tip_height();
    if parent_height < 2 {
        return Some(start_bits);
    }
    let parent = view.ancestor(parent_height)?;
    let grandparent = view.ancestor(parent_height - 1)?;
    let Ok(parent_target) = Target::from_compact(parent.bits) else {
        return Some(start_bits);
    };
    let time_diff = i64::from(parent.time) - i64::from(grandparent.time);
    let exponent: i64 =
        ((time_diff - i64::from(block_time_secs)) * 65536) / i64::from(half_life_secs.max(1));
    Some(asert_scale(parent_target, exponent, pow_limit).to_compact())
}

/// `target * 2^(exponent / 65536)`, clamped to `[1, pow_limit]`, with
/// aserti3-2d's integer approximation.
#[must_use]
pub fn asert_scale(target: Target, exponent: i64, pow_limit: Target) -> Target {
    let shifts = exponent >> 16;
    let frac = (exponent & 0xffff) as u64;
    // aserti3-2d: factor = 65536 + ((195766423245049*f + 971821376*f^2 + 5127*f^3 + 2^47) >> 48)
    let f = u128::from(frac);
    let poly = 195_766_423_245_049u128 * f
        + 971_821_376u128 * f * f
        + 5127u128 * f * f * f
        + (1u128 << 47);
    let factor = 65536u64 + (poly >> 48) as u64;
    // target * factor may exceed 256 bits near the limit: use 512-bit space.
    let wide = ruint::Uint::<512, 8>::from(target.to_u256()) * ruint::Uint::<512, 8>::from(factor);
    let shifted: ruint::Uint<512, 8> = if shifts < 0 {
        let s = (-shifts) as usize;
        if s >= 512 {
            ruint::Uint::<512, 8>::ZERO
        } else {
            wide >> s
        }
    } else {
        let s = shifts as usize;
        if s >= 256 {
            return pow_limit;
        }
        wide << s
    };
    let result: ruint::Uint<512, 8> = shifted >> 16usize;
    let limit = ruint::Uint::<512, 8>::from(pow_limit.to_u256());
    if result > limit {
        return pow_limit;
    }
    let v: U256 = U256::from_limbs_slice(&result.as_limbs()[..4]);
    if v.is_zero() {
        Target::from_u256(U256::from(1u8))
    } else {
        Target::from_u256(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit() -> Target {
        Target::from_compact(CompactTarget::from_consensus(0x1d00ffff)).unwrap()
    }

    #[test]
    fn first_mainnet_retarget_matches_block_32256() {
        // Height 32256 (README of tests/data): bits became 0x1d00d86a. Times of
        // heights 30240 and 32255 from the real headers.
        let got = bitcoin_retarget(
            limit(),
            1_209_600,
            CompactTarget::from_consensus(0x1d00ffff),
            1_262_152_739,
            1_261_130_161,
        );
        assert_eq!(got, CompactTarget::from_consensus(0x1d00d86a));
    }

    #[test]
    fn retarget_clamps_to_quarter_and_four_times() {
        let l = limit();
        let b = CompactTarget::from_consensus(0x1c654657);
        let fast = bitcoin_retarget(l, 1_209_600, b, 1000, 1000); // zero timespan -> /4
        let t = Target::from_compact(b).unwrap().to_u256();
        assert_eq!(fast, Target::from_u256(t / U256::from(4u8)).to_compact());
        let roomy = Target::from_compact(CompactTarget::from_consensus(0x1e0fffff)).unwrap();
        let slow = bitcoin_retarget(roomy, 1_209_600, b, 100_000_000, 0); // -> x4
        assert_eq!(slow, Target::from_u256(t * U256::from(4u8)).to_compact());
        // Never above the pow limit.
        assert_eq!(
            bitcoin_retarget(
                l,
                1_209_600,
                CompactTarget::from_consensus(0x1d00ffff),
                100_000_000,
                0
            ),
            CompactTarget::from_consensus(0x1d00ffff)
        );
    }

    #[test]
    fn asert_scale_halves_and_doubles() {
        let pl = Target::from_compact(CompactTarget::from_consensus(0x207fffff)).unwrap();
        let t = Target::from_u256(U256::from(1u64) << 200);
        assert_eq!(asert_scale(t, 0, pl), t);
        assert_eq!(asert_scale(t, 65536, pl).to_u256(), U256::from(1u64) << 201);
        assert_eq!(
            asert_scale(t, -65536, pl).to_u256(),
            U256::from(1u64) << 199
        );
        // Half a half-life: 2^0.5 within the approximation's precision.
        let half = asert_scale(t, 32768, pl).to_u256();
        let top: U256 = half >> 150usize;
        let ratio = top.to::<u64>() as f64 / (1u64 << 50) as f64;
        // aserti3-2d's cubic is within about 0.013% of 2^x.
        assert!(
            (ratio / std::f64::consts::SQRT_2 - 1.0).abs() < 1.3e-4,
            "{ratio}"
        );
        // Clamped at the limit and at one.
        assert_eq!(asert_scale(pl, 65536 * 10, pl), pl);
        assert_eq!(
            asert_scale(Target::from_u256(U256::from(1u8)), -65536 * 300, pl).to_u256(),
            U256::from(1u8)
        );
    }
}
