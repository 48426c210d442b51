//! [`RedisBackend`]: the connections to one Redis, with a timeout on every call and a
//! health gate that keeps calls off a Redis that just failed.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::{Client, Cmd, Connection, FromRedisValue, Script, Value};

use super::config::RedisConfig;
use crate::ConfigError;
use crate::clock::{SharedClock, as_nanos, default_clock};

/// Why a Redis call did not answer (shown in warn events and in
/// [`Error::BackendUnavailable`](crate::Error::BackendUnavailable)).
pub(crate) type Unavailable = Arc<str>;

/// The connections to one Redis.
///
/// Async callers share one multiplexed [`ConnectionManager`] per tokio runtime (it
/// reconnects on its own); blocking callers take a connection from a small pool. Every
/// call is bounded by [`RedisConfig::timeout`]. After a failure the backend is *down*
/// for [`RedisConfig::retry_interval`]: calls fail at once without touching the network
/// (the instances then fail open or closed), and the first call after the interval tries
/// Redis again. Going down and coming back are warn and info events.
///
/// Most programs never build one: instances with `Backend::Redis` use the process-wide
/// backend from [`configure`](super::configure) or `RESILIENCE_REDIS_URL`.
pub struct RedisBackend {
    config: RedisConfig,
    client: Target,
    clock: SharedClock,
    /// One async connection per tokio runtime: a manager's (or a cluster connection's)
    /// task lives on the runtime that created it.
    managers: papaya::HashMap<tokio::runtime::Id, AsyncCon>,
    /// The user's own connection manager, used by every async call.
    given: Option<AsyncCon>,
    pool: Mutex<Vec<SyncCon>>,
    /// Clock nanos until which calls skip Redis; 0 when up.
    down_until: AtomicU64,
    down: AtomicBool,
    /// Counts recoveries, so that views of shared state re-read after an outage.
    recoveries: AtomicU64,
    last_error: Mutex<Unavailable>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &redact(self.config.url()))
            .field("available", &self.is_available())
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// A backend for `config`. Nothing connects until the first call.
    pub fn new(config: RedisConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, default_clock())
    }

    /// A backend timing its retry interval on `clock` (e.g. a
    /// [`ManualClock`](crate::clock::ManualClock) in tests). Redis calls themselves are
    /// bounded by the timeout on tokio's timer (async) or the socket (blocking).
    pub fn with_clock(config: RedisConfig, clock: SharedClock) -> Result<Self, ConfigError> {
        let client = target(&config)?;
        Ok(Self::assemble(config, client, None, clock))
    }

    /// A backend on the caller's own client (built with whatever the `redis` crate
    /// offers: TLS settings, credentials, a Unix socket). `config` supplies the timeout,
    /// the intervals, the key prefix and the pool size; its URL, `cluster` and TLS
    /// settings are not used. Blocking callers open (and pool) connections from
    /// `client`; async callers share one multiplexed connection per tokio runtime.
    /// The client is the `redis` crate's, of the version this crate depends on.
    pub fn from_client(config: RedisConfig, client: Client) -> Self {
        Self::assemble(config, Target::Single(client), None, default_clock())
    }

    /// A backend whose async calls all go through the caller's own connection manager
    /// (so a service reuses the one multiplexed connection it already has; it serves
    /// every tokio runtime as long as the runtime that created it runs). Blocking
    /// callers open connections from `client`, normally the one the manager was made
    /// from. `config` applies as in [`from_client`](Self::from_client). The manager's
    /// own timeouts and retries apply inside ours.
    pub fn from_connection_manager(
        config: RedisConfig,
        client: Client,
        manager: ConnectionManager,
    ) -> Self {
        Self::assemble(
            config,
            Target::Single(client),
            Some(AsyncCon::Single(manager)),
            default_clock(),
        )
    }

    /// A backend on the caller's own Redis Cluster client (its seed nodes, TLS and
    /// credentials). Every key of one limiter or circuit carries one hash tag, so each
    /// script runs on the one primary that owns its slot. `config` applies as in
    /// [`from_client`](Self::from_client).
    pub fn from_cluster_client(config: RedisConfig, client: ClusterClient) -> Self {
        Self::assemble(config, Target::Cluster(Box::new(client)), None, default_clock())
    }

    fn assemble(
        config: RedisConfig,
        client: Target,
        given: Option<AsyncCon>,
        clock: SharedClock,
    ) -> Self {
        RedisBackend {
            config,
            client,
            clock,
            managers: papaya::HashMap::new(),
            given,
            pool: Mutex::new(Vec::new()),
            down_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            recoveries: AtomicU64::new(0),
            last_error: Mutex::new(Arc::from("")),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Whether the last call reached Redis (no outage being sat out).
    pub fn is_available(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    /// One `PING` round trip on the async connection (a health check, and the baseline
    /// the limiter's cost is measured against).
    pub async fn ping_async(&self) -> Result<(), crate::Error> {
        self.run_async(
            |mut con| async move { redis::cmd("PING").query_async::<()>(&mut con).await },
        )
        .await
        .map_err(|reason| crate::Error::backend_unavailable("redis", reason))
    }

    /// One `PING` round trip on a pooled blocking connection.
    pub fn ping_blocking(&self) -> Result<(), crate::Error> {
        self.run_blocking(|con| redis::cmd("PING").query::<()>(con))
            .map_err(|reason| crate::Error::backend_unavailable("redis", reason))
    }

    /// Now on the backend's clock.
    pub(crate) fn now(&self) -> Duration {
        self.clock.now()
    }

    pub(crate) fn prefix(&self) -> &str {
        self.config.key_prefix()
    }

    pub(crate) fn sync_interval(&self) -> Duration {
        self.config.sync_interval()
    }

    pub(crate) fn recoveries(&self) -> u64 {
        self.recoveries.load(Ordering::Acquire)
    }

    /// Evaluates `script` on the async connection: one `EVALSHA` round trip (plus a
    /// `SCRIPT LOAD` the first time a server sees the script).
    pub(crate) async fn eval_async<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<T, Unavailable> {
        let cmd = &evalsha(script, keys, args);
        self.run_async(|mut con| async move {
            match cmd.query_async(&mut con).await {
                Err(e) if is_noscript(&e) => {
                    script.load_async(&mut con).await?;
                    cmd.query_async(&mut con).await
                }
                reply => reply,
            }
        })
        .await
    }

    /// Evaluates `script` on a pooled blocking connection; see [`eval_async`](Self::eval_async).
    pub(crate) fn eval_blocking<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[i64],
    ) -> Result<T, Unavailable> {
        let cmd = evalsha(script, keys, args);
        self.run_blocking(|con| match cmd.query(con) {
            Err(e) if is_noscript(&e) => {
                script.load(con)?;
                cmd.query(con)
            }
            reply => reply,
        })
    }

    /// Deletes `keys` on a pooled blocking connection.
    pub(crate) fn del_blocking(&self, keys: &[&str]) -> Result<(), Unavailable> {
        self.run_blocking(|con| redis::cmd("DEL").arg(keys).query::<()>(con))
    }

    async fn run_async<T, F, Fut>(&self, op: F) -> Result<T, Unavailable>
    where
        F: Fn(AsyncCon) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        // Outside a tokio runtime the call is the caller's mistake, not an outage: the
        // backend stays up for everyone else.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(Arc::from(
                "an async Redis call needs a tokio runtime (with time and IO enabled)",
            ));
        };
        self.gate()?;
        let late = || format!("no answer within {:?}", self.config.timeout());
        let attempt = async {
            let manager = match self.manager(runtime.id()).await {
                Ok(m) => m,
                Err(e) if e.is_timeout() => return Err(late()),
                Err(e) => return Err(format!("cannot connect: {e}")),
            };
            let reply = match op(manager.clone()).await {
                // The manager reconnects after a dropped connection (a restarted Redis):
                // one more try, within the same timeout.
                Err(e) if stale(&e) => op(manager).await,
                other => other,
            };
            reply.map_err(|e| {
                // The connection's own response timeout equals ours: the same message.
                if e.is_timeout() { late() } else { e.to_string() }
            })
        };
        match tokio::time::timeout(self.config.timeout(), attempt).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Ok(v)
            }
            Ok(Err(reason)) => Err(self.failed(reason)),
            Err(_) => Err(self.failed(late())),
        }
    }

    fn run_blocking<T>(
        &self,
        mut op: impl FnMut(&mut SyncCon) -> redis::RedisResult<T>,
    ) -> Result<T, Unavailable> {
        self.gate()?;
        // One deadline for the whole call: connecting, a retry on a fresh connection,
        // and the command share `timeout`.
        let timeout = self.config.timeout();
        let deadline = std::time::Instant::now() + timeout;
        let left =
            || deadline.checked_duration_since(std::time::Instant::now()).filter(|d| !d.is_zero());
        let late = || format!("no answer within {timeout:?}");
        let pooled = self.pool.lock().pop();
        let reused = pooled.is_some();
        let mut con = match pooled {
            Some(con) => con,
            None => match self.connect_blocking(timeout) {
                Ok(con) => con,
                Err(e) if e.is_timeout() => return Err(self.failed(late())),
                Err(e) => return Err(self.failed(format!("cannot connect: {e}"))),
            },
        };
        let mut result = match left() {
            Some(d) => set_timeouts(&con, d).and_then(|()| op(&mut con)),
            None => return Err(self.failed(late())),
        };
        // A pooled connection may have been closed by a Redis that restarted or timed
        // it out while idle: that says nothing about Redis now, so try once on a fresh
        // one. (Not after a timeout: the call has had its time.)
        if let Err(e) = &result
            && reused
            && stale(e)
        {
            let Some(d) = left() else {
                return Err(self.failed(late()));
            };
            match self.connect_blocking(d) {
                Ok(fresh) => {
                    con = fresh;
                    result = match left() {
                        Some(d) => set_timeouts(&con, d).and_then(|()| op(&mut con)),
                        None => return Err(self.failed(late())),
                    };
                }
                Err(e) if e.is_timeout() => return Err(self.failed(late())),
                Err(e) => return Err(self.failed(format!("cannot connect: {e}"))),
            }
        }
        match result {
            Ok(v) => {
                self.succeeded();
                let mut pool = self.pool.lock();
                if pool.len() < self.config.pool_size() {
                    pool.push(con);
                }
                Ok(v)
            }
            // The connection may hold a half-read reply: drop it.
            Err(e) if e.is_timeout() => Err(self.failed(late())),
            Err(e) => Err(self.failed(e.to_string())),
        }
    }

    fn connect_blocking(&self, timeout: Duration) -> redis::RedisResult<SyncCon> {
        match &self.client {
            Target::Single(client) => {
                client.get_connection_with_timeout(timeout).map(SyncCon::Single)
            }
            Target::Cluster(client) => client
                .get_connection_with_config(
                    ClusterConfig::new()
                        .set_connection_timeout(timeout)
                        .set_response_timeout(timeout),
                )
                .map(|c| SyncCon::Cluster(Box::new(c))),
        }
    }

    /// The async connection of the runtime `id`: the user's manager, else one made (and
    /// kept) for that runtime. A cluster connection is made here, within the call's
    /// timeout; a manager connects lazily.
    async fn manager(&self, id: tokio::runtime::Id) -> redis::RedisResult<AsyncCon> {
        if let Some(given) = &self.given {
            return Ok(given.clone());
        }
        if let Some(m) = self.managers.pin().get(&id) {
            return Ok(m.clone());
        }
        let timeout = self.config.timeout();
        let made = match &self.client {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                AsyncCon::Single(ConnectionManager::new_lazy_with_config(client.clone(), config)?)
            }
            Target::Cluster(client) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                AsyncCon::Cluster(client.get_async_connection_with_config(config).await?)
            }
        };
        // Two first calls racing both connect; one connection is kept.
        Ok(self.managers.pin().get_or_insert(id, made).clone())
    }

    /// `Err` at once while an outage is being sat out; the first caller after the
    /// retry interval goes through (and pushes the next retry out for the others).
    fn gate(&self) -> Result<(), Unavailable> {
        if !self.down.load(Ordering::Acquire) {
            return Ok(());
        }
        let now = as_nanos(self.clock.now());
        let until = self.down_until.load(Ordering::Acquire);
        let next = now.saturating_add(as_nanos(self.config.retry_interval()));
        if now >= until
            && self
                .down_until
                .compare_exchange(until, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Ok(());
        }
        Err(self.last_error.lock().clone())
    }

    fn failed(&self, reason: String) -> Unavailable {
        let reason: Unavailable = Arc::from(reason);
        *self.last_error.lock() = reason.clone();
        let until =
            as_nanos(self.clock.now()).saturating_add(as_nanos(self.config.retry_interval()));
        self.down_until.store(until, Ordering::Release);
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                url = %redact(self.config.url()),
                reason = %reason,
                retry_in = ?self.config.retry_interval(),
                "redis backend unavailable: shared limiters and circuits fail open or closed as configured"
            );
        }
        reason
    }

    fn succeeded(&self) {
        if self.down.load(Ordering::Acquire) && self.down.swap(false, Ordering::AcqRel) {
            self.recoveries.fetch_add(1, Ordering::AcqRel);
            tracing::info!(url = %redact(self.config.url()), "redis backend available again: state is shared again");
        }
    }
}

