//! The payment processors' wire format as we call it (as the official processor takes them): their URLs, the three
//! requests we send, written from per-processor templates without `format!`, and tolerant
//! readers for the two answers whose bodies matter (health and lookup).

use std::net::IpAddr;

use crate::base::amount::{write_amount, Cents};
use crate::base::error::PaymentError;
use crate::base::iso8601::{parse_iso_ms_assume_utc, write_iso_ms, Round, ISO_MS_LEN};
use crate::base::json::read_object;
use crate::base::uuid::Uuid;
use crate::dispatch::ProcessorHealth;

/// Where a processor listens, from a URL of the form `http://host[:port][/]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorUrl {
    /// The host as written, without brackets for an IPv6 literal.
    pub host: String,
    /// The port; 80 when the URL names none.
    pub port: u16,
    /// The host parsed as an IP literal, when it is one (no name resolution needed).
    pub ip: Option<IpAddr>,
}

/// Why a processor URL is refused. Each has a [`reason`](Self::reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// `https://`: the processors speak plain HTTP inside the compose network.
    Https,
    /// The URL does not start with `http://`.
    NotHttp,
    /// There is no host after `http://`, or it holds characters no host name has.
    BadHost,
    /// The port is not a number in 1..=65535.
    BadPort,
    /// A path other than `/`, a query, a fragment or user credentials.
    Unsupported,
}

impl UrlError {
    /// One human sentence saying what is wrong.
    pub fn reason(self) -> &'static str {
        match self {
            UrlError::Https => "https is not supported: the processors are called over plain http://host:port",
            UrlError::NotHttp => "the URL must start with http:// (like http://payment-processor-default:8080)",
            UrlError::BadHost => "the URL has no valid host name or IP address after http://",
            UrlError::BadPort => "the port must be a number from 1 to 65535",
            UrlError::Unsupported => "only http://host[:port] is supported: no path, query, fragment or credentials",
        }
    }
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for UrlError {}

/// Reads `http://host[:port][/]` (scheme case-insensitive, IPv6 literals in brackets, the
/// port 80 by default). Anything else is refused with the reason.
pub fn parse_url(url: &str) -> Result<ProcessorUrl, UrlError> {
    let url = url.trim();
    let scheme_end = url.find("://").ok_or(UrlError::NotHttp)?;
    let scheme = &url[..scheme_end];
    if scheme.eq_ignore_ascii_case("https") {
        return Err(UrlError::Https);
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(UrlError::NotHttp);
    }
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if !(tail.is_empty() || tail == "/") || authority.contains('@') {
        return Err(UrlError::Unsupported);
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let close = bracketed.find(']').ok_or(UrlError::BadHost)?;
        let host = &bracketed[..close];
        let after = &bracketed[close + 1..];
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UrlError::BadPort)?),
        };
        match host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => {}
            _ => return Err(UrlError::BadHost),
        }
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(UrlError::BadPort),
        },
        Some(_) => return Err(UrlError::BadPort),
    };
    let ip = host.parse::<IpAddr>().ok();
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ip.is_none() && !name_ok {
        return Err(UrlError::BadHost);
    }
    Ok(ProcessorUrl {
        host: host.to_string(),
        port,
        ip,
    })
}

impl ProcessorUrl {
    /// The value of the `Host` header: `host`, `host:port` when the port is not 80, IPv6
    /// literals in brackets.
    pub fn host_header(&self) -> String {
        let mut value = if matches!(self.ip, Some(IpAddr::V6(_))) {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port != 80 {
            value.push(':');
            value.push_str(itoa::Buffer::new().format(self.port));
        }
        value
    }
}

impl std::fmt::Display for ProcessorUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.host_header())
    }
}

const PAYMENT_BODY_START: &[u8] = b"{\"correlationId\":\"";
const PAYMENT_BODY_AMOUNT: &[u8] = b"\",\"amount\":";
const PAYMENT_BODY_AT: &[u8] = b",\"requestedAt\":\"";
const PAYMENT_BODY_END: &[u8] = b"\"}";
/// Every byte of a payment body except the amount's digits.
const PAYMENT_BODY_FIXED: usize = PAYMENT_BODY_START.len()
    + 36
    + PAYMENT_BODY_AMOUNT.len()
    + PAYMENT_BODY_AT.len()
    + ISO_MS_LEN
    + PAYMENT_BODY_END.len();

