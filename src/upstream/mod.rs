//! Per-processor pools of keep-alive HTTP/1.1 connections on the event loop: performs the
//! dispatcher's calls (payment, lookup, health) and reports how each one ended.
//!
//! # Model
//! One request per connection at a time: no pipelining, so a slow answer never holds up the
//! requests behind it, and a connection that fails names exactly one request as ambiguous.
//! Requests that find no idle connection wait in a FIFO per processor; connections are
//! opened lazily, up to the pool size, each one carrying the request that asked for it.
//! A pool's address comes from `resolver`: an IP literal, or a name looked up off the loop.
//!
//! # A connection's life (`pool`)
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
//! # Interface
//! Like the dispatcher it serves, [`Upstream`] is driven by inputs that carry `now` and
//! drained through outputs, in this order each loop turn:
//! 1. inputs: [`Upstream::handle_call`] and [`Upstream::handle_cancel`] (the dispatcher's
//!    actions), [`Upstream::handle_event`] (socket readiness), [`Upstream::handle_timeout`]
//!    (once the instant from [`Upstream::poll_timeout`] has come);
//! 2. outputs: [`Upstream::poll_completion`] until `None` — every request submitted ends in
//!    exactly one completion there, whichever input ended it (a refused connect inside
//!    `handle_call`, an answer, a timeout, a cancel); then [`Upstream::poll_timeout`] for
//!    when to call `handle_timeout` next.

mod pool;
mod resolver;
pub mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::base::clock::Now;
use crate::base::payment::Processor;
use crate::dispatch::{Call, Completion, RequestId};
use crate::net::service::{Registry, Token};
use crate::upstream::pool::{Job, Pool};
use crate::upstream::wire::{parse_url, UrlError};

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

