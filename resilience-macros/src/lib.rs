//! Attribute macros for [`resilience`](https://docs.rs/resilience).
//!
//! Do not depend on this crate directly: use the macros through `resilience`, which
//! re-exports them (`use resilience::{retry, circuit_breaker};`) and provides the runtime
//! their expansions call. Each attribute is documented below with an example and the
//! equivalent hand-written code.
//!
//! # What every attribute shares
//!
//! * **Where.** Sync `fn` and `async fn`; free functions and methods (`&self`,
//!   `&mut self`, `self`, `self: Arc<Self>`); trait impl methods, native `async fn` in
//!   traits and `#[async_trait]` methods (put `#[async_trait]` on the impl block as
//!   usual); generics, `where` clauses, `impl Trait` arguments; `fn .. -> impl Future`
//!   whose body ends in `async move { .. }`. The signature, visibility, docs and other
//!   attributes come out as written; only the body is rewritten, so `?` and `return` keep
//!   their meaning. The future of an `async fn` is `Send` when the body's is.
//! * **Errors.** The function returns `Result<T, E>` with `E: From<resilience::Error>`:
//!   an open circuit, a rate limit, a full bulkhead or a timeout reaches the caller as
//!   `Err(E::from(resilience::Error::..))`. Anything else is a compile error at the return
//!   type saying which impl to add (only `#[circuit_breaker(fallback = ..)]` accepts other
//!   return types). `std::io::Result<T>` works as is (a rejection becomes an `io::Error`
//!   carrying it); for an error type of another crate, which cannot get that impl in
//!   yours, return an error type of your own wrapping it, or
//!   `Box<dyn std::error::Error + Send + Sync>`.
//! * **Stacking.** Several attributes compose and **the written order is the runtime
//!   order**: the top attribute is the outermost layer, as with Python decorators.
//!   `#[retry] #[circuit_breaker] #[timeout(2s)]` is a retry around a breaker around a
//!   per-attempt timeout. (The top attribute absorbs the resilience attributes below it
//!   into one pipeline; attributes of other crates are left where they are.)
//! * **Interplay.** A retry never retries a `CircuitOpen` (nor a `Config` error) from a
//!   layer inside it; a `RateLimited` rejection is retried after at least its suggested
//!   wait, within `max_attempts` and the budget; `Timeout` and `BulkheadFull` are
//!   retried like transient errors. A breaker inside a retry counts **every attempt**; a
//!   breaker outside it counts one call. A timeout inside a breaker counts as a failure;
//!   other rejections from inside are ignored by the breaker.
//! * **Named instances.** Circuits, limiters and bulkheads live in the process-wide
//!   registry under their `name`; functions naming the same instance share it. The
//!   **default name** identifies the call site: a free function's is its module path and
//!   name (`my_crate::shopify::get_orders`); a method's (any receiver: `self`, `&self`,
//!   `&mut self`, `self: Arc<Self>`, `#[async_trait]` methods included) is the path of
//!   `Self` without generic arguments, then the method (`my_crate::clients::GitlabClient::get`,
//!   also for `Client<T>`: every `T` shares one instance), so `GitlabClient::get` and
//!   `BitbucketClient::get`, or two `impl Connector for X` blocks, never share a circuit
//!   or a limiter unless they write the same `name`. It is read from
//!   `core::any::type_name::<Self>()` once, when the call site resolves. An associated
//!   function without a receiver cannot see its `impl`, so its default is the module path
//!   and name (`my_crate::clients::new`): give it a `name` if two types define one. A
//!   trait's default method body is one call site for every implementing type, so its
//!   instance is shared by all of them (named after the first `Self` that calls it):
//!   name it, or put the attribute on the impls' methods.
//!   Each call site resolves its instance once (a `static` cell), never by string per
//!   call. **Precedence: registry > attribute > preset > defaults**: a config set in code
//!   (`registry().circuit_breakers().configure(..)`, `configure_retry(..)`, ...) or loaded
//!   from TOML for that name wins over the attribute's literals, which win over the
//!   `preset`'s values, which win over the defaults. Set registry configs at startup:
//!   call sites resolve on their first call. An instance that cannot be built (a preset
//!   registered at run time that is missing, an invalid value) makes each call return
//!   `E::from(Error::Config(..))`.
//! * **Presets.** `preset = "api"` names a built-in preset (`database`, `api`, `file`,
//!   `postgres`, `shopify`, `development`), checked at compile time: a typo is a compile
//!   error with the nearest name. A preset registered at run time
//!   (`registry().register_preset("billing", ..)`, a TOML table) is written with the
//!   `user:` prefix, `preset = "user:billing"`, and looked up when the call site first
//!   runs: missing, it fails each call with `Error::Config` and is logged once.
//! * **Literals** are checked at compile time: durations are written `250ms`, `2s`,
//!   `1.5s`, `5min`, `1h` (units `ns us ms s min h`, `m` for `min`; a number without a
//!   unit is an error), counts must be at least 1, factors in range, and conflicting
//!   options are refused. An unknown key is an error listing the accepted ones, with the
//!   nearest key or the attribute's spelling of a common synonym (`rate = "10/s"` →
//!   `per_second = 10`, `max_retries = 3` → `max_attempts = 4`).
//! * **Predicates** (`retry_if`, `retry_on_result`, `failure_if`, `ignore_if`) receive
//!   their argument by reference: `fn is_transient(e: &MyError) -> bool` or
//!   `|e: &MyError| ..` (`|e| ..` infers it). A function or closure taking it by value is
//!   one compile error at the argument, showing the expected `fn(&MyError) -> bool`.
//! * **Keys per tenant.** `key = expr` on `#[circuit_breaker]` and `#[rate_limit]` (or
//!   once on `#[resilient]` for both) gives each value of `expr` its own circuit and
//!   bucket under the one name: one tenant's failures never open another tenant's
//!   circuit. A preset whose limits are per tenant (`shopify`) requires a key, or
//!   `key = none` for one instance shared by every tenant. A literal key is refused.
//! * **One key set.** A layer's keys (everything but `name`, `preset`, `key`, `crate` and
//!   the function-valued arguments) are the keys of its config type in
//!   `resilience::config`, the same in a TOML table (`[orders.retry]`) and through
//!   `Deserialize`; the runtime reads them through that one definition.
//! * **`crate = "path"`** names the `resilience` crate for facades that re-export it.

