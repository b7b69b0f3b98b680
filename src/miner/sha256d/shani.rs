//! SHA-NI backends: x86-64 SHA extensions, two, three or four nonces
//! interleaved (`sha-ni`, `sha-ni-3`, `sha-ni-4`; one generic kernel).
//!
//! `sha256rnds2` has a latency of several cycles, so one hash stream leaves
//! the SHA unit idle between dependent rounds; more independent streams
//! (the next nonces) fill those gaps. How many pay depends on the CPU,
//! which [`probe_sha_unit`] measures:
//!
//! - EPYC family 23 (Zen 2): latency 1.66 ns, one per 0.83 ns: two streams
//!   fill the unit.
//! - EPYC family 25 without AVX-512 (Zen 3): latency 1.25 ns, one per
//!   0.32 ns: four streams would fill the unit, but the whole per-nonce
//!   instruction mix ([`OP_MIX`]) sets a lower ceiling (38 MH/s); 2 streams
//!   run 26, 3 and 4 streams about 30 MH/s there.
//!
//! Which kernel wins is measured at start-up ([`super::Backend::auto`]),
//! not assumed.
//!
//! Registers: a stream's state is the instruction's ABEF/CDGH register
//! pair (kept from the midstate to the final check) and its message window
//! four registers. Three or four streams need 18 or 24 live registers of
//! 16; left to itself the compiler spilled the *states*, putting a store
//! and a reload into the chain of dependent `sha256rnds2` (26 MH/s at 4
//! streams). The 3- and 4-stream kernels therefore keep the message window
//! in memory by construction, all but the newest register of it, through
//! which the schedule's own dependency chain runs (30 MH/s).
//!
//! Work cut per nonce ([`RNDS2_PER_NONCE`] = 61 `sha256rnds2` instead of 64):
//! - the midstate and rounds 0..=3 of the second block are computed once
//!   per template; the nonce word then only adds to `a` and `e`
//!   ([`ScanInput::round3_state`]);
//! - the word+constant sums of groups whose words are fixed (padding and
//!   length) are precomputed;
//! - the message schedule terms that do not depend on the nonce are
//!   precomputed or dropped (zero words): 19 `sha256msg1` and 23
//!   `sha256msg2` a nonce instead of 21 and 24 ([`FirstBlockSchedule`]);
//! - the second hash stops after 62 of 64 rounds: the final word
//!   `H7 = IV[7] + f` is already known there, and only a hash whose top word
//!   meets the target's top word is confirmed with the reference code.
//!
//! Tried and dropped: rounds 58..=60 of the second hash in general-purpose
//! registers (following `e` only), which saves two more `sha256rnds2`, ran
//! at 16.0 against 18.1 MH/s on Zen 2; the high half of each message word
//! reloaded from memory instead of `pshufd` (28.3 against 30.1 MH/s on
//! Zen 3).

use core::arch::asm;
use core::arch::x86_64::*;

use super::{ScanInput, IV, K};

/// `sha256rnds2` instructions [`scan`] issues per nonce: 30 for rounds
/// 4..=63 of the first hash, 31 for rounds 0..=61 of the second.
pub const RNDS2_PER_NONCE: u32 = 61;

/// Vector instructions of one nonce, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpMix {
    /// `sha256rnds2`.
    pub rnds2: u32,
    /// `sha256msg1`.
    pub msg1: u32,
    /// `sha256msg2`.
    pub msg2: u32,
    /// `paddd`.
    pub paddd: u32,
    /// Shuffles: `pshufd`, `shufps`, byte and quadword shifts.
    pub shuffle: u32,
    /// `palignr`.
    pub palignr: u32,
}

/// What the SHA-NI kernels issue per nonce (each stream the same), counted
/// in their disassembly (`objdump -d` of `scan_n`, loop body divided by
/// the stream count); register moves, loads and stores left out.
pub const OP_MIX: OpMix = OpMix {
    rnds2: RNDS2_PER_NONCE,
    msg1: 19,
    msg2: 23,
    paddd: 50,
    shuffle: 28,
    palignr: 21,
};

