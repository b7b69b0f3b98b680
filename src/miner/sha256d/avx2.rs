//! AVX2 backend: eight nonces per instruction in 256-bit lanes.
//!
//! Same work cuts as the scalar backend: the midstate and rounds 0..=3 of
//! the second block are computed once per template (broadcast to all
//! lanes, the nonce then added to `a` and `e`), the schedule is extended
//! in a 16-word ring, and the second hash stops after round 60
//! (`H7 = IV[7] + e`). Lanes whose top word meets the target's top word are
//! confirmed with the reference code.

use core::arch::x86_64::*;

use super::{ScanInput, IV, K};

/// Nonces per call of the inner block.
const LANES: u64 = 8;

/// Whether this CPU has AVX2.
#[must_use]
pub fn is_supported() -> bool {
    is_x86_feature_detected!("avx2")
}

/// Scans `start .. start + count`, pushing every solution to `out`.
///
/// # Panics
/// If the CPU lacks AVX2; [`super::Backend::scan`] checks first.
pub fn scan(input: &ScanInput, start: u32, count: u32, out: &mut Vec<u32>) {
    assert!(is_supported(), "AVX2 scan on a CPU without AVX2");
    // SAFETY: the assertion proves the CPU supports AVX2, the only feature
    // `scan_impl` is compiled for. It reads and writes memory only through
    // safe Rust (arrays passed by value or reference), no raw pointers
    // except the aligned-free `_mm256_storeu_si256` into a local array.
    unsafe { scan_impl(input, start, count, out) }
}