mod args;
mod duration;
mod entry;
mod expand;
mod func;
/// The duration grammar, shared with the runtime's config files (one source file).
#[path = "../../resilience/src/config/grammar.rs"]
#[allow(dead_code)]
mod grammar;
mod preset;
/// The built-in preset names, shared with the runtime's presets (one source file).
#[path = "../../resilience/src/preset_names.rs"]
mod preset_names;
mod stack;
mod validate;

use proc_macro::TokenStream;

use stack::Kind;

/// Retries the function when it fails, waiting a backoff between attempts.
///
/// | argument | value | default |
/// |---|---|---|
/// | `max_attempts` | attempts **including the first** (`1` = no retry) | `3` |
/// | `backoff` | `constant`, `linear`, `exponential`, `fibonacci`, `decorrelated` | `exponential` |
/// | `initial_delay` | first delay | `1s` |
/// | `max_delay` | cap on every delay, jitter included | `60s` |
/// | `multiplier` | growth of `exponential`, at least `1.0` | `2.0` |
/// | `jitter` | `none`, `full`, `equal`, `proportional(0.2)` (±20 %), `ratio(0.5)` (`U(0.5, 1)·d`) | `full` |
/// | `deadline` | the whole call: no sleep ends past it, no wait below outlasts it, each timeout is cut to the time left (`max_elapsed` is an alias) | none (a preset's) |
/// | `honor_retry_after` | `false` to ignore an error's server hint ([`RetryAfter`]) | `true` |
/// | `retry_if` | `fn(&E) -> bool` path or closure: which errors to retry | see below |
/// | `retry_on_result` | `fn(&T) -> bool`: `Ok` values to retry ("soft failures") | none |
/// | `on_retry` | `fn(&RetryEvent<T, E>)`: told before each retry's sleep | none |
/// | `budget` | name of a [retry budget] shared by every call site naming it | none; with a preset, the call site's own budget |
/// | `preset` | `"api"`, `"database"`, ... (`"user:name"` for one registered at run time): start from the preset's retry policy | none |
///
/// Without `retry_if`, every error is retried, unless `E` implements
/// [`Classify`](https://docs.rs/resilience/latest/resilience/classify/trait.Classify.html):
/// then only transient errors are. When `E` implements `RetryAfter`, its server hint
/// replaces the computed delay (capped by `max_delay`). Both are picked up without being
/// asked, for concrete error types. `E` must implement `Debug` (retries are logged). When
/// the attempts run out, the last error (or the last soft-failure value) is returned.
///
/// **Generic error types.** The traits are detected where the function is compiled, so
/// a function generic over its error type sees them only through its bounds. When `E` in
/// `Result<T, E>` is a type parameter of the function without `Classify` among its bounds
/// (in `<..>` or the `where` clause), the attribute refuses it, as `#[resilient]` does
/// with a retry layer, rather than retry every error: add `E: resilience::Classify +
/// resilience::RetryAfter` (then the caller's type classifies its errors), or pass
/// `retry_if = ..` to choose (`retry_if = |_| true` retries every error). The bound is
/// read as written: one implied by another trait is not seen, and a parameter of the
/// enclosing `impl` is not visible to the attribute (name `Classify` on the method, or use
/// `retry_if`).
///
/// The body runs once per attempt: it may borrow and mutate its arguments (`&mut self`
/// included) but cannot move out of them. A body that consumes an argument fails to
/// compile with "value moved here, in previous iteration of loop": clone inside the body
/// (`send(body.clone())`) or take a reference.
///
/// The policy is named after the function (`module::fn`, `module::Type::method` for a
/// method: see "Named instances" above); a policy set with
/// `registry().configure_retry(name, policy)` wins over the attribute (that is also how a
/// test injects a `ManualClock` or a seed).
///
/// ```
/// use resilience::{retry, Error};
///
/// #[derive(Debug)]
/// enum ApiError { Unavailable, Resilience(Error) }
/// impl From<Error> for ApiError {
///     fn from(e: Error) -> Self { ApiError::Resilience(e) }
/// }
///
/// #[retry(max_attempts = 4, backoff = exponential, initial_delay = 100ms, jitter = none)]
/// async fn fetch_orders(calls: &mut u32) -> Result<u32, ApiError> {
///     *calls += 1;
///     if *calls < 3 { Err(ApiError::Unavailable) } else { Ok(*calls) }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = tokio::time::Instant::now();
/// let mut calls = 0;
/// assert_eq!(fetch_orders(&mut calls).await.ok(), Some(3));
/// assert_eq!(start.elapsed(), std::time::Duration::from_millis(100 + 200));
/// # }
/// ```
///
/// The same by hand (the attribute drives the policy attempt by attempt, with the
/// decisions of `RetryPolicy::run_async`):
///
/// ```
/// # use resilience::Error;
/// # #[derive(Debug)] enum ApiError { Unavailable, Resilience(Error) }
/// # impl From<Error> for ApiError { fn from(e: Error) -> Self { ApiError::Resilience(e) } }
/// use std::time::Duration;
/// use resilience::backoff::{Backoff, Jitter};
/// use resilience::retry::RetryPolicy;
///
/// async fn fetch_orders(calls: &mut u32) -> Result<u32, ApiError> {
///     let policy = RetryPolicy::builder()
///         .max_attempts(4)
///         .backoff(Backoff::exponential(Duration::from_millis(100)).with_jitter(Jitter::None))
///         .build()
///         .map_err(Error::Config)?;
///     let calls = std::cell::RefCell::new(calls);
///     policy
///         .call_async(|| {
///             let mut calls = calls.borrow_mut();
///             **calls += 1;
///             let n = **calls;
///             async move { if n < 3 { Err(ApiError::Unavailable) } else { Ok(n) } }
///         })
///         .await
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() { assert_eq!(fetch_orders(&mut 0).await.ok(), Some(3)); }
/// ```
///
/// [retry budget]: https://docs.rs/resilience/latest/resilience/retry/struct.RetryBudget.html
/// [`RetryAfter`]: https://docs.rs/resilience/latest/resilience/classify/trait.RetryAfter.html
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Retry, args.into(), item.into()).into()
}

