//! Deterministic tests of owners, claims, adoption, attempt stamps, health slots and the
//! census, plus two threaded races (the attempt protocol, concurrent health claims).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::layout::{
    pack_owner, pack_report, pack_stamp, read_stamp, state, unpack_report, Ctrl, Stamp, MAX_REPORT_MIN_RESPONSE_MS,
    MAX_TIME_MS,
};
use super::tests::{attempt, done, held, inserted, uuid, Rng, T0};
use super::*;

/// Heartbeat staleness bound used by these tests (ms).
const STALE: u64 = 1_000;

fn claimed_slots(out: &[Claimed]) -> Vec<u32> {
    let mut slots: Vec<u32> = out.iter().map(|c| c.claim.slot().0).collect();
    slots.sort_unstable();
    slots
}

/// Waits until `parties` threads have arrived for `round` (rounds numbered from 0): spins,
/// yielding now and then so two shared cores are enough.
fn arrive(counter: &AtomicU64, parties: u64, round: u64) {
    counter.fetch_add(1, Ordering::AcqRel);
    let mut spins = 0u32;
    while counter.load(Ordering::Acquire) < parties * (round + 1) {
        spins += 1;
        if spins % 256 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

fn spin(n: u64) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

// --- owners ----------------------------------------------------------------------------------

#[test]
fn register_heartbeat_stale_unregister() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let other = segment.attach_again();
    let b = other.register_owner(T0).unwrap();
    assert_ne!(a, b);
    assert!(a.0 != 0 && b.0 != 0);
    assert!(!segment.owner_is_stale(a, T0, STALE));
    assert!(
        !segment.owner_is_stale(a, T0 + STALE, STALE),
        "exactly stale_ms old is still live"
    );
    assert!(segment.owner_is_stale(a, T0 + STALE + 1, STALE));
    assert!(
        !segment.owner_is_stale(a, T0 - 50, STALE),
        "a heartbeat in the future is fresh"
    );
    segment.heartbeat(a, T0 + 900);
    assert!(!segment.owner_is_stale(a, T0 + 1_900, STALE));
    assert!(segment.owner_is_stale(a, T0 + 1_901, STALE));
    assert!(segment.owner_is_stale(b, T0 + 1_900, STALE), "b did not heartbeat");
    segment.unregister_owner(a);
    assert!(segment.owner_is_stale(a, T0 + 900, STALE), "gone at once");
    segment.heartbeat(a, T0 + 950);
    assert!(
        segment.owner_is_stale(a, T0 + 950, STALE),
        "a heartbeat does not re-register"
    );
    assert!(segment.owner_is_stale(OwnerId(0), T0, u64::MAX), "0 is never an owner");
    assert!(segment.owner_is_stale(OwnerId(4242), T0, STALE), "never registered");
    segment.unregister_owner(a); // twice: nothing happens
    assert!(!segment.owner_is_stale(b, T0 + STALE, STALE));
}

#[test]
fn owner_ids_are_never_reused() {
    let segment = Segment::anonymous(1024).unwrap();
    let mut seen = std::collections::HashSet::new();
    for n in 0..500 {
        // Each from a process of its own, which exits at the end of the turn; a third of them
        // unregister first.
        let process = segment.attach_again();
        let owner = process.register_owner(T0 + n).unwrap();
        assert_ne!(owner.0, 0);
        assert!(seen.insert(owner.0), "id {} handed out twice", owner.0);
        if n % 3 == 0 {
            process.unregister_owner(owner); // freed entries are reused, ids are not
        }
    }
    // After the 16-bit wrap: 0 and ids still held by an entry (live or dead) are skipped.
    let fresh = Segment::anonymous(1024).unwrap();
    let first = fresh.attach_again();
    let one = first.register_owner(T0).unwrap();
    assert_eq!(one, OwnerId(1));
    drop(first); // exits without unregistering: its entry still names 1
    fresh.header().next_owner.store(u64::from(u16::MAX), Ordering::Relaxed);
    assert_eq!(fresh.register_owner(T0), Some(OwnerId(u16::MAX)));
    assert_eq!(
        fresh.register_owner(T0 + 10 * STALE),
        Some(OwnerId(2)),
        "skips 0 and 1 (held by a dead entry whose payments may still carry it)"
    );
}

#[test]
fn at_most_max_owners_live_and_only_an_exited_ones_entry_is_taken_over() {
    let segment = Segment::anonymous(1024).unwrap();
    let mut processes: Vec<(Segment, OwnerId)> = (0..MAX_OWNERS)
        .map(|_| {
            let process = segment.attach_again();
            let owner = process.register_owner(T0).expect("room");
            (process, owner)
        })
        .collect();
    assert_eq!(segment.register_owner(T0 + STALE), None, "all live");
    // All but the first keep beating; the first stalls: still alive, its entry is kept.
    for (process, owner) in &processes[1..] {
        process.heartbeat(*owner, T0 + 2 * STALE);
    }
    let stalled = processes[0].1;
    assert!(
        segment.owner_is_stale(stalled, T0 + 2 * STALE, STALE),
        "stale by heartbeat"
    );
    assert_eq!(
        segment.register_owner(T0 + 2 * STALE),
        None,
        "a stalled instance's entry was taken: its heartbeats are lost for good"
    );
    // The second exits: its entry is free at once, and it is gone at once, heartbeat or not.
    let (exited, gone) = processes.remove(1);
    drop(exited);
    assert!(
        segment.owner_is_stale(gone, T0 + 2 * STALE, STALE),
        "an exit is noticed at once"
    );
    let newcomer = segment.register_owner(T0 + 2 * STALE).expect("the exited one's entry");
    assert!(processes.iter().all(|(_, owner)| *owner != newcomer));
    assert!(!segment.owner_is_stale(newcomer, T0 + 2 * STALE, STALE));
    // The stalled one wakes up and beats again: fresh, in its own entry.
    processes[0].0.heartbeat(stalled, T0 + 2 * STALE + 1);
    assert!(!segment.owner_is_stale(stalled, T0 + 2 * STALE + 1, STALE));
    assert_eq!(segment.owner_heartbeat(newcomer.0), Some(T0 + 2 * STALE));
}

#[test]
fn an_exit_is_noticed_at_once_and_a_stall_only_after_the_bound() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.attach_again();
    let b = segment.attach_again();
    let owner_a = a.register_owner(T0).unwrap();
    let owner_b = b.register_owner(T0).unwrap();
    // b stalls: alive by its lock, gone only once its heartbeat is older than the bound.
    assert!(!segment.owner_is_stale(owner_b, T0 + STALE, STALE));
    assert!(segment.owner_is_stale(owner_b, T0 + STALE + 1, STALE));
    // a exits (kill -9: no unregistering): gone at once, its heartbeat fresh.
    drop(a);
    assert!(segment.owner_is_stale(owner_a, T0, STALE));
    // Its payments are adoptable at once.
    let Insert::Inserted(x) = b.insert_claimed(&uuid(1), 100, T0, owner_a) else {
        panic!()
    };
    let mut out = Vec::new();
    b.adopt(owner_b, T0 + 1, STALE, u64::MAX, 0, 1024, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].claim.payment, x);
}

