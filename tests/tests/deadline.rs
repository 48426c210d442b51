//! One deadline for the whole call: every attempt, backoff sleep, rate-limit and bulkhead
//! wait, and each attempt's timeout end by it, in every front-end (builder, `Pipeline`,
//! attributes, TOML). And retry budgets per named instance: call sites sharing a preset
//! do not share a budget unless they name one.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::backoff::{Backoff, Jitter};
use resilience::bulkhead::{Bulkhead, BulkheadConfig};
use resilience::clock::ManualClock;
use resilience::events::{self, EventKind, GiveUpReason, Interest};
use resilience::presets::{BudgetScope, Preset, ResilienceConfig};
use resilience::rate_limit::{RateLimitConfig, RateLimiter};
use resilience::registry::Registry;
use resilience::retry::{DefaultHooks, RetryPolicy};
use resilience::{Error, Pipeline, registry, resilient, retry};
use tokio::time::Instant;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn constant(delay: Duration) -> Backoff {
    Backoff::constant(delay).with_jitter(Jitter::None)
}

#[derive(Debug, PartialEq)]
enum AppError {
    Down,
    Resilience(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Resilience(e)
    }
}

// ----- the retry layer ---------------------------------------------------------------

#[test]
fn the_deadline_bounds_attempts_and_backoff_and_the_give_up_names_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let _sub = events::subscribe(Interest::RETRIES, move |e| {
        if &*e.name == "deadline-sync" {
            sink.lock().unwrap().push(e.kind.clone());
        }
    });
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .name("deadline-sync")
        .max_attempts(10)
        .backoff(constant(secs(1)))
        .deadline(ms(2500))
        .clock(clock.shared())
        .build()
        .unwrap();
    assert_eq!(policy.deadline(), Some(ms(2500)));
    let mut calls = 0;
    let r: Result<(), &str> = policy.call(|| {
        calls += 1;
        Err("down")
    });
    assert_eq!(r, Err("down"), "the last error is returned");
    // Attempts at 0 s, 1 s and 2 s; a third sleep would end at 3 s, past 2.5 s.
    assert_eq!(calls, 3);
    assert_eq!(clock.sleeps(), [secs(1), secs(1)]);
    let gave_up = seen.lock().unwrap().last().cloned();
    assert_eq!(gave_up, Some(EventKind::GaveUp { attempts: 3, reason: GiveUpReason::Deadline }));
    assert_eq!(GiveUpReason::Deadline.as_str(), "deadline");
}

#[test]
fn max_elapsed_is_an_alias_of_the_deadline() {
    let policy = RetryPolicy::builder().max_elapsed(secs(4)).build().unwrap();
    assert_eq!((policy.deadline(), policy.max_elapsed()), (Some(secs(4)), Some(secs(4))));
    let err = RetryPolicy::builder().deadline(Duration::ZERO).build().unwrap_err();
    assert_eq!(err.field(), "deadline");
}

// ----- the layers below it -------------------------------------------------------------

