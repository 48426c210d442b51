//! The Redis backend in one process: shared buckets and circuits between instances that
//! each have their own connections (as separate processes would), the policies, the
//! attributes and the TOML keys. Every test uses names of its own on one server.
//!
//! Time: Redis's clock runs in real time, so these tests use limits whose periods are
//! long (a minute per permit) and assert what Redis decided, never how long anything
//! took; sleeps of blocking waits land on a `ManualClock`, which records them.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig, Window};
use resilience::clock::{Clock, ManualClock};
use resilience::rate_limit::{KeyedRateLimiter, OnLimit, RateLimitConfig, RateLimiter};
use resilience::redis::{RedisBackend, RedisConfig, SharedState};
use resilience::{Backend, Error, FailMode};
use resilience_tests::redis_scenarios as scenarios;
use resilience_tests::redis_server::{RedisServer, unique_prefix};

/// The server of this test binary, and the prefix its process-wide backend uses.
fn server() -> Option<&'static (RedisServer, String)> {
    static SERVER: OnceLock<Option<(RedisServer, String)>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let server = RedisServer::shared()?;
            let prefix = unique_prefix("backend");
            let config = RedisConfig::builder(server.url())
                .key_prefix(prefix.clone())
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_else(|e| unreachable!("{e}"));
            resilience::redis::configure(config).unwrap_or_else(|e| unreachable!("{e}"));
            Some((server, prefix))
        })
        .as_ref()
}

/// A backend of its own on the test server (as another process would have).
fn backend() -> Option<Arc<RedisBackend>> {
    let (server, prefix) = server()?;
    let config = RedisConfig::builder(server.url())
        .key_prefix(prefix.clone())
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    RedisBackend::new(config).ok().map(Arc::new)
}

fn admin() -> Option<redis::Connection> {
    let (server, _) = server()?;
    redis::Client::open(server.url()).ok()?.get_connection().ok()
}

fn limit(per_minute: u32, burst: u32, on: OnLimit, fail: FailMode) -> RateLimitConfig {
    let b = RateLimitConfig::builder()
        .per_minute(per_minute)
        .burst(burst)
        .on_limit(on)
        .backend(Backend::Redis(fail));
    let b = if on == OnLimit::Queue { b.max_queue(1) } else { b };
    b.build().unwrap_or_else(|e| unreachable!("{e}"))
}

/// `config` accepting waits of up to a minute (one slot at 1/min), longer than the
/// default bound: for tests whose point is the reservation, not the bound.
fn waiting_a_minute(config: RateLimitConfig) -> RateLimitConfig {
    let b = config.to_builder().max_wait(Duration::from_secs(60));
    b.build().unwrap_or_else(|e| unreachable!("{e}"))
}

fn shared_limiter(name: &str, config: RateLimitConfig, backend: Arc<RedisBackend>) -> RateLimiter {
    RateLimiter::with_redis(name, config, backend).unwrap_or_else(|e| panic!("{e}"))
}

fn shared_breaker(
    name: &str,
    config: CircuitBreakerConfig,
    backend: Arc<RedisBackend>,
) -> CircuitBreaker {
    CircuitBreaker::with_redis(name, config, backend).unwrap_or_else(|e| panic!("{e}"))
}

fn retry_after(r: &Result<(), Error>) -> Option<Duration> {
    match r {
        Err(Error::RateLimited { retry_after, .. }) => Some(*retry_after),
        _ => None,
    }
}

/// A backend on the test server for a shared scenario (`resilience_tests::redis_scenarios`);
/// see [`need_redis`].
fn need_backend() -> Arc<RedisBackend> {
    backend().unwrap_or_else(|| panic!("no Redis backend: see the output above"))
}

