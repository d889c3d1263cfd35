//! Per-processor pools of keep-alive HTTP/1.1 connections on the reactor: performs the
//! dispatcher's calls (payment, lookup, health) and reports how each one ended.
//!
//! # Model
//! One request per connection at a time: no pipelining, so a slow answer never holds up the
//! requests behind it, and a connection that fails names exactly one request as ambiguous.
//! Requests that find no idle connection wait in a FIFO per processor; connections are
//! opened lazily, up to the pool size, each one carrying the request that asked for it.
//!
//! A pool's address comes from an IP literal, or from a short-lived helper thread running
//! `ToSocketAddrs` (the only blocking call, kept off the loop); [`Upstream::tick`] picks its
//! answer up. A name that does not resolve yet (the processors start after us) is retried
//! with backoff forever, and re-resolved after repeated connect failures, since a restarted
//! container may come back with a new address.
//!
//! # A connection's life
//! ```text
//! Closed     ── connect() ────────────────────────────────▶ Connecting{job?}
//! Connecting ── connected (writable, take_error, peer_addr),
//!               carrying a job ──────────────────────────▶ Busy{job, written}
//!               carrying none (cancelled) ───────────────▶ Idle
//!            ── refused / timed out ─────────────────────▶ Closed  job: Failed{written:false}; backoff
//! Idle       ── next queued request ─────────────────────▶ Busy{job, written}
//!            ── server closed, stray bytes, idle 60 s ───▶ Closed  quietly; replaced lazily
//! Busy       ── answer, keep-alive ──────────────────────▶ Idle
//!            ── answer, Connection: close ───────────────▶ Closed
//!            ── closed / reset / bad answer / cancel ────▶ Closed  Failed{written}
//! ```
//! The pool-wide step before all of this, "Resolving", is the address's state, not a
//! connection's (see [`PoolStats::resolving`]).
//!
//! # Reporting
//! [`Upstream::io_event`] and [`Upstream::tick`] append [`Completion`]s to the caller's
//! vector. [`Upstream::submit`] has no such vector, so a failure it meets at once (a refused
//! connect) is parked and handed over by the next `io_event`, `tick` or
//! [`Upstream::drain_completions`]; meanwhile [`Upstream::next_deadline`] says "now" so the
//! loop does not sleep on it.
//! [`Upstream::cancel`] returns its completion directly.

pub mod wire;

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::base::clock::Now;
use crate::base::payment::Processor;
use crate::dispatch::{Call, Completion, Outcome, RequestId};
use crate::http::client::{parse_response, ParseResponse, Response, MAX_RESPONSE_BYTES};
use crate::net::buf::{ReadBuf, ReadEnd, WriteBuf, WriteEnd};
use crate::upstream::wire::{parse_health, parse_lookup, parse_url, ProcessorUrl, RequestTemplates, UrlError};

/// How to reach the processors; indexed by [`Processor::index`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// `http://host[:port]` of each processor.
    pub urls: [String; 2],
    /// Most connections open to each processor (at least 1).
    pub pool_size: [usize; 2],
    /// How long a connect may take before it counts as failed.
    pub connect_timeout_ms: u64,
}

/// Why an [`Upstream`] cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamError {
    /// The processor whose configuration is wrong.
    pub processor: Processor,
    /// Its URL as configured.
    pub url: String,
    /// What is wrong with it.
    pub problem: UpstreamProblem,
}

/// What is wrong with a processor's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamProblem {
    /// The URL is not `http://host[:port]`.
    Url(UrlError),
    /// The pool size is 0.
    EmptyPool,
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.problem {
            UpstreamProblem::Url(e) => write!(f, "{} processor URL {:?}: {e}", self.processor.name(), self.url),
            UpstreamProblem::EmptyPool => {
                write!(f, "{} processor pool size must be at least 1", self.processor.name())
            }
        }
    }
}

impl std::error::Error for UpstreamError {}

/// A pool's state for `GET /stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Connected sockets (idle + busy).
    pub open: usize,
    /// Connected and waiting for a request.
    pub idle: usize,
    /// Carrying a request.
    pub busy: usize,
    /// Connects in progress.
    pub connecting: usize,
    /// Requests waiting for a connection.
    pub queued: usize,
    /// The address connections go to, once known.
    pub address: Option<SocketAddr>,
    /// A name lookup is running or waiting to be retried.
    pub resolving: bool,
    /// Connect failures since the last successful connect.
    pub connect_failures: u32,
}

/// While a lookup thread runs, how often `tick` should look for its answer.
const RESOLVE_POLL_MS: u64 = 5;
/// First and largest wait before retrying a name that did not resolve.
const RESOLVE_BACKOFF_MS: (u64, u64) = (100, 2_000);
/// First and largest wait before connecting again after a refused or timed-out connect.
const CONNECT_BACKOFF_MS: (u64, u64) = (50, 1_000);
/// Consecutive connect failures after which the name is looked up again.
const RERESOLVE_AFTER_FAILURES: u32 = 3;
/// Least time between two lookups of a name that did resolve.
const RERESOLVE_EVERY_MS: u64 = 1_000;
/// An idle connection unused for this long is checked (one `peek`) before it carries a
/// request: the server may have closed it and its FIN may not have been read yet, and a
/// request written there would end ambiguous for no reason.
const IDLE_CHECK_AFTER_MS: u64 = 1_000;
/// An idle connection unused for this long is closed by us, well before the server's own
/// keep-alive timeout (Kestrel's default is 130 s) could race a request on it.
const IDLE_MAX_MS: u64 = 60_000;

