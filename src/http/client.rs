//! Response framing for our calls to the processors: one pure call over the bytes buffered
//! so far, answering `Complete` (status, keep-alive, decoded body, bytes used), `Partial`
//! (read more) or `Invalid` (close the connection).
//!
//! The body is framed as RFC 9112 §6.3 says a client must: none for 1xx, 204 and 304 (we never
//! send HEAD), else `Transfer-Encoding: chunked` (Kestrel's framing of every JSON answer),
//! else `Content-Length`, else everything up to the end of the connection. A close-delimited
//! body can only be finished by the caller, who knows the connection ended: it calls
//! [`parse_response`] once more with `at_eof` set.
//!
//! Limits are checked here so every caller gets them: a head over [`MAX_HEAD_BYTES`], a body
//! over [`MAX_BODY_BYTES`], and a whole framed response (chunk lines and trailers included)
//! over [`MAX_RESPONSE_BYTES`] are refused, so a read buffer of [`MAX_RESPONSE_BYTES`] always
//! holds enough to decide.

use super::request::parse_length;

/// Largest response head (status line and headers) we accept.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Largest decoded response body we accept; the processors' answers are under 200 bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most headers in one response.
pub const MAX_HEADERS: usize = 32;
/// Largest framed response: head, body, and 8 KiB for chunk-size lines and trailers. A read
/// buffer of this size never fills before [`parse_response`] can answer.
pub const MAX_RESPONSE_BYTES: usize = MAX_HEAD_BYTES + MAX_BODY_BYTES + 8 * 1024;

/// One complete response. Its body was written to the vector passed to [`parse_response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code (100–999, as httparse reads three digits).
    pub status: u16,
    /// False when the connection must not carry another request: HTTP/1.1 with
    /// `Connection: close`, HTTP/1.0 without `Connection: keep-alive`, or a close-delimited
    /// body.
    pub keep_alive: bool,
    /// `Retry-After` in seconds, when present in that form (an HTTP-date is ignored).
    pub retry_after_s: Option<u32>,
    /// Bytes of the buffer this response used; anything after it belongs to what follows.
    pub consumed: usize,
}

/// Why buffered bytes can never become a response we accept. Each has a [`reason`](Self::reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// Not an HTTP/1.x status line and header block.
    Malformed,
    /// The head exceeds [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`].
    HeadTooLarge,
    /// The body exceeds [`MAX_BODY_BYTES`], or the framed response [`MAX_RESPONSE_BYTES`].
    BodyTooLarge,
    /// `Content-Length` is not a number, or two of them disagree.
    BadContentLength,
    /// A `Transfer-Encoding` other than `chunked`, or together with `Content-Length`
    /// (RFC 9112 §6.3 calls that a smuggling attempt to be treated as an error).
    BadTransferEncoding,
    /// A chunk-size line that is not hex, or chunk data not followed by a line end.
    BadChunk,
    /// The connection ended before the response was complete.
    Truncated,
}

impl ResponseError {
    /// One human sentence saying what is wrong.
    pub fn reason(self) -> &'static str {
        match self {
            ResponseError::Malformed => "malformed HTTP/1.x response head",
            ResponseError::HeadTooLarge => "response head exceeds 8192 bytes or 32 headers",
            ResponseError::BodyTooLarge => "response body exceeds 65536 bytes",
            ResponseError::BadContentLength => "invalid or conflicting Content-Length in response",
            ResponseError::BadTransferEncoding => {
                "response Transfer-Encoding is not plain chunked, or comes with Content-Length"
            }
            ResponseError::BadChunk => "malformed chunk in a chunked response body",
            ResponseError::Truncated => "connection closed before the response was complete",
        }
    }
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ResponseError {}

