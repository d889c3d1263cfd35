//! Claims: which instance dispatches a payment, adoption of the payments of dead instances,
//! the `requestedAt` fixed per (payment, processor), and the census for `GET /stats`.
//!
//! # Ownership
//! A payment `IN_FLIGHT` carries its owner's id in `ctrl`. An owner keeps it while it is
//! alive: its lock witness held and its heartbeat fresh (`owners.rs`, `witness.rs`); any instance may take it by CAS from a stale owner (or
//! from `QUEUED`), and `mark_done` finishes it from any owner. There is no way back to
//! `QUEUED`: a payment leaves `IN_FLIGHT` only to another owner or to done.
//!
//! Every operation names its payment by [`PaymentRef`] (slot and epoch) and a send also by its
//! [`Claim`] (payment and claim generation). The epoch stops work on a purged payment from
//! landing on the one that took its slot; the generation, bumped by every take, stops a copy
//! kept from an older claim: an owner that stalled, lost the payment and adopted it back holds
//! the newest claim only through its newest copy.
//!
//! # The attempt protocol
//! The rules: `requestedAt` is fixed per (payment, processor) and reused on every retry there;
//! after an ambiguous outcome on P the payment must be resolved on P before going elsewhere.
//! Both rules need an adopter to know every attempt its predecessor may have sent, even when
//! the predecessor is not dead but stalled, wakes up and sends just as the adopter takes over.
//! So each processor's `requestedAt` is stamped in the slot *before* a send, and:
//!
//! ```text
//! owner O (begin_attempt)                     adopter A (claim / adopt)
//! W1: stamp requested_at[P] (SeqCst CAS)      W2: CAS ctrl InFlight{O,·} → InFlight{A,·} (SeqCst)
//! R1: CAS ctrl InFlight{O,·} → InFlight{O,P}  R2: any load of requested_at[P] (SeqCst)
//!     (SeqCst); ok → O may send with the stamp    → A knows the attempts made so far
//! ```
//!
//! R2 is every SeqCst load of a stamp after the take: [`Segment::claim`]/[`Segment::adopt`]
//! report them in [`Claimed::requested_at`], and the adopter's own `begin_attempt` loads the
//! stamp again before it sends, which is the read the dispatcher relies on.
//!
//! This is the store-buffer pattern: with weaker orderings both sides could miss the other
//! side's store (each store still in its core's buffer), O would send and A would not know.
//! With all four operations SeqCst they sit in one total order S, each side's store before its
//! read. R1 and W2 are read-modify-writes of the same word, so one of them reads the other's
//! value: if R1 succeeded, it came first (had W2 come first, R1 would find InFlight{A}), so
//! W1 < R1 < W2 < R2 and R2 reads W1's stamp or a later write; a stamp is fixed once per epoch
//! (only `mark_done` rewrites it, and then A's claim fails), so R2 reads W1's value. If O
//! found the stamp already set (its SeqCst load or failed CAS read an earlier SeqCst stamp X),
//! X < W1 in S and the same chain shows A that stamp. Either O sees it lost the payment and
//! does not send, or A sees the stamp: never neither.
//!
//! R1 also records P as the processor of the latest attempt (`layout::in_flight_aux`), and W2
//! carries that record over from the word it replaces: A learns which processor O sent to
//! last — the only one that may hold the payment, since O leaves a processor only after
//! refusals that stored nothing (an ambiguous attempt pins the payment where it was sent).
//! Being the CAS that proves ownership, the record can never be written by an instance that
//! lost the payment. (Both may see each other: A then
//! resolves the attempt on P with the same `requestedAt`, and a second delivery is answered
//! `422`, which counts as done.) On x86 every CAS is a full barrier anyway; the
//! SeqCst orderings are what makes the argument hold on weaker machines (ARM) too.
//!
//! Every other ordering here is Acquire/Release as in `table.rs`: the fields of a payment are
//! published by the insert's Release CAS of `ctrl`, and a claim, being a read-modify-write of
//! `ctrl`, acquires them.
//!
//! Stamps carry the low bits of the payment's epoch (`layout::pack_stamp`): an owner still
//! working on a purged payment stamps before it learns so, and its stamp must read as unset
//! for the next payment of the slot.
//!
//! # Crashes
//! - After a claim (or `insert_claimed`): the payment stays `IN_FLIGHT` for a dead owner and is
//!   adopted once its heartbeat is `stale_ms` old (at once after `unregister_owner`).
//! - After R1, before or after the send: the adopter sees the stamp in
//!   [`Claimed::requested_at`] and P in [`Claimed::last_attempt`] and must treat P as possibly
//!   attempted (resolve there, same `requestedAt`). A send that never happened only makes the
//!   adopter ask P first.
//! - Between W1 and R1: the stamp is there, the record still names the processor before (or
//!   none); P was never sent to, and the adopter resolves where the record says.
//! - In `adopt` between two claims: the payments claimed so far are that owner's, adopted
//!   again when it is stale.

