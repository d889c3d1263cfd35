//! The shared payment table: a tiny lock-free database in a `MAP_SHARED` file that every
//! instance maps, updated with atomics only (no locks, no futex, no syscalls on the hot path).
//!
//! # What it holds
//! - a header: magic, version, capacity, the purge epoch and live count, the range of done
//!   times, the registered instances with their heartbeats (`owners.rs`) and the
//!   deployment-wide health polling slots (`health.rs`), laid out in `layout.rs`;
//! - a table of `capacity` payment slots of 64 bytes, found by open addressing on the
//!   correlationId (linear probing), so a duplicate `POST` on any instance is recognised
//!   (`table.rs`);
//! - a time index of done payments: aggregates per second and per millisecond, so a summary
//!   over any window reads at most ~2 000 millisecond buckets plus one bucket per whole second,
//!   instead of every slot (`time_index.rs`).
//!
//! # Life of a payment
//! `insert` claims an empty slot (`WRITING`), writes it and publishes it `QUEUED`
//! (`insert_claimed` publishes it `IN_FLIGHT` for the accepting instance instead); a
//! dispatcher `claim`s or `adopt`s it (`IN_FLIGHT` with its owner id), fixes its `requestedAt`
//! per processor with `begin_attempt` before each send (`claims.rs`); `mark_done` takes it to
//! `INDEXING`, adds it to the time index and publishes it `DONE` with its processor and
//! `requestedAt`. `purge` bumps the epoch: every slot and bucket stamped with an older epoch
//! reads as empty, for every process at once.
//!
//! # Owners
//! An instance registers at start (`register_owner`), which takes an owner entry together
//! with a lock the kernel releases when the process exits (`witness.rs`), and heartbeats the
//! entry. A claim has no deadline of its own: it holds while its owner lives — the lock held
//! and the heartbeat fresh — so a killed instance's payments are adoptable at once and a
//! stalled one's only after the staleness bound. Exactly once then rests on one rule, argued
//! in `claims.rs`: an owner stamps the attempt first and checks it still holds the claim
//! after, while an adopter takes the claim first and reads the stamps after.
//!
//! # Time and failure
//! The segment reads no clock: every time is an argument in milliseconds since the Unix epoch.
//! Slots and index are written only with atomics, so a process that dies at any instruction
//! leaves the others running; what it may leave half-done is listed in `table.rs` and
//! `time_index.rs`.

mod claims;
mod error;
mod file;
mod health;
mod layout;
mod owners;
mod table;
mod time_index;
mod witness;

#[cfg(test)]
mod claim_tests;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::base::amount::Cents;

use crate::base::payment::Processor;

use crate::base::uuid::Uuid;

#[cfg(test)]
pub use claims::ClaimError;
pub use claims::{AttemptError, Attempted, Census, Claimed};
pub use error::SegmentError;
pub use health::HealthReport;
pub use layout::MAX_TIME_MS;
pub use owners::{LiveOwners, OwnerId, MAX_OWNERS};

use file::{Mapping, Opened};
use layout::{Bucket, Header, Regions, Slot, MAGIC, MAX_CAPACITY, MIN_CAPACITY, MS_BUCKETS, SEC_BUCKETS, VERSION};
use witness::Witness;

/// Slots of a segment when the configuration does not say otherwise: 2^19 slots × 64 B =
/// 32 MiB, room for 393 216 live payments (3/4 of the slots), over ten times a 60 s run.
pub const DEFAULT_CAPACITY: u32 = 1 << 19;

/// A handle on a mapped segment. Each process (or simulated instance) holds one; it is `Send`
/// and `Sync` because every access to the mapping is atomic, but it is meant to be used from
/// one thread per process.
pub struct Segment {
    map: Arc<Mapping>,
    capacity: u32,
    regions: Regions,
    /// Which owner entries running processes hold (`witness.rs`).
    witness: Witness,
}

/// Outcome of [`Segment::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// The payment is now queued in this slot (owned by the caller after
    /// [`Segment::insert_claimed`], with [`Claim::first`]).
    Inserted(PaymentRef),
    /// A payment with this correlationId is already live in this slot; nothing changed.
    Duplicate(SlotId),
    /// The epoch already holds 3/4 of the capacity in live payments; nothing changed.
    Full,
    /// Another insert is writing a slot on this id's probe path (it may be the same id):
    /// nothing changed; retry on the next loop turn.
    Contended,
}

/// Index of a payment slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotId(pub u32);