/// Guards the function with a named circuit breaker from the registry.
///
/// | argument | value | default |
/// |---|---|---|
/// | `name` | the circuit's name; the same name on several functions shares one circuit | `module::fn` (`module::Type::method` for a method) |
/// | `failure_threshold` | consecutive failures that open the circuit | `5` |
/// | `failure_rate` + `window` + `min_calls` | open on a failure share over the last `window` calls (`100`) or time (`60s`), once `min_calls` ran | none |
/// | `recovery_timeout` | how long it stays open before a probe | `60s` |
/// | `recovery_jitter` | shorten each open period by a random fraction of at most this (`0.0` to `1.0`), so processes that tripped together do not probe together | `0.0` |
/// | `success_threshold` | probe successes that close it again | `2` |
/// | `half_open_max_calls` | probes allowed at once | `1` |
/// | `slow_call` | a success slower than this counts as a failure | none |
/// | `failure_if` | `fn(&E) -> bool`: errors that count as failures (others count as successes) | for `E: Classify`, transient errors (permanent ones count as successes, throttled ones as neither); else every error |
/// | `ignore_if` | `fn(&E) -> bool`: errors that count as neither (checked first) | none |
/// | `failure_if_ok` | `fn(&T) -> bool`: `Ok` values that count as failures (the caller still gets them), like resilience4j's `recordResult` | none |
/// | `fallback` | a function taking the same arguments and returning the same type, `async` exactly when the function is; it answers open-circuit rejections only (`#[fallback]` answers any layer's, or any error) | none |
/// | `key` | expression over the arguments: one circuit per key (per tenant, per shop): a string or an integer; `none` for one circuit for every tenant; a literal is refused | none |
/// | `preset` | start from the preset's breaker settings (see "Presets" above) | none |
/// | `backend` | `"local"`, or `"redis"` to share the circuit with every process using this name (feature `redis`) | `"local"` |
/// | `fail_mode` | with `backend = "redis"`: `"open"` (fall back to the local breaker while Redis is unreachable) or `"closed"` (reject) | `"open"` |
///
/// `failure_threshold` and `failure_rate` are two ways to trip; giving both is a compile
/// error. While the circuit is open the body does not run and the call returns
/// `Err(E::from(Error::CircuitOpen { name, retry_after }))`, or the `fallback`'s answer:
/// the fallback is called with the function's arguments (and `self` for methods, as in
/// `fallback = Self::cached`) when the circuit rejects the call; a failure of the call
/// itself is returned as it is. With a fallback the function may return a plain value
/// (`-> String`); then any rejection goes to the fallback. The arguments are borrowed by
/// the body so the fallback can still receive them.
///
/// Which errors count: for an error type that implements `resilience::Classify`, only
/// what is the service's fault. A transient error (a 503, a reset connection) is a
/// failure, a permanent one (a 404, a 400: the service answered) a success, a throttled
/// one (a 429) neither; the hand-written form is `breaker.call_classified(..)`. An error
/// type without `Classify` has every error counted as a failure (`breaker.call(..)`).
/// `failure_if` / `ignore_if` take precedence over the class; `failure_if_ok` is
/// `breaker.call_with(&FailureIfOk::new(classifier, predicate), ..)`.
///
/// ```
/// use resilience::{circuit_breaker, registry, Error};
/// use resilience::circuit::CircuitState;
///
/// #[derive(Debug)]
/// enum DbError { Down, Resilience(Error) }
/// impl From<Error> for DbError {
///     fn from(e: Error) -> Self { DbError::Resilience(e) }
/// }
///
/// #[circuit_breaker(name = "docs-orders-db", failure_threshold = 2, recovery_timeout = 30s)]
/// fn load_order(id: u64) -> Result<String, DbError> {
///     let _ = id;
///     Err(DbError::Down)
/// }
///
/// assert!(matches!(load_order(1), Err(DbError::Down)));
/// assert!(matches!(load_order(1), Err(DbError::Down)));
/// assert!(matches!(load_order(1), Err(DbError::Resilience(Error::CircuitOpen { .. }))));
/// assert_eq!(registry().circuit_breakers().stats("docs-orders-db").map(|s| s.state), Some(CircuitState::Open));
/// ```
///
/// The same by hand:
///
/// ```
/// # use resilience::Error;
/// # #[derive(Debug)] enum DbError { Down, Resilience(Error) }
/// # impl From<Error> for DbError { fn from(e: Error) -> Self { DbError::Resilience(e) } }
/// use std::time::Duration;
/// use resilience::circuit::CircuitBreakerConfig;
/// use resilience::registry;
///
/// fn load_order(id: u64) -> Result<String, DbError> {
///     let breaker = registry().circuit_breakers().resolve("docs-orders-db-by-hand", || {
///         CircuitBreakerConfig::builder()
///             .failure_threshold(2)
///             .recovery_timeout(Duration::from_secs(30))
///             .build()
///     }).map_err(Error::Config)?;
///     breaker.call(|| {
///         let _ = id;
///         Err(DbError::Down)
///     })
/// }
/// # assert!(matches!(load_order(1), Err(DbError::Down)));
/// ```
///
/// The attribute resolves its circuit as `registry().resolve_circuit(name, || config)`
/// does, once per call site: in the mode the registry's config for the name sets (a
/// `[name.circuit_breaker]` table of a loaded config file, or `registry().configure`),
/// so a circuit set to `mode = "adaptive_throttle"` there is an `AdaptiveThrottle` here
/// too, as in `Pipeline` and the tower layers.
///
/// With `key`, each key has its own circuit (a `KeyedCircuitBreaker` in the registry's
/// `keyed_circuit_breakers()`, idle keys evicted, the number of keys bounded): one
/// tenant's failures open that tenant's circuit only.
///
/// ```
/// use resilience::{circuit_breaker, registry, Error};
/// use resilience::circuit::CircuitState;
///
/// #[derive(Debug)]
/// enum ShopError { Frozen, Resilience(Error) }
/// impl From<Error> for ShopError {
///     fn from(e: Error) -> Self { ShopError::Resilience(e) }
/// }
///
/// #[circuit_breaker(name = "docs-shops", failure_threshold = 1, key = shop)]
/// fn orders(shop: &str) -> Result<u32, ShopError> {
///     if shop == "frozen" { Err(ShopError::Frozen) } else { Ok(3) }
/// }
///
/// assert!(matches!(orders("frozen"), Err(ShopError::Frozen)));
/// assert!(matches!(orders("frozen"), Err(ShopError::Resilience(Error::CircuitOpen { .. }))));
/// assert!(matches!(orders("healthy"), Ok(3)));
/// let shops = registry().keyed_circuit_breakers().get("docs-shops");
/// assert!(shops.is_some_and(|shops| shops.state("frozen") == CircuitState::Open));
/// ```
///
/// By hand: `registry().keyed_circuit_breakers().resolve(name, || config)` and
/// `breaker.call(shop, || ..)`.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::CircuitBreaker, args.into(), item.into()).into()
}

