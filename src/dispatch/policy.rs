//! The routing policy: given what is known of both processors, the backlog and the inflow of
//! payments, where the oldest waiting payment goes now — default, fallback, or nowhere yet.
//!
//! The reasoning (docs/ARCHITECTURE.md, "Routing"): default is cheaper, and a payment still waiting is
//! counted by no audit, so waiting costs nothing — until the run ends, when a payment still
//! waiting loses its whole value. Sending it to fallback instead costs the fee gap for sure.
//! Per unit of time, holding gains `recovery hazard × (fee_f − fee_d)` and risks
//! `end hazard × (1 − fee_f)`; at 5%/15% default must be 8.5 times likelier to come back than
//! the run to end, whatever the wait. So the bound is about *risk*, not a fixed time, and
//! three things the instance can observe set it:
//!
//! - **The inflow.** A load test ends when its payments stop coming; the final read follows
//!   about a second later (`end_notice_ms`). While payments keep arriving the end is at
//!   least that far away; once the inflow has been quiet for `quiet_ms` (or several usual
//!   gaps between payments, when they come slowly) the end may be due, and nothing is held
//!   for default any more: what it cannot take at once goes to fallback, which must be able
//!   to take it in the time left. So the backlog held for a failing default may not exceed
//!   what fallback can carry between noticing the quiet and the end (`flushable`), and the
//!   backlog left to a slow default may not exceed what default drains before the run could
//!   end (`drainable`); the excess goes to fallback now.
//! - **The age of the run and how long default has failed.** An end nobody announced (a
//!   run that stops while payments still trickle, a notice shorter than planned) is the
//!   residual risk. As in Lindy's estimate, a run that has lasted `A` is about as likely to
//!   end in the next `h` as `h / A`, discounted by the share of ends the inflow does not
//!   announce (`end_miss`); and a default that has failed for `F` is about as likely to come
//!   back in the next `h` as `h / F` (the run's age counts as at least `min_run_ms`: a load
//!   test is not over seconds after it began, and an outage already under way when it
//!   began must not send its first payments to fallback). Holding is worth it while
//!   `gap / F > end_miss × (1 − fee_f) / A`, i.e. while default has failed for less than
//!   `outage_bound = gap / (1 − fee_f) × A / end_miss`. Past it every waiting payment goes to
//!   fallback at once (how long one payment has waited does not change the odds).
//! - **The fee gap**, in both bounds: at 7%/10% a failing default is given up on 3.5 times
//!   sooner than at 5%/15%.
//!
//! A default that works but answers slowly is worth its latency while the extra wait is
//! within what the fee gap buys (`too_slow`, same reasoning with an in-flight payment, which
//! the end always catches if it is not back by then).
//!
//! Audits add one more cost (the challenge's scoring): every few seconds the books are compared over a window
//! that ends `audit_lag_ms` ago, our summary read a moment before the processors'. A processor
//! whose delay is at least that lag stores payments whose `requestedAt` lies inside the
//! window, and one stored between the two reads is an inconsistency, fined at 35% of the
//! whole run — far more than the fee gap of every payment it could carry. So a default that
//! slow is avoided while fallback is not.

/// The quiet that means "the inflow stopped" is at least this many usual gaps between two
/// payments: a slow trickle is not over after one missing payment.
const QUIET_GAPS: u64 = 4;
/// Latency assumed for a processor answering faster than this (or never measured), when
/// reckoning how much it can carry in a given time: loopback answers in a millisecond, but
/// our own CPU share and the processor's are what bound a burst.
const CARRY_LATENCY_FLOOR_MS: u64 = 10;