/// The requests we send one processor, their constant parts formatted once (with its `Host`)
/// so that writing one is a few copies and two `itoa` calls. HTTP/1.1 keeps the connection
/// alive by default, so no `Connection` header is sent.
#[derive(Clone, Debug)]
pub struct RequestTemplates {
    /// `POST /payments` head up to the `Content-Length` value.
    payment_head: Vec<u8>,
    /// `\r\nHost: ...\r\n\r\n` after a GET target: ends both GET requests.
    get_tail: Vec<u8>,
    /// The whole health request.
    health: Vec<u8>,
}

impl RequestTemplates {
    /// Formats the constant parts for the processor at `url`.
    pub fn new(url: &ProcessorUrl) -> RequestTemplates {
        let host = url.host_header();
        let mut payment_head = b"POST /payments HTTP/1.1\r\nHost: ".to_vec();
        payment_head.extend_from_slice(host.as_bytes());
        payment_head.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
        let mut get_tail = b" HTTP/1.1\r\nHost: ".to_vec();
        get_tail.extend_from_slice(host.as_bytes());
        get_tail.extend_from_slice(b"\r\n\r\n");
        let mut health = b"GET /payments/service-health".to_vec();
        health.extend_from_slice(&get_tail);
        RequestTemplates {
            payment_head,
            get_tail,
            health,
        }
    }

    /// Appends `POST /payments` with `{"correlationId":..,"amount":..,"requestedAt":..}`;
    /// the amount with two decimals, `requestedAt` as ISO-8601 UTC with milliseconds.
    pub fn write_payment(&self, out: &mut Vec<u8>, id: Uuid, cents: Cents, requested_at_ms: u64) {
        let body_len = PAYMENT_BODY_FIXED + amount_len(cents);
        out.extend_from_slice(&self.payment_head);
        out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        let body_start = out.len();
        out.extend_from_slice(PAYMENT_BODY_START);
        let mut text = [0u8; 36];
        id.write_canonical(&mut text);
        out.extend_from_slice(&text);
        out.extend_from_slice(PAYMENT_BODY_AMOUNT);
        write_amount(cents, out);
        out.extend_from_slice(PAYMENT_BODY_AT);
        let mut at = [0u8; ISO_MS_LEN];
        write_iso_ms(i64::try_from(requested_at_ms).unwrap_or(i64::MAX), &mut at);
        out.extend_from_slice(&at);
        out.extend_from_slice(PAYMENT_BODY_END);
        debug_assert_eq!(out.len() - body_start, body_len);
    }

    /// Appends `GET /payments/{id}`.
    pub fn write_lookup(&self, out: &mut Vec<u8>, id: Uuid) {
        out.extend_from_slice(b"GET /payments/");
        let mut text = [0u8; 36];
        id.write_canonical(&mut text);
        out.extend_from_slice(&text);
        out.extend_from_slice(&self.get_tail);
    }

    /// Appends `GET /payments/service-health`.
    pub fn write_health(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.health);
    }
}

/// Bytes [`write_amount`] writes for `cents`: the integer part's digits, `.`, two decimals.
fn amount_len(cents: Cents) -> usize {
    let mut digits = 1;
    let mut whole = cents / 100;
    while whole >= 10 {
        whole /= 10;
        digits += 1;
    }
    digits + 3
}

/// A processor's answer to `GET /payments/{id}`: what it stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupAnswer {
    /// The correlationId, when the body carries a readable one.
    pub id: Option<Uuid>,
    /// `requestedAt` in milliseconds since the Unix epoch, finer digits dropped.
    pub requested_at_ms: u64,
    /// The amount stored, in cents, when the body carries a readable one.
    pub cents: Option<Cents>,
}

/// A field of an answer body that we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The health answer's `failing`.
    Failing,
    /// The health answer's `minResponseTime`.
    MinResponseTime,
    /// The lookup answer's `requestedAt`.
    RequestedAt,
}

