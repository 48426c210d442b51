//! The TOML front-end: each table a name, each layer table read through the layer's key
//! table (see the module docs of `config`).

use std::collections::BTreeMap;

use super::serde::{Raw, base_name, section};
use crate::ConfigError;
use crate::presets::ResilienceConfig;
use crate::registry::Registry;

fn err(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::new(path.into(), message)
}

/// Loads named configs from TOML text into `registry`: each name's instances are
/// (re-)configured and the name becomes a preset. Nothing is applied unless the whole
/// text is valid.
pub(crate) fn load(registry: &Registry, text: &str) -> Result<(), ConfigError> {
    let syntax = |e: toml::de::Error| err("toml", e.to_string().trim_end().to_string());
    let mut tables: BTreeMap<String, Raw> = toml::from_str(text).map_err(syntax)?;
    let redis = tables.remove("redis").map(|t| redis_backend(&t)).transpose()?;
    let mut sections: BTreeMap<&str, &[(String, Raw)]> = BTreeMap::new();
    for (name, raw) in &tables {
        let table = raw
            .table(name)
            .map_err(|_| err("toml", format!("`{name}` must be a table: write `[{name}]`")))?;
        sections.insert(name, table);
    }
    let mut resolved: BTreeMap<String, ResilienceConfig> = BTreeMap::new();
    for name in sections.keys() {
        resolve(registry, &sections, name, &mut resolved, &mut Vec::new())?;
    }
    #[cfg(feature = "redis")]
    if let Some(config) = redis {
        let backend = std::sync::Arc::new(crate::redis::RedisBackend::new(config)?);
        registry.set_store(std::sync::Arc::new(crate::redis::RedisStore::new(backend)));
    }
    #[cfg(not(feature = "redis"))]
    let _: Option<()> = redis;
    for (name, config) in resolved {
        registry.configure(&name, config);
    }
    Ok(())
}

/// The `[redis]` table: the backend the registry's shared instances use (`url` falls back to
/// `RESILIENCE_REDIS_URL`).
#[cfg(feature = "redis")]
fn redis_backend(raw: &Raw) -> Result<crate::redis::RedisConfig, ConfigError> {
    use crate::redis::{RedisConfig, URL_ENV};
    fn at(key: &str) -> impl Fn(ConfigError) -> ConfigError + '_ {
        move |e| err(format!("redis.{key}"), e.message())
    }
    let table = raw.table("redis")?;
    let get = |key: &str| table.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    const KEYS: &[&str] = &[
        "url",
        "timeout",
        "retry_interval",
        "sync_interval",
        "key_prefix",
        "pool_size",
        "cluster",
        "lease",
    ];
    if let Some((key, _)) = table.iter().find(|(k, _)| !KEYS.contains(&k.as_str())) {
        return Err(err(
            "toml",
            format!("unknown key `{key}` in `[redis]`; expected one of: {}", KEYS.join(", ")),
        ));
    }
    let url = match (get("url"), std::env::var(URL_ENV)) {
        (Some(url), _) => {
            url.value("url").and_then(|v| v.text("url").map(str::to_owned)).map_err(at("url"))?
        }
        (None, Ok(url)) => url,
        (None, Err(_)) => {
            return Err(err("redis.url", format!("is required (or set {URL_ENV})")));
        }
    };
    let mut b = RedisConfig::builder(url);
    let duration = |key: &str| {
        get(key).map(|v| v.value(key).and_then(|v| v.duration(key)).map_err(at(key))).transpose()
    };
    if let Some(d) = duration("timeout")? {
        b = b.timeout(d);
    }
    if let Some(d) = duration("retry_interval")? {
        b = b.retry_interval(d);
    }
    if let Some(d) = duration("sync_interval")? {
        b = b.sync_interval(d);
    }
    if let Some(p) = get("key_prefix") {
        b = b.key_prefix(
            p.value("key_prefix").and_then(|v| v.text("key_prefix")).map_err(at("key_prefix"))?,
        );
    }
    if let Some(n) = get("pool_size") {
        let n = n.value("pool_size").and_then(|v| v.count("pool_size")).map_err(at("pool_size"))?;
        b = b.pool_size(usize::try_from(n).unwrap_or(usize::MAX));
    }
    if let Some(v) = get("lease") {
        let off = v.value("lease").and_then(|v| v.text("lease")).is_ok_and(|t| t == "off");
        b = b.lease(if off {
            std::time::Duration::ZERO
        } else {
            duration("lease")?.unwrap_or_default()
        });
    }
    if let Some(c) = get("cluster") {
        b = b
            .cluster(c.value("cluster").and_then(|v| v.boolean("cluster")).map_err(at("cluster"))?);
    }
    b.build()
}

/// Without the `redis` feature a `[redis]` table is refused.
#[cfg(not(feature = "redis"))]
fn redis_backend(_: &Raw) -> Result<(), ConfigError> {
    Err(err(
        "redis",
        "the `[redis]` table needs the crate feature `redis` (resilience = { features = [\"redis\"] })",
    ))
}

fn resolve(
    registry: &Registry,
    sections: &BTreeMap<&str, &[(String, Raw)]>,
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
    let Some(table) = sections.get(name) else {
        return registry.preset(name).ok_or_else(|| {
            err(
                format!("{}.base", stack.last().map_or(name, String::as_str)),
                format!("`{name}` is neither a table of this file nor a preset (built in: database, api, file, postgres, shopify, development)"),
            )
        });
    };
    stack.push(name.to_string());
    let base = match base_name(name, table)? {
        Some(b) => resolve(registry, sections, b, done, stack)?,
        None => ResilienceConfig::new(),
    };
    stack.pop();
    let config = section(name, table, base, registry)?;
    done.insert(name.to_string(), config.clone());
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backoff::Jitter;
    use std::sync::Arc;

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

    #[test]
    fn budgets_go_to_the_registry_the_file_is_loaded_into() {
        let registry = Registry::new();
        registry.load_toml("[b.retry]\nbudget = \"only-here\"").unwrap();
        let retry = registry.preset("b").and_then(|c| c.retry).unwrap();
        let budget = retry.budget().unwrap();
        assert!(Arc::ptr_eq(budget, &registry.retry_budget("only-here")));
        assert!(!Arc::ptr_eq(budget, &crate::registry().retry_budget("only-here")));
    }
}
