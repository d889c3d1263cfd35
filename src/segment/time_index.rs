//! The time index: exact summaries over any millisecond window without reading every slot.
//!
//! # Shape
//! Two direct-mapped arrays of [`Bucket`]s hold, per period, the count and cents of the done
//! payments per processor: one bucket per second (2^16 of them, indexed by second mod 2^16)
//! and one per millisecond (2^20, ms mod 2^20). `requestedAt` has millisecond resolution, so a
//! millisecond bucket is exact: a window `[from, to]` is answered from the millisecond buckets
//! of its two partial edge seconds (at most 999 each) and the second buckets of the whole
//! seconds between them. Bounds beyond the epoch's first or last done time move to the edge
//! of that second, so open-ended windows read whole seconds only.
//!
//! (The first sketch linked the done payments of each second into a chain and filtered the
//! two edge seconds by walking it. At the 1 M payments / 60 s of the benchmark that is ~17 000
//! random slot reads per edge, milliseconds per query; millisecond aggregates make every edge
//! at most 999 sequential 32-byte reads, so the chain link was dropped from the slot.)
//!
//! # Tags
//! A bucket's `tag` names the (epoch, lap) its aggregates belong to, lap = time / number of
//! buckets. A writer finding an older tag resets the bucket for its own period: it CASes the
//! tag to (epoch, lap) without READY (only when no writer of the old period is registered),
//! zeroes the aggregates, then sets READY (Release). Writers register in the tag's low bits
//! before adding and deregister after (Release), so a reset never interleaves with an add.
//!
//! A reader treats a bucket whose tag is older than the period it asks for as empty: a writer
//! of that period would have reset it, or, if it could not, raised a flag that sends every
//! query to the scan. A tag that is newer (aliasing: the epoch's data spans more than the
//! array, or a purge overtook the query) or DIRTY (a writer gave up waiting for a reset) makes
//! the query fall back to [`Segment::summary_scan`]. Summaries are therefore always exact.
//!
//! # Concurrency and crashes
//! A payment enters the aggregates before its slot is published `DONE`, so for a few
//! instructions a summary may count it and the scan not; once `mark_done` returns both agree.
//! A process that dies between adding and publishing leaves that difference in place until the
//! next purge (see `table`); one that dies while registered pins the bucket, and a later
//! writer of another period gives up on it after [`SPIN_LIMIT`] tries and flags the epoch for
//! the scan.

use std::hint::spin_loop;
use std::sync::atomic::{fence, Ordering};

use super::layout::{
    epoch_of_live, is_newer_epoch, tag_base, tag_epoch, tag_lap, Bucket, MS_BITS, MS_BUCKETS, SEC_BITS, SEC_BUCKETS,
    SPIN_LIMIT, TAG_BASE, TAG_DIRTY, TAG_READY, TAG_WRITERS,
};
use super::{window, Segment, Summary};

/// What happened to one index update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Added {
    /// The payment is in the bucket's aggregates.
    Counted,
    /// Not counted, but the bucket is marked (DIRTY or a newer tag) so queries over it scan.
    Marked,
    /// Not counted and nothing in the bucket says so: the epoch must be flagged.
    GaveUp,
    /// The bucket belongs to a newer epoch: this payment was purged meanwhile.
    Purged,
}

/// Where a tag's period stands relative to (epoch, lap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Age {
    Older,
    Same,
    Newer,
}

fn age(tag: u64, epoch: u32, lap: u64) -> Age {
    let tag_epoch = tag_epoch(tag);
    if tag_epoch != epoch {
        return if is_newer_epoch(tag_epoch, epoch) {
            Age::Newer
        } else {
            Age::Older
        };
    }
    match tag_lap(tag).cmp(&lap) {
        std::cmp::Ordering::Less => Age::Older,
        std::cmp::Ordering::Equal => Age::Same,
        std::cmp::Ordering::Greater => Age::Newer,
    }
}

