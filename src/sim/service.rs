//! The simulator on the reactor: the official processor's routes mapped onto a
//! [`ProcessorState`], answers written the way its server (ASP.NET Core on Kestrel) writes
//! them, and optional `Connection: close` on answers picked at random.
//!
//! Wire behaviour copied from the official processor (its source, read for behaviour):
//! - JSON answers are `application/json; charset=utf-8` with `Transfer-Encoding: chunked`;
//!   answers with no body carry `Content-Length: 0` (`204` carries neither).
//! - Paths match whatever their ASCII case, a trailing `/` ignored, as ASP.NET routing does.
//! - A request body is bound before anything else: no JSON `Content-Type` is `415`, a body
//!   that does not bind is `400`, both with no body; the admin token is checked after that.
//! - Failure mode answers `500` with no body; a duplicate answers `422` with a message; the
//!   health endpoint answers `503` (same JSON) while failure mode is on; `429` comes with
//!   `Retry-After: <RATE_LIMIT_SECONDS>` and a short text body with no `Content-Type`.

use std::collections::HashSet;

use super::decimal::Decimal;
use super::model::{Answer, HealthAnswer, PaymentOutcome, ProcessorConfig, ProcessorState, Unreadable};
use crate::base::error::PaymentError;
use crate::base::iso8601::{write_iso_ms, ISO_MS_LEN};
use crate::base::json::read_object;
use crate::base::uuid::{parse_uuid, Uuid};
use crate::base::window::{parse_window, Window};
use crate::http::{response, Method, Request, Status};
use crate::net::service::{ConnRef, Cx, Reply, Service};
use crate::sim::body::parse_processor_payment;

/// The only timer key this service arms: "the model has something due".
const DEADLINE_TIMER: u64 = 1;
/// JSON answers' content type, as ASP.NET Core writes it.
const JSON: &str = "application/json; charset=utf-8";
const PROCESSED: &[u8] = br#"{"message":"payment processed successfully"}"#;
const PURGED: &[u8] = br#"{"message":"All payments purged."}"#;
/// The start and end of a duplicate's message; the correlationId goes between. The detail is
/// the first line of the database error the official processor passes on.
const DUPLICATE_HEAD: &[u8] = br#"{"message":"Payment could not be processed. CorrelationId already exists: "#;
const DUPLICATE_TAIL: &[u8] =
    br#". Error details: Npgsql.PostgresException (0x80004005): 23505: duplicate key value violates unique constraint \"payments_pkey\""}"#;
/// Our own words for a 429 (the official text is a rude joke we do not repeat).
const TOO_MANY: &[u8] = b"Too many requests. Try again later.";
const INDEX: &[u8] = b"<!doctype html><title>payment-processor-sim</title><p>payrelay's payment processor simulator.";
/// Connections remembered as asked to close; the set is cleared when it reaches this size, so
/// a long run cannot grow it without bound (a few reuses then go unnoticed).
const MAX_CLOSING: usize = 65_536;
/// Reuses of closed connections reported on stderr before going quiet.
const MAX_REUSE_REPORTS: u64 = 20;

/// How bodies are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked`, as Kestrel frames a JSON answer (the default).
    Chunked,
    /// `Content-Length`, as most other servers do.
    ContentLength,
}

/// The service's own switches (the processor's settings are in [`ProcessorConfig`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceOptions {
    /// How bodies are framed.
    pub framing: Framing,
    /// Chance, from 0 to 1, that an answer says `Connection: close`.
    pub close_probability: f64,
    /// Seed of the generator that picks those answers, so a run can be repeated.
    pub seed: u64,
    /// The `Retry-After` value of a 429, in seconds (`RATE_LIMIT_SECONDS`).
    pub retry_after_s: u64,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            framing: Framing::Chunked,
            close_probability: 0.0,
            seed: 0x5eed,
            retry_after_s: 5,
        }
    }
}

/// Who waits for a deferred answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    conn: ConnRef,
    keep_alive: bool,
}

/// Picks answers that close their connection: xorshift64* against a threshold.
struct CloseDice {
    state: u64,
    /// An answer closes when a draw is at most this; `None` never closes.
    threshold: Option<u64>,
}

