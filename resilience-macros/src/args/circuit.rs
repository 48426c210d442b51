//! `#[circuit_breaker(...)]` arguments.

use proc_macro2::{Span, TokenStream};
use syn::{Expr, ExprLit, Lit, LitStr};

use super::{Entry, Errors, FloatRange};
use crate::duration::DurationLit;

const ATTR: &str = "circuit_breaker";

pub(crate) const KEYS: &[&str] = &[
    "name",
    "failure_threshold",
    "failure_rate",
    "window",
    "min_calls",
    "recovery_timeout",
    "success_threshold",
    "half_open_max_calls",
    "slow_call",
    "failure_if",
    "ignore_if",
    "fallback",
    "preset",
    "backend",
    "fail_mode",
    "crate",
];

/// `window = 100` (last N calls) or `window = 60s` (last T).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WindowArg {
    Calls(u32, Span),
    Time(DurationLit),
}

/// Parsed `#[circuit_breaker(...)]`.
#[derive(Default)]
pub(crate) struct CircuitArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    pub(crate) failure_threshold: Option<(u32, Span)>,
    pub(crate) failure_rate: Option<(f64, Span)>,
    pub(crate) window: Option<WindowArg>,
    pub(crate) min_calls: Option<(u32, Span)>,
    pub(crate) recovery_timeout: Option<DurationLit>,
    pub(crate) success_threshold: Option<u32>,
    pub(crate) half_open_max_calls: Option<u32>,
    pub(crate) slow_call: Option<DurationLit>,
    pub(crate) failure_if: Option<Expr>,
    pub(crate) ignore_if: Option<Expr>,
    pub(crate) fallback: Option<Expr>,
    pub(crate) preset: Option<LitStr>,
    /// `backend = "redis"` (`true`) or `"local"`.
    pub(crate) backend: Option<(bool, Span)>,
    /// `fail_mode = "closed"` (`true`) or `"open"`.
    pub(crate) fail_mode: Option<(bool, Span)>,
}

impl CircuitArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> CircuitArgs {
        super::parse_keyed(tokens, errors, ATTR, KEYS, Self::set)
    }

    fn set(&mut self, entry: &Entry) -> syn::Result<()> {
        let (key, value) = super::key_value(ATTR, entry, example)?;
        let span = syn::spanned::Spanned::span(value);
        match key.as_str() {
            "name" => self.name = Some(super::string(ATTR, &key, value)?),
            "failure_threshold" => {
                self.failure_threshold = Some((super::count(ATTR, &key, value)?, span))
            }
            "failure_rate" => {
                let range = FloatRange {
                    low: 0.0,
                    low_inclusive: false,
                    high: 1.0,
                    text: "a fraction above 0.0 and at most 1.0, like `0.5` for 50 %",
                };
                self.failure_rate = Some((super::float(ATTR, &key, value, &range)?, span));
            }
            "window" => self.window = Some(window(value)?),
            "min_calls" => self.min_calls = Some((super::count(ATTR, &key, value)?, span)),
            "recovery_timeout" => self.recovery_timeout = Some(super::duration(ATTR, &key, value)?),
            "success_threshold" => self.success_threshold = Some(super::count(ATTR, &key, value)?),
            "half_open_max_calls" => {
                self.half_open_max_calls = Some(super::count(ATTR, &key, value)?)
            }
            "slow_call" => self.slow_call = Some(super::duration(ATTR, &key, value)?),
            "failure_if" => self.failure_if = Some(super::path_or_closure(ATTR, &key, value)?),
            "ignore_if" => self.ignore_if = Some(super::path_or_closure(ATTR, &key, value)?),
            "fallback" => self.fallback = Some(super::path(ATTR, &key, value)?),
            "preset" => self.preset = Some(super::string(ATTR, &key, value)?),
            "backend" => self.backend = Some(super::backend(ATTR, &key, value)?),
            "fail_mode" => self.fail_mode = Some(super::fail_mode(ATTR, &key, value)?),
            _ => self.krate = Some(super::crate_path(ATTR, value)?),
        }
        Ok(())
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "name" => "\"shopify\"",
        "failure_threshold" => "5",
        "failure_rate" => "0.5",
        "window" => "100",
        "min_calls" => "20",
        "recovery_timeout" => "30s",
        "success_threshold" => "2",
        "half_open_max_calls" => "1",
        "slow_call" => "2s",
        "failure_if" => "is_outage",
        "ignore_if" => "is_not_found",
        "fallback" => "cached_value",
        "preset" => "\"api\"",
        "backend" => "\"redis\"",
        "fail_mode" => "\"closed\"",
        _ => "\"my_facade::resilience\"",
    }
}

fn window(value: &Expr) -> syn::Result<WindowArg> {
    if let Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) = value
        && int.suffix().is_empty()
    {
        return Ok(WindowArg::Calls(super::count(ATTR, "window", value)?, int.span()));
    }
    match super::duration(ATTR, "window", value) {
        Ok(d) => Ok(WindowArg::Time(d)),
        Err(_) => Err(syn::Error::new_spanned(
            value,
            "`window` in `#[circuit_breaker]` is a number of calls (`window = 100`) or a duration (`window = 60s`)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(args.failure_rate.map(|r| r.0), Some(0.5));
        assert!(matches!(args.window, Some(WindowArg::Time(d)) if d.nanos == 30_000_000_000));
        assert_eq!(args.min_calls.map(|m| m.0), Some(10));
        assert_eq!(args.half_open_max_calls, Some(3));
        assert!(args.fallback.is_some() && args.failure_if.is_some() && args.ignore_if.is_some());
    }

    #[test]
    fn window_is_a_count_or_a_duration() {
        let mut errors = Errors::default();
        let args = CircuitArgs::parse(quote!(failure_rate = 0.5, window = 100), &mut errors);
        assert!(errors.finish().is_ok());
        assert!(matches!(args.window, Some(WindowArg::Calls(100, _))));
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