#[test]
fn owner_locks_are_kernel_locks_on_the_file() {
    let dir = std::env::temp_dir().join(format!("payrelay-witness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("segment");
    let _ = std::fs::remove_file(&path);
    // Two opens stand for two processes: each has its own open file description.
    let one = Segment::open(&path, 1024).unwrap();
    let two = Segment::open(&path, 1024).unwrap();
    let a = one.register_owner(T0).unwrap();
    let b = two.register_owner(T0).unwrap();
    assert_ne!(a, b);
    assert!(!two.owner_is_stale(a, T0, STALE));
    assert!(!one.owner_is_stale(b, T0, STALE));
    // Handles of one process share its locks.
    let again = one.attach_again();
    assert!(!again.owner_is_stale(a, T0, STALE));
    drop(again);
    assert!(!two.owner_is_stale(a, T0, STALE), "a handle's end is not the process's");
    // The process of `one` ends: its descriptor closes and the kernel drops its lock.
    drop(one);
    assert!(two.owner_is_stale(a, T0, STALE), "the kernel released a's lock");
    let c = two.attach_again();
    drop(c);
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- claims ----------------------------------------------------------------------------------

#[test]
fn claim_from_queued_is_idempotent_and_refused_for_a_live_owner() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let b = segment.register_owner(T0).unwrap();
    let slot = inserted(segment.insert(&uuid(1), 1990, T0 - 5));
    let expected = Claimed {
        claim: Claim {
            payment: PaymentRef { slot, epoch: 1 },
            generation: 1,
        },
        id: uuid(1),
        cents: 1990,
        accepted_at_ms: T0 - 5,
        requested_at: [None, None],
        last_attempt: None,
    };
    assert_eq!(segment.claim(slot, a, T0, STALE), Ok(expected));
    assert_eq!(segment.claim(slot, a, T0 + 1, STALE), Ok(expected), "already ours");
    assert_eq!(segment.claim(slot, b, T0 + 1, STALE), Err(ClaimError::OwnedByLive));
    assert_eq!(
        segment.view(slot).unwrap().state,
        SlotState::InFlight {
            owner: a.0,
            owner_heartbeat_ms: Some(T0)
        }
    );
    assert_eq!(segment.claim(SlotId(5_000), a, T0, STALE), Err(ClaimError::NotLive));
    let empty = (0..1024).map(SlotId).find(|&s| s != slot).unwrap();
    assert_eq!(segment.claim(empty, a, T0, STALE), Err(ClaimError::NotLive));
    // mark_done still works from any owner's claim.
    done(&segment, slot, Processor::Default, T0 + 3).unwrap();
    assert_eq!(segment.claim(slot, a, T0, STALE), Err(ClaimError::AlreadyDone));
    assert_eq!(segment.claim(slot, b, T0, STALE), Err(ClaimError::AlreadyDone));
}

#[test]
fn claim_takes_a_stale_owners_payment() {
    let segment = Segment::anonymous(1024).unwrap();
    let old = segment.register_owner(T0).unwrap();
    let new = segment.register_owner(T0).unwrap();
    let slot = inserted(segment.insert_claimed(&uuid(2), 70, T0, old));
    assert_eq!(attempt(&segment, slot, old, Processor::Default, T0 + 10), Ok(T0 + 10));
    assert_eq!(
        segment.claim(slot, new, T0 + STALE, STALE),
        Err(ClaimError::OwnedByLive)
    );
    let claimed = segment.claim(slot, new, T0 + STALE + 1, STALE).unwrap();
    assert_eq!(claimed.requested_at, [Some(T0 + 10), None], "the predecessor's attempt");
    assert_eq!(
        attempt(&segment, slot, old, Processor::Default, T0 + 20),
        Err(AttemptError::NotOwner)
    );
    assert_eq!(
        attempt(&segment, slot, new, Processor::Default, T0 + 30),
        Ok(T0 + 10),
        "the retry reuses the requestedAt fixed by the predecessor"
    );
    // An owner that left cleanly is adoptable at once, whatever the staleness bound.
    let other = inserted(segment.insert_claimed(&uuid(3), 1, T0, new));
    segment.unregister_owner(new);
    assert!(segment.claim(other, old, T0, u64::MAX).is_ok());
    // A slot whose owner field is 0 (never a registered owner) is adoptable too.
    let raw = &segment.slots()[other.0 as usize];
    raw.ctrl.store(Ctrl::encode(1, state::IN_FLIGHT, 0), Ordering::Release);
    assert!(segment.claim(other, new, T0, u64::MAX).is_ok());
}

#[test]
fn insert_claimed_publishes_owned_and_duplicates_change_nothing() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let b = segment.register_owner(T0).unwrap();
    let slot = inserted(segment.insert_claimed(&uuid(1), 500, T0, a));
    let view = segment.view(slot).unwrap();
    assert_eq!((view.id, view.cents, view.accepted_at_ms), (uuid(1), 500, T0));
    assert_eq!(
        view.state,
        SlotState::InFlight {
            owner: a.0,
            owner_heartbeat_ms: Some(T0)
        }
    );
    assert_eq!(segment.insert_claimed(&uuid(1), 9, T0 + 1, b), Insert::Duplicate(slot));
    assert_eq!(segment.insert(&uuid(1), 9, T0 + 1), Insert::Duplicate(slot));
    assert_eq!(segment.view(slot), Some(view), "still a's, same amount");
    assert_eq!(segment.live_count(), 1);
    // A duplicate of a queued payment does not claim it either.
    let queued = inserted(segment.insert(&uuid(2), 1, T0));
    assert_eq!(segment.insert_claimed(&uuid(2), 1, T0, b), Insert::Duplicate(queued));
    assert_eq!(segment.view(queued).unwrap().state, SlotState::Queued);
    assert_eq!(segment.live_count(), 2);
}

// --- adoption --------------------------------------------------------------------------------

#[test]
fn adopt_takes_old_queued_payments_and_leaves_young_ones() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let old: Vec<SlotId> = (0..10).map(|n| inserted(segment.insert(&uuid(n), n + 1, T0))).collect();
    let young: Vec<SlotId> = (10..15)
        .map(|n| inserted(segment.insert(&uuid(n), n + 1, T0 + 800)))
        .collect();
    let mut out = Vec::new();
    let cursor = segment.adopt(a, T0 + 1_000, STALE, 500, 0, 1024, &mut out);
    assert_eq!(cursor, 0, "a full lap comes back to the start");
    let mut expected: Vec<u32> = old.iter().map(|s| s.0).collect();
    expected.sort_unstable();
    assert_eq!(claimed_slots(&out), expected);
    for claimed in &out {
        let slot = &claimed.claim.slot();
        let n = (0..10).find(|&n| old[n as usize] == *slot).unwrap();
        assert_eq!(
            *claimed,
            Claimed {
                claim: Claim {
                    payment: PaymentRef { slot: *slot, epoch: 1 },
                    generation: 1,
                },
                id: uuid(n),
                cents: n + 1,
                accepted_at_ms: T0,
                requested_at: [None, None],
                last_attempt: None,
            }
        );
        assert!(matches!(segment.view(*slot).unwrap().state, SlotState::InFlight { owner, .. } if owner == a.0));
    }
    for slot in &young {
        assert_eq!(segment.view(*slot).unwrap().state, SlotState::Queued);
    }
    out.clear();
    segment.adopt(a, T0 + 1_000, STALE, 500, 0, 1024, &mut out);
    assert!(out.is_empty(), "ours already, the young ones still young");
    segment.adopt(a, T0 + 1_300, STALE, 500, 0, 1024, &mut out);
    assert_eq!(out.len(), young.len(), "at least min_age old now");
    out.clear();
    segment.heartbeat(a, T0 + 1_300);
    let b = segment.register_owner(T0).unwrap();
    let fresh = inserted(segment.insert(&uuid(99), 1, T0 + 1_300));
    segment.adopt(b, T0 + 1_300, STALE, 0, 0, 1024, &mut out);
    assert_eq!(
        claimed_slots(&out),
        vec![fresh.0],
        "min_age 0 takes every queued payment"
    );
}

