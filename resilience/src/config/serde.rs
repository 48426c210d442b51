//! `Deserialize` for the config types (feature `serde`), through the key tables: a bad
//! value is an error naming the key, never a panic.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::Error as _};

use super::{LayerConfig, Value, timeout_from_entries};
use crate::circuit::ThrottleConfig;
use crate::hedge::HedgeConfig;
use crate::presets::ResilienceConfig;
use crate::registry::Registry;
use crate::retry::{RetryBudgetConfig, RetryPolicy};
use crate::{BulkheadConfig, CircuitBreakerConfig, ConfigError, RateLimitConfig};

/// Any value of a self-describing format (TOML, JSON, YAML), kept as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Raw {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    /// A table, in the order written.
    Table(Vec<(String, Raw)>),
    /// Anything else (an array, a date, null): refused where it is used.
    Other(&'static str),
}

impl Raw {
    /// The value of a `key = value` entry, or an error for a nested table or an array.
    pub(crate) fn value(&self, key: &str) -> Result<Value<'_>, ConfigError> {
        Ok(match self {
            Raw::Int(n) => Value::Int(*n),
            Raw::Float(x) => Value::Float(*x),
            Raw::Str(s) => Value::Str(s),
            Raw::Bool(b) => Value::Bool(*b),
            Raw::Table(_) => {
                return Err(ConfigError::new(key.to_owned(), "expects a value, not a table"));
            }
            Raw::Other(what) => {
                return Err(ConfigError::new(
                    key.to_owned(),
                    format!("expects a value, not {what}"),
                ));
            }
        })
    }

    /// The entries of a table.
    pub(crate) fn table(&self, key: &str) -> Result<&[(String, Raw)], ConfigError> {
        match self {
            Raw::Table(t) => Ok(t),
            _ => Err(ConfigError::new(key.to_owned(), "expects a table of `key = value` entries")),
        }
    }
}

/// Prefixes an error's field with `path` (`orders.retry` + `max_attempts`).
pub(crate) fn under(path: &str) -> impl Fn(ConfigError) -> ConfigError + '_ {
    move |e| {
        let field =
            if path.is_empty() { e.field().to_owned() } else { format!("{path}.{}", e.field()) };
        ConfigError::new(field, e.message().to_owned())
    }
}

/// Reads a layer table over `base`.
pub(crate) fn layer<C: LayerConfig>(
    path: &str,
    table: &Raw,
    base: Option<C>,
    registry: &Registry,
) -> Result<C, ConfigError> {
    let entries = entries(
        table.table(path).map_err(|e| ConfigError::new(path.to_owned(), e.message().to_owned()))?,
    )
    .map_err(under(path))?;
    C::from_entries(base, &entries, registry).map_err(under(path))
}

fn entries(table: &[(String, Raw)]) -> Result<Vec<(&str, Value<'_>)>, ConfigError> {
    table.iter().map(|(k, v)| Ok((k.as_str(), v.value(k)?))).collect()
}

/// The keys of a named bundle ([`ResilienceConfig`]): `base`, `timeout` and one table per
/// layer.
pub(crate) const SECTION_KEYS: &[&str] =
    &["base", "timeout", "deadline", "retry", "circuit_breaker", "rate_limit", "bulkhead", "hedge"];

/// The `base` a bundle's table names, if any.
pub(crate) fn base_name<'t>(
    path: &str,
    table: &'t [(String, Raw)],
) -> Result<Option<&'t str>, ConfigError> {
    table
        .iter()
        .find(|(k, _)| k == "base")
        .map(|(k, v)| v.value(k)?.text(k))
        .transpose()
        .map_err(under(path))
}

/// Applies a bundle's table (every key but `base`) over `c`.
pub(crate) fn section(
    path: &str,
    table: &[(String, Raw)],
    mut c: ResilienceConfig,
    registry: &Registry,
) -> Result<ResilienceConfig, ConfigError> {
    let sub = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    for (key, value) in table {
        match key.as_str() {
            "base" => {}
            "timeout" => {
                let limit = match value {
                    Raw::Table(t) => timeout_from_entries(&entries(t).map_err(under(&sub(key)))?)
                        .map_err(under(&sub(key)))?,
                    other => timeout_from_entries(&[("duration", other.value(key)?)])
                        .map_err(|e| ConfigError::new(sub(key), e.message().to_owned()))?,
                };
                if let Some(limit) = limit {
                    c.timeout = Some(limit);
                }
            }
            "deadline" => {
                let limit = value.value(key).and_then(|v| v.duration(key));
                let with = |limit| c.clone().with_deadline(limit);
                c = limit.and_then(with).map_err(|e| ConfigError::new(sub(key), e.message()))?;
            }
            "retry" => c.retry = Some(layer(&sub(key), value, c.retry.take(), registry)?),
            "circuit_breaker" => {
                c.circuit_breaker =
                    Some(layer(&sub(key), value, c.circuit_breaker.take(), registry)?)
            }
            "rate_limit" => {
                c.rate_limit = Some(layer(&sub(key), value, c.rate_limit.take(), registry)?)
            }
            "bulkhead" => c.bulkhead = Some(layer(&sub(key), value, c.bulkhead.take(), registry)?),
            "hedge" => c.hedge = Some(layer(&sub(key), value, c.hedge.take(), registry)?),
            other => {
                // In a file, structural mistakes are reported on the file (`toml`).
                let field = if path.is_empty() { other.to_owned() } else { "toml".to_owned() };
                return Err(ConfigError::new(
                    field,
                    format!(
                        "unknown key `{other}` in `[{path}]`; expected one of: {}",
                        SECTION_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(c)
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a string, a boolean or a table")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(i64::try_from(v).map_or(Raw::Other("a number this large"), Raw::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Other("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Other("null"))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Raw::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut table = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Raw>()? {
            table.push((key, value));
        }
        Ok(Raw::Table(table))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

/// `Deserialize` through the layer's key table, on the global registry (for retry
/// budget names).
macro_rules! deserialize_via_keys {
    ($($ty:ty),*) => {$(
        /// Reads the layer's keys (see [`config`](crate::config)) and validates them as
        /// the builder does; an invalid value is an error naming the key.
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = Raw::deserialize(d)?;
                layer::<$ty>("", &raw, None, crate::registry()).map_err(D::Error::custom)
            }
        }
    )*};
}

deserialize_via_keys!(
    CircuitBreakerConfig,
    RateLimitConfig,
    BulkheadConfig,
    RetryPolicy,
    RetryBudgetConfig,
    ThrottleConfig,
    HedgeConfig
);

/// Reads `base` (a preset of the global registry), `timeout` and one table per layer,
/// as a TOML file's table does.
impl<'de> Deserialize<'de> for ResilienceConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(d)?;
        let registry = crate::registry();
        let read = || -> Result<ResilienceConfig, ConfigError> {
            let table = raw.table("config")?;
            let base = match base_name("", table)? {
                Some(name) => registry
                    .preset(name)
                    .ok_or_else(|| ConfigError::new("base", format!("`{name}` is not a preset")))?,
                None => ResilienceConfig::new(),
            };
            section("", table, base, registry)
        };
        read().map_err(D::Error::custom)
    }
}
