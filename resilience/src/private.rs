//! Support for the code the attribute macros generate. **Not public API**: nothing here
//! is covered by semver; it changes with `resilience-macros`, which `resilience` pins to
//! an exact version.
//!
//! Glue only: generated code runs its layers with `crate::pipeline::layer`, its retry
//! hooks are a `crate::retry::Hooks` and its circuit classifier a
//! `crate::circuit::Predicates` (or, without `failure_if`, the error's `Classify` outcome
//! behind `ignore_if`, wrapped in a `crate::circuit::FailureIfOk` for `failure_if_ok`). What stays here is what a call site needs around them:
//! each layer resolves its named instance once per call site into a [`Site`] (a `static`
//! in the expansion), so a call costs one atomic load per layer on top of the runtime
//! call it makes; the return type's plumbing; the retry loop's adapter to the policy's
//! stepper; and the probe that picks default hooks, each a zero-sized function, so
//! dispatch is static.

use std::convert::Infallible;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::circuit::{CallOutcome, FailureClassifier, FailureIfOk, ResultClassifier};
use crate::classify::{Classify, RetryAfter};
use crate::config::LayerConfig;
use crate::pipeline::layer::Instance;
use crate::retry::{RetryHooks, Stepper};
use crate::{ConfigError, Error, Fault, ResilienceConfig, registry};

pub use crate::bulkhead::Bulkhead;
pub use crate::circuit::AdaptiveThrottle;
pub use crate::circuit::{Circuit, CircuitBreaker};
pub use crate::config::Value;
pub use crate::hedge::Hedge;
pub use crate::rate_limit::RateLimiter;
pub use crate::retry::RetryPolicy;
pub use crate::trace::{CallSite, attempt_async, fallback_used, traced, traced_async, traced_then};

/// The keyed breaker the attributes use (not public API).
pub type KeyedCircuitBreaker = crate::circuit::KeyedCircuitBreaker<String>;

/// The keyed limiter the attributes use (not public API).
pub type KeyedRateLimiter = crate::rate_limit::KeyedRateLimiter<String>;

// ----- resolution, once per call site ---------------------------------------------------

/// A call site's resolved instance: `None` inside when the layer is absent (a layer that
/// `#[resilient(preset = ..)]` implies but the preset does not define). Not public API.
pub struct Site<T>(OnceLock<Option<Arc<T>>>);

impl<T> Site<T> {
    /// An unresolved site.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Site(OnceLock::new())
    }

    /// The instance, resolving it on first use. A failed resolution is not cached: the
    /// call fails with `Error::Config` and the next call tries again.
    #[inline(always)]
    fn get_or_resolve(
        &'static self,
        resolve: impl FnOnce() -> Result<Option<Arc<T>>, ConfigError>,
    ) -> Handle<T> {
        if let Some(resolved) = self.0.get() {
            return Ok(resolved.as_ref());
        }
        self.resolve_slow(resolve)
    }

    #[cold]
    #[inline(never)]
    fn resolve_slow(
        &'static self,
        resolve: impl FnOnce() -> Result<Option<Arc<T>>, ConfigError>,
    ) -> Handle<T> {
        let resolved = resolve().map_err(|e| Box::new(Error::Config(e)))?;
        Ok(self.0.get_or_init(|| resolved).as_ref())
    }
}

/// A resolved layer (not public API). The error is boxed so that a handle is two words
/// with a trivial drop on the resolved path.
pub type Handle<T> = Result<Option<&'static Arc<T>>, Box<Error>>;

/// The preset an attribute names: a built-in name (checked at compile time), or
/// `user:NAME` for a preset registered at run time. A missing registered preset fails
/// every call that resolves it with `Error::Config`, and is logged once.
fn preset(name: Option<&str>) -> Result<Option<ResilienceConfig>, ConfigError> {
    use crate::presets::names::{BUILT_IN, USER_PREFIX};
    let Some(written) = name else { return Ok(None) };
    let name = written.strip_prefix(USER_PREFIX).unwrap_or(written);
    if let Some(config) = registry().preset(name) {
        return Ok(Some(config));
    }
    let message = if written.starts_with(USER_PREFIX) {
        format!(
            "no preset registered as `{name}` (`preset = \"{written}\"`): register it at startup, before the first call, with `registry().register_preset(\"{name}\", config)` or a `[{name}]` table in a loaded config file"
        )
    } else {
        format!(
            "no preset named `{name}`: the built-in presets are {}; name a preset registered at run time `preset = \"{USER_PREFIX}{name}\"`",
            BUILT_IN.join(", ")
        )
    };
    let error = ConfigError::new("preset", message);
    log_once(name, &error);
    Err(error)
}

/// Logs a missing preset the first time a call site fails to find it; later calls fail
/// with the same error, silently.
#[cold]
fn log_once(name: &str, error: &ConfigError) {
    static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut logged = LOGGED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !logged.iter().any(|n| n == name) {
        logged.push(name.to_owned());
        tracing::error!(target: "resilience", preset = name, error = %error, "preset not found: every call naming it fails with Error::Config");
    }
}

