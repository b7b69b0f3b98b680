//! Share difficulty: the targets a share is judged by, and the variable
//! difficulty that aims each connection at a number of shares a minute.
//!
//! Pools define difficulty 1 as the target of bits `1d00ffff`
//! (`0xffff · 2^208`); cpuminer-opt divides `2^224` instead. A share at
//! difficulty `D` is accepted when its hash meets `2^224 / D`, the easier
//! of the two, so a miner of either convention never has a good share
//! refused. A share is expected every `D · 2^32` hashes.

use std::time::{Duration, Instant};

use ruint::aliases::U256;

use crate::consensus::Target;

/// Smallest share difficulty: at `2^-32` every hash meets `2^224 / D`.
pub const MIN_DIFFICULTY: f64 = 1.0 / 4_294_967_296.0;
/// Difficulty of a connection's first job when the difficulty varies:
/// a share every ~4 M hashes, well under a second for one CPU thread;
/// the first retarget corrects it within seconds.
pub const START_DIFFICULTY: f64 = 1.0 / 1024.0;
/// Default aim of the variable difficulty, shares a minute per connection.
pub const DEFAULT_SHARES_PER_MINUTE: f64 = 20.0;
/// Longest time between two retargets.
const RETARGET_MAX: Duration = Duration::from_secs(30);
/// Shortest time between two retargets, with at least [`RETARGET_SHARES`].
const RETARGET_MIN: Duration = Duration::from_secs(5);
/// Shares that allow a retarget after [`RETARGET_MIN`].
const RETARGET_SHARES: u32 = 10;
/// Largest change of one retarget (either way).
const MAX_STEP: f64 = 16.0;

/// `2^224 / d` (cpuminer-opt's share target; the pools' `1d00ffff`
/// convention gives a target 65535/65536 of it), saturating at `2^256 -
/// 1`. `d` must be positive and finite: [`Difficulty`] holds it so.
#[must_use]
pub fn share_target(d: f64) -> Target {
    let x = 2f64.powi(224) / d;
    Target::from_u256(f64_to_u256(x))
}

/// The difficulty of `target` in the `2^224` convention (`2^224 / target`).
#[must_use]
pub fn difficulty_of(target: &Target) -> f64 {
    // (Not from `expected_hashes`: the work is an integer, 1 part in
    // 10^6 off for the small works of a CPU testnet.)
    let value = target
        .to_u256()
        .as_limbs()
        .iter()
        .rev()
        .fold(0.0f64, |acc, &limb| {
            acc * 18_446_744_073_709_551_616.0 + limb as f64
        });
    2f64.powi(224) / value
}

/// The largest share difficulty worth sending for a block target: any
/// harder and a share that is a block would not be submitted. The pools'
/// convention's target at this difficulty is the block target itself.
#[must_use]
pub fn max_difficulty(block_target: &Target) -> f64 {
    (difficulty_of(block_target) * 65535.0 / 65536.0).max(MIN_DIFFICULTY)
}

/// Whether a share of hash value `hash` (the little-endian 256-bit
/// integer) counts at difficulty `d`: it meets `2^224 / d`, or the block
/// target (never harder than the block).
#[must_use]
pub fn meets(hash: &crate::consensus::BlockHash, d: f64, block_target: &Target) -> bool {
    share_target(d).is_met_by(hash) || block_target.is_met_by(hash)
}

