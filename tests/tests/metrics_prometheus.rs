//! The `metrics` feature end to end: the Prometheus exporter on a free loopback port,
//! calls driven through every layer, `/metrics` scraped over HTTP and parsed with
//! `prometheus-parse`, each value checked against what was driven and against
//! `registry().snapshot()`.
//!
//! One test in this binary: it installs the process-global recorder.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use prometheus_parse::{Scrape, Value};
use resilience::bulkhead::BulkheadConfig;
use resilience::circuit::{CircuitBreakerConfig, CircuitState};
use resilience::clock::ManualClock;
use resilience::fallback::Rejections;
use resilience::rate_limit::{OnLimit, RateLimitConfig};
use resilience::retry::{RetryBudgetConfig, RetryPolicy};
use resilience::{Error, Pipeline, circuit_breaker, fallback, registry, retry, timeout};

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

#[retry(max_attempts = 3, backoff = constant, initial_delay = 10ms, jitter = none)]
async fn flaky(calls: &AtomicU32) -> Result<u32, AppError> {
    match calls.fetch_add(1, Ordering::SeqCst) {
        0 | 1 => Err(AppError::Down),
        n => Ok(n),
    }
}

#[retry(max_attempts = 2, backoff = constant, initial_delay = 10ms, jitter = none)]
async fn always_down() -> Result<u32, AppError> {
    Err(AppError::Down)
}

#[timeout(50ms)]
async fn slow() -> Result<u32, AppError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(1)
}

#[circuit_breaker(name = "metrics-macro-circuit", failure_threshold = 1)]
fn guarded(fail: bool) -> Result<u32, AppError> {
    if fail { Err(AppError::Down) } else { Ok(1) }
}

fn stale(_fail: bool) -> Result<u32, AppError> {
    Ok(0)
}

#[fallback(stale, on = "any")]
#[circuit_breaker(name = "metrics-fallback-circuit", failure_threshold = 1, recovery_timeout = 3600s)]
fn answered(fail: bool) -> Result<u32, AppError> {
    if fail { Err(AppError::Down) } else { Ok(1) }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn scrape(port: u16) -> Scrape {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)));
    let sample = found.next()?;
    assert!(found.next().is_none(), "one sample of {metric} {labels:?}");
    Some(match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => {
            // The histogram's count: its `+Inf` bucket.
            buckets.iter().find(|b| b.less_than.is_infinite()).map(|b| b.count).unwrap()
        }
        Value::Summary(_) => panic!("{metric} rendered as a summary: buckets expected"),
    })
}

