//! The mapping under a segment: a `MAP_SHARED` view of the segment file (or of anonymous
//! memory), created and checked under `flock` so two processes racing to create the file do
//! not both initialise it.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use super::error::SegmentError;
use super::layout::{Regions, CAPACITY_OFFSET, MAGIC, VERSION, VERSION_OFFSET};

/// A `MAP_SHARED`, read-write mapping of `len` bytes, unmapped on drop.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access to it goes through atomics
// (`layout` holds only atomic types), so it may be used and dropped from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared access is atomic access.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of zeroed anonymous memory, shared with children and with every
    /// handle cloned from it.
    pub fn anonymous(len: usize) -> io::Result<Mapping> {
        Mapping::map(len, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1)
    }

    /// Maps the first `len` bytes of `file` (which must be at least that long) shared.
    fn shared_file(file: &File, len: usize) -> io::Result<Mapping> {
        Mapping::map(len, libc::MAP_SHARED, file.as_raw_fd())
    }

    fn map(len: usize, flags: libc::c_int, fd: libc::c_int) -> io::Result<Mapping> {
        // SAFETY: a fresh mapping chosen by the kernel (addr = null) aliases no Rust object;
        // the result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }

    /// Start of the mapping (page aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; this is the last owner (the
        // mapping lives in an `Arc` shared by the segment handles), so nothing refers to it.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// Read and write for the owner only: the payments are no one else's business.
const SEGMENT_MODE: u32 = 0o600;

/// How a file was found by [`map_file`].
pub(crate) enum Opened {
    /// The file was new (or an interrupted creation): it is sized and zeroed, and the caller
    /// must initialise the header before anyone else can see it (we still hold the lock).
    Fresh(Mapping, FileLock),
    /// A valid segment of the requested capacity.
    Existing(Mapping),
}

/// An exclusive `flock` on the segment file, released when dropped (with the file).
pub(crate) struct FileLock {
    file: File,
}

impl FileLock {
    fn exclusive(file: File, path: &Path) -> Result<FileLock, SegmentError> {
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(FileLock { file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(SegmentError::Io(path.to_owned(), err));
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: flock on a descriptor we own; closing it would release the lock as well.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// Opens or creates the segment file at `path` for `capacity` slots and maps it.
///
/// Creation and the header check happen under an exclusive `flock`, so of two processes
/// racing, one creates and initialises (while holding the lock, see [`Opened::Fresh`]) and
/// the other then attaches to the finished file. The file is created 0o600 (and an existing
/// one of ours narrowed to it): only the instances' own user may map it, never another
/// service that mounts the same volume (nginx's workers reach the sockets, separate files
/// with their own mode). An existing file must carry the magic, [`VERSION`], the same capacity and
/// the exact size; a file of exactly the right size whose magic and version are zero is an
/// interrupted creation and is initialised again.
pub(crate) fn map_file(path: &Path, capacity: u32) -> Result<Opened, SegmentError> {
    let io_err = |err: io::Error| SegmentError::Io(path.to_owned(), err);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(SEGMENT_MODE)
        .open(path)
        .map_err(io_err)?;
    // A file left by an older version (0o666) is narrowed. One created by another user cannot
    // be chmod-ed by us; our open succeeding means that user chose to share it.
    if let Err(err) = file.set_permissions(Permissions::from_mode(SEGMENT_MODE)) {
        if err.kind() != io::ErrorKind::PermissionDenied {
            return Err(io_err(err));
        }
    }
    let lock = FileLock::exclusive(file, path)?;
    let file = &lock.file;
    let expected = Regions::for_capacity(capacity).len as u64;
    let size = file.metadata().map_err(io_err)?.len();

    let fresh = size == 0 || {
        let header = read_identity(file).map_err(io_err)?;
        let interrupted = header.magic == 0 && header.version == 0 && size == expected;
        if !interrupted {
            check_identity(path, &header, size, capacity, expected)?;
        }
        interrupted
    };
    if fresh {
        file.set_len(0).map_err(io_err)?;
        file.set_len(expected).map_err(io_err)?;
    }
    let mapping = Mapping::shared_file(file, expected as usize).map_err(io_err)?;
    Ok(if fresh {
        Opened::Fresh(mapping, lock)
    } else {
        Opened::Existing(mapping)
    })
}

/// The identity words at the start of a file, zero where the file is shorter.
struct Identity {
    magic: u64,
    version: u32,
    capacity: u32,
}

fn read_identity(file: &File) -> io::Result<Identity> {
    let mut head = [0u8; 16];
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    // The header is written through native-endian atomics; read it back the same way.
    let u32_at = |at: usize| u32::from_ne_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&head[..8]);
    let magic = u64::from_ne_bytes(magic);
    Ok(Identity {
        magic,
        version: u32_at(VERSION_OFFSET),
        capacity: u32_at(CAPACITY_OFFSET),
    })
}

fn check_identity(path: &Path, id: &Identity, size: u64, capacity: u32, expected: u64) -> Result<(), SegmentError> {
    let path: PathBuf = path.to_owned();
    if id.magic != MAGIC {
        return Err(SegmentError::BadMagic { path });
    }
    if id.version != VERSION {
        return Err(SegmentError::BadVersion {
            path,
            found: id.version,
            expected: VERSION,
        });
    }
    if id.capacity != capacity {
        return Err(SegmentError::CapacityMismatch {
            path,
            found: id.capacity,
            requested: capacity,
        });
    }
    if size != expected {
        return Err(SegmentError::BadSize {
            path,
            found: size,
            expected,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_segment_file_is_readable_and_writable_by_its_owner_only() {
        let path = std::env::temp_dir().join(format!("payrelay-mode-{}.seg", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(map_file(&path, 1024).unwrap());
        assert_eq!(mode_of(&path), 0o600);
        // A file an older version made 0o666 is narrowed when attached to.
        std::fs::set_permissions(&path, Permissions::from_mode(0o666)).unwrap();
        drop(map_file(&path, 1024).unwrap());
        assert_eq!(mode_of(&path), 0o600);
        std::fs::remove_file(&path).unwrap();
    }
}