/// The policy's knobs, with these defaults; all but the retry backoff can be set from the
/// environment (`payrelay --help`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Fee of each processor as a fraction (published: 5% and 15%).
    pub fees: [f64; 2],
    /// How long after the inflow stops the run's end may come (the official test: about a second).
    pub end_notice_ms: u64,
    /// Least silence of the inflow that counts as stopped (see `quiet_after_ms`).
    pub quiet_ms: u64,
    /// Share of run ends assumed to come without the inflow stopping first: weighs the run's
    /// age against how long default has failed (module doc). 0 never gives up on default
    /// while payments arrive; 1 trusts nothing but the run's age.
    pub end_miss: f64,
    /// The least age a run is credited with when weighing its end (module doc).
    pub min_run_ms: u64,
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
    /// First retry delay after a refusal (429, unexpected status); doubles per attempt.
    pub retry_backoff_ms: u64,
    /// Cap of the retry delay.
    pub max_backoff_ms: u64,
    /// How long before an audit its window ends (1.5 s in the challenge's scoring); a processor at least
    /// this slow is avoided when the other is not (module doc). 0 disables the rule.
    pub audit_lag_ms: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            fees: [0.05, 0.15],
            end_notice_ms: 1_000,
            quiet_ms: 400,
            end_miss: 0.1,
            min_run_ms: 30_000,
            in_flight_limit: [384, 384],
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
    /// What the fee gap buys per unit of value at risk: `(fee_f − fee_d) / (1 − fee_f)`
    /// (0.118 at 5%/15%, 0.033 at 7%/10%); zero when fallback is not dearer.
    pub fn gap_ratio(&self) -> f64 {
        let [d, f] = self.fees;
        if f <= d || f >= 1.0 {
            return 0.0;
        }
        (f - d) / (1.0 - f)
    }

    /// How long default may have been failing and still be waited for, in a run
    /// `run_age_ms` old (module doc). Zero when fallback is not dearer.
    pub fn outage_bound_ms(&self, run_age_ms: u64) -> u64 {
        let ratio = self.gap_ratio();
        if ratio == 0.0 {
            return 0;
        }
        if self.end_miss <= 0.0 {
            return u64::MAX;
        }
        let age = run_age_ms.max(self.min_run_ms) as f64;
        (ratio * age / self.end_miss).round().min(u64::MAX as f64) as u64
    }

    /// The silence after which the inflow counts as stopped, given the usual gap between two
    /// accepted payments: `quiet_ms`, or `QUIET_GAPS` gaps when payments come slower.
    pub fn quiet_after_ms(&self, mean_gap_ms: u64) -> u64 {
        self.quiet_ms.max(mean_gap_ms.saturating_mul(QUIET_GAPS))
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
        let quiet_after = self.quiet_after_ms(view.mean_gap_ms);
        let quiet = view.idle_ms >= quiet_after;
        // The run may end `end_notice_ms` after the inflow stops; it has not stopped for
        // more than `idle_ms`, so that is the least time left.
        let horizon = self.end_notice_ms.saturating_sub(view.idle_ms);
        // Default works but is worth avoiding: its extra answer time risks the end (which
        // catches what is in flight whether or not it announced itself) more than the fee
        // gap is worth, or it is slow enough for audits to catch its stores between two reads
        // while fallback is not (module doc).
        let exposed = |v: ProcessorView| self.audit_lag_ms > 0 && v.latency_ms >= self.audit_lag_ms;
        let worth_waiting = (self.gap_ratio() * view.run_age_ms.max(self.min_run_ms) as f64) as u64;
        let too_slow = default.latency_ms
            > fallback
                .latency_ms
                .max(self.end_notice_ms)
                .saturating_add(worth_waiting);
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
            // Default refuses payments: hold while the inflow runs, default has failed for
            // less than the outage bound, and fallback could still carry the backlog in the
            // time between noticing the end and the end itself — and, when fallback has just
            // come back, until default has been seen failing since: both often recover
            // together, and whichever probe answered first would take the backlog.
            Health::Failing => {
                let window = self.end_notice_ms.saturating_sub(quiet_after);
                let flushable = carry(fallback, window);
                let give_up = quiet
                    || default.failing_for_ms >= self.outage_bound_ms(view.run_age_ms)
                    || view.backlog as u64 > flushable;
                give_up && default.observed_at_ms >= fallback.recovered_at_ms
            }
            // Default is busy but working: spill only what it cannot drain before the run
            // could end. Age alone is no reason here — after an outage the oldest payments
            // are old, yet a fast default clears the whole backlog in moments.
            Health::Healthy | Health::Unknown => shun || view.backlog as u64 > carry(default, horizon),
        };
        if allowed {
            Route::Fallback
        } else {
            Route::Hold
        }
    }
}

