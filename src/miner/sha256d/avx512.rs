//! AVX-512 backend (cargo feature `avx512`): sixteen nonces per
//! instruction in 512-bit lanes, for CPUs with AVX-512F and a slow or
//! absent SHA unit. The body is [`super::lanes`]'s, shared with the AVX2
//! kernel (so the AVX2 tests cover its logic); the operations differ:
//! `vprord` rotates in one instruction, and `vpternlogd` computes Ch, Maj
//! and the three-way XORs of the sigmas in one each (truth tables 0xCA,
//! 0xE8, 0x96).
//!
//! Not built by default: no machine this project was developed on has
//! AVX-512, and a kernel no test has run is not shipped. Build with
//! `--features avx512` on such a CPU and run `cargo test --features avx512
//! miner` (the bit-for-bit test runs there; elsewhere it checks that the
//! backend is refused cleanly).

/// 16 lanes of 32 bits in a `__m512i`.
mod ops {
    use core::arch::x86_64::*;

    pub type V = __m512i;
    pub const LANES: u64 = 16;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn splat(v: u32) -> V {
        _mm512_set1_epi32(v as i32)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn add(a: V, b: V) -> V {
        _mm512_add_epi32(a, b)
    }
    /// a ^ b ^ c: truth table 0x96.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn xor3(a: V, b: V, c: V) -> V {
        _mm512_ternarylogic_epi32::<0x96>(a, b, c)
    }
    /// Ch(e, f, g): truth table 0xCA (e ? f : g).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn ch(e: V, f: V, g: V) -> V {
        _mm512_ternarylogic_epi32::<0xCA>(e, f, g)
    }
    /// Maj(a, b, c): truth table 0xE8.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn maj(a: V, b: V, c: V) -> V {
        _mm512_ternarylogic_epi32::<0xE8>(a, b, c)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn rotr<const N: i32>(x: V) -> V {
        _mm512_ror_epi32::<N>(x)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn shr<const N: u32>(x: V) -> V {
        _mm512_srli_epi32::<N>(x)
    }
    /// Lane i holds `first + i`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn nonces(first: u32) -> V {
        _mm512_add_epi32(
            splat(first),
            _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        )
    }
    /// Byte-swaps each lane (AVX-512F has no byte shuffle: by rotations,
    /// (x ror 8) & 0xff00ff00 | (x rol 8) & 0x00ff00ff).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn bswap(x: V) -> V {
        _mm512_ternarylogic_epi32::<0xCA>(
            _mm512_set1_epi32(0xff00_ff00u32 as i32),
            _mm512_ror_epi32::<8>(x),
            _mm512_rol_epi32::<8>(x),
        )
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn store(x: V) -> [u32; 16] {
        let mut lanes = [0u32; 16];
        // SAFETY: `lanes` is 64 writable bytes; the store is unaligned.
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), x) };
        lanes
    }
}

super::lanes::lanes_kernel!("avx512f", ops);
