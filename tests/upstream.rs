//! The processor connection pools against scripted fake processors on 127.0.0.1:0, driven by
//! a `mio::Poll` loop of the test's own (what the reactor does for a service's sockets).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use payrelay::base::clock::{Clock, Now};
use payrelay::base::payment::Processor;
use payrelay::base::uuid::{parse_uuid, Uuid};
use payrelay::dispatch::{Call, Completion, Outcome, ProcessorHealth, RequestId};
use payrelay::upstream::{Upstream, UpstreamConfig};

const TOKEN_BASE: usize = 1 << 20;
/// Nothing listens here; the fallback pool is never used by these tests.
const UNUSED_URL: &str = "http://127.0.0.1:9";
/// 12:34:56.789 on 2025-07-15, as the lookups below answer it.
const STORED_AT_MS: u64 = 1_752_582_896_789;

fn id(n: u64) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    Uuid(bytes)
}

fn payment(n: u64) -> Call {
    Call::Payment {
        id: id(n),
        cents: 1990,
        requested_at_ms: STORED_AT_MS,
    }
}

/// A request as the fake processor read it.
#[derive(Clone, Debug)]
struct SeenRequest {
    head: String,
    body: String,
}

impl SeenRequest {
    fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }
}

/// What the fake processor does after reading a request.
enum Step {
    /// Writes these bytes at once.
    Write(Vec<u8>),
    /// Writes these bytes one at a time, flushing each (TCP_NODELAY) with a pause.
    WriteBytewise(Vec<u8>),
    /// Waits.
    Sleep(u64),
    /// Closes the connection.
    Close,
}

/// A fake processor: every connection is served on its own thread by `script`, which maps
/// each request to steps.
struct FakeProcessor {
    port: u16,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    /// Receives one message per request read (the path), to know it reached the server.
    arrivals: mpsc::Receiver<String>,
    /// Receives one message per connection that ended, seen from the server side.
    ended: mpsc::Receiver<()>,
}

impl FakeProcessor {
    fn start(script: impl Fn(&SeenRequest) -> Vec<Step> + Send + Sync + 'static) -> FakeProcessor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (arrived, arrivals) = mpsc::channel();
        let (end_tx, ended) = mpsc::channel();
        let script = Arc::new(script);
        {
            let accepted = accepted.clone();
            let seen = seen.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { return };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (script, seen, arrived, end_tx) =
                        (script.clone(), seen.clone(), arrived.clone(), end_tx.clone());
                    thread::spawn(move || {
                        serve(stream, &*script, &seen, &arrived);
                        let _ = end_tx.send(());
                    });
                }
            });
        }
        FakeProcessor {
            port,
            accepted,
            seen,
            arrivals,
            ended,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until the server has read a request; returns its path.
    fn wait_arrival(&self) -> String {
        self.arrivals
            .recv_timeout(Duration::from_secs(5))
            .expect("request never arrived")
    }
}

