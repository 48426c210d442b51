//! Shared state on Redis: one rate limit and one circuit across many processes (crate
//! feature `redis`).
//!
//! A limiter or breaker whose config says [`Backend::Redis`](crate::Backend::Redis)
//! keeps its state in Redis under its name, so every process using the same name (and
//! the same [key prefix](RedisConfig::key_prefix)) shares it: ten workers calling one
//! Shopify shop share one 40-request bucket, and a dead database opens the circuit for
//! the whole fleet. The attributes and the registry work unchanged:
//!
//! ```no_run
//! use resilience::{rate_limit, circuit_breaker};
//!
//! #[derive(Debug)]
//! struct ShopError;
//! impl From<resilience::Error> for ShopError {
//!     fn from(_: resilience::Error) -> Self { ShopError }
//! }
//!
//! // RESILIENCE_REDIS_URL=redis://127.0.0.1:6379 (or resilience::redis::configure)
//! #[circuit_breaker(name = "shopify", failure_threshold = 5, backend = "redis")]
//! #[rate_limit(name = "shopify", per_second = 2, burst = 40, backend = "redis", fail_mode = "closed")]
//! async fn fetch_orders(shop: &str) -> Result<Vec<u64>, ShopError> {
//!     # let _ = shop;
//!     Ok(vec![])
//! }
//! ```
//!
//! # How state is shared
//! - **Limiter**: GCRA, like the local limiter, on one key per limiter (and per key of a
//!   keyed limiter: `{prefix:rl:name}:{key:?}`). Each acquire is **one** atomic Lua
//!   script (one round trip) that reads **Redis's clock** (`TIME`), so hosts' clocks never
//!   matter. `Wait` and `Queue` reserve the next slot in Redis and sleep locally until it
//!   (callers of all processes are served in the order Redis saw them); `Reject` takes
//!   nothing it cannot use; `max_queue` bounds the waiters of each process.
//! - **Circuit**: state, generation, open deadline, consecutive failures, half-open probes
//!   and the failure-rate window (count or time, as configured) live in one hash under
//!   `{prefix:cb:name}`, changed by one script per decision. A call asks Redis before
//!   it runs (one round trip) and reports its outcome after (another). A process keeps a
//!   view of the shared state: while the view says *open* it rejects without any round
//!   trip until the open period ends. With a positive [`RedisConfig::sync_interval`], a
//!   view that says *closed* and is fresher than that lets calls skip the first round
//!   trip.
//!   The local breaker still runs beside it (a call needs both to admit it), so a
//!   process cut off from a service it alone cannot reach still protects itself.
//!
//! # Consistency under failure
//! Redis is the single source of truth; there is no multi-node consensus.
//! - Every Redis call is bounded by [`RedisConfig::timeout`]. A failure marks the backend
//!   *down* for [`RedisConfig::retry_interval`]: calls skip Redis at once (no call waits
//!   on a dead Redis more than once per interval), then one call tries again. A warn
//!   event says when Redis went away, an info event when it came back.
//! - While down, each instance follows its [`FailMode`](crate::FailMode): **open** falls
//!   back to its local limiter or breaker (each process then enforces the limit on its
//!   own, so the fleet may admit up to *processes ×* the limit), **closed** rejects with
//!   [`Error::BackendUnavailable`](crate::Error::BackendUnavailable) (the limit is never
//!   exceeded; availability is lost).
//! - A pooled connection found closed (Redis restarted, or dropped it while idle) is
//!   replaced once within the same timeout. If the first attempt had reached Redis before
//!   the connection broke, its script ran twice: a permit taken twice, an outcome counted
//!   twice: the conservative side for a limiter, rare for either.
//! - When Redis comes back, views of shared circuits are re-read before the next call. A
//!   **restarted** Redis without persistence starts empty: buckets full, circuits closed.
//!   That is the same as a fresh deployment, and is what the fail-open mode trades for.
//! - Under a **partition** (some processes reach Redis, others do not), the ones that
//!   reach it share; the others behave as above, per their fail mode.
//! - With a positive `sync_interval`, the view of a closed circuit may be that old: every
//!   call a process starts within it goes through, even after another process opened
//!   the circuit. (The default, zero, asks before every call.) A half-open probe holds its
//!   slot for at most its lease (the open period, and at least 30 s): a probe whose
//!   process died, or whose async call was dropped, frees it then; a probe that reports
//!   later counts for nothing.
//!
//! # What is shared, what stays local
//! Redis is a [`StateStore`](crate::backend::StateStore) ([`RedisStore`]): the core
//! breaker and limiters consult it through that interface, and any other store plugs
//! in the same way (`with_store` constructors).
//! - The manual permit API ([`CircuitBreaker::try_acquire`](crate::CircuitBreaker::try_acquire)),
//!   `state()`, `stats()` and the operator actions `reset`, `force_open` and `disable`
//!   act on this process's breaker (each says so); `call`, `run` and the attributes go
//!   through the shared circuit, [`CircuitBreaker::shared_state`](crate::CircuitBreaker::shared_state)
//!   reads it and [`CircuitBreaker::reset_shared`](crate::CircuitBreaker::reset_shared)
//!   closes it for the whole fleet.
//! - A limiter's `pause_for`, `pause_until` and `sync_from_headers` hold back the shared
//!   bucket too (a pause, or a server's lower count, reaches every process; an adopted
//!   Shopify capacity changes this process's config only). `available()` and per-key
//!   stats read the local bucket (the one used while failing open); its granted /
//!   waited / rejected counters count this process's calls. `max_queue` bounds the
//!   waiters of the whole limiter in this process, not of each key.
//! - Blocking calls (`try_acquire`, `acquire`, `call`) do their round trip on the
//!   caller's thread; async code should use `acquire_async` / `call_async`, which need a
//!   tokio runtime with time and IO enabled. A cancelled async waiter's reservation stays
//!   consumed.
//! - Limits: at most 10 000 permits per second per limiter (Redis keeps the bucket's
//!   time in whole microseconds), at most 32 time-window buckets per circuit (each
//!   report sums them inside Redis). Processes sharing a name should share its config
//!   (and one key layout: versions before the Cluster hash tags wrote
//!   `{prefix}:rl:{name}` without braces).
//!
//! # Permit leases
//! With [`RedisConfigBuilder::lease`] set to a period `P` (off by default: every acquire
//! is one exact round trip), a shared **direct** limiter (keyed ones stay exact) that has
//! no permits left in this process takes a *lease* from Redis in the same one round
//! trip: a batch of the bucket's credit, spent by this process's later acquires without
//! any round trip (two atomic operations, no lock, no allocation) until it runs out or
//! `P` passes on the backend's clock; what is left then lapses.
//! - **Size.** A lease asks for twice this process's demand over the last lease, scaled
//!   to one period (a few permits for the first, or after an idle spell), so a busy
//!   process renews about once per period and an idle one holds nothing. Redis grants at
//!   most the credit available now and at most `B / n` (`B` the burst, `n` the processes
//!   whose lease is live, kept in a sorted set `{prefix:rl:name}:holders` scored by each
//!   lease's end), but never less than the permits asked for. When not even those are
//!   available, the same script answers exactly as without leases (reserve or refuse).
//! - **Over-admission bound.** Redis debits a lease's credit from the GCRA bucket when
//!   it grants it, so the credit *granted* over any window of length `t` is at most
//!   `R·t + B`, as without leases. A permit is *spent* at most `P` after its credit was
//!   granted, so the permits admitted over any window `[s, s + t]` are at most
//!   `R·t + B + U(s)`, where `U(s)` is the unspent credit of the leases live at `s`;
//!   `U(s) ≤ R·P + B` (what can have been granted within one period), and with every
//!   process at its share, `U(s) ≤ n · B / n = B`. Over-admission beyond the limit's own
//!   `R·t + B` is therefore at most **`min(R·P + B, unspent leases outstanding)`**; over
//!   a 1 s window that is at most `(R·P + B) / R` of the rate: `P = 5 ms` with
//!   `B = R / 200` keeps it under 1 %. Leases never add a permit the bucket did not
//!   grant: lapsed credit is *under*-admission (at most `U`, once per period).
//! - **Fairness.** A process's lease is capped at `B / n`, so once a busy process
//!   holds its share, the rest of the burst stays in Redis for the others; a small
//!   process's next acquire waits at most for the credit already leased to be refilled
//!   (`B / R`) behind the busy ones. A new process joins the holders on its first
//!   acquire, and every other process's next renewal (within one period `P`) is capped
//!   at the new share: a newcomer converges to a fair share within about one period.
//! - **Failure.** A crashed process's lease ends on Redis's clock (its holder entry is
//!   dropped by the next renewal of anyone after its period; its unspent credit simply
//!   lapses). A process that cannot reach Redis spends the lease it holds, then follows
//!   its fail mode. A restarted Redis starts empty (a full bucket, no holders) and the
//!   fleet converges within one period.
//! - **Shared circuits** get the same treatment where it is safe: a process that saw
//!   the shared circuit open rejects locally, without a round trip, until the open
//!   period ends (always on), and [`RedisConfigBuilder::sync_interval`] is a lease on a
//!   *closed* view (calls within it skip the first round trip).
//! - **Refusals.** A refusal Redis gave is repeated by this process, without a round
//!   trip, for requests of as many permits or more that may not wait, until the time
//!   Redis said the permits would be there (GCRA time only moves forward, so Redis would
//!   refuse them too).
//!
//! # A model of the fleet, from the measurements to 1 000 processes
//! Measured (`cargo run --release -p resilience-benches --example fleet`, figures in the
//! README): 8 processes × 16 tasks hammering one limiter of `R` = 10 000/s (the most a
//! Redis bucket keeps exactly, see *Limits*) through one local `redis-server`, on a
//! shared 2-core machine. Without leases, Redis served about 87 000 scripts/s (8.7 per
//! granted permit: most are refusals of the oversubscribed tasks) with a p99 of about
//! 2 ms; the fleet admitted within 0.2 % of `R` over every 1 s window. With 5 ms
//! leases: fewer scripts (refusals repeated locally, grants in batches) and admission
//! within the bound, but still several scripts per granted permit under this
//! oversubscription, because eight processes contend for credit that accrues
//! continuously: the first to ask after each interval takes what is there.
//!
//! The model, for `N` busy processes of equal demand `R / N`, lease period `P`, burst
//! `B`:
//! - **Lease size** `L = min(2·P·R / N, B / N)` (demand-sized, capped at the share).
//! - **Redis scripts per second** for grants: `N · (R / N) / L = max(N / (2P), R / B)`
//!   when `L` is at least one permit; when `B / N` falls below one permit, leases
//!   degenerate to one permit each and the rate is `R` (today's exact mode), plus one
//!   script per refused attempt not repeated locally.
//! - **Over-admission** over any 1 s window: at most `B + R·P` beyond `R` (see above).
//! - **At 1 000 processes**, `R` = 50 000/s, `P` = 5 ms, `B = R / 200` = 250: `B / N` is
//!   a quarter of a permit, so leases cannot batch and every grant is a script
//!   (50 000/s, plus refusals), close to what one Redis core served here (≈ 9·10⁴
//!   scripts/s). For leases of 20 permits each (0.05 scripts per permit) the burst must
//!   be `B ≥ 20·N` = 20 000, which raises the over-admission bound to `(B + R·P) / R`
//!   ≈ 40 % of a second's rate.
//! - **What breaks first**: the one Redis core owning the limiter's slot (a Cluster
//!   spreads *different* limiters, never one), at about 10⁵ scripts/s; before it, the
//!   over-admission bound if the burst is raised to keep leases batching. The way past
//!   both is fewer holders: one lease per host shared by its processes (a local
//!   aggregator), so `N` counts hosts.
//!
//! # TLS, Cluster, your own client
//! - **TLS**: `rediss://` URLs with the crate feature `redis-tls` (rustls with the ring
//!   provider), trusting the system's roots and any
//!   [`tls_root_cert`](RedisConfigBuilder::tls_root_cert). Cost: rustls and ring in the
//!   build, one handshake per new connection (connections are kept), a few µs per round
//!   trip.
//! - **Cluster**: [`RedisConfigBuilder::cluster`] makes the URL a seed node. Every key of
//!   one limiter or circuit carries one hash tag (`{prefix:rl:name}`, `{prefix:cb:name}`
//!   and its `:window` and `:probes`), so each script runs on the one primary owning its
//!   slot and stays one round trip. Cost: one connection per primary per tokio runtime
//!   (and per pooled blocking connection), slot-map refreshes on connect and after a
//!   `MOVED`. A keyed limiter's keys share its slot (one hot slot per limiter, not per
//!   key).
//! - **Your own client**: [`RedisBackend::from_client`],
//!   [`RedisBackend::from_connection_manager`] and [`RedisBackend::from_cluster_client`]
//!   reuse a service's own connections (their TLS, credentials, or a primary resolved
//!   through the `redis` crate's Sentinel client); they take the `redis` crate's
//!   types, of the version this crate depends on.

