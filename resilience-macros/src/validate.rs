//! Cross-argument and function-shape rules, checked once everything is parsed.

use crate::args::{
    BulkheadArgs, CircuitArgs, Errors, LayerSettings, On, RateLimitArgs, RetryArgs, Setting,
};
use crate::func::{ArgName, FnInfo, Shape};
use crate::stack::{Layer, Planned, Stack};

/// Records every rule the stack or the function breaks.
pub(crate) fn check(stack: &Stack, info: &FnInfo, attr: &str, errors: &mut Errors) {
    let has_fallback = stack.fallback.is_some()
        || stack
            .layers
            .iter()
            .any(|l| matches!(&l.layer, Layer::Circuit(c) if c.fallback.is_some()));
    if info.ret_not_result && !has_fallback {
        let ret = &info.ret;
        errors.push(syn::Error::new(
            info.ret_span,
            format!("`#[{attr}]` needs the function to return `Result<T, E>` with `E: From<resilience::Error>`: rejections and timeouts reach the caller as `Err(E::from(resilience::Error))`, and `{}` cannot carry them (only a function with a fallback, `#[fallback(..)]` or `#[circuit_breaker(fallback = ..)]`, may return another type)", ret.to_string().replace(' ', "")),
        ));
    }
    let mut fallback_seen = false;
    if let Some(args) = &stack.fallback {
        fallback_seen = true;
        fallback_args(info, errors);
        if let (On::Predicate(predicate), false) = (&args.on, info.ret_is_result) {
            errors.push(syn::Error::new_spanned(
                predicate,
                "`on = <predicate>` in `#[fallback]` needs the function to return `Result<T, E>`: the predicate looks at `&E`; a function returning a plain value only meets rejections, which `on = \"rejected\"` (the default) answers",
            ));
        }
    }
    let mut retry_outside = false;
    for planned in &stack.layers {
        match &planned.layer {
            Layer::Retry(args) => {
                retry(args, errors);
                generic_error(args, info, attr, errors);
                retry_outside = true;
            }
            Layer::Circuit(args) => {
                circuit(args, errors);
                tenant_key("circuit_breaker", args.preset.as_ref(), args.key.is_some(), errors);
                if let Some(fallback) = &args.fallback {
                    if fallback_seen {
                        errors.push(syn::Error::new_spanned(
                            fallback,
                            "only one `fallback` per function: another fallback (`#[fallback]` or an outer circuit breaker's) already answers rejections",
                        ));
                    }
                    fallback_seen = true;
                    fallback_args(info, errors);
                }
            }
            Layer::RateLimit(args) => {
                rate_limit(args, planned, errors);
                tenant_key("rate_limit", args.preset.as_ref(), args.key.is_some(), errors);
            }
            Layer::Bulkhead(args) => bulkhead(args, errors),
            Layer::Hedge(_) => hedge(planned, info, errors),
            Layer::Timeout(_) => {
                if matches!(info.shape, Shape::Sync) {
                    sync_timeout(info, retry_outside, errors);
                }
            }
        }
    }
}

/// Hedging runs the body several times at once: only for async functions, and only with
/// arguments that concurrent attempts can share.
fn hedge(planned: &Planned, info: &FnInfo, errors: &mut Errors) {
    if matches!(info.shape, Shape::Sync) {
        errors.push(syn::Error::new(
            planned.span,
            "`#[hedge]` needs an `async fn`: a hedge is a second attempt running at the same time as the first, and a blocking function runs one attempt at a time; make the function `async`, or use `#[timeout]` with `#[retry]` for blocking code",
        ));
        return;
    }
    for ty in &info.arg_types {
        if let syn::Type::Reference(r) = ty
            && r.mutability.is_some()
        {
            let shown = quote::ToTokens::to_token_stream(ty)
                .to_string()
                .replace("& mut", "&mut")
                .replace(" < ", "<")
                .replace(" >", ">")
                .replace(" , ", ", ");
            errors.push(syn::Error::new_spanned(
                ty,
                format!("`#[hedge]` runs the body again for each hedge while the first attempt still runs, and concurrent attempts cannot share `{shown}`: take a shared reference (`&self`, `&T`, with interior mutability where needed) or a `Clone` value"),
            ));
        }
    }
}

/// A layer's own preset whose limits are per tenant needs a key (`#[resilient]` checks
/// the preset it hands down when it parses).
fn tenant_key(attr: &str, preset: Option<&syn::LitStr>, keyed: bool, errors: &mut Errors) {
    if let (Some(preset), false) = (preset, keyed)
        && let Some(tenant) = crate::args::preset_tenant(&preset.value())
    {
        errors.push(crate::args::missing_key(attr, preset, tenant));
    }
}

