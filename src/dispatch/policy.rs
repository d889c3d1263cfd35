//! The routing policy: given what is known of both processors and the backlog, where the
//! oldest waiting payment goes now — default, fallback, or nowhere yet.
//!
//! The reasoning (DESIGN.md "Routing"): default is cheaper, and a payment still waiting is
//! counted by no audit, so waiting costs nothing until the run ends — when a payment still
//! waiting loses its whole value. Holding a payment for `h` more milliseconds risks that with
//! probability about `h / expected_remaining_ms`; sending it to fallback costs the fee gap for
//! sure. So a payment may wait for default up to `hold_ms = fee_gap × expected_remaining_ms`,
//! then fallback is worth it. The same bound decides spilling: when default is healthy but its
//! throughput (`in-flight limit / latency`) cannot drain the backlog within `hold_ms`, the
//! excess goes to fallback now rather than becoming a backlog that cannot be drained in time.
//!
//! Audits add one more cost (SPEC §4): every few seconds the books are compared over a window
//! that ends `audit_lag_ms` ago, our summary read a moment before the processors'. A processor
//! whose delay is at least that lag stores payments whose `requestedAt` lies inside the
//! window, and one stored between the two reads is an inconsistency, fined at 35% of the
//! whole run — far more than the fee gap of every payment it could carry. So a default that
//! slow is avoided while fallback is not.

/// The policy's knobs, with these defaults; all but the retry backoff can be set from the
/// environment (`payrelay --help`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Fee of each processor as a fraction (published: 5% and 15%).
    pub fees: [f64; 2],
    /// How much longer a run is expected to last at any moment, in ms. With the fee gap it
    /// sets how long a payment may wait for default (see the module doc).
    pub expected_remaining_ms: u64,
    /// Requests in flight per processor from one instance when it is healthy.
    pub in_flight_limit: [usize; 2],
    /// Between two single probes of a processor believed failing.
    pub probe_interval_ms: u64,
    /// Shortest and longest wait for an answer before the connection is presumed dead and
    /// the attempt ambiguous; in between, the wait follows the processor's known delay. It is
    /// long on purpose: a processor stores a payment after its delay whether or not we still
    /// listen, so an early give-up only turns a clean answer into an ambiguity to resolve.
    pub min_give_up_ms: u64,
    /// See `min_give_up_ms`.
    pub max_give_up_ms: u64,
    /// First retry delay after a refusal (500, 429, connection refused); doubles per attempt.
    pub retry_backoff_ms: u64,
    /// Cap of the retry delay.
    pub max_backoff_ms: u64,
    /// How long before an audit its window ends (1.5 s in SPEC §4); a processor at least
    /// this slow is avoided when the other is not (module doc). 0 disables the rule.
    pub audit_lag_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fees: [0.05, 0.15],
            expected_remaining_ms: 120_000,
            in_flight_limit: [64, 64],
            probe_interval_ms: 500,
            min_give_up_ms: 10_000,
            max_give_up_ms: 120_000,
            retry_backoff_ms: 50,
            max_backoff_ms: 1_000,
            audit_lag_ms: 1_500,
        }
    }
}

impl Policy {
    /// How long a payment may wait for default before fallback is worth its higher fee. Zero
    /// when fallback is not dearer (then there is nothing to wait for).
    pub fn hold_ms(&self) -> u64 {
        let gap = self.fees[1] - self.fees[0];
        if gap <= 0.0 {
            return 0;
        }
        (gap * self.expected_remaining_ms as f64).round() as u64
    }

    /// How long to wait for an answer from a processor whose delay is believed to be
    /// `delay_ms`: four times the delay plus ten seconds, within the configured bounds, so a
    /// slow but working processor is always waited for and a dead connection is not forever.
    pub fn give_up_ms(&self, delay_ms: u64) -> u64 {
        (delay_ms.saturating_mul(4) + 10_000).clamp(self.min_give_up_ms, self.max_give_up_ms)
    }

