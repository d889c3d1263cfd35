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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::base::clock::{Clock, Now};
use crate::net::conn::{Conn, ConnLimits};
use crate::net::listen::{ListenAddr, Listener};
use crate::net::service::{ConnRef, Cx, DeferredAnswers, Service, SERVICE_TOKEN_BASE};
use crate::net::sys::TermSignals;
use crate::net::timers::Timers;

const SIGNALS: Token = Token(0);
const WAKER: Token = Token(1);
const LISTENER_BASE: usize = 2;
const MAX_LISTENERS: usize = 15;
const CONN_BASE: usize = LISTENER_BASE + MAX_LISTENERS;
/// How often idle and half-sent connections are looked for.
const SWEEP_EVERY_MS: u64 = 250;

/// Whether an event calls for a read: data, the peer's end of stream, or an error (a read
/// then reports the error, so a bare EPOLLERR is never dropped on the floor).
fn readable(event: &mio::event::Event) -> bool {
    event.is_readable() || event.is_read_closed() || event.is_error()
}

/// Client connections by index, each stored with its generation; freed indices are reused.
pub(crate) struct Slab {
    entries: Vec<(u32, Option<Conn>)>,
    free: Vec<u32>,
    live: usize,
}

impl Slab {
    fn new() -> Slab {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            live: 0,
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

    /// Hands a deferred answer to its connection; false when that connection has closed
    /// (its slot may hold a newer one) or waits for no answer.
    fn answer(&mut self, r: ConnRef, now: Now, close: bool, bytes: &[u8]) -> bool {
        match self.entries.get_mut(r.index as usize) {
            Some((g, Some(conn))) if *g == r.generation => {
                conn.answer_deferred(now, close, |out| out.extend_from_slice(bytes))
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
    /// Deferred answers the service gave during this turn's callbacks.
    answers: DeferredAnswers,
    /// Connections that took a deferred answer and must be flushed and resumed.
    resumed: Vec<ConnRef>,
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
            answers: DeferredAnswers::default(),
            resumed: Vec::new(),
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
                                self.deliver_answers(now);
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
                        self.with_service(now, |service, cx| service.io_event(cx, token));
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
            self.deliver_answers(now);
            if let Some(deadline) = self.stop_deadline_ms {
                if (self.conns.live == 0 && self.service.drained()) || now.mono_ms >= deadline {
                    self.deliver_answers(now);
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
    /// connection is taken out of the slab while the service runs; the answers it defers are
    /// delivered after the callback ([`Reactor::deliver_answers`]).
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
            answers: &mut self.answers,
            registry: self.poll.registry(),
        };
        f(&mut self.service, &mut cx)
    }

    /// Hands the deferred answers to their connections and moves those connections on
    /// (they may have pipelined requests waiting); answers given meanwhile go out too.
    fn deliver_answers(&mut self, now: Now) {
        while !self.answers.is_empty() {
            let conns = &mut self.conns;
            let resumed = &mut self.resumed;
            self.answers.drain(|r, close, bytes| {
                if conns.answer(r, now, close, bytes) {
                    resumed.push(r);
                }
            });
            while let Some(r) = self.resumed.pop() {
                self.drive(r.index as usize, now, false, true);
            }
        }
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
