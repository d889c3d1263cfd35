//! The dispatcher driven by hand: every outcome a processor can give, on a virtual clock, over
//! a real (anonymous) segment.

use super::*;
use crate::segment::{Insert, SlotState};

const T0: i64 = 1_752_150_896_000;

fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: T0 + ms as i64,
    }
}

fn id(n: u8) -> Uuid {
    Uuid([n; 16])
}

struct Rig {
    segment: Segment,
    d: Dispatcher,
}

/// A policy that never expects the run to end: for tests of what happens while a payment
/// waits for default, with nothing of the inflow or the run's age in the way.
fn patient() -> Policy {
    Policy {
        quiet_ms: 3_600_000,
        end_notice_ms: 7_200_000,
        end_miss: 0.0,
        ..Policy::default()
    }
}

fn rig(policy: Policy) -> Rig {
    let segment = Segment::anonymous(1024).unwrap();
    let owner = segment.register_owner(T0 as u64).unwrap();
    let d = Dispatcher::new(segment.attach_again(), owner, policy);
    Rig { segment, d }
}

impl Rig {
    fn accept(&mut self, now: Now, n: u8) -> PaymentRef {
        let owner = self.d.owner();
        let Insert::Inserted(slot) = self.segment.insert_claimed(&id(n), 1990, wall(now), owner) else {
            panic!()
        };
        self.d.handle_accepted(now, slot, id(n), 1990);
        slot
    }

    /// Every action pending, health polls answered "healthy, no delay" on the spot so they do
    /// not clutter the assertions.
    fn actions(&mut self, now: Now) -> Vec<Action> {
        actions_with_health(&mut self.d, now, [(false, 0), (false, 0)])
    }

    fn answer(&mut self, now: Now, action: Action, status: u16) {
        self.answer_with(now, action, status, None);
    }

    /// Answers a lookup: found, stored with `requested_at_ms`.
    fn found(&mut self, now: Now, action: Action, requested_at_ms: u64) {
        self.answer_with(now, action, 200, Some(requested_at_ms));
    }

    fn answer_with(&mut self, now: Now, action: Action, status: u16, requested_at_ms: Option<u64>) {
        let Action::Send { request, processor, .. } = action else {
            panic!("not a send: {action:?}")
        };
        answer(&mut self.d, now, request, processor, status, requested_at_ms);
    }

    fn fail(&mut self, now: Now, action: Action, written: bool) {
        let Action::Send { request, processor, .. } = action else {
            panic!()
        };
        self.d.handle_completion(
            now,
            Completion {
                request,
                processor,
                outcome: Outcome::Failed { written },
            },
        );
    }

    fn state(&self, slot: PaymentRef) -> SlotState {
        self.segment.view(slot.slot).unwrap().state
    }

    /// Publishes a health report of `processor` as observed at `at_ms` after `T0`, as a
    /// health poll of any instance would.
    fn announce(&self, processor: Processor, failing: bool, min_response_ms: u32, at_ms: u64) {
        let report = HealthReport {
            failing,
            min_response_ms,
        };
        self.segment.publish_health(processor, report, T0 as u64 + at_ms);
    }

    fn assert_done(&self, slot: PaymentRef, processor: Processor, requested_at_ms: u64) {
        assert_eq!(
            self.state(slot),
            SlotState::Done {
                processor,
                requested_at_ms
            }
        );
    }
}

fn payment_send(a: &Action) -> (Processor, u64) {
    match a {
        Action::Send {
            processor,
            call: Call::Payment { requested_at_ms, .. },
            ..
        } => (*processor, *requested_at_ms),
        other => panic!("expected a payment send, got {other:?}"),
    }
}

/// Answers `request`, sent to `processor` by `d`, with `status` and, for a lookup that found
/// the payment, its `requestedAt`.
fn answer(d: &mut Dispatcher, now: Now, request: RequestId, processor: Processor, status: u16, at: Option<u64>) {
    let outcome = Outcome::Answered {
        status,
        requested_at_ms: at,
        amount_cents: None,
        health: None,
        retry_after_s: None,
    };
    d.handle_completion(
        now,
        Completion {
            request,
            processor,
            outcome,
        },
    );
}

/// Asserts that `actions` is a single lookup sent to `processor`.
fn only_lookup(actions: &[Action], processor: Processor) {
    assert!(
        matches!(actions, [Action::Send { processor: p, call: Call::Lookup { .. }, .. }] if *p == processor),
        "expected one lookup on {processor:?}, got {actions:?}"
    );
}

#[test]
fn healthy_default_takes_the_payment_and_it_is_recorded_with_the_sent_requested_at() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let slot = r.accept(at(5), 1);
    let sent = r.actions(at(5));
    assert_eq!(sent.len(), 1);
    let (p, requested_at) = payment_send(&sent[0]);
    assert_eq!((p, requested_at), (Processor::Default, T0 as u64 + 5));
    r.answer(at(20), sent[0], 200);
    r.assert_done(slot, Processor::Default, T0 as u64 + 5);
    assert_eq!(r.d.stats().processors[0].succeeded, 1);
}

#[test]
fn failing_default_holds_payments_while_they_keep_coming_then_fallback_once_they_stop() {
    let policy = Policy::default();
    let mut r = rig(policy);
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let first = r.actions(at(0));
    r.answer(at(10), first[0], 500);
    assert_eq!(r.d.stats().processors[0].health, Health::Failing);
    // A payment every 100 ms for 5 s, probes to default answered 500: nothing goes to
    // fallback while the inflow runs.
    let mut t = 10;
    let mut n = 2;
    while t < 5_000 {
        if t % 100 == 0 {
            r.accept(at(t), n);
            n += 1;
        }
        r.d.handle_timeout(at(t));
        for a in r.actions(at(t)) {
            let (p, _) = payment_send(&a);
            assert_eq!(
                p,
                Processor::Default,
                "sent to fallback at {t} ms while payments arrive"
            );
            r.answer(at(t), a, 500);
        }
        t += 10;
    }
    // The inflow stops; once it has been quiet long enough, the backlog goes to fallback,
    // and the dispatcher wakes itself for that.
    let quiet_at = 4_900 + policy.quiet_after_ms(100);
    assert!(r.d.poll_timeout() <= quiet_at, "no wake-up when the inflow turns quiet");
    r.d.handle_timeout(at(quiet_at));
    let sent = r.actions(at(quiet_at));
    let to_fallback: Vec<_> = sent
        .iter()
        .filter(|a| payment_send(a).0 == Processor::Fallback)
        .collect();
    // Everything goes at once: to fallback, but for a probe of default that may be due.
    assert_eq!(sent.len(), usize::from(n - 1), "{sent:?}");
    assert!(to_fallback.len() >= sent.len() - 1, "{sent:?}");
    for a in &to_fallback {
        r.answer(at(quiet_at + 10), **a, 200);
    }
    assert_eq!(r.d.stats().processors[1].succeeded, to_fallback.len() as u64);
}