use std::fmt;
use std::sync::atomic::{fence, Ordering};

use crate::base::amount::Cents;

use crate::base::payment::Processor;

use crate::base::uuid::Uuid;

use super::layout::{
    aux_generation, aux_last_attempt, aux_owner, in_flight_aux, pack_stamp, read_stamp, stamp_time, state, Ctrl, Slot,
    Stamp, GENERATION_MASK, MAX_TIME_MS,
};
use super::table::Key;
use super::{Claim, Insert, OwnerId, PaymentRef, Segment, SlotId};

/// A payment as its new owner receives it from [`Segment::adopt`] (or, in tests, `Segment::claim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The claim: what [`Segment::begin_attempt`] asks for.
    pub claim: Claim,
    /// The correlationId.
    pub id: Uuid,
    /// Amount in cents.
    pub cents: Cents,
    /// When it was accepted (ms).
    pub accepted_at_ms: u64,
    /// The `requestedAt` (ms) already fixed per processor by anyone's attempts, indexed by
    /// [`Processor::index`]: `Some` means that processor may have received the payment, and a
    /// new attempt there must reuse this time.
    pub requested_at: [Option<u64>; 2],
    /// The processor of the latest attempt, as recorded by the attempt protocol (module doc):
    /// the only one that may hold the payment. `None`: never sent anywhere.
    pub last_attempt: Option<Processor>,
}

/// What [`Segment::begin_attempt`] fixed: the `requestedAt` to send, and whether this
/// attempt fixed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempted {
    /// The `requestedAt` (ms) to send: this attempt's, or the one an earlier attempt fixed.
    pub requested_at_ms: u64,
    /// True when no earlier attempt (by anyone) had fixed a `requestedAt` on that processor:
    /// nothing of ours can be there yet, so a `422` answer means the processor holds another
    /// payment under this correlationId.
    pub first: bool,
}

/// Why [`Segment::claim`] refused.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// The slot holds no payment of the current epoch (empty, being written, purged, out of
    /// range).
    NotLive,
    /// The payment is done (or being marked done).
    AlreadyDone,
    /// Another instance owns it and is alive (lock held, heartbeat fresh).
    OwnedByLive,
}

#[cfg(test)]
impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClaimError::NotLive => "the slot holds no live payment of the current epoch",
            ClaimError::AlreadyDone => "the payment is already done",
            ClaimError::OwnedByLive => "another live instance owns the payment",
        })
    }
}

#[cfg(test)]
impl std::error::Error for ClaimError {}

/// Why [`Segment::begin_attempt`] refused: the caller must not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptError {
    /// The payment is queued, owned by another instance, or held by a newer claim (it was
    /// adopted, maybe back by this very instance).
    NotOwner,
    /// The payment is done (or being marked done).
    AlreadyDone,
    /// The slot holds no payment of the current epoch (purged, or out of range).
    NotLive,
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttemptError::NotOwner => "the payment is not owned by this instance any more",
            AttemptError::AlreadyDone => "the payment is already done",
            AttemptError::NotLive => "the slot holds no live payment of the current epoch",
        })
    }
}

impl std::error::Error for AttemptError {}

/// Counts of the current epoch's payments, for `GET /stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Accepted and not done: queued or owned by an instance.
    pub pending: u64,
    /// Done, per processor by [`Processor::index`].
    pub done: [u64; 2],
}

/// The processor of the latest attempt recorded in a `ctrl` word (none unless `IN_FLIGHT`).
fn last_attempt_of(word: u64) -> Option<Processor> {
    let ctrl = Ctrl::decode(word);
    if ctrl.state == state::IN_FLIGHT {
        aux_last_attempt(ctrl.aux)
    } else {
        None
    }
}