/// The outcome of framing the buffered bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseResponse {
    /// A whole response; its decoded body is in the caller's vector.
    Complete(Response),
    /// Not enough bytes yet (a valid prefix within the limits); read more.
    Partial,
    /// The bytes can never become a response we accept.
    Invalid(ResponseError),
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Frames the first response in `buf`, decoding its body into `body` (cleared first; its
/// contents are unspecified unless the answer is `Complete`).
///
/// `at_eof` says the connection has ended and no byte will follow `buf`: a close-delimited
/// body is then complete, and any other incomplete response is
/// [`ResponseError::Truncated`] (so with `at_eof` the answer is never `Partial`).
///
/// Never panics and never reads past `buf`. The work is linear in `buf.len()`, which the
/// limits bound; callers re-frame from the start after each read.
pub fn parse_response(buf: &[u8], at_eof: bool, body: &mut Vec<u8>) -> ParseResponse {
    body.clear();
    match frame(buf, at_eof, body) {
        Ok(Some(response)) => ParseResponse::Complete(response),
        Ok(None) if at_eof => ParseResponse::Invalid(ResponseError::Truncated),
        Ok(None) if buf.len() >= MAX_RESPONSE_BYTES => ParseResponse::Invalid(ResponseError::BodyTooLarge),
        Ok(None) => ParseResponse::Partial,
        Err(e) => ParseResponse::Invalid(e),
    }
}

/// [`parse_response`] without the end-of-input rules: `Ok(None)` means incomplete.
fn frame(buf: &[u8], at_eof: bool, body: &mut Vec<u8>) -> Result<Option<Response>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD_BYTES => n,
        Ok(httparse::Status::Complete(_)) => return Err(ResponseError::HeadTooLarge),
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => return Err(ResponseError::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeadTooLarge),
        Err(_) => return Err(ResponseError::Malformed),
    };
    let (Some(version), Some(status)) = (head.version, head.code) else {
        return Err(ResponseError::Malformed);
    };

    let mut keep_alive = version == 1;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut retry_after_s = None;
    for h in head.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = parse_length(h.value).ok_or(ResponseError::BadContentLength)?;
            if content_length.is_some_and(|m| m != n) {
                return Err(ResponseError::BadContentLength);
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only a bare `chunked`: we send no TE or Accept-Encoding, so any other coding
            // is a server we do not understand.
            if chunked || !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(ResponseError::BadTransferEncoding);
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&c| c == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("retry-after") {
            retry_after_s = parse_seconds(h.value);
        }
    }

    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        if content_length.is_some() {
            return Err(ResponseError::BadTransferEncoding);
        }
        Framing::Chunked
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };

    let rest = &buf[head_len..];
    let body_len = match framing {
        Framing::Empty => 0,
        Framing::Length(n) => {
            if n > MAX_BODY_BYTES {
                return Err(ResponseError::BodyTooLarge);
            }
            let Some(bytes) = rest.get(..n) else {
                return Ok(None);
            };
            body.extend_from_slice(bytes);
            n
        }
        Framing::Chunked => match decode_chunked(rest, body)? {
            Some(n) => n,
            None => return Ok(None),
        },
        Framing::UntilClose => {
            if rest.len() > MAX_BODY_BYTES {
                return Err(ResponseError::BodyTooLarge);
            }
            if !at_eof {
                return Ok(None);
            }
            body.extend_from_slice(rest);
            keep_alive = false;
            rest.len()
        }
    };
    Ok(Some(Response {
        status,
        keep_alive,
        retry_after_s,
        consumed: head_len + body_len,
    }))
}

/// Decodes a chunked body at the start of `buf` into `body`. Returns the bytes of `buf` it
/// spans (through the blank line after the trailers), `None` when incomplete.
///
/// Chunk extensions and trailer fields are skipped unread. Lines may end in CRLF or a bare
/// LF, as httparse allows for the head.
fn decode_chunked(buf: &[u8], body: &mut Vec<u8>) -> Result<Option<usize>, ResponseError> {
    let mut at = 0;
    loop {
        let Some(line_end) = find_line_end(buf, at) else {
            return Ok(None);
        };
        let size = parse_chunk_size(&buf[at..line_end.content_end])?;
        at = line_end.next;
        if size == 0 {
            break;
        }
        if size > MAX_BODY_BYTES - body.len() {
            return Err(ResponseError::BodyTooLarge);
        }
        let Some(data) = buf.get(at..at + size) else {
            return Ok(None);
        };
        body.extend_from_slice(data);
        at += size;
        // The data must be followed by a line end and nothing else.
        match buf.get(at..) {
            Some([b'\r', b'\n', ..]) => at += 2,
            Some([b'\n', ..]) => at += 1,
            Some([] | [b'\r']) => return Ok(None),
            _ => return Err(ResponseError::BadChunk),
        }
    }
    // Trailer fields, each one line, until an empty line.
    loop {
        let Some(line_end) = find_line_end(buf, at) else {
            return Ok(None);
        };
        let empty = line_end.content_end == at;
        at = line_end.next;
        if empty {
            return Ok(Some(at));
        }
    }
}

