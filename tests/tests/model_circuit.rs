//! Model check: the circuit breaker against a small reference model, over random
//! sequences of success / failure / ignored / slow calls, held and late-reported
//! permits, time advances, `force_open`, `reset` and `disable` (on a `ManualClock`),
//! comparing the state and every counter after each step.
//!
//! CI runs 1 000 sequences; the full run 10 000:
//! `RESILIENCE_FULL=1 cargo test --release -p resilience-tests --test model_circuit -- --nocapture`
//! (`PROPTEST_CASES=n` overrides the count, `RESILIENCE_SEED=n` replays a seed).

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use resilience::circuit::{
    CallOutcome, CallPermit, CircuitBreaker, CircuitBreakerConfig, CircuitState, Window,
};
use resilience::clock::{Clock, ManualClock};

fn cases() -> u32 {
    let full = std::env::var("RESILIENCE_FULL").is_ok_and(|v| !v.is_empty() && v != "0");
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(if full {
        10_000
    } else {
        1_000
    })
}

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xb4ea_4e45)
}

/// What trips the breaker in a generated config.
#[derive(Debug, Clone, Copy)]
enum Trip {
    Consecutive(u32),
    /// `failure_rate`, count window size, `min_calls`.
    Rate(f64, u32, u32),
}

#[derive(Debug, Clone, Copy)]
struct Params {
    trip: Trip,
    recovery_ms: u64,
    half_open_max: u32,
    success_threshold: u32,
    slow_ms: Option<u64>,
}

