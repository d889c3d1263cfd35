//! Instances as owners of claims: registration with a fresh id, liveness, heartbeats, and
//! leaving at shutdown.
//!
//! # Entries
//! The header holds [`MAX_OWNERS`] entries of one word each: owner id (0 = free) and last
//! heartbeat. Each entry is backed by a lock the kernel holds for the registered process
//! (`witness.rs`): an instance takes an entry only by taking its lock, so only when the
//! instance that held it has exited, and rewrites its heartbeat every ~100 ms. An id lives in
//! exactly one entry until that entry is freed or taken over, so "is owner X alive" is one
//! load in the common case (the entry at `X % MAX_OWNERS`) plus one lock query.
//!
//! # Liveness
//! An owner is gone when no entry holds its id, or nobody holds its entry's lock (it exited:
//! noticed at once), or its heartbeat is more than `stale_ms` old (it is stopped or stalled:
//! noticed after the bound, and only then, since a stall must not pass for a death). Either
//! way it is a hint: a payment's owner is decided by its `ctrl` word and the attempt protocol
//! of `claims.rs`, so an owner judged gone wrongly never breaks exactly once. A stalled owner
//! keeps its entry (its lock) and finds, when it wakes, that the payments it held were taken:
//! their claims have moved on and its copies are refused.
//!
//! # Crashes
//! A process that dies between taking an id and taking an entry burns the id; one that dies
//! registered leaves its entry word, which the next registration overwrites once it gets the
//! lock. Its payments are adoptable from the moment it died.

use std::sync::atomic::Ordering;

use super::layout::{heartbeat_of, owner_id_of, pack_owner, OwnerEntry, OWNER_ENTRIES};
use super::Segment;

/// An instance's identity while it runs: allocated at start, never reused by a later instance
/// (until the u16 wraps). 0 is never an owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OwnerId(pub u16);

/// Live instances at once (entries in the header).
pub const MAX_OWNERS: usize = OWNER_ENTRIES;

/// The owners alive at one instant (module doc): at most [`MAX_OWNERS`] ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveOwners {
    ids: [u16; OWNER_ENTRIES],
    len: usize,
}

impl LiveOwners {
    /// Whether `id` is among them.
    pub fn contains(&self, id: u16) -> bool {
        self.ids[..self.len].contains(&id)
    }

    /// The ids.
    pub fn ids(&self) -> &[u16] {
        &self.ids[..self.len]
    }

    /// True when some owner alive in `earlier` is not any more: an instance died (or
    /// stalled past the bound, or left).
    pub fn lost_any_of(&self, earlier: &LiveOwners) -> bool {
        earlier.ids().iter().any(|&id| !self.contains(id))
    }
}

/// True when an owner word's heartbeat is more than `stale_ms` older than `now_ms`. A
/// heartbeat in the future (clocks read at different loop turns) counts as fresh.
fn is_stale(word: u64, now_ms: u64, stale_ms: u64) -> bool {
    now_ms.saturating_sub(heartbeat_of(word)) > stale_ms
}

impl Segment {
    fn owner_entries(&self) -> &[OwnerEntry; OWNER_ENTRIES] {
        &self.header().owners
    }

    /// The index of the entry of owner `id` and its word; `None` when no entry holds `id`
    /// (or `id` is 0). Looks at the home entry (`id % MAX_OWNERS`) first, then at the others.
    fn find_owner(&self, id: u16) -> Option<(usize, u64)> {
        if id == 0 {
            return None;
        }
        let entries = self.owner_entries();
        let home = usize::from(id) % OWNER_ENTRIES;
        (0..OWNER_ENTRIES).find_map(|k| {
            let k = (home + k) % OWNER_ENTRIES;
            // Relaxed: a liveness hint (module doc); the word is self-contained.
            let word = entries[k].word.load(Ordering::Relaxed);
            (owner_id_of(word) == id).then_some((k, word))
        })
    }

    /// The last heartbeat (ms) of owner `id`; `None` when it is not registered.
    pub(super) fn owner_heartbeat(&self, id: u16) -> Option<u64> {
        self.find_owner(id).map(|(_, word)| heartbeat_of(word))
    }