/// Where a line that starts at some offset ends.
struct LineEnd {
    /// Offset of the `\r\n` or `\n` ending it.
    content_end: usize,
    /// Offset just past that line end.
    next: usize,
}

/// The end of the line starting at `from`, `None` when no line feed follows yet.
fn find_line_end(buf: &[u8], from: usize) -> Option<LineEnd> {
    let lf = from + buf.get(from..)?.iter().position(|&c| c == b'\n')?;
    let content_end = if lf > from && buf[lf - 1] == b'\r' { lf - 1 } else { lf };
    Some(LineEnd {
        content_end,
        next: lf + 1,
    })
}

/// A chunk-size line (without its line end): hex digits, then optionally whitespace and
/// `;extensions`. Sizes that cannot fit the body limit are refused by the caller; more than
/// 8 significant digits are refused here so the value cannot overflow.
fn parse_chunk_size(line: &[u8]) -> Result<usize, ResponseError> {
    let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ResponseError::BadChunk);
    }
    let after = line[digits..].trim_ascii_start();
    if !after.is_empty() && after[0] != b';' {
        return Err(ResponseError::BadChunk);
    }
    let significant = line[..digits].iter().skip_while(|&&c| c == b'0').count();
    if significant > 8 {
        return Err(ResponseError::BodyTooLarge);
    }
    Ok(line[..digits]
        .iter()
        .fold(0usize, |n, &c| n * 16 + usize::from(hex_digit(c))))
}

/// The value of an ASCII hex digit (the caller checked it is one).
fn hex_digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c.wrapping_sub(b'A').wrapping_add(10),
    }
}

