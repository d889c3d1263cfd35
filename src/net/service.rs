//! What the event loop offers the application and asks of it: the [`Service`] trait the
//! loop calls, the narrow context [`Cx`] a call receives, and how a request is answered
//! ([`Reply`]). The connection protocol and the loop both build on this; it builds on
//! neither.

pub use mio::{Registry, Token};

use crate::base::clock::Now;
use crate::http::Request;
use crate::net::timers::Timers;

/// First token a service may use for sockets it registers itself (upstream connections).
pub const SERVICE_TOKEN_BASE: usize = 1 << 30;

/// A connection's address in the slab plus the generation it was accepted with, so an answer
/// for a connection that has since closed (and whose slot was reused) is recognised and
/// dropped instead of reaching a stranger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnRef {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// How a service answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The whole response was appended to the output buffer.
    Written,
    /// The whole response was appended; close the connection once it is written (a server
    /// ending keep-alive on its own, as real ones do).
    WrittenThenClose,
    /// The answer comes later through [`Cx::respond`]; later requests on the same connection
    /// wait, so answers stay in request order.
    Deferred,
}

/// What a service can do besides answering: read the loop's clock, arm timers, answer a
/// deferred request, and register sockets of its own. It holds no connection: a deferred
/// answer is queued here and the loop hands it to its connection after the callback.
pub struct Cx<'a> {
    /// The clock as read at the start of this loop turn.
    pub now: Now,
    pub(crate) timers: &'a mut Timers,
    pub(crate) answers: &'a mut DeferredAnswers,
    pub(crate) registry: &'a Registry,
}

impl Cx<'_> {
    /// Arms a timer at monotonic `deadline_ms`; [`Service::timer`] receives `key` then.
    pub fn arm(&mut self, deadline_ms: u64, key: u64) {
        self.timers.arm(deadline_ms, key);
    }

    /// Answers the request `conn` is waiting on with what `write` appends. The answer is
    /// dropped when the connection has closed meanwhile or waits for none.
    pub fn respond(&mut self, conn: ConnRef, write: impl FnOnce(&mut Vec<u8>)) {
        self.answers.push(conn, false, write);
    }

    /// Like [`Cx::respond`], then closes the connection once the answer is written.
    pub fn respond_and_close(&mut self, conn: ConnRef, write: impl FnOnce(&mut Vec<u8>)) {
        self.answers.push(conn, true, write);
    }

    /// The poll registry, for a service's own sockets (tokens from [`SERVICE_TOKEN_BASE`]).
    pub fn registry(&self) -> &Registry {
        self.registry
    }
}

/// Deferred answers given during callbacks, in order, their bytes side by side in one buffer.
#[derive(Default)]
pub(crate) struct DeferredAnswers {
    bytes: Vec<u8>,
    /// Each answer: its connection, whether to close after it, where its bytes end.
    entries: Vec<(ConnRef, bool, usize)>,
}

impl DeferredAnswers {
    fn push(&mut self, conn: ConnRef, close: bool, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.bytes);
        self.entries.push((conn, close, self.bytes.len()));
    }

    /// Whether no answer waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hands every queued answer, in order, to `deliver(conn, close, bytes)`, and empties the
    /// queue.
    pub(crate) fn drain(&mut self, mut deliver: impl FnMut(ConnRef, bool, &[u8])) {
        let mut start = 0;
        for &(conn, close, end) in &self.entries {
            deliver(conn, close, &self.bytes[start..end]);
            start = end;
        }
        self.entries.clear();
        self.bytes.clear();
    }
}

/// The application on the loop.
pub trait Service {
    /// Answers one complete request from `conn`: appends the whole response to `out` and
    /// returns [`Reply::Written`], or returns [`Reply::Deferred`] and calls [`Cx::respond`] later.
    fn request(&mut self, cx: &mut Cx<'_>, conn: ConnRef, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Reply;

    /// A timer armed with [`Cx::arm`] is due.
    fn timer(&mut self, _cx: &mut Cx<'_>, _key: u64) {}

    /// Readiness for a socket the service registered (token ≥ [`SERVICE_TOKEN_BASE`]). No
    /// flags: spurious events happen and an error may come flagged as neither, so the
    /// service finds out for itself (a read or write stops at `WouldBlock`).
    fn io_event(&mut self, _cx: &mut Cx<'_>, _token: Token) {}

    /// Once per loop turn, after events and timers, before sleeping.
    fn before_sleep(&mut self, _cx: &mut Cx<'_>) {}

    /// The monotonic instant by which [`Service::before_sleep`] must run again even if no
    /// event arrives (the poll sleeps no longer than that). `None`: no such need.
    fn next_deadline(&self) -> Option<u64> {
        None
    }

    /// The loop was asked to stop (with a stop timeout, the loop's `set_stop_timeout`) and
    /// has closed its listeners: take on no new work, finish what is under way.
    fn stop(&mut self, _cx: &mut Cx<'_>) {}

    /// Whether the work under way when [`Service::stop`] was called has ended; the stopping
    /// loop ends once this holds and every connection has closed, or at the stop timeout.
    fn drained(&self) -> bool {
        true
    }
}
