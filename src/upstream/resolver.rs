//! A processor's address: an IP literal as it is, or a host name looked up by a short-lived
//! helper thread running `ToSocketAddrs` (the only blocking call, kept off the loop). A name
//! that does not resolve yet (the processors start after us) is retried with backoff
//! forever, and looked up again after repeated connect failures, since a restarted
//! container may come back with a new address.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc;

use crate::upstream::wire::ProcessorUrl;

/// While a lookup thread runs, how often [`Resolver::poll`] should look for its answer.
const RESOLVE_POLL_MS: u64 = 5;
/// First and largest wait before retrying a name that did not resolve.
pub(super) const RESOLVE_BACKOFF_MS: (u64, u64) = (100, 2_000);
/// Least time between two lookups of a name that did resolve.
pub(super) const RERESOLVE_EVERY_MS: u64 = 1_000;

/// Where a lookup stands.
enum Resolution {
    /// The URL names an IP address.
    Literal,
    /// A helper thread is looking the name up; its answer arrives on `answer`, looked for
    /// again at `check_at_ms`.
    Running {
        answer: mpsc::Receiver<io::Result<Vec<SocketAddr>>>,
        check_at_ms: u64,
        /// Wait before the next attempt should this one fail.
        backoff_ms: u64,
    },
    /// The last lookup failed; the next starts at `retry_at_ms`.
    Waiting { retry_at_ms: u64, backoff_ms: u64 },
    /// The last lookup succeeded at `at_ms`.
    Settled { at_ms: u64 },
}

/// One processor's address and how it is being found.
pub(super) struct Resolver {
    host: String,
    port: u16,
    address: Option<SocketAddr>,
    state: Resolution,
}

impl Resolver {
    /// Takes an IP literal as it is; starts looking a name up at once.
    pub(super) fn new(url: &ProcessorUrl) -> Resolver {
        let mut resolver = Resolver {
            host: url.host.clone(),
            port: url.port,
            address: url.ip.map(|ip| SocketAddr::new(ip, url.port)),
            state: Resolution::Literal,
        };
        if resolver.address.is_none() {
            resolver.start(RESOLVE_BACKOFF_MS.0, 0);
        }
        resolver
    }

    /// The address connections go to, once known.
    pub(super) fn address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// A name lookup is running or waiting to be retried.
    pub(super) fn resolving(&self) -> bool {
        matches!(self.state, Resolution::Running { .. } | Resolution::Waiting { .. })
    }

    /// No address is known and the last lookup failed: nothing to wait for before the retry.
    pub(super) fn failed(&self) -> bool {
        self.address.is_none() && matches!(self.state, Resolution::Waiting { .. })
    }

    /// Looks the name up again after connect failures, unless it was looked up within
    /// [`RERESOLVE_EVERY_MS`] (a literal never is). The known address stays in use meanwhile.
    pub(super) fn refresh(&mut self, now_ms: u64) {
        if let Resolution::Settled { at_ms } = self.state {
            if now_ms.saturating_sub(at_ms) >= RERESOLVE_EVERY_MS {
                self.start(RESOLVE_BACKOFF_MS.0, now_ms);
            }
        }
    }

    /// Takes a finished lookup's answer, or starts the next attempt when its time has come.
    /// True when the address changed (a new address is worth trying at once).
    pub(super) fn poll(&mut self, now_ms: u64) -> bool {
        match &mut self.state {
            Resolution::Literal | Resolution::Settled { .. } => false,
            Resolution::Waiting {
                retry_at_ms,
                backoff_ms,
            } => {
                if now_ms >= *retry_at_ms {
                    let backoff_ms = *backoff_ms;
                    self.start(backoff_ms, now_ms);
                }
                false
            }
            Resolution::Running {
                answer,
                check_at_ms,
                backoff_ms,
            } => {
                let backoff_ms = *backoff_ms;
                let addresses = match answer.try_recv() {
                    Err(mpsc::TryRecvError::Empty) => {
                        *check_at_ms = now_ms + RESOLVE_POLL_MS;
                        return false;
                    }
                    Ok(Ok(addresses)) => addresses,
                    // A failed lookup, or a helper thread that died without answering.
                    Ok(Err(_)) | Err(mpsc::TryRecvError::Disconnected) => Vec::new(),
                };
                // IPv4 first: docker's embedded DNS answers with it, and a server bound to
                // 127.0.0.1 is not reachable at `localhost`'s ::1.
                match addresses.iter().find(|a| a.is_ipv4()).or(addresses.first()) {
                    Some(&found) => {
                        let changed = self.address != Some(found);
                        self.address = Some(found);
                        self.state = Resolution::Settled { at_ms: now_ms };
                        changed
                    }
                    None => {
                        self.state = Resolution::Waiting {
                            retry_at_ms: now_ms + backoff_ms,
                            backoff_ms: (backoff_ms * 2).min(RESOLVE_BACKOFF_MS.1),
                        };
                        false
                    }
                }
            }
        }
    }