/// A `Retry-After` in delta-seconds, saturating at `u32::MAX`; `None` for an HTTP-date or
/// anything else.
fn parse_seconds(value: &[u8]) -> Option<u32> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0u32, |n, &d| n.saturating_mul(10).saturating_add(u32::from(d - b'0'))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A framed response as the tests compare it: status, keep-alive, Retry-After, body,
    /// bytes used.
    type Framed = (u16, bool, Option<u32>, Vec<u8>, usize);

    fn frame_at(buf: &[u8], at_eof: bool) -> Result<Framed, Option<ResponseError>> {
        let mut body = vec![b'?'; 3];
        match parse_response(buf, at_eof, &mut body) {
            ParseResponse::Complete(r) => Ok((r.status, r.keep_alive, r.retry_after_s, body, r.consumed)),
            ParseResponse::Partial => Err(None),
            ParseResponse::Invalid(e) => Err(Some(e)),
        }
    }

    fn frame(buf: &[u8]) -> Result<Framed, Option<ResponseError>> {
        frame_at(buf, false)
    }

    /// Kestrel's answer to a processed payment, byte for byte as the official processor sends it.
    const KESTREL_OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nDate: Thu, 10 Jul 2025 12:34:56 GMT\r\nServer: Kestrel\r\nTransfer-Encoding: chunked\r\n\r\n2c\r\n{\"message\":\"payment processed successfully\"}\r\n0\r\n\r\n";
    const KESTREL_EMPTY_500: &[u8] =
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nDate: Thu, 10 Jul 2025 12:34:56 GMT\r\nServer: Kestrel\r\n\r\n";
    const MULTI_CHUNK: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=\"a b\"\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n";

    #[test]
    fn table() {
        type Row = (
            &'static [u8],
            Result<(u16, bool, Option<u32>, &'static [u8]), Option<ResponseError>>,
        );
        let cases: &[Row] = &[
            (
                KESTREL_OK,
                Ok((200, true, None, b"{\"message\":\"payment processed successfully\"}")),
            ),
            (KESTREL_EMPTY_500, Ok((500, true, None, b""))),
            (MULTI_CHUNK, Ok((200, true, None, b"hello world"))),
            (
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n",
                Ok((429, true, Some(5), b"")),
            ),
            (
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nContent-Length: 0\r\n\r\n",
                Ok((503, true, None, b"")),
            ),
            (
                b"HTTP/1.1 429 x\r\nRetry-After: 99999999999\r\nContent-Length: 0\r\n\r\n",
                Ok((429, true, Some(u32::MAX), b"")),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, close\r\n\r\nabc",
                Ok((200, false, None, b"abc")),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
                Ok((200, false, None, b"abc")),
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: Keep-Alive\r\n\r\nabc",
                Ok((200, true, None, b"abc")),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
                Ok((200, true, None, b"abc")),
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", Ok((204, true, None, b""))),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
                Ok((304, true, None, b"")),
            ),
            (b"HTTP/1.1 100 Continue\r\n\r\n", Ok((100, true, None, b""))),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n0\r\n\r\n",
                Ok((200, true, None, b"")),
            ),
            (
                b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
                Ok((200, true, None, b"abc")),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000003\r\nabc\r\n000\r\n\r\n",
                Ok((200, true, None, b"abc")),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
                Ok((200, true, None, b"0123456789")),
            ),
            // Close-delimited: incomplete until the connection ends.
            (b"HTTP/1.1 200 OK\r\n\r\nabc", Err(None)),
            // Errors.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                Err(Some(ResponseError::BadContentLength)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                Err(Some(ResponseError::BadContentLength)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 65537\r\n\r\n",
                Err(Some(ResponseError::BodyTooLarge)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                Err(Some(ResponseError::BadTransferEncoding)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Err(Some(ResponseError::BadTransferEncoding)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(Some(ResponseError::BadTransferEncoding)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
                Err(Some(ResponseError::BadChunk)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
                Err(Some(ResponseError::BadChunk)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
                Err(Some(ResponseError::BadChunk)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n",
                Err(Some(ResponseError::BadChunk)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
                Err(Some(ResponseError::BadChunk)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                Err(Some(ResponseError::BodyTooLarge)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n",
                Err(Some(ResponseError::BodyTooLarge)),
            ),
            (b"HTTP/2 200\r\n\r\n", Err(Some(ResponseError::Malformed))),
            (b"HTTP/1.1 2000 OK\r\n\r\n", Err(Some(ResponseError::Malformed))),
            (b"garbage\r\n\r\n", Err(Some(ResponseError::Malformed))),
            (b"", Err(None)),
        ];
        for (input, want) in cases {
            let got = frame(input).map(|(s, k, r, b, _)| (s, k, r, b));
            let want = want.map(|(s, k, r, b)| (s, k, r, b.to_vec()));
            assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn complete_answers_use_exactly_their_bytes() {
        for whole in [KESTREL_OK, KESTREL_EMPTY_500, MULTI_CHUNK] {
            let (.., used) = frame(whole).unwrap();
            assert_eq!(used, whole.len());
        }
    }

    #[test]
    fn every_proper_prefix_is_partial() {
        for whole in [KESTREL_OK, KESTREL_EMPTY_500, MULTI_CHUNK] {
            for cut in 0..whole.len() {
                assert_eq!(
                    frame(&whole[..cut]),
                    Err(None),
                    "cut at {cut} of {:?}",
                    String::from_utf8_lossy(whole)
                );
                assert_eq!(
                    frame_at(&whole[..cut], true),
                    Err(Some(ResponseError::Truncated)),
                    "cut at {cut} at eof"
                );
            }
        }
    }

    #[test]
    fn chunked_split_at_every_offset_decodes_once_whole() {
        // A reader that re-frames after each read sees Partial for the first part and the
        // same answer as the whole once the second part arrives.
        let whole = frame(MULTI_CHUNK).unwrap();
        for split in 0..=MULTI_CHUNK.len() {
            let mut buf = MULTI_CHUNK[..split].to_vec();
            if split < MULTI_CHUNK.len() {
                assert_eq!(frame(&buf), Err(None));
            }
            buf.extend_from_slice(&MULTI_CHUNK[split..]);
            assert_eq!(frame(&buf).unwrap(), whole);
        }
    }

    #[test]
    fn pipelined_answers_frame_one_at_a_time() {
        let mut batch = Vec::new();
        batch.extend_from_slice(KESTREL_OK);
        batch.extend_from_slice(KESTREL_EMPTY_500);
        batch.extend_from_slice(MULTI_CHUNK);
        batch.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let mut at = 0;
        let mut seen = Vec::new();
        while at < batch.len() {
            let (status, _, _, body, used) = frame(&batch[at..]).unwrap();
            seen.push((status, body));
            at += used;
        }
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [200, 500, 200, 200]);
        assert_eq!(seen[2].1, b"hello world");
        assert_eq!(seen[3].1, b"ok");
    }

    #[test]
    fn close_delimited_body_ends_at_eof() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
        assert_eq!(frame(buf), Err(None));
        assert_eq!(
            frame_at(buf, true),
            Ok((200, false, None, b"until the end".to_vec(), buf.len()))
        );
        let empty = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(frame_at(empty, true), Ok((200, false, None, Vec::new(), empty.len())));
        // Framed answers need no EOF, and EOF does not change them.
        assert_eq!(frame_at(KESTREL_OK, true), frame(KESTREL_OK));
        assert_eq!(frame_at(b"", true), Err(Some(ResponseError::Truncated)));
    }

    #[test]
    fn limits() {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Fill: ".to_vec();
        head.resize(MAX_HEAD_BYTES + 1, b'a');
        assert_eq!(frame(&head), Err(Some(ResponseError::HeadTooLarge)));
        head.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(frame(&head), Err(Some(ResponseError::HeadTooLarge)));

        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(frame(&many), Err(Some(ResponseError::HeadTooLarge)));

        // Exactly the body limit is fine, in one chunk or many.
        let mut ok = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..16 {
            ok.extend_from_slice(b"1000\r\n");
            ok.extend_from_slice(&[b'x'; 0x1000]);
            ok.extend_from_slice(b"\r\n");
        }
        ok.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(frame(&ok).unwrap().3.len(), MAX_BODY_BYTES);
        // One more byte across chunks is refused as soon as its size line is read.
        let mut over = ok[..ok.len() - 5].to_vec();
        over.extend_from_slice(b"1\r\n");
        assert_eq!(frame(&over), Err(Some(ResponseError::BodyTooLarge)));

        // A close-delimited body over the limit is refused before EOF.
        let mut until_close = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        until_close.resize(until_close.len() + MAX_BODY_BYTES + 1, b'y');
        assert_eq!(frame(&until_close), Err(Some(ResponseError::BodyTooLarge)));

        // Endless chunk extensions cannot keep a response partial past the framing limit.
        let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        endless.resize(MAX_RESPONSE_BYTES, b'e');
        assert_eq!(frame(&endless), Err(Some(ResponseError::BodyTooLarge)));
        endless.pop();
        assert_eq!(frame(&endless), Err(None));
    }

    #[test]
    fn no_single_byte_mutation_panics() {
        for whole in [KESTREL_OK, MULTI_CHUNK] {
            let mut buf = whole.to_vec();
            for i in 0..buf.len() {
                let orig = buf[i];
                for b in [0u8, b'\r', b'\n', b' ', b':', b';', 0xff, b'0', b'f', b'9'] {
                    buf[i] = b;
                    if let Ok((.., used)) = frame(&buf) {
                        assert!(used <= buf.len());
                    }
                    let _ = frame_at(&buf, true);
                }
                buf[i] = orig;
            }
        }
    }

    #[test]
    fn reasons_are_sentences() {
        use ResponseError::*;
        for e in [
            Malformed,
            HeadTooLarge,
            BodyTooLarge,
            BadContentLength,
            BadTransferEncoding,
            BadChunk,
            Truncated,
        ] {
            assert!(!e.reason().is_empty());
            assert_eq!(e.to_string(), e.reason());
        }
    }
}