    /// Retry delay before the `attempt`-th retry (1-based), doubling up to the cap.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let shift = attempt.saturating_sub(1).min(16);
        (self.retry_backoff_ms << shift).min(self.max_backoff_ms)
    }

    /// Where the oldest waiting payment goes, given what is known now.
    pub fn route(&self, view: &RouteView) -> Route {
        let [default, fallback] = view.processors;
        let hold = self.hold_ms();
        // Default works but is worth avoiding: slower than fallback by more than the hold
        // bound (a payment would wait longer than the fee gap is worth), or slow enough for
        // audits to catch its stores between two reads while fallback is not (module doc).
        let exposed = |v: ProcessorView| self.audit_lag_ms > 0 && v.latency_ms >= self.audit_lag_ms;
        let too_slow = default.latency_ms > fallback.latency_ms.saturating_add(hold);
        let shun = default.health != Health::Failing
            && fallback.health != Health::Failing
            && (too_slow || (exposed(default) && !exposed(fallback)));
        if default.can_take() {
            // One payment at a time still goes to a shunned default, to keep measuring it
            // (its delay may drop between health polls).
            if shun && default.in_flight > 0 && fallback.can_take() {
                return Route::Fallback;
            }
            return Route::Default;
        }
        if !fallback.can_take() {
            return Route::Hold;
        }
        let allowed = match default.health {
            // Default refuses payments: wait for it up to the hold bound — and, when fallback
            // has just come back, until default has been seen failing since: both often
            // recover together, and whichever probe answered first would take the backlog.
            Health::Failing => view.oldest_age_ms >= hold && default.observed_at_ms >= fallback.recovered_at_ms,
            // Default is busy but working: spill only what it cannot drain within the hold
            // bound. Age alone is no reason here — after an outage the oldest payments are
            // old, yet a fast default clears the whole backlog in moments.
            Health::Healthy | Health::Unknown => {
                let latency = default.latency_ms.max(1) as f64;
                let drainable = (hold as f64 / latency) * default.limit as f64;
                shun || view.backlog as f64 > drainable
            }
        };
        if allowed {
            Route::Fallback
        } else {
            Route::Hold
        }
    }
}

/// What the dispatcher believes about a processor's health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// Nothing seen yet: treated like healthy, so the first payments go out at once.
    #[default]
    Unknown,
    /// Answering 200s.
    Healthy,
    /// Answering 500s (or said so in its health endpoint): only single probes go there.
    Failing,
}

impl Health {
    /// The name used in `/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Failing => "failing",
        }
    }
}

/// One processor as the router sees it at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessorView {
    /// Believed health.
    pub health: Health,
    /// Requests in flight there from this instance.
    pub in_flight: usize,
    /// Most requests in flight there while healthy.
    pub limit: usize,
    /// Whether a probe may go now (failing processors get one at a time, spaced).
    pub probe_due: bool,
    /// Expected answer time in ms (observed or announced, whichever is larger).
    pub latency_ms: u64,
    /// Wall time (ms) of the observation behind `health`.
    pub observed_at_ms: u64,
    /// Wall time (ms) it was last seen going from failing to working (0: never).
    pub recovered_at_ms: u64,
}

impl ProcessorView {
    /// Whether a payment sent there now would be accepted by our own limits.
    pub fn can_take(&self) -> bool {
        match self.health {
            Health::Failing => self.in_flight == 0 && self.probe_due,
            Health::Healthy | Health::Unknown => self.in_flight < self.limit,
        }
    }
}

/// Everything a routing decision reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteView {
    /// Indexed by `Processor::index()`.
    pub processors: [ProcessorView; 2],
    /// Age of the oldest waiting payment (the one being routed), in ms.
    pub oldest_age_ms: u64,
    /// Payments waiting for a first processor, this one included.
    pub backlog: usize,
}

