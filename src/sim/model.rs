//! One payment processor as a state machine with no I/O and no clock: requests go in with
//! `now_ms` (any monotonic millisecond count), decisions come out, and deferred answers are
//! pulled with [`ProcessorState::poll_answer`] once [`ProcessorState::handle_timeout`] has
//! been called at [`ProcessorState::next_deadline`]. The HTTP service drives it from the
//! reactor; the pipeline simulation drives it on a virtual clock.
//!
//! `POST /payments`, as the official processor runs it: admission (at most `max_in_progress`
//! running, `max_queued` waiting oldest first, the rest refused with 429), then the body
//! (unreadable: 400/415, no delay), then the configured delay, then failure mode (500,
//! nothing stored), then the insert (a correlationId already stored: 422). Delay and failure
//! are read when each step happens, so a change reaches requests already waiting.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::decimal::Decimal;
use super::health::{Admit, HealthLimiter};
use crate::base::amount::ScaledAmount;
use crate::base::error::PaymentError;
use crate::base::uuid::Uuid;
use crate::base::window::Window;
use crate::sim::body::ProcessorPayment;

/// Settings, with the official processor's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorConfig {
    /// Fee per payment as a fraction of its amount (`TRANSACTION_FEE`, 0.05).
    pub fee: Decimal,
    /// Length of a health rate-limit window in ms (`RATE_LIMIT_SECONDS` × 1000, 5000).
    pub health_window_ms: u64,
    /// Callers of the health endpoint that may wait for a later window (2).
    pub health_queue_limit: usize,
    /// The admin token (`INITIAL_TOKEN`, "123").
    pub token: Vec<u8>,
    /// The delay before each payment is processed, ms (0). Zero or less means none.
    pub delay_ms: i32,
    /// Whether payments fail with 500 (false).
    pub failing: bool,
    /// Payment requests processed at once (800).
    pub max_in_progress: usize,
    /// Payment requests waiting for a turn beyond those (500).
    pub max_queued: usize,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            fee: Decimal { units: 5, scale: 2 },
            health_window_ms: 5000,
            health_queue_limit: 2,
            token: b"123".to_vec(),
            delay_ms: 0,
            failing: false,
            max_in_progress: 800,
            max_queued: 500,
        }
    }
}

/// Why a payment request's body could not be bound; decided before the delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// No JSON `Content-Type` (415).
    NotJson,
    /// The body is not a valid payment (400).
    Malformed(PaymentError),
}

/// How a payment request ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Stored (200).
    Processed,
    /// The correlationId was already stored; nothing changed (422).
    Duplicate(Uuid),
    /// Failure mode was on after the delay; nothing stored (500).
    Failed,
    /// The body could not be bound (400 or 415).
    Refused(Unreadable),
    /// Admission is full (429).
    Overloaded,
}

/// What the health endpoint reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthStatus {
    /// Failure mode.
    pub failing: bool,
    /// The configured delay, ms.
    pub min_response_time: i32,
}

/// How a health call ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthAnswer {
    /// The status, read when the call was let through.
    Status(HealthStatus),
    /// Rate-limited (429 with `Retry-After`).
    Limited,
}

/// A deferred answer, for the caller identified by its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// To a `POST /payments`.
    Payment(PaymentOutcome),
    /// To a `GET /payments/service-health`.
    Health(HealthAnswer),
}

/// One stored payment, as `GET /payments/{id}` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredPayment {
    /// The amount with its scale.
    pub amount: ScaledAmount,
    /// `requestedAt` as sent, ms since the Unix epoch.
    pub requested_at_ms: i64,
}

/// The admin summary of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminSummary {
    /// Payments stored whose `requestedAt` lies in the window.
    pub total_requests: u64,
    /// Their amounts summed, with the largest scale among them (`0` when none).
    pub total_amount: Decimal,
    /// `total_amount × fee`.
    pub total_fee: Decimal,
    /// The fee.
    pub fee_per_transaction: Decimal,
}

/// The old and new value of a setting changed through the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<V> {
    /// Before.
    pub was: V,
    /// After.
    pub is: V,
}

