//! SHA-256d nonce scanning: the miner's hot loop.
//!
//! A [`ScanInput`] is built once per header template: the midstate (the
//! first 64 header bytes compressed once), the three nonce-independent
//! words of the second block, and the target. A backend then hashes nonces
//! `start..start+count` and returns every nonce whose sha256d meets the
//! target. Per nonce only what depends on the nonce is computed; the final
//! hash's most significant word is tested first and the last rounds are
//! skipped unless it passes (then the candidate is confirmed with the
//! reference implementation).
//!
//! Backends (chosen at run time, each selectable by name):
//! - `sha-ni`: x86 SHA extensions, two interleaved nonces (61
//!   `sha256rnds2` per nonce; see [`shani::probe_sha_unit`] for the
//!   ceiling that sets).
//! - `avx2`: eight nonces in 256-bit lanes.
//! - `scalar`: portable Rust, runs everywhere.

use std::fmt;
use std::str::FromStr;

use crate::consensus::pow::Target;
use crate::consensus::{sha256d, BlockHash};

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(all(target_arch = "x86_64", feature = "avx512"))]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
mod lanes;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod shani;

/// SHA-256 initial hash value (FIPS 180-4, 5.3.3).
pub const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// SHA-256 round constants (FIPS 180-4, 4.2.2).
pub const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Everything a backend needs for one header template, computed once.
#[derive(Clone, Debug)]
pub struct ScanInput {
    /// The 80-byte header; bytes 76..80 (the nonce) are ignored.
    pub header: [u8; 80],
    /// SHA-256 state after compressing header bytes 0..64.
    pub midstate: [u32; 8],
    /// Big-endian words of header bytes 64..76 (merkle tail, time, bits).
    pub tail: [u32; 3],
    /// The target a solution's hash must meet.
    pub target: Target,
    /// Most significant 32 bits of the target: a hash whose top word
    /// (`swap_bytes(H7)`) is above this fails without further work.
    pub target_top: u32,
    /// State (a..h) of the second block after rounds 0..=3 computed with
    /// the nonce word W3 = 0. W3 enters round 3 only through T1, which is
    /// added to both `a` and `e`, so the real state for a nonce is this one
    /// with `a` and `e` each plus `swap_bytes(nonce)`: per nonce, rounds
    /// 0..=3 cost two additions.
    pub round3_state: [u32; 8],
}

/// FIPS 180-4 4.1.2: the big sigma of `a` (rotations 2, 13, 22).
#[inline(always)]
pub(crate) fn big_sigma0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}

/// FIPS 180-4 4.1.2: the big sigma of `e` (rotations 6, 11, 25).
#[inline(always)]
pub(crate) fn big_sigma1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}

/// FIPS 180-4 4.1.2: the small sigma σ0 of the message schedule
/// (rotations 7, 18, shift 3).
#[inline(always)]
pub(crate) fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

/// FIPS 180-4 4.1.2: the small sigma σ1 of the message schedule
/// (rotations 17, 19, shift 10).
#[inline(always)]
pub(crate) fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

/// FIPS 180-4 4.1.2: Ch(e, f, g).
#[inline(always)]
pub(crate) fn ch(e: u32, f: u32, g: u32) -> u32 {
    (e & f) ^ (!e & g)
}

/// One SHA-256 round (FIPS 180-4 6.2.2 step 3) on state `s` (a..h) with
/// round index `t` and message word `w`.
#[inline(always)]
pub(crate) fn round(s: &mut [u32; 8], t: usize, w: u32) {
    let [a, b, c, d, e, f, g, h] = *s;
    let t1 = h
        .wrapping_add(big_sigma1(e))
        .wrapping_add(ch(e, f, g))
        .wrapping_add(K[t])
        .wrapping_add(w);
    let t2 = big_sigma0(a).wrapping_add((a & b) ^ (a & c) ^ (b & c));
    *s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
}

impl ScanInput {
    /// Precomputes the midstate and fixed words for `header` at `target`.
    #[must_use]
    pub fn new(header: [u8; 80], target: Target) -> ScanInput {
        let mut midstate = IV;
        let mut block = [0u8; 64];
        block.copy_from_slice(&header[..64]);
        sha2::block_api::compress256(&mut midstate, &[block]);
        let w =
            |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let top: ruint::aliases::U256 = target.to_u256() >> 224usize;
        let tail = [w(64), w(68), w(72)];
        let mut round3_state = midstate;
        for (t, &w) in tail.iter().chain(&[0]).enumerate() {
            round(&mut round3_state, t, w);
        }
        ScanInput {
            header,
            midstate,
            tail,
            target,
            target_top: top.to::<u32>(),
            round3_state,
        }
    }

