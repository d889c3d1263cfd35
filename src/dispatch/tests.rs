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

fn rig(policy: Policy) -> Rig {
    let segment = Segment::anonymous(1024).unwrap();
    let owner = segment.register_owner(T0 as u64, OWNER_STALE_MS).unwrap();
    let d = Dispatcher::new(segment.attach_again(), owner, policy);
    Rig { segment, d }
}

impl Rig {
    fn accept(&mut self, now: Now, n: u8) -> SlotId {
        let owner = self.d.owner();
        let Insert::Inserted(slot) = self.segment.insert_claimed(&id(n), 1990, wall(now), owner) else {
            panic!()
        };
        self.d.accepted(now, slot, id(n), 1990);
        slot
    }

    /// Every action pending, health polls answered "healthy, no delay" on the spot so they do
    /// not clutter the assertions.
    fn actions(&mut self, now: Now) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = self.d.poll_action() {
            if let Action::Send {
                request,
                processor,
                call: Call::Health,
            } = a
            {
                let health = Some(crate::processor_api::HealthAnswer {
                    failing: false,
                    min_response_ms: 0,
                });
                let outcome = Outcome::Answered {
                    status: 200,
                    requested_at_ms: None,
                    health,
                    retry_after_s: None,
                };
                self.d.completed(
                    now,
                    Completion {
                        request,
                        processor,
                        outcome,
                    },
                );
                continue;
            }
            out.push(a);
        }
        out
    }

    fn answer(&mut self, now: Now, action: Action, status: u16) {
        let Action::Send { request, processor, .. } = action else {
            panic!("not a send: {action:?}")
        };
        let outcome = Outcome::Answered {
            status,
            requested_at_ms: None,
            health: None,
            retry_after_s: None,
        };
        self.d.completed(
            now,
            Completion {
                request,
                processor,
                outcome,
            },
        );
    }

    fn fail(&mut self, now: Now, action: Action, written: bool) {
        let Action::Send { request, processor, .. } = action else {
            panic!()
        };
        self.d.completed(
            now,
            Completion {
                request,
                processor,
                outcome: Outcome::Failed { written },
            },
        );
    }

    fn state(&self, slot: SlotId) -> SlotState {
        self.segment.view(slot).unwrap().state
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

#[test]
fn healthy_default_takes_the_payment_and_it_is_recorded_with_the_sent_requested_at() {
    let mut r = rig(Policy::default());
    r.d.tick(at(0));
    let slot = r.accept(at(5), 1);
    let sent = r.actions(at(5));
    assert_eq!(sent.len(), 1);
    let (p, requested_at) = payment_send(&sent[0]);
    assert_eq!((p, requested_at), (Processor::Default, T0 as u64 + 5));
    r.answer(at(20), sent[0], 200);
    assert_eq!(
        r.state(slot),
        SlotState::Done {
            processor: Processor::Default,
            requested_at_ms: T0 as u64 + 5
        }
    );
    assert_eq!(r.d.stats().processors[0].succeeded, 1);
}

#[test]
fn failing_default_holds_payments_until_the_bound_then_fallback() {
    let policy = Policy::default();
    let hold = policy.hold_ms();
    let mut r = rig(policy);
    r.d.tick(at(0));
    let slot = r.accept(at(0), 1);
    let first = r.actions(at(0));
    r.answer(at(10), first[0], 500);
    assert_eq!(r.d.stats().processors[0].health, Health::Failing);
    // Probes to default at the probe interval; each answered 500. Nothing goes to fallback
    // before the hold bound.
    let mut t = 10;
    while t < hold {
        r.d.tick(at(t));
        for a in r.actions(at(t)) {
            let (p, _) = payment_send(&a);
            assert_eq!(
                p,
                Processor::Default,
                "sent to fallback at {t} ms, before the hold bound {hold}"
            );
            r.answer(at(t), a, 500);
        }
        t += 100;
    }
    r.d.tick(at(hold + 200));
    let sent = r.actions(at(hold + 200));
    let to_fallback: Vec<_> = sent
        .iter()
        .filter(|a| payment_send(a).0 == Processor::Fallback)
        .collect();
    assert_eq!(to_fallback.len(), 1, "{sent:?}");
    r.answer(at(hold + 210), *to_fallback[0], 200);
    assert!(matches!(
        r.state(slot),
        SlotState::Done {
            processor: Processor::Fallback,
            ..
        }
    ));
}

#[test]
fn a_successful_probe_brings_default_back_for_everyone() {
    let mut r = rig(Policy::default());
    r.d.tick(at(0));
    r.accept(at(0), 1);
    let a = r.actions(at(0));
    r.answer(at(1), a[0], 500);
    for n in 2..10 {
        r.accept(at(2), n);
    }
    // Nothing while the probe interval runs.
    assert!(r.actions(at(2)).is_empty());
    r.d.tick(at(600));
    let probe = r.actions(at(600));
    assert_eq!(probe.len(), 1, "one probe at a time");
    r.answer(at(610), probe[0], 200);
    let rest = r.actions(at(610));
    assert_eq!(rest.len(), 8);
    assert!(rest.iter().all(|a| payment_send(a).0 == Processor::Default));
}

#[test]
fn an_ambiguous_attempt_is_retried_on_the_same_processor_with_the_same_requested_at() {
    let mut r = rig(Policy::default());
    r.d.tick(at(0));
    let slot = r.accept(at(7), 1);
    let first = r.actions(at(7));
    let (_, stamp) = payment_send(&first[0]);
    r.fail(at(50), first[0], true);
    r.d.tick(at(2_000));
    let retry = r.actions(at(2_000));
    assert_eq!(payment_send(&retry[0]), (Processor::Default, stamp));
    // 422: the first attempt had landed; it is recorded with its own requestedAt.
    r.answer(at(2_010), retry[0], 422);
    assert_eq!(
        r.state(slot),
        SlotState::Done {
            processor: Processor::Default,
            requested_at_ms: stamp
        }
    );
}

#[test]
fn a_pinned_payment_on_a_failing_processor_is_looked_up_and_freed_only_after_quarantine() {
    let mut r = rig(Policy::default());
    r.d.tick(at(0));
    let slot = r.accept(at(0), 1);
    let first = r.actions(at(0));
    r.fail(at(10), first[0], true);
    // Default now fails: the pinned payment is looked up instead of re-sent.
    r.accept(at(20), 2);
    let a = r.actions(at(20));
    r.answer(at(30), a[0], 500);
    r.d.tick(at(3_000));
    let lookups: Vec<_> = r
        .actions(at(3_000))
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                Action::Send {
                    call: Call::Lookup { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(lookups.len(), 1);
    // Not found, but too early to trust: stays pinned.
    r.answer(at(3_010), lookups[0], 404);
    assert_eq!(r.d.stats().pinned + r.d.stats().delayed, 1);
    let quarantine = r.d.quarantine_ms(Processor::Default);
    let mut t = 3_010;
    let mut freed = false;
    while t < 60_000 && !freed {
        t += 250;
        r.d.tick(at(t));
        for a in r.actions(at(t)) {
            match a {
                Action::Send {
                    call: Call::Lookup { .. },
                    ..
                } => r.answer(at(t), a, 404),
                Action::Send {
                    processor: Processor::Fallback,
                    ..
                } => {
                    assert!(t >= 10 + quarantine, "freed at {t} ms, before the quarantine ended");
                    r.answer(at(t), a, 200);
                    freed = true;
                }
                _ => r.answer(at(t), a, 500),
            }
        }
    }
    assert!(freed);
    assert!(matches!(
        r.state(slot),
        SlotState::Done {
            processor: Processor::Fallback,
            ..
        }
    ));
}

#[test]
fn a_lookup_that_finds_the_payment_records_the_processors_requested_at() {
    let mut r = rig(Policy::default());
    r.d.tick(at(0));
    let slot = r.accept(at(0), 1);
    let first = r.actions(at(0));
    let (_, stamp) = payment_send(&first[0]);
    r.fail(at(10), first[0], true);
    r.accept(at(20), 2);
    let a = r.actions(at(20));
    r.answer(at(30), a[0], 500);
    r.d.tick(at(3_000));
    let lookup = r.actions(at(3_000)).into_iter().find(|a| {
        matches!(
            a,
            Action::Send {
                call: Call::Lookup { .. },
                ..
            }
        )
    });
    let Some(Action::Send { request, processor, .. }) = lookup else {
        panic!("no lookup")
    };
    let outcome = Outcome::Answered {
        status: 200,
        requested_at_ms: Some(stamp),
        health: None,
        retry_after_s: None,
    };
    r.d.completed(
        at(3_010),
        Completion {
            request,
            processor,
            outcome,
        },
    );
    assert_eq!(
        r.state(slot),
        SlotState::Done {
            processor: Processor::Default,
            requested_at_ms: stamp
        }
    );
}

#[test]
fn an_unanswered_request_is_given_up_cancelled_and_pinned() {
    let policy = Policy::default();
    let give_up = policy.give_up_ms(0);
    let mut r = rig(policy);
    r.d.tick(at(0));
    r.accept(at(0), 1);
    let first = r.actions(at(0));
    let Action::Send { request, .. } = first[0] else {
        panic!()
    };
    assert!(r.d.next_deadline() <= give_up);
    r.d.tick(at(give_up));
    let after = r.actions(at(give_up));
    assert_eq!(after[0], Action::Cancel { request });
    // Resolution goes to the same processor.
    let retry: Vec<_> = after[1..].iter().map(payment_send).collect();
    assert!(retry.iter().all(|(p, _)| *p == Processor::Default));
    assert_eq!(r.d.stats().processors[0].gave_up, 1);
}

#[test]
fn refusals_without_effect_are_retried_with_backoff() {
    let mut r = rig(Policy::default());
    r.d.tick(at(0));
    let slot = r.accept(at(0), 1);
    let a = r.actions(at(0));
    r.fail(at(1), a[0], false);
    assert!(r.actions(at(1)).is_empty(), "retried without a backoff");
    r.d.tick(at(100));
    let b = r.actions(at(100));
    assert_eq!(payment_send(&b[0]).0, Processor::Default);
    r.answer(at(110), b[0], 429);
    r.d.tick(at(400));
    let c = r.actions(at(400));
    r.answer(at(410), c[0], 200);
    assert!(matches!(
        r.state(slot),
        SlotState::Done {
            processor: Processor::Default,
            ..
        }
    ));
}

#[test]
fn a_slow_default_at_capacity_spills_the_backlog_it_cannot_drain() {
    let policy = Policy {
        in_flight_limit: [2, 2],
        ..Policy::default()
    };
    let mut r = rig(policy);
    r.d.tick(at(0));
    let _ = r.actions(at(0));
    r.segment.publish_health(
        Processor::Default,
        HealthReport {
            failing: false,
            min_response_ms: 5_000,
        },
        T0 as u64 + 50,
    );
    r.d.tick(at(100));
    let _ = r.actions(at(100));
    for n in 0..20 {
        r.accept(at(200), n);
    }
    let sent = r.actions(at(200));
    let default = sent.iter().filter(|a| payment_send(a).0 == Processor::Default).count();
    let fallback = sent.iter().filter(|a| payment_send(a).0 == Processor::Fallback).count();
    // Default drains 2 per 5 s = 4.8 within the 12 s hold: the rest of the backlog spills,
    // as far as fallback's own limit allows.
    assert_eq!((default, fallback), (2, 2));
    assert_eq!(r.d.stats().spilled, 2);
}

#[test]
fn one_health_call_per_processor_per_interval_across_instances() {
    let segment = Segment::anonymous(1024).unwrap();
    let mut ds: Vec<Dispatcher> = (0..3)
        .map(|_| {
            let owner = segment.register_owner(T0 as u64, OWNER_STALE_MS).unwrap();
            Dispatcher::new(segment.attach_again(), owner, Policy::default())
        })
        .collect();
    let mut calls: Vec<(u64, Processor)> = Vec::new();
    for t in (0..30_000).step_by(50) {
        for d in ds.iter_mut() {
            d.tick(at(t));
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
    a.d.tick(at(0));
    let slot = a.accept(at(0), 1);
    let sent = a.actions(at(0));
    let (p, stamp) = payment_send(&sent[0]);
    // Instance A dies here: no more heartbeats. B starts on the same segment.
    let owner_b = a.segment.register_owner(T0 as u64, OWNER_STALE_MS).unwrap();
    let mut b = Dispatcher::new(a.segment.attach_again(), owner_b, Policy::default());
    let mut found = None;
    let mut t = 0;
    while found.is_none() && t < 20_000 {
        t += 100;
        b.tick(at(t));
        while let Some(action) = b.poll_action() {
            if let Action::Send {
                call:
                    Call::Payment {
                        id: pid,
                        requested_at_ms,
                        ..
                    },
                processor,
                request,
            } = action
            {
                assert_eq!(pid, id(1));
                found = Some((processor, requested_at_ms, request, t));
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
    let outcome = Outcome::Answered {
        status: 422,
        requested_at_ms: None,
        health: None,
        retry_after_s: None,
    };
    b.completed(
        at(when + 5),
        Completion {
            request,
            processor: bp,
            outcome,
        },
    );
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
    r.d.tick(at(0));
    r.accept(at(0), 1);
    let a = r.actions(at(0));
    r.fail(at(1), a[0], false);
    r.segment.purge();
    r.d.tick(at(1_000));
    assert!(r.actions(at(1_000)).is_empty());
    assert_eq!(r.d.stats().dropped, 1);
}
