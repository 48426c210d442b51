//! The arguments of the four layer attributes: `#[retry]`, `#[circuit_breaker]`,
//! `#[rate_limit]` and `#[bulkhead]`.
//!
//! Each takes its layer's keys (the runtime's config keys, in [`keys`]), `preset`,
//! `crate` and, all but `#[retry]`, the instance's `name`: [`parse`] reads those alike
//! for every attribute, and each attribute reads only the keys it alone takes.

use proc_macro2::TokenStream;
use syn::{Expr, ExprLit, Lit, LitStr};

use super::{Entry, Errors, KeyArg, Kind, LayerSettings, keys};

/// `crate = "..."`, the last key of every layer attribute, with its example.
const CRATE: (&str, &str) = ("crate", "\"my_facade::resilience\"");

/// What [`parse`] needs to know of one layer attribute.
pub(crate) struct Spec {
    /// The attribute's name, as errors show it (`#[retry]`).
    attr: &'static str,
    /// The layer's keys.
    layer: &'static [(&'static str, Kind, &'static str)],
    /// The example of `name`, or `None` when the attribute names no instance.
    name: Option<&'static str>,
    /// The keys after the layer's, each with the example errors show for it.
    own: &'static [(&'static str, &'static str)],
}

/// The fields every layer attribute fills alike, borrowed from its args.
pub(crate) struct Shared<'a> {
    name: Option<&'a mut Option<LitStr>>,
    settings: &'a mut LayerSettings,
    preset: &'a mut Option<LitStr>,
    krate: &'a mut Option<syn::Path>,
}

/// The parsed arguments of one layer attribute.
pub(crate) trait LayerArgs: Default {
    /// The attribute's keys.
    const SPEC: Spec;

    /// The fields [`parse`] fills for every layer attribute.
    fn shared(&mut self) -> Shared<'_>;

    /// Reads one of the keys of [`Spec::own`] other than `preset` and `crate`.
    fn set_own(&mut self, key: &str, value: &Expr) -> syn::Result<()>;
}

/// Parses a layer attribute's arguments, recording every problem in `errors`.
pub(crate) fn parse<A: LayerArgs>(tokens: TokenStream, errors: &mut Errors) -> A {
    let spec = &A::SPEC;
    let keys: Vec<&str> = spec
        .name
        .map(|_| "name")
        .into_iter()
        .chain(spec.layer.iter().map(|(k, _, _)| *k))
        .chain(spec.own.iter().map(|(k, _)| *k))
        .collect();
    super::parse_keyed(tokens, errors, spec.attr, &keys, set::<A>)
}

fn set<A: LayerArgs>(args: &mut A, entry: &Entry) -> syn::Result<()> {
    let spec = &A::SPEC;
    let attr = spec.attr;
    let (key, value) = super::key_value(attr, entry, spec.layer, |key| example(spec, key))?;
    let shared = args.shared();
    if shared.settings.set(attr, spec.layer, &key, value)? {
        return Ok(());
    }
    match (key.as_str(), shared.name) {
        ("name", Some(name)) => *name = Some(super::string(attr, &key, value)?),
        ("preset", _) => *shared.preset = Some(super::preset(attr, value)?),
        ("crate", _) => *shared.krate = Some(super::crate_path(attr, value)?),
        _ => args.set_own(&key, value)?,
    }
    Ok(())
}

/// The example of one of the attribute's keys besides the layer's.
fn example(spec: &Spec, key: &str) -> &'static str {
    let name = spec.name.map(|example| ("name", example));
    name.iter().chain(spec.own).find(|(k, _)| *k == key).map_or(CRATE.1, |(_, e)| e)
}

/// Parsed `#[retry(...)]`.
#[derive(Default)]
pub(crate) struct RetryArgs {
    pub(crate) krate: Option<syn::Path>,
    /// The layer keys (`max_attempts`, `backoff`, ...), for the runtime's config.
    pub(crate) settings: LayerSettings,
    pub(crate) retry_if: Option<Expr>,
    pub(crate) retry_on_result: Option<Expr>,
    pub(crate) on_retry: Option<Expr>,
    pub(crate) preset: Option<LitStr>,
}

