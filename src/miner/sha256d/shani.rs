//! SHA-NI backend: x86-64 SHA extensions, two nonces interleaved.
//!
//! `sha256rnds2` has a latency of several cycles, so one hash stream leaves
//! the SHA unit idle between dependent rounds; a second, independent stream
//! (the next nonce) fills those gaps. Whether a third stream helps depends
//! on the unit's throughput, which [`probe_sha_unit`] measures: on the
//! family-23 EPYC this was written on, latency is 1.66 ns and the unit
//! accepts one `sha256rnds2` per 0.83 ns whatever the number of streams
//! (2, 3 or 4), so two streams already saturate it, and three also need 18
//! live xmm registers of 16 and spill (15.4 against 17.6 MH/s). The state
//! is kept in the instruction's ABEF/CDGH register layout from the
//! midstate to the final check.
//!
//! Work cut per nonce ([`RNDS2_PER_NONCE`] = 61 `sha256rnds2` instead of 64):
//! - the midstate and rounds 0..=3 of the second block are computed once
//!   per template; the nonce word then only adds to `a` and `e`
//!   ([`ScanInput::round3_state`]);
//! - the word+constant sums of groups whose words are fixed (padding and
//!   length) are precomputed;
//! - the second hash stops after 62 of 64 rounds: the final word
//!   `H7 = IV[7] + f` is already known there, and only a hash whose top word
//!   meets the target's top word is confirmed with the reference code.
//!
//! Tried and dropped: rounds 58..=60 of the second hash in general-purpose
//! registers (following `e` only), which saves two more `sha256rnds2`, ran
//! at 16.0 against 18.1 MH/s here.

use core::arch::x86_64::*;

use super::{ScanInput, IV, K};

/// Nonces hashed side by side.
const STREAMS: usize = 2;

/// `sha256rnds2` instructions [`scan`] issues per nonce: 30 for rounds
/// 4..=63 of the first hash, 31 for rounds 0..=61 of the second.
pub const RNDS2_PER_NONCE: u32 = 61;

/// Timing of this CPU's `sha256rnds2`, measured by [`probe_sha_unit`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShaUnitTiming {
    /// Nanoseconds from one `sha256rnds2` to the next that depends on it.
    pub latency_ns: f64,
    /// Nanoseconds per `sha256rnds2` with four independent chains: the
    /// unit's issue interval.
    pub interval_ns: f64,
}

impl ShaUnitTiming {
    /// The fastest any SHA-NI scan with [`RNDS2_PER_NONCE`] instructions a
    /// nonce can run on one thread: `1e9 / (interval_ns * 61)` H/s.
    #[must_use]
    pub fn ceiling_hashes_per_sec(&self) -> f64 {
        1e9 / (self.interval_ns * f64::from(RNDS2_PER_NONCE))
    }

    /// Independent streams needed to keep the unit busy:
    /// `latency / interval`, rounded up.
    #[must_use]
    pub fn streams_to_saturate(&self) -> u32 {
        (self.latency_ns / self.interval_ns - 0.05).ceil().max(1.0) as u32
    }
}

/// Measures the latency and issue interval of `sha256rnds2` with
/// `iterations` pairs of instructions per chain (2,000,000 take about
/// 20 ms). Returns `None` when the CPU lacks SHA-NI.
#[must_use]
pub fn probe_sha_unit(iterations: u64) -> Option<ShaUnitTiming> {
    if !is_supported() {
        return None;
    }
    let time = |chains: u32| {
        let started = std::time::Instant::now();
        // SAFETY: `is_supported()` above proves the CPU has the SHA and SSE
        // features `rnds2_chains` is compiled for; it touches no memory.
        let sink = unsafe { rnds2_chains(chains, iterations) };
        std::hint::black_box(sink);
        started.elapsed().as_secs_f64() * 1e9 / (2.0 * iterations as f64 * f64::from(chains))
    };
    // Warm up (clock ramp), then keep the best of three of each.
    time(4);
    let best = |chains| (0..3).map(|_| time(chains)).fold(f64::INFINITY, f64::min);
    Some(ShaUnitTiming {
        latency_ns: best(1),
        interval_ns: best(4),
    })
}

