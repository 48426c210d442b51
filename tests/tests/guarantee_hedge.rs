//! Guarantee: against a service answering in about 10 ms with 5 % of calls taking 1 s, a
//! caller hedging at the p95 of recent latencies has a p99 latency of at most 3× its
//! median (without hedging the p99 is the 1 s of the slow calls), for at most the
//! budget's 10 % of extra load; when the service turns uniformly slow, hedges stop at the
//! budget.
//!
//! Simulated time (tokio's paused clock), seeded draws (`RESILIENCE_SEED=<n>` replays a
//! seed). Writes the caller's latency distribution with and without hedging as an SVG
//! (`RESILIENCE_WRITE_PLOTS=1` also into `docs/plots/`).
//! `cargo test -p resilience-tests --test guarantee_hedge -- --nocapture`

use std::cell::RefCell;
use std::time::Duration;

use plotters::prelude::*;
use resilience::Error;
use resilience::hedge::{Hedge, HedgeConfig, HedgeDelay};
use tokio::time::{Instant, sleep};

/// Callers running at once; each makes its calls one after the other.
const CALLERS: usize = 20;

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42)
}

fn full() -> bool {
    std::env::var("RESILIENCE_FULL").is_ok_and(|v| v == "1")
}

/// The service's latency for one attempt: 8 to 12 ms, or 1 s for a fraction `slow`.
fn latency(rng: &RefCell<fastrand::Rng>, slow: f64) -> Duration {
    let mut rng = rng.borrow_mut();
    if rng.f64() < slow {
        Duration::from_secs(1)
    } else {
        Duration::from_micros(rng.u64(8_000..=12_000))
    }
}

/// What a run measured: each call's latency as the caller saw it, and the attempts that
/// reached the service.
struct Run {
    latencies: Vec<Duration>,
    attempts: u64,
}

/// `CALLERS` callers making `calls` calls each, through `hedge` if any, against a service
/// whose fraction `slow` of attempts takes 1 s.
async fn run(hedge: Option<&Hedge>, calls: usize, slow: f64, rng: &RefCell<fastrand::Rng>) -> Run {
    let attempts = RefCell::new(0u64);
    let latencies = RefCell::new(Vec::with_capacity(CALLERS * calls));
    let attempt = || {
        *attempts.borrow_mut() += 1;
        let took = latency(rng, slow);
        async move {
            sleep(took).await;
            Ok::<(), Error>(())
        }
    };
    let caller = || async {
        for _ in 0..calls {
            let start = Instant::now();
            let r = match hedge {
                Some(h) => h.call_async(attempt).await,
                None => attempt().await,
            };
            assert!(r.is_ok());
            latencies.borrow_mut().push(start.elapsed());
        }
    };
    futures::future::join_all((0..CALLERS).map(|_| caller())).await;
    Run { latencies: latencies.into_inner(), attempts: attempts.into_inner() }
}