#[test]
fn adopt_takes_a_stale_owners_payments_with_their_stamps() {
    let segment = Segment::anonymous(1024).unwrap();
    let dead = segment.register_owner(T0).unwrap();
    let live = segment.register_owner(T0).unwrap();
    let heir = segment.register_owner(T0).unwrap();
    let dead_slots: Vec<SlotId> = (0..20)
        .map(|n| inserted(segment.insert_claimed(&uuid(n), 1, T0, dead)))
        .collect();
    let live_slots: Vec<SlotId> = (20..30)
        .map(|n| inserted(segment.insert_claimed(&uuid(n), 1, T0, live)))
        .collect();
    attempt(&segment, dead_slots[3], dead, Processor::Fallback, T0 + 7).unwrap();
    segment.heartbeat(live, T0 + 2 * STALE);
    segment.heartbeat(heir, T0 + 2 * STALE);
    let mut out = Vec::new();
    segment.adopt(heir, T0 + 2 * STALE, STALE, 0, 0, 1024, &mut out);
    let mut expected: Vec<u32> = dead_slots.iter().map(|s| s.0).collect();
    expected.sort_unstable();
    assert_eq!(claimed_slots(&out), expected, "the dead owner's, not the live one's");
    for claimed in &out {
        let slot = &claimed.claim.slot();
        let (stamps, last) = if *slot == dead_slots[3] {
            ([None, Some(T0 + 7)], Some(Processor::Fallback))
        } else {
            ([None, None], None)
        };
        assert_eq!((claimed.requested_at, claimed.last_attempt), (stamps, last));
        assert_eq!(
            attempt(&segment, *slot, dead, Processor::Default, T0),
            Err(AttemptError::NotOwner)
        );
    }
    for slot in &live_slots {
        assert!(matches!(segment.view(*slot).unwrap().state, SlotState::InFlight { owner, .. } if owner == live.0));
    }
}

