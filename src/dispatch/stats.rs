//! Counters and gauges of a dispatcher, and their JSON for `GET /stats`.

use super::policy::Health;
use crate::base::payment::Processor;

/// What happened with one processor, as seen by one instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessorStats {
    /// Requests sent (payments, lookups, health calls).
    pub sent: u64,
    /// Payments answered 200.
    pub succeeded: u64,
    /// Payments answered 422 (an earlier attempt had landed).
    pub duplicates: u64,
    /// Payments answered 5xx.
    pub failed: u64,
    /// Payments answered 429.
    pub throttled: u64,
    /// Any other status.
    pub unexpected: u64,
    /// Requests that never reached the processor (connect failed).
    pub unreachable: u64,
    /// Attempts whose outcome is unknown (connection lost after writing, or given up).
    pub ambiguous: u64,
    /// Requests given up after waiting too long.
    pub gave_up: u64,
    /// Single payments sent while the processor was believed failing.
    pub probes: u64,
    /// Ambiguous attempts resolved by a lookup that found the payment.
    pub resolved_found: u64,
    /// Lookups answered 200 with a body we could not read.
    pub unreadable: u64,
    /// First attempts answered 422: the processor held another payment under the id.
    pub foreign: u64,
    /// Health calls answered 429.
    pub health_throttled: u64,
    /// Payment requests in flight now.
    pub in_flight: u64,
    /// Moving average of answer times (ms).
    pub latency_ms: u64,
    /// Delay announced by the last health answer (ms).
    pub announced_delay_ms: u64,
    /// Health as last seen.
    pub health: Health,
}

/// Everything `GET /stats` reports about the pipeline of one instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Indexed by `Processor::index()`.
    pub processors: [ProcessorStats; 2],
    /// Fresh payments routed to each processor.
    pub routed: [u64; 2],
    /// Of those sent to fallback, how many went while default was not failing (backlog spill).
    pub spilled: u64,
    /// Payments adopted from instances that stopped.
    pub adopted: u64,
    /// Full-table scans started because an instance was seen gone.
    pub laps: u64,
    /// Payments dropped because another instance took them, they were done, or purged.
    pub dropped: u64,
    /// Payments waiting for a first processor.
    pub fresh: u64,
    /// Payments waiting to be resolved on the processor of an ambiguous attempt.
    pub pinned: u64,
    /// Payments waiting out a backoff.
    pub delayed: u64,
    /// Acceptance time (wall ms) of the oldest fresh payment.
    pub oldest_fresh_accepted_ms: Option<u64>,
}

impl DispatchStats {
    /// Appends this as a JSON object; `now_ms` turns the oldest acceptance into an age.
    pub fn write_json(&self, now_ms: u64, out: &mut Vec<u8>) {
        let mut n = itoa::Buffer::new();
        let mut field = |out: &mut Vec<u8>, name: &str, value: u64, last: bool| {
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(n.format(value).as_bytes());
            if !last {
                out.push(b',');
            }
        };
        out.push(b'{');
        field(out, "queued", self.fresh, false);
        field(out, "pinned", self.pinned, false);
        field(out, "delayed", self.delayed, false);
        let age = self.oldest_fresh_accepted_ms.map_or(0, |at| now_ms.saturating_sub(at));
        field(out, "oldestQueuedAgeMs", age, false);
        field(out, "routedDefault", self.routed[0], false);
        field(out, "routedFallback", self.routed[1], false);
        field(out, "spilledToFallback", self.spilled, false);
        field(out, "adopted", self.adopted, false);
        field(out, "laps", self.laps, false);
        field(out, "dropped", self.dropped, false);
        out.extend_from_slice(b"\"processors\":{");
        for p in Processor::ALL {
            let s = &self.processors[p.index()];
            if p.index() > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(p.name().as_bytes());
            out.extend_from_slice(b"\":{\"health\":\"");
            out.extend_from_slice(s.health.name().as_bytes());
            out.extend_from_slice(b"\",");
            field(out, "inFlight", s.in_flight, false);
            field(out, "latencyMs", s.latency_ms, false);
            field(out, "announcedDelayMs", s.announced_delay_ms, false);
            field(out, "sent", s.sent, false);
            field(out, "succeeded", s.succeeded, false);
            field(out, "duplicates", s.duplicates, false);
            field(out, "failed", s.failed, false);
            field(out, "throttled", s.throttled, false);
            field(out, "unexpected", s.unexpected, false);
            field(out, "unreachable", s.unreachable, false);
            field(out, "ambiguous", s.ambiguous, false);
            field(out, "gaveUp", s.gave_up, false);
            field(out, "probes", s.probes, false);
            field(out, "resolvedFound", s.resolved_found, false);
            field(out, "unreadable", s.unreadable, false);
            field(out, "foreign", s.foreign, false);
            field(out, "healthThrottled", s.health_throttled, true);
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_well_formed() {
        let mut s = DispatchStats::default();
        s.processors[1].health = Health::Failing;
        s.oldest_fresh_accepted_ms = Some(1_000);
        let mut out = Vec::new();
        s.write_json(1_250, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(r#"{"queued":0,"pinned":0,"delayed":0,"oldestQueuedAgeMs":250,"#),
            "{text}"
        );
        assert!(
            text.contains(r#""fallback":{"health":"failing","inFlight":0,"#),
            "{text}"
        );
        assert!(text.ends_with(r#""healthThrottled":0}}}"#), "{text}");
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }
}
