//! The rate limiter in front of `GET /payments/service-health`, as the official processor
//! configures ASP.NET Core's fixed-window limiter: one permit per window, up to two callers
//! waiting (oldest first) for the permits of the next windows, everyone else refused at once.
//!
//! Windows are counted from the first call, as the framework creates the limiter lazily.
//! (The framework checks for a new window on a 100 ms heartbeat, so its windows run up to
//! 100 ms long; here they are exact.)

use std::collections::VecDeque;

/// Permits granted per window.
pub const PERMITS_PER_WINDOW: u32 = 1;

/// What becomes of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Answer now.
    Now,
    /// Queued: [`HealthLimiter::advance`] releases it at the start of a later window.
    Queued,
    /// The queue is full: answer 429.
    Refused,
}

/// The limiter's state. `T` identifies a waiting caller to whoever owns the limiter.
#[derive(Debug)]
pub struct HealthLimiter<T> {
    window_ms: u64,
    queue_limit: usize,
    /// Start of the current window; `None` before the first call.
    window_start: Option<u64>,
    permits: u32,
    waiting: VecDeque<T>,
}

impl<T> HealthLimiter<T> {
    /// A limiter with windows of `window_ms` (at least 1) and room for `queue_limit` waiters.
    pub fn new(window_ms: u64, queue_limit: usize) -> HealthLimiter<T> {
        HealthLimiter {
            window_ms: window_ms.max(1),
            queue_limit,
            window_start: None,
            permits: PERMITS_PER_WINDOW,
            waiting: VecDeque::with_capacity(queue_limit),
        }
    }

    /// Admits one call at `now_ms`. Windows that began since the last call are opened first,
    /// handing their permits to waiters (passed to `release`, oldest first), so a newcomer
    /// never overtakes a waiter.
    pub fn request(&mut self, now_ms: u64, caller: T, release: impl FnMut(T)) -> Admit {
        if self.window_start.is_none() {
            self.window_start = Some(now_ms);
        }
        self.advance(now_ms, release);
        if self.permits > 0 {
            self.permits -= 1;
            Admit::Now
        } else if self.waiting.len() < self.queue_limit {
            self.waiting.push_back(caller);
            Admit::Queued
        } else {
            Admit::Refused
        }
    }

    /// Opens every window that began by `now_ms`; each gives its permit to the oldest waiter,
    /// who is passed to `release`. Call it at [`next_release`](Self::next_release).
    pub fn advance(&mut self, now_ms: u64, mut release: impl FnMut(T)) {
        let Some(start) = self.window_start else { return };
        if now_ms < start + self.window_ms {
            return;
        }
        let elapsed = (now_ms - start) / self.window_ms;
        self.window_start = Some(start + elapsed * self.window_ms);
        // One pass per window opened; past the number of waiters (plus the fresh window
        // itself) further passes change nothing, so the loop is bounded by the queue.
        let passes = elapsed.min(self.queue_limit as u64 + 1);
        for _ in 0..passes {
            self.permits = PERMITS_PER_WINDOW;
            while self.permits > 0 {
                let Some(caller) = self.waiting.pop_front() else { break };
                self.permits -= 1;
                release(caller);
            }
        }
    }

    /// When the next waiter is due: the start of the next window, if anyone waits.
    pub fn next_release(&self) -> Option<u64> {
        match (self.window_start, self.waiting.is_empty()) {
            (Some(start), false) => Some(start + self.window_ms),
            _ => None,
        }
    }

    /// How many callers wait.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(l: &mut HealthLimiter<u32>, now: u64, who: u32, released: &mut Vec<(u64, u32)>) -> Admit {
        l.request(now, who, |w| released.push((now, w)))
    }

    #[test]
    fn one_per_window_two_waiting_rest_refused() {
        let mut l = HealthLimiter::new(5000, 2);
        let mut rel = Vec::new();
        assert_eq!(call(&mut l, 1000, 1, &mut rel), Admit::Now);
        assert_eq!(call(&mut l, 1001, 2, &mut rel), Admit::Queued);
        assert_eq!(call(&mut l, 1002, 3, &mut rel), Admit::Queued);
        assert_eq!(call(&mut l, 1003, 4, &mut rel), Admit::Refused);
        assert_eq!(l.next_release(), Some(6000));
        l.advance(5999, |w| rel.push((5999, w)));
        assert!(rel.is_empty());
        l.advance(6000, |w| rel.push((6000, w)));
        assert_eq!(rel, vec![(6000, 2)]);
        // The window that opened at 6000 is used up by caller 2: a newcomer waits behind 3.
        assert_eq!(call(&mut l, 6001, 5, &mut rel), Admit::Queued);
        assert_eq!(call(&mut l, 6002, 6, &mut rel), Admit::Refused);
        assert_eq!(l.next_release(), Some(11_000));
        l.advance(11_000, |w| rel.push((11_000, w)));
        l.advance(16_000, |w| rel.push((16_000, w)));
        assert_eq!(rel, vec![(6000, 2), (11_000, 3), (16_000, 5)]);
        assert_eq!(l.next_release(), None);
        // 16 000's permit went to 5; the next free one is at 21 000.
        assert_eq!(call(&mut l, 20_999, 7, &mut rel), Admit::Queued);
        l.advance(21_000, |w| rel.push((21_000, w)));
        assert_eq!(call(&mut l, 21_001, 8, &mut rel), Admit::Queued);
    }

    #[test]
    fn a_late_advance_serves_one_waiter_per_missed_window() {
        let mut l = HealthLimiter::new(1000, 2);
        let mut rel = Vec::new();
        assert_eq!(call(&mut l, 0, 1, &mut rel), Admit::Now);
        assert_eq!(call(&mut l, 10, 2, &mut rel), Admit::Queued);
        assert_eq!(call(&mut l, 20, 3, &mut rel), Admit::Queued);
        // Three windows passed unobserved: both waiters got one each, the third is free.
        assert_eq!(call(&mut l, 3500, 4, &mut rel), Admit::Now);
        assert_eq!(rel, vec![(3500, 2), (3500, 3)]);
        assert_eq!(call(&mut l, 3600, 5, &mut rel), Admit::Queued);
        assert_eq!(l.next_release(), Some(4000));
    }

    #[test]
    fn only_two_windows_missed_leaves_the_current_one_used() {
        let mut l = HealthLimiter::new(1000, 2);
        let mut rel = Vec::new();
        call(&mut l, 0, 1, &mut rel);
        call(&mut l, 1, 2, &mut rel);
        call(&mut l, 2, 3, &mut rel);
        assert_eq!(call(&mut l, 2500, 4, &mut rel), Admit::Queued);
        assert_eq!(rel.len(), 2);
    }

    #[test]
    fn an_idle_limiter_keeps_its_phase() {
        let mut l = HealthLimiter::new(5000, 2);
        let mut rel = Vec::new();
        assert_eq!(call(&mut l, 100, 1, &mut rel), Admit::Now);
        assert_eq!(call(&mut l, 12_000, 2, &mut rel), Admit::Now);
        assert_eq!(call(&mut l, 12_001, 3, &mut rel), Admit::Queued);
        // Windows started at 100, 5100, 10 100: the next at 15 100.
        assert_eq!(l.next_release(), Some(15_100));
    }
}