/// Adds one payment of processor `p` to `bucket` for period (epoch, lap).
fn add(bucket: &Bucket, epoch: u32, lap: u64, p: usize, cents: u64) -> Added {
    let base = tag_base(epoch, lap);
    let mut spins = 0;
    loop {
        // Acquire: pairs with the Release that set READY (the zeroes) and with the Release
        // deregistration of an older period's writers (their adds are complete).
        let tag = bucket.tag.load(Ordering::Acquire);
        match age(tag, epoch, lap) {
            Age::Same if tag & TAG_READY != 0 && tag & TAG_WRITERS < TAG_WRITERS => {
                // Acquire on success: our adds follow the zeroing published by READY.
                if bucket
                    .tag
                    .compare_exchange_weak(tag, tag + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    // Relaxed: counters; the registration orders them inside this period.
                    bucket.counts.fetch_add(1 << (32 * p), Ordering::Relaxed);
                    bucket.cents[p].fetch_add(cents, Ordering::Relaxed);
                    // Release: a reset that sees the writer count at 0 sees these adds done.
                    bucket.tag.fetch_sub(1, Ordering::Release);
                    return Added::Counted;
                }
                continue;
            }
            Age::Same => {} // being reset (or writers saturated): a few instructions away
            Age::Newer if tag_epoch(tag) != epoch => return Added::Purged,
            Age::Newer => return Added::Marked, // queries of our period see a newer tag
            Age::Older if tag & TAG_WRITERS == 0 => {
                // Acquire on success: zeroing follows the last old writer's Release.
                if bucket
                    .tag
                    .compare_exchange(tag, base, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    // Relaxed: readers ignore the aggregates until READY (Release) below.
                    bucket.counts.store(0, Ordering::Relaxed);
                    bucket.cents[0].store(0, Ordering::Relaxed);
                    bucket.cents[1].store(0, Ordering::Relaxed);
                    // Release: publishes the zeroes with READY (a DIRTY set meanwhile stays).
                    bucket.tag.fetch_or(TAG_READY, Ordering::Release);
                }
                continue;
            }
            Age::Older => {} // an older period's writer is still adding
        }
        spins += 1;
        if spins > SPIN_LIMIT {
            if age(tag, epoch, lap) == Age::Same {
                // Relaxed: the Release store of our DONE orders it before the payment shows.
                bucket.tag.fetch_or(TAG_DIRTY, Ordering::Relaxed);
                return Added::Marked;
            }
            return Added::GaveUp;
        }
        spin_loop();
    }
}

/// What a reader makes of one bucket: `None` when the index cannot answer for it.
fn read(bucket: &Bucket, epoch: u32, lap: u64, summary: &mut Summary) -> Option<()> {
    // Acquire: pairs with the Release that set READY, so the aggregates are this period's.
    let tag = bucket.tag.load(Ordering::Acquire);
    match age(tag, epoch, lap) {
        Age::Older => return Some(()),
        Age::Newer => return None,
        Age::Same if tag & TAG_DIRTY != 0 => return None,
        Age::Same if tag & TAG_READY == 0 => return Some(()), // being reset: nothing done yet
        Age::Same => {}
    }
    // Relaxed, validated by the reload of the tag below (seqlock read).
    let counts = bucket.counts.load(Ordering::Relaxed);
    let cents = [
        bucket.cents[0].load(Ordering::Relaxed),
        bucket.cents[1].load(Ordering::Relaxed),
    ];
    // Acquire fence + relaxed reload: the loads above happen before the check.
    fence(Ordering::Acquire);
    let again = bucket.tag.load(Ordering::Relaxed);
    if (again ^ tag) & (TAG_BASE | TAG_READY | TAG_DIRTY) != 0 {
        return None; // reset or marked while we read
    }
    summary.add(0, counts & 0xFFFF_FFFF, cents[0]);
    summary.add(1, counts >> 32, cents[1]);
    Some(())
}

impl Segment {
    /// Adds a payment being marked done to both levels of the index; flags the epoch for the
    /// scan if one level could neither count it nor mark the bucket.
    pub(super) fn index_done(&self, epoch: u32, p: usize, at_ms: u64, cents: u64) {
        let sec = at_ms / 1000;
        let ms_bucket = &self.ms_buckets()[(at_ms as usize) & (MS_BUCKETS - 1)];
        let sec_bucket = &self.sec_buckets()[(sec as usize) & (SEC_BUCKETS - 1)];
        let by_ms = add(ms_bucket, epoch, at_ms >> MS_BITS, p, cents);
        let by_sec = add(sec_bucket, epoch, sec >> SEC_BITS, p, cents);
        if by_ms == Added::GaveUp || by_sec == Added::GaveUp {
            // Release: ordered before the DONE store; summaries check it first.
            self.header().unindexed_epoch.store(u64::from(epoch), Ordering::Release);
        }
    }