/// One payment, named so that no other can be taken for it: its slot, and the purge epoch it
/// was accepted in. A slot holds one payment per epoch (slots are never freed within one), so
/// work on a payment that a purge erased finds the epoch changed and touches nothing, even
/// once a new payment has taken the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PaymentRef {
    /// Where it lives.
    pub slot: SlotId,
    /// The epoch it belongs to.
    pub epoch: u32,
}

/// One instance's hold on a payment: the payment and the generation of the claim. Every
/// change of owner bumps the generation, so a copy kept from an older claim (an instance that
/// stalled, lost the payment, then adopted it back) is refused by [`Segment::begin_attempt`]:
/// only the newest copy may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    /// The payment.
    pub payment: PaymentRef,
    /// The claim generation (the low 11 bits of a counter bumped per change of owner).
    pub generation: u16,
}

impl Claim {
    /// The claim [`Segment::insert_claimed`] publishes with a new payment.
    pub fn first(payment: PaymentRef) -> Claim {
        Claim { payment, generation: 0 }
    }

    /// The payment's slot.
    pub fn slot(self) -> SlotId {
        self.payment.slot
    }
}

/// A consistent copy of one live payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentView {
    /// The correlationId.
    pub id: Uuid,
    /// Amount in cents.
    pub cents: Cents,
    /// The `now_ms` given to the insert that accepted it.
    pub accepted_at_ms: u64,
    /// The `requestedAt` (ms) fixed for each processor so far, by [`Processor::index`]: by
    /// [`Segment::begin_attempt`] (whoever the owner was) or by `mark_done`.
    pub requested_at: [Option<u64>; 2],
    /// Where it is in its life.
    pub state: SlotState,
}

/// Where a live payment is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Accepted, not yet claimed by a dispatcher.
    Queued,
    /// Claimed by dispatcher `owner`; the claim holds while the owner's heartbeat is fresh.
    InFlight {
        /// The claiming instance ([`OwnerId`]'s number).
        owner: u16,
        /// The owner's last heartbeat (ms) at the time of the view; `None` when the owner is
        /// not registered any more (the payment is adoptable now).
        owner_heartbeat_ms: Option<u64>,
    },
    /// Recorded by `processor` with this `requestedAt` (ms).
    Done {
        /// The processor that took it.
        processor: Processor,
        /// The `requestedAt` sent to it.
        requested_at_ms: u64,
    },
}

/// Why [`Segment::mark_done`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoneError {
    /// The slot holds no payment of the current epoch (empty, still being written, purged,
    /// or out of range).
    NotLive,
    /// The payment is already done (or being marked done by another instance).
    AlreadyDone,
    /// `requested_at_ms` is beyond [`MAX_TIME_MS`].
    TimeOutOfRange,
    /// The amount to record is beyond `MAX_CENTS`.
    AmountOutOfRange,
}

impl std::fmt::Display for DoneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DoneError::NotLive => "the slot holds no live payment of the current epoch",
            DoneError::AlreadyDone => "the payment is already marked done",
            DoneError::TimeOutOfRange => "requestedAt is beyond the last time the segment can index",
            DoneError::AmountOutOfRange => "the amount is beyond the largest the segment records",
        })
    }
}

impl std::error::Error for DoneError {}

/// Number and sum of payments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Number of payments.
    pub count: u64,
    /// Sum of their amounts in cents.
    pub cents: u64,
}

/// What each processor recorded in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Indexed by [`Processor::index`].
    pub per_processor: [Totals; 2],
}

impl Summary {
    /// The totals of one processor.
    pub fn of(&self, processor: Processor) -> Totals {
        self.per_processor[processor.index()]
    }

    fn add(&mut self, processor: usize, count: u64, cents: u64) {
        let totals = &mut self.per_processor[processor];
        totals.count += count;
        totals.cents += cents;
    }
}

impl Segment {
    /// Creates the segment file at `path` (sized, initialised, mode 0o600) if it is absent,
    /// or attaches to the existing one after checking its magic, version, capacity and size.
    ///
    /// `capacity` is the number of payment slots: a power of two from 1 024 to 2^28. Every
    /// process must pass the same one.
    pub fn open(path: &Path, capacity: u32) -> Result<Segment, SegmentError> {
        check_capacity(capacity)?;
        let witness = |path: &Path| Witness::file(path).map_err(|err| SegmentError::Io(path.to_owned(), err));
        match file::map_file(path, capacity)? {
            Opened::Fresh(map, lock) => {
                let segment = Segment::from_mapping(map, capacity, witness(path)?);
                segment.initialise();
                drop(lock);
                Ok(segment)
            }
            Opened::Existing(map) => Ok(Segment::from_mapping(map, capacity, witness(path)?)),
        }
    }