/// Why an answer body could not be read. Each has a [`reason`](Self::reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// The body is not one JSON object.
    Json(PaymentError),
    /// A field we need is absent.
    Missing(Field),
    /// A field we need has a value of the wrong type or out of range.
    Bad(Field),
}

impl AnswerError {
    /// One human sentence saying what is wrong.
    pub fn reason(self) -> &'static str {
        match self {
            AnswerError::Json(e) => e.reason(),
            AnswerError::Missing(Field::Failing) => "health answer has no failing field",
            AnswerError::Missing(Field::MinResponseTime) => "health answer has no minResponseTime field",
            AnswerError::Missing(Field::RequestedAt) => "lookup answer has no requestedAt field",
            AnswerError::Bad(Field::Failing) => "health answer's failing is not a boolean",
            AnswerError::Bad(Field::MinResponseTime) => "health answer's minResponseTime is not a whole number",
            AnswerError::Bad(Field::RequestedAt) => {
                "lookup answer's requestedAt is not an ISO-8601 UTC timestamp after 1970"
            }
        }
    }
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for AnswerError {}

impl From<PaymentError> for AnswerError {
    fn from(e: PaymentError) -> AnswerError {
        AnswerError::Json(e)
    }
}

/// Reads `{"failing":bool,"minResponseTime":int}`: keys in any order and ASCII case (as
/// System.Text.Json's web defaults bind them), whitespace anywhere, unknown keys skipped; a
/// repeated key keeps its last value. `minResponseTime` must be a whole number ≥ 0 (`100.0`
/// and `1e2` included); it saturates at `u32::MAX`.
pub fn parse_health(body: &[u8]) -> Result<ProcessorHealth, AnswerError> {
    let mut failing = None;
    let mut min_response_ms = None;
    read_object(body, |key, value| {
        let Some(key) = key else { return Ok(()) };
        if key.eq_ignore_ascii_case(b"failing") {
            failing = Some(value.boolean()?.ok_or(AnswerError::Bad(Field::Failing))?);
        } else if key.eq_ignore_ascii_case(b"minResponseTime") {
            let number = value.number()?.ok_or(AnswerError::Bad(Field::MinResponseTime))?;
            min_response_ms = Some(whole_ms(number).ok_or(AnswerError::Bad(Field::MinResponseTime))?);
        }
        Ok::<(), AnswerError>(())
    })?;
    Ok(ProcessorHealth {
        failing: failing.ok_or(AnswerError::Missing(Field::Failing))?,
        min_response_ms: min_response_ms.ok_or(AnswerError::Missing(Field::MinResponseTime))?,
    })
}

/// A JSON number token that is a whole number ≥ 0, saturating at `u32::MAX`: plain digits, or
/// a fraction of zeros (`100.00`). Exponents are refused: .NET never prints one for an int.
fn whole_ms(number: &[u8]) -> Option<u32> {
    let (whole, fraction) = match number.iter().position(|&c| c == b'.') {
        Some(dot) => (&number[..dot], &number[dot + 1..]),
        None => (number, &number[number.len()..]),
    };
    let whole_ok = !whole.is_empty() && whole.iter().all(u8::is_ascii_digit);
    if !whole_ok || !fraction.iter().all(|&c| c == b'0') {
        return None;
    }
    Some(
        whole
            .iter()
            .fold(0u32, |n, &d| n.saturating_mul(10).saturating_add(u32::from(d - b'0'))),
    )
}