#[test]
fn a_successful_probe_brings_default_back_for_everyone() {
    let mut r = rig(patient());
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let a = r.actions(at(0));
    r.answer(at(1), a[0], 500);
    for n in 2..10 {
        r.accept(at(2), n);
    }
    // Nothing while the probe interval runs.
    assert!(r.actions(at(2)).is_empty());
    r.d.handle_timeout(at(600));
    let probe = r.actions(at(600));
    assert_eq!(probe.len(), 1, "one probe at a time");
    r.answer(at(610), probe[0], 200);
    let rest = r.actions(at(610));
    assert_eq!(rest.len(), 8);
    assert!(rest.iter().all(|a| payment_send(a).0 == Processor::Default));
}

#[test]
fn an_ambiguous_attempt_is_looked_up_then_retried_on_the_same_processor_with_the_same_requested_at() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let slot = r.accept(at(7), 1);
    let first = r.actions(at(7));
    let (_, stamp) = payment_send(&first[0]);
    r.fail(at(50), first[0], true);
    // Looked up on the same processor once the attempt should have landed.
    r.d.handle_timeout(at(1_000));
    let lookup = r.actions(at(1_000));
    only_lookup(&lookup, Processor::Default);
    // Not found (the reset came before it was stored): a retry with the first requestedAt.
    r.answer(at(1_010), lookup[0], 404);
    r.d.handle_timeout(at(2_000));
    let retry = r.actions(at(2_000));
    assert_eq!(payment_send(&retry[0]), (Processor::Default, stamp));
    // 422: the first attempt had landed; it is recorded with its own requestedAt.
    r.answer(at(2_010), retry[0], 422);
    r.assert_done(slot, Processor::Default, stamp);
}

/// A "not found" proves nothing: the ambiguous attempt may still sleep inside default (its
/// delay may have been longer than any seen; simulation seeds 60, 126, 506, 740, 3444). The
/// payment waits for default, and a retry there with its first stamp settles it.
#[test]
fn a_pinned_payment_on_a_failing_processor_is_looked_up_and_waits_for_it() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let slot = r.accept(at(0), 1);
    let first = r.actions(at(0));
    let (_, stamp) = payment_send(&first[0]);
    r.fail(at(10), first[0], true);
    // Default now fails: the pinned payment is looked up instead of re-sent.
    r.accept(at(20), 2);
    let a = r.actions(at(20));
    r.answer(at(30), a[0], 500);
    r.d.handle_timeout(at(3_000));
    let (lookups, others): (Vec<_>, Vec<_>) = r.actions(at(3_000)).into_iter().partition(|a| {
        matches!(
            a,
            Action::Send {
                call: Call::Lookup { .. },
                ..
            }
        )
    });
    assert_eq!(lookups.len(), 1);
    r.answer(at(3_010), lookups[0], 404);
    for a in others {
        r.answer(at(3_010), a, 500);
    }
    let mut t = 3_010;
    let mut looked_up = 1;
    while t < 120_000 {
        t += 250;
        r.d.handle_timeout(at(t));
        for a in r.actions(at(t)) {
            match a {
                Action::Send {
                    call: Call::Lookup { .. },
                    ..
                } => {
                    looked_up += 1;
                    r.answer(at(t), a, 404);
                }
                Action::Send {
                    processor: Processor::Fallback,
                    call: Call::Payment { id: pid, .. },
                    ..
                } => {
                    assert_ne!(pid, id(1), "freed to fallback at {t} ms by a not found");
                    r.answer(at(t), a, 200);
                }
                // Default still fails (it looks healthy to each health poll here).
                _ => r.answer(at(t), a, 500),
            }
        }
    }
    assert!(looked_up > 10, "{looked_up} lookups");
    // Default takes payments again: the retry with the first stamp is answered 422.
    while t < 200_000 && !matches!(r.state(slot), SlotState::Done { .. }) {
        t += 250;
        r.d.handle_timeout(at(t));
        for a in r.actions(at(t)) {
            match a {
                Action::Send {
                    call: Call::Payment { id: pid, .. },
                    ..
                } if pid == id(1) => {
                    assert_eq!(payment_send(&a), (Processor::Default, stamp));
                    r.answer(at(t), a, 422);
                }
                _ => r.answer(at(t), a, 404),
            }
        }
    }
    r.assert_done(slot, Processor::Default, stamp);
}

#[test]
fn a_lookup_that_finds_the_payment_records_the_processors_requested_at() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let slot = r.accept(at(0), 1);
    let first = r.actions(at(0));
    let (_, stamp) = payment_send(&first[0]);
    r.fail(at(10), first[0], true);
    r.accept(at(20), 2);
    let a = r.actions(at(20));
    r.answer(at(30), a[0], 500);
    r.d.handle_timeout(at(3_000));
    let lookup = r.actions(at(3_000)).into_iter().find(|a| {
        matches!(
            a,
            Action::Send {
                call: Call::Lookup { .. },
                ..
            }
        )
    });
    r.found(at(3_010), lookup.expect("no lookup"), stamp);
    r.assert_done(slot, Processor::Default, stamp);
}

#[test]
fn an_unanswered_request_is_given_up_cancelled_and_pinned() {
    let policy = Policy::default();
    let give_up = policy.give_up_ms(0);
    let mut r = rig(policy);
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let first = r.actions(at(0));
    let Action::Send { request, .. } = first[0] else {
        panic!()
    };
    assert!(r.d.poll_timeout() <= give_up);
    r.d.handle_timeout(at(give_up));
    let after = r.actions(at(give_up));
    assert_eq!(after, vec![Action::Cancel { request }]);
    assert_eq!(r.d.stats().processors[0].gave_up, 1);
    // Resolution goes to the same processor: a lookup first, nothing to fallback.
    r.d.handle_timeout(at(give_up + 1_000));
    let next = r.actions(at(give_up + 1_000));
    only_lookup(&next, Processor::Default);
}

#[test]
fn a_given_up_payment_is_looked_up_once_it_should_have_landed_and_retried_if_absent() {
    // We wait 1 s for answers; default announces 5 s. A payment given up is asleep in the
    // processor: a lookup (answered without the delay) once it should have landed finds it
    // sooner than a retry, which would sleep the delay again.
    let policy = Policy {
        min_give_up_ms: 1_000,
        max_give_up_ms: 1_000,
        ..Policy::default()
    };
    let mut r = rig(policy);
    r.d.handle_timeout(at(0));
    let _ = r.actions(at(0));
    r.announce(Processor::Default, false, 5_000, 50);
    r.d.handle_timeout(at(100));
    let slot = r.accept(at(100), 1);
    let first = r.actions(at(100));
    let (_, stamp) = payment_send(&first[0]);
    r.d.handle_timeout(at(1_100));
    assert!(matches!(r.actions(at(1_100))[..], [Action::Cancel { .. }]));
    r.d.handle_timeout(at(5_349));
    assert!(r.actions(at(5_349)).is_empty(), "looked up before it could have landed");
    r.d.handle_timeout(at(5_350));
    let lookup = r.actions(at(5_350));
    assert!(
        matches!(lookup[..], [Action::Send { call: Call::Lookup { id: i }, .. }] if i == id(1)),
        "{lookup:?}"
    );
    // Not there (the attempt was lost on the way): a retry with the same requestedAt.
    r.answer(at(5_360), lookup[0], 404);
    r.d.handle_timeout(at(5_460));
    let retry = r.actions(at(5_460));
    assert_eq!(payment_send(&retry[0]), (Processor::Default, stamp));
    // Given up as well: a lookup again, which finds it.
    r.d.handle_timeout(at(6_460));
    assert!(matches!(r.actions(at(6_460))[..], [Action::Cancel { .. }]));
    r.d.handle_timeout(at(7_000));
    let again = r.actions(at(7_000));
    only_lookup(&again, Processor::Default);
    r.found(at(7_010), again[0], stamp);
    r.assert_done(slot, Processor::Default, stamp);
}