/// The claim generation recorded in a `ctrl` word (0 unless `IN_FLIGHT`).
pub(super) fn generation_of(word: u64) -> u16 {
    let ctrl = Ctrl::decode(word);
    if ctrl.state == state::IN_FLIGHT {
        aux_generation(ctrl.aux)
    } else {
        0
    }
}

/// True when a `ctrl` word says `owner` holds the payment under `claim`: same epoch, in
/// flight, same owner, same generation.
fn held_by(word: u64, claim: Claim, owner: OwnerId) -> bool {
    let ctrl = Ctrl::decode(word);
    ctrl.epoch == claim.payment.epoch
        && ctrl.state == state::IN_FLIGHT
        && aux_owner(ctrl.aux) == owner.0
        && aux_generation(ctrl.aux) == claim.generation & GENERATION_MASK
}

/// The error of an attempt whose payment's `ctrl` reads `word` and is not ours.
fn attempt_error(word: u64, epoch: u32) -> AttemptError {
    let ctrl = Ctrl::decode(word);
    if ctrl.epoch != epoch {
        return AttemptError::NotLive;
    }
    match ctrl.state {
        state::QUEUED | state::IN_FLIGHT => AttemptError::NotOwner,
        state::INDEXING | state::DONE => AttemptError::AlreadyDone,
        _ => AttemptError::NotLive,
    }
}

impl Segment {
    /// Like [`Segment::insert`], but publishes the new payment directly as owned by `owner`
    /// (the accepting instance dispatches what it accepted, saving a claim). A duplicate
    /// returns [`Insert::Duplicate`] and changes nothing, whatever the state of the live one.
    pub fn insert_claimed(&self, id: &Uuid, cents: Cents, now_ms: u64, owner: OwnerId) -> Insert {
        self.insert_as(id, cents, now_ms, state::IN_FLIGHT, in_flight_aux(owner.0, None, 0))
    }

    /// Claims the payment in `slot` for `owner`: from `QUEUED`, or from an owner that is stale
    /// at `now_ms` per [`Segment::owner_is_stale`]. Already owned by `owner`: `Ok` too.
    /// Instances claim through [`Segment::adopt`], by the same rules; this one-slot form
    /// lets the tests set up and check a single claim.
    ///
    /// Returns the payment with the attempts already stamped by anyone, or
    /// [`ClaimError::NotLive`], [`ClaimError::AlreadyDone`], [`ClaimError::OwnedByLive`].
    #[cfg(test)]
    pub fn claim(&self, slot: SlotId, owner: OwnerId, now_ms: u64, stale_ms: u64) -> Result<Claimed, ClaimError> {
        let raw = self.slots().get(slot.0 as usize).ok_or(ClaimError::NotLive)?;
        let epoch = self.current_epoch();
        loop {
            // Acquire: pairs with the Release publish of the payment (fields read below).
            let word = raw.ctrl.load(Ordering::Acquire);
            let ctrl = Ctrl::decode(word);
            if ctrl.epoch != epoch {
                return Err(ClaimError::NotLive);
            }
            match ctrl.state {
                state::QUEUED => {}
                state::IN_FLIGHT if aux_owner(ctrl.aux) == owner.0 => {
                    return self.claimed(raw, slot, word, epoch).ok_or(ClaimError::NotLive);
                }
                state::IN_FLIGHT if self.owner_is_stale(OwnerId(aux_owner(ctrl.aux)), now_ms, stale_ms) => {}
                state::IN_FLIGHT => return Err(ClaimError::OwnedByLive),
                state::INDEXING | state::DONE => return Err(ClaimError::AlreadyDone),
                _ => return Err(ClaimError::NotLive), // EMPTY, WRITING (never published yet)
            }
            if let Some(mine) = self.take(raw, word, epoch, owner) {
                return self.claimed(raw, slot, mine, epoch).ok_or(ClaimError::NotLive);
            }
            // The slot moved (claimed, done, purged and reused): decide again.
        }
    }