#[test]
fn a_blocking_limiter_wait_past_the_deadline_is_refused_at_once() {
    let clock = ManualClock::new();
    // One permit per 10 s; the limiter itself would wait up to 30 s.
    let config = RateLimitConfig::builder().per_minute(6).burst(1).max_wait(secs(30)).build();
    let limiter =
        Arc::new(RateLimiter::with_clock("deadline-limiter-sync", config.unwrap(), clock.shared()));
    let policy = RetryPolicy::builder()
        .max_attempts(3)
        .backoff(constant(ms(100)))
        .deadline(secs(3))
        .clock(clock.shared())
        .build()
        .unwrap();
    let pipeline = Pipeline::new().with_retry(policy).with_rate_limiter(limiter.clone());
    assert_eq!(pipeline.call_with(&DefaultHooks, || Ok::<_, Error>(1)), Ok(1));
    let r: Result<u32, Error> = pipeline.call_with(&DefaultHooks, || Ok(2));
    // The next permit is 10 s away, past the 3 s deadline: refused without sleeping, and
    // the retry does not wait 10 s either.
    assert!(
        matches!(r, Err(Error::RateLimited { retry_after, .. }) if retry_after == secs(10)),
        "{r:?}"
    );
    assert_eq!(clock.sleeps(), Vec::<Duration>::new());
    assert_eq!(limiter.stats().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn an_async_limiter_waits_within_the_deadline_and_refuses_past_it() {
    let config = RateLimitConfig::builder().per_second(1).burst(1).max_wait(secs(30)).build();
    let limiter = Arc::new(RateLimiter::new("deadline-limiter-async", config.unwrap()));
    let pipeline =
        Pipeline::new().with_rate_limiter(limiter.clone()).with_deadline(ms(2500)).unwrap();
    let start = Instant::now();
    let call = || pipeline.call_async_with(&DefaultHooks, || async { Ok::<_, Error>(()) });
    assert_eq!(call().await, Ok(()));
    // 1 s away: within the deadline, waited for.
    assert_eq!(call().await, Ok(()));
    assert_eq!(start.elapsed(), secs(1));
    // Three callers at once: 1 s and 2 s away are waited for; 3 s is past 2.5 s.
    let (a, b, c) = tokio::join!(call(), call(), call());
    assert_eq!((a, b), (Ok(()), Ok(())));
    assert!(
        matches!(c, Err(Error::RateLimited { retry_after, .. }) if retry_after == secs(3)),
        "{c:?}"
    );
    assert_eq!(start.elapsed(), secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_wait_is_cut_to_the_deadline() {
    let config = BulkheadConfig::builder().max_concurrent(1).max_wait(secs(10)).build().unwrap();
    let bulkhead = Arc::new(Bulkhead::new("deadline-bulkhead", config));
    let held = bulkhead.try_acquire().unwrap();
    let pipeline = Pipeline::new().with_bulkhead(bulkhead.clone()).with_deadline(secs(2)).unwrap();
    let start = Instant::now();
    let r: Result<(), Error> = pipeline.call_async_with(&DefaultHooks, || async { Ok(()) }).await;
    assert!(matches!(r, Err(Error::BulkheadFull { .. })), "{r:?}");
    assert_eq!(start.elapsed(), secs(2), "not the bulkhead's own 10 s");
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_each_attempts_timeout_to_the_time_left() {
    let policy = RetryPolicy::builder().max_attempts(10).backoff(constant(secs(1))).build();
    let pipeline = Pipeline::new()
        .with_retry(policy.unwrap())
        .with_timeout(secs(30))
        .with_deadline(ms(4500))
        .unwrap();
    assert_eq!(pipeline.deadline(), Some(ms(4500)));
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let r: Result<(), Error> = pipeline
        .call_async_with(&DefaultHooks, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                // The first attempt fails fast, the second hangs.
                if n > 0 {
                    tokio::time::sleep(secs(3600)).await;
                }
                Err(Error::timeout(secs(0)))
            }
        })
        .await;
    // Attempt 1 at 0 s, a 1 s sleep, attempt 2 cut at 4.5 s instead of 31 s; no time left
    // for another sleep.
    assert!(matches!(r, Err(Error::Timeout { limit, .. }) if limit == ms(3500)), "{r:?}");
    assert_eq!(start.elapsed(), ms(4500));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

// ----- attributes ----------------------------------------------------------------------

#[retry(max_attempts = 10, backoff = constant, initial_delay = 1s, jitter = none, deadline = 2500ms)]
async fn retried_within(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[tokio::test(start_paused = true)]
async fn retry_attribute_takes_a_deadline() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    assert_eq!(retried_within(&calls).await, Err(AppError::Down));
    assert_eq!((calls.load(Ordering::SeqCst), start.elapsed()), (3, secs(2)));
}

#[resilient(deadline = 3s, timeout(30s))]
async fn hangs_within(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(secs(3600)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn resilient_deadline_without_retry_runs_one_attempt_within_it() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let r = hangs_within(&calls).await;
    assert!(matches!(r, Err(AppError::Resilience(Error::Timeout { .. }))), "{r:?}");
    assert_eq!((calls.load(Ordering::SeqCst), start.elapsed()), (1, secs(3)));
}

#[resilient(preset = "api", deadline = 10s)]
async fn api_within(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(secs(3600)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn resilient_deadline_refines_the_presets_and_cuts_its_timeout() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let r = api_within(&calls).await;
    // The preset's 30 s timeout is cut to the 10 s deadline; no time is left to retry.
    assert!(matches!(r, Err(AppError::Resilience(Error::Timeout { .. }))), "{r:?}");
    assert_eq!((calls.load(Ordering::SeqCst), start.elapsed()), (1, secs(10)));
}

#[resilient(deadline = 3s, rate_limit(per_minute = 6, burst = 1, max_wait = 30s))]
fn blocking_limited() -> Result<u32, AppError> {
    Ok(1)
}

#[test]
fn a_blocking_call_site_refuses_a_limiter_wait_past_its_deadline() {
    assert_eq!(blocking_limited(), Ok(1));
    // The next permit is 10 s away: the limiter would wait (max_wait 30 s), the deadline
    // of 3 s refuses at once, without sleeping.
    let r = blocking_limited();
    assert!(
        matches!(&r, Err(AppError::Resilience(Error::RateLimited { retry_after, .. })) if *retry_after > secs(9)),
        "{r:?}"
    );
    let name = concat!(module_path!(), "::blocking_limited");
    let stats = registry().rate_limiters().stats(name).expect("the call site's limiter");
    assert_eq!((stats.granted, stats.waited, stats.rejected), (1, 0, 1));
}

// ----- config files --------------------------------------------------------------------

#[test]
fn toml_takes_a_deadline_per_name_and_in_the_retry_table() {
    let r = Registry::new();
    r.load_toml(
        "[orders]\nbase = \"api\"\ndeadline = \"25s\"\n\n[stock.retry]\nmax_attempts = 4\ndeadline = \"8s\"\n\n[old.retry]\nmax_elapsed = \"6s\"\n\n[plain]\ndeadline = \"2s\"\n",
    )
    .unwrap();
    let deadline = |name: &str| r.preset(name).and_then(|c| c.deadline());
    assert_eq!(deadline("orders"), Some(secs(25)));
    assert_eq!(deadline("stock"), Some(secs(8)));
    assert_eq!(deadline("old"), Some(secs(6)), "max_elapsed is an alias");
    assert_eq!(r.preset("plain").and_then(|c| c.retry).map(|p| p.max_attempts()), Some(1));
    let err = r.load_toml("[x]\ndeadline = \"0s\"").unwrap_err();
    assert_eq!(err.field(), "x.deadline");
}

#[test]
fn every_preset_sets_a_deadline_that_fits_its_timeout_and_max_wait() {
    for p in Preset::ALL {
        let c = p.config();
        let deadline = c.deadline().unwrap_or_else(|| panic!("{p}: no deadline"));
        assert!(c.timeout.is_some_and(|t| t <= deadline), "{p}");
        assert!(c.rate_limit.as_ref().is_some_and(|l| l.max_wait() <= deadline), "{p}");
    }
}

// ----- retry budgets per name ------------------------------------------------------------

/// Fails every time: the dependency of `api_a` is down.
#[retry(preset = "api", initial_delay = 1ms, max_delay = 1ms, jitter = none)]
async fn api_a(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

/// Fails once, then succeeds: `api_b`'s dependency is healthy but flaky.
#[retry(preset = "api", initial_delay = 1ms, max_delay = 1ms, jitter = none)]
async fn api_b(calls: &AtomicU32) -> Result<u32, AppError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n % 2 == 1 { Err(AppError::Down) } else { Ok(n) }
}

#[tokio::test(start_paused = true)]
async fn two_call_sites_with_the_same_preset_have_separate_budgets() {
    let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
    for _ in 0..200 {
        assert_eq!(api_a(&a).await, Err(AppError::Down));
    }
    let name_a = concat!(module_path!(), "::api_a");
    let stats_a = registry().retry_budgets().stats(name_a).expect("api_a's own budget");
    assert!(stats_a.exhausted > 0, "api_a spent its budget: {stats_a:?}");
    // `api_b` still retries: its budget is its own.
    assert_eq!(api_b(&b).await, Ok(2));
    let name_b = concat!(module_path!(), "::api_b");
    let stats_b = registry().retry_budgets().stats(name_b).expect("api_b's own budget");
    assert_eq!((stats_b.calls, stats_b.retries, stats_b.exhausted), (1, 1, 0));
    assert!(registry().retry_budgets().stats("api").is_none(), "no budget named after the preset");
}

#[retry(preset = "api", budget = "deadline-tests-shared", initial_delay = 1ms, max_delay = 1ms, jitter = none)]
async fn shared_a(calls: &AtomicU32) -> Result<u32, AppError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Err(AppError::Down)
}

#[resilient(preset = "api", budget = "deadline-tests-shared", retry(initial_delay = 1ms, jitter = none))]
async fn shared_b(calls: &AtomicU32) -> Result<u32, AppError> {
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n % 2 == 1 { Err(AppError::Down) } else { Ok(n) }
}

#[tokio::test(start_paused = true)]
async fn an_explicit_budget_is_shared_by_the_call_sites_naming_it() {
    let (a, b) = (AtomicU32::new(0), AtomicU32::new(0));
    for _ in 0..200 {
        assert_eq!(shared_a(&a).await, Err(AppError::Down));
    }
    // `shared_b` draws on the budget `shared_a` spent: its retry is refused.
    assert_eq!(shared_b(&b).await, Err(AppError::Down));
    assert_eq!(b.load(Ordering::SeqCst), 1);
    let stats = registry().retry_budgets().stats("deadline-tests-shared").expect("shared");
    assert_eq!(stats.calls, 201, "both call sites deposit in it");
}

#[test]
fn pipelines_from_one_preset_have_a_budget_per_name_unless_one_is_named() {
    let api = Preset::Api.config();
    assert_eq!(api.retry_budget, Some(BudgetScope::Instance));
    let _a = Pipeline::from_config("deadline-tests-pipe-a", &api).unwrap();
    let _b = Pipeline::from_config("deadline-tests-pipe-b", &api).unwrap();
    let budgets = registry().retry_budgets();
    assert!(budgets.stats("deadline-tests-pipe-a").is_some());
    assert!(budgets.stats("deadline-tests-pipe-b").is_some());

    let shared: ResilienceConfig = api.with_retry_budget("deadline-tests-pipe-shared");
    let _c = Pipeline::from_config("deadline-tests-pipe-c", &shared).unwrap();
    let _d = Pipeline::from_config("deadline-tests-pipe-d", &shared).unwrap();
    assert!(budgets.stats("deadline-tests-pipe-shared").is_some());
    assert!(budgets.stats("deadline-tests-pipe-c").is_none());
    assert!(budgets.stats("deadline-tests-pipe-d").is_none());
}