/// The base config of a layer: the preset's, if it has one. `Err(None)` = the layer is
/// absent (optional and not in the preset).
fn base<C>(
    preset_name: Option<&str>,
    optional: bool,
    layer: impl FnOnce(ResilienceConfig) -> Option<C>,
) -> Result<Option<C>, Option<ConfigError>> {
    let base = preset(preset_name).map_err(Some)?.and_then(layer);
    if base.is_none() && optional {
        return Err(None);
    }
    Ok(base)
}

/// Runs `resolve` unless the layer is absent.
fn present<C, T>(
    base: Result<Option<C>, Option<ConfigError>>,
    resolve: impl FnOnce(Option<C>) -> Result<Arc<T>, ConfigError>,
) -> Result<Option<Arc<T>>, ConfigError> {
    match base {
        Ok(base) => resolve(base).map(Some),
        Err(None) => Ok(None),
        Err(Some(e)) => Err(e),
    }
}

/// A call site's attribute literals (not public API): the instance name, the preset, and
/// the layer's `key = value` entries, read by the layer's config type
/// ([`LayerConfig::from_entries`]), the one place that validates them.
///
/// `name` is the name written (`name = ".."`) or the default `module_path!()::fn`; for a
/// method without a written name it is the method's name alone, and the call site passes
/// its [`Owner`] (`Self`'s type name) to the resolver, which prefixes it.
#[derive(Debug)]
pub struct LayerArgs {
    pub name: &'static str,
    pub preset: Option<&'static str>,
    pub optional: bool,
    pub entries: &'static [(&'static str, Value<'static>)],
}

/// The type owning a call site (not public API): `|| type_name::<Self>()` for a method
/// without a written name, [`no_owner`] otherwise. Called only when the call site
/// resolves, never on a call.
pub trait Owner: FnOnce() -> Option<&'static str> {}

impl<F: FnOnce() -> Option<&'static str>> Owner for F {}

/// The owner of a method's call (its span and whole-call event): `Self`'s type name
/// (not public API).
#[inline(always)]
pub fn owner_of<T: ?Sized>() -> Option<&'static str> {
    Some(std::any::type_name::<T>())
}

/// A call site that is not a method, or names its instance (not public API).
#[inline(always)]
pub fn no_owner() -> Option<&'static str> {
    None
}

impl LayerArgs {
    /// The layer's config: the entries over the preset's config (if any).
    fn config<C: LayerConfig>(&self, base: Option<C>) -> Result<C, ConfigError> {
        C::from_entries(base, self.entries, registry())
    }

    /// The instance name: `name`, prefixed with the owner's path for a method.
    fn instance_name(&self, owner: impl Owner) -> std::borrow::Cow<'static, str> {
        match owner() {
            Some(ty) => format!("{}::{}", type_path(ty), self.name).into(),
            None => self.name.into(),
        }
    }
}

/// A type name as `core::any::type_name` spells it, without generic arguments:
/// `app::Client<alloc::string::String>` → `app::Client`, so that every instantiation of a
/// generic type shares the call site's one instance under one name (not public API).
pub fn type_path(ty: &str) -> String {
    let mut path = String::with_capacity(ty.len());
    let mut depth = 0usize;
    for c in ty.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            c if depth == 0 => path.push(c),
            _ => {}
        }
    }
    path
}

/// Resolves a `#[circuit_breaker]` call site: registry config > attribute > preset >
/// defaults, in the mode that config sets, as
/// [`Registry::resolve_circuit`](crate::registry::Registry::resolve_circuit) does for
/// `Pipeline` and tower: a circuit
/// the registry or a config file sets to `mode = "adaptive_throttle"` is a throttle here
/// too (not public API).
#[inline(always)]
pub fn resolve_circuit(
    site: &'static CircuitSite,
    args: &LayerArgs,
    owner: impl Owner,
) -> CircuitHandle {
    if let Some(breaker) = site.breaker.get() {
        return CircuitHandle::Breaker(breaker);
    }
    CircuitHandle::Other(resolve_circuit_slow(site, args, owner))
}

#[cold]
#[inline(never)]
fn resolve_circuit_slow(
    site: &'static CircuitSite,
    args: &LayerArgs,
    owner: impl Owner,
) -> Result<Option<&'static Circuit>, Box<Error>> {
    if let Some(resolved) = site.resolved.get() {
        return Ok(resolved.as_ref());
    }
    let resolved = match base(args.preset, args.optional, |p| p.circuit_breaker) {
        Ok(base) => {
            registry().resolve_circuit(&args.instance_name(owner), || args.config(base)).map(Some)
        }
        Err(None) => Ok(None),
        Err(Some(e)) => Err(e),
    };
    let resolved = resolved.map_err(|e| Box::new(Error::Config(e)))?;
    let resolved = site.resolved.get_or_init(|| resolved).as_ref();
    if let Some(Circuit::Breaker(breaker)) = resolved {
        // From now on a call finds its breaker with one check.
        let _ = site.breaker.set(&**breaker);
    }
    Ok(resolved)
}

