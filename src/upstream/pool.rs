//! One processor's pool: a queue of requests and up to `size` keep-alive connections, as a
//! state machine over [`Outbound`] sockets (see the module above for a connection's life).

use std::collections::VecDeque;

use crate::base::payment::Processor;
use crate::dispatch::{Call, Completion, Outcome, RequestId};
use crate::http::client::{parse_response, ParseResponse, Response, MAX_RESPONSE_BYTES};
use crate::net::buf::{ReadBuf, ReadEnd, WriteBuf, WriteEnd};
use crate::net::outbound::{Outbound, Want};
use crate::net::service::{Registry, Token};
use crate::upstream::resolver::Resolver;
use crate::upstream::wire::{parse_health, parse_lookup, ProcessorUrl, RequestTemplates};
use crate::upstream::PoolStats;

/// First and largest wait before connecting again after a refused or timed-out connect.
pub(super) const CONNECT_BACKOFF_MS: (u64, u64) = (50, 1_000);
/// Consecutive connect failures after which the name is looked up again.
pub(super) const RERESOLVE_AFTER_FAILURES: u32 = 3;
/// An idle connection unused for this long is checked (one `peek`) before it carries a
/// request: the server may have closed it and its FIN may not have been read yet, and a
/// request written there would end ambiguous for no reason.
const IDLE_CHECK_AFTER_MS: u64 = 1_000;
/// An idle connection unused for this long is closed by us, well before the server's own
/// keep-alive timeout (Kestrel's default is 130 s) could race a request on it.
const IDLE_MAX_MS: u64 = 60_000;

/// A request waiting for, or travelling on, a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Job {
    pub(super) request: RequestId,
    pub(super) call: Call,
}

/// Where a connection stands.
enum ConnState {
    /// No socket; the slot is free.
    Closed,
    /// A non-blocking connect is under way, for the request it will carry first, if any
    /// (none when that request was cancelled meanwhile).
    Connecting {
        stream: Outbound,
        deadline_ms: u64,
        job: Option<Job>,
    },
    /// Connected, no request on it, since `since_ms`.
    Idle { stream: Outbound, since_ms: u64 },
    /// Carrying `job`; `written` once any byte of it was accepted by the socket.
    Busy { stream: Outbound, job: Job, written: bool },
}

/// One connection slot: its state, and buffers kept across connections.
struct ConnSlot {
    state: ConnState,
    read: ReadBuf,
    write: WriteBuf,
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
pub(super) struct Pool {
    pub(super) processor: Processor,
    templates: RequestTemplates,
    pub(super) first_token: usize,
    connect_timeout_ms: u64,
    resolver: Resolver,
    conns: Vec<ConnSlot>,
    pub(super) queue: VecDeque<Job>,
    /// Consecutive connect failures; while nonzero, one connect at a time probes.
    pub(super) failures: u32,
    /// No connect starts before this.
    pub(super) reconnect_at_ms: u64,
    /// The wait after the next connect failure.
    backoff_ms: u64,
    /// The last start of queued requests stopped for the connect backoff alone: the loop
    /// is to come back when it ends.
    waiting_out_backoff: bool,
    /// Scratch for decoded answer bodies.
    body: Vec<u8>,
}

impl Pool {
    pub(super) fn new(
        processor: Processor,
        url: ProcessorUrl,
        size: usize,
        first_token: usize,
        connect_timeout_ms: u64,
    ) -> Pool {
        let conns = (0..size)
            .map(|_| ConnSlot {
                state: ConnState::Closed,
                read: ReadBuf::new(MAX_RESPONSE_BYTES),
                write: WriteBuf::new(),
            })
            .collect();
        Pool {
            processor,
            templates: RequestTemplates::new(&url),
            resolver: Resolver::new(&url),
            first_token,
            connect_timeout_ms,
            conns,
            queue: VecDeque::new(),
            failures: 0,
            reconnect_at_ms: 0,
            backoff_ms: CONNECT_BACKOFF_MS.0,
            waiting_out_backoff: false,
            body: Vec::new(),
        }
    }

