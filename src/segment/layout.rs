//! The bytes of the segment: header, payment slots and time buckets as `#[repr(C)]` atomics,
//! the bit packing of their control words, and where each region starts in the mapping.
//!
//! Every type here is made of atomics only, so any bit pattern is a valid value and several
//! processes may map the same bytes at once. Sizes and offsets are checked at compile time.
//!
//! ```text
//! offset 0                 Header            4 KiB (one page): identity, epoch, done range,
//!                                            owner counter, health slots, owner entries
//! offset 4096              Slot × capacity   64 B each
//! + capacity × 64          Bucket × 2^16     per-second aggregates (32 B each, 2 MiB)
//! + 2 MiB                  Bucket × 2^20     per-millisecond aggregates (32 B each, 32 MiB)
//! ```

use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::base::payment::Processor;

/// The first 8 bytes of every segment file.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"PAYRELAY");

/// Bumped whenever the bytes of the segment change meaning; an older file is refused.
/// Version 2: owner entries and health slots in the header, `requested_at` stamps tagged with
/// their epoch, the slot's lease word unused. Version 3: an `IN_FLIGHT` slot's `ctrl` also
/// names the processor of the latest attempt ([`in_flight_aux`]). Version 4: the state takes
/// 3 bits of `ctrl` instead of 8 and an `IN_FLIGHT` aux carries a claim generation; owner
/// entries are backed by a lock on the file.
pub(crate) const VERSION: u32 = 4;

/// Smallest accepted capacity (number of payment slots).
pub(crate) const MIN_CAPACITY: u32 = 1 << 10;

/// Largest accepted capacity: 2^28 slots is 16 GiB of table, far beyond any run, and keeps
/// slot indices and the live count comfortably inside 32 bits.
pub(crate) const MAX_CAPACITY: u32 = 1 << 28;

/// Bytes of the header region.
pub(crate) const HEADER_BYTES: usize = 4096;

/// log2 of the number of per-second buckets: 2^16 s ≈ 18 h of data before two seconds share
/// a bucket.
pub(crate) const SEC_BITS: u32 = 16;
/// Number of per-second buckets.
pub(crate) const SEC_BUCKETS: usize = 1 << SEC_BITS;

/// log2 of the number of per-millisecond buckets: 2^20 ms ≈ 17.5 min of data before two
/// milliseconds share a bucket (queries then fall back to the exact scan).
pub(crate) const MS_BITS: u32 = 20;
/// Number of per-millisecond buckets.
pub(crate) const MS_BUCKETS: usize = 1 << MS_BITS;

/// Latest `requestedAt` the time index accepts (2^44 − 1 ms, in the year 2527): bucket tags
/// keep 24 bits of "lap" (time / bucket count).
pub const MAX_TIME_MS: u64 = (1 << 44) - 1;

/// A `WRITING` slot older than this was left by an insert that never finished (its process
/// died between claiming the slot and publishing it) and may be reclaimed by another insert.
/// It must exceed any stall of a live process between those two steps (a few instructions).
pub(crate) const WRITING_STALE_MS: u64 = 2_000;

/// How many times a writer re-reads a bucket tag that another writer holds (resetting it, or
/// still adding to an older period) before it gives up indexing and marks the fallback.
pub(crate) const SPIN_LIMIT: u32 = 1_000;

// ---------------------------------------------------------------------------------------------
// Header
// ---------------------------------------------------------------------------------------------

/// The first page of the segment. Words that different paths write are kept on separate cache
/// lines: the identity line is written once at creation, `epoch_live` by every insert and
/// purge, the done-range line by every `mark_done`, the owner counter once per instance start,
/// each health slot once per poll, each owner entry by its own instance's heartbeat.
#[repr(C)]
pub(crate) struct Header {
    /// [`MAGIC`], stored last when the segment is initialised.
    pub magic: AtomicU64,
    /// [`VERSION`].
    pub version: AtomicU32,
    /// Number of payment slots.
    pub capacity: AtomicU32,
    /// [`SEC_BUCKETS`], recorded so a file with another index shape is refused.
    pub sec_buckets: AtomicU32,
    /// [`MS_BUCKETS`], likewise.
    pub ms_buckets: AtomicU32,
    _identity_pad: [AtomicU64; 5],