#[test]
fn the_latest_attempt_is_recorded_and_handed_to_the_adopter_whatever_the_stamps_order() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let b = segment.register_owner(T0).unwrap();
    let c = segment.register_owner(T0).unwrap();
    let slot = inserted(segment.insert_claimed(&uuid(1), 5, T0, a));
    // Fallback first (stamp T0+1), then default (T0+2), then fallback again reusing T0+1: the
    // older stamp is the latest attempt.
    assert_eq!(attempt(&segment, slot, a, Processor::Fallback, T0 + 1), Ok(T0 + 1));
    assert_eq!(attempt(&segment, slot, a, Processor::Default, T0 + 2), Ok(T0 + 2));
    assert_eq!(attempt(&segment, slot, a, Processor::Fallback, T0 + 3), Ok(T0 + 1));
    // The record travels with ownership: b takes it from dead a, c from dead b.
    segment.unregister_owner(a);
    let claimed = segment.claim(slot, b, T0 + 4, STALE).unwrap();
    assert_eq!(claimed.requested_at, [Some(T0 + 2), Some(T0 + 1)]);
    assert_eq!(claimed.last_attempt, Some(Processor::Fallback));
    assert_eq!(attempt(&segment, slot, b, Processor::Default, T0 + 5), Ok(T0 + 2));
    // a is gone: its attempt is refused and does not touch b's record.
    assert_eq!(
        attempt(&segment, slot, a, Processor::Fallback, T0 + 6),
        Err(AttemptError::NotOwner)
    );
    assert!(matches!(segment.view(slot).unwrap().state, SlotState::InFlight { owner, .. } if owner == b.0));
    segment.unregister_owner(b);
    let mut out = Vec::new();
    segment.adopt(c, T0 + 7, STALE, 0, 0, 1024, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].last_attempt, Some(Processor::Default));
    // Never attempted: nothing recorded.
    let fresh = inserted(segment.insert_claimed(&uuid(2), 5, T0, c));
    assert_eq!(segment.claim(fresh, c, T0, STALE).unwrap().last_attempt, None);
    // Done: the record ends with the payment.
    done(&segment, slot, Processor::Default, T0 + 2).unwrap();
    assert_eq!(segment.claim(slot, c, T0 + 8, STALE), Err(ClaimError::AlreadyDone));
}

#[test]
fn adopt_respects_budget_and_wraps_its_cursor() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    for n in 0..300 {
        inserted(segment.insert(&uuid(n), 1, T0));
    }
    let mut out = Vec::new();
    let cursor = segment.adopt(a, T0 + 10, STALE, 0, 1_000, 100, &mut out);
    assert_eq!(cursor, 76, "1000..1024 then 0..76");
    assert!(out.iter().all(|c| c.claim.slot().0 >= 1_000 || c.claim.slot().0 < 76));
    let first = out.len();
    // Cursors beyond the capacity wrap too; laps of 100 cover every slot once.
    let mut cursor = cursor + 1024 * 3;
    for _ in 0..10 {
        cursor = segment.adopt(a, T0 + 10, STALE, 0, cursor, 100, &mut out);
    }
    assert_eq!(cursor, (1_000 + 1_100) % 1_024, "eleven budgets of 100 from 1000");
    assert_eq!(
        out.len(),
        300,
        "each payment claimed exactly once ({first} in the first pass)"
    );
    let mut slots = claimed_slots(&out);
    slots.dedup();
    assert_eq!(slots.len(), 300);
    assert_eq!(
        segment.adopt(a, T0, STALE, 0, 5, 0, &mut out),
        5,
        "budget 0 scans nothing"
    );
    assert_eq!(
        segment.adopt(a, T0, STALE, 0, 5, u32::MAX, &mut out),
        5,
        "at most one lap"
    );
}

#[test]
fn adopt_finds_nothing_once_everything_is_done() {
    let segment = Segment::anonymous(1024).unwrap();
    let dead = segment.register_owner(T0).unwrap();
    let heir = segment.register_owner(T0).unwrap();
    for n in 0..50 {
        let slot = if n % 2 == 0 {
            inserted(segment.insert(&uuid(n), 1, T0))
        } else {
            inserted(segment.insert_claimed(&uuid(n), 1, T0, dead))
        };
        done(&segment, slot, Processor::ALL[(n % 2) as usize], T0 + n).unwrap();
    }
    let mut out = Vec::new();
    segment.adopt(heir, T0 + 10 * STALE, STALE, 0, 0, 1024, &mut out);
    assert!(out.is_empty());
}