    /// Registers a new live instance through this handle: allocates a fresh id (never 0,
    /// never one that an entry still holds) and takes an owner entry whose lock nobody holds
    /// (its home entry `id % MAX_OWNERS` if it can), stamping its heartbeat = `now_ms`. The
    /// entry stays ours until [`Segment::unregister_owner`] or the end of this process (of
    /// this handle, for an anonymous segment).
    ///
    /// Returns `None` when running instances hold all [`MAX_OWNERS`] entries.
    pub fn register_owner(&self, now_ms: u64) -> Option<OwnerId> {
        let id = self.fresh_owner_id();
        let entries = self.owner_entries();
        let home = usize::from(id) % OWNER_ENTRIES;
        for k in 0..OWNER_ENTRIES {
            let k = (home + k) % OWNER_ENTRIES;
            if self.witness.is_mine(k) || !self.witness.try_lock(k) {
                continue;
            }
            // The lock is ours: whoever the entry named has exited (or it was free), and no
            // one else writes it while we hold the lock, except our own heartbeats.
            // Relaxed: a liveness hint (module doc).
            entries[k].word.store(pack_owner(id, now_ms), Ordering::Relaxed);
            return Some(OwnerId(id));
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

    /// Records that `owner` is alive at `now_ms`: one CAS of its entry (nothing when it has
    /// unregistered; while it holds the entry's lock nobody else takes the entry). Called
    /// every ~100 ms by each instance.
    pub fn heartbeat(&self, owner: OwnerId, now_ms: u64) {
        let Some((k, word)) = self.find_owner(owner.0) else {
            return; // unregistered
        };
        // Relaxed: a liveness hint (module doc). Only this instance writes its own entry (it
        // holds the lock), so the CAS fails only if it unregistered meanwhile.
        let _ = self.owner_entries()[k].word.compare_exchange(
            word,
            pack_owner(owner.0, now_ms),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// True when `owner` is gone (module doc): it holds no entry any more (unregistered, or
    /// its entry was taken over after its exit), nobody holds its entry's lock (it exited), or
    /// its heartbeat is more than `stale_ms` older than `now_ms` (stopped or stalled).
    pub fn owner_is_stale(&self, owner: OwnerId, now_ms: u64, stale_ms: u64) -> bool {
        self.find_owner(owner.0)
            .map_or(true, |(k, word)| !self.entry_alive(k, word, now_ms, stale_ms))
    }

    /// Whether the owner in entry `k`, whose word reads `word`, is alive at `now_ms`: its
    /// heartbeat fresh and its lock held (module doc).
    fn entry_alive(&self, k: usize, word: u64, now_ms: u64, stale_ms: u64) -> bool {
        !is_stale(word, now_ms, stale_ms) && self.witness.is_held(k)
    }

    /// Every owner alive at `now_ms` (module doc): one lock query per registered entry.
    pub fn live_owners(&self, now_ms: u64, stale_ms: u64) -> LiveOwners {
        let mut live = LiveOwners::default();
        for (k, entry) in self.owner_entries().iter().enumerate() {
            // Relaxed: a liveness hint (module doc).
            let word = entry.word.load(Ordering::Relaxed);
            let id = owner_id_of(word);
            if id != 0 && self.entry_alive(k, word, now_ms, stale_ms) {
                live.ids[live.len] = id;
                live.len += 1;
            }
        }
        live
    }

    /// Frees `owner`'s entry at clean shutdown: the payments it still owns become adoptable at
    /// once. Does nothing if the entry was already taken over.
    pub fn unregister_owner(&self, owner: OwnerId) {
        let Some((k, word)) = self.find_owner(owner.0) else {
            return;
        };
        if !self.witness.is_mine(k) {
            return; // another process's entry: not ours to free
        }
        // Relaxed: the payments it owned are handed over through their ctrl words, not this.
        let _ = self.owner_entries()[k]
            .word
            .compare_exchange(word, 0, Ordering::Relaxed, Ordering::Relaxed);
        self.witness.unlock(k);
    }
}