    /// Purge epoch (high 32 bits, never 0) and live payments in that epoch (low 32 bits), in
    /// one word so that a purge resets the count in the same step that changes the epoch and
    /// an insert can only reserve room in the epoch it saw.
    pub epoch_live: AtomicU64,
    _epoch_pad: [AtomicU64; 7],

    /// Smallest `requestedAt` (ms) marked done in the epoch, `u64::MAX` when none; only ever
    /// lowered (`fetch_min`) between purges. A hint for clamping queries: never too high.
    pub min_done_ms: AtomicU64,
    /// Largest `requestedAt` (ms) marked done in the epoch, 0 when none; never too low.
    pub max_done_ms: AtomicU64,
    /// An epoch in which some payment was marked done without being indexed (see
    /// `time_index`): every summary of that epoch uses the scan. 0 = none.
    pub unindexed_epoch: AtomicU64,
    _done_pad: [AtomicU64; 5],

    /// Registrations so far; owner ids are its low 16 bits (0 skipped). Never reset, not even
    /// by a purge, so an id is not handed out again before the counter wraps.
    pub next_owner: AtomicU64,
    _owner_counter_pad: [AtomicU64; 7],

    _reserved: [AtomicU64; 96],

    /// The deployment-wide health polling state of each processor, by `Processor::index()`.
    pub health: [HealthSlot; 2],

    _reserved_health: [AtomicU64; 96],

    /// The live (or dead but not yet replaced) instances: see [`OwnerEntry`].
    pub owners: [OwnerEntry; OWNER_ENTRIES],
}

const _: () = assert!(size_of::<Header>() == HEADER_BYTES);
const _: () = assert!(std::mem::offset_of!(Header, magic) == 0);
const _: () = assert!(std::mem::offset_of!(Header, version) == 8);
const _: () = assert!(std::mem::offset_of!(Header, capacity) == 12);
const _: () = assert!(std::mem::offset_of!(Header, epoch_live) == 64);
const _: () = assert!(std::mem::offset_of!(Header, min_done_ms) == 128);
const _: () = assert!(std::mem::offset_of!(Header, next_owner) == 192);
const _: () = assert!(std::mem::offset_of!(Header, health) == 1024);
const _: () = assert!(std::mem::offset_of!(Header, owners) == 2048);

/// Byte offsets of the identity fields, for checking a file before it is mapped.
pub(crate) const VERSION_OFFSET: usize = 8;
/// See [`VERSION_OFFSET`].
pub(crate) const CAPACITY_OFFSET: usize = 12;

// ---------------------------------------------------------------------------------------------
// Epoch and live count
// ---------------------------------------------------------------------------------------------

