//! Guarantee: against an overloaded backend, a client behind an `AdaptiveThrottle` sends
//! about `k · accepts` (so the backend fails about half of what it still gets with
//! `k = 2`) instead of its whole demand, and returns to full traffic within one window
//! after the backend recovers.
//!
//! Simulated time (`ManualClock`), seeded draws (`RESILIENCE_SEED=<n>` replays a seed).
//! `cargo test -p resilience-tests --test guarantee_throttle -- --nocapture`
//!
//! The picture, the throttled client's offered load against the backend's accepts, is
//! written to the test's target directory, and to `docs/plots/guarantee_throttle.svg` with
//! `RESILIENCE_WRITE_PLOTS=1`. The assertions are on the numbers.

use std::time::Duration;

use resilience::Error;
use resilience::circuit::{AdaptiveThrottle, ThrottleConfig};
use resilience::clock::{Clock, ManualClock};

/// Demand: 40 calls per second, one every 25 ms.
const TICK: Duration = Duration::from_millis(25);
/// The overloaded backend serves 10 calls per second and fails the rest.
const CAPACITY: u64 = 10;

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42)
}

/// Admitted (sent to the backend) and accepted (served) calls of one simulated second.
#[derive(Default, Clone, Copy)]
struct Second {
    admitted: u64,
    accepted: u64,
}

/// Run one second of demand; the backend serves at most `capacity` calls of it.
fn second(clock: &ManualClock, throttle: &AdaptiveThrottle, capacity: u64) -> Second {
    let mut s = Second::default();
    for _ in 0..(Duration::from_secs(1).as_nanos() / TICK.as_nanos()) {
        let _ = throttle.call(|| {
            s.admitted += 1;
            if s.admitted <= capacity {
                s.accepted += 1;
                Ok(())
            } else {
                Err(Error::timeout(TICK))
            }
        });
        clock.advance(TICK);
    }
    s
}

#[test]
fn an_overloaded_backend_gets_k_times_its_accepts_and_full_traffic_a_window_after_recovery() {
    let seed = seed();
    let clock = ManualClock::new();
    let config = ThrottleConfig::default(); // k = 2, 120 s in 12 buckets
    let k = config.k();
    let window = config.window();
    let throttle = AdaptiveThrottle::with_clock("overloaded", config, clock.shared()).seeded(seed);
    let demand = 40_u64;

    // Overload: demand 40/s against a capacity of 10/s, for five windows.
    let overload = 5 * window.as_secs();
    let seconds: Vec<Second> = (0..overload).map(|_| second(&clock, &throttle, CAPACITY)).collect();
    // Measure over the last window, once the throttle has settled.
    let last = &seconds[seconds.len() - window.as_secs() as usize..];
    let admitted: u64 = last.iter().map(|s| s.admitted).sum();
    let accepted: u64 = last.iter().map(|s| s.accepted).sum();
    let ratio = admitted as f64 / accepted as f64;
    let failed = 1.0 - accepted as f64 / admitted as f64;
    println!(
        "seed {seed}: over the last {}s of overload, {admitted} calls admitted ({:.1}/s of a \
         {demand}/s demand), {accepted} accepted: admitted / accepts = {ratio:.3} (k = {k}), \
         backend failed {:.1} %",
        window.as_secs(),
        admitted as f64 / window.as_secs_f64(),
        failed * 100.0
    );
    // At equilibrium `(requests - k·accepts) / (requests + 1)` equals the rejected share,
    // so admitted = k·accepts up to the `+ 1` and the noise of the draws. The draws of one
    // window feed the next window's probability, so a deviation persists for a window
    // rather than averaging out over its ~4 800 draws: seeds 1 to 12 measured ratios from
    // 1.969 to 2.067 (within 3.5 % of k). 5 % leaves room for other seeds.
    assert_eq!(accepted, CAPACITY * window.as_secs(), "the backend stays saturated");
    assert!((ratio - k).abs() / k < 0.05, "admitted / accepts = {ratio:.3}, k = {k}");
    // So the backend fails about half of what it gets, not three quarters.
    assert!((failed - 0.5).abs() < 0.03, "backend failure share {failed:.3}");

    // Recovery: the backend serves everything again.
    let recovered_at = clock.now();
    let mut full_since = None;
    let mut recovery = Vec::with_capacity(window.as_secs() as usize);
    for i in 0..window.as_secs() {
        let s = second(&clock, &throttle, u64::MAX);
        recovery.push(s);
        if s.admitted == demand {
            full_since.get_or_insert(i);
        } else {
            full_since = None;
        }
    }
    let full_after = full_since.map(Duration::from_secs);
    println!(
        "full traffic ({demand}/s admitted) from {:?} after recovery on (window {window:?}), \
         rejection probability now {}",
        full_after,
        throttle.rejection_probability()
    );
    let timeline: Vec<Second> = seconds.iter().chain(&recovery).copied().collect();
    plot(&timeline, demand, seconds.len(), k);
    let full_after = full_after.expect("full traffic within one window of recovery");
    assert!(full_after < window, "full traffic after {full_after:?}, window {window:?}");
    assert_eq!(throttle.rejection_probability(), 0.0);
    assert_eq!(clock.now() - recovered_at, window);
}

