//! Issue 16: SIGTERM under load. Two real `payrelay` processes over one segment, two
//! simulators; load goes to instance A only, which is then stopped. A clean stop records the
//! answer to every request it had sent before it exits (so the books agree at once, with no
//! payment stored at a processor and unrecorded), hands its unsent payments to B, exits within
//! its stop timeout, and loses and duplicates nothing. Also the connection side that nginx
//! relies on: idle connections close at once, a request already begun is answered.

mod util;

use std::io::{Read, Write};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use util::*;

struct World {
    sims: [u16; 2],
    apis: [u16; 2],
    segment: std::path::PathBuf,
    procs: Vec<Proc>,
}

impl World {
    /// Both simulators sleep `delay_ms` per payment; A has `stop_timeout_ms`.
    fn start(delay_ms: u64, stop_timeout_ms: u64) -> (World, Proc) {
        let delay = delay_ms.to_string();
        let sims = [free_port(), free_port()];
        let mut procs = vec![
            start_sim(sims[0], &[("SIM_DELAY_MS", &delay), ("TRANSACTION_FEE", "0.05")]),
            start_sim(sims[1], &[("SIM_DELAY_MS", &delay), ("TRANSACTION_FEE", "0.15")]),
        ];
        let urls = sims.map(|p| format!("http://127.0.0.1:{p}"));
        let env = [
            ("PAYMENT_PROCESSOR_URL_DEFAULT", urls[0].as_str()),
            ("PAYMENT_PROCESSOR_URL_FALLBACK", urls[1].as_str()),
        ];
        let segment = temp_path("clean-stop.seg");
        let apis = [free_port(), free_port()];
        let timeout = stop_timeout_ms.to_string();
        let mut a_env = env.to_vec();
        a_env.push(("STOP_TIMEOUT_MS", &timeout));
        let a = start_backend_piped(apis[0], &segment, &a_env);
        procs.push(start_backend(apis[1], &segment, &env));
        (
            World {
                sims,
                apis,
                segment,
                procs,
            },
            a,
        )
    }

    /// (count, cents) stored by simulator `i`, all time.
    fn books(&self, i: usize) -> (u64, u64) {
        let raw = "GET /admin/payments-summary HTTP/1.1\r\nHost: t\r\nX-Rinha-Token: 123\r\n\r\n";
        let r = request(self.sims[i], raw.as_bytes());
        assert_eq!(r.status, 200);
        (
            number(r.body_str(), "totalRequests"),
            cents(r.body_str(), "totalAmount"),
        )
    }

    /// (count, cents) per processor in our summary, asked of instance B.
    fn ours(&self) -> [(u64, u64); 2] {
        let r = request(self.apis[1], &get("/payments-summary"));
        assert_eq!(r.status, 200);
        let body = r.body_str();
        let (d, f) = body.split_once("\"fallback\"").unwrap();
        [
            (number(d, "totalRequests"), cents(d, "totalAmount")),
            (number(f, "totalRequests"), cents(f, "totalAmount")),
        ]
    }

    fn assert_agree(&self, when: &str) {
        let ours = self.ours();
        let theirs = [self.books(0), self.books(1)];
        assert_eq!(ours, theirs, "ours vs the processors' books, {when}");
    }