    /// Scans at most `budget` slots from `cursor` (wrapping) for payments that need an owner:
    /// `QUEUED` and accepted at least `min_age_ms` before `now_ms`, or `IN_FLIGHT` with an
    /// owner stale at `now_ms`. Claims each for `owner` and pushes it to `out` (its slot is in
    /// [`Claimed::claim`]); returns the cursor where the next scan should start.
    ///
    /// Costs one look at the owners ([`Segment::live_owners`]) per call, then one Acquire load
    /// of `ctrl` (a plain load on x86) per slot that needs nothing. A slot that moves while it
    /// is looked at is left for the next pass.
    #[allow(clippy::too_many_arguments)]
    pub fn adopt(
        &self,
        owner: OwnerId,
        now_ms: u64,
        stale_ms: u64,
        min_age_ms: u64,
        cursor: u32,
        budget: u32,
        out: &mut Vec<Claimed>,
    ) -> u32 {
        let slots = self.slots();
        let mask = self.capacity - 1;
        let epoch = self.current_epoch();
        // One look at the owners per call, not per slot: a lock query is a system call.
        let live = self.live_owners(now_ms, stale_ms);
        let mut index = cursor & mask;
        for _ in 0..budget.min(self.capacity) {
            let raw = &slots[index as usize];
            let here = SlotId(index);
            index = (index + 1) & mask;
            // Acquire: pairs with the Release publish, so accepted_at below is the payment's.
            let word = raw.ctrl.load(Ordering::Acquire);
            let ctrl = Ctrl::decode(word);
            if ctrl.epoch != epoch {
                continue;
            }
            let wanted = match ctrl.state {
                // Relaxed: published with the payment (Acquire above); if the slot is reused
                // meanwhile, the CAS from `word` fails.
                state::QUEUED => now_ms.saturating_sub(raw.accepted_at.load(Ordering::Relaxed)) >= min_age_ms,
                state::IN_FLIGHT => {
                    let other = aux_owner(ctrl.aux);
                    other != owner.0 && !live.contains(other)
                }
                _ => false,
            };
            if !wanted {
                continue;
            }
            if let Some(mine) = self.take(raw, word, epoch, owner) {
                if let Some(claimed) = self.claimed(raw, here, mine, epoch) {
                    out.push(claimed);
                }
            }
        }
        index
    }

    /// Moves `raw` from `ctrl` = `word` to owned by `owner`, keeping the record of the latest
    /// attempt and bumping the claim generation. Returns the new word; `None` when the slot
    /// moved.
    fn take(&self, raw: &Slot, word: u64, epoch: u32, owner: OwnerId) -> Option<u64> {
        let last = last_attempt_of(word);
        let generation = generation_of(word).wrapping_add(1);
        let mine = Ctrl::encode(epoch, state::IN_FLIGHT, in_flight_aux(owner.0, last, generation));
        // SeqCst: W2 of the attempt protocol (module doc); it also acquires the payment's
        // publish, as a read-modify-write continuing the insert's release sequence.
        raw.ctrl
            .compare_exchange(word, mine, Ordering::SeqCst, Ordering::Relaxed)
            .ok()
            .map(|_| mine)
    }

    /// The payment of `slot` (`raw`), owned in `epoch` with `ctrl` = `word`; `None` when a
    /// purge and a new insert reused the slot while it was read.
    fn claimed(&self, raw: &Slot, slot: SlotId, word: u64, epoch: u32) -> Option<Claimed> {
        // Relaxed: the claim acquired the publish, and these never change while the slot is
        // live in `epoch` (checked below).
        let id = Key::load(raw).uuid();
        let cents = raw.cents.load(Ordering::Relaxed);
        let accepted_at_ms = raw.accepted_at.load(Ordering::Relaxed);
        // SeqCst: R2 of the attempt protocol (module doc), after the claim in the total order.
        let requested_at = [
            stamp_time(raw.requested_at[0].load(Ordering::SeqCst), epoch),
            stamp_time(raw.requested_at[1].load(Ordering::SeqCst), epoch),
        ];
        // Acquire fence + relaxed reload: the loads above happen before the check.
        fence(Ordering::Acquire);
        let now = Ctrl::decode(raw.ctrl.load(Ordering::Relaxed));
        (now.epoch == epoch).then_some(Claimed {
            claim: Claim {
                payment: PaymentRef { slot, epoch },
                generation: generation_of(word),
            },
            id,
            cents,
            accepted_at_ms,
            requested_at,
            last_attempt: last_attempt_of(word),
        })
    }