/// A request waiting for, or travelling on, a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Job {
    request: RequestId,
    call: Call,
}

/// Both processors' pools.
pub struct Upstream {
    pools: [Pool; 2],
    token_base: usize,
    /// Completions met in `submit`, handed over at the next `io_event` or `tick`.
    parked: Vec<Completion>,
    /// The `now` of the latest call, for `cancel` and `next_deadline`, which get none.
    last_now_ms: u64,
}

impl Upstream {
    /// Checks the configuration and prepares both pools; tokens `token_base ..
    /// token_base + pool_size[0] + pool_size[1]` are this upstream's (see
    /// [`owns`](Self::owns)). Host names start resolving at once, on helper threads.
    /// Opens no connection.
    pub fn new(config: UpstreamConfig, token_base: usize) -> Result<Upstream, UpstreamError> {
        let mut first_token = token_base;
        let mut build = |processor: Processor| {
            let i = processor.index();
            let url = &config.urls[i];
            let fail = |problem| UpstreamError {
                processor,
                url: url.clone(),
                problem,
            };
            let parsed = parse_url(url).map_err(|e| fail(UpstreamProblem::Url(e)))?;
            let size = config.pool_size[i];
            if size == 0 {
                return Err(fail(UpstreamProblem::EmptyPool));
            }
            let pool = Pool::new(processor, parsed, size, first_token, config.connect_timeout_ms);
            first_token += size;
            Ok(pool)
        };
        let pools = [build(Processor::Default)?, build(Processor::Fallback)?];
        Ok(Upstream {
            pools,
            token_base,
            parked: Vec::new(),
            last_now_ms: 0,
        })
    }

    /// True when `token` belongs to one of this upstream's connections.
    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.pools[1].first_token + self.pools[1].conns.len()).contains(&token.0)
    }

    /// Starts one request to `processor`: written at once on an idle connection, or carried
    /// by a new connection (opened lazily, up to the pool size), or queued behind earlier
    /// requests until a connection is free. Never blocks. A failure met at once is reported
    /// by the next [`io_event`](Self::io_event) or [`tick`](Self::tick).
    pub fn submit(&mut self, registry: &Registry, now: Now, processor: Processor, request: RequestId, call: Call) {
        self.last_now_ms = now.mono_ms;
        let pool = &mut self.pools[processor.index()];
        pool.queue.push_back(Job { request, call });
        pool.pump(registry, now.mono_ms, &mut self.parked);
    }

    /// Gives up on a request (the dispatcher's timeout) and returns its completion, or
    /// `None` when it is not known here (already completed). A queued request, or one whose
    /// connection is still connecting, ends `Failed{written:false}` (the connection goes on
    /// for the next request). One on the wire closes its connection, so a late answer can
    /// never be matched to another request, and ends `Failed{written}` with whether any
    /// byte of it was written (nearly always true).
    pub fn cancel(&mut self, registry: &Registry, request: RequestId) -> Option<Completion> {
        for pool in &mut self.pools {
            if let Some(outcome) = pool.cancel(registry, request) {
                // A closed connection frees a slot for the queue.
                pool.pump(registry, self.last_now_ms, &mut self.parked);
                return Some(Completion {
                    request,
                    processor: pool.processor,
                    outcome,
                });
            }
        }
        None
    }

    /// Readiness for one of this upstream's tokens (others are ignored, as are spurious
    /// events): finishes connects, writes, reads and frames answers. Completions are
    /// appended to `done`, after any parked ones.
    pub fn io_event(
        &mut self,
        registry: &Registry,
        now: Now,
        token: Token,
        readable: bool,
        writable: bool,
        done: &mut Vec<Completion>,
    ) {
        self.last_now_ms = now.mono_ms;
        done.append(&mut self.parked);
        let Some(offset) = token.0.checked_sub(self.token_base) else {
            return;
        };
        let first_len = self.pools[0].conns.len();
        let (pool, slot) = if offset < first_len {
            (&mut self.pools[0], offset)
        } else {
            (&mut self.pools[1], offset - first_len)
        };
        if slot < pool.conns.len() {
            pool.on_event(registry, now.mono_ms, slot, readable, writable, done);
        }
    }

    /// Housekeeping, once per loop turn: picks up name lookups and retries them, fails
    /// connects past their timeout, closes connections idle too long, and starts queued
    /// requests where a connection can be had. Completions are appended to `done`.
    pub fn tick(&mut self, registry: &Registry, now: Now, done: &mut Vec<Completion>) {
        self.last_now_ms = now.mono_ms;
        done.append(&mut self.parked);
        for pool in &mut self.pools {
            pool.tick(registry, now.mono_ms, done);
        }
    }

    /// Hands over completions met where no vector was at hand (a connect refused inside
    /// [`submit`](Self::submit) or a queue pumped by [`cancel`](Self::cancel)).
    /// [`io_event`](Self::io_event) and [`tick`](Self::tick) do this first themselves; a
    /// caller that submits in a loop may call it to see such failures in the same turn.
    pub fn drain_completions(&mut self, done: &mut Vec<Completion>) {
        done.append(&mut self.parked);
    }

    /// When [`tick`](Self::tick) must run next (monotonic ms), if anything waits on time: a
    /// parked completion or a running lookup (soon), a lookup retry, a connect timeout, or
    /// queued requests waiting out a connect backoff.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.parked.is_empty() {
            return Some(self.last_now_ms);
        }
        self.pools
            .iter()
            .filter_map(|p| p.next_deadline(self.last_now_ms))
            .min()
    }

    /// The state of one processor's pool.
    pub fn stats(&self, processor: Processor) -> PoolStats {
        self.pools[processor.index()].stats()
    }
}