/// Answers the call's final error with a function of your own: a fallback as a layer.
///
/// `#[fallback(handler)]` calls `handler` with the function's arguments (and `self` for
/// a method, as in `#[fallback(Self::cached)]`) in place of returning an error, and
/// returns its answer. `handler` takes the same arguments and returns the same type,
/// and is `async` exactly when the function is; a handler of another type is a compile
/// error at the handler.
///
/// | argument | value | default |
/// |---|---|---|
/// | first, unnamed | the handler: a path to a function | required |
/// | `on` | `"rejected"`: a layer refused the call or cut it short (open circuit, rate limit, full bulkhead, timeout); `"any"`: every error, the function's own included; or a predicate `fn(&E) -> bool` (a path or a closure), which sees a rejection as `E::from(resilience::Error)` | `"rejected"` |
/// | `crate` | the path of a crate re-exporting `resilience` | `"resilience"` |
///
/// The fallback is the **outermost** layer, and `#[fallback]` goes above the other
/// resilience attributes (anywhere else is a compile error): it sees the final error,
/// after the retries gave up, while the retry and the circuit breaker still see what the
/// call did. Inside the retry it would turn each failed attempt into a success, and
/// inside the breaker it would hide the failures the breaker must count.
///
/// With a fallback the function may return a plain value (`-> String`); then every
/// rejection goes to the fallback (and `on` cannot be a predicate). The arguments are
/// borrowed by the body so the fallback can still receive them.
///
/// ```
/// use resilience::{circuit_breaker, fallback, Error};
///
/// #[derive(Debug, PartialEq)]
/// enum PriceError { Unavailable, Resilience(Error) }
/// impl From<Error> for PriceError {
///     fn from(e: Error) -> Self { PriceError::Resilience(e) }
/// }
///
/// fn cached_price(sku: &str) -> Result<u32, PriceError> {
///     let _ = sku;
///     Ok(100)
/// }
///
/// #[fallback(cached_price, on = "any")]
/// #[circuit_breaker(name = "docs-prices", failure_threshold = 5)]
/// fn price(sku: &str) -> Result<u32, PriceError> {
///     let _ = sku;
///     Err(PriceError::Unavailable)
/// }
///
/// assert_eq!(price("sku-1"), Ok(100));
/// ```
///
/// Each answer is reported under the function's path, as its whole-call events: an
/// `EventKind::FallbackUsed` event (topic `Interest::FALLBACKS`) and, with the metrics
/// installed, a count in `resilience_fallback_used_total`.
///
/// The same by hand, with `resilience::pipeline::layer::fallback` around the other
/// layers:
///
/// ```
/// # use resilience::Error;
/// # #[derive(Debug, PartialEq)] enum PriceError { Unavailable, Resilience(Error) }
/// # impl From<Error> for PriceError { fn from(e: Error) -> Self { PriceError::Resilience(e) } }
/// # fn cached_price(_: &str) -> Result<u32, PriceError> { Ok(100) }
/// use resilience::circuit::{AllErrors, CircuitBreakerConfig};
/// use resilience::fallback::AnyError;
/// use resilience::pipeline::layer;
/// use resilience::{registry, Fault};
///
/// fn price(sku: &str) -> Result<u32, PriceError> {
///     let breaker = registry()
///         .circuit_breakers()
///         .resolve("docs-prices-by-hand", || CircuitBreakerConfig::builder().failure_threshold(5).build())
///         .map_err(Error::Config)?;
///     layer::fallback(&AnyError, |_| cached_price(sku), || {
///         layer::circuit(Some(&*breaker), &AllErrors, || Err(Fault::Inner(PriceError::Unavailable)))
///     })
/// }
/// # assert_eq!(price("sku-1"), Ok(100));
/// ```
#[proc_macro_attribute]
pub fn fallback(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Fallback, args.into(), item.into()).into()
}