// --- attempts --------------------------------------------------------------------------------

#[test]
fn first_stamp_wins_per_processor() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let slot = inserted(segment.insert_claimed(&uuid(5), 10, T0, a));
    assert_eq!(attempt(&segment, slot, a, Processor::Default, T0 + 1), Ok(T0 + 1));
    assert_eq!(
        attempt(&segment, slot, a, Processor::Default, T0 + 500),
        Ok(T0 + 1),
        "a retry reuses the first requestedAt"
    );
    assert_eq!(
        segment.view(slot).unwrap().requested_at,
        [Some(T0 + 1), None],
        "fallback untouched"
    );
    assert_eq!(attempt(&segment, slot, a, Processor::Fallback, T0 + 900), Ok(T0 + 900));
    assert_eq!(attempt(&segment, slot, a, Processor::Fallback, T0 + 901), Ok(T0 + 900));
    assert_eq!(attempt(&segment, slot, a, Processor::Default, T0 + 902), Ok(T0 + 1));
    assert_eq!(
        segment.claim(slot, a, T0, STALE).unwrap().requested_at,
        [Some(T0 + 1), Some(T0 + 900)]
    );
    let other = inserted(segment.insert_claimed(&uuid(6), 10, T0, a));
    assert_eq!(
        attempt(&segment, other, a, Processor::Default, MAX_TIME_MS + 9),
        Ok(MAX_TIME_MS),
        "clamped like mark_done's limit"
    );
    // Done: refused, and the view shows the recorded time.
    done(&segment, slot, Processor::Default, T0 + 1).unwrap();
    assert_eq!(
        attempt(&segment, slot, a, Processor::Default, T0 + 2),
        Err(AttemptError::AlreadyDone)
    );
    assert_eq!(
        attempt(&segment, slot, a, Processor::Fallback, T0 + 2),
        Err(AttemptError::AlreadyDone)
    );
    let view = segment.view(slot).unwrap();
    assert_eq!(
        view.state,
        SlotState::Done {
            processor: Processor::Default,
            requested_at_ms: T0 + 1
        }
    );
    assert_eq!(view.requested_at, [Some(T0 + 1), Some(T0 + 900)]);
}

#[test]
fn attempts_need_ownership() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let b = segment.register_owner(T0).unwrap();
    let queued = inserted(segment.insert(&uuid(1), 1, T0));
    assert_eq!(
        attempt(&segment, queued, a, Processor::Default, T0),
        Err(AttemptError::NotOwner),
        "not claimed yet"
    );
    assert_eq!(
        segment.view(queued).unwrap().requested_at,
        [None, None],
        "no stamp left"
    );
    let slot = inserted(segment.insert_claimed(&uuid(2), 1, T0, a));
    assert_eq!(
        attempt(&segment, slot, b, Processor::Default, T0),
        Err(AttemptError::NotOwner)
    );
    segment.unregister_owner(a);
    segment.claim(slot, b, T0, STALE).unwrap();
    assert_eq!(
        attempt(&segment, slot, a, Processor::Default, T0),
        Err(AttemptError::NotOwner)
    );
    assert_eq!(
        attempt(&segment, SlotId(1 << 20), b, Processor::Default, T0),
        Err(AttemptError::NotLive)
    );
    let empty = (0..1024).map(SlotId).find(|&s| s != slot && s != queued).unwrap();
    assert_eq!(
        attempt(&segment, empty, b, Processor::Default, T0),
        Err(AttemptError::NotLive)
    );
    segment.purge();
    assert_eq!(
        attempt(&segment, slot, b, Processor::Default, T0),
        Err(AttemptError::NotLive)
    );
}

#[test]
fn purge_resets_attempts_and_ownership() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let b = segment.register_owner(T0).unwrap();
    let id = uuid(8);
    let slot = inserted(segment.insert_claimed(&id, 10, T0, a));
    attempt(&segment, slot, a, Processor::Default, T0 + 1).unwrap();
    attempt(&segment, slot, a, Processor::Fallback, T0 + 2).unwrap();
    segment.purge();
    assert_eq!(segment.census(), Census::default());
    // The same id lands in the same (home) slot in the new epoch.
    assert_eq!(
        segment.insert(&id, 11, T0 + 3),
        Insert::Inserted(PaymentRef { slot, epoch: 2 })
    );
    let view = segment.view(slot).unwrap();
    assert_eq!((view.state, view.requested_at), (SlotState::Queued, [None, None]));
    assert_eq!(
        attempt(&segment, slot, a, Processor::Default, T0 + 4),
        Err(AttemptError::NotOwner),
        "a's claim did not survive the purge"
    );
    // A zombie of the old epoch that stamps after the reinsert (it stamps before it checks)
    // leaves a word that reads as unset for the new payment.
    let raw = &segment.slots()[slot.0 as usize];
    raw.requested_at[0].store(pack_stamp(1, T0 + 1), Ordering::SeqCst);
    assert_eq!(segment.view(slot).unwrap().requested_at, [None, None]);
    let claimed = segment.claim(slot, b, T0 + 5, STALE).unwrap();
    assert_eq!((claimed.cents, claimed.requested_at), (11, [None, None]));
    assert_eq!(attempt(&segment, slot, b, Processor::Default, T0 + 6), Ok(T0 + 6));
    // The new payment's stamp is newer than anything the zombie's epoch may write over.
    assert_eq!(read_stamp(raw.requested_at[0].load(Ordering::SeqCst), 1), Stamp::Newer);
    done(&segment, slot, Processor::Default, T0 + 6).unwrap();
    assert_eq!(
        segment.summary(None, None).of(Processor::Default),
        Totals { count: 1, cents: 11 }
    );
}