/// `chains` (1 or 4) independent chains of `2 * iterations` dependent
/// `sha256rnds2`; returns a value derived from every chain.
#[target_feature(enable = "sha,sse2")]
unsafe fn rnds2_chains(chains: u32, iterations: u64) -> i32 {
    let k = _mm_set1_epi32(0x428a_2f98);
    let mut s: [__m128i; 8] = core::array::from_fn(|i| _mm_set1_epi32(i as i32));
    if chains == 1 {
        for _ in 0..iterations {
            s[1] = _mm_sha256rnds2_epu32(s[1], s[0], k);
            s[0] = _mm_sha256rnds2_epu32(s[0], s[1], k);
        }
    } else {
        for _ in 0..iterations {
            s[1] = _mm_sha256rnds2_epu32(s[1], s[0], k);
            s[3] = _mm_sha256rnds2_epu32(s[3], s[2], k);
            s[5] = _mm_sha256rnds2_epu32(s[5], s[4], k);
            s[7] = _mm_sha256rnds2_epu32(s[7], s[6], k);
            s[0] = _mm_sha256rnds2_epu32(s[0], s[1], k);
            s[2] = _mm_sha256rnds2_epu32(s[2], s[3], k);
            s[4] = _mm_sha256rnds2_epu32(s[4], s[5], k);
            s[6] = _mm_sha256rnds2_epu32(s[6], s[7], k);
        }
    }
    s.iter().fold(0, |acc, v| acc ^ _mm_cvtsi128_si32(*v))
}

/// Whether this CPU has the SHA extensions and the SSE levels used here.
#[must_use]
pub fn is_supported() -> bool {
    is_x86_feature_detected!("sha")
        && is_x86_feature_detected!("sse4.1")
        && is_x86_feature_detected!("ssse3")
}

/// Scans `start .. start + count`, pushing every solution to `out`.
///
/// # Panics
/// If the CPU lacks SHA-NI; [`super::Backend::scan`] checks first.
pub fn scan(input: &ScanInput, start: u32, count: u32, out: &mut Vec<u32>) {
    assert!(
        is_supported(),
        "SHA-NI scan on a CPU without SHA extensions"
    );
    // SAFETY: the assertion above proves the CPU supports every feature that
    // `scan_impl` is compiled for (sha, sse2, ssse3, sse4.1). `scan_impl` does
    // no pointer arithmetic: it touches memory only through safe Rust.
    unsafe { scan_impl(input, start, count, out) }
}

/// Converts a state in `a..h` order to the (ABEF, CDGH) register pair.
macro_rules! to_abef_cdgh {
    ($st:expr) => {{
        let st: &[u32; 8] = $st;
        let dcba = _mm_set_epi32(st[3] as i32, st[2] as i32, st[1] as i32, st[0] as i32);
        let hgfe = _mm_set_epi32(st[7] as i32, st[6] as i32, st[5] as i32, st[4] as i32);
        let badc = _mm_shuffle_epi32::<0xB1>(dcba);
        let efgh = _mm_shuffle_epi32::<0x1B>(hgfe);
        (
            _mm_alignr_epi8::<8>(badc, efgh),
            _mm_blend_epi16::<0xF0>(efgh, badc),
        )
    }};
}

