//! Guarantee: an adaptive bulkhead finds a dependency's capacity and follows it.
//!
//! The dependency serves `c` calls at a time (50 ms each, ±10 % seeded jitter) and queues
//! the rest in order, so its latency grows with the queue. Callers arrive open-loop, one
//! per millisecond (1 000/s, above every capacity used), and a call the bulkhead refuses
//! is not sent. The capacity is 16 for 40 s, then 8 for 40 s, then 32 for 40 s. The
//! gradient limit, started at 4 or at 200, settles within ±25 % of `c` within 30 s of
//! each phase's start and stays there; goodput (calls answered within 100 ms, twice the
//! unloaded latency) is at least 90 % of the capacity over each phase's last 10 s. A
//! fixed bulkhead of 64 runs the same schedule: it keeps the dependency busy too, but
//! every call waits in its queue, so its latency is several times larger and its goodput
//! collapses.
//!
//! Simulated time (tokio's paused clock), seeded draws (`RESILIENCE_SEED=<n>` replays a
//! seed). `RESILIENCE_WRITE_PLOTS=1` also writes `docs/plots/adaptive_concurrency.svg`.
//! `cargo test -p resilience-tests --test guarantee_adaptive -- --nocapture`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use plotters::prelude::*;
use resilience::Error;
use resilience::bulkhead::{Bulkhead, BulkheadConfig, LimitAlgorithm};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The dependency's latency with nothing queued (the mean of the jittered draws).
const SERVICE: Duration = Duration::from_millis(50);
/// One caller arrives each tick.
const TICK: Duration = Duration::from_millis(1);
/// How long each capacity lasts.
const PHASE: Duration = Duration::from_secs(40);
/// The capacities, in order.
const CAPACITIES: [u32; 3] = [16, 8, 32];
/// A call answered within this counts towards goodput.
const SLO: Duration = Duration::from_millis(100);
/// How often the limit is sampled.
const SAMPLE: Duration = Duration::from_millis(100);

