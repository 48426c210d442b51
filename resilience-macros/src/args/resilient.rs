//! `#[resilient(...)]` arguments: a preset and/or nested layers.

use proc_macro2::{Span, TokenStream};
use syn::LitStr;

use super::{
    BulkheadArgs, CircuitArgs, EntryValue, Errors, HedgeArgs, KeyArg, RateLimitArgs, RetryArgs,
    Seen, Setting, TimeoutArgs,
};

const ATTR: &str = "resilient";

pub(crate) const KEYS: &[&str] = &[
    "preset",
    "key",
    "deadline",
    "budget",
    "retry",
    "hedge",
    "circuit_breaker",
    "rate_limit",
    "bulkhead",
    "timeout",
    "crate",
];

/// Parsed `#[resilient(...)]`.
#[derive(Default)]
pub(crate) struct ResilientArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) preset: Option<LitStr>,
    /// `key = ..`: the key of every keyable layer (circuit breaker, rate limit) that
    /// names none itself.
    pub(crate) key: Option<KeyArg>,
    /// `deadline = 10s`: a key of the retry layer, written once for the whole call.
    pub(crate) deadline: Option<(u64, Span)>,
    /// `budget = "name"`: the retry budget, a key of the retry layer.
    pub(crate) budget: Option<LitStr>,
    pub(crate) retry: Option<RetryArgs>,
    /// The retry layer was not written: it holds the forwarded keys over the preset's
    /// retry layer, present only if the preset has one.
    pub(crate) implied_retry: bool,
    /// `hedge(...)`: written only (no preset implies hedging).
    pub(crate) hedge: Option<HedgeArgs>,
    pub(crate) circuit: Option<CircuitArgs>,
    pub(crate) rate_limit: Option<RateLimitArgs>,
    pub(crate) bulkhead: Option<BulkheadArgs>,
    pub(crate) timeout: Option<TimeoutArgs>,
}

impl ResilientArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, span: Span, errors: &mut Errors) -> ResilientArgs {
        let mut args = ResilientArgs::default();
        let Some(entries) = errors.ok(super::parse_entries(tokens)) else { return args };
        args.preset = entries.iter().find(|e| e.name() == "preset").and_then(|e| {
            let value = errors.ok(e.assigned(ATTR, "\"shopify\""))?;
            errors.ok(super::preset(ATTR, value))
        });
        let has_preset = args.preset.is_some();
        let mut seen = Seen::default();
        for entry in &entries {
            let name = entry.name();
            if !KEYS.contains(&name.as_str()) {
                errors.push(super::unknown(ATTR, entry, KEYS));
                continue;
            }
            if !seen.first(ATTR, entry, errors) || name == "preset" {
                continue;
            }
            if name == "deadline" {
                if let Some(value) = errors.ok(entry.assigned(ATTR, "10s")) {
                    args.deadline = errors
                        .ok(super::duration(ATTR, "deadline", value))
                        .map(|d| (d.nanos, d.span));
                }
                continue;
            }
            if name == "budget" {
                if let Some(value) = errors.ok(entry.assigned(ATTR, "\"orders\"")) {
                    args.budget = errors.ok(super::string(ATTR, "budget", value));
                }
                continue;
            }
            if name == "crate" {
                if let Some(value) = errors.ok(entry.assigned(ATTR, "\"my_facade::resilience\"")) {
                    args.krate = errors.ok(super::crate_path(ATTR, value));
                }
                continue;
            }
            if name == "key" {
                if let Some(value) = errors.ok(entry.assigned(ATTR, "shop")) {
                    args.key = errors.ok(KeyArg::parse(ATTR, value));
                }
                continue;
            }
            let tokens = match &entry.value {
                EntryValue::List(tokens) => tokens.clone(),
                EntryValue::Flag => TokenStream::new(),
                EntryValue::Assign(_) => {
                    errors.push(syn::Error::new(
                        entry.key.span(),
                        format!(
                            "`{name}` in `#[resilient]` is a layer: write `{name}(...)`, like `{}`",
                            layer_example(&name)
                        ),
                    ));
                    continue;
                }
            };
            match name.as_str() {
                "retry" => args.retry = Some(RetryArgs::parse(tokens, errors)),
                "hedge" => args.hedge = Some(HedgeArgs::parse(tokens, errors)),
                "circuit_breaker" => args.circuit = Some(CircuitArgs::parse(tokens, errors)),
                "rate_limit" => args.rate_limit = Some(RateLimitArgs::parse(tokens, errors)),
                "bulkhead" => args.bulkhead = Some(BulkheadArgs::parse(tokens, errors)),
                _ => {
                    args.timeout =
                        Some(TimeoutArgs::parse(tokens, entry.key.span(), !has_preset, errors))
                }
            }
        }
        let no_layer = args.retry.is_none()
            && args.hedge.is_none()
            && args.circuit.is_none()
            && args.rate_limit.is_none()
            && args.bulkhead.is_none()
            && args.timeout.is_none();
        if let (Some(KeyArg::Expr(key)), false, None, None) =
            (&args.key, has_preset, &args.circuit, &args.rate_limit)
        {
            errors.push(syn::Error::new_spanned(
                key,
                "`key` in `#[resilient]` keys the circuit breaker and the rate limit, and there is neither: add a preset or a layer, like `#[resilient(key = shop, circuit_breaker(failure_threshold = 5))]`",
            ));
        }
        if let (Some(preset), true) = (&args.preset, errors.is_empty()) {
            let keyed = args.key.is_some()
                || args.circuit.as_ref().is_some_and(|c| c.key.is_some())
                || args.rate_limit.as_ref().is_some_and(|r| r.key.is_some());
            if let (Some(tenant), false) = (super::preset_tenant(&preset.value()), keyed) {
                errors.push(super::missing_key(ATTR, preset, tenant));
            }
        }
        args.forward_to_retry(errors);
        if !has_preset && no_layer && errors.is_empty() {
            errors.push(syn::Error::new(
                span,
                "`#[resilient]` needs a preset or layers: write `#[resilient(preset = \"api\")]` or `#[resilient(retry(max_attempts = 3), timeout(5s))]`",
            ));
        }
        args
    }
}