fn retry(args: &RetryArgs, errors: &mut Errors) {
    let s = &args.settings;
    if let (Some((initial, _)), Some((max, span))) =
        (s.nanos("initial_delay"), s.nanos("max_delay"))
        && max < initial
    {
        errors.push(syn::Error::new(
            span,
            "`max_delay` in `#[retry]` must be at least `initial_delay`",
        ));
    }
    if let (Some((_, span)), Some((kind, _))) = (s.get("multiplier"), s.text("backoff"))
        && kind != "exponential"
    {
        errors.push(syn::Error::new(
            span,
            "`multiplier` in `#[retry]` applies only to `backoff = exponential`; remove it or switch the backoff",
        ));
    }
}

/// A retry without `retry_if` classifies errors through `Classify`, detected from the
/// error type where the function is compiled: for a type parameter without the bound,
/// that is never, whatever type the caller picks. Refused, naming the two ways out.
fn generic_error(args: &RetryArgs, info: &FnInfo, attr: &str, errors: &mut Errors) {
    let Some(e) = &info.unclassified_error else { return };
    if args.retry_if.is_some() {
        return;
    }
    errors.push(syn::Error::new(
        e.span(),
        format!(
            "`#[{attr}]` cannot classify the errors of `{e}`: it is a type parameter without a `Classify` bound, so every error would be retried, even when the caller's `{e}` implements `Classify`; add the bound `{e}: resilience::Classify + resilience::RetryAfter` (transient errors retried, server hints honoured), or choose with `retry_if = ..` (`retry_if = |_| true` retries every error)"
        ),
    ));
}

/// An adaptive limit's keys go together: `max_concurrent` is a fixed limit, and the
/// bounds mean nothing without `adaptive` (unless a preset may bring it).
fn bulkhead(args: &BulkheadArgs, errors: &mut Errors) {
    let s = &args.settings;
    let adaptive = s.get("adaptive").is_some();
    if adaptive && let Some((_, span)) = s.get("max_concurrent") {
        errors.push(syn::Error::new(
            span,
            "`max_concurrent` in `#[bulkhead]` is a fixed limit; an `adaptive` limit starts at `initial_limit` and moves between `min_limit` and `max_limit`: write `initial_limit = 10`",
        ));
    }
    if !adaptive && args.preset.is_none() {
        let stray = ["min_limit", "max_limit", "initial_limit"]
            .into_iter()
            .find_map(|key| s.get(key).map(|(_, span)| (key, span)));
        if let Some((key, span)) = stray {
            errors.push(syn::Error::new(
                span,
                format!("`{key}` in `#[bulkhead]` applies only to an adaptive limit; add `adaptive = \"gradient\"` (or `\"aimd\"`, `\"vegas\"`) or remove it"),
            ));
        }
    }
    if let (Some((Setting::Int(min), _)), Some((Setting::Int(max), span))) =
        (s.get("min_limit"), s.get("max_limit"))
        && max < min
    {
        errors.push(syn::Error::new(
            span,
            format!(
                "`max_limit` in `#[bulkhead]` must be at least `min_limit` ({min}) (got {max})"
            ),
        ));
    }
}

fn circuit(args: &CircuitArgs, errors: &mut Errors) {
    let s = &args.settings;
    fail_mode("circuit_breaker", s, errors);
    let mode = s.text("mode").map(|(m, _)| m);
    if mode == Some("adaptive_throttle") {
        throttle(args, errors);
        return;
    }
    for key in ["k", "buckets"] {
        if let Some((_, span)) = s.get(key) {
            let current = mode.unwrap_or("consecutive");
            errors.push(syn::Error::new(
                span,
                format!("`{key}` in `#[circuit_breaker]` applies only to `mode = \"adaptive_throttle\"` (this circuit is in mode \"{current}\"): write `#[circuit_breaker(mode = \"adaptive_throttle\", {key} = ..)]` or remove `{key}`"),
            ));
        }
    }
    if let (Some(_), Some((_, span))) = (s.get("failure_threshold"), s.get("failure_rate")) {
        errors.push(syn::Error::new(
            span,
            "`failure_threshold` and `failure_rate` in `#[circuit_breaker]` are two ways to trip the circuit; choose one: `failure_threshold = 5` (consecutive failures) or `failure_rate = 0.5, window = 100` (share of recent calls)",
        ));
    }
    if s.get("failure_rate").is_none() {
        let stray = s
            .get("window")
            .map(|w| ("window", w.1))
            .or(s.get("min_calls").map(|m| ("min_calls", m.1)));
        if let Some((key, span)) = stray {
            errors.push(syn::Error::new(
                span,
                format!("`{key}` in `#[circuit_breaker]` applies only with `failure_rate`; add `failure_rate = 0.5` or remove it"),
            ));
        }
    }
    if let (Some((Setting::Int(window), span)), Some((Setting::Int(min), _))) =
        (s.get("window"), s.get("min_calls"))
        && window < min
    {
        errors.push(syn::Error::new(
            span,
            format!("`window` in `#[circuit_breaker]` holds {window} calls, fewer than `min_calls = {min}`: the rate could never be evaluated"),
        ));
    }
}