#[test]
fn a_longer_announced_delay_extends_the_wait_of_requests_in_flight() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let _ = r.actions(at(0));
    r.accept(at(10), 1);
    let sent = r.actions(at(10));
    let old_give_up = 10 + Policy::default().give_up_ms(0);
    r.announce(Processor::Default, false, 5_000, 50);
    r.d.handle_timeout(at(100));
    let _ = r.actions(at(100));
    r.d.handle_timeout(at(old_give_up));
    assert!(r.actions(at(old_give_up)).is_empty(), "given up at the old deadline");
    let new_give_up = 10 + Policy::default().give_up_ms(5_000);
    assert_eq!(r.d.poll_timeout().max(new_give_up), new_give_up);
    r.d.handle_timeout(at(new_give_up));
    let Action::Send { request, .. } = sent[0] else {
        panic!()
    };
    assert_eq!(r.actions(at(new_give_up))[0], Action::Cancel { request });
}

#[test]
fn an_unreachable_processor_counts_as_failing_and_pins_nothing() {
    let mut r = rig(patient());
    r.d.handle_timeout(at(0));
    let slot = r.accept(at(0), 1);
    let a = r.actions(at(0));
    // Connection refused: never sent, so nothing to resolve; default is failing now.
    r.fail(at(1), a[0], false);
    assert_eq!(r.d.stats().processors[0].health, Health::Failing);
    assert_eq!(r.d.stats().pinned, 0);
    assert!(r.actions(at(1)).is_empty(), "held for default, not retried at once");
    // A single probe at the probe interval, which finds it back.
    r.d.handle_timeout(at(500));
    assert!(r.actions(at(500)).is_empty(), "probed before the interval");
    r.d.handle_timeout(at(501));
    let b = r.actions(at(501));
    assert_eq!(payment_send(&b[0]).0, Processor::Default);
    r.answer(at(510), b[0], 200);
    assert!(matches!(
        r.state(slot),
        SlotState::Done {
            processor: Processor::Default,
            ..
        }
    ));
}

#[test]
fn a_request_given_up_before_it_was_written_goes_back_to_routing_not_to_resolution() {
    let policy = Policy::default();
    let give_up = policy.give_up_ms(0);
    let mut r = rig(policy);
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let first = r.actions(at(0));
    let Action::Send { request, .. } = first[0] else {
        panic!()
    };
    r.d.handle_timeout(at(give_up));
    // The reactor, not the dispatcher, knows it sat in the pool's queue: it says so.
    let mut cancelled = Vec::new();
    while let Some(a) = r.d.poll_action() {
        cancelled.push(a);
    }
    assert!(cancelled.contains(&Action::Cancel { request }), "{cancelled:?}");
    r.d.handle_completion(
        at(give_up),
        Completion {
            request,
            processor: Processor::Default,
            outcome: Outcome::Failed { written: false },
        },
    );
    let stats = r.d.stats();
    assert_eq!((stats.pinned, stats.processors[0].ambiguous), (0, 0));
    assert_eq!(stats.processors[0].health, Health::Failing);
    // Not pinned to default: with the inflow quiet, it goes to fallback at once.
    let next = r.actions(at(give_up));
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(payment_send(&next[0]).0, Processor::Fallback);
}

#[test]
fn a_cancel_the_reactor_never_reports_is_taken_as_written_after_a_grace() {
    let policy = patient();
    let give_up = policy.give_up_ms(0);
    let mut r = rig(policy);
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let _ = r.actions(at(0));
    r.d.handle_timeout(at(give_up));
    let mut cancelled = Vec::new();
    while let Some(a) = r.d.poll_action() {
        cancelled.push(a);
    }
    assert_eq!(
        cancelled.iter().filter(|a| matches!(a, Action::Cancel { .. })).count(),
        1,
        "{cancelled:?}"
    );
    assert!(r.d.poll_timeout() <= give_up + CANCEL_GRACE_MS);
    r.d.handle_timeout(at(give_up + CANCEL_GRACE_MS));
    let _ = r.actions(at(give_up + CANCEL_GRACE_MS));
    let stats = r.d.stats();
    assert_eq!(stats.processors[0].ambiguous, 1);
    assert_eq!(stats.pinned + stats.delayed, 1);
}

#[test]
fn a_slow_default_at_capacity_spills_the_backlog_it_cannot_drain() {
    let policy = Policy {
        in_flight_limit: [2, 2],
        ..Policy::default()
    };
    let mut r = rig(policy);
    r.d.handle_timeout(at(0));
    let _ = r.actions(at(0));
    r.announce(Processor::Default, false, 1_400, 50);
    r.d.handle_timeout(at(100));
    let _ = r.actions(at(100));
    for n in 0..22 {
        r.accept(at(200), n);
    }
    let sent = r.actions(at(200));
    let default = sent.iter().filter(|a| payment_send(a).0 == Processor::Default).count();
    let fallback = sent.iter().filter(|a| payment_send(a).0 == Processor::Fallback).count();
    // Default drains 2 per 1.4 s, ~17 within the 12 s hold: the rest of the backlog spills,
    // as far as fallback's own limit allows.
    assert_eq!((default, fallback), (2, 2));
    assert_eq!(r.d.stats().spilled, 2);
}

#[test]
fn one_health_call_per_processor_per_interval_across_instances() {
    let segment = Segment::anonymous(1024).unwrap();
    let mut ds: Vec<Dispatcher> = (0..3)
        .map(|_| {
            let owner = segment.register_owner(T0 as u64).unwrap();
            Dispatcher::new(segment.attach_again(), owner, Policy::default())
        })
        .collect();
    let mut calls: Vec<(u64, Processor)> = Vec::new();
    for t in (0..30_000).step_by(50) {
        for d in ds.iter_mut() {
            d.handle_timeout(at(t));
            while let Some(a) = d.poll_action() {
                if let Action::Send {
                    call: Call::Health,
                    processor,
                    ..
                } = a
                {
                    calls.push((t, processor));
                }
            }
        }
    }
    for p in Processor::ALL {
        let times: Vec<u64> = calls.iter().filter(|c| c.1 == p).map(|c| c.0).collect();
        assert!(times.len() >= 5, "{p:?} polled {} times", times.len());
        assert!(
            times.windows(2).all(|w| w[1] - w[0] >= 5_000),
            "{p:?} polled at {times:?}"
        );
    }
}