impl ResilientArgs {
    /// Hands `deadline` and `budget` to the retry layer, the outermost, which owns them:
    /// the written one, else the preset's (if the preset has none, the call has no
    /// deadline), else a retry layer of one attempt, so that a deadline without retries
    /// still bounds every wait below it.
    fn forward_to_retry(&mut self, errors: &mut Errors) {
        if self.deadline.is_none() && self.budget.is_none() {
            return;
        }
        if self.retry.is_none() {
            if self.budget.is_some() && self.preset.is_none() {
                if let Some(budget) = &self.budget {
                    errors.push(syn::Error::new(
                        budget.span(),
                        "`budget` in `#[resilient]` belongs to a retry layer: add one, like `#[resilient(retry(max_attempts = 3), budget = \"orders\")]`",
                    ));
                }
                return;
            }
            let mut retry = RetryArgs::default();
            if self.preset.is_none() {
                retry.settings.0.push(("max_attempts".into(), Setting::Int(1), Span::call_site()));
            }
            self.retry = Some(retry);
            self.implied_retry = self.preset.is_some();
        }
        let Some(retry) = &mut self.retry else { return };
        if let Some((nanos, span)) = self.deadline {
            if retry.settings.get("deadline").is_some()
                || retry.settings.get("max_elapsed").is_some()
            {
                errors.push(syn::Error::new(
                    span,
                    "`deadline` is given twice: keep `#[resilient(deadline = ..)]` and remove it from `retry(...)`",
                ));
            } else {
                retry.settings.0.push(("deadline".into(), Setting::Duration(nanos), span));
            }
        }
        if let Some(budget) = &self.budget {
            if retry.settings.get("budget").is_some() {
                errors.push(syn::Error::new(
                    budget.span(),
                    "`budget` is given twice: keep `#[resilient(budget = ..)]` and remove it from `retry(...)`",
                ));
            } else {
                retry.settings.0.push((
                    "budget".into(),
                    Setting::Text(budget.value()),
                    budget.span(),
                ));
            }
        }
    }
}

fn layer_example(name: &str) -> &'static str {
    match name {
        "retry" => "retry(max_attempts = 3)",
        "hedge" => "hedge(delay = p95)",
        "circuit_breaker" => "circuit_breaker(failure_threshold = 5)",
        "rate_limit" => "rate_limit(per_second = 10)",
        "bulkhead" => "bulkhead(max_concurrent = 10)",
        _ => "timeout(5s)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (ResilientArgs, Vec<String>) {
        let mut errors = Errors::default();
        let args = ResilientArgs::parse(tokens, Span::call_site(), &mut errors);
        let messages = errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (args, messages)
    }

    #[test]
    fn preset_and_nested_layers() {
        let (args, errs) = parse(quote!(preset = "shopify", rate_limit(key = shop), timeout));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(args.preset.map(|p| p.value()), Some("shopify".to_owned()));
        assert!(args.rate_limit.is_some_and(|r| r.key.is_some()));
        assert!(args.timeout.is_some_and(|t| t.duration.is_none()));
        assert!(args.retry.is_none());
    }

    #[test]
    fn nested_errors_are_reported() {
        let (_, errs) = parse(quote!(retry(max_attempts = 0), timeout, circuit_breaker = 3));
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("must be at least 1 (got 0)"));
        assert!(errs[1].contains("`#[timeout]` needs a duration"));
        assert!(errs[2].contains("is a layer: write `circuit_breaker(...)`"));
    }

    #[test]
    fn a_per_tenant_preset_needs_a_key() {
        let (_, errs) = parse(quote!(preset = "shopify"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("write `#[resilient(preset = \"shopify\", key = shop)]`"));
        assert!(errs[0].contains("or `key = none`"));
        for ok in [
            quote!(preset = "shopify", key = shop),
            quote!(preset = "shopify", key = none),
            quote!(preset = "shopify", rate_limit(key = shop)),
            quote!(preset = "shopify", circuit_breaker(key = shop.id)),
            quote!(preset = "api"),
        ] {
            let (_, errs) = parse(ok.clone());
            assert!(errs.is_empty(), "{ok}: {errs:?}");
        }
        let (args, _) = parse(quote!(preset = "shopify", key = none));
        assert!(args.key.is_some_and(|k| k.expr().is_none()));
    }

    #[test]
    fn a_key_with_nothing_to_key_is_an_error() {
        let (_, errs) = parse(quote!(key = shop, retry(max_attempts = 3)));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("keys the circuit breaker and the rate limit"));
        let (_, errs) = parse(quote!(key = shop, circuit_breaker(failure_threshold = 3)));
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn empty_is_an_error() {
        let (_, errs) = parse(quote!());
        assert!(errs[0].contains("needs a preset or layers"));
    }
}