/// A routing decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Send it to default.
    Default,
    /// Send it to fallback.
    Fallback,
    /// Keep it waiting; nothing younger can go either.
    Hold,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(health: Health, in_flight: usize, latency_ms: u64) -> ProcessorView {
        ProcessorView {
            health,
            in_flight,
            limit: 10,
            probe_due: false,
            latency_ms,
            observed_at_ms: 0,
            recovered_at_ms: 0,
        }
    }

    fn route(default: ProcessorView, fallback: ProcessorView, age: u64, backlog: usize) -> Route {
        Policy::default().route(&RouteView {
            processors: [default, fallback],
            oldest_age_ms: age,
            backlog,
        })
    }

    #[test]
    fn hold_follows_fee_gap_and_expected_remaining_time() {
        let p = Policy::default();
        assert_eq!(p.hold_ms(), 12_000);
        assert_eq!(
            Policy {
                fees: [0.07, 0.10],
                ..p
            }
            .hold_ms(),
            3_600
        );
        assert_eq!(
            Policy {
                fees: [0.10, 0.10],
                ..p
            }
            .hold_ms(),
            0
        );
    }

    #[test]
    fn healthy_default_takes_everything_it_has_room_for() {
        let ok = view(Health::Healthy, 3, 10);
        assert_eq!(route(ok, ok, 60_000, 1000), Route::Default);
        assert_eq!(route(view(Health::Unknown, 0, 0), ok, 0, 1), Route::Default);
    }

    #[test]
    fn failing_default_holds_until_the_bound_then_fallback() {
        let failing = view(Health::Failing, 0, 10);
        let ok = view(Health::Healthy, 0, 10);
        assert_eq!(route(failing, ok, 11_999, 5), Route::Hold);
        assert_eq!(route(failing, ok, 12_000, 5), Route::Fallback);
        // Both failing: nothing goes, however old.
        assert_eq!(route(failing, failing, 600_000, 5), Route::Hold);
    }

    #[test]
    fn a_due_probe_goes_to_a_failing_default_first() {
        let probe = ProcessorView {
            probe_due: true,
            ..view(Health::Failing, 0, 10)
        };
        assert_eq!(route(probe, view(Health::Healthy, 0, 10), 60_000, 5), Route::Default);
        let busy_probe = ProcessorView { in_flight: 1, ..probe };
        assert_eq!(
            route(busy_probe, view(Health::Healthy, 0, 10), 60_000, 5),
            Route::Fallback
        );
    }

    #[test]
    fn slow_default_spills_only_what_it_cannot_drain_in_time() {
        let ok = view(Health::Healthy, 0, 10);
        // Full default at 100 ms per payment, 10 in flight: drains 100/s, 1 200 within the hold.
        let fast_full = view(Health::Healthy, 10, 100);
        assert_eq!(route(fast_full, ok, 100, 1_000), Route::Hold);
        assert_eq!(route(fast_full, ok, 100, 1_300), Route::Fallback);
        // A backlog left by an outage is old, but a fast default drains it: no spill.
        let quick_full = view(Health::Healthy, 10, 20);
        assert_eq!(route(quick_full, ok, 30_000, 5_000), Route::Hold);
        // At 1.4 s per payment it drains ~7/s: 85 within the hold; a backlog of 100 spills.
        let slow_full = view(Health::Healthy, 10, 1_400);
        assert_eq!(route(slow_full, ok, 100, 100), Route::Fallback);
        assert_eq!(route(slow_full, ok, 100, 80), Route::Hold);
        // Fallback full too: hold.
        assert_eq!(route(slow_full, view(Health::Healthy, 10, 10), 100, 100), Route::Hold);
    }

    #[test]
    fn a_default_slower_than_the_hold_bound_gets_one_payment_at_a_time() {
        let ok = view(Health::Healthy, 0, 10);
        // 12 s hold: at 13 s per payment (10 on fallback), default's only payment measures it.
        let glacial = view(Health::Healthy, 0, 13_000);
        assert_eq!(route(glacial, ok, 0, 1), Route::Default);
        let measuring = view(Health::Healthy, 1, 13_000);
        assert_eq!(route(measuring, ok, 0, 1), Route::Fallback);
        // Within the bound of fallback's own latency: default still.
        assert_eq!(route(measuring, view(Health::Healthy, 0, 2_000), 0, 1), Route::Default);
        // Fallback failing or full: waiting on default beats nothing.
        assert_eq!(route(measuring, view(Health::Failing, 0, 10), 0, 1), Route::Default);
        assert_eq!(route(measuring, view(Health::Healthy, 10, 10), 0, 1), Route::Default);
    }

    #[test]
    fn a_default_slow_enough_for_audits_to_catch_it_is_avoided_while_fallback_is_quick() {
        let ok = view(Health::Healthy, 0, 10);
        // 1.5 s and more: inside the audited window when stored.
        let exposed = view(Health::Healthy, 1, 1_500);
        assert_eq!(route(exposed, ok, 0, 1), Route::Fallback);
        assert_eq!(route(view(Health::Healthy, 1, 1_499), ok, 0, 1), Route::Default);
        // Fallback as slow: nothing to gain, default as usual.
        assert_eq!(route(exposed, view(Health::Healthy, 0, 2_000), 0, 1), Route::Default);
        // At capacity, the backlog goes to fallback too.
        let full = view(Health::Healthy, 10, 3_000);
        assert_eq!(route(full, ok, 0, 1), Route::Fallback);
        // The rule can be switched off.
        let off = Policy {
            audit_lag_ms: 0,
            ..Policy::default()
        };
        let v = RouteView {
            processors: [exposed, ok],
            oldest_age_ms: 0,
            backlog: 1,
        };
        assert_eq!(off.route(&v), Route::Default);
    }

    #[test]
    fn fallback_back_first_waits_for_default_to_be_seen_failing_since() {
        let back = ProcessorView {
            recovered_at_ms: 1_000,
            ..view(Health::Healthy, 0, 20)
        };
        let stale = ProcessorView {
            observed_at_ms: 900,
            in_flight: 1,
            ..view(Health::Failing, 1, 20)
        };
        assert_eq!(route(stale, back, 60_000, 5), Route::Hold);
        let seen = ProcessorView {
            observed_at_ms: 1_000,
            ..stale
        };
        assert_eq!(route(seen, back, 60_000, 5), Route::Fallback);
    }

    #[test]
    fn timeouts_follow_the_known_delay_within_bounds() {
        let p = Policy::default();
        assert_eq!(p.give_up_ms(0), 10_000);
        assert_eq!(p.give_up_ms(5_000), 30_000);
        assert_eq!(p.give_up_ms(100_000), 120_000);
        assert_eq!(p.backoff_ms(1), 50);
        assert_eq!(p.backoff_ms(3), 200);
        assert_eq!(p.backoff_ms(40), 1_000);
    }
}