fn f64_to_u256(x: f64) -> U256 {
    if x.is_nan() || x < 1.0 {
        return U256::ZERO;
    }
    if x >= 2f64.powi(256) {
        return U256::MAX;
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i64 - 1075;
    let mantissa = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
    let m = U256::from(mantissa);
    if exp >= 0 {
        m << (exp as usize)
    } else {
        m >> ((-exp) as usize)
    }
}

/// A connection's share difficulty: fixed (`--stratum-difficulty`), or
/// varied to aim at `per_minute` shares a minute.
#[derive(Debug, Clone)]
pub struct Difficulty {
    current: f64,
    fixed: bool,
    per_minute: f64,
    window_start: Instant,
    shares: u32,
}

impl Difficulty {
    /// A difficulty starting at `fixed` (held) or at [`START_DIFFICULTY`]
    /// (varied), capped at `max` ([`max_difficulty`] of the block target).
    #[must_use]
    pub fn new(fixed: Option<f64>, per_minute: f64, max: f64, now: Instant) -> Difficulty {
        let start = fixed.unwrap_or(START_DIFFICULTY);
        Difficulty {
            current: clamp(start, max),
            fixed: fixed.is_some(),
            per_minute,
            window_start: now,
            shares: 0,
        }
    }

    /// The difficulty the next job gets.
    #[must_use]
    pub fn current(&self) -> f64 {
        self.current
    }

    /// Caps the difficulty at `max` (a block target easier than it).
    pub fn cap(&mut self, max: f64) {
        self.current = clamp(self.current, max);
    }

    /// Counts an accepted share.
    pub fn on_share(&mut self) {
        self.shares = self.shares.saturating_add(1);
    }

    /// Re-aims the difficulty, at most every [`RETARGET_MAX`] and at least
    /// [`RETARGET_MIN`] apart (sooner with [`RETARGET_SHARES`] shares):
    /// `D · rate / aim`, at most ×16 or ÷16 a step, a quarter when no share
    /// came; a change under a factor 1.5 is not worth a new job. A fixed
    /// difficulty only follows a block target that became easier than it.
    /// Returns the new difficulty when it changed.
    pub fn retarget(&mut self, now: Instant, max: f64) -> Option<f64> {
        let old = self.current;
        if self.fixed {
            self.current = clamp(self.current, max);
            return (self.current != old).then_some(self.current);
        }
        let elapsed = now.saturating_duration_since(self.window_start);
        let due =
            elapsed >= RETARGET_MAX || (elapsed >= RETARGET_MIN && self.shares >= RETARGET_SHARES);
        if !due {
            let capped = clamp(old, max);
            self.current = capped;
            return (capped != old).then_some(capped);
        }
        let rate = f64::from(self.shares) * 60.0 / elapsed.as_secs_f64();
        let factor = if self.shares == 0 {
            0.25
        } else {
            (rate / self.per_minute).clamp(1.0 / MAX_STEP, MAX_STEP)
        };
        self.window_start = now;
        self.shares = 0;
        let next = if (1.0 / 1.5..=1.5).contains(&factor) {
            old
        } else {
            old * factor
        };
        self.current = clamp(next, max);
        (self.current != old).then_some(self.current)
    }
}

fn clamp(d: f64, max: f64) -> f64 {
    if d.is_finite() {
        d.max(MIN_DIFFICULTY).min(max.max(MIN_DIFFICULTY))
    } else {
        max.max(MIN_DIFFICULTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{BlockHash, CompactTarget};

    #[test]
    fn difficulty_one_targets_of_both_conventions() {
        // cpuminer-opt: 2^224.
        assert_eq!(share_target(1.0).to_u256(), U256::from(1u8) << 224);
        // The pools' 1d00ffff target is 0xffff/0x10000 of it.
        let pools = Target::from_compact(CompactTarget::from_consensus(0x1d00_ffff)).unwrap();
        assert!(pools < share_target(1.0));
        assert_eq!(share_target(2.0).to_u256(), U256::from(1u8) << 223);
        assert_eq!(share_target(0.5).to_u256(), U256::from(1u8) << 225);
        assert_eq!(share_target(MIN_DIFFICULTY).to_u256(), U256::MAX);
        // A fractional difficulty: 2^224 / 0.001 within f64's precision.
        let t = share_target(0.001).to_u256();
        let want = (U256::from(1u8) << 224) * U256::from(1000u32);
        let diff = if t > want { t - want } else { want - t };
        assert!(diff < want >> 50, "{t} vs {want}");
    }

    #[test]
    fn the_share_target_is_never_harder_than_the_block_target() {
        let block = Target::from_compact(CompactTarget::from_consensus(0x1e0b_aad0)).unwrap();
        let max = max_difficulty(&block);
        // At the cap, the pools' convention gives the block target.
        let pools = share_target(max).to_u256() / U256::from(65536u32) * U256::from(65535u32);
        let b = block.to_u256();
        let diff = if pools > b { pools - b } else { b - pools };
        assert!(diff < b >> 40, "{pools:x} vs {b:x} (max {max})");
        // A difficulty far above the block's still accepts a block.
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&block.to_u256().to_le_bytes::<32>());
        assert!(meets(&BlockHash(hash), 1e12, &block));
        let d = Difficulty::new(Some(1e12), 20.0, max, Instant::now());
        assert_eq!(d.current(), max);
    }

    #[test]
    fn vardiff_aims_at_the_share_rate() {
        let t0 = Instant::now();
        let mut d = Difficulty::new(None, 20.0, 1e9, t0);
        assert_eq!(d.current(), START_DIFFICULTY);
        // 100 shares in 5 s is 1,200 a minute: 60 times too many, one
        // step of 16.
        for _ in 0..100 {
            d.on_share();
        }
        assert_eq!(d.retarget(t0 + Duration::from_secs(4), 1e9), None);
        let up = d.retarget(t0 + Duration::from_secs(5), 1e9).unwrap();
        assert!((up - START_DIFFICULTY * 16.0).abs() < 1e-12);
        // 40 shares in 30 s is 80 a minute: ×4.
        for _ in 0..40 {
            d.on_share();
        }
        let up2 = d.retarget(t0 + Duration::from_secs(35), 1e9).unwrap();
        assert!((up2 - up * 4.0).abs() < 1e-12);
        // 12 in 30 s is 24 a minute: close enough, unchanged.
        for _ in 0..12 {
            d.on_share();
        }
        assert_eq!(d.retarget(t0 + Duration::from_secs(65), 1e9), None);
        // None in 30 s: a quarter.
        let down = d.retarget(t0 + Duration::from_secs(95), 1e9).unwrap();
        assert!((down - up2 / 4.0).abs() < 1e-12);
        // The block target caps it at once.
        assert_eq!(d.retarget(t0 + Duration::from_secs(96), 1e-6), Some(1e-6));
    }
}
