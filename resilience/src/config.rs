//! Named configs from TOML, so operators change settings without touching code.
//!
//! Each top-level table is a **name**. It configures the circuit breaker, rate limiter,
//! bulkhead and retry policy of that name in the registry (these win over attribute
//! literals), and becomes a preset usable as `preset = "name"`. `base` inherits every
//! layer from a built-in or registered preset, or from another table of the same file;
//! the keys written in the table override the inherited ones.
//!
//! ```
//! # fn main() -> Result<(), resilience::ConfigError> {
//! let text = r#"
//! [shopify-orders]
//! base = "shopify"          # every layer of the built-in preset...
//! timeout = "10s"           # ...with a shorter timeout per attempt
//!
//! [shopify-orders.circuit_breaker]
//! failure_threshold = 5
//! recovery_timeout = "30s"
//!
//! [warehouse-db]
//! base = "postgres"
//!
//! [warehouse-db.rate_limit]
//! per_second = 20
//! burst = 40
//! on_limit = "reject"
//!
//! [warehouse-db.retry]
//! max_attempts = 4
//! backoff = "exponential"
//! initial_delay = "250ms"
//! jitter = "equal"
//! "#;
//! let registry = resilience::registry::Registry::new();
//! registry.load_toml(text)?;
//! let orders = registry.preset("shopify-orders").expect("loaded");
//! assert_eq!(orders.timeout, Some(std::time::Duration::from_secs(10)));
//! assert_eq!(orders.circuit_breaker.map(|c| c.failure_threshold()), Some(Some(5)));
//!
//! // Bad values are refused with the field's path and the accepted range:
//! let err = registry.load_toml("[x.retry]\nmax_attempts = 0").unwrap_err();
//! assert!(err.to_string().contains("x.retry.max_attempts"), "{err}");
//! # Ok(())
//! # }
//! ```
//!
//! Keys (all optional). Durations are strings with a unit: `"250ms"`, `"1.5s"`, `"5m"`, `"1h"`.
//!
//! | table | keys |
//! |---|---|
//! | `[name]` | `base`, `timeout` |
//! | `[name.retry]` | `max_attempts`, `backoff` (`constant`, `linear`, `exponential`, `fibonacci`, `decorrelated`), `initial_delay`, `max_delay`, `multiplier`, `jitter` (`none`, `full`, `equal`, `proportional(0.25)` for ±25 %, `ratio(0.5)` for `U(0.5, 1.0)·d`), `max_elapsed`, `honor_retry_after`, `budget` (a budget name) |
//! | `[name.circuit_breaker]` | `failure_threshold`, or `failure_rate` + `window_calls` / `window_duration` + `min_calls`; `recovery_timeout`, `recovery_jitter`, `half_open_max_calls`, `success_threshold`, `slow_call` |
//! | `[name.rate_limit]` | `per_second` or `per_minute`, `burst`, `on_limit` (`wait`, `reject`, `queue`), `max_wait`, `max_queue`, `idle_timeout` |
//! | `[name.bulkhead]` | `max_concurrent`, `max_wait` |
//! | `[redis]` (reserved name; feature `redis`) | `url` (else `RESILIENCE_REDIS_URL`), `timeout`, `retry_interval`, `sync_interval`, `key_prefix`, `pool_size` |
//!
//! The circuit breaker and rate limit tables also take `backend` (`"local"`, `"redis"`)
//! and, with `"redis"`, `fail_mode` (`"open"`, `"closed"`): see [`crate::redis`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::backoff::{Backoff, Jitter, Strategy};
use crate::bulkhead::BulkheadConfig;
use crate::circuit::{CircuitBreakerConfig, Window};
use crate::presets::ResilienceConfig;
use crate::rate_limit::{OnLimit, RateLimitConfig};
use crate::registry::Registry;
use crate::retry::RetryPolicy;
use crate::{Backend, ConfigError, FailMode, duration};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    base: Option<String>,
    timeout: Option<String>,
    retry: Option<RetryToml>,
    circuit_breaker: Option<CircuitToml>,
    rate_limit: Option<LimitToml>,
    bulkhead: Option<BulkheadToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryToml {
    max_attempts: Option<u32>,
    backoff: Option<String>,
    initial_delay: Option<String>,
    max_delay: Option<String>,
    multiplier: Option<f64>,
    jitter: Option<String>,
    max_elapsed: Option<String>,
    honor_retry_after: Option<bool>,
    budget: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CircuitToml {
    failure_threshold: Option<u32>,
    failure_rate: Option<f64>,
    window_calls: Option<u32>,
    window_duration: Option<String>,
    min_calls: Option<u32>,
    recovery_timeout: Option<String>,
    recovery_jitter: Option<f64>,
    half_open_max_calls: Option<u32>,
    success_threshold: Option<u32>,
    slow_call: Option<String>,
    backend: Option<String>,
    fail_mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitToml {
    per_second: Option<u32>,
    per_minute: Option<u32>,
    burst: Option<u32>,
    on_limit: Option<String>,
    max_wait: Option<String>,
    max_queue: Option<usize>,
    idle_timeout: Option<String>,
    backend: Option<String>,
    fail_mode: Option<String>,
}

/// The reserved `[redis]` table.
#[derive(Debug, Deserialize)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[serde(deny_unknown_fields)]
struct RedisToml {
    url: Option<String>,
    timeout: Option<String>,
    retry_interval: Option<String>,
    sync_interval: Option<String>,
    key_prefix: Option<String>,
    pool_size: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkheadToml {
    max_concurrent: Option<u32>,
    max_wait: Option<String>,
}

fn err(path: String, message: impl Into<String>) -> ConfigError {
    ConfigError::new(path, message)
}

fn dur(path: &str, key: &str, text: &Option<String>) -> Result<Option<Duration>, ConfigError> {
    text.as_deref()
        .map(|t| duration::parse(t).map_err(|m| err(format!("{path}.{key}"), m)))
        .transpose()
}

/// Prefix a builder's error with the table path (`name.retry.max_attempts`).
fn at(path: &str) -> impl Fn(ConfigError) -> ConfigError + '_ {
    move |e| err(format!("{path}.{}", e.field()), e.message())
}

impl Registry {
    /// Load named configs from TOML text (see [`config`](crate::config) for the format) and
    /// apply them: each name's instances are (re-)configured and the name becomes a preset.
    ///
    /// Nothing is applied unless the whole text is valid.
    pub fn load_toml(&self, text: &str) -> Result<(), ConfigError> {
        let syntax = |e: toml::de::Error| err("toml".into(), e.to_string().trim_end().to_string());
        let mut table: toml::Table = toml::from_str(text).map_err(syntax)?;
        let redis = table
            .remove("redis")
            .map(|t| t.try_into::<RedisToml>().map_err(syntax))
            .transpose()?
            .map(|t| redis_backend(&t))
            .transpose()?;
        let sections: BTreeMap<String, Section> =
            toml::Value::Table(table).try_into().map_err(syntax)?;
        let mut resolved: BTreeMap<String, ResilienceConfig> = BTreeMap::new();
        for name in sections.keys() {
            resolve(self, &sections, name, &mut resolved, &mut Vec::new())?;
        }
        #[cfg(feature = "redis")]
        if let Some(config) = redis {
            crate::redis::configure(config)?;
        }
        #[cfg(not(feature = "redis"))]
        let _: Option<()> = redis;
        for (name, config) in resolved {
            self.configure(&name, config);
        }
        Ok(())
    }

    /// [`load_toml`](Self::load_toml) from a file.
    pub fn load_toml_file(&self, path: impl AsRef<std::path::Path>) -> Result<(), ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("file".into(), format!("cannot read {}: {e}", path.display())))?;
        self.load_toml(&text)
    }
}