    /// Before sending the payment held by `claim` to `processor`: fixes its `requestedAt`
    /// there to `requested_at_ms` if no attempt fixed it yet, and returns the `requestedAt` to
    /// send — the one fixed by an earlier attempt (ours or a previous owner's) if any. Times
    /// beyond [`MAX_TIME_MS`] are clamped to it.
    ///
    /// `Ok` only if `owner` still holds the payment under this very claim *after* the stamp
    /// (module doc): then the caller may send, and any later adopter sees the stamp.
    /// [`AttemptError::NotOwner`] when it is queued, owned by another instance, or held by a
    /// newer claim; [`AttemptError::AlreadyDone`]; [`AttemptError::NotLive`] when purged (the
    /// slot may hold another payment by now): do not send.
    pub fn begin_attempt(
        &self,
        claim: Claim,
        owner: OwnerId,
        processor: Processor,
        requested_at_ms: u64,
    ) -> Result<Attempted, AttemptError> {
        let raw = self.slots().get(claim.slot().0 as usize).ok_or(AttemptError::NotLive)?;
        let epoch = claim.payment.epoch;
        if self.current_epoch() != epoch {
            return Err(AttemptError::NotLive);
        }
        // Acquire: a cheap early refusal, so a payment lost long ago gets no stamp; the
        // decisive check is R1 after the stamp.
        let word = raw.ctrl.load(Ordering::Acquire);
        if !held_by(word, claim, owner) {
            return Err(attempt_error(word, epoch));
        }
        let stamp = &raw.requested_at[processor.index()];
        let wanted = pack_stamp(epoch, requested_at_ms.min(MAX_TIME_MS));
        // SeqCst: W1 of the attempt protocol (module doc), loads and CAS alike.
        let mut current = stamp.load(Ordering::SeqCst);
        let attempted = loop {
            match read_stamp(current, epoch) {
                Stamp::Fixed(at_ms) => {
                    break Attempted {
                        requested_at_ms: at_ms,
                        first: false,
                    }
                }
                Stamp::Newer => return Err(AttemptError::NotLive),
                Stamp::Unset => {
                    // SeqCst: W1 (module doc). Fails only if another attempt fixed it first.
                    match stamp.compare_exchange(current, wanted, Ordering::SeqCst, Ordering::SeqCst) {
                        Ok(_) => {
                            break Attempted {
                                requested_at_ms: requested_at_ms.min(MAX_TIME_MS),
                                first: true,
                            }
                        }
                        Err(actual) => current = actual,
                    }
                }
            }
        };
        let recorded = Ctrl::encode(
            epoch,
            state::IN_FLIGHT,
            in_flight_aux(owner.0, Some(processor), claim.generation),
        );
        // SeqCst: R1 of the attempt protocol (module doc), which also records `processor`. An
        // owned word changes only by leaving us (adoption, done, purge), so one try decides.
        match raw
            .ctrl
            .compare_exchange(word, recorded, Ordering::SeqCst, Ordering::Relaxed)
        {
            Ok(_) => Ok(attempted),
            Err(actual) => Err(attempt_error(actual, epoch)),
        }
    }

    /// True when `owner` still holds the payment under `claim` (nobody took it since).
    pub fn holds(&self, claim: Claim, owner: OwnerId) -> bool {
        // Acquire: as every read of a payment's ctrl.
        self.slots()
            .get(claim.slot().0 as usize)
            .is_some_and(|raw| held_by(raw.ctrl.load(Ordering::Acquire), claim, owner))
    }

    /// Counts the current epoch's payments: the live count, less the done ones as the time
    /// index counts them. No slot is read, so a flood of `GET /stats` costs what a flood of
    /// summaries does (a full scan of the table took ~5 ms at the default capacity). Read
    /// while payments move, the two counts may be a moment apart; `pending` never underflows.
    pub fn census(&self) -> Census {
        let live = self.live_count();
        let summary = self.summary(None, None);
        let done = [summary.per_processor[0].count, summary.per_processor[1].count];
        Census {
            pending: live.saturating_sub(done[0] + done[1]),
            done,
        }
    }
}
