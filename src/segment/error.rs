//! Why a segment could not be opened, as one human sentence that names the file.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::layout::{MAX_CAPACITY, MIN_CAPACITY};

/// Why [`Segment::open`](super::Segment::open) or [`Segment::anonymous`](super::Segment::anonymous)
/// failed. Anonymous mappings report the path `(anonymous mapping)`.
#[derive(Debug)]
pub enum SegmentError {
    /// A system call on the file failed (open, lock, size, map).
    Io(PathBuf, io::Error),
    /// The file exists but does not start with the segment magic: it is something else.
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The file is a segment of another layout version.
    BadVersion {
        /// The file.
        path: PathBuf,
        /// Version recorded in the file.
        found: u32,
        /// Version this build reads and writes.
        expected: u32,
    },
    /// The file is a segment with another number of slots than requested.
    CapacityMismatch {
        /// The file.
        path: PathBuf,
        /// Capacity recorded in the file.
        found: u32,
        /// Capacity asked for.
        requested: u32,
    },
    /// The requested capacity is not a power of two in the accepted range.
    BadCapacity(u32),
    /// The file has a valid header but not the size its layout needs (truncated or altered).
    BadSize {
        /// The file.
        path: PathBuf,
        /// Size of the file in bytes.
        found: u64,
        /// Size the layout needs.
        expected: u64,
    },
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentError::Io(path, err) => {
                write!(f, "cannot open or map the payment segment {}: {err}", path.display())
            }
            SegmentError::BadMagic { path } => write!(
                f,
                "{} is not a payrelay segment (bad magic); remove it or point SHARED_MEMORY_PATH elsewhere",
                path.display()
            ),
            SegmentError::BadVersion { path, found, expected } => write!(
                f,
                "{} is a payrelay segment of layout version {found} but this build uses version {expected}; \
                 remove it (stop every instance first) or point SHARED_MEMORY_PATH elsewhere",
                path.display()
            ),
            SegmentError::CapacityMismatch { path, found, requested } => write!(
                f,
                "{} holds {found} payment slots but {requested} were requested; \
                 give every instance the same capacity or remove the file",
                path.display()
            ),
            SegmentError::BadCapacity(capacity) => write!(
                f,
                "segment capacity {capacity} is not a power of two between {MIN_CAPACITY} and {MAX_CAPACITY}"
            ),
            SegmentError::BadSize { path, found, expected } => write!(
                f,
                "{} is {found} bytes long but a segment of its capacity needs {expected}; \
                 it was truncated or altered: remove it or point SHARED_MEMORY_PATH elsewhere",
                path.display()
            ),
        }
    }
}

impl std::error::Error for SegmentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SegmentError::Io(_, err) => Some(err),
            _ => None,
        }
    }
}
