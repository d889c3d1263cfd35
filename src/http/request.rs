//! Request framing: one pure call over the bytes buffered so far, answering `Complete` (with
//! the request and its length), `Partial` (read more) or `Invalid` (answer and close).
//!
//! Limits are checked here so every caller gets them: a header block over
//! [`MAX_HEADER_BYTES`] is refused with 431 whether or not it is complete, a declared body
//! over [`MAX_BODY_BYTES`] with 413 before a byte of it is read, and a chunked request body
//! with 411 (no route of ours takes a body of unknown length).

use super::response::Status;

/// Largest request head (request line and headers) we accept.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Largest request body we accept; a payment is about 70 bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 32;
/// A connection never buffers more than one maximal request.
pub const MAX_REQUEST_BYTES: usize = MAX_HEADER_BYTES + MAX_BODY_BYTES;

/// The request methods we tell apart; anything else is `Other` and gets a 405.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// Any other method token.
    Other,
}

impl Method {
    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }
}

/// One complete request, borrowing the read buffer.
#[derive(Debug)]
pub struct Request<'h, 'b> {
    /// The method.
    pub method: Method,
    /// The target up to `?` (origin form, e.g. `/payments-summary`).
    pub path: &'b [u8],
    /// The bytes after `?`, empty when there is none.
    pub query: &'b [u8],
    /// The body (`Content-Length` bytes; empty without one).
    pub body: &'b [u8],
    /// False when the client asked to close (HTTP/1.1 `Connection: close`, or HTTP/1.0
    /// without `Connection: keep-alive`).
    pub keep_alive: bool,
    /// Every header as sent.
    pub headers: &'h [httparse::Header<'b>],
}

impl Request<'_, '_> {
    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Why a request cannot be served; each maps to one status and one sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Not HTTP/1.x syntax.
    Malformed,
    /// The head exceeds [`MAX_HEADER_BYTES`] or [`MAX_HEADERS`].
    HeadersTooLarge,
    /// `Content-Length` exceeds [`MAX_BODY_BYTES`].
    BodyTooLarge,
    /// A `Transfer-Encoding` body (chunked): we need a length.
    LengthRequired,
    /// `Content-Length` is not a number, or two of them disagree.
    BadContentLength,
}

impl HttpError {
    /// The status this error is answered with.
    pub fn status(self) -> Status {
        match self {
            HttpError::Malformed | HttpError::BadContentLength => Status::BAD_REQUEST,
            HttpError::HeadersTooLarge => Status::HEADERS_TOO_LARGE,
            HttpError::BodyTooLarge => Status::PAYLOAD_TOO_LARGE,
            HttpError::LengthRequired => Status::LENGTH_REQUIRED,
        }
    }

    /// One human sentence, safe to embed in a JSON string.
    pub fn reason(self) -> &'static str {
        match self {
            HttpError::Malformed => "malformed HTTP/1.1 request",
            HttpError::HeadersTooLarge => "request header block exceeds 8192 bytes or 32 headers",
            HttpError::BodyTooLarge => "request body exceeds 4096 bytes",
            HttpError::LengthRequired => "request bodies must be sent with Content-Length, not chunked",
            HttpError::BadContentLength => "invalid or conflicting Content-Length",
        }
    }
}

/// The outcome of framing the buffered bytes.
#[derive(Debug)]
pub enum Parse<'h, 'b> {
    /// A whole request and the number of bytes it used.
    Complete(Request<'h, 'b>, usize),
    /// Not enough bytes yet; read more. Says what is missing so the caller can skip
    /// re-framing until it may have arrived.
    Partial(Need),
    /// The bytes can never become a request we serve.
    Invalid(HttpError),
}

/// What a partial request still lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The head is not complete: only a line feed can complete it (see [`may_complete_head`]).
    Head,
    /// The head is complete; the request is this many bytes long in all.
    Total(usize),
}