/// The offered load (calls admitted to the backend per second) against the backend's
/// accepts and the demand, averaged over 4 s steps to keep the file small.
fn plot(timeline: &[Second], demand: u64, recovery_at: usize, k: f64) {
    use plotters::prelude::*;

    const STEP: usize = 4;
    let average = |f: fn(&Second) -> u64| -> Vec<(f64, f64)> {
        timeline
            .chunks(STEP)
            .enumerate()
            .map(|(i, c)| {
                let sum: u64 = c.iter().map(f).sum();
                ((i * STEP) as f64, sum as f64 / c.len() as f64)
            })
            .collect()
    };
    let admitted = average(|s| s.admitted);
    let accepted = average(|s| s.accepted);
    let k_accepts: Vec<(f64, f64)> =
        accepted.iter().map(|&(t, a)| (t, (k * a).min(demand as f64))).collect();
    let end = timeline.len() as f64;
    let draw = |path: &std::path::Path| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (720, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Adaptive throttle: offered load vs the backend's accepts", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..end, 0.0..(demand as f64 * 1.1))?;
        chart
            .configure_mesh()
            .x_desc("simulated seconds (backend recovers at the dashed line)")
            .y_desc("calls per second")
            .disable_mesh()
            .draw()?;
        let demand_line = [(0.0, demand as f64), (end, demand as f64)];
        chart.draw_series(LineSeries::new(demand_line, BLACK.mix(0.4)))?.label("demand");
        chart
            .draw_series(LineSeries::new(admitted.clone(), BLUE.stroke_width(2)))?
            .label("offered load (admitted)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
        chart
            .draw_series(LineSeries::new(accepted.clone(), GREEN.stroke_width(2)))?
            .label("backend accepts")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREEN));
        chart
            .draw_series(LineSeries::new(k_accepts.clone(), RED.mix(0.6)))?
            .label("k · accepts")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
        let at = recovery_at as f64;
        chart.draw_series(DashedLineSeries::new(
            [(at, 0.0), (at, demand as f64 * 1.1)],
            6,
            4,
            BLACK.mix(0.5).into(),
        ))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    };
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("guarantee_throttle.svg");
    if let Err(e) = draw(&tmp) {
        panic!("plotting {}: {e}", tmp.display());
    }
    if std::env::var("RESILIENCE_WRITE_PLOTS").is_ok_and(|v| v == "1") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plots");
        let written = std::fs::create_dir_all(&dir)
            .map_err(Into::into)
            .and_then(|()| draw(&dir.join("guarantee_throttle.svg")));
        if let Err(e) = written {
            panic!("plotting into {}: {e}", dir.display());
        }
    }
}
