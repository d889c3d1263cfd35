//! The reactor and the connection state machine over real sockets, with a small test
//! service: keep-alive, pipelining (including a deferred answer in the middle), requests
//! split at every byte, the limits, the timeouts, unix sockets, and a client that stops
//! reading while another is served.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use payrelay::http::{response, Method, Request, Status};
use payrelay::net::conn::ConnLimits;
use payrelay::net::event_loop::{Reactor, Stopper};
use payrelay::net::listen::ListenAddr;
use payrelay::net::service::{ConnRef, Cx, Reply, Service};
use util::*;

/// `POST /echo` answers its body; `GET /later?<ms>` answers after that many ms from a timer;
/// anything else is 404.
#[derive(Default)]
struct Echo {
    waiting: Vec<(ConnRef, u64)>,
}

impl Service for Echo {
    fn request(&mut self, cx: &mut Cx<'_>, conn: ConnRef, req: &Request<'_, '_>, out: &mut Vec<u8>) -> Reply {
        match (req.method, req.path) {
            (Method::Post, b"/echo") => {
                response::write(out, Status::OK, "text/plain", b"", req.body, false);
                Reply::Written
            }
            (Method::Get, b"/later") => {
                let ms: u64 = std::str::from_utf8(req.query).unwrap().parse().unwrap();
                self.waiting.push((conn, ms));
                cx.arm(cx.now.mono_ms + ms, (self.waiting.len() - 1) as u64);
                Reply::Deferred
            }
            _ => {
                response::error(out, Status::NOT_FOUND, "no such path", false);
                Reply::Written
            }
        }
    }

    fn timer(&mut self, cx: &mut Cx<'_>, key: u64) {
        let (conn, ms) = self.waiting[key as usize];
        cx.respond(conn, |out| {
            response::write(
                out,
                Status::OK,
                "text/plain",
                b"",
                format!("later {ms}").as_bytes(),
                false,
            )
        });
    }
}

struct Running {
    port: u16,
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn serve(extra: Vec<ListenAddr>, limits: ConnLimits) -> Running {
    let mut addrs = vec![ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())];
    addrs.extend(extra);
    let reactor = Reactor::bind(&addrs, limits, 64, Echo::default()).unwrap();
    let port = reactor.tcp_port().unwrap();
    let stopper = reactor.stopper();
    let thread = std::thread::spawn(move || {
        reactor.run().unwrap();
    });
    Running {
        port,
        stopper,
        thread: Some(thread),
    }
}

fn serve_default() -> Running {
    serve(Vec::new(), ConnLimits::default())
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let srv = serve_default();
    let mut s = connect(srv.port);
    let mut pending = Vec::new();
    for i in 0..50 {
        s.write_all(&post("/echo", &format!("n{i}"))).unwrap();
        let r = read_response(&mut s, &mut pending);
        assert_eq!((r.status, r.body_str()), (200, format!("n{i}").as_str()));
    }
}

#[test]
fn pipelined_batch_is_answered_in_order_even_around_a_deferred_answer() {
    let srv = serve_default();
    let mut s = connect(srv.port);
    let mut batch = Vec::new();
    batch.extend(post("/echo", "first"));
    batch.extend(get("/later?50"));
    batch.extend(post("/echo", "third"));
    batch.extend(get("/nope"));
    batch.extend(post("/echo", "fifth"));
    s.write_all(&batch).unwrap();
    let mut pending = Vec::new();
    let got: Vec<(u16, String)> = (0..5)
        .map(|_| read_response(&mut s, &mut pending))
        .map(|r| (r.status, r.body_str().to_string()))
        .collect();
    assert_eq!(got[0], (200, "first".into()));
    assert_eq!(got[1], (200, "later 50".into()));
    assert_eq!(got[2], (200, "third".into()));
    assert_eq!(got[3].0, 404);
    assert_eq!(got[4], (200, "fifth".into()));
}

#[test]
fn a_request_split_at_any_byte_is_reassembled() {
    let srv = serve_default();
    let req = post(
        "/echo",
        r#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.90}"#,
    );
    let mut s = connect(srv.port);
    let mut pending = Vec::new();
    for cut in 1..req.len() {
        s.write_all(&req[..cut]).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_micros(200));
        s.write_all(&req[cut..]).unwrap();
        let r = read_response(&mut s, &mut pending);
        assert_eq!(r.status, 200, "cut at {cut}");
        assert!(r.body_str().contains("19.90"));
    }
}

#[test]
fn a_client_sending_one_byte_at_a_time_is_served() {
    let srv = serve_default();
    let mut s = connect(srv.port);
    for b in post("/echo", "slow") {
        s.write_all(&[b]).unwrap();
    }
    let r = read_response(&mut s, &mut Vec::new());
    assert_eq!(r.body_str(), "slow");
}

fn expect_error_then_close(port: u16, raw: &[u8], status: u16) {
    let mut s = connect(port);
    s.write_all(raw).unwrap();
    let r = read_response(&mut s, &mut Vec::new());
    assert_eq!(
        r.status,
        status,
        "for {:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(60)])
    );
    assert!(r.body_str().starts_with("{\"error\":\""), "{}", r.body_str());
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(closed_by_peer(&mut s));
}

