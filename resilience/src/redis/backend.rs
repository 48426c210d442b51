//! [`RedisBackend`]: the connections to one Redis, with a timeout on every call and a
//! health gate that keeps calls off a Redis that just failed.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, Connection, FromRedisValue, Script};

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
    client: Client,
    clock: SharedClock,
    /// One manager per tokio runtime: a manager's connection task lives on the runtime
    /// that created it.
    managers: papaya::HashMap<tokio::runtime::Id, ConnectionManager>,
    pool: Mutex<Vec<Connection>>,
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
        let client = client(config.url())?;
        Ok(RedisBackend {
            config,
            client,
            clock,
            managers: papaya::HashMap::new(),
            pool: Mutex::new(Vec::new()),
            down_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
            recoveries: AtomicU64::new(0),
            last_error: Mutex::new(Arc::from("")),
        })
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
        F: Fn(ConnectionManager) -> Fut,
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
        let manager = match self.manager(runtime.id()) {
            Ok(m) => m,
            Err(e) => return Err(self.failed(format!("cannot connect: {e}"))),
        };
        let attempt = async {
            match op(manager.clone()).await {
                // The manager reconnects after a dropped connection (a restarted Redis):
                // one more try, within the same timeout.
                Err(e) if stale(&e) => op(manager).await,
                other => other,
            }
        };
        match tokio::time::timeout(self.config.timeout(), attempt).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Ok(v)
            }
            // The connection's own response timeout equals ours: the same message.
            Ok(Err(e)) if e.is_timeout() => {
                Err(self.failed(format!("no answer within {:?}", self.config.timeout())))
            }
            Ok(Err(e)) => Err(self.failed(e.to_string())),
            Err(_) => Err(self.failed(format!("no answer within {:?}", self.config.timeout()))),
        }
    }

    fn run_blocking<T>(
        &self,
        mut op: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
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

    fn connect_blocking(&self, timeout: Duration) -> redis::RedisResult<Connection> {
        self.client.get_connection_with_timeout(timeout)
    }

    fn manager(&self, id: tokio::runtime::Id) -> redis::RedisResult<ConnectionManager> {
        let managers = self.managers.pin();
        if let Some(m) = managers.get(&id) {
            return Ok(m.clone());
        }
        let timeout = Some(self.config.timeout());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(1);
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        Ok(managers.get_or_insert(id, manager).clone())
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
fn set_timeouts(con: &Connection, left: Duration) -> redis::RedisResult<()> {
    con.set_read_timeout(Some(left))?;
    con.set_write_timeout(Some(left))
}

/// A client for `url` that sends nothing on connect for a plain URL (no `CLIENT SETINFO`
/// round trips), so connecting costs only the TCP handshake within the timeout.
pub(crate) fn client(url: &str) -> Result<Client, ConfigError> {
    use redis::IntoConnectionInfo;
    let bad = |e: redis::RedisError| {
        ConfigError::new(
            "redis.url",
            format!("`{}` is not a Redis URL ({e}); write redis://host:port[/db]", redact(url)),
        )
    };
    let info = url.into_connection_info().map_err(bad)?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    Client::open(info.set_redis_settings(settings)).map_err(bad)
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
