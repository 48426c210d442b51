//! Runnable examples of `resilience` (see the binaries in `src/bin/`) and the small
//! pieces they share: a simulated flaky service and command-line parsing.

use std::time::Duration;

/// A simulated remote service: fails at random with `failure_rate`, and every call fails
/// during the outage window (in the simulated time since `start`).
#[derive(Debug)]
pub struct FlakyService {
    rng: fastrand::Rng,
    failure_rate: f64,
    outage: std::ops::Range<Duration>,
    start: tokio::time::Instant,
    /// Calls that reached the service.
    pub calls: u64,
    /// Calls it failed.
    pub failures: u64,
}

/// What the simulated service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// A 503 (transient).
    Unavailable,
    /// A resilience layer refused or cut short the call.
    Resilience(resilience::Error),
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceError::Unavailable => f.write_str("503 service unavailable"),
            ServiceError::Resilience(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ServiceError {}

impl From<resilience::Error> for ServiceError {
    fn from(e: resilience::Error) -> Self {
        ServiceError::Resilience(e)
    }
}

impl FlakyService {
    /// A service failing at `failure_rate`, down for `outage` (simulated time from now).
    pub fn new(seed: u64, failure_rate: f64, outage: std::ops::Range<Duration>) -> Self {
        FlakyService {
            rng: fastrand::Rng::with_seed(seed),
            failure_rate,
            outage,
            start: tokio::time::Instant::now(),
            calls: 0,
            failures: 0,
        }
    }

    /// One request: 20 ms of simulated latency, then an answer.
    pub async fn request(&mut self) -> Result<u64, ServiceError> {
        self.calls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let down = self.outage.contains(&self.start.elapsed());
        if down || self.rng.f64() < self.failure_rate {
            self.failures += 1;
            return Err(ServiceError::Unavailable);
        }
        Ok(self.calls)
    }
}

/// `--name value` pairs from the command line, with defaults.
#[derive(Debug)]
pub struct Args(Vec<String>);

impl Args {
    /// The process arguments.
    pub fn from_env() -> Self {
        Args(std::env::args().skip(1).collect())
    }

    /// The value after `--name`, parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        let flag = format!("--{name}");
        match self.0.iter().position(|a| *a == flag) {
            None => Ok(default),
            Some(i) => {
                let v = self.0.get(i + 1).ok_or_else(|| format!("{flag} needs a value"))?;
                v.parse().map_err(|_| format!("{flag}: `{v}` is not a valid value"))
            }
        }
    }
}