/// A `#[circuit_breaker]` call site's resolved circuit, held without another `Arc`; a
/// breaker (the usual case) is also kept as a plain reference, so that a call reaches it
/// with one check (not public API).
pub struct CircuitSite {
    /// The breaker, once the site resolved to one.
    breaker: OnceLock<&'static CircuitBreaker>,
    /// What the site resolved to: a breaker, a throttle, or no circuit.
    resolved: OnceLock<Option<Circuit>>,
}

impl CircuitSite {
    /// An unresolved site.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        CircuitSite { breaker: OnceLock::new(), resolved: OnceLock::new() }
    }
}

/// A resolved [`CircuitSite`] (not public API).
pub enum CircuitHandle {
    /// The site's breaker.
    Breaker(&'static CircuitBreaker),
    /// A throttle, no circuit, or the site's config error.
    Other(Result<Option<&'static Circuit>, Box<Error>>),
}

/// The attempt through a call site's circuit, a breaker or a throttle as it resolved (see
/// [`resolve_circuit`]; not public API).
#[inline(always)]
pub fn registry_circuit<T, E, C, F>(
    circuit: &CircuitHandle,
    classifier: &C,
    attempt: F,
) -> Result<T, Fault<E>>
where
    C: ResultClassifier<T, E>,
    F: FnOnce() -> Result<T, Fault<E>>,
{
    match circuit {
        CircuitHandle::Breaker(breaker) => breaker.run(classifier, attempt),
        CircuitHandle::Other(other) => registry_other(other, classifier, attempt),
    }
}

/// A sync function under `#[circuit_breaker]` alone (not public API): when nothing
/// listens to the call and its breaker admits it on the closed fast path, the body's
/// `Result<T, E>` goes through the breaker and back to the caller as it is, without the
/// pipeline's `Fault` round trip; any other call runs as [`traced_then`] over
/// [`registry_circuit`] runs it (the same spans, events, metrics and outcomes), out of
/// line, so that the bare path keeps a small frame.
#[inline(always)]
pub fn circuit_then<R, C, F>(
    site: &'static CallSite,
    owner: impl Owner,
    resolve: impl FnOnce() -> CircuitHandle,
    classifier: &C,
    body: F,
    finish: Finish<R>,
) -> R
where
    R: ResilientReturn,
    C: ResultClassifier<R::Ok, R::Err>,
    F: FnOnce() -> R,
{
    let listening = crate::telemetry::word();
    if listening != 0 {
        let pipeline = || registry_circuit(&resolve(), classifier, || inner(body()));
        return crate::trace::traced_slow_then(site, owner, listening, pipeline, finish);
    }
    match resolve() {
        CircuitHandle::Breaker(breaker) => R::from_result(breaker.call_fast_or(
            classifier,
            || body().into_result(),
            |op| breaker_slow(breaker, classifier, op, finish),
        )),
        other => circuit_other(other, classifier, body, finish),
    }
}

/// [`circuit_then`] for a call site that resolved to a throttle, no circuit, or a config
/// error.
#[inline(never)]
fn circuit_other<R, C, F>(circuit: CircuitHandle, classifier: &C, body: F, finish: Finish<R>) -> R
where
    R: ResilientReturn,
    C: ResultClassifier<R::Ok, R::Err>,
    F: FnOnce() -> R,
{
    finish(registry_circuit(&circuit, classifier, || inner(body())))
}

/// [`circuit_then`] past the closed fast path: the pipeline's breaker call.
#[inline(never)]
fn breaker_slow<R, C, F>(
    breaker: &CircuitBreaker,
    classifier: &C,
    op: F,
    finish: Finish<R>,
) -> Result<R::Ok, R::Err>
where
    R: ResilientReturn,
    C: ResultClassifier<R::Ok, R::Err>,
    F: FnOnce() -> Result<R::Ok, R::Err>,
{
    finish(breaker.run(classifier, || op().map_err(Fault::Inner))).into_result()
}

/// [`registry_circuit`] past a breaker: a throttle, no circuit, or a config error.
#[inline(never)]
fn registry_other<T, E, C, F>(
    circuit: &Result<Option<&'static Circuit>, Box<Error>>,
    classifier: &C,
    attempt: F,
) -> Result<T, Fault<E>>
where
    C: ResultClassifier<T, E>,
    F: FnOnce() -> Result<T, Fault<E>>,
{
    use crate::pipeline::layer;
    match circuit {
        Ok(Some(circuit)) => match circuit {
            Circuit::Breaker(breaker) => layer::circuit(Some(&**breaker), classifier, attempt),
            Circuit::Throttle(throttle) => layer::throttle(Some(&**throttle), classifier, attempt),
        },
        Ok(None) => layer::circuit(None, classifier, attempt),
        Err(e) => unresolved(e),
    }
}

/// [`registry_circuit`] for a future (not public API).
#[cfg(feature = "tokio")]
pub async fn registry_circuit_async<T, E, C, Fut>(
    circuit: &CircuitHandle,
    classifier: &C,
    attempt: Fut,
) -> Result<T, Fault<E>>
where
    C: ResultClassifier<T, E>,
    Fut: Future<Output = Result<T, Fault<E>>>,
{
    use crate::pipeline::layer;
    match circuit {
        CircuitHandle::Breaker(breaker) => {
            layer::circuit_async(Some(*breaker), classifier, attempt).await
        }
        CircuitHandle::Other(Ok(Some(circuit))) => match circuit {
            Circuit::Breaker(breaker) => {
                layer::circuit_async(Some(&**breaker), classifier, attempt).await
            }
            Circuit::Throttle(throttle) => {
                layer::throttle_async(Some(&**throttle), classifier, attempt).await
            }
        },
        CircuitHandle::Other(Ok(None)) => attempt.await,
        CircuitHandle::Other(Err(e)) => unresolved(e),
    }
}

/// A call site whose circuit did not resolve: its config error, as a rejection.
#[cold]
#[inline(never)]
fn unresolved<T, E>(e: &Error) -> Result<T, Fault<E>> {
    Err(Fault::Rejected(e.clone()))
}

/// Resolves a `#[circuit_breaker(mode = "adaptive_throttle")]` call site: the circuit of
/// that name in the registry's mode (not public API).
#[inline]
pub fn resolve_adaptive_throttle(
    site: &'static Site<AdaptiveThrottle>,
    args: &LayerArgs,
    owner: impl Owner,
) -> Handle<AdaptiveThrottle> {
    site.get_or_resolve(|| {
        present(base(args.preset, args.optional, |p| p.circuit_breaker), |base| {
            let name = args.instance_name(owner);
            match registry().resolve_circuit(&name, || args.config(base))? {
                crate::circuit::Circuit::Throttle(throttle) => Ok(throttle),
                crate::circuit::Circuit::Breaker(_) => Err(ConfigError::new(
                    "mode",
                    format!("circuit `{name}` is configured as a circuit breaker in the registry, but this call site asks for mode = \"adaptive_throttle\""),
                )),
            }
        })
    })
}

/// Resolves a `#[circuit_breaker(key = ..)]` call site (not public API).
#[inline]
pub fn resolve_keyed_circuit_breaker(
    site: &'static Site<KeyedCircuitBreaker>,
    args: &LayerArgs,
    owner: impl Owner,
) -> Handle<KeyedCircuitBreaker> {
    site.get_or_resolve(|| {
        present(base(args.preset, args.optional, |p| p.circuit_breaker), |base| {
            registry()
                .keyed_circuit_breakers()
                .resolve(&args.instance_name(owner), || args.config(base))
        })
    })
}

/// Resolves a `#[rate_limit]` call site (not public API).
#[inline]
pub fn resolve_rate_limiter(
    site: &'static Site<RateLimiter>,
    args: &LayerArgs,
    owner: impl Owner,
) -> Handle<RateLimiter> {
    site.get_or_resolve(|| {
        present(base(args.preset, args.optional, |p| p.rate_limit), |base| {
            registry().rate_limiters().resolve(&args.instance_name(owner), || args.config(base))
        })
    })
}

/// Resolves a `#[rate_limit(key = ..)]` call site (not public API).
#[inline]
pub fn resolve_keyed_rate_limiter(
    site: &'static Site<KeyedRateLimiter>,
    args: &LayerArgs,
    owner: impl Owner,
) -> Handle<KeyedRateLimiter> {
    site.get_or_resolve(|| {
        present(base(args.preset, args.optional, |p| p.rate_limit), |base| {
            registry()
                .keyed_rate_limiters()
                .resolve(&args.instance_name(owner), || args.config(base))
        })
    })
}

/// Resolves a `#[bulkhead]` call site (not public API).
#[inline]
pub fn resolve_bulkhead(
    site: &'static Site<Bulkhead>,
    args: &LayerArgs,
    owner: impl Owner,
) -> Handle<Bulkhead> {
    site.get_or_resolve(|| {
        present(base(args.preset, args.optional, |p| p.bulkhead), |base| {
            registry().bulkheads().resolve(&args.instance_name(owner), || args.config(base))
        })
    })
}

/// Resolves a `#[hedge]` call site (not public API).
#[inline]
pub fn resolve_hedge(
    site: &'static Site<Hedge>,
    args: &LayerArgs,
    owner: impl Owner,
) -> Handle<Hedge> {
    site.get_or_resolve(|| {
        present(base(args.preset, args.optional, |p| p.hedge), |base| {
            registry().hedges().resolve(&args.instance_name(owner), || args.config(base))
        })
    })
}

/// Resolves a `#[timeout]` call site: the literal, else the preset's timeout (not public
/// API).
#[inline]
pub fn resolve_timeout(
    site: &'static Site<Duration>,
    args: &LayerArgs,
    _owner: impl Owner,
) -> Handle<Duration> {
    site.get_or_resolve(|| {
        if let Some(limit) = crate::config::timeout_from_entries(args.entries)? {
            return Ok(Some(Arc::new(limit)));
        }
        match base(args.preset, args.optional, |p| p.timeout) {
            Ok(Some(limit)) => Ok(Some(Arc::new(limit))),
            Ok(None) => Err(ConfigError::new(
                "timeout",
                format!(
                    "preset `{}` has no timeout: write `timeout(5s)`",
                    args.preset.unwrap_or("")
                ),
            )),
            Err(None) => Ok(None),
            Err(Some(e)) => Err(e),
        }
    })
}

/// Resolves a `#[retry]` call site: a policy set with `Registry::configure_retry` for the
/// operation's name > attribute > preset > defaults (not public API).
#[inline]
pub fn resolve_retry(
    site: &'static Site<RetryPolicy>,
    args: &LayerArgs,
    owner: impl Owner,
) -> Handle<RetryPolicy> {
    site.get_or_resolve(|| {
        let base = base(args.preset, args.optional, |p| {
            let scope = p.retry_budget;
            p.retry.map(|retry| (retry, scope))
        });
        present(base, |base| {
            let (base, scope) = base.map_or((None, None), |(retry, scope)| (Some(retry), scope));
            let name = args.instance_name(owner);
            let reg = registry();
            reg.resolve_retry(&name, || {
                let policy = args.config::<RetryPolicy>(base)?.to_builder().name(&*name).build()?;
                // The preset's budget: the call site's own unless the preset shares one
                // (an attribute's `budget = ".."` has bound one already).
                Ok(reg.bind_retry_budget(&policy, scope.as_ref(), &name))
            })
            .map(Arc::new)
        })
    })
}

// ----- the return type ---------------------------------------------------------------

/// The `Result<T, E>` a wrapped function returns (not public API).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result`: a function under a resilience attribute must return `Result<T, E>`",
    label = "return `Result<T, E>` where `E: From<resilience::Error>`",
    note = "rejections (open circuit, rate limit, full bulkhead, timeout) reach the caller as `Err(E::from(resilience::Error))`; only `#[circuit_breaker(fallback = ..)]` accepts other return types"
)]
pub trait ResilientReturn {
    /// `T`.
    type Ok;
    /// `E`.
    type Err;
    /// The value as a `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
    /// The `Result` as the value.
    fn from_result(result: Result<Self::Ok, Self::Err>) -> Self;
}