/// Backends on the test server. The build ignores these tests when no Redis is
/// available, so one that runs and finds none fails.
macro_rules! need_redis {
    ($($b:ident),*) => {
        $(let $b = backend().unwrap_or_else(|| panic!("no Redis backend: see the output above"));)*
    };
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn two_instances_share_one_bucket() {
    scenarios::two_instances_share_one_bucket(&need_backend);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn wait_reserves_the_next_shared_slot_and_sleeps_on_the_limiter_clock() {
    need_redis!(other);
    let clock = ManualClock::new();
    let config = waiting_a_minute(limit(1, 2, OnLimit::Wait, FailMode::Closed));
    // The process-wide backend, configured from `server()`.
    let waiting = RateLimiter::with_clock("wait-slot", config.clone(), clock.shared());
    assert_eq!(waiting.acquire(1), Ok(()));
    assert_eq!(waiting.acquire(1), Ok(()));
    assert_eq!(waiting.acquire(1), Ok(()), "waits for the next slot instead of failing");
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 1, "{sleeps:?}");
    assert!(
        sleeps[0] > Duration::from_secs(55) && sleeps[0] <= Duration::from_secs(60),
        "{sleeps:?}"
    );
    assert_eq!(waiting.stats().waited, 1);
    // The reservation is in Redis: another instance sees the slot taken, the next free one
    // two periods away.
    let rejecting =
        shared_limiter("wait-slot", limit(1, 2, OnLimit::Reject, FailMode::Closed), other);
    let r = rejecting.try_acquire(1);
    assert!(retry_after(&r).is_some_and(|w| w > Duration::from_secs(115)), "{r:?}");
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn max_wait_refuses_a_slot_further_away() {
    need_redis!(a);
    let config = RateLimitConfig::builder()
        .per_minute(1)
        .burst(1)
        .max_wait(Duration::from_secs(30))
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let clock = ManualClock::new();
    let l = RateLimiter::with_clock("max-wait", config, clock.shared());
    drop(a);
    assert_eq!(l.acquire(1), Ok(()));
    let r = l.acquire(1);
    assert!(retry_after(&r).is_some(), "{r:?}");
    assert!(clock.sleeps().is_empty(), "nothing reserved, nothing slept");
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_shared_limiter_refuses_a_slot_past_the_deadline_of_the_call() {
    use resilience::Pipeline;
    use resilience::retry::{DefaultHooks, RetryPolicy};
    need_redis!(a);
    // One slot per 10 s: within the limiter's own 30 s bound, past the call's 3 s deadline.
    let config = RateLimitConfig::builder()
        .per_minute(6)
        .burst(1)
        .max_wait(Duration::from_secs(30))
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let clock = ManualClock::new();
    let l = Arc::new(RateLimiter::with_clock("deadline-shared", config, clock.shared()));
    drop(a);
    let policy = RetryPolicy::builder()
        .max_attempts(1)
        .deadline(Duration::from_secs(3))
        .clock(clock.shared())
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let pipeline = Pipeline::new().with_retry(policy).with_rate_limiter(l);
    assert_eq!(pipeline.call_with(&DefaultHooks, || Ok::<_, Error>(())), Ok(()));
    let r: Result<(), Error> = pipeline.call_with(&DefaultHooks, || Ok(()));
    assert!(retry_after(&r).is_some_and(|w| w > Duration::from_secs(3)), "{r:?}");
    assert!(clock.sleeps().is_empty(), "refused at once, nothing reserved or slept");
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn queue_reserves_like_wait() {
    need_redis!(a);
    let clock = ManualClock::new();
    let l = RateLimiter::with_clock(
        "queue",
        waiting_a_minute(limit(1, 1, OnLimit::Queue, FailMode::Closed)),
        clock.shared(),
    );
    drop(a);
    assert_eq!(l.acquire(1), Ok(()));
    assert_eq!(l.acquire(1), Ok(()));
    assert_eq!(clock.sleeps().len(), 1);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_default_shared_limiter_refuses_a_slot_past_the_default_bound_at_once() {
    need_redis!(a);
    let clock = ManualClock::new();
    let config = limit(1, 1, OnLimit::Wait, FailMode::Closed);
    assert_eq!(config.max_wait(), Duration::from_secs(10));
    let l = RateLimiter::with_clock("default-bound", config, clock.shared());
    drop(a);
    assert_eq!(l.acquire(1), Ok(()));
    // The next slot is about a minute away in Redis: refused, nothing reserved or slept.
    let r = l.acquire(1);
    assert!(retry_after(&r).is_some_and(|w| w > Duration::from_secs(55)), "{r:?}");
    assert!(clock.sleeps().is_empty(), "{:?}", clock.sleeps());
    assert_eq!(clock.now(), Duration::ZERO);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn queue_limits_waiters_not_callers_with_permits_available() {
    need_redis!(a);
    let config = RateLimitConfig::builder()
        .per_second(10_000)
        .burst(10_000)
        .on_limit(OnLimit::Queue)
        .max_queue(1)
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let l = Arc::new(shared_limiter("queue-callers", config, a));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let l = Arc::clone(&l);
            std::thread::spawn(move || (0..50).filter(|_| l.acquire(1).is_ok()).count())
        })
        .collect();
    let granted: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    assert_eq!(granted, 400, "eight callers at once, none waiting: all granted");
    assert_eq!(l.stats().waiting, 0);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[tokio::test]
async fn a_cancelled_async_acquire_leaves_no_waiter_behind() {
    use futures::FutureExt;
    need_redis!(a);
    let l = shared_limiter("queue-cancel", limit(1, 10, OnLimit::Queue, FailMode::Closed), a);
    for _ in 0..3 {
        // Dropped while its round trip is in flight.
        assert_eq!(l.acquire_async(1).now_or_never(), None);
    }
    assert_eq!(l.stats().waiting, 0);
    assert_eq!(l.acquire_async(1).await, Ok(()), "max_queue = 1 is not used up");
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn cost_takes_several_permits_and_a_cost_above_the_burst_never_reaches_redis() {
    need_redis!(a);
    let mut admin = admin().unwrap_or_else(|| panic!("no Redis connection"));
    let (_, prefix) = server().unwrap_or_else(|| unreachable!());
    let l = shared_limiter("cost", limit(1, 10, OnLimit::Reject, FailMode::Closed), a);
    let too_much = l.try_acquire(11);
    assert!(matches!(&too_much, Err(Error::Config(e)) if e.field() == "cost"), "{too_much:?}");
    let key = format!("{{{prefix}:rl:cost}}");
    let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut admin).unwrap_or(true);
    assert!(!exists, "a refused cost wrote nothing");
    assert_eq!(l.try_acquire(7), Ok(()));
    assert!(retry_after(&l.try_acquire(4)).is_some());
    assert_eq!(l.try_acquire(3), Ok(()));
    assert_eq!(l.try_acquire(0), Ok(()), "a zero cost is always granted");
    let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut admin).unwrap_or(false);
    assert!(exists, "the bucket lives at {key}");
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn keyed_buckets_are_shared_per_key() {
    scenarios::keyed_buckets_are_shared_per_key(&need_backend);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn async_acquire_shares_the_bucket_and_its_future_is_send() {
    scenarios::async_acquire_shares_the_bucket(&need_backend);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let keyed: KeyedRateLimiter<String> =
        KeyedRateLimiter::new("async-keyed", limit(1, 1, OnLimit::Reject, FailMode::Closed));
    let k = "shop".to_owned();
    let spawned = runtime
        .block_on(async { tokio::spawn(async move { keyed.acquire_async(&k, 1).await }).await });
    assert_eq!(spawned.ok(), Some(Ok(())));
}

fn circuit(threshold: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig::builder()
        .failure_threshold(threshold)
        .recovery_timeout(Duration::from_secs(600))
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"))
}

fn fail(b: &CircuitBreaker) -> Result<(), Error> {
    b.call(|| Err(Error::timeout(Duration::from_secs(1))))
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn failures_in_two_instances_add_up_and_open_the_circuit_for_both() {
    scenarios::failures_in_two_instances_add_up_and_open_the_circuit(&need_backend);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_success_ends_the_shared_run_of_failures() {
    need_redis!(a, b);
    let ba = shared_breaker("run-ends", circuit(3), a);
    let bb = shared_breaker("run-ends", circuit(3), b);
    assert!(fail(&ba).is_err());
    assert!(fail(&ba).is_err());
    assert_eq!(bb.call(|| Ok::<_, Error>(())), Ok(()));
    assert!(fail(&ba).is_err());
    assert!(fail(&ba).is_err());
    assert_eq!(ba.shared_state(), Ok(Some(SharedState::Closed)));
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_failure_rate_over_a_shared_count_window_opens_the_circuit() {
    scenarios::a_failure_rate_over_a_count_window_opens_the_circuit(&need_backend);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_failure_rate_over_a_shared_time_window_opens_the_circuit() {
    scenarios::a_failure_rate_over_a_time_window_opens_the_circuit(&need_backend);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn half_open_probes_close_or_reopen_the_shared_circuit() {
    scenarios::half_open_probes_close_or_reopen_the_circuit(&need_backend);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn one_shared_probe_at_a_time() {
    need_redis!(a, b);
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(1)
        .recovery_timeout(Duration::from_millis(1))
        .success_threshold(1)
        .half_open_max_calls(1)
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let ba = shared_breaker("one-probe", config.clone(), a);
    let bb = shared_breaker("one-probe", config, b);
    assert!(fail(&ba).is_err());
    let mut admitted = 0;
    let mut other_while_probing = None;
    for _ in 0..100_000 {
        // While `ba`'s probe runs, `bb` finds the one slot taken.
        let r = ba.call(|| {
            admitted += 1;
            other_while_probing = Some(bb.call(|| Ok::<_, Error>(())));
            Ok::<_, Error>(())
        });
        if r.is_ok() {
            break;
        }
    }
    assert_eq!(admitted, 1);
    assert!(
        matches!(other_while_probing, Some(Err(Error::CircuitOpen { .. }))),
        "{other_while_probing:?}"
    );
    assert_eq!(bb.shared_state(), Ok(Some(SharedState::Closed)), "the probe closed it");
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_count_window_that_expired_forgets_its_failures() {
    need_redis!(a);
    let mut admin = admin().unwrap_or_else(|| panic!("no Redis connection"));
    let (_, prefix) = server().unwrap_or_else(|| unreachable!());
    let config = CircuitBreakerConfig::builder()
        .failure_rate(0.5)
        .window(Window::calls(4))
        .min_calls(4)
        .recovery_timeout(Duration::from_secs(600))
        .backend(Backend::Redis(FailMode::Closed))
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    let shared = shared_breaker("window-expiry", config, a);
    assert!(fail(&shared).is_err());
    assert!(fail(&shared).is_err());
    assert_eq!(shared.call(|| Ok::<_, Error>(())), Ok(()));
    // What the window's expiry does after a quiet spell.
    let () = redis::cmd("DEL")
        .arg(format!("{{{prefix}:cb:window-expiry}}:window"))
        .query(&mut admin)
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..3 {
        assert_eq!(shared.call(|| Ok::<_, Error>(())), Ok(()));
    }
    assert!(fail(&shared).is_err());
    assert_eq!(shared.shared_state(), Ok(Some(SharedState::Closed)), "1 failure in 4");
}

#[test]
fn shared_configs_refuse_what_redis_cannot_keep() {
    let fast = RateLimitConfig::builder()
        .per_second(20_000)
        .backend(Backend::Redis(FailMode::Open))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let backend = |lease| {
        let config = RedisConfig::builder("redis://127.0.0.1:1").lease(lease).build();
        Arc::new(
            RedisBackend::new(config.unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}")),
        )
    };
    // Exact mode keeps whole microseconds in Redis: the store refuses a faster limiter.
    let too_fast = RateLimiter::with_redis("too-fast", fast.clone(), backend(Duration::ZERO));
    assert!(too_fast.is_err_and(|e| e.field() == "rate" && e.message().contains("10 000")));
    assert!(RateLimitConfig::builder().per_second(20_000).build().is_ok(), "fine in process");
    // A leased share has no such cap.
    let leased = RateLimiter::with_redis("leased", fast, backend(Duration::from_secs(1)));
    assert!(leased.is_ok(), "{leased:?}");
    let many_buckets = CircuitBreakerConfig::builder()
        .failure_rate(0.5)
        .window(Window::Time { duration: Duration::from_secs(60), buckets: 60 })
        .backend(Backend::Redis(FailMode::Open))
        .build();
    assert!(many_buckets.is_err_and(|e| e.field() == "window"));
}

#[test]
fn debug_output_hides_the_redis_password() {
    let config = RedisConfig::builder("redis://app:hunter2@127.0.0.1:6379/0")
        .build()
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert!(!format!("{config:?}").contains("hunter2"));
    let backend = RedisBackend::new(config).unwrap_or_else(|e| unreachable!("{e}"));
    assert!(!format!("{backend:?}").contains("hunter2"));
    let bad = RedisConfig::builder("redis://app:hunter2@host:notaport").build();
    assert!(bad.is_err_and(|e| !e.to_string().contains("hunter2")));
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[tokio::test]
async fn async_calls_share_the_circuit() {
    need_redis!(a, b);
    let ba = Arc::new(shared_breaker("async-circuit", circuit(2), a));
    let bb = shared_breaker("async-circuit", circuit(2), b);
    let spawned = tokio::spawn({
        let ba = Arc::clone(&ba);
        async move {
            for _ in 0..2 {
                let r = ba
                    .call_async(|| async { Err::<(), _>(Error::timeout(Duration::from_secs(1))) })
                    .await;
                assert!(matches!(r, Err(Error::Timeout { .. })));
            }
        }
    });
    assert!(spawned.await.is_ok());
    let r = bb.call_async(|| async { Ok::<_, Error>(()) }).await;
    assert!(matches!(r, Err(Error::CircuitOpen { .. })), "{r:?}");
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn an_operator_disabled_breaker_lets_calls_through_an_open_shared_circuit() {
    need_redis!(a, b);
    let ba = shared_breaker("disabled", circuit(1), a);
    let bb = shared_breaker("disabled", circuit(1), b);
    assert!(fail(&ba).is_err());
    assert!(matches!(bb.call(|| Ok::<_, Error>(())), Err(Error::CircuitOpen { .. })));
    bb.disable();
    assert_eq!(bb.call(|| Ok::<_, Error>(7)), Ok(7));
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn reset_shared_closes_the_redis_circuit_for_every_instance() {
    scenarios::reset_shared_closes_the_circuit_for_every_instance(&need_backend);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_pause_on_one_shared_limiter_holds_back_the_others() {
    scenarios::a_pause_on_one_limiter_holds_back_the_others(&need_backend);
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_header_resync_lowers_the_shared_bucket_for_every_limiter() {
    need_redis!(a, b);
    let config = limit(1, 5, OnLimit::Reject, FailMode::Closed);
    let la = shared_limiter("shared-resync", config.clone(), a);
    let lb = shared_limiter("shared-resync", config, b);
    let report = la.sync_from_headers([("RateLimit-Remaining", "1")]);
    assert_eq!(report.remaining, Some(1));
    assert_eq!(lb.try_acquire(1), Ok(()));
    let r = lb.try_acquire(1);
    assert!(retry_after(&r).is_some(), "one of five left after the re-sync: {r:?}");
}

// ----- attributes and config ---------------------------------------------------------

#[derive(Debug, PartialEq)]
enum ShopError {
    Resilience(Error),
}

impl From<Error> for ShopError {
    fn from(e: Error) -> Self {
        ShopError::Resilience(e)
    }
}

#[resilience::rate_limit(name = "attr-shop", per_minute = 1, burst = 2, on_limit = reject, backend = "redis", fail_mode = "closed")]
fn page(n: u32) -> Result<u32, ShopError> {
    Ok(n)
}

#[resilience::rate_limit(name = "attr-shop", per_minute = 1, burst = 2, on_limit = reject, backend = redis, fail_mode = closed)]
async fn page_async(n: u32) -> Result<u32, ShopError> {
    Ok(n)
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[tokio::test]
async fn attributes_with_backend_redis_share_the_named_limit() {
    need_redis!(_a);
    assert_eq!(page(1), Ok(1));
    assert_eq!(page_async(2).await, Ok(2));
    // Same name, same bucket: the two functions spent it together.
    assert!(matches!(page_async(3).await, Err(ShopError::Resilience(Error::RateLimited { .. }))));
    assert!(matches!(page(4), Err(ShopError::Resilience(Error::RateLimited { .. }))));
    let limiter = resilience::registry().rate_limiters().get("attr-shop");
    assert_eq!(limiter.map(|l| l.config().backend()), Some(Backend::Redis(FailMode::Closed)));
}

#[resilience::circuit_breaker(name = "attr-db", failure_threshold = 2, recovery_timeout = 10m, backend = "redis")]
fn query(fail: bool) -> Result<u32, ShopError> {
    if fail { Err(ShopError::Resilience(Error::timeout(Duration::from_secs(1)))) } else { Ok(1) }
}

#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn a_circuit_breaker_attribute_with_backend_redis_is_shared() {
    need_redis!(other);
    assert!(query(true).is_err());
    let remote = shared_breaker("attr-db", circuit(2), other);
    assert!(fail(&remote).is_err());
    assert!(matches!(query(false), Err(ShopError::Resilience(Error::CircuitOpen { .. }))));
}

#[test]
fn toml_sets_the_backend_and_refuses_a_fail_mode_without_it() {
    let registry = resilience::registry::Registry::new();
    let ok = registry.load_toml(
        "[orders.rate_limit]\nper_second = 5\nbackend = \"redis\"\nfail_mode = \"closed\"\n\
         [orders.circuit_breaker]\nbackend = \"redis\"\n[local.rate_limit]\nper_second = 1\nbackend = \"local\"\n",
    );
    assert_eq!(ok, Ok(()));
    let orders = registry.preset("orders").unwrap_or_else(|| unreachable!());
    assert_eq!(orders.rate_limit.map(|c| c.backend()), Some(Backend::Redis(FailMode::Closed)));
    assert_eq!(orders.circuit_breaker.map(|c| c.backend()), Some(Backend::Redis(FailMode::Open)));

    let err =
        |text: &str| registry.load_toml(text).err().map(|e| e.to_string()).unwrap_or_default();
    let e = err("[x.rate_limit]\nper_second = 1\nfail_mode = \"closed\"");
    assert!(e.contains("x.rate_limit.fail_mode") && e.contains("backend = \"redis\""), "{e}");
    let e = err("[x.circuit_breaker]\nbackend = \"memcached\"");
    assert!(e.contains("x.circuit_breaker.backend") && e.contains("\"local\" or \"redis\""), "{e}");
    let e = err("[x.rate_limit]\nper_second = 1\nbackend = \"redis\"\nfail_mode = \"sometimes\"");
    assert!(e.contains("x.rate_limit.fail_mode") && e.contains("\"open\" or \"closed\""), "{e}");
    let e = err("[redis]\nurl = \"http://example.com\"");
    assert!(e.contains("redis.url"), "{e}");
    let e = err("[redis]\nurl = \"redis://127.0.0.1:1\"\ntimeout = \"0s\"");
    assert!(e.contains("redis.timeout"), "{e}");
}

#[test]
fn redis_config_refuses_bad_values() {
    let e = |b: resilience::redis::RedisConfigBuilder| {
        b.build().err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(e(RedisConfig::builder("not a url")).contains("redis.url"));
    assert!(
        e(RedisConfig::builder("redis://h:1").timeout(Duration::ZERO)).contains("redis.timeout")
    );
    assert!(
        e(RedisConfig::builder("redis://h:1").retry_interval(Duration::from_secs(7200)))
            .contains("redis.retry_interval")
    );
    assert!(e(RedisConfig::builder("redis://h:1").key_prefix("")).contains("redis.key_prefix"));
}

/// The scenarios the Cluster and TLS variants run (`tests/redis_variants.rs`), here on one
/// server through the config and through the caller's own client and connection manager
/// (made on a runtime of its own that outlives the test's), alternately.
#[cfg_attr(resilience_no_redis, ignore = "needs redis-server on PATH or RESILIENCE_REDIS_URL")]
#[test]
fn the_redis_scenarios_pass_on_one_server_and_on_a_users_own_connection_manager() {
    let (server, _) = server().unwrap_or_else(|| panic!("no Redis: see the output above"));
    let config = RedisConfig::builder(server.url())
        .key_prefix(unique_prefix("scenarios"))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let client = redis::Client::open(server.url()).unwrap_or_else(|e| panic!("{e}"));
    let manager = runtime
        .block_on(redis::aio::ConnectionManager::new(client.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    scenarios::run_all_alternating(&config, &|config| {
        RedisBackend::from_connection_manager(config, client.clone(), manager.clone())
    });
}