impl RetryArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> RetryArgs {
        parse(tokens, errors)
    }
}

impl LayerArgs for RetryArgs {
    const SPEC: Spec = Spec {
        attr: "retry",
        layer: keys::RETRY,
        name: None,
        own: &[
            ("retry_if", "is_transient"),
            ("retry_on_result", "is_pending"),
            ("on_retry", "log_retry"),
            ("preset", "\"api\""),
            CRATE,
        ],
    };

    fn shared(&mut self) -> Shared<'_> {
        let (settings, preset, krate) = (&mut self.settings, &mut self.preset, &mut self.krate);
        Shared { name: None, settings, preset, krate }
    }

    fn set_own(&mut self, key: &str, value: &Expr) -> syn::Result<()> {
        let attr = Self::SPEC.attr;
        match key {
            "retry_if" => self.retry_if = Some(super::predicate(attr, key, value)?),
            "retry_on_result" => self.retry_on_result = Some(super::predicate(attr, key, value)?),
            _ => self.on_retry = Some(super::path_or_closure(attr, key, value)?),
        }
        Ok(())
    }
}

/// Parsed `#[circuit_breaker(...)]`.
#[derive(Default)]
pub(crate) struct CircuitArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    /// The layer keys (`failure_threshold`, `window`, ...), for the runtime's config.
    pub(crate) settings: LayerSettings,
    pub(crate) failure_if: Option<Expr>,
    pub(crate) ignore_if: Option<Expr>,
    pub(crate) failure_if_ok: Option<Expr>,
    pub(crate) fallback: Option<Expr>,
    /// `key = ..`: one circuit per key.
    pub(crate) key: Option<KeyArg>,
    pub(crate) preset: Option<LitStr>,
}

impl CircuitArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> CircuitArgs {
        parse(tokens, errors)
    }
}

impl LayerArgs for CircuitArgs {
    const SPEC: Spec = Spec {
        attr: "circuit_breaker",
        layer: keys::CIRCUIT_BREAKER,
        name: Some("\"shopify\""),
        own: &[
            ("failure_if", "is_outage"),
            ("ignore_if", "is_not_found"),
            ("failure_if_ok", "is_degraded"),
            ("fallback", "cached_value"),
            ("key", "shop"),
            ("preset", "\"api\""),
            CRATE,
        ],
    };

    fn shared(&mut self) -> Shared<'_> {
        let name = Some(&mut self.name);
        Shared {
            name,
            settings: &mut self.settings,
            preset: &mut self.preset,
            krate: &mut self.krate,
        }
    }

    fn set_own(&mut self, key: &str, value: &Expr) -> syn::Result<()> {
        let attr = Self::SPEC.attr;
        match key {
            "failure_if" => self.failure_if = Some(super::predicate(attr, key, value)?),
            "ignore_if" => self.ignore_if = Some(super::predicate(attr, key, value)?),
            "key" => self.key = Some(KeyArg::parse(attr, value)?),
            "failure_if_ok" => self.failure_if_ok = Some(super::predicate(attr, key, value)?),
            _ => self.fallback = Some(super::path(attr, key, value)?),
        }
        Ok(())
    }
}

/// Parsed `#[rate_limit(...)]`.
#[derive(Default)]
pub(crate) struct RateLimitArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    /// The layer keys (`per_second`, `burst`, ...), for the runtime's config.
    pub(crate) settings: LayerSettings,
    pub(crate) cost: Option<Expr>,
    /// `key = ..`: one bucket per key.
    pub(crate) key: Option<KeyArg>,
    pub(crate) preset: Option<LitStr>,
}

impl RateLimitArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> RateLimitArgs {
        parse(tokens, errors)
    }
}