/// The `[redis]` table: the backend shared instances use (`url` falls back to
/// `RESILIENCE_REDIS_URL`).
#[cfg(feature = "redis")]
fn redis_backend(t: &RedisToml) -> Result<crate::redis::RedisConfig, ConfigError> {
    use crate::redis::{RedisConfig, URL_ENV};
    let url = match (&t.url, std::env::var(URL_ENV)) {
        (Some(url), _) => url.clone(),
        (None, Ok(url)) => url,
        (None, Err(_)) => {
            return Err(err("redis.url".into(), format!("is required (or set {URL_ENV})")));
        }
    };
    let mut b = RedisConfig::builder(url);
    if let Some(d) = dur("redis", "timeout", &t.timeout)? {
        b = b.timeout(d);
    }
    if let Some(d) = dur("redis", "retry_interval", &t.retry_interval)? {
        b = b.retry_interval(d);
    }
    if let Some(d) = dur("redis", "sync_interval", &t.sync_interval)? {
        b = b.sync_interval(d);
    }
    if let Some(p) = &t.key_prefix {
        b = b.key_prefix(p.clone());
    }
    if let Some(n) = t.pool_size {
        b = b.pool_size(n);
    }
    b.build()
}

/// Without the `redis` feature a `[redis]` table is refused.
#[cfg(not(feature = "redis"))]
fn redis_backend(_: &RedisToml) -> Result<(), ConfigError> {
    Err(err(
        "redis".into(),
        "the `[redis]` table needs the crate feature `redis` (resilience = { features = [\"redis\"] })",
    ))
}