/// Timing of this CPU's SHA unit, measured by [`probe_sha_unit`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShaUnitTiming {
    /// Nanoseconds from one `sha256rnds2` to the next that depends on it.
    pub latency_ns: f64,
    /// Nanoseconds per `sha256rnds2` with four independent chains: the
    /// unit's issue interval.
    pub interval_ns: f64,
    /// Nanoseconds for one nonce's [`OP_MIX`] issued with no dependencies
    /// between instructions: the fastest any kernel issuing that mix can
    /// hash on one thread, whatever its register schedule.
    pub op_mix_ns: f64,
}

impl ShaUnitTiming {
    /// The `sha256rnds2` bound: `1e9 / (interval_ns * 61)` H/s per thread.
    #[must_use]
    pub fn ceiling_hashes_per_sec(&self) -> f64 {
        1e9 / (self.interval_ns * f64::from(RNDS2_PER_NONCE))
    }

    /// The op-mix bound: `1e9 / op_mix_ns` H/s per thread; the SHA
    /// instructions share the vector pipes with the adds and shuffles, so
    /// this is the real ceiling, at or below [`Self::ceiling_hashes_per_sec`].
    #[must_use]
    pub fn op_mix_ceiling_hashes_per_sec(&self) -> f64 {
        1e9 / self.op_mix_ns
    }

    /// Independent streams needed to keep the unit busy:
    /// `latency / interval`, rounded up.
    #[must_use]
    pub fn streams_to_saturate(&self) -> u32 {
        (self.latency_ns / self.interval_ns - 0.05).ceil().max(1.0) as u32
    }
}

/// Measures the latency and issue interval of `sha256rnds2` with
/// `iterations` pairs of instructions per chain, and the time of one
/// nonce's [`OP_MIX`] over `iterations / 4` mixes (2,000,000 take about
/// 0.2 s in all). Returns `None` when the CPU lacks SHA-NI.
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
    let op_mix_ns = (0..3)
        .map(|_| {
            let started = std::time::Instant::now();
            // SAFETY: as above; `op_mix` only uses registers.
            let sink = unsafe { op_mix(iterations / 4) };
            std::hint::black_box(sink);
            started.elapsed().as_secs_f64() * 1e9 / (iterations / 4).max(1) as f64
        })
        .fold(f64::INFINITY, f64::min);
    Some(ShaUnitTiming {
        latency_ns: best(1),
        interval_ns: best(4),
        op_mix_ns,
    })
}

const _: () = assert!(
    OP_MIX.rnds2 == 61
        && OP_MIX.msg1 <= 61
        && OP_MIX.msg2 <= 61
        && OP_MIX.paddd <= 61
        && OP_MIX.shuffle <= 61
        && OP_MIX.palignr <= 61,
    "op_mix spreads each kind over the 61 rnds2 slots"
);