impl<T, E> ResilientReturn for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline(always)]
    fn into_result(self) -> Result<T, E> {
        self
    }
    #[inline(always)]
    fn from_result(result: Result<T, E>) -> Self {
        result
    }
}

/// `T` of the function's `Result<T, E>` (not public API).
pub type OkOf<R> = <R as ResilientReturn>::Ok;
/// `E` of the function's `Result<T, E>` (not public API).
pub type ErrOf<R> = <R as ResilientReturn>::Err;

/// An error type that rejections convert into (not public API).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a resilience rejection: it does not implement `From<resilience::Error>`",
    label = "the error type of this return type cannot carry an open circuit, a rate limit, a full bulkhead or a timeout",
    note = "a rejection reaches the caller as `E::from(resilience::Error)`; if `{Self}` is your own type, add `impl From<resilience::Error> for {Self}` (with thiserror: a `#[from] resilience::Error` variant)",
    note = "if `{Self}` belongs to another crate, that impl is not yours to write (the orphan rule): return an error type of your own with a variant for `{Self}` and one for `resilience::Error`, or a type that already converts from any error (`Box<dyn std::error::Error + Send + Sync>`, `anyhow::Error`); `std::io::Result<T>` works as is"
)]
pub trait FromResilienceError: Sized {
    /// `E::from(e)`.
    fn from_resilience(e: Error) -> Self;
}