/// Frames the first request in `buf`, using `headers` as scratch space for httparse.
///
/// Never panics and never reads past `buf`. A `Partial` answer means the buffered bytes are a
/// valid prefix within the limits.
pub fn parse_request<'h, 'b>(buf: &'b [u8], headers: &'h mut [httparse::Header<'b>; MAX_HEADERS]) -> Parse<'h, 'b> {
    let mut req = httparse::Request::new(headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEADER_BYTES => n,
        Ok(httparse::Status::Complete(_)) => return Parse::Invalid(HttpError::HeadersTooLarge),
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEADER_BYTES => {
            return Parse::Invalid(HttpError::HeadersTooLarge)
        }
        Ok(httparse::Status::Partial) => return Parse::Partial(Need::Head),
        Err(httparse::Error::TooManyHeaders) => return Parse::Invalid(HttpError::HeadersTooLarge),
        Err(_) => return Parse::Invalid(HttpError::Malformed),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Parse::Invalid(HttpError::Malformed);
    };
    let mut content_length: Option<usize> = None;
    let mut keep_alive = version == 1;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_length(h.value) else {
                return Parse::Invalid(HttpError::BadContentLength);
            };
            if content_length.is_some_and(|m| m != n) {
                return Parse::Invalid(HttpError::BadContentLength);
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Invalid(HttpError::LengthRequired);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&c| c == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    keep_alive = true;
                }
            }
        }
    }
    let body_len = content_length.unwrap_or(0);
    if body_len > MAX_BODY_BYTES {
        return Parse::Invalid(HttpError::BodyTooLarge);
    }
    let total = head_len + body_len;
    if buf.len() < total {
        return Parse::Partial(Need::Total(total));
    }
    let target = target.as_bytes();
    let (path, query) = match target.iter().position(|&c| c == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &target[target.len()..]),
    };
    let request = Request {
        method: Method::from_token(method),
        path,
        query,
        body: &buf[head_len..total],
        keep_alive,
        headers: req.headers,
    };
    Parse::Complete(request, total)
}

/// A `Content-Length` value: ASCII digits only (no sign, no spaces inside), at most 9 of
/// them so it cannot overflow; the body limit is checked by the caller. Shared with the
/// client's response framing.
pub(crate) fn parse_length(value: &[u8]) -> Option<usize> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, &d| n * 10 + usize::from(d - b'0')))
}