fn seed() -> u64 {
    std::env::var("RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42)
}

/// The dependency: `c` servers behind a FIFO queue.
struct Service {
    servers: Arc<Semaphore>,
    rng: Mutex<fastrand::Rng>,
}

impl Service {
    fn new(capacity: u32, seed: u64) -> Self {
        Service {
            servers: Arc::new(Semaphore::new(capacity as usize)),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }

    async fn call(&self) -> Result<(), Error> {
        let service = SERVICE.mul_f64(0.9 + 0.2 * self.rng.lock().f64());
        let Ok(_server) = self.servers.acquire().await else {
            return Err(Error::timeout(SERVICE));
        };
        tokio::time::sleep(service).await;
        Ok(())
    }

    /// Moves the capacity from `from` to `to`: removed servers leave once they are free.
    fn resize(&self, from: u32, to: u32) {
        if to > from {
            self.servers.add_permits((to - from) as usize);
        } else {
            let servers = self.servers.clone();
            tokio::spawn(async move {
                if let Ok(taken) = servers.acquire_many(from - to).await {
                    taken.forget();
                }
            });
        }
    }
}

/// One finished call: when it ended and how long it took.
#[derive(Clone, Copy)]
struct Done {
    at: Duration,
    latency: Duration,
}

/// What one run saw.
struct Run {
    label: String,
    /// (time, limit, last window RTT) every [`SAMPLE`].
    samples: Vec<(Duration, u32, Option<Duration>)>,
    done: Vec<Done>,
}

impl Run {
    /// The first time in `phase` after which the limit stays within ±25 % of `capacity`
    /// to the phase's end, measured from the phase's start.
    fn settled(&self, phase: usize, capacity: u32) -> Option<Duration> {
        let (start, end) = (PHASE * phase as u32, PHASE * (phase as u32 + 1));
        let band = f64::from(capacity) * 0.75..=f64::from(capacity) * 1.25;
        let in_phase: Vec<_> =
            self.samples.iter().filter(|(t, _, _)| *t >= start && *t < end).collect();
        let last_out = in_phase.iter().rposition(|(_, l, _)| !band.contains(&f64::from(*l)));
        match last_out {
            None => Some(Duration::ZERO),
            Some(i) if i + 1 < in_phase.len() => Some(in_phase[i + 1].0 - start),
            Some(_) => None,
        }
    }

    /// Calls per second answered within the SLO, and the mean latency, over `from..to`.
    fn goodput(&self, from: Duration, to: Duration) -> (f64, Duration) {
        let window: Vec<_> = self.done.iter().filter(|d| d.at >= from && d.at < to).collect();
        let good = window.iter().filter(|d| d.latency <= SLO).count();
        let total: Duration = window.iter().map(|d| d.latency).sum();
        let mean = total / u32::try_from(window.len().max(1)).unwrap_or(u32::MAX);
        (good as f64 / (to - from).as_secs_f64(), mean)
    }

    /// The limit's range over `from..to`.
    fn limits(&self, from: Duration, to: Duration) -> (u32, u32) {
        self.samples
            .iter()
            .filter(|(t, _, _)| *t >= from && *t < to)
            .fold((u32::MAX, 0), |(lo, hi), (_, l, _)| (lo.min(*l), hi.max(*l)))
    }
}

/// Runs the whole schedule through a bulkhead of `config`.
async fn run(label: &str, config: BulkheadConfig, seed: u64) -> Run {
    let bulkhead = Arc::new(Bulkhead::new(label.to_owned(), config));
    let service = Arc::new(Service::new(CAPACITIES[0], seed));
    let done = Arc::new(Mutex::new(Vec::new()));
    let origin = Instant::now();
    let mut samples = Vec::new();
    let ticks_per_sample = SAMPLE.as_nanos() / TICK.as_nanos();
    let mut capacity = CAPACITIES[0];
    for (phase, &next) in CAPACITIES.iter().enumerate() {
        if phase > 0 {
            service.resize(capacity, next);
            capacity = next;
        }
        for tick in 0..(PHASE.as_nanos() / TICK.as_nanos()) {
            if tick % ticks_per_sample == 0 {
                let stats = bulkhead.stats();
                let rtt = stats.adaptive.and_then(|a| a.rtt);
                samples.push((origin.elapsed(), stats.max_concurrent, rtt));
            }
            let (bulkhead, service, done) = (bulkhead.clone(), service.clone(), done.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                let answered = bulkhead.call_async(|| service.call()).await;
                if answered.is_ok() {
                    let at = origin.elapsed();
                    done.lock().push(Done { at, latency: start.elapsed() });
                }
            });
            tokio::time::sleep(TICK).await;
        }
    }
    let done = std::mem::take(&mut *done.lock());
    Run { label: label.to_owned(), samples, done }
}

fn adaptive(initial: u32) -> BulkheadConfig {
    BulkheadConfig::builder()
        .adaptive(LimitAlgorithm::Gradient)
        .initial_limit(initial)
        .min_limit(1)
        .max_limit(500)
        .build()
        .expect("valid")
}

#[tokio::test(start_paused = true)]
async fn the_gradient_limit_finds_and_follows_capacity_where_a_fixed_one_queues() {
    let seed = seed();
    let from_low = run("adaptive from 4", adaptive(4), seed).await;
    let from_high = run("adaptive from 200", adaptive(200), seed).await;
    let fixed =
        run("fixed 64", BulkheadConfig::builder().max_concurrent(64).build().expect("valid"), seed)
            .await;

    plot(&[&from_low, &from_high, &fixed]);

    for (phase, &capacity) in CAPACITIES.iter().enumerate() {
        let tail =
            (PHASE * (phase as u32 + 1) - Duration::from_secs(10), PHASE * (phase as u32 + 1));
        let full = f64::from(capacity) / SERVICE.as_secs_f64();
        let (fixed_goodput, fixed_latency) = fixed.goodput(tail.0, tail.1);
        for run in [&from_low, &from_high] {
            let settled = run.settled(phase, capacity);
            let (goodput, latency) = run.goodput(tail.0, tail.1);
            let (lo, hi) = run.limits(tail.0, tail.1);
            println!(
                "seed {seed}, {}: capacity {capacity}: settled within ±25 % after {settled:?}, \
                 limit {lo}..={hi} over the last 10 s, goodput {goodput:.0}/s of {full:.0}/s \
                 ({:.1} %), mean latency {latency:?} (fixed 64: goodput {fixed_goodput:.0}/s, \
                 mean latency {fixed_latency:?})",
                run.label,
                goodput / full * 100.0,
            );
            let settled = settled.unwrap_or(PHASE);
            assert!(
                settled <= Duration::from_secs(30),
                "{}: capacity {capacity}: settled after {settled:?}",
                run.label
            );
            assert!(goodput >= 0.9 * full, "{}: goodput {goodput} of {full}", run.label);
            if capacity <= 16 {
                // Below 64, the fixed bulkhead's calls wait in the dependency's queue.
                assert!(fixed_latency >= latency * 3, "{fixed_latency:?} vs {latency:?}");
                assert!(fixed_goodput < goodput / 10.0, "{fixed_goodput} vs {goodput}");
            }
        }
    }
}

/// Renders the limits and the RTT over time beside the true capacity.
fn plot(runs: &[&Run]) {
    let mut paths =
        vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("adaptive_concurrency.svg")];
    if std::env::var("RESILIENCE_WRITE_PLOTS").is_ok_and(|v| v == "1") {
        paths.push(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../docs/plots/adaptive_concurrency.svg"),
        );
    }
    for path in paths {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("plot directory");
        }
        draw(&path, runs).expect("plot");
    }
}