    /// When [`Resolver::poll`] has work: a running lookup's next check, or a retry.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        match self.state {
            Resolution::Running { check_at_ms, .. } => Some(check_at_ms),
            Resolution::Waiting { retry_at_ms, .. } => Some(retry_at_ms),
            Resolution::Literal | Resolution::Settled { .. } => None,
        }
    }

    /// Starts looking the host up on a helper thread. A thread that cannot be spawned
    /// counts as a failed lookup, retried later.
    fn start(&mut self, backoff_ms: u64, now_ms: u64) {
        let (tx, rx) = mpsc::channel();
        let host = self.host.clone();
        let port = self.port;
        let spawned = std::thread::Builder::new().name("payrelay-dns".into()).spawn(move || {
            let found = (host.as_str(), port).to_socket_addrs().map(Iterator::collect);
            // The pool may be gone by now; nobody to tell then.
            let _ = tx.send(found);
        });
        self.state = match spawned {
            Ok(_) => Resolution::Running {
                answer: rx,
                check_at_ms: now_ms + RESOLVE_POLL_MS,
                backoff_ms,
            },
            Err(_) => Resolution::Waiting {
                retry_at_ms: now_ms + backoff_ms,
                backoff_ms: (backoff_ms * 2).min(RESOLVE_BACKOFF_MS.1),
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::wire::parse_url;

    fn resolver(url: &str) -> Resolver {
        Resolver::new(&parse_url(url).unwrap())
    }

    #[test]
    fn a_literal_is_never_looked_up() {
        let mut r = resolver("http://127.0.0.1:1");
        assert_eq!(r.address(), Some("127.0.0.1:1".parse().unwrap()));
        assert!(!r.resolving() && r.next_deadline().is_none());
        r.refresh(1_000_000);
        assert!(matches!(r.state, Resolution::Literal));
    }

    #[test]
    fn names_resolve_on_a_helper_thread_and_again_when_refreshed() {
        let mut r = resolver("http://localhost:8080");
        assert!(r.resolving());
        // While the lookup runs the loop is asked to come back soon.
        assert_eq!(r.next_deadline(), Some(RESOLVE_POLL_MS));
        let started = std::time::Instant::now();
        let mut changed = false;
        while !matches!(r.state, Resolution::Settled { .. }) {
            assert!(started.elapsed().as_secs() < 5, "localhost never resolved");
            std::thread::sleep(std::time::Duration::from_millis(2));
            changed |= r.poll(10);
            if let Resolution::Running { check_at_ms, .. } = r.state {
                assert_eq!(check_at_ms, 10 + RESOLVE_POLL_MS);
            }
        }
        assert!(changed);
        assert_eq!(r.address(), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(r.next_deadline(), None);

        // Not again within RERESOLVE_EVERY_MS; the known address stays in use meanwhile.
        r.refresh(20);
        assert!(matches!(r.state, Resolution::Settled { at_ms: 10 }));
        r.refresh(10 + RERESOLVE_EVERY_MS);
        assert!(matches!(r.state, Resolution::Running { .. }));
        assert!(r.address().is_some());
    }

    #[test]
    fn failed_lookups_are_retried_with_capped_backoff() {
        let mut r = resolver("http://localhost:8080");
        // Stand in for a lookup that failed: a channel whose sender is gone.
        let (_, rx) = mpsc::channel();
        r.state = Resolution::Running {
            answer: rx,
            check_at_ms: 0,
            backoff_ms: RESOLVE_BACKOFF_MS.0,
        };
        assert!(!r.poll(0));
        assert!(matches!(
            r.state,
            Resolution::Waiting {
                retry_at_ms: 100,
                backoff_ms: 200
            }
        ));
        assert!(r.failed());
        assert_eq!(r.next_deadline(), Some(100));
        r.poll(99);
        assert!(matches!(r.state, Resolution::Waiting { .. }));
        r.poll(100);
        assert!(matches!(r.state, Resolution::Running { backoff_ms: 200, .. }));
        // The wait doubles up to its cap.
        let mut now = 100;
        for _ in 0..10 {
            let (_, rx) = mpsc::channel();
            let Resolution::Running { backoff_ms, .. } = r.state else {
                panic!()
            };
            r.state = Resolution::Running {
                answer: rx,
                check_at_ms: now,
                backoff_ms,
            };
            r.poll(now);
            let Resolution::Waiting { retry_at_ms, .. } = r.state else {
                panic!()
            };
            assert!(retry_at_ms - now <= RESOLVE_BACKOFF_MS.1);
            now = retry_at_ms;
            r.poll(now);
        }
        assert!(matches!(r.state, Resolution::Running { backoff_ms: 2_000, .. }));
    }
}