impl CloseDice {
    fn new(probability: f64, seed: u64) -> CloseDice {
        let threshold = if probability.is_nan() || probability <= 0.0 {
            None
        } else if probability >= 1.0 {
            Some(u64::MAX)
        } else {
            // The product is below 2^64, so the conversion saturates at worst.
            Some((probability * 18_446_744_073_709_551_616.0) as u64)
        };
        // xorshift must not start at zero.
        CloseDice {
            state: seed | 1,
            threshold,
        }
    }

    fn roll(&mut self) -> bool {
        let Some(threshold) = self.threshold else { return false };
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) <= threshold
    }
}

/// Writes answers in the chosen framing; owns the reusable body buffer.
struct Writer {
    framing: Framing,
    retry_after: Vec<u8>,
    /// The whole keep-alive `200` of a processed payment, built once: the hot path copies it.
    processed: Vec<u8>,
    body: Vec<u8>,
}

impl Writer {
    fn new(framing: Framing, retry_after_s: u64) -> Writer {
        let mut w = Writer {
            framing,
            retry_after: format!("Retry-After: {retry_after_s}\r\n").into_bytes(),
            processed: Vec::new(),
            body: Vec::with_capacity(512),
        };
        let mut processed = Vec::new();
        w.json(&mut processed, Status::OK, PROCESSED, false);
        w.processed = processed;
        w
    }

    /// A body with a content type (none when empty) and extra header lines.
    fn with_body(&self, out: &mut Vec<u8>, status: Status, content_type: &str, extra: &[u8], body: &[u8], close: bool) {
        match self.framing {
            Framing::Chunked => response::chunked(out, status, content_type, extra, body, close),
            Framing::ContentLength => response::write(out, status, content_type, extra, body, close),
        }
    }

    fn json(&self, out: &mut Vec<u8>, status: Status, body: &[u8], close: bool) {
        self.with_body(out, status, JSON, b"", body, close);
    }

    /// The JSON in `self.body`.
    fn json_body(&mut self, out: &mut Vec<u8>, status: Status, close: bool) {
        let body = std::mem::take(&mut self.body);
        self.json(out, status, &body, close);
        self.body = body;
        self.body.clear();
    }

    /// No body: `Content-Length: 0`, as Kestrel ends a response nothing was written to.
    fn empty(out: &mut Vec<u8>, status: Status, extra: &[u8], close: bool) {
        response::write(out, status, "", extra, b"", close);
    }