mod backend;
mod breaker;
mod config;
mod handle;
mod limiter;
mod scripts;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;

pub use crate::backend::SharedState;
pub use backend::RedisBackend;
pub use config::{RedisConfig, RedisConfigBuilder, URL_ENV};
pub use store::RedisStore;
pub(crate) use store::process_store;

use crate::ConfigError;

static GLOBAL: ArcSwapOption<RedisBackend> = ArcSwapOption::const_empty();

/// Sets the process-wide Redis backend that `Backend::Redis` instances use, unless their
/// registry has a store of its own (a TOML `[redis]` table sets one for the registry it
/// is loaded into: [`Registry::set_store`](crate::registry::Registry::set_store)).
/// Instances already connected keep theirs; set it before the first call.
///
/// ```
/// use resilience::redis::{self, RedisConfig};
///
/// redis::configure(RedisConfig::builder("redis://127.0.0.1:6379").build()?)?;
/// # Ok::<(), resilience::ConfigError>(())
/// ```
pub fn configure(config: RedisConfig) -> Result<(), ConfigError> {
    GLOBAL.store(Some(Arc::new(RedisBackend::new(config)?)));
    Ok(())
}

/// The process-wide backend: the configured one, else one for `RESILIENCE_REDIS_URL`.
pub(crate) fn global() -> Result<Arc<RedisBackend>, backend::Unavailable> {
    if let Some(b) = GLOBAL.load_full() {
        return Ok(b);
    }
    let resolved = RedisConfig::from_env()
        .ok_or_else(|| {
            format!(
                "no Redis configured: set {URL_ENV}=redis://host:port or call resilience::redis::configure"
            )
        })
        .and_then(|config| config.map_err(|e| e.to_string()))
        .and_then(|config| RedisBackend::new(config).map_err(|e| e.to_string()));
    let backend = match resolved {
        Ok(b) => Arc::new(b),
        Err(reason) => {
            // Said once per process: instances then fail open (alone) or closed.
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(reason = %reason, "backend = \"redis\" without a usable Redis: shared instances fail open or closed as configured");
            }
            return Err(Arc::from(reason));
        }
    };
    let current = GLOBAL.compare_and_swap(&None::<Arc<RedisBackend>>, Some(backend.clone()));
    Ok(match &*current {
        Some(winner) => winner.clone(),
        None => backend,
    })
}
