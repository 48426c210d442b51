//! `#[retry(...)]` arguments.

use proc_macro2::TokenStream;
use syn::{Expr, LitStr};

use super::{Entry, Errors, LayerSettings, keys};

const ATTR: &str = "retry";

/// The attribute's own keys; the layer's are [`keys::RETRY`].
const OWN: &[&str] = &["retry_if", "retry_on_result", "on_retry", "preset", "crate"];

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
        let keys = super::all_keys(&[], keys::RETRY, OWN);
        super::parse_keyed(tokens, errors, ATTR, &keys, Self::set)
    }

    fn set(&mut self, entry: &Entry) -> syn::Result<()> {
        let (key, value) = super::key_value(ATTR, entry, keys::RETRY, example)?;
        if self.settings.set(ATTR, keys::RETRY, &key, value)? {
            return Ok(());
        }
        match key.as_str() {
            "retry_if" => self.retry_if = Some(super::path_or_closure(ATTR, &key, value)?),
            "retry_on_result" => {
                self.retry_on_result = Some(super::path_or_closure(ATTR, &key, value)?)
            }
            "on_retry" => self.on_retry = Some(super::path_or_closure(ATTR, &key, value)?),
            "preset" => self.preset = Some(super::string(ATTR, &key, value)?),
            _ => self.krate = Some(super::crate_path(ATTR, value)?),
        }
        Ok(())
    }
}

/// Examples of the attribute's own keys (the layer's are in [`keys::RETRY`]).
fn example(key: &str) -> &'static str {
    match key {
        "retry_if" => "is_transient",
        "retry_on_result" => "is_pending",
        "on_retry" => "log_retry",
        "preset" => "\"api\"",
        _ => "\"my_facade::resilience\"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Setting;
    use quote::quote;

    fn errors_of(tokens: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        let _ = RetryArgs::parse(tokens, &mut errors);
        errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn parses_every_argument() {
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
    fn reports_every_error_at_once() {
        let errs = errors_of(quote!(
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
    fn flag_without_value_shows_the_form() {
        let errs = errors_of(quote!(max_attempts));
        assert_eq!(errs, ["`max_attempts` in `#[retry]` takes a value: write `max_attempts = 3`"]);
    }
}
