//! Deterministic tests of the segment: files, inserts, states, purge, exact summaries,
//! aliasing and concurrent handles.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::layout::{state, Ctrl, Regions, MS_BUCKETS, SEC_BUCKETS, TAG_DIRTY, VERSION, VERSION_OFFSET};
use super::*;
use crate::base::amount::MAX_CENTS;

/// A 2025 timestamp (ms), so tags and laps look like production.
pub(super) const T0: u64 = 1_752_000_000_000;

/// splitmix64: a tiny deterministic PRNG.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The `n`th test correlationId.
pub(super) fn uuid(n: u64) -> Uuid {
    let mut rng = Rng(n.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x1234_5678);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&rng.next().to_le_bytes());
    bytes[8..].copy_from_slice(&rng.next().to_le_bytes());
    Uuid(bytes)
}

/// A unique path in the temp dir, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(name: &str) -> TempPath {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        TempPath(std::env::temp_dir().join(format!("payrelay-segment-{}-{n}-{name}.seg", std::process::id())))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) fn inserted(outcome: Insert) -> SlotId {
    match outcome {
        Insert::Inserted(payment) => payment.slot,
        other => panic!("expected Inserted, got {other:?}"),
    }
}

/// The payment in `slot` now (tests name payments by slot).
pub(super) fn payment(segment: &Segment, slot: SlotId) -> PaymentRef {
    PaymentRef {
        slot,
        epoch: segment.current_epoch(),
    }
}

/// `mark_done` of the payment in `slot` now.
pub(super) fn done(segment: &Segment, slot: SlotId, processor: Processor, at_ms: u64) -> Result<(), DoneError> {
    segment.mark_done(payment(segment, slot), processor, at_ms)
}

/// The claim held on `slot` now, whoever holds it (generation 0 unless in flight).
pub(super) fn held(segment: &Segment, slot: SlotId) -> Claim {
    let word = segment
        .slots()
        .get(slot.0 as usize)
        .map_or(0, |raw| raw.ctrl.load(Ordering::Acquire));
    Claim {
        payment: payment(segment, slot),
        generation: super::claims::generation_of(word),
    }
}

/// `begin_attempt` under the claim held on `slot` now; the `requestedAt` it fixed.
pub(super) fn attempt(
    segment: &Segment,
    slot: SlotId,
    owner: OwnerId,
    processor: Processor,
    at_ms: u64,
) -> Result<u64, AttemptError> {
    segment
        .begin_attempt(held(segment, slot), owner, processor, at_ms)
        .map(|a| a.requested_at_ms)
}

/// The naive reference: totals of `(processor, requestedAt, cents)` rows in the window.
fn naive(rows: &[(Processor, u64, u64)], from: Option<i64>, to: Option<i64>) -> Summary {
    let mut summary = Summary::default();
    for &(processor, at, cents) in rows {
        let at = at as i64;
        if from.map_or(true, |from| at >= from) && to.map_or(true, |to| at <= to) {
            summary.add(processor.index(), 1, cents);
        }
    }
    summary
}

/// Checks scan and summary against the naive filter; returns whether the index answered.
fn assert_exact(segment: &Segment, rows: &[(Processor, u64, u64)], from: Option<i64>, to: Option<i64>) -> bool {
    let expected = naive(rows, from, to);
    assert_eq!(
        segment.summary_scan(from, to),
        expected,
        "scan, window {from:?}..={to:?}"
    );
    assert_eq!(segment.summary(from, to), expected, "summary, window {from:?}..={to:?}");
    let indexed = segment.summary_from_index(from, to);
    if let Some(summary) = indexed {
        assert_eq!(summary, expected, "index, window {from:?}..={to:?}");
    }
    indexed.is_some()
}

/// Like [`assert_exact`], and the index must have answered by itself.
fn assert_indexed(segment: &Segment, rows: &[(Processor, u64, u64)], from: Option<i64>, to: Option<i64>) {
    assert!(
        assert_exact(segment, rows, from, to),
        "index fell back to the scan for {from:?}..={to:?}"
    );
}

// --- files -----------------------------------------------------------------------------------