#[test]
fn stamp_tags_order_epochs_across_the_wrap() {
    assert_eq!(read_stamp(0, 1), Stamp::Unset);
    assert_eq!(read_stamp(pack_stamp(5, 42), 5), Stamp::Fixed(42));
    assert_eq!(
        read_stamp(pack_stamp(5, 0), 5),
        Stamp::Fixed(0),
        "time 0 is a real stamp"
    );
    assert_eq!(read_stamp(pack_stamp(4, 42), 5), Stamp::Unset);
    assert_eq!(read_stamp(pack_stamp(6, 42), 5), Stamp::Newer);
    assert_eq!(read_stamp(pack_stamp(5, MAX_TIME_MS), 5), Stamp::Fixed(MAX_TIME_MS));
    let wrap = 1u32 << 19;
    assert_eq!(read_stamp(pack_stamp(wrap, 1), wrap - 1), Stamp::Newer);
    assert_eq!(read_stamp(pack_stamp(wrap - 1, 1), wrap), Stamp::Unset);
    assert_eq!(
        read_stamp(pack_stamp(wrap + 5, 1), 5),
        Stamp::Fixed(1),
        "19 bits of epoch"
    );
}

/// The attempt protocol under a real race: an old owner that keeps attempting while an adopter
/// takes its payment over. Whenever the old owner was allowed to send, the adopter must have
/// seen that attempt's requestedAt and processor; when it was not, no record of it.
#[test]
fn an_adopter_sees_every_attempt_its_predecessor_may_have_sent() {
    const ROUNDS: u64 = 20_000;
    let segment = Segment::anonymous(1 << 15).unwrap();
    let old = OwnerId(7); // never registered: stale for everyone
    let heir = OwnerId(9);
    let slots: Vec<SlotId> = (0..ROUNDS)
        .map(|n| inserted(segment.insert_claimed(&uuid(n), 1, T0, old)))
        .collect();
    let processor = |round: u64| Processor::ALL[(round % 2) as usize];
    let arrived = AtomicU64::new(0);
    let (sent, seen) = std::thread::scope(|scope| {
        let old_side = scope.spawn(|| {
            let handle = segment.attach_again();
            let mut rng = Rng(1);
            let mut sent = Vec::with_capacity(ROUNDS as usize);
            for round in 0..ROUNDS {
                arrive(&arrived, 2, round);
                spin(rng.below(48));
                // Keep attempting (retries) until the payment is lost; record what was sent.
                let mut allowed = None;
                loop {
                    match attempt(&handle, slots[round as usize], old, processor(round), T0 + round) {
                        Ok(at) => {
                            assert!(allowed.map_or(true, |first| first == at), "requestedAt changed");
                            allowed = Some(at);
                        }
                        Err(err) => {
                            assert_eq!(err, AttemptError::NotOwner);
                            break;
                        }
                    }
                }
                sent.push(allowed);
            }
            sent
        });
        let heir_side = scope.spawn(|| {
            let handle = segment.attach_again();
            let mut rng = Rng(2);
            let mut seen = Vec::with_capacity(ROUNDS as usize);
            for round in 0..ROUNDS {
                arrive(&arrived, 2, round);
                spin(rng.below(48));
                let claimed = handle.claim(slots[round as usize], heir, T0, STALE).unwrap();
                seen.push((claimed.requested_at[processor(round).index()], claimed.last_attempt));
            }
            seen
        });
        (old_side.join().unwrap(), heir_side.join().unwrap())
    });
    let (mut both, mut lost_first, mut stamped_late) = (0, 0, 0);
    for round in 0..ROUNDS as usize {
        match sent[round] {
            Some(at) => {
                assert_eq!(
                    seen[round],
                    (Some(at), Some(processor(round as u64))),
                    "round {round}: a send the adopter cannot know of"
                );
                both += 1;
            }
            None => {
                // No send allowed, so no record either: the adopter sends it afresh.
                assert_eq!(seen[round].1, None, "round {round}: a record without a send");
                lost_first += 1;
            }
        }
        // The tightest interleaving: the old owner stamped after the adopter read the stamps,
        // so it had to find the payment lost (and did not send).
        let stamp = segment.view(slots[round]).unwrap().requested_at[processor(round as u64).index()];
        if seen[round].0.is_none() && stamp.is_some() {
            assert_eq!(sent[round], None);
            stamped_late += 1;
        }
    }
    eprintln!(
        "attempt race: sent then adopted {both}, adopted before any send {lost_first} \
         (of which stamped after the adopter read: {stamped_late})"
    );
    assert!(
        both > 0 && lost_first > 0,
        "both outcomes should occur: sent {both}, lost before sending {lost_first}"
    );
}

// --- health ----------------------------------------------------------------------------------

