//! Expansions are lint-clean: this file denies warnings, `unused_qualifications` and
//! clippy's default groups, and defines a `mod core {}` beside its uses so any generated
//! path that is not absolute fails to compile.
#![deny(warnings, unused_qualifications, clippy::all)]

mod core {}

use std::sync::Arc;

use resilience::{Error, bulkhead, circuit_breaker, rate_limit, resilient, retry, timeout};

#[derive(Debug)]
pub enum LintError {
    Failed,
    Resilience(Error),
}

impl From<Error> for LintError {
    fn from(e: Error) -> Self {
        LintError::Resilience(e)
    }
}

#[retry(max_attempts = 2, initial_delay = 1ms, retry_if = |e: &LintError| matches!(e, LintError::Failed))]
#[circuit_breaker(failure_threshold = 5, ignore_if = |_e: &LintError| false)]
#[rate_limit(per_second = 100, burst = 10)]
#[bulkhead(max_concurrent = 4)]
#[timeout(1s)]
pub async fn every_layer_async(x: u32) -> Result<u32, LintError> {
    if x == 0 {
        return Err(LintError::Failed);
    }
    Ok(x)
}

#[retry(max_attempts = 2, initial_delay = 1ms, retry_on_result = |v: &u32| *v == 0)]
#[circuit_breaker(failure_rate = 0.5, window = 10, min_calls = 5)]
#[rate_limit(per_minute = 600, key = key, cost = 2)]
#[bulkhead(max_concurrent = 4)]
pub fn every_layer_sync(key: &str, x: u32) -> Result<u32, LintError> {
    let _ = key;
    Ok(x)
}

#[timeout(1s)]
pub fn sync_timeout(x: Arc<u32>) -> Result<u32, LintError> {
    Ok(*x)
}

#[resilient(preset = "development")]
pub async fn preset_stack(x: u32) -> Result<u32, LintError> {
    Ok(x)
}

const LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

fn is_failed(e: &LintError) -> bool {
    matches!(e, LintError::Failed)
}

async fn cached(x: u32) -> Result<u32, LintError> {
    Ok(x + 1)
}

#[retry(max_attempts = 2, initial_delay = 1ms, retry_if = is_failed)]
#[circuit_breaker(failure_if = is_failed, fallback = cached)]
#[timeout(LIMIT)]
pub async fn paths_and_consts(x: u32) -> Result<u32, LintError> {
    Ok(x)
}

pub struct Service;

impl Service {
    fn fallback(&self, x: u32) -> u32 {
        x + 1
    }

    #[circuit_breaker(fallback = Self::fallback)]
    pub fn value(&self, x: u32) -> u32 {
        x
    }

    #[retry(max_attempts = 1)]
    pub fn diverges_sync(&self) -> Result<u32, LintError> {
        return Err(LintError::Failed);
    }

    #[retry(max_attempts = 1)]
    pub async fn diverges(&self) -> Result<u32, LintError> {
        return Err(LintError::Failed);
    }
}

#[tokio::test(start_paused = true)]
async fn lint_clean_expansions_run() {
    assert_eq!(every_layer_async(3).await.ok(), Some(3));
    assert_eq!(every_layer_sync("k", 3).ok(), Some(3));
    assert_eq!(sync_timeout(Arc::new(4)).ok(), Some(4));
    assert_eq!(preset_stack(5).await.ok(), Some(5));
    assert_eq!(paths_and_consts(7).await.ok(), Some(7));
    assert_eq!(Service.value(6), 6);
    assert!(Service.diverges().await.is_err());
    assert!(Service.diverges_sync().is_err());
}
