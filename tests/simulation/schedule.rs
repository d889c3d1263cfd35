//! Fault schedules: what a seed does to the processors, the network and the instances, and the
//! client load it sends. Everything here is drawn from the seed before the run starts, so a
//! schedule prints in full when its seed fails.

use std::fmt;

use payrelay::base::payment::Processor;

use super::rng::Rng;

/// Kinds of schedule, reported separately. Each is a base (small delays that change now and
/// then) plus the ingredients named; `Chaos` mixes several.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Healthy,
    Delays,
    DefaultFails,
    BothFail,
    Flapping,
    SlowDefault,
    Resets,
    Health429,
    Crash,
    Stall,
    Duplicates,
    Purge,
    Takeover,
    Chaos,
    /// Issue 14: a k6-like steady load to the end; default fails from 2/3 of it on.
    TailOutage,
    /// Issue 14: both processors at 300-1200 ms all run, never failing.
    BothSlow,
    /// Issue 14: default refuses connections (or never connects) for a while, then is back.
    Unreachable,
}

/// Every class, in report order.
pub const CLASSES: [Class; 17] = [
    Class::Healthy,
    Class::Delays,
    Class::DefaultFails,
    Class::BothFail,
    Class::Flapping,
    Class::SlowDefault,
    Class::Resets,
    Class::Health429,
    Class::Crash,
    Class::Stall,
    Class::Duplicates,
    Class::Purge,
    Class::Takeover,
    Class::Chaos,
    Class::TailOutage,
    Class::BothSlow,
    Class::Unreachable,
];

/// A seed's class is `SEED_CLASSES[seed % 19]`: every class once, takeover and chaos (where
/// faults meet) twice.
const SEED_CLASSES: [Class; 19] = [
    Class::Healthy,
    Class::Delays,
    Class::DefaultFails,
    Class::BothFail,
    Class::Flapping,
    Class::SlowDefault,
    Class::Resets,
    Class::Health429,
    Class::Crash,
    Class::Stall,
    Class::Duplicates,
    Class::Purge,
    Class::Takeover,
    Class::Takeover,
    Class::Chaos,
    Class::Chaos,
    Class::TailOutage,
    Class::BothSlow,
    Class::Unreachable,
];

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Healthy => "healthy",
            Class::Delays => "delays",
            Class::DefaultFails => "default-fails",
            Class::BothFail => "both-fail",
            Class::Flapping => "flapping",
            Class::SlowDefault => "slow-default",
            Class::Resets => "resets",
            Class::Health429 => "health-429",
            Class::Crash => "crash",
            Class::Stall => "stall",
            Class::Duplicates => "duplicates",
            Class::Purge => "purge",
            Class::Takeover => "takeover",
            Class::Chaos => "chaos",
            Class::TailOutage => "tail-outage",
            Class::BothSlow => "both-slow",
            Class::Unreachable => "unreachable",
        }
    }
}

/// Per-request probabilities of network faults.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetFaults {
    /// The connection fails before a byte is written: `Failed { written: false }`, the
    /// processor never sees it.
    pub refuse: f64,
    /// Written, then the connection resets before the processor read it: `Failed { written:
    /// true }`, the processor never sees it.
    pub lost: f64,
    /// The processor gets it and acts on it (stores the payment), then the connection resets:
    /// `Failed { written: true }` instead of its answer.
    pub reset_after: f64,
    /// The processor gets it, and the connection resets while it is in its delay:
    /// `Failed { written: true }` at once, while the processor goes on and stores it later.
    pub reset_during: f64,
    /// The processor gets it and acts on it, and the answer never comes: only the
    /// dispatcher's own give-up ends it.
    pub hang: f64,
    /// A lookup that finds the payment is answered 200 with a body we cannot read (a proxy's
    /// page, a truncated or altered answer): found, but with no requestedAt.
    pub garbled: f64,
}