/// How a pool's address is found.
enum Resolution {
    /// The URL names an IP address.
    Literal,
    /// A helper thread is looking the name up; its answer arrives on `answer`.
    Running {
        answer: mpsc::Receiver<io::Result<Vec<SocketAddr>>>,
        /// Wait before the next attempt should this one fail.
        backoff_ms: u64,
    },
    /// The last lookup failed; the next starts at `retry_at_ms`.
    Waiting { retry_at_ms: u64, backoff_ms: u64 },
    /// The last lookup succeeded at `at_ms`.
    Settled { at_ms: u64 },
}

/// Where a connection stands.
enum ConnState {
    /// No socket; the slot is free.
    Closed,
    /// A non-blocking connect is under way, for the request it will carry first, if any
    /// (none when that request was cancelled meanwhile).
    Connecting {
        stream: TcpStream,
        deadline_ms: u64,
        job: Option<Job>,
    },
    /// Connected, no request on it, since `since_ms`.
    Idle { stream: TcpStream, since_ms: u64 },
    /// Carrying `job`; `written` once any byte of it was accepted by the socket.
    Busy { stream: TcpStream, job: Job, written: bool },
}

/// One connection slot: its state, buffers kept across connections, and the interest its
/// socket is registered with (`None`: not registered), remembered so an unchanged set is
/// never registered again.
struct Conn {
    state: ConnState,
    read: ReadBuf,
    write: WriteBuf,
    interest: Option<Interest>,
}

/// What reading a busy connection came to.
enum ReadResult {
    /// The answer is not complete; wait for more.
    Pending,
    /// A complete answer; `reusable` when the connection may carry another request.
    Answer(Response, bool),
    /// The connection ended or sent something that is not an answer.
    Failed,
}

/// One processor's connections and queue.
struct Pool {
    processor: Processor,
    url: ProcessorUrl,
    templates: RequestTemplates,
    first_token: usize,
    connect_timeout_ms: u64,
    address: Option<SocketAddr>,
    resolution: Resolution,
    conns: Vec<Conn>,
    queue: VecDeque<Job>,
    /// Consecutive connect failures; while nonzero, one connect at a time probes.
    failures: u32,
    /// No connect starts before this.
    reconnect_at_ms: u64,
    /// The wait after the next connect failure.
    backoff_ms: u64,
    /// Scratch for decoded answer bodies.
    body: Vec<u8>,
}

impl Pool {
    fn new(processor: Processor, url: ProcessorUrl, size: usize, first_token: usize, connect_timeout_ms: u64) -> Pool {
        let (address, resolution) = match url.ip {
            Some(ip) => (Some(SocketAddr::new(ip, url.port)), Resolution::Literal),
            None => (None, start_lookup(&url, RESOLVE_BACKOFF_MS.0, 0)),
        };
        let conns = (0..size)
            .map(|_| Conn {
                state: ConnState::Closed,
                read: ReadBuf::new(MAX_RESPONSE_BYTES),
                write: WriteBuf::new(),
                interest: None,
            })
            .collect();
        Pool {
            processor,
            templates: RequestTemplates::new(&url),
            url,
            first_token,
            connect_timeout_ms,
            address,
            resolution,
            conns,
            queue: VecDeque::new(),
            failures: 0,
            reconnect_at_ms: 0,
            backoff_ms: CONNECT_BACKOFF_MS.0,
            body: Vec::new(),
        }
    }

    fn token(&self, slot: usize) -> Token {
        Token(self.first_token + slot)
    }

    fn completion(&self, job: Job, outcome: Outcome) -> Completion {
        Completion {
            request: job.request,
            processor: self.processor,
            outcome,
        }
    }

    /// Starts queued requests, oldest first, while a connection can be had for them: an
    /// idle one, a connecting one that lost its request, or a new one.
    fn pump(&mut self, registry: &Registry, now_ms: u64, done: &mut Vec<Completion>) {
        while let Some(&job) = self.queue.front() {
            if let Some(slot) = self.usable_idle(registry, now_ms) {
                self.queue.pop_front();
                self.start(registry, slot, job, done);
            } else if let Some(slot) = self
                .conns
                .iter()
                .position(|c| matches!(c.state, ConnState::Connecting { job: None, .. }))
            {
                self.queue.pop_front();
                if let ConnState::Connecting { job: carried, .. } = &mut self.conns[slot].state {
                    *carried = Some(job);
                }
            } else if let Some(slot) = self.openable_slot(now_ms) {
                self.queue.pop_front();
                self.open(registry, now_ms, slot, Some(job), done);
            } else {
                // A name that failed to resolve (not one still being looked up at start)
                // leaves nothing to wait for.
                if self.address.is_none() && matches!(self.resolution, Resolution::Waiting { .. }) {
                    self.shed_queue(done);
                }
                return;
            }
        }
    }