impl LayerArgs for RateLimitArgs {
    const SPEC: Spec = Spec {
        attr: "rate_limit",
        layer: keys::RATE_LIMIT,
        name: Some("\"shopify\""),
        own: &[("cost", "1"), ("key", "shop"), ("preset", "\"api\""), CRATE],
    };

    fn shared(&mut self) -> Shared<'_> {
        let name = Some(&mut self.name);
        Shared {
            name,
            settings: &mut self.settings,
            preset: &mut self.preset,
            krate: &mut self.krate,
        }
    }

    fn set_own(&mut self, key: &str, value: &Expr) -> syn::Result<()> {
        if key == "key" {
            self.key = Some(KeyArg::parse(Self::SPEC.attr, value)?);
            return Ok(());
        }
        if let Expr::Lit(ExprLit { lit: Lit::Int(_), .. }) | Expr::Unary(_) = value {
            super::count(Self::SPEC.attr, key, value)?;
        }
        self.cost = Some(value.clone());
        Ok(())
    }
}

/// Parsed `#[bulkhead(...)]`.
#[derive(Default)]
pub(crate) struct BulkheadArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    /// The layer keys (`max_concurrent`, `max_wait`), for the runtime's config.
    pub(crate) settings: LayerSettings,
    pub(crate) preset: Option<LitStr>,
}

impl BulkheadArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> BulkheadArgs {
        parse(tokens, errors)
    }
}

impl LayerArgs for BulkheadArgs {
    const SPEC: Spec = Spec {
        attr: "bulkhead",
        layer: keys::BULKHEAD,
        name: Some("\"db\""),
        own: &[("preset", "\"database\""), CRATE],
    };

    fn shared(&mut self) -> Shared<'_> {
        let name = Some(&mut self.name);
        Shared {
            name,
            settings: &mut self.settings,
            preset: &mut self.preset,
            krate: &mut self.krate,
        }
    }

    /// The bulkhead takes no key of its own.
    fn set_own(&mut self, _: &str, _: &Expr) -> syn::Result<()> {
        Ok(())
    }
}

/// Parsed `#[hedge(...)]`.
#[derive(Default)]
pub(crate) struct HedgeArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    /// The layer keys (`delay`, `max_hedges`, `budget`), for the runtime's config.
    pub(crate) settings: LayerSettings,
    pub(crate) preset: Option<LitStr>,
}

impl HedgeArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> HedgeArgs {
        parse(tokens, errors)
    }
}

impl LayerArgs for HedgeArgs {
    const SPEC: Spec = Spec {
        attr: "hedge",
        layer: keys::HEDGE,
        name: Some("\"replicas\""),
        own: &[("preset", "\"user:replicas\""), CRATE],
    };

