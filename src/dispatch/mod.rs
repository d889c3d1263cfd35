//! The dispatcher: takes the payments this instance owns to a processor, exactly once, as a
//! state machine without I/O (docs/ARCHITECTURE.md, "A payment's life").
//!
//! It owns no socket and reads no clock; it has the shape of quinn-proto's `Connection`.
//!
//! # Call order
//! Each loop turn, whoever performs the calls (the pipeline, or the simulation):
//! 1. feeds inputs, each with `now`, which only moves forward:
//!    [`Dispatcher::handle_accepted`] for a payment this instance stored as its own,
//!    [`Dispatcher::handle_completion`] for a request's end, and
//!    [`Dispatcher::handle_timeout`] once [`Dispatcher::poll_timeout`] has come (sooner is
//!    harmless);
//! 2. drains [`Dispatcher::poll_action`] until `None` — send this call to that processor, or
//!    give up on a request — performing each; every send ends in exactly one completion,
//!    fed back as in 1 (the pipeline loops until neither side has more);
//! 3. sleeps no later than [`Dispatcher::poll_timeout`].
//!
//! # Writes to the shared table
//! The dispatcher is the only writer of payments after they are accepted: its
//! [`Segment::heartbeat`]s keep its claims; [`Segment::adopt`] takes the payments of dead
//! owners (and queued ones nobody took); [`Segment::begin_attempt`] stamps `requestedAt` and
//! the processor before each send, proving the claim; [`Segment::mark_done`] and
//! [`Segment::mark_done_as`] record the outcome. Health is shared through
//! [`Segment::claim_health_poll`], [`Segment::defer_health_poll`] and
//! [`Segment::publish_health`]. Everything else it only reads.

//! # Where a payment waits
//! - `fresh`: no unresolved attempt anywhere; routed by the [`Policy`], oldest first.
//! - `pinned[p]`: an attempt on `p` may have landed (timeout, connection lost after writing).
//!   The rule: it must be resolved on `p` before it may go anywhere else — first by
//!   `GET /payments/{id}` on `p` (found settles it), then by a retry on `p` with the same
//!   `requestedAt` (200 or 422 settle it). Not found settles nothing: a processor applies a
//!   new delay only to requests that arrive after the change, so the attempt may still sleep
//!   inside `p` under a delay set and changed again between two health polls, seen by nobody.
//!   (The deterministic simulation found double charges from "not found means absent after a
//!   quarantine": seeds 60, 126, 506, 740, 3444.)
//! - `delayed`: waiting out a backoff before returning to one of the above.
//! - in flight: a request is on its way; at most one per payment.
//!
//! # Exactly once
//! `requestedAt` is fixed per (payment, processor) in the segment ([`Segment::begin_attempt`])
//! and reused on every retry there, so a 422 after our own earlier attempt means that attempt
//! landed with that `requestedAt`. Ownership is checked by the segment at each attempt, so an
//! instance that lost a payment to an adopter (it was believed dead) stops touching it.

mod call;
pub mod policy;
mod stats;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use crate::base::amount::Cents;
use crate::base::clock::Now;
use crate::base::payment::Processor;
use crate::base::uuid::Uuid;
use crate::segment::{AttemptError, Claim, Claimed, HealthReport, LiveOwners, OwnerId, PaymentRef, Segment};

pub use call::{Call, Completion, Outcome, ProcessorHealth, RequestId};
pub use policy::{Health, Policy, Route};
pub use stats::{DispatchStats, ProcessorStats};

/// Heartbeat period of this instance in the segment.
const HEARTBEAT_EVERY_MS: u64 = 100;
/// An instance whose heartbeat is older than this is dead: its payments may be adopted.
pub const OWNER_STALE_MS: u64 = 3_000;
/// Period and size of the background orphan scan (a full default-size table every ~6 s):
/// it finds queued payments nobody took. Deaths are not left to it (see `LAP_BUDGET`).
const ADOPT_EVERY_MS: u64 = 100;
const ADOPT_BUDGET: u32 = 8_192;
/// Slots scanned per loop turn while a lap runs: when an instance is seen gone (and once at
/// start, for a restarted instance's former self) the whole table is scanned at once, so its
/// payments are adopted and their attempts resolved well within the audits' 1.5 s lag. 65 536
/// slots are 4 MiB of reads, well under a millisecond; a 2^19-slot table takes 8 turns.
const LAP_BUDGET: u32 = 65_536;
/// Queued-but-unowned payments younger than this are left to the instance that accepted them.
const ADOPT_MIN_AGE_MS: u64 = 2_000;
/// Deployment-wide spacing of health calls to one processor: its limit is one per 5 s window,
/// and calls at least 5 s apart can never share a window.
const HEALTH_INTERVAL_MS: u64 = 5_050;
/// A health answer not received within this long is given up (the slot is not retried early).
const HEALTH_TIMEOUT_MS: u64 = 3_000;
/// Lookups (`GET /payments/{id}`) in flight per processor.
const LOOKUP_LIMIT: usize = 4;
/// Lookups answered 200 with a body we cannot read before the payment is retried instead
/// (with its requestedAt, so a 422 settles it): the processor has it, and asking again
/// forever would never record it.
const UNREADABLE_LOOKUPS: u8 = 3;
/// After a given-up payment should have landed (its sending plus the processor's known
/// delay), a lookup for it waits this much longer for queueing and clock steps.
const LANDING_MARGIN_MS: u64 = 250;
/// A request reaches a processor within this long of being sent (connection queueing
/// included): one sent earlier than that before a health report arrived under the delay
/// the report gives.
const ARRIVAL_MARGIN_MS: u64 = 1_000;
/// Weight of a new latency sample in the moving average (1/8).
const LATENCY_SHIFT: u32 = 3;
/// A request given up is cancelled and its outcome (whether any byte of it was written) left
/// to the reactor; one the reactor never reports within this long is taken as written.
const CANCEL_GRACE_MS: u64 = 1_000;
/// A silence of the inflow this long means the next payment starts a new run (a purge does
/// too), for the run's age the policy weighs.
const RUN_BREAK_MS: u64 = 30_000;

