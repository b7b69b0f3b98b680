//! The bound on unsolicited network input queued for the core thread
//! (issue 22, item 3). The swarm task never blocks: a gossip message or a
//! peer's request that would pass [`MAX_QUEUED_INPUTS`] messages or
//! [`MAX_QUEUED_INPUT_BYTES`] bytes in the queue is dropped and counted
//! (`powchain_inputs_dropped_total{kind}`). Answers to this node's own
//! requests and connection events are not gated: the node asked for the
//! first (their number is bounded by its requests in flight, and dropping
//! one would blame an honest peer for a timeout), and the second are a
//! few bytes per connection.
//!
//! Before, the channel was unbounded: gossip of up to 1.06 MB a message
//! queued without limit while the core was busy.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::protocol::Input;

/// Most gated inputs queued for the core at once.
pub const MAX_QUEUED_INPUTS: usize = 4096;

/// Most bytes of gated inputs queued for the core at once (about 30
/// full-size gossiped blocks).
pub const MAX_QUEUED_INPUT_BYTES: usize = 32 * 1024 * 1024;

/// Bytes a queued request is charged (its locator is at most 101 hashes).
const REQUEST_COST_BYTES: usize = 4 * 1024;

/// What kind of input was gated (the metric's `kind` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gated {
    /// A gossip message (block or transaction).
    Gossip,
    /// A peer's sync request.
    Request,
}

impl Gated {
    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Gated::Gossip => "gossip",
            Gated::Request => "request",
        }
    }
}

/// The kind and byte cost of `input` if it is gated, `None` if not.
#[must_use]
pub fn cost(input: &Input) -> Option<(Gated, usize)> {
    match input {
        Input::Gossip { data, .. } => Some((Gated::Gossip, data.len().max(1))),
        Input::Request { .. } => Some((Gated::Request, REQUEST_COST_BYTES)),
        _ => None,
    }
}

/// Counts of gated input in the queue (shared by the swarm task, which
/// admits, and the core thread, which releases).
#[derive(Debug, Default)]
pub struct InputGate {
    queued: AtomicUsize,
    bytes: AtomicUsize,
}

impl InputGate {
    /// Takes room for one input of `bytes`; false (nothing taken) when the
    /// queue is full in messages or in bytes.
    pub fn admit(&self, bytes: usize) -> bool {
        if self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_QUEUED_INPUTS).then_some(n + 1)
            })
            .is_err()
        {
            return false;
        }
        if self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                (b.saturating_add(bytes) <= MAX_QUEUED_INPUT_BYTES).then_some(b + bytes)
            })
            .is_err()
        {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Gives back the room of one input of `bytes` (the core took it).
    pub fn release(&self, bytes: usize) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// (inputs, bytes) queued now.
    #[must_use]
    pub fn queued(&self) -> (usize, usize) {
        (
            self.queued.load(Ordering::Acquire),
            self.bytes.load(Ordering::Acquire),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_bounds_messages_and_bytes_and_gives_room_back() {
        let g = InputGate::default();
        assert!(g.admit(MAX_QUEUED_INPUT_BYTES - 10));
        assert!(!g.admit(11), "over the byte bound");
        assert_eq!(g.queued(), (1, MAX_QUEUED_INPUT_BYTES - 10));
        g.release(MAX_QUEUED_INPUT_BYTES - 10);
        for _ in 0..MAX_QUEUED_INPUTS {
            assert!(g.admit(1));
        }
        assert!(!g.admit(1), "over the message bound");
        assert_eq!(g.queued(), (MAX_QUEUED_INPUTS, MAX_QUEUED_INPUTS));
    }
}