/// `mode = "adaptive_throttle"`: the throttle's keys only, one throttle per name.
fn throttle(args: &CircuitArgs, errors: &mut Errors) {
    const THROTTLE_KEYS: [&str; 4] = ["mode", "k", "window", "buckets"];
    for (key, _, span) in &args.settings.0 {
        if key == "backend" && args.settings.text("backend").is_some_and(|(b, _)| b == "local") {
            continue;
        }
        if !THROTTLE_KEYS.contains(&key.as_str()) {
            errors.push(syn::Error::new(
                *span,
                format!("`{key}` in `#[circuit_breaker]` does not apply to `mode = \"adaptive_throttle\"`, whose keys are `k`, `window` (a duration) and `buckets`"),
            ));
        }
    }
    if let Some((Setting::Int(_), span)) = args.settings.get("window") {
        errors.push(syn::Error::new(
            span,
            "`window` in `#[circuit_breaker(mode = \"adaptive_throttle\")]` is a duration, like `window = 120s`",
        ));
    }
    if args.key.is_some() {
        errors.push(syn::Error::new(
            args.settings.get("mode").map_or_else(proc_macro2::Span::call_site, |(_, span)| span),
            "`key` in `#[circuit_breaker]` does not apply to `mode = \"adaptive_throttle\"`: a throttle counts one backend's accepts; remove `key` or the mode",
        ));
    }
}

fn rate_limit(args: &RateLimitArgs, planned: &Planned, errors: &mut Errors) {
    let s = &args.settings;
    if let (Some(_), Some((_, span))) = (s.get("per_second"), s.get("per_minute")) {
        errors.push(syn::Error::new(
            span,
            "`per_second` and `per_minute` in `#[rate_limit]` both set the rate; choose one",
        ));
    }
    let has_rate = s.get("per_second").is_some() || s.get("per_minute").is_some();
    let has_source = args.preset.is_some()
        || planned.inherited_preset.is_some()
        || args.name.is_some()
        || planned.optional;
    if !has_rate && !has_source {
        errors.push(syn::Error::new(
            planned.span,
            "`#[rate_limit]` needs a rate: write `#[rate_limit(per_second = 10)]` or `per_minute = 600`, a `preset`, or a `name` configured in the registry",
        ));
    }
    let on_limit = s.text("on_limit").map(|(o, _)| o);
    if let Some((_, span)) = s.get("max_queue")
        && on_limit != Some("queue")
    {
        errors.push(syn::Error::new(
            span,
            "`max_queue` in `#[rate_limit]` applies only to `on_limit = queue`; add it or remove `max_queue`",
        ));
    }
    if let (Some((_, span)), Some("reject")) = (s.get("max_wait"), on_limit) {
        errors.push(syn::Error::new(
            span,
            "`max_wait` in `#[rate_limit]` does not apply to `on_limit = reject`, which never waits",
        ));
    }
    fail_mode("rate_limit", s, errors);
}

/// `fail_mode` only means something for a Redis backend.
fn fail_mode(attr: &str, settings: &LayerSettings, errors: &mut Errors) {
    if let Some((_, span)) = settings.get("fail_mode")
        && settings.text("backend").map(|b| b.0) != Some("redis")
    {
        errors.push(syn::Error::new(
            span,
            format!("`fail_mode` in `#[{attr}]` applies only to `backend = \"redis\"`; add it or remove `fail_mode`"),
        ));
    }
}

fn fallback_args(info: &FnInfo, errors: &mut Errors) {
    for arg in &info.args {
        if let ArgName::Pattern(span) = arg {
            errors.push(syn::Error::new(
                *span,
                "a `fallback` receives the function's arguments by name: bind this argument to a plain identifier and destructure it in the body",
            ));
        }
    }
}