#[test]
fn one_health_poll_per_interval_among_concurrent_claimers() {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 300;
    const INTERVAL: u64 = 5_000;
    let segment = Segment::anonymous(1024).unwrap();
    let arrived = AtomicU64::new(0);
    let wins: Vec<[AtomicU32; 2]> = (0..ROUNDS).map(|_| [AtomicU32::new(0), AtomicU32::new(0)]).collect();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let handle = segment.attach_again();
            let (arrived, wins) = (&arrived, &wins);
            scope.spawn(move || {
                let mut rng = Rng(t + 10);
                for round in 0..ROUNDS {
                    arrive(arrived, THREADS, round);
                    spin(rng.below(32));
                    let now = T0 + round * INTERVAL;
                    for processor in Processor::ALL {
                        if handle.claim_health_poll(processor, now, INTERVAL) {
                            wins[round as usize][processor.index()].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    for (round, wins) in wins.iter().enumerate() {
        for processor in Processor::ALL {
            assert_eq!(
                wins[processor.index()].load(Ordering::Relaxed),
                1,
                "round {round}, {processor:?}"
            );
        }
    }
}

#[test]
fn health_polls_are_claimed_per_interval_and_deferred() {
    let segment = Segment::anonymous(1024).unwrap();
    let other = segment.attach_again();
    let p = Processor::Default;
    assert!(segment.claim_health_poll(p, T0, 5_000));
    assert!(!other.claim_health_poll(p, T0, 5_000));
    assert!(!other.claim_health_poll(p, T0 + 4_999, 5_000));
    assert!(
        other.claim_health_poll(Processor::Fallback, T0 + 1, 5_000),
        "processors independent"
    );
    assert!(other.claim_health_poll(p, T0 + 5_000, 5_000));
    assert!(!segment.claim_health_poll(p, T0 + 5_000, 5_000));
    // A 429 with Retry-After: 8 s.
    segment.defer_health_poll(p, T0 + 18_000);
    segment.defer_health_poll(p, T0 + 11_000); // never earlier
    assert!(!other.claim_health_poll(p, T0 + 10_000, 5_000));
    assert!(!other.claim_health_poll(p, T0 + 17_999, 5_000));
    assert!(other.claim_health_poll(p, T0 + 18_000, 5_000));
    assert!(!segment.claim_health_poll(p, T0 + 22_999, 5_000));
}

#[test]
fn health_reports_round_trip() {
    let segment = Segment::anonymous(1024).unwrap();
    let other = segment.attach_again();
    assert_eq!(segment.health(Processor::Default), None);
    let report = HealthReport {
        failing: true,
        min_response_ms: 123,
    };
    segment.publish_health(Processor::Default, report, T0);
    assert_eq!(other.health(Processor::Default), Some((report, T0)));
    assert_eq!(other.health(Processor::Fallback), None);
    let healthy = HealthReport {
        failing: false,
        min_response_ms: 0,
    };
    other.publish_health(Processor::Default, healthy, T0 + 5_000);
    assert_eq!(segment.health(Processor::Default), Some((healthy, T0 + 5_000)));
    segment.publish_health(Processor::Default, report, T0 + 4_000);
    assert_eq!(
        segment.health(Processor::Default),
        Some((healthy, T0 + 5_000)),
        "an older observation never hides a newer one"
    );
    let slow = HealthReport {
        failing: false,
        min_response_ms: u32::MAX,
    };
    segment.publish_health(Processor::Fallback, slow, 0);
    assert_eq!(
        segment.health(Processor::Fallback),
        Some((
            HealthReport {
                failing: false,
                min_response_ms: MAX_REPORT_MIN_RESPONSE_MS
            },
            0
        )),
        "saturated, and time 0 is a real observation"
    );
    assert_eq!(
        unpack_report(pack_report(true, 1_048_575, T0)),
        Some((true, 1_048_575, T0))
    );
}

// --- census ----------------------------------------------------------------------------------

#[test]
fn census_counts_every_state() {
    let segment = Segment::anonymous(1024).unwrap();
    assert_eq!(segment.census(), Census::default());
    let a = segment.register_owner(T0).unwrap();
    for n in 0..10 {
        inserted(segment.insert(&uuid(n), 1, T0 + 100 + n));
    }
    let owned: Vec<SlotId> = (10..17)
        .map(|n| inserted(segment.insert_claimed(&uuid(n), 1, T0 + 50 + n, a)))
        .collect();
    for (k, n) in (17..22).enumerate() {
        let slot = inserted(segment.insert(&uuid(n), 1, T0 + n));
        done(&segment, slot, Processor::ALL[k % 2], T0 + 500).unwrap();
    }
    done(&segment, owned[0], Processor::Fallback, T0 + 600).unwrap();
    assert_eq!(
        segment.census(),
        Census {
            pending: 16,
            done: [3, 3],
        }
    );
    segment.purge();
    assert_eq!(segment.census(), Census::default());
}

#[test]
fn owner_words_pack_id_and_heartbeat() {
    let word = pack_owner(0xABCD, T0);
    assert_eq!(super::layout::owner_id_of(word), 0xABCD);
    assert_eq!(super::layout::heartbeat_of(word), T0);
    assert_eq!(
        super::layout::heartbeat_of(pack_owner(1, u64::MAX)),
        super::layout::MAX_HEARTBEAT_MS,
        "clamped, never spilling into the id"
    );
    assert_eq!(super::layout::owner_id_of(pack_owner(1, u64::MAX)), 1);
}

/// A stamp of a newer epoch in an owned slot (a zombie of the old epoch cannot make one, but a
/// reinsert after a purge can leave one there for a stalled owner to find): the attempt is
/// refused and `mark_done` leaves the newer stamp alone.
#[test]
fn a_newer_epochs_stamp_is_neither_used_nor_overwritten() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let slot = inserted(segment.insert_claimed(&uuid(3), 10, T0, a));
    let epoch = segment.current_epoch();
    let raw = &segment.slots()[slot.0 as usize];
    let newer = pack_stamp(epoch + 1, T0 + 9);
    raw.requested_at[0].store(newer, Ordering::SeqCst);
    assert_eq!(
        attempt(&segment, slot, a, Processor::Default, T0 + 1),
        Err(AttemptError::NotLive)
    );
    assert_eq!(raw.requested_at[0].load(Ordering::SeqCst), newer);
    done(&segment, slot, Processor::Default, T0 + 1).unwrap();
    assert_eq!(
        raw.requested_at[0].load(Ordering::SeqCst),
        newer,
        "mark_done overwrote it"
    );
    // Its own epoch's stamp, on the other processor, is written as usual.
    let slot = inserted(segment.insert_claimed(&uuid(4), 10, T0, a));
    done(&segment, slot, Processor::Fallback, T0 + 2).unwrap();
    let raw = &segment.slots()[slot.0 as usize];
    assert_eq!(
        read_stamp(raw.requested_at[1].load(Ordering::SeqCst), epoch),
        Stamp::Fixed(T0 + 2)
    );
}

// --- claims prove the payment and the claim (issue 15) --------------------------------------

#[test]
fn a_purged_payments_claim_touches_nothing_of_the_payment_that_took_its_slot() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let Insert::Inserted(old) = segment.insert_claimed(&uuid(1), 100, T0, a) else {
        panic!()
    };
    segment.purge();
    let Insert::Inserted(new) = segment.insert_claimed(&uuid(1), 200, T0 + 1, a) else {
        panic!()
    };
    assert_eq!(new.slot, old.slot);
    assert_eq!(
        segment.begin_attempt(Claim::first(old), a, Processor::Default, T0 + 2),
        Err(AttemptError::NotLive)
    );
    assert_eq!(segment.mark_done(old, Processor::Default, T0), Err(DoneError::NotLive));
    let view = segment.view(new.slot).unwrap();
    assert_eq!(view.requested_at, [None, None], "the old claim stamped the new payment");
    assert!(matches!(view.state, SlotState::InFlight { .. }));
    assert_eq!(
        segment
            .begin_attempt(Claim::first(new), a, Processor::Default, T0 + 3)
            .map(|x| x.requested_at_ms),
        Ok(T0 + 3)
    );
}

#[test]
fn every_change_of_owner_bumps_the_generation_and_only_the_newest_claim_may_send() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let b = segment.register_owner(T0).unwrap();
    let Insert::Inserted(x) = segment.insert_claimed(&uuid(1), 100, T0, a) else {
        panic!()
    };
    let first = Claim::first(x);
    // A goes stale; B takes X.
    segment.heartbeat(b, T0 + 2 * STALE);
    let by_b = segment.claim(x.slot, b, T0 + 2 * STALE, STALE).unwrap().claim;
    assert_eq!(by_b.generation, 1);
    assert_eq!(
        segment.begin_attempt(first, a, Processor::Default, T0 + 2 * STALE),
        Err(AttemptError::NotOwner)
    );
    segment
        .begin_attempt(by_b, b, Processor::Fallback, T0 + 2 * STALE)
        .unwrap();
    // B goes stale; A takes X back: a new generation, and the record of B's attempt.
    segment.heartbeat(a, T0 + 4 * STALE);
    let mut out = Vec::new();
    segment.adopt(a, T0 + 4 * STALE, STALE, 0, 0, 1024, &mut out);
    assert_eq!(out.len(), 1);
    let back = out[0];
    assert_eq!(back.claim.generation, 2);
    assert_eq!(back.last_attempt, Some(Processor::Fallback));
    assert_eq!(held(&segment, x.slot), back.claim);
    assert_eq!(
        segment.begin_attempt(first, a, Processor::Default, T0 + 4 * STALE),
        Err(AttemptError::NotOwner),
        "A's copy from before B's claim is valid again"
    );
    assert_eq!(segment.view(x.slot).unwrap().requested_at[0], None);
    assert!(segment
        .begin_attempt(back.claim, a, Processor::Fallback, T0 + 4 * STALE)
        .is_ok());
}

#[test]
fn mark_done_as_records_the_processors_amount_and_refuses_one_beyond_the_largest() {
    let segment = Segment::anonymous(1024).unwrap();
    let a = segment.register_owner(T0).unwrap();
    let Insert::Inserted(x) = segment.insert_claimed(&uuid(1), 100, T0, a) else {
        panic!()
    };
    assert_eq!(
        segment.mark_done_as(x, Processor::Default, T0, Some(crate::base::amount::MAX_CENTS + 1)),
        Err(DoneError::AmountOutOfRange)
    );
    assert!(matches!(
        segment.view(x.slot).unwrap().state,
        SlotState::InFlight { .. }
    ));
    segment.mark_done_as(x, Processor::Default, T0, Some(777)).unwrap();
    assert_eq!(segment.view(x.slot).unwrap().cents, 777);
    let totals = segment.summary(None, None).of(Processor::Default);
    assert_eq!((totals.count, totals.cents), (1, 777));
}
