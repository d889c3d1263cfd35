//! payrelay: read the configuration, map the shared segment, serve until told to stop.

use std::process::ExitCode;

use payrelay::app::cli::{invocation, Invocation};
use payrelay::app::config::{Config, HELP};
use payrelay::app::pipeline::Pipeline;
use payrelay::app::routes::Api;
use payrelay::base::clock::Clock;
use payrelay::dispatch::Dispatcher;
use payrelay::net::event_loop::Reactor;
use payrelay::net::service::SERVICE_TOKEN_BASE;
use payrelay::segment::Segment;
use payrelay::upstream::{Upstream, UpstreamConfig};

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match invocation("payrelay", HELP, &["--check"], arg.as_deref()) {
        Invocation::Run => {}
        Invocation::Flag(_) => return check(),
        Invocation::Exit(code) => return code,
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("payrelay: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let segment = match Segment::open(&config.shared_memory_path, config.segment_capacity) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("payrelay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now_ms = Clock::new().now().wall_ms.max(0) as u64;
    let Some(owner) = segment.register_owner(now_ms) else {
        eprintln!(
            "payrelay: every owner entry of {} is held by a live instance",
            config.shared_memory_path.display()
        );
        return ExitCode::FAILURE;
    };
    let upstream = match Upstream::new(
        UpstreamConfig {
            urls: [config.processor_default.clone(), config.processor_fallback.clone()],
            pool_size: [config.pool_size, config.pool_size],
            connect_timeout_ms: config.connect_timeout_ms,
        },
        SERVICE_TOKEN_BASE,
    ) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("payrelay: {e}");
            return ExitCode::from(2);
        }
    };
    let dispatcher = Dispatcher::new(segment.attach_again(), owner, config.policy);
    let mut pipeline = Pipeline::new(dispatcher, upstream);
    if config.bench_accept_only {
        eprintln!(
            "payrelay {}: BENCH_ACCEPT_ONLY=1: payments are accepted, never forwarded",
            config.server_id
        );
        pipeline = pipeline.accept_only();
    }
    let api = Api::new(segment, pipeline, config.server_id.clone()).with_purge_token(config.purge_token.clone());
    let mut reactor = match Reactor::bind(&config.listen, config.limits, config.max_connections, api) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("payrelay: {e}");
            return ExitCode::FAILURE;
        }
    };
    reactor.set_stop_timeout(config.stop_timeout_ms);
    let addrs: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    eprintln!(
        "payrelay {}: listening on {}, segment {}",
        config.server_id,
        addrs.join(", "),
        config.shared_memory_path.display()
    );
    match reactor.run() {
        Ok(api) => {
            let dispatcher = api.pipeline().dispatcher();
            let stats = dispatcher.stats();
            let unanswered: u64 = stats.processors.iter().map(|p| p.in_flight).sum();
            let unsent = stats.fresh + stats.pinned + stats.delayed;
            // Payments still owned become adoptable by the other instances at once; those
            // whose answer never came are looked up where they were sent.
            dispatcher.segment().unregister_owner(owner);
            if unanswered == 0 {
                eprintln!(
                    "payrelay {}: stopped: every answer in; {unsent} unsent payments handed over",
                    config.server_id
                );
            } else {
                eprintln!(
                    "payrelay {}: stopped: {unanswered} payments still unanswered (looked up by the \
                     next instance); {unsent} unsent payments handed over",
                    config.server_id
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("payrelay {}: event loop failed: {e}", config.server_id);
            ExitCode::FAILURE
        }
    }
}

/// `payrelay --check`: asks the instance configured by this environment (its first `LISTEN`
/// address) for a summary and exits 0 when it answers 200 within two seconds. Made for
/// container healthchecks in exec form: a scratch image has no shell and no curl.
fn check() -> ExitCode {
    use payrelay::net::listen::ListenAddr;
    use std::io::{Read, Write};
    use std::time::Duration;

    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("payrelay --check: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    const REQUEST: &[u8] = b"GET /payments-summary HTTP/1.1\r\nHost: check\r\nConnection: close\r\n\r\n";
    let timeout = Some(Duration::from_secs(2));
    let mut answer = [0u8; 12];
    let result = match &config.listen[0] {
        ListenAddr::Unix(path) => std::os::unix::net::UnixStream::connect(path).and_then(|mut s| {
            s.set_read_timeout(timeout)?;
            s.set_write_timeout(timeout)?;
            s.write_all(REQUEST)?;
            s.read_exact(&mut answer)
        }),
        ListenAddr::Tcp(addr) => {
            let mut addr = *addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).and_then(|mut s| {
                s.set_read_timeout(timeout)?;
                s.write_all(REQUEST)?;
                s.read_exact(&mut answer)
            })
        }
    };
    match result {
        Ok(()) if &answer == b"HTTP/1.1 200" => ExitCode::SUCCESS,
        Ok(()) => {
            eprintln!(
                "payrelay --check: {} answered {:?}",
                config.listen[0],
                String::from_utf8_lossy(&answer)
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("payrelay --check: {}: {e}", config.listen[0]);
            ExitCode::FAILURE
        }
    }
}
