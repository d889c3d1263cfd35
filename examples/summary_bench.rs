//! Times `Segment::summary` (the time index) against `Segment::summary_scan` (every slot) on
//! full tables.
//!
//! ```text
//! cargo run --release --example summary_bench
//! ```
//!
//! 1. An anonymous segment of 2^21 slots with 1 000 000 payments done over ~60 s.
//! 2. A segment of the default capacity filled to 3/4 (393 216 payments) over ~60 s.
//!
//! For each: 1 000 random windows (random ms bounds in and around the data, a third of them
//! shaped like the audit window `[t − 15 s, t − 1.5 s]`), median and p99 of `summary` in µs,
//! and the median of a few `summary_scan` calls. Every indexed answer is checked against the
//! scan for the first windows.

use std::time::{Duration, Instant};

use payrelay::base::payment::Processor;

use payrelay::base::uuid::Uuid;
use payrelay::segment::{Insert, Segment, DEFAULT_CAPACITY};

/// 2025-07-08T18:40:00Z in ms.
const T0: u64 = 1_752_000_000_000;
const SPAN_MS: u64 = 60_000;

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fill(segment: &Segment, payments: u64, rng: &mut Rng) {
    let started = Instant::now();
    for n in 0..payments {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&rng.next().to_le_bytes());
        id[8..].copy_from_slice(&n.to_le_bytes());
        let slot = match segment.insert(&Uuid(id), 1990, T0 + n * SPAN_MS / payments) {
            Insert::Inserted(slot) => slot,
            other => panic!("payment {n}: {other:?}"),
        };
        let processor = if rng.below(4) == 0 {
            Processor::Fallback
        } else {
            Processor::Default
        };
        segment
            .mark_done(slot, processor, T0 + rng.below(SPAN_MS))
            .expect("mark done");
    }
    let took = started.elapsed();
    println!(
        "  filled {payments} payments in {:.2} s ({:.0} ns per insert + mark_done)",
        took.as_secs_f64(),
        took.as_nanos() as f64 / payments as f64
    );
}

fn window(rng: &mut Rng) -> (Option<i64>, Option<i64>) {
    let t0 = T0 as i64;
    match rng.below(3) {
        0 => {
            let now = t0 + rng.below(SPAN_MS + 20_000) as i64;
            (Some(now - 15_000), Some(now - 1_500))
        }
        1 => {
            let a = t0 - 5_000 + rng.below(SPAN_MS + 10_000) as i64;
            let b = t0 - 5_000 + rng.below(SPAN_MS + 10_000) as i64;
            (Some(a.min(b)), Some(a.max(b)))
        }
        _ => {
            let a = t0 + rng.below(SPAN_MS) as i64;
            if rng.below(2) == 0 {
                (Some(a), None)
            } else {
                (None, Some(a))
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn bench(name: &str, segment: &Segment) {
    println!("{name}: capacity {}, live {}", segment.capacity(), segment.live_count());
    let mut rng = Rng(7);
    let windows: Vec<_> = (0..1000).map(|_| window(&mut rng)).collect();
    for &(from, to) in windows.iter().take(20) {
        assert_eq!(
            segment.summary(from, to),
            segment.summary_scan(from, to),
            "window {from:?}..={to:?}"
        );
    }
    let mut times = Vec::with_capacity(windows.len());
    let mut checksum = 0u64;
    for &(from, to) in &windows {
        let started = Instant::now();
        let summary = segment.summary(from, to);
        times.push(started.elapsed());
        checksum = checksum.wrapping_add(summary.per_processor[0].count);
    }
    times.sort();
    println!(
        "  summary      : median {:8.1} µs   p99 {:8.1} µs   max {:8.1} µs   ({} windows, checksum {checksum})",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        windows.len()
    );
    let mut scans: Vec<Duration> = windows
        .iter()
        .take(9)
        .map(|&(from, to)| {
            let started = Instant::now();
            std::hint::black_box(segment.summary_scan(from, to));
            started.elapsed()
        })
        .collect();
    scans.sort();
    println!(
        "  summary_scan : median {:8.1} µs   ({} windows)",
        percentile(&scans, 0.5),
        scans.len()
    );
}

fn main() {
    let mut rng = Rng(1);
    let big = Segment::anonymous(1 << 21).expect("map 2^21 slots");
    println!("2^21 slots, 1 000 000 payments over {} s", SPAN_MS / 1000);
    fill(&big, 1_000_000, &mut rng);
    bench("2^21 slots", &big);
    drop(big);

    let default = Segment::anonymous(DEFAULT_CAPACITY).expect("map default capacity");
    let payments = u64::from(DEFAULT_CAPACITY) / 4 * 3;
    println!("default capacity, {payments} payments (3/4) over {} s", SPAN_MS / 1000);
    fill(&default, payments, &mut rng);
    assert_eq!(default.insert(&Uuid([0xAB; 16]), 1, T0), Insert::Full);
    bench("default capacity", &default);
}
