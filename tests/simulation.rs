//! Deterministic simulation of the payment pipeline (issue 9, tests A).
//!
//! The real [`payrelay::dispatch::Dispatcher`] — two or three instances over one real
//! (anonymous) segment — against two in-process processors built from the simulator's model
//! (`payrelay::sim::ProcessorState`, fees 5% and 15%), a simulated network, and client load,
//! all on a virtual clock that jumps to the next deadline: one thread, no sockets, no sleeps.
//! Each seed draws a fault schedule (`simulation/schedule.rs`); the harness
//! (`simulation/world.rs`) performs the dispatchers' actions as the reactor would and checks
//! the invariants at every step.
//!
//! - `cargo test --test simulation` runs seeds 0..1000 (`SEEDS=<n>` for more, `SEED_START=<k>`
//!   to shift them), on up to 4 threads (`SIM_THREADS=<n>`); each seed is deterministic on its
//!   own, whatever thread runs it.
//! - A failure prints its seed, the violation and the schedule. `SEED=<n> cargo test --test
//!   simulation -- --nocapture` replays exactly that seed; add `SIM_TRACE=1` for every event.
//! - With `--nocapture` it prints, per schedule class, the default share, the fees paid and
//!   the payments still not forwarded when the run ended, so the routing policy's profit is a
//!   number (the test passes whatever they are).

#[path = "simulation/rng.rs"]
mod rng;
#[path = "simulation/schedule.rs"]
mod schedule;
#[path = "simulation/world.rs"]
mod world;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use schedule::{Class, Schedule, CLASSES};
use world::{Report, FEE_PERCENT};

/// Seeds run by default: CI's run.
const DEFAULT_SEEDS: u64 = 1_000;
/// After this many failing seeds the rest are not started.
const MAX_FAILURES: usize = 5;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

fn run_seed(seed: u64, trace: bool) -> Result<Report, String> {
    let schedule = Schedule::draw(seed);
    catch_unwind(AssertUnwindSafe(|| world::run(&schedule, trace))).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic with a non-string payload".to_string())
    })
}

#[derive(Default)]
struct Row {
    seeds: u64,
    sum: Report,
}

impl Row {
    fn add(&mut self, r: &Report) {
        self.seeds += 1;
        let s = &mut self.sum;
        s.accepted += r.accepted;
        s.accepted_cents += r.accepted_cents;
        for k in 0..2 {
            s.done_at_end[k] += r.done_at_end[k];
            s.done_cents_at_end[k] += r.done_cents_at_end[k];
        }
        s.lag_at_end += r.lag_at_end;
        s.held_at_end += r.held_at_end;
        s.lost_answers += r.lost_answers;
        s.health_limited += r.health_limited;
        s.health_queued += r.health_queued;
        s.max_unrecorded_ms = s.max_unrecorded_ms.max(r.max_unrecorded_ms);
        s.audit_exposed += r.audit_exposed;
        s.purges_skipped += r.purges_skipped;
        s.purged_pending += r.purged_pending;
        s.sim_ms += r.sim_ms;
        s.steps += r.steps;
    }

    fn print(&self, name: &str) {
        let s = &self.sum;
        let done = s.done_at_end[0] + s.done_at_end[1];
        let done_cents = s.done_cents_at_end[0] + s.done_cents_at_end[1];
        // Fees in hundredths of a cent, exact.
        let fees: u64 = (0..2).map(|k| s.done_cents_at_end[k] * FEE_PERCENT[k]).sum();
        let fees_reais = fees as f64 / 10_000.0;
        let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
        let net = done_cents as f64 / 100.0 - fees_reais;
        let ceiling = s.accepted_cents as f64 / 100.0 * 0.95;
        println!(
            "{name:<14} {:>5} {:>8} {:>8.2}% {:>12.2} {:>6.2}% {:>7} {:>6.2}% {:>5} {:>8.2}% {:>7} {:>7.1} {:>5} {:>7.2}",
            self.seeds,
            s.accepted,
            pct(s.done_at_end[0] as f64, done as f64),
            fees_reais,
            pct(fees_reais, done_cents as f64 / 100.0),
            s.lag_at_end,
            pct(s.lag_at_end as f64, s.accepted as f64),
            s.held_at_end,
            pct(net, ceiling),
            s.lost_answers,
            s.max_unrecorded_ms as f64 / 1e3,
            s.health_limited + s.health_queued,
            s.audit_exposed as f64 / self.seeds.max(1) as f64,
        );
    }
}