#[test]
fn a_dead_instances_payments_are_adopted_and_resolved_where_it_sent_them() {
    let mut a = rig(Policy::default());
    a.d.handle_timeout(at(0));
    let slot = a.accept(at(0), 1);
    let sent = a.actions(at(0));
    let (p, stamp) = payment_send(&sent[0]);
    // Instance A dies here: no more heartbeats. B starts on the same segment.
    let owner_b = a.segment.register_owner(T0 as u64).unwrap();
    let mut b = Dispatcher::new(a.segment.attach_again(), owner_b, Policy::default());
    let mut found = None;
    let mut t = 0;
    while found.is_none() && t < 20_000 {
        t += 100;
        b.handle_timeout(at(t));
        while let Some(action) = b.poll_action() {
            match action {
                Action::Send {
                    call:
                        Call::Payment {
                            id: pid,
                            requested_at_ms,
                            ..
                        },
                    processor,
                    request,
                } => {
                    assert_eq!(pid, id(1));
                    found = Some((processor, requested_at_ms, request, t));
                }
                // Looked up first, where A sent it: not there, so B retries.
                Action::Send {
                    call: Call::Lookup { id: pid },
                    processor,
                    request,
                } => {
                    assert_eq!((pid, processor), (id(1), p));
                    answer(&mut b, at(t), request, processor, 404, None);
                }
                _ => {}
            }
        }
    }
    let (bp, bstamp, request, when) = found.expect("never adopted");
    assert!(when >= OWNER_STALE_MS, "adopted at {when} ms while A was still alive");
    assert_eq!(
        (bp, bstamp),
        (p, stamp),
        "the adopter must resolve on the processor A used, with A's requestedAt"
    );
    answer(&mut b, at(when + 5), request, bp, 422, None);
    assert_eq!(
        a.state(slot),
        SlotState::Done {
            processor: p,
            requested_at_ms: stamp
        }
    );
    assert_eq!(b.stats().adopted, 1);
}

#[test]
fn a_purge_drops_what_was_queued() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let a = r.actions(at(0));
    r.fail(at(1), a[0], false);
    r.segment.purge();
    r.d.handle_timeout(at(1_000));
    assert!(r.actions(at(1_000)).is_empty());
    assert_eq!(r.d.stats().dropped, 1);
}

/// Simulation seed 29 (both-fail): fallback learned "failing" from the shared health slot, so
/// its probe instant was 0, while the router held payments for a failing default. The
/// deadline stayed at 0 after every tick: the reactor would have spun until the hold ended.
#[test]
fn a_passed_probe_instant_that_routing_does_not_use_is_not_a_deadline() {
    let mut r = rig(patient());
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let a = r.actions(at(0));
    r.answer(at(10), a[0], 500);
    r.announce(Processor::Fallback, true, 0, 20);
    for t in [150, 300, 450] {
        r.d.handle_timeout(at(t));
        assert!(r.actions(at(t)).is_empty(), "nothing may go while both fail");
        let next = r.d.poll_timeout();
        assert!(next > t, "after a tick at {t} ms the next deadline is {next} ms");
    }
    // The default probe still goes out on time.
    assert_eq!(r.d.poll_timeout(), 510);
    r.d.handle_timeout(at(510));
    let probe = r.actions(at(510));
    assert_eq!(probe.len(), 1);
    assert_eq!(payment_send(&probe[0]).0, Processor::Default);
}

/// Answers every health call of `d` with the given reports (by processor) and returns the
/// other actions.
fn actions_with_health(d: &mut Dispatcher, now: Now, reports: [(bool, u32); 2]) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(a) = d.poll_action() {
        if let Action::Send {
            request,
            processor,
            call: Call::Health,
        } = a
        {
            let (failing, min_response_ms) = reports[processor.index()];
            let outcome = Outcome::Answered {
                status: if failing { 503 } else { 200 },
                requested_at_ms: None,
                amount_cents: None,
                health: Some(crate::dispatch::ProcessorHealth {
                    failing,
                    min_response_ms,
                }),
                retry_after_s: None,
            };
            d.handle_completion(
                now,
                Completion {
                    request,
                    processor,
                    outcome,
                },
            );
            continue;
        }
        if let Action::Cancel { request } = a {
            // As `Upstream::cancel` reports a request that was on the wire (the processor
            // named is not read: the dispatcher knows where it sent the request).
            d.handle_completion(
                now,
                Completion {
                    request,
                    processor: Processor::Default,
                    outcome: Outcome::Failed { written: true },
                },
            );
        }
        out.push(a);
    }
    out
}

/// Simulation seeds 506 and 740 (chaos): default's delay was ~150 s when an attempt went out
/// and became ambiguous; default then failed announcing a delay of 48 ms, so the quarantine
/// (twice the current latency + 5 s) let a lookup's 404 free the payment to fallback while
/// the attempt still slept inside default — it would have stored there too once default
/// recovered. Not found frees nothing, before or after the longer delay has run out.
#[test]
fn a_not_found_frees_nothing_while_an_attempt_may_still_sleep_an_earlier_longer_delay() {
    let mut r = rig(Policy::default());
    let slow = [(false, 150_000), (false, 0)];
    r.d.handle_timeout(at(0));
    assert!(actions_with_health(&mut r.d, at(0), slow).is_empty());
    r.accept(at(100), 1);
    let first = actions_with_health(&mut r.d, at(100), slow);
    assert_eq!(payment_send(&first[0]).0, Processor::Default);
    r.fail(at(200), first[0], true);
    // Default now fails, and its delay dropped to 48 ms (observed at 1 s).
    let dropped = [(true, 48), (false, 0)];
    r.announce(Processor::Default, true, 48, 1_000);
    let mut t = 200;
    let mut lookups = 0;
    while t < 300_000 {
        t += 100;
        r.d.handle_timeout(at(t));
        for a in actions_with_health(&mut r.d, at(t), dropped) {
            match a {
                Action::Send {
                    processor: Processor::Fallback,
                    ..
                } => panic!("freed to fallback at {t} ms; the attempt of 100 ms may sleep until 150.1 s"),
                Action::Send {
                    call: Call::Lookup { .. },
                    ..
                } => {
                    lookups += 1;
                    r.answer(at(t), a, 404);
                }
                _ => r.answer(at(t), a, 500),
            }
        }
    }
    assert!(lookups > 100, "{lookups} lookups");
}