    /// A segment in anonymous shared memory, for tests and simulation: same semantics as a
    /// file, shared by the handles made with [`Segment::attach_again`].
    pub fn anonymous(capacity: u32) -> Result<Segment, SegmentError> {
        check_capacity(capacity)?;
        let map = Mapping::anonymous(Regions::for_capacity(capacity).len)
            .map_err(|err| SegmentError::Io("(anonymous mapping)".into(), err))?;
        let segment = Segment::from_mapping(map, capacity, Witness::memory());
        segment.initialise();
        Ok(segment)
    }

    /// Another handle on the same mapping; the memory is unmapped when the last handle is
    /// dropped. For a file it belongs to this process, like the first (owners registered
    /// through either live until both are gone or the process exits); for an anonymous
    /// segment it stands for a second process attaching, whose registered owners die with
    /// the handle (`witness.rs`).
    pub fn attach_again(&self) -> Segment {
        Segment {
            map: Arc::clone(&self.map),
            capacity: self.capacity,
            regions: self.regions,
            witness: self.witness.attach_again(),
        }
    }

    /// Number of payment slots (at most 3/4 of them hold live payments).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    fn from_mapping(map: Mapping, capacity: u32, witness: Witness) -> Segment {
        let regions = Regions::for_capacity(capacity);
        assert!(map.len() >= regions.len, "segment mapping shorter than its layout");
        Segment {
            map: Arc::new(map),
            capacity,
            regions,
            witness,
        }
    }

    /// Writes the header of a zeroed mapping that no other process can see yet (it is
    /// anonymous, or its file is new and locked). The magic goes last.
    fn initialise(&self) {
        let header = self.header();
        // Relaxed: nobody reads these before the magic (Release below) or the file lock.
        header.version.store(VERSION, Ordering::Relaxed);
        header.capacity.store(self.capacity, Ordering::Relaxed);
        header.sec_buckets.store(SEC_BUCKETS as u32, Ordering::Relaxed);
        header.ms_buckets.store(MS_BUCKETS as u32, Ordering::Relaxed);
        header
            .epoch_live
            .store(layout::pack_epoch_live(1, 0), Ordering::Relaxed);
        header.min_done_ms.store(u64::MAX, Ordering::Relaxed);
        header.max_done_ms.store(0, Ordering::Relaxed);
        header.unindexed_epoch.store(0, Ordering::Relaxed);
        // Release: whoever sees the magic sees the fields above.
        header.magic.store(MAGIC, Ordering::Release);
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is at least `regions.len` bytes (checked in `from_mapping`),
        // page aligned, and lives as long as `self.map`; `Header` is atomics only, so every
        // bit pattern is valid and shared mutation through `&` is sound.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    fn slots(&self) -> &[Slot] {
        // SAFETY: `regions.slots` is 64-byte aligned inside the mapping and `capacity` slots
        // fit before `regions.sec_buckets`; atomics only, as for `header`.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(self.regions.slots).cast::<Slot>(),
                self.capacity as usize,
            )
        }
    }

    fn sec_buckets(&self) -> &[Bucket] {
        // SAFETY: `SEC_BUCKETS` buckets of 32 bytes fit between `regions.sec_buckets` (a
        // multiple of 64) and `regions.ms_buckets`; atomics only, as for `header`.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(self.regions.sec_buckets).cast::<Bucket>(),
                SEC_BUCKETS,
            )
        }
    }

    fn ms_buckets(&self) -> &[Bucket] {
        // SAFETY: `MS_BUCKETS` buckets of 32 bytes fit between `regions.ms_buckets` (a
        // multiple of 64) and `regions.len`; atomics only, as for `header`.
        unsafe {
            std::slice::from_raw_parts(
                self.map.as_ptr().add(self.regions.ms_buckets).cast::<Bucket>(),
                MS_BUCKETS,
            )
        }
    }
}

fn check_capacity(capacity: u32) -> Result<(), SegmentError> {
    if capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
        Ok(())
    } else {
        Err(SegmentError::BadCapacity(capacity))
    }
}

/// An inclusive millisecond window as unsigned bounds; `None` when it holds no time ≥ 0.
fn window(from_ms: Option<i64>, to_ms: Option<i64>) -> Option<(u64, u64)> {
    let lo = from_ms.map_or(0, |from| from.max(0) as u64);
    let hi = match to_ms {
        None => u64::MAX,
        Some(to) if to < 0 => return None,
        Some(to) => to as u64,
    };
    (lo <= hi).then_some((lo, hi))
}