    /// An idle connection fit to carry a request now. Connections idle past
    /// [`IDLE_MAX_MS`], or found closed by the server (or holding unsolicited bytes) when
    /// checked after [`IDLE_CHECK_AFTER_MS`], are closed on the way.
    fn usable_idle(&mut self, registry: &Registry, now_ms: u64) -> Option<usize> {
        for slot in 0..self.conns.len() {
            let ConnState::Idle { stream, since_ms } = &self.conns[slot].state else {
                continue;
            };
            let idle_ms = now_ms.saturating_sub(*since_ms);
            let alive = idle_ms < IDLE_MAX_MS
                && (idle_ms < IDLE_CHECK_AFTER_MS
                    || matches!(stream.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
            if alive {
                return Some(slot);
            }
            self.close(registry, slot);
        }
        None
    }

    /// A free slot a connect may start in now: the address is known, no backoff is running,
    /// and after failures no other connect is under way (one probe at a time).
    fn openable_slot(&self, now_ms: u64) -> Option<usize> {
        if self.address.is_none() || now_ms < self.reconnect_at_ms {
            return None;
        }
        if self.failures > 0
            && self
                .conns
                .iter()
                .any(|c| matches!(c.state, ConnState::Connecting { .. }))
        {
            return None;
        }
        self.conns.iter().position(|c| matches!(c.state, ConnState::Closed))
    }

    /// Starts a non-blocking connect in the free `slot`, carrying `job`.
    fn open(&mut self, registry: &Registry, now_ms: u64, slot: usize, job: Option<Job>, done: &mut Vec<Completion>) {
        let Some(address) = self.address else { return };
        let token = self.token(slot);
        let conn = &mut self.conns[slot];
        let started = TcpStream::connect(address).and_then(|mut stream| {
            // Connect completion is signalled as writability (mio's documented recipe).
            registry.register(&mut stream, token, Interest::WRITABLE)?;
            Ok(stream)
        });
        match started {
            Ok(stream) => {
                conn.interest = Some(Interest::WRITABLE);
                conn.state = ConnState::Connecting {
                    stream,
                    deadline_ms: now_ms + self.connect_timeout_ms,
                    job,
                };
            }
            Err(_) => {
                if let Some(job) = job {
                    done.push(self.completion(job, Outcome::Failed { written: false }));
                }
                self.connect_failed(now_ms);
                self.shed_queue(done);
            }
        }
    }

    /// Fails every queued request, unwritten, when nothing could carry it soon: no
    /// connection is open or opening, and the last connect or name lookup failed. Waiting
    /// out the backoff would only keep them until the dispatcher gives up on them; told now
    /// that the processor is unreachable, it can route them elsewhere.
    fn shed_queue(&mut self, done: &mut Vec<Completion>) {
        let carrier = self.conns.iter().any(|c| !matches!(c.state, ConnState::Closed));
        if carrier {
            return;
        }
        while let Some(job) = self.queue.pop_front() {
            done.push(self.completion(job, Outcome::Failed { written: false }));
        }
    }

    /// Counts a failed connect: backs off before the next one, and looks the name up again
    /// after several in a row.
    fn connect_failed(&mut self, now_ms: u64) {
        self.failures = self.failures.saturating_add(1);
        self.reconnect_at_ms = now_ms + self.backoff_ms;
        self.backoff_ms = (self.backoff_ms * 2).min(CONNECT_BACKOFF_MS.1);
        if self.failures >= RERESOLVE_AFTER_FAILURES {
            if let Resolution::Settled { at_ms } = self.resolution {
                if now_ms.saturating_sub(at_ms) >= RERESOLVE_EVERY_MS {
                    self.resolution = start_lookup(&self.url, RESOLVE_BACKOFF_MS.0, now_ms);
                }
            }
        }
    }

    /// Writes `job`'s request on the connected `slot` (idle, or just connected) and makes it
    /// busy. A connection found dead before a byte went out is closed and `job` goes back
    /// to the head of the queue; one that dies after is reported. Callers pump the queue
    /// afterwards (a slot may have been freed).
    fn start(&mut self, registry: &Registry, slot: usize, job: Job, done: &mut Vec<Completion>) {
        let conn = &mut self.conns[slot];
        let stream = match std::mem::replace(&mut conn.state, ConnState::Closed) {
            ConnState::Idle { stream, .. } | ConnState::Connecting { stream, .. } => stream,
            other => {
                // Not reachable: callers pass a connected, request-free slot.
                conn.state = other;
                self.queue.push_front(job);
                return;
            }
        };
        let out = conn.write.out();
        match job.call {
            Call::Payment {
                id,
                cents,
                requested_at_ms,
            } => self.templates.write_payment(out, id, cents, requested_at_ms),
            Call::Lookup { id } => self.templates.write_lookup(out, id),
            Call::Health => self.templates.write_health(out),
        }
        conn.state = ConnState::Busy {
            stream,
            job,
            written: false,
        };
        match self.flush(registry, slot) {
            Ok(()) => {}
            Err(false) => {
                self.close(registry, slot);
                self.queue.push_front(job);
            }
            Err(true) => {
                self.close(registry, slot);
                done.push(self.completion(job, Outcome::Failed { written: true }));
            }
        }
    }

    /// Writes what the busy `slot` has pending and sets its interest: READABLE, plus
    /// WRITABLE only while bytes remain. `Err(written)` when the connection failed.
    fn flush(&mut self, registry: &Registry, slot: usize) -> Result<(), bool> {
        let token = self.token(slot);
        let conn = &mut self.conns[slot];
        let ConnState::Busy { stream, written, .. } = &mut conn.state else {
            return Ok(());
        };
        let before = conn.write.pending();
        let end = if before > 0 {
            conn.write.flush_to(stream)
        } else {
            WriteEnd::Drained
        };
        *written |= conn.write.pending() < before;
        let want = match end {
            WriteEnd::Drained => Interest::READABLE,
            WriteEnd::WouldBlock => Interest::READABLE | Interest::WRITABLE,
            WriteEnd::Closed => return Err(*written),
        };
        set_interest(registry, stream, token, &mut conn.interest, want).map_err(|_| *written)
    }

    /// Closes `slot`'s socket, if any, and resets its buffers for the next connection. The
    /// request it carried, if any, is the caller's to report.
    fn close(&mut self, registry: &Registry, slot: usize) {
        let conn = &mut self.conns[slot];
        let stream = match std::mem::replace(&mut conn.state, ConnState::Closed) {
            ConnState::Closed => None,
            ConnState::Connecting { stream, .. } | ConnState::Idle { stream, .. } | ConnState::Busy { stream, .. } => {
                Some(stream)
            }
        };
        if let Some(mut stream) = stream {
            if conn.interest.take().is_some() {
                let _ = registry.deregister(&mut stream);
            }
        }
        let unread = conn.read.bytes().len();
        conn.read.consume(unread);
        conn.write.clear();
    }

    /// Readiness for `slot`. Handled whatever flags came, since spurious events happen and
    /// an error may arrive flagged as neither readable nor writable: each step below finds
    /// out for itself (a connect checks its status, reads and writes stop at `WouldBlock`).
    fn on_event(
        &mut self,
        registry: &Registry,
        now_ms: u64,
        slot: usize,
        _readable: bool,
        _writable: bool,
        done: &mut Vec<Completion>,
    ) {
        match &self.conns[slot].state {
            ConnState::Closed => {}
            ConnState::Connecting { .. } => self.on_connect_event(registry, now_ms, slot, done),
            ConnState::Idle { .. } => self.on_idle_event(registry, now_ms, slot, done),
            ConnState::Busy { .. } => self.on_busy_event(registry, now_ms, slot, done),
        }
    }

    /// Finishes a connect as mio documents it: `take_error`, then `peer_addr` (not
    /// connected yet: keep waiting). Connected: TCP_NODELAY, then the carried request is
    /// written, or the connection idles and takes the queue's head.
    fn on_connect_event(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut Vec<Completion>) {
        let ConnState::Connecting { stream, job, .. } = &self.conns[slot].state else {
            return;
        };
        let job = *job;
        let status = match stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match stream.peer_addr() {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotConnected || e.raw_os_error() == Some(libc::EINPROGRESS) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            },
        };
        match status {
            Ok(false) => {}
            Ok(true) => {
                // Requests are single small writes; Nagle would only delay them.
                let _ = stream.set_nodelay(true);
                self.failures = 0;
                self.backoff_ms = CONNECT_BACKOFF_MS.0;
                match job {
                    Some(job) => {
                        self.start(registry, slot, job, done);
                        self.pump(registry, now_ms, done);
                    }
                    None => self.become_idle(registry, now_ms, slot, done),
                }
            }
            Err(_) => {
                self.close(registry, slot);
                if let Some(job) = job {
                    done.push(self.completion(job, Outcome::Failed { written: false }));
                }
                self.connect_failed(now_ms);
                self.shed_queue(done);
            }
        }
    }

    /// Makes the connected `slot` idle (READABLE only, so a close by the server is seen),
    /// then lets it take the queue's head.
    fn become_idle(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut Vec<Completion>) {
        let token = self.token(slot);
        let conn = &mut self.conns[slot];
        let stream = match std::mem::replace(&mut conn.state, ConnState::Closed) {
            ConnState::Idle { stream, .. } | ConnState::Connecting { stream, .. } | ConnState::Busy { stream, .. } => {
                stream
            }
            ConnState::Closed => return,
        };
        conn.state = ConnState::Idle {
            stream,
            since_ms: now_ms,
        };
        let ConnState::Idle { stream, .. } = &mut conn.state else {
            return;
        };
        if set_interest(registry, stream, token, &mut conn.interest, Interest::READABLE).is_err() {
            self.close(registry, slot);
        }
        self.pump(registry, now_ms, done);
    }

    /// An idle connection is readable: the server closed it (dropped quietly; a new one is
    /// opened when needed) or sent bytes nobody asked for (closed: they cannot be matched).
    fn on_idle_event(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut Vec<Completion>) {
        let conn = &mut self.conns[slot];
        let ConnState::Idle { stream, .. } = &mut conn.state else {
            return;
        };
        let (n, end) = conn.read.fill_from(stream);
        if n > 0 || end != ReadEnd::WouldBlock {
            self.close(registry, slot);
            // Queued requests (if any) may now open a replacement.
            self.pump(registry, now_ms, done);
        }
    }

    /// A busy connection: writes what is pending, reads, and frames the answer.
    fn on_busy_event(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut Vec<Completion>) {
        let write_result = self.flush(registry, slot);
        let ConnState::Busy { job, written, .. } = self.conns[slot].state else {
            return;
        };
        // Read even after a failed write: the server may have answered, then closed.
        match self.read_answer(slot) {
            ReadResult::Answer(response, reusable) => {
                let outcome = self.outcome(job.call, response);
                done.push(self.completion(job, outcome));
                let reusable = reusable && write_result.is_ok() && self.conns[slot].write.pending() == 0;
                if reusable {
                    self.become_idle(registry, now_ms, slot, done);
                } else {
                    self.close(registry, slot);
                    self.pump(registry, now_ms, done);
                }
            }
            ReadResult::Failed => {
                self.close(registry, slot);
                done.push(self.completion(job, Outcome::Failed { written }));
                self.pump(registry, now_ms, done);
            }
            ReadResult::Pending => {
                if let Err(written) = write_result {
                    self.close(registry, slot);
                    done.push(self.completion(job, Outcome::Failed { written }));
                    self.pump(registry, now_ms, done);
                }
            }
        }
    }

    /// Reads the busy `slot` until `WouldBlock` and frames its answer. Interim 1xx answers
    /// are skipped. An answer followed by more bytes (we never pipeline) or by the end of
    /// the connection is still reported, with the connection marked not reusable.
    fn read_answer(&mut self, slot: usize) -> ReadResult {
        let conn = &mut self.conns[slot];
        let ConnState::Busy { stream, .. } = &mut conn.state else {
            return ReadResult::Pending;
        };
        loop {
            let (_, end) = conn.read.fill_from(stream);
            loop {
                match parse_response(conn.read.bytes(), false, &mut self.body) {
                    ParseResponse::Complete(r) if (100..200).contains(&r.status) && r.status != 101 => {
                        conn.read.consume(r.consumed);
                    }
                    ParseResponse::Complete(r) => {
                        conn.read.consume(r.consumed);
                        let reusable =
                            r.keep_alive && r.status != 101 && conn.read.is_empty() && end == ReadEnd::WouldBlock;
                        return ReadResult::Answer(r, reusable);
                    }
                    ParseResponse::Partial => break,
                    ParseResponse::Invalid(_) => return ReadResult::Failed,
                }
            }
            match end {
                ReadEnd::WouldBlock => return ReadResult::Pending,
                // A full buffer always frames (Complete or Invalid) unless a 1xx was just
                // consumed, which made room: read on.
                ReadEnd::Full => {}
                ReadEnd::Closed => {
                    return match parse_response(conn.read.bytes(), true, &mut self.body) {
                        ParseResponse::Complete(r) => ReadResult::Answer(r, false),
                        _ => ReadResult::Failed,
                    };
                }
            }
        }
    }

    /// The outcome of a complete answer to `call`, its body (in `self.body`) read when it
    /// matters.
    fn outcome(&self, call: Call, response: Response) -> Outcome {
        let ok = response.status == 200;
        let found = match call {
            Call::Lookup { id } if ok => parse_lookup(&self.body)
                .ok()
                .filter(|a| !matches!(a.id, Some(got) if got != id)),
            _ => None,
        };
        let health = match call {
            // The official processor answers 503 with the same body while it is failing.
            Call::Health if ok || response.status == 503 => parse_health(&self.body).ok(),
            _ => None,
        };
        Outcome::Answered {
            status: response.status,
            requested_at_ms: found.map(|a| a.requested_at_ms),
            amount_cents: found.and_then(|a| a.cents),
            health,
            retry_after_s: response.retry_after_s,
        }
    }

    /// Withdraws `request` if it is here; its outcome as [`Upstream::cancel`] documents.
    fn cancel(&mut self, registry: &Registry, request: RequestId) -> Option<Outcome> {
        if let Some(at) = self.queue.iter().position(|j| j.request == request) {
            self.queue.remove(at);
            return Some(Outcome::Failed { written: false });
        }
        for slot in 0..self.conns.len() {
            match &mut self.conns[slot].state {
                ConnState::Connecting { job, .. } if job.is_some_and(|j| j.request == request) => {
                    *job = None;
                    return Some(Outcome::Failed { written: false });
                }
                ConnState::Busy { job, written, .. } if job.request == request => {
                    let written = *written;
                    self.close(registry, slot);
                    return Some(Outcome::Failed { written });
                }
                _ => {}
            }
        }
        None
    }

    /// Resolution, connect timeouts, idle expiry, then queued requests.
    fn tick(&mut self, registry: &Registry, now_ms: u64, done: &mut Vec<Completion>) {
        self.poll_lookup(now_ms);
        for slot in 0..self.conns.len() {
            match &self.conns[slot].state {
                ConnState::Connecting { deadline_ms, job, .. } if now_ms >= *deadline_ms => {
                    let job = *job;
                    self.close(registry, slot);
                    if let Some(job) = job {
                        done.push(self.completion(job, Outcome::Failed { written: false }));
                    }
                    self.connect_failed(now_ms);
                    self.shed_queue(done);
                }
                ConnState::Idle { since_ms, .. } if now_ms.saturating_sub(*since_ms) >= IDLE_MAX_MS => {
                    self.close(registry, slot);
                }
                _ => {}
            }
        }
        self.pump(registry, now_ms, done);
    }

    /// Takes a finished lookup's answer, or starts the next attempt when its time has come.
    fn poll_lookup(&mut self, now_ms: u64) {
        match &self.resolution {
            Resolution::Literal | Resolution::Settled { .. } => {}
            Resolution::Waiting {
                retry_at_ms,
                backoff_ms,
            } => {
                if now_ms >= *retry_at_ms {
                    self.resolution = start_lookup(&self.url, *backoff_ms, now_ms);
                }
            }
            Resolution::Running { answer, backoff_ms } => {
                let addresses = match answer.try_recv() {
                    Err(mpsc::TryRecvError::Empty) => return,
                    Ok(Ok(addresses)) => addresses,
                    // A failed lookup, or a helper thread that died without answering.
                    Ok(Err(_)) | Err(mpsc::TryRecvError::Disconnected) => Vec::new(),
                };
                // IPv4 first: docker's embedded DNS answers with it, and a server bound to
                // 127.0.0.1 is not reachable at `localhost`'s ::1.
                match addresses.iter().find(|a| a.is_ipv4()).or(addresses.first()) {
                    Some(&found) => {
                        if self.address != Some(found) {
                            // A new address is worth trying at once, backoff or not.
                            self.reconnect_at_ms = now_ms;
                        }
                        self.address = Some(found);
                        self.resolution = Resolution::Settled { at_ms: now_ms };
                    }
                    None => {
                        self.resolution = Resolution::Waiting {
                            retry_at_ms: now_ms + backoff_ms,
                            backoff_ms: (backoff_ms * 2).min(RESOLVE_BACKOFF_MS.1),
                        };
                    }
                }
            }
        }
    }

    fn next_deadline(&self, now_ms: u64) -> Option<u64> {
        let lookup = match self.resolution {
            Resolution::Running { .. } => Some(now_ms + RESOLVE_POLL_MS),
            Resolution::Waiting { retry_at_ms, .. } => Some(retry_at_ms),
            Resolution::Literal | Resolution::Settled { .. } => None,
        };
        let connects = self.conns.iter().filter_map(|c| match c.state {
            ConnState::Connecting { deadline_ms, .. } => Some(deadline_ms),
            _ => None,
        });
        // Queued requests waiting out a connect backoff with a slot free for them. (Without
        // a backoff, `pump` has already used every free slot it may.)
        let backoff = (!self.queue.is_empty()
            && self.address.is_some()
            && self.reconnect_at_ms > now_ms
            && self.conns.iter().any(|c| matches!(c.state, ConnState::Closed)))
        .then_some(self.reconnect_at_ms);
        lookup.into_iter().chain(connects).chain(backoff).min()
    }

    fn stats(&self) -> PoolStats {
        let count = |f: fn(&ConnState) -> bool| self.conns.iter().filter(|c| f(&c.state)).count();
        let idle = count(|s| matches!(s, ConnState::Idle { .. }));
        let busy = count(|s| matches!(s, ConnState::Busy { .. }));
        PoolStats {
            open: idle + busy,
            idle,
            busy,
            connecting: count(|s| matches!(s, ConnState::Connecting { .. })),
            queued: self.queue.len(),
            address: self.address,
            resolving: matches!(self.resolution, Resolution::Running { .. } | Resolution::Waiting { .. }),
            connect_failures: self.failures,
        }
    }
}

/// Registers `stream` for `want`, or re-registers it, unless that is already its interest.
fn set_interest(
    registry: &Registry,
    stream: &mut TcpStream,
    token: Token,
    current: &mut Option<Interest>,
    want: Interest,
) -> io::Result<()> {
    match *current {
        Some(have) if have == want => return Ok(()),
        Some(_) => registry.reregister(stream, token, want)?,
        None => registry.register(stream, token, want)?,
    }
    *current = Some(want);
    Ok(())
}

/// Starts looking `url`'s host up on a helper thread (`ToSocketAddrs` blocks, so never on
/// the loop). A thread that cannot be spawned counts as a failed lookup, retried later.
fn start_lookup(url: &ProcessorUrl, backoff_ms: u64, now_ms: u64) -> Resolution {
    let (tx, rx) = mpsc::channel();
    let host = url.host.clone();
    let port = url.port;
    let spawned = std::thread::Builder::new().name("payrelay-dns".into()).spawn(move || {
        let found = (host.as_str(), port).to_socket_addrs().map(Iterator::collect);
        // The pool may be gone by now; nobody to tell then.
        let _ = tx.send(found);
    });
    match spawned {
        Ok(_) => Resolution::Running { answer: rx, backoff_ms },
        Err(_) => Resolution::Waiting {
            retry_at_ms: now_ms + backoff_ms,
            backoff_ms: (backoff_ms * 2).min(RESOLVE_BACKOFF_MS.1),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(mono_ms: u64) -> Now {
        Now { mono_ms, wall_ms: 0 }
    }

    fn upstream(url: &str, size: usize, connect_timeout_ms: u64) -> Upstream {
        let config = UpstreamConfig {
            urls: [url.to_string(), "http://127.0.0.1:9".to_string()],
            pool_size: [size, 1],
            connect_timeout_ms,
        };
        Upstream::new(config, 1000).unwrap()
    }

    fn failed(request: RequestId, written: bool) -> Completion {
        Completion {
            request,
            processor: Processor::Default,
            outcome: Outcome::Failed { written },
        }
    }

    /// The clock is an argument, so the timeout path runs without waiting: a connect that
    /// is never polled times out at its deadline, backs off, then one probe reconnects.
    #[test]
    fn connect_timeout_backoff_and_probe() {
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut up = upstream(&format!("http://{}", listener.local_addr().unwrap()), 2, 100);
        let mut done = Vec::new();

        up.submit(registry, at(0), Processor::Default, 1, Call::Health);
        assert_eq!(up.stats(Processor::Default).connecting, 1);
        assert_eq!(up.next_deadline(), Some(100));
        up.tick(registry, at(99), &mut done);
        assert!(done.is_empty());
        up.tick(registry, at(100), &mut done);
        assert_eq!(done, [failed(1, false)]);
        let stats = up.stats(Processor::Default);
        assert_eq!((stats.connecting, stats.connect_failures), (0, 1));

        // During the backoff requests queue, and the loop is told when it ends.
        up.submit(registry, at(120), Processor::Default, 2, Call::Health);
        up.submit(registry, at(120), Processor::Default, 3, Call::Health);
        assert_eq!(up.stats(Processor::Default).queued, 2);
        assert_eq!(up.next_deadline(), Some(100 + CONNECT_BACKOFF_MS.0));
        // After a failure only one connect probes, though two requests wait.
        up.tick(registry, at(150), &mut done);
        let stats = up.stats(Processor::Default);
        assert_eq!((stats.connecting, stats.queued), (1, 1));
        assert_eq!(up.next_deadline(), Some(250));

        // A second timeout doubles the backoff, and fails the request still queued: with no
        // connection open or opening, it would only wait for the dispatcher to give up.
        done.clear();
        up.tick(registry, at(250), &mut done);
        assert_eq!(done, [failed(2, false), failed(3, false)]);
        assert_eq!(up.stats(Processor::Default).queued, 0);
        assert_eq!(up.cancel(registry, 3), None);
        assert_eq!(up.next_deadline(), None);
    }

    #[test]
    fn backoff_is_capped() {
        let mut up = upstream("http://127.0.0.1:1", 1, 100);
        let pool = &mut up.pools[0];
        for _ in 0..20 {
            pool.connect_failed(0);
        }
        assert_eq!(pool.reconnect_at_ms, CONNECT_BACKOFF_MS.1);
        assert_eq!(pool.failures, 20);
        // A literal is never looked up, however many failures.
        assert!(matches!(pool.resolution, Resolution::Literal));
    }

    #[test]
    fn names_resolve_on_a_helper_thread_and_again_after_failures() {
        let mut up = upstream("http://localhost:8080", 1, 100);
        assert!(up.stats(Processor::Default).resolving);
        // While the lookup runs the loop is asked to come back soon.
        assert_eq!(up.next_deadline(), Some(RESOLVE_POLL_MS));
        let pool = &mut up.pools[0];
        let started = std::time::Instant::now();
        while !matches!(pool.resolution, Resolution::Settled { .. }) {
            assert!(started.elapsed().as_secs() < 5, "localhost never resolved");
            std::thread::sleep(std::time::Duration::from_millis(2));
            pool.poll_lookup(10);
        }
        assert_eq!(pool.address, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(pool.next_deadline(10), None);

        // Failures in a row trigger a new lookup, but not within RERESOLVE_EVERY_MS.
        for _ in 0..RERESOLVE_AFTER_FAILURES {
            pool.connect_failed(20);
        }
        assert!(matches!(pool.resolution, Resolution::Settled { at_ms: 10 }));
        pool.connect_failed(10 + RERESOLVE_EVERY_MS);
        assert!(matches!(pool.resolution, Resolution::Running { .. }));
        // Meanwhile the known address stays in use.
        assert!(pool.address.is_some());
    }

    #[test]
    fn failed_lookups_are_retried_with_capped_backoff() {
        let mut up = upstream("http://localhost:8080", 1, 100);
        let pool = &mut up.pools[0];
        // Stand in for a lookup that failed: a channel whose sender is gone.
        let (_, rx) = mpsc::channel();
        pool.resolution = Resolution::Running {
            answer: rx,
            backoff_ms: RESOLVE_BACKOFF_MS.0,
        };
        pool.poll_lookup(0);
        assert!(matches!(
            pool.resolution,
            Resolution::Waiting {
                retry_at_ms: 100,
                backoff_ms: 200
            }
        ));
        assert_eq!(pool.next_deadline(0), Some(100));
        pool.poll_lookup(99);
        assert!(matches!(pool.resolution, Resolution::Waiting { .. }));
        pool.poll_lookup(100);
        assert!(matches!(pool.resolution, Resolution::Running { backoff_ms: 200, .. }));
        // The wait doubles up to its cap.
        let mut now = 100;
        for _ in 0..10 {
            let (_, rx) = mpsc::channel();
            let Resolution::Running { backoff_ms, .. } = pool.resolution else {
                panic!()
            };
            pool.resolution = Resolution::Running { answer: rx, backoff_ms };
            pool.poll_lookup(now);
            let Resolution::Waiting { retry_at_ms, .. } = pool.resolution else {
                panic!()
            };
            assert!(retry_at_ms - now <= RESOLVE_BACKOFF_MS.1);
            now = retry_at_ms;
            pool.poll_lookup(now);
        }
        assert!(matches!(pool.resolution, Resolution::Running { backoff_ms: 2_000, .. }));
    }

    #[test]
    fn foreign_and_stale_tokens_are_ignored() {
        let poll = mio::Poll::new().unwrap();
        let mut up = upstream("http://127.0.0.1:1", 2, 100);
        let mut done = Vec::new();
        for t in [0, 999, 1000, 1001, 1002, 1003, usize::MAX] {
            up.io_event(poll.registry(), at(0), Token(t), true, true, &mut done);
        }
        assert!(done.is_empty());
        assert!(up.owns(Token(1002)) && !up.owns(Token(1003)) && !up.owns(Token(999)));
    }

    #[test]
    fn a_refused_submit_is_parked_until_the_next_call() {
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry();
        // TCP to the broadcast address fails inside connect(), so inside submit.
        let mut up = upstream("http://255.255.255.255:80", 1, 100);
        up.submit(registry, at(5), Processor::Default, 7, Call::Health);
        assert_eq!(up.stats(Processor::Default).connect_failures, 1);
        // The loop must not sleep on a parked completion.
        assert_eq!(up.next_deadline(), Some(5));
        let mut done = Vec::new();
        up.drain_completions(&mut done);
        assert_eq!(done, [failed(7, false)]);
        assert_eq!(up.next_deadline(), None);
        up.submit(registry, at(10), Processor::Default, 8, Call::Health);
        done.clear();
        up.tick(registry, at(10 + CONNECT_BACKOFF_MS.0), &mut done);
        assert_eq!(done, [failed(8, false)]);
    }
}