fn sync_timeout(info: &FnInfo, retry_outside: bool, errors: &mut Errors) {
    const MESSAGE: &str = "`#[timeout]` on a sync fn runs the body on a worker thread that may outlive the call, so every argument must be owned and `'static`; take an owned value (`String`, `Arc<T>`), or make the function `async`";
    for (arg, ty) in info.args.iter().zip(&info.arg_types) {
        match arg {
            ArgName::SelfValue { by_reference: true, span } => {
                errors.push(syn::Error::new(*span, MESSAGE));
            }
            ArgName::SelfValue { by_reference: false, span } if retry_outside => {
                errors.push(syn::Error::new(
                    *span,
                    "a sync `#[timeout]` inside `#[retry]` gives each attempt its own clone of the arguments, and `self` cannot be cloned there; make the method `async`, or a free function taking the value",
                ));
            }
            _ if crate::func::borrows(ty) => errors.push(syn::Error::new_spanned(ty, MESSAGE)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{Kind, collect};
    use proc_macro2::TokenStream;
    use quote::quote;

    fn messages(kind: Kind, args: TokenStream, item: TokenStream) -> Vec<String> {
        let Ok(mut item) = syn::parse2::<syn::ItemFn>(item) else { return vec!["bad item".into()] };
        let mut errors = Errors::default();
        let stack = collect(kind, args, &mut item.attrs, &mut errors);
        match crate::func::analyze(&item, kind.name()) {
            Ok(info) => check(&stack, &info, kind.name(), &mut errors),
            Err(e) => errors.push(e),
        }
        errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn conflicting_options() {
        let errs = messages(
            Kind::CircuitBreaker,
            quote!(failure_threshold = 3, failure_rate = 0.5),
            crate::fixtures::fallible_fn(),
        );
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("two ways to trip the circuit; choose one"));
        let errs = messages(
            Kind::RateLimit,
            quote!(per_second = 3, per_minute = 100),
            crate::fixtures::fallible_fn(),
        );
        assert!(errs[0].contains("both set the rate; choose one"));
    }

    #[test]
    fn rate_limit_needs_a_rate_source() {
        let errs = messages(Kind::RateLimit, quote!(burst = 3), crate::fixtures::fallible_fn());
        assert!(errs[0].contains("needs a rate"));
        let errs =
            messages(Kind::RateLimit, quote!(name = "configured"), crate::fixtures::fallible_fn());
        assert!(errs.is_empty());
    }

    #[test]
    fn window_without_rate_and_small_window() {
        let errs =
            messages(Kind::CircuitBreaker, quote!(window = 10), crate::fixtures::fallible_fn());
        assert!(errs[0].contains("applies only with `failure_rate`"));
        let errs = messages(
            Kind::CircuitBreaker,
            quote!(failure_rate = 0.5, window = 5, min_calls = 10),
            crate::fixtures::fallible_fn(),
        );
        assert!(errs[0].contains("fewer than `min_calls = 10`"));
    }

    #[test]
    fn sync_timeout_needs_static_arguments() {
        let errs = messages(
            Kind::Timeout,
            quote!(1s),
            quote!(
                fn f(&self, a: &str, b: String) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().all(|e| e.contains("must be owned and `'static`")));
        let errs = messages(
            Kind::Timeout,
            quote!(1s),
            quote!(
                async fn f(&self, a: &str) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(errs.is_empty());
    }

    #[test]
    fn retry_delays_and_multiplier() {
        let errs = messages(
            Kind::Retry,
            quote!(initial_delay = 2s, max_delay = 1s, backoff = constant, multiplier = 2.0),
            crate::fixtures::fallible_fn(),
        );
        assert_eq!(errs.len(), 2);
        assert!(errs[0].contains("must be at least `initial_delay`"));
        assert!(errs[1].contains("applies only to `backoff = exponential`"));
    }

    #[test]
    fn a_return_type_that_cannot_carry_rejections_is_refused() {
        let errs = messages(
            Kind::Retry,
            quote!(),
            quote!(
                fn f() -> u32 {
                    1
                }
            ),
        );
        assert!(
            errs[0].starts_with("`#[retry]` needs the function to return `Result<T, E>`"),
            "{errs:?}"
        );
        assert!(errs[0].contains("`u32` cannot carry them"));
        let errs = messages(
            Kind::CircuitBreaker,
            quote!(fallback = g),
            quote!(
                fn f() -> u32 {
                    1
                }
            ),
        );
        assert!(errs.is_empty(), "a fallback makes it possible: {errs:?}");
    }

    #[test]
    fn fallback_needs_named_arguments() {
        let errs = messages(
            Kind::CircuitBreaker,
            quote!(fallback = cached),
            quote!(
                fn f((a, b): (u8, u8)) -> Result<(), E> {
                    Ok(())
                }
            ),
        );
        assert!(errs[0].contains("bind this argument to a plain identifier"));
    }
}