/// What the reactor must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Perform `call` on `processor`; report its outcome with `request`.
    Send {
        /// Identifies the outcome to [`Dispatcher::handle_completion`].
        request: RequestId,
        /// Where to send it.
        processor: Processor,
        /// What to send.
        call: Call,
    },
    /// Stop waiting for `request` (given up) and close its connection, so no late answer is
    /// matched to it; then report its outcome to [`Dispatcher::handle_completion`] as for any request:
    /// `Failed { written }` says whether any byte of it was sent (one still queued for a
    /// connection was not, and is routed again rather than resolved as ambiguous). One never
    /// reported is taken as written after a grace.
    Cancel {
        /// The abandoned request.
        request: RequestId,
    },
}

/// A payment this instance owns and has not settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    /// The payment and our claim on it: every segment call proves both with it, so work on a
    /// payment that was purged, or taken from us and maybe taken back since, changes nothing.
    claim: Claim,
    id: Uuid,
    cents: Cents,
    accepted_at_ms: u64,
    /// Refusals so far (drives the backoff).
    retries: u32,
    /// Resolve by a lookup before any retry: set by every ambiguous attempt and adoption,
    /// cleared by a "not found". A lookup is answered without the processor's delay, so it
    /// finds a stored payment at once, where a retry sleeps the delay again (and never
    /// answers in time when the delay exceeds our wait).
    look_up_next: bool,
    /// Lookups of it answered 200 with an unreadable body (see `UNREADABLE_LOOKUPS`).
    unreadable_lookups: u8,
}

impl Pending {
    /// A payment with no attempt behind it yet (as far as this instance knows).
    fn new(claim: Claim, id: Uuid, cents: Cents, accepted_at_ms: u64) -> Pending {
        Pending {
            claim,
            id,
            cents,
            accepted_at_ms,
            retries: 0,
            look_up_next: false,
            unreadable_lookups: 0,
        }
    }
}

/// Where a delayed payment returns when its backoff ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    Fresh,
    Pinned(Processor),
}

/// A payment waiting out a backoff until `due` (monotonic ms), then back to `lane`. Ordered
/// by `due`, then by when it was parked (`seq`), so equal deadlines keep their order.
#[derive(Clone, Copy, Debug)]
struct Delayed {
    due: u64,
    seq: u64,
    lane: Lane,
    pending: Pending,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Delayed {}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// One `POST /payments` of `pending` with `requested_at_ms`; `pinned` when it resolves an
/// earlier ambiguous attempt on the same processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attempt {
    pending: Pending,
    requested_at_ms: u64,
    pinned: bool,
    /// No attempt of anyone's had fixed a requestedAt on this processor before this one
    /// ([`crate::segment::Attempted::first`]): a 422 then is about another payment.
    first: bool,
    /// The processor's delay as known when it was sent (or learnt since, for an attempt that
    /// may have arrived after the delay changed): when it should land there.
    expected_ms: u64,
}

/// What a request in flight was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// `POST /payments`.
    Payment(Attempt),
    /// `GET /payments/{id}` resolving `pending` (pinned to the processor).
    Lookup { pending: Pending },
    /// `GET /payments/service-health`.
    Health,
}

