//! The payment table: insert with deduplication, lookups, `mark_done`, purge, and the full
//! scan that is the reference for every summary.
//!
//! # Slot protocol
//! A slot belongs to the current epoch when its `ctrl` carries that epoch; any other epoch
//! reads as empty. Within an epoch a slot only moves forward:
//! `EMPTY/stale → WRITING → QUEUED (→ IN_FLIGHT) → INDEXING → DONE`, so linear probing needs no
//! tombstones, and an insert places a payment in the first slot of its probe run that is not
//! live. Two inserts of one id therefore meet on the same slot: one wins the claiming CAS and
//! the other sees `WRITING` (→ [`Insert::Contended`]) or the published payment
//! (→ [`Insert::Duplicate`]).
//!
//! # Crashes
//! - Died between claiming a slot (`WRITING`) and publishing it: the slot blocks inserts whose
//!   probe run crosses it (they get `Contended`) for [`WRITING_STALE_MS`]; after that an
//!   insert reclaims it by CAS, so the dead writer's publish could never succeed. The live
//!   count keeps the dead writer's reservation (one slot of headroom lost until the purge).
//!   A *live* writer stalled longer than that bound (SIGSTOP) could still scribble on the
//!   reclaimed slot: the bound is far beyond any scheduling stall between two instructions.
//! - Died in `mark_done` (slot `INDEXING`): the slot stays `INDEXING` (reported as done by
//!   [`Segment::view`], refused by `mark_done`), but `summary_scan` counts only `DONE` while
//!   the index may already count it: the two summaries disagree on that payment until the
//!   next purge. Not repaired here (claims and adoption leave `INDEXING` slots alone).

use std::sync::atomic::{fence, Ordering};

use crate::base::amount::{Cents, MAX_CENTS};

use crate::base::payment::Processor;

use crate::base::uuid::Uuid;

use super::layout::{
    aux_owner, epoch_of_live, is_newer_epoch, live_of, next_epoch, pack_epoch_live, pack_stamp, read_stamp, stamp_time,
    state, Ctrl, Slot, Stamp, AUX_MASK, MAX_TIME_MS, WRITING_STALE_MS,
};
use super::{window, DoneError, Insert, PaymentRef, PaymentView, Segment, SlotId, SlotState, Summary};

/// A correlationId as the two words stored in a slot.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Key([u64; 2]);

impl Key {
    fn new(id: &Uuid) -> Key {
        let mut low = [0u8; 8];
        let mut high = [0u8; 8];
        low.copy_from_slice(&id.0[..8]);
        high.copy_from_slice(&id.0[8..]);
        Key([u64::from_ne_bytes(low), u64::from_ne_bytes(high)])
    }

    pub(super) fn uuid(self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.0[0].to_ne_bytes());
        bytes[8..].copy_from_slice(&self.0[1].to_ne_bytes());
        Uuid(bytes)
    }

    /// Home slot hash: both words through the murmur3 finaliser, so ids that differ in any
    /// bit land far apart even if clients send sequential or crafted ids.
    fn hash(self) -> u64 {
        fmix64(self.0[0] ^ fmix64(self.0[1].wrapping_add(0x9e37_79b9_7f4a_7c15)))
    }

    /// The key stored in `slot`. Relaxed: called after an acquire load of `ctrl` saw the slot
    /// published, and the id never changes while the slot is live in that epoch.
    pub(super) fn load(slot: &Slot) -> Key {
        Key([slot.id[0].load(Ordering::Relaxed), slot.id[1].load(Ordering::Relaxed)])
    }
}

fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Why a live-count reservation failed.
enum NoRoom {
    Full,
    EpochMoved,
}

/// True when a `WRITING` stamp (low 29 bits of the writer's `now_ms`) is at least
/// [`WRITING_STALE_MS`] old at `now_ms`. A stamp slightly in the future (clocks read at
/// different loop turns) counts as young.
fn writing_is_stale(stamp: u32, now_ms: u64) -> bool {
    let age = now_ms.wrapping_sub(u64::from(stamp)) & AUX_MASK;
    (WRITING_STALE_MS..AUX_MASK / 2).contains(&age)
}

impl Segment {
    /// The current purge epoch (starts at 1, +1 per purge).
    pub fn epoch(&self) -> u64 {
        // Acquire: pairs with the purge's release, like every epoch read.
        u64::from(epoch_of_live(self.header().epoch_live.load(Ordering::Acquire)))
    }