/// The epoch half of `epoch_live`.
pub(crate) fn epoch_of_live(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The live-count half of `epoch_live`.
pub(crate) fn live_of(word: u64) -> u32 {
    word as u32
}

/// `epoch_live` for an epoch with `live` payments.
pub(crate) fn pack_epoch_live(epoch: u32, live: u32) -> u64 {
    (u64::from(epoch) << 32) | u64::from(live)
}

/// True when `epoch` was made by a later purge than `than`. Epochs are compared as a wrapping
/// sequence; 0 (never written) is older than every epoch.
pub(crate) fn is_newer_epoch(epoch: u32, than: u32) -> bool {
    epoch != 0 && (epoch.wrapping_sub(than) as i32) > 0
}

/// The epoch after `epoch`; 0 is skipped because zeroed slots and buckets carry epoch 0.
pub(crate) fn next_epoch(epoch: u32) -> u32 {
    match epoch.wrapping_add(1) {
        0 => 1,
        next => next,
    }
}

// ---------------------------------------------------------------------------------------------
// Owners
// ---------------------------------------------------------------------------------------------

/// Number of owner entries in the header: at most this many instances are live at once.
pub(crate) const OWNER_ENTRIES: usize = 32;

/// One registered instance: `id` (bits 48..64, 0 = free entry) and its last heartbeat in ms
/// (bits 0..48), in one word so that a reader never pairs one instance's id with another's
/// heartbeat, and a take-over of a stale entry is one CAS.
#[repr(C, align(64))]
pub(crate) struct OwnerEntry {
    pub word: AtomicU64,
    _pad: [AtomicU64; 7],
}

const _: () = assert!(size_of::<OwnerEntry>() == 64);

/// Largest heartbeat an owner word holds (2^48 − 1 ms, in the year 10889); later times are
/// clamped, which only makes an owner look stale sooner there.
pub(crate) const MAX_HEARTBEAT_MS: u64 = (1 << 48) - 1;

/// The owner word of instance `id` with heartbeat `now_ms`.
pub(crate) fn pack_owner(id: u16, now_ms: u64) -> u64 {
    (u64::from(id) << 48) | now_ms.min(MAX_HEARTBEAT_MS)
}

/// The id in an owner word (0 = free entry).
pub(crate) fn owner_id_of(word: u64) -> u16 {
    (word >> 48) as u16
}

/// The heartbeat (ms) in an owner word.
pub(crate) fn heartbeat_of(word: u64) -> u64 {
    word & MAX_HEARTBEAT_MS
}

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

/// The deployment-wide health polling state of one processor: who may poll next, and the last
/// result. Each word on its own cache line (different instances write them).
#[repr(C, align(64))]
pub(crate) struct HealthSlot {
    /// Earliest time (ms) at which the next `GET /payments/service-health` may be sent.
    pub next_poll_at_ms: AtomicU64,
    _poll_pad: [AtomicU64; 7],
    /// The last result: see [`pack_report`].
    pub report: AtomicU64,
    _report_pad: [AtomicU64; 7],
}

const _: () = assert!(size_of::<HealthSlot>() == 128);

/// A published report: bit 63 says one was published.
pub(crate) const REPORT_PRESENT: u64 = 1 << 63;
/// The processor said it is failing.
pub(crate) const REPORT_FAILING: u64 = 1 << 62;
/// Bits of `minResponseTime` in a report (bits 42..62); larger values saturate. 2^20 − 1 ms
/// is 17.5 minutes, far beyond any client timeout, so the saturation loses nothing a router
/// can act on.
pub(crate) const REPORT_MIN_RESPONSE_BITS: u32 = 20;
/// Largest `minResponseTime` (ms) a report holds.
pub(crate) const MAX_REPORT_MIN_RESPONSE_MS: u32 = (1 << REPORT_MIN_RESPONSE_BITS) - 1;
/// Bits of the observation time in a report (bits 0..42): up to the year 2109.
const REPORT_TIME_BITS: u32 = 42;
/// Largest observation time (ms) a report holds; later times are clamped.
pub(crate) const MAX_REPORT_TIME_MS: u64 = (1 << REPORT_TIME_BITS) - 1;

const _: () = assert!(REPORT_TIME_BITS + REPORT_MIN_RESPONSE_BITS + 2 == 64);

/// A report word: failing flag, `minResponseTime` (saturated) and observation time (clamped).
pub(crate) fn pack_report(failing: bool, min_response_ms: u32, observed_at_ms: u64) -> u64 {
    let failing = if failing { REPORT_FAILING } else { 0 };
    let min_response = u64::from(min_response_ms.min(MAX_REPORT_MIN_RESPONSE_MS)) << REPORT_TIME_BITS;
    REPORT_PRESENT | failing | min_response | observed_at_ms.min(MAX_REPORT_TIME_MS)
}

/// `(failing, min_response_ms, observed_at_ms)` of a report word; `None` when none was
/// published.
pub(crate) fn unpack_report(word: u64) -> Option<(bool, u32, u64)> {
    if word & REPORT_PRESENT == 0 {
        return None;
    }
    let min_response = (word >> REPORT_TIME_BITS) as u32 & MAX_REPORT_MIN_RESPONSE_MS;
    Some((word & REPORT_FAILING != 0, min_response, word & MAX_REPORT_TIME_MS))
}

/// The observation time of a report word (0 when none was published).
pub(crate) fn report_time(word: u64) -> u64 {
    word & MAX_REPORT_TIME_MS
}

// ---------------------------------------------------------------------------------------------
// Attempt stamps
// ---------------------------------------------------------------------------------------------

/// A `requested_at` word holds a stamp: bit 63 set, the low 19 bits of the epoch in bits
/// 44..63, the time (≤ [`MAX_TIME_MS`]) in bits 0..44. The epoch tag makes a stamp written by
/// an instance still working on a purged payment (it stamps first and checks ownership after,
/// see `claims.rs`) read as unset for the next payment of the slot, and lets that instance see
/// that a newer payment's stamp is not its own to overwrite.
pub(crate) const STAMP_SET: u64 = 1 << 63;
/// Bits of epoch kept in a stamp.
const STAMP_EPOCH_BITS: u32 = 19;
/// Mask of the stamp's epoch tag (after shifting down).
const STAMP_EPOCH_MASK: u32 = (1 << STAMP_EPOCH_BITS) - 1;
/// Where the epoch tag starts.
const STAMP_EPOCH_SHIFT: u32 = 44;

const _: () = assert!(MAX_TIME_MS == (1 << STAMP_EPOCH_SHIFT) - 1);
const _: () = assert!(STAMP_EPOCH_SHIFT + STAMP_EPOCH_BITS == 63);

/// The stamp of `requestedAt` = `at_ms` (≤ [`MAX_TIME_MS`]) for a payment of `epoch`.
pub(crate) fn pack_stamp(epoch: u32, at_ms: u64) -> u64 {
    debug_assert!(at_ms <= MAX_TIME_MS);
    STAMP_SET | (u64::from(epoch & STAMP_EPOCH_MASK) << STAMP_EPOCH_SHIFT) | (at_ms & MAX_TIME_MS)
}

/// What a `requested_at` word means to a payment of some epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// Never stamped, or stamped for a payment of an older epoch: free to fix.
    Unset,
    /// Fixed for this payment: the `requestedAt` in ms.
    Fixed(u64),
    /// Stamped for a payment of a newer epoch: the caller's payment was purged.
    Newer,
}