/// True when `bytes` may end a request head, i.e. contain a line feed. Callers re-frame a
/// partial request only when newly read bytes pass this test, so a client that sends one
/// byte at a time does not make the server re-parse the whole head after every byte.
pub fn may_complete_head(bytes: &[u8]) -> bool {
    bytes.contains(&b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a framed request looked like: method, path, query, body, keep-alive, length.
    type Framed = (Method, Vec<u8>, Vec<u8>, Vec<u8>, bool, usize);
    /// A table row's expectation: the same without the length, or the error (`None` = partial).
    type Expected = Result<(Method, &'static [u8], &'static [u8], &'static [u8], bool), Option<HttpError>>;

    fn frame(buf: &[u8]) -> Result<Framed, Option<HttpError>> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match parse_request(buf, &mut headers) {
            Parse::Complete(r, n) => Ok((
                r.method,
                r.path.to_vec(),
                r.query.to_vec(),
                r.body.to_vec(),
                r.keep_alive,
                n,
            )),
            Parse::Partial(_) => Err(None),
            Parse::Invalid(e) => Err(Some(e)),
        }
    }

    const POST: &[u8] = b"POST /payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 70\r\n\r\n{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":19.9}";

    #[test]
    fn table() {
        let cases: &[(&[u8], Expected)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", Ok((Method::Get, b"/", b"", b"", true))),
            (
                b"GET /payments-summary?from=a&to=b HTTP/1.1\r\nHost: h\r\n\r\n",
                Ok((Method::Get, b"/payments-summary", b"from=a&to=b", b"", true)),
            ),
            (b"GET /x? HTTP/1.1\r\n\r\n", Ok((Method::Get, b"/x", b"", b"", true))),
            (b"GET / HTTP/1.0\r\n\r\n", Ok((Method::Get, b"/", b"", b"", false))),
            (
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                Ok((Method::Get, b"/", b"", b"", true)),
            ),
            (
                b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n",
                Ok((Method::Get, b"/", b"", b"", false)),
            ),
            (
                b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
                Ok((Method::Post, b"/p", b"", b"abc", true)),
            ),
            (
                b"POST /p HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
                Ok((Method::Post, b"/p", b"", b"abc", true)),
            ),
            (
                b"BREW /pot HTTP/1.1\r\n\r\n",
                Ok((Method::Other, b"/pot", b"", b"", true)),
            ),
            (b"GET / HTTP/1.1\n\n", Ok((Method::Get, b"/", b"", b"", true))),
            (
                b"POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                Err(Some(HttpError::BadContentLength)),
            ),
            (
                b"POST /p HTTP/1.1\r\nContent-Length: -3\r\n\r\n",
                Err(Some(HttpError::BadContentLength)),
            ),
            (
                b"POST /p HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
                Err(Some(HttpError::BadContentLength)),
            ),
            (
                b"POST /p HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                Err(Some(HttpError::BadContentLength)),
            ),
            (
                b"POST /p HTTP/1.1\r\nContent-Length: 4097\r\n\r\n",
                Err(Some(HttpError::BodyTooLarge)),
            ),
            (
                b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                Err(Some(HttpError::LengthRequired)),
            ),
            (b"GET / HTTP/2.0\r\n\r\n", Err(Some(HttpError::Malformed))),
            (b"\x00\x01\x02 garbage\r\n\r\n", Err(Some(HttpError::Malformed))),
            (
                b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
                Err(Some(HttpError::Malformed)),
            ),
            (b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", Err(None)),
            (b"GET / HTTP/1.1\r\nHost: x\r\n", Err(None)),
        ];
        for (input, want) in cases {
            let got = frame(input).map(|(m, p, q, b, k, _)| (m, p, q, b, k));
            let want = want.map(|(m, p, q, b, k)| (m, p.to_vec(), q.to_vec(), b.to_vec(), k));
            assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn every_proper_prefix_is_partial() {
        for cut in 0..POST.len() {
            assert_eq!(frame(&POST[..cut]), Err(None), "cut at {cut}");
        }
        let whole = frame(POST).unwrap();
        assert_eq!(whole.5, POST.len());
        assert_eq!(whole.3.len(), 70);
    }

    #[test]
    fn pipelined_requests_frame_one_at_a_time() {
        let mut batch = Vec::new();
        batch.extend_from_slice(POST);
        batch.extend_from_slice(b"GET /payments-summary HTTP/1.1\r\n\r\n");
        batch.extend_from_slice(POST);
        let mut at = 0;
        let mut seen = Vec::new();
        while at < batch.len() {
            let (m, path, _, _, _, n) = frame(&batch[at..]).unwrap();
            seen.push((m, path));
            at += n;
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1], (Method::Get, b"/payments-summary".to_vec()));
    }

    #[test]
    fn head_limits() {
        let mut big = b"GET / HTTP/1.1\r\nX-Fill: ".to_vec();
        big.resize(MAX_HEADER_BYTES + 1, b'a');
        assert_eq!(frame(&big), Err(Some(HttpError::HeadersTooLarge)));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(frame(&big), Err(Some(HttpError::HeadersTooLarge)));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(frame(&many), Err(Some(HttpError::HeadersTooLarge)));
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let buf = b"GET / HTTP/1.1\r\nX-Rinha-Token: 123\r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Parse::Complete(r, _) = parse_request(buf, &mut headers) else {
            panic!()
        };
        assert_eq!(r.header("x-rinha-token"), Some(&b"123"[..]));
        assert_eq!(r.header("missing"), None);
    }

    #[test]
    fn no_single_byte_mutation_panics() {
        let mut buf = POST.to_vec();
        for i in 0..buf.len() {
            let orig = buf[i];
            for b in [0u8, b'\r', b'\n', b' ', b':', 0xff, b'9'] {
                buf[i] = b;
                let _ = frame(&buf);
            }
            buf[i] = orig;
        }
    }
}
