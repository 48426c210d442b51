//! Guarantee: an outage opens the breaker within its failure threshold; during the outage
//! callers get fast `CircuitOpen` rejections and the dead service sees at most the
//! threshold plus the half-open probes of each recovery period; after the service returns,
//! the breaker closes within one recovery period plus its probes.
//!
//! Simulated time (`ManualClock`): one caller every 100 ms, a `FaultInjector` outage.
//! `cargo test -p resilience-tests --test guarantee_recovery -- --nocapture`

use std::time::Duration;

use resilience::chaos::{FaultConfig, FaultInjector, InjectedFault};
use resilience::circuit::{CircuitBreakerConfig, CircuitState};
use resilience::clock::{Clock, ManualClock};
use resilience::presets::Preset;
use resilience::{CircuitBreaker, Error};

#[derive(Debug)]
enum CallError {
    Service(InjectedFault),
    Resilience(Error),
}

impl From<InjectedFault> for CallError {
    fn from(e: InjectedFault) -> Self {
        CallError::Service(e)
    }
}

impl From<Error> for CallError {
    fn from(e: Error) -> Self {
        CallError::Resilience(e)
    }
}

const TICK: Duration = Duration::from_millis(100);

fn check_recovery(label: &str, config: CircuitBreakerConfig) {
    let threshold = u64::from(config.failure_threshold().expect("consecutive threshold"));
    let recovery = config.recovery_timeout();
    let probes = u64::from(config.half_open_max_calls());
    let successes = u64::from(config.success_threshold());
    let clock = ManualClock::new();
    let down = Duration::from_secs(10);
    let outage = recovery * 7 / 2; // three and a half recovery periods
    let up = down + outage;
    let service = FaultInjector::with_clock(
        format!("{label}-service"),
        FaultConfig::builder().outage(down, up).build().unwrap(),
        clock.shared(),
    );
    let breaker = CircuitBreaker::with_clock(label, config, clock.shared());

    let mut failures_before_open = None;
    let mut rejections = 0_u64;
    let mut closed_at = None;
    let mut reached_before_outage = 0;
    while closed_at.is_none() {
        let now = clock.now();
        let r = breaker.call(|| service.call(|| Ok::<_, CallError>(())));
        match r {
            Ok(()) => {}
            Err(CallError::Service(InjectedFault::Outage)) => {}
            Err(CallError::Resilience(Error::CircuitOpen { .. })) => {
                assert!((down..up + recovery).contains(&now), "{label}: rejected at {now:?}");
                rejections += 1;
            }
            Err(e) => panic!("{label}: unexpected {e:?}"),
        }
        if now < down {
            reached_before_outage = service.stats().calls;
        }
        if failures_before_open.is_none() && breaker.state() == CircuitState::Open {
            failures_before_open = Some(service.stats().outage_rejections);
        }
        if now >= up && breaker.state() == CircuitState::Closed {
            closed_at = Some(now);
        }
        clock.advance(TICK);
        assert!(clock.now() < up + recovery * 10, "{label}: never closed");
    }
    let closed_at = closed_at.unwrap_or_default();
    let reached_dead = service.stats().outage_rejections;
    let periods = outage.as_nanos().div_ceil(recovery.as_nanos()) as u64;
    let allowed = threshold + probes * periods;
    let close_delay = closed_at - up;
    let close_bound = recovery + TICK * successes as u32;
    println!(
        "recovery [{label}]: opened after {} failures (threshold {threshold}); \
         {reached_dead} calls reached the dead service in {outage:?} (bound {allowed}); \
         {rejections} fast CircuitOpen rejections; closed {close_delay:?} after the service \
         returned (bound {close_bound:?})",
        failures_before_open.unwrap_or_default(),
    );
    assert_eq!(reached_before_outage, (down.as_millis() / TICK.as_millis()) as u64);
    assert_eq!(failures_before_open, Some(threshold), "{label}: opens exactly at the threshold");
    assert!(reached_dead <= allowed, "{label}: {reached_dead} > {allowed}");
    assert!(close_delay <= close_bound, "{label}: closed {close_delay:?} after recovery");
    let stats = breaker.stats();
    assert_eq!(stats.rejections, rejections);
    assert_eq!(stats.calls + stats.rejections, service.stats().calls + rejections);
}

#[test]
fn api_preset_breaker_recovers_from_an_outage_within_its_bounds() {
    let config = Preset::Api.config().circuit_breaker.expect("api preset has a breaker");
    check_recovery("recovery-api", config);
}

#[test]
fn breaker_with_several_probes_recovers_from_an_outage_within_its_bounds() {
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(3)
        .recovery_timeout(Duration::from_secs(5))
        .half_open_max_calls(3)
        .success_threshold(3)
        .build()
        .unwrap();
    check_recovery("recovery-three-probes", config);
}

#[test]
fn rejections_during_the_outage_never_call_the_service() {
    let clock = ManualClock::new();
    let config = CircuitBreakerConfig::builder()
        .failure_threshold(2)
        .recovery_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let breaker = CircuitBreaker::with_clock("recovery-fast-reject", config, clock.shared());
    let service = FaultInjector::with_clock(
        "recovery-fast-reject-service",
        FaultConfig::builder().error_rate(1.0).build().unwrap(),
        clock.shared(),
    );
    for _ in 0..1_000 {
        let _ = breaker.call(|| service.call(|| Ok::<_, CallError>(())));
    }
    assert_eq!(service.stats().calls, 2);
    assert_eq!(breaker.stats().rejections, 998);
    assert_eq!(clock.now(), Duration::ZERO, "a rejection takes no (simulated) time");
}