    /// Reference check of one nonce with the `sha2` crate: the full sha256d
    /// and the full 256-bit comparison.
    #[must_use]
    pub fn confirm(&self, nonce: u32) -> Option<BlockHash> {
        let mut h = self.header;
        h[76..80].copy_from_slice(&nonce.to_le_bytes());
        let hash = BlockHash(sha256d(&h));
        self.target.is_met_by(&hash).then_some(hash)
    }
}

/// Result of scanning a nonce range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Nonces hashed (always the full count asked for).
    pub hashes: u64,
    /// Nonces whose sha256d meets the target, ascending.
    pub solutions: Vec<u32>,
}

/// Seconds [`Backend::auto`] times each backend for.
pub const PLAN_SECONDS: f64 = 0.006;

/// Nonces per timed call in [`Backend::plan`]: about 0.15 ms on the SHA-NI
/// kernels, 2.4 ms on the scalar one.
const PLAN_CHUNK: u32 = 4096;

/// What [`Backend::plan`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The fastest backend.
    pub chosen: Backend,
    /// Every available backend with its one-thread rate, H/s.
    pub timings: Vec<(Backend, f64)>,
}

/// A hashing backend.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Backend {
    /// Portable Rust; runs on every CPU.
    Scalar,
    /// x86-64 SHA extensions (SHA-NI), two interleaved nonces.
    ShaNi,
    /// SHA-NI, three interleaved nonces.
    ShaNi3,
    /// SHA-NI, four interleaved nonces.
    ShaNi4,
    /// x86-64 AVX2, eight nonces per instruction.
    Avx2,
    /// x86-64 AVX-512F, sixteen nonces per instruction; only in builds
    /// with the `avx512` cargo feature, refused elsewhere.
    Avx512,
}

/// A hashing backend that cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// No backend of that name.
    #[error(transparent)]
    Unknown(#[from] crate::value::ValueError),
    /// Compiled out: the AVX-512 kernel is built only with cargo feature
    /// `avx512` (see README, Miner).
    #[error("backend {0} is not in this build (cargo feature `avx512`, see README, Miner)")]
    NotBuilt(Backend),
    /// The CPU lacks the instructions (see `/proc/cpuinfo` flags).
    #[error("backend {0} is not supported by this CPU")]
    NotOnThisCpu(Backend),
}

impl Backend {
    /// Every backend this build knows, fastest first.
    pub const ALL: [Backend; 6] = [
        Backend::ShaNi,
        Backend::ShaNi3,
        Backend::ShaNi4,
        Backend::Avx512,
        Backend::Avx2,
        Backend::Scalar,
    ];