impl NetFaults {
    pub const NONE: NetFaults = NetFaults {
        refuse: 0.0,
        lost: 0.0,
        reset_after: 0.0,
        reset_during: 0.0,
        hang: 0.0,
        garbled: 0.0,
    };
}

/// One change at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Change {
    /// The processor's delay from now on (ms).
    Delay(Processor, u32),
    /// The processor's failure mode.
    Failure(Processor, bool),
    /// Network fault rates from now on.
    Faults(NetFaults),
    /// A client outside the deployment calls the processor's health endpoint every so many
    /// ms (`None`: stops), eating the rate limit's permits.
    ForeignHealth(Processor, Option<u64>),
    /// The instance dies at once: its dispatcher is dropped without unregistering.
    Crash(usize),
    /// The instance starts again (new dispatcher, new owner), if it is down.
    Restart(usize),
    /// Connections to the processor are refused or never made (`true`) or work again.
    Unreachable(Processor, bool),
    /// The instance stops running for this long (ms): no ticks, answers wait, no clients.
    Stall(usize, u64),
    /// `POST /purge-payments` (and the processors' admin purge) at the next quiet moment.
    Purge,
    /// The same while our instances are busy, at the first moment no processor holds a
    /// payment request (requests and answers may be on the network).
    PurgeAnytime,
}

/// A burst of client payments: `count` of them at `per_s` per second from `start_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst {
    pub start_ms: u64,
    pub per_s: u64,
    pub count: u64,
}

/// Everything a seed does.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub seed: u64,
    pub class: Class,
    /// Dispatcher instances over the segment.
    pub instances: usize,
    /// Length of the run (load and faults); recovery and the drain come after.
    pub run_ms: u64,
    /// One-way network latency range (ms), inclusive.
    pub latency_ms: (u64, u64),
    /// Initial delay of each processor (ms).
    pub initial_delay: [u32; 2],
    /// Changes, sorted by time.
    pub changes: Vec<(u64, Change)>,
    pub bursts: Vec<Burst>,
    /// Share of payments also posted on a second instance shortly after.
    pub dup_share: f64,
    /// Share of payments posted again much later (a client retrying an old one).
    pub repost_share: f64,
    /// Whether something outside the deployment calls a health endpoint (then our calls may
    /// be refused or queued by the rate limit, legitimately).
    pub foreign_health: bool,
}

/// Ingredients a class is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ingredient {
    DelayStorm,
    /// Both processors flap, out of phase.
    BothFlapping,
    /// Payments sleep in a slow processor when an instance dies or stalls; then the delay
    /// drops and that processor fails (lookups must resolve what others sent), and sometimes
    /// both processors flap so payments bounce between them.
    Takeover,
    DefaultOutage,
    BothOutage,
    Flapping,
    SlowDefault,
    Resets,
    Health429,
    Crash,
    Stall,
    Duplicates,
    Purge,
    /// A steady load to 1 s before the end (a load test's end is the end of its inflow).
    SteadyLoad,
    TailOutage,
    BothSlow,
    Unreachable,
}

const CHAOS_INGREDIENTS: [Ingredient; 11] = [
    Ingredient::DelayStorm,
    Ingredient::DefaultOutage,
    Ingredient::BothOutage,
    Ingredient::Flapping,
    Ingredient::SlowDefault,
    Ingredient::Resets,
    Ingredient::Health429,
    Ingredient::Crash,
    Ingredient::Stall,
    Ingredient::Duplicates,
    Ingredient::Purge,
];

const S: u64 = 1_000;

/// `main`, and with even odds one of the processor troubles as a background.
fn with_background(main: Ingredient, rng: &mut Rng) -> Vec<Ingredient> {
    let background = [
        Ingredient::DefaultOutage,
        Ingredient::BothOutage,
        Ingredient::Flapping,
        Ingredient::DelayStorm,
        Ingredient::SlowDefault,
    ];
    if rng.chance(0.5) {
        vec![main, rng.pick(&background)]
    } else {
        vec![main]
    }
}