/// Read and write timeouts of `con`: what is left of the call's deadline.
fn set_timeouts(con: &SyncCon, left: Duration) -> redis::RedisResult<()> {
    match con {
        SyncCon::Single(con) => {
            con.set_read_timeout(Some(left))?;
            con.set_write_timeout(Some(left))
        }
        SyncCon::Cluster(con) => {
            con.set_read_timeout(Some(left))?;
            con.set_write_timeout(Some(left))
        }
    }
}

/// What a backend connects with: one server (or the user's client), or a Cluster.
// One per backend: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Single(Client),
    Cluster(Box<ClusterClient>),
}

/// The client of `config`: a Cluster client on the URL as seed node when the config
/// says `cluster`, else a plain client; TLS settings applied.
fn target(config: &RedisConfig) -> Result<Target, ConfigError> {
    let info = connection_info(config.url())?;
    let bad = |e: redis::RedisError| ConfigError::new("redis.url", e.to_string());
    #[cfg(feature = "redis-tls")]
    install_crypto_provider();
    if config.is_cluster() {
        let timeout = config.timeout();
        let builder = ClusterClient::builder([info])
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(1);
        #[cfg(feature = "redis-tls")]
        let builder = match config.tls_root_cert() {
            Some(pem) => builder.certs(certificates(pem)),
            None => builder,
        };
        return builder.build().map(|c| Target::Cluster(Box::new(c))).map_err(bad);
    }
    #[cfg(feature = "redis-tls")]
    if let Some(pem) = config.tls_root_cert() {
        return Client::build_with_tls(info, certificates(pem)).map(Target::Single).map_err(bad);
    }
    Client::open(info).map(Target::Single).map_err(bad)
}