/// Takes permits from a named token bucket before each call.
///
/// | argument | value | default |
/// |---|---|---|
/// | `name` | the limiter's name (shared by functions naming it) | `module::fn` (`module::Type::method` for a method) |
/// | `per_second` / `per_minute` | refill rate (one of them) | required, unless `preset` or a registry config |
/// | `burst` | bucket capacity | `1` |
/// | `cost` | expression over the arguments: permits this call takes (`u32`) | `1` |
/// | `key` | expression over the arguments: one bucket per key (per shop, per host): a string or an integer; `none` for one bucket for every tenant; a literal (`key = "shop"`, one bucket for all) is refused | none |
/// | `on_limit` | `wait` (sleep for the next slot), `reject` (fail fast), `queue` (wait, at most `max_queue` at once) | `wait` |
/// | `max_wait` | refuse at once a wait longer than this (every wait is bounded) | `10s` |
/// | `max_queue` | waiters allowed with `on_limit = queue` | — |
/// | `idle_timeout` | with `key`: drop a key's bucket this long after it refilled | `60s` |
/// | `max_pause` | the longest pause a server's headers can impose via `sync_from_headers` | `15min` |
/// | `preset` | start from the preset's limit | none |
/// | `backend` | `"local"`, or `"redis"` to share the bucket with every process using this name (feature `redis`) | `"local"` |
/// | `fail_mode` | with `backend = "redis"`: `"open"` (fall back to the local bucket while Redis is unreachable) or `"closed"` (reject) | `"open"` |
///
/// A refused call returns `Err(E::from(Error::RateLimited { name, retry_after }))`
/// without running. Async functions wait on tokio's timer; sync functions block the
/// thread. With `key`, idle keys are evicted without user action.
///
/// ```
/// use resilience::{rate_limit, Error};
///
/// #[derive(Debug)]
/// enum ShopError { Resilience(Error) }
/// impl From<Error> for ShopError {
///     fn from(e: Error) -> Self { ShopError::Resilience(e) }
/// }
///
/// // Shopify: a bucket of 40 per shop, refilled at 2 per second.
/// #[rate_limit(name = "docs-shopify", per_second = 2, burst = 40, key = shop)]
/// async fn orders(shop: &str) -> Result<(), ShopError> {
///     let _ = shop;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = tokio::time::Instant::now();
/// for _ in 0..41 {
///     assert!(orders("a.myshopify.com").await.is_ok());
/// }
/// assert_eq!(start.elapsed(), std::time::Duration::from_millis(500)); // the 41st waited
/// # }
/// ```
///
/// The same by hand:
///
/// ```
/// # use resilience::Error;
/// # #[derive(Debug)] enum ShopError { Resilience(Error) }
/// # impl From<Error> for ShopError { fn from(e: Error) -> Self { ShopError::Resilience(e) } }
/// use resilience::rate_limit::RateLimitConfig;
/// use resilience::registry;
///
/// async fn orders(shop: &str) -> Result<(), ShopError> {
///     let limiter = registry()
///         .keyed_rate_limiters().resolve("docs-shopify-by-hand", || {
///             RateLimitConfig::builder().per_second(2).burst(40).build()
///         })
///         .map_err(Error::Config)?;
///     limiter.acquire_async(shop, 1).await?;
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() { assert!(orders("a").await.is_ok()); }
/// ```
#[proc_macro_attribute]
pub fn rate_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::RateLimit, args.into(), item.into()).into()
}