/// A small delay: what a healthy processor shows most of the time.
fn small_delay(rng: &mut Rng) -> u32 {
    match rng.below(3) {
        0 => 0,
        1 => rng.range(1, 30) as u32,
        _ => rng.range(30, 150) as u32,
    }
}

/// A delay anywhere in 0–10 s, skewed towards the small ones.
fn any_delay(rng: &mut Rng) -> u32 {
    match rng.below(5) {
        0 | 1 => small_delay(rng),
        2 | 3 => rng.range(150, 2_000) as u32,
        _ => rng.range(2_000, 10_000) as u32,
    }
}

impl Schedule {
    /// The schedule of `seed`.
    pub fn draw(seed: u64) -> Schedule {
        let class = SEED_CLASSES[(seed % SEED_CLASSES.len() as u64) as usize];
        let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x00c0_ffee);
        let run_ms = rng.range(120, 240) * S;
        let lo = rng.range(1, 3);
        let mut s = Schedule {
            seed,
            class,
            instances: rng.range(2, 3) as usize,
            run_ms,
            latency_ms: (lo, rng.range(lo, 20)),
            initial_delay: [small_delay(&mut rng), small_delay(&mut rng)],
            changes: Vec::new(),
            bursts: Vec::new(),
            dup_share: 0.0,
            repost_share: 0.0,
            foreign_health: false,
        };
        // The base: small delays that change a few times.
        for p in Processor::ALL {
            for _ in 0..rng.below(4) {
                let at = rng.range(1, run_ms - 1);
                s.changes.push((at, Change::Delay(p, small_delay(&mut rng))));
            }
        }
        let ingredients: Vec<Ingredient> = match class {
            Class::Healthy => vec![],
            Class::Delays => vec![Ingredient::DelayStorm],
            Class::DefaultFails => vec![Ingredient::DefaultOutage],
            Class::BothFail => vec![Ingredient::BothOutage],
            Class::Flapping => vec![Ingredient::Flapping],
            Class::SlowDefault => vec![Ingredient::SlowDefault],
            // Faults of the instances or the network matter most where payments wait on
            // fallback, on a failing default or in a long delay: half of these seeds get one.
            Class::Resets => with_background(Ingredient::Resets, &mut rng),
            Class::Health429 => vec![Ingredient::Health429],
            Class::Crash => with_background(Ingredient::Crash, &mut rng),
            Class::Stall => with_background(Ingredient::Stall, &mut rng),
            Class::Duplicates => with_background(Ingredient::Duplicates, &mut rng),
            Class::Purge => with_background(Ingredient::Purge, &mut rng),
            // Instances die or stall while payments bounce between failing processors with
            // long delays: adopters meet attempts made by others, on either processor.
            Class::Takeover => vec![Ingredient::Takeover],
            Class::TailOutage => vec![Ingredient::SteadyLoad, Ingredient::TailOutage],
            Class::BothSlow => vec![Ingredient::SteadyLoad, Ingredient::BothSlow],
            Class::Unreachable => vec![Ingredient::SteadyLoad, Ingredient::Unreachable],
            Class::Chaos => {
                let mut all = CHAOS_INGREDIENTS.to_vec();
                let mut chosen = Vec::new();
                for _ in 0..rng.range(3, 5) {
                    chosen.push(all.remove(rng.below(all.len() as u64) as usize));
                }
                chosen
            }
        };
        s.draw_load(&mut rng);
        for ingredient in ingredients {
            s.add(ingredient, &mut rng);
        }
        s.changes.sort_by_key(|&(at, _)| at);
        s.bursts.sort_by_key(|b| b.start_ms);
        s
    }

    fn at(&mut self, at: u64, change: Change) {
        self.changes.push((at, change));
    }

    /// A window `[start, end)` inside the run, `len_lo..=len_hi` long (cut at the run's end).
    fn window(&self, rng: &mut Rng, len_lo: u64, len_hi: u64) -> (u64, u64) {
        let start = rng.range(2 * S, self.run_ms - 10 * S);
        let end = (start + rng.range(len_lo, len_hi)).min(self.run_ms);
        (start, end)
    }

    /// An instant for an instance fault: mostly while a burst is arriving or just after
    /// (payments in flight), sometimes anywhere.
    fn busy_instant(&self, rng: &mut Rng) -> u64 {
        let at = if rng.chance(0.7) {
            let b = self.bursts[rng.below(self.bursts.len() as u64) as usize];
            b.start_ms + rng.range(0, b.count * 1_000 / b.per_s + 3 * S)
        } else {
            rng.range(3 * S, self.run_ms)
        };
        at.clamp(S, self.run_ms - 5 * S)
    }

    fn add(&mut self, ingredient: Ingredient, rng: &mut Rng) {
        let run = self.run_ms;
        match ingredient {
            Ingredient::DelayStorm => {
                for p in Processor::ALL {
                    let mut t = rng.range(0, 20 * S);
                    while t < run {
                        self.at(t, Change::Delay(p, any_delay(rng)));
                        t += rng.range(5 * S, 40 * S);
                    }
                }
            }
            Ingredient::DefaultOutage => {
                for _ in 0..rng.range(1, 3) {
                    let (a, b) = self.window(rng, 3 * S, 90 * S);
                    self.at(a, Change::Failure(Processor::Default, true));
                    self.at(b, Change::Failure(Processor::Default, false));
                }
            }
            Ingredient::BothOutage => {
                for _ in 0..rng.range(1, 2) {
                    let (a, b) = self.window(rng, 5 * S, 60 * S);
                    for p in Processor::ALL {
                        let skew = rng.range(0, 5 * S);
                        self.at(a + skew, Change::Failure(p, true));
                        self.at((b + skew).min(run), Change::Failure(p, false));
                    }
                }
            }
            Ingredient::Takeover if rng.chance(0.5) => {
                // Payments bounce: default fails long enough for them to go to fallback, then
                // both flap out of phase, and an instance dies while some sit on fallback
                // after a round on default.
                let a = rng.range(2 * S, self.run_ms / 2);
                self.bursts.push(Burst {
                    start_ms: a + rng.range(0, 2 * S),
                    per_s: rng.range(100, 500),
                    count: rng.range(40, 120),
                });
                self.at(a, Change::Failure(Processor::Default, true));
                self.at(a, Change::Delay(Processor::Fallback, rng.range(500, 5 * S) as u32));
                let flap_from = a + rng.range(13 * S, 25 * S);
                let flap_to = flap_from + rng.range(20 * S, 60 * S);
                let period = rng.range(2 * S, 6 * S);
                let mut t = flap_from;
                let mut default_up = true;
                while t < flap_to {
                    self.at(t, Change::Failure(Processor::Default, !default_up));
                    self.at(t + period / 3, Change::Failure(Processor::Fallback, default_up));
                    default_up = !default_up;
                    t += period;
                }
                for p in Processor::ALL {
                    self.at(flap_to, Change::Failure(p, false));
                }
                let victim = rng.below(self.instances as u64) as usize;
                let hit = rng.range(flap_from + 2 * S, flap_to);
                if rng.chance(0.7) {
                    self.at(hit, Change::Crash(victim));
                    self.at(hit + rng.range(S, 10 * S), Change::Restart(victim));
                } else {
                    self.at(hit, Change::Stall(victim, rng.range(3_500, 8 * S)));
                }
            }
            Ingredient::Takeover => {
                let slow = if rng.chance(0.8) {
                    Processor::Default
                } else {
                    Processor::Fallback
                };
                let a = rng.range(2 * S, self.run_ms / 2);
                let long = rng.range(15 * S, 60 * S);
                // A burst right then, so payments are asleep inside the slow processor.
                self.bursts.push(Burst {
                    start_ms: a + rng.range(0, 2 * S),
                    per_s: rng.range(100, 500),
                    count: rng.range(20, 80),
                });
                self.at(a, Change::Delay(slow, long as u32));
                // Connections reset while those payments sleep.
                let resets = NetFaults {
                    reset_during: rng.unit() * 0.3,
                    ..NetFaults::NONE
                };
                self.at(a, Change::Faults(resets));
                self.at(a + 10 * S, Change::Faults(NetFaults::NONE));
                // The processor fails (the sleepers will learn it only when they wake)...
                self.at(a + rng.range(S, 5 * S), Change::Failure(slow, true));
                // ...an instance dies or stalls, and another adopts its payments...
                let victim = rng.below(self.instances as u64) as usize;
                let hit = a + rng.range(3 * S, 8 * S);
                if rng.chance(0.7) {
                    self.at(hit, Change::Crash(victim));
                    self.at(hit + rng.range(S, 10 * S), Change::Restart(victim));
                } else {
                    self.at(hit, Change::Stall(victim, rng.range(3_500, 8 * S)));
                }
                // ...the delay drops (new requests are quick, the sleepers still sleep)...
                let drop = hit + rng.range(4 * S, 12 * S);
                self.at(drop, Change::Delay(slow, small_delay(rng)));
                // ...and the failure ends before the sleepers wake: they store.
                let heal = (a + rng.range(long / 2, long)).max(drop + 5 * S);
                self.at(heal, Change::Failure(slow, false));
                if rng.chance(0.3) {
                    self.add(Ingredient::BothFlapping, rng);
                }
            }
            Ingredient::BothFlapping => {
                let (a, b) = self.window(rng, 60 * S, 150 * S);
                let period = rng.range(2 * S, 8 * S);
                let mut t = a;
                let mut default_failing = true;
                while t < b {
                    self.at(t, Change::Failure(Processor::Default, default_failing));
                    self.at(t + period / 2, Change::Failure(Processor::Fallback, default_failing));
                    default_failing = !default_failing;
                    t += period + rng.range(0, S);
                }
                for p in Processor::ALL {
                    self.at(b, Change::Failure(p, false));
                }
            }
            Ingredient::Flapping => {
                let (a, b) = self.window(rng, 30 * S, 120 * S);
                let both = rng.chance(0.5);
                for p in Processor::ALL {
                    if p == Processor::Fallback && !both {
                        continue;
                    }
                    let period = rng.range(S, 5 * S);
                    let mut failing = rng.chance(0.5) || p == Processor::Default;
                    let mut t = a + rng.range(0, period);
                    while t < b {
                        self.at(t, Change::Failure(p, failing));
                        failing = !failing;
                        t += period;
                    }
                    self.at(b, Change::Failure(p, false));
                }
            }
            Ingredient::SlowDefault => {
                let a = rng.range(0, run / 3);
                let b = (a + rng.range(60 * S, 180 * S)).min(run);
                // Slower than the dispatcher waits before it learns the delay (12–30 s), or
                // slower than it ever waits (125–200 s, beyond the 120 s cap).
                let delay = if rng.chance(0.5) {
                    rng.range(12 * S, 30 * S)
                } else {
                    rng.range(125 * S, 200 * S)
                };
                self.at(a, Change::Delay(Processor::Default, delay as u32));
                self.at(b, Change::Delay(Processor::Default, small_delay(rng)));
            }
            Ingredient::Resets => {
                let windows = if rng.chance(0.3) { 0 } else { rng.range(1, 3) };
                let rates = |rng: &mut Rng| NetFaults {
                    refuse: rng.unit() * 0.15,
                    lost: rng.unit() * 0.1,
                    reset_after: rng.unit() * 0.15,
                    reset_during: rng.unit() * 0.1,
                    hang: rng.unit() * 0.05,
                    garbled: if rng.chance(0.5) { rng.unit() * 0.5 } else { 0.0 },
                };
                if windows == 0 {
                    self.at(0, Change::Faults(rates(rng)));
                }
                for _ in 0..windows {
                    let (a, b) = self.window(rng, 5 * S, 60 * S);
                    self.at(a, Change::Faults(rates(rng)));
                    self.at(b, Change::Faults(NetFaults::NONE));
                }
            }
            Ingredient::Health429 => {
                self.foreign_health = true;
                for _ in 0..rng.range(1, 2) {
                    let p = rng.pick(&Processor::ALL);
                    let (a, b) = self.window(rng, 20 * S, 120 * S);
                    self.at(a, Change::ForeignHealth(p, Some(rng.range(200, 3_000))));
                    self.at(b, Change::ForeignHealth(p, None));
                }
                if rng.chance(0.5) {
                    self.add(Ingredient::DefaultOutage, rng);
                }
            }
            Ingredient::Crash => {
                let victim = rng.below(self.instances as u64) as usize;
                let at = self.busy_instant(rng);
                self.at(at, Change::Crash(victim));
                let back = at + rng.range(S, 60 * S);
                if back < run {
                    self.at(back, Change::Restart(victim));
                }
                if rng.chance(0.3) {
                    let victim = rng.below(self.instances as u64) as usize;
                    let at = self.busy_instant(rng);
                    self.at(at, Change::Crash(victim));
                    self.at((at + rng.range(S, 30 * S)).min(run - 1), Change::Restart(victim));
                } else if rng.chance(0.5) {
                    // Another instance dies a few seconds later, while the first one's payments
                    // are being adopted and resolved (or just after).
                    let other = (victim + 1 + rng.below(self.instances as u64 - 1) as usize) % self.instances;
                    let second = (at + rng.range(S / 2, 6 * S)).min(run - 2);
                    self.at(second, Change::Crash(other));
                    self.at((second + rng.range(S, 20 * S)).min(run - 1), Change::Restart(other));
                }
            }
            Ingredient::Stall => {
                for _ in 0..rng.range(1, 3) {
                    let victim = rng.below(self.instances as u64) as usize;
                    let at = self.busy_instant(rng);
                    self.at(at, Change::Stall(victim, rng.range(200, 8 * S)));
                }
            }
            Ingredient::Duplicates => {
                self.dup_share = 0.05 + rng.unit() * 0.25;
                self.repost_share = 0.01 + rng.unit() * 0.04;
            }
            Ingredient::Purge => {
                let at = rng.range(run / 3, run * 2 / 3);
                if rng.chance(0.5) {
                    self.at(at, Change::Purge);
                } else {
                    // Mid-load (issue 15): a burst meets a failing default or lossy
                    // connections, so payments are held, backing off, pinned and on the wire
                    // when the purge comes; some of their ids are posted again after it and
                    // take the same slots.
                    let a = rng.range(run / 4, run / 2);
                    self.bursts.push(Burst {
                        start_ms: a,
                        per_s: rng.range(200, 500),
                        count: rng.range(100, 300),
                    });
                    if rng.chance(0.6) {
                        self.at(a, Change::Failure(Processor::Default, true));
                        self.at(a + rng.range(5 * S, 20 * S), Change::Failure(Processor::Default, false));
                    }
                    if rng.chance(0.5) {
                        let lossy = NetFaults {
                            lost: rng.unit() * 0.2,
                            reset_during: rng.unit() * 0.2,
                            ..NetFaults::NONE
                        };
                        self.at(a, Change::Faults(lossy));
                        self.at(a + 10 * S, Change::Faults(NetFaults::NONE));
                    }
                    self.repost_share = self.repost_share.max(0.2);
                    self.at(a + rng.range(200, 3 * S), Change::PurgeAnytime);
                }
            }
            Ingredient::SteadyLoad => {
                // As k6 does: payments every few ms per instance until the load stops, the
                // run's end a second later. A shorter run keeps it within one epoch's room.
                self.run_ms = rng.range(25, 35) * S;
                let per_s = rng.range(15, 20);
                self.bursts = vec![Burst {
                    start_ms: 0,
                    per_s,
                    count: (self.run_ms - S) * per_s / S,
                }];
            }
            Ingredient::TailOutage => {
                self.at(self.run_ms * 2 / 3, Change::Failure(Processor::Default, true));
            }
            Ingredient::BothSlow => {
                for p in Processor::ALL {
                    let mut t = 0;
                    while t < self.run_ms {
                        self.at(t, Change::Delay(p, rng.range(300, 1_200) as u32));
                        t += rng.range(2 * S, 8 * S);
                    }
                }
            }
            Ingredient::Unreachable => {
                let a = rng.range(2 * S, self.run_ms / 2);
                let b = a + rng.range(3 * S, 10 * S);
                self.at(a, Change::Unreachable(Processor::Default, true));
                self.at(b.min(self.run_ms), Change::Unreachable(Processor::Default, false));
            }
        }
    }

    /// Bursts of a few hundred payments per second, a few hundred payments in all.
    fn draw_load(&mut self, rng: &mut Rng) {
        let mut remaining = rng.range(300, 650);
        while remaining > 0 {
            let count = remaining.min(rng.range(20, 120));
            remaining -= count;
            self.bursts.push(Burst {
                start_ms: rng.range(0, self.run_ms - 2 * S),
                per_s: rng.range(100, 500),
                count,
            });
        }
        self.bursts.sort_by_key(|b| b.start_ms);
    }

    /// Payments the load sends (before duplicates).
    pub fn payments(&self) -> u64 {
        self.bursts.iter().map(|b| b.count).sum()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} class {}: {} instances, run {} s, latency {}-{} ms, initial delays {:?} ms, \
             {} payments in {} bursts, duplicates {:.0}%, reposts {:.0}%",
            self.seed,
            self.class.name(),
            self.instances,
            self.run_ms / S,
            self.latency_ms.0,
            self.latency_ms.1,
            self.initial_delay,
            self.payments(),
            self.bursts.len(),
            self.dup_share * 100.0,
            self.repost_share * 100.0,
        )?;
        for (at, change) in &self.changes {
            let what = match change {
                Change::Delay(p, ms) => format!("{} delay {ms} ms", p.name()),
                Change::Failure(p, on) => format!("{} failure {on}", p.name()),
                Change::Faults(n) => format!(
                    "network faults: refuse {:.1}%, lost {:.1}%, reset after {:.1}%, reset during {:.1}%, \
                     hang {:.1}%, lookups garbled {:.1}%",
                    n.refuse * 100.0,
                    n.lost * 100.0,
                    n.reset_after * 100.0,
                    n.reset_during * 100.0,
                    n.hang * 100.0,
                    n.garbled * 100.0
                ),
                Change::ForeignHealth(p, Some(every)) => {
                    format!("a foreign client polls {} health every {every} ms", p.name())
                }
                Change::ForeignHealth(p, None) => format!("the foreign client stops polling {}", p.name()),
                Change::Crash(i) => format!("instance {i} crashes"),
                Change::Unreachable(p, on) => format!("{} unreachable {on}", p.name()),
                Change::Restart(i) => format!("instance {i} restarts"),
                Change::Stall(i, ms) => format!("instance {i} stalls for {ms} ms"),
                Change::Purge => "purge at the next quiet moment".to_string(),
                Change::PurgeAnytime => "purge while busy (no payment inside a processor)".to_string(),
            };
            writeln!(f, "  {:>9.3} s  {what}", *at as f64 / 1e3)?;
        }
        write!(
            f,
            "  {:>9.3} s  run ends: both processors recover, faults stop, instances restart; drain",
            self.run_ms as f64 / 1e3
        )
    }
}