/// `backend = "local" | "redis"` with `fail_mode = "open" | "closed"`; `inherited` is the
/// backend of the `base` the table extends (a fail mode alone keeps its Redis backend).
fn backend(
    path: &str,
    backend: &Option<String>,
    fail_mode: &Option<String>,
    inherited: Option<Backend>,
) -> Result<Option<Backend>, ConfigError> {
    let fail = fail_mode.as_deref().map(|m| m.parse::<FailMode>().map_err(at(path))).transpose()?;
    let written = backend.as_deref().map(str::parse::<Backend>).transpose().map_err(at(path))?;
    match (written, fail) {
        (Some(Backend::Redis(_)), fail) => Ok(Some(Backend::Redis(fail.unwrap_or_default()))),
        (None, Some(fail)) if matches!(inherited, Some(Backend::Redis(_))) => {
            Ok(Some(Backend::Redis(fail)))
        }
        (_, Some(_)) => Err(err(
            format!("{path}.fail_mode"),
            "applies only to backend = \"redis\"; add it or remove fail_mode",
        )),
        (other, None) => Ok(other),
    }
}

fn resolve(
    registry: &Registry,
    sections: &BTreeMap<String, Section>,
    name: &str,
    done: &mut BTreeMap<String, ResilienceConfig>,
    stack: &mut Vec<String>,
) -> Result<ResilienceConfig, ConfigError> {
    if let Some(c) = done.get(name) {
        return Ok(c.clone());
    }
    if stack.iter().any(|s| s == name) {
        stack.push(name.to_string());
        return Err(err(
            format!("{name}.base"),
            format!("inheritance cycle: {}", stack.join(" -> ")),
        ));
    }
    let Some(section) = sections.get(name) else {
        return registry.preset(name).ok_or_else(|| {
            err(
                format!("{}.base", stack.last().map_or(name, String::as_str)),
                format!("`{name}` is neither a table of this file nor a preset (built in: database, api, file, postgres, shopify, development)"),
            )
        });
    };
    stack.push(name.to_string());
    let base = match &section.base {
        Some(b) => resolve(registry, sections, b, done, stack)?,
        None => ResilienceConfig::new(),
    };
    stack.pop();
    let config = apply(name, section, base)?;
    done.insert(name.to_string(), config.clone());
    Ok(config)
}

fn apply(
    name: &str,
    s: &Section,
    mut c: ResilienceConfig,
) -> Result<ResilienceConfig, ConfigError> {
    if let Some(t) = dur(name, "timeout", &s.timeout)? {
        if t.is_zero() {
            return Err(err(format!("{name}.timeout"), "must be a positive duration (got 0s)"));
        }
        c.timeout = Some(t);
    }
    if let Some(r) = &s.retry {
        c.retry = Some(retry(&format!("{name}.retry"), r, c.retry.take())?);
    }
    if let Some(b) = &s.circuit_breaker {
        c.circuit_breaker =
            Some(circuit(&format!("{name}.circuit_breaker"), b, c.circuit_breaker.take())?);
    }
    if let Some(l) = &s.rate_limit {
        c.rate_limit = Some(limit(&format!("{name}.rate_limit"), l, c.rate_limit.take())?);
    }
    if let Some(b) = &s.bulkhead {
        c.bulkhead = Some(bulkhead(&format!("{name}.bulkhead"), b, c.bulkhead.take())?);
    }
    Ok(c)
}

fn jitter(path: &str, text: &str) -> Result<Jitter, ConfigError> {
    let t = text.trim();
    match t {
        "none" => Ok(Jitter::None),
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        _ => {
            let factor = |prefix: &str| {
                t.strip_prefix(prefix)
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|f| f.trim().parse::<f64>().ok())
            };
            if let Some(f) = factor("proportional(") {
                return Ok(Jitter::Proportional(f));
            }
            if let Some(low) = factor("ratio(") {
                return Ok(Jitter::Ratio(low));
            }
            Err(err(
                format!("{path}.jitter"),
                format!(
                    "`{t}` is not a jitter; use none, full, equal, proportional(0.25) or ratio(0.5)"
                ),
            ))
        }
    }
}

