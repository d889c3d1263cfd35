//! Instances as owners of claims: registration with a fresh id, heartbeats, staleness, and
//! leaving at shutdown.
//!
//! # Entries
//! The header holds [`MAX_OWNERS`] entries of one word each: owner id (0 = free) and last
//! heartbeat. An instance takes an entry that is free or stale at start and rewrites it every
//! ~100 ms; an id lives in exactly one entry until that entry is freed or taken over, so "is
//! owner X alive" is one load in the common case (the entry at `X % MAX_OWNERS`) and at most
//! [`MAX_OWNERS`] loads when X has gone.
//!
//! # Liveness is a hint
//! A stale owner's payments may be adopted by anyone, but an owner judged stale wrongly (a
//! stall longer than `stale_ms`, SIGSTOP) never breaks exactly-once: ownership of each payment
//! is decided by its `ctrl` word and the attempt protocol of `claims.rs`. Hence the Relaxed
//! orderings here. Such a zombie finds its entry taken (its heartbeat then changes nothing and
//! [`Segment::owner_is_stale`] answers true about itself) and should register again.
//!
//! # Crashes
//! A process that dies between taking an id and taking an entry burns the id; one that dies
//! registered leaves its entry, which reads stale after `stale_ms` and is reused by a later
//! registration. Its payments are adoptable from that moment.

use std::sync::atomic::Ordering;

use super::layout::{heartbeat_of, owner_id_of, pack_owner, OwnerEntry, OWNER_ENTRIES};
use super::Segment;

/// An instance's identity while it runs: allocated at start, never reused by a later instance
/// (until the u16 wraps). 0 is never an owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OwnerId(pub u16);

/// Live instances at once (entries in the header).
pub const MAX_OWNERS: usize = OWNER_ENTRIES;

/// True when an owner word's heartbeat is more than `stale_ms` older than `now_ms`. A
/// heartbeat in the future (clocks read at different loop turns) counts as fresh.
fn is_stale(word: u64, now_ms: u64, stale_ms: u64) -> bool {
    now_ms.saturating_sub(heartbeat_of(word)) > stale_ms
}

impl Segment {
    fn owner_entries(&self) -> &[OwnerEntry; OWNER_ENTRIES] {
        &self.header().owners
    }

    /// The entry of owner `id` and its word; `None` when no entry holds `id` (or `id` is 0).
    /// Looks at the home entry (`id % MAX_OWNERS`) first, then at the others.
    fn find_owner(&self, id: u16) -> Option<(&OwnerEntry, u64)> {
        if id == 0 {
            return None;
        }
        let entries = self.owner_entries();
        let home = usize::from(id) % OWNER_ENTRIES;
        (0..OWNER_ENTRIES).find_map(|k| {
            let entry = &entries[(home + k) % OWNER_ENTRIES];
            // Relaxed: a liveness hint (module doc); the word is self-contained.
            let word = entry.word.load(Ordering::Relaxed);
            (owner_id_of(word) == id).then_some((entry, word))
        })
    }

    /// The last heartbeat (ms) of owner `id`; `None` when it is not registered.
    pub(super) fn owner_heartbeat(&self, id: u16) -> Option<u64> {
        self.find_owner(id).map(|(_, word)| heartbeat_of(word))
    }

    /// Registers a new live instance: allocates a fresh id (never 0, never one that an entry
    /// still holds) and takes an owner entry that is free or stale at `now_ms` (its home entry
    /// `id % MAX_OWNERS` if it can), stamping its heartbeat = `now_ms`.
    ///
    /// Returns `None` when all [`MAX_OWNERS`] entries hold owners whose heartbeat is within
    /// `stale_ms` of `now_ms`. Costs two passes over the 32 entries at most.
    pub fn register_owner(&self, now_ms: u64, stale_ms: u64) -> Option<OwnerId> {
        let id = self.fresh_owner_id();
        let entries = self.owner_entries();
        let home = usize::from(id) % OWNER_ENTRIES;
        for k in 0..OWNER_ENTRIES {
            let entry = &entries[(home + k) % OWNER_ENTRIES];
            // Relaxed: the CAS below decides; this only picks a candidate.
            let mut word = entry.word.load(Ordering::Relaxed);
            while owner_id_of(word) == 0 || is_stale(word, now_ms, stale_ms) {
                // Relaxed: the word is self-contained; a racing registrant or heartbeat makes
                // the CAS fail and we look at the entry again.
                match entry
                    .word
                    .compare_exchange(word, pack_owner(id, now_ms), Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => return Some(OwnerId(id)),
                    Err(actual) => word = actual,
                }
            }
        }
        None
    }

    /// The next id from the header counter: skips 0 and ids still held by an entry (possible
    /// only after the 16-bit id wraps), so a new instance can never be taken for an old one
    /// whose payments still carry its id.
    fn fresh_owner_id(&self) -> u16 {
        loop {
            // Relaxed: a counter; uniqueness comes from fetch_add itself.
            let id = self.header().next_owner.fetch_add(1, Ordering::Relaxed) as u16;
            if id != 0 && self.find_owner(id).is_none() {
                return id;
            }
        }
    }

    /// Records that `owner` is alive at `now_ms`: one CAS of its entry (one load and nothing
    /// else when the entry was taken over by a newer instance, whose word must not be
    /// touched). Called every ~100 ms by each instance.
    pub fn heartbeat(&self, owner: OwnerId, now_ms: u64) {
        let Some((entry, word)) = self.find_owner(owner.0) else {
            return; // taken over while we stalled: owner_is_stale(owner) tells us so
        };
        // Relaxed: a liveness hint (module doc). Only this instance writes its own entry, so
        // the CAS fails only if a registrant took the entry over meanwhile; then we leave it.
        let _ = entry
            .word
            .compare_exchange(word, pack_owner(owner.0, now_ms), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// True when `owner` holds no entry any more (unregistered, or its entry was taken over),
    /// or its heartbeat is more than `stale_ms` older than `now_ms`.
    pub fn owner_is_stale(&self, owner: OwnerId, now_ms: u64, stale_ms: u64) -> bool {
        self.find_owner(owner.0)
            .map_or(true, |(_, word)| is_stale(word, now_ms, stale_ms))
    }

    /// Frees `owner`'s entry at clean shutdown: the payments it still owns become adoptable at
    /// once. Does nothing if the entry was already taken over.
    pub fn unregister_owner(&self, owner: OwnerId) {
        let Some((entry, word)) = self.find_owner(owner.0) else {
            return;
        };
        // Relaxed: the payments it owned are handed over through their ctrl words, not this.
        let _ = entry
            .word
            .compare_exchange(word, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}