/// Bounds the duration of each call: `#[timeout(5s)]` or `#[timeout(duration = 5s)]`.
///
/// The duration is a literal, or the path of a `const` of type `std::time::Duration`
/// (`#[timeout(TIMEOUT)]`, `#[timeout(duration = config::TIMEOUT)]`), read when the call
/// site first runs; a `const` of another type is a type error at the path. An expression
/// (`#[timeout(Duration::from_secs(5))]`) is refused: declare it as a `const`. An
/// associated `const` of `Self` cannot be named (the duration is read in an item of its
/// own inside the function); use one outside the `impl`.
///
/// ```
/// use std::time::Duration;
/// use resilience::{timeout, Error};
/// # #[derive(Debug, PartialEq)] enum AppError { Resilience(Error) }
/// # impl From<Error> for AppError { fn from(e: Error) -> Self { AppError::Resilience(e) } }
///
/// const REPORT_TIMEOUT: Duration = Duration::from_secs(2);
///
/// #[timeout(REPORT_TIMEOUT)]
/// async fn report() -> Result<u32, AppError> {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     Ok(1)
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// assert_eq!(report().await, Err(AppError::Resilience(Error::timeout(REPORT_TIMEOUT))));
/// # }
/// ```
///
/// An `async fn` is cancelled (its future dropped) at the deadline and returns
/// `Err(E::from(Error::Timeout { limit }))`. A sync `fn` runs on a worker thread (of a
/// bounded pool, see `resilience::timeout`) while the caller waits at most `limit`; at the
/// deadline the caller gets the timeout and the worker is left to finish, its result
/// dropped (a panic in the worker is resumed in the caller). When every worker of the
/// pool is still busy, the call is refused at once with `Error::BlockingPoolFull`. So a sync function under `#[timeout]` must have owned, `'static`, `Send`
/// arguments (a borrowed argument is a compile error that says so); under a `#[retry]`,
/// each attempt gets its own clone of the arguments.
///
/// Under `#[retry]` the timeout applies to each attempt; above it, to the whole call.
///
/// ```
/// use std::time::Duration;
/// use resilience::{timeout, Error};
///
/// #[derive(Debug, PartialEq)]
/// enum AppError { Resilience(Error) }
/// impl From<Error> for AppError {
///     fn from(e: Error) -> Self { AppError::Resilience(e) }
/// }
///
/// #[timeout(2s)]
/// async fn slow_report() -> Result<u32, AppError> {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     Ok(1)
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let r = slow_report().await;
/// assert_eq!(r, Err(AppError::Resilience(Error::timeout(Duration::from_secs(2)))));
/// # }
/// ```
///
/// The same by hand:
///
/// ```
/// # use std::time::Duration;
/// # use resilience::Error;
/// # #[derive(Debug, PartialEq)] enum AppError { Resilience(Error) }
/// # impl From<Error> for AppError { fn from(e: Error) -> Self { AppError::Resilience(e) } }
/// async fn slow_report() -> Result<u32, AppError> {
///     resilience::timeout::call_async(Duration::from_secs(2), async {
///         tokio::time::sleep(Duration::from_secs(60)).await;
///         Ok(1)
///     })
///     .await
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() { assert!(slow_report().await.is_err()); }
/// ```
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Timeout, args.into(), item.into()).into()
}

