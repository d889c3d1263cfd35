//! payrelay: read the configuration, map the shared segment, serve until told to stop.

use std::process::ExitCode;

use payrelay::api::Api;
use payrelay::config::{Config, HELP};
use payrelay::reactor::Reactor;
use payrelay::segment::Segment;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("-h" | "--help") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("payrelay {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("payrelay: unknown argument {other:?}; see --help");
            return ExitCode::from(2);
        }
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
    let reactor = match Reactor::bind(&config.listen, config.limits, config.max_connections, Api::new(segment)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("payrelay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addrs: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    eprintln!(
        "payrelay {}: listening on {}, segment {}",
        config.server_id,
        addrs.join(", "),
        config.shared_memory_path.display()
    );
    match reactor.run() {
        Ok(_) => {
            eprintln!("payrelay {}: stopped", config.server_id);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("payrelay {}: event loop failed: {e}", config.server_id);
            ExitCode::FAILURE
        }
    }
}
