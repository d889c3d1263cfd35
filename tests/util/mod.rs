//! Helpers shared by the integration tests: servers on port 0 in threads, real processes
//! with their own segment files, and raw-byte HTTP clients.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A fresh path under the temp dir, unique per process and call.
pub fn temp_path(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("payrelay-test-{}-{n}-{name}", std::process::id()))
}

/// Connects to 127.0.0.1:`port` with a read timeout so a test can never hang.
pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// One parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Reads exactly one `Content-Length`-framed or chunked response from `s`, keeping any
/// bytes that follow in `pending`. Panics on timeout or malformed input.
pub fn read_response(s: &mut impl Read, pending: &mut Vec<u8>) -> Response {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = find(pending, b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).unwrap();
            let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
            let mut r = Response {
                status,
                head,
                body: Vec::new(),
            };
            if let Some(len) = r.header("content-length") {
                let len: usize = len.parse().unwrap();
                let total = end + 4 + len;
                while pending.len() < total {
                    fill(s, pending, deadline);
                }
                r.body = pending[end + 4..total].to_vec();
                pending.drain(..total);
                return r;
            }
            if r.header("transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
            {
                let mut at = end + 4;
                loop {
                    let line_end = loop {
                        match find(&pending[at..], b"\r\n") {
                            Some(i) => break at + i,
                            None => fill(s, pending, deadline),
                        }
                    };
                    let size =
                        usize::from_str_radix(std::str::from_utf8(&pending[at..line_end]).unwrap().trim(), 16).unwrap();
                    let need = line_end + 2 + size + 2;
                    while pending.len() < need {
                        fill(s, pending, deadline);
                    }
                    r.body.extend_from_slice(&pending[line_end + 2..line_end + 2 + size]);
                    at = need;
                    if size == 0 {
                        break;
                    }
                }
                pending.drain(..at);
                return r;
            }
            pending.drain(..end + 4);
            return r;
        }
        fill(s, pending, deadline);
    }
}

fn fill(s: &mut impl Read, pending: &mut Vec<u8>, deadline: Instant) {
    assert!(
        Instant::now() < deadline,
        "timed out waiting for a response; have {:?}",
        String::from_utf8_lossy(pending)
    );
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => panic!("connection closed; have {:?}", String::from_utf8_lossy(pending)),
        Ok(n) => pending.extend_from_slice(&buf[..n]),
        // A signal meant for another thread of the test binary (a child's SIGCHLD, say).
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => panic!("read failed: {e}; have {:?}", String::from_utf8_lossy(pending)),
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// True when the peer closed `s` (EOF) within the read timeout, after any leftover bytes.
pub fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Sends one request on a new connection and returns the response.
pub fn request(port: u16, raw: &[u8]) -> Response {
    let mut s = connect(port);
    s.write_all(raw).unwrap();
    read_response(&mut s, &mut Vec::new())
}

/// A `POST` with a body and `Content-Length`.
pub fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A `GET` with no body.
pub fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of a binary of this package built for the integration tests.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "payrelay" => PathBuf::from(env!("CARGO_BIN_EXE_payrelay")),
        "payment-processor-sim" => PathBuf::from(env!("CARGO_BIN_EXE_payment-processor-sim")),
        other => panic!("unknown binary {other}"),
    }
}

/// Picks a free TCP port on loopback (bind to 0, read, release).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `port` accepts connections, or panics after `secs`.
pub fn wait_for_port(port: u16, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts the backend binary listening on `port` (and the extra `LISTEN` entries) with the
/// given segment, and waits until it answers.
pub fn start_backend(port: u16, segment: &Path, extra_env: &[(&str, &str)]) -> Proc {
    spawn_backend(port, segment, extra_env, Stdio::inherit())
}

/// As [`start_backend`], with stderr piped, so a test may read what it reported after it
/// exited (it writes a few lines only, so the pipe never fills).
pub fn start_backend_piped(port: u16, segment: &Path, extra_env: &[(&str, &str)]) -> Proc {
    spawn_backend(port, segment, extra_env, Stdio::piped())
}

fn spawn_backend(port: u16, segment: &Path, extra_env: &[(&str, &str)], stderr: Stdio) -> Proc {
    let mut cmd = Command::new(bin("payrelay"));
    cmd.env("LISTEN", format!("127.0.0.1:{port}"))
        .env("SHARED_MEMORY_PATH", segment)
        .env("SEGMENT_CAPACITY", "65536")
        .env("SERVER_ID", format!("test-{port}"))
        // No processor unless a test names one: port 1 refuses connections at once.
        .env("PAYMENT_PROCESSOR_URL_DEFAULT", "http://127.0.0.1:1")
        .env("PAYMENT_PROCESSOR_URL_FALLBACK", "http://127.0.0.1:1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    spawn_and_wait(cmd, "payrelay", port)
}

/// Spawns `cmd` and waits until it answers on `port`.
fn spawn_and_wait(mut cmd: Command, name: &str, port: u16) -> Proc {
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let p = Proc {
        child,
        name: format!("{name}:{port}"),
    };
    wait_for_port(port, 10);
    p
}

/// Starts the processor simulator on 127.0.0.1:`port` with the given environment and waits
/// until it answers. Its stderr is piped, so a test may read what it reported after killing it.
pub fn start_sim(port: u16, env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(bin("payment-processor-sim"));
    cmd.env("SIM_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn_and_wait(cmd, "payment-processor-sim", port)
}