    fn shared(&mut self) -> Shared<'_> {
        let name = Some(&mut self.name);
        Shared {
            name,
            settings: &mut self.settings,
            preset: &mut self.preset,
            krate: &mut self.krate,
        }
    }

    /// The hedge takes no key of its own.
    fn set_own(&mut self, _: &str, _: &Expr) -> syn::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Setting;
    use quote::quote;

    /// The messages of every error in parsing `tokens` as `A`'s arguments.
    fn errors_of<A: LayerArgs>(tokens: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        let _: A = parse(tokens, &mut errors);
        errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn retry_parses_every_argument() {
        let mut errors = Errors::default();
        let args = RetryArgs::parse(
            quote!(
                max_attempts = 4,
                backoff = fibonacci,
                initial_delay = 100ms,
                max_delay = 2s,
                jitter = proportional(0.25),
                max_elapsed = 1m,
                honor_retry_after = false,
                retry_if = |e: &E| e.transient,
                retry_on_result = pending,
                on_retry = log,
                budget = "b",
                preset = "api",
                crate = "facade::resilience"
            ),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        let s = &args.settings;
        assert_eq!(s.get("max_attempts").map(|v| v.0), Some(&Setting::Int(4)));
        assert_eq!(s.text("backoff").map(|v| v.0), Some("fibonacci"));
        assert_eq!(s.nanos("initial_delay").map(|v| v.0), Some(100_000_000));
        assert_eq!(s.nanos("max_delay").map(|v| v.0), Some(2_000_000_000));
        assert_eq!(s.nanos("max_elapsed").map(|v| v.0), Some(60_000_000_000));
        assert_eq!(s.text("jitter").map(|v| v.0), Some("proportional(0.25)"));
        assert_eq!(s.get("honor_retry_after").map(|v| v.0), Some(&Setting::Bool(false)));
        assert!(
            args.retry_if.is_some() && args.retry_on_result.is_some() && args.on_retry.is_some()
        );
        assert_eq!(s.text("budget").map(|v| v.0), Some("b"));
        assert_eq!(args.preset.map(|b| b.value()), Some("api".to_owned()));
        assert!(args.krate.is_some());
    }

    #[test]
    fn retry_reports_every_error_at_once() {
        let errs = errors_of::<RetryArgs>(quote!(
            max_attempts = 0,
            max_attemps = 3,
            backoff = quadratic,
            multiplier = 0.5,
            initial_delay = 5,
            jitter = half,
            budget = 3,
            backoff = linear,
            backoff = constant
        ));
        assert_eq!(errs.len(), 9, "{errs:#?}");
        assert_eq!(errs[0], "`max_attempts` in `#[retry]` must be at least 1 (got 0)");
        assert!(errs[1].starts_with(
            "unknown argument `max_attemps` in `#[retry]`; expected one of: `max_attempts`, "
        ));
        assert!(errs[1].ends_with("did you mean `max_attempts`?"));
        assert!(errs[2].contains("`backoff` in `#[retry]` must be one of: `constant`, `linear`, `exponential`, `fibonacci`, `decorrelated`"));
        assert!(errs[3].contains("must be a number from 1.0 to 1000.0 (got 0.5)"));
        assert_eq!(errs[4], "`initial_delay` in `#[retry]` needs a unit: write `5ms` or `5s`");
        assert!(errs[5].contains("`jitter` in `#[retry]` must be one of"));
        assert!(errs[6].contains("`budget` in `#[retry]` expects a string literal"));
        assert_eq!(errs[7], "duplicate argument `backoff` in `#[retry]`; give it once");
        assert_eq!(errs[8], errs[7]);
    }

    #[test]
    fn retry_flag_without_value_shows_the_form() {
        let errs = errors_of::<RetryArgs>(quote!(max_attempts));
        assert_eq!(errs, ["`max_attempts` in `#[retry]` takes a value: write `max_attempts = 3`"]);
    }

    #[test]
    fn circuit_parses_every_argument() {
        let mut errors = Errors::default();
        let args = CircuitArgs::parse(
            quote!(
                name = "shop",
                failure_rate = 0.5,
                window = 30s,
                min_calls = 10,
                recovery_timeout = 1m,
                recovery_jitter = 0.25,
                success_threshold = 2,
                half_open_max_calls = 3,
                slow_call = 2s,
                failure_if = |e: &E| e.bad,
                ignore_if = nf,
                fallback = cached,
                preset = "api"
            ),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        assert_eq!(args.name.map(|n| n.value()), Some("shop".to_owned()));
        let s = &args.settings;
        assert_eq!(s.get("failure_rate").map(|v| v.0), Some(&Setting::Float(0.5)));
        assert_eq!(s.nanos("window").map(|v| v.0), Some(30_000_000_000));
        assert_eq!(s.get("min_calls").map(|v| v.0), Some(&Setting::Int(10)));
        assert_eq!(s.nanos("recovery_timeout").map(|v| v.0), Some(60_000_000_000));
        assert_eq!(s.get("recovery_jitter").map(|v| v.0), Some(&Setting::Float(0.25)));
        assert_eq!(s.get("half_open_max_calls").map(|v| v.0), Some(&Setting::Int(3)));
        assert!(args.fallback.is_some() && args.failure_if.is_some() && args.ignore_if.is_some());
    }

    #[test]
    fn circuit_window_is_a_count_or_a_duration() {
        let mut errors = Errors::default();
        let args = CircuitArgs::parse(quote!(failure_rate = 0.5, window = 100), &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(args.settings.get("window").map(|v| v.0), Some(&Setting::Int(100)));
        let messages = errors_of::<CircuitArgs>(quote!(window = "x", failure_rate = 1.5));
        assert_eq!(messages.len(), 2);
        assert!(messages[0].contains("a number of calls (`window = 100`) or a duration"));
        assert!(messages[1].contains("at most 1.0"));
    }

    #[test]
    fn rate_limit_parses_every_argument() {
        let mut errors = Errors::default();
        let args = RateLimitArgs::parse(
            quote!(
                name = "shopify",
                per_second = 2,
                burst = 40,
                cost = query.cost(),
                key = shop,
                on_limit = queue,
                max_wait = 5s,
                max_queue = 10,
                idle_timeout = 10min
            ),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        let s = &args.settings;
        assert_eq!(s.get("per_second").map(|v| v.0), Some(&Setting::Int(2)));
        assert_eq!(s.get("burst").map(|v| v.0), Some(&Setting::Int(40)));
        assert!(args.cost.is_some() && args.key.is_some());
        assert_eq!(s.text("on_limit").map(|v| v.0), Some("queue"));
        assert_eq!(s.nanos("max_wait").map(|v| v.0), Some(5_000_000_000));
        assert_eq!(s.get("max_queue").map(|v| v.0), Some(&Setting::Int(10)));
        assert_eq!(s.nanos("idle_timeout").map(|v| v.0), Some(600_000_000_000));
    }

    #[test]
    fn rate_limit_literal_cost_and_burst_are_checked() {
        let messages = errors_of::<RateLimitArgs>(quote!(per_second = 1, burst = 0, cost = 0));
        assert_eq!(
            messages,
            [
                "`burst` in `#[rate_limit]` must be at least 1 (got 0)",
                "`cost` in `#[rate_limit]` must be at least 1 (got 0)"
            ]
        );
    }

    #[test]
    fn a_literal_rate_limit_key_is_refused() {
        let messages = errors_of::<RateLimitArgs>(quote!(per_second = 1, key = "shop"));
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].starts_with("`key` in `#[rate_limit]` is the expression that tells tenants apart, and the constant \"shop\" puts every call in one bucket"), "{messages:?}");
        assert!(errors_of::<RateLimitArgs>(quote!(per_second = 1, key = shop.id)).is_empty());
    }

    #[test]
    fn a_predicate_closure_taking_its_argument_by_value_is_refused() {
        let messages = errors_of::<RetryArgs>(quote!(retry_if = |e: MyError| e.busy));
        assert_eq!(
            messages,
            [
                "`retry_if` in `#[retry]` receives its argument by reference, so that the value stays available after the check: write `|e: &MyError| ..`"
            ]
        );
        let messages = errors_of::<CircuitArgs>(quote!(ignore_if = |e: &MyError| e.busy));
        assert!(messages.is_empty(), "{messages:?}");
        assert!(errors_of::<RetryArgs>(quote!(retry_if = |e| e.busy)).is_empty());
        assert!(errors_of::<RetryArgs>(quote!(retry_if = |_: &MyError| true)).is_empty());
    }

    #[test]
    fn bulkhead_parses_every_argument() {
        let mut errors = Errors::default();
        let args = BulkheadArgs::parse(
            quote!(max_concurrent = 10, max_wait = 1s, name = "db"),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        assert_eq!(args.settings.get("max_concurrent").map(|v| v.0), Some(&Setting::Int(10)));
        assert_eq!(args.settings.nanos("max_wait").map(|v| v.0), Some(1_000_000_000));
    }

    #[test]
    fn bulkhead_zero_concurrency_is_refused() {
        let mut errors = Errors::default();
        let _ = BulkheadArgs::parse(quote!(max_concurrent = 0), &mut errors);
        let message = errors.finish().err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(message, "`max_concurrent` in `#[bulkhead]` must be at least 1 (got 0)");
    }
}
