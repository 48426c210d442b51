//! `#[rate_limit(...)]` arguments.

use proc_macro2::{Span, TokenStream};
use syn::{Expr, ExprLit, Lit, LitStr};

use super::{Entry, Errors};
use crate::duration::DurationLit;

const ATTR: &str = "rate_limit";

pub(crate) const KEYS: &[&str] = &[
    "name",
    "per_second",
    "per_minute",
    "burst",
    "cost",
    "key",
    "on_limit",
    "max_wait",
    "max_queue",
    "preset",
    "backend",
    "fail_mode",
    "crate",
];

/// `on_limit = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnLimitArg {
    Wait,
    Reject,
    Queue,
}

/// Parsed `#[rate_limit(...)]`.
#[derive(Default)]
pub(crate) struct RateLimitArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    pub(crate) per_second: Option<(u32, Span)>,
    pub(crate) per_minute: Option<(u32, Span)>,
    pub(crate) burst: Option<u32>,
    pub(crate) cost: Option<Expr>,
    pub(crate) key: Option<Expr>,
    pub(crate) on_limit: Option<(OnLimitArg, Span)>,
    pub(crate) max_wait: Option<DurationLit>,
    pub(crate) max_queue: Option<(u32, Span)>,
    pub(crate) preset: Option<LitStr>,
    /// `backend = "redis"` (`true`) or `"local"`.
    pub(crate) backend: Option<(bool, Span)>,
    /// `fail_mode = "closed"` (`true`) or `"open"`.
    pub(crate) fail_mode: Option<(bool, Span)>,
}

impl RateLimitArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> RateLimitArgs {
        super::parse_keyed(tokens, errors, ATTR, KEYS, Self::set)
    }

    fn set(&mut self, entry: &Entry) -> syn::Result<()> {
        let (key, value) = super::key_value(ATTR, entry, example)?;
        let span = syn::spanned::Spanned::span(value);
        match key.as_str() {
            "name" => self.name = Some(super::string(ATTR, &key, value)?),
            "per_second" => self.per_second = Some((super::count(ATTR, &key, value)?, span)),
            "per_minute" => self.per_minute = Some((super::count(ATTR, &key, value)?, span)),
            "burst" => self.burst = Some(super::count(ATTR, &key, value)?),
            "cost" => {
                if let Expr::Lit(ExprLit { lit: Lit::Int(_), .. }) | Expr::Unary(_) = value {
                    super::count(ATTR, &key, value)?;
                }
                self.cost = Some(value.clone());
            }
            "key" => self.key = Some(value.clone()),
            "on_limit" => {
                let (name, span) = super::choice(ATTR, &key, value, &["wait", "reject", "queue"])?;
                let policy = match name.as_str() {
                    "reject" => OnLimitArg::Reject,
                    "queue" => OnLimitArg::Queue,
                    _ => OnLimitArg::Wait,
                };
                self.on_limit = Some((policy, span));
            }
            "max_wait" => self.max_wait = Some(super::duration(ATTR, &key, value)?),
            "max_queue" => self.max_queue = Some((super::count(ATTR, &key, value)?, span)),
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
        "per_second" => "2",
        "per_minute" => "60",
        "burst" => "40",
        "cost" => "1",
        "key" => "shop",
        "on_limit" => "wait",
        "max_wait" => "5s",
        "max_queue" => "100",
        "preset" => "\"api\"",
        "backend" => "\"redis\"",
        "fail_mode" => "\"closed\"",
        _ => "\"my_facade::resilience\"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn parses_every_argument() {
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
                max_queue = 10
            ),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        assert_eq!(args.per_second.map(|r| r.0), Some(2));
        assert_eq!(args.burst, Some(40));
        assert!(args.cost.is_some() && args.key.is_some());
        assert_eq!(args.on_limit.map(|o| o.0), Some(OnLimitArg::Queue));
        assert_eq!(args.max_wait.map(|d| d.nanos), Some(5_000_000_000));
        assert_eq!(args.max_queue.map(|q| q.0), Some(10));
    }

    #[test]
    fn literal_cost_and_burst_are_checked() {
        let mut errors = Errors::default();
        let _ = RateLimitArgs::parse(quote!(per_second = 1, burst = 0, cost = 0), &mut errors);
        let messages: Vec<String> = errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(
            messages,
            [
                "`burst` in `#[rate_limit]` must be at least 1 (got 0)",
                "`cost` in `#[rate_limit]` must be at least 1 (got 0)"
            ]
        );
    }
}
