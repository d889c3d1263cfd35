//! The simulated deployment: the real [`Dispatcher`]s over one real (anonymous) [`Segment`],
//! two in-process processors built from the simulator's model, a network with latency and
//! faults, client load, and a virtual clock that jumps to the next thing due. This replaces
//! exactly what `src/pipeline.rs` and the upstream pools do in the real reactor: actions go
//! out, completions come back.
//!
//! Every invariant is checked where it can first be seen (the "Checks" section below), so a
//! violation stops the run at the step that caused it:
//! - at each send: the payment was accepted and is not done, its amount, the same
//!   `requestedAt` as every earlier attempt on that processor (deployment-wide), nothing of it
//!   stored on or still possibly landing at the other processor; health calls at least 5 s
//!   apart per processor deployment-wide and never before a 429's `Retry-After`;
//! - at each processor decision: no correlationId stored twice (by one or both), only accepted
//!   ones; our own health calls never refused nor queued by the rate limit (unless a foreign
//!   client polls too);
//! - at each answer delivered: a 200, a 422 or a found lookup is recorded in the segment at
//!   once, at that processor, with the `requestedAt` it stored; any segment state read must
//!   match the books (done only where stored, with that `requestedAt`; done for good);
//! - after each dispatcher tick: its next deadline is in the future (no busy loop);
//! - every simulated second our summary over a random window, every 10 s over the official
//!   audit window, equals each processor's books less exactly the stored payments not yet
//!   recorded (answer on the wire, or lost and awaiting resolution); every 5 s all accepted
//!   payments are re-read;
//! - after recovery and the drain: every accepted payment done exactly once, books and
//!   summaries equal.

use std::collections::{BTreeMap, HashMap};

use payrelay::base::amount::{Cents, ScaledAmount};
use payrelay::base::clock::Now;
use payrelay::base::payment::Processor;
use payrelay::base::uuid::Uuid;
use payrelay::base::window::Window;
use payrelay::dispatch::{Action, Dispatcher, Policy};
use payrelay::dispatch::{Call, Completion, Outcome, ProcessorHealth as WireHealth, RequestId};
use payrelay::segment::{Insert, Segment, SlotState};
use payrelay::sim::body::ProcessorPayment;
use payrelay::sim::decimal::Decimal;
use payrelay::sim::{Answer, HealthAnswer, PaymentOutcome, ProcessorConfig, ProcessorState};

use super::rng::Rng;
use super::schedule::{Change, Class, NetFaults, Schedule};

/// Wall-clock time at virtual monotonic 0 (2025-07-10).
pub const T0: i64 = 1_752_150_896_000;
/// How long before an audit its window ends (the challenge's scoring).
pub const AUDIT_LAG_MS: u64 = 1_500;
/// Segment slots: room for 1 536 live payments per epoch (a seed sends at most ~1 000 in one).
/// Every instance scans all of it for orphans every 100 ms, so it sets much of the cost of a
/// seed.
const CAPACITY: u32 = 2048;
/// Fees as the processors charge them (percent).
pub const FEE_PERCENT: [u64; 2] = [5, 15];
/// How often our summary is compared with the processors' books over a random window.
const SUMMARY_EVERY_MS: u64 = 1_000;
/// How often every accepted payment's segment state is compared with the books.
const SWEEP_EVERY_MS: u64 = 5_000;
/// How often the official audit window (`[now-15 s, now-1.5 s]`) is compared.
const AUDIT_EVERY_MS: u64 = 10_000;
/// The longest the drain after the run may take before undone payments fail the seed.
const DRAIN_CAP_MS: u64 = 900_000;
/// How long a purge waits for a quiet moment before it is skipped.
const PURGE_PATIENCE_MS: u64 = 120_000;
/// The processors' health rate-limit window.
const HEALTH_WINDOW_MS: u64 = 5_000;
/// Consecutive ticks of one dispatcher at one instant that count as a busy loop.
const SPIN_LIMIT: u32 = 1;

/// How a request fares on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Refuse,
    Lost,
    ResetAfter,
    ResetDuring,
    Hang,
    /// The processor cannot be reached and no connection ever carries it: it waits in the
    /// pool's queue until the dispatcher cancels it, never written.
    Unconnected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Instance {
        index: usize,
        generation: u32,
        request: RequestId,
    },
    Foreign,
}

/// A request on its way or inside a processor.
#[derive(Clone, Copy, Debug)]
struct Wire {
    caller: Caller,
    processor: Processor,
    call: Call,
    fault: Fault,
    /// False once the dispatcher cancelled it: its answer is dropped.
    interested: bool,
    /// The processor has answered it (a `ResetDuring` wire lives until both the reset and
    /// the processor's answer have happened).
    replied: bool,
    /// Its failure reached the caller (`ResetDuring`).
    reset: bool,
    /// The purges before it was sent: one sent before a purge is about a payment that purge
    /// erased.
    epoch: u32,
}

/// A client's `POST /payments`.
#[derive(Clone, Copy, Debug)]
struct Post {
    id: Uuid,
    cents: Cents,
    /// A duplicate: goes to another instance than the last post of this id, if it can.
    elsewhere: bool,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Arrival(Post),
    Change(Change),
    ToProcessor(u64),
    ToInstance(u64, Outcome),
    ForeignPoll(Processor, u64),
}

struct Instance {
    dispatcher: Option<Dispatcher>,
    generation: u32,
    stalled_until: Option<u64>,
    inbox: Vec<(Wire, Outcome)>,
    /// Ticks at the instant `spin_at`.
    spins: u32,
    spin_at: u64,
}

/// One accepted payment of the current epoch, as the harness knows it.
#[derive(Clone, Copy, Debug)]
struct Pay {
    id: Uuid,
    cents: Cents,
    accepted_wall: u64,
    /// Seen done in the segment: processor and requestedAt.
    done: Option<(Processor, u64)>,
}

/// A payment a processor stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stored {
    processor: Processor,
    requested_at: u64,
    cents: Cents,
    /// When the processor stored it (virtual ms).
    stored_ms: u64,
}

