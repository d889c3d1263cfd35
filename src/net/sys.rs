//! The few operating-system calls `std` and `mio` do not offer: termination signals as a
//! pollable file descriptor, and a wider accept backlog. All `unsafe` outside the segment lives here.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Turns a libc return value of `-1` into `io::Error::last_os_error()` (the job mio's
/// `syscall!` does; a function keeps each `unsafe` block visible at its call site).
fn check(res: libc::c_int) -> io::Result<libc::c_int> {
    if res == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(res)
    }
}

/// SIGTERM and SIGINT delivered through a non-blocking `signalfd` instead of a handler, so
/// the reactor sees a termination request as one more readable event and can shut down
/// between two requests rather than in the middle of one.
pub struct TermSignals {
    fd: RawFd,
}

impl TermSignals {
    /// Blocks SIGTERM and SIGINT for this (single-threaded) process and returns the fd that
    /// reports them. Fails only if the kernel refuses a signalfd.
    pub fn new() -> io::Result<TermSignals> {
        let set = term_set();
        // SAFETY: `set` is an initialised signal set; the old-set pointer may be null.
        check(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
        // SAFETY: -1 asks for a new fd; `set` is initialised; the flags are valid.
        let fd = check(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
        Ok(TermSignals { fd })
    }

    /// Drains pending signals; returns true when at least one termination signal arrived.
    pub fn take(&self) -> bool {
        let mut seen = false;
        loop {
            // SAFETY: signalfd_siginfo is plain old data, so all-zero bytes are a valid value.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: `info` is a writable buffer of exactly `size` bytes owned by this frame.
            let n = unsafe { libc::read(self.fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size) };
            if n != size as isize {
                return seen;
            }
            seen = true;
        }
    }
}

impl AsRawFd for TermSignals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl Drop for TermSignals {
    fn drop(&mut self) {
        // SAFETY: `fd` was returned by signalfd and is closed exactly once, here.
        unsafe { libc::close(self.fd) };
        let set = term_set();
        // SAFETY: unblocking a valid signal set; the old-set pointer may be null.
        unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    }
}

fn term_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
    }
    set
}

/// Raises the accept backlog of a listening socket to `backlog` (the kernel caps it at
/// `net.core.somaxconn`). mio listens with 128, too few for a burst of hundreds of clients
/// connecting at once; calling `listen` again on a listening socket only resizes the queue.
pub fn widen_backlog(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen only reads its two integer arguments; a bad fd is reported as EBADF.
    check(unsafe { libc::listen(fd, backlog) }).map(drop)
}
