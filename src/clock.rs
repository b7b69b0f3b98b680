//! The one wall clock the drivers read (the protocol core never does: it
//! gets the time with every input).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds: what the node driver hands the core with
/// each input, and what the observer stamps its records with.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The Unix-ms time `d` after `t_ms` (saturating): how the protocol core
/// turns its intervals, which are [`Duration`]s, into deadlines.
#[must_use]
pub fn after(t_ms: u64, d: Duration) -> u64 {
    t_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time from `since_ms` to `now_ms` (zero when `since_ms` is later).
#[must_use]
pub fn elapsed(now_ms: u64, since_ms: u64) -> Duration {
    Duration::from_millis(now_ms.saturating_sub(since_ms))
}

/// Whole Unix seconds of a Unix-ms time: the unit of header times
/// (`nTime`) and of the future-time limit.
#[must_use]
pub const fn unix_secs(t_ms: u64) -> u64 {
    t_ms / 1000
}

/// The Unix-ms time of a Unix-seconds one (a header's `nTime`).
#[must_use]
pub const fn from_unix_secs(secs: u64) -> u64 {
    secs.saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_and_elapsed_times() {
        assert_eq!(after(1_000, Duration::from_secs(2)), 3_000);
        assert_eq!(after(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
        assert_eq!(elapsed(5_000, 2_000), Duration::from_secs(3));
        assert_eq!(elapsed(2_000, 5_000), Duration::ZERO);
        assert_eq!(unix_secs(1_999), 1);
        assert_eq!(from_unix_secs(2), 2_000);
    }
}