/// Simulation seed 857 (chaos): instance A sent a payment to fallback (500), default (500)
/// and fallback again, reusing fallback's first stamp, then stalled; fallback stored it. B
/// adopted it and resolved it on default, whose stamp was the newer one — a second charge.
/// The segment records the processor of the latest attempt: B resolves there, and only there.
#[test]
fn an_adopted_payment_is_resolved_where_it_was_last_sent_whatever_the_stamps_order() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0 as u64).unwrap();
    let owner_b = segment.register_owner(T0 as u64).unwrap();
    let mut b = Dispatcher::new(segment.attach_again(), owner_b, Policy::default());
    let healthy = [(false, 0), (false, 0)];
    let Insert::Inserted(slot) = segment.insert_claimed(&id(1), 1990, T0 as u64, a) else {
        panic!()
    };
    let on_fallback = segment
        .begin_attempt(Claim::first(slot), a, Processor::Fallback, T0 as u64 + 10)
        .unwrap()
        .requested_at_ms;
    segment
        .begin_attempt(Claim::first(slot), a, Processor::Default, T0 as u64 + 20)
        .unwrap();
    assert_eq!(
        segment
            .begin_attempt(Claim::first(slot), a, Processor::Fallback, T0 as u64 + 30)
            .map(|attempted| attempted.requested_at_ms),
        Ok(on_fallback)
    );
    // A dies here; B adopts the payment once A is stale.
    let mut t = 0;
    while t < 30_000 && !matches!(segment.view(slot.slot).unwrap().state, SlotState::Done { .. }) {
        t += 100;
        b.handle_timeout(at(t));
        for action in actions_with_health(&mut b, at(t), healthy) {
            let Action::Send {
                request,
                processor,
                call,
            } = action
            else {
                panic!("{action:?}")
            };
            assert_eq!(processor, Processor::Fallback, "{call:?} at {t} ms");
            // Found by the lookup B makes first, as stored there with A's stamp.
            let Call::Lookup { .. } = call else {
                panic!("sent before looking it up: {call:?}")
            };
            answer(&mut b, at(t), request, processor, 200, Some(on_fallback));
        }
    }
    assert_eq!(
        segment.view(slot.slot).unwrap().state,
        SlotState::Done {
            processor: Processor::Fallback,
            requested_at_ms: on_fallback
        }
    );
    assert_eq!(b.stats().adopted, 1);
}

/// Simulation seed 3444 (chaos): instance A sent a payment to default while its delay was
/// 163 s, saw the delay drop to 11 ms, crashed and restarted; the new instance adopted the
/// payment knowing only the 11 ms, and a 404 from the failing default freed it to fallback
/// while the first attempt still slept in default. An adopter that did not watch the delays
/// the attempt ran under cannot bound its sleep: it resolves it on default, by a retry once
/// default takes payments again.
#[test]
fn a_payment_adopted_blind_is_resolved_where_it_was_sent_never_freed_by_a_not_found() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0 as u64).unwrap();
    let Insert::Inserted(slot) = segment.insert_claimed(&id(1), 1990, T0 as u64, a) else {
        panic!()
    };
    let stamp = segment
        .begin_attempt(Claim::first(slot), a, Processor::Default, T0 as u64 + 10)
        .unwrap()
        .requested_at_ms;
    // A dies; B starts 5 s later and only ever sees default failing with a short delay.
    let owner_b = segment.register_owner(T0 as u64 + 5_000).unwrap();
    let mut b = Dispatcher::new(segment.attach_again(), owner_b, Policy::default());
    let failing = [(true, 11), (false, 0)];
    let recovered = [(false, 11), (false, 0)];
    let mut lookups = 0;
    let mut t = 5_000;
    while t < 400_000 && !matches!(segment.view(slot.slot).unwrap().state, SlotState::Done { .. }) {
        t += 100;
        b.handle_timeout(at(t));
        let default_up = t >= 300_000;
        for action in actions_with_health(&mut b, at(t), if default_up { recovered } else { failing }) {
            let Action::Send {
                request,
                processor,
                call,
            } = action
            else {
                panic!("{action:?}")
            };
            let status = match call {
                Call::Lookup { .. } => {
                    lookups += 1;
                    404
                }
                Call::Payment { requested_at_ms, .. } => {
                    assert_eq!(
                        (processor, requested_at_ms),
                        (Processor::Default, stamp),
                        "at {t} ms, after {lookups} lookups"
                    );
                    if default_up {
                        422
                    } else {
                        500
                    }
                }
                Call::Health => unreachable!(),
            };
            answer(&mut b, at(t), request, processor, status, None);
        }
    }
    assert!(lookups > 0);
    assert_eq!(
        segment.view(slot.slot).unwrap().state,
        SlotState::Done {
            processor: Processor::Default,
            requested_at_ms: stamp
        }
    );
    assert!(t >= 300_000, "resolved at {t} ms, before default took payments again");
}

/// Simulation seed 126 (chaos): default's delay was 156 s for under 5 s, a window no health
/// poll saw; an attempt sent then was given up after 18 s (its give-up time for the 2 s delay
/// announced), default failed, and a 404 freed the payment to fallback once the quarantine
/// for the announced delay was over — while the attempt slept on inside default. An attempt
/// that outlived its give-up time sleeps a delay nobody knows: only default can settle it.
#[test]
fn a_given_up_attempt_is_never_declared_absent_by_a_not_found() {
    let mut r = rig(Policy::default());
    let announced = [(false, 2_090), (false, 0)];
    r.d.handle_timeout(at(0));
    assert!(actions_with_health(&mut r.d, at(0), announced).is_empty());
    let slot = r.accept(at(100), 1);
    let first = actions_with_health(&mut r.d, at(100), announced);
    let (p, stamp) = payment_send(&first[0]);
    assert_eq!(p, Processor::Default);
    let failing = [(true, 1_256), (false, 0)];
    let mut t = 100;
    let mut gave_up = false;
    while t < 400_000 && !matches!(r.state(slot), SlotState::Done { .. }) {
        t += 100;
        let up = t >= 300_000;
        r.d.handle_timeout(at(t));
        for a in actions_with_health(&mut r.d, at(t), if up { announced } else { failing }) {
            match a {
                Action::Cancel { .. } => gave_up = true,
                Action::Send {
                    call: Call::Lookup { .. },
                    ..
                } => r.answer(at(t), a, 404),
                _ => {
                    assert_eq!(payment_send(&a), (Processor::Default, stamp), "at {t} ms");
                    // Default fails (500) until it recovers; then the first attempt has
                    // landed and the retry is a duplicate.
                    r.answer(at(t), a, if up { 422 } else { 500 });
                }
            }
        }
    }
    assert!(gave_up);
    r.assert_done(slot, Processor::Default, stamp);
}

/// Both processors failed for longer than the hold bound; fallback's probe answered first
/// when both came back. Before: the backlog went to fallback in the ~500 ms until default's
/// next probe (hundreds of payments in the scenario benchmark). Now default is probed at once
/// and fallback waits for its verdict.
#[test]
fn when_fallback_comes_back_first_default_is_asked_at_once_before_fallback_gets_the_backlog() {
    let mut r = rig(Policy::default());
    let failing = [(true, 0), (true, 0)];
    r.d.handle_timeout(at(0));
    assert!(actions_with_health(&mut r.d, at(0), failing).is_empty());
    for n in 0..5 {
        r.accept(at(10), n);
    }
    let mut t = 10;
    // Past the hold bound, probes go to both; all fail until fallback recovers at 13 s.
    let fallback_back = loop {
        t += 10;
        r.d.handle_timeout(at(t));
        let mut back = None;
        for a in actions_with_health(&mut r.d, at(t), failing) {
            let (p, _) = payment_send(&a);
            if p == Processor::Fallback && t >= 13_000 {
                back = Some(a);
            } else {
                r.answer(at(t), a, 500);
            }
        }
        if let Some(a) = back {
            break a;
        }
        assert!(t < 20_000, "no fallback probe");
    };
    r.answer(at(t + 1), fallback_back, 200);
    let next = actions_with_health(&mut r.d, at(t + 1), failing);
    let sent: Vec<Processor> = next.iter().map(|a| payment_send(a).0).collect();
    assert_eq!(sent, vec![Processor::Default], "default asked first, fallback waits");
    // Default still fails: now fallback may take the backlog.
    r.answer(at(t + 2), next[0], 500);
    let rest = actions_with_health(&mut r.d, at(t + 2), failing);
    assert!(!rest.is_empty());
    assert!(
        rest.iter().all(|a| payment_send(a).0 == Processor::Fallback),
        "{rest:?}"
    );
}

