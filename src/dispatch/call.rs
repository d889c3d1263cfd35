//! The dispatcher's side of the conversation with the processors: what it asks for
//! ([`Call`], sent as an [`Action`](super::Action)) and what it is told back
//! ([`Completion`]). Whoever performs the calls (the upstream pools, or the simulation)
//! speaks this vocabulary; the dispatcher depends on no one.

use crate::base::amount::Cents;
use crate::base::payment::Processor;
use crate::base::uuid::Uuid;

/// The dispatcher's name for one request; echoed back in its [`Completion`].
pub type RequestId = u64;

/// What to ask a processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `POST /payments` with this correlationId, amount and `requestedAt`.
    Payment {
        /// The correlationId.
        id: Uuid,
        /// The amount in cents.
        cents: Cents,
        /// `requestedAt`, milliseconds since the Unix epoch.
        requested_at_ms: u64,
    },
    /// `GET /payments/{id}`, to resolve an ambiguous outcome.
    Lookup {
        /// The correlationId.
        id: Uuid,
    },
    /// `GET /payments/service-health`.
    Health,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A complete answer. `requested_at_ms` is filled for a 200 to a Lookup whose body was
    /// readable (and named the id asked for); `health` for a 200 or 503 to Health with a
    /// readable body; `retry_after_s` when the header was present in seconds.
    Answered {
        /// The status code.
        status: u16,
        /// The stored payment's `requestedAt` (Lookup, 200 only).
        requested_at_ms: Option<u64>,
        /// The stored payment's amount in cents (Lookup, 200 with a readable amount only).
        amount_cents: Option<Cents>,
        /// The health report (Health, 200 or 503).
        health: Option<ProcessorHealth>,
        /// `Retry-After` in seconds.
        retry_after_s: Option<u32>,
    },
    /// No complete answer: the connection failed, closed, or was refused. `written`: some
    /// byte of the request reached the socket, so the processor may have acted on it
    /// (ambiguous); false: certainly not sent (the connect failed, or the request was
    /// cancelled before a byte of it was written).
    Failed {
        /// Whether any byte of the request was accepted by the socket.
        written: bool,
    },
}

impl Outcome {
    /// A complete answer that carried nothing but its status (no body worth reading, no
    /// `Retry-After`), as a performer without a wire, or a test, reports it.
    pub fn status(status: u16) -> Outcome {
        Outcome::Answered {
            status,
            requested_at_ms: None,
            amount_cents: None,
            health: None,
            retry_after_s: None,
        }
    }
}

/// One request's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The request, as submitted.
    pub request: RequestId,
    /// The processor it was sent to.
    pub processor: Processor,
    /// How it ended.
    pub outcome: Outcome,
}

/// A processor's answer to `GET /payments/service-health`, as it said it. (The dispatcher
/// keeps its own view of health; this is only what one answer said.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessorHealth {
    /// `failing`: the processor answers 500 to payments.
    pub failing: bool,
    /// `minResponseTime` in milliseconds (the processor's configured delay), saturating.
    pub min_response_ms: u32,
}