/// Issues [`OP_MIX`] `iterations` times with no dependency that could
/// limit it: each kind writes its own rotating registers (five for
/// `sha256rnds2`, whose latency is the longest) from a common source, so
/// every chain is far shorter than the mix's issue time. The kinds are
/// spread evenly over 61 slots (kind `c` in slot `i` when
/// `i * c mod 61 < c`: 61 is prime, so exactly `c` slots). Inline assembly,
/// so that the compiler can neither hoist nor merge the work.
#[target_feature(enable = "sha,sse2,ssse3")]
// `seq!` writes slot 0's arithmetic out literally (`0 * MSG1`, `0 % 5`).
#[allow(clippy::identity_op, clippy::erasing_op)]
unsafe fn op_mix(iterations: u64) -> i32 {
    const MSG1: usize = OP_MIX.msg1 as usize;
    const MSG2: usize = OP_MIX.msg2 as usize;
    const PADDD: usize = OP_MIX.paddd as usize;
    const SHUF: usize = OP_MIX.shuffle as usize;
    const ALIGN: usize = OP_MIX.palignr as usize;
    let mut r: [__m128i; 5] = core::array::from_fn(|i| _mm_set1_epi32(i as i32 + 1));
    let mut m1: [__m128i; 2] = core::array::from_fn(|i| _mm_set1_epi32(i as i32 + 7));
    let mut m2: [__m128i; 3] = core::array::from_fn(|i| _mm_set1_epi32(i as i32 + 9));
    let mut p: [__m128i; 2] = core::array::from_fn(|i| _mm_set1_epi32(i as i32 + 11));
    let mut al = _mm_set1_epi32(13);
    let mut sh = _mm_set1_epi32(14);
    let src = _mm_set1_epi32(15);
    let k = _mm_set1_epi32(16);
    for _ in 0..iterations {
        seq_macro::seq!(I in 0..61 {
            // SAFETY (every block): register-only SSE/SHA instructions on
            // operands the compiler allocated; no memory, stack or flags.
            asm!("sha256rnds2 {d}, {s}, xmm0", d = inout(xmm_reg) r[I % 5], s = in(xmm_reg) src,
                 in("xmm0") k, options(nomem, nostack, preserves_flags));
            if (I * MSG1) % 61 < MSG1 {
                asm!("sha256msg1 {d}, {s}", d = inout(xmm_reg) m1[I % 2], s = in(xmm_reg) src,
                     options(nomem, nostack, preserves_flags));
            }
            if (I * MSG2) % 61 < MSG2 {
                asm!("sha256msg2 {d}, {s}", d = inout(xmm_reg) m2[I % 3], s = in(xmm_reg) src,
                     options(nomem, nostack, preserves_flags));
            }
            if (I * PADDD) % 61 < PADDD {
                asm!("paddd {d}, {s}", d = inout(xmm_reg) p[I % 2], s = in(xmm_reg) src,
                     options(nomem, nostack, preserves_flags));
            }
            if (I * SHUF) % 61 < SHUF {
                asm!("pshufd {d}, {s}, 0x0e", d = out(xmm_reg) sh, s = in(xmm_reg) src,
                     options(nomem, nostack, preserves_flags));
            }
            if (I * ALIGN) % 61 < ALIGN {
                asm!("palignr {d}, {s}, 4", d = inout(xmm_reg) al, s = in(xmm_reg) src,
                     options(nomem, nostack, preserves_flags));
            }
        });
    }
    let mut x = _mm_xor_si128(al, sh);
    for v in r.iter().chain(&m1).chain(&m2).chain(&p) {
        x = _mm_xor_si128(x, *v);
    }
    _mm_cvtsi128_si32(x)
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

/// Scans `start .. start + count` with `streams` (2, 3 or 4) nonces
/// interleaved, pushing every solution to `out`.
///
/// # Panics
/// If the CPU lacks SHA-NI ([`super::Backend::scan`] checks first) or
/// `streams` is not 2, 3 or 4.
pub fn scan(input: &ScanInput, streams: usize, start: u32, count: u32, out: &mut Vec<u32>) {
    assert!(
        is_supported(),
        "SHA-NI scan on a CPU without SHA extensions"
    );
    // SAFETY: the assertion above proves the CPU supports every feature that
    // `scan_n` is compiled for (sha, sse2, ssse3, sse4.1). `scan_n` does no
    // pointer arithmetic: it touches memory only through safe Rust (arrays
    // indexed by constants, the output vector).
    unsafe {
        match streams {
            2 => scan_n::<2, false>(input, start, count, out),
            3 => scan_n::<3, true>(input, start, count, out),
            4 => scan_n::<4, true>(input, start, count, out),
            other => panic!("no SHA-NI kernel with {other} streams"),
        }
    }
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

/// Four words as one register, `w[0]` in lane 0.
fn words(w: [u32; 4]) -> __m128i {
    // SAFETY: SSE2 is part of the x86-64 baseline.
    unsafe { _mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32) }
}

/// The first hash's second block has 12 fixed words of 16 (W0..W2 from
/// the template, W4 padding, W5..W14 zero, W15 = 640) and the nonce in W3,
/// so much of its message schedule is fixed per template:
///
/// - W16 = σ0(W1) + W0 and W17 = σ1(640) + σ0(W2) + W1 are constants;
///   W18 = σ1(W16) + W2 + σ0(W3) and W19 = σ1(W17) + σ0(W4) + W3 are
///   constants plus σ0(nonce) and the nonce (computed in general-purpose
///   registers, off the vector units): no `sha256msg1`/`sha256msg2` for
///   rounds 16..=19, and no shuffle for their high half;
/// - for W20..23, `sha256msg1(W4..7, W8..11) + W13..16` is the constant
///   (W4, 0, 640, W16);
/// - for W24..27, `sha256msg1(W8..11, W12..15)` is zero;
/// - for W28..31, `sha256msg1(W12..15, W16..19)` is the constant
///   (0, 0, σ0(640), 640 + σ0(W16)).
///
/// FIPS 180-4 6.2.2 step 1 for the schedule, with the zero words dropped.
struct FirstBlockSchedule {
    /// W16..W19 without the nonce terms.
    w16: [u32; 4],
    /// (W16 + K16, W17 + K17): the low half of rounds 16..=17's input.
    k16_lo: [u32; 2],
    /// (W18 + K18, W19 + K19) without σ0(nonce) and the nonce.
    k18_hi: [u32; 2],
    /// `sha256msg1` + `alignr` result for W20..23.
    t20: [u32; 4],
    /// `sha256msg1` result for W28..31.
    m28: [u32; 4],
}

impl FirstBlockSchedule {
    fn new(tail: [u32; 3]) -> FirstBlockSchedule {
        use super::{small_sigma0 as s0, small_sigma1 as s1};
        let pad = 0x8000_0000u32;
        let w16 = s0(tail[1]).wrapping_add(tail[0]);
        let w17 = s1(640).wrapping_add(s0(tail[2])).wrapping_add(tail[1]);
        let w18 = s1(w16).wrapping_add(tail[2]);
        let w19 = s1(w17).wrapping_add(s0(pad));
        FirstBlockSchedule {
            w16: [w16, w17, w18, w19],
            k16_lo: [w16.wrapping_add(K[16]), w17.wrapping_add(K[17])],
            k18_hi: [w18.wrapping_add(K[18]), w19.wrapping_add(K[19])],
            t20: [pad, 0, 640, w16],
            m28: [0, 0, s0(640), 640u32.wrapping_add(s0(w16))],
        }
    }
}

/// The kernel for `N` interleaved streams. Each stream keeps its state in
/// the instruction's ABEF/CDGH register pair and its message window in
/// four registers; the window rotates by naming (`a` is the register that
/// holds the group's words). At `N` = 3 and 4 these do not fit sixteen xmm
/// registers and the compiler spills: the nonce-independent operands
/// (round constants, precomputed sums) are the ones left in memory.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[allow(clippy::too_many_lines)]
unsafe fn scan_n<const N: usize, const MEM: bool>(
    input: &ScanInput,
    start: u32,
    count: u32,
    out: &mut Vec<u32>,
) {
    let mut kk = [_mm_setzero_si128(); 16];
    for (g, k) in kk.iter_mut().enumerate() {
        *k = words([K[4 * g], K[4 * g + 1], K[4 * g + 2], K[4 * g + 3]]);
    }
    let (mid_abef, mid_cdgh) = to_abef_cdgh!(&input.midstate);
    let (iv_abef, iv_cdgh) = to_abef_cdgh!(&IV);
    let (r3_abef, r3_cdgh) = to_abef_cdgh!(&input.round3_state);
    let zero = _mm_setzero_si128();
    let pad80 = words([0x8000_0000, 0, 0, 0]);
    let len256 = words([0, 0, 0, 256]);
    let fs = FirstBlockSchedule::new(input.tail);
    let w16 = words(fs.w16);
    let k16_lo = words([fs.k16_lo[0], fs.k16_lo[1], 0, 0]);
    let k18_hi = words([fs.k18_hi[0], fs.k18_hi[1], 0, 0]);
    let t20 = words(fs.t20);
    let m28 = words(fs.m28);
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
        konst(words([0, 0, 0, 640]), kk[3]),
    );
    let (cb2, cb3) = (konst(pad80, kk[2]), konst(len256, kk[3]));

    let mut s0 = [zero; N];
    let mut s1 = [zero; N];
    let mut m = [[zero; 4]; N];
    // The window register written last (words t-4..t-1 of the next
    // group): the schedule's own dependency chain runs through it, so it
    // stays in a register even when the rest of the window is in memory.
    let mut last = [zero; N];
    // The message windows: in registers (the compiler's choice of spills),
    // or with `MEM` always in memory, so that the registers hold the
    // states, on the critical path, and the compiler spills nothing else.
    macro_rules! ld {
        ($i:expr, $j:expr) => {
            if MEM {
                // SAFETY: a properly aligned element of a live local array.
                core::ptr::read_volatile(&raw const m[$i][$j])
            } else {
                m[$i][$j]
            }
        };
    }
    macro_rules! st {
        ($i:expr, $j:expr, $v:expr) => {
            let v = $v;
            last[$i] = v;
            if MEM {
                // SAFETY: a properly aligned element of a live local array.
                core::ptr::write_volatile(&raw mut m[$i][$j], v);
            } else {
                m[$i][$j] = v;
            }
        };
    }

    // Two rounds on stream `i` with the low words of `lo`, two with `hi`.
    macro_rules! rounds {
        ($i:expr, $lo:expr, $hi:expr) => {
            s1[$i] = _mm_sha256rnds2_epu32(s1[$i], s0[$i], $lo);
            s0[$i] = _mm_sha256rnds2_epu32(s0[$i], s1[$i], $hi);
        };
    }
    // A group whose word+constant sums are precomputed.
    macro_rules! konst {
        ($c:expr) => {
            for i in 0..N {
                rounds!(i, $c.0, $c.1);
            }
        };
    }
    // A group whose words are in register `$a` of each window.
    macro_rules! plain {
        ($k:expr; $a:literal) => {
            for i in 0..N {
                let msg = _mm_add_epi32(ld!(i, $a), $k);
                rounds!(i, msg, _mm_shuffle_epi32::<0x0E>(msg));
            }
        };
    }
    // Extends the schedule by four words (register `$a`, words t-16..t-13,
    // becomes t..t+3 from `$b` t-12.., `$c` t-8.., `$d` t-4..), then runs
    // the group.
    macro_rules! sched {
        ($k:expr; $a:literal, $b:literal, $c:literal) => {
            for i in 0..N {
                let t = _mm_sha256msg1_epu32(ld!(i, $a), ld!(i, $b));
                let t = _mm_add_epi32(t, _mm_alignr_epi8::<4>(last[i], ld!(i, $c)));
                let w = _mm_sha256msg2_epu32(t, last[i]);
                st!(i, $a, w);
            }
            for i in 0..N {
                let msg = _mm_add_epi32(last[i], $k);
                rounds!(i, msg, _mm_shuffle_epi32::<0x0E>(msg));
            }
        };
    }

    let end = u64::from(start) + u64::from(count);
    let mut n = u64::from(start);
    while n < end {
        // First hash, second block. Rounds 0..=3 are the precomputed state
        // with W3 added to `a` and `e` (lanes 3 and 1 of ABEF); rounds
        // 4..=15 run on precomputed sums; W16..W19 are constants plus
        // (σ0(W3), W3) in the top lanes.
        for i in 0..N {
            let w3 = ((n + i as u64) as u32).swap_bytes();
            let nonce_hi = (u64::from(w3) << 32) | u64::from(super::small_sigma0(w3));
            let x = _mm_cvtsi64_si128(nonce_hi as i64); // lanes σ0(W3), W3, 0, 0
            let ae = _mm_cvtsi64_si128((u64::from(w3) << 32) as i64); // lanes 0, W3, 0, 0
            s0[i] = _mm_add_epi32(r3_abef, _mm_shuffle_epi32::<0x44>(ae));
            s1[i] = r3_cdgh;
            st!(i, 3, x); // held until rounds 16..=19 need it
            st!(i, 0, _mm_add_epi32(w16, _mm_slli_si128::<8>(x)));
        }
        konst!(ca1);
        konst!(ca2);
        konst!(ca3);
        for i in 0..N {
            let hi = _mm_add_epi32(k18_hi, ld!(i, 3));
            rounds!(i, k16_lo, hi);
        }
        // W20..23 = msg2(constant, W16..19); m[1] was never read.
        for i in 0..N {
            st!(i, 1, _mm_sha256msg2_epu32(t20, last[i]));
        }
        plain!(kk[5]; 1);
        // W24..27: msg1(W8..11, W12..15) = 0.
        for i in 0..N {
            let t = _mm_alignr_epi8::<4>(last[i], ld!(i, 0));
            st!(i, 2, _mm_sha256msg2_epu32(t, last[i]));
        }
        plain!(kk[6]; 2);
        // W28..31: msg1(W12..15, W16..19) is a constant.
        for i in 0..N {
            let t = _mm_add_epi32(m28, _mm_alignr_epi8::<4>(last[i], ld!(i, 1)));
            st!(i, 3, _mm_sha256msg2_epu32(t, last[i]));
        }
        plain!(kk[7]; 3);
        sched!(kk[8]; 0, 1, 2);
        sched!(kk[9]; 1, 2, 3);
        sched!(kk[10]; 2, 3, 0);
        sched!(kk[11]; 3, 0, 1);
        sched!(kk[12]; 0, 1, 2);
        sched!(kk[13]; 1, 2, 3);
        sched!(kk[14]; 2, 3, 0);
        sched!(kk[15]; 3, 0, 1);
        // The first digest (a..h) becomes the second hash's W0..W7.
        for i in 0..N {
            let abef = _mm_add_epi32(s0[i], mid_abef); // lanes F E B A
            let cdgh = _mm_add_epi32(s1[i], mid_cdgh); // lanes H G D C
            st!(
                i,
                0,
                _mm_shuffle_epi32::<0xB1>(_mm_unpackhi_epi64(abef, cdgh))
            );
            st!(
                i,
                1,
                _mm_shuffle_epi32::<0xB1>(_mm_unpacklo_epi64(abef, cdgh))
            );
            s0[i] = iv_abef;
            s1[i] = iv_cdgh;
        }
        plain!(kk[0]; 0);
        plain!(kk[1]; 1);
        konst!(cb2);
        konst!(cb3);
        // W16..19: W9..12 are zero, so no alignr term; W12..15 = len256.
        for i in 0..N {
            let t = _mm_sha256msg1_epu32(ld!(i, 0), ld!(i, 1));
            st!(i, 0, _mm_sha256msg2_epu32(t, len256));
        }
        plain!(kk[4]; 0);
        // W20..23: W8..11 = pad80, W12..15 = len256.
        for i in 0..N {
            let t = _mm_sha256msg1_epu32(ld!(i, 1), pad80);
            let t = _mm_add_epi32(t, _mm_alignr_epi8::<4>(last[i], len256));
            st!(i, 1, _mm_sha256msg2_epu32(t, last[i]));
        }
        plain!(kk[5]; 1);
        // W24..27: msg1(W8..11, W12..15) = (pad, 0, 0, 0).
        for i in 0..N {
            let t = _mm_add_epi32(pad80, _mm_alignr_epi8::<4>(last[i], ld!(i, 0)));
            st!(i, 2, _mm_sha256msg2_epu32(t, last[i]));
        }
        plain!(kk[6]; 2);
        // W28..31: W12..15 = len256.
        for i in 0..N {
            let t = _mm_sha256msg1_epu32(len256, ld!(i, 0));
            let t = _mm_add_epi32(t, _mm_alignr_epi8::<4>(last[i], ld!(i, 1)));
            st!(i, 3, _mm_sha256msg2_epu32(t, last[i]));
        }
        plain!(kk[7]; 3);
        sched!(kk[8]; 0, 1, 2);
        sched!(kk[9]; 1, 2, 3);
        sched!(kk[10]; 2, 3, 0);
        sched!(kk[11]; 3, 0, 1);
        sched!(kk[12]; 0, 1, 2);
        sched!(kk[13]; 1, 2, 3);
        sched!(kk[14]; 2, 3, 0);
        // Rounds 60 and 61 of the second hash; lane 0 of the ABEF result
        // is f62, which rounds 62 and 63 only move into h:
        // H7 = IV[7] + f62.
        let mut h7 = [0u32; N];
        for i in 0..N {
            let t = _mm_sha256msg1_epu32(ld!(i, 3), ld!(i, 0));
            let t = _mm_add_epi32(t, _mm_alignr_epi8::<4>(last[i], ld!(i, 1)));
            let w60 = _mm_sha256msg2_epu32(t, last[i]);
            let abef62 = _mm_sha256rnds2_epu32(s1[i], s0[i], _mm_add_epi32(w60, kk[15]));
            h7[i] = IV[7].wrapping_add(_mm_cvtsi128_si32(abef62) as u32);
        }
        for (i, h) in h7.iter().enumerate() {
            let nonce = n + i as u64;
            if h.swap_bytes() <= top && nonce < end && input.confirm(nonce as u32).is_some() {
                out.push(nonce as u32);
            }
        }
        n += N as u64;
    }
}