/// Reads a stored payment, `{"correlationId":..,"amount":..,"requestedAt":".."}`, for its
/// `requestedAt` and amount: keys in any order and ASCII case, whitespace anywhere, other
/// keys skipped whatever their value, a repeated key keeps its last value.
/// `requestedAt` may carry 1 to 9 fraction digits (.NET prints up to 7; finer than a
/// millisecond is dropped) and `Z`, `+00:00` or no zone at all (read as UTC, as .NET prints a
/// `DateTime` of unspecified kind).
pub fn parse_lookup(body: &[u8]) -> Result<LookupAnswer, AnswerError> {
    let mut id = None;
    let mut requested_at_ms = None;
    let mut cents = None;
    read_object(body, |key, value| {
        let Some(key) = key else { return Ok(()) };
        if key.eq_ignore_ascii_case(b"correlationId") {
            // Only a cross-check for the caller: a value we cannot read is no reason to lose
            // the requestedAt.
            id = match value.string()? {
                Some(text) => text.as_bytes().and_then(crate::base::uuid::parse_uuid),
                None => None,
            };
        } else if key.eq_ignore_ascii_case(b"amount") {
            // Like the id: what we record when the processor holds another amount than ours
            // under this id; unreadable, we keep ours rather than lose the requestedAt.
            cents = value
                .number()?
                .and_then(|text| crate::base::amount::parse_amount(text).ok());
        } else if key.eq_ignore_ascii_case(b"requestedAt") {
            let text = value.string()?.ok_or(AnswerError::Bad(Field::RequestedAt))?;
            let text = text.as_bytes().ok_or(AnswerError::Bad(Field::RequestedAt))?;
            requested_at_ms = Some(timestamp_ms(text).ok_or(AnswerError::Bad(Field::RequestedAt))?);
        }
        Ok::<(), AnswerError>(())
    })?;
    Ok(LookupAnswer {
        id,
        requested_at_ms: requested_at_ms.ok_or(AnswerError::Missing(Field::RequestedAt))?,
        cents,
    })
}