/// Reads a `requested_at` word for a payment of `epoch`. Tags are compared as a wrapping
/// sequence of 19 bits, so a stamp counts as older for 2^18 purges.
pub(crate) fn read_stamp(word: u64, epoch: u32) -> Stamp {
    if word & STAMP_SET == 0 {
        return Stamp::Unset;
    }
    let tag = (word >> STAMP_EPOCH_SHIFT) as u32 & STAMP_EPOCH_MASK;
    match tag.wrapping_sub(epoch) & STAMP_EPOCH_MASK {
        0 => Stamp::Fixed(word & MAX_TIME_MS),
        ahead if ahead < 1 << (STAMP_EPOCH_BITS - 1) => Stamp::Newer,
        _ => Stamp::Unset,
    }
}

/// The time of a stamp of `epoch`, `None` when unset for it (or newer).
pub(crate) fn stamp_time(word: u64, epoch: u32) -> Option<u64> {
    match read_stamp(word, epoch) {
        Stamp::Fixed(at_ms) => Some(at_ms),
        Stamp::Unset | Stamp::Newer => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------------------------

/// One payment. 64 bytes, one cache line.
///
/// `ctrl` says whether the other words mean anything: they are written while the slot is
/// `WRITING` (or `INDEXING`) and published by a release store/CAS of `ctrl` — except the
/// `requested_at` stamps, which an owner fixes while the slot is `IN_FLIGHT`, each by its own
/// SeqCst compare-and-swap (the attempt protocol in `claims.rs`).
#[repr(C, align(64))]
pub(crate) struct Slot {
    /// epoch (bits 32..64) | state (bits 29..32) | aux (bits 0..29): see [`Ctrl`].
    pub ctrl: AtomicU64,
    /// The correlationId, bytes 0..8 and 8..16 in native byte order.
    pub id: [AtomicU64; 2],
    /// Amount in cents (≤ `MAX_CENTS`).
    pub cents: AtomicU64,
    /// Stamp of the `requestedAt` (ms) fixed for each processor (see [`pack_stamp`]; 0 = never
    /// attempted); indexed by `Processor::index()`. Fixed per (payment, processor) by the
    /// first attempt there and reused by every later one; `mark_done` stores the final one.
    pub requested_at: [AtomicU64; 2],
    /// Unused since version 2 (claims are backed by the owner's heartbeat, not a per-slot
    /// deadline); zeroed by every insert.
    pub spare: AtomicU64,
    /// When the payment was accepted (ms).
    pub accepted_at: AtomicU64,
}

const _: () = assert!(size_of::<Slot>() == 64);
const _: () = assert!(align_of::<Slot>() == 64);
const _: () = assert!(HEADER_BYTES % align_of::<Slot>() == 0);

/// Slot states (bits 29..32 of `ctrl`).
pub(crate) mod state {
    /// Never used since the file was created.
    pub const EMPTY: u8 = 0;
    /// An insert owns the slot and is writing its fields; aux = low 29 bits of its `now_ms`.
    pub const WRITING: u8 = 1;
    /// Accepted, waiting for the dispatcher.
    pub const QUEUED: u8 = 2;
    /// Claimed by a dispatcher; aux = owner id (an `OwnerId`, never 0 when written by it), the
    /// processor of the latest attempt and the claim generation: see [`super::in_flight_aux`].
    pub const IN_FLIGHT: u8 = 3;
    /// `mark_done` owns the slot and is indexing it; aux = processor index.
    pub const INDEXING: u8 = 4;
    /// Processed; aux = processor index, `requested_at[processor]` stamps the time sent.
    pub const DONE: u8 = 5;
}

/// Where the state starts in `ctrl`: 3 bits are enough for the six states and leave the aux
/// field room for a claim generation.
const STATE_SHIFT: u32 = 29;
/// Mask of the aux field of `ctrl`.
pub(crate) const AUX_MASK: u64 = (1 << STATE_SHIFT) - 1;

/// Where an `IN_FLIGHT` aux keeps the processor of the latest attempt (2 bits above the
/// 16-bit owner id: 0 none yet, else `Processor::index() + 1`). Kept in `ctrl` so that
/// recording it is the same compare-and-swap that proves the writer still owns the payment,
/// and an adopter reads it from the very word it takes the payment from: an instance that
/// lost the payment can never overwrite it.
const LAST_ATTEMPT_SHIFT: u32 = 16;

/// Where an `IN_FLIGHT` aux keeps the claim generation: bumped by every change of owner
/// (claim, adoption), so a copy of the payment held from an older claim — by an instance
/// that stalled, lost it, and later adopted it back — no longer matches and cannot send.
const GENERATION_SHIFT: u32 = 18;
/// Bits of the claim generation: a stale copy would pass again only after exactly 2 048
/// changes of owner of that one payment while it slept, each needing an owner dead or stale.
const GENERATION_BITS: u32 = 11;
/// Mask of a claim generation.
pub(crate) const GENERATION_MASK: u16 = (1 << GENERATION_BITS) - 1;

const _: () = assert!(GENERATION_SHIFT + GENERATION_BITS == STATE_SHIFT);

/// The aux of an `IN_FLIGHT` ctrl: `owner`, `last` as the processor of the latest attempt,
/// and the claim `generation` (kept to its low [`GENERATION_BITS`]).
pub(crate) fn in_flight_aux(owner: u16, last: Option<Processor>, generation: u16) -> u64 {
    let last = last.map_or(0, |p| p.index() as u64 + 1);
    u64::from(owner) | (last << LAST_ATTEMPT_SHIFT) | (u64::from(generation & GENERATION_MASK) << GENERATION_SHIFT)
}

/// The owner id in an `IN_FLIGHT` aux.
pub(crate) fn aux_owner(aux: u32) -> u16 {
    aux as u16
}

/// The processor of the latest attempt in an `IN_FLIGHT` aux.
pub(crate) fn aux_last_attempt(aux: u32) -> Option<Processor> {
    match (aux >> LAST_ATTEMPT_SHIFT) & 3 {
        1 => Some(Processor::Default),
        2 => Some(Processor::Fallback),
        _ => None,
    }
}

/// The claim generation in an `IN_FLIGHT` aux.
pub(crate) fn aux_generation(aux: u32) -> u16 {
    (aux >> GENERATION_SHIFT) as u16 & GENERATION_MASK
}

/// A decoded `ctrl` word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ctrl {
    pub epoch: u32,
    pub state: u8,
    pub aux: u32,
}

impl Ctrl {
    /// Splits a raw `ctrl` word.
    pub fn decode(word: u64) -> Ctrl {
        Ctrl {
            epoch: (word >> 32) as u32,
            state: ((word >> STATE_SHIFT) & 7) as u8,
            aux: (word & AUX_MASK) as u32,
        }
    }

    /// The raw `ctrl` word (aux is truncated to 29 bits).
    pub fn encode(epoch: u32, state: u8, aux: u64) -> u64 {
        debug_assert!(state < 8);
        (u64::from(epoch) << 32) | (u64::from(state) << STATE_SHIFT) | (aux & AUX_MASK)
    }

    /// True when the slot holds a payment of `epoch` (queued, in flight, indexing or done).
    pub fn is_live_in(self, epoch: u32) -> bool {
        self.epoch == epoch
            && matches!(
                self.state,
                state::QUEUED | state::IN_FLIGHT | state::INDEXING | state::DONE
            )
    }
}

// ---------------------------------------------------------------------------------------------
// Time buckets
// ---------------------------------------------------------------------------------------------

/// Aggregates of the done payments whose `requestedAt` falls in one period (a second or a
/// millisecond), for the epoch and "lap" (time / number of buckets) named by `tag`.
#[repr(C, align(32))]
pub(crate) struct Bucket {
    /// epoch (bits 32..64) | lap (bits 8..32) | DIRTY (bit 7) | READY (bit 6) | writers (0..6).
    pub tag: AtomicU64,
    /// Payment counts: default processor in bits 0..32, fallback in bits 32..64.
    pub counts: AtomicU64,
    /// Sum of cents per processor.
    pub cents: [AtomicU64; 2],
}

const _: () = assert!(size_of::<Bucket>() == 32);
const _: () = assert!((SEC_BUCKETS * size_of::<Bucket>()) % 64 == 0);

/// Writers currently adding to a READY bucket (a reset waits for 0).
pub(crate) const TAG_WRITERS: u64 = (1 << 6) - 1;
/// The aggregates are zeroed for the tag's (epoch, lap) and may be added to.
pub(crate) const TAG_READY: u64 = 1 << 6;
/// A writer of this (epoch, lap) could not add to it: queries over it use the scan.
pub(crate) const TAG_DIRTY: u64 = 1 << 7;
/// Bits naming the period: epoch and lap.
pub(crate) const TAG_BASE: u64 = !0xFF;
/// Largest lap a tag can name.
pub(crate) const MAX_LAP: u64 = (1 << 24) - 1;

/// The (epoch, lap) part of a tag.
pub(crate) fn tag_base(epoch: u32, lap: u64) -> u64 {
    debug_assert!(lap <= MAX_LAP);
    (u64::from(epoch) << 32) | (lap << 8)
}

/// The epoch named by a tag.
pub(crate) fn tag_epoch(tag: u64) -> u32 {
    (tag >> 32) as u32
}

/// The lap named by a tag.
pub(crate) fn tag_lap(tag: u64) -> u64 {
    (tag >> 8) & MAX_LAP
}

const _: () = assert!((MAX_TIME_MS >> MS_BITS) <= MAX_LAP);
const _: () = assert!(((MAX_TIME_MS / 1000) >> SEC_BITS) <= MAX_LAP);

// ---------------------------------------------------------------------------------------------
// Placement
// ---------------------------------------------------------------------------------------------

/// Where each region starts for a given capacity, and the total size of the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Regions {
    pub slots: usize,
    pub sec_buckets: usize,
    pub ms_buckets: usize,
    pub len: usize,
}

impl Regions {
    /// The placement for `capacity` slots (a valid capacity: see [`MIN_CAPACITY`]).
    pub fn for_capacity(capacity: u32) -> Regions {
        let slots = HEADER_BYTES;
        let sec_buckets = slots + capacity as usize * size_of::<Slot>();
        let ms_buckets = sec_buckets + SEC_BUCKETS * size_of::<Bucket>();
        let len = ms_buckets + MS_BUCKETS * size_of::<Bucket>();
        Regions {
            slots,
            sec_buckets,
            ms_buckets,
            len,
        }
    }
}
