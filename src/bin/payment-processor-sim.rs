//! payment-processor-sim: read the configuration, listen, serve the simulated processor until
//! SIGTERM or SIGINT. See `--help` for the environment it reads.

use std::process::ExitCode;

use payrelay::app::cli::{invocation, Invocation};
use payrelay::net::event_loop::Reactor;
use payrelay::sim::config::{SimConfig, HELP};
use payrelay::sim::SimService;

fn main() -> ExitCode {
    // No flags of its own: anything but help and version is refused.
    let arg = std::env::args().nth(1);
    if let Invocation::Exit(code) = invocation("payment-processor-sim", HELP, &[], arg.as_deref()) {
        return code;
    }
    let config = match SimConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("payment-processor-sim: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let service = SimService::new(config.processor.clone(), config.service);
    let reactor = match Reactor::bind(&config.listen, config.limits, config.max_connections, service) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("payment-processor-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addrs: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    eprintln!("payment-processor-sim: listening on {}", addrs.join(", "));
    match reactor.run() {
        Ok(service) => {
            let reused = service.reused_after_close();
            if reused > 0 {
                eprintln!("payment-processor-sim: {reused} requests came on connections asked to close");
            }
            eprintln!(
                "payment-processor-sim: stopped with {} payments stored",
                service.state().stored()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("payment-processor-sim: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
