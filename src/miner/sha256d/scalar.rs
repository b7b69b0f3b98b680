//! Portable scalar backend.
//!
//! Per template: the midstate and rounds 0..=3 of the second block (see
//! [`ScanInput::round3_state`]). Per nonce: rounds 4..63 of the first hash,
//! then 61 of the second hash's 64 rounds: the final word H7 is `IV[7] + e` after round 60, so rounds 61..63 are run
//! only when H7 already meets the target's top word.

use super::{round, ScanInput, IV};

#[inline(always)]
fn ssig0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}
#[inline(always)]
fn ssig1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

/// Expands words 16..64 of the schedule in place.
#[inline(always)]
fn expand(w: &mut [u32; 64]) {
    for t in 16..64 {
        w[t] = ssig1(w[t - 2])
            .wrapping_add(w[t - 7])
            .wrapping_add(ssig0(w[t - 15]))
            .wrapping_add(w[t - 16]);
    }
}

/// Scans `start .. start + count`, pushing every solution to `out`.
pub fn scan(input: &ScanInput, start: u32, count: u32, out: &mut Vec<u32>) {
    let mut w1 = [0u32; 64];
    w1[..3].copy_from_slice(&input.tail);
    w1[4] = 0x8000_0000;
    w1[15] = 640;
    let mut w2 = [0u32; 64];
    w2[8] = 0x8000_0000;
    w2[15] = 256;
    let end = start as u64 + count as u64;
    for n in start as u64..end {
        let nonce = n as u32;
        // First hash, second block.
        w1[3] = nonce.swap_bytes();
        expand(&mut w1);
        let mut s = input.round3_state;
        s[0] = s[0].wrapping_add(w1[3]);
        s[4] = s[4].wrapping_add(w1[3]);
        for (t, &w) in w1.iter().enumerate().skip(4) {
            round(&mut s, t, w);
        }
        for i in 0..8 {
            w2[i] = input.midstate[i].wrapping_add(s[i]);
        }
        // Second hash, one block, up to round 60.
        expand(&mut w2);
        let mut s = IV;
        for (t, &w) in w2.iter().enumerate().take(61) {
            round(&mut s, t, w);
        }
        let h7 = IV[7].wrapping_add(s[4]);
        if h7.swap_bytes() <= input.target_top && input.confirm(nonce).is_some() {
            out.push(nonce);
        }
    }
}
