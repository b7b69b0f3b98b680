//! The simulator's event queue: items for node `to` at a virtual time,
//! popped in (time, sequence) order, so that one set of calls always gives
//! the same run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::HashMap;

/// A priority queue of `T`s addressed to nodes, with the virtual clock.
pub(super) struct EventQueue<T> {
    now_ms: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    payloads: HashMap<u64, T>,
}

impl<T> EventQueue<T> {
    /// An empty queue whose clock stands at `start_ms` (virtual Unix ms).
    pub(super) fn new(start_ms: u64) -> EventQueue<T> {
        EventQueue {
            now_ms: start_ms,
            seq: 0,
            heap: BinaryHeap::new(),
            payloads: HashMap::default(),
        }
    }

    /// The virtual time, Unix ms.
    pub(super) fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Queues `item` for node `to`, `delay_ms` from now; among items due
    /// at the same time the first queued comes out first.
    pub(super) fn schedule(&mut self, delay_ms: u64, to: usize, item: T) {
        self.seq += 1;
        self.heap.push(Reverse((
            self.now_ms.saturating_add(delay_ms),
            self.seq,
            to,
        )));
        self.payloads.insert(self.seq, item);
    }

    /// The next item due at or before `until`, with the clock moved to its
    /// time; `None` (and the clock at `until`) when there is none.
    pub(super) fn pop_until(&mut self, until: u64) -> Option<(usize, T)> {
        match self.heap.peek() {
            Some(&Reverse((t, seq, to))) if t <= until => {
                self.heap.pop();
                self.now_ms = t;
                let item = self
                    .payloads
                    .remove(&seq)
                    .expect("every queued entry has its payload");
                Some((to, item))
            }
            _ => {
                self.now_ms = self.now_ms.max(until);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_by_time_then_by_queueing_order() {
        let mut q = EventQueue::new(1_000);
        q.schedule(20, 0, "late");
        q.schedule(10, 1, "first");
        q.schedule(10, 2, "second");
        assert_eq!(q.pop_until(1_005), None);
        assert_eq!(q.now_ms(), 1_005);
        assert_eq!(q.pop_until(1_100), Some((1, "first")));
        assert_eq!(q.now_ms(), 1_010);
        assert_eq!(q.pop_until(1_100), Some((2, "second")));
        assert_eq!(q.pop_until(1_100), Some((0, "late")));
        assert_eq!(q.pop_until(1_100), None);
        assert_eq!(q.now_ms(), 1_100);
    }
}
