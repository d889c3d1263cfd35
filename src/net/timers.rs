//! Deadlines for the event loop: a min-heap of `(deadline, key)` whose earliest entry sets
//! the poll timeout.
//!
//! Cancelling is left to the owner of a key: a timer that fires for something that no longer
//! waits (a generation mismatch, say) is ignored there. That keeps this structure a plain heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Pending deadlines, each carrying an opaque key chosen by whoever armed it.
#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(u64, u64, u64)>>,
    seq: u64,
}

impl Timers {
    /// An empty set.
    pub fn new() -> Timers {
        Timers::default()
    }

    /// Arms a timer firing at monotonic `deadline_ms` with `key`. Timers with equal deadlines
    /// fire in the order they were armed.
    pub fn arm(&mut self, deadline_ms: u64, key: u64) {
        self.seq += 1;
        self.heap.push(Reverse((deadline_ms, self.seq, key)));
    }

    /// Removes and returns the key of the earliest timer due at `now_ms`, if any.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<u64> {
        match self.heap.peek() {
            Some(Reverse((deadline, _, _))) if *deadline <= now_ms => self.heap.pop().map(|Reverse((_, _, key))| key),
            _ => None,
        }
    }

    /// The earliest deadline, if any timer is armed.
    pub fn next_deadline(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((deadline, _, _))| *deadline)
    }

    /// How long the poll may sleep at `now_ms`: until the earliest deadline, or forever
    /// (`None`) when nothing is armed.
    pub fn poll_timeout(&self, now_ms: u64) -> Option<Duration> {
        self.next_deadline()
            .map(|d| Duration::from_millis(d.saturating_sub(now_ms)))
    }

    /// Number of armed timers (fired or cancelled-by-owner ones are not counted).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_then_arming_order() {
        let mut t = Timers::new();
        t.arm(30, 3);
        t.arm(10, 1);
        t.arm(10, 2);
        assert_eq!(t.next_deadline(), Some(10));
        assert_eq!(t.pop_due(9), None);
        assert_eq!(t.pop_due(10), Some(1));
        assert_eq!(t.pop_due(10), Some(2));
        assert_eq!(t.pop_due(29), None);
        assert_eq!(t.pop_due(100), Some(3));
        assert!(t.is_empty());
    }

    #[test]
    fn poll_timeout_is_time_to_earliest_deadline() {
        let mut t = Timers::new();
        assert_eq!(t.poll_timeout(5), None);
        t.arm(50, 0);
        assert_eq!(t.poll_timeout(20), Some(Duration::from_millis(30)));
        assert_eq!(t.poll_timeout(80), Some(Duration::ZERO));
    }
}