    /// Payments in the current epoch (queued, in flight or done).
    pub fn live_count(&self) -> u64 {
        // Relaxed: a counter read; nothing else is read through it.
        u64::from(live_of(self.header().epoch_live.load(Ordering::Relaxed)))
    }

    pub(super) fn current_epoch(&self) -> u32 {
        // Acquire: pairs with the purge's AcqRel CAS, so the purge's resets of the done range
        // happen before anything this caller does in the new epoch.
        epoch_of_live(self.header().epoch_live.load(Ordering::Acquire))
    }

    /// Most live payments an epoch may hold: 3/4 of the slots keeps probe runs short.
    fn live_limit(&self) -> u32 {
        self.capacity / 4 * 3
    }

    fn home(&self, key: Key) -> usize {
        key.hash() as usize & (self.capacity as usize - 1)
    }

    /// The home slot of an id (tests craft slot states there).
    #[cfg(test)]
    pub(super) fn home_of(&self, id: &Uuid) -> usize {
        self.home(Key::new(id))
    }

    /// Records a new payment as queued, unless its correlationId is already live.
    ///
    /// Returns [`Insert::Inserted`] with the slot, [`Insert::Duplicate`] with the slot of the
    /// live payment of that id (nothing changes), [`Insert::Full`] when the epoch holds 3/4 of
    /// the capacity, or [`Insert::Contended`] when another insert is writing a slot on this
    /// id's probe run (retry later). `now_ms` is stored as the acceptance time and dates the
    /// claim of the slot. Panics if `cents` exceeds [`MAX_CENTS`] (callers validate amounts).
    pub fn insert(&self, id: &Uuid, cents: Cents, now_ms: u64) -> Insert {
        self.insert_as(id, cents, now_ms, state::QUEUED, 0)
    }

    /// [`Segment::insert`], publishing the new payment with `ctrl` state `published` and aux
    /// `aux` (`QUEUED`, or `IN_FLIGHT` with an owner id).
    pub(super) fn insert_as(&self, id: &Uuid, cents: Cents, now_ms: u64, published: u8, aux: u64) -> Insert {
        assert!(cents <= MAX_CENTS, "payment amount {cents} exceeds MAX_CENTS");
        let key = Key::new(id);
        let slots = self.slots();
        let mask = self.capacity as usize - 1;
        // The epoch in which we hold one unit of the live count, if any.
        let mut reservation: Option<u32> = None;
        'epoch: loop {
            let epoch = self.current_epoch();
            if reservation.is_some_and(|reserved| reserved != epoch) {
                reservation = None; // the purge that moved the epoch reset the count
            }
            let mut index = self.home(key);
            let mut probes = 0;
            while probes < self.capacity {
                let slot = &slots[index];
                // Acquire: pairs with the Release publish of the slot, so its id is readable.
                let word = slot.ctrl.load(Ordering::Acquire);
                let ctrl = Ctrl::decode(word);
                if ctrl.is_live_in(epoch) {
                    match self.same_key(slot, word, key) {
                        Some(true) => {
                            self.unreserve(reservation);
                            return Insert::Duplicate(SlotId(index as u32));
                        }
                        Some(false) => {
                            index = (index + 1) & mask;
                            probes += 1;
                        }
                        None => {} // the slot changed while we read it: look again
                    }
                    continue;
                }
                // A slot of a newer epoch means a purge overtook us: never claim it, start
                // again in the new epoch. (If the epoch did not move, the slot is garbage from
                // a corrupted or 2^31-purges-old file: treat it as stale.)
                if is_newer_epoch(ctrl.epoch, epoch) && self.current_epoch() != epoch {
                    continue 'epoch;
                }
                if ctrl.state == state::WRITING && !writing_is_stale(ctrl.aux, now_ms) {
                    self.unreserve(reservation);
                    return Insert::Contended;
                }
                // Empty, from an older epoch, or abandoned mid-insert: ours to claim.
                if reservation.is_none() {
                    match self.reserve(epoch) {
                        Ok(()) => reservation = Some(epoch),
                        Err(NoRoom::Full) => return Insert::Full,
                        Err(NoRoom::EpochMoved) => continue 'epoch,
                    }
                }
                let writing = Ctrl::encode(epoch, state::WRITING, now_ms);
                // Acquire on success: our field stores below cannot move before the claim.
                if slot
                    .ctrl
                    .compare_exchange(word, writing, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    continue; // someone else moved the slot: look at it again
                }
                // Relaxed: published by the Release CAS below; nobody reads a WRITING slot.
                slot.id[0].store(key.0[0], Ordering::Relaxed);
                slot.id[1].store(key.0[1], Ordering::Relaxed);
                slot.cents.store(cents, Ordering::Relaxed);
                // (Stamps of an older epoch would read as unset anyway, see `read_stamp`;
                // zeroing keeps a reused slot clean.)
                slot.requested_at[0].store(0, Ordering::Relaxed);
                slot.requested_at[1].store(0, Ordering::Relaxed);
                slot.spare.store(0, Ordering::Relaxed);
                slot.accepted_at.store(now_ms, Ordering::Relaxed);
                let queued = Ctrl::encode(epoch, published, aux);
                // Release: publishes the fields above. It fails only if our claim was
                // reclaimed as abandoned; then probe again, keeping the reservation.
                if slot
                    .ctrl
                    .compare_exchange(writing, queued, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
                {
                    return Insert::Inserted(PaymentRef {
                        slot: SlotId(index as u32),
                        epoch,
                    });
                }
                continue 'epoch;
            }
            self.unreserve(reservation);
            return Insert::Full;
        }
    }