impl<E: From<Error>> FromResilienceError for E {
    fn from_resilience(e: Error) -> Self {
        E::from(e)
    }
}

/// Runs the sync body (not public API).
#[inline(always)]
pub fn call<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// The body's result as seen by the layers (not public API).
#[inline(always)]
pub fn inner<R: ResilientReturn>(r: R) -> Result<R::Ok, Fault<R::Err>> {
    r.into_result().map_err(Fault::Inner)
}

/// A non-`Result` body's value as seen by the layers (not public API).
#[inline(always)]
pub fn inner_value<T>(value: T) -> Result<T, Fault<Infallible>> {
    Ok(value)
}

/// The async body's result as seen by the layers (not public API).
pub async fn inner_async<R: ResilientReturn>(
    body: impl Future<Output = R>,
) -> Result<R::Ok, Fault<R::Err>> {
    body.await.into_result().map_err(Fault::Inner)
}

/// A non-`Result` async body's value as seen by the layers (not public API).
pub async fn inner_value_async<T>(body: impl Future<Output = T>) -> Result<T, Fault<Infallible>> {
    Ok(body.await)
}

/// Turns the pipeline's result into the return value (not public API).
pub type Finish<R> = fn(Result<OkOf<R>, Fault<ErrOf<R>>>) -> R;

/// The function turning the pipeline's result into the return value `R`. It takes no
/// argument, so a return type that is not a `Result`, or an error type without
/// `From<resilience::Error>`, is reported at the user's return type (not public API).
#[inline(always)]
pub fn finisher<R>() -> Finish<R>
where
    R: ResilientReturn,
    R::Err: FromResilienceError,
{
    finish::<R>
}