/// Hedged requests: if the call has not finished after `delay`, the body runs again
/// beside it, and the first success wins (the other attempts are dropped).
///
/// | argument | value | default |
/// |---|---|---|
/// | `name` | the hedge's name (shared by functions naming it) | `module::fn` (`module::Type::method` for a method) |
/// | `delay` | a duration (`50ms`), or a percentile of the recent latencies of first attempts (`p95`, `p99_9` for p99.9) | `p95` |
/// | `max_hedges` | attempts started besides the first, `1..=10` | `1` |
/// | `budget` | the extra load hedges may add, a fraction of recent calls | `0.1` |
/// | `preset` | start from a registered preset's hedge (`"user:name"`) | none |
///
/// **Async functions only**, and the body runs once per attempt, several at once: the
/// arguments must be shareable by concurrent attempts. A sync function, a `&mut self` or
/// `&mut T` argument is a compile error saying so; an argument taken by value that the
/// body moves is the compiler's "use of moved value" (use it by reference, or clone it
/// inside the body). Each hedge draws on a budget (10 % of recent calls by default), so
/// a dependency slow for everyone is not hit twice as hard.
///
/// In a stack, the hedge belongs between the retry and the circuit breaker (the order of
/// `#[resilient(hedge(..))]`): each hedge passes the breaker, limiter, bulkhead and
/// timeout below it.
///
/// ```
/// use resilience::{hedge, Error};
///
/// #[derive(Debug)]
/// enum ApiError { Resilience(Error) }
/// impl From<Error> for ApiError {
///     fn from(e: Error) -> Self { ApiError::Resilience(e) }
/// }
///
/// #[hedge(delay = 50ms, max_hedges = 1)]
/// async fn lookup(id: &str) -> Result<usize, ApiError> {
///     Ok(id.len())
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() { assert_eq!(lookup("abc").await.ok(), Some(3)); }
/// ```
///
/// The same by hand:
///
/// ```
/// # use resilience::Error;
/// # #[derive(Debug)] enum ApiError { Resilience(Error) }
/// # impl From<Error> for ApiError { fn from(e: Error) -> Self { ApiError::Resilience(e) } }
/// use std::time::Duration;
/// use resilience::registry;
/// use resilience::hedge::{HedgeConfig, HedgeDelay};
///
/// async fn lookup(id: &str) -> Result<usize, ApiError> {
///     let hedge = registry()
///         .hedges().resolve("docs-lookup", || {
///             HedgeConfig::builder().delay(HedgeDelay::Fixed(Duration::from_millis(50))).build()
///         })
///         .map_err(Error::Config)?;
///     hedge.call_async(|| async { Ok(id.len()) }).await
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() { assert_eq!(lookup("abc").await.ok(), Some(3)); }
/// ```
#[proc_macro_attribute]
pub fn hedge(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Hedge, args.into(), item.into()).into()
}

/// Bounds the number of calls in flight with a named bulkhead.
///
/// | argument | value | default |
/// |---|---|---|
/// | `name` | the bulkhead's name (shared by functions naming it) | `module::fn` (`module::Type::method` for a method) |
/// | `max_concurrent` | calls allowed in flight | `10` |
/// | `max_wait` | how long a call may wait for a free slot | no wait |
/// | `adaptive` | `gradient`, `aimd` or `vegas`: the limit follows the dependency's latency (`max_concurrent` is then unused) | fixed |
/// | `min_limit` / `max_limit` | the bounds of an adaptive limit | `1` / `1000` |
/// | `initial_limit` | where an adaptive limit starts | `20` |
/// | `preset` | start from the preset's bulkhead | none |
///
/// A call that finds it full (after `max_wait`) returns
/// `Err(E::from(Error::BulkheadFull { name, max_concurrent }))` without running. The
/// permit is released when the call ends, also when an async call is cancelled.
///
/// ```
/// use resilience::{bulkhead, Error};
///
/// #[derive(Debug)]
/// enum DbError { Resilience(Error) }
/// impl From<Error> for DbError {
///     fn from(e: Error) -> Self { DbError::Resilience(e) }
/// }
///
/// #[bulkhead(max_concurrent = 10, max_wait = 1s)]
/// async fn query(sql: &str) -> Result<usize, DbError> {
///     Ok(sql.len())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() { assert_eq!(query("select 1").await.ok(), Some(8)); }
/// ```
///
/// The same by hand:
///
/// ```
/// # use resilience::Error;
/// # #[derive(Debug)] enum DbError { Resilience(Error) }
/// # impl From<Error> for DbError { fn from(e: Error) -> Self { DbError::Resilience(e) } }
/// use std::time::Duration;
/// use resilience::{registry, BulkheadConfig};
///
/// async fn query(sql: &str) -> Result<usize, DbError> {
///     let bulkhead = registry()
///         .bulkheads().resolve("docs-query", || {
///             BulkheadConfig::builder().max_concurrent(10).max_wait(Duration::from_secs(1)).build()
///         })
///         .map_err(Error::Config)?;
///     bulkhead.call_async(|| async { Ok(sql.len()) }).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() { assert_eq!(query("select 1").await.ok(), Some(8)); }
/// ```
///
/// With `adaptive`, the limit follows the dependency's latency (see
/// `resilience::bulkhead::LimitAlgorithm`); by hand, the config's builder takes
/// `.adaptive(LimitAlgorithm::Gradient).min_limit(4).max_limit(200)`:
///
/// ```
/// use resilience::{bulkhead, registry, Error};
///
/// #[bulkhead(name = "docs-search", adaptive = "gradient", min_limit = 4, max_limit = 200)]
/// async fn search(q: &str) -> Result<usize, Error> {
///     Ok(q.len())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(search("rust").await, Ok(4));
/// let stats = registry().bulkheads().get("docs-search").map(|b| b.stats());
/// // An adaptive limit starts at `initial_limit` (default 20).
/// assert_eq!(stats.as_ref().map(|s| s.max_concurrent), Some(20));
/// assert!(stats.is_some_and(|s| s.adaptive.is_some()));
/// # }
/// ```
#[proc_macro_attribute]
pub fn bulkhead(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Bulkhead, args.into(), item.into()).into()
}