/// How many payments `v` can answer within `ms` with all of its in-flight limit busy.
fn carry(v: ProcessorView, ms: u64) -> u64 {
    let latency = v.latency_ms.max(CARRY_LATENCY_FLOOR_MS);
    ms.saturating_mul(v.limit as u64) / latency
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
    /// How long it has been failing without a break (ms; 0 unless failing).
    pub failing_for_ms: u64,
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
    /// Payments waiting for a first processor, this one included.
    pub backlog: usize,
    /// Time since the run began: the first payment this instance accepted after a purge or
    /// a long silence (ms).
    pub run_age_ms: u64,
    /// Time since this instance last accepted a payment (ms).
    pub idle_ms: u64,
    /// The usual gap between two payments accepted here (a moving average, ms).
    pub mean_gap_ms: u64,
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

    const OK: ProcessorView = ProcessorView {
        health: Health::Healthy,
        in_flight: 0,
        limit: 10,
        probe_due: false,
        latency_ms: 10,
        observed_at_ms: 0,
        recovered_at_ms: 0,
        failing_for_ms: 0,
    };

    fn with(health: Health, in_flight: usize, latency_ms: u64) -> ProcessorView {
        ProcessorView {
            health,
            in_flight,
            latency_ms,
            ..OK
        }
    }

    fn failing_for(ms: u64) -> ProcessorView {
        ProcessorView {
            failing_for_ms: ms,
            ..with(Health::Failing, 0, 10)
        }
    }

    /// One routing decision: the processors, the backlog, the run's age, the inflow's
    /// silence and usual gap, and the decision wanted.
    struct Case {
        why: &'static str,
        default: ProcessorView,
        fallback: ProcessorView,
        backlog: usize,
        run_age_ms: u64,
        idle_ms: u64,
        mean_gap_ms: u64,
        want: Route,
    }

    /// A busy inflow (a payment every 5 ms, the last one just now) in a run 60 s old.
    const RUNNING: Case = Case {
        why: "",
        default: OK,
        fallback: OK,
        backlog: 1,
        run_age_ms: 60_000,
        idle_ms: 0,
        mean_gap_ms: 5,
        want: Route::Default,
    };

    fn check(policy: &Policy, cases: &[Case]) {
        for c in cases {
            let view = RouteView {
                processors: [c.default, c.fallback],
                backlog: c.backlog,
                run_age_ms: c.run_age_ms,
                idle_ms: c.idle_ms,
                mean_gap_ms: c.mean_gap_ms,
            };
            assert_eq!(policy.route(&view), c.want, "{}", c.why);
        }
    }

    #[test]
    fn bounds_follow_the_fee_gap_the_run_age_and_the_inflow() {
        let p = Policy::default();
        // 0.10 / 0.85: default must be 8.5 times likelier to return than the run to end.
        assert!((p.gap_ratio() - 0.10 / 0.85).abs() < 1e-12);
        assert_eq!(p.outage_bound_ms(40_000), 47_059);
        assert_eq!(p.outage_bound_ms(60_000), 70_588);
        // A run just begun counts as 30 s old.
        assert_eq!(p.outage_bound_ms(0), 35_294);
        let close = Policy {
            fees: [0.07, 0.10],
            ..p
        };
        // 0.03 / 0.90: 3.5 times sooner than at 5%/15%.
        assert_eq!(close.outage_bound_ms(60_000), 20_000);
        let same = Policy {
            fees: [0.10, 0.10],
            ..p
        };
        assert_eq!(same.outage_bound_ms(60_000), 0);
        let trusting = Policy { end_miss: 0.0, ..p };
        assert_eq!(trusting.outage_bound_ms(1), u64::MAX);
        // Quiet: 400 ms, or four usual gaps when payments come slower than one per 100 ms.
        assert_eq!(p.quiet_after_ms(4), 400);
        assert_eq!(p.quiet_after_ms(250), 1_000);
    }

    #[test]
    fn a_healthy_default_takes_everything_it_has_room_for() {
        check(
            &Policy::default(),
            &[
                Case {
                    why: "room on default",
                    default: with(Health::Healthy, 3, 10),
                    backlog: 1_000,
                    ..RUNNING
                },
                Case {
                    why: "nothing known yet",
                    default: with(Health::Unknown, 0, 0),
                    run_age_ms: 0,
                    ..RUNNING
                },
                Case {
                    why: "room on default, inflow stopped",
                    idle_ms: 5_000,
                    ..RUNNING
                },
            ],
        );
    }

    #[test]
    fn a_failing_default_is_waited_for_only_while_the_inflow_runs() {
        let failing = failing_for(5_000);
        check(
            &Policy::default(),
            &[
                Case {
                    why: "payments still arriving",
                    default: failing,
                    backlog: 500,
                    want: Route::Hold,
                    ..RUNNING
                },
                Case {
                    why: "quiet for less than 400 ms",
                    default: failing,
                    backlog: 500,
                    idle_ms: 399,
                    want: Route::Hold,
                    ..RUNNING
                },
                Case {
                    why: "quiet for 400 ms: the end may be a second away",
                    default: failing,
                    backlog: 500,
                    idle_ms: 400,
                    want: Route::Fallback,
                    ..RUNNING
                },
                Case {
                    why: "one per 150 ms is not over after 500 ms",
                    default: failing,
                    backlog: 5,
                    idle_ms: 500,
                    mean_gap_ms: 150,
                    want: Route::Hold,
                    ..RUNNING
                },
                Case {
                    why: "...but is after four gaps",
                    default: failing,
                    backlog: 5,
                    idle_ms: 600,
                    mean_gap_ms: 150,
                    want: Route::Fallback,
                    ..RUNNING
                },
                Case {
                    why: "one per 300 ms: its end cannot be noticed within the notice, nothing waits",
                    default: failing,
                    backlog: 1,
                    mean_gap_ms: 300,
                    want: Route::Fallback,
                    ..RUNNING
                },
                Case {
                    why: "both failing: nothing goes, inflow or not",
                    default: failing,
                    fallback: failing,
                    idle_ms: 60_000,
                    want: Route::Hold,
                    ..RUNNING
                },
            ],
        );
    }

    #[test]
    fn a_default_failing_longer_than_the_outage_bound_is_given_up() {
        let p = Policy::default();
        let close = Policy {
            fees: [0.07, 0.10],
            ..p
        };
        for policy in [p, close] {
            let bound = policy.outage_bound_ms(30_000);
            check(
                &policy,
                &[
                    Case {
                        why: "failing for just under the bound",
                        default: failing_for(bound - 1),
                        run_age_ms: 30_000,
                        want: Route::Hold,
                        ..RUNNING
                    },
                    Case {
                        why: "failing for the bound",
                        default: failing_for(bound),
                        run_age_ms: 30_000,
                        want: Route::Fallback,
                        ..RUNNING
                    },
                ],
            );
        }
        // Published schedule: default fails at 20 s; at 30 s it has failed 10 s of a 30 s run
        // and is still waited for at 5%/15%, not at 7%/10%.
        let published = Case {
            default: failing_for(10_000),
            run_age_ms: 30_000,
            ..RUNNING
        };
        check(
            &p,
            &[Case {
                why: "published, 5%/15%",
                want: Route::Hold,
                ..published
            }],
        );
        check(
            &close,
            &[Case {
                why: "published, 7%/10%",
                want: Route::Fallback,
                ..published
            }],
        );
    }

    #[test]
    fn a_failing_default_keeps_only_what_fallback_could_carry_once_the_end_is_noticed() {
        // 1 s notice, 400 ms to notice: 600 ms for fallback; 10 in flight at 100 ms = 60.
        let slow_fallback = with(Health::Healthy, 0, 100);
        check(
            &Policy::default(),
            &[
                Case {
                    why: "60 fit",
                    default: failing_for(1_000),
                    fallback: slow_fallback,
                    backlog: 60,
                    want: Route::Hold,
                    ..RUNNING
                },
                Case {
                    why: "61 do not",
                    default: failing_for(1_000),
                    fallback: slow_fallback,
                    backlog: 61,
                    want: Route::Fallback,
                    ..RUNNING
                },
                Case {
                    why: "a quick fallback carries 600 (10 ms floor)",
                    default: failing_for(1_000),
                    fallback: with(Health::Healthy, 0, 1),
                    backlog: 600,
                    want: Route::Hold,
                    ..RUNNING
                },
            ],
        );
    }

    #[test]
    fn a_slow_default_keeps_only_what_it_drains_before_the_run_could_end() {
        // Full default at 100 ms per payment, 10 in flight: 100 within the 1 s notice.
        let full = with(Health::Healthy, 10, 100);
        check(
            &Policy::default(),
            &[
                Case {
                    why: "100 drain within a second",
                    default: full,
                    backlog: 100,
                    want: Route::Hold,
                    ..RUNNING
                },
                Case {
                    why: "101 do not",
                    default: full,
                    backlog: 101,
                    want: Route::Fallback,
                    ..RUNNING
                },
                Case {
                    why: "quiet for 600 ms: 400 ms left, 40 drain",
                    default: full,
                    backlog: 41,
                    idle_ms: 600,
                    want: Route::Fallback,
                    ..RUNNING
                },
                Case {
                    why: "a backlog left by an outage is old, but a quick default drains it",
                    default: with(Health::Healthy, 10, 2),
                    backlog: 1_000,
                    want: Route::Hold,
                    ..RUNNING
                },
                Case {
                    why: "fallback full too",
                    default: full,
                    fallback: with(Health::Healthy, 10, 10),
                    backlog: 5_000,
                    want: Route::Hold,
                    ..RUNNING
                },
            ],
        );
    }

    #[test]
    fn a_default_slower_than_the_end_and_the_fee_gap_allow_gets_one_payment_at_a_time() {
        // A run 10 s old: the gap buys 1.18 s more than max(fallback, the 1 s notice).
        let young = Case {
            run_age_ms: 10_000,
            ..RUNNING
        };
        let p = Policy {
            audit_lag_ms: 0,
            min_run_ms: 0,
            ..Policy::default()
        };
        check(
            &p,
            &[
                Case {
                    why: "first payment measures it",
                    default: with(Health::Healthy, 0, 2_200),
                    ..young
                },
                Case {
                    why: "one in flight: the rest to fallback",
                    default: with(Health::Healthy, 1, 2_200),
                    want: Route::Fallback,
                    ..young
                },
                Case {
                    why: "within the bound",
                    default: with(Health::Healthy, 1, 2_100),
                    ..young
                },
                Case {
                    why: "older run, more it is worth",
                    default: with(Health::Healthy, 1, 2_200),
                    run_age_ms: 60_000,
                    ..young
                },
                Case {
                    why: "fallback as slow",
                    default: with(Health::Healthy, 1, 2_200),
                    fallback: with(Health::Healthy, 0, 2_000),
                    ..young
                },
                Case {
                    why: "fallback failing",
                    default: with(Health::Healthy, 1, 2_200),
                    fallback: failing_for(0),
                    ..young
                },
                Case {
                    why: "both slow under a second: default",
                    default: with(Health::Healthy, 1, 1_000),
                    fallback: with(Health::Healthy, 0, 300),
                    run_age_ms: 0,
                    ..young
                },
            ],
        );
    }

    #[test]
    fn a_default_slow_enough_for_audits_to_catch_it_is_avoided_while_fallback_is_quick() {
        let exposed = with(Health::Healthy, 1, 1_500);
        check(
            &Policy::default(),
            &[
                Case {
                    why: "1.5 s: inside the audited window",
                    default: exposed,
                    want: Route::Fallback,
                    ..RUNNING
                },
                Case {
                    why: "1.499 s",
                    default: with(Health::Healthy, 1, 1_499),
                    ..RUNNING
                },
                Case {
                    why: "fallback as slow",
                    default: exposed,
                    fallback: with(Health::Healthy, 0, 2_000),
                    ..RUNNING
                },
                Case {
                    why: "full: the backlog to fallback too",
                    default: with(Health::Healthy, 10, 3_000),
                    want: Route::Fallback,
                    ..RUNNING
                },
            ],
        );
        check(
            &Policy {
                audit_lag_ms: 0,
                ..Policy::default()
            },
            &[Case {
                why: "rule off",
                default: exposed,
                ..RUNNING
            }],
        );
    }

    #[test]
    fn a_due_probe_goes_to_a_failing_default_first() {
        let probe = ProcessorView {
            probe_due: true,
            ..failing_for(60_000)
        };
        check(
            &Policy::default(),
            &[
                Case {
                    why: "probe due",
                    default: probe,
                    idle_ms: 60_000,
                    ..RUNNING
                },
                Case {
                    why: "probe in flight",
                    default: ProcessorView { in_flight: 1, ..probe },
                    idle_ms: 60_000,
                    want: Route::Fallback,
                    ..RUNNING
                },
            ],
        );
    }

    #[test]
    fn fallback_back_first_waits_for_default_to_be_seen_failing_since() {
        let back = ProcessorView {
            recovered_at_ms: 1_000,
            ..with(Health::Healthy, 0, 20)
        };
        let stale = ProcessorView {
            observed_at_ms: 900,
            in_flight: 1,
            ..failing_for(200_000)
        };
        check(
            &Policy::default(),
            &[
                Case {
                    why: "default not seen since",
                    default: stale,
                    fallback: back,
                    idle_ms: 60_000,
                    want: Route::Hold,
                    ..RUNNING
                },
                Case {
                    why: "default seen failing since",
                    default: ProcessorView {
                        observed_at_ms: 1_000,
                        ..stale
                    },
                    fallback: back,
                    idle_ms: 60_000,
                    want: Route::Fallback,
                    ..RUNNING
                },
            ],
        );
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