#[test]
fn open_creates_then_attaches_and_reopens() {
    let path = TempPath::new("create");
    let first = Segment::open(&path.0, 1024).expect("create");
    let meta = std::fs::metadata(&path.0).unwrap();
    assert_eq!(meta.len(), Regions::for_capacity(1024).len as u64);
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "only the instances' own user may map the payments"
    );
    assert_eq!((first.capacity(), first.epoch(), first.live_count()), (1024, 1, 0));

    let slot = inserted(first.insert(&uuid(1), 1990, T0));
    // A second open while the first is mapped sees the same table.
    let second = Segment::open(&path.0, 1024).expect("attach");
    assert_eq!(second.insert(&uuid(1), 1990, T0), Insert::Duplicate(slot));
    done(&second, slot, Processor::Fallback, T0 + 5).unwrap();
    drop(first);
    drop(second);

    // Nobody has it mapped now: the file alone carries the table.
    let third = Segment::open(&path.0, 1024).expect("reopen");
    assert_eq!(third.live_count(), 1);
    assert_eq!(third.insert(&uuid(1), 1990, T0), Insert::Duplicate(slot));
    let view = third.get(&uuid(1)).unwrap();
    assert_eq!(
        view.state,
        SlotState::Done {
            processor: Processor::Fallback,
            requested_at_ms: T0 + 5
        }
    );
    assert_eq!(
        third.summary(None, None).of(Processor::Fallback),
        Totals { count: 1, cents: 1990 }
    );
}