    /// Whether the live slot whose `ctrl` read `word` holds `key`; `None` if `ctrl` changed
    /// while the id was read (the answer would mix two payments).
    fn same_key(&self, slot: &Slot, word: u64, key: Key) -> Option<bool> {
        let stored = Key::load(slot);
        // Acquire fence + relaxed reload: the id loads above happen before the check.
        fence(Ordering::Acquire);
        (slot.ctrl.load(Ordering::Relaxed) == word).then_some(stored == key)
    }

    /// Takes one unit of the live count in `epoch`.
    fn reserve(&self, epoch: u32) -> Result<(), NoRoom> {
        let limit = self.live_limit();
        // Relaxed: a counter; the epoch check inside the CAS is what matters.
        let result = self
            .header()
            .epoch_live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
                (epoch_of_live(word) == epoch && live_of(word) < limit).then_some(word + 1)
            });
        match result {
            Ok(_) => Ok(()),
            Err(word) if epoch_of_live(word) != epoch => Err(NoRoom::EpochMoved),
            Err(_) => Err(NoRoom::Full),
        }
    }

    /// Gives back a reservation, if it is still in the current epoch.
    fn unreserve(&self, reservation: Option<u32>) {
        let Some(epoch) = reservation else { return };
        // Relaxed: a counter; a purge since the reservation already reset it.
        let _ = self
            .header()
            .epoch_live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
                (epoch_of_live(word) == epoch && live_of(word) > 0).then_some(word - 1)
            });
    }

    /// The live payment with this correlationId in the current epoch.
    pub fn find(&self, id: &Uuid) -> Option<PaymentRef> {
        let key = Key::new(id);
        let slots = self.slots();
        let mask = self.capacity as usize - 1;
        let epoch = self.current_epoch();
        let mut index = self.home(key);
        let mut probes = 0;
        while probes < self.capacity {
            let slot = &slots[index];
            // Acquire: pairs with the Release publish of the slot, so its id is readable.
            let word = slot.ctrl.load(Ordering::Acquire);
            let ctrl = Ctrl::decode(word);
            if ctrl.is_live_in(epoch) {
                match self.same_key(slot, word, key) {
                    Some(true) => {
                        return Some(PaymentRef {
                            slot: SlotId(index as u32),
                            epoch,
                        })
                    }
                    Some(false) => {}
                    None => continue,
                }
            } else if ctrl.state != state::WRITING {
                // Inserts fill the first non-live slot of a run and never skip a WRITING one,
                // so the id cannot be further on.
                return None;
            }
            index = (index + 1) & mask;
            probes += 1;
        }
        None
    }

    /// The live payment with this correlationId in the current epoch.
    pub fn get(&self, id: &Uuid) -> Option<PaymentView> {
        self.find(id).and_then(|payment| self.view(payment.slot))
    }

    /// A consistent copy of the payment in `slot`; `None` if the slot is out of range, empty,
    /// still being written, or from an older epoch. A payment being marked done reads as done.
    pub fn view(&self, slot: SlotId) -> Option<PaymentView> {
        let slot = self.slots().get(slot.0 as usize)?;
        let epoch = self.current_epoch();
        loop {
            // Acquire: pairs with the Release that published the state and its fields.
            let word = slot.ctrl.load(Ordering::Acquire);
            let ctrl = Ctrl::decode(word);
            if !ctrl.is_live_in(epoch) {
                return None;
            }
            // Relaxed loads, validated by the reload of ctrl below (seqlock read). A stamp may
            // be fixed while ctrl stays put; the copy then holds it or not, both true moments.
            let requested_at = [
                stamp_time(slot.requested_at[0].load(Ordering::Relaxed), ctrl.epoch),
                stamp_time(slot.requested_at[1].load(Ordering::Relaxed), ctrl.epoch),
            ];
            let state = match ctrl.state {
                state::QUEUED => SlotState::Queued,
                state::IN_FLIGHT => SlotState::InFlight {
                    owner: aux_owner(ctrl.aux),
                    owner_heartbeat_ms: self.owner_heartbeat(aux_owner(ctrl.aux)),
                },
                _ => {
                    let processor = Processor::from_index(ctrl.aux as usize).unwrap_or(Processor::Default);
                    SlotState::Done {
                        processor,
                        // INDEXING may not have stored it yet: 0 until it does.
                        requested_at_ms: requested_at[processor.index()].unwrap_or(0),
                    }
                }
            };
            let view = PaymentView {
                id: Key::load(slot).uuid(),
                cents: slot.cents.load(Ordering::Relaxed),
                accepted_at_ms: slot.accepted_at.load(Ordering::Relaxed),
                requested_at,
                state,
            };
            // Acquire fence + relaxed reload: the loads above happen before the check.
            fence(Ordering::Acquire);
            if slot.ctrl.load(Ordering::Relaxed) == word {
                return Some(view);
            }
        }
    }

    /// Marks `payment` (queued or in flight) done by `processor` with `requestedAt` =
    /// `requested_at_ms`: stores the time, adds the payment to the time index, then publishes
    /// `DONE`. Refuses with [`DoneError::AlreadyDone`] if it is done (or being marked by
    /// another instance), [`DoneError::NotLive`] if it was purged (its slot may hold another
    /// payment by now), and [`DoneError::TimeOutOfRange`] past [`MAX_TIME_MS`].
    ///
    /// Any instance may finish a payment, whoever owns it: a processor's answer is a fact
    /// about the payment, not about a claim. If a purge happens meanwhile the payment is
    /// marked in the purged epoch and stays invisible, like everything else the purge erased.
    pub fn mark_done(&self, payment: PaymentRef, processor: Processor, requested_at_ms: u64) -> Result<(), DoneError> {
        self.mark_done_as(payment, processor, requested_at_ms, None)
    }

    /// [`Segment::mark_done`], recording `cents` as the amount when given: what a processor
    /// holds under this correlationId may differ from what we accepted (an id reused across
    /// purges, a processor not purged with us), and the books must show what it holds.
    pub fn mark_done_as(
        &self,
        payment: PaymentRef,
        processor: Processor,
        requested_at_ms: u64,
        cents: Option<Cents>,
    ) -> Result<(), DoneError> {
        if requested_at_ms > MAX_TIME_MS {
            return Err(DoneError::TimeOutOfRange);
        }
        if cents.is_some_and(|c| c > MAX_CENTS) {
            return Err(DoneError::AmountOutOfRange);
        }
        let slot = self.slots().get(payment.slot.0 as usize).ok_or(DoneError::NotLive)?;
        let p = processor.index();
        let epoch = payment.epoch;
        if self.current_epoch() != epoch {
            return Err(DoneError::NotLive);
        }
        loop {
            // Acquire: pairs with the Release publish, so `cents` below is the payment's.
            let word = slot.ctrl.load(Ordering::Acquire);
            let ctrl = Ctrl::decode(word);
            if ctrl.epoch != epoch {
                return Err(DoneError::NotLive);
            }
            match ctrl.state {
                state::QUEUED | state::IN_FLIGHT => {}
                state::INDEXING | state::DONE => return Err(DoneError::AlreadyDone),
                state::EMPTY | state::WRITING => return Err(DoneError::NotLive),
                _ => return Err(DoneError::NotLive), // no other state is ever written
            }
            let indexing = Ctrl::encode(epoch, state::INDEXING, p as u64);
            // Acquire on success: the stores below stay after the claim. Only one instance
            // wins, so a payment is indexed at most once.
            if slot
                .ctrl
                .compare_exchange(word, indexing, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        if let Some(cents) = cents {
            // Relaxed: published by the Release store of DONE below; the slot is ours while
            // INDEXING (a purge's new insert could reclaim it only in a newer epoch).
            slot.cents.store(cents, Ordering::Relaxed);
        }
        // Relaxed: published by the Release store of DONE below. An update, not a store: if a
        // purge and a new insert took the slot meanwhile, the new payment's stamp (a newer
        // epoch's) is not ours to overwrite. Usually the attempt already fixed this very stamp:
        // then nothing is written.
        let stamp = pack_stamp(epoch, requested_at_ms);
        let _ = slot.requested_at[p].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
            (word != stamp && read_stamp(word, epoch) != Stamp::Newer).then_some(stamp)
        });
        let cents = slot.cents.load(Ordering::Relaxed);
        let header = self.header();
        // Relaxed: read-modify-writes on hints, ordered after the purge's resets by the
        // acquire read of the epoch above (a stale value only widens the range). Loaded first
        // so the shared line is written only when the range grows.
        if requested_at_ms < header.min_done_ms.load(Ordering::Relaxed) {
            header.min_done_ms.fetch_min(requested_at_ms, Ordering::Relaxed);
        }
        if requested_at_ms > header.max_done_ms.load(Ordering::Relaxed) {
            header.max_done_ms.fetch_max(requested_at_ms, Ordering::Relaxed);
        }
        self.index_done(epoch, p, requested_at_ms, cents);
        let indexing = Ctrl::encode(epoch, state::INDEXING, p as u64);
        let done = Ctrl::encode(epoch, state::DONE, p as u64);
        // Release: publishes requested_at and the index entries with the DONE state. A CAS,
        // not a store: if a purge made the slot stale meanwhile, an insert may have reclaimed
        // it, and its payment must not be overwritten (ours stays purged).
        let _ = slot
            .ctrl
            .compare_exchange(indexing, done, Ordering::Release, Ordering::Relaxed);
        Ok(())
    }

    /// Empties the table for every process at once: bumps the epoch, which makes every slot
    /// and time bucket of older epochs read as empty, and resets the live count and the done
    /// range. Payments being inserted or marked done concurrently land in the old epoch.
    pub fn purge(&self) {
        let header = self.header();
        // Relaxed: made visible with the new epoch by the AcqRel CAS below. Resetting before
        // the bump means a mark_done of the old epoch can only widen the new range.
        header.min_done_ms.store(u64::MAX, Ordering::Relaxed);
        header.max_done_ms.store(0, Ordering::Relaxed);
        // AcqRel: Release publishes the resets to every acquire read of the new epoch.
        let _ = header
            .epoch_live
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |word| {
                Some(pack_epoch_live(next_epoch(epoch_of_live(word)), 0))
            });
    }

    /// Totals per processor of the done payments of the current epoch whose `requestedAt` lies
    /// in `[from_ms, to_ms]` (inclusive; `None` = unbounded), by reading every slot. The
    /// reference for [`Segment::summary`] and its fallback; costs one cache line per slot.
    pub fn summary_scan(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> Summary {
        let mut summary = Summary::default();
        let Some((lo, hi)) = window(from_ms, to_ms) else {
            return summary;
        };
        let epoch = self.current_epoch();
        for slot in self.slots() {
            // Acquire: pairs with the Release store of DONE, so requested_at is final.
            let ctrl = Ctrl::decode(slot.ctrl.load(Ordering::Acquire));
            if ctrl.epoch != epoch || ctrl.state != state::DONE {
                continue;
            }
            let p = (ctrl.aux & 1) as usize;
            let at = stamp_time(slot.requested_at[p].load(Ordering::Relaxed), epoch);
            if at.is_some_and(|at| (lo..=hi).contains(&at)) {
                summary.add(p, 1, slot.cents.load(Ordering::Relaxed));
            }
        }
        summary
    }
}