    /// The name used on the command line.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::ShaNi => "sha-ni",
            Backend::ShaNi3 => "sha-ni-3",
            Backend::ShaNi4 => "sha-ni-4",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
        }
    }

    /// Nonces hashed side by side: the SHA-NI kernels' stream count, the
    /// SIMD backends' lane count, 1 for scalar.
    #[must_use]
    pub fn streams(&self) -> usize {
        match self {
            Backend::Scalar => 1,
            Backend::ShaNi => 2,
            Backend::ShaNi3 => 3,
            Backend::ShaNi4 => 4,
            Backend::Avx2 => 8,
            Backend::Avx512 => 16,
        }
    }

    /// Whether this CPU can run the backend.
    #[must_use]
    pub fn is_available(&self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::ShaNi | Backend::ShaNi3 | Backend::ShaNi4 => shani::is_supported(),
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => avx2::is_supported(),
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Backend::Avx512 => avx512::is_supported(),
            #[cfg(not(all(target_arch = "x86_64", feature = "avx512")))]
            Backend::Avx512 => false,
            #[cfg(not(target_arch = "x86_64"))]
            Backend::ShaNi | Backend::ShaNi3 | Backend::ShaNi4 | Backend::Avx2 => false,
        }
    }

    /// The backends this CPU can run, fastest first.
    #[must_use]
    pub fn available() -> Vec<Backend> {
        Self::ALL
            .into_iter()
            .filter(Backend::is_available)
            .collect()
    }

    /// The fastest backend on this CPU, chosen once per process by
    /// [`Backend::plan`] (like FFTW's planner: measured, not assumed),
    /// timed on a template of the miner's shape (any header: a kernel's
    /// speed does not depend on the header's bytes, and at a real target
    /// the early exit rejects all but about one nonce in 2^32). Costs about
    /// 30 ms at the first call.
    #[must_use]
    pub fn auto() -> Backend {
        static CHOICE: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
        *CHOICE.get_or_init(|| {
            let mut header = [0u8; 80];
            header[..4].copy_from_slice(&0x2000_0000u32.to_le_bytes());
            header[72..76].copy_from_slice(&0x1d00_ffffu32.to_le_bytes());
            let target = Target::from_compact(
                crate::consensus::pow::CompactTarget::from_consensus(0x1d00_ffff),
            )
            .expect("mainnet's first target is valid");
            let plan = Backend::plan(&ScanInput::new(header, target), PLAN_SECONDS);
            tracing::debug!(?plan, "miner backend chosen by measurement");
            plan.chosen
        })
    }

    /// Times every backend this CPU runs on `input` for about `seconds`
    /// each (best of three runs of a third of it, after a warm-up) and
    /// picks the fastest.
    #[must_use]
    pub fn plan(input: &ScanInput, seconds: f64) -> Plan {
        let rate = |b: Backend, secs: f64| {
            let started = std::time::Instant::now();
            let mut hashes = 0u64;
            let mut nonce = 0u32;
            while started.elapsed().as_secs_f64() < secs {
                let r = b.scan(input, nonce, PLAN_CHUNK);
                hashes += r.hashes;
                nonce = nonce.wrapping_add(PLAN_CHUNK);
            }
            hashes as f64 / started.elapsed().as_secs_f64()
        };
        let available = Backend::available();
        let _ = rate(available[0], seconds / 3.0); // clock ramp
        let timings: Vec<(Backend, f64)> = available
            .into_iter()
            .map(|b| {
                let best = (0..3).map(|_| rate(b, seconds / 3.0)).fold(0.0, f64::max);
                (b, best)
            })
            .collect();
        let chosen = timings
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(Backend::Scalar, |(b, _)| b);
        Plan { chosen, timings }
    }

    /// The backend, or the clean refusal every caller gives (config, CLI)
    /// where this CPU cannot run it: `scan` on such a backend would panic.
    ///
    /// # Errors
    /// [`BackendError`] naming the backend.
    pub fn require(self) -> Result<Backend, BackendError> {
        if self.is_available() {
            Ok(self)
        } else if self == Backend::Avx512 && !cfg!(feature = "avx512") {
            Err(BackendError::NotBuilt(self))
        } else {
            Err(BackendError::NotOnThisCpu(self))
        }
    }

    /// Hashes nonces `start .. start + count` (wrapping is not allowed:
    /// the range is cut after `u32::MAX`, which is hashed).
    #[must_use]
    pub fn scan(&self, input: &ScanInput, start: u32, count: u32) -> ScanResult {
        // Nonces left from `start` through u32::MAX inclusive: 2^32 - start.
        let left = (1u64 << 32) - u64::from(start);
        let count = u64::from(count).min(left) as u32;
        let mut solutions = Vec::new();
        match self {
            Backend::Scalar => scalar::scan(input, start, count, &mut solutions),
            #[cfg(target_arch = "x86_64")]
            Backend::ShaNi | Backend::ShaNi3 | Backend::ShaNi4 => {
                assert!(
                    shani::is_supported(),
                    "sha-ni backend on a CPU without SHA-NI"
                );
                shani::scan(input, self.streams(), start, count, &mut solutions);
            }
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 => {
                assert!(avx2::is_supported(), "avx2 backend on a CPU without AVX2");
                avx2::scan(input, start, count, &mut solutions);
            }
            #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
            Backend::Avx512 => avx512::scan(input, start, count, &mut solutions),
            #[cfg(not(all(target_arch = "x86_64", feature = "avx512")))]
            Backend::Avx512 => panic!("the avx512 backend is not in this build"),
            #[cfg(not(target_arch = "x86_64"))]
            Backend::ShaNi | Backend::ShaNi3 | Backend::ShaNi4 | Backend::Avx2 => {
                unreachable!("x86-64 backends are never available elsewhere")
            }
        }
        ScanResult {
            hashes: u64::from(count),
            solutions,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "scalar" => Ok(Backend::Scalar),
            "sha-ni" | "shani" | "sha-ni-2" => Ok(Backend::ShaNi),
            "sha-ni-3" => Ok(Backend::ShaNi3),
            "sha-ni-4" => Ok(Backend::ShaNi4),
            "avx2" => Ok(Backend::Avx2),
            "auto" => Ok(Backend::auto()),
            "avx512" if cfg!(feature = "avx512") => Ok(Backend::Avx512),
            "avx512" => Err(BackendError::NotBuilt(Backend::Avx512)),
            other => Err(BackendError::Unknown(crate::value::ValueError::form(
                other,
                "a backend: auto, sha-ni, sha-ni-3, sha-ni-4, avx2, avx512 or scalar",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::pow::CompactTarget;
    use rand::{Rng, SeedableRng};

    /// Whether a test can run `backend` here. Where the CPU lacks it, the
    /// test instead checks that the backend is refused cleanly: `require`
    /// names it, `available` leaves it out and `auto` never picks it.
    fn runs_here(backend: Backend) -> bool {
        if backend.is_available() {
            return true;
        }
        let err = backend.require().unwrap_err().to_string();
        assert!(err.contains(backend.name()), "{err}");
        assert!(!Backend::available().contains(&backend));
        assert_ne!(Backend::auto(), backend);
        false
    }

    /// Every available backend against the reference sha256d on random
    /// headers and nonces, with a target easy enough (about 1 in 16) that
    /// both the early exit and the full check are exercised.
    #[test]
    fn backends_agree_with_reference_sha256d() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let easy = Target::from_compact(CompactTarget::from_consensus(0x200fffff)).unwrap();
        for backend in Backend::ALL {
            if !runs_here(backend) {
                continue;
            }
            for _ in 0..20 {
                let mut header = [0u8; 80];
                rng.fill(&mut header[..]);
                let input = ScanInput::new(header, easy);
                let start: u32 = rng.random_range(0..u32::MAX - 1000);
                let count = rng.random_range(1..300);
                let got = backend.scan(&input, start, count);
                let want: Vec<u32> = (start..start + count)
                    .filter(|&n| input.confirm(n).is_some())
                    .collect();
                assert_eq!(got.solutions, want, "backend {backend}");
                assert_eq!(got.hashes, u64::from(count));
            }
        }
    }

    #[test]
    fn backends_find_mainnet_genesis_nonce() {
        let genesis = crate::consensus::Params::mainnet().genesis.header;
        let target = Target::from_compact(genesis.bits).unwrap();
        let input = ScanInput::new(genesis.encode(), target);
        for backend in Backend::available() {
            let r = backend.scan(&input, genesis.nonce - 5000, 10_000);
            assert_eq!(r.solutions, vec![genesis.nonce], "backend {backend}");
        }
    }

    /// The probe's figures are related as they must be on any CPU: a
    /// dependent chain is never faster per instruction than four
    /// independent ones. (Relations only; speeds are for `powchain bench`.)
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sha_unit_probe_is_consistent() {
        let probe = shani::probe_sha_unit(200_000);
        assert_eq!(probe.is_some(), shani::is_supported());
        if !runs_here(Backend::ShaNi) {
            return;
        }
        let u = probe.expect("SHA-NI is present");
        assert!(u.interval_ns > 0.0 && u.latency_ns > 0.0, "{u:?}");
        assert!(u.interval_ns <= u.latency_ns * 1.25, "{u:?}");
        assert!(u.streams_to_saturate() >= 1);
        let c = u.ceiling_hashes_per_sec();
        assert!((c * u.interval_ns * 61.0 / 1e9 - 1.0).abs() < 1e-9);
        // The op mix holds the 61 rnds2 and more: never faster than they
        // are alone (10% for timing noise).
        assert!(u.op_mix_ns > 0.0, "{u:?}");
        assert!(u.op_mix_ceiling_hashes_per_sec() <= c * 1.1, "{u:?}");
    }

    /// The planner times every available backend and keeps the fastest
    /// it timed; `auto` is one of the available backends.
    #[test]
    fn the_planner_keeps_the_fastest_backend_it_timed() {
        let input = ScanInput::new([3u8; 80], Target::from_u256(ruint::aliases::U256::ZERO));
        let plan = Backend::plan(&input, 0.003);
        let names: Vec<Backend> = plan.timings.iter().map(|t| t.0).collect();
        assert_eq!(names, Backend::available());
        assert!(plan.timings.iter().all(|t| t.1 > 0.0), "{plan:?}");
        let best = plan.timings.iter().map(|t| t.1).fold(0.0, f64::max);
        assert!(plan.timings.contains(&(plan.chosen, best)), "{plan:?}");
        assert!(Backend::available().contains(&Backend::auto()));
    }

    #[test]
    fn range_end_is_clamped() {
        let input = ScanInput::new(
            [0u8; 80],
            Target::from_compact(CompactTarget::from_consensus(0x1d00ffff)).unwrap(),
        );
        // u32::MAX - 3 ..= u32::MAX: four nonces, the last one included.
        for backend in Backend::available() {
            let r = backend.scan(&input, u32::MAX - 3, 100);
            assert_eq!(r.hashes, 4, "{backend}");
        }
    }

    #[test]
    fn the_top_nonce_is_hashed_and_found() {
        // Any header: with the easiest possible target every nonce is a
        // solution, so the scan must report u32::MAX itself.
        let input = ScanInput::new([7u8; 80], Target::from_u256(ruint::aliases::U256::MAX));
        for backend in Backend::available() {
            let r = backend.scan(&input, u32::MAX - 1, 10);
            assert_eq!(r.solutions, vec![u32::MAX - 1, u32::MAX], "{backend}");
        }
    }
}
