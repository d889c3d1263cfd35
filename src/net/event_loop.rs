//! The event loop: one `mio::Poll` owning the listeners, a slab of client connections,
//! termination signals and the timers, and one [`Service`] that answers requests.
//!
//! Each loop turn reads the clock once, handles every ready event, fires due timers, then
//! lets the service do its batch work before the next sleep. The poll timeout is the next
//! deadline. Tokens are laid out in fixed ranges (signals, listeners, connections, and a
//! range left to the service for its own sockets); an event for a token with no owner is
//! ignored, since mio documents that spurious events happen.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpListener, UnixListener};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::base::clock::{Clock, Now};
use crate::http::Request;
use crate::net::conn::{Conn, ConnLimits, Stream};
use crate::net::sys::{self, TermSignals};
use crate::net::timers::Timers;

const SIGNALS: Token = Token(0);
const WAKER: Token = Token(1);
const LISTENER_BASE: usize = 2;
const MAX_LISTENERS: usize = 15;
const CONN_BASE: usize = LISTENER_BASE + MAX_LISTENERS;
/// First token a service may use for sockets it registers itself (upstream connections).
pub const SERVICE_TOKEN_BASE: usize = 1 << 30;
/// How often idle and half-sent connections are looked for.
const SWEEP_EVERY_MS: u64 = 250;
/// Accept queue length asked of the kernel.
const BACKLOG: i32 = 4096;

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address such as `0.0.0.0:9999`.
    Tcp(std::net::SocketAddr),
    /// A unix socket path; a stale socket file there is replaced.
    Unix(PathBuf),
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `addr`. A unix path that holds a socket is removed first (a previous run that
    /// died leaves it behind); any other kind of file there is refused, never deleted. The
    /// new socket is made connectable by every user, since nginx runs under another one.
    fn bind(addr: &ListenAddr) -> io::Result<Listener> {
        let listener = match addr {
            ListenAddr::Tcp(a) => Listener::Tcp(TcpListener::bind(*a)?),
            ListenAddr::Unix(path) => {
                remove_stale_socket(path)?;
                let l = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
                Listener::Unix(l, path.clone())
            }
        };
        let fd = match &listener {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        };
        sys::widen_backlog(fd, BACKLOG)?;
        Ok(listener)
    }

    /// Accepts one pending connection; `Ok(None)` when none is pending.
    fn accept(&self) -> io::Result<Option<Stream>> {
        let res = match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                // Responses are single small writes; Nagle would only delay them.
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
        };
        match res {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l, _) => l,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether an event calls for a read: data, the peer's end of stream, or an error (a read
/// then reports the error, so a bare EPOLLERR is never dropped on the floor).
fn readable(event: &mio::event::Event) -> bool {
    event.is_readable() || event.is_read_closed() || event.is_error()
}

fn remove_stale_socket(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; refusing to replace it", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A connection's address in the slab plus the generation it was accepted with, so an answer
/// for a connection that has since closed (and whose slot was reused) is recognised and
/// dropped instead of reaching a stranger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnRef {
    index: u32,
    generation: u32,
}

/// How a service answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The whole response was appended to the output buffer.
    Now,
    /// The whole response was appended; close the connection once it is written (a server
    /// ending keep-alive on its own, as real ones do).
    NowThenClose,
    /// The answer comes later through [`Cx::respond`]; later requests on the same connection
    /// wait, so answers stay in request order.
    Later,
}

/// What a service can do besides answering: read the loop's clock, arm timers, answer a
/// deferred request, and register sockets of its own.
pub struct Cx<'a> {
    /// The clock as read at the start of this loop turn.
    pub now: Now,
    timers: &'a mut Timers,
    conns: &'a mut Slab,
    registry: &'a Registry,
}

impl Cx<'_> {
    /// Arms a timer at monotonic `deadline_ms`; [`Service::timer`] receives `key` then.
    pub fn arm(&mut self, deadline_ms: u64, key: u64) {
        self.timers.arm(deadline_ms, key);
    }

    /// Answers the request `conn` is waiting on with what `write` appends. Returns false (and
    /// writes nothing) when the connection is gone or not waiting.
    pub fn respond(&mut self, conn: ConnRef, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        self.conns.respond(conn, self.now, false, write)
    }

    /// Like [`Cx::respond`], then closes the connection once the answer is written.
    pub fn respond_and_close(&mut self, conn: ConnRef, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        self.conns.respond(conn, self.now, true, write)
    }

    /// The poll registry, for a service's own sockets (tokens from [`SERVICE_TOKEN_BASE`]).
    pub fn registry(&self) -> &Registry {
        self.registry
    }
}