#[cfg(feature = "redis-tls")]
fn certificates(root_pem: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates { client_tls: None, root_cert: Some(root_pem.to_vec()) }
}

/// rustls needs a process-wide crypto provider when more than one is compiled in (for
/// instance when another dependency brings aws-lc-rs): install ring's unless the program
/// installed one already. ring builds quickly but has no post-quantum key exchange
/// (hence rustls's deprecation note); a program that wants it installs aws-lc-rs's
/// provider before its first Redis backend, and that one is kept.
#[cfg(feature = "redis-tls")]
#[allow(deprecated)]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed one in between: theirs is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// An async connection: a (multiplexed, reconnecting) manager, or a Cluster connection
/// routing each command to the primary of its slot.
#[derive(Clone)]
pub(crate) enum AsyncCon {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for AsyncCon {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            AsyncCon::Single(c) => c.req_packed_command(cmd),
            AsyncCon::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            AsyncCon::Single(c) => c.req_packed_commands(pipeline, offset, count),
            AsyncCon::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            AsyncCon::Single(c) => c.get_db(),
            AsyncCon::Cluster(c) => c.get_db(),
        }
    }
}

/// A blocking connection: to one server, or to a Cluster (one per node, routed by slot).
pub(crate) enum SyncCon {
    Single(Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for SyncCon {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<Value> {
        match self {
            SyncCon::Single(c) => c.req_packed_command(cmd),
            SyncCon::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        match self {
            SyncCon::Single(c) => c.req_packed_commands(cmd, offset, count),
            SyncCon::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    // The cluster routes a command by its keys: hand it the command, not its bytes.
    fn req_command(&mut self, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            SyncCon::Single(c) => c.req_command(cmd),
            SyncCon::Cluster(c) => c.req_command(cmd),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            SyncCon::Single(c) => c.supports_pipelining(),
            SyncCon::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            SyncCon::Single(c) => c.get_db(),
            SyncCon::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            SyncCon::Single(c) => c.check_connection(),
            SyncCon::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            SyncCon::Single(c) => c.is_open(),
            SyncCon::Cluster(c) => c.is_open(),
        }
    }
}

/// The connection info of `url`, sending nothing on connect (no `CLIENT SETINFO` round
/// trips), so connecting costs only the TCP (and TLS) handshake within the timeout.
pub(crate) fn connection_info(url: &str) -> Result<redis::ConnectionInfo, ConfigError> {
    use redis::IntoConnectionInfo;
    let info = url.into_connection_info().map_err(|e| {
        let tls = if url.starts_with("rediss:") && !cfg!(feature = "redis-tls") {
            " (rediss:// needs the crate feature `redis-tls`)"
        } else {
            ""
        };
        ConfigError::new(
            "redis.url",
            format!(
                "`{}` is not a Redis URL ({e}){tls}; write redis://host:port[/db] or rediss://host:port[/db]",
                redact(url)
            ),
        )
    })?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    Ok(info.set_redis_settings(settings))
}

/// Whether `e` says the connection is gone (rather than Redis being slow or refusing).
fn stale(e: &redis::RedisError) -> bool {
    !e.is_timeout() && (e.is_connection_dropped() || e.is_io_error())
}

/// `EVALSHA` of `script`, built in one buffer (what `Script::prepare_invoke` would copy
/// through a vector per argument first).
fn evalsha(script: &Script, keys: &[&str], args: &[i64]) -> Cmd {
    // "EVALSHA", the 40-digit hash, the key count; the keys; at most 20 digits per number.
    let bytes = 50 + keys.iter().map(|k| k.len()).sum::<usize>() + 20 * args.len();
    let mut cmd = Cmd::with_capacity(3 + keys.len() + args.len(), bytes);
    cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys.len());
    for key in keys {
        cmd.arg(*key);
    }
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}

/// The server does not have the script (yet, or any more after a restart).
fn is_noscript(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
}

/// The URL without its password, for events.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(redact("redis://user:secret@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }
}
