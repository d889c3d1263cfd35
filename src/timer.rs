//! Deadlines for the reactor: a min-heap of `(deadline, key)` whose earliest entry sets the
//! poll timeout, and the clock reading taken once per loop turn.
//!
//! Cancelling is left to the owner of a key: a timer that fires for something that no longer
//! waits (a generation mismatch, say) is ignored there. That keeps this structure a plain heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The clock as read once per loop turn (Redis caches time per event-loop tick the same way):
/// a monotonic millisecond count for deadlines, and the wall clock for timestamps we publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds since the clock was created; never goes backwards.
    pub mono_ms: u64,
    /// Milliseconds since the Unix epoch (UTC); may jump when the system clock is set.
    pub wall_ms: i64,
}

/// Reads the process clocks. Only the reactor owns one; everything below it receives `Now`.
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Starts the monotonic count at zero.
    pub fn new() -> Clock {
        Clock { start: Instant::now() }
    }

    /// Reads both clocks.
    pub fn now(&self) -> Now {
        let wall_ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_millis() as i64,
            Err(e) => -(e.duration().as_millis() as i64),
        };
        Now {
            mono_ms: self.start.elapsed().as_millis() as u64,
            wall_ms,
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

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

    #[test]
    fn clock_is_monotonic() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b.mono_ms >= a.mono_ms);
        assert!(a.wall_ms > 1_600_000_000_000);
    }
}
