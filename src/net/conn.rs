//! One inbound connection: its socket, its buffers, and the state machine that frames
//! requests, hands them to the [`Service`] in order, writes the answers and decides when the
//! connection ends.
//!
//! Rules it keeps: answers leave in request order (a deferred answer holds back the requests
//! pipelined behind it); a framing error is answered and then the connection closes, since the
//! next request's start is unknown; a client that stops reading its answers stops being read
//! (backpressure) instead of growing our buffers; idle and half-sent connections are closed by
//! the sweep.

use std::io;

use mio::{Interest, Registry, Token};

use crate::base::clock::Now;
use crate::http::request::{may_complete_head, MAX_HEADERS, MAX_REQUEST_BYTES};
use crate::http::{parse_request, response, Need, Parse, Status};
use crate::net::buf::{ReadBuf, ReadEnd, WriteBuf, WriteEnd};
use crate::net::listen::Stream;
use crate::net::service::{ConnRef, Cx, Reply, Service};

/// Stop framing new requests while this many answer bytes wait to be written.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Timeouts applied by the sweep, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// A connection with nothing buffered and nothing pending is closed after this long. It
    /// must exceed the load balancer's upstream keep-alive timeout, or the balancer may send
    /// a request on a connection we are closing.
    pub idle_timeout_ms: u64,
    /// A request that has started but not finished arriving, or answers the client will not
    /// read, are given up after this long.
    pub request_timeout_ms: u64,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            idle_timeout_ms: 120_000,
            request_timeout_ms: 10_000,
        }
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading requests and answering them.
    Serving,
    /// The loop is stopping: the request whose bytes have arrived is still answered, with
    /// `Connection: close` so that the client (nginx) sends nothing more here, then the
    /// connection finishes. With nothing received, it closes at once.
    Stopping,
    /// The service answers the current request later; framing is paused. `close` remembers
    /// that the request asked to close the connection after its answer.
    Awaiting { close: bool },
    /// No further request will be served: write what is buffered, then close.
    Finishing,
}

/// One client connection.
pub struct Conn {
    stream: Stream,
    rbuf: ReadBuf,
    wbuf: WriteBuf,
    phase: Phase,
    /// The peer shut down its sending side; answer what it sent, then close.
    peer_done: bool,
    /// The last read stopped at the buffer cap, so the socket may hold more than any event
    /// will announce (readiness is edge-triggered).
    unread: bool,
    /// What the buffered partial request lacks, so it is framed again only once that may
    /// have arrived; a client sending one byte at a time then costs a scan per byte, not a
    /// full parse per byte.
    need: Option<Need>,
    /// Bytes of a partial head already checked for a line feed.
    scanned: usize,
    registered_writable: bool,
    last_active_ms: u64,
    limits: ConnLimits,
}

impl Conn {
    /// Wraps a freshly accepted socket.
    pub fn new(stream: Stream, limits: ConnLimits, now: Now) -> Conn {
        Conn {
            stream,
            rbuf: ReadBuf::new(MAX_REQUEST_BYTES),
            wbuf: WriteBuf::new(),
            phase: Phase::Serving,
            peer_done: false,
            unread: false,
            need: None,
            scanned: 0,
            registered_writable: false,
            last_active_ms: now.mono_ms,
            limits,
        }
    }

