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
//!   nothing it cannot use; `max_queue` bounds the waiters of each process. With
//!   [leases](#permit-leases-a-share-of-the-rate), a direct limiter instead spends a
//!   leased share of the rate in process, one script per renewal.
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
//! - Limits: in exact mode (no lease) at most 10 000 permits per second per limiter
//!   (Redis keeps the bucket's time in whole microseconds; the store refuses a faster
//!   limiter when its backend has no lease; leased shares have no such cap, but a keyed
//!   limiter stays exact under leases too, so keep keyed ones within it), at most 32
//!   time-window buckets per circuit (each report sums them inside
//!   Redis). Processes sharing a name should share its config (and one key layout:
//!   versions before the Cluster hash tags wrote `{prefix}:rl:{name}` without braces).
//!
//! # Permit leases: a share of the rate
//! With [`RedisConfigBuilder::lease`] set to a period `P` (off by default: every acquire
//! is one exact round trip), a shared **direct** limiter (keyed ones stay exact) leases a
//! *share of the rate* from Redis, as YouTube's Doorman does, and spends it with the
//! in-process token bucket: an acquire with permits left in the share is the local fast
//! path (a clock read, a few loads and one compare-and-swap; no lock, no allocation, no
//! round trip).
//! - **Renewal.** Every `P / 2` one acquire of the process runs one script (the others
//!   keep spending meanwhile): it reports the process's demand (the permits granted here
//!   since the last renewal, per second, plus half again as headroom; a process refused
//!   anything meanwhile, whose callers' backing off hides its demand, asks for all of
//!   `R`, as a newcomer does) and gets back a rate share `r_i` and a burst share `b_i`. Redis keeps each holder's
//!   `(r_i, b_i, demand, expiry)` in one hash, `{prefix:rl:name}:shares`, frees the
//!   shares of holders past their expiry (`P` after their last renewal, on Redis's
//!   clock) and computes the max-min fair share of `R` over the live holders' demands.
//!   The renewing holder gets its fair share, but only out of what the others do not
//!   hold (theirs stand until their own renewal), so **`Σ r_i ≤ R` and `Σ b_i ≤ B` at
//!   every instant**. `b_i` is `r_i`'s fraction of `B`, at least one permit (a smaller
//!   burst could admit nothing). A holder short of its fair share renews every `P / 8`.
//! - **Spending.** The local bucket runs at `r_i` with burst `b_i`. A share taken from
//!   nothing starts with one permit (its burst fills at its rate); a changed share keeps
//!   the permits it had, at most its new burst. Refusals and reservations (`Wait`, `Queue`) are the local
//!   bucket's, bounded by the lease's end.
//! - **Over-admission bound.** The local buckets hold at most `Σ b_i ≤ B` permits and
//!   refill at `Σ r_i ≤ R`, so the fleet admits at most **`B + R·t` in any window of
//!   length `t`**, the bound of one limiter (over 1 s: at most `B / R` above `R`), plus
//!   the slack of shares moving: a holder applies a smaller share one reply latency `δ`
//!   after Redis decided it, and the capacity it gave up may be granted to another
//!   meanwhile, so each move of `Δr` can add `Δr · δ` permits; with clock rates `ε`
//!   apart between Redis and a process, a lease may outlive its Redis expiry by `ε·P`
//!   (the process times it from *before* its request, so never otherwise), and a share
//!   taken from nothing brings one permit. In all, over a window `t`:
//!   **`B + R·t + Σ Δr·δ + R·ε·P + j`**, `j` the holders that took a share from nothing
//!   in the window (a few permits at `δ` ≈ 1 ms). Unspent share is *under*-admission:
//!   it is never carried over beyond the burst.
//! - **Fairness, and how fast a newcomer gets its share.** A newcomer (or a holder whose
//!   share lapsed) reports an unknown demand, so the fair share is computed as if it
//!   wanted all of `R`; it gets at once what is free, and every other holder shrinks to
//!   the new fair share at its next renewal, within `P / 2`; the newcomer, renewing
//!   every `P / 8` while short, reaches its fair share within about **`P / 2 + P / 8`**.
//!   That is also the bound on starvation: a process with demand `d` holds at least
//!   `min(d, R / n)` (its max-min share among `n` holders) within `5P / 8` of asking,
//!   however busy the others are. A process whose demand falls reports it at its next
//!   renewal and keeps only half again as much (an idle one, nearly nothing); one that
//!   stopped calling holds its share until it lapses, `P` after its last renewal.
//! - **Failure.** A crashed process's share lapses `P` after its last renewal and is
//!   freed by the next renewal of anyone. A process that cannot reach Redis spends the
//!   share it holds until its lease ends (renewals are retried every `P / 8`, or as the
//!   backend's retry interval allows), then follows its fail mode. A restarted (or
//!   flushed) Redis starts with no shares: each holder's next renewal finds no record
//!   and is re-admitted at most at the share it still holds (so the old shares, which
//!   summed to at most `R`, are not exceeded), and newcomers get what is free; within
//!   one period every live holder has renewed and allocation is exact again. Until
//!   then, a newcomer may be granted capacity that a holder not yet renewed still
//!   spends: at most that holder's share, for at most `P / 2`.
//! - **Pauses.** A limiter's `pause_for` and `sync_from_headers` hold back its own
//!   lease and the exact-mode bucket in Redis; other processes' leases do not see them.
//! - **Shared circuits** get the same treatment where it is safe: a process that saw
//!   the shared circuit open rejects locally, without a round trip, until the open
//!   period ends (always on), and [`RedisConfigBuilder::sync_interval`] is a lease on a
//!   *closed* view (calls within it skip the first round trip).
//!
//! # A model of the fleet, from the measurements to 1 000 processes
//! Measured (`cargo run --release -p resilience-benches --example fleet`, figures in the
//! README): 8 OS processes × 16 tokio tasks hammering one limiter of `R` = 50 000/s,
//! `B` = 500, through one local `redis-server` on a shared 2-core machine, 30 s per mode.
//! With `P` = 1 s: 0.0004 Redis scripts per granted permit (637 renewals for 1 497 289
//! permits: 21 scripts/s for 8 processes, the `2N / P` = 16 of the model plus the
//! newcomers' and the start's short renewals), the worst 1 s window 0.56 % above `R`
//! (bound `B / R` = 1 %), acquires at 0.2 µs p50 and 0.9 µs p99 (in process), and a
//! process started halfway at 80 % of its fair share after 300 ms (model: at most
//! `5P / 8`). Without leases (exact mode, at most 10 000/s), 8.8 scripts per granted
//! permit (one per attempt, most of them refusals) and a p99 of 1.2 ms.
//!
//! The model, for `N` processes with leases of period `P`:
//! - **Redis scripts per second**: `2N / P` for holders at their share, `8 / P` for each
//!   one short of it (newcomers, for `5P / 8`): independent of `R`. Per granted permit:
//!   `2N / (P·R)`. Each script reads the whole shares hash: `O(N)` work in Redis.
//! - **Over-admission**: `B + R·t` in any window `t` (as one limiter), plus `R·δ` per
//!   reallocation (`δ` the reply latency); over 1 s, `B / R` above `R`.
//! - **At 1 000 processes**, `R` = 50 000/s, `P` = 1 s: 2 000 scripts/s (0.04 per granted
//!   permit), each iterating 1 000 hash fields (about 2·10⁶ field reads per second: a
//!   good part of one Redis core), a fair share of 50/s each. The burst must be at least
//!   one permit per holder (`B ≥ N`, so `B` = 1 000 and an over-admission bound of
//!   `B / R` = 2 % over 1 s), or holders beyond `B` get nothing until others go idle.
//! - **What breaks first**: the `O(N)` renewal script on the one Redis core owning the
//!   limiter's slot (`2N² / P` field reads per second: 2·10⁶ at `N` = 1 000, 8·10⁶ at
//!   2 000), then the burst floor (`B ≥ N`, which raises the bound `B / R`). Longer
//!   periods trade them for slower convergence (a newcomer waits about `5P / 8`); the
//!   way past both is fewer holders: one lease per host shared by its processes, so `N`
//!   counts hosts.
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
