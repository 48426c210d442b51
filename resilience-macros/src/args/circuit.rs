//! `#[circuit_breaker(...)]` arguments.

use proc_macro2::TokenStream;
use syn::{Expr, LitStr};

use super::{Entry, Errors, LayerSettings, keys};

const ATTR: &str = "circuit_breaker";

/// The attribute's own keys; the layer's are [`keys::CIRCUIT_BREAKER`].
const OWN: &[&str] = &["failure_if", "ignore_if", "fallback", "preset", "crate"];

/// Parsed `#[circuit_breaker(...)]`.
#[derive(Default)]
pub(crate) struct CircuitArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    /// The layer keys (`failure_threshold`, `window`, ...), for the runtime's config.
    pub(crate) settings: LayerSettings,
    pub(crate) failure_if: Option<Expr>,
    pub(crate) ignore_if: Option<Expr>,
    pub(crate) fallback: Option<Expr>,
    pub(crate) preset: Option<LitStr>,
}

impl CircuitArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> CircuitArgs {
        let keys = super::all_keys(&["name"], keys::CIRCUIT_BREAKER, OWN);
        super::parse_keyed(tokens, errors, ATTR, &keys, Self::set)
    }

    fn set(&mut self, entry: &Entry) -> syn::Result<()> {
        let (key, value) = super::key_value(ATTR, entry, keys::CIRCUIT_BREAKER, example)?;
        if self.settings.set(ATTR, keys::CIRCUIT_BREAKER, &key, value)? {
            return Ok(());
        }
        match key.as_str() {
            "name" => self.name = Some(super::string(ATTR, &key, value)?),
            "failure_if" => self.failure_if = Some(super::path_or_closure(ATTR, &key, value)?),
            "ignore_if" => self.ignore_if = Some(super::path_or_closure(ATTR, &key, value)?),
            "fallback" => self.fallback = Some(super::path(ATTR, &key, value)?),
            "preset" => self.preset = Some(super::string(ATTR, &key, value)?),
            _ => self.krate = Some(super::crate_path(ATTR, value)?),
        }
        Ok(())
    }
}

/// Examples of the attribute's own keys (the layer's are in [`keys::CIRCUIT_BREAKER`]).
fn example(key: &str) -> &'static str {
    match key {
        "name" => "\"shopify\"",
        "failure_if" => "is_outage",
        "ignore_if" => "is_not_found",
        "fallback" => "cached_value",
        "preset" => "\"api\"",
        _ => "\"my_facade::resilience\"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Setting;
    use quote::quote;

    #[test]
    fn parses_every_argument() {
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
    fn window_is_a_count_or_a_duration() {
        let mut errors = Errors::default();
        let args = CircuitArgs::parse(quote!(failure_rate = 0.5, window = 100), &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(args.settings.get("window").map(|v| v.0), Some(&Setting::Int(100)));
        let mut errors = Errors::default();
        let _ = CircuitArgs::parse(quote!(window = "x", failure_rate = 1.5), &mut errors);
        let messages: Vec<String> = errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].contains("a number of calls (`window = 100`) or a duration"));
        assert!(messages[1].contains("at most 1.0"));
    }
}
