//! `#[retry(...)]` arguments.

use proc_macro2::{Span, TokenStream};
use syn::{Expr, LitStr};

use super::{Entry, Errors, FloatRange};
use crate::duration::DurationLit;

const ATTR: &str = "retry";

pub(crate) const KEYS: &[&str] = &[
    "max_attempts",
    "backoff",
    "initial_delay",
    "max_delay",
    "multiplier",
    "jitter",
    "max_elapsed",
    "retry_if",
    "retry_on_result",
    "on_retry",
    "budget",
    "preset",
    "crate",
];

/// `backoff = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BackoffArg {
    Constant,
    Linear,
    Exponential,
    Fibonacci,
    Decorrelated,
}

/// `jitter = ...`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum JitterArg {
    None,
    Full,
    Equal,
    Proportional(f64),
}

/// Parsed `#[retry(...)]`.
#[derive(Default)]
pub(crate) struct RetryArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) backoff: Option<(BackoffArg, Span)>,
    pub(crate) initial_delay: Option<DurationLit>,
    pub(crate) max_delay: Option<DurationLit>,
    pub(crate) multiplier: Option<(f64, Span)>,
    pub(crate) jitter: Option<JitterArg>,
    pub(crate) max_elapsed: Option<DurationLit>,
    pub(crate) retry_if: Option<Expr>,
    pub(crate) retry_on_result: Option<Expr>,
    pub(crate) on_retry: Option<Expr>,
    pub(crate) budget: Option<LitStr>,
    pub(crate) preset: Option<LitStr>,
}

impl RetryArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> RetryArgs {
        super::parse_keyed(tokens, errors, ATTR, KEYS, Self::set)
    }

    fn set(&mut self, entry: &Entry) -> syn::Result<()> {
        let (key, value) = super::key_value(ATTR, entry, example)?;
        match key.as_str() {
            "max_attempts" => self.max_attempts = Some(super::count(ATTR, &key, value)?),
            "backoff" => {
                let (name, span) = super::choice(
                    ATTR,
                    &key,
                    value,
                    &["constant", "linear", "exponential", "fibonacci", "decorrelated"],
                )?;
                let kind = match name.as_str() {
                    "constant" => BackoffArg::Constant,
                    "linear" => BackoffArg::Linear,
                    "fibonacci" => BackoffArg::Fibonacci,
                    "decorrelated" => BackoffArg::Decorrelated,
                    _ => BackoffArg::Exponential,
                };
                self.backoff = Some((kind, span));
            }
            "initial_delay" => self.initial_delay = Some(super::duration(ATTR, &key, value)?),
            "max_delay" => self.max_delay = Some(super::duration(ATTR, &key, value)?),
            "max_elapsed" => self.max_elapsed = Some(super::duration(ATTR, &key, value)?),
            "multiplier" => {
                let range = FloatRange {
                    low: 1.0,
                    low_inclusive: true,
                    high: 1_000.0,
                    text: "a number from 1.0 to 1000.0",
                };
                let m = super::float(ATTR, &key, value, &range)?;
                self.multiplier = Some((m, syn::spanned::Spanned::span(value)));
            }
            "jitter" => self.jitter = Some(jitter(value)?),
            "retry_if" => self.retry_if = Some(super::path_or_closure(ATTR, &key, value)?),
            "retry_on_result" => {
                self.retry_on_result = Some(super::path_or_closure(ATTR, &key, value)?)
            }
            "on_retry" => self.on_retry = Some(super::path_or_closure(ATTR, &key, value)?),
            "budget" => self.budget = Some(super::string(ATTR, &key, value)?),
            "preset" => self.preset = Some(super::string(ATTR, &key, value)?),
            _ => self.krate = Some(super::crate_path(ATTR, value)?),
        }
        Ok(())
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "max_attempts" => "3",
        "backoff" => "exponential",
        "initial_delay" => "100ms",
        "max_delay" => "10s",
        "max_elapsed" => "30s",
        "multiplier" => "2.0",
        "jitter" => "full",
        "retry_if" => "is_transient",
        "retry_on_result" => "is_pending",
        "on_retry" => "log_retry",
        "budget" => "\"shopify\"",
        "preset" => "\"api\"",
        _ => "\"my_facade::resilience\"",
    }
}

fn jitter(value: &Expr) -> syn::Result<JitterArg> {
    const EXPECTED: &str =
        "`jitter` in `#[retry]` must be one of: `none`, `full`, `equal`, `proportional(0.5)`";
    match value {
        Expr::Call(call) => {
            let is_proportional =
                matches!(&*call.func, Expr::Path(p) if p.path.is_ident("proportional"));
            if !is_proportional {
                return Err(syn::Error::new_spanned(value, EXPECTED));
            }
            let mut args = call.args.iter();
            let (Some(factor), None) = (args.next(), args.next()) else {
                return Err(syn::Error::new_spanned(
                    value,
                    "`proportional` jitter takes one factor, like `jitter = proportional(0.5)`",
                ));
            };
            let range = FloatRange {
                low: 0.0,
                low_inclusive: false,
                high: 1.0,
                text: "a factor above 0.0 and at most 1.0",
            };
            Ok(JitterArg::Proportional(super::float(ATTR, "proportional", factor, &range)?))
        }
        _ => {
            let (name, _) = super::choice(ATTR, "jitter", value, &["none", "full", "equal"])
                .map_err(|_| syn::Error::new_spanned(value, EXPECTED))?;
            Ok(match name.as_str() {
                "none" => JitterArg::None,
                "equal" => JitterArg::Equal,
                _ => JitterArg::Full,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(args.max_attempts, Some(4));
        assert_eq!(args.backoff.map(|b| b.0), Some(BackoffArg::Fibonacci));
        assert_eq!(args.initial_delay.map(|d| d.nanos), Some(100_000_000));
        assert_eq!(args.max_delay.map(|d| d.nanos), Some(2_000_000_000));
        assert_eq!(args.max_elapsed.map(|d| d.nanos), Some(60_000_000_000));
        assert_eq!(args.jitter, Some(JitterArg::Proportional(0.25)));
        assert!(
            args.retry_if.is_some() && args.retry_on_result.is_some() && args.on_retry.is_some()
        );
        assert_eq!(args.budget.map(|b| b.value()), Some("b".to_owned()));
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