fn draw(path: &std::path::Path, runs: &[&Run]) -> Result<(), Box<dyn std::error::Error>> {
    let end = (PHASE * CAPACITIES.len() as u32).as_secs_f64();
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(340);
    let mut limits = ChartBuilder::on(&top)
        .caption("Adaptive bulkhead (gradient) vs capacity 16 → 8 → 32", ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..end, 0.0..80.0)?;
    limits.configure_mesh().y_desc("limit (calls)").disable_x_mesh().draw()?;
    let capacity: Vec<(f64, f64)> = CAPACITIES
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            let (a, b) = (PHASE.as_secs_f64() * i as f64, PHASE.as_secs_f64() * (i + 1) as f64);
            [(a, f64::from(*c)), (b, f64::from(*c))]
        })
        .collect();
    limits
        .draw_series(LineSeries::new(capacity, BLACK.stroke_width(2)))?
        .label("true capacity")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
    let colours = [BLUE, RED, GREEN];
    for (run, colour) in runs.iter().zip(colours) {
        let points = run
            .samples
            .iter()
            .step_by(5)
            .map(|(t, l, _)| (round(t.as_secs_f64()), f64::from(*l).min(80.0)));
        limits
            .draw_series(LineSeries::new(points, colour))?
            .label(run.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
    }
    limits.configure_series_labels().background_style(WHITE).border_style(BLACK).draw()?;

    let mut rtts = ChartBuilder::on(&bottom)
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..end, 0.0..500.0)?;
    rtts.configure_mesh().x_desc("simulated seconds").y_desc("RTT (ms)").disable_x_mesh().draw()?;
    for (run, colour) in runs.iter().zip(colours) {
        if run.samples.iter().all(|(_, _, rtt)| rtt.is_none()) {
            // A fixed bulkhead measures nothing: plot its calls' latency instead.
            let points = run
                .done
                .iter()
                .step_by(run.done.len() / 240 + 1)
                .map(|d| (round(d.at.as_secs_f64()), round(d.latency.as_secs_f64() * 1e3)));
            rtts.draw_series(LineSeries::new(points, colour))?;
            continue;
        }
        let points = run.samples.iter().step_by(5).filter_map(|(t, _, rtt)| {
            rtt.map(|r| (round(t.as_secs_f64()), round((r.as_secs_f64() * 1e3).min(500.0))))
        });
        rtts.draw_series(LineSeries::new(points, colour))?;
    }
    root.present()?;
    Ok(())
}

/// Two decimals: keeps the SVG small.
fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
