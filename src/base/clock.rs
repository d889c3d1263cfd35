//! The clock: read once per loop turn by whoever runs the loop, handed down as [`Now`] to
//! everything below it, so that a simulation can hand down its own.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The clock as read once per loop turn (Redis caches time per event-loop tick the same way):
/// a monotonic millisecond count for deadlines, and the wall clock for timestamps we publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds since the clock was created; never goes backwards.
    pub mono_ms: u64,
    /// Milliseconds since the Unix epoch (UTC); may jump when the system clock is set.
    pub wall_ms: i64,
}

/// Reads the process clocks. Only the event loop owns one; everything below it receives `Now`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic() {
        let c = Clock::new();
        let a = c.now();
        let b = c.now();
        assert!(b.mono_ms >= a.mono_ms);
        assert!(a.wall_ms > 1_600_000_000_000);
    }
}
