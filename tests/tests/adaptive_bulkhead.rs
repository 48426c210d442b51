//! The adaptive bulkhead through every front-end: the attribute (sync and async), TOML,
//! `Pipeline`, the tower layer, events and metrics; and threads releasing at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use parking_lot::Mutex;
use resilience::bulkhead::{Bulkhead, BulkheadConfig, LimitAlgorithm};
use resilience::clock::ManualClock;
use resilience::events::{EventKind, Interest};
use resilience::registry::Registry;
use resilience::tower::{BoxError, BulkheadLayer, ResilienceLayer};
use resilience::{Error, Pipeline, ResilienceConfig, bulkhead, registry};
use tower::{Layer, Service, ServiceExt, service_fn};

/// Runs `n` calls of `f` at once, each holding its slot for 10 ms of paused time.
async fn concurrent<F, Fut>(n: usize, f: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let calls: Vec<_> = (0..n).map(|_| f()).collect();
    for result in futures::future::join_all(calls).await {
        assert_eq!(result, Ok(()));
    }
}

#[bulkhead(name = "adaptive-attr-async", adaptive = "aimd", initial_limit = 8, max_limit = 50)]
async fn query() -> Result<(), Error> {
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn the_attribute_makes_an_adaptive_bulkhead_that_reports_its_limit_changes() {
    let changes = Arc::new(Mutex::new(Vec::new()));
    let seen = changes.clone();
    let _sub = registry().subscribe(Interest::LIMITS, move |e| {
        if &*e.name == "adaptive-attr-async" {
            seen.lock().push(e.kind.clone());
        }
    });
    concurrent(8, query).await;
    let bulkhead = registry().bulkheads().get("adaptive-attr-async").expect("created");
    let stats = bulkhead.stats();
    // Eight calls at the limit, all at the lowest latency: AIMD adds one.
    assert_eq!(stats.max_concurrent, 9);
    let adaptive = stats.adaptive.expect("adaptive");
    assert_eq!(adaptive.algorithm, LimitAlgorithm::Aimd);
    assert_eq!((adaptive.min_limit, adaptive.max_limit), (1, 50));
    assert_eq!(adaptive.rtt, Some(Duration::from_millis(10)));
    assert_eq!(adaptive.rtt_noload, Some(Duration::from_millis(10)));
    assert_eq!(adaptive.limit_changes, 1);
    assert_eq!(
        changes.lock().as_slice(),
        [EventKind::LimitChanged {
            from: 8,
            to: 9,
            rtt: Duration::from_millis(10),
            rtt_noload: Duration::from_millis(10),
        }]
    );
}

#[bulkhead(name = "adaptive-attr-sync", adaptive = vegas, min_limit = 2, initial_limit = 3)]
fn lookup(held: &mut Vec<usize>) -> Result<usize, Error> {
    held.push(held.len());
    Ok(held.len())
}

#[test]
fn a_sync_function_gets_the_adaptive_bulkhead_too() {
    let mut held = Vec::new();
    assert_eq!(lookup(&mut held), Ok(1));
    let bulkhead = registry().bulkheads().get("adaptive-attr-sync").expect("created");
    let stats = bulkhead.stats();
    assert_eq!(stats.max_concurrent, 3);
    assert_eq!(
        stats.adaptive.map(|a| (a.algorithm, a.min_limit)),
        Some((LimitAlgorithm::Vegas, 2))
    );
    assert_eq!(stats.completed, 1);
}

#[test]
fn toml_configures_an_adaptive_bulkhead_and_switches_it_back_to_fixed() {
    let reg = Registry::new();
    reg.load_toml(
        "[search.bulkhead]\nadaptive = \"gradient\"\nmin_limit = 4\nmax_limit = 64\ninitial_limit = 16",
    )
    .expect("valid");
    let bulkhead = reg.bulkheads().resolve("search", || Ok(BulkheadConfig::default())).expect("ok");
    let stats = bulkhead.stats();
    assert_eq!(stats.max_concurrent, 16);
    let adaptive = stats.adaptive.expect("adaptive");
    assert_eq!(adaptive.algorithm, LimitAlgorithm::Gradient);
    assert_eq!((adaptive.min_limit, adaptive.max_limit), (4, 64));
    assert_eq!((adaptive.rtt, adaptive.rtt_noload), (None, None));

    reg.load_toml("[search.bulkhead]\nmax_concurrent = 5").expect("valid");
    let stats = bulkhead.stats();
    assert_eq!((stats.max_concurrent, stats.adaptive), (5, None));

    let err = reg.load_toml("[search.bulkhead]\nadaptive = \"tcp\"").unwrap_err();
    assert!(err.message().contains("use one of gradient, aimd, vegas"), "{err}");
}

fn adaptive_config() -> ResilienceConfig {
    toml::from_str("[bulkhead]\nadaptive = \"aimd\"\ninitial_limit = 8").expect("valid")
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_from_config_adapts_its_bulkhead() {
    let pipeline = Pipeline::from_config("adaptive-pipeline", &adaptive_config()).expect("valid");
    let pipeline = &pipeline;
    concurrent(8, || async move {
        pipeline
            .call_async(|| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<_, Error>(())
            })
            .await
    })
    .await;
    let bulkhead = registry().bulkheads().get("adaptive-pipeline").expect("created");
    assert_eq!(bulkhead.stats().max_concurrent, 9);
}

#[tokio::test(start_paused = true)]
async fn the_tower_layers_adapt_their_bulkhead() {
    let slow = service_fn(|_: Request<String>| async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let config = BulkheadConfig::builder()
        .adaptive(LimitAlgorithm::Aimd)
        .initial_limit(8)
        .build()
        .expect("valid");
    let bulkhead = Arc::new(Bulkhead::new("adaptive-tower", config));
    let single = BulkheadLayer::new(bulkhead.clone()).layer(slow);
    let whole = ResilienceLayer::from_config("adaptive-tower-stack", &adaptive_config())
        .expect("valid")
        .layer(slow);
    let calls: Vec<_> = (0..8)
        .map(|_| async {
            let mut s = single.clone();
            let mut w = whole.clone();
            s.ready().await?.call(Request::new(String::new())).await?;
            w.ready().await?.call(Request::new(String::new())).await?;
            Ok::<_, BoxError>(())
        })
        .collect();
    for result in futures::future::join_all(calls).await {
        assert!(result.is_ok());
    }
    assert_eq!(bulkhead.stats().max_concurrent, 9);
    let stack = registry().bulkheads().get("adaptive-tower-stack").expect("created");
    assert_eq!(stack.stats().max_concurrent, 9);
}

#[test]
fn threads_releasing_at_once_keep_the_counts_and_the_bounds() {
    let clock = ManualClock::new();
    let config = BulkheadConfig::builder()
        .adaptive(LimitAlgorithm::Gradient)
        .min_limit(2)
        .max_limit(12)
        .initial_limit(6)
        .build()
        .expect("valid");
    let bulkhead = Bulkhead::with_clock("adaptive-threads", config, clock.shared());
    let limits = Mutex::new(Vec::new());
    let admitted = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (bulkhead, clock, limits, admitted) = (&bulkhead, &clock, &limits, &admitted);
            s.spawn(move || {
                for i in 0..5_000u64 {
                    if let Ok(permit) = bulkhead.try_acquire() {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // Latency grows and shrinks with the thread and the round.
                        clock.advance(Duration::from_micros(100 + (i * 7 + t * 13) % 400));
                        drop(permit);
                    }
                    limits.lock().push(bulkhead.stats().max_concurrent);
                }
            });
        }
    });
    let stats = bulkhead.stats();
    let admitted = admitted.into_inner();
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.completed, admitted);
    assert_eq!(stats.completed + stats.rejected, 20_000);
    assert!(limits.lock().iter().all(|l| (2..=12).contains(l)));
    let adaptive = stats.adaptive.expect("adaptive");
    assert!(adaptive.rtt_noload.is_some() && adaptive.rtt_noload <= adaptive.rtt);
}
