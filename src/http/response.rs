//! Responses: status lines as constants, fixed answers as `&'static [u8]`, and writers that
//! append a head and body to a connection's write buffer with `itoa` (no `format!`, no
//! allocation beyond the buffer's own growth).

/// A status code with its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The numeric code.
    pub code: u16,
    /// The status line up to and including CRLF.
    line: &'static str,
}

macro_rules! statuses {
    ($($name:ident = $code:literal $text:literal;)*) => {
        impl Status {
            $(
                #[doc = concat!("`", stringify!($code), " ", $text, "`")]
                pub const $name: Status = Status {
                    code: $code,
                    line: concat!("HTTP/1.1 ", stringify!($code), " ", $text, "\r\n"),
                };
            )*
        }
    };
}

statuses! {
    OK = 200 "OK";
    ACCEPTED = 202 "Accepted";
    NO_CONTENT = 204 "No Content";
    BAD_REQUEST = 400 "Bad Request";
    UNAUTHORIZED = 401 "Unauthorized";
    FORBIDDEN = 403 "Forbidden";
    NOT_FOUND = 404 "Not Found";
    METHOD_NOT_ALLOWED = 405 "Method Not Allowed";
    REQUEST_TIMEOUT = 408 "Request Timeout";
    LENGTH_REQUIRED = 411 "Length Required";
    PAYLOAD_TOO_LARGE = 413 "Payload Too Large";
    UNSUPPORTED_MEDIA_TYPE = 415 "Unsupported Media Type";
    UNPROCESSABLE = 422 "Unprocessable Entity";
    TOO_MANY_REQUESTS = 429 "Too Many Requests";
    HEADERS_TOO_LARGE = 431 "Request Header Fields Too Large";
    INTERNAL_ERROR = 500 "Internal Server Error";
    SERVICE_UNAVAILABLE = 503 "Service Unavailable";
}

impl Status {
    /// The status line, `HTTP/1.1 <code> <reason>\r\n`.
    pub fn line(self) -> &'static [u8] {
        self.line.as_bytes()
    }
}

/// The answer to an accepted payment, built once at compile time.
pub const ACCEPTED: &[u8] = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";

/// Appends a response whose body is `body` with `Content-Length` framing. `content_type` is
/// omitted when empty; `extra` is inserted verbatim (whole header lines ending in CRLF);
/// `close` adds `Connection: close`.
pub fn write(out: &mut Vec<u8>, status: Status, content_type: &str, extra: &[u8], body: &[u8], close: bool) {
    head_start(out, status, content_type, extra);
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// The status line, `Content-Type` (omitted when empty) and the `extra` header lines.
fn head_start(out: &mut Vec<u8>, status: Status, content_type: &str, extra: &[u8]) {
    out.extend_from_slice(status.line());
    if !content_type.is_empty() {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(extra);
}

/// Appends a JSON response with `Content-Length` framing.
pub fn json(out: &mut Vec<u8>, status: Status, body: &[u8], close: bool) {
    write(out, status, "application/json", b"", body, close);
}

/// Appends a JSON response framed with `Transfer-Encoding: chunked` (one chunk then the
/// terminator), the way ASP.NET Core/Kestrel frames a JSON body.
pub fn json_chunked(out: &mut Vec<u8>, status: Status, body: &[u8], close: bool) {
    chunked(out, status, "application/json; charset=utf-8", b"", body, close);
}

/// Appends a response framed with `Transfer-Encoding: chunked`: the body as one chunk (none
/// when it is empty), then the terminator. `content_type` is omitted when empty; `extra` is
/// inserted verbatim (whole header lines ending in CRLF); `close` adds `Connection: close`.
pub fn chunked(out: &mut Vec<u8>, status: Status, content_type: &str, extra: &[u8], body: &[u8], close: bool) {
    head_start(out, status, content_type, extra);
    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !body.is_empty() {
        let mut hex = [0u8; 16];
        let mut n = body.len();
        let mut at = hex.len();
        while n > 0 || at == hex.len() {
            at -= 1;
            hex[at] = b"0123456789abcdef"[n % 16];
            n /= 16;
        }
        out.extend_from_slice(&hex[at..]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
}

/// Appends `{"error":"<reason>"}` with `status`. `reason` must need no JSON escaping (every
/// reason in this crate is a plain sentence).
pub fn error(out: &mut Vec<u8>, status: Status, reason: &str, close: bool) {
    write_error(out, status, None, reason, close);
}

/// Appends a 405 naming the methods the resource takes in `Allow`.
pub fn method_not_allowed(out: &mut Vec<u8>, allow: &str, close: bool) {
    write_error(
        out,
        Status::METHOD_NOT_ALLOWED,
        Some(allow),
        "method not allowed for this path",
        close,
    );
}

fn write_error(out: &mut Vec<u8>, status: Status, allow: Option<&str>, reason: &str, close: bool) {
    debug_assert!(!reason.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20));
    let len = br#"{"error":""}"#.len() + reason.len();
    out.extend_from_slice(status.line());
    out.extend_from_slice(b"Content-Type: application/json\r\n");
    if let Some(allow) = allow {
        out.extend_from_slice(b"Allow: ");
        out.extend_from_slice(allow.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n\r\n{\"error\":\"");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\"}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap()
    }

    #[test]
    fn golden_bytes() {
        let mut out = Vec::new();
        json(&mut out, Status::OK, b"{}", false);
        assert_eq!(
            text(&out),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );

        out.clear();
        error(&mut out, Status::BAD_REQUEST, "amount is missing", true);
        assert_eq!(
            text(&out),
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 29\r\n\r\n{\"error\":\"amount is missing\"}"
        );

        out.clear();
        method_not_allowed(&mut out, "POST", false);
        assert!(text(&out).starts_with(
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nAllow: POST\r\nContent-Length: "
        ));

        out.clear();
        json_chunked(&mut out, Status::OK, &[b'x'; 26], false);
        assert!(text(&out).ends_with("\r\n\r\n1a\r\nxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n0\r\n\r\n"));
        assert!(text(&out).starts_with(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));

        out.clear();
        chunked(
            &mut out,
            Status::TOO_MANY_REQUESTS,
            "",
            b"Retry-After: 5\r\n",
            b"slow down",
            true,
        );
        assert_eq!(
            text(&out),
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\nslow down\r\n0\r\n\r\n"
        );
    }

    #[test]
    fn content_length_matches_body() {
        let mut out = Vec::new();
        error(&mut out, Status::NOT_FOUND, "no such path", false);
        let s = text(&out);
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        let len: usize = head.rsplit("Content-Length: ").next().unwrap().parse().unwrap();
        assert_eq!(len, body.len());
    }
}