impl Purpose {
    /// The claim a payment request or lookup works for.
    #[cfg(debug_assertions)]
    fn claim(&self) -> Option<Claim> {
        match self {
            Purpose::Payment(attempt) => Some(attempt.pending.claim),
            Purpose::Lookup { pending } => Some(pending.claim),
            Purpose::Health => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Flight {
    processor: Processor,
    purpose: Purpose,
    sent_mono_ms: u64,
    give_up_mono_ms: u64,
    /// Given up and cancelled: waiting for the reactor to say whether it was ever written.
    cancelled: bool,
}

/// What this instance believes about one processor.
#[derive(Clone, Copy, Debug)]
struct ProcessorState {
    health: Health,
    /// Wall time of the newest observation that set `health` (ours or a shared health poll).
    observed_at_ms: u64,
    next_probe_mono_ms: u64,
    /// Moving average of answer times (ms).
    latency_ms: u64,
    /// The delay the processor announced in its last health answer.
    announced_delay_ms: u64,
    /// Observation time of `announced_delay_ms`.
    announced_at_ms: u64,
    /// Wall time it was last seen going from failing to working.
    recovered_at_ms: u64,
    /// Wall time it was first seen failing in the current outage.
    failing_since_ms: u64,
    in_flight: usize,
    lookups: usize,
}

impl ProcessorState {
    fn new() -> ProcessorState {
        ProcessorState {
            health: Health::Unknown,
            observed_at_ms: 0,
            next_probe_mono_ms: 0,
            latency_ms: 0,
            announced_delay_ms: 0,
            announced_at_ms: 0,
            recovered_at_ms: 0,
            failing_since_ms: 0,
            in_flight: 0,
            lookups: 0,
        }
    }

    /// The answer time to plan with: what we observe, what it announces, whichever is larger.
    fn expected_latency_ms(&self) -> u64 {
        self.latency_ms.max(self.announced_delay_ms)
    }

    /// A payment was answered 200 or 422 at `at_ms`, `elapsed` ms after it was sent.
    fn answered(&mut self, elapsed: u64, at_ms: u64) {
        let was_failing = self.health == Health::Failing;
        self.observe(Health::Healthy, at_ms);
        if was_failing && self.health == Health::Healthy {
            // The answer of a probe sent while it failed tells nothing of its delay now (it
            // slept the one it arrived under), nor does what it announced while failing:
            // start afresh from the answers to come. A stale slow figure here would spill
            // the backlog held through the outage to fallback just as default returns.
            self.latency_ms = 0;
            self.announced_delay_ms = 0;
            return;
        }
        self.latency_ms = ewma(self.latency_ms, elapsed);
        // A processor sleeps its delay before it answers, so an attempt sent after the delay
        // was announced and answered sooner proves the delay has dropped since.
        if elapsed < self.announced_delay_ms && at_ms.saturating_sub(elapsed) > self.announced_at_ms {
            self.announced_delay_ms = elapsed;
        }
    }

    fn observe(&mut self, health: Health, at_ms: u64) {
        if at_ms >= self.observed_at_ms {
            if self.health == Health::Failing && health == Health::Healthy {
                self.recovered_at_ms = at_ms;
            }
            if self.health != Health::Failing && health == Health::Failing {
                self.failing_since_ms = at_ms;
            }
            self.health = health;
            self.observed_at_ms = at_ms;
        }
    }
}

/// The dispatcher of one instance.
pub struct Dispatcher {
    segment: Segment,
    owner: OwnerId,
    policy: Policy,
    fresh: VecDeque<Pending>,
    pinned: [VecDeque<Pending>; 2],
    delayed: BinaryHeap<Reverse<Delayed>>,
    delayed_seq: u64,
    flights: HashMap<RequestId, Flight>,
    give_ups: BinaryHeap<Reverse<(u64, RequestId)>>,
    next_request: RequestId,
    processors: [ProcessorState; 2],
    actions: VecDeque<Action>,
    next_heartbeat_mono_ms: u64,
    next_adopt_mono_ms: u64,
    adopt_cursor: u32,
    adopted: Vec<Claimed>,
    /// The owners alive at the last look: one of them missing at the next starts a lap.
    live_owners: LiveOwners,
    /// Slots left in the current full-table lap (0: none running).
    lap_left: u32,
    stats: DispatchStats,
    /// The latest `now.mono_ms` passed in: a probe instant not after it has had its chance.
    now_mono_ms: u64,
    inflow: Inflow,
    /// Debug builds: the claims with a request in flight, to assert at most one per claim.
    #[cfg(debug_assertions)]
    flying: std::collections::HashSet<Claim>,
    /// Set by [`Dispatcher::begin_drain`]: the instance is stopping and sends nothing new.
    draining: bool,
}

/// What this instance sees of the load: when the run began, when the last payment came, and
/// the usual gap between two (the policy reads the end of a run in its silence).
#[derive(Clone, Copy, Debug, Default)]
struct Inflow {
    /// The segment's purge epoch when the run began.
    epoch: u32,
    run_started_ms: u64,
    /// Wall and monotonic time of the latest accepted payment (`None`: none yet).
    last_wall_ms: Option<u64>,
    last_mono_ms: u64,
    mean_gap_ms: u64,
}

impl Inflow {
    /// A payment was accepted at `now`, in purge epoch `epoch`.
    fn accepted(&mut self, now: Now, epoch: u32) {
        let at = wall(now);
        match self.last_wall_ms {
            Some(last) if epoch == self.epoch && at.saturating_sub(last) < RUN_BREAK_MS => {
                self.mean_gap_ms = ewma(self.mean_gap_ms, at.saturating_sub(last));
            }
            _ => {
                self.epoch = epoch;
                self.run_started_ms = at;
                self.mean_gap_ms = 0;
            }
        }
        self.last_wall_ms = Some(at);
        self.last_mono_ms = now.mono_ms;
    }
}

impl Dispatcher {
    /// A dispatcher for the instance registered as `owner` in `segment`.
    pub fn new(segment: Segment, owner: OwnerId, policy: Policy) -> Dispatcher {
        Dispatcher {
            lap_left: segment.capacity(),
            segment,
            owner,
            policy,
            fresh: VecDeque::new(),
            pinned: [VecDeque::new(), VecDeque::new()],
            delayed: BinaryHeap::new(),
            delayed_seq: 0,
            flights: HashMap::new(),
            give_ups: BinaryHeap::new(),
            next_request: 1,
            processors: [ProcessorState::new(), ProcessorState::new()],
            actions: VecDeque::new(),
            next_heartbeat_mono_ms: 0,
            next_adopt_mono_ms: 0,
            adopt_cursor: 0,
            adopted: Vec::new(),
            live_owners: LiveOwners::default(),
            stats: DispatchStats::default(),
            now_mono_ms: 0,
            inflow: Inflow::default(),
            #[cfg(debug_assertions)]
            flying: std::collections::HashSet::new(),
            draining: false,
        }
    }

    /// The segment this dispatcher works on.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// This instance's owner id.
    pub fn owner(&self) -> OwnerId {
        self.owner
    }

    /// A payment this instance just stored as its own (`insert_claimed`): it joins the
    /// routing queue.
    pub fn handle_accepted(&mut self, now: Now, payment: PaymentRef, id: Uuid, cents: Cents) {
        self.now_mono_ms = self.now_mono_ms.max(now.mono_ms);
        self.inflow.accepted(now, payment.epoch);
        self.fresh
            .push_back(Pending::new(Claim::first(payment), id, cents, wall(now)));
        self.route_waiting(now);
    }

    /// The outcome of a request sent for an [`Action::Send`]. Outcomes of requests already
    /// given up are ignored.
    pub fn handle_completion(&mut self, now: Now, completion: Completion) {
        self.now_mono_ms = self.now_mono_ms.max(now.mono_ms);
        self.apply_outcome(now, completion);
        self.route_waiting(now);
    }

    /// Applies an outcome to its flight and payment, without routing anything yet.
    fn apply_outcome(&mut self, now: Now, completion: Completion) {
        let Some(flight) = self.flights.remove(&completion.request) else {
            return;
        };
        let p = flight.processor;
        #[cfg(debug_assertions)]
        if let Some(claim) = flight.purpose.claim() {
            self.flying.remove(&claim);
        }
        let state = &mut self.processors[p.index()];
        match flight.purpose {
            Purpose::Health => {}
            Purpose::Lookup { .. } => state.lookups -= 1,
            Purpose::Payment(_) => state.in_flight -= 1,
        }
        let elapsed = now.mono_ms.saturating_sub(flight.sent_mono_ms);
        match flight.purpose {
            Purpose::Payment(attempt) => self.payment_outcome(now, p, attempt, elapsed, completion.outcome),
            Purpose::Lookup { pending } => self.lookup_outcome(now, p, pending, completion.outcome),
            Purpose::Health => self.health_outcome(now, p, completion.outcome),
        }
    }

    /// Lets time pass: heartbeat, orphan adoption, shared health, give-ups, backoffs, and
    /// routing. Call it whenever [`Dispatcher::poll_timeout`] has passed (calling it more
    /// often is harmless).
    pub fn handle_timeout(&mut self, now: Now) {
        self.now_mono_ms = self.now_mono_ms.max(now.mono_ms);
        if now.mono_ms >= self.next_heartbeat_mono_ms {
            self.segment.heartbeat(self.owner, wall(now));
            self.next_heartbeat_mono_ms = now.mono_ms + HEARTBEAT_EVERY_MS;
            self.read_shared_health(now);
            let live = self.segment.live_owners(wall(now), OWNER_STALE_MS);
            if live.lost_any_of(&self.live_owners) {
                self.stats.laps += 1;
                self.lap_left = self.segment.capacity();
            }
            self.live_owners = live;
        }
        if self.draining {
            // A stopping instance takes nothing new (and keeps its deadline ahead of now).
            self.next_adopt_mono_ms = now.mono_ms + ADOPT_EVERY_MS;
        } else if self.lap_left > 0 {
            let budget = LAP_BUDGET.min(self.lap_left);
            self.adopt(now, budget);
            self.lap_left -= budget;
            // The background scan resumes a period after the lap.
            self.next_adopt_mono_ms = now.mono_ms + ADOPT_EVERY_MS;
        } else if now.mono_ms >= self.next_adopt_mono_ms {
            self.adopt(now, ADOPT_BUDGET);
            self.next_adopt_mono_ms = now.mono_ms + ADOPT_EVERY_MS;
        }
        if !self.draining {
            self.poll_health(now);
        }
        self.give_up_overdue(now);
        while self.delayed.peek().is_some_and(|d| d.0.due <= now.mono_ms) {
            let Some(Reverse(d)) = self.delayed.pop() else { break };
            self.enqueue(d.lane, d.pending);
        }
        self.route_waiting(now);
        // A deadline not after `now` would make the reactor call again at once, forever.
        debug_assert!(
            self.poll_timeout() > self.now_mono_ms,
            "next deadline {} not after now {}",
            self.poll_timeout(),
            self.now_mono_ms
        );
    }

    /// The next action to perform, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The monotonic instant at which [`Dispatcher::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> u64 {
        let mut next = self.next_heartbeat_mono_ms.min(self.next_adopt_mono_ms);
        if self.lap_left > 0 {
            // The rest of the lap on the next turn; 1 ms on, so a loop that finds nothing
            // else to do sleeps instead of spinning.
            next = next.min(self.now_mono_ms + 1);
        }
        if let Some(Reverse(d)) = self.delayed.peek() {
            next = next.min(d.due);
        }
        if let Some(Reverse((due, _))) = self.give_ups.peek() {
            next = next.min(*due);
        }
        if !self.fresh.is_empty() && self.inflow.last_wall_ms.is_some() {
            // The router's answer changes when the inflow turns quiet and as the time left
            // before the end runs out (policy): look again at both instants.
            let last = self.inflow.last_mono_ms;
            let quiet = last + self.policy.quiet_after_ms(self.inflow.mean_gap_ms);
            let end = last + self.policy.end_notice_ms;
            for at in [quiet, end] {
                if at > self.now_mono_ms {
                    next = next.min(at);
                }
            }
        }
        for (i, state) in self.processors.iter().enumerate() {
            let waiting = !self.fresh.is_empty() || !self.pinned[i].is_empty();
            // Only a probe instant still ahead: one already passed was seen by the last pump,
            // which had a reason not to probe (the router holds, a probe is in flight); the
            // events that change that pump again. Returning it would make the reactor spin.
            if state.health == Health::Failing && waiting && state.next_probe_mono_ms > self.now_mono_ms {
                next = next.min(state.next_probe_mono_ms);
            }
        }
        next
    }

    /// Counters and gauges for `GET /stats`.
    pub fn stats(&self) -> DispatchStats {
        let mut stats = self.stats;
        stats.fresh = self.fresh.len() as u64;
        stats.pinned = (self.pinned[0].len() + self.pinned[1].len()) as u64;
        stats.delayed = self.delayed.len() as u64;
        stats.oldest_fresh_accepted_ms = self.fresh.iter().map(|p| p.accepted_at_ms).min();
        for p in Processor::ALL {
            let s = &self.processors[p.index()];
            let out = &mut stats.processors[p.index()];
            out.in_flight = s.in_flight as u64;
            out.latency_ms = s.latency_ms;
            out.announced_delay_ms = s.announced_delay_ms;
            out.health = s.health;
        }
        stats
    }

    fn payment_outcome(&mut self, now: Now, p: Processor, attempt: Attempt, elapsed: u64, outcome: Outcome) {
        let Attempt {
            mut pending,
            requested_at_ms,
            pinned,
            first,
            expected_ms,
        } = attempt;
        let i = p.index();
        match outcome {
            Outcome::Answered { status: 422, .. } if first && self.segment.holds(pending.claim, self.owner) => {
                // Nothing of ours had been sent there before this attempt, and nobody took the
                // payment from us since (who did could have retried there with our
                // requestedAt, and landed first): yet it holds this correlationId. So it is
                // another payment (an id reused across purges, a processor not purged with
                // us, a client's doing). Our books must show what it holds, not our guess of
                // it: look it up and record its requestedAt and amount.
                self.processors[i].answered(elapsed, wall(now));
                self.stats.processors[i].foreign += 1;
                pending.look_up_next = true;
                self.requeue(now, pending, Some(p), false);
            }
            Outcome::Answered {
                status: status @ (200 | 422),
                ..
            } => {
                self.processors[i].answered(elapsed, wall(now));
                if status == 200 {
                    self.stats.processors[i].succeeded += 1;
                } else {
                    self.stats.processors[i].duplicates += 1;
                }
                // Either our attempt landed now, or an earlier one with the same requestedAt
                // did (422): record it exactly as the processor did. Another instance may
                // have recorded it first; both are the same fact.
                let _ = self.segment.mark_done(pending.claim.payment, p, requested_at_ms);
            }
            Outcome::Answered { status: 500..=599, .. } => {
                // Nothing stored by this attempt. A pinned payment stays pinned: an earlier
                // attempt may still have landed, and a failing processor answers 500 even for
                // a payment it already has.
                self.stats.processors[i].failed += 1;
                let state = &mut self.processors[i];
                state.observe(Health::Failing, wall(now));
                state.next_probe_mono_ms = now.mono_ms + self.policy.probe_interval_ms;
                self.requeue(now, pending, pinned.then_some(p), false);
            }
            Outcome::Answered { status, .. } => {
                // 429: the processor is saturated and did not run the handler; anything else is
                // unexpected. Either way this attempt stored nothing.
                if status == 429 {
                    self.stats.processors[i].throttled += 1;
                } else {
                    self.stats.processors[i].unexpected += 1;
                }
                pending.retries += 1;
                self.requeue(now, pending, pinned.then_some(p), true);
            }
            Outcome::Failed { written: false } => {
                // Never sent: no connection (refused, timed out, a name that does not
                // resolve), or given up while it waited for one. Nothing stored, nothing
                // ambiguous; for routing, a processor we cannot reach is failing like one that
                // answers 500 — otherwise payments would wait for it and never spill.
                self.stats.processors[i].unreachable += 1;
                let state = &mut self.processors[i];
                state.observe(Health::Failing, wall(now));
                state.next_probe_mono_ms = now.mono_ms + self.policy.probe_interval_ms;
                self.requeue(now, pending, pinned.then_some(p), false);
            }
            Outcome::Failed { written: true } => {
                self.stats.processors[i].ambiguous += 1;
                let lands_mono_ms = now.mono_ms.saturating_sub(elapsed) + expected_ms;
                self.resolve_later(now, p, pending, lands_mono_ms);
            }
        }
    }

    fn lookup_outcome(&mut self, now: Now, p: Processor, mut pending: Pending, outcome: Outcome) {
        match outcome {
            Outcome::Answered {
                status: 200,
                requested_at_ms: Some(at),
                amount_cents,
                ..
            } => {
                self.stats.processors[p.index()].resolved_found += 1;
                let _ = self.segment.mark_done_as(pending.claim.payment, p, at, amount_cents);
            }
            Outcome::Answered { status: 200, .. } => {
                // Found, but the body does not say with what requestedAt (or names another
                // id). Asked again a few times; then retried with our requestedAt, which the
                // processor answers 422 if it has it: that settles it.
                self.stats.processors[p.index()].unreadable += 1;
                pending.retries += 1;
                pending.unreadable_lookups = pending.unreadable_lookups.saturating_add(1);
                if pending.unreadable_lookups >= UNREADABLE_LOOKUPS {
                    pending.look_up_next = false;
                }
                self.requeue(now, pending, Some(p), true);
            }
            Outcome::Answered { status: 404, .. } => {
                // Not there (yet): a retry with the same requestedAt settles it either way.
                pending.retries += 1;
                pending.look_up_next = false;
                self.requeue(now, pending, Some(p), true);
            }
            _ => {
                // No answer, or a failing processor's: look again.
                pending.retries += 1;
                self.requeue(now, pending, Some(p), true);
            }
        }
    }

    /// After an attempt on `p` whose outcome is unknown (given up, or the connection lost
    /// after the request was written): the payment waits pinned to `p` until the attempt
    /// should have landed (`lands_mono_ms`: sent plus the delay it was sent under), then is
    /// looked up — answered without the delay, a lookup finds a stored payment at once, where
    /// a retry would sleep the delay again — and retried only if absent.
    fn resolve_later(&mut self, now: Now, p: Processor, mut pending: Pending, lands_mono_ms: u64) {
        pending.retries += 1;
        pending.look_up_next = true;
        let soonest = now.mono_ms + self.policy.backoff_ms(pending.retries);
        // Unless the delay dropped since: then a retry now (after a lookup that finds nothing
        // yet) lands before the attempt still asleep, and is what settles it.
        let retry_lands = soonest + self.processors[p.index()].expected_latency_ms();
        let lands = lands_mono_ms + LANDING_MARGIN_MS;
        let due = if retry_lands < lands {
            soonest
        } else {
            lands.max(soonest)
        };
        self.delay(due, Lane::Pinned(p), pending);
    }

    fn health_outcome(&mut self, now: Now, p: Processor, outcome: Outcome) {
        match outcome {
            // 200 while healthy, 503 with the same body while failing.
            Outcome::Answered { health: Some(h), .. } => {
                let report = HealthReport {
                    failing: h.failing,
                    min_response_ms: h.min_response_ms,
                };
                self.segment.publish_health(p, report, wall(now));
                self.read_shared_health(now);
            }
            Outcome::Answered {
                status: 429,
                retry_after_s,
                ..
            } => {
                self.stats.processors[p.index()].health_throttled += 1;
                let wait = u64::from(retry_after_s.unwrap_or(5)) * 1_000;
                self.segment.defer_health_poll(p, wall(now) + wait);
            }
            _ => {}
        }
    }

    /// Applies the health results any instance published, when newer than what we saw.
    fn read_shared_health(&mut self, now: Now) {
        for p in Processor::ALL {
            if let Some((report, at_ms)) = self.segment.health(p) {
                let state = &mut self.processors[p.index()];
                let delay = u64::from(report.min_response_ms);
                // Only a newer report: what answers taught us since the last one stands.
                if at_ms <= state.announced_at_ms {
                    continue;
                }
                let rose = delay > state.announced_delay_ms;
                let previous_at_ms = state.announced_at_ms;
                state.announced_at_ms = at_ms;
                state.announced_delay_ms = delay;
                state.observe(
                    if report.failing {
                        Health::Failing
                    } else {
                        Health::Healthy
                    },
                    at_ms,
                );
                if rose {
                    self.extend_give_ups(now, p, previous_at_ms);
                }
            }
        }
    }

    /// Gives the payments in flight to `p` that may sleep its newly announced, longer delay
    /// the wait it asks for: those sent since the previous report (`previous_at_ms`), which
    /// still said the old delay, may have arrived after the change. Giving them up at the old
    /// deadline would only turn answers on their way into ambiguities to resolve; older ones
    /// arrived under the old delay and keep their deadline.
    fn extend_give_ups(&mut self, now: Now, p: Processor, previous_at_ms: u64) {
        let expected_ms = self.processors[p.index()].expected_latency_ms();
        let wait = self.policy.give_up_ms(expected_ms);
        let arrived_before = previous_at_ms.saturating_sub(ARRIVAL_MARGIN_MS);
        for (&request, flight) in self.flights.iter_mut() {
            let sent_wall_ms = wall(now).saturating_sub(now.mono_ms - flight.sent_mono_ms);
            if flight.processor != p || sent_wall_ms < arrived_before || flight.cancelled {
                continue;
            }
            let Purpose::Payment(attempt) = &mut flight.purpose else {
                continue;
            };
            attempt.expected_ms = attempt.expected_ms.max(expected_ms);
            let due = flight.sent_mono_ms + wait;
            if due > flight.give_up_mono_ms {
                flight.give_up_mono_ms = due;
                self.give_ups.push(Reverse((due, request)));
            }
        }
    }

    fn poll_health(&mut self, now: Now) {
        for p in Processor::ALL {
            if self.segment.claim_health_poll(p, wall(now), HEALTH_INTERVAL_MS) {
                self.send(now, p, Purpose::Health, Call::Health, HEALTH_TIMEOUT_MS);
            }
        }
    }

    fn adopt(&mut self, now: Now, budget: u32) {
        self.adopted.clear();
        self.adopt_cursor = self.segment.adopt(
            self.owner,
            wall(now),
            OWNER_STALE_MS,
            ADOPT_MIN_AGE_MS,
            self.adopt_cursor,
            budget,
            &mut self.adopted,
        );
        for k in 0..self.adopted.len() {
            let claimed = self.adopted[k];
            self.stats.adopted += 1;
            let pending = Pending::new(claimed.claim, claimed.id, claimed.cents, claimed.accepted_at_ms);
            // The segment records the processor of the latest attempt: the only one that may
            // hold the payment (the previous owner left the other only after refusals that
            // stored nothing). Resolve there. No record: it was never sent anywhere.
            match claimed.last_attempt {
                Some(p) => {
                    // Looked up first: the previous owner's attempt has most likely landed.
                    let pending = Pending {
                        look_up_next: true,
                        ..pending
                    };
                    self.pinned[p.index()].push_back(pending);
                }
                None => self.fresh.push_back(pending),
            }
        }
    }

    /// Abandons requests that outlived their give-up time: their connections are closed and
    /// their payments pinned for resolution.
    fn give_up_overdue(&mut self, now: Now) {
        while let Some(&Reverse((due, request))) = self.give_ups.peek() {
            if due > now.mono_ms {
                break;
            }
            self.give_ups.pop();
            let Some(&flight) = self.flights.get(&request) else {
                continue;
            };
            if flight.give_up_mono_ms != due {
                continue;
            }
            if !flight.cancelled {
                // Only the reactor knows whether the request was ever written (it may have
                // sat in a pool's queue, never sent): it reports the outcome of the cancel.
                self.actions.push_back(Action::Cancel { request });
                self.stats.processors[flight.processor.index()].gave_up += 1;
                let grace = now.mono_ms + CANCEL_GRACE_MS;
                if let Some(f) = self.flights.get_mut(&request) {
                    f.cancelled = true;
                    f.give_up_mono_ms = grace;
                }
                self.give_ups.push(Reverse((grace, request)));
                continue;
            }
            // Cancelled and never reported: presume it written, ambiguous like a connection
            // lost after writing. (Routing waits for the end of the timeout.)
            self.apply_outcome(
                now,
                Completion {
                    request,
                    processor: flight.processor,
                    outcome: Outcome::Failed { written: true },
                },
            );
        }
    }

    /// Puts a payment back: into its pinned lane or the fresh one, at once or after a backoff.
    fn requeue(&mut self, now: Now, pending: Pending, pinned_to: Option<Processor>, backoff: bool) {
        let lane = pinned_to.map_or(Lane::Fresh, Lane::Pinned);
        if backoff {
            self.delay(now.mono_ms + self.policy.backoff_ms(pending.retries), lane, pending);
        } else {
            self.enqueue(lane, pending);
        }
    }

    /// Puts a payment in `lane` now: a fresh one at the front (it is the oldest), a pinned one
    /// behind the others waiting for the same processor.
    fn enqueue(&mut self, lane: Lane, pending: Pending) {
        match lane {
            Lane::Fresh => self.fresh.push_front(pending),
            Lane::Pinned(p) => self.pinned[p.index()].push_back(pending),
        }
    }

    /// Parks a payment until `due` (monotonic ms), then it returns to `lane`.
    fn delay(&mut self, due: u64, lane: Lane, pending: Pending) {
        self.delayed_seq += 1;
        self.delayed.push(Reverse(Delayed {
            due,
            seq: self.delayed_seq,
            lane,
            pending,
        }));
    }

    /// Routes and sends everything that can go now (nothing while draining).
    fn route_waiting(&mut self, now: Now) {
        if self.draining {
            return;
        }
        for p in Processor::ALL {
            self.resolve_pinned(now, p);
        }
        // Fallback came back after default was last seen failing: the router waits for a
        // fresh word on default (policy), so ask for it now rather than at the next probe.
        let [default, fallback] = &mut self.processors;
        if default.health == Health::Failing
            && default.in_flight == 0
            && default.observed_at_ms < fallback.recovered_at_ms
            && !self.fresh.is_empty()
        {
            default.next_probe_mono_ms = default.next_probe_mono_ms.min(now.mono_ms);
        }
        while let Some(&head) = self.fresh.front() {
            let view = self.route_view(now);
            let p = match self.policy.route(&view) {
                Route::Hold => break,
                Route::Default => Processor::Default,
                Route::Fallback => Processor::Fallback,
            };
            self.fresh.pop_front();
            self.stats.routed[p.index()] += 1;
            if p == Processor::Fallback && self.processors[0].health != Health::Failing {
                self.stats.spilled += 1;
            }
            self.send_payment(now, p, head, false);
        }
    }

    /// Resolves payments pinned to `p`: a lookup first (`Pending::look_up_next`) and while
    /// `p` refuses payments (a failing processor answers 500 even for a payment it already
    /// has, so only a lookup can tell); after a "not found", a retry with the same
    /// requestedAt while `p` takes payments (its 200 or 422 settles it).
    fn resolve_pinned(&mut self, now: Now, p: Processor) {
        let i = p.index();
        while let Some(&pending) = self.pinned[i].front() {
            let state = &self.processors[i];
            let retry = state.health != Health::Failing && !pending.look_up_next;
            if retry && state.in_flight < self.policy.in_flight_limit[i] {
                self.pinned[i].pop_front();
                self.send_payment(now, p, pending, true);
            } else if !retry && state.lookups < LOOKUP_LIMIT {
                self.pinned[i].pop_front();
                if self.segment.epoch() != u64::from(pending.claim.payment.epoch) {
                    // Purged: nothing left to resolve, and what a lookup found now would be
                    // the next payment of that id.
                    self.stats.dropped += 1;
                    continue;
                }
                self.processors[i].lookups += 1;
                let timeout = self.policy.give_up_ms(0);
                self.send(
                    now,
                    p,
                    Purpose::Lookup { pending },
                    Call::Lookup { id: pending.id },
                    timeout,
                );
            } else {
                break;
            }
        }
    }

    fn route_view(&self, now: Now) -> policy::RouteView {
        let views = Processor::ALL.map(|p| {
            let s = &self.processors[p.index()];
            policy::ProcessorView {
                health: s.health,
                in_flight: s.in_flight,
                limit: self.policy.in_flight_limit[p.index()],
                probe_due: now.mono_ms >= s.next_probe_mono_ms,
                latency_ms: s.expected_latency_ms(),
                observed_at_ms: s.observed_at_ms,
                recovered_at_ms: s.recovered_at_ms,
                failing_for_ms: match s.health {
                    Health::Failing => wall(now).saturating_sub(s.failing_since_ms),
                    Health::Healthy | Health::Unknown => 0,
                },
            }
        });
        let at = wall(now);
        let inflow = &self.inflow;
        policy::RouteView {
            processors: views,
            backlog: self.fresh.len(),
            run_age_ms: at.saturating_sub(inflow.run_started_ms),
            // No payment accepted here yet (only adopted ones): nothing to wait for.
            idle_ms: inflow.last_wall_ms.map_or(u64::MAX, |last| at.saturating_sub(last)),
            mean_gap_ms: inflow.mean_gap_ms,
        }
    }

    /// Stamps the attempt in the segment (which fixes or returns its requestedAt and checks we
    /// still own the payment) and emits the send.
    fn send_payment(&mut self, now: Now, p: Processor, pending: Pending, pinned: bool) {
        let attempted = match self.segment.begin_attempt(pending.claim, self.owner, p, wall(now)) {
            Ok(attempted) => attempted,
            // Adopted by another instance, already done, or purged: no longer ours to send.
            Err(AttemptError::NotOwner | AttemptError::AlreadyDone | AttemptError::NotLive) => {
                self.stats.dropped += 1;
                return;
            }
        };
        let state = &mut self.processors[p.index()];
        state.in_flight += 1;
        if state.health == Health::Failing {
            state.next_probe_mono_ms = now.mono_ms + self.policy.probe_interval_ms;
            self.stats.processors[p.index()].probes += 1;
        }
        let expected_ms = state.expected_latency_ms();
        let give_up = self.policy.give_up_ms(expected_ms);
        let requested_at_ms = attempted.requested_at_ms;
        let call = Call::Payment {
            id: pending.id,
            cents: pending.cents,
            requested_at_ms,
        };
        self.send(
            now,
            p,
            Purpose::Payment(Attempt {
                pending,
                requested_at_ms,
                pinned,
                first: attempted.first,
                expected_ms,
            }),
            call,
            give_up,
        );
    }

    fn send(&mut self, now: Now, processor: Processor, purpose: Purpose, call: Call, give_up_after_ms: u64) {
        #[cfg(debug_assertions)]
        if let Some(claim) = purpose.claim() {
            assert!(self.flying.insert(claim), "a second request in flight for {claim:?}");
        }
        let state = &self.processors[processor.index()];
        debug_assert!(
            state.in_flight <= self.policy.in_flight_limit[processor.index()].max(1),
            "{} payments in flight to {processor:?}, over the limit",
            state.in_flight
        );
        debug_assert!(state.lookups <= LOOKUP_LIMIT, "{} lookups in flight", state.lookups);
        let request = self.next_request;
        self.next_request += 1;
        let give_up_mono_ms = now.mono_ms + give_up_after_ms;
        self.flights.insert(
            request,
            Flight {
                processor,
                purpose,
                sent_mono_ms: now.mono_ms,
                give_up_mono_ms,
                cancelled: false,
            },
        );
        self.give_ups.push(Reverse((give_up_mono_ms, request)));
        self.stats.processors[processor.index()].sent += 1;
        self.actions.push_back(Action::Send {
            request,
            processor,
            call,
        });
    }

    // --- Clean stop (issue 16): the instance hands over only what no processor is working on.

    /// The instance is stopping: from now on nothing new is sent (no payment, lookup or health
    /// poll) and nothing is adopted, while the answers to the requests in flight are still
    /// taken in and recorded through [`Dispatcher::handle_completion`]. What is left unsent stays
    /// owned until the instance unregisters, and is then adopted by another instance. There is
    /// no way back: a stop is final.
    pub fn begin_drain(&mut self) {
        self.draining = true;
        // A lap would only adopt what this instance is about to hand over.
        self.lap_left = 0;
    }

    /// True when no payment attempt or lookup awaits its answer: every request a processor
    /// may act on has had its outcome recorded, so unregistering loses nothing. Health polls
    /// do not count (an unpublished answer only costs the next poll slot).
    pub fn drained(&self) -> bool {
        self.processors.iter().all(|s| s.in_flight == 0 && s.lookups == 0)
    }
}

/// Wall-clock milliseconds as the segment stores them (never negative in practice).
fn wall(now: Now) -> u64 {
    now.wall_ms.max(0) as u64
}

fn ewma(average: u64, sample: u64) -> u64 {
    if average == 0 {
        return sample;
    }
    average - (average >> LATENCY_SHIFT) + (sample >> LATENCY_SHIFT)
}

#[cfg(test)]
mod tests;