    /// `204`: no body and no length.
    fn no_content(out: &mut Vec<u8>, close: bool) {
        out.extend_from_slice(Status::NO_CONTENT.line());
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    fn too_many(&self, out: &mut Vec<u8>, close: bool) {
        self.with_body(out, Status::TOO_MANY_REQUESTS, "", &self.retry_after, TOO_MANY, close);
    }

    fn payment(&mut self, out: &mut Vec<u8>, outcome: PaymentOutcome, close: bool) {
        match outcome {
            PaymentOutcome::Processed if !close => out.extend_from_slice(&self.processed),
            PaymentOutcome::Processed => self.json(out, Status::OK, PROCESSED, close),
            PaymentOutcome::Duplicate(id) => {
                self.body.extend_from_slice(DUPLICATE_HEAD);
                write_uuid(&id, &mut self.body);
                self.body.extend_from_slice(DUPLICATE_TAIL);
                self.json_body(out, Status::UNPROCESSABLE, close);
            }
            PaymentOutcome::Failed => Writer::empty(out, Status::INTERNAL_ERROR, b"", close),
            PaymentOutcome::Refused(Unreadable::NotJson) => {
                Writer::empty(out, Status::UNSUPPORTED_MEDIA_TYPE, b"", close)
            }
            PaymentOutcome::Refused(Unreadable::Malformed(_)) => Writer::empty(out, Status::BAD_REQUEST, b"", close),
            PaymentOutcome::Overloaded => self.too_many(out, close),
        }
    }

    fn health(&mut self, out: &mut Vec<u8>, answer: HealthAnswer, close: bool) {
        match answer {
            HealthAnswer::Status(s) => {
                self.body.extend_from_slice(br#"{"failing":"#);
                self.body.extend_from_slice(if s.failing { b"true" } else { b"false" });
                self.body.extend_from_slice(br#","minResponseTime":"#);
                self.body
                    .extend_from_slice(itoa::Buffer::new().format(s.min_response_time).as_bytes());
                self.body.push(b'}');
                let status = if s.failing {
                    Status::SERVICE_UNAVAILABLE
                } else {
                    Status::OK
                };
                self.json_body(out, status, close);
            }
            HealthAnswer::Limited => self.too_many(out, close),
        }
    }
}

/// The processor simulator as a reactor [`Service`].
pub struct SimService {
    state: ProcessorState<Waiter>,
    writer: Writer,
    dice: CloseDice,
    /// The earliest model deadline a reactor timer is armed for, if any is pending.
    armed: Option<u64>,
    /// Connections whose last answer said `Connection: close`.
    closing: HashSet<ConnRef>,
    reused_after_close: u64,
    /// The answer being written now was picked to close its connection.
    close_current: bool,
}

impl SimService {
    /// A simulator with nothing stored.
    pub fn new(config: ProcessorConfig, options: ServiceOptions) -> SimService {
        SimService {
            state: ProcessorState::new(config),
            writer: Writer::new(options.framing, options.retry_after_s),
            dice: CloseDice::new(options.close_probability, options.seed),
            armed: None,
            closing: HashSet::new(),
            close_current: false,
            reused_after_close: 0,
        }
    }

    /// The model, for inspection.
    pub fn state(&self) -> &ProcessorState<Waiter> {
        &self.state
    }

    /// Requests that arrived on a connection after we answered it with `Connection: close`
    /// (a client bug, unless it pipelines).
    pub fn reused_after_close(&self) -> u64 {
        self.reused_after_close
    }

    /// Whether this answer ends its connection: the client asked, or the dice say so. A
    /// connection we close is remembered, to catch a client that keeps using it.
    fn decide_close(&mut self, conn: ConnRef, keep_alive: bool) -> bool {
        if !keep_alive {
            return true;
        }
        if !self.dice.roll() {
            return false;
        }
        if self.closing.len() >= MAX_CLOSING {
            self.closing.clear();
        }
        self.closing.insert(conn);
        self.close_current = true;
        true
    }

    /// Hands every deferred answer the model has ready to its connection.
    fn deliver(&mut self, cx: &mut Cx<'_>) {
        while let Some((waiter, answer)) = self.state.poll_answer() {
            let close = self.decide_close(waiter.conn, waiter.keep_alive);
            self.close_current = false;
            let writer = &mut self.writer;
            let write = |out: &mut Vec<u8>| match answer {
                Answer::Payment(outcome) => writer.payment(out, outcome, close),
                Answer::Health(health) => writer.health(out, health, close),
            };
            // Dropped by the loop when the client left meanwhile; the model already did its part.
            if close {
                cx.respond_and_close(waiter.conn, write)
            } else {
                cx.respond(waiter.conn, write)
            }
        }
    }

    /// Arms a reactor timer for the model's next deadline unless an earlier one is pending.
    /// The timer fires 1 ms after the deadline: the loop's clock counts whole milliseconds,
    /// so firing at the deadline itself could answer up to 1 ms before the delay is over.
    fn arm(&mut self, cx: &mut Cx<'_>) {
        if let Some(deadline) = self.state.next_deadline() {
            if self.armed.map_or(true, |a| deadline < a) {
                cx.arm(deadline + 1, DEADLINE_TIMER);
                self.armed = Some(deadline);
            }
        }
    }

    /// Dispatches one request by path, then method (ASP.NET answers 405 for a known path
    /// with another method, 404 for an unknown path). Returns how it was answered.
    fn route(&mut self, now_ms: u64, conn: ConnRef, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Reply {
        let path = route_path(req.path);
        let method = req.method;
        if eq(path, b"/payments") {
            return match method {
                Method::Post => self.post_payment(now_ms, conn, req, out),
                _ => self.not_allowed(conn, req, "POST", out),
            };
        }
        if eq(path, b"/payments/service-health") {
            return match method {
                Method::Get => self.health(now_ms, conn, req, out),
                _ => self.not_allowed(conn, req, "GET", out),
            };
        }
        if let Some(id) = strip_prefix(path, b"/payments/").filter(|id| !id.contains(&b'/')) {
            return match method {
                Method::Get => self.get_payment(conn, req, id, out),
                _ => self.not_allowed(conn, req, "GET", out),
            };
        }
        let close = self.decide_close(conn, req.keep_alive);
        let token = req.header("x-rinha-token");
        match path {
            p if eq(p, b"/admin/payments-summary") => match method {
                Method::Get => self.summary(req, token, close, out),
                _ => return self.not_allowed_decided("GET", close, out),
            },
            p if eq(p, b"/admin/configurations/token") => match method {
                Method::Put => self.set_token(req, token, close, out),
                _ => return self.not_allowed_decided("PUT", close, out),
            },
            p if eq(p, b"/admin/configurations/delay") => match method {
                Method::Put => self.set_delay(req, token, close, out),
                _ => return self.not_allowed_decided("PUT", close, out),
            },
            p if eq(p, b"/admin/configurations/failure") => match method {
                Method::Put => self.set_failure(req, token, close, out),
                _ => return self.not_allowed_decided("PUT", close, out),
            },
            p if eq(p, b"/admin/purge-payments") => match method {
                Method::Post if !self.state.token_matches(token) => {
                    Writer::empty(out, Status::UNAUTHORIZED, b"", close)
                }
                Method::Post => {
                    self.state.purge();
                    self.writer.json(out, Status::OK, PURGED, close);
                }
                _ => return self.not_allowed_decided("POST", close, out),
            },
            b"/" => match method {
                Method::Get => self.writer.with_body(out, Status::OK, "text/html", b"", INDEX, close),
                _ => return self.not_allowed_decided("GET", close, out),
            },
            _ => Writer::empty(out, Status::NOT_FOUND, b"", close),
        }
        Reply::Written
    }

    /// `405` with `Allow`, no body.
    fn not_allowed(&mut self, conn: ConnRef, req: &Request<'_, '_>, allow: &str, out: &mut Vec<u8>) -> Reply {
        let close = self.decide_close(conn, req.keep_alive);
        self.not_allowed_decided(allow, close, out)
    }

    /// `405` when whether the answer closes is already decided.
    fn not_allowed_decided(&mut self, allow: &str, close: bool, out: &mut Vec<u8>) -> Reply {
        let mut extra = [0u8; 32];
        let header = b"Allow: ";
        let len = header.len() + allow.len() + 2;
        extra[..header.len()].copy_from_slice(header);
        extra[header.len()..len - 2].copy_from_slice(allow.as_bytes());
        extra[len - 2..len].copy_from_slice(b"\r\n");
        Writer::empty(out, Status::METHOD_NOT_ALLOWED, &extra[..len], close);
        Reply::Written
    }

    /// `POST /payments`: binds the body, hands it to the model; answered now or later.
    fn post_payment(&mut self, now_ms: u64, conn: ConnRef, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Reply {
        let bound = if is_json(req) {
            parse_processor_payment(req.body).map_err(Unreadable::Malformed)
        } else {
            Err(Unreadable::NotJson)
        };
        let waiter = Waiter {
            conn,
            keep_alive: req.keep_alive,
        };
        match self.state.post_payment(now_ms, waiter, bound) {
            Some(outcome) => {
                let close = self.decide_close(conn, req.keep_alive);
                self.writer.payment(out, outcome, close);
                Reply::Written
            }
            None => Reply::Deferred,
        }
    }

    /// `GET /payments/service-health`: answered now, later (queued) or 429.
    fn health(&mut self, now_ms: u64, conn: ConnRef, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Reply {
        match self.state.health(
            now_ms,
            Waiter {
                conn,
                keep_alive: req.keep_alive,
            },
        ) {
            Some(answer) => {
                let close = self.decide_close(conn, req.keep_alive);
                self.writer.health(out, answer, close);
                Reply::Written
            }
            None => Reply::Deferred,
        }
    }

    /// `GET /payments/{id}`: 400 for an id that is no GUID, 404 when not stored.
    fn get_payment(&mut self, conn: ConnRef, req: &Request<'_, '_>, id: &[u8], out: &mut Vec<u8>) -> Reply {
        let close = self.decide_close(conn, req.keep_alive);
        let Some(id) = parse_guid(id) else {
            Writer::empty(out, Status::BAD_REQUEST, b"", close);
            return Reply::Written;
        };
        let Some(p) = self.state.payment(&id) else {
            Writer::empty(out, Status::NOT_FOUND, b"", close);
            return Reply::Written;
        };
        let body = &mut self.writer.body;
        body.extend_from_slice(br#"{"correlationId":""#);
        write_uuid(&id, body);
        body.extend_from_slice(br#"","amount":"#);
        Decimal::from_cents(p.amount.cents, p.amount.scale).write(body);
        body.extend_from_slice(br#","requestedAt":""#);
        write_unzoned_time(p.requested_at_ms, body);
        body.extend_from_slice(b"\"}");
        self.writer.json_body(out, Status::OK, close);
        Reply::Written
    }

    /// `GET /admin/payments-summary?from&to`: window (400), then token (401), then the JSON.
    fn summary(&mut self, req: &Request<'_, '_>, token: Option<&[u8]>, close: bool, out: &mut Vec<u8>) {
        let Ok(window) = parse_window(req.query) else {
            return Writer::empty(out, Status::BAD_REQUEST, b"", close);
        };
        if !self.state.token_matches(token) {
            return Writer::empty(out, Status::UNAUTHORIZED, b"", close);
        }
        let s = self.state.summary(&admin_window(window));
        let body = &mut self.writer.body;
        body.extend_from_slice(br#"{"totalAmount":"#);
        s.total_amount.write(body);
        body.extend_from_slice(br#","totalRequests":"#);
        body.extend_from_slice(itoa::Buffer::new().format(s.total_requests).as_bytes());
        body.extend_from_slice(br#","totalFee":"#);
        s.total_fee.write(body);
        body.extend_from_slice(br#","feePerTransaction":"#);
        s.fee_per_transaction.write(body);
        body.push(b'}');
        self.writer.json_body(out, Status::OK, close);
    }

    /// `PUT /admin/configurations/token`: body (415/400), token (401), then 204.
    fn set_token(&mut self, req: &Request<'_, '_>, token: Option<&[u8]>, close: bool, out: &mut Vec<u8>) {
        let new = match bind_admin(req, read_token) {
            Ok(new) => new,
            Err(status) => return Writer::empty(out, status, b"", close),
        };
        if !self.state.token_matches(token) {
            return Writer::empty(out, Status::UNAUTHORIZED, b"", close);
        }
        self.state.set_token(new.as_ref().map(|t| &t.bytes[..t.len]));
        Writer::no_content(out, close);
    }

    /// `PUT /admin/configurations/delay`: body, token, then `{config, was, is}`.
    fn set_delay(&mut self, req: &Request<'_, '_>, token: Option<&[u8]>, close: bool, out: &mut Vec<u8>) {
        let delay = match bind_admin(req, read_delay) {
            Ok(d) => d,
            Err(status) => return Writer::empty(out, status, b"", close),
        };
        if !self.state.token_matches(token) {
            return Writer::empty(out, Status::UNAUTHORIZED, b"", close);
        }
        let change = self.state.set_delay(delay);
        let mut itoa = itoa::Buffer::new();
        let body = &mut self.writer.body;
        body.extend_from_slice(br#"{"config":"delay","was":"#);
        body.extend_from_slice(itoa.format(change.was).as_bytes());
        body.extend_from_slice(br#","is":"#);
        body.extend_from_slice(itoa.format(change.is).as_bytes());
        body.push(b'}');
        self.writer.json_body(out, Status::OK, close);
    }

    /// `PUT /admin/configurations/failure`: body, token, then `{config, was, is}`.
    fn set_failure(&mut self, req: &Request<'_, '_>, token: Option<&[u8]>, close: bool, out: &mut Vec<u8>) {
        let failing = match bind_admin(req, read_failure) {
            Ok(f) => f,
            Err(status) => return Writer::empty(out, status, b"", close),
        };
        if !self.state.token_matches(token) {
            return Writer::empty(out, Status::UNAUTHORIZED, b"", close);
        }
        let change = self.state.set_failure(failing);
        let word = |b: bool| if b { &b"true"[..] } else { &b"false"[..] };
        let body = &mut self.writer.body;
        body.extend_from_slice(br#"{"config":"failure","was":"#);
        body.extend_from_slice(word(change.was));
        body.extend_from_slice(br#","is":"#);
        body.extend_from_slice(word(change.is));
        body.push(b'}');
        self.writer.json_body(out, Status::OK, close);
    }
}

impl Service for SimService {
    fn request(&mut self, cx: &mut Cx<'_>, conn: ConnRef, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Reply {
        if self.closing.remove(&conn) {
            self.reused_after_close += 1;
            if self.reused_after_close <= MAX_REUSE_REPORTS {
                eprintln!(
                    "payment-processor-sim: a request arrived on a connection answered with Connection: close \
                     (a client bug unless it pipelines; {} so far)",
                    self.reused_after_close
                );
            }
        }
        self.close_current = false;
        let mut reply = self.route(cx.now.mono_ms, conn, req, out);
        // The dice chose to end this connection with this answer: really close it, as a
        // server ending keep-alive does, rather than only saying so.
        if reply == Reply::Written && std::mem::take(&mut self.close_current) {
            reply = Reply::WrittenThenClose;
        }
        self.deliver(cx);
        self.arm(cx);
        reply
    }

    fn timer(&mut self, cx: &mut Cx<'_>, _key: u64) {
        let now = cx.now.mono_ms;
        if self.armed.is_some_and(|a| a < now) {
            self.armed = None;
        }
        self.state.handle_timeout(now);
        self.deliver(cx);
        self.arm(cx);
    }
}

/// The path as routing sees it: one trailing `/` (not the root's) dropped.
/// The window the official processor's admin summary applies: it filters only when both `from`
/// and `to` are given and sums everything otherwise (a lone bound is parsed, so a bad one is
/// still a 400, and then ignored). Our own `GET /payments-summary` honours a lone bound.
fn admin_window(window: Window) -> Window {
    if window.from_ms.is_some() && window.to_ms.is_some() {
        window
    } else {
        Window::default()
    }
}

fn route_path(path: &[u8]) -> &[u8] {
    match path {
        [rest @ .., b'/'] if !rest.is_empty() => rest,
        _ => path,
    }
}

/// ASCII case-insensitive equality, as ASP.NET matches route literals.
fn eq(path: &[u8], literal: &[u8]) -> bool {
    path.eq_ignore_ascii_case(literal)
}

/// The rest of `path` after `prefix` (matched case-insensitively), if anything follows.
fn strip_prefix<'p>(path: &'p [u8], prefix: &[u8]) -> Option<&'p [u8]> {
    (path.len() > prefix.len() && eq(&path[..prefix.len()], prefix)).then(|| &path[prefix.len()..])
}

/// Whether the request says its body is JSON: `application/json` or any `+json` type, as
/// ASP.NET Core requires before it reads a JSON body.
fn is_json(req: &Request<'_, '_>) -> bool {
    let Some(value) = req.header("content-type") else {
        return false;
    };
    let media = value.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    media.eq_ignore_ascii_case(b"application/json")
        || (media.contains(&b'/') && media.len() > 5 && media[media.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// Why an admin body did not bind (all answered 400).
enum BodyError {
    /// Not the JSON syntax we accept.
    Json,
    /// A member of the wrong type or out of range.
    Value,
}

impl From<PaymentError> for BodyError {
    fn from(_: PaymentError) -> Self {
        BodyError::Json
    }
}

/// Binds an admin body with `read`: 415 without a JSON `Content-Type`, 400 when it fails.
fn bind_admin<V>(req: &Request<'_, '_>, read: fn(&[u8]) -> Result<V, BodyError>) -> Result<V, Status> {
    if !is_json(req) {
        return Err(Status::UNSUPPORTED_MEDIA_TYPE);
    }
    read(req.body).map_err(|e| match e {
        BodyError::Json | BodyError::Value => Status::BAD_REQUEST,
    })
}

/// A token as stored: up to 64 bytes.
struct Token {
    bytes: [u8; 64],
    len: usize,
}

/// `{"token": string | null}`; a missing token is `null`, as the framework's binding leaves it.
fn read_token(body: &[u8]) -> Result<Option<Token>, BodyError> {
    let mut token = None;
    read_object::<BodyError>(body, |key, value| {
        if key.is_some_and(|k| k.eq_ignore_ascii_case(b"token")) {
            token = if value.null()? {
                None
            } else {
                let text = value.string()?.ok_or(BodyError::Value)?;
                let text = text.as_bytes().ok_or(BodyError::Value)?;
                let mut t = Token {
                    bytes: [0; 64],
                    len: text.len(),
                };
                t.bytes[..text.len()].copy_from_slice(text);
                Some(t)
            };
        }
        Ok(())
    })?;
    Ok(token)
}

/// `{"delay": int}`: a JSON integer, or a string holding one (the web defaults read numbers
/// from strings); missing is 0, as the binding leaves an absent member at its default.
fn read_delay(body: &[u8]) -> Result<i32, BodyError> {
    let mut delay = 0;
    read_object::<BodyError>(body, |key, value| {
        if key.is_some_and(|k| k.eq_ignore_ascii_case(b"delay")) {
            delay = match value.number()? {
                Some(token) => parse_i32(token),
                None => {
                    let text = value.string()?.ok_or(BodyError::Value)?;
                    text.as_bytes().and_then(parse_i32)
                }
            }
            .ok_or(BodyError::Value)?;
        }
        Ok(())
    })?;
    Ok(delay)
}

/// `{"failure": bool}`; missing is false.
fn read_failure(body: &[u8]) -> Result<bool, BodyError> {
    let mut failure = false;
    read_object::<BodyError>(body, |key, value| {
        if key.is_some_and(|k| k.eq_ignore_ascii_case(b"failure")) {
            failure = value.boolean()?.ok_or(BodyError::Value)?;
        }
        Ok(())
    })?;
    Ok(failure)
}

/// An optional `-` then digits, within `i32`; no fraction, no exponent.
fn parse_i32(text: &[u8]) -> Option<i32> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    i32::try_from(if negative { -n } else { n }).ok()
}

/// A GUID in any of the forms .NET's `Guid.TryParse` reads that a URL can carry: 36 chars
/// with dashes, 32 hex digits, or the dashed form in braces or parentheses.
fn parse_guid(text: &[u8]) -> Option<Uuid> {
    match text {
        [b'{', inner @ .., b'}'] | [b'(', inner @ .., b')'] => parse_uuid(inner),
        _ if text.len() == 32 => {
            let mut dashed = [b'-'; 36];
            for (from, to) in [(0..8, 0), (8..12, 9), (12..16, 14), (16..20, 19), (20..32, 24)] {
                let n = from.len();
                dashed[to..to + n].copy_from_slice(&text[from]);
            }
            parse_uuid(&dashed)
        }
        _ => parse_uuid(text),
    }
}

/// Appends the lowercase dashed form, as .NET prints a `Guid`.
fn write_uuid(id: &Uuid, out: &mut Vec<u8>) {
    let mut text = [0u8; 36];
    id.write_canonical(&mut text);
    out.extend_from_slice(&text);
}

/// A timestamp as .NET prints a `DateTime` read back from a `timestamp` column: no zone,
/// fraction digits only as far as they are not zero (`2025-07-15T12:34:56.78`).
fn write_unzoned_time(ms: i64, out: &mut Vec<u8>) {
    let mut text = [0u8; ISO_MS_LEN];
    write_iso_ms(ms, &mut text);
    // text is `YYYY-MM-DDTHH:MM:SS.fffZ`.
    out.extend_from_slice(&text[..19]);
    let fraction = &text[20..23];
    let kept = fraction.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
    if kept > 0 {
        out.push(b'.');
        out.extend_from_slice(&fraction[..kept]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unzoned_times_trim_zero_fractions() {
        for (text, want) in [
            (&b"2025-07-15T12:34:56.000Z"[..], "2025-07-15T12:34:56"),
            (b"2025-07-15T12:34:56.100Z", "2025-07-15T12:34:56.1"),
            (b"2025-07-15T12:34:56.120Z", "2025-07-15T12:34:56.12"),
            (b"2025-07-15T12:34:56.789Z", "2025-07-15T12:34:56.789"),
        ] {
            let ms = crate::base::iso8601::parse_iso_ms(text, crate::base::iso8601::Round::Down).unwrap();
            let mut out = Vec::new();
            write_unzoned_time(ms, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn guids_in_every_url_form() {
        let want = parse_uuid(b"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3");
        assert!(want.is_some());
        for text in [
            &b"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"[..],
            b"4A7901B87D264D9DAA194DC1C7CF60B3",
            b"{4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3}",
            b"(4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3)",
        ] {
            assert_eq!(parse_guid(text), want, "{}", String::from_utf8_lossy(text));
        }
        for bad in [
            &b"x"[..],
            b"4a7901b87d264d9daa194dc1c7cf60b",
            b"{4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3)",
            b"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60bg",
        ] {
            assert_eq!(parse_guid(bad), None);
        }
    }

    #[test]
    fn admin_bodies_bind_like_the_framework() {
        assert!(matches!(read_delay(br#"{"delay":100}"#), Ok(100)));
        assert!(matches!(read_delay(br#"{"Delay":"250"}"#), Ok(250)));
        assert!(matches!(read_delay(br#"{}"#), Ok(0)));
        assert!(matches!(read_delay(br#"{"delay":-5}"#), Ok(-5)));
        for bad in [
            &br#"{"delay":1.5}"#[..],
            br#"{"delay":1e2}"#,
            br#"{"delay":null}"#,
            br#"{"delay":2147483648}"#,
            b"",
            b"[]",
            br#"{"delay":true}"#,
        ] {
            assert!(read_delay(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(read_failure(br#"{"failure":true}"#), Ok(true)));
        assert!(matches!(read_failure(br#"{"FAILURE":false,"x":[1]}"#), Ok(false)));
        assert!(read_failure(br#"{"failure":"true"}"#).is_err());
        assert!(read_failure(br#"{"failure":null}"#).is_err());
        let token = read_token(br#"{"token":"abc"}"#).ok().flatten().unwrap();
        assert_eq!(&token.bytes[..token.len], b"abc");
        assert!(matches!(read_token(br#"{"token":null}"#), Ok(None)));
        assert!(matches!(read_token(br#"{}"#), Ok(None)));
        assert!(read_token(br#"{"token":123}"#).is_err());
    }

    #[test]
    fn json_content_types() {
        let check = |ct: Option<&str>| {
            let head = match ct {
                Some(ct) => format!("POST / HTTP/1.1\r\nContent-Type: {ct}\r\n\r\n"),
                None => "POST / HTTP/1.1\r\n\r\n".to_string(),
            };
            let mut headers = [httparse::EMPTY_HEADER; crate::http::request::MAX_HEADERS];
            let crate::http::Parse::Complete(req, _) = crate::http::parse_request(head.as_bytes(), &mut headers) else {
                panic!()
            };
            is_json(&req)
        };
        assert!(check(Some("application/json")));
        assert!(check(Some("Application/JSON; charset=utf-8")));
        assert!(check(Some("application/problem+json")));
        assert!(!check(Some("text/plain")));
        assert!(!check(Some("+json")));
        assert!(!check(None));
    }

    #[test]
    fn the_admin_summary_filters_only_when_both_bounds_are_given() {
        let both = Window {
            from_ms: Some(1_000),
            to_ms: Some(2_000),
        };
        assert_eq!(admin_window(both), both);
        for lone in [
            Window {
                from_ms: Some(1_000),
                to_ms: None,
            },
            Window {
                from_ms: None,
                to_ms: Some(2_000),
            },
            Window::default(),
        ] {
            assert_eq!(admin_window(lone), Window::default(), "{lone:?}");
        }
    }

    #[test]
    fn dice_follow_the_probability_and_the_seed() {
        let mut never = CloseDice::new(0.0, 1);
        let mut always = CloseDice::new(1.0, 1);
        assert!((0..1000).all(|_| !never.roll() && always.roll()));
        let mut some = CloseDice::new(0.25, 42);
        let hits = (0..100_000).filter(|_| some.roll()).count();
        assert!((23_000..27_000).contains(&hits), "{hits}");
        let (mut a, mut b) = (CloseDice::new(0.5, 7), CloseDice::new(0.5, 7));
        assert!((0..1000).all(|_| a.roll() == b.roll()));
    }
}
