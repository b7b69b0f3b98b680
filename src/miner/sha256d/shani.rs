//! SHA-NI backend: x86-64 SHA extensions, three nonces interleaved.
//!
//! `sha256rnds2` has a latency of several cycles but the unit accepts a new
//! one every cycle or two, so one hash stream leaves it idle most of the
//! time. Three independent streams (three nonces) fill it; a fourth runs out
//! of the 16 xmm registers. The state is kept in the instruction's
//! ABEF/CDGH register layout from the midstate to the final check.
//!
//! Work cut per nonce:
//! - the midstate and the first two rounds of the second block (words
//!   W0, W1 do not depend on the nonce) are computed once per template;
//! - the second hash stops after 62 of 64 rounds: the final word
//!   `H7 = IV[7] + f` is already known there, and only a hash whose top word
//!   meets the target's top word is confirmed with the reference code.

use core::arch::x86_64::*;

use super::{ScanInput, IV, K};

/// Nonces hashed side by side.
const STREAMS: usize = 3;

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

/// Four rounds (group `$g` of 16) on every stream, extending the message
/// schedule first when `$g >= 4`.
macro_rules! group {
    ($s0:ident, $s1:ident, $m:ident, $kk:ident, $g:literal) => {
        for i in 0..STREAMS {
            if $g >= 4 {
                let t = _mm_sha256msg1_epu32($m[i][$g % 4], $m[i][($g + 1) % 4]);
                let t = _mm_add_epi32(
                    t,
                    _mm_alignr_epi8::<4>($m[i][($g + 3) % 4], $m[i][($g + 2) % 4]),
                );
                $m[i][$g % 4] = _mm_sha256msg2_epu32(t, $m[i][($g + 3) % 4]);
            }
            let msg = _mm_add_epi32($m[i][$g % 4], $kk[$g]);
            $s1[i] = _mm_sha256rnds2_epu32($s1[i], $s0[i], msg);
            $s0[i] = _mm_sha256rnds2_epu32($s0[i], $s1[i], _mm_shuffle_epi32::<0x0E>(msg));
        }
    };
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[allow(clippy::needless_range_loop)]
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
    let t = input.tail;
    let w0 = _mm_set_epi32(0, t[2] as i32, t[1] as i32, t[0] as i32);
    // Rounds 0 and 1 of the second block use only W0 and W1.
    let pre_abef2 = _mm_sha256rnds2_epu32(mid_cdgh, mid_abef, _mm_add_epi32(w0, kk[0]));
    let zero = _mm_setzero_si128();
    let pad80 = _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32);
    let len640 = _mm_set_epi32(640, 0, 0, 0);
    let len256 = _mm_set_epi32(256, 0, 0, 0);
    let top = input.target_top;

    let end = u64::from(start) + u64::from(count);
    let mut n = u64::from(start);
    while n < end {
        let mut m = [[zero; 4]; STREAMS];
        let mut s0 = [zero; STREAMS];
        let mut s1 = [zero; STREAMS];
        // First hash, second block: finish group 0 from the precomputed state.
        for i in 0..STREAMS {
            let nonce = (n + i as u64) as u32;
            m[i] = [
                _mm_insert_epi32::<3>(w0, nonce.swap_bytes() as i32),
                pad80,
                zero,
                len640,
            ];
            let msg = _mm_add_epi32(m[i][0], kk[0]);
            s1[i] = pre_abef2;
            s0[i] = _mm_sha256rnds2_epu32(mid_abef, pre_abef2, _mm_shuffle_epi32::<0x0E>(msg));
        }
        group!(s0, s1, m, kk, 1);
        group!(s0, s1, m, kk, 2);
        group!(s0, s1, m, kk, 3);
        group!(s0, s1, m, kk, 4);
        group!(s0, s1, m, kk, 5);
        group!(s0, s1, m, kk, 6);
        group!(s0, s1, m, kk, 7);
        group!(s0, s1, m, kk, 8);
        group!(s0, s1, m, kk, 9);
        group!(s0, s1, m, kk, 10);
        group!(s0, s1, m, kk, 11);
        group!(s0, s1, m, kk, 12);
        group!(s0, s1, m, kk, 13);
        group!(s0, s1, m, kk, 14);
        group!(s0, s1, m, kk, 15);
        // The first digest (a..h) becomes the second hash's W0..W7.
        for i in 0..STREAMS {
            let abef = _mm_add_epi32(s0[i], mid_abef); // lanes F E B A
            let cdgh = _mm_add_epi32(s1[i], mid_cdgh); // lanes H G D C
            m[i] = [
                _mm_shuffle_epi32::<0xB1>(_mm_unpackhi_epi64(abef, cdgh)),
                _mm_shuffle_epi32::<0xB1>(_mm_unpacklo_epi64(abef, cdgh)),
                pad80,
                len256,
            ];
            s0[i] = iv_abef;
            s1[i] = iv_cdgh;
        }
        group!(s0, s1, m, kk, 0);
        group!(s0, s1, m, kk, 1);
        group!(s0, s1, m, kk, 2);
        group!(s0, s1, m, kk, 3);
        group!(s0, s1, m, kk, 4);
        group!(s0, s1, m, kk, 5);
        group!(s0, s1, m, kk, 6);
        group!(s0, s1, m, kk, 7);
        group!(s0, s1, m, kk, 8);
        group!(s0, s1, m, kk, 9);
        group!(s0, s1, m, kk, 10);
        group!(s0, s1, m, kk, 11);
        group!(s0, s1, m, kk, 12);
        group!(s0, s1, m, kk, 13);
        group!(s0, s1, m, kk, 14);
        // Rounds 60 and 61: afterwards lane 0 of the ABEF register is f62,
        // which rounds 62 and 63 only move into h.
        for i in 0..STREAMS {
            let t = _mm_sha256msg1_epu32(m[i][3], m[i][0]);
            let t = _mm_add_epi32(t, _mm_alignr_epi8::<4>(m[i][2], m[i][1]));
            let w60 = _mm_sha256msg2_epu32(t, m[i][2]);
            let abef62 = _mm_sha256rnds2_epu32(s1[i], s0[i], _mm_add_epi32(w60, kk[15]));
            let h7 = IV[7].wrapping_add(_mm_cvtsi128_si32(abef62) as u32);
            let nonce = n + i as u64;
            if h7.swap_bytes() <= top && nonce < end && input.confirm(nonce as u32).is_some() {
                out.push(nonce as u32);
            }
        }
        n += STREAMS as u64;
    }
}