/// A payment in its delay. Ordered by deadline, then arrival, for the min-heap.
struct Running<T> {
    deadline_ms: u64,
    seq: u64,
    caller: T,
    payment: ProcessorPayment,
}

impl<T> PartialEq for Running<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline_ms, self.seq) == (other.deadline_ms, other.seq)
    }
}
impl<T> Eq for Running<T> {}
impl<T> PartialOrd for Running<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Running<T> {
    // Reversed, so the std max-heap pops the earliest deadline first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.deadline_ms, other.seq).cmp(&(self.deadline_ms, self.seq))
    }
}

/// Hashes a correlationId by folding its bytes with a multiply: the ids are random or
/// sequential, never adversarial here, and SipHash would cost more than the rest of a request.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(29) ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

/// One processor. `T` identifies a caller whose answer is deferred (a connection, or a
/// request id in a simulation); it is handed back with the answer.
pub struct ProcessorState<T> {
    config: ProcessorConfig,
    /// The admin token; `None` after it was set to JSON `null`, which then matches a request
    /// without the header (as the official comparison of header values with a null string).
    token: Option<Vec<u8>>,
    payments: HashMap<Uuid, StoredPayment, BuildHasherDefault<IdHasher>>,
    running: BinaryHeap<Running<T>>,
    seq: u64,
    queued: VecDeque<(T, Result<ProcessorPayment, Unreadable>)>,
    health: HealthLimiter<T>,
    answers: VecDeque<(T, Answer)>,
}

impl<T> ProcessorState<T> {
    /// A processor with nothing stored.
    pub fn new(config: ProcessorConfig) -> ProcessorState<T> {
        ProcessorState {
            token: Some(config.token.clone()),
            payments: HashMap::with_capacity_and_hasher(1 << 16, BuildHasherDefault::default()),
            running: BinaryHeap::new(),
            seq: 0,
            queued: VecDeque::new(),
            health: HealthLimiter::new(config.health_window_ms, config.health_queue_limit),
            answers: VecDeque::new(),
            config,
        }
    }

    /// The settings as they are now (delay and failure change through the admin API).
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    /// A `POST /payments` arriving at `now_ms` with its body as bound. Returns the outcome
    /// when it is decided at once (no delay, a refused body, admission full); `None` when
    /// it comes later through [`poll_answer`](Self::poll_answer) for `caller`.
    pub fn post_payment(
        &mut self,
        now_ms: u64,
        caller: T,
        payment: Result<ProcessorPayment, Unreadable>,
    ) -> Option<PaymentOutcome> {
        if self.running.len() < self.config.max_in_progress && self.queued.is_empty() {
            self.start(now_ms, caller, payment).map(|(_, outcome)| outcome)
        } else if self.queued.len() < self.config.max_queued {
            self.queued.push_back((caller, payment));
            None
        } else {
            Some(PaymentOutcome::Overloaded)
        }
    }

    /// Begins an admitted request: an unreadable body or no delay ends it now (the caller
    /// comes back with the outcome), otherwise it runs until its deadline.
    fn start(
        &mut self,
        now_ms: u64,
        caller: T,
        payment: Result<ProcessorPayment, Unreadable>,
    ) -> Option<(T, PaymentOutcome)> {
        let payment = match payment {
            Ok(p) => p,
            Err(why) => return Some((caller, PaymentOutcome::Refused(why))),
        };
        let delay = self.config.delay_ms;
        if delay <= 0 {
            return Some((caller, self.process(payment)));
        }
        self.seq += 1;
        let deadline_ms = now_ms + delay as u64;
        self.running.push(Running {
            deadline_ms,
            seq: self.seq,
            caller,
            payment,
        });
        None
    }