fn retry(path: &str, t: &RetryToml, base: Option<RetryPolicy>) -> Result<RetryPolicy, ConfigError> {
    let base_backoff = base.as_ref().map(|b| *b.backoff()).unwrap_or_default();
    let mut b = base.map(|p| p.to_builder()).unwrap_or_else(RetryPolicy::builder);
    if let Some(n) = t.max_attempts {
        b = b.max_attempts(n);
    }
    let initial = dur(path, "initial_delay", &t.initial_delay)?;
    let max_delay = dur(path, "max_delay", &t.max_delay)?;
    if t.backoff.is_some()
        || initial.is_some()
        || max_delay.is_some()
        || t.multiplier.is_some()
        || t.jitter.is_some()
    {
        let strategy = match t.backoff.as_deref() {
            None => base_backoff.strategy(),
            Some("constant") => Strategy::Constant,
            Some("linear") => Strategy::Linear,
            Some("exponential") => Strategy::Exponential,
            Some("fibonacci") => Strategy::Fibonacci,
            Some("decorrelated") => Strategy::Decorrelated,
            Some(other) => {
                return Err(err(
                    format!("{path}.backoff"),
                    format!(
                        "`{other}` is not a backoff; use constant, linear, exponential, fibonacci or decorrelated"
                    ),
                ));
            }
        };
        let initial = initial.unwrap_or(base_backoff.initial());
        let mut backoff = match strategy {
            Strategy::Constant => Backoff::constant(initial),
            Strategy::Linear => Backoff::linear(initial),
            Strategy::Fibonacci => Backoff::fibonacci(initial),
            Strategy::Decorrelated => Backoff::decorrelated(initial),
            Strategy::Exponential => Backoff::exponential(initial),
        };
        // Keep the inherited shape where the table does not override it.
        backoff = backoff
            .with_max_delay(base_backoff.max_delay().max(initial))
            .with_jitter(base_backoff.jitter());
        if strategy == base_backoff.strategy() {
            backoff = backoff.with_multiplier(base_backoff.multiplier());
        }
        if let Some(m) = t.multiplier {
            backoff = backoff.with_multiplier(m);
        }
        if let Some(cap) = max_delay {
            backoff = backoff.with_max_delay(cap);
        }
        if let Some(j) = &t.jitter {
            backoff = backoff.with_jitter(jitter(path, j)?);
        }
        backoff.validate().map_err(at(path))?;
        b = b.backoff(backoff);
    }
    if let Some(d) = dur(path, "max_elapsed", &t.max_elapsed)? {
        b = b.max_elapsed(d);
    }
    if let Some(h) = t.honor_retry_after {
        b = b.honor_retry_after(h);
    }
    if let Some(name) = &t.budget {
        b = b.budget(crate::registry().retry_budget(name));
    }
    b.build().map_err(at(path))
}

fn circuit(
    path: &str,
    t: &CircuitToml,
    base: Option<CircuitBreakerConfig>,
) -> Result<CircuitBreakerConfig, ConfigError> {
    let inherited = base.as_ref().map(CircuitBreakerConfig::backend);
    let mut b = base.map(|c| c.to_builder()).unwrap_or_else(CircuitBreakerConfig::builder);
    if t.failure_threshold.is_some() && t.failure_rate.is_some() {
        return Err(err(
            format!("{path}.failure_rate"),
            "set either failure_threshold (consecutive failures) or failure_rate (over a window), not both",
        ));
    }
    if let Some(n) = t.failure_threshold {
        b = b.failure_threshold(n);
    }
    if let Some(r) = t.failure_rate {
        b = b.failure_rate(r);
    }
    let window_duration = dur(path, "window_duration", &t.window_duration)?;
    match (t.window_calls, window_duration) {
        (Some(_), Some(_)) => {
            return Err(err(
                format!("{path}.window_duration"),
                "set either window_calls or window_duration, not both",
            ));
        }
        (Some(n), None) => b = b.window(Window::calls(n)),
        (None, Some(d)) => b = b.window(Window::duration(d)),
        (None, None) => {}
    }
    if let Some(n) = t.min_calls {
        b = b.min_calls(n);
    }
    if let Some(d) = dur(path, "recovery_timeout", &t.recovery_timeout)? {
        b = b.recovery_timeout(d);
    }
    if let Some(j) = t.recovery_jitter {
        b = b.recovery_jitter(j);
    }
    if let Some(n) = t.half_open_max_calls {
        b = b.half_open_max_calls(n);
    }
    if let Some(n) = t.success_threshold {
        b = b.success_threshold(n);
    }
    if let Some(d) = dur(path, "slow_call", &t.slow_call)? {
        b = b.slow_call(d);
    }
    if let Some(backend) = backend(path, &t.backend, &t.fail_mode, inherited)? {
        b = b.backend(backend);
    }
    b.build().map_err(at(path))
}

