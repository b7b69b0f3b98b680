//! Time rules: median-time-past and the future limit.
//!
//! Core: `CBlockIndex::GetMedianTimePast` (src/chain.h, 11 blocks) and
//! `MAX_FUTURE_BLOCK_TIME` (src/chain.h, 2 hours), checked in
//! `ContextualCheckBlockHeader` (src/validation.cpp). BIP113 made the same
//! median the clock for lock-times.

/// Number of previous blocks whose median timestamp a new block must exceed.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// How far (seconds) a block's time may be ahead of the node's clock.
pub const MAX_FUTURE_BLOCK_TIME_SECS: u64 = 2 * 60 * 60;

/// BIP94: the first block of a retarget window may be at most this many
/// seconds earlier than its parent.
pub const MAX_TIMEWARP_SECS: u32 = 600;

/// Median of up to 11 timestamps (the previous blocks, any order), as Core's
/// `GetMedianTimePast`: sort, take the element at `len / 2`.
///
/// # Panics
/// Never for `times.len() <= 11`; an empty slice returns 0.
#[must_use]
pub fn median_time_past(times: &[u32]) -> u32 {
    let mut buf = [0u32; MEDIAN_TIME_SPAN];
    let n = times.len().min(MEDIAN_TIME_SPAN);
    if n == 0 {
        return 0;
    }
    buf[..n].copy_from_slice(&times[times.len() - n..]);
    let slice = &mut buf[..n];
    slice.sort_unstable();
    slice[n / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_eleven_and_fewer() {
        assert_eq!(median_time_past(&[5, 1, 9, 3, 7, 11, 2, 8, 4, 10, 6]), 6);
        assert_eq!(median_time_past(&[10]), 10);
        // Core takes element len/2 of the sorted list: for [1, 2] that is 2.
        assert_eq!(median_time_past(&[2, 1]), 2);
        assert_eq!(median_time_past(&[]), 0);
    }
}