fn counter(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> u64 {
    let v = value(scrape, metric, labels).unwrap_or_else(|| panic!("no {metric} {labels:?}"));
    v as u64
}

#[test]
fn prometheus_scrape_shows_every_layer_as_driven_and_as_the_registry_counts() {
    let port = free_port();
    PrometheusBuilder::new()
        .with_http_listener(([127, 0, 0, 1], port))
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            resilience::metrics::DURATION_BUCKETS,
        )
        .unwrap()
        .install()
        .unwrap();
    resilience::metrics::install().forever();

    // Circuit breaker: 3 successes, 2 failures (it opens), 1 rejection.
    let config = CircuitBreakerConfig::builder().failure_threshold(2).build().unwrap();
    let circuit = registry().circuit_breakers().get_or_create("metrics-circuit", config).unwrap();
    for _ in 0..3 {
        let _ = circuit.call(|| Ok::<(), Error>(()));
    }
    for _ in 0..2 {
        let _ = circuit.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
    }
    assert!(circuit.call(|| Ok::<(), Error>(())).is_err(), "open: rejected");

    // Rate limiter: 2 granted at once, 1 rejected.
    let config = RateLimitConfig::builder()
        .per_second(1)
        .burst(2)
        .on_limit(OnLimit::Reject)
        .build()
        .unwrap();
    let limiter = registry().rate_limiters().get_or_create("metrics-limiter", config).unwrap();
    for _ in 0..3 {
        let _ = limiter.try_acquire(1);
    }

    // Bulkhead: one call in flight (held through the scrape), one rejected.
    let config =
        BulkheadConfig::builder().max_concurrent(1).max_wait(Duration::ZERO).build().unwrap();
    let bulkhead = registry().bulkheads().get_or_create("metrics-bulkhead", config).unwrap();
    let held = bulkhead.try_acquire().unwrap();
    assert!(bulkhead.try_acquire().is_err());

    // A retry budget refusing a retry.
    let clock = ManualClock::new();
    let config = RetryBudgetConfig::builder().ratio(0.1).min_retries_per_sec(0).build().unwrap();
    let budget = registry().retry_budgets().get_or_create("metrics-budget", config).unwrap();
    let policy = RetryPolicy::builder()
        .name("metrics-budgeted")
        .max_attempts(3)
        .budget(budget)
        .clock(clock.shared())
        .build()
        .unwrap();
    let _ = policy.call(|| Err::<(), _>("down"));

    // A circuit under the macros: one failure opens it, the next call is rejected.
    assert_eq!(guarded(true), Err(AppError::Down));
    assert!(matches!(guarded(false), Err(AppError::Resilience(Error::CircuitOpen { .. }))));

    // Fallbacks: under the macros, one success (not counted), the operation's failure
    // and the open circuit's rejection answered; a named pipeline's answers a rejection,
    // an unnamed one's is not counted.
    assert_eq!(answered(false), Ok(1));
    assert_eq!(answered(true), Ok(0), "the failure answered");
    assert_eq!(answered(false), Ok(0), "the open circuit answered");
    let config = CircuitBreakerConfig::builder().failure_threshold(1).build().unwrap();
    let open =
        registry().circuit_breakers().get_or_create("metrics-fallback-pipeline", config).unwrap();
    open.force_open();
    let pipeline = Pipeline::new().with_circuit_breaker(open).named("metrics-fallback-pipeline");
    let cached = pipeline.fallback(Rejections, |_: Error| Ok(0));
    assert_eq!(cached.call(|| Ok::<u32, Error>(1)), Ok(0));
    assert_eq!(cached.call(|| Ok::<u32, Error>(1)), Ok(0));
    let unnamed = Pipeline::new().with_circuit_breaker(
        registry().circuit_breakers().get("metrics-fallback-pipeline").unwrap(),
    );
    assert_eq!(unnamed.fallback(Rejections, |_: Error| Ok(0)).call(|| Ok::<u32, Error>(1)), Ok(0));

    // Async layers on tokio's paused clock: retries, a limiter wait, a timeout.
    let config =
        RateLimitConfig::builder().per_second(10).burst(1).on_limit(OnLimit::Wait).build().unwrap();
    let waiting = registry().rate_limiters().get_or_create("metrics-waiting", config).unwrap();
    let config = BulkheadConfig::builder()
        .adaptive(resilience::bulkhead::LimitAlgorithm::Aimd)
        .initial_limit(8)
        .build()
        .unwrap();
    let adaptive = registry().bulkheads().get_or_create("metrics-adaptive", config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let calls = AtomicU32::new(0);
        assert_eq!(flaky(&calls).await, Ok(2), "third attempt");
        assert_eq!(flaky(&calls).await, Ok(3), "first attempt");
        assert_eq!(always_down().await, Err(AppError::Down));
        assert!(matches!(slow().await, Err(AppError::Resilience(Error::Timeout { .. }))));
        waiting.acquire_async(1).await.unwrap();
        waiting.acquire_async(1).await.unwrap();
        // An adaptive bulkhead: eight 10 ms calls at its limit of 8 raise it to 9.
        let calls = (0..8).map(|_| {
            adaptive.call_async(|| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<_, Error>(())
            })
        });
        assert!(futures::future::join_all(calls).await.iter().all(Result::is_ok));
    });

    // An adaptive throttle: one accepted call, one failed, one forced rejection.
    let config = resilience::circuit::CircuitBreakerConfig::builder()
        .adaptive_throttle(resilience::circuit::ThrottleConfig::default())
        .build()
        .unwrap();
    let circuit = registry().resolve_circuit("metrics-throttle", || Ok(config)).unwrap();
    let throttle = circuit.throttle().unwrap();
    let _ = throttle.call(|| Ok::<_, Error>(()));
    let _ = throttle.call(|| Err::<(), _>(Error::timeout(Duration::ZERO)));
    throttle.force_open();
    assert!(throttle.call(|| Ok::<_, Error>(())).is_err());

    let snapshot = registry().snapshot();
    resilience::metrics::record_gauges(&snapshot);
    let scrape = scrape(port);

    // Adaptive throttle, from its stats.
    let name = ("name", "metrics-throttle");
    // The forced rejection is counted, not put in the window: 2 requests, 1 accepted.
    assert_eq!(value(&scrape, "resilience_adaptive_throttle_requests", &[name]), Some(2.0));
    assert_eq!(value(&scrape, "resilience_adaptive_throttle_accepts", &[name]), Some(1.0));
    assert_eq!(counter(&scrape, "resilience_adaptive_throttle_rejected_total", &[name]), 1);
    let p = value(&scrape, "resilience_adaptive_throttle_rejection_probability", &[name]);
    assert_eq!(p, Some(0.0), "(2 - 2·1) / 3");

    // Circuit breaker, as driven and as its stats say.
    let calls = "resilience_circuit_breaker_calls_total";
    let name = ("name", "metrics-circuit");
    let stats = snapshot.circuits.iter().find(|c| c.name == "metrics-circuit").unwrap();
    assert_eq!(counter(&scrape, calls, &[name, ("outcome", "success")]), 3);
    assert_eq!(counter(&scrape, calls, &[name, ("outcome", "failure")]), 2);
    assert_eq!(counter(&scrape, calls, &[name, ("outcome", "ignored")]), 0);
    assert_eq!(counter(&scrape, calls, &[name, ("outcome", "rejected")]), 1);
    assert_eq!((stats.successes, stats.failures, stats.ignored, stats.rejections), (3, 2, 0, 1));
    let transitions = "resilience_circuit_breaker_transitions_total";
    let opened = [name, ("from", "closed"), ("to", "open")];
    assert_eq!(counter(&scrape, transitions, &opened), 1);
    assert_eq!(stats.transitions, 1);
    assert_eq!(stats.state, CircuitState::Open);
    let state = "resilience_circuit_breaker_state";
    for (s, expected) in
        [("closed", 0), ("open", 1), ("half_open", 0), ("forced_open", 0), ("disabled", 0)]
    {
        assert_eq!(counter(&scrape, state, &[name, ("state", s)]), expected, "state {s}");
    }
    let rate = value(&scrape, "resilience_circuit_breaker_failure_rate", &[name]);
    assert_eq!(rate, stats.failure_rate, "the gauge exists exactly when the window has a rate");

    // The circuit under the macros, and the whole-call histogram of its function.
    let macro_name = ("name", "metrics-macro-circuit");
    assert_eq!(counter(&scrape, calls, &[macro_name, ("outcome", "failure")]), 1);
    assert_eq!(counter(&scrape, calls, &[macro_name, ("outcome", "rejected")]), 1);
    let duration = "resilience_call_duration_seconds";
    let guarded_fn = ("name", "metrics_prometheus::guarded");
    assert_eq!(counter(&scrape, duration, &[guarded_fn, ("outcome", "failure")]), 1);
    assert_eq!(counter(&scrape, duration, &[guarded_fn, ("outcome", "rejected")]), 1);

    // Fallbacks.
    let used = "resilience_fallback_used_total";
    let answered_fn = ("name", "metrics_prometheus::answered");
    assert_eq!(counter(&scrape, used, &[answered_fn, ("cause", "error")]), 1);
    assert_eq!(counter(&scrape, used, &[answered_fn, ("cause", "rejected")]), 1);
    let pipeline_name = ("name", "metrics-fallback-pipeline");
    assert_eq!(counter(&scrape, used, &[pipeline_name, ("cause", "rejected")]), 2);
    assert_eq!(counter(&scrape, used, &[pipeline_name, ("cause", "error")]), 0);

    // Retries.
    let retry_calls = "resilience_retry_calls_total";
    let flaky_name = ("name", "metrics_prometheus::flaky");
    assert_eq!(counter(&scrape, retry_calls, &[flaky_name, ("result", "success_with_retry")]), 1);
    assert_eq!(
        counter(&scrape, retry_calls, &[flaky_name, ("result", "success_without_retry")]),
        1
    );
    assert_eq!(counter(&scrape, retry_calls, &[flaky_name, ("result", "failed_with_retry")]), 0);
    assert_eq!(counter(&scrape, "resilience_retry_attempts_total", &[flaky_name]), 4);
    let down = ("name", "metrics_prometheus::always_down");
    assert_eq!(counter(&scrape, retry_calls, &[down, ("result", "failed_with_retry")]), 1);
    assert_eq!(counter(&scrape, "resilience_retry_attempts_total", &[down]), 2);
    assert_eq!(counter(&scrape, duration, &[flaky_name, ("outcome", "success")]), 2);
    assert_eq!(counter(&scrape, duration, &[down, ("outcome", "failure")]), 1);
    let budgeted = ("name", "metrics-budgeted");
    assert_eq!(counter(&scrape, retry_calls, &[budgeted, ("result", "failed_without_retry")]), 1);
    let budget_stats = snapshot.retry_budgets.iter().find(|b| b.name == "metrics-budget").unwrap();
    let refused =
        counter(&scrape, "resilience_retry_budget_refused_total", &[("name", "metrics-budget")]);
    assert_eq!((refused, budget_stats.exhausted), (1, 1));

    // Rate limiters.
    let permits = "resilience_rate_limiter_permits_total";
    let name = ("name", "metrics-limiter");
    let stats = snapshot.rate_limiters.iter().find(|l| l.name == "metrics-limiter").unwrap();
    assert_eq!(counter(&scrape, permits, &[name, ("outcome", "granted")]), 2);
    assert_eq!(counter(&scrape, permits, &[name, ("outcome", "waited")]), 0);
    assert_eq!(counter(&scrape, permits, &[name, ("outcome", "rejected")]), 1);
    assert_eq!((stats.granted, stats.waited, stats.rejected), (2, 0, 1));
    let available = "resilience_rate_limiter_available_permits";
    assert_eq!(value(&scrape, available, &[name]), Some(f64::from(stats.available)));
    assert_eq!(value(&scrape, "resilience_rate_limiter_waiting", &[name]), Some(0.0));
    let name = ("name", "metrics-waiting");
    let stats = snapshot.rate_limiters.iter().find(|l| l.name == "metrics-waiting").unwrap();
    assert_eq!(counter(&scrape, permits, &[name, ("outcome", "granted")]), 1);
    assert_eq!(counter(&scrape, permits, &[name, ("outcome", "waited")]), 1);
    assert_eq!((stats.granted, stats.waited, stats.rejected), (2, 1, 0));
    assert_eq!(counter(&scrape, "resilience_rate_limiter_wait_seconds", &[name]), 1);

    // Bulkhead.
    let name = ("name", "metrics-bulkhead");
    let stats = snapshot.bulkheads.iter().find(|b| b.name == "metrics-bulkhead").unwrap();
    assert_eq!(counter(&scrape, "resilience_bulkhead_rejected_total", &[name]), 1);
    assert_eq!(counter(&scrape, "resilience_bulkhead_in_flight", &[name]), 1);
    assert_eq!(counter(&scrape, "resilience_bulkhead_max_concurrent", &[name]), 1);
    assert_eq!((stats.rejected, stats.in_flight, stats.max_concurrent), (1, 1, 1));
    drop(held);

    // Adaptive bulkhead: the limit, the RTTs it measured and how often it moved.
    let name = ("name", "metrics-adaptive");
    assert_eq!(value(&scrape, "resilience_bulkhead_max_concurrent", &[name]), Some(9.0));
    assert_eq!(value(&scrape, "resilience_bulkhead_rtt_seconds", &[name]), Some(0.01));
    assert_eq!(value(&scrape, "resilience_bulkhead_rtt_noload_seconds", &[name]), Some(0.01));
    assert_eq!(counter(&scrape, "resilience_bulkhead_limit_changes_total", &[name]), 1);
    assert_eq!(
        value(&scrape, "resilience_bulkhead_rtt_seconds", &[("name", "metrics-bulkhead")]),
        None
    );

    // Timeouts: the layer has no name of its own; the whole call carries the function's.
    assert_eq!(counter(&scrape, "resilience_timeouts_total", &[("name", "<unnamed>")]), 1);
    let slow_name = ("name", "metrics_prometheus::slow");
    assert_eq!(counter(&scrape, duration, &[slow_name, ("outcome", "timeout")]), 1);

    // Calls are counted by the instances and reach the recorder when collected: a scrape
    // shows the counts of the last collection, and agrees with the stats after one.
    let name = ("name", "metrics-collected");
    let success = [name, ("outcome", "success")];
    let more = registry()
        .circuit_breakers()
        .get_or_create("metrics-collected", CircuitBreakerConfig::default())
        .unwrap();
    for _ in 0..4 {
        more.call(|| Ok::<(), Error>(())).unwrap();
    }
    assert_eq!(value(&crate::scrape(port), calls, &success), None, "not collected yet");
    resilience::metrics::collect();
    assert_eq!(counter(&crate::scrape(port), calls, &success), 4);
    assert_eq!(more.stats().successes, 4);
    assert_eq!(counter(&crate::scrape(port), duration, &[guarded_fn, ("outcome", "failure")]), 1);

    // A collector on a timer collects once more as it stops.
    let collector = resilience::metrics::spawn_collector(Duration::from_secs(3600));
    for _ in 0..3 {
        more.call(|| Ok::<(), Error>(())).unwrap();
    }
    assert!(matches!(guarded(false), Err(AppError::Resilience(Error::CircuitOpen { .. }))));
    drop(collector);
    let last = crate::scrape(port);
    assert_eq!(counter(&last, calls, &success), 7);
    assert_eq!(more.stats().successes, 7);
    assert_eq!(counter(&last, duration, &[guarded_fn, ("outcome", "rejected")]), 2);
}