#[test]
fn limits_are_answered_with_the_right_status_and_a_close() {
    let srv = serve_default();
    let mut big_head = b"GET / HTTP/1.1\r\nX-Fill: ".to_vec();
    big_head.resize(9000, b'a');
    big_head.extend_from_slice(b"\r\n\r\n");
    expect_error_then_close(srv.port, &big_head, 431);
    expect_error_then_close(srv.port, b"POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", 413);
    expect_error_then_close(
        srv.port,
        b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        411,
    );
    expect_error_then_close(srv.port, b"HELLO\r\n\r\n", 400);
    expect_error_then_close(srv.port, b"POST /echo HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400);
}

#[test]
fn connection_close_is_honoured_after_the_answer() {
    let srv = serve_default();
    let mut s = connect(srv.port);
    s.write_all(b"POST /echo HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        .unwrap();
    let r = read_response(&mut s, &mut Vec::new());
    assert_eq!(r.body_str(), "ok");
    assert!(closed_by_peer(&mut s));
}

#[test]
fn half_close_still_gets_its_answers() {
    let srv = serve_default();
    let mut s = connect(srv.port);
    let mut batch = post("/echo", "a");
    batch.extend(post("/echo", "b"));
    s.write_all(&batch).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut pending = Vec::new();
    assert_eq!(read_response(&mut s, &mut pending).body_str(), "a");
    assert_eq!(read_response(&mut s, &mut pending).body_str(), "b");
    assert!(closed_by_peer(&mut s));
}

#[test]
fn a_client_gone_while_its_answer_is_deferred_costs_nothing() {
    // Regression: a deferred answer to a peer that had shut down its side used to spin the
    // loop forever (the resumed connection kept asking for a read it could never do).
    let srv = serve_default();
    let mut s = connect(srv.port);
    s.write_all(&get("/later?100")).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_response(&mut s, &mut Vec::new()).body_str(), "later 100");
    assert!(closed_by_peer(&mut s));
    let mut gone = connect(srv.port);
    gone.write_all(&get("/later?50")).unwrap();
    drop(gone);
    std::thread::sleep(Duration::from_millis(150));
    let r = request(srv.port, &post("/echo", "still serving"));
    assert_eq!(r.body_str(), "still serving");
}

#[test]
fn half_sent_and_idle_connections_time_out() {
    let srv = serve(
        Vec::new(),
        ConnLimits {
            idle_timeout_ms: 600,
            request_timeout_ms: 300,
        },
    );
    let mut half = connect(srv.port);
    half.write_all(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let mut idle = connect(srv.port);
    idle.write_all(&post("/echo", "x")).unwrap();
    let _ = read_response(&mut idle, &mut Vec::new());
    let start = Instant::now();
    let r = read_response(&mut half, &mut Vec::new());
    assert_eq!(r.status, 408);
    assert!(closed_by_peer(&mut half));
    assert!(closed_by_peer(&mut idle));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "idle closed too early: {waited:?}"
    );
}

#[test]
fn a_client_that_never_reads_does_not_hurt_others() {
    let srv = serve_default();
    let mut hog = connect(srv.port);
    hog.set_write_timeout(Some(Duration::from_millis(300))).unwrap();
    let req = post("/echo", &"z".repeat(1000));
    // Pipeline far more than the socket buffers hold and never read an answer.
    let mut sent = 0usize;
    while sent < 50_000_000 {
        match hog.write(&req) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 50_000_000, "the server kept reading a client that does not read");
    let r = request(srv.port, &post("/echo", "fine"));
    assert_eq!(r.body_str(), "fine");
}

#[test]
fn unix_socket_replaces_a_stale_socket_and_is_world_connectable() {
    let path = temp_path("api.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // stale file left behind
    assert!(std::fs::metadata(&path).unwrap().file_type().is_socket());
    let srv = serve(vec![ListenAddr::Unix(path.clone())], ConnLimits::default());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&post("/echo", "over unix")).unwrap();
    assert_eq!(read_response(&mut s, &mut Vec::new()).body_str(), "over unix");
    drop(s);
    drop(srv);
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

#[test]
fn a_regular_file_in_the_socket_path_is_refused_not_deleted() {
    let path = temp_path("not-a-socket");
    std::fs::write(&path, b"precious").unwrap();
    let addrs = [ListenAddr::Unix(path.clone())];
    let err = Reactor::bind(&addrs, ConnLimits::default(), 8, Echo::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn many_concurrent_clients() {
    let srv = serve_default();
    let port = srv.port;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut s: TcpStream = connect(port);
                let mut pending = Vec::new();
                for i in 0..200 {
                    let body = format!("{t}-{i}");
                    s.write_all(&post("/echo", &body)).unwrap();
                    assert_eq!(read_response(&mut s, &mut pending).body_str(), body);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
