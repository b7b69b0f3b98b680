//! The sha256d body shared by the lane-parallel SIMD backends (`avx2`: 8
//! lanes of 32 bits, `avx512`: 16), one nonce per lane, written once over
//! a lane type's operations.
//!
//! Work cuts (as in the scalar backend): the midstate and rounds 0..=3 of
//! the second block are computed once per template (broadcast to all
//! lanes, the nonce then added to `a` and `e`), the schedule is extended in
//! a 16-word ring, and the second hash stops after round 60
//! (`H7 = IV[7] + e`). Lanes whose top word meets the target's top word are
//! confirmed with the reference code.
//!
//! A backend supplies a module with the vector type `V`, the lane count
//! `LANES` and `#[inline]` operations compiled for its target feature:
//! `splat`, `add`, `xor3`, `ch`, `maj`, `rotr::<N>`, `shr::<N>`,
//! `nonces(first)` (lane i = first + i), `bswap` and `store`. Where the
//! instruction set has them, `xor3`, `ch` and `maj` are one ternary-logic
//! instruction each and `rotr` one rotation (AVX-512F: `vpternlogd`,
//! `vprord`); AVX2 composes them from shifts and boolean operations.

/// Defines, in the invoking backend's module, for the lane operations
/// module `$ops` compiled for target feature `$feat`: `is_supported()`
/// (run-time detection of `$feat`), the safe `scan(input, start, count,
/// out)` that checks it, and the kernel `scan_impl` itself.
macro_rules! lanes_kernel {
    ($feat:tt, $ops:ident) => {
        #[doc = concat!("Whether this CPU has `", $feat, "`.")]
        #[must_use]
        pub fn is_supported() -> bool {
            is_x86_feature_detected!($feat)
        }

        /// Scans `start .. start + count`, pushing every solution to `out`.
        ///
        /// # Panics
        /// If the CPU lacks the backend's feature; [`super::Backend::scan`]
        /// checks first.
        pub fn scan(
            input: &$crate::miner::sha256d::ScanInput,
            start: u32,
            count: u32,
            out: &mut Vec<u32>,
        ) {
            assert!(
                is_supported(),
                concat!($feat, " scan on a CPU without ", $feat)
            );
            // SAFETY: the assertion proves the CPU supports `$feat`, the
            // only feature `scan_impl` and `$ops` are compiled for. Memory
            // is touched only through safe Rust, except `$ops::store`'s
            // unaligned store into a local array of exactly one vector's
            // size.
            unsafe { scan_impl(input, start, count, out) }
        }

        #[target_feature(enable = $feat)]
        // The last schedule words written are never read again: harmless.
        #[allow(clippy::too_many_lines, unused_assignments)]
        unsafe fn scan_impl(
            input: &$crate::miner::sha256d::ScanInput,
            start: u32,
            count: u32,
            out: &mut Vec<u32>,
        ) {
            use $crate::miner::sha256d::{IV, K};
            use $ops::V;
            let mid: [V; 8] = core::array::from_fn(|i| $ops::splat(input.midstate[i]));
            let pre: [V; 8] = core::array::from_fn(|i| $ops::splat(input.round3_state[i]));
            let iv: [V; 8] = core::array::from_fn(|i| $ops::splat(IV[i]));
            let kk: [V; 64] = core::array::from_fn(|i| $ops::splat(K[i]));
            let tail: [V; 3] = core::array::from_fn(|i| $ops::splat(input.tail[i]));
            let top = input.target_top;
            let zero = $ops::splat(0);

            let end = u64::from(start) + u64::from(count);
            let mut n = u64::from(start);
            while n < end {
                let mut w: [V; 16] = [zero; 16];
                w[0] = tail[0];
                w[1] = tail[1];
                w[2] = tail[2];
                // The nonce is little-endian in the header; SHA-256 reads
                // big-endian words.
                w[3] = $ops::bswap($ops::nonces(n as u32));
                w[4] = $ops::splat(0x8000_0000);
                w[15] = $ops::splat(640);
                // Rounds 0..=3: the precomputed state plus W3 in `a` and `e`.
                let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = pre;
                a = $ops::add(a, w[3]);
                e = $ops::add(e, w[3]);
                // FIPS 180-4 6.2.2 step 1: W[t] for t >= 16, in a ring.
                macro_rules! sched {
                    ($t:literal) => {{
                        let w2 = w[($t - 2) % 16];
                        let w15 = w[($t - 15) % 16];
                        let s1 = $ops::xor3(
                            $ops::rotr::<17>(w2),
                            $ops::rotr::<19>(w2),
                            $ops::shr::<10>(w2),
                        );
                        let s0 = $ops::xor3(
                            $ops::rotr::<7>(w15),
                            $ops::rotr::<18>(w15),
                            $ops::shr::<3>(w15),
                        );
                        let v = $ops::add(
                            $ops::add(s1, w[($t - 7) % 16]),
                            $ops::add(s0, w[$t % 16]),
                        );
                        w[$t % 16] = v;
                        v
                    }};
                }
                // FIPS 180-4 6.2.2 step 3: one round with word `$w`.
                macro_rules! round {
                    ($t:literal, $w:expr) => {{
                        let wt = $w;
                        let s1 =
                            $ops::xor3($ops::rotr::<6>(e), $ops::rotr::<11>(e), $ops::rotr::<25>(e));
                        let t1 = $ops::add(
                            $ops::add($ops::add(h, s1), $ops::add($ops::ch(e, f, g), kk[$t])),
                            wt,
                        );
                        let s0 =
                            $ops::xor3($ops::rotr::<2>(a), $ops::rotr::<13>(a), $ops::rotr::<22>(a));
                        let t2 = $ops::add(s0, $ops::maj(a, b, c));
                        h = g;
                        g = f;
                        f = e;
                        e = $ops::add(d, t1);
                        d = c;
                        c = b;
                        b = a;
                        a = $ops::add(t1, t2);
                    }};
                }
                seq_macro::seq!(T in 4..16 { round!(T, w[T]); });
                seq_macro::seq!(T in 16..64 { round!(T, sched!(T)); });
                // Second hash: W0..W7 = first digest, then padding, length.
                let digest = [
                    $ops::add(a, mid[0]),
                    $ops::add(b, mid[1]),
                    $ops::add(c, mid[2]),
                    $ops::add(d, mid[3]),
                    $ops::add(e, mid[4]),
                    $ops::add(f, mid[5]),
                    $ops::add(g, mid[6]),
                    $ops::add(h, mid[7]),
                ];
                w = [zero; 16];
                w[..8].copy_from_slice(&digest);
                w[8] = $ops::splat(0x8000_0000);
                w[15] = $ops::splat(256);
                [a, b, c, d, e, f, g, h] = iv;
                seq_macro::seq!(T in 0..16 { round!(T, w[T]); });
                seq_macro::seq!(T in 16..61 { round!(T, sched!(T)); });
                let _ = (a, b, c, d, f, g, h);
                let h7 = $ops::store($ops::add(iv[7], e));
                for (i, v) in h7.iter().enumerate() {
                    let nonce = n + i as u64;
                    if v.swap_bytes() <= top
                        && nonce < end
                        && input.confirm(nonce as u32).is_some()
                    {
                        out.push(nonce as u32);
                    }
                }
                n += $ops::LANES;
            }
        }
    };
}

pub(crate) use lanes_kernel;
