//! Deployment-wide health polling: the processors allow one `GET /payments/service-health`
//! per 5 s across the whole deployment, so the instances claim the right to poll through the
//! segment and share the result.
//!
//! # Words
//! Per processor, `next_poll_at_ms` says when the next poll may be sent: a claim moves it from
//! a time already reached to `now + interval` by CAS, so one claimer wins per interval
//! whatever the number of instances; a `429` pushes it later with `fetch_max`. `report` holds
//! the last result packed in one word (present, failing, `minResponseTime`, observation time),
//! so a reader never sees half of one result and half of another. Both words are
//! self-contained: nothing else is published with them, hence Relaxed orderings.
//!
//! # Crashes
//! An instance that dies after winning a claim and before publishing costs one interval
//! without a fresh result; the next claim is open to every instance when it ends.

use std::sync::atomic::Ordering;

use crate::base::payment::Processor;

use super::layout::{pack_report, report_time, unpack_report, HealthSlot};
use super::Segment;

/// What `GET /payments/service-health` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// The processor says it is failing.
    pub failing: bool,
    /// Its `minResponseTime` in ms. The segment keeps up to 1 048 575 ms (17.5 min); larger
    /// values read back as that.
    pub min_response_ms: u32,
}

impl Segment {
    fn health_slot(&self, processor: Processor) -> &HealthSlot {
        &self.header().health[processor.index()]
    }

    /// Claims the right to call `GET /payments/service-health` of `processor` now: moves the
    /// processor's next poll time from a value <= `now_ms` to `now_ms + interval_ms` by CAS.
    ///
    /// True = this instance polls now (and should [`publish_health`](Self::publish_health) the
    /// answer); false = another instance polls in this interval, or a `429` deferred it.
    pub fn claim_health_poll(&self, processor: Processor, now_ms: u64, interval_ms: u64) -> bool {
        let next = &self.health_slot(processor).next_poll_at_ms;
        // Relaxed: a lone arbitration word (module doc); the CAS decides.
        let mut current = next.load(Ordering::Relaxed);
        while current <= now_ms {
            // Relaxed: as above. Of N claimers that saw the same `current`, one CAS succeeds
            // and the others reload a time in the future.
            match next.compare_exchange_weak(
                current,
                now_ms.saturating_add(interval_ms),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// Publishes the answer of a health poll of `processor` observed at `now_ms`, unless a
    /// result observed later is already there (a slow poll never hides a fresher one).
    /// `now_ms` beyond the year 2109 is clamped.
    pub fn publish_health(&self, processor: Processor, report: HealthReport, now_ms: u64) {
        let word = pack_report(report.failing, report.min_response_ms, now_ms);
        // Relaxed: the word is the whole message (module doc).
        let _ = self
            .health_slot(processor)
            .report
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                (report_time(current) <= report_time(word)).then_some(word)
            });
    }

    /// The last published result of `processor` and when it was observed (ms); `None` before
    /// the first one.
    pub fn health(&self, processor: Processor) -> Option<(HealthReport, u64)> {
        // Relaxed: the word is the whole message (module doc).
        let word = self.health_slot(processor).report.load(Ordering::Relaxed);
        unpack_report(word).map(|(failing, min_response_ms, observed_at_ms)| {
            (
                HealthReport {
                    failing,
                    min_response_ms,
                },
                observed_at_ms,
            )
        })
    }

    /// Pushes the next poll of `processor` back to at least `not_before_ms` (after a `429`
    /// with `Retry-After`); never brings it earlier.
    pub fn defer_health_poll(&self, processor: Processor, not_before_ms: u64) {
        // Relaxed: a lone arbitration word (module doc).
        self.health_slot(processor)
            .next_poll_at_ms
            .fetch_max(not_before_ms, Ordering::Relaxed);
    }
}
