//! Hot reload: a TOML file applied again to live instances keeps their state, applies
//! nothing when it is invalid anywhere, and is picked up from disk by `watch_toml` while
//! other threads call through the instances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resilience::circuit::CircuitState;
use resilience::events::{EventKind, Interest};
use resilience::registry::Registry;
use resilience::{CircuitBreakerConfig, Error};

/// A fresh directory for one test's files (removed on drop).
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("resilience-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config_events(
    registry: &Registry,
) -> (Arc<Mutex<Vec<EventKind>>>, resilience::events::Subscription) {
    let seen: Arc<Mutex<Vec<EventKind>>> = Arc::default();
    let sink = seen.clone();
    let sub =
        registry.subscribe(Interest::CONFIG, move |e| sink.lock().unwrap().push(e.kind.clone()));
    (seen, sub)
}

fn toml(threshold: u32, burst: u32, max_concurrent: u32) -> String {
    format!(
        "[orders.circuit_breaker]\nfailure_threshold = {threshold}\nrecovery_timeout = \"1h\"\n\
         [orders.rate_limit]\nper_minute = 1\nburst = {burst}\non_limit = \"reject\"\n\
         [orders.bulkhead]\nmax_concurrent = {max_concurrent}\n"
    )
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_reload_applies_to_live_instances_and_keeps_their_state() {
    let dir = Dir::new("keeps-state");
    let path = dir.file("resilience.toml");
    write(&path, &toml(2, 10, 2));
    let registry = Registry::new();
    registry.reload_toml(&path).unwrap();

    let breaker = registry
        .circuit_breakers()
        .get_or_create("orders", CircuitBreakerConfig::default())
        .unwrap();
    let limiter =
        registry.rate_limiters().resolve("orders", || unreachable!("configured")).unwrap();
    let bulkhead = registry.bulkheads().resolve("orders", || unreachable!("configured")).unwrap();
    for _ in 0..2 {
        let _ = breaker.call(|| Err::<(), Error>(Error::timeout(Duration::from_secs(1))));
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    for _ in 0..7 {
        limiter.try_acquire(1).unwrap();
    }
    let held = bulkhead.try_acquire().unwrap();
    let failures_before = breaker.stats().failures;

    write(&path, &toml(5, 20, 4));
    registry.reload_toml(&path).unwrap();

    assert_eq!(breaker.config().failure_threshold(), Some(5), "the new config is live");
    assert_eq!(breaker.state(), CircuitState::Open, "the breaker keeps its state");
    assert_eq!(breaker.stats().failures, failures_before, "and its counters");
    assert_eq!(limiter.config().burst(), 20);
    assert_eq!(limiter.available(), 3, "the limiter keeps its fill level: 3 permits left");
    assert_eq!(bulkhead.config().max_concurrent(), 4);
    assert_eq!(bulkhead.in_flight(), 1, "the call in flight is still counted");
    drop(held);
    assert_eq!(bulkhead.in_flight(), 0);
}

#[test]
fn a_broken_edit_applies_nothing_and_a_fixed_one_applies() {
    let dir = Dir::new("broken-then-fixed");
    let path = dir.file("resilience.toml");
    let registry = Registry::new();
    let (seen, _sub) = config_events(&registry);
    write(&path, &toml(2, 10, 2));
    registry.reload_toml(&path).unwrap();
    let breaker = registry
        .circuit_breakers()
        .get_or_create("orders", CircuitBreakerConfig::default())
        .unwrap();

    // The first table is fine and changed; the last one is wrong: nothing applies.
    let broken = toml(7, 10, 2).replace("max_concurrent = 2", "max_concurent = 2");
    write(&path, &broken);
    let err = registry.reload_toml(&path).unwrap_err();
    assert!(err.to_string().contains("max_concurent"), "{err}");
    assert_eq!(breaker.config().failure_threshold(), Some(2), "the old config stays");

    write(&path, &toml(7, 10, 2));
    registry.reload_toml(&path).unwrap();
    assert_eq!(breaker.config().failure_threshold(), Some(7));

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], EventKind::ConfigApplied);
    assert!(
        matches!(&seen[1], EventKind::ConfigRejected { error } if error.contains("max_concurent"))
    );
    assert_eq!(seen[2], EventKind::ConfigApplied);
}

#[test]
fn an_unreadable_file_is_refused_with_its_path() {
    let registry = Registry::new();
    let (seen, _sub) = config_events(&registry);
    let err = registry.reload_toml("no/such/resilience.toml").unwrap_err();
    assert!(err.to_string().contains("no/such/resilience.toml"), "{err}");
    assert!(matches!(&seen.lock().unwrap()[..], [EventKind::ConfigRejected { .. }]));
}

/// Waits for the next config event from the watcher (bounded, so a lost event fails the
/// test instead of hanging it).
fn next(events: &mpsc::Receiver<EventKind>) -> EventKind {
    events.recv_timeout(Duration::from_secs(30)).expect("the watcher reports the change")
}

#[test]
fn a_watched_file_is_applied_on_every_change_while_threads_call_through_it() {
    let dir = Dir::new("watched");
    let path = dir.file("resilience.toml");
    let generous = |threshold: u32| {
        format!(
            "[watched.circuit_breaker]\nfailure_threshold = {threshold}\n\
             [watched.rate_limit]\nper_second = 1000000000\nburst = 1000000000\non_limit = \"reject\"\n"
        )
    };
    write(&path, &generous(10));
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let (tx, events) = mpsc::channel();
    let tx = Mutex::new(tx);
    let _sub = registry.subscribe(Interest::CONFIG, move |e| {
        let _ = tx.lock().unwrap().send(e.kind.clone());
    });
    let watch = registry.watch_toml(&path).unwrap();
    assert_eq!(next(&events), EventKind::ConfigApplied, "the first load");

    let breaker = registry
        .circuit_breakers()
        .get_or_create("watched", CircuitBreakerConfig::default())
        .unwrap();
    let limiter =
        registry.rate_limiters().resolve("watched", || unreachable!("configured")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (breaker, limiter) = (breaker.clone(), limiter.clone());
            let (stop, calls, failed) = (stop.clone(), calls.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = breaker.call(|| limiter.try_acquire(1));
                    calls.fetch_add(1, Ordering::Relaxed);
                    if r.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // Edited in place.
    write(&path, &generous(20));
    assert_eq!(next(&events), EventKind::ConfigApplied);
    assert_eq!(breaker.config().failure_threshold(), Some(20));

    // A broken edit: refused, the old config stays.
    write(&path, "[watched.circuit_breaker]\nfailure_threshold = \"many\"\n");
    assert!(matches!(next(&events), EventKind::ConfigRejected { .. }));
    assert_eq!(breaker.config().failure_threshold(), Some(20));

    // Replaced by a rename, as editors and config management tools do.
    let staged = dir.file("resilience.toml.new");
    write(&staged, &generous(30));
    std::fs::rename(&staged, &path).unwrap();
    loop {
        // The rename may also be seen as the staged file's events; only its content counts.
        if next(&events) == EventKind::ConfigApplied
            && breaker.config().failure_threshold() == Some(30)
        {
            break;
        }
    }

    drop(watch);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(calls.load(Ordering::Relaxed) > 0);
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no call failed across the reloads");
    assert_eq!(breaker.state(), CircuitState::Closed);
}