fn limit(
    path: &str,
    t: &LimitToml,
    base: Option<RateLimitConfig>,
) -> Result<RateLimitConfig, ConfigError> {
    let inherited = base.as_ref().map(RateLimitConfig::backend);
    let mut b = base.map(|c| c.to_builder()).unwrap_or_else(RateLimitConfig::builder);
    if t.per_second.is_some() && t.per_minute.is_some() {
        return Err(err(
            format!("{path}.per_minute"),
            "set either per_second or per_minute, not both",
        ));
    }
    if let Some(n) = t.per_second {
        b = b.per_second(n);
    }
    if let Some(n) = t.per_minute {
        b = b.per_minute(n);
    }
    if let Some(n) = t.burst {
        b = b.burst(n);
    }
    if let Some(mode) = &t.on_limit {
        b = b.on_limit(match mode.as_str() {
            "wait" => OnLimit::Wait,
            "reject" => OnLimit::Reject,
            "queue" => OnLimit::Queue,
            other => {
                return Err(err(
                    format!("{path}.on_limit"),
                    format!("`{other}` is not a policy; use wait, reject or queue"),
                ));
            }
        });
    }
    if let Some(d) = dur(path, "max_wait", &t.max_wait)? {
        b = b.max_wait(d);
    }
    if let Some(n) = t.max_queue {
        b = b.max_queue(n);
    }
    if let Some(d) = dur(path, "idle_timeout", &t.idle_timeout)? {
        b = b.idle_timeout(d);
    }
    if let Some(backend) = backend(path, &t.backend, &t.fail_mode, inherited)? {
        b = b.backend(backend);
    }
    b.build().map_err(at(path))
}

fn bulkhead(
    path: &str,
    t: &BulkheadToml,
    base: Option<BulkheadConfig>,
) -> Result<BulkheadConfig, ConfigError> {
    let mut b = base.map(|c| c.to_builder()).unwrap_or_else(BulkheadConfig::builder);
    if let Some(n) = t.max_concurrent {
        b = b.max_concurrent(n);
    }
    if let Some(d) = dur(path, "max_wait", &t.max_wait)? {
        b = b.max_wait(d);
    }
    b.build().map_err(at(path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn jitter_of(text: &str) -> Result<Jitter, ConfigError> {
        let registry = Registry::new();
        registry.load_toml(&format!("[j.retry]\njitter = \"{text}\""))?;
        let retry = registry.preset("j").and_then(|c| c.retry).unwrap();
        Ok(retry.backoff().jitter())
    }

    #[test]
    fn every_jitter_mode_is_spelled_in_toml() {
        assert_eq!(jitter_of("none").unwrap(), Jitter::None);
        assert_eq!(jitter_of("full").unwrap(), Jitter::Full);
        assert_eq!(jitter_of("equal").unwrap(), Jitter::Equal);
        assert_eq!(jitter_of("proportional(0.25)").unwrap(), Jitter::Proportional(0.25));
        assert_eq!(jitter_of("ratio(0.5)").unwrap(), Jitter::Ratio(0.5));
    }

    #[test]
    fn bad_jitter_names_the_path_and_the_accepted_values() {
        let err = jitter_of("wobbly").unwrap_err();
        assert_eq!(err.field(), "j.retry.jitter");
        assert!(err.to_string().contains("ratio(0.5)"), "{err}");
        let err = jitter_of("ratio(2)").unwrap_err();
        assert_eq!(err.field(), "j.retry.jitter");
        assert!(err.to_string().contains("between 0 and 1"), "{err}");
    }
}