#[target_feature(enable = "avx2")]
// The last schedule words written are never read again: harmless.
#[allow(clippy::too_many_lines, unused_assignments)]
unsafe fn scan_impl(input: &ScanInput, start: u32, count: u32, out: &mut Vec<u32>) {
    macro_rules! rotr {
        ($x:expr, $n:literal) => {
            _mm256_or_si256(
                _mm256_srli_epi32::<$n>($x),
                _mm256_slli_epi32::<{ 32 - $n }>($x),
            )
        };
    }
    macro_rules! add {
        ($a:expr, $b:expr) => {
            _mm256_add_epi32($a, $b)
        };
    }
    let splat = |v: u32| _mm256_set1_epi32(v as i32);
    let mid: [__m256i; 8] = core::array::from_fn(|i| splat(input.midstate[i]));
    let pre: [__m256i; 8] = core::array::from_fn(|i| splat(input.round3_state[i]));
    let iv: [__m256i; 8] = core::array::from_fn(|i| splat(IV[i]));
    let kk: [__m256i; 64] = core::array::from_fn(|i| splat(K[i]));
    let tail: [__m256i; 3] = core::array::from_fn(|i| splat(input.tail[i]));
    let lane_offsets = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    let top = input.target_top;

    let end = u64::from(start) + u64::from(count);
    let mut n = u64::from(start);
    while n < end {
        let nonces = add!(splat(n as u32), lane_offsets);
        // Byte-swap each lane: the nonce is little-endian in the header,
        // SHA-256 reads big-endian words.
        let bswap = _mm256_set_epi8(
            12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4,
            5, 6, 7, 0, 1, 2, 3,
        );
        let zero = _mm256_setzero_si256();
        let mut w: [__m256i; 16] = [zero; 16];
        w[0] = tail[0];
        w[1] = tail[1];
        w[2] = tail[2];
        w[3] = _mm256_shuffle_epi8(nonces, bswap);
        w[4] = splat(0x8000_0000);
        w[15] = splat(640);
        // Rounds 0..=3: the precomputed state plus W3 in `a` and `e`.
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = pre;
        a = add!(a, w[3]);
        e = add!(e, w[3]);
        macro_rules! sched {
            ($t:literal) => {{
                let w2 = w[($t - 2) % 16];
                let w15 = w[($t - 15) % 16];
                let s1 = _mm256_xor_si256(
                    _mm256_xor_si256(rotr!(w2, 17), rotr!(w2, 19)),
                    _mm256_srli_epi32::<10>(w2),
                );
                let s0 = _mm256_xor_si256(
                    _mm256_xor_si256(rotr!(w15, 7), rotr!(w15, 18)),
                    _mm256_srli_epi32::<3>(w15),
                );
                let v = add!(add!(s1, w[($t - 7) % 16]), add!(s0, w[$t % 16]));
                w[$t % 16] = v;
                v
            }};
        }
        macro_rules! round {
            ($t:literal, $w:expr) => {{
                let wt = $w;
                let s1 =
                    _mm256_xor_si256(_mm256_xor_si256(rotr!(e, 6), rotr!(e, 11)), rotr!(e, 25));
                let ch = _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g));
                let t1 = add!(add!(add!(h, s1), add!(ch, kk[$t])), wt);
                let s0 =
                    _mm256_xor_si256(_mm256_xor_si256(rotr!(a, 2), rotr!(a, 13)), rotr!(a, 22));
                let maj = _mm256_or_si256(
                    _mm256_and_si256(a, b),
                    _mm256_and_si256(c, _mm256_or_si256(a, b)),
                );
                let t2 = add!(s0, maj);
                h = g;
                g = f;
                f = e;
                e = add!(d, t1);
                d = c;
                c = b;
                b = a;
                a = add!(t1, t2);
            }};
        }
        round!(4, w[4]);
        round!(5, w[5]);
        round!(6, w[6]);
        round!(7, w[7]);
        round!(8, w[8]);
        round!(9, w[9]);
        round!(10, w[10]);
        round!(11, w[11]);
        round!(12, w[12]);
        round!(13, w[13]);
        round!(14, w[14]);
        round!(15, w[15]);
        round!(16, sched!(16));
        round!(17, sched!(17));
        round!(18, sched!(18));
        round!(19, sched!(19));
        round!(20, sched!(20));
        round!(21, sched!(21));
        round!(22, sched!(22));
        round!(23, sched!(23));
        round!(24, sched!(24));
        round!(25, sched!(25));
        round!(26, sched!(26));
        round!(27, sched!(27));
        round!(28, sched!(28));
        round!(29, sched!(29));
        round!(30, sched!(30));
        round!(31, sched!(31));
        round!(32, sched!(32));
        round!(33, sched!(33));
        round!(34, sched!(34));
        round!(35, sched!(35));
        round!(36, sched!(36));
        round!(37, sched!(37));
        round!(38, sched!(38));
        round!(39, sched!(39));
        round!(40, sched!(40));
        round!(41, sched!(41));
        round!(42, sched!(42));
        round!(43, sched!(43));
        round!(44, sched!(44));
        round!(45, sched!(45));
        round!(46, sched!(46));
        round!(47, sched!(47));
        round!(48, sched!(48));
        round!(49, sched!(49));
        round!(50, sched!(50));
        round!(51, sched!(51));
        round!(52, sched!(52));
        round!(53, sched!(53));
        round!(54, sched!(54));
        round!(55, sched!(55));
        round!(56, sched!(56));
        round!(57, sched!(57));
        round!(58, sched!(58));
        round!(59, sched!(59));
        round!(60, sched!(60));
        round!(61, sched!(61));
        round!(62, sched!(62));
        round!(63, sched!(63));
        // Second hash: W0..W7 = first digest, then padding and length.
        let digest = [
            add!(a, mid[0]),
            add!(b, mid[1]),
            add!(c, mid[2]),
            add!(d, mid[3]),
            add!(e, mid[4]),
            add!(f, mid[5]),
            add!(g, mid[6]),
            add!(h, mid[7]),
        ];
        w = [zero; 16];
        w[..8].copy_from_slice(&digest);
        w[8] = splat(0x8000_0000);
        w[15] = splat(256);
        [a, b, c, d, e, f, g, h] = iv;
        round!(0, w[0]);
        round!(1, w[1]);
        round!(2, w[2]);
        round!(3, w[3]);
        round!(4, w[4]);
        round!(5, w[5]);
        round!(6, w[6]);
        round!(7, w[7]);
        round!(8, w[8]);
        round!(9, w[9]);
        round!(10, w[10]);
        round!(11, w[11]);
        round!(12, w[12]);
        round!(13, w[13]);
        round!(14, w[14]);
        round!(15, w[15]);
        round!(16, sched!(16));
        round!(17, sched!(17));
        round!(18, sched!(18));
        round!(19, sched!(19));
        round!(20, sched!(20));
        round!(21, sched!(21));
        round!(22, sched!(22));
        round!(23, sched!(23));
        round!(24, sched!(24));
        round!(25, sched!(25));
        round!(26, sched!(26));
        round!(27, sched!(27));
        round!(28, sched!(28));
        round!(29, sched!(29));
        round!(30, sched!(30));
        round!(31, sched!(31));
        round!(32, sched!(32));
        round!(33, sched!(33));
        round!(34, sched!(34));
        round!(35, sched!(35));
        round!(36, sched!(36));
        round!(37, sched!(37));
        round!(38, sched!(38));
        round!(39, sched!(39));
        round!(40, sched!(40));
        round!(41, sched!(41));
        round!(42, sched!(42));
        round!(43, sched!(43));
        round!(44, sched!(44));
        round!(45, sched!(45));
        round!(46, sched!(46));
        round!(47, sched!(47));
        round!(48, sched!(48));
        round!(49, sched!(49));
        round!(50, sched!(50));
        round!(51, sched!(51));
        round!(52, sched!(52));
        round!(53, sched!(53));
        round!(54, sched!(54));
        round!(55, sched!(55));
        round!(56, sched!(56));
        round!(57, sched!(57));
        round!(58, sched!(58));
        round!(59, sched!(59));
        round!(60, sched!(60));
        let _ = (a, b, c, d, f, g, h);
        let h7 = add!(iv[7], e);
        let mut lanes = [0u32; 8];
        _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), h7);
        for (i, v) in lanes.iter().enumerate() {
            let nonce = n + i as u64;
            if v.swap_bytes() <= top && nonce < end && input.confirm(nonce as u32).is_some() {
                out.push(nonce as u32);
            }
        }
        n += LANES;
    }
}