/// Both processors' pools.
pub struct Upstream {
    pools: [Pool; 2],
    token_base: usize,
    /// Requests that ended, in the order they ended, for [`Upstream::poll_completion`].
    completions: VecDeque<Completion>,
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
            completions: VecDeque::new(),
        })
    }

    /// True when `token` belongs to one of this upstream's connections.
    pub fn owns(&self, token: Token) -> bool {
        (self.token_base..self.pools[1].first_token + self.pools[1].size()).contains(&token.0)
    }

    /// Starts one request to `processor`: written at once on an idle connection, or carried
    /// by a new connection (opened lazily, up to the pool size), or queued behind earlier
    /// requests until a connection is free. Never blocks. A failure met at once (a refused
    /// connect) is a completion like any other.
    pub fn handle_call(&mut self, registry: &Registry, now: Now, processor: Processor, request: RequestId, call: Call) {
        let pool = &mut self.pools[processor.index()];
        pool.queue.push_back(Job { request, call });
        pool.start_queued(registry, now.mono_ms, &mut self.completions);
    }

    /// Gives up on a request (the dispatcher's timeout); its completion follows, unless it
    /// is not known here (already completed). A queued request, or one whose connection is
    /// still connecting, ends `Failed{written:false}` (the connection goes on for the next
    /// request). One on the wire closes its connection, so a late answer can never be
    /// matched to another request, and ends `Failed{written}` with whether any byte of it
    /// was written (nearly always true).
    pub fn handle_cancel(&mut self, registry: &Registry, now: Now, request: RequestId) {
        for pool in &mut self.pools {
            if let Some(outcome) = pool.cancel(registry, request) {
                self.completions.push_back(Completion {
                    request,
                    processor: pool.processor,
                    outcome,
                });
                // A closed connection frees a slot for the queue.
                pool.start_queued(registry, now.mono_ms, &mut self.completions);
                return;
            }
        }
    }

    /// Readiness for one of this upstream's tokens (others are ignored, as are spurious
    /// events): finishes connects, writes, reads and frames answers. Whatever flags the
    /// event carried, each step finds out for itself (a connect checks its status, reads
    /// and writes stop at `WouldBlock`), since an error may arrive flagged as neither.
    pub fn handle_event(&mut self, registry: &Registry, now: Now, token: Token) {
        let Some(offset) = token.0.checked_sub(self.token_base) else {
            return;
        };
        let first_len = self.pools[0].size();
        let (pool, slot) = if offset < first_len {
            (&mut self.pools[0], offset)
        } else {
            (&mut self.pools[1], offset - first_len)
        };
        if slot < pool.size() {
            pool.on_event(registry, now.mono_ms, slot, &mut self.completions);
        }
    }

    /// Lets time pass: picks up name lookups and retries them, fails connects past their
    /// timeout, closes connections idle too long, and starts queued requests where a
    /// connection can be had. Calling it before [`Upstream::poll_timeout`] is harmless.
    pub fn handle_timeout(&mut self, registry: &Registry, now: Now) {
        for pool in &mut self.pools {
            pool.on_timeout(registry, now.mono_ms, &mut self.completions);
        }
    }

    /// The next request that ended, oldest first.
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.completions.pop_front()
    }

    /// When [`Upstream::handle_timeout`] must run next (monotonic ms), if anything waits on
    /// time: a running or failed name lookup, a connect timeout, or queued requests waiting
    /// out a connect backoff. Completions waiting in [`Upstream::poll_completion`] are the
    /// caller's to take before it sleeps.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.pools.iter().filter_map(Pool::next_deadline).min()
    }

    /// The state of one processor's pool.
    pub fn stats(&self, processor: Processor) -> PoolStats {
        self.pools[processor.index()].stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Outcome;
    use crate::upstream::pool::CONNECT_BACKOFF_MS;

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

    fn completions(up: &mut Upstream) -> Vec<Completion> {
        std::iter::from_fn(|| up.poll_completion()).collect()
    }

    /// The clock is an argument, so the timeout path runs without waiting: a connect that
    /// is never polled times out at its deadline, backs off, then one probe reconnects.
    #[test]
    fn connect_timeout_backoff_and_probe() {
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut up = upstream(&format!("http://{}", listener.local_addr().unwrap()), 2, 100);

        up.handle_call(registry, at(0), Processor::Default, 1, Call::Health);
        assert_eq!(up.stats(Processor::Default).connecting, 1);
        assert_eq!(up.poll_timeout(), Some(100));
        up.handle_timeout(registry, at(99));
        assert!(completions(&mut up).is_empty());
        up.handle_timeout(registry, at(100));
        assert_eq!(completions(&mut up), [failed(1, false)]);
        let stats = up.stats(Processor::Default);
        assert_eq!((stats.connecting, stats.connect_failures), (0, 1));

        // During the backoff requests queue, and the loop is told when it ends.
        up.handle_call(registry, at(120), Processor::Default, 2, Call::Health);
        up.handle_call(registry, at(120), Processor::Default, 3, Call::Health);
        assert_eq!(up.stats(Processor::Default).queued, 2);
        assert_eq!(up.poll_timeout(), Some(100 + CONNECT_BACKOFF_MS.0));
        // After a failure only one connect probes, though two requests wait.
        up.handle_timeout(registry, at(150));
        let stats = up.stats(Processor::Default);
        assert_eq!((stats.connecting, stats.queued), (1, 1));
        assert_eq!(up.poll_timeout(), Some(250));

        // A second timeout doubles the backoff, and fails the request still queued: with no
        // connection open or opening, it would only wait for the dispatcher to give up.
        up.handle_timeout(registry, at(250));
        assert_eq!(completions(&mut up), [failed(2, false), failed(3, false)]);
        assert_eq!(up.stats(Processor::Default).queued, 0);
        // A request no longer known ends in no second completion.
        up.handle_cancel(registry, at(260), 3);
        assert!(completions(&mut up).is_empty());
        assert_eq!(up.poll_timeout(), None);
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
        assert!(!up.stats(Processor::Default).resolving);
    }

    #[test]
    fn foreign_and_stale_tokens_are_ignored() {
        let poll = mio::Poll::new().unwrap();
        let mut up = upstream("http://127.0.0.1:1", 2, 100);
        for t in [0, 999, 1000, 1001, 1002, 1003, usize::MAX] {
            up.handle_event(poll.registry(), at(0), Token(t));
        }
        assert!(completions(&mut up).is_empty());
        assert!(up.owns(Token(1002)) && !up.owns(Token(1003)) && !up.owns(Token(999)));
    }

    #[test]
    fn a_refused_call_completes_at_once() {
        let poll = mio::Poll::new().unwrap();
        let registry = poll.registry();
        // TCP to the broadcast address fails inside connect(), so inside handle_call.
        let mut up = upstream("http://255.255.255.255:80", 1, 100);
        up.handle_call(registry, at(5), Processor::Default, 7, Call::Health);
        assert_eq!(up.stats(Processor::Default).connect_failures, 1);
        assert_eq!(completions(&mut up), [failed(7, false)]);
        assert_eq!(up.poll_timeout(), None);
        up.handle_call(registry, at(10), Processor::Default, 8, Call::Health);
        up.handle_timeout(registry, at(10 + CONNECT_BACKOFF_MS.0));
        assert_eq!(completions(&mut up), [failed(8, false)]);
    }
}