/// The application on the loop.
pub trait Service {
    /// Answers one complete request from `conn`: appends the whole response to `out` and
    /// returns [`Reply::Now`], or returns [`Reply::Later`] and calls [`Cx::respond`] later.
    fn request(&mut self, cx: &mut Cx<'_>, conn: ConnRef, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Reply;

    /// A timer armed with [`Cx::arm`] is due.
    fn timer(&mut self, _cx: &mut Cx<'_>, _key: u64) {}

    /// Readiness for a socket the service registered (token ≥ [`SERVICE_TOKEN_BASE`]).
    fn io_event(&mut self, _cx: &mut Cx<'_>, _token: Token, _readable: bool, _writable: bool) {}

    /// Once per loop turn, after events and timers, before sleeping.
    fn before_sleep(&mut self, _cx: &mut Cx<'_>) {}

    /// The monotonic instant by which [`Service::before_sleep`] must run again even if no
    /// event arrives (the poll sleeps no longer than that). `None`: no such need.
    fn next_deadline(&self) -> Option<u64> {
        None
    }

    /// The loop was asked to stop (with a stop timeout, [`Reactor::set_stop_timeout`]) and
    /// has closed its listeners: take on no new work, finish what is under way.
    fn stop(&mut self, _cx: &mut Cx<'_>) {}

    /// Whether the work under way when [`Service::stop`] was called has ended; the stopping
    /// loop ends once this holds and every connection has closed, or at the stop timeout.
    fn drained(&self) -> bool {
        true
    }
}

/// Client connections by index, each stored with its generation; freed indices are reused.
pub(crate) struct Slab {
    entries: Vec<(u32, Option<Conn>)>,
    free: Vec<u32>,
    live: usize,
    /// Connections that received a deferred answer this turn and must be flushed and resumed.
    resumed: Vec<ConnRef>,
}

impl Slab {
    fn new() -> Slab {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            live: 0,
            resumed: Vec::new(),
        }
    }

    /// Reserves a slot (and a new generation) for a connection being set up.
    fn reserve(&mut self) -> ConnRef {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push((0, None));
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[index as usize];
        entry.0 = entry.0.wrapping_add(1);
        self.live += 1;
        ConnRef {
            index,
            generation: entry.0,
        }
    }

    fn take(&mut self, index: usize) -> Option<(ConnRef, Conn)> {
        let entry = self.entries.get_mut(index)?;
        let generation = entry.0;
        entry.1.take().map(|c| {
            (
                ConnRef {
                    index: index as u32,
                    generation,
                },
                c,
            )
        })
    }

    fn put_back(&mut self, r: ConnRef, conn: Conn) {
        self.entries[r.index as usize].1 = Some(conn);
    }

    fn release(&mut self, r: ConnRef) {
        self.entries[r.index as usize].1 = None;
        self.free.push(r.index);
        self.live -= 1;
    }

    fn respond(&mut self, r: ConnRef, now: Now, close: bool, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        match self.entries.get_mut(r.index as usize) {
            Some((g, Some(conn))) if *g == r.generation => {
                let ok = conn.answer_deferred(now, close, write);
                if ok {
                    self.resumed.push(r);
                }
                ok
            }
            _ => false,
        }
    }
}

/// Stops a running reactor from another thread, as SIGTERM does (for in-process tests and
/// embedding, where a process-wide signal would reach the wrong thread).
#[derive(Clone)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl Stopper {
    /// Asks the loop to stop at its next turn.
    pub fn stop(&self) {
        // Release pairs with the loop's Acquire load: nothing else is published, but the
        // ordering keeps the flag visible before the wake-up is observed.
        self.flag.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// The loop and everything it owns.
pub struct Reactor<S: Service> {
    poll: Poll,
    clock: Clock,
    timers: Timers,
    signals: TermSignals,
    listeners: Vec<Listener>,
    conns: Slab,
    limits: ConnLimits,
    max_connections: usize,
    next_sweep_ms: u64,
    stopper: Stopper,
    /// How long a stop may wait for connections and the service to finish; 0: not at all.
    stop_timeout_ms: u64,
    /// Set once a stop was asked: the monotonic instant at which the loop ends regardless.
    stop_deadline_ms: Option<u64>,
    service: S,
}

impl<S: Service> Reactor<S> {
    /// Binds every address and prepares the loop. Errors name the address that failed.
    pub fn bind(
        addrs: &[ListenAddr],
        limits: ConnLimits,
        max_connections: usize,
        service: S,
    ) -> io::Result<Reactor<S>> {
        if addrs.is_empty() || addrs.len() > MAX_LISTENERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("between 1 and {MAX_LISTENERS} listen addresses are needed"),
            ));
        }
        let poll = Poll::new()?;
        let signals = TermSignals::new()?;
        poll.registry()
            .register(&mut SourceFd(&signals.as_raw_fd()), SIGNALS, Interest::READABLE)?;
        let stopper = Stopper {
            flag: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(Waker::new(poll.registry(), WAKER)?),
        };
        let mut listeners = Vec::new();
        for (i, addr) in addrs.iter().enumerate() {
            let mut l =
                Listener::bind(addr).map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            poll.registry()
                .register(l.source(), Token(LISTENER_BASE + i), Interest::READABLE)?;
            listeners.push(l);
        }
        Ok(Reactor {
            poll,
            clock: Clock::new(),
            timers: Timers::new(),
            signals,
            listeners,
            conns: Slab::new(),
            limits,
            max_connections,
            next_sweep_ms: 0,
            stopper,
            stop_timeout_ms: 0,
            stop_deadline_ms: None,
            service,
        })
    }

    /// The TCP port of the first TCP listener (useful after binding port 0).
    pub fn tcp_port(&self) -> Option<u16> {
        self.listeners.iter().find_map(|l| match l {
            Listener::Tcp(t) => t.local_addr().ok().map(|a| a.port()),
            Listener::Unix(..) => None,
        })
    }

    /// A handle that stops [`Reactor::run`] from another thread.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Lets a stop (SIGTERM, SIGINT, [`Stopper::stop`]) wait up to `ms` for the requests
    /// being received or answered and for [`Service::drained`]; 0 (the default) ends the loop
    /// at once. A second stop request ends it at once too.
    pub fn set_stop_timeout(&mut self, ms: u64) {
        self.stop_timeout_ms = ms;
    }

    /// The service, for setup before [`Reactor::run`].
    pub fn service_mut(&mut self) -> &mut S {
        &mut self.service
    }

    /// Runs until SIGTERM or SIGINT, then closes the listeners (removing unix socket files),
    /// lets the work under way finish within the stop timeout ([`Reactor::set_stop_timeout`]),
    /// flushes what can be flushed without waiting, and returns the service.
    pub fn run(mut self) -> io::Result<S> {
        let mut events = Events::with_capacity(1024);
        let mut now = self.clock.now();
        self.next_sweep_ms = now.mono_ms + SWEEP_EVERY_MS;
        loop {
            let mut wake = self
                .timers
                .next_deadline()
                .map_or(self.next_sweep_ms, |d| d.min(self.next_sweep_ms));
            if let Some(d) = self.service.next_deadline() {
                wake = wake.min(d);
            }
            if let Some(d) = self.stop_deadline_ms {
                wake = wake.min(d);
            }
            let timeout = wake.saturating_sub(now.mono_ms);
            match self.poll.poll(&mut events, Some(Duration::from_millis(timeout))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            now = self.clock.now();
            for event in events.iter() {
                match event.token() {
                    SIGNALS | WAKER => {
                        let asked = if event.token() == SIGNALS {
                            self.signals.take()
                        } else {
                            // Acquire pairs with Stopper::stop's Release (see there); the swap
                            // makes each stop() count once, so a second one ends a drain.
                            self.stopper.flag.swap(false, Ordering::Acquire)
                        };
                        if asked {
                            if self.stop_timeout_ms == 0 || self.stop_deadline_ms.is_some() {
                                self.listeners.clear();
                                self.flush_all(now);
                                return Ok(self.service);
                            }
                            self.begin_stop(now);
                        }
                    }
                    Token(t) if (LISTENER_BASE..CONN_BASE).contains(&t) => self.accept(t - LISTENER_BASE, now),
                    Token(t) if (CONN_BASE..SERVICE_TOKEN_BASE).contains(&t) => {
                        self.conn_event(t - CONN_BASE, now, readable(event), event.is_writable())
                    }
                    token => {
                        let (readable, writable) = (readable(event), event.is_writable());
                        self.with_service(now, |service, cx| service.io_event(cx, token, readable, writable));
                    }
                }
            }
            while let Some(key) = self.timers.pop_due(now.mono_ms) {
                self.with_service(now, |service, cx| service.timer(cx, key));
            }
            if now.mono_ms >= self.next_sweep_ms {
                self.sweep(now);
                self.next_sweep_ms = now.mono_ms + SWEEP_EVERY_MS;
            }
            self.with_service(now, |service, cx| service.before_sleep(cx));
            while let Some(r) = self.conns.resumed.pop() {
                if self
                    .conns
                    .entries
                    .get(r.index as usize)
                    .is_some_and(|e| e.0 == r.generation)
                {
                    self.drive(r.index as usize, now, false, true);
                }
            }
            if let Some(deadline) = self.stop_deadline_ms {
                if (self.conns.live == 0 && self.service.drained()) || now.mono_ms >= deadline {
                    self.flush_all(now);
                    return Ok(self.service);
                }
            }
        }
    }

    /// The first stop request, with a stop timeout: no new connection (the listeners close
    /// and unix socket files go, so a balancer's next connect fails at once and goes to
    /// another instance), the service stops taking work, and each connection either closes
    /// now or answers the request it is in the middle of and then closes.
    fn begin_stop(&mut self, now: Now) {
        self.listeners.clear();
        self.stop_deadline_ms = Some(now.mono_ms + self.stop_timeout_ms);
        self.with_service(now, |service, cx| service.stop(cx));
        for index in 0..self.conns.entries.len() {
            if let Some((r, mut conn)) = self.conns.take(index) {
                conn.stop();
                self.conns.put_back(r, conn);
                // A request may sit in the socket unannounced yet: read it and answer it.
                self.drive(index, now, true, false);
            }
        }
    }

    /// Accepts until the listener is drained. Beyond the connection cap a new connection is
    /// closed at once, so the backlog does not fill with clients nobody will serve.
    fn accept(&mut self, which: usize, now: Now) {
        loop {
            let stream = match self.listeners.get(which).map(Listener::accept) {
                Some(Ok(Some(s))) => s,
                Some(Ok(None)) | None => return,
                Some(Err(e)) => {
                    // EMFILE and friends: keep serving existing clients and try again on the
                    // next readiness event rather than spinning here.
                    if e.kind() != io::ErrorKind::Interrupted && e.kind() != io::ErrorKind::ConnectionAborted {
                        eprintln!("accept failed: {e}");
                        return;
                    }
                    continue;
                }
            };
            if self.conns.live >= self.max_connections {
                drop(stream);
                continue;
            }
            let mut conn = Conn::new(stream, self.limits, now);
            let r = self.conns.reserve();
            if conn
                .register(self.poll.registry(), Token(CONN_BASE + r.index as usize))
                .is_err()
            {
                self.conns.release(r);
                continue;
            }
            self.conns.put_back(r, conn);
        }
    }

    fn conn_event(&mut self, index: usize, now: Now, readable: bool, writable: bool) {
        self.drive(index, now, readable, writable);
    }

    /// Moves one connection forward: reads, answers, writes; closes it when it is done. The
    /// connection is taken out of the slab meanwhile so the service may answer *other*
    /// connections through [`Cx::respond`].
    fn drive(&mut self, index: usize, now: Now, readable: bool, writable: bool) {
        let Some((r, mut conn)) = self.conns.take(index) else {
            return;
        };
        let keep = self.with_service(now, |service, cx| conn.on_ready(cx, service, r, readable, writable));
        self.finish(r, conn, keep);
    }

    /// Runs `f` with the service and a context over the loop's timers, connections and
    /// registry: every call into the service goes through here.
    fn with_service<R>(&mut self, now: Now, f: impl FnOnce(&mut S, &mut Cx<'_>) -> R) -> R {
        let mut cx = Cx {
            now,
            timers: &mut self.timers,
            conns: &mut self.conns,
            registry: self.poll.registry(),
        };
        f(&mut self.service, &mut cx)
    }

    fn finish(&mut self, r: ConnRef, mut conn: Conn, keep: bool) {
        if keep
            && conn
                .update_interest(self.poll.registry(), Token(CONN_BASE + r.index as usize))
                .is_ok()
        {
            self.conns.put_back(r, conn);
        } else {
            conn.deregister(self.poll.registry());
            self.conns.release(r);
        }
    }

    /// One last non-blocking write of every connection's pending answers, at shutdown.
    fn flush_all(&mut self, now: Now) {
        for index in 0..self.conns.entries.len() {
            if let Some((r, mut conn)) = self.conns.take(index) {
                conn.flush_once(now);
                self.conns.put_back(r, conn);
            }
        }
    }

    /// Closes connections that sat idle or half-sent past their timeouts.
    fn sweep(&mut self, now: Now) {
        for index in 0..self.conns.entries.len() {
            let Some((r, mut conn)) = self.conns.take(index) else {
                continue;
            };
            let keep = conn.on_sweep(now);
            self.finish(r, conn, keep);
        }
    }
}