/// The nearest-rank quantile `q` of sorted latencies.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The latency by percentile of each run, on a log scale, 200 points a series.
fn plot(series: &[(&str, &[Duration], RGBColor)]) -> Result<(), Box<dyn std::error::Error>> {
    let mut paths =
        vec![std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hedge_latency.svg")];
    if std::env::var("RESILIENCE_WRITE_PLOTS").is_ok_and(|v| v == "1") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plots");
        std::fs::create_dir_all(&dir)?;
        paths.push(dir.join("hedge_latency.svg"));
    }
    for path in paths {
        let root = SVGBackend::new(&path, (640, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Caller latency by percentile (10 ms service, 5 % of calls 1 s)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..100f64, (5f64..2_000f64).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile of calls")
            .y_desc("latency (ms)")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        for (label, sorted, color) in series {
            let points = (0..=200).map(|i| {
                let q = f64::from(i) / 200.0;
                (q * 100.0, ms(quantile(sorted, q.max(1e-9))))
            });
            let color = *color;
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
        root.present()?;
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn hedging_at_p95_keeps_p99_within_3x_the_median_for_at_most_the_budget() {
    let seed = seed();
    let calls = if full() { 2_500 } else { 500 };
    let rng = RefCell::new(fastrand::Rng::with_seed(seed));

    let plain = run(None, calls, 0.05, &rng).await;
    let hedge = Hedge::new("guarantee-hedge-p95", HedgeConfig::default());
    assert_eq!(hedge.config().delay(), HedgeDelay::Percentile(95.0));
    let hedged = run(Some(&hedge), calls, 0.05, &rng).await;

    let mut plain_sorted = plain.latencies.clone();
    plain_sorted.sort();
    let mut hedged_sorted = hedged.latencies.clone();
    hedged_sorted.sort();
    let (p50, p99) = (quantile(&plain_sorted, 0.5), quantile(&plain_sorted, 0.99));
    let (h50, h99) = (quantile(&hedged_sorted, 0.5), quantile(&hedged_sorted, 0.99));
    let n = hedged.latencies.len() as u64;
    let extra = (hedged.attempts - n) as f64 / n as f64;
    let stats = hedge.stats();
    println!(
        "seed {seed}, {n} calls each: without hedging p50 {:.1} ms, p99 {:.1} ms; \
         hedging at p95 (delay now {:.2} ms): p50 {:.1} ms, p99 {:.1} ms ({:.2}× the median), \
         p99.9 {:.1} ms; extra load {:.2} % ({} hedges, {} won, {} refused by the budget)",
        ms(p50),
        ms(p99),
        stats.delay_secs.unwrap_or(0.0) * 1e3,
        ms(h50),
        ms(h99),
        h99.as_secs_f64() / h50.as_secs_f64(),
        ms(quantile(&hedged_sorted, 0.999)),
        extra * 100.0,
        stats.hedges,
        stats.hedges_won,
        stats.budget_refusals,
    );
    plot(&[("without hedging", &plain_sorted, RED), ("hedged at p95", &hedged_sorted, BLUE)])
        .unwrap();

    assert!(p99 >= Duration::from_secs(1), "without hedging the p99 is a slow call: {p99:?}");
    assert!(h99 <= h50 * 3, "p99 {h99:?} > 3 × median {h50:?}");
    assert_eq!(stats.hedges, hedged.attempts - n);
    assert!(extra <= 0.10, "extra load {extra} above the 10 % budget");
}

/// Healthy calls, then uniformly slow ones, through `hedge`: the hedges of the slow
/// phase, the calls of the whole run and the budget's refusals in the slow phase.
async fn healthy_then_slow(hedge: &Hedge, seed: u64) -> (u64, u64, u64) {
    let rng = RefCell::new(fastrand::Rng::with_seed(seed));
    // Healthy: 10 ms answers.
    let healthy = run(Some(hedge), 100, 0.0, &rng).await;
    let before = hedge.stats();
    // Every attempt now takes 1 s, for 30 s: every call outlives the delay it starts with.
    let slow = run(Some(hedge), 30, 1.0, &rng).await;
    let after = hedge.stats();
    let calls = (healthy.latencies.len() + slow.latencies.len()) as u64;
    assert_eq!(healthy.attempts + slow.attempts, calls + after.hedges);
    let slow_hedges = after.hedges - before.hedges;
    let refused = after.budget_refusals - before.budget_refusals;
    println!(
        "seed {seed}, {}: healthy {} calls, {} hedges; uniformly slow {} calls, {slow_hedges} \
         hedges ({:.1} %), {refused} refused by the budget; delay now {:.0} ms",
        hedge.name(),
        healthy.latencies.len(),
        before.hedges,
        slow.latencies.len(),
        slow_hedges as f64 * 100.0 / slow.latencies.len() as f64,
        after.delay_secs.unwrap_or(0.0) * 1e3,
    );
    (after.hedges, calls, refused)
}

#[tokio::test(start_paused = true)]
async fn when_the_service_turns_uniformly_slow_hedges_stop_at_the_budget() {
    let seed = seed();
    // A fixed delay: every slow call wants a hedge, and only the budget stops them.
    let config = HedgeConfig::builder().delay(HedgeDelay::Fixed(Duration::from_millis(50)));
    let fixed = Hedge::new("guarantee-hedge-fixed", config.build().unwrap());
    let ratio = fixed.config().budget().ratio();
    let (hedges, calls, refused) = healthy_then_slow(&fixed, seed).await;
    assert!(refused > 0, "the budget refused hedges");
    assert!(hedges as f64 <= ratio * calls as f64, "{hedges} hedges for {calls} calls");

    // At p95 the delay follows the slow latencies, and hedges stop before the budget does.
    let p95 = Hedge::new("guarantee-hedge-p95-slow", HedgeConfig::default());
    let (hedges, calls, _) = healthy_then_slow(&p95, seed).await;
    assert!(hedges as f64 <= ratio * calls as f64, "{hedges} hedges for {calls} calls");
    assert!(p95.delay().unwrap() >= Duration::from_secs(1), "the p95 is now a slow call");
}
