//! The simulator's configuration from the environment: the official processor's variables
//! with its defaults, plus our switches, each checked with an error that names it, and the
//! `--help` text that documents all of them.

use super::decimal::Decimal;
use super::model::ProcessorConfig;
use super::service::{Framing, ServiceOptions};
use crate::base::settings::whole_number;
use crate::net::conn::ConnLimits;
use crate::net::listen::parse_listen;
use crate::net::listen::ListenAddr;

/// The `--help` text: every variable, its default, its meaning.
pub const HELP: &str = "\
payment-processor-sim: a stand-in for the Rinha de Backend 2025 payment processor.

Behaves like the official processor: POST /payments sleeps the configured
delay, then fails with 500 in failure mode or stores the payment (422 if already stored);
GET /payments/service-health is rate-limited; GET /payments/{id}; the admin endpoints behind
X-Rinha-Token. Everything is kept in memory.

Environment, as the official processor:
  PORT                   TCP port on 0.0.0.0 [8080]
  TRANSACTION_FEE        fee per payment, a fraction of its amount [0.05]
  RATE_LIMIT_SECONDS     health-check window; also the Retry-After of every 429 [5]
  INITIAL_TOKEN          admin token until changed [123]

Our switches:
  SIM_LISTEN             listen here instead of 0.0.0.0:PORT: comma-separated host:port
                         or unix:/path entries
  SIM_DELAY_MS           initial delay of every payment, ms [0]
  SIM_FAILURE            start in failure mode: true or false [false]
  SIM_MAX_IN_PROGRESS    payments processed at once [800]
  SIM_MAX_QUEUED         payments waiting beyond those; more get 429 [500]
  SIM_HEALTH_WINDOW_MS   health-check window in ms, overriding RATE_LIMIT_SECONDS (the
                         Retry-After stays in whole seconds, rounded up)
  SIM_FRAMING            chunked (as Kestrel) or content-length [chunked]
  SIM_CLOSE_PROBABILITY  chance from 0 to 1 that an answer carries Connection: close and
                         the connection is closed after it [0]; a request already pipelined
                         behind it is dropped with the connection, as a real server does
  SIM_SEED               seed of the generator behind SIM_CLOSE_PROBABILITY [24301]
  SIM_IDLE_TIMEOUT_MS    close keep-alive connections idle this long, checked every 250 ms
                         [130000, Kestrel's keep-alive timeout]
  SIM_MAX_CONNECTIONS    open connections at most; more are closed at once [65536]

Options: -h/--help, -V/--version.
";

/// Everything the simulator binary needs to start.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Where to listen.
    pub listen: Vec<ListenAddr>,
    /// The processor's settings.
    pub processor: ProcessorConfig,
    /// The HTTP face's switches.
    pub service: ServiceOptions,
    /// Connection timeouts.
    pub limits: ConnLimits,
    /// Most open connections.
    pub max_connections: usize,
}

