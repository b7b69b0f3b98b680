//! AVX2 backend: eight nonces per instruction in 256-bit lanes; the body
//! is [`super::lanes`]'s, over the operations in `ops` below.

/// 8 lanes of 32 bits in a `__m256i`.
mod ops {
    use core::arch::x86_64::*;

    pub type V = __m256i;
    pub const LANES: u64 = 8;

    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn splat(v: u32) -> V {
        _mm256_set1_epi32(v as i32)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn add(a: V, b: V) -> V {
        _mm256_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn xor3(a: V, b: V, c: V) -> V {
        _mm256_xor_si256(_mm256_xor_si256(a, b), c)
    }
    /// Ch(e, f, g) = (e & f) ^ (!e & g).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn ch(e: V, f: V, g: V) -> V {
        _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g))
    }
    /// Maj(a, b, c) = (a & b) | (c & (a | b)).
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn maj(a: V, b: V, c: V) -> V {
        _mm256_or_si256(
            _mm256_and_si256(a, b),
            _mm256_and_si256(c, _mm256_or_si256(a, b)),
        )
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn rotr<const N: i32>(x: V) -> V {
        // `N` is 2..=25 at every call, so both shift counts are in range.
        _mm256_or_si256(
            _mm256_srli_epi32::<N>(x),
            _mm256_sll_epi32(x, _mm_cvtsi32_si128(32 - N)),
        )
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn shr<const N: i32>(x: V) -> V {
        _mm256_srli_epi32::<N>(x)
    }
    /// Lane i holds `first + i`.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn nonces(first: u32) -> V {
        _mm256_add_epi32(splat(first), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0))
    }
    /// Byte-swaps each lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn bswap(x: V) -> V {
        let m = _mm256_set_epi8(
            12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4,
            5, 6, 7, 0, 1, 2, 3,
        );
        _mm256_shuffle_epi8(x, m)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn store(x: V) -> [u32; 8] {
        let mut lanes = [0u32; 8];
        // SAFETY: `lanes` is 32 writable bytes; the store is unaligned.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), x) };
        lanes
    }
}

super::lanes::lanes_kernel!("avx2", ops);

#[cfg(test)]
mod tests {
    /// The lane operations against their scalar definitions (FIPS 180-4
    /// 4.1.2), on every lane.
    #[test]
    fn lane_operations_match_scalar_definitions() {
        if !super::is_supported() {
            return;
        }
        let xs = [
            0x0123_4567u32,
            0x89ab_cdef,
            0xdead_beef,
            0,
            u32::MAX,
            1,
            0x8000_0000,
            42,
        ];
        // SAFETY: AVX2 is present (checked above).
        unsafe {
            use super::ops;
            let v = |k: u32| ops::add(ops::nonces(0), ops::splat(k));
            let got = ops::store(ops::rotr::<7>(v(xs[0])));
            for (i, g) in got.iter().enumerate() {
                assert_eq!(*g, (xs[0] + i as u32).rotate_right(7));
            }
            let got = ops::store(ops::bswap(v(xs[1])));
            for (i, g) in got.iter().enumerate() {
                assert_eq!(*g, (xs[1] + i as u32).swap_bytes());
            }
            let (e, f, g) = (v(xs[2]), v(xs[3]), v(xs[1]));
            let ch = ops::store(ops::ch(e, f, g));
            let maj = ops::store(ops::maj(e, f, g));
            for i in 0..8u32 {
                let (e, f, g) = (xs[2].wrapping_add(i), xs[3] + i, xs[1].wrapping_add(i));
                assert_eq!(ch[i as usize], (e & f) ^ (!e & g));
                assert_eq!(maj[i as usize], (e & f) ^ (e & g) ^ (f & g));
            }
        }
    }
}