#[test]
fn racing_creators_initialise_once() {
    let path = TempPath::new("race");
    let threads: Vec<_> = (0..4u64)
        .map(|n| {
            let path = path.0.clone();
            std::thread::spawn(move || {
                let segment = Segment::open(&path, 1024).expect("open");
                inserted(segment.insert(&uuid(n), 100, T0));
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let segment = Segment::open(&path.0, 1024).unwrap();
    assert_eq!(
        segment.live_count(),
        4,
        "a second initialisation would have erased inserts"
    );
    assert!((0..4).all(|n| segment.get(&uuid(n)).is_some()));
}

#[test]
fn foreign_file_is_refused_with_bad_magic() {
    let path = TempPath::new("magic");
    std::fs::write(&path.0, b"hello, this is not a segment").unwrap();
    let err = Segment::open(&path.0, 1024).err().expect("must refuse");
    assert!(matches!(err, SegmentError::BadMagic { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&*path.0.to_string_lossy()), "{message}");
    assert!(message.contains("is not a payrelay segment (bad magic)"), "{message}");
    assert!(message.contains("SHARED_MEMORY_PATH"), "{message}");
    assert_eq!(
        std::fs::read(&path.0).unwrap(),
        b"hello, this is not a segment",
        "left untouched"
    );

    // A zeroed file of another size is not an interrupted creation either.
    std::fs::write(&path.0, [0u8; 4096]).unwrap();
    assert!(matches!(
        Segment::open(&path.0, 1024),
        Err(SegmentError::BadMagic { .. })
    ));
}

#[test]
fn other_version_is_refused() {
    let path = TempPath::new("version");
    drop(Segment::open(&path.0, 1024).unwrap());
    let mut bytes = std::fs::read(&path.0).unwrap();
    bytes[VERSION_OFFSET..VERSION_OFFSET + 4].copy_from_slice(&(VERSION + 1).to_ne_bytes());
    std::fs::write(&path.0, &bytes).unwrap();
    let err = Segment::open(&path.0, 1024).err().expect("must refuse");
    match &err {
        SegmentError::BadVersion { found, expected, .. } => assert_eq!((*found, *expected), (VERSION + 1, VERSION)),
        other => panic!("expected BadVersion, got {other:?}"),
    }
    assert!(err.to_string().contains(&*path.0.to_string_lossy()));
}

#[test]
fn other_capacity_is_refused() {
    let path = TempPath::new("capacity");
    drop(Segment::open(&path.0, 2048).unwrap());
    let err = Segment::open(&path.0, 1024).err().expect("must refuse");
    match &err {
        SegmentError::CapacityMismatch { found, requested, .. } => assert_eq!((*found, *requested), (2048, 1024)),
        other => panic!("expected CapacityMismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("2048"));
}

#[test]
fn truncated_file_is_refused() {
    let path = TempPath::new("size");
    drop(Segment::open(&path.0, 1024).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(&path.0).unwrap();
    file.set_len(8192).unwrap();
    let err = Segment::open(&path.0, 1024).err().expect("must refuse");
    assert!(matches!(err, SegmentError::BadSize { found: 8192, .. }), "{err:?}");
}

#[test]
fn interrupted_creation_is_initialised_again() {
    let path = TempPath::new("interrupted");
    let file = std::fs::File::create(&path.0).unwrap();
    file.set_len(Regions::for_capacity(1024).len as u64).unwrap();
    drop(file);
    let segment = Segment::open(&path.0, 1024).expect("a zeroed file of the right size is a crashed creation");
    assert_eq!(segment.epoch(), 1);
    inserted(segment.insert(&uuid(7), 1, T0));
}

#[test]
fn capacity_must_be_a_power_of_two_of_at_least_1024() {
    for capacity in [0, 1, 512, 1000, 1536, 3 << 10, u32::MAX, 1 << 29] {
        assert!(
            matches!(Segment::anonymous(capacity), Err(SegmentError::BadCapacity(c)) if c == capacity),
            "{capacity}"
        );
    }
    let path = TempPath::new("badcap");
    let err = Segment::open(&path.0, 1000).err().expect("must refuse");
    assert!(err.to_string().contains("1000"));
    assert!(!path.0.exists(), "nothing created for a bad capacity");
    assert_eq!(Segment::anonymous(1024).unwrap().capacity(), 1024);
}

// --- table -----------------------------------------------------------------------------------

#[test]
fn insert_get_view_and_dedup() {
    let segment = Segment::anonymous(1024).unwrap();
    let slot = inserted(segment.insert(&uuid(1), 1990, T0));
    assert_eq!(
        segment.insert(&uuid(1), 5, T0 + 1),
        Insert::Duplicate(slot),
        "same id, other amount"
    );
    let view = segment.view(slot).unwrap();
    assert_eq!(
        view,
        PaymentView {
            id: uuid(1),
            cents: 1990,
            accepted_at_ms: T0,
            requested_at: [None, None],
            state: SlotState::Queued
        }
    );
    assert_eq!(segment.get(&uuid(1)), Some(view));
    assert_eq!(segment.find(&uuid(1)).map(|p| p.slot), Some(slot));
    assert_eq!(segment.get(&uuid(2)), None);
    assert_eq!(segment.live_count(), 1);
    assert_eq!(segment.view(SlotId(1024)), None, "out of range");
    let empty = (0..1024).map(SlotId).find(|&s| s != slot).unwrap();
    assert_eq!(segment.view(empty), None);

    // An all-zero correlationId is a valid id like any other.
    let zero = Uuid([0; 16]);
    let zero_slot = inserted(segment.insert(&zero, MAX_CENTS, T0));
    assert_eq!(segment.get(&zero).unwrap().cents, MAX_CENTS);
    assert_eq!(segment.insert(&zero, 1, T0), Insert::Duplicate(zero_slot));
}

#[test]
fn dedup_across_handles() {
    let a = Segment::anonymous(1024).unwrap();
    let b = a.attach_again();
    let slot = inserted(a.insert(&uuid(9), 10, T0));
    assert_eq!(b.insert(&uuid(9), 10, T0), Insert::Duplicate(slot));
    done(&b, slot, Processor::Default, T0).unwrap();
    assert_eq!(done(&a, slot, Processor::Default, T0), Err(DoneError::AlreadyDone));
    drop(a);
    assert_eq!(b.live_count(), 1, "the mapping outlives the first handle");
}

#[test]
fn full_at_three_quarters() {
    let segment = Segment::anonymous(1024).unwrap();
    for n in 0..768 {
        inserted(segment.insert(&uuid(n), 1, T0));
    }
    assert_eq!(segment.live_count(), 768);
    assert_eq!(segment.insert(&uuid(10_000), 1, T0), Insert::Full);
    assert_eq!(segment.insert(&uuid(10_001), 1, T0), Insert::Full);
    assert!(
        matches!(segment.insert(&uuid(5), 1, T0), Insert::Duplicate(_)),
        "duplicates still recognised"
    );
    assert_eq!(segment.live_count(), 768);
    for n in 0..768 {
        assert!(segment.get(&uuid(n)).is_some(), "{n} never overwritten");
    }
    segment.purge();
    inserted(segment.insert(&uuid(10_000), 1, T0));
}

#[test]
fn mark_done_moves_state_once() {
    let segment = Segment::anonymous(1024).unwrap();
    let slot = inserted(segment.insert(&uuid(3), 250, T0));
    done(&segment, slot, Processor::Default, T0 + 20).unwrap();
    assert_eq!(
        segment.view(slot).unwrap().state,
        SlotState::Done {
            processor: Processor::Default,
            requested_at_ms: T0 + 20
        }
    );
    assert_eq!(
        done(&segment, slot, Processor::Fallback, T0 + 30),
        Err(DoneError::AlreadyDone)
    );
    assert_eq!(
        segment.view(slot).unwrap().state,
        SlotState::Done {
            processor: Processor::Default,
            requested_at_ms: T0 + 20
        }
    );
    assert_eq!(
        segment.summary(None, None).of(Processor::Default),
        Totals { count: 1, cents: 250 }
    );
    assert_eq!(segment.summary(None, None).of(Processor::Fallback), Totals::default());

    let empty = (0..1024).map(SlotId).find(|&s| s != slot).unwrap();
    assert_eq!(done(&segment, empty, Processor::Default, T0), Err(DoneError::NotLive));
    assert_eq!(
        done(&segment, SlotId(5000), Processor::Default, T0),
        Err(DoneError::NotLive)
    );
    let other = inserted(segment.insert(&uuid(4), 1, T0));
    assert_eq!(
        done(&segment, other, Processor::Default, MAX_TIME_MS + 1),
        Err(DoneError::TimeOutOfRange)
    );
    assert_eq!(
        segment.view(other).unwrap().state,
        SlotState::Queued,
        "a refused mark changes nothing"
    );
    done(&segment, other, Processor::Fallback, MAX_TIME_MS).unwrap();
    assert_eq!(
        segment
            .summary(Some(MAX_TIME_MS as i64), None)
            .of(Processor::Fallback)
            .count,
        1
    );
}

#[test]
fn in_flight_slots_decode_and_can_be_done() {
    let segment = Segment::anonymous(1024).unwrap();
    let slot = inserted(segment.insert(&uuid(11), 70, T0));
    let raw = &segment.slots()[slot.0 as usize];
    raw.ctrl
        .store(Ctrl::encode(1, state::IN_FLIGHT, 0xBEEF), Ordering::Release);
    assert_eq!(
        segment.view(slot).unwrap().state,
        SlotState::InFlight {
            owner: 0xBEEF,
            owner_heartbeat_ms: None
        }
    );
    assert!(matches!(segment.insert(&uuid(11), 70, T0), Insert::Duplicate(s) if s == slot));
    done(&segment, slot, Processor::Fallback, T0 + 1).unwrap();
    assert!(matches!(
        segment.view(slot).unwrap().state,
        SlotState::Done {
            processor: Processor::Fallback,
            ..
        }
    ));
}

#[test]
fn writing_slot_is_contended_until_stale_then_reclaimed() {
    let segment = Segment::anonymous(1024).unwrap();
    let id = uuid(21);
    let home = segment.home_of(&id);
    // A writer that claimed the home slot and died before publishing.
    segment.slots()[home]
        .ctrl
        .store(Ctrl::encode(1, state::WRITING, T0), Ordering::Release);
    assert_eq!(segment.insert(&id, 5, T0), Insert::Contended);
    assert_eq!(
        segment.insert(&id, 5, T0 + WRITING_STALE_MS_FOR_TESTS - 1),
        Insert::Contended
    );
    assert_eq!(segment.get(&id), None, "a slot being written holds no payment yet");
    assert_eq!(segment.live_count(), 0, "a contended insert gives its reservation back");
    assert_eq!(
        segment.insert(&id, 5, T0 + WRITING_STALE_MS_FOR_TESTS),
        Insert::Inserted(PaymentRef {
            slot: SlotId(home as u32),
            epoch: 1
        })
    );
    assert_eq!(segment.get(&id).unwrap().cents, 5);

    // After a purge a slot left WRITING in the old epoch still blocks until stale.
    segment.purge();
    let other = uuid(22);
    let home = segment.home_of(&other);
    segment.slots()[home]
        .ctrl
        .store(Ctrl::encode(1, state::WRITING, T0), Ordering::Release);
    assert_eq!(segment.insert(&other, 5, T0 + 10), Insert::Contended);
    inserted(segment.insert(&other, 5, T0 + 60_000));
}

#[test]
fn slot_from_a_future_epoch_is_not_a_trap() {
    // Only a corrupted file has one; inserts must neither loop on it nor refuse forever.
    let segment = Segment::anonymous(1024).unwrap();
    let id = uuid(31);
    let home = segment.home_of(&id);
    segment.slots()[home]
        .ctrl
        .store(Ctrl::encode(7, state::QUEUED, 0), Ordering::Release);
    assert_eq!(segment.view(SlotId(home as u32)), None);
    assert_eq!(
        segment.insert(&id, 5, T0),
        Insert::Inserted(PaymentRef {
            slot: SlotId(home as u32),
            epoch: 1
        })
    );
    assert_eq!(segment.get(&id).unwrap().cents, 5);
}

const WRITING_STALE_MS_FOR_TESTS: u64 = super::layout::WRITING_STALE_MS;

#[test]
fn purge_empties_everything_for_every_handle() {
    let a = Segment::anonymous(1024).unwrap();
    let b = a.attach_again();
    let mut slots = Vec::new();
    for n in 0..100 {
        let slot = inserted(a.insert(&uuid(n), 100 + n, T0));
        if n % 2 == 0 {
            done(&a, slot, Processor::ALL[(n % 4 / 2) as usize], T0 + n * 10).unwrap();
        }
        slots.push(slot);
    }
    assert_eq!(
        b.summary(None, None).per_processor.iter().map(|t| t.count).sum::<u64>(),
        50
    );
    b.purge();
    assert_eq!((a.epoch(), a.live_count()), (2, 0));
    assert_eq!(a.summary(None, None), Summary::default());
    assert_eq!(a.summary_scan(None, None), Summary::default());
    assert!(slots.iter().all(|&slot| a.view(slot).is_none()));
    assert_eq!(a.get(&uuid(3)), None);
    assert_eq!(done(&a, slots[1], Processor::Default, T0), Err(DoneError::NotLive));
    // Inserts work again, reusing the same ids, and the index starts from zero.
    let slot = inserted(a.insert(&uuid(3), 7, T0 + 1));
    done(&a, slot, Processor::Default, T0 + 30).unwrap();
    assert_eq!(
        b.summary(None, None).of(Processor::Default),
        Totals { count: 1, cents: 7 }
    );
    assert_eq!(
        b.summary(Some((T0 + 30) as i64), Some((T0 + 30) as i64))
            .of(Processor::Default)
            .count,
        1
    );
    assert_eq!(b.summary(Some(T0 as i64), Some((T0 + 29) as i64)), Summary::default());
    assert_indexed(
        &b,
        &[(Processor::Default, T0 + 30, 7)],
        Some(T0 as i64),
        Some((T0 + 30) as i64),
    );
}

// --- summaries -------------------------------------------------------------------------------

/// A random time around T0 spread over a few minutes, often on ms and second edges.
fn random_time(rng: &mut Rng, hot: &[u64]) -> u64 {
    match rng.below(10) {
        0..=3 => hot[rng.below(hot.len() as u64) as usize],
        4 => T0 + rng.below(180) * 1000,       // a second boundary
        5 => T0 + rng.below(180) * 1000 + 999, // the last ms of a second
        _ => T0 + rng.below(180_000),
    }
}

/// A random window bound near the data (or far from it), or `None`.
fn random_bound(rng: &mut Rng, rows: &[(Processor, u64, u64)]) -> Option<i64> {
    let at = |rng: &mut Rng| match rows.len() {
        0 => T0 as i64,
        len => rows[rng.below(len as u64) as usize].1 as i64,
    };
    Some(match rng.below(12) {
        0 => return None,
        1 => at(rng),
        2 => at(rng) - 1,
        3 => at(rng) + 1,
        4 => (T0 + rng.below(200) * 1000) as i64,
        5 => (T0 + rng.below(200) * 1000) as i64 - 1,
        6 => (T0 as i64) - 100_000 + rng.below(500_000) as i64,
        7 => -(rng.below(1000) as i64),
        8 => (T0 as i64) - 3_600_000,
        9 => (T0 as i64) + 3_600_000,
        _ => (T0 + rng.below(185_000)) as i64 - 2_000,
    })
}

#[test]
fn summary_equals_scan_equals_naive_on_random_windows() {
    let segment = Segment::anonymous(1 << 14).unwrap();
    let mut rng = Rng(42);
    let hot: Vec<u64> = (0..40).map(|_| T0 + rng.below(180_000)).collect();
    let mut rows = Vec::new();
    for n in 0..6_000u64 {
        let cents = if rng.chance(5) {
            MAX_CENTS - rng.below(1000)
        } else {
            1 + rng.below(100_000)
        };
        let slot = inserted(segment.insert(&uuid(n), cents, T0));
        if rng.chance(8) {
            continue; // stays queued: counted by nobody
        }
        let processor = if rng.chance(70) {
            Processor::Default
        } else {
            Processor::Fallback
        };
        let at = random_time(&mut rng, &hot);
        done(&segment, slot, processor, at).unwrap();
        rows.push((processor, at, cents));
        if n % 500 == 0 {
            for _ in 0..20 {
                let (from, to) = (random_bound(&mut rng, &rows), random_bound(&mut rng, &rows));
                assert_indexed(&segment, &rows, from, to);
            }
        }
    }
    for _ in 0..2_000 {
        let (from, to) = (random_bound(&mut rng, &rows), random_bound(&mut rng, &rows));
        assert_indexed(&segment, &rows, from, to);
    }
    for &(from, to) in &[
        (None, None),
        (Some(0), None),
        (None, Some(-1)),
        (Some(5), Some(4)),
        (Some(i64::MIN), Some(i64::MAX)),
    ] {
        assert_indexed(&segment, &rows, from, to);
    }
    let total = naive(&rows, None, None);
    assert!(
        total.per_processor.iter().all(|t| t.count > 1000),
        "both processors exercised: {total:?}"
    );
}

#[test]
fn windows_on_exact_edges() {
    let segment = Segment::anonymous(1024).unwrap();
    let mut rows = Vec::new();
    // Several payments in the same ms, on the first and last ms of seconds, and in between.
    let times = [
        T0,
        T0,
        T0 + 999,
        T0 + 999,
        T0 + 1000,
        T0 + 1999,
        T0 + 2000,
        T0 + 2500,
        T0 + 2500,
        T0 + 61_999,
    ];
    for (n, &at) in times.iter().enumerate() {
        let slot = inserted(segment.insert(&uuid(n as u64), 100 + n as u64, T0));
        let processor = Processor::ALL[n % 2];
        done(&segment, slot, processor, at).unwrap();
        rows.push((processor, at, 100 + n as u64));
    }
    let edges: Vec<i64> = times
        .iter()
        .flat_map(|&t| [t as i64 - 1, t as i64, t as i64 + 1])
        .collect();
    for &from in &edges {
        for &to in &edges {
            assert_indexed(&segment, &rows, Some(from), Some(to));
        }
        assert_indexed(&segment, &rows, Some(from), None);
        assert_indexed(&segment, &rows, None, Some(from));
    }
}

#[test]
fn aliased_times_still_give_exact_answers() {
    let segment = Segment::anonymous(1024).unwrap();
    let ms_span = MS_BUCKETS as u64; // same ms bucket, next lap
    let sec_span = SEC_BUCKETS as u64 * 1000; // same second bucket, next lap
    let times = [
        T0,
        T0 + 1,
        T0 + ms_span,
        T0 + ms_span + 1,
        T0 + 2 * ms_span,
        T0 + sec_span,
        T0 + sec_span + 500,
        T0 + 3 * sec_span + 999,
        T0 + 5,                // an older lap arriving after newer ones
        T0 + sec_span + 2_000, // and one more in a recent lap
    ];
    let mut rows = Vec::new();
    for (n, &at) in times.iter().enumerate() {
        let slot = inserted(segment.insert(&uuid(n as u64), 1_000 + n as u64, T0));
        let processor = Processor::ALL[n % 2];
        done(&segment, slot, processor, at).unwrap();
        rows.push((processor, at, 1_000 + n as u64));
    }
    let mut bounds: Vec<Option<i64>> = vec![None];
    for &at in &times {
        bounds.extend([
            Some(at as i64 - 1),
            Some(at as i64),
            Some(at as i64 + 1),
            Some((at / 1000 * 1000) as i64),
        ]);
    }
    let (mut indexed, mut scanned) = (0, 0);
    for &from in &bounds {
        for &to in &bounds {
            if assert_exact(&segment, &rows, from, to) {
                indexed += 1;
            } else {
                scanned += 1;
            }
        }
    }
    // Windows inside one lap are still answered by the index; the others by the scan.
    assert!(indexed > 100 && scanned > 100, "indexed {indexed}, scanned {scanned}");
}

#[test]
fn open_windows_over_a_long_run_stay_indexed() {
    // 40 minutes of payments: the millisecond array (17.5 min) wraps, the second array not.
    let segment = Segment::anonymous(1 << 14).unwrap();
    let mut rows = Vec::new();
    for n in 0..2_400u64 {
        let at = T0 + n * 1_000 + n % 1000;
        let slot = inserted(segment.insert(&uuid(n), n + 1, T0));
        done(&segment, slot, Processor::ALL[(n % 2) as usize], at).unwrap();
        rows.push((Processor::ALL[(n % 2) as usize], at, n + 1));
    }
    assert_indexed(&segment, &rows, None, None);
    assert_indexed(&segment, &rows, Some(0), Some(i64::MAX));
    assert_indexed(&segment, &rows, Some((T0 + 600_000) as i64), None);
    let last = T0 + 2_399_000;
    assert_indexed(
        &segment,
        &rows,
        Some((last - 15_000) as i64),
        Some((last - 1_500) as i64),
    );
    // An edge in the overwritten lap of the millisecond array needs the scan, still exact.
    assert!(!assert_exact(&segment, &rows, Some((T0 + 1_500) as i64), None));
}

#[test]
fn dirty_bucket_and_unindexed_epoch_fall_back_to_scan() {
    let segment = Segment::anonymous(1024).unwrap();
    let rows = [
        (Processor::Default, T0 + 1000, 3),
        (Processor::Default, T0 + 1234, 10),
        (Processor::Fallback, T0 + 1999, 5),
    ];
    for (n, &(processor, at, cents)) in rows.iter().enumerate() {
        let slot = inserted(segment.insert(&uuid(n as u64), cents, T0));
        done(&segment, slot, processor, at).unwrap();
    }
    // Pretend a writer of this millisecond gave up: its aggregates are not to be trusted.
    let ms_bucket = &segment.ms_buckets()[((T0 + 1234) as usize) & (MS_BUCKETS - 1)];
    ms_bucket.cents[0].store(999_999, Ordering::Relaxed);
    ms_bucket.tag.fetch_or(TAG_DIRTY, Ordering::Relaxed);
    assert_indexed(&segment, &rows, Some((T0 + 1000) as i64), Some((T0 + 1999) as i64));
    assert!(!assert_exact(
        &segment,
        &rows,
        Some((T0 + 1000) as i64),
        Some((T0 + 1500) as i64)
    ));
    // A whole-epoch flag sends even whole-second queries to the scan.
    let sec_bucket = &segment.sec_buckets()[(((T0 + 1234) / 1000) as usize) & (SEC_BUCKETS - 1)];
    sec_bucket.cents[0].store(999_999, Ordering::Relaxed);
    segment
        .header()
        .unindexed_epoch
        .store(segment.epoch(), Ordering::Release);
    assert!(!assert_exact(
        &segment,
        &rows,
        Some((T0 + 1000) as i64),
        Some((T0 + 1999) as i64)
    ));
    assert!(!assert_exact(&segment, &rows, None, None));
    // The next epoch is indexed again.
    segment.purge();
    let slot = inserted(segment.insert(&uuid(1), 10, T0));
    done(&segment, slot, Processor::Default, T0 + 1234).unwrap();
    let rows = [(Processor::Default, T0 + 1234, 10)];
    assert_indexed(&segment, &rows, Some((T0 + 1000) as i64), Some((T0 + 1500) as i64));
}

// --- concurrency -----------------------------------------------------------------------------

#[test]
fn concurrent_handles_store_each_id_once() {
    const IDS: u64 = 6_000;
    const THREADS: u64 = 4;
    let segment = Segment::anonymous(1 << 14).unwrap();
    let time_of = |n: u64| T0 + (n * 7_919) % 60_000;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let handle = segment.attach_again();
            std::thread::spawn(move || {
                let mut rng = Rng(t + 1);
                // Every thread inserts every id, in its own order.
                let mut order: Vec<u64> = (0..IDS).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.below(i as u64 + 1) as usize);
                }
                let (mut won, mut contended) = (0u64, 0u64);
                for n in order {
                    loop {
                        match handle.insert(&uuid(n), n + 1, T0) {
                            Insert::Inserted(PaymentRef { slot, .. }) => {
                                won += 1;
                                done(&handle, slot, Processor::ALL[(n % 2) as usize], time_of(n)).unwrap();
                            }
                            Insert::Duplicate(slot) => {
                                let view = handle.view(slot).unwrap();
                                assert_eq!((view.id, view.cents), (uuid(n), n + 1));
                            }
                            Insert::Contended => {
                                contended += 1;
                                std::hint::spin_loop();
                                continue;
                            }
                            Insert::Full => panic!("table cannot be full"),
                        }
                        break;
                    }
                }
                (won, contended)
            })
        })
        .collect();
    let won: u64 = threads.into_iter().map(|t| t.join().unwrap().0).sum();
    assert_eq!(won, IDS, "every id inserted by exactly one thread");
    assert_eq!(segment.live_count(), IDS);

    let mut seen = std::collections::HashSet::new();
    for slot in segment.slots() {
        let ctrl = Ctrl::decode(slot.ctrl.load(Ordering::Acquire));
        if ctrl.is_live_in(1) {
            assert_eq!(ctrl.state, state::DONE);
            let id = [slot.id[0].load(Ordering::Relaxed), slot.id[1].load(Ordering::Relaxed)];
            assert!(seen.insert(id), "an id stored twice");
        }
    }
    assert_eq!(seen.len() as u64, IDS);

    let rows: Vec<_> = (0..IDS)
        .map(|n| (Processor::ALL[(n % 2) as usize], time_of(n), n + 1))
        .collect();
    let mut rng = Rng(7);
    for _ in 0..300 {
        let (from, to) = (random_bound(&mut rng, &rows), random_bound(&mut rng, &rows));
        assert_exact(&segment, &rows, from, to);
    }
    assert_exact(&segment, &rows, None, None);
}

#[test]
fn purges_racing_inserts_and_marks_leave_a_consistent_table() {
    let segment = Segment::anonymous(1 << 12).unwrap();
    let time_of = |n: u64| T0 + (n * 104_729) % 90_000;
    let workers_done = AtomicU32::new(0);
    let purges = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for t in 0..3u64 {
            let handle = segment.attach_again();
            let workers_done = &workers_done;
            scope.spawn(move || {
                let mut rng = Rng(100 + t);
                for _ in 0..6_000 {
                    let n = rng.below(2_500);
                    let slot = match handle.insert(&uuid(n), n + 1, T0) {
                        Insert::Inserted(PaymentRef { slot, .. }) | Insert::Duplicate(slot) => slot,
                        Insert::Full | Insert::Contended => continue,
                    };
                    if rng.below(3) != 0 {
                        // Refusals are expected here (done by another thread, or purged).
                        let _ = done(&handle, slot, Processor::ALL[(n % 2) as usize], time_of(n));
                    }
                }
                workers_done.fetch_add(1, Ordering::Release);
            });
        }
        let purger = segment.attach_again();
        let (workers_done, purges) = (&workers_done, &purges);
        scope.spawn(move || {
            // Purge throughout the workers' run.
            while workers_done.load(Ordering::Acquire) < 3 {
                for _ in 0..5_000 {
                    std::hint::spin_loop();
                }
                purger.purge();
                purges.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    assert_eq!(segment.epoch(), 1 + u64::from(purges.load(Ordering::Relaxed)));

    // Quiescent now: the count, the slots and both summaries must agree, before and after
    // more traffic in the last epoch.
    check_quiescent(&segment);
    let mut rng = Rng(5);
    for _ in 0..1_500 {
        let n = rng.below(2_500);
        if let Insert::Inserted(PaymentRef { slot, .. }) | Insert::Duplicate(slot) = segment.insert(&uuid(n), n + 1, T0)
        {
            let _ = done(&segment, slot, Processor::ALL[(n % 2) as usize], time_of(n));
        }
    }
    check_quiescent(&segment);
}

fn check_quiescent(segment: &Segment) {
    let epoch = segment.epoch() as u32;
    let mut ids = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for slot in segment.slots() {
        let ctrl = Ctrl::decode(slot.ctrl.load(Ordering::Acquire));
        if !ctrl.is_live_in(epoch) {
            continue;
        }
        let id = [slot.id[0].load(Ordering::Relaxed), slot.id[1].load(Ordering::Relaxed)];
        assert!(ids.insert(id), "an id live twice in one epoch");
        assert_ne!(ctrl.state, state::INDEXING, "nothing is left half-marked");
        if ctrl.state == state::DONE {
            let p = ctrl.aux as usize;
            rows.push((
                Processor::ALL[p],
                super::layout::stamp_time(slot.requested_at[p].load(Ordering::Relaxed), epoch).expect("stamped"),
                slot.cents.load(Ordering::Relaxed),
            ));
        }
    }
    assert_eq!(
        segment.live_count(),
        ids.len() as u64,
        "live count matches the live slots"
    );
    let mut rng = Rng(9);
    for _ in 0..200 {
        let (from, to) = (random_bound(&mut rng, &rows), random_bound(&mut rng, &rows));
        assert_exact(segment, &rows, from, to);
    }
    assert_exact(segment, &rows, None, None);
}
