//! The routes of the challenge's API (and `GET /stats`): decode and validate each request, act on the
//! shared segment and the pipeline, and encode the answer. Answers are appended to the
//! connection's output buffer; only a payment whose slot is being written by another process
//! at that instant is answered later.

use crate::app::pipeline::Pipeline;
use crate::base::amount::{write_amount, Cents};
use crate::base::payment::{parse_payment, Processor};
use crate::base::uuid::Uuid;
use crate::base::window::parse_window;
use crate::http::{response, Method, Request, Status};
use crate::net::service::{ConnRef, Cx, Reply, Service, Token};
use crate::segment::{Insert, Segment, Summary};

/// Delay before retrying an insert that met a slot mid-write by another process.
const CONTENDED_RETRY_MS: u64 = 1;

/// A payment whose insert met a slot being written by another process; retried on a timer.
struct Retry {
    conn: ConnRef,
    id: Uuid,
    cents: Cents,
}

/// The backend's request handler.
pub struct Api {
    segment: Segment,
    pipeline: Pipeline,
    server_id: String,
    purge_token: Option<String>,
    retries: Vec<Option<Retry>>,
    body: Vec<u8>,
}

impl Api {
    /// Serves requests from `segment`, handing accepted payments to `pipeline` (whose
    /// dispatcher works on the same segment).
    pub fn new(segment: Segment, pipeline: Pipeline, server_id: String) -> Api {
        Api {
            segment,
            pipeline,
            server_id,
            purge_token: None,
            retries: Vec::new(),
            body: Vec::with_capacity(1024),
        }
    }

    /// Requires `X-Purge-Token: token` on `POST /purge-payments` (403 without it): a purge
    /// drops every payment acknowledged and not yet forwarded, so a deployment that does not
    /// need the challenge's open purge can close it.
    pub fn with_purge_token(mut self, token: Option<String>) -> Api {
        self.purge_token = token;
        self
    }

    /// The pipeline (for shutdown).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// `POST /payments`: validate, store as queued (once per correlationId across every
    /// instance), answer 202.
    fn post_payment(&mut self, cx: &mut Cx<'_>, conn: ConnRef, body: &[u8], out: &mut Vec<u8>) -> Reply {
        let payment = match parse_payment(body) {
            Ok(p) => p,
            Err(e) => return bad_request(out, e.reason()),
        };
        match self.insert(cx, conn, payment.id, payment.cents) {
            Some(write) => {
                write(out);
                Reply::Written
            }
            None => Reply::Deferred,
        }
    }

    /// Inserts and returns the answer to write, or `None` when the insert must be retried (a
    /// retry timer is then armed).
    fn insert(&mut self, cx: &mut Cx<'_>, conn: ConnRef, id: Uuid, cents: Cents) -> Option<fn(&mut Vec<u8>)> {
        let at = cx.now.wall_ms.max(0) as u64;
        let owner = self.pipeline.dispatcher().owner();
        match self.segment.insert_claimed(&id, cents, at, owner) {
            Insert::Inserted(payment) => {
                self.pipeline.accepted(cx.now, payment, id, cents);
                Some(|out| out.extend_from_slice(response::ACCEPTED))
            }
            Insert::Duplicate(_) => Some(|out| out.extend_from_slice(response::ACCEPTED)),
            Insert::Full => Some(|out| {
                response::error(
                    out,
                    Status::SERVICE_UNAVAILABLE,
                    "payment table is full; payment not accepted",
                    false,
                )
            }),
            Insert::Contended => {
                let key = match self.retries.iter().position(Option::is_none) {
                    Some(free) => free,
                    None => {
                        self.retries.push(None);
                        self.retries.len() - 1
                    }
                };
                self.retries[key] = Some(Retry { conn, id, cents });
                cx.arm(cx.now.mono_ms + CONTENDED_RETRY_MS, key as u64);
                None
            }
        }
    }

    /// `GET /payments-summary?from&to`.
    fn summary(&mut self, query: &[u8], out: &mut Vec<u8>) -> Reply {
        let window = match parse_window(query) {
            Ok(w) => w,
            Err(e) => return bad_request(out, e.reason()),
        };
        let summary = self.segment.summary(window.from_ms, window.to_ms);
        self.body.clear();
        write_summary(&summary, &mut self.body);
        response::json(out, Status::OK, &self.body, false);
        Reply::Written
    }

