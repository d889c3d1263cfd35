//! Configuration from the environment (the names the challenge fixes), with defaults, validation that names
//! the variable at fault, and the `--help` text that documents all of it.

use std::fmt;
use std::path::PathBuf;

use crate::base::settings::whole_number;
use crate::dispatch::Policy;
use crate::net::conn::ConnLimits;
use crate::net::listen::{parse_listen, ListenAddr};
use crate::segment::DEFAULT_CAPACITY;

/// The `--help` text: every variable, its default, its meaning.
pub const HELP: &str = "\
payrelay: payment intermediary for the Rinha de Backend 2025 rules (one thread, one reactor)

Usage: payrelay [--help | --version | --check]

  --check   ask the instance this environment describes (first LISTEN address) for a
            summary; exit 0 if it answers 200 within 2 s (for container healthchecks)

Configuration is read from the environment:
  LISTEN                          comma-separated addresses, each host:port or unix:/path.sock
                                  (default 0.0.0.0:9999); a stale socket file is replaced and
                                  the socket is made connectable by every user
  SHARED_MEMORY_PATH              the payment segment file shared by every instance
                                  (default /dev/shm/payrelay.seg); created if absent
  SEGMENT_CAPACITY                payment slots in a new segment, a power of two >= 1024
                                  (default 524288 = 32 MiB; 3/4 of it can hold live payments);
                                  must match an existing segment
  SERVER_ID                       this instance's name in logs and /stats (default payrelay-<pid>)
  PAYMENT_PROCESSOR_URL_DEFAULT   default processor (default http://127.0.0.1:8001)
  PAYMENT_PROCESSOR_URL_FALLBACK  fallback processor (default http://127.0.0.1:8002)
  IDLE_TIMEOUT_MS                 close a keep-alive connection idle this long (default 120000;
                                  keep it above the load balancer's upstream keepalive_timeout)
  REQUEST_TIMEOUT_MS              close a connection whose request is half-sent this long
                                  (default 10000)
  MAX_CONNECTIONS                 client connections served at once; more are closed at accept
                                  (default 4096)
  PURGE_TOKEN                     when set, POST /purge-payments needs the header
                                  X-Purge-Token with this value (else 403); unset (the
                                  default, as the challenge's test expects): anyone may purge
  STOP_TIMEOUT_MS                 on SIGTERM, wait up to this long for the answers to payments
                                  and lookups already sent (default 5000; keep it below the
                                  container's stop timeout, 10 s in docker); 0: stop at once

Pipeline and routing:
  PROCESSOR_POOL_SIZE             keep-alive connections per processor from this instance, and
                                  so its most payments in flight there (default 384: two
                                  instances stay under the processor's 800 concurrent requests,
                                  and a default at 1 s per payment still carries ~380/s each)
  CONNECT_TIMEOUT_MS              give up a connection attempt to a processor (default 1000)
  FEE_DEFAULT, FEE_FALLBACK       the processors' fees as fractions (default 0.05 and 0.15)
  END_NOTICE_MS                   how long after the payments stop coming the run's end may
                                  come (default 1000); what a failing default holds must fit
                                  through fallback in that time, what a slow one keeps must
                                  drain within it, the excess goes to fallback
  QUIET_MS                        silence of the inflow after which the run may be ending and
                                  nothing more waits for default (default 400; four usual gaps
                                  between payments when they come slower)
  END_MISS                        share of run ends assumed to come without the inflow stopping
                                  first, in [0, 1) (default 0.1): a failing default is waited
                                  for while it has failed for less than
                                  (fee gap / (1 - fallback fee)) x run age / this, i.e. 1.18 x
                                  the run's age at 5%/15%, 0.33 x at 7%/10%
  MIN_RUN_MS                      the least age a run is credited with in that reckoning
                                  (default 30000: a load test is not over seconds after it
                                  began)
  PROBE_INTERVAL_MS               spacing of single probes to a failing processor (default 500)
  MIN_GIVE_UP_MS, MAX_GIVE_UP_MS  bounds of the wait for a processor's answer, which is
                                  otherwise 4 x its known delay + 10 s (default 10000, 120000);
                                  an answer not in by then is an ambiguity resolved on the
                                  same processor
  AUDIT_LAG_MS                    how long before an audit its window ends (default 1500); a
                                  default at least this slow is avoided while fallback is
                                  not, since audits would catch its stores; 0 disables

Benchmarks only:
  BENCH_ACCEPT_ONLY               1: accept and store payments (answered 202 as usual) but
                                  never forward them: the pipeline does not run at all, so
                                  nothing is ever recorded (default 0; scripts/bench-latency
                                  uses it to measure what accepting costs)

Signals: SIGTERM or SIGINT close the listeners (removing unix socket files), answer the
requests already received (with Connection: close), send nothing new to the processors, wait
up to STOP_TIMEOUT_MS for the answers to what was sent and record them, then release this
instance's payments to the other instances and exit 0. A second signal stops at once.
";

/// Everything the backend binary needs to start.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Addresses to listen on.
    pub listen: Vec<ListenAddr>,
    /// The segment file.
    pub shared_memory_path: PathBuf,
    /// Slots in the segment.
    pub segment_capacity: u32,
    /// This instance's name.
    pub server_id: String,
    /// Base URL of the default processor.
    pub processor_default: String,
    /// Base URL of the fallback processor.
    pub processor_fallback: String,
    /// Connection timeouts.
    pub limits: ConnLimits,
    /// Most client connections at once.
    pub max_connections: usize,
    /// Connections per processor (also the in-flight limit per processor).
    pub pool_size: usize,
    /// Connect timeout to a processor.
    pub connect_timeout_ms: u64,
    /// The routing policy.
    pub policy: Policy,
    /// The secret a purge must present (`X-Purge-Token`); `None`: purges are open.
    pub purge_token: Option<String>,
    /// How long a stop waits for answers from the processors.
    pub stop_timeout_ms: u64,
    /// `BENCH_ACCEPT_ONLY=1`: accept payments but never forward them (benchmarks only).
    pub bench_accept_only: bool,
}

/// A variable that could not be used, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable's name.
    pub var: &'static str,
    /// What was wrong with its value.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `get` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let listen = parse_listen(&var("LISTEN").unwrap_or_else(|| "0.0.0.0:9999".into()))
            .map_err(|reason| ConfigError { var: "LISTEN", reason })?;
        let segment_capacity = match var("SEGMENT_CAPACITY") {
            None => DEFAULT_CAPACITY,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if n >= 1024 && n.is_power_of_two() => n,
                _ => {
                    return Err(ConfigError {
                        var: "SEGMENT_CAPACITY",
                        reason: format!("{v:?} is not a power of two >= 1024"),
                    })
                }
            },
        };
        let processor_default = parse_url(
            "PAYMENT_PROCESSOR_URL_DEFAULT",
            var("PAYMENT_PROCESSOR_URL_DEFAULT"),
            "http://127.0.0.1:8001",
        )?;
        let processor_fallback = parse_url(
            "PAYMENT_PROCESSOR_URL_FALLBACK",
            var("PAYMENT_PROCESSOR_URL_FALLBACK"),
            "http://127.0.0.1:8002",
        )?;
        let defaults = ConnLimits::default();
        let base = Policy::default();
        // One connection per request in flight: the policy's limit is the pool's default size.
        let default_pool = base.in_flight_limit[0] as u64;
        let pool_size = number("PROCESSOR_POOL_SIZE", var("PROCESSOR_POOL_SIZE"), default_pool, 1)? as usize;
        let policy = Policy {
            fees: [
                fraction("FEE_DEFAULT", var("FEE_DEFAULT"), base.fees[0])?,
                fraction("FEE_FALLBACK", var("FEE_FALLBACK"), base.fees[1])?,
            ],
            end_notice_ms: number("END_NOTICE_MS", var("END_NOTICE_MS"), base.end_notice_ms, 0)?,
            quiet_ms: number("QUIET_MS", var("QUIET_MS"), base.quiet_ms, 1)?,
            end_miss: fraction("END_MISS", var("END_MISS"), base.end_miss)?,
            min_run_ms: number("MIN_RUN_MS", var("MIN_RUN_MS"), base.min_run_ms, 0)?,
            in_flight_limit: [pool_size, pool_size],
            probe_interval_ms: number("PROBE_INTERVAL_MS", var("PROBE_INTERVAL_MS"), base.probe_interval_ms, 1)?,
            min_give_up_ms: number("MIN_GIVE_UP_MS", var("MIN_GIVE_UP_MS"), base.min_give_up_ms, 1)?,
            max_give_up_ms: number("MAX_GIVE_UP_MS", var("MAX_GIVE_UP_MS"), base.max_give_up_ms, 1)?,
            audit_lag_ms: number("AUDIT_LAG_MS", var("AUDIT_LAG_MS"), base.audit_lag_ms, 0)?,
            ..base
        };
        if policy.max_give_up_ms < policy.min_give_up_ms {
            return Err(ConfigError {
                var: "MAX_GIVE_UP_MS",
                reason: format!(
                    "{} is below MIN_GIVE_UP_MS ({})",
                    policy.max_give_up_ms, policy.min_give_up_ms
                ),
            });
        }
        Ok(Config {
            listen,
            shared_memory_path: var("SHARED_MEMORY_PATH")
                .unwrap_or_else(|| "/dev/shm/payrelay.seg".into())
                .into(),
            segment_capacity,
            server_id: var("SERVER_ID").unwrap_or_else(|| format!("payrelay-{}", std::process::id())),
            processor_default,
            processor_fallback,
            limits: ConnLimits {
                idle_timeout_ms: number("IDLE_TIMEOUT_MS", var("IDLE_TIMEOUT_MS"), defaults.idle_timeout_ms, 1)?,
                request_timeout_ms: number(
                    "REQUEST_TIMEOUT_MS",
                    var("REQUEST_TIMEOUT_MS"),
                    defaults.request_timeout_ms,
                    1,
                )?,
            },
            max_connections: number("MAX_CONNECTIONS", var("MAX_CONNECTIONS"), 4096, 1)? as usize,
            pool_size,
            connect_timeout_ms: number("CONNECT_TIMEOUT_MS", var("CONNECT_TIMEOUT_MS"), 1_000, 1)?,
            policy,
            purge_token: var("PURGE_TOKEN"),
            stop_timeout_ms: number("STOP_TIMEOUT_MS", var("STOP_TIMEOUT_MS"), 5_000, 0)?,
            bench_accept_only: match var("BENCH_ACCEPT_ONLY").as_deref() {
                None | Some("0") => false,
                Some("1") => true,
                Some(other) => {
                    return Err(ConfigError {
                        var: "BENCH_ACCEPT_ONLY",
                        reason: format!("{other:?} is neither 0 nor 1"),
                    })
                }
            },
        })
    }
}

fn parse_url(var: &'static str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    let url = value.unwrap_or_else(|| default.into());
    let rest = url.trim().strip_prefix("http://").ok_or_else(|| ConfigError {
        var,
        reason: format!("{url:?} must start with http://"),
    })?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(ConfigError {
            var,
            reason: format!("{url:?} names no host"),
        });
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

fn number(var: &'static str, value: Option<String>, default: u64, min: u64) -> Result<u64, ConfigError> {
    whole_number(value.as_deref(), default, min).map_err(|reason| ConfigError { var, reason })
}

fn fraction(var: &'static str, value: Option<String>, default: f64) -> Result<f64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
            _ => Err(ConfigError {
                var,
                reason: format!("{v:?} is not a fraction in [0, 1), e.g. 0.05"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.listen, vec![ListenAddr::Tcp("0.0.0.0:9999".parse().unwrap())]);
        assert_eq!(c.shared_memory_path, PathBuf::from("/dev/shm/payrelay.seg"));
        assert_eq!(c.segment_capacity, DEFAULT_CAPACITY);
        assert_eq!(c.processor_default, "http://127.0.0.1:8001");
        assert_eq!(c.processor_fallback, "http://127.0.0.1:8002");
        assert_eq!(c.limits, ConnLimits::default());
        assert!(c.server_id.starts_with("payrelay-"));
        assert_eq!(c.pool_size, 384);
        assert_eq!(c.policy, Policy::default());
        assert_eq!(c.stop_timeout_ms, 5_000);
    }

    #[test]
    fn listen_list() {
        let c = config(&[("LISTEN", "unix:/tmp/a.sock, 127.0.0.1:0")]).unwrap();
        assert_eq!(
            c.listen,
            vec![
                ListenAddr::Unix("/tmp/a.sock".into()),
                ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())
            ]
        );
        assert_eq!(config(&[("LISTEN", "nowhere")]).unwrap_err().var, "LISTEN");
        assert_eq!(config(&[("LISTEN", "unix:")]).unwrap_err().var, "LISTEN");
        assert_eq!(config(&[("LISTEN", " , ")]).unwrap_err().var, "LISTEN");
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(
            config(&[("SEGMENT_CAPACITY", "1000")]).unwrap_err().var,
            "SEGMENT_CAPACITY"
        );
        assert_eq!(
            config(&[("SEGMENT_CAPACITY", "512")]).unwrap_err().var,
            "SEGMENT_CAPACITY"
        );
        assert_eq!(config(&[("SEGMENT_CAPACITY", "4096")]).unwrap().segment_capacity, 4096);
        assert_eq!(
            config(&[("PAYMENT_PROCESSOR_URL_DEFAULT", "https://x")])
                .unwrap_err()
                .var,
            "PAYMENT_PROCESSOR_URL_DEFAULT"
        );
        assert_eq!(
            config(&[("PAYMENT_PROCESSOR_URL_FALLBACK", "http://")])
                .unwrap_err()
                .var,
            "PAYMENT_PROCESSOR_URL_FALLBACK"
        );
        assert_eq!(config(&[("IDLE_TIMEOUT_MS", "0")]).unwrap_err().var, "IDLE_TIMEOUT_MS");
        assert_eq!(config(&[("MAX_CONNECTIONS", "x")]).unwrap_err().var, "MAX_CONNECTIONS");
        assert_eq!(config(&[("MAX_GIVE_UP_MS", "5000")]).unwrap_err().var, "MAX_GIVE_UP_MS");
        let c = config(&[("MIN_GIVE_UP_MS", "300"), ("MAX_GIVE_UP_MS", "800")]).unwrap();
        assert_eq!((c.policy.min_give_up_ms, c.policy.max_give_up_ms), (300, 800));
        assert_eq!(config(&[("AUDIT_LAG_MS", "0")]).unwrap().policy.audit_lag_ms, 0);
        assert_eq!(config(&[("AUDIT_LAG_MS", "-1")]).unwrap_err().var, "AUDIT_LAG_MS");
        let c = config(&[("END_NOTICE_MS", "2000"), ("QUIET_MS", "250"), ("END_MISS", "0.25")]).unwrap();
        assert_eq!(
            (c.policy.end_notice_ms, c.policy.quiet_ms, c.policy.end_miss),
            (2_000, 250, 0.25)
        );
        assert_eq!(config(&[("QUIET_MS", "0")]).unwrap_err().var, "QUIET_MS");
        assert_eq!(config(&[("END_MISS", "1.5")]).unwrap_err().var, "END_MISS");
        assert_eq!(config(&[("STOP_TIMEOUT_MS", "0")]).unwrap().stop_timeout_ms, 0);
        assert_eq!(config(&[("STOP_TIMEOUT_MS", "5s")]).unwrap_err().var, "STOP_TIMEOUT_MS");
        assert!(!config(&[]).unwrap().bench_accept_only);
        assert!(config(&[("BENCH_ACCEPT_ONLY", "1")]).unwrap().bench_accept_only);
        assert_eq!(
            config(&[("BENCH_ACCEPT_ONLY", "yes")]).unwrap_err().var,
            "BENCH_ACCEPT_ONLY"
        );
        let c = config(&[(
            "PAYMENT_PROCESSOR_URL_DEFAULT",
            "http://payment-processor-default:8080/",
        )])
        .unwrap();
        assert_eq!(c.processor_default, "http://payment-processor-default:8080");
    }
}