/// Numbers of one seed, for the per-class table.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    pub accepted: u64,
    pub accepted_cents: u64,
    /// Done per processor when the run ended (before recovery and drain).
    pub done_at_end: [u64; 2],
    pub done_cents_at_end: [u64; 2],
    /// Accepted and not done when the run ended.
    pub lag_at_end: u64,
    /// Of those, the ones the dispatchers still held (not on the wire) when the run ended.
    pub held_at_end: u64,
    /// Answers 200 that never reached an interested dispatcher (resets, hangs, give-ups,
    /// crashes): each became an ambiguity the dispatcher had to resolve.
    pub lost_answers: u64,
    /// Our health calls refused (429) or queued by the processors' rate limit.
    pub health_limited: u64,
    pub health_queued: u64,
    /// The longest a stored payment waited to be recorded in our segment (ms): the widest
    /// window in which an audit could have seen a difference.
    pub max_unrecorded_ms: u64,
    /// Payments stored at least `AUDIT_LAG_MS` after their requestedAt: each landed inside
    /// the window of an audit running then, and would be an inconsistency if it landed
    /// between that audit's two reads (ours, then the processor's).
    pub audit_exposed: u64,
    pub purges_skipped: u64,
    /// Payments not yet done when a purge erased them (a purge while busy).
    pub purged_pending: u64,
    pub sim_ms: u64,
    pub steps: u64,
    /// A hash of every action performed, to check that a seed replays exactly.
    pub fingerprint: u64,
}

pub struct World<'a> {
    schedule: &'a Schedule,
    trace: bool,
    /// Network latencies, faults, instance choice, crash instants.
    rng: Rng,
    /// Windows for the summary checks (kept apart so checking never changes the run).
    check_rng: Rng,
    now: u64,
    segment: Segment,
    instances: Vec<Instance>,
    round_robin: usize,
    last_instance: HashMap<Uuid, usize>,
    processors: [ProcessorState<u64>; 2],
    events: BTreeMap<(u64, u64), Event>,
    event_seq: u64,
    wires: HashMap<u64, Wire>,
    by_request: HashMap<(usize, u32, RequestId), u64>,
    next_wire: u64,
    faults: NetFaults,
    /// Processors nobody can connect to.
    unreachable: [bool; 2],
    foreign: [(u64, Option<u64>); 2],
    purge_pending: Option<u64>,
    /// A purge that does not wait for our instances to be quiet, only for the processors to
    /// hold no payment request (since: ms).
    purge_anytime_pending: Option<u64>,
    /// Purges so far.
    epoch: u32,
    next_summary: u64,
    next_sweep: u64,
    next_audit: u64,
    // What the harness knows of the current epoch.
    pays: Vec<Pay>,
    index: HashMap<Uuid, usize>,
    not_done: usize,
    stored: HashMap<Uuid, Stored>,
    /// Stored by a processor, not (yet) done in our segment: the answer is on the wire, or
    /// it was lost and the payment awaits resolution.
    unrecorded: HashMap<Uuid, Stored>,
    stamps: HashMap<(Uuid, usize), u64>,
    /// Attempts per processor that were delivered (or are on their way) and not yet decided.
    live: HashMap<Uuid, [u32; 2]>,
    last_health_send: [Option<u64>; 2],
    health_blocked_until: [u64; 2],
    /// Numbers of epochs closed by a purge.
    retired: Report,
    report: Report,
}

fn wall(mono: u64) -> u64 {
    (T0 + mono as i64) as u64
}

fn now_of(mono: u64) -> Now {
    Now {
        mono_ms: mono,
        wall_ms: T0 + mono as i64,
    }
}

fn decimal_cents(d: Decimal) -> u64 {
    assert!(d.scale <= 2, "amount with scale {}", d.scale);
    (d.units * 10u128.pow(u32::from(2 - d.scale))) as u64
}