/// Scenario benchmark, published schedule: default failed with a 2 s delay; its probe that
/// answered 200 once it recovered had slept that delay, and the backlog held through the
/// outage spilled to fallback on the stale 2 s (hundreds of payments per run), though default
/// now answered in 20 ms.
#[test]
fn a_default_back_from_failing_gets_the_backlog_whatever_delay_it_had_while_failing() {
    let mut r = rig(patient());
    r.d.handle_timeout(at(0));
    let _ = r.actions(at(0));
    r.announce(Processor::Default, true, 2_000, 50);
    r.d.handle_timeout(at(100));
    for n in 0..30 {
        r.accept(at(100), n);
    }
    let probe = r.actions(at(100));
    assert_eq!(probe.len(), 1, "a single probe while default fails: {probe:?}");
    r.answer(at(2_100), probe[0], 200);
    let backlog = r.actions(at(2_100));
    assert_eq!(backlog.len(), 29);
    assert!(
        backlog.iter().all(|a| payment_send(a).0 == Processor::Default),
        "{backlog:?}"
    );
    assert_eq!(r.d.stats().spilled, 0);
}

#[test]
fn an_answer_sooner_than_the_announced_delay_lowers_it() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let _ = r.actions(at(0));
    r.announce(Processor::Default, false, 2_000, 50);
    r.d.handle_timeout(at(100));
    r.accept(at(200), 1);
    let sent = r.actions(at(200));
    assert_eq!(r.d.stats().processors[0].announced_delay_ms, 2_000);
    // Sent after the announcement and answered in 20 ms: the delay is 20 ms at most now.
    r.answer(at(220), sent[0], 200);
    assert_eq!(r.d.stats().processors[0].announced_delay_ms, 20);
    // The same report read again (every heartbeat) does not bring the old figure back.
    r.d.handle_timeout(at(400));
    assert_eq!(r.d.stats().processors[0].announced_delay_ms, 20);
}

/// Simulation seed 943 (chaos): a payment sent well before default's delay jumped to 190 s
/// had its give-up pushed to the 120 s cap when the jump was announced, though it had arrived
/// under the old delay; its answer hung, and it stayed unrecorded for two minutes. Only the
/// attempts sent since the report before the jump may sleep the new delay.
#[test]
fn a_longer_delay_extends_only_the_attempts_that_may_have_arrived_after_it() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let _ = r.actions(at(0));
    r.accept(at(10), 1);
    let early = r.actions(at(10));
    r.announce(Processor::Default, false, 0, 3_000);
    r.d.handle_timeout(at(3_100));
    r.accept(at(3_200), 2);
    let late = r.actions(at(3_200));
    r.announce(Processor::Default, false, 5_000, 5_000);
    r.d.handle_timeout(at(5_100));
    let _ = r.actions(at(5_100));
    let request = |a: &Action| match a {
        Action::Send { request, .. } => *request,
        other => panic!("{other:?}"),
    };
    // The early one keeps its 10 s; the late one waits for the 5 s delay (30 s).
    let old = 10 + Policy::default().give_up_ms(0);
    r.d.handle_timeout(at(old));
    assert_eq!(
        r.actions(at(old)),
        vec![Action::Cancel {
            request: request(&early[0])
        }]
    );
    let new = 3_200 + Policy::default().give_up_ms(5_000);
    r.d.handle_timeout(at(new - 1));
    assert!(!r.actions(at(new - 1)).contains(&Action::Cancel {
        request: request(&late[0])
    }));
    r.d.handle_timeout(at(new));
    assert!(r.actions(at(new)).contains(&Action::Cancel {
        request: request(&late[0])
    }));
}

/// An attempt given up while it sleeps a long delay that has dropped since: a retry now lands
/// (at the short delay) long before the sleeping attempt, so the payment is looked up at once
/// and, not found yet, retried at once — the processor then stores the retry and answers the
/// sleeper 422 when it wakes.
#[test]
fn after_the_delay_dropped_a_given_up_payment_is_retried_at_once_not_when_the_old_attempt_wakes() {
    let policy = Policy {
        max_give_up_ms: 10_000,
        ..Policy::default()
    };
    let mut r = rig(policy);
    r.d.handle_timeout(at(0));
    let _ = r.actions(at(0));
    r.announce(Processor::Default, false, 60_000, 50);
    r.d.handle_timeout(at(100));
    r.accept(at(100), 1);
    let first = r.actions(at(100));
    let (_, stamp) = payment_send(&first[0]);
    // The delay drops to 10 ms; the attempt (asleep until 60.1 s) is given up at 10.1 s.
    r.announce(Processor::Default, false, 10, 5_000);
    r.d.handle_timeout(at(10_100));
    assert!(matches!(r.actions(at(10_100))[..], [Action::Cancel { .. }]));
    r.d.handle_timeout(at(10_200));
    let lookup = r.actions(at(10_200));
    only_lookup(&lookup, Processor::Default);
    r.answer(at(10_210), lookup[0], 404);
    r.d.handle_timeout(at(10_400));
    let retry = r.actions(at(10_400));
    assert_eq!(payment_send(&retry[0]), (Processor::Default, stamp));
}

// --- issue 15: every segment call proves the payment and the claim ---------------------------

/// A payment in flight when a purge comes: a new payment takes its slot (the same id, so the
/// same home slot). The old attempt's late 200 must not mark the new payment done, and the new
/// one must be sent with its own requestedAt.
#[test]
fn a_late_answer_for_a_purged_payment_does_not_land_on_the_payment_that_took_its_slot() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let old = r.accept(at(0), 1);
    let sent = r.actions(at(0));
    assert_eq!(payment_send(&sent[0]), (Processor::Default, T0 as u64));
    r.segment.purge();
    let new = r.accept(at(50), 1);
    assert_eq!(new.slot, old.slot, "the same id lands in the same home slot");
    assert_ne!(new.epoch, old.epoch);
    r.answer(at(60), sent[0], 200);
    assert!(
        matches!(r.state(new), SlotState::InFlight { .. }),
        "the old payment's 200 marked the new one done"
    );
    let again = r.actions(at(60));
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(payment_send(&again[0]), (Processor::Default, T0 as u64 + 50));
    r.answer(at(70), again[0], 200);
    r.assert_done(new, Processor::Default, T0 as u64 + 50);
}