    /// The end of a request's delay: failure mode, then the insert.
    fn process(&mut self, p: ProcessorPayment) -> PaymentOutcome {
        if self.config.failing {
            return PaymentOutcome::Failed;
        }
        match self.payments.entry(p.id) {
            std::collections::hash_map::Entry::Occupied(_) => PaymentOutcome::Duplicate(p.id),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(StoredPayment {
                    amount: p.amount,
                    requested_at_ms: p.requested_at_ms,
                });
                PaymentOutcome::Processed
            }
        }
    }

    /// A `GET /payments/service-health` at `now_ms`. Returns the answer when it is decided
    /// at once; `None` when the caller waits for a later window and gets the answer through
    /// [`poll_answer`](Self::poll_answer).
    pub fn health(&mut self, now_ms: u64, caller: T) -> Option<HealthAnswer> {
        let status = self.health_status();
        let answers = &mut self.answers;
        match self.health.request(now_ms, caller, |w| {
            answers.push_back((w, Answer::Health(HealthAnswer::Status(status))))
        }) {
            Admit::Now => Some(HealthAnswer::Status(status)),
            Admit::Queued => None,
            Admit::Refused => Some(HealthAnswer::Limited),
        }
    }

    /// What the health endpoint reports now.
    pub fn health_status(&self) -> HealthStatus {
        HealthStatus {
            failing: self.config.failing,
            min_response_time: self.config.delay_ms,
        }
    }

    /// The earliest moment something is due: a payment's delay ends or a health window opens
    /// for a waiter. Call [`handle_timeout`](Self::handle_timeout) then.
    pub fn next_deadline(&self) -> Option<u64> {
        let payment = self.running.peek().map(|r| r.deadline_ms);
        match (payment, self.health.next_release()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Does what is due at `now_ms`: finishes payments whose delay is over, starts queued
    /// ones in their place, lets health waiters through. Answers become available to
    /// [`poll_answer`](Self::poll_answer). Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        while self.running.peek().is_some_and(|r| r.deadline_ms <= now_ms) {
            if let Some(r) = self.running.pop() {
                let outcome = self.process(r.payment);
                self.answers.push_back((r.caller, Answer::Payment(outcome)));
            }
        }
        // Freed places go to the queue, oldest first. One that starts with a delay is due
        // later, never now, so one pass is enough.
        while self.running.len() < self.config.max_in_progress {
            let Some((caller, payment)) = self.queued.pop_front() else {
                break;
            };
            if let Some((caller, outcome)) = self.start(now_ms, caller, payment) {
                self.answers.push_back((caller, Answer::Payment(outcome)));
            }
        }
        let status = self.health_status();
        let answers = &mut self.answers;
        self.health.advance(now_ms, |w| {
            answers.push_back((w, Answer::Health(HealthAnswer::Status(status))))
        });
    }

    /// The next deferred answer and who it is for.
    pub fn poll_answer(&mut self) -> Option<(T, Answer)> {
        self.answers.pop_front()
    }

    /// Payments in their delay now.
    pub fn in_progress(&self) -> usize {
        self.running.len()
    }

    /// Payment requests waiting for admission now.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Health callers waiting for a later window now.
    pub fn health_waiting(&self) -> usize {
        self.health.waiting()
    }

    /// Whether `presented` (the `X-Rinha-Token` header, if any) is the admin token.
    pub fn token_matches(&self, presented: Option<&[u8]>) -> bool {
        match (&self.token, presented) {
            (Some(token), Some(header)) => token.as_slice() == header,
            (None, None) => true,
            _ => false,
        }
    }

    /// Replaces the admin token (`None`: JSON `null`, see [`token_matches`](Self::token_matches)).
    pub fn set_token(&mut self, token: Option<&[u8]>) {
        self.token = token.map(<[u8]>::to_vec);
    }

    /// Sets the delay for payments that start from now on.
    pub fn set_delay(&mut self, delay_ms: i32) -> Change<i32> {
        let was = std::mem::replace(&mut self.config.delay_ms, delay_ms);
        Change { was, is: delay_ms }
    }

    /// Turns failure mode on or off; payments whose delay ends from now on see it.
    pub fn set_failure(&mut self, failing: bool) -> Change<bool> {
        let was = std::mem::replace(&mut self.config.failing, failing);
        Change { was, is: failing }
    }

    /// The stored payment with this correlationId.
    pub fn payment(&self, id: &Uuid) -> Option<StoredPayment> {
        self.payments.get(id).copied()
    }

    /// Count, sum and fee of the stored payments whose `requestedAt` lies in `window`, both
    /// ends included; an open end is unbounded. Linear in the payments stored.
    pub fn summary(&self, window: &Window) -> AdminSummary {
        let (mut count, mut cents, mut scale) = (0u64, 0u64, 0u8);
        for p in self.payments.values() {
            if window.contains(p.requested_at_ms) {
                count += 1;
                cents += p.amount.cents;
                scale = scale.max(p.amount.scale);
            }
        }
        let total_amount = if count == 0 {
            Decimal::ZERO
        } else {
            Decimal::from_cents(cents, scale)
        };
        AdminSummary {
            total_requests: count,
            total_amount,
            total_fee: total_amount.times(self.config.fee),
            fee_per_transaction: self.config.fee,
        }
    }

    /// Forgets every stored payment. Requests in their delay still store theirs afterwards.
    pub fn purge(&mut self) {
        self.payments.clear();
    }

    /// How many payments are stored.
    pub fn stored(&self) -> usize {
        self.payments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::uuid::parse_uuid;

    fn id(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    fn pay(n: u8, cents: u64, at: i64) -> Result<ProcessorPayment, Unreadable> {
        Ok(ProcessorPayment {
            id: id(n),
            amount: ScaledAmount { cents, scale: 2 },
            requested_at_ms: at,
        })
    }

    fn processor(delay: i32) -> ProcessorState<u32> {
        ProcessorState::new(ProcessorConfig {
            delay_ms: delay,
            ..ProcessorConfig::default()
        })
    }

    fn drain(p: &mut ProcessorState<u32>) -> Vec<(u32, Answer)> {
        std::iter::from_fn(|| p.poll_answer()).collect()
    }

    #[test]
    fn without_delay_answers_at_once() {
        let mut p = processor(0);
        assert_eq!(p.post_payment(0, 1, pay(1, 1990, 5)), Some(PaymentOutcome::Processed));
        assert_eq!(
            p.post_payment(0, 2, pay(1, 1990, 5)),
            Some(PaymentOutcome::Duplicate(id(1)))
        );
        assert_eq!(p.next_deadline(), None);
        assert_eq!(
            p.payment(&id(1)),
            Some(StoredPayment {
                amount: ScaledAmount { cents: 1990, scale: 2 },
                requested_at_ms: 5
            })
        );
    }

    #[test]
    fn delay_then_failure_then_insert() {
        let mut p = processor(100);
        assert_eq!(p.post_payment(1000, 1, pay(1, 1990, 5)), None);
        assert_eq!(p.next_deadline(), Some(1100));
        // Failure switched on during the delay: seen at its end, nothing stored.
        p.set_failure(true);
        p.handle_timeout(1099);
        assert!(drain(&mut p).is_empty());
        p.handle_timeout(1100);
        assert_eq!(drain(&mut p), vec![(1, Answer::Payment(PaymentOutcome::Failed))]);
        assert_eq!(p.stored(), 0);
        // A failing request takes the delay too.
        assert_eq!(p.post_payment(2000, 2, pay(1, 1990, 5)), None);
        p.set_failure(false);
        p.handle_timeout(2100);
        assert_eq!(drain(&mut p), vec![(2, Answer::Payment(PaymentOutcome::Processed))]);
        // Two at once with one id: the first to finish stores, the second is a duplicate.
        p.post_payment(3000, 3, pay(2, 100, 0));
        p.post_payment(3010, 4, pay(2, 100, 0));
        p.handle_timeout(3200);
        assert_eq!(
            drain(&mut p),
            vec![
                (3, Answer::Payment(PaymentOutcome::Processed)),
                (4, Answer::Payment(PaymentOutcome::Duplicate(id(2))))
            ]
        );
    }

    #[test]
    fn a_refused_body_skips_the_delay() {
        let mut p = processor(1000);
        let bad = Err(Unreadable::Malformed(PaymentError::MissingAmount));
        assert_eq!(
            p.post_payment(0, 1, bad),
            Some(PaymentOutcome::Refused(Unreadable::Malformed(
                PaymentError::MissingAmount
            )))
        );
        assert_eq!(
            p.post_payment(0, 2, Err(Unreadable::NotJson)),
            Some(PaymentOutcome::Refused(Unreadable::NotJson))
        );
        assert_eq!(p.in_progress(), 0);
    }

    #[test]
    fn a_changed_delay_applies_to_payments_that_start_later() {
        let mut p = processor(100);
        p.post_payment(0, 1, pay(1, 1, 0));
        assert_eq!(p.set_delay(500), Change { was: 100, is: 500 });
        p.post_payment(10, 2, pay(2, 1, 0));
        p.handle_timeout(100);
        assert_eq!(drain(&mut p), vec![(1, Answer::Payment(PaymentOutcome::Processed))]);
        assert_eq!(p.next_deadline(), Some(510));
    }

    #[test]
    fn admission_runs_some_queues_some_refuses_the_rest() {
        let mut p = ProcessorState::new(ProcessorConfig {
            delay_ms: 100,
            max_in_progress: 2,
            max_queued: 1,
            ..ProcessorConfig::default()
        });
        assert_eq!(p.post_payment(0, 1, pay(1, 1, 0)), None);
        assert_eq!(p.post_payment(1, 2, pay(2, 1, 0)), None);
        assert_eq!(p.post_payment(2, 3, Err(Unreadable::NotJson)), None);
        assert_eq!((p.in_progress(), p.queued()), (2, 1));
        assert_eq!(p.post_payment(3, 4, pay(4, 1, 0)), Some(PaymentOutcome::Overloaded));
        // The first finishes; the queued one (a bad body) then gets its 400 at once.
        p.handle_timeout(100);
        assert_eq!(
            drain(&mut p),
            vec![
                (1, Answer::Payment(PaymentOutcome::Processed)),
                (3, Answer::Payment(PaymentOutcome::Refused(Unreadable::NotJson)))
            ]
        );
        // Queued payments start their delay when admitted, not when they arrived.
        p.post_payment(150, 5, pay(5, 1, 0));
        p.post_payment(160, 6, pay(6, 1, 0));
        assert_eq!(p.queued(), 1);
        p.handle_timeout(101);
        assert_eq!(drain(&mut p), vec![(2, Answer::Payment(PaymentOutcome::Processed))]);
        assert_eq!(p.next_deadline(), Some(201));
        p.handle_timeout(250);
        assert_eq!(
            drain(&mut p),
            vec![
                (6, Answer::Payment(PaymentOutcome::Processed)),
                (5, Answer::Payment(PaymentOutcome::Processed))
            ]
        );
    }

    #[test]
    fn with_zero_delay_the_queue_drains_in_one_timeout() {
        let mut p = ProcessorState::new(ProcessorConfig {
            delay_ms: 100,
            max_in_progress: 1,
            max_queued: 3,
            ..ProcessorConfig::default()
        });
        p.post_payment(0, 1, pay(1, 1, 0));
        p.post_payment(0, 2, pay(2, 1, 0));
        p.post_payment(0, 3, pay(3, 1, 0));
        p.set_delay(0);
        p.handle_timeout(100);
        assert_eq!(drain(&mut p).len(), 3);
        assert_eq!((p.in_progress(), p.queued(), p.stored()), (0, 0, 3));
    }

    #[test]
    fn health_is_rate_limited_with_a_queue_of_two() {
        let mut p = ProcessorState::new(ProcessorConfig {
            delay_ms: 7,
            health_window_ms: 1000,
            ..ProcessorConfig::default()
        });
        let ok = |failing, ms| {
            Some(HealthAnswer::Status(HealthStatus {
                failing,
                min_response_time: ms,
            }))
        };
        assert_eq!(p.health(0, 1), ok(false, 7));
        assert_eq!(p.health(1, 2), None);
        assert_eq!(p.health(2, 3), None);
        assert_eq!(p.health(3, 4), Some(HealthAnswer::Limited));
        assert_eq!(p.next_deadline(), Some(1000));
        // The waiter sees the status as it is when let through.
        p.set_failure(true);
        p.handle_timeout(1000);
        let status = HealthAnswer::Status(HealthStatus {
            failing: true,
            min_response_time: 7,
        });
        assert_eq!(drain(&mut p), vec![(2, Answer::Health(status))]);
        p.handle_timeout(2000);
        assert_eq!(drain(&mut p), vec![(3, Answer::Health(status))]);
        assert_eq!(p.next_deadline(), None);
        assert_eq!(p.health(2500, 5), None);
    }

    #[test]
    fn summary_counts_an_inclusive_window_with_dotnet_scales() {
        let mut p = processor(0);
        p.post_payment(0, 0, pay(1, 1990, 1000));
        p.post_payment(0, 0, pay(2, 1990, 2000));
        p.post_payment(0, 0, pay(3, 1990, 3000));
        let all = p.summary(&Window::default());
        assert_eq!(all.total_requests, 3);
        assert_eq!(all.total_amount, Decimal { units: 5970, scale: 2 });
        assert_eq!(
            all.total_fee,
            Decimal {
                units: 29_850,
                scale: 4
            }
        );
        assert_eq!(all.fee_per_transaction, Decimal { units: 5, scale: 2 });
        let edges = p.summary(&Window {
            from_ms: Some(1000),
            to_ms: Some(2000),
        });
        assert_eq!(edges.total_requests, 2);
        let inner = p.summary(&Window {
            from_ms: Some(1001),
            to_ms: Some(2999),
        });
        assert_eq!(inner.total_requests, 1);
        let open_to = p.summary(&Window {
            from_ms: Some(2000),
            to_ms: None,
        });
        assert_eq!(open_to.total_requests, 2);
        let backwards = p.summary(&Window {
            from_ms: Some(3000),
            to_ms: Some(1000),
        });
        assert_eq!((backwards.total_requests, backwards.total_amount), (0, Decimal::ZERO));
        assert_eq!(backwards.total_fee, Decimal { units: 0, scale: 2 });
        p.purge();
        assert_eq!(p.summary(&Window::default()).total_requests, 0);
    }

    #[test]
    fn sum_scale_is_the_largest_scale() {
        let mut p = processor(0);
        let scaled = |n, cents, scale| {
            Ok(ProcessorPayment {
                id: id(n),
                amount: ScaledAmount { cents, scale },
                requested_at_ms: 0,
            })
        };
        p.post_payment(0, 0, scaled(1, 2000, 0));
        assert_eq!(
            p.summary(&Window::default()).total_amount,
            Decimal { units: 20, scale: 0 }
        );
        p.post_payment(0, 0, scaled(2, 1990, 1));
        assert_eq!(
            p.summary(&Window::default()).total_amount,
            Decimal { units: 399, scale: 1 }
        );
    }

    #[test]
    fn token_checks() {
        let mut p = processor(0);
        assert!(p.token_matches(Some(b"123")));
        assert!(!p.token_matches(Some(b"1234")));
        assert!(!p.token_matches(None));
        p.set_token(Some(b"abc"));
        assert!(p.token_matches(Some(b"abc")));
        p.set_token(None);
        assert!(p.token_matches(None));
        assert!(!p.token_matches(Some(b"")));
    }

    #[test]
    fn many_ids_hash_apart() {
        let mut p = processor(0);
        let mut text = *b"00000000-0000-0000-0000-000000000000";
        for n in 0..10_000u32 {
            let digits = format!("{n:08x}");
            text[28..36].copy_from_slice(digits.as_bytes());
            let id = parse_uuid(&text).unwrap();
            let body = Ok(ProcessorPayment {
                id,
                amount: ScaledAmount { cents: 1, scale: 2 },
                requested_at_ms: 0,
            });
            assert_eq!(p.post_payment(0, 0, body), Some(PaymentOutcome::Processed));
        }
        assert_eq!(p.stored(), 10_000);
    }
}