impl SimConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<SimConfig, String> {
        SimConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get`, so tests need no process environment. Empty values
    /// count as unset. Errors name the variable and say what it must be.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<SimConfig, String> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: u64, min: u64| {
            whole_number(var(name).as_deref(), default, min).map_err(|reason| format!("{name}: {reason}"))
        };
        let defaults = ProcessorConfig::default();
        let port = number("PORT", 8080, 1)?;
        let port = u16::try_from(port).map_err(|_| format!("PORT must be at most 65535, not {port}"))?;
        let listen = match var("SIM_LISTEN") {
            Some(v) => parse_listen(&v).map_err(|e| format!("SIM_LISTEN: {e}"))?,
            None => vec![ListenAddr::Tcp(std::net::SocketAddr::from(([0, 0, 0, 0], port)))],
        };
        let fee = match var("TRANSACTION_FEE") {
            Some(v) => Decimal::parse(&v)
                .ok_or_else(|| format!("TRANSACTION_FEE must be a plain decimal like 0.05, not {v:?}"))?,
            None => defaults.fee,
        };
        let rate_limit_s = number("RATE_LIMIT_SECONDS", 5, 1)?;
        let health_window_ms = number("SIM_HEALTH_WINDOW_MS", rate_limit_s.saturating_mul(1000), 1)?;
        let retry_after_s = if var("SIM_HEALTH_WINDOW_MS").is_some() {
            health_window_ms.div_ceil(1000)
        } else {
            rate_limit_s
        };
        let delay = match var("SIM_DELAY_MS") {
            Some(v) => v
                .trim()
                .parse::<i32>()
                .map_err(|_| format!("SIM_DELAY_MS must be a whole number of ms, not {v:?}"))?,
            None => 0,
        };
        let failing = match var("SIM_FAILURE").as_deref().map(str::trim) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(v) => return Err(format!("SIM_FAILURE must be true or false, not {v:?}")),
        };
        let framing = match var("SIM_FRAMING").as_deref().map(str::trim) {
            None | Some("chunked") => Framing::Chunked,
            Some("content-length") => Framing::ContentLength,
            Some(v) => return Err(format!("SIM_FRAMING must be chunked or content-length, not {v:?}")),
        };
        let close_probability = match var("SIM_CLOSE_PROBABILITY") {
            None => 0.0,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(p) if (0.0..=1.0).contains(&p) => p,
                _ => return Err(format!("SIM_CLOSE_PROBABILITY must be a number from 0 to 1, not {v:?}")),
            },
        };
        Ok(SimConfig {
            listen,
            processor: ProcessorConfig {
                fee,
                health_window_ms,
                token: get("INITIAL_TOKEN").unwrap_or_else(|| "123".into()).into_bytes(),
                delay_ms: delay,
                failing,
                max_in_progress: number("SIM_MAX_IN_PROGRESS", 800, 1)? as usize,
                max_queued: number("SIM_MAX_QUEUED", 500, 0)? as usize,
                ..defaults
            },
            service: ServiceOptions {
                framing,
                close_probability,
                seed: number("SIM_SEED", ServiceOptions::default().seed, 0)?,
                retry_after_s,
            },
            limits: ConnLimits {
                idle_timeout_ms: number("SIM_IDLE_TIMEOUT_MS", 130_000, 1)?,
                ..ConnLimits::default()
            },
            max_connections: number("SIM_MAX_CONNECTIONS", 65_536, 1)? as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<SimConfig, String> {
        SimConfig::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_are_the_official_ones() {
        let c = read(&[]).unwrap();
        assert_eq!(c.listen, vec![ListenAddr::Tcp("0.0.0.0:8080".parse().unwrap())]);
        assert_eq!(c.processor, ProcessorConfig::default());
        assert_eq!(c.service, ServiceOptions::default());
        assert_eq!(c.limits.idle_timeout_ms, 130_000);
    }

    #[test]
    fn every_variable_is_read() {
        let c = read(&[
            ("PORT", "8001"),
            ("TRANSACTION_FEE", "0.15"),
            ("RATE_LIMIT_SECONDS", "1"),
            ("INITIAL_TOKEN", "secret"),
            ("SIM_DELAY_MS", "100"),
            ("SIM_FAILURE", "true"),
            ("SIM_MAX_IN_PROGRESS", "2"),
            ("SIM_MAX_QUEUED", "0"),
            ("SIM_FRAMING", "content-length"),
            ("SIM_CLOSE_PROBABILITY", "0.5"),
            ("SIM_SEED", "9"),
            ("SIM_IDLE_TIMEOUT_MS", "50"),
        ])
        .unwrap();
        assert_eq!(c.listen, vec![ListenAddr::Tcp("0.0.0.0:8001".parse().unwrap())]);
        assert_eq!(c.processor.fee, Decimal { units: 15, scale: 2 });
        assert_eq!((c.processor.health_window_ms, c.service.retry_after_s), (1000, 1));
        assert_eq!(c.processor.token, b"secret");
        assert_eq!((c.processor.delay_ms, c.processor.failing), (100, true));
        assert_eq!((c.processor.max_in_progress, c.processor.max_queued), (2, 0));
        assert_eq!(c.service.framing, Framing::ContentLength);
        assert_eq!((c.service.close_probability, c.service.seed), (0.5, 9));
        assert_eq!(c.limits.idle_timeout_ms, 50);
        let fine = read(&[("SIM_HEALTH_WINDOW_MS", "1500"), ("SIM_LISTEN", "127.0.0.1:0")]).unwrap();
        assert_eq!((fine.processor.health_window_ms, fine.service.retry_after_s), (1500, 2));
        assert_eq!(fine.listen, vec![ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())]);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("PORT", "70000"),
            ("PORT", "x"),
            ("TRANSACTION_FEE", "5%"),
            ("RATE_LIMIT_SECONDS", "0"),
            ("SIM_DELAY_MS", "1.5"),
            ("SIM_FAILURE", "maybe"),
            ("SIM_FRAMING", "gzip"),
            ("SIM_CLOSE_PROBABILITY", "2"),
            ("SIM_LISTEN", "unix:"),
        ] {
            let err = read(&[(name, value)]).unwrap_err();
            assert!(err.contains(name), "{err}");
        }
    }
}