/// A payment held (default failing, fallback refused) when a purge comes: once a new payment
/// has taken its slot, the old copy must never be sent, not with the new payment's stamp
/// either.
#[test]
fn a_held_payment_purged_under_it_is_never_sent_with_the_new_payments_stamp() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let first = r.actions(at(0));
    r.fail(at(1), first[0], false); // refused: nothing stored, retried after a backoff
    r.segment.purge();
    let new = r.accept(at(10), 1);
    let mut sent_new = 0;
    for t in (20..3_000).step_by(50) {
        r.d.handle_timeout(at(t));
        for a in r.actions(at(t)) {
            let (p, stamp) = payment_send(&a);
            assert!(stamp >= T0 as u64 + 10, "sent with a stamp from before the new payment");
            sent_new += 1;
            r.answer(at(t), a, 200);
            r.assert_done(new, p, stamp);
        }
    }
    assert_eq!(sent_new, 1, "the purged copy was sent too");
    assert!(r.d.stats().dropped >= 1, "the purged copy was not dropped");
}

/// Issue 15, item 3: A holds X; A stalls past the staleness bound and B adopts X, whose
/// attempt on fallback is ambiguous; A wakes with its copy; B stalls; A adopts X back, pinned
/// to fallback. A's first copy must stay dead: X goes to fallback only, never to default.
#[test]
fn a_copy_from_before_an_adoption_stays_dead_when_its_owner_adopts_the_payment_back() {
    let mut a = rig(Policy::default());
    a.d.handle_timeout(at(0));
    a.accept(at(0), 1);
    // Both refuse for now, so A keeps its copy queued behind a backoff.
    let first = a.actions(at(0));
    a.fail(at(1), first[0], false);
    // A stalls. B registers and adopts X once A is stale, and sends it to fallback.
    let owner_b = a.segment.register_owner(T0 as u64).unwrap();
    let b_segment = a.segment.attach_again();
    let b = Dispatcher::new(b_segment, owner_b, Policy::default());
    let t_b = OWNER_STALE_MS + 500;
    b.segment.heartbeat(owner_b, T0 as u64 + t_b);
    let mut adopted = Vec::new();
    b.segment()
        .adopt(owner_b, T0 as u64 + t_b, OWNER_STALE_MS, 0, 0, 1024, &mut adopted);
    assert_eq!(adopted.len(), 1);
    let b_claim = adopted[0].claim;
    b.segment()
        .begin_attempt(b_claim, owner_b, Processor::Fallback, T0 as u64 + t_b)
        .unwrap();
    // B's attempt is ambiguous and B stalls; A wakes and, once B is stale, adopts X back.
    let t_a = t_b + OWNER_STALE_MS + 500;
    let mut sent = Vec::new();
    let mut t = t_a;
    while t < t_a + 5_000 {
        a.d.handle_timeout(at(t));
        for action in a.actions(at(t)) {
            let Action::Send { processor, call, .. } = action else {
                continue;
            };
            sent.push((processor, call));
            match call {
                Call::Lookup { .. } => a.answer(at(t), action, 404),
                Call::Payment { .. } => a.answer(at(t), action, 200),
                Call::Health => {}
            }
        }
        t += 50;
    }
    assert!(!sent.is_empty(), "A never adopted X back");
    assert!(
        sent.iter().all(|(p, _)| *p == Processor::Fallback),
        "X left fallback while an attempt there was unresolved: {sent:?}"
    );
}

/// Issue 15, item 1: an instance killed with a payment in flight is noticed at the next
/// heartbeat (its owner lock is gone), not after the staleness bound, and the survivor looks
/// the payment up where it was sent at once.
#[test]
fn a_killed_instances_payment_in_flight_is_looked_up_by_a_survivor_within_a_few_turns() {
    let segment = Segment::anonymous(1 << 16).unwrap();
    let mut process_a = Some(segment.attach_again());
    let a = process_a.as_ref().unwrap().register_owner(T0 as u64).unwrap();
    let Insert::Inserted(x) = segment.insert_claimed(&id(1), 1990, T0 as u64, a) else {
        panic!()
    };
    let stamp = segment
        .begin_attempt(Claim::first(x), a, Processor::Default, T0 as u64)
        .unwrap()
        .requested_at_ms;
    let process_b = segment.attach_again();
    let owner_b = process_b.register_owner(T0 as u64).unwrap();
    let mut b = Dispatcher::new(process_b, owner_b, Policy::default());
    let healthy = [(false, 0), (false, 0)];
    let mut t = 0;
    let mut looked_up = None;
    while t < 2_000 && looked_up.is_none() {
        if t == 1_000 {
            drop(process_a.take()); // kill -9: no unregistering, heartbeat still fresh
        }
        if t >= b.poll_timeout() {
            b.handle_timeout(at(t));
        }
        for action in actions_with_health(&mut b, at(t), healthy) {
            if let Action::Send {
                request,
                processor,
                call: Call::Lookup { id: pid },
            } = action
            {
                assert_eq!((pid, processor), (id(1), Processor::Default));
                looked_up = Some(t);
                answer(&mut b, at(t), request, processor, 200, Some(stamp));
            }
        }
        t += 5;
    }
    let when = looked_up.expect("never looked up");
    assert!(when >= 1_000, "adopted from a live instance at {when} ms");
    assert!(
        when <= 1_000 + 2 * HEARTBEAT_EVERY_MS,
        "noticed {} ms after the kill",
        when - 1_000
    );
    assert_eq!(
        b.segment().view(x.slot).unwrap().state,
        SlotState::Done {
            processor: Processor::Default,
            requested_at_ms: stamp
        }
    );
    assert!(b.stats().laps >= 1);
}

/// Issue 15, item 4: a lookup answered 200 with a body we cannot read is asked again a few
/// times, then the payment is retried with its requestedAt, and the processor's 422 settles
/// it — instead of asking forever while the processor holds it.
#[test]
fn lookups_answered_with_unreadable_bodies_end_in_a_retry_that_settles_it() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let slot = r.accept(at(0), 1);
    let first = r.actions(at(0));
    let (_, stamp) = payment_send(&first[0]);
    r.fail(at(10), first[0], true); // written, then the connection was lost: ambiguous
    let mut lookups = 0;
    let mut t = 10;
    while t < 30_000 && !matches!(r.state(slot), SlotState::Done { .. }) {
        t += 50;
        r.d.handle_timeout(at(t));
        for a in r.actions(at(t)) {
            let Action::Send { call, processor, .. } = a else {
                continue;
            };
            assert_eq!(processor, Processor::Default);
            match call {
                Call::Lookup { .. } => {
                    lookups += 1;
                    r.answer_with(at(t), a, 200, None); // found, body unreadable
                }
                Call::Payment { requested_at_ms, .. } => {
                    assert_eq!(requested_at_ms, stamp);
                    r.answer(at(t), a, 422);
                }
                Call::Health => {}
            }
        }
    }
    assert_eq!(lookups, u32::from(UNREADABLE_LOOKUPS));
    r.assert_done(slot, Processor::Default, stamp);
    assert_eq!(r.d.stats().processors[0].unreadable, u64::from(UNREADABLE_LOOKUPS));
}

