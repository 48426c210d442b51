//! The names of the built-in presets and the prefix of presets registered at run time,
//! as attributes write them. One source file shared by the runtime (`presets`) and the
//! attribute macros, which check a preset name at compile time, so the two lists cannot
//! drift apart. Plain data only.

/// `preset = "database"`.
pub(crate) const DATABASE: &str = "database";
/// `preset = "api"`.
pub(crate) const API: &str = "api";
/// `preset = "file"`.
pub(crate) const FILE: &str = "file";
/// `preset = "postgres"`.
pub(crate) const POSTGRES: &str = "postgres";
/// `preset = "shopify"`.
pub(crate) const SHOPIFY: &str = "shopify";
/// `preset = "development"`.
pub(crate) const DEVELOPMENT: &str = "development";

/// Every built-in preset's name, in the order of `Preset::ALL`.
pub(crate) const BUILT_IN: &[&str] = &[DATABASE, API, FILE, POSTGRES, SHOPIFY, DEVELOPMENT];

/// The built-in presets whose service sets its limits per tenant, with the tenant
/// (`Preset::tenant`): the attributes require a key with them (`key = shop`, or
/// `key = none` for one instance shared by every tenant).
pub(crate) const PER_TENANT: &[(&str, &str)] = &[(SHOPIFY, "shop")];

/// How an attribute names a preset registered at run time (`Registry::register_preset`,
/// a TOML table): `preset = "user:billing"` looks up the preset registered as `billing`.
/// The macros check every other name against [`BUILT_IN`] at compile time.
pub(crate) const USER_PREFIX: &str = "user:";