#[inline(always)]
fn finish<R>(result: Result<R::Ok, Fault<R::Err>>) -> R
where
    R: ResilientReturn,
    R::Err: FromResilienceError,
{
    R::from_result(match result {
        Ok(value) => Ok(value),
        Err(Fault::Inner(e)) => Err(e),
        Err(Fault::Rejected(e)) => Err(R::Err::from_resilience(e)),
    })
}

/// Whether the fallback answers (not public API).
pub enum Outcome<X> {
    /// Return this.
    Done(X),
    /// Call the fallback; whether the error is a layer's refusal rather than the
    /// operation's own.
    Fallback(bool),
}

/// An open circuit goes to the fallback; anything else is returned (not public API).
pub fn open_circuit<T, E>(result: Result<T, Fault<E>>) -> Outcome<Result<T, Fault<E>>> {
    match result {
        Err(Fault::Rejected(Error::CircuitOpen { .. })) => Outcome::Fallback(true),
        other => Outcome::Done(other),
    }
}

/// `#[fallback(.., on = "rejected")]`: a layer's refusal goes to the fallback (not public
/// API).
pub fn fallback_rejected<T, E>(result: Result<T, Fault<E>>) -> Outcome<Result<T, Fault<E>>> {
    match result {
        Err(Fault::Rejected(_)) => Outcome::Fallback(true),
        other => Outcome::Done(other),
    }
}

/// `#[fallback(.., on = "any")]`: every error goes to the fallback (not public API).
pub fn fallback_any<T, E>(result: Result<T, Fault<E>>) -> Outcome<Result<T, Fault<E>>> {
    match result {
        Err(fault) => Outcome::Fallback(matches!(fault, Fault::Rejected(_))),
        Ok(value) => Outcome::Done(Ok(value)),
    }
}

/// `#[fallback(.., on = predicate)]`: the errors `predicate` picks, a rejection seen as
/// `E::from(resilience::Error)`, go to the fallback (not public API).
pub fn fallback_when<T, E, P>(
    result: Result<T, Fault<E>>,
    predicate: P,
) -> Outcome<Result<T, Fault<E>>>
where
    E: FromResilienceError,
    P: Fn(&E) -> bool,
{
    let (error, rejected) = match result {
        Ok(value) => return Outcome::Done(Ok(value)),
        Err(Fault::Inner(e)) => (e, false),
        Err(Fault::Rejected(e)) => (E::from_resilience(e), true),
    };
    if predicate(&error) {
        Outcome::Fallback(rejected)
    } else {
        Outcome::Done(Err(Fault::Inner(error)))
    }
}

/// A non-`Result` function: any rejection goes to the fallback (not public API).
pub fn value_or_fallback<T>(result: Result<T, Fault<Infallible>>) -> Outcome<T> {
    match result {
        Ok(value) => Outcome::Done(value),
        Err(_) => Outcome::Fallback(true),
    }
}

/// `cost = expr` must be a `u32` (not public API).
#[inline(always)]
pub fn cost(cost: u32) -> u32 {
    cost
}

// ----- layers ------------------------------------------------------------------------
//
// The layers themselves are `crate::pipeline::layer`; a call site passes its resolved
// handle as the layer's instance.

impl<'a, X> Instance<'a, &'a X> for &'a Handle<X> {
    #[inline(always)]
    fn get(self) -> Result<Option<&'a X>, &'a Error> {
        match self {
            Ok(instance) => Ok(instance.map(|arc| &**arc)),
            Err(e) => Err(e),
        }
    }
}

impl<'a> Instance<'a, Duration> for &'a Handle<Duration> {
    #[inline(always)]
    fn get(self) -> Result<Option<Duration>, &'a Error> {
        match self {
            Ok(limit) => Ok(limit.map(|arc| **arc)),
            Err(e) => Err(e),
        }
    }
}

/// `key = expr` of `#[rate_limit]` as a string (not public API).
#[inline(always)]
pub fn rate_key<K: RateKey + ?Sized>(key: &K) -> std::borrow::Cow<'_, str> {
    key.key_str()
}

/// `key = expr` of `#[circuit_breaker]` as a string (not public API).
#[inline(always)]
pub fn circuit_key<K: RateKey + ?Sized>(key: &K) -> std::borrow::Cow<'_, str> {
    key.key_str()
}

/// The retry loop's sleep (not public API).
#[cfg(feature = "tokio")]
pub async fn sleep(delay: Duration) {
    tokio::time::sleep(delay).await;
}

/// A value usable as `key = ..` of `#[rate_limit]` (not public API).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a rate-limit key",
    label = "`key` must be a string or an integer",
    note = "use a string (`key = shop.domain`) or an integer (`key = shop.id`), or format one (`key = format!(\"{{}}:{{}}\", a, b)`)"
)]
pub trait RateKey {
    /// The key as a string (borrowed when it already is one).
    fn key_str(&self) -> std::borrow::Cow<'_, str>;
}