impl Params {
    fn config(&self) -> CircuitBreakerConfig {
        let b = CircuitBreakerConfig::builder()
            .recovery_timeout(Duration::from_millis(self.recovery_ms))
            .half_open_max_calls(self.half_open_max)
            .success_threshold(self.success_threshold);
        let b = match self.trip {
            Trip::Consecutive(n) => b.failure_threshold(n),
            Trip::Rate(r, n, min) => b.failure_rate(r).window(Window::calls(n)).min_calls(min),
        };
        let b = match self.slow_ms {
            Some(ms) => b.slow_call(Duration::from_millis(ms)),
            None => b,
        };
        b.build().unwrap_or_else(|e| unreachable!("generated config is valid: {e}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Success,
    Failure,
    Ignored,
}

impl Outcome {
    fn real(self) -> CallOutcome {
        match self {
            Outcome::Success => CallOutcome::Success,
            Outcome::Failure => CallOutcome::Failure,
            Outcome::Ignored => CallOutcome::Ignored,
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A call that takes `ms` of (simulated) time and ends with the outcome.
    Call(Outcome, u64),
    /// Take a permit and keep it (a call in flight).
    Hold,
    /// Report the outcome of the held permit `i % held` (late, maybe after transitions).
    Release(usize, Outcome),
    /// Drop the held permit `i % held` unused (a cancelled call).
    Drop(usize),
    Advance(u64),
    ForceOpen,
    Reset,
    Disable,
}

fn params() -> impl Strategy<Value = Params> {
    let trip = prop_oneof![
        (1u32..=4).prop_map(Trip::Consecutive),
        (1u32..=6, 0.2f64..=1.0)
            .prop_flat_map(|(n, r)| (1..=n).prop_map(move |min| Trip::Rate(r, n, min))),
    ];
    (trip, 1u64..=50, 1u32..=3, 1u32..=3, prop::option::of(1u64..=20)).prop_map(
        |(trip, recovery_ms, half_open_max, success_threshold, slow_ms)| Params {
            trip,
            recovery_ms,
            half_open_max,
            success_threshold,
            slow_ms,
        },
    )
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![3 => Just(Outcome::Success), 3 => Just(Outcome::Failure), 1 => Just(Outcome::Ignored)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (outcome(), prop_oneof![3 => Just(0u64), 1 => 0u64..=30]).prop_map(|(o, ms)| Op::Call(o, ms)),
        2 => Just(Op::Hold),
        2 => (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Release(i, o)),
        1 => any::<usize>().prop_map(Op::Drop),
        4 => (0u64..=60).prop_map(Op::Advance),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Reset),
        1 => Just(Op::Disable),
    ]
}

/// The reference model: the documented behaviour, written as plainly as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Closed,
    Probe,
    Disabled,
}

#[derive(Debug, Clone, Copy)]
struct ModelPermit {
    generation: u64,
    kind: Kind,
    started: u64,
}

#[derive(Debug, Default)]
struct Counters {
    successes: u64,
    failures: u64,
    ignored: u64,
    rejections: u64,
    slow_calls: u64,
    transitions: u64,
}

#[derive(Debug)]
struct Model {
    p: Params,
    state: CircuitState,
    generation: u64,
    open_until: u64,
    consecutive: u32,
    probes: u32,
    probe_successes: u32,
    /// The count window, oldest first (true: failure).
    window: Vec<bool>,
    c: Counters,
}

impl Model {
    fn new(p: Params) -> Self {
        Model {
            p,
            state: CircuitState::Closed,
            generation: 0,
            open_until: 0,
            consecutive: 0,
            probes: 0,
            probe_successes: 0,
            window: Vec::new(),
            c: Counters::default(),
        }
    }

    fn enter(&mut self, to: CircuitState, now: u64) {
        match to {
            CircuitState::Open => self.open_until = now + self.p.recovery_ms,
            CircuitState::Closed => {
                self.consecutive = 0;
                self.window.clear();
            }
            _ => {}
        }
        if self.state != to {
            self.c.transitions += 1;
        }
        self.state = to;
        self.generation += 1;
        self.probes = 0;
        self.probe_successes = 0;
    }

    fn acquire(&mut self, now: u64) -> Option<ModelPermit> {
        let permit = |m: &Model, kind| ModelPermit { generation: m.generation, kind, started: now };
        match self.state {
            CircuitState::Closed => Some(permit(self, Kind::Closed)),
            CircuitState::Disabled => Some(permit(self, Kind::Disabled)),
            CircuitState::ForcedOpen => None,
            CircuitState::Open if now < self.open_until => None,
            CircuitState::Open => {
                self.enter(CircuitState::HalfOpen, now);
                self.acquire(now)
            }
            CircuitState::HalfOpen if self.probes >= self.p.half_open_max => None,
            CircuitState::HalfOpen => {
                self.probes += 1;
                Some(permit(self, Kind::Probe))
            }
        }
        .or_else(|| {
            self.c.rejections += 1;
            None
        })
    }

    fn outcome(&mut self, permit: ModelPermit, mut outcome: Outcome, now: u64) {
        if let (Outcome::Success, Some(slow)) = (outcome, self.p.slow_ms)
            && now - permit.started > slow
        {
            self.c.slow_calls += 1;
            outcome = Outcome::Failure;
        }
        match outcome {
            Outcome::Success => self.c.successes += 1,
            Outcome::Failure => self.c.failures += 1,
            Outcome::Ignored => self.c.ignored += 1,
        }
        let current = permit.generation == self.generation;
        match permit.kind {
            Kind::Disabled => {}
            Kind::Closed => {
                if outcome == Outcome::Ignored || !current || self.state != CircuitState::Closed {
                    return;
                }
                let failed = outcome == Outcome::Failure;
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                let trip = match self.p.trip {
                    Trip::Consecutive(n) => self.consecutive >= n,
                    Trip::Rate(rate, size, min) => {
                        self.window.push(failed);
                        if self.window.len() > size as usize {
                            self.window.remove(0);
                        }
                        let total = self.window.len() as f64;
                        let failures = self.window.iter().filter(|f| **f).count() as f64;
                        failed && total >= f64::from(min) && failures >= rate * total
                    }
                };
                if trip {
                    self.enter(CircuitState::Open, now);
                }
            }
            Kind::Probe => {
                if !current || self.state != CircuitState::HalfOpen {
                    return;
                }
                match outcome {
                    Outcome::Failure => {
                        self.consecutive += 1;
                        self.enter(CircuitState::Open, now);
                    }
                    Outcome::Ignored => self.probes -= 1,
                    Outcome::Success => {
                        self.probes -= 1;
                        self.probe_successes += 1;
                        self.consecutive = 0;
                        if self.probe_successes >= self.p.success_threshold {
                            self.enter(CircuitState::Closed, now);
                        }
                    }
                }
            }
        }
    }
}

fn ms(clock: &ManualClock) -> u64 {
    u64::try_from(clock.now().as_millis()).unwrap_or(u64::MAX)
}

fn check(real: &CircuitBreaker, model: &Model, step: usize, op: &Op) -> Result<(), TestCaseError> {
    let s = real.stats();
    let m = &model.c;
    let got = (
        s.state,
        s.successes,
        s.failures,
        s.ignored,
        s.rejections,
        s.slow_calls,
        s.transitions,
        s.consecutive_failures,
    );
    let want = (
        model.state,
        m.successes,
        m.failures,
        m.ignored,
        m.rejections,
        m.slow_calls,
        m.transitions,
        model.consecutive,
    );
    prop_assert_eq!(got, want, "after step {} ({:?})", step, op);
    prop_assert_eq!(s.calls, s.successes + s.failures + s.ignored);
    Ok(())
}

fn run(p: Params, ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let real = CircuitBreaker::with_clock("model", p.config(), clock.shared());
    let mut model = Model::new(p);
    let mut held: Vec<(CallPermit<'_>, ModelPermit)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Call(outcome, took) => {
                let now = ms(&clock);
                let r = real.try_acquire();
                let m = model.acquire(now);
                prop_assert_eq!(r.is_ok(), m.is_some(), "admission at step {} ({:?})", step, op);
                clock.advance(Duration::from_millis(took));
                if let (Ok(permit), Some(mp)) = (r, m) {
                    prop_assert_eq!(permit.is_probe(), mp.kind == Kind::Probe);
                    permit.record(outcome.real());
                    model.outcome(mp, outcome, ms(&clock));
                }
            }
            Op::Hold => {
                let r = real.try_acquire();
                let m = model.acquire(ms(&clock));
                prop_assert_eq!(r.is_ok(), m.is_some(), "admission at step {} ({:?})", step, op);
                if let (Ok(permit), Some(mp)) = (r, m) {
                    prop_assert_eq!(permit.is_probe(), mp.kind == Kind::Probe);
                    held.push((permit, mp));
                }
            }
            Op::Release(i, outcome) if !held.is_empty() => {
                let (permit, mp) = held.remove(i % held.len());
                permit.record(outcome.real());
                model.outcome(mp, outcome, ms(&clock));
            }
            Op::Drop(i) if !held.is_empty() => {
                let (permit, mp) = held.remove(i % held.len());
                drop(permit);
                model.outcome(mp, Outcome::Ignored, ms(&clock));
            }
            Op::Release(..) | Op::Drop(_) => {}
            Op::Advance(d) => clock.advance(Duration::from_millis(d)),
            Op::ForceOpen => {
                real.force_open();
                model.enter(CircuitState::ForcedOpen, ms(&clock));
            }
            Op::Reset => {
                real.reset();
                model.enter(CircuitState::Closed, ms(&clock));
            }
            Op::Disable => {
                real.disable();
                model.enter(CircuitState::Disabled, ms(&clock));
            }
        }
        check(&real, &model, step, op)?;
    }
    // Permits still held are dropped: each counts as ignored and leaks nothing.
    for (permit, mp) in held.drain(..) {
        drop(permit);
        model.outcome(mp, Outcome::Ignored, ms(&clock));
    }
    check(&real, &model, ops.len(), &Op::Drop(0))
}

#[test]
fn breaker_matches_the_reference_model() {
    let (cases, seed) = (cases(), seed());
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = (params(), prop::collection::vec(op(), 1..80));
    let result = runner.run(&strategy, |(p, ops)| run(p, &ops));
    println!(
        "circuit breaker vs reference model: {cases} random sequences (up to 80 steps, state \
         and 8 counters compared after each step), seed {seed}: {}",
        if result.is_ok() { "all agree" } else { "MISMATCH" }
    );
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
}
