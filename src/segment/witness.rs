//! Whether the instance behind an owner entry is still running, as the kernel knows it.
//!
//! A heartbeat cannot tell a death from a stall before the staleness bound, and that bound
//! must be long (seconds) so that a busy or throttled instance is not taken for dead. A lock
//! can: each registered instance holds a write lock on one byte of the segment file per owner
//! entry it holds (an open-file-description lock, `F_OFD_SETLK`), and the kernel drops it the
//! moment the process exits, however it exits — while a stopped or stalled process keeps it.
//! So another instance learns of a death from one `F_OFD_GETLK` at its next look, instead of
//! seconds later, and never takes a stall for a death. It works across containers that share
//! the volume holding the file, as the locks live in the kernel's inode, not in a namespace.
//!
//! Anonymous segments (tests, the simulation) have no file: a table shared by the handles of
//! one mapping plays the kernel, each handle standing for one process, and dropping a handle
//! releases its locks as an exit would. That is what lets the simulation kill an instance and
//! have the others notice at once, as they would in production.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::layout::OWNER_ENTRIES;

/// Where the lock of owner entry `k` sits in the file: the entry's own bytes (any byte range
/// works for an advisory lock; these are readable in a dump).
fn lock_offset(entry: usize) -> i64 {
    (std::mem::offset_of!(super::layout::Header, owners) + entry * 64) as i64
}

/// The kernel's view of which entries are held by a running process.
pub(crate) struct Witness {
    kind: Kind,
    /// Entries whose lock this process (this handle, for anonymous segments) holds, by bit.
    mine: Arc<AtomicU32>,
}

enum Kind {
    /// OFD locks on the segment file, through a descriptor of our own.
    File(Arc<File>),
    /// Anonymous segments: which handle holds each entry (0 = none), shared by every handle
    /// of the mapping; `handle` names this one.
    Memory {
        holders: Arc<Mutex<[u64; OWNER_ENTRIES]>>,
        handle: u64,
    },
}

/// Handle names for anonymous segments, unique in the process.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

impl Witness {
    /// Opens the segment file at `path` once more for locking: a descriptor (and open file
    /// description) of our own, so no other use of the file can drop our locks.
    pub fn file(path: &Path) -> io::Result<Witness> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Witness {
            kind: Kind::File(Arc::new(file)),
            mine: Arc::new(AtomicU32::new(0)),
        })
    }

    /// The witness of a new anonymous mapping.
    pub fn memory() -> Witness {
        Witness {
            kind: Kind::Memory {
                holders: Arc::new(Mutex::new([0; OWNER_ENTRIES])),
                handle: NEXT_HANDLE.fetch_add(1, Ordering::Relaxed),
            },
            mine: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The witness of another handle on the same mapping: the same process for a file (its
    /// locks are shared), a new one for anonymous memory (see the module doc).
    pub fn attach_again(&self) -> Witness {
        match &self.kind {
            Kind::File(file) => Witness {
                kind: Kind::File(Arc::clone(file)),
                mine: Arc::clone(&self.mine),
            },
            Kind::Memory { holders, .. } => Witness {
                kind: Kind::Memory {
                    holders: Arc::clone(holders),
                    handle: NEXT_HANDLE.fetch_add(1, Ordering::Relaxed),
                },
                mine: Arc::new(AtomicU32::new(0)),
            },
        }
    }

    /// True when this process holds entry `k`'s lock.
    pub fn is_mine(&self, k: usize) -> bool {
        self.mine.load(Ordering::Relaxed) & (1 << k) != 0
    }

    /// Takes entry `k`'s lock if no running process holds it; true on success. Never called
    /// for an entry this process holds (a lock owner re-locking its own byte would succeed).
    pub fn try_lock(&self, k: usize) -> bool {
        debug_assert!(!self.is_mine(k));
        let taken = match &self.kind {
            Kind::File(file) => ofd_lock(file, k, libc::F_WRLCK as libc::c_short).unwrap_or(false),
            Kind::Memory { holders, handle } => {
                let mut holders = holders.lock().unwrap_or_else(|e| e.into_inner());
                if holders[k] == 0 {
                    holders[k] = *handle;
                    true
                } else {
                    false
                }
            }
        };
        if taken {
            self.mine.fetch_or(1 << k, Ordering::Relaxed);
        }
        taken
    }

    /// Gives entry `k`'s lock back (clean shutdown).
    pub fn unlock(&self, k: usize) {
        if !self.is_mine(k) {
            return;
        }
        self.mine.fetch_and(!(1 << k), Ordering::Relaxed);
        match &self.kind {
            Kind::File(file) => {
                let _ = ofd_lock(file, k, libc::F_UNLCK as libc::c_short);
            }
            Kind::Memory { holders, handle } => {
                let mut holders = holders.lock().unwrap_or_else(|e| e.into_inner());
                if holders[k] == *handle {
                    holders[k] = 0;
                }
            }
        }
    }

    /// True when some running process holds entry `k`'s lock: this one, or another. An error
    /// asking the kernel counts as held: a doubt must never adopt from a live instance early
    /// (the heartbeat bound still applies to it).
    pub fn is_held(&self, k: usize) -> bool {
        if self.is_mine(k) {
            return true;
        }
        match &self.kind {
            Kind::File(file) => ofd_held_by_other(file, k).unwrap_or(true),
            Kind::Memory { holders, .. } => holders.lock().unwrap_or_else(|e| e.into_inner())[k] != 0,
        }
    }
}

impl Drop for Witness {
    /// An anonymous handle's end is its process's exit: its locks go. (A file's locks go
    /// with the last descriptor, which the kernel closes at exit.)
    fn drop(&mut self) {
        if let Kind::Memory { holders, handle } = &self.kind {
            let mut holders = holders.lock().unwrap_or_else(|e| e.into_inner());
            for holder in holders.iter_mut() {
                if *holder == *handle {
                    *holder = 0;
                }
            }
        }
    }
}

/// The `flock` record for one byte of entry `k`.
fn record(k: usize, kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is plain integers; all-zero is a valid value (l_pid must be 0 for OFD
    // locks).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = lock_offset(k);
    lock.l_len = 1;
    lock
}

/// Sets (`F_WRLCK`) or clears (`F_UNLCK`) entry `k`'s OFD lock without waiting; `Ok(false)`
/// when another open file description holds it.
fn ofd_lock(file: &File, k: usize, kind: libc::c_short) -> io::Result<bool> {
    let mut lock = record(k, kind);
    loop {
        // SAFETY: a valid descriptor and a valid, initialised `flock` for the call's duration.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut lock) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// Whether another open file description holds a lock on entry `k`'s byte.
fn ofd_held_by_other(file: &File, k: usize) -> io::Result<bool> {
    let mut lock = record(k, libc::F_WRLCK as libc::c_short);
    // SAFETY: a valid descriptor and a valid, initialised `flock` the kernel fills in.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}