fn print_table(results: &[(u64, Result<Report, String>)]) {
    let mut rows: BTreeMap<Class, Row> = BTreeMap::new();
    let mut total = Row::default();
    for (seed, result) in results {
        if let Ok(report) = result {
            rows.entry(Schedule::draw(*seed).class).or_default().add(report);
            total.add(report);
        }
    }
    println!();
    println!("Per schedule class, numbers taken when the run ended (before recovery and drain):");
    println!(
        "{:<14} {:>5} {:>8} {:>9} {:>12} {:>7} {:>7} {:>7} {:>5} {:>9} {:>7} {:>7} {:>5} {:>7}",
        "class",
        "seeds",
        "payments",
        "default",
        "fees R$",
        "fee",
        "lag",
        "lag",
        "held",
        "profit",
        "lost",
        "unrec s",
        "h429",
        "exposed"
    );
    for class in CLASSES {
        if let Some(row) = rows.get(&class) {
            row.print(class.name());
        }
    }
    total.print("all");
    println!(
        "default = share of forwarded payments that went to default; fee = fees / forwarded amount; \
         lag = accepted, not yet forwarded at the end; held = of those, the ones still waiting in a \
         dispatcher (not on the wire); profit = (forwarded - fees) / (accepted x 0.95), the \
         share of the ceiling; lost = 200s whose answer never reached a waiting dispatcher; unrec s = the longest \
         a payment a processor stored waited to be recorded by us (an audit may see it missing meanwhile); h429 = \
         our health calls refused or queued by the rate limit (only where a foreign client polls too); exposed = \
         payments per seed stored 1.5 s or more after their requestedAt, inside the window of an audit running then \
         (each is an inconsistency if it lands between the audit's two reads; at ~2 ms between them and an audit \
         every 10 s, about 1 in 5 000)."
    );
    println!(
        "simulated {:.1} h in {} steps",
        total.sum.sim_ms as f64 / 3.6e6,
        total.sum.steps
    );
    let worst = results
        .iter()
        .filter_map(|(seed, r)| r.as_ref().ok().map(|r| (r.max_unrecorded_ms, *seed)))
        .max();
    if let Some((ms, seed)) = worst.filter(|&(ms, _)| ms > 0) {
        println!(
            "longest unrecorded: {:.1} s in seed {seed} ({}); SEED={seed} SIM_TRACE=1 replays it",
            ms as f64 / 1e3,
            Schedule::draw(seed).class.name()
        );
    }
}

#[test]
fn simulation() {
    let started = Instant::now();
    let single = env_u64("SEED");
    let seeds: Vec<u64> = match single {
        Some(seed) => vec![seed],
        None => {
            let start = env_u64("SEED_START").unwrap_or(0);
            (start..start + env_u64("SEEDS").unwrap_or(DEFAULT_SEEDS)).collect()
        }
    };
    let trace = single.is_some() && std::env::var_os("SIM_TRACE").is_some();
    if let Some(seed) = single {
        println!("{}", Schedule::draw(seed));
    }
    let threads = match (single, env_u64("SIM_THREADS")) {
        (Some(_), _) => 1,
        (None, Some(n)) => n.max(1) as usize,
        (None, None) => std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
    };
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(seeds.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= seeds.len() || failures.load(Ordering::Relaxed) >= MAX_FAILURES {
                    return;
                }
                let result = run_seed(seeds[k], trace);
                if result.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                results.lock().unwrap().push((seeds[k], result));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(seed, _)| *seed);
    let elapsed = started.elapsed().as_secs_f64();
    print_table(&results);
    println!(
        "{} seeds in {elapsed:.1} s on {threads} thread(s): {:.1} seeds/s",
        results.len(),
        results.len() as f64 / elapsed
    );
    let failed: Vec<&(u64, Result<Report, String>)> = results.iter().filter(|(_, r)| r.is_err()).collect();
    if failed.is_empty() {
        return;
    }
    for (seed, result) in &failed {
        if let Err(message) = result {
            println!("\nFAILED {message}\n{}", Schedule::draw(*seed));
            println!("replay: SEED={seed} cargo test --test simulation -- --nocapture");
        }
    }
    let seeds: Vec<u64> = failed.iter().map(|(seed, _)| *seed).collect();
    panic!(
        "{} seed(s) failed: {seeds:?} (the first {MAX_FAILURES} failures stop the run); replay one with \
         SEED=<n> cargo test --test simulation -- --nocapture",
        seeds.len()
    );
}

/// The same seed gives the same run, action for action.
#[test]
fn a_seed_replays_exactly() {
    for seed in [6, 8, 12, 13] {
        let schedule = Schedule::draw(seed);
        let a = world::run(&schedule, false);
        let b = world::run(&schedule, false);
        assert_eq!((a.fingerprint, a.steps), (b.fingerprint, b.steps), "seed {seed}");
    }
}
