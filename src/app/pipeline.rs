//! The reactor side of the payment pipeline: performs the [`Dispatcher`]'s actions with the
//! [`Upstream`] connection pools and feeds their outcomes back, once per loop turn.
//!
//! This is the only place where the sans-I/O dispatcher meets sockets; the deterministic
//! simulation replaces exactly this piece with simulated processors.

use crate::base::amount::Cents;
use crate::base::clock::Now;
use crate::base::uuid::Uuid;
use crate::dispatch::{Action, Dispatcher};
use crate::net::service::{Registry, Token};
use crate::segment::PaymentRef;
use crate::upstream::Upstream;

/// The dispatcher and the connections that carry out its decisions.
pub struct Pipeline {
    dispatcher: Dispatcher,
    upstream: Upstream,
    /// `BENCH_ACCEPT_ONLY`: payments are accepted and stored but the dispatcher is never told
    /// nor run, so nothing is sent anywhere (measures what accepting alone costs).
    accept_only: bool,
}

impl Pipeline {
    /// Joins a dispatcher to the pools that will perform its calls.
    pub fn new(dispatcher: Dispatcher, upstream: Upstream) -> Pipeline {
        Pipeline {
            dispatcher,
            upstream,
            accept_only: false,
        }
    }

    /// Benchmark only (`BENCH_ACCEPT_ONLY`): accepted payments stay queued in the segment and
    /// the dispatcher never runs (no sends, no health polls, no heartbeat, no adoption), so
    /// the instance's cost is that of accepting alone. Payments accepted so are never
    /// recorded.
    pub fn accept_only(mut self) -> Pipeline {
        self.accept_only = true;
        self
    }

    /// The dispatcher (for `/stats`).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// A payment this instance accepted and owns. Its first request goes out at the end of
    /// this loop turn ([`Pipeline::turn`]), batched with the others.
    pub fn accepted(&mut self, now: Now, payment: PaymentRef, id: Uuid, cents: Cents) {
        if self.accept_only {
            return;
        }
        self.dispatcher.handle_accepted(now, payment, id, cents);
    }

    /// Readiness of an upstream socket.
    pub fn io_event(&mut self, registry: &Registry, now: Now, token: Token) {
        self.upstream.handle_event(registry, now, token);
        self.exchange(registry, now);
    }

    /// Once per loop turn: lets the dispatcher's and the pools' time pass, and performs
    /// every action until nothing more happens this turn.
    pub fn turn(&mut self, registry: &Registry, now: Now) {
        if self.accept_only {
            return;
        }
        if now.mono_ms >= self.dispatcher.poll_timeout() {
            self.dispatcher.handle_timeout(now);
        }
        // Every turn, as before the split: idle expiry has no deadline of its own.
        self.upstream.handle_timeout(registry, now);
        self.exchange(registry, now);
    }

    /// The instance is stopping: nothing new is sent, answers still on their way are
    /// recorded ([`Dispatcher::begin_drain`]).
    pub fn begin_drain(&mut self) {
        self.dispatcher.begin_drain();
    }

    /// True once no payment or lookup awaits its answer ([`Dispatcher::drained`]).
    pub fn drained(&self) -> bool {
        self.dispatcher.drained()
    }

    /// The earliest monotonic instant at which [`Pipeline::turn`] has work.
    pub fn next_deadline(&self) -> u64 {
        if self.accept_only {
            return u64::MAX;
        }
        let d = self.dispatcher.poll_timeout();
        self.upstream.poll_timeout().map_or(d, |u| u.min(d))
    }

    /// Hands the dispatcher's actions to the pools and the pools' completions to the
    /// dispatcher until neither has more (a completion may free capacity for more sends; a
    /// send may fail at once).
    fn exchange(&mut self, registry: &Registry, now: Now) {
        loop {
            let mut progressed = false;
            while let Some(action) = self.dispatcher.poll_action() {
                progressed = true;
                match action {
                    Action::Send {
                        request,
                        processor,
                        call,
                    } => self.upstream.handle_call(registry, now, processor, request, call),
                    Action::Cancel { request } => self.upstream.handle_cancel(registry, now, request),
                }
            }
            while let Some(completion) = self.upstream.poll_completion() {
                progressed = true;
                self.dispatcher.handle_completion(now, completion);
            }
            if !progressed {
                return;
            }
        }
    }
}