fn serve(
    mut stream: TcpStream,
    script: &(dyn Fn(&SeenRequest) -> Vec<Step> + Send + Sync),
    seen: &Mutex<Vec<SeenRequest>>,
    arrived: &mpsc::Sender<String>,
) {
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut pending = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut pending) {
        seen.lock().unwrap().push(request.clone());
        let _ = arrived.send(request.path().to_string());
        for step in script(&request) {
            let ok = match step {
                Step::Write(bytes) => stream.write_all(&bytes).is_ok(),
                Step::WriteBytewise(bytes) => bytes.iter().all(|b| {
                    thread::sleep(Duration::from_micros(200));
                    stream.write_all(std::slice::from_ref(b)).is_ok()
                }),
                Step::Sleep(ms) => {
                    thread::sleep(Duration::from_millis(ms));
                    true
                }
                Step::Close => false,
            };
            if !ok {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Reads one `Content-Length`-framed request; `None` at EOF or on a timeout.
fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<SeenRequest> {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).unwrap();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse::<usize>().unwrap());
            let total = end + 4 + length;
            if pending.len() >= total {
                let body = String::from_utf8(pending[end + 4..total].to_vec()).unwrap();
                pending.drain(..total);
                return Some(SeenRequest { head, body });
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Kestrel's framing of a JSON answer: one chunk (none for an empty body), then the
/// terminator.
fn chunked(status: &str, body: &str, extra: &str) -> Vec<u8> {
    let chunk = if body.is_empty() {
        String::new()
    } else {
        format!("{:x}\r\n{body}\r\n", body.len())
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\nDate: Thu, 10 Jul 2025 12:34:56 GMT\r\nServer: Kestrel\r\n{extra}Transfer-Encoding: chunked\r\n\r\n{chunk}0\r\n\r\n"
    )
    .into_bytes()
}

fn processed() -> Vec<u8> {
    chunked("200 OK", r#"{"message":"payment processed successfully"}"#, "")
}

/// The official processor's answers: payments 200, health, lookups naming the id asked.
fn kestrel(request: &SeenRequest) -> Vec<Step> {
    let path = request.path();
    if path == "/payments/service-health" {
        vec![Step::Write(chunked(
            "200 OK",
            r#"{"failing":false,"minResponseTime":42}"#,
            "",
        ))]
    } else if let Some(id) = path.strip_prefix("/payments/") {
        let body = format!(r#"{{"correlationId":"{id}","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"}}"#);
        vec![Step::Write(chunked("200 OK", &body, ""))]
    } else {
        vec![Step::Write(processed())]
    }
}

/// The test's event loop around one `Upstream`.
struct Loop {
    poll: Poll,
    events: Events,
    clock: Clock,
    upstream: Upstream,
    done: Vec<Completion>,
}

impl Loop {
    fn new(url: &str, pool_size: usize, connect_timeout_ms: u64) -> Loop {
        let config = UpstreamConfig {
            urls: [url.to_string(), UNUSED_URL.to_string()],
            pool_size: [pool_size, 1],
            connect_timeout_ms,
        };
        Loop {
            poll: Poll::new().unwrap(),
            events: Events::with_capacity(64),
            clock: Clock::new(),
            upstream: Upstream::new(config, TOKEN_BASE).unwrap(),
            done: Vec::new(),
        }
    }

    fn now(&self) -> Now {
        self.clock.now()
    }

    fn submit(&mut self, request: RequestId, call: Call) {
        let now = self.now();
        self.upstream
            .handle_call(self.poll.registry(), now, Processor::Default, request, call);
        self.collect();
    }

    /// Cancels `request` and returns its completion, if the upstream still knew it.
    fn cancel(&mut self, request: RequestId) -> Option<Completion> {
        let now = self.now();
        self.upstream.handle_cancel(self.poll.registry(), now, request);
        self.collect();
        let at = self.done.iter().position(|c| c.request == request)?;
        Some(self.done.remove(at))
    }

    /// Moves the upstream's completions to `done`.
    fn collect(&mut self) {
        while let Some(c) = self.upstream.poll_completion() {
            self.done.push(c);
        }
    }

    /// One loop turn: poll (no longer than the upstream's next deadline or 20 ms), hand the
    /// events over as the reactor does, then tick.
    fn turn(&mut self) {
        let now = self.now();
        let wait = self
            .upstream
            .poll_timeout()
            .map_or(20, |d| d.saturating_sub(now.mono_ms).min(20));
        self.poll
            .poll(&mut self.events, Some(Duration::from_millis(wait)))
            .unwrap();
        let now = self.now();
        for event in self.events.iter() {
            let token = event.token();
            assert!(self.upstream.owns(token), "stray token {token:?}");
            self.upstream.handle_event(self.poll.registry(), now, token);
        }
        self.upstream.handle_timeout(self.poll.registry(), now);
        self.collect();
    }

    /// Turns the loop until `request` completes (5 s at most) and returns its outcome.
    fn wait_for(&mut self, request: RequestId) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(at) = self.done.iter().position(|c| c.request == request) {
                let c = self.done.remove(at);
                assert_eq!(c.processor, Processor::Default);
                return c.outcome;
            }
            assert!(Instant::now() < deadline, "request {request} never completed");
            self.turn();
        }
    }

    /// Turns the loop for `ms` milliseconds.
    fn run_for(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until {
            self.turn();
        }
    }

    fn stats(&self) -> payrelay::upstream::PoolStats {
        self.upstream.stats(Processor::Default)
    }
}

#[test]
fn keep_alive_reuses_one_connection_for_sequential_requests() {
    let server = FakeProcessor::start(kestrel);
    let mut l = Loop::new(&server.url(), 4, 1000);
    for n in 0..30 {
        l.submit(n, payment(n));
        assert_eq!(l.wait_for(n), Outcome::status(200));
    }
    assert_eq!(server.accepted(), 1);
    let stats = l.stats();
    assert_eq!((stats.open, stats.idle, stats.busy, stats.queued), (1, 1, 0, 0));

    // The bytes the processor read: our golden POST.
    let first = &server.seen()[0];
    let mut text = [0u8; 36];
    id(0).write_canonical(&mut text);
    let text = std::str::from_utf8(&text).unwrap();
    assert_eq!(
        first.head,
        format!(
            "POST /payments HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}",
            server.port,
            first.body.len()
        )
    );
    assert_eq!(
        first.body,
        format!(r#"{{"correlationId":"{text}","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"}}"#)
    );
}

#[test]
fn chunked_and_content_length_answers_are_read() {
    let server = FakeProcessor::start(|request| {
        if request.body.contains("00000000-0000-0000-0000-000000000001") {
            vec![Step::Write(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nServer: Kestrel\r\n\r\n".to_vec(),
            )]
        } else if request.body.contains("00000000-0000-0000-0000-000000000002") {
            vec![Step::Write(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 9\r\n\r\nslow down".to_vec(),
            )]
        } else if request.body.contains("00000000-0000-0000-0000-000000000003") {
            vec![Step::Write(chunked("422 Unprocessable Entity", "", ""))]
        } else {
            kestrel(request)
        }
    });
    let mut l = Loop::new(&server.url(), 1, 1000);
    l.submit(1, payment(1));
    assert_eq!(l.wait_for(1), Outcome::status(500));
    l.submit(2, payment(2));
    assert_eq!(
        l.wait_for(2),
        Outcome::Answered {
            status: 429,
            requested_at_ms: None,
            amount_cents: None,
            health: None,
            retry_after_s: Some(3)
        }
    );
    l.submit(3, payment(3));
    assert_eq!(l.wait_for(3), Outcome::status(422));
    l.submit(4, Call::Health);
    assert_eq!(
        l.wait_for(4),
        Outcome::Answered {
            status: 200,
            requested_at_ms: None,
            amount_cents: None,
            health: Some(ProcessorHealth {
                failing: false,
                min_response_ms: 42
            }),
            retry_after_s: None
        }
    );
    l.submit(5, Call::Lookup { id: id(77) });
    assert_eq!(
        l.wait_for(5),
        Outcome::Answered {
            status: 200,
            requested_at_ms: Some(STORED_AT_MS),
            amount_cents: Some(1990),
            health: None,
            retry_after_s: None
        }
    );
    assert_eq!(server.accepted(), 1);
    let paths: Vec<String> = server.seen().iter().map(|r| r.path().to_string()).collect();
    assert_eq!(paths[3], "/payments/service-health");
    assert_eq!(paths[4], "/payments/00000000-0000-0000-0000-00000000004d");
}

#[test]
fn answers_written_one_byte_at_a_time() {
    let server = FakeProcessor::start(|request| {
        let Step::Write(bytes) = kestrel(request).remove(0) else {
            unreachable!()
        };
        vec![Step::WriteBytewise(bytes)]
    });
    let mut l = Loop::new(&server.url(), 1, 1000);
    l.submit(1, payment(1));
    assert_eq!(l.wait_for(1), Outcome::status(200));
    l.submit(2, Call::Lookup { id: id(2) });
    assert!(matches!(
        l.wait_for(2),
        Outcome::Answered {
            status: 200,
            requested_at_ms: Some(STORED_AT_MS),
            ..
        }
    ));
    assert_eq!(server.accepted(), 1);
}

#[test]
fn server_closing_after_each_answer() {
    // With `Connection: close` the client closes; without it the server's FIN reaches an
    // idle connection, which is dropped quietly. Either way the next request gets a new one.
    let server = FakeProcessor::start(|request| {
        // Even ids announce the close; odd ones just close.
        let announce = request.body.as_bytes()[53] % 2 == 0;
        let extra = if announce { "Connection: close\r\n" } else { "" };
        vec![
            Step::Write(chunked(
                "200 OK",
                r#"{"message":"payment processed successfully"}"#,
                extra,
            )),
            Step::Close,
        ]
    });
    let mut l = Loop::new(&server.url(), 2, 1000);
    for n in 0..6 {
        l.submit(n, payment(n));
        assert_eq!(l.wait_for(n), Outcome::status(200));
        // Let the FIN arrive at the idle connection before the next request.
        l.run_for(20);
        assert_eq!(l.stats().open, 0, "after request {n}");
    }
    l.submit(100, payment(100));
    assert_eq!(l.wait_for(100), Outcome::status(200));
    assert_eq!(server.accepted(), 7);
}

#[test]
fn server_closing_before_answering_is_ambiguous() {
    let server = FakeProcessor::start(|_| vec![Step::Close]);
    let mut l = Loop::new(&server.url(), 1, 1000);
    l.submit(1, payment(1));
    assert_eq!(l.wait_for(1), Outcome::Failed { written: true });
    // A half-written answer then a close is no answer either.
    let half = FakeProcessor::start(|_| {
        vec![
            Step::Write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2c\r\n{\"mess".to_vec()),
            Step::Close,
        ]
    });
    let mut l = Loop::new(&half.url(), 1, 1000);
    l.submit(2, payment(2));
    assert_eq!(l.wait_for(2), Outcome::Failed { written: true });
    // And the pool recovers: the next request opens a new connection.
    l.submit(3, payment(3));
    assert_eq!(l.wait_for(3), Outcome::Failed { written: true });
    assert_eq!(half.accepted(), 2);
}

#[test]
fn close_delimited_answer_ends_at_eof() {
    let server = FakeProcessor::start(|_| {
        vec![
            Step::Write(b"HTTP/1.0 200 OK\r\n\r\n{\"message\":\"ok\"}".to_vec()),
            Step::Close,
        ]
    });
    let mut l = Loop::new(&server.url(), 1, 1000);
    l.submit(1, payment(1));
    assert_eq!(l.wait_for(1), Outcome::status(200));
    assert_eq!(l.stats().open, 0);
}

#[test]
fn refused_connect_fails_unsent_then_backs_off() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut l = Loop::new(&format!("http://127.0.0.1:{port}"), 2, 1000);
    l.submit(1, payment(1));
    assert_eq!(l.wait_for(1), Outcome::Failed { written: false });
    let stats = l.stats();
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(stats.connecting + stats.open, 0);
    // Submitted during the backoff: queued, then tried (and refused) when it ends.
    l.submit(2, payment(2));
    assert_eq!(l.stats().queued, 1);
    assert_eq!(l.wait_for(2), Outcome::Failed { written: false });
    assert_eq!(l.stats().connect_failures, 2);
}

#[test]
fn connect_timeout_fails_unsent() {
    // A listener whose accept queue is full (backlog 0, never accepting) leaves further
    // handshakes unanswered: the kernel drops their SYNs.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    payrelay::net::sys::widen_backlog(listener.as_raw_fd(), 0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    while let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
        fillers.push(s);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    let mut l = Loop::new(&format!("http://{addr}"), 1, 150);
    let started = Instant::now();
    l.submit(1, payment(1));
    assert_eq!(l.wait_for(1), Outcome::Failed { written: false });
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(140), "took {took:?}");
    assert_eq!(l.stats().connect_failures, 1);
}

#[test]
fn pool_limit_is_respected_and_queue_served_in_order() {
    let server = FakeProcessor::start(|request| {
        let mut steps = vec![Step::Sleep(30)];
        steps.extend(kestrel(request));
        steps
    });
    // Pool of two: never more than two connections, whatever the burst.
    let mut l = Loop::new(&server.url(), 2, 1000);
    for n in 0..8 {
        l.submit(n, payment(n));
    }
    let stats = l.stats();
    assert_eq!(stats.connecting + stats.open, 2);
    assert_eq!(stats.queued, 6);
    for n in 0..8 {
        assert_eq!(l.wait_for(n), Outcome::status(200));
        assert!(l.stats().connecting + l.stats().open <= 2);
    }
    assert_eq!(server.accepted(), 2);

    // Pool of one: the queue is served strictly in submission order.
    let mut l = Loop::new(&server.url(), 1, 1000);
    for n in 10..16 {
        l.submit(n, payment(n));
    }
    let mut order = Vec::new();
    while order.len() < 6 {
        l.turn();
        order.extend(l.done.drain(..).map(|c| c.request));
    }
    assert_eq!(order, (10..16).collect::<Vec<_>>());
    let tail: Vec<String> = server.seen()[8..].iter().map(|r| r.body[18..54].to_string()).collect();
    let expected: Vec<String> = (10..16)
        .map(|n| {
            let mut t = [0u8; 36];
            id(n).write_canonical(&mut t);
            String::from_utf8(t.to_vec()).unwrap()
        })
        .collect();
    assert_eq!(tail, expected);
}

#[test]
fn cancel_queued_and_on_the_wire() {
    let server = FakeProcessor::start(|request| {
        let mut steps = vec![Step::Sleep(if request.path().ends_with("1") { 300 } else { 0 })];
        steps.extend(kestrel(request));
        steps
    });
    let mut l = Loop::new(&server.url(), 1, 1000);
    l.submit(1, Call::Lookup { id: id(1) });
    l.submit(2, Call::Lookup { id: id(2) });
    assert_eq!(l.stats().queued, 1);
    // Queued: dropped, certainly unsent.
    assert_eq!(
        l.cancel(2),
        Some(Completion {
            request: 2,
            processor: Processor::Default,
            outcome: Outcome::Failed { written: false }
        })
    );
    assert_eq!(l.stats().queued, 0);
    // On the wire (the server has read it): the connection is closed.
    while server.arrivals.try_recv().is_err() {
        l.turn();
    }
    assert_eq!(l.cancel(1).map(|c| c.outcome), Some(Outcome::Failed { written: true }));
    assert_eq!(l.stats().open, 0);
    assert_eq!(l.cancel(1), None, "a cancelled request is gone");
    // The next request rides a new connection and gets its own answer, never request 1's
    // late one (a lookup answer names its id, and the pool checks it).
    l.submit(3, Call::Lookup { id: id(3) });
    assert!(matches!(
        l.wait_for(3),
        Outcome::Answered {
            status: 200,
            requested_at_ms: Some(STORED_AT_MS),
            ..
        }
    ));
    assert_eq!(server.accepted(), 2);
    assert_eq!(server.wait_arrival(), "/payments/00000000-0000-0000-0000-000000000003");
    server
        .ended
        .recv_timeout(Duration::from_secs(2))
        .expect("cancelled connection closed");
    l.run_for(350);
    assert!(l.done.is_empty(), "late answers must not surface: {:?}", l.done);
}

#[test]
fn cancel_while_connecting_keeps_the_connection_for_the_next_request() {
    let server = FakeProcessor::start(kestrel);
    let mut l = Loop::new(&server.url(), 1, 1000);
    l.submit(1, payment(1));
    assert_eq!(l.stats().connecting, 1);
    assert_eq!(l.cancel(1).map(|c| c.outcome), Some(Outcome::Failed { written: false }));
    l.submit(2, payment(2));
    assert_eq!(l.wait_for(2), Outcome::status(200));
    assert_eq!(server.accepted(), 1);
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn localhost_is_resolved_off_the_loop() {
    let server = FakeProcessor::start(kestrel);
    let mut l = Loop::new(&format!("http://localhost:{}", server.port), 1, 1000);
    assert!(l.stats().resolving);
    l.submit(1, payment(1));
    assert_eq!(l.wait_for(1), Outcome::status(200));
    let stats = l.stats();
    assert!(!stats.resolving);
    assert_eq!(
        stats.address,
        Some(format!("127.0.0.1:{}", server.port).parse().unwrap())
    );
    assert!(server.seen()[0]
        .head
        .contains(&format!("\r\nHost: localhost:{}\r\n", server.port)));
}

/// Issue 14: a request waiting for a name that does not resolve was kept queued until the
/// dispatcher gave up on it (10 s and more), so payments waited for an unreachable default.
#[test]
fn unresolvable_name_fails_requests_unwritten_and_keeps_the_loop_running() {
    let mut l = Loop::new("http://payrelay-no-such-host.invalid:8080", 1, 1000);
    l.submit(1, payment(1));
    let started = Instant::now();
    l.run_for(300);
    // The loop kept turning (no blocking lookup on it).
    assert!(started.elapsed() < Duration::from_millis(1000));
    // Once the lookup has failed, the request ends never sent.
    assert_eq!(l.wait_for(1), Outcome::Failed { written: false });
    let stats = l.stats();
    assert!(stats.resolving);
    assert_eq!((stats.queued, stats.address), (0, None));
    // So does one submitted while the name is still unknown.
    l.submit(2, payment(2));
    assert_eq!(l.wait_for(2), Outcome::Failed { written: false });
}

#[test]
fn bad_configuration_is_refused_with_a_reason() {
    let config = |url: &str, size| UpstreamConfig {
        urls: [UNUSED_URL.to_string(), url.to_string()],
        pool_size: [1, size],
        connect_timeout_ms: 100,
    };
    let err = Upstream::new(config("https://x:8080", 1), TOKEN_BASE).err().unwrap();
    assert_eq!(err.processor, Processor::Fallback);
    assert!(err.to_string().contains("https is not supported"), "{err}");
    let err = Upstream::new(config("http://x:8080", 0), TOKEN_BASE).err().unwrap();
    assert!(err.to_string().contains("at least 1"), "{err}");
    let up = Upstream::new(config("http://x:8080", 3), TOKEN_BASE).unwrap();
    assert!(up.owns(Token(TOKEN_BASE)) && up.owns(Token(TOKEN_BASE + 3)));
    assert!(!up.owns(Token(TOKEN_BASE + 4)) && !up.owns(Token(TOKEN_BASE - 1)));
    assert_eq!(parse_uuid(b"00000000-0000-0000-0000-000000000001"), Some(id(1)));
}