    /// How many connections this pool may open; its tokens are `first_token..+size`.
    pub(super) fn size(&self) -> usize {
        self.conns.len()
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
    pub(super) fn start_queued(&mut self, registry: &Registry, now_ms: u64, done: &mut VecDeque<Completion>) {
        self.waiting_out_backoff = false;
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
                if self.resolver.failed() {
                    self.shed_queue(done);
                }
                self.waiting_out_backoff = self.resolver.address().is_some()
                    && now_ms < self.reconnect_at_ms
                    && self.conns.iter().any(|c| matches!(c.state, ConnState::Closed));
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
            let alive = idle_ms < IDLE_MAX_MS && (idle_ms < IDLE_CHECK_AFTER_MS || stream.is_quiet());
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
        if self.resolver.address().is_none() || now_ms < self.reconnect_at_ms {
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
    fn open(
        &mut self,
        registry: &Registry,
        now_ms: u64,
        slot: usize,
        job: Option<Job>,
        done: &mut VecDeque<Completion>,
    ) {
        let Some(address) = self.resolver.address() else { return };
        let token = self.token(slot);
        let conn = &mut self.conns[slot];
        match Outbound::connect(registry, address, token) {
            Ok(stream) => {
                conn.state = ConnState::Connecting {
                    stream,
                    deadline_ms: now_ms + self.connect_timeout_ms,
                    job,
                };
            }
            Err(_) => {
                if let Some(job) = job {
                    done.push_back(self.completion(job, Outcome::Failed { written: false }));
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
    fn shed_queue(&mut self, done: &mut VecDeque<Completion>) {
        let carrier = self.conns.iter().any(|c| !matches!(c.state, ConnState::Closed));
        if carrier {
            return;
        }
        while let Some(job) = self.queue.pop_front() {
            done.push_back(self.completion(job, Outcome::Failed { written: false }));
        }
    }

    /// Counts a failed connect: backs off before the next one, and looks the name up again
    /// after several in a row.
    pub(super) fn connect_failed(&mut self, now_ms: u64) {
        self.failures = self.failures.saturating_add(1);
        self.reconnect_at_ms = now_ms + self.backoff_ms;
        self.backoff_ms = (self.backoff_ms * 2).min(CONNECT_BACKOFF_MS.1);
        if self.failures >= RERESOLVE_AFTER_FAILURES {
            self.resolver.refresh(now_ms);
        }
    }

    /// Writes `job`'s request on the connected `slot` (idle, or just connected) and makes it
    /// busy. A connection found dead before a byte went out is closed and `job` goes back
    /// to the head of the queue; one that dies after is reported. Callers pump the queue
    /// afterwards (a slot may have been freed).
    fn start(&mut self, registry: &Registry, slot: usize, job: Job, done: &mut VecDeque<Completion>) {
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
                done.push_back(self.completion(job, Outcome::Failed { written: true }));
            }
        }
    }

    /// Writes what the busy `slot` has pending and sets its interest: an answer, plus room
    /// to write only while bytes remain. `Err(written)` when the connection failed.
    fn flush(&mut self, registry: &Registry, slot: usize) -> Result<(), bool> {
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
            WriteEnd::Drained => Want::Read,
            WriteEnd::WouldBlock => Want::ReadWrite,
            WriteEnd::Closed => return Err(*written),
        };
        stream.want(registry, want).map_err(|_| *written)
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
        if let Some(stream) = stream {
            stream.close(registry);
        }
        let unread = conn.read.bytes().len();
        conn.read.consume(unread);
        conn.write.clear();
    }

    /// Readiness for `slot`. Handled whatever flags came, since spurious events happen and
    /// an error may arrive flagged as neither readable nor writable: each step below finds
    /// out for itself (a connect checks its status, reads and writes stop at `WouldBlock`).
    pub(super) fn on_event(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut VecDeque<Completion>) {
        match &self.conns[slot].state {
            ConnState::Closed => {}
            ConnState::Connecting { .. } => self.on_connect_event(registry, now_ms, slot, done),
            ConnState::Idle { .. } => self.on_idle_event(registry, now_ms, slot, done),
            ConnState::Busy { .. } => self.on_busy_event(registry, now_ms, slot, done),
        }
    }

    /// Finishes a connect ([`Outbound::finish_connect`]; not connected yet: keep waiting).
    /// Connected: the carried request is written, or the connection idles and takes the
    /// queue's head.
    fn on_connect_event(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut VecDeque<Completion>) {
        let ConnState::Connecting { stream, job, .. } = &mut self.conns[slot].state else {
            return;
        };
        let job = *job;
        match stream.finish_connect() {
            Ok(false) => {}
            Ok(true) => {
                self.failures = 0;
                self.backoff_ms = CONNECT_BACKOFF_MS.0;
                match job {
                    Some(job) => {
                        self.start(registry, slot, job, done);
                        self.start_queued(registry, now_ms, done);
                    }
                    None => self.become_idle(registry, now_ms, slot, done),
                }
            }
            Err(_) => {
                self.close(registry, slot);
                if let Some(job) = job {
                    done.push_back(self.completion(job, Outcome::Failed { written: false }));
                }
                self.connect_failed(now_ms);
                self.shed_queue(done);
            }
        }
    }

    /// Makes the connected `slot` idle (READABLE only, so a close by the server is seen),
    /// then lets it take the queue's head.
    fn become_idle(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut VecDeque<Completion>) {
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
        if stream.want(registry, Want::Read).is_err() {
            self.close(registry, slot);
        }
        self.start_queued(registry, now_ms, done);
    }

    /// An idle connection is readable: the server closed it (dropped quietly; a new one is
    /// opened when needed) or sent bytes nobody asked for (closed: they cannot be matched).
    fn on_idle_event(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut VecDeque<Completion>) {
        let conn = &mut self.conns[slot];
        let ConnState::Idle { stream, .. } = &mut conn.state else {
            return;
        };
        let (n, end) = conn.read.fill_from(stream);
        if n > 0 || end != ReadEnd::WouldBlock {
            self.close(registry, slot);
            // Queued requests (if any) may now open a replacement.
            self.start_queued(registry, now_ms, done);
        }
    }

    /// A busy connection: writes what is pending, reads, and frames the answer.
    fn on_busy_event(&mut self, registry: &Registry, now_ms: u64, slot: usize, done: &mut VecDeque<Completion>) {
        let write_result = self.flush(registry, slot);
        let ConnState::Busy { job, written, .. } = self.conns[slot].state else {
            return;
        };
        // Read even after a failed write: the server may have answered, then closed.
        match self.read_answer(slot) {
            ReadResult::Answer(response, reusable) => {
                let outcome = self.outcome(job.call, response);
                done.push_back(self.completion(job, outcome));
                let reusable = reusable && write_result.is_ok() && self.conns[slot].write.pending() == 0;
                if reusable {
                    self.become_idle(registry, now_ms, slot, done);
                } else {
                    self.close(registry, slot);
                    self.start_queued(registry, now_ms, done);
                }
            }
            ReadResult::Failed => {
                self.close(registry, slot);
                done.push_back(self.completion(job, Outcome::Failed { written }));
                self.start_queued(registry, now_ms, done);
            }
            ReadResult::Pending => {
                if let Err(written) = write_result {
                    self.close(registry, slot);
                    done.push_back(self.completion(job, Outcome::Failed { written }));
                    self.start_queued(registry, now_ms, done);
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

    /// Withdraws `request` if it is here; its outcome as [`Upstream::handle_cancel`]
    /// documents.
    pub(super) fn cancel(&mut self, registry: &Registry, request: RequestId) -> Option<Outcome> {
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
    pub(super) fn on_timeout(&mut self, registry: &Registry, now_ms: u64, done: &mut VecDeque<Completion>) {
        if self.resolver.poll(now_ms) {
            // A new address is worth trying at once, backoff or not.
            self.reconnect_at_ms = now_ms;
        }
        for slot in 0..self.conns.len() {
            match &self.conns[slot].state {
                ConnState::Connecting { deadline_ms, job, .. } if now_ms >= *deadline_ms => {
                    let job = *job;
                    self.close(registry, slot);
                    if let Some(job) = job {
                        done.push_back(self.completion(job, Outcome::Failed { written: false }));
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
        self.start_queued(registry, now_ms, done);
    }

    /// When [`Pool::on_timeout`] has work: a lookup to look at or retry, a connect timeout,
    /// or queued requests waiting out a connect backoff.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        let lookup = self.resolver.next_deadline();
        let connects = self.conns.iter().filter_map(|c| match c.state {
            ConnState::Connecting { deadline_ms, .. } => Some(deadline_ms),
            _ => None,
        });
        // Queued requests waiting out a connect backoff with a slot free for them. (Without
        // a backoff, `start_queued` has already used every free slot it may.)
        let backoff = (self.waiting_out_backoff && !self.queue.is_empty()).then_some(self.reconnect_at_ms);
        lookup.into_iter().chain(connects).chain(backoff).min()
    }

    pub(super) fn stats(&self) -> PoolStats {
        let count = |f: fn(&ConnState) -> bool| self.conns.iter().filter(|c| f(&c.state)).count();
        let idle = count(|s| matches!(s, ConnState::Idle { .. }));
        let busy = count(|s| matches!(s, ConnState::Busy { .. }));
        PoolStats {
            open: idle + busy,
            idle,
            busy,
            connecting: count(|s| matches!(s, ConnState::Connecting { .. })),
            queued: self.queue.len(),
            address: self.resolver.address(),
            resolving: self.resolver.resolving(),
            connect_failures: self.failures,
        }
    }
}