/// Issue 15, item 4: a 422 to the first attempt anyone made on that processor cannot be about
/// our payment: the processor holds another under this id. It is looked up and recorded as
/// the processor holds it (its requestedAt, its amount), so the books agree.
#[test]
fn a_422_to_a_first_attempt_is_looked_up_and_recorded_as_the_processor_holds_it() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let slot = r.accept(at(1_000), 1);
    let first = r.actions(at(1_000));
    assert_eq!(payment_send(&first[0]).0, Processor::Default);
    r.answer(at(1_010), first[0], 422);
    assert!(
        matches!(r.state(slot), SlotState::InFlight { .. }),
        "recorded with our stamp and amount"
    );
    let lookup = r.actions(at(1_010));
    only_lookup(&lookup, Processor::Default);
    let theirs_at = T0 as u64 - 60_000;
    let Action::Send { request, processor, .. } = lookup[0] else {
        panic!()
    };
    r.d.handle_completion(
        at(1_020),
        Completion {
            request,
            processor,
            outcome: Outcome::Answered {
                status: 200,
                requested_at_ms: Some(theirs_at),
                amount_cents: Some(777),
                health: None,
                retry_after_s: None,
            },
        },
    );
    r.assert_done(slot, Processor::Default, theirs_at);
    assert_eq!(r.segment.view(slot.slot).unwrap().cents, 777);
    assert_eq!(r.segment.summary(None, None).of(Processor::Default).cents, 777);
}

/// Simulation seed 7764 (takeover, 10 000-seed run): A's first attempt sleeps in a slow
/// default; A stalls, B adopts the payment and retries it there with A's requestedAt, and the
/// retry lands first. A's attempt is then answered 422 — about our own payment, not another:
/// whoever took the claim may have sent it. Recorded at once with the shared requestedAt.
#[test]
fn a_422_to_a_first_attempt_after_the_payment_was_taken_is_ours() {
    let mut a = rig(Policy::default());
    a.d.handle_timeout(at(0));
    let slot = a.accept(at(0), 1);
    let first = a.actions(at(0));
    let (p, stamp) = payment_send(&first[0]);
    let owner_b = a.segment.register_owner(T0 as u64).unwrap();
    let later = T0 as u64 + OWNER_STALE_MS + 100;
    a.segment.heartbeat(owner_b, later);
    let mut out = Vec::new();
    a.segment.adopt(owner_b, later, OWNER_STALE_MS, 0, 0, 1024, &mut out);
    assert_eq!(out.len(), 1, "B did not take the payment");
    a.answer(at(OWNER_STALE_MS + 200), first[0], 422);
    a.assert_done(slot, p, stamp);
}

/// Issue 16, a clean stop: once draining, nothing new leaves (no payment, lookup, health poll
/// or adoption) while the answers already on their way are still recorded; `drained` turns
/// true only when no payment or lookup awaits an answer. What was left unsent is then taken
/// over by another instance once this one unregisters.
#[test]
fn a_draining_dispatcher_records_answers_in_flight_and_sends_nothing_new() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    let _ = r.actions(at(0));
    let slots = [r.accept(at(10), 1), r.accept(at(10), 2), r.accept(at(10), 3)];
    let sent = r.actions(at(10));
    assert_eq!(sent.len(), 3, "{sent:?}");
    // The third is lost after it was written: pinned to default, to be looked up later.
    r.fail(at(20), sent[2], true);
    // A dead instance's payment, adoptable by anyone but a draining instance.
    let dead = r.segment.register_owner(T0 as u64).unwrap();
    assert!(matches!(
        r.segment.insert_claimed(&id(9), 1990, T0 as u64, dead),
        Insert::Inserted(_)
    ));
    r.d.begin_drain();
    assert!(!r.d.drained(), "two payments are in flight");
    // Accepted while draining (a request already on its way to this instance): kept, not sent.
    let late = r.accept(at(30), 4);
    assert_eq!(r.d.poll_action(), None);
    let me = r.d.owner().0;
    assert!(matches!(r.state(late), SlotState::InFlight { owner, .. } if owner == me));
    r.answer(at(40), sent[0], 200);
    r.assert_done(slots[0], Processor::Default, T0 as u64 + 10);
    assert!(!r.d.drained(), "one payment is still in flight");
    // Past the backoff of the third, the staleness of the dead owner and a health interval,
    // but before the second is given up: still nothing new.
    for t in (100..=9_900).step_by(100) {
        r.d.handle_timeout(at(t));
        assert_eq!(r.d.poll_action(), None, "sent something while draining, at {t} ms");
    }
    assert_eq!(r.d.stats().adopted, 0);
    // A refusal is recorded (nothing stored), not retried.
    r.answer(at(9_950), sent[1], 500);
    assert_eq!(r.d.poll_action(), None);
    assert!(r.d.drained());
    for t in (10_000..=20_000).step_by(100) {
        r.d.handle_timeout(at(t));
        assert_eq!(r.d.poll_action(), None, "sent something once drained, at {t} ms");
    }
    // Unregistered, its unsettled payments (2 and 3, sent to default; 4, never sent; and the
    // orphan) go to the next instance: looked up where they were sent, or sent afresh.
    r.segment.unregister_owner(r.d.owner());
    let owner_b = r.segment.register_owner(T0 as u64 + 20_100).unwrap();
    let mut b = Dispatcher::new(r.segment.attach_again(), owner_b, Policy::default());
    let mut asked = std::collections::HashSet::new();
    for t in (20_100..=40_000).step_by(100) {
        b.handle_timeout(at(t));
        for a in actions_with_health(&mut b, at(t), [(false, 0), (false, 0)]) {
            match a {
                Action::Send {
                    call: Call::Lookup { id } | Call::Payment { id, .. },
                    ..
                } => {
                    asked.insert(id.0[0]);
                }
                Action::Send { .. } | Action::Cancel { .. } => {}
            }
        }
    }
    assert_eq!(
        asked,
        std::collections::HashSet::from([2, 3, 4, 9]),
        "what the next instance took over"
    );
    assert_eq!(b.stats().adopted, 4);
}

/// A payment pinned for resolution when a purge comes is dropped before its lookup: nothing
/// is left to resolve, and what a lookup found would be the next payment of that id.
#[test]
fn a_purged_payment_pinned_for_resolution_is_not_looked_up() {
    let mut r = rig(Policy::default());
    r.d.handle_timeout(at(0));
    r.accept(at(0), 1);
    let first = r.actions(at(0));
    r.fail(at(10), first[0], true); // ambiguous: pinned to default, looked up later
    r.segment.purge();
    for t in (100..30_000).step_by(100) {
        r.d.handle_timeout(at(t));
        let sent = r.actions(at(t));
        assert!(sent.is_empty(), "sent {sent:?} at {t} ms for a purged payment");
    }
    assert_eq!(r.d.stats().dropped, 1);
}