    /// Waits until no payment in the segment is queued or in flight (B has resolved all).
    fn wait_settled(&self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let r = request(self.apis[1], &get("/stats"));
            let body = r.body_str();
            let seg = body.split("\"segment\":").nth(1).unwrap();
            if body.contains("\"pending\":") && number(seg, "pending") == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "not settled after {secs} s: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every acknowledged payment is stored exactly once across both processors.
    fn assert_each_stored_once(&self, acked: &[String]) {
        let stored = self.books(0).0 + self.books(1).0;
        assert_eq!(stored, acked.len() as u64, "stored at the processors vs answered 202");
        for id in acked.iter().step_by(17) {
            let found = (0..2)
                .filter(|&i| request(self.sims[i], &get(&format!("/payments/{id}"))).status == 200)
                .count();
            assert_eq!(found, 1, "payment {id} stored on {found} processors");
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.procs.clear();
        let _ = std::fs::remove_file(&self.segment);
    }
}

fn number(body: &str, key: &str) -> u64 {
    let at = body
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {body}"))
        + key.len()
        + 3;
    body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// An amount field as integer cents, whatever decimals it was printed with.
fn cents(body: &str, key: &str) -> u64 {
    let at = body.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    let text: String = body[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac: String = frac.chars().chain("00".chars()).take(2).collect();
    int.parse::<u64>().unwrap() * 100 + frac.parse::<u64>().unwrap()
}

/// Posts payments to `port` from `clients` connections, one every 20 ms each, until `stop`
/// or until the instance closes the connection (it stops). Returns the ids answered 202.
/// A request cut off by the close is not acknowledged, and so must not be stored either.
fn load(port: u16, tag: u32, clients: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let mut s = connect(port);
                    for n in 0u64.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let id = format!("{tag:08x}-{c:04x}-4000-8000-{n:012x}");
                        let body = format!(r#"{{"correlationId":"{id}","amount":12.34}}"#);
                        if s.write_all(&post("/payments", &body)).is_err() {
                            break;
                        }
                        let Some(head) = read_head(&mut s) else { break };
                        assert!(head.starts_with("HTTP/1.1 202 "), "{head}");
                        acked.push(id);
                        if head.to_ascii_lowercase().contains("connection: close") {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    acked
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    })
}

/// The head of a body-less answer, or `None` if the connection ends first.
fn read_head(s: &mut std::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8(head).unwrap())
}

/// Sends SIGTERM to `child` and waits up to `secs` for it to exit: (status, time it took).
fn terminate(child: &mut Child, secs: u64) -> (ExitStatus, Duration) {
    let start = Instant::now();
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "still running {secs} s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stderr_of(p: &mut Proc) -> String {
    let mut text = String::new();
    p.child.stderr.take().unwrap().read_to_string(&mut text).unwrap();
    text
}

#[test]
fn sigterm_under_load_records_every_answer_in_flight_then_hands_the_rest_over() {
    // Each payment takes 1 s at either processor: at the signal, A has a full pool of
    // attempts on the wire and a backlog it has not sent.
    let (world, mut a) = World::start(1_000, 5_000);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(world.apis[0], 1, 4, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(1_500));
    let (status, took) = terminate(&mut a.child, 8);
    // Agreement, checked before anything B takes over can land (1 s after B sends it, so
    // after A's exit): right away, and once every attempt A had sent has landed (1 s after
    // the signal). A stop that did not wait for its answers fails the second: payments
    // stored at a processor, unrecorded until B resolves them.
    world.assert_agree("right after A exited");
    if let Some(rest) = Duration::from_millis(1_050).checked_sub(took) {
        std::thread::sleep(rest);
    }
    world.assert_agree("once A's last attempts have landed");
    stop.store(true, Ordering::Relaxed);
    let acked = loader.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_millis(5_500), "A took {took:?} to stop");
    let log = stderr_of(&mut a);
    assert!(log.contains("every answer in"), "{log}");
    world.wait_settled(30);
    world.assert_each_stored_once(&acked);
    world.assert_agree("once settled");
}

#[test]
fn a_stop_that_outlasts_its_timeout_leaves_the_unanswered_to_the_next_instance() {
    // Answers take 3 s; A may wait 300 ms. It exits with attempts on the wire, which B
    // resolves where A sent them.
    let (world, mut a) = World::start(3_000, 300);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = load(world.apis[0], 2, 4, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(800));
    let (status, took) = terminate(&mut a.child, 8);
    stop.store(true, Ordering::Relaxed);
    let acked = loader.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_millis(1_500), "A took {took:?} to stop");
    let log = stderr_of(&mut a);
    assert!(log.contains("still unanswered"), "{log}");
    world.wait_settled(40);
    world.assert_each_stored_once(&acked);
    world.assert_agree("once settled");
}

#[test]
fn a_stopping_instance_closes_idle_connections_and_answers_a_request_it_has_begun() {
    let segment = temp_path("stop-conns.seg");
    let port = free_port();
    let mut a = start_backend(port, &segment, &[]);
    let mut idle = connect(port);
    idle.write_all(&get("/payments-summary")).unwrap();
    assert_eq!(read_response(&mut idle, &mut Vec::new()).status, 200);
    let mut busy = connect(port);
    let payment = post(
        "/payments",
        r#"{"correlationId":"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3","amount":19.90}"#,
    );
    let (head, tail) = payment.split_at(payment.len() - 10);
    busy.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(a.child.id() as i32, libc::SIGTERM) };
    // Waiting for nothing: closed at once, so a balancer stops choosing it.
    assert!(
        closed_by_peer(&mut idle),
        "an idle connection stays open while stopping"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting"
    );
    // Half-way through a request: it is answered, told the connection ends, and closed.
    busy.write_all(tail).unwrap();
    let r = read_response(&mut busy, &mut Vec::new());
    assert_eq!(r.status, 202);
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(closed_by_peer(&mut busy));
    let status = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "still running after its connections closed"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_file(&segment);
}
