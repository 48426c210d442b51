//! [`RedisConfig`]: where Redis is and how long to wait for it.

use std::time::Duration;

use crate::ConfigError;
use crate::error::check;

/// The environment variable read for the Redis URL when none was configured.
pub const URL_ENV: &str = "RESILIENCE_REDIS_URL";

/// Connection settings of the Redis backend.
///
/// ```
/// use resilience::redis::RedisConfig;
/// use std::time::Duration;
///
/// let config = RedisConfig::builder("redis://127.0.0.1:6379/0")
///     .timeout(Duration::from_millis(20))
///     .key_prefix("orders-service")
///     .build()?;
/// assert_eq!(config.timeout(), Duration::from_millis(20));
/// assert!(RedisConfig::builder("http://nope").build().is_err());
/// # Ok::<(), resilience::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    url: String,
    timeout: Duration,
    retry_interval: Duration,
    sync_interval: Duration,
    key_prefix: String,
    pool_size: usize,
    cluster: bool,
    lease: Duration,
    #[cfg(feature = "redis-tls")]
    tls_root_cert: Option<Vec<u8>>,
}

/// Shows the URL without its password.
impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &super::backend::redact(&self.url))
            .field("timeout", &self.timeout)
            .field("retry_interval", &self.retry_interval)
            .field("sync_interval", &self.sync_interval)
            .field("key_prefix", &self.key_prefix)
            .field("pool_size", &self.pool_size)
            .field("cluster", &self.cluster)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// A builder for Redis at `url` (`redis://[user:password@]host:port[/db]`, or
    /// `rediss://` for TLS with the crate feature `redis-tls`).
    pub fn builder(url: impl Into<String>) -> RedisConfigBuilder {
        RedisConfigBuilder {
            config: RedisConfig {
                url: url.into(),
                timeout: Duration::from_millis(100),
                retry_interval: Duration::from_secs(1),
                sync_interval: Duration::ZERO,
                key_prefix: "resilience".to_owned(),
                pool_size: 8,
                cluster: false,
                lease: Duration::ZERO,
                #[cfg(feature = "redis-tls")]
                tls_root_cert: None,
            },
        }
    }

    /// The defaults with the URL from `RESILIENCE_REDIS_URL`; `None` when it is unset.
    pub fn from_env() -> Option<Result<RedisConfig, ConfigError>> {
        std::env::var(URL_ENV).ok().map(|url| RedisConfig::builder(url).build())
    }

    /// The Redis URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The longest a call waits on Redis: connecting, or one command's round trip.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// After a failure, how long calls skip Redis (failing open or closed at once) before
    /// one call tries it again.
    pub fn retry_interval(&self) -> Duration {
        self.retry_interval
    }

    /// How old a process's view of a closed shared circuit may be before a call re-reads
    /// it (zero: every call asks first).
    pub fn sync_interval(&self) -> Duration {
        self.sync_interval
    }

    /// The prefix of every key written: `{prefix:rl:name}` for a limiter,
    /// `{prefix:cb:name}` (and `…:window`, `…:probes`) for a circuit, braces included (the
    /// Cluster hash tag).
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// Idle connections kept for blocking (sync) callers; async callers share one
    /// multiplexed connection per tokio runtime.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// How long a shared limiter's leased share of the rate lasts without a renewal
    /// (zero: leases off, one round trip per acquire); see [`RedisConfigBuilder::lease`].
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Whether the URL is a seed node of a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The PEM certificate(s) trusted for `rediss://` besides the system's roots.
    #[cfg(feature = "redis-tls")]
    pub fn tls_root_cert(&self) -> Option<&[u8]> {
        self.tls_root_cert.as_deref()
    }
}

/// Builds a [`RedisConfig`]; see there.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedisConfigBuilder {
    // Debug shows `config`, whose Debug hides the password.
    config: RedisConfig,
}

