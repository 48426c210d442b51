//! Model check (proptest) of a limiter's `granted` count, which is kept lock-free: the
//! first thread to count owns an inline slot, later threads count in per-thread
//! striped slots allocated when the first of them counts, and a reset records a base.
//!
//! Each case drives a direct and a keyed limiter from four worker threads, one
//! operation at a time (the next starts once the previous one has returned), and checks
//! `stats().granted` against a plain counter after every step: grants since the last
//! reset, whichever threads made them. New threads per case also reuse the thread
//! indices of exited ones, so the hand-over of a slot to the next thread is exercised.
//!
//! CI runs 500 cases; the full run 10 000:
//! `RESILIENCE_FULL=1 cargo test --release -p resilience-tests --test model_grant_count -- --nocapture`
//! (`PROPTEST_CASES=n` overrides, `RESILIENCE_SEED=n` replays a seed).

use std::sync::mpsc;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use resilience::clock::ManualClock;
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig, RateLimiter};

fn cases() -> u32 {
    let full = std::env::var("RESILIENCE_FULL").is_ok_and(|v| !v.is_empty() && v != "0");
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(if full {
        10_000
    } else {
        500
    })
}

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x06a7_c0de)
}

const THREADS: usize = 4;

#[derive(Debug, Clone, Copy)]
enum Op {
    /// Thread `t` takes a permit from both limiters (key `k` of the keyed one).
    Acquire { t: usize, k: u8 },
    /// Thread `t` resets both limiters.
    Reset { t: usize },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        8 => (0..THREADS, 0u8..4).prop_map(|(t, k)| Op::Acquire { t, k }),
        1 => (0..THREADS).prop_map(|t| Op::Reset { t }),
    ];
    proptest::collection::vec(op, 1..80)
}

fn plenty() -> RateLimitConfig {
    // The clock never moves: a burst this large is never used up by one case.
    let config =
        RateLimitConfig::builder().per_second(1_000).burst(1_000_000).on_limit(OnLimit::Reject);
    config.build().unwrap_or_else(|e| unreachable!("valid config: {e}"))
}

fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let direct = RateLimiter::with_clock("model-grants", plenty(), clock.shared());
    let keyed: KeyedRateLimiter<String> =
        KeyedRateLimiter::with_clock("model-grants-keyed", plenty(), clock.shared());
    std::thread::scope(|s| {
        let mut senders = Vec::new();
        let (done_tx, done_rx) = mpsc::channel::<bool>();
        for _ in 0..THREADS {
            let (tx, rx) = mpsc::channel::<Op>();
            senders.push(tx);
            let done = done_tx.clone();
            let (direct, keyed) = (&direct, &keyed);
            s.spawn(move || {
                for op in rx {
                    let ok = match op {
                        Op::Acquire { k, .. } => {
                            direct.try_acquire(1).is_ok()
                                && keyed.try_acquire(format!("key-{k}").as_str(), 1).is_ok()
                        }
                        Op::Reset { .. } => {
                            direct.reset();
                            keyed.reset();
                            true
                        }
                    };
                    if done.send(ok).is_err() {
                        return;
                    }
                }
            });
        }
        let mut model = 0u64;
        let mut result = Ok(());
        for (step, op) in ops.iter().enumerate() {
            let t = match *op {
                Op::Acquire { t, .. } | Op::Reset { t } => t,
            };
            if senders[t].send(*op).is_err() {
                result = Err(TestCaseError::fail(format!("step {step}: worker {t} gone")));
                break;
            }
            let ok = done_rx.recv().unwrap_or(false);
            match op {
                Op::Acquire { .. } => model += 1,
                Op::Reset { .. } => model = 0,
            }
            let (d, k) = (direct.stats().granted, keyed.stats().granted);
            if !ok || d != model || k != model {
                result = Err(TestCaseError::fail(format!(
                    "step {step} ({op:?}): granted direct {d}, keyed {k}, model {model}"
                )));
                break;
            }
        }
        drop(senders);
        result
    })
}

#[test]
fn granted_counts_match_a_model_across_threads_and_resets() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        rng_seed: RngSeed::Fixed(seed()),
        failure_persistence: None,
        ..Config::default()
    });
    let r = runner.run(&ops(), check);
    println!("granted count model: {} cases, seed {}: {}", cases(), seed(), r.is_ok());
    if let Err(e) = r {
        panic!("granted count model, seed {}: {e}", seed());
    }
}
