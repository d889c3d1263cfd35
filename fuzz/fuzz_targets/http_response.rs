//! Response framing never panics and is self-consistent: a `Complete` answer uses at most the
//! bytes given, within the limits, and frames the same from exactly its own bytes; at EOF the
//! answer is never `Partial`; and any body sent chunked, split anywhere, decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use payrelay::http::client::{parse_response, ParseResponse, MAX_BODY_BYTES, MAX_RESPONSE_BYTES};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut body = Vec::new();
    if mode & 1 == 0 {
        // Raw bytes as a response.
        let at_eof = mode & 2 != 0;
        match parse_response(data, at_eof, &mut body) {
            ParseResponse::Complete(r) => {
                assert!(r.consumed <= data.len() && r.consumed <= MAX_RESPONSE_BYTES);
                assert!(body.len() <= MAX_BODY_BYTES && body.len() <= r.consumed);
                let mut again = Vec::new();
                assert_eq!(
                    parse_response(&data[..r.consumed], at_eof, &mut again),
                    ParseResponse::Complete(r)
                );
                assert_eq!(again, body);
            }
            ParseResponse::Partial => assert!(!at_eof && data.len() < MAX_RESPONSE_BYTES),
            ParseResponse::Invalid(_) => {}
        }
    } else {
        // The bytes as a body, chunked at sizes taken from the mode byte, then framed.
        let step = usize::from(mode >> 1).max(1);
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for chunk in data.chunks(step) {
            wire.extend_from_slice(format!("{:x};x=y\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\nTrailer: t\r\n\r\n");
        match parse_response(&wire, false, &mut body) {
            ParseResponse::Complete(r) => {
                assert_eq!(r.consumed, wire.len());
                assert_eq!(body, data);
            }
            other => assert!(
                data.len() > MAX_BODY_BYTES || wire.len() >= MAX_RESPONSE_BYTES,
                "{other:?}"
            ),
        }
        // A proper prefix of it is never complete.
        let cut = data.len() % wire.len();
        assert!(!matches!(
            parse_response(&wire[..cut], false, &mut body),
            ParseResponse::Complete(_)
        ));
    }
});