fn short(id: &Uuid) -> String {
    id.0[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn fold(hash: u64, word: u64) -> u64 {
    (hash ^ word).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(5)
}

impl<'a> World<'a> {
    pub fn new(schedule: &'a Schedule, trace: bool) -> World<'a> {
        let mut rng = Rng::new(schedule.seed ^ 0x6a09_e667_f3bc_c908);
        let check_rng = rng.fork();
        let segment = Segment::anonymous(CAPACITY).expect("anonymous segment");
        let processors = Processor::ALL.map(|p| {
            ProcessorState::new(ProcessorConfig {
                fee: Decimal {
                    units: u128::from(FEE_PERCENT[p.index()]),
                    scale: 2,
                },
                delay_ms: schedule.initial_delay[p.index()] as i32,
                ..ProcessorConfig::default()
            })
        });
        let mut w = World {
            schedule,
            trace,
            rng,
            check_rng,
            now: 0,
            segment,
            instances: Vec::new(),
            round_robin: 0,
            last_instance: HashMap::new(),
            processors,
            events: BTreeMap::new(),
            event_seq: 0,
            wires: HashMap::new(),
            by_request: HashMap::new(),
            next_wire: 1,
            faults: NetFaults::NONE,
            unreachable: [false; 2],
            foreign: [(0, None); 2],
            purge_pending: None,
            purge_anytime_pending: None,
            epoch: 0,
            next_summary: SUMMARY_EVERY_MS,
            next_sweep: SWEEP_EVERY_MS,
            next_audit: AUDIT_EVERY_MS,
            pays: Vec::new(),
            index: HashMap::new(),
            not_done: 0,
            stored: HashMap::new(),
            unrecorded: HashMap::new(),
            stamps: HashMap::new(),
            live: HashMap::new(),
            last_health_send: [None; 2],
            health_blocked_until: [0; 2],
            retired: Report::default(),
            report: Report::default(),
        };
        for _ in 0..schedule.instances {
            w.instances.push(Instance {
                dispatcher: None,
                generation: 0,
                stalled_until: None,
                inbox: Vec::new(),
                spins: 0,
                spin_at: u64::MAX,
            });
        }
        for i in 0..schedule.instances {
            w.start_instance(i);
        }
        for &(at, change) in &schedule.changes {
            w.push(at, Event::Change(change));
        }
        w.plan_load();
        w
    }

    /// Runs the seed: a purge as the official test starts with, the run, the numbers at its
    /// end, recovery, the drain, and the final checks.
    pub fn run(mut self) -> Report {
        self.purge_now();
        self.run_until(self.schedule.run_ms);
        self.measure_end();
        self.recover();
        self.drain();
        self.final_checks();
        self.report.sim_ms = self.now;
        self.report
    }

    // ----------------------------------------------------------------------------------
    // The clock.

    fn push(&mut self, at: u64, event: Event) {
        self.event_seq += 1;
        self.events.insert((at, self.event_seq), event);
    }

    /// The next instant anything is due.
    fn next_time(&self) -> u64 {
        let mut next = self.next_summary.min(self.next_sweep).min(self.next_audit);
        if let Some((&(at, _), _)) = self.events.first_key_value() {
            next = next.min(at);
        }
        for inst in &self.instances {
            match (&inst.dispatcher, inst.stalled_until) {
                (None, _) => {}
                (Some(_), Some(until)) => next = next.min(until),
                (Some(d), None) => next = next.min(d.poll_timeout()),
            }
        }
        for p in &self.processors {
            if let Some(d) = p.next_deadline() {
                next = next.min(d);
            }
        }
        next.max(self.now)
    }

    fn run_until(&mut self, limit: u64) {
        loop {
            let t = self.next_time();
            if t > limit {
                break;
            }
            self.step(t);
        }
        self.now = self.now.max(limit);
    }

    /// Everything due at `t`: processors' timers, events, wake-ups, dispatcher ticks, checks.
    fn step(&mut self, t: u64) {
        assert!(t >= self.now);
        self.now = t;
        self.report.steps += 1;
        for p in Processor::ALL {
            if self.processors[p.index()].next_deadline().is_some_and(|d| d <= t) {
                self.processors[p.index()].handle_timeout(t);
                self.drain_processor(p);
            }
        }
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let event = entry.remove();
            self.handle(event);
        }
        for i in 0..self.instances.len() {
            if self.instances[i].stalled_until.is_some_and(|until| until <= t) {
                self.wake(i);
            }
        }
        for i in 0..self.instances.len() {
            let inst = &mut self.instances[i];
            let due = inst.stalled_until.is_none() && inst.dispatcher.as_ref().is_some_and(|d| t >= d.poll_timeout());
            if !due {
                continue;
            }
            if inst.spin_at == t {
                inst.spins += 1;
            } else {
                inst.spin_at = t;
                inst.spins = 0;
            }
            if inst.spins > SPIN_LIMIT {
                let d = inst.dispatcher.as_ref().expect("due");
                let msg = format!(
                    "instance {i} spins: ticked at {t} ms and still due at {} ms (the reactor would poll \
                     with a zero timeout until something else happens); stats {:?}",
                    d.poll_timeout(),
                    d.stats()
                );
                self.violation(msg);
            }
            inst.dispatcher.as_mut().expect("due").handle_timeout(now_of(t));
            self.settle(i);
        }
        if t >= self.next_summary {
            self.next_summary = t + SUMMARY_EVERY_MS;
            let (from, to) = self.random_window();
            self.check_summary(from, to, "a random window");
        }
        if t >= self.next_audit {
            self.next_audit = t + AUDIT_EVERY_MS;
            let w = wall(t) as i64;
            self.check_summary(Some(w - 15_000), Some(w - 1_500), "the official audit window");
        }
        if t >= self.next_sweep {
            self.next_sweep = t + SWEEP_EVERY_MS;
            self.sweep();
        }
        if let Some(since) = self.purge_anytime_pending {
            if self.processors.iter().all(|p| p.in_progress() == 0 && p.queued() == 0) {
                self.purge_anytime();
                self.purge_anytime_pending = None;
            } else if t >= since + PURGE_PATIENCE_MS {
                self.report.purges_skipped += 1;
                self.purge_anytime_pending = None;
            }
        }
        if let Some(since) = self.purge_pending {
            if self.quiet() {
                self.purge_now();
                self.purge_pending = None;
            } else if t >= since + PURGE_PATIENCE_MS {
                self.trace(format_args!("purge skipped: no quiet moment"));
                self.report.purges_skipped += 1;
                self.purge_pending = None;
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Arrival(post) => self.arrive(post),
            Event::Change(change) => self.apply(change),
            Event::ToProcessor(wire) => self.reach_processor(wire),
            Event::ToInstance(wire, outcome) => self.reach_instance(wire, outcome),
            Event::ForeignPoll(p, generation) => {
                let (current, every) = self.foreign[p.index()];
                if generation != current {
                    return;
                }
                let id = self.new_wire(Wire {
                    caller: Caller::Foreign,
                    processor: p,
                    call: Call::Health,
                    fault: Fault::None,
                    interested: false,
                    replied: false,
                    reset: false,
                    epoch: self.epoch,
                });
                self.reach_processor(id);
                if let Some(every) = every {
                    self.push(self.now + every, Event::ForeignPoll(p, generation));
                }
            }
        }
    }

    fn latency(&mut self) -> u64 {
        let (lo, hi) = self.schedule.latency_ms;
        self.rng.range(lo, hi)
    }

    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if self.trace {
            println!("{:>10.3} s  {what}", self.now as f64 / 1e3);
        }
    }

    fn violation(&self, what: String) -> ! {
        panic!(
            "seed {} ({}) at {:.3} s: {what}",
            self.schedule.seed,
            self.schedule.class.name(),
            self.now as f64 / 1e3
        )
    }

    // ----------------------------------------------------------------------------------
    // Load and schedule.

    /// Turns the bursts into posts, with the duplicates and reposts the schedule asks for.
    fn plan_load(&mut self) {
        let mut load = self.rng.fork();
        for b in self.schedule.bursts.clone() {
            for k in 0..b.count {
                let at = b.start_ms + k * 1_000 / b.per_s;
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&load.next_u64().to_le_bytes());
                bytes[8..].copy_from_slice(&load.next_u64().to_le_bytes());
                let id = Uuid(bytes);
                let cents = load.range(1, 100_000);
                self.push(
                    at,
                    Event::Arrival(Post {
                        id,
                        cents,
                        elsewhere: false,
                    }),
                );
                if load.chance(self.schedule.dup_share) {
                    let again = Post {
                        id,
                        cents,
                        elsewhere: true,
                    };
                    self.push(at + load.range(0, 50), Event::Arrival(again));
                }
                if load.chance(self.schedule.repost_share) {
                    let again = Post {
                        id,
                        cents,
                        elsewhere: true,
                    };
                    self.push(at + load.range(5_000, 60_000), Event::Arrival(again));
                }
            }
        }
    }

    fn apply(&mut self, change: Change) {
        self.trace(format_args!("schedule: {change:?}"));
        match change {
            Change::Delay(p, ms) => {
                self.processors[p.index()].set_delay(ms as i32);
            }
            Change::Failure(p, on) => {
                self.processors[p.index()].set_failure(on);
            }
            Change::Faults(faults) => self.faults = faults,
            Change::ForeignHealth(p, every) => {
                let slot = &mut self.foreign[p.index()];
                slot.0 += 1;
                slot.1 = every;
                let generation = slot.0;
                if every.is_some() {
                    self.push(self.now, Event::ForeignPoll(p, generation));
                }
            }
            Change::Crash(i) => self.crash(i),
            Change::Restart(i) => self.restart(i),
            Change::Unreachable(p, on) => self.unreachable[p.index()] = on,
            Change::Stall(i, ms) => {
                let inst = &mut self.instances[i];
                if inst.dispatcher.is_some() && inst.stalled_until.is_none() {
                    inst.stalled_until = Some(self.now + ms);
                }
            }
            Change::PurgeAnytime => {
                if self.purge_anytime_pending.is_none() {
                    self.purge_anytime_pending = Some(self.now);
                }
            }
            Change::Purge => {
                if self.purge_pending.is_none() {
                    self.purge_pending = Some(self.now);
                }
            }
        }
    }

    /// A client's post reaches an instance (the load balancer's choice), which stores it in
    /// the segment and hands it to its dispatcher if it is new.
    fn arrive(&mut self, post: Post) {
        if self.purge_pending.is_some() {
            return; // the official test purges before its load, never during it
        }
        let active: Vec<usize> = (0..self.instances.len())
            .filter(|&i| self.instances[i].dispatcher.is_some() && self.instances[i].stalled_until.is_none())
            .collect();
        if active.is_empty() {
            return;
        }
        let previous = self.last_instance.get(&post.id).copied();
        let i = match previous {
            Some(prev) if post.elsewhere => *active.iter().find(|&&i| i != prev).unwrap_or(&active[0]),
            _ => {
                self.round_robin += 1;
                active[self.round_robin % active.len()]
            }
        };
        self.last_instance.insert(post.id, i);
        let now = self.now;
        let owner = self.instances[i].dispatcher.as_ref().expect("active").owner();
        match self.segment.insert_claimed(&post.id, post.cents, wall(now), owner) {
            Insert::Inserted(slot) => {
                if self.index.contains_key(&post.id) {
                    self.violation(format!("{} inserted twice in one epoch", short(&post.id)));
                }
                self.index.insert(post.id, self.pays.len());
                self.pays.push(Pay {
                    id: post.id,
                    cents: post.cents,
                    accepted_wall: wall(now),
                    done: None,
                });
                self.not_done += 1;
                self.report.accepted += 1;
                self.report.accepted_cents += post.cents;
                let d = self.instances[i].dispatcher.as_mut().expect("active");
                d.handle_accepted(now_of(now), slot, post.id, post.cents);
                self.trace(format_args!("i{i} accepts {} ({} cents)", short(&post.id), post.cents));
                self.settle(i);
            }
            Insert::Duplicate(_) => {
                if !self.index.contains_key(&post.id) {
                    self.violation(format!("duplicate of {} that was never accepted", short(&post.id)));
                }
            }
            Insert::Full => panic!("segment full: the harness sends more than an epoch holds"),
            Insert::Contended => self.violation("insert contended in a single thread".into()),
        }
    }

    // ----------------------------------------------------------------------------------
    // Instances.

    fn start_instance(&mut self, i: usize) {
        // Registered through the instance's own handle: it stands for its process, and its
        // owner entry's lock goes with it when the instance crashes (the dispatcher dropped).
        let segment = self.segment.attach_again();
        let owner = segment.register_owner(wall(self.now)).expect("a free owner entry");
        let d = Dispatcher::new(segment, owner, Policy::default());
        let inst = &mut self.instances[i];
        inst.dispatcher = Some(d);
        inst.generation += 1;
        inst.stalled_until = None;
        inst.spin_at = u64::MAX;
        self.trace(format_args!("i{i} starts as owner {}", owner.0));
    }

    /// Kills instance `i` at once: maybe in the middle of performing a batch of actions
    /// (payments stamped in the segment but never sent), never unregistering.
    fn crash(&mut self, i: usize) {
        if self.instances[i].dispatcher.is_none() {
            return;
        }
        self.trace(format_args!("i{i} crashes"));
        let mut batch = Vec::new();
        if self.instances[i].stalled_until.is_none() && self.rng.chance(0.5) {
            let now = now_of(self.now);
            let d = self.instances[i].dispatcher.as_mut().expect("alive");
            d.handle_timeout(now);
            while let Some(a) = d.poll_action() {
                batch.push(a);
            }
        }
        let performed = self.rng.below(batch.len() as u64 + 1) as usize;
        for a in batch.into_iter().take(performed) {
            self.perform(i, a);
        }
        let inst = &mut self.instances[i];
        inst.dispatcher = None;
        inst.generation += 1;
        inst.stalled_until = None;
        let inbox = std::mem::take(&mut inst.inbox);
        for (wire, outcome) in inbox {
            self.dropped(&wire, outcome);
        }
    }

    fn restart(&mut self, i: usize) {
        if self.instances[i].dispatcher.is_none() {
            self.start_instance(i);
        }
    }

    /// The end of a stall: the answers that arrived meanwhile are read, then time catches up.
    fn wake(&mut self, i: usize) {
        self.trace(format_args!("i{i} wakes"));
        let inst = &mut self.instances[i];
        inst.stalled_until = None;
        let inbox = std::mem::take(&mut inst.inbox);
        for (wire, outcome) in inbox {
            self.deliver(i, wire, outcome);
        }
    }

    /// Performs every action the dispatcher of `i` has, as the reactor's `settle` does.
    fn settle(&mut self, i: usize) {
        loop {
            let Some(action) = self.instances[i].dispatcher.as_mut().and_then(|d| d.poll_action()) else {
                return;
            };
            self.perform(i, action);
        }
    }

    fn perform(&mut self, i: usize, action: Action) {
        let generation = self.instances[i].generation;
        match action {
            Action::Send {
                request,
                processor,
                call,
            } => self.send(i, generation, request, processor, call),
            Action::Cancel { request } => {
                self.report.fingerprint = fold(fold(self.report.fingerprint, self.now), !request);
                let mut processor = Processor::Default;
                let mut written = true;
                if let Some(wire) = self.by_request.remove(&(i, generation, request)) {
                    if let Some(w) = self.wires.get_mut(&wire) {
                        w.interested = false;
                        processor = w.processor;
                        written = w.fault != Fault::Unconnected;
                    }
                    if !written {
                        self.wires.remove(&wire);
                    }
                }
                self.trace(format_args!("i{i} cancels #{request}"));
                // As `Upstream::cancel` does: a request on the wire ends ambiguous, one still
                // queued for a connection ends never written.
                if let Some(d) = self.instances[i].dispatcher.as_mut() {
                    d.handle_completion(
                        now_of(self.now),
                        Completion {
                            request,
                            processor,
                            outcome: Outcome::Failed { written },
                        },
                    );
                }
            }
        }
    }

    fn new_wire(&mut self, wire: Wire) -> u64 {
        let id = self.next_wire;
        self.next_wire += 1;
        self.wires.insert(id, wire);
        id
    }

    fn draw_fault(&mut self) -> Fault {
        let f = self.faults;
        if f == NetFaults::NONE {
            return Fault::None;
        }
        let u = self.rng.unit();
        let mut edge = f.refuse;
        if u < edge {
            return Fault::Refuse;
        }
        edge += f.lost;
        if u < edge {
            return Fault::Lost;
        }
        edge += f.reset_after;
        if u < edge {
            return Fault::ResetAfter;
        }
        edge += f.reset_during;
        if u < edge {
            return Fault::ResetDuring;
        }
        edge += f.hang;
        if u < edge {
            return Fault::Hang;
        }
        Fault::None
    }

    fn send(&mut self, i: usize, generation: u32, request: RequestId, p: Processor, call: Call) {
        let mut fault = self.draw_fault();
        // Unreachable: refused at once, refused after a connect timeout (1 s), or never
        // connected at all.
        let mut refused_after = 0;
        if self.unreachable[p.index()] {
            fault = match self.rng.below(3) {
                0 => Fault::Refuse,
                1 => {
                    refused_after = 1_000;
                    Fault::Refuse
                }
                _ => Fault::Unconnected,
            };
        }
        let mut h = fold(self.report.fingerprint, self.now);
        h = fold(h, (i as u64) << 32 | request);
        h = fold(h, p.index() as u64);
        match call {
            Call::Payment {
                id,
                cents,
                requested_at_ms,
            } => {
                h = fold(
                    fold(h, u64::from_le_bytes(id.0[..8].try_into().unwrap())),
                    requested_at_ms,
                );
                self.check_payment_send(i, id, cents, p, requested_at_ms);
                if !matches!(fault, Fault::Refuse | Fault::Lost | Fault::Unconnected) {
                    self.live.entry(id).or_default()[p.index()] += 1;
                }
                self.trace(format_args!(
                    "i{i} #{request} → {} pay {} at {requested_at_ms} ({fault:?})",
                    p.name(),
                    short(&id)
                ));
            }
            Call::Lookup { id } => {
                h = fold(fold(h, 1), u64::from_le_bytes(id.0[..8].try_into().unwrap()));
                self.trace(format_args!(
                    "i{i} #{request} → {} lookup {} ({fault:?})",
                    p.name(),
                    short(&id)
                ));
            }
            Call::Health => {
                h = fold(h, 2);
                self.check_health_send(p);
                self.trace(format_args!("i{i} #{request} → {} health ({fault:?})", p.name()));
            }
        }
        self.report.fingerprint = h;
        let wire = self.new_wire(Wire {
            caller: Caller::Instance {
                index: i,
                generation,
                request,
            },
            processor: p,
            call,
            fault,
            interested: true,
            replied: false,
            reset: false,
            epoch: self.epoch,
        });
        self.by_request.insert((i, generation, request), wire);
        let at = self.now + self.latency();
        match fault {
            Fault::Unconnected => {}
            Fault::Refuse => self.push(
                at + refused_after,
                Event::ToInstance(wire, Outcome::Failed { written: false }),
            ),
            Fault::Lost => self.push(at, Event::ToInstance(wire, Outcome::Failed { written: true })),
            Fault::None | Fault::ResetAfter | Fault::Hang => self.push(at, Event::ToProcessor(wire)),
            Fault::ResetDuring => {
                self.push(at, Event::ToProcessor(wire));
                // Some time into the processor's delay (or after its answer, if it is quick).
                let delay = self.processors[p.index()].config().delay_ms.max(0) as u64;
                let reset_at = at + self.rng.range(0, delay + 10);
                self.push(reset_at, Event::ToInstance(wire, Outcome::Failed { written: true }));
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Processors.

    fn reach_processor(&mut self, wire: u64) {
        let w = self.wires[&wire];
        let p = w.processor;
        let now = self.now;
        if w.epoch < self.epoch && matches!(w.call, Call::Payment { .. }) {
            // Sent before a purge that emptied the processors: its connection went with them.
            // (The harness keeps the books of one epoch; a processor storing an erased
            // payment into the next would be no fault of ours.)
            self.trace(format_args!("wire {wire} from before the purge: reset"));
            self.reply(wire, Outcome::Failed { written: true });
            return;
        }
        match w.call {
            Call::Payment {
                id,
                cents,
                requested_at_ms,
            } => {
                let body = ProcessorPayment {
                    id,
                    amount: ScaledAmount { cents, scale: 2 },
                    requested_at_ms: requested_at_ms as i64,
                };
                if let Some(outcome) = self.processors[p.index()].post_payment(now, wire, Ok(body)) {
                    self.payment_outcome(p, wire, outcome);
                }
            }
            Call::Lookup { id } => {
                let garbled = self.faults.garbled > 0.0 && self.rng.chance(self.faults.garbled);
                let outcome = match self.processors[p.index()].payment(&id) {
                    Some(stored) => Outcome::Answered {
                        status: 200,
                        requested_at_ms: (!garbled).then_some(stored.requested_at_ms as u64),
                        amount_cents: (!garbled).then_some(stored.amount.cents),
                        health: None,
                        retry_after_s: None,
                    },
                    None => Outcome::status(404),
                };
                self.reply(wire, outcome);
            }
            Call::Health => match self.processors[p.index()].health(now, wire) {
                Some(answer) => self.health_answer(p, wire, answer),
                None => {
                    if w.caller != Caller::Foreign {
                        self.report.health_queued += 1;
                        if !self.schedule.foreign_health {
                            self.violation(format!(
                                "our health call to {} waits for the next rate-limit window: two calls \
                                 within 5 s",
                                p.name()
                            ));
                        }
                    }
                }
            },
        }
        self.drain_processor(p);
    }

    fn drain_processor(&mut self, p: Processor) {
        while let Some((wire, answer)) = self.processors[p.index()].poll_answer() {
            match answer {
                Answer::Payment(outcome) => self.payment_outcome(p, wire, outcome),
                Answer::Health(h) => self.health_answer(p, wire, h),
            }
        }
    }

    /// A processor decided a payment request.
    fn payment_outcome(&mut self, p: Processor, wire: u64, outcome: PaymentOutcome) {
        let Call::Payment {
            id,
            cents,
            requested_at_ms,
        } = self.wires[&wire].call
        else {
            unreachable!()
        };
        if let Some(live) = self.live.get_mut(&id) {
            live[p.index()] -= 1;
        }
        let status = match outcome {
            PaymentOutcome::Processed => {
                self.stored_by(p, id, requested_at_ms, cents);
                200
            }
            PaymentOutcome::Duplicate(_) => {
                match self.stored.get(&id) {
                    Some(s) if s.processor == p => {}
                    other => self.violation(format!(
                        "{} answered 422 for {} but the harness saw it stored as {other:?}",
                        p.name(),
                        short(&id)
                    )),
                }
                422
            }
            PaymentOutcome::Failed => 500,
            PaymentOutcome::Refused(_) => 400,
            PaymentOutcome::Overloaded => 429,
        };
        self.reply(wire, Outcome::status(status));
    }

    fn health_answer(&mut self, p: Processor, wire: u64, answer: HealthAnswer) {
        let outcome = match answer {
            HealthAnswer::Status(s) => Outcome::Answered {
                status: if s.failing { 503 } else { 200 },
                requested_at_ms: None,
                amount_cents: None,
                health: Some(WireHealth {
                    failing: s.failing,
                    min_response_ms: s.min_response_time.max(0) as u32,
                }),
                retry_after_s: None,
            },
            HealthAnswer::Limited => {
                if self.wires[&wire].caller != Caller::Foreign {
                    self.report.health_limited += 1;
                    if !self.schedule.foreign_health {
                        self.violation(format!("our health call to {} was refused with 429", p.name()));
                    }
                }
                Outcome::Answered {
                    status: 429,
                    requested_at_ms: None,
                    amount_cents: None,
                    health: None,
                    retry_after_s: Some((HEALTH_WINDOW_MS / 1_000) as u32),
                }
            }
        };
        self.reply(wire, outcome);
    }

    /// A processor's answer leaves for the caller (or is lost on the way).
    fn reply(&mut self, wire: u64, outcome: Outcome) {
        let w = self.wires[&wire];
        if w.caller == Caller::Foreign {
            self.wires.remove(&wire);
            return;
        }
        match w.fault {
            Fault::Hang => {
                self.wires.remove(&wire);
                self.dropped(&w, outcome);
            }
            Fault::ResetAfter => {
                self.dropped(&w, outcome);
                let at = self.now + self.latency();
                self.push(at, Event::ToInstance(wire, Outcome::Failed { written: true }));
            }
            Fault::ResetDuring => {
                self.dropped(&w, outcome);
                if w.reset {
                    self.wires.remove(&wire);
                } else if let Some(w) = self.wires.get_mut(&wire) {
                    w.replied = true;
                }
            }
            _ => {
                let at = self.now + self.latency();
                self.push(at, Event::ToInstance(wire, outcome));
            }
        }
    }

    /// An answer that will never reach an interested dispatcher.
    fn dropped(&mut self, wire: &Wire, outcome: Outcome) {
        if matches!(wire.call, Call::Payment { .. }) && matches!(outcome, Outcome::Answered { status: 200, .. }) {
            self.report.lost_answers += 1;
        }
    }

    fn reach_instance(&mut self, wire: u64, outcome: Outcome) {
        let Some(&w) = self.wires.get(&wire) else { return };
        if w.fault == Fault::ResetDuring && !w.replied {
            // The processor still works on it; its answer will be dropped.
            if let Some(w) = self.wires.get_mut(&wire) {
                w.reset = true;
            }
        } else {
            self.wires.remove(&wire);
        }
        let Caller::Instance {
            index: i,
            generation,
            request,
        } = w.caller
        else {
            return;
        };
        self.by_request.remove(&(i, generation, request));
        let inst = &mut self.instances[i];
        if !w.interested || inst.generation != generation || inst.dispatcher.is_none() {
            if !matches!(w.fault, Fault::ResetAfter | Fault::ResetDuring) {
                self.dropped(&w, outcome);
            }
            return;
        }
        if inst.stalled_until.is_some() {
            inst.inbox.push((w, outcome));
            return;
        }
        self.deliver(i, w, outcome);
    }

    /// Feeds an answer to the dispatcher that waits for it, then checks what it must have
    /// recorded at once.
    fn deliver(&mut self, i: usize, w: Wire, outcome: Outcome) {
        let Caller::Instance { request, .. } = w.caller else {
            unreachable!()
        };
        let p = w.processor;
        self.trace(format_args!("i{i} #{request} ← {} {outcome:?}", p.name()));
        let d = self.instances[i].dispatcher.as_mut().expect("alive");
        d.handle_completion(
            now_of(self.now),
            Completion {
                request,
                processor: p,
                outcome,
            },
        );
        if w.epoch < self.epoch {
            // About a payment the purge erased: it must change nothing of the new epoch's,
            // which the next sweep checks (a payment done that no processor stored).
            self.settle(i);
            return;
        }
        match (w.call, outcome) {
            (
                Call::Payment {
                    id, requested_at_ms, ..
                },
                Outcome::Answered { status: 200, .. },
            ) => self.expect_done(id, p, Some(requested_at_ms), "a 200"),
            (Call::Payment { id, .. }, Outcome::Answered { status: 422, .. }) => self.expect_done(id, p, None, "a 422"),
            (
                Call::Lookup { id },
                Outcome::Answered {
                    status: 200,
                    requested_at_ms: Some(_),
                    ..
                },
            ) => self.expect_done(id, p, None, "a lookup that found it"),
            (Call::Payment { id, .. } | Call::Lookup { id }, _) => self.observe(id),
            (Call::Health, Outcome::Answered { status: 429, .. }) => {
                self.health_blocked_until[p.index()] = self.now + HEALTH_WINDOW_MS;
            }
            (Call::Health, _) => {}
        }
        self.settle(i);
    }

    // ----------------------------------------------------------------------------------
    // Checks.

    /// A payment send: the right amount, a payment we accepted and have not seen done, the
    /// same requestedAt as every earlier attempt on that processor, and nothing of it that
    /// may still land on the other processor.
    fn check_payment_send(&mut self, i: usize, id: Uuid, cents: Cents, p: Processor, at: u64) {
        let Some(&n) = self.index.get(&id) else {
            self.violation(format!("i{i} sends {} which was never accepted", short(&id)))
        };
        let pay = self.pays[n];
        if pay.cents != cents {
            self.violation(format!(
                "i{i} sends {} with {cents} cents, accepted {}",
                short(&id),
                pay.cents
            ));
        }
        if let Some(done) = pay.done {
            self.violation(format!(
                "i{i} sends {} to {} though it is done ({done:?})",
                short(&id),
                p.name()
            ));
        }
        if at < pay.accepted_wall || at > wall(self.now) {
            self.violation(format!(
                "i{i} sends {} with requestedAt {at}, accepted at {}, now {}",
                short(&id),
                pay.accepted_wall,
                wall(self.now)
            ));
        }
        match self.stamps.get(&(id, p.index())) {
            Some(&first) if first != at => self.violation(format!(
                "i{i} sends {} to {} with requestedAt {at}; an earlier attempt there used {first}",
                short(&id),
                p.name()
            )),
            Some(_) => {}
            None => {
                self.stamps.insert((id, p.index()), at);
            }
        }
        let q = Processor::ALL[1 - p.index()];
        if let Some(s) = self.stored.get(&id) {
            if s.processor == q {
                self.violation(format!(
                    "i{i} sends {} to {} though {} stored it",
                    short(&id),
                    p.name(),
                    q.name()
                ));
            }
        }
        if self.live.get(&id).is_some_and(|l| l[q.index()] > 0) {
            self.violation(format!(
                "i{i} sends {} to {} while an attempt on {} may still land (on the way or in its delay)",
                short(&id),
                p.name(),
                q.name()
            ));
        }
    }

    /// Deployment-wide: at most one health call per processor per 5 s, none before a 429's
    /// Retry-After has passed.
    fn check_health_send(&mut self, p: Processor) {
        let k = p.index();
        if let Some(last) = self.last_health_send[k] {
            if self.now < last + HEALTH_WINDOW_MS {
                self.violation(format!(
                    "health calls to {} at {last} ms and {} ms: less than 5 s apart",
                    p.name(),
                    self.now
                ));
            }
        }
        if self.now < self.health_blocked_until[k] {
            self.violation(format!(
                "health call to {} before its 429's Retry-After ended ({} ms)",
                p.name(),
                self.health_blocked_until[k]
            ));
        }
        self.last_health_send[k] = Some(self.now);
    }

    /// A processor stored a payment: never one stored anywhere before, never one we did not
    /// accept, never one our segment already called done.
    fn stored_by(&mut self, p: Processor, id: Uuid, at: u64, cents: Cents) {
        if let Some(prev) = self.stored.get(&id) {
            self.violation(format!(
                "{} stored twice: by {} (requestedAt {}) and now by {} ({at})",
                short(&id),
                prev.processor.name(),
                prev.requested_at,
                p.name()
            ));
        }
        let Some(&n) = self.index.get(&id) else {
            self.violation(format!("{} stored {} which was never accepted", p.name(), short(&id)))
        };
        if let Some(done) = self.pays[n].done {
            self.violation(format!(
                "our segment had {} done ({done:?}) before any processor stored it",
                short(&id)
            ));
        }
        if wall(self.now) >= at + AUDIT_LAG_MS {
            self.report.audit_exposed += 1;
        }
        let stored = Stored {
            processor: p,
            requested_at: at,
            cents,
            stored_ms: self.now,
        };
        self.stored.insert(id, stored);
        self.unrecorded.insert(id, stored);
    }

    /// After an answer that settles a payment reached its dispatcher: the segment must say
    /// done, at that processor, with the requestedAt it stored.
    fn expect_done(&mut self, id: Uuid, p: Processor, at: Option<u64>, why: &str) {
        self.observe(id);
        let Some(&n) = self.index.get(&id) else { return };
        match self.pays[n].done {
            Some((q, t)) if q == p && at.map_or(true, |a| a == t) => {}
            other => self.violation(format!(
                "after {why} from {} for {} (requestedAt {at:?}) the segment says {other:?}",
                p.name(),
                short(&id)
            )),
        }
    }

    /// Reads the segment's state of an accepted payment and checks it against the books:
    /// done at P with T only if P stored it with T; once done, done for good.
    fn observe(&mut self, id: Uuid) {
        let Some(&n) = self.index.get(&id) else { return };
        let state = self.segment.get(&id).map(|v| v.state);
        match state {
            Some(SlotState::Done {
                processor,
                requested_at_ms,
            }) => match self.pays[n].done {
                Some(prev) if prev == (processor, requested_at_ms) => {}
                Some(prev) => self.violation(format!(
                    "{} was done as {prev:?} and now reads done as {:?}",
                    short(&id),
                    (processor, requested_at_ms)
                )),
                None => {
                    match self.stored.get(&id) {
                        Some(s) if s.processor == processor && s.requested_at == requested_at_ms => {}
                        other => self.violation(format!(
                            "the segment has {} done by {} with requestedAt {requested_at_ms}; the \
                             processors' books say {other:?}",
                            short(&id),
                            processor.name()
                        )),
                    }
                    self.pays[n].done = Some((processor, requested_at_ms));
                    self.not_done -= 1;
                    if let Some(s) = self.unrecorded.remove(&id) {
                        let waited = self.now - s.stored_ms;
                        self.report.max_unrecorded_ms = self.report.max_unrecorded_ms.max(waited);
                    }
                }
            },
            Some(_) => {
                if let Some(prev) = self.pays[n].done {
                    self.violation(format!("{} was done ({prev:?}) and is not any more", short(&id)));
                }
            }
            None => self.violation(format!("accepted payment {} is missing from the segment", short(&id))),
        }
    }

    fn sweep(&mut self) {
        for n in 0..self.pays.len() {
            let id = self.pays[n].id;
            self.observe(id);
        }
    }

    fn random_window(&mut self) -> (Option<i64>, Option<i64>) {
        let r = &mut self.check_rng;
        let span = self.now + 1;
        let from = T0 + r.below(span) as i64;
        let to = from + r.below(span) as i64;
        match r.below(8) {
            0 => (None, None),
            1 => (None, Some(to)),
            2 => (Some(from), None),
            3 => (Some(to), Some(from)), // backwards: empty
            _ => (Some(from), Some(to)),
        }
    }

    /// Our summary over the window equals each processor's books, less exactly the payments
    /// it stored whose record has not reached our segment yet (answer on the wire, or lost
    /// and awaiting resolution).
    fn check_summary(&mut self, from: Option<i64>, to: Option<i64>, what: &str) {
        let ours = self.segment.summary(from, to);
        let window = Window {
            from_ms: from,
            to_ms: to,
        };
        for p in Processor::ALL {
            let books = self.processors[p.index()].summary(&window);
            let (mut count, mut cents) = (0, 0);
            for s in self.unrecorded.values() {
                if s.processor == p && window.contains(s.requested_at as i64) {
                    count += 1;
                    cents += s.cents;
                }
            }
            let mine = ours.of(p);
            let books_cents = decimal_cents(books.total_amount);
            if books.total_requests != mine.count + count || books_cents != mine.cents + cents {
                self.violation(format!(
                    "summary over {what} {from:?}..{to:?} for {}: ours {} payments / {} cents, books {} / {}, \
                     unrecorded there {count} / {cents}",
                    p.name(),
                    mine.count,
                    mine.cents,
                    books.total_requests,
                    books_cents
                ));
            }
        }
    }

    /// Nothing in motion: every payment done and recorded, no payment request or lookup on
    /// the wire or inside a processor.
    fn quiet(&self) -> bool {
        self.not_done == 0
            && self.unrecorded.is_empty()
            && self.processors.iter().all(|p| p.in_progress() == 0 && p.queued() == 0)
            && self.instances.iter().all(|i| i.inbox.is_empty())
            && self.wires.values().all(|w| matches!(w.call, Call::Health))
    }

    /// A purge while our instances hold, back off, resolve and send payments (issue 15): the
    /// processors hold no payment request at this instant, but requests may be on their way
    /// to them (reset on arrival) and answers on their way back (delivered, and checked to
    /// change nothing of the new epoch).
    fn purge_anytime(&mut self) {
        let on_wire = self.wires.values().filter(|w| !matches!(w.call, Call::Health)).count();
        self.trace(format_args!(
            "purge while busy: {} payments not done, {on_wire} requests or answers on the network",
            self.not_done
        ));
        self.purge();
    }

    fn purge_now(&mut self) {
        self.trace(format_args!("purge"));
        self.purge();
    }

    /// Purges the segment and the processors and closes the epoch's books for the report:
    /// what was done counts as done at the end, what was not as purged (none after a quiet
    /// wait).
    fn purge(&mut self) {
        self.epoch += 1;
        self.segment.purge();
        for p in &mut self.processors {
            p.purge();
        }
        for pay in &self.pays {
            match pay.done {
                Some((p, _)) => {
                    self.retired.done_at_end[p.index()] += 1;
                    self.retired.done_cents_at_end[p.index()] += pay.cents;
                }
                None => self.report.purged_pending += 1,
            }
        }
        self.pays.clear();
        self.index.clear();
        self.not_done = 0;
        self.stored.clear();
        self.unrecorded.clear();
        self.stamps.clear();
        self.live.clear();
    }

    // ----------------------------------------------------------------------------------
    // The end.

    fn measure_end(&mut self) {
        self.sweep();
        let mut done = self.retired.done_at_end;
        let mut cents = self.retired.done_cents_at_end;
        for pay in &self.pays {
            if let Some((p, _)) = pay.done {
                done[p.index()] += 1;
                cents[p.index()] += pay.cents;
            }
        }
        self.report.done_at_end = done;
        self.report.done_cents_at_end = cents;
        self.report.lag_at_end = self.not_done as u64;
        let held: u64 = self
            .instances
            .iter()
            .filter_map(|inst| inst.dispatcher.as_ref())
            .map(|d| {
                let s = d.stats();
                s.fresh + s.pinned + s.delayed
            })
            .sum();
        self.report.held_at_end = held;
        // Issue 14: where a processor works and the load stopped a second before the end,
        // nothing may still be waiting for the other one.
        let steady = matches!(
            self.schedule.class,
            Class::TailOutage | Class::BothSlow | Class::Unreachable
        );
        if steady && held > 0 {
            self.violation(format!("{held} payments still held when the run ended"));
        }
    }

    /// Both processors recover, the network heals, everyone comes back; no more clients.
    fn recover(&mut self) {
        self.trace(format_args!("run ends: recovery"));
        for p in Processor::ALL {
            let k = p.index();
            self.processors[k].set_failure(false);
            let delay = self.rng.range(0, 50) as i32;
            self.processors[k].set_delay(delay);
            self.foreign[k].0 += 1;
            self.foreign[k].1 = None;
        }
        self.faults = NetFaults::NONE;
        self.unreachable = [false; 2];
        self.purge_pending = None;
        self.events
            .retain(|_, e| !matches!(e, Event::Arrival(_) | Event::Change(_)));
        for i in 0..self.instances.len() {
            self.restart(i);
        }
    }

    fn drain(&mut self) {
        let cap = self.now + DRAIN_CAP_MS;
        while !self.quiet() {
            let t = self.next_time();
            if t > cap {
                let pending: Vec<String> = self
                    .pays
                    .iter()
                    .filter(|p| p.done.is_none())
                    .take(5)
                    .map(|p| format!("{} {:?}", short(&p.id), self.segment.get(&p.id)))
                    .collect();
                let stats: Vec<String> = self
                    .instances
                    .iter()
                    .filter_map(|i| i.dispatcher.as_ref().map(|d| format!("{:?}", d.stats())))
                    .collect();
                self.violation(format!(
                    "not drained {} s after recovery: {} payments not done, {} unrecorded; first: {pending:?}; \
                     dispatchers: {stats:?}",
                    DRAIN_CAP_MS / 1_000,
                    self.not_done,
                    self.unrecorded.len()
                ));
            }
            self.step(t);
        }
    }

    /// Every accepted payment done exactly once, as the books say; both summaries agree.
    fn final_checks(&mut self) {
        self.sweep();
        for pay in &self.pays {
            let Some((p, at)) = pay.done else {
                self.violation(format!("{} never done", short(&pay.id)))
            };
            let s = self.stored[&pay.id];
            assert_eq!((s.processor, s.requested_at), (p, at));
        }
        if self.stored.len() != self.pays.len() {
            self.violation(format!(
                "{} payments stored by the processors, {} accepted",
                self.stored.len(),
                self.pays.len()
            ));
        }
        for p in Processor::ALL {
            let on_p = self.pays.iter().filter(|x| x.done.is_some_and(|d| d.0 == p)).count();
            if self.processors[p.index()].stored() != on_p {
                self.violation(format!(
                    "{} holds {} payments, our segment says {on_p}",
                    p.name(),
                    self.processors[p.index()].stored()
                ));
            }
        }
        self.check_summary(None, None, "everything");
    }
}

/// Runs one seed's schedule; panics with the seed on the first violation.
pub fn run(schedule: &Schedule, trace: bool) -> Report {
    World::new(schedule, trace).run()
}