    /// Registers for readability (writability is added only after a short write).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(self.stream.source(), token, Interest::READABLE)
    }

    /// Removes the socket from the poll before it is dropped.
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(self.stream.source());
    }

    /// Asks for WRITABLE only while answers are stuck in the buffer, and re-registers only
    /// when that changes.
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let want = self.wbuf.pending() > 0;
        if want != self.registered_writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(self.stream.source(), token, interest)?;
            self.registered_writable = want;
        }
        Ok(())
    }

    /// Handles readiness: reads, frames and answers requests, writes. Returns false when the
    /// connection must close now.
    pub fn on_ready<S: Service>(
        &mut self,
        cx: &mut Cx<'_>,
        service: &mut S,
        me: ConnRef,
        readable: bool,
        writable: bool,
    ) -> bool {
        let now = cx.now;
        if writable && !self.flush(now) {
            return false;
        }
        let mut read = readable || self.unread;
        loop {
            if read && !self.peer_done && !self.rbuf.is_full() {
                let (n, end) = self.rbuf.fill_from(&mut self.stream);
                if n > 0 {
                    self.last_active_ms = now.mono_ms;
                }
                self.unread = end == ReadEnd::Full;
                if end == ReadEnd::Closed {
                    self.peer_done = true;
                }
            }
            self.serve(cx, service, me);
            if !self.flush(now) {
                return false;
            }
            // Framing consumed bytes from a full buffer: the socket may hold more.
            read = self.unread
                && !self.peer_done
                && !self.rbuf.is_full()
                && matches!(self.phase, Phase::Serving | Phase::Stopping);
            if !read {
                break;
            }
        }
        self.keep_open()
    }

    /// Frames and answers buffered requests until one is incomplete, deferred or fatal, or
    /// until enough answers wait to be written.
    fn serve<S: Service>(&mut self, cx: &mut Cx<'_>, service: &mut S, me: ConnRef) {
        while matches!(self.phase, Phase::Serving | Phase::Stopping)
            && !self.rbuf.is_empty()
            && self.wbuf.pending() < WRITE_HIGH_WATER
        {
            let bytes = self.rbuf.bytes();
            match self.need {
                Some(Need::Total(total)) if bytes.len() < total => return,
                Some(Need::Head) if !may_complete_head(&bytes[self.scanned.min(bytes.len())..]) => {
                    self.scanned = bytes.len();
                    return;
                }
                _ => {}
            }
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let (used, reply, keep_alive) = match parse_request(bytes, &mut headers) {
                Parse::Complete(req, used) => {
                    let start = self.wbuf.out().len();
                    let reply = service.request(cx, me, &req, self.wbuf.out());
                    let stopping = self.phase == Phase::Stopping;
                    if stopping && req.keep_alive && reply == Reply::Written {
                        announce_close(self.wbuf.out(), start);
                    }
                    (used, reply, req.keep_alive && !stopping)
                }
                Parse::Partial(need) => {
                    self.need = Some(need);
                    self.scanned = bytes.len();
                    return;
                }
                Parse::Invalid(e) => {
                    response::error(self.wbuf.out(), e.status(), e.reason(), true);
                    self.phase = Phase::Finishing;
                    return;
                }
            };
            self.rbuf.consume(used);
            self.need = None;
            self.scanned = 0;
            self.phase = match (reply, keep_alive) {
                (Reply::Written, true) => Phase::Serving,
                (Reply::Written, false) | (Reply::WrittenThenClose, _) => Phase::Finishing,
                (Reply::Deferred, keep) => Phase::Awaiting { close: !keep },
            };
        }
    }

    /// Writes buffered answers. Returns false when the socket failed.
    fn flush(&mut self, now: Now) -> bool {
        if self.wbuf.pending() == 0 {
            return true;
        }
        match self.wbuf.flush_to(&mut self.stream) {
            WriteEnd::Drained | WriteEnd::WouldBlock => {
                self.last_active_ms = now.mono_ms;
                true
            }
            WriteEnd::Closed => false,
        }
    }

    /// Writes what can be written now, ignoring the outcome (used at shutdown).
    pub fn flush_once(&mut self, now: Now) {
        let _ = self.flush(now);
    }

    /// Whether the connection stays open after this turn.
    fn keep_open(&self) -> bool {
        match self.phase {
            Phase::Finishing => self.wbuf.pending() > 0,
            Phase::Awaiting { .. } => true,
            // The peer will send nothing more: whatever partial request remains can never
            // complete, so close once the answers are out.
            Phase::Serving => !self.peer_done || self.wbuf.pending() > 0,
            // Only a request already begun is waited for.
            Phase::Stopping => self.wbuf.pending() > 0 || (!self.rbuf.is_empty() && !self.peer_done),
        }
    }

    /// The loop is stopping: a connection waiting for nothing closes, one in the middle of a
    /// request answers it and then closes (see `Phase::Stopping`), one waiting for a
    /// deferred answer closes after it. Takes effect at the next [`Conn::on_ready`], which
    /// the caller runs at once with `readable` set, so that a request already in the socket
    /// is read and answered rather than cut off.
    pub fn stop(&mut self) {
        self.phase = match self.phase {
            Phase::Serving => Phase::Stopping,
            Phase::Awaiting { .. } => Phase::Awaiting { close: true },
            other => other,
        };
    }

    /// Appends a deferred answer and returns to serving (or finishing, when the request asked
    /// to close or `close_after` is set). False when this connection was not waiting for one.
    pub fn answer_deferred(&mut self, now: Now, close_after: bool, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        let Phase::Awaiting { close } = self.phase else {
            return false;
        };
        write(self.wbuf.out());
        self.phase = if close || close_after {
            Phase::Finishing
        } else {
            Phase::Serving
        };
        self.last_active_ms = now.mono_ms;
        self.unread = true;
        true
    }

    /// Applies the timeouts. Returns false when the connection must close now.
    pub fn on_sweep(&mut self, now: Now) -> bool {
        let quiet = now.mono_ms.saturating_sub(self.last_active_ms);
        match self.phase {
            Phase::Awaiting { .. } => true,
            Phase::Finishing => quiet < self.limits.request_timeout_ms,
            Phase::Serving | Phase::Stopping if self.wbuf.pending() > 0 || !self.rbuf.is_empty() => {
                if quiet < self.limits.request_timeout_ms {
                    return true;
                }
                if self.wbuf.pending() == 0 {
                    // Best effort: tell a slow client why it is being dropped.
                    response::error(
                        self.wbuf.out(),
                        Status::REQUEST_TIMEOUT,
                        "request not completed in time",
                        true,
                    );
                    let _ = self.wbuf.flush_to(&mut self.stream);
                }
                false
            }
            Phase::Serving => quiet < self.limits.idle_timeout_ms,
            Phase::Stopping => false,
        }
    }
}

/// Adds `Connection: close` to the response that starts at `start` in `out`, right after its
/// status line (the position no header depends on). A response with no status line there is
/// left alone.
fn announce_close(out: &mut Vec<u8>, start: usize) {
    const HEADER: &[u8] = b"Connection: close\r\n";
    if let Some(eol) = out[start..].windows(2).position(|w| w == b"\r\n") {
        let at = start + eol + 2;
        out.splice(at..at, HEADER.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_close_goes_after_the_status_line_of_the_last_response() {
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
        let start = out.len();
        out.extend_from_slice(response::ACCEPTED);
        announce_close(&mut out, start);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let mut nothing = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        let end = nothing.len();
        announce_close(&mut nothing, end);
        assert_eq!(nothing, b"HTTP/1.1 200 OK\r\n\r\n");
    }
}
