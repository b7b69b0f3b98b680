//! Byte allowances for serving sync requests: a token bucket per
//! connection and one for the whole node, so the block reads that peers'
//! `GetBlocks` cost the core thread are bounded in bytes per second, not
//! only in requests per second (issue 22, item 3).
//!
//! Before, each admitted peer could ask 10 requests a second of up to
//! [`RESPONSE_BLOCK_BYTES`] each: 80 MiB/s per peer, about 5 GiB/s for
//! 64 inbound peers, all read on the core thread.

use crate::protocol::messages::RESPONSE_BLOCK_BYTES;

/// Bytes of blocks one connection may be served per second, on average.
pub const SERVED_BYTES_PER_SEC_PER_PEER: u64 = RESPONSE_BLOCK_BYTES as u64;

/// Bytes of blocks the node serves per second to all peers together.
pub const SERVED_BYTES_PER_SEC_TOTAL: u64 = 4 * RESPONSE_BLOCK_BYTES as u64;

/// A token bucket of bytes: it refills at `rate` bytes a second up to
/// `capacity` (two seconds' worth) and may go into debt by at most one
/// answer's overshoot (the last block read). An answer is allowed only
/// while the balance is positive, and its byte cap is the balance.
#[derive(Clone, Copy, Debug)]
pub struct ByteBucket {
    /// Bytes available (negative: in debt).
    balance: i64,
    /// Refill per second, bytes.
    rate: u64,
    /// When `balance` was last brought up to date, Unix ms.
    updated_ms: u64,
}

impl ByteBucket {
    /// A full bucket refilled at `rate` bytes a second.
    #[must_use]
    pub fn new(rate: u64, now_ms: u64) -> ByteBucket {
        ByteBucket {
            balance: Self::capacity_of(rate),
            rate,
            updated_ms: now_ms,
        }
    }

    fn capacity_of(rate: u64) -> i64 {
        i64::try_from(rate.saturating_mul(2)).unwrap_or(i64::MAX)
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.updated_ms);
        if elapsed == 0 {
            return;
        }
        let add = self.rate.saturating_mul(elapsed) / 1000;
        let add = i64::try_from(add).unwrap_or(i64::MAX);
        self.balance = self
            .balance
            .saturating_add(add)
            .min(Self::capacity_of(self.rate));
        self.updated_ms = now_ms;
    }

    /// The bytes that may be spent at `now_ms` (0 while in debt).
    pub fn available(&mut self, now_ms: u64) -> usize {
        self.refill(now_ms);
        usize::try_from(self.balance.max(0)).unwrap_or(usize::MAX)
    }

    /// Spends `bytes` (the balance may go negative).
    pub fn spend(&mut self, bytes: usize, now_ms: u64) {
        self.refill(now_ms);
        let b = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.balance = self.balance.saturating_sub(b);
    }

    /// Milliseconds until the balance is positive again (0 if it is).
    #[must_use]
    pub fn ms_until_positive(&self) -> u64 {
        if self.balance > 0 || self.rate == 0 {
            return 0;
        }
        (self.balance.unsigned_abs() + 1).saturating_mul(1000) / self.rate + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_two_seconds_worth() {
        let mut b = ByteBucket::new(1000, 0);
        assert_eq!(b.available(0), 2000);
        b.spend(2500, 0);
        assert_eq!(b.available(0), 0, "in debt");
        assert_eq!(b.ms_until_positive(), 502);
        assert_eq!(b.available(500), 0);
        assert_eq!(b.available(501), 1);
        assert_eq!(b.available(10_000), 2000, "capped at capacity");
    }
}