    /// Totals per processor of the done payments of the current epoch whose `requestedAt` lies
    /// in `[from_ms, to_ms]` (inclusive; `None` = unbounded; empty when from > to).
    ///
    /// Exact: equal to [`Segment::summary_scan`], from the time index when it can answer (a
    /// few microseconds: one bucket per whole second plus the milliseconds of the two edge
    /// seconds), else from the scan (aliasing over more than ~17 min of data in one epoch
    /// for the edges or ~18 h for the seconds, a bucket a writer had to give up on, or a purge
    /// during the query).
    pub fn summary(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> Summary {
        self.summary_from_index(from_ms, to_ms)
            .unwrap_or_else(|| self.summary_scan(from_ms, to_ms))
    }

    /// The time index's answer, `None` when only the scan can answer exactly.
    pub(super) fn summary_from_index(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> Option<Summary> {
        let Some((lo, hi)) = window(from_ms, to_ms) else {
            return Some(Summary::default());
        };
        let header = self.header();
        for _ in 0..3 {
            // Acquire: pairs with the purge, so the done range below is this epoch's.
            let epoch = epoch_of_live(header.epoch_live.load(Ordering::Acquire));
            // Acquire: pairs with the Release of a writer that gave up indexing.
            if header.unindexed_epoch.load(Ordering::Acquire) == u64::from(epoch) {
                return None;
            }
            // Acquire: hints only; ordered after the epoch read.
            let min = header.min_done_ms.load(Ordering::Acquire);
            let max = header.max_done_ms.load(Ordering::Acquire);
            // Nothing is done before `min` nor after `max`: a bound beyond them may move to the
            // edge of their second, so an open-ended window reads whole seconds only.
            let lo = if lo <= min { min - min % 1000 } else { lo };
            let hi = if hi >= max { max - max % 1000 + 999 } else { hi };
            let answer = if lo > hi || min > max {
                Some(Summary::default())
            } else {
                self.indexed(epoch, lo, hi)
            };
            // Acquire: a purge during the query means the buckets may belong to two epochs.
            if epoch_of_live(header.epoch_live.load(Ordering::Acquire)) == epoch {
                return answer;
            }
        }
        None
    }

    /// The index's answer for `[lo, hi]` (non-empty, inside the done range) in `epoch`.
    fn indexed(&self, epoch: u32, lo: u64, hi: u64) -> Option<Summary> {
        let (lo_sec, hi_sec) = (lo / 1000, hi / 1000);
        if hi_sec - lo_sec >= SEC_BUCKETS as u64 {
            return None; // longer than the second array: some bucket would be read twice
        }
        let mut summary = Summary::default();
        let whole_first = lo % 1000 == 0;
        let whole_last = hi % 1000 == 999;
        if lo_sec == hi_sec && !(whole_first && whole_last) {
            self.read_ms(epoch, lo, hi, &mut summary)?;
            return Some(summary);
        }
        let mut first = lo_sec;
        if !whole_first {
            self.read_ms(epoch, lo, lo_sec * 1000 + 999, &mut summary)?;
            first += 1;
        }
        let mut end = hi_sec + 1;
        if !whole_last {
            self.read_ms(epoch, hi_sec * 1000, hi, &mut summary)?;
            end -= 1;
        }
        let buckets = self.sec_buckets();
        for sec in first..end {
            read(
                &buckets[(sec as usize) & (SEC_BUCKETS - 1)],
                epoch,
                sec >> SEC_BITS,
                &mut summary,
            )?;
        }
        Some(summary)
    }

    /// Adds the millisecond buckets `lo..=hi` (within one second) to `summary`.
    fn read_ms(&self, epoch: u32, lo: u64, hi: u64, summary: &mut Summary) -> Option<()> {
        let buckets = self.ms_buckets();
        for ms in lo..=hi {
            read(
                &buckets[(ms as usize) & (MS_BUCKETS - 1)],
                epoch,
                ms >> MS_BITS,
                summary,
            )?;
        }
        Some(())
    }
}