impl RateKey for str {
    fn key_str(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl RateKey for String {
    fn key_str(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl RateKey for Arc<str> {
    fn key_str(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl RateKey for std::borrow::Cow<'_, str> {
    fn key_str(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl<K: RateKey + ?Sized> RateKey for &K {
    fn key_str(&self) -> std::borrow::Cow<'_, str> {
        (**self).key_str()
    }
}

macro_rules! integer_keys {
    ($($t:ty)*) => {$(
        impl RateKey for $t {
            fn key_str(&self) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Owned(self.to_string())
            }
        }
    )*};
}
integer_keys!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

// ----- retry loop --------------------------------------------------------------------

/// What the loop does before an attempt (not public API).
pub enum Begin<T, E> {
    /// Run the attempt.
    Run,
    /// The policy could not be resolved: return this.
    Fail(Result<T, Fault<E>>),
}

/// What the loop does after an attempt (not public API).
pub enum Step<T, E> {
    /// Return this.
    Done(Result<T, Fault<E>>),
    /// Sleep, then run another attempt.
    Sleep(Duration),
}

/// The state of one call through `#[retry]` (not public API).
pub struct RetryLoop<'h, H> {
    stepper: Option<Stepper<'static>>,
    /// The attempt running now, 1-based (for its span).
    attempt: u32,
    /// Boxed, so that dropping a loop that resolved is a null check.
    failed: Option<Box<Error>>,
    hooks: &'h H,
}

impl<'h, H> RetryLoop<'h, H> {
    /// Starts a call (deposits in the retry budget).
    #[inline]
    pub fn new(handle: &Handle<RetryPolicy>, hooks: &'h H) -> Self {
        match handle {
            Ok(policy) => {
                let stepper = policy.map(|p| Stepper::start(p));
                RetryLoop { stepper, attempt: 0, failed: None, hooks }
            }
            Err(e) => RetryLoop { stepper: None, attempt: 0, failed: Some(e.clone()), hooks },
        }
    }

    /// Whether to run the next attempt.
    #[inline]
    pub fn begin<T, E>(&mut self) -> Begin<T, E> {
        match self.failed.take() {
            Some(e) => Begin::Fail(Err(Fault::Rejected(*e))),
            None => Begin::Run,
        }
    }

    /// The `resilience.attempt` span of the next attempt.
    #[inline(always)]
    pub fn attempt_span(&mut self) -> tracing::Span {
        self.attempt = self.attempt.saturating_add(1);
        crate::trace::attempt_span(self.attempt)
    }

    /// What to do with an attempt's result.
    #[inline]
    pub fn step<T, E>(&mut self, result: Result<T, Fault<E>>) -> Step<T, E>
    where
        E: Debug,
        H: RetryHooks<T, E>,
    {
        match &mut self.stepper {
            Some(stepper) => match stepper.next(self.hooks, result) {
                Ok(result) => Step::Done(result),
                Err(delay) => Step::Sleep(delay),
            },
            None => Step::Done(result),
        }
    }

    /// Runs one blocking attempt, inside the call's deadline if the policy has one.
    #[inline(always)]
    pub fn attempt<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.stepper {
            Some(stepper) => stepper.attempt(f),
            None => f(),
        }
    }

    /// Runs the next blocking attempt inside its `resilience.attempt` span (built only
    /// when a dispatcher may record it) and the call's deadline, if the policy has one:
    /// no disabled span to build, enter and drop on an attempt nobody records.
    #[inline(always)]
    pub fn run_attempt<T, E>(
        &mut self,
        f: impl FnOnce() -> Result<T, Fault<E>>,
    ) -> Result<T, Fault<E>> {
        self.attempt = self.attempt.saturating_add(1);
        let attempt = self.attempt;
        self.attempt(|| crate::trace::attempt_numbered(attempt, f))
    }

    /// Awaits one attempt, inside the call's deadline if the policy has one. The attempt is
    /// pinned by the caller, so that it is stored once, in the caller's future.
    #[cfg(feature = "tokio")]
    pub async fn attempt_async<F: Future>(&self, fut: std::pin::Pin<&mut F>) -> F::Output {
        match &self.stepper {
            Some(stepper) => stepper.attempt_async(fut).await,
            None => fut.await,
        }
    }

    /// The blocking sleep between attempts, on the policy's clock.
    pub fn sleep_blocking(&self, delay: Duration) {
        if let Some(stepper) = &self.stepper {
            stepper.sleep_blocking(delay);
        }
    }
}

// ----- default hooks: zero-sized, statically dispatched ------------------------------

/// Autoref specialization probe: picks the `Classify` / `RetryAfter` behaviour of a
/// concrete error type, or the default, as a zero-sized function for
/// `resilience::retry::Hooks` (not public API).
pub struct Probe<E>(PhantomData<fn() -> E>);

impl<E> Probe<E> {
    /// The probe.
    pub const NEW: Self = Probe(PhantomData);
}

/// Chosen for `E: Classify`: retry transient errors (not public API).
pub trait ByClassify<E> {
    /// `Classify::is_transient`.
    fn default_retry_if(&self) -> impl Fn(&E) -> bool;
}

impl<E: Classify> ByClassify<E> for &Probe<E> {
    fn default_retry_if(&self) -> impl Fn(&E) -> bool {
        E::is_transient
    }
}

/// Chosen for `E: Classify`: the breaker counts the error by its class (not public API).
pub trait ByClassOutcome<E> {
    /// `Classify::breaker_outcome`.
    fn default_breaker_outcome(&self) -> impl Fn(&E) -> CallOutcome;
}

impl<E: Classify> ByClassOutcome<E> for &Probe<E> {
    fn default_breaker_outcome(&self) -> impl Fn(&E) -> CallOutcome {
        E::breaker_outcome
    }
}

/// Chosen for `E: RetryAfter`: honour the error's hint (not public API).
pub trait ByRetryAfter<E> {
    /// `RetryAfter::retry_after`.
    fn default_retry_after(&self) -> impl Fn(&E) -> Option<Duration>;
}

impl<E: RetryAfter> ByRetryAfter<E> for &Probe<E> {
    fn default_retry_after(&self) -> impl Fn(&E) -> Option<Duration> {
        E::retry_after
    }
}

/// The fallback of both probes: retry every error, no hint (not public API).
pub trait ByDefault<E> {
    /// Retry every error.
    fn default_retry_if(&self) -> impl Fn(&E) -> bool {
        |_| true
    }

    /// No hint.
    fn default_retry_after(&self) -> impl Fn(&E) -> Option<Duration> {
        |_| None
    }

    /// Every error is a breaker failure.
    fn default_breaker_outcome(&self) -> impl Fn(&E) -> CallOutcome {
        |_| CallOutcome::Failure
    }
}

/// The breaker's classifier at a call site without `failure_if`: an error `ignore_if`
/// matches is ignored, any other counts as `default` says (not public API).
#[inline(always)]
pub fn ignore_then<E>(
    ignore_if: impl Fn(&E) -> bool,
    default: impl Fn(&E) -> CallOutcome,
) -> impl Fn(&E) -> CallOutcome {
    move |e| if ignore_if(e) { CallOutcome::Ignored } else { default(e) }
}

/// `failure_if_ok = ..` around the call site's error classifier (not public API).
#[inline(always)]
pub fn failure_if_ok<T, E, C: FailureClassifier<E>>(
    errors: C,
    failure_if_ok: impl Fn(&T) -> bool,
) -> impl ResultClassifier<T, E> {
    FailureIfOk::new(errors, failure_if_ok)
}

impl<E> ByDefault<E> for Probe<E> {}

// ----- the fallback's shape ----------------------------------------------------------

/// Autoref specialization probe on the value a fallback call produced: a future for an
/// `async fn`'s fallback, a value for a sync fn's. The wrong shape is one error naming
/// the rule, at the fallback (not public API).
pub struct FallbackProbe<V>(PhantomData<fn() -> V>);

/// The probe of `value`'s type (not public API).
#[inline(always)]
pub fn fallback_probe<V>(_value: &V) -> FallbackProbe<V> {
    FallbackProbe(PhantomData)
}

/// An `async fn`'s fallback returned a value: the fallback must be `async` (not public
/// API; nothing implements it).
#[diagnostic::on_unimplemented(
    message = "the fallback of an `async fn` must be an `async fn` too: it returned `{Self}`, not a future",
    label = "this fallback is a sync fn",
    note = "the fallback runs in place of the call and is awaited: declare it `async fn` with the same arguments and return type as the function it stands in for"
)]
pub trait AsyncFallbackMustBeAsync {
    /// Never called: nothing implements the trait.
    fn never<R>(self) -> R;
}

/// A sync fn's fallback returned a future: the fallback must be sync (not public API;
/// nothing implements it).
#[diagnostic::on_unimplemented(
    message = "the fallback of a sync fn must be a sync fn too: it returned the future `{Self}`",
    label = "this fallback is async",
    note = "a sync fn cannot await: make the fallback a plain `fn` with the same arguments and return type, or make the function `async`"
)]
pub trait SyncFallbackMustBeSync {
    /// Never called: nothing implements the trait.
    fn never<R>(self) -> R;
}

/// Chosen when the fallback returned a future (not public API).
pub trait FallbackIsFuture<V> {
    /// An `async fn`'s fallback: the future, to await.
    #[inline(always)]
    fn async_fallback(&self, value: V) -> V {
        value
    }

    /// A sync fn's fallback returned a future: refused.
    fn sync_fallback<R>(&self, value: V) -> R
    where
        V: SyncFallbackMustBeSync,
    {
        value.never()
    }
}

impl<V: Future> FallbackIsFuture<V> for &FallbackProbe<V> {}

/// Chosen when the fallback returned a value (not public API).
pub trait FallbackIsValue<V> {
    /// An `async fn`'s fallback returned a value: refused.
    fn async_fallback(&self, value: V) -> std::future::Ready<V>
    where
        V: AsyncFallbackMustBeAsync,
    {
        value.never()
    }

    /// A sync fn's fallback: the value.
    #[inline(always)]
    fn sync_fallback(&self, value: V) -> V {
        value
    }
}

impl<V> FallbackIsValue<V> for FallbackProbe<V> {}