/// An ISO-8601 UTC timestamp, or one without a zone taken as UTC, in milliseconds since the
/// epoch (sub-millisecond digits dropped); `None` before 1970 or when unreadable.
fn timestamp_ms(text: &[u8]) -> Option<u64> {
    u64::try_from(parse_iso_ms_assume_utc(text, Round::Down).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::iso8601::parse_iso_ms;
    use crate::base::uuid::parse_uuid;

    const ID: &str = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";

    fn url(host: &str, port: u16, ip: Option<&str>) -> ProcessorUrl {
        ProcessorUrl {
            host: host.to_string(),
            port,
            ip: ip.map(|i| i.parse().unwrap()),
        }
    }

    #[test]
    fn urls() {
        let table: &[(&str, Result<ProcessorUrl, UrlError>)] = &[
            (
                "http://payment-processor-default:8080",
                Ok(url("payment-processor-default", 8080, None)),
            ),
            (
                "http://payment-processor-fallback:8080/",
                Ok(url("payment-processor-fallback", 8080, None)),
            ),
            ("HTTP://Example.com", Ok(url("Example.com", 80, None))),
            ("http://127.0.0.1:8001", Ok(url("127.0.0.1", 8001, Some("127.0.0.1")))),
            ("http://[::1]:8002/", Ok(url("::1", 8002, Some("::1")))),
            ("http://[::1]", Ok(url("::1", 80, Some("::1")))),
            (" http://my_host:1 ", Ok(url("my_host", 1, None))),
            ("https://payment-processor-default:8080", Err(UrlError::Https)),
            ("HTTPS://x", Err(UrlError::Https)),
            ("payment-processor-default:8080", Err(UrlError::NotHttp)),
            ("ftp://x", Err(UrlError::NotHttp)),
            ("", Err(UrlError::NotHttp)),
            ("http://", Err(UrlError::BadHost)),
            ("http://:8080", Err(UrlError::BadHost)),
            ("http://bad host:8080", Err(UrlError::BadHost)),
            ("http://[127.0.0.1]:80", Err(UrlError::BadHost)),
            ("http://[::1:80", Err(UrlError::BadHost)),
            ("http://x:0", Err(UrlError::BadPort)),
            ("http://x:65536", Err(UrlError::BadPort)),
            ("http://x:", Err(UrlError::BadPort)),
            ("http://x:+80", Err(UrlError::BadPort)),
            ("http://x:80:81", Err(UrlError::BadPort)),
            ("http://[::1]x", Err(UrlError::BadPort)),
            ("http://x:8080/payments", Err(UrlError::Unsupported)),
            ("http://x:8080?a=b", Err(UrlError::Unsupported)),
            ("http://x:8080#f", Err(UrlError::Unsupported)),
            ("http://user:pw@x:8080", Err(UrlError::Unsupported)),
        ];
        for (text, want) in table {
            assert_eq!(&parse_url(text), want, "{text}");
        }
    }

    #[test]
    fn host_header_names_non_default_ports_and_brackets_ipv6() {
        assert_eq!(parse_url("http://h:8080").unwrap().host_header(), "h:8080");
        assert_eq!(parse_url("http://h").unwrap().host_header(), "h");
        assert_eq!(parse_url("http://[::1]:81").unwrap().host_header(), "[::1]:81");
        assert_eq!(parse_url("http://h:8080/").unwrap().to_string(), "http://h:8080");
    }

    #[test]
    fn golden_requests() {
        let templates = RequestTemplates::new(&parse_url("http://payment-processor-default:8080").unwrap());
        let id = parse_uuid(ID.as_bytes()).unwrap();
        let at = parse_iso_ms(b"2025-07-15T12:34:56.789Z", Round::Down).unwrap() as u64;
        let mut out = Vec::new();
        templates.write_payment(&mut out, id, 1990, at);
        let body =
            format!("{{\"correlationId\":\"{ID}\",\"amount\":19.90,\"requestedAt\":\"2025-07-15T12:34:56.789Z\"}}");
        let want = format!(
            "POST /payments HTTP/1.1\r\nHost: payment-processor-default:8080\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);

        // Appends, never clears.
        templates.write_lookup(&mut out, id);
        let lookup = format!("GET /payments/{ID} HTTP/1.1\r\nHost: payment-processor-default:8080\r\n\r\n");
        assert_eq!(&out[want.len()..], lookup.as_bytes());

        out.clear();
        templates.write_health(&mut out);
        assert_eq!(
            out,
            b"GET /payments/service-health HTTP/1.1\r\nHost: payment-processor-default:8080\r\n\r\n"
        );
    }

    #[test]
    fn payment_bodies_are_what_the_processor_reads_back() {
        let templates = RequestTemplates::new(&parse_url("http://127.0.0.1").unwrap());
        let id = parse_uuid(ID.as_bytes()).unwrap();
        for cents in [
            1,
            9,
            10,
            99,
            100,
            1990,
            99_999,
            100_000,
            99_999_999,
            crate::base::amount::MAX_CENTS,
        ] {
            let mut out = Vec::new();
            templates.write_payment(&mut out, id, cents, 1_752_582_896_789);
            let text = String::from_utf8(out).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("POST /payments HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
            assert!(head.ends_with(&format!("Content-Length: {}", body.len())), "{head}");
            let read = crate::sim::body::parse_processor_payment(body.as_bytes()).unwrap();
            assert_eq!(
                (read.id, read.amount.cents, read.requested_at_ms),
                (id, cents, 1_752_582_896_789)
            );
        }
    }

    #[test]
    fn health_answers() {
        let ok = |failing, ms| {
            Ok(ProcessorHealth {
                failing,
                min_response_ms: ms,
            })
        };
        let table: &[(&str, Result<ProcessorHealth, AnswerError>)] = &[
            (r#"{"failing":false,"minResponseTime":0}"#, ok(false, 0)),
            (r#"{ "minResponseTime" : 1250 , "failing" : true }"#, ok(true, 1250)),
            (
                "{\n  \"failing\": false,\n  \"extra\": [1, {\"a\": null}],\n  \"minResponseTime\": 100.00\n}",
                ok(false, 100),
            ),
            (r#"{"Failing":true,"MinResponseTime":5}"#, ok(true, 5)),
            (r#"{"failing":true,"minResponseTime":99999999999}"#, ok(true, u32::MAX)),
            (r#"{"failing":true,"failing":false,"minResponseTime":1}"#, ok(false, 1)),
            (
                r#"{"failing":false}"#,
                Err(AnswerError::Missing(Field::MinResponseTime)),
            ),
            (r#"{"minResponseTime":1}"#, Err(AnswerError::Missing(Field::Failing))),
            (
                r#"{"failing":"no","minResponseTime":1}"#,
                Err(AnswerError::Bad(Field::Failing)),
            ),
            (
                r#"{"failing":false,"minResponseTime":-1}"#,
                Err(AnswerError::Bad(Field::MinResponseTime)),
            ),
            (
                r#"{"failing":false,"minResponseTime":1.5}"#,
                Err(AnswerError::Bad(Field::MinResponseTime)),
            ),
            (
                r#"{"failing":false,"minResponseTime":1e2}"#,
                Err(AnswerError::Bad(Field::MinResponseTime)),
            ),
            (
                r#"{"failing":false,"minResponseTime":"1"}"#,
                Err(AnswerError::Bad(Field::MinResponseTime)),
            ),
            (r#"{"failing":false,"#, Err(AnswerError::Json(PaymentError::Truncated))),
            ("", Err(AnswerError::Json(PaymentError::NotAnObject))),
        ];
        for (text, want) in table {
            assert_eq!(&parse_health(text.as_bytes()), want, "{text}");
        }
    }

    #[test]
    fn lookup_answers() {
        let id = parse_uuid(ID.as_bytes()).unwrap();
        let at = parse_iso_ms(b"2025-07-15T12:34:56.789Z", Round::Down).unwrap() as u64;
        let ok = |id, ms, cents| {
            Ok(LookupAnswer {
                id,
                requested_at_ms: ms,
                cents,
            })
        };
        let table: Vec<(String, Result<LookupAnswer, AnswerError>)> = vec![
            (
                format!(r#"{{"correlationId":"{ID}","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"}}"#),
                ok(Some(id), at, Some(1990)),
            ),
            (
                format!(
                    r#"{{ "requestedAt" : "2025-07-15T12:34:56.7890000Z" , "amount" : 19.9, "correlationId" : "{ID}" }}"#
                ),
                ok(Some(id), at, Some(1990)),
            ),
            (
                r#"{"requestedAt":"2025-07-15T12:34:56.7899999"}"#.to_string(),
                ok(None, at, None),
            ),
            (
                r#"{"RequestedAt":"2025-07-15T12:34:56.7+00:00","correlationId":null,"amount":"1"}"#.to_string(),
                ok(None, at - 89, None),
            ),
            (
                r#"{"requestedAt":"2025-07-15T12:34:56Z","correlationId":"nope","x":{"y":[true]},"amount":-3}"#
                    .to_string(),
                ok(None, at - 789, None),
            ),
            (
                r#"{"correlationId":"x","amount":1}"#.to_string(),
                Err(AnswerError::Missing(Field::RequestedAt)),
            ),
            (
                r#"{"requestedAt":12}"#.to_string(),
                Err(AnswerError::Bad(Field::RequestedAt)),
            ),
            (
                r#"{"requestedAt":"2025-07-15T12:34:56.789+03:00"}"#.to_string(),
                Err(AnswerError::Bad(Field::RequestedAt)),
            ),
            (
                r#"{"requestedAt":"1969-12-31T23:59:59.999Z"}"#.to_string(),
                Err(AnswerError::Bad(Field::RequestedAt)),
            ),
            (
                r#"{"requestedAt":"2025-07-15T12:34:56.7890000000000000000000000000000000000"}"#.to_string(),
                Err(AnswerError::Bad(Field::RequestedAt)),
            ),
            ("[1]".to_string(), Err(AnswerError::Json(PaymentError::NotAnObject))),
        ];
        for (text, want) in &table {
            assert_eq!(&parse_lookup(text.as_bytes()), want, "{text}");
        }
    }

    #[test]
    fn reasons_are_sentences() {
        for e in [
            UrlError::Https,
            UrlError::NotHttp,
            UrlError::BadHost,
            UrlError::BadPort,
            UrlError::Unsupported,
        ] {
            assert!(!e.reason().is_empty());
        }
        for e in [
            AnswerError::Missing(Field::Failing),
            AnswerError::Missing(Field::MinResponseTime),
            AnswerError::Missing(Field::RequestedAt),
            AnswerError::Bad(Field::Failing),
            AnswerError::Bad(Field::MinResponseTime),
            AnswerError::Bad(Field::RequestedAt),
            AnswerError::Json(PaymentError::Truncated),
        ] {
            assert!(!e.to_string().is_empty());
        }
    }
}