/// The whole stack in one attribute, in a fixed order.
///
/// Either `preset = "shopify"` (every layer that preset defines: `database`, `api`,
/// `file`, `postgres`, `shopify`, `development`, or `"user:name"` for one registered with
/// `Registry::register_preset`), or nested layers — `retry(..)`, `circuit_breaker(..)`,
/// `rate_limit(..)`, `bulkhead(..)`, `timeout(..)` with the arguments of the attributes of
/// the same names — or both: nested layers then refine the preset's (`#[resilient(preset =
/// "shopify", key = shop, retry(max_attempts = 3))]`) and may add layers it lacks.
///
/// `key = expr` keys every keyable layer at once: one circuit and one rate-limit bucket
/// per value (per shop, per tenant), so one tenant's failures never open another
/// tenant's circuit; a layer's own `key` overrides it, and `key = none` says explicitly
/// that one circuit and one bucket serve every tenant. A preset whose limits are per
/// tenant (`shopify`: per shop) needs one of them: `#[resilient(preset = "shopify")]`
/// alone does not compile. With such a preset, a key written on one keyable layer
/// (`rate_limit(key = shop)`) keys the other too.
///
/// Whatever the written order, the layers run **outermost first: retry → hedge →
/// circuit breaker → rate limit → bulkhead → timeout (per attempt)**. So each attempt
/// passes the breaker and takes a permit, an open circuit is not retried, and a
/// `RateLimited` attempt is retried after its wait. `hedge(..)` (async functions only;
/// see `#[hedge]`) is present only when written: no preset implies it; each
/// hedge passes the layers below it like an attempt. Every named instance is called after the function
/// (`module::fn`, `module::Type::method` for a method) unless a layer names it.
///
/// `deadline = 10s` bounds the whole call: every attempt, backoff sleep, rate-limit and
/// bulkhead wait, and each attempt's timeout (cut to the time left). It is a key of the
/// retry layer, written once here: with a preset it refines the preset's retry (each
/// preset sets one); without a retry layer or preset, the call runs one attempt within
/// it. `budget = "name"` is the retry layer's `budget`: call sites naming the same
/// budget share it, while by default a preset's call site draws on its own.
///
/// ```
/// use resilience::{resilient, registry, Error};
///
/// #[derive(Debug)]
/// enum ShopError { Resilience(Error) }
/// impl From<Error> for ShopError {
///     fn from(e: Error) -> Self { ShopError::Resilience(e) }
/// }
///
/// #[resilient(preset = "shopify", key = shop)]
/// async fn products(shop: &str) -> Result<u32, ShopError> {
///     let _ = shop;
///     Ok(250)
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// assert_eq!(products("a.myshopify.com").await.ok(), Some(250));
/// let name = concat!(module_path!(), "::products");
/// let per_shop = registry().keyed_circuit_breakers().get(name);
/// let stats = per_shop.and_then(|per_shop| per_shop.stats_for("a.myshopify.com"));
/// assert_eq!(stats.map(|s| s.successes), Some(1));
/// # }
/// ```
///
/// The same by hand, with [`Pipeline`](https://docs.rs/resilience/latest/resilience/struct.Pipeline.html)
/// (which keeps one breaker and one limiter rather than one per shop: nest the
/// `pipeline::layer` functions `keyed_circuit` and `keyed_rate_limit` for those). `ShopError` does not
/// implement `Classify`, so the attribute retries every error, and so do
/// `DefaultHooks`; for an error type that implements `Classify` and `RetryAfter`,
/// `pipeline.call_async(op)` retries transient errors only and honours their hints, as
/// the attribute does:
///
/// ```
/// # use resilience::Error;
/// # #[derive(Debug)] enum ShopError { Resilience(Error) }
/// # impl From<Error> for ShopError { fn from(e: Error) -> Self { ShopError::Resilience(e) } }
/// use resilience::{presets::Preset, retry::DefaultHooks, Pipeline};
///
/// async fn products(shop: &str) -> Result<u32, ShopError> {
///     let pipeline = Pipeline::from_config("docs-products", &Preset::Shopify.config())
///         .map_err(Error::Config)?;
///     pipeline.call_async_with(&DefaultHooks, || async { let _ = shop; Ok(250) }).await
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() { assert_eq!(products("a").await.ok(), Some(250)); }
/// ```
#[proc_macro_attribute]
pub fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Resilient, args.into(), item.into()).into()
}

/// Items the unit tests expand.
#[cfg(test)]
mod fixtures {
    /// `fn f() -> Result<(), E> { Ok(()) }`: a plain fallible function.
    pub(crate) fn fallible_fn() -> proc_macro2::TokenStream {
        quote::quote!(
            fn f() -> Result<(), E> {
                Ok(())
            }
        )
    }
}