impl RedisConfigBuilder {
    setters! {
        /// The longest a call waits on Redis (default 100 ms).
        pub fn timeout(timeout: Duration) => self.config.timeout = timeout;

        /// How long calls skip Redis after a failure (default 1 s).
        pub fn retry_interval(interval: Duration) => self.config.retry_interval = interval;

        /// How old a process's view of a *closed* shared circuit may get before a call
        /// re-reads it (default zero: every call asks Redis first, so a circuit opened by
        /// another process rejects the very next call here). A positive interval saves that
        /// round trip on calls made within it of the last answer, at a price: every call
        /// started in that interval goes through, even after another process opened the
        /// circuit, and even into a half-open circuit.
        pub fn sync_interval(interval: Duration) => self.config.sync_interval = interval;

        /// The key prefix (default `resilience`): processes share state only under the same
        /// prefix.
        pub fn key_prefix(prefix: impl Into<String>) => self.config.key_prefix = prefix.into();

        /// Idle connections kept for blocking callers (default 8).
        pub fn pool_size(n: usize) => self.config.pool_size = n;

        /// Whether the URL is one node of a Redis Cluster (default false). The client
        /// discovers the other nodes and routes each script to the primary owning its
        /// keys: every key of one limiter or circuit carries the hash tag
        /// `{prefix:rl:name}` or `{prefix:cb:name}`, so they share one slot. Costs: one
        /// connection per primary (per tokio runtime, and per pooled blocking
        /// connection), a slot-map refresh (`CLUSTER SLOTS`) on connect and after a
        /// `MOVED` reply; each call is still one round trip to one node.
        pub fn cluster(cluster: bool) => self.config.cluster = cluster;

        /// Permit leases for shared (direct, not keyed) limiters: the lease period `P`
        /// (default zero: off, every acquire is one exact round trip). With a period, each
        /// process leases a *share of the rate* (rate `r` and burst `b`, a max-min fair
        /// share of the limit over the processes' recent demands) and spends it with the
        /// in-process bucket, without any round trip; it renews the share every `P / 2`
        /// (one script), and a share not renewed lapses after `P`. The fleet admits at
        /// most `B + R·t` in any window `t`, plus a slack while shares move (see
        /// [the module](super)). Typical: 1 s (`2 / P` scripts per second per process;
        /// a newcomer gets its fair share within about `P / 2`).
        pub fn lease(period: Duration) => self.config.lease = period;
    }

    /// Trusts `pem` (one or more PEM certificates, e.g. a private CA) for `rediss://`
    /// servers, besides the system's roots (crate feature `redis-tls`). TLS costs a
    /// handshake per new connection (connections are kept, so not per call) and a few
    /// microseconds of encryption per round trip.
    #[cfg(feature = "redis-tls")]
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.config.tls_root_cert = Some(pem.into());
        self
    }

    /// Validates and builds: the URL must parse as a Redis URL, the timeout and the retry
    /// interval must be positive and at most an hour, the prefix must not be empty nor
    /// contain braces.
    pub fn build(self) -> Result<RedisConfig, ConfigError> {
        let c = self.config;
        super::backend::connection_info(&c.url)?;
        for (field, d) in [("redis.timeout", c.timeout), ("redis.retry_interval", c.retry_interval)]
        {
            check::positive(field, d)?;
            if d > Duration::from_secs(3600) {
                return Err(ConfigError::new(field, format!("must be at most 1h (got {d:?})")));
            }
        }
        if c.lease > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "redis.lease",
                format!("must be at most 60s (got {:?}); zero turns leases off", c.lease),
            ));
        }
        if c.sync_interval > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "redis.sync_interval",
                format!("must be at most 1h (got {:?})", c.sync_interval),
            ));
        }
        if c.key_prefix.is_empty() {
            return Err(ConfigError::new("redis.key_prefix", "must not be empty"));
        }
        // The prefix opens every key's hash tag: a brace would cut or empty it.
        if c.key_prefix.contains(['{', '}']) {
            return Err(ConfigError::new(
                "redis.key_prefix",
                format!("must not contain `{{` or `}}` (got `{}`)", c.key_prefix),
            ));
        }
        Ok(c)
    }
}