/// Four rounds on each stream, `$k` the group's round constants. Each
/// stream is `(s0, s1, a, b, c, d)`: its ABEF and CDGH registers and its
/// four message registers rotated so that `a` holds the group's words.
/// `konst` runs a group whose words are template constants, with the
/// word+constant sums (`$lo`, and `$hi` shifted down) precomputed.
/// `sched` first extends the schedule: `a` (words t-16..t-13) becomes words
/// t..t+3 from `b` (t-12..), `c`/`d` (t-8.., t-4..).
macro_rules! quad {
    (sched; $k:expr; $( ($s0:ident, $s1:ident, $a:ident, $b:ident, $c:ident, $d:ident) ),* ) => {
        $(
            let t = _mm_sha256msg1_epu32($a, $b);
            let t = _mm_add_epi32(t, _mm_alignr_epi8::<4>($d, $c));
            $a = _mm_sha256msg2_epu32(t, $d);
        )*
        quad!(plain; $k; $( ($s0, $s1, $a, $b, $c, $d) ),*);
    };
    (konst; $lo:expr, $hi:expr; $( ($s0:ident, $s1:ident) ),* ) => {
        $(
            $s1 = _mm_sha256rnds2_epu32($s1, $s0, $lo);
            $s0 = _mm_sha256rnds2_epu32($s0, $s1, $hi);
        )*
    };
    (plain; $k:expr; $( ($s0:ident, $s1:ident, $a:ident, $b:ident, $c:ident, $d:ident) ),* ) => {
        $(
            let msg = _mm_add_epi32($a, $k);
            $s1 = _mm_sha256rnds2_epu32($s1, $s0, msg);
            $s0 = _mm_sha256rnds2_epu32($s0, $s1, _mm_shuffle_epi32::<0x0E>(msg));
        )*
    };
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn scan_impl(input: &ScanInput, start: u32, count: u32, out: &mut Vec<u32>) {
    let mut kk = [_mm_setzero_si128(); 16];
    for (g, k) in kk.iter_mut().enumerate() {
        *k = _mm_set_epi32(
            K[4 * g + 3] as i32,
            K[4 * g + 2] as i32,
            K[4 * g + 1] as i32,
            K[4 * g] as i32,
        );
    }
    let (mid_abef, mid_cdgh) = to_abef_cdgh!(&input.midstate);
    let (iv_abef, iv_cdgh) = to_abef_cdgh!(&IV);
    let (r3_abef, r3_cdgh) = to_abef_cdgh!(&input.round3_state);
    let lanes_ae = _mm_set_epi32(-1, 0, -1, 0);
    let t = input.tail;
    let w0 = _mm_set_epi32(0, t[2] as i32, t[1] as i32, t[0] as i32);
    let zero = _mm_setzero_si128();
    let pad80 = _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32);
    let len640 = _mm_set_epi32(640, 0, 0, 0);
    let len256 = _mm_set_epi32(256, 0, 0, 0);
    let top = input.target_top;
    // Word+constant sums of the groups whose words never change: rounds
    // 4..16 of the first hash's second block (padding and length) and
    // rounds 8..16 of the second hash.
    let konst = |m: __m128i, k: __m128i| {
        let lo = _mm_add_epi32(m, k);
        (lo, _mm_shuffle_epi32::<0x0E>(lo))
    };
    let (ca1, ca2, ca3) = (
        konst(pad80, kk[1]),
        konst(zero, kk[2]),
        konst(len640, kk[3]),
    );
    let (cb2, cb3) = (konst(pad80, kk[2]), konst(len256, kk[3]));

    // First hash, second block: words W0..W3 (nonce in W3), padding,
    // length. Rounds 0..=3 are the precomputed state with W3 added to the
    // `a` and `e` lanes (3 and 1 of ABEF).
    macro_rules! first_block {
        ($n:expr, $s0:ident, $s1:ident, $m0:ident, $m1:ident, $m2:ident, $m3:ident) => {
            let w3 = ($n as u32).swap_bytes() as i32;
            let mut $m0 = _mm_insert_epi32::<3>(w0, w3);
            let mut $m1 = pad80;
            let mut $m2 = zero;
            let mut $m3 = len640;
            let mut $s0 = _mm_add_epi32(r3_abef, _mm_and_si128(_mm_set1_epi32(w3), lanes_ae));
            let mut $s1 = r3_cdgh;
        };
    }
    // The first digest (a..h) becomes the second hash's W0..W7.
    macro_rules! second_block {
        ($s0:ident, $s1:ident, $m0:ident, $m1:ident, $m2:ident, $m3:ident) => {
            let abef = _mm_add_epi32($s0, mid_abef); // lanes F E B A
            let cdgh = _mm_add_epi32($s1, mid_cdgh); // lanes H G D C
            $m0 = _mm_shuffle_epi32::<0xB1>(_mm_unpackhi_epi64(abef, cdgh));
            $m1 = _mm_shuffle_epi32::<0xB1>(_mm_unpacklo_epi64(abef, cdgh));
            $m2 = pad80;
            $m3 = len256;
            $s0 = iv_abef;
            $s1 = iv_cdgh;
        };
    }
    // Rounds 60 and 61 of the second hash; lane 0 of the ABEF result is
    // f62, which rounds 62 and 63 only move into h: H7 = IV[7] + f62.
    macro_rules! final_word {
        ($s0:ident, $s1:ident, $m0:ident, $m1:ident, $m2:ident, $m3:ident) => {{
            let t = _mm_sha256msg1_epu32($m3, $m0);
            let t = _mm_add_epi32(t, _mm_alignr_epi8::<4>($m2, $m1));
            let w60 = _mm_sha256msg2_epu32(t, $m2);
            let abef62 = _mm_sha256rnds2_epu32($s1, $s0, _mm_add_epi32(w60, kk[15]));
            IV[7].wrapping_add(_mm_cvtsi128_si32(abef62) as u32)
        }};
    }

    let end = u64::from(start) + u64::from(count);
    let mut n = u64::from(start);
    while n < end {
        first_block!(n, xs0, xs1, xm0, xm1, xm2, xm3);
        first_block!(n + 1, ys0, ys1, ym0, ym1, ym2, ym3);
        quad!(konst; ca1.0, ca1.1; (xs0, xs1), (ys0, ys1));
        quad!(konst; ca2.0, ca2.1; (xs0, xs1), (ys0, ys1));
        quad!(konst; ca3.0, ca3.1; (xs0, xs1), (ys0, ys1));
        quad!(sched; kk[4]; (xs0, xs1, xm0, xm1, xm2, xm3), (ys0, ys1, ym0, ym1, ym2, ym3));
        quad!(sched; kk[5]; (xs0, xs1, xm1, xm2, xm3, xm0), (ys0, ys1, ym1, ym2, ym3, ym0));
        quad!(sched; kk[6]; (xs0, xs1, xm2, xm3, xm0, xm1), (ys0, ys1, ym2, ym3, ym0, ym1));
        quad!(sched; kk[7]; (xs0, xs1, xm3, xm0, xm1, xm2), (ys0, ys1, ym3, ym0, ym1, ym2));
        quad!(sched; kk[8]; (xs0, xs1, xm0, xm1, xm2, xm3), (ys0, ys1, ym0, ym1, ym2, ym3));
        quad!(sched; kk[9]; (xs0, xs1, xm1, xm2, xm3, xm0), (ys0, ys1, ym1, ym2, ym3, ym0));
        quad!(sched; kk[10]; (xs0, xs1, xm2, xm3, xm0, xm1), (ys0, ys1, ym2, ym3, ym0, ym1));
        quad!(sched; kk[11]; (xs0, xs1, xm3, xm0, xm1, xm2), (ys0, ys1, ym3, ym0, ym1, ym2));
        quad!(sched; kk[12]; (xs0, xs1, xm0, xm1, xm2, xm3), (ys0, ys1, ym0, ym1, ym2, ym3));
        quad!(sched; kk[13]; (xs0, xs1, xm1, xm2, xm3, xm0), (ys0, ys1, ym1, ym2, ym3, ym0));
        quad!(sched; kk[14]; (xs0, xs1, xm2, xm3, xm0, xm1), (ys0, ys1, ym2, ym3, ym0, ym1));
        quad!(sched; kk[15]; (xs0, xs1, xm3, xm0, xm1, xm2), (ys0, ys1, ym3, ym0, ym1, ym2));
        second_block!(xs0, xs1, xm0, xm1, xm2, xm3);
        second_block!(ys0, ys1, ym0, ym1, ym2, ym3);
        quad!(plain; kk[0]; (xs0, xs1, xm0, xm1, xm2, xm3), (ys0, ys1, ym0, ym1, ym2, ym3));
        quad!(plain; kk[1]; (xs0, xs1, xm1, xm2, xm3, xm0), (ys0, ys1, ym1, ym2, ym3, ym0));
        quad!(konst; cb2.0, cb2.1; (xs0, xs1), (ys0, ys1));
        quad!(konst; cb3.0, cb3.1; (xs0, xs1), (ys0, ys1));
        quad!(sched; kk[4]; (xs0, xs1, xm0, xm1, xm2, xm3), (ys0, ys1, ym0, ym1, ym2, ym3));
        quad!(sched; kk[5]; (xs0, xs1, xm1, xm2, xm3, xm0), (ys0, ys1, ym1, ym2, ym3, ym0));
        quad!(sched; kk[6]; (xs0, xs1, xm2, xm3, xm0, xm1), (ys0, ys1, ym2, ym3, ym0, ym1));
        quad!(sched; kk[7]; (xs0, xs1, xm3, xm0, xm1, xm2), (ys0, ys1, ym3, ym0, ym1, ym2));
        quad!(sched; kk[8]; (xs0, xs1, xm0, xm1, xm2, xm3), (ys0, ys1, ym0, ym1, ym2, ym3));
        quad!(sched; kk[9]; (xs0, xs1, xm1, xm2, xm3, xm0), (ys0, ys1, ym1, ym2, ym3, ym0));
        quad!(sched; kk[10]; (xs0, xs1, xm2, xm3, xm0, xm1), (ys0, ys1, ym2, ym3, ym0, ym1));
        quad!(sched; kk[11]; (xs0, xs1, xm3, xm0, xm1, xm2), (ys0, ys1, ym3, ym0, ym1, ym2));
        quad!(sched; kk[12]; (xs0, xs1, xm0, xm1, xm2, xm3), (ys0, ys1, ym0, ym1, ym2, ym3));
        quad!(sched; kk[13]; (xs0, xs1, xm1, xm2, xm3, xm0), (ys0, ys1, ym1, ym2, ym3, ym0));
        quad!(sched; kk[14]; (xs0, xs1, xm2, xm3, xm0, xm1), (ys0, ys1, ym2, ym3, ym0, ym1));
        let h7 = [
            final_word!(xs0, xs1, xm0, xm1, xm2, xm3),
            final_word!(ys0, ys1, ym0, ym1, ym2, ym3),
        ];
        for (i, h) in h7.iter().enumerate() {
            let nonce = n + i as u64;
            if h.swap_bytes() <= top && nonce < end && input.confirm(nonce as u32).is_some() {
                out.push(nonce as u32);
            }
        }
        n += STREAMS as u64;
    }
}