    /// `GET /stats`: this instance's pipeline and the whole segment. The segment part comes
    /// from counters and the time index, never a scan of the table: a flood of it through the
    /// public port costs what a flood of summaries does.
    fn stats(&mut self, cx: &Cx<'_>, out: &mut Vec<u8>) -> Reply {
        let now_ms = cx.now.wall_ms.max(0) as u64;
        let census = self.segment.census();
        let mut n = itoa::Buffer::new();
        let b = &mut self.body;
        b.clear();
        b.extend_from_slice(b"{\"server\":\"");
        b.extend(
            self.server_id
                .bytes()
                .filter(|c| c.is_ascii_graphic() && *c != b'"' && *c != b'\\'),
        );
        b.extend_from_slice(b"\",\"owner\":");
        b.extend_from_slice(n.format(self.pipeline.dispatcher().owner().0).as_bytes());
        b.extend_from_slice(b",\"segment\":{\"live\":");
        b.extend_from_slice(n.format(self.segment.live_count()).as_bytes());
        b.extend_from_slice(b",\"pending\":");
        b.extend_from_slice(n.format(census.pending).as_bytes());
        b.extend_from_slice(b",\"doneDefault\":");
        b.extend_from_slice(n.format(census.done[0]).as_bytes());
        b.extend_from_slice(b",\"doneFallback\":");
        b.extend_from_slice(n.format(census.done[1]).as_bytes());
        b.extend_from_slice(b"},\"pipeline\":");
        self.pipeline.dispatcher().stats().write_json(now_ms, b);
        b.push(b'}');
        response::json(out, Status::OK, &self.body, false);
        Reply::Written
    }
}

impl Service for Api {
    fn request(&mut self, cx: &mut Cx<'_>, conn: ConnRef, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Reply {
        match (req.path, req.method) {
            (b"/payments", Method::Post) => self.post_payment(cx, conn, req.body, out),
            (b"/payments-summary", Method::Get) => self.summary(req.query, out),
            (b"/stats", Method::Get) => self.stats(cx, out),
            (b"/purge-payments", Method::Post) => {
                if let Some(token) = &self.purge_token {
                    if req.header("X-Purge-Token") != Some(token.as_bytes()) {
                        return forbidden(out);
                    }
                }
                self.segment.purge();
                response::json(out, Status::OK, br#"{"message":"All payments purged."}"#, false);
                Reply::Written
            }
            (b"/payments", _) | (b"/purge-payments", _) => not_allowed(out, "POST"),
            (b"/payments-summary", _) | (b"/stats", _) => not_allowed(out, "GET"),
            _ => not_found(out),
        }
    }

    fn io_event(&mut self, cx: &mut Cx<'_>, token: Token) {
        self.pipeline.io_event(cx.registry(), cx.now, token);
    }

    fn before_sleep(&mut self, cx: &mut Cx<'_>) {
        self.pipeline.turn(cx.registry(), cx.now);
    }

    fn next_deadline(&self) -> Option<u64> {
        Some(self.pipeline.next_deadline())
    }

    /// Payments still arrive on connections in the middle of a request and are stored as
    /// usual; nothing new goes to a processor, so what this instance leaves unsent is handed
    /// over whole when it unregisters.
    fn stop(&mut self, _cx: &mut Cx<'_>) {
        self.pipeline.begin_drain();
    }

    fn drained(&self) -> bool {
        self.pipeline.drained()
    }

    fn timer(&mut self, cx: &mut Cx<'_>, key: u64) {
        let Some(retry) = self.retries.get_mut(key as usize).and_then(Option::take) else {
            return;
        };
        if let Some(write) = self.insert(cx, retry.conn, retry.id, retry.cents) {
            cx.respond(retry.conn, write);
        }
    }
}

/// Writes the challenge's summary object, amounts printed from integer cents with two decimals.
pub fn write_summary(summary: &Summary, out: &mut Vec<u8>) {
    let mut digits = itoa::Buffer::new();
    out.push(b'{');
    for (i, p) in Processor::ALL.iter().enumerate() {
        let totals = summary.per_processor[p.index()];
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(p.name().as_bytes());
        out.extend_from_slice(br#"":{"totalRequests":"#);
        out.extend_from_slice(digits.format(totals.count).as_bytes());
        out.extend_from_slice(br#","totalAmount":"#);
        write_amount(totals.cents, out);
        out.push(b'}');
    }
    out.push(b'}');
}

#[cold]
fn bad_request(out: &mut Vec<u8>, reason: &str) -> Reply {
    response::error(out, Status::BAD_REQUEST, reason, false);
    Reply::Written
}

#[cold]
fn forbidden(out: &mut Vec<u8>) -> Reply {
    response::error(
        out,
        Status::FORBIDDEN,
        "purging needs the X-Purge-Token header with the configured PURGE_TOKEN",
        false,
    );
    Reply::Written
}

fn not_allowed(out: &mut Vec<u8>, allow: &str) -> Reply {
    response::method_not_allowed(out, allow, false);
    Reply::Written
}

#[cold]
fn not_found(out: &mut Vec<u8>) -> Reply {
    response::error(
        out,
        Status::NOT_FOUND,
        "no such path; try POST /payments, GET /payments-summary, POST /purge-payments or GET /stats",
        false,
    );
    Reply::Written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Totals;

    #[test]
    fn summary_json_is_exact() {
        let mut s = Summary::default();
        s.per_processor[0] = Totals {
            count: 43236,
            cents: 41_554_234_598,
        };
        s.per_processor[1] = Totals { count: 0, cents: 0 };
        let mut out = Vec::new();
        write_summary(&s, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"default":{"totalRequests":43236,"totalAmount":415542345.98},"fallback":{"totalRequests":0,"totalAmount":0.00}}"#
        );
    }
}
