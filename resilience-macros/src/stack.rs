//! Stacking: the top resilience attribute absorbs the ones below it.
//!
//! Rust expands the top attribute first, handing it the function with the attributes
//! below still on it. Left alone, the bottom attribute would wrap the body first and end
//! up *innermost*, but the top one would then wrap everything and be *outermost*: the
//! written order would be the runtime order only by accident of expansion. Making it
//! explicit is simpler and holds whatever the paths: the top attribute removes every
//! resilience attribute below it and builds one pipeline in written order (outermost
//! first), as Python decorators read.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Attribute, Meta};

use crate::args::{
    BulkheadArgs, CircuitArgs, Errors, FallbackArgs, HedgeArgs, RateLimitArgs, ResilientArgs,
    RetryArgs, TimeoutArgs, preset_tenant,
};

/// Which attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Retry,
    CircuitBreaker,
    RateLimit,
    Timeout,
    Bulkhead,
    Hedge,
    Resilient,
    Fallback,
}

impl Kind {
    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "retry" => Kind::Retry,
            "circuit_breaker" => Kind::CircuitBreaker,
            "rate_limit" => Kind::RateLimit,
            "timeout" => Kind::Timeout,
            "bulkhead" => Kind::Bulkhead,
            "hedge" => Kind::Hedge,
            "resilient" => Kind::Resilient,
            "fallback" => Kind::Fallback,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Retry => "retry",
            Kind::CircuitBreaker => "circuit_breaker",
            Kind::RateLimit => "rate_limit",
            Kind::Timeout => "timeout",
            Kind::Bulkhead => "bulkhead",
            Kind::Hedge => "hedge",
            Kind::Resilient => "resilient",
            Kind::Fallback => "fallback",
        }
    }
}

/// One layer of the pipeline.
#[allow(
    clippy::large_enum_variant,
    reason = "parsed arguments, a handful per function at compile time: boxing buys nothing"
)]
pub(crate) enum Layer {
    Retry(RetryArgs),
    Circuit(CircuitArgs),
    RateLimit(RateLimitArgs),
    Bulkhead(BulkheadArgs),
    Timeout(TimeoutArgs),
    Hedge(HedgeArgs),
}

/// A layer plus where it came from.
pub(crate) struct Planned {
    pub(crate) layer: Layer,
    /// The attribute (or nested layer) it was written as, for errors.
    pub(crate) span: Span,
    /// The preset it inherits from `#[resilient(preset = ..)]`, if it names none itself.
    pub(crate) inherited_preset: Option<syn::LitStr>,
    /// Present only if its preset (or the registry) defines it: the layers that
    /// `#[resilient(preset = ..)]` implies without naming them.
    pub(crate) optional: bool,
}

/// The whole pipeline, outermost layer first.
pub(crate) struct Stack {
    pub(crate) layers: Vec<Planned>,
    /// `#[fallback(..)]`: outside every layer, on the final result.
    pub(crate) fallback: Option<FallbackArgs>,
    pub(crate) krate: Option<syn::Path>,
}

/// Parses the top attribute (`kind`, `args`) and every resilience attribute in `attrs`,
/// removing the latter from `attrs`.
pub(crate) fn collect(
    kind: Kind,
    args: TokenStream,
    attrs: &mut Vec<Attribute>,
    errors: &mut Errors,
) -> Stack {
    let mut stack = Stack { layers: Vec::new(), fallback: None, krate: None };
    push(&mut stack, kind, args, Span::call_site(), errors);
    let top_crate = stack.krate.clone();
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        match absorbable(&attr, top_crate.as_ref()) {
            Some(kind) => {
                let tokens = match &attr.meta {
                    Meta::Path(_) => TokenStream::new(),
                    Meta::List(list) => list.tokens.clone(),
                    Meta::NameValue(nv) => {
                        errors.push(syn::Error::new_spanned(
                            nv,
                            format!("write `#[{}(...)]`", kind.name()),
                        ));
                        continue;
                    }
                };
                push(&mut stack, kind, tokens, attr.span(), errors);
                kept.push(absorbed_marker(&attr));
            }
            None => kept.push(attr),
        }
    }
    *attrs = kept;
    stack
}

/// The argument that tells an absorbed attribute it has nothing left to do.
pub(crate) const ABSORBED: &str = "__resilience_absorbed";

/// The absorbed attribute, kept with its path (so the user's `use resilience::timeout`
/// counts as used) but with the marker as its only argument.
fn absorbed_marker(attr: &Attribute) -> Attribute {
    let path = attr.path().clone();
    let marker = proc_macro2::Ident::new(ABSORBED, Span::call_site());
    Attribute {
        pound_token: attr.pound_token,
        style: attr.style,
        bracket_token: attr.bracket_token,
        meta: Meta::List(syn::MetaList {
            path,
            delimiter: syn::MacroDelimiter::Paren(syn::token::Paren::default()),
            tokens: quote::quote!(#marker),
        }),
    }
}

/// Whether these are the arguments of an absorbed attribute.
pub(crate) fn is_absorbed(args: &TokenStream) -> bool {
    let mut iter = args.clone().into_iter();
    matches!((iter.next(), iter.next()), (Some(proc_macro2::TokenTree::Ident(i)), None) if i == ABSORBED)
}

/// The kind of a resilience attribute: `retry`, `resilience::retry`, `::resilience::retry`
/// or `<crate path>::retry` for the `crate` the top attribute names.
fn absorbable(attr: &Attribute, krate: Option<&syn::Path>) -> Option<Kind> {
    let path = attr.path();
    let last = path.segments.last()?;
    let kind = Kind::from_name(&last.ident.to_string())?;
    let prefix: Vec<String> = path
        .segments
        .iter()
        .take(path.segments.len().saturating_sub(1))
        .map(|s| s.ident.to_string())
        .collect();
    let ours = prefix.is_empty()
        || prefix == ["resilience"]
        || krate.is_some_and(|k| {
            let k: Vec<String> = k.segments.iter().map(|s| s.ident.to_string()).collect();
            k == prefix
        });
    ours.then_some(kind)
}

fn push(stack: &mut Stack, kind: Kind, tokens: TokenStream, span: Span, errors: &mut Errors) {
    let explicit = |layer| Planned { layer, span, inherited_preset: None, optional: false };
    match kind {
        Kind::Fallback => {
            let args = FallbackArgs::parse(tokens, span, errors);
            set_crate(stack, args.krate.as_ref());
            if stack.fallback.is_some() {
                errors.push(syn::Error::new(span, "only one `#[fallback]` per function"));
            } else if !stack.layers.is_empty() {
                errors.push(syn::Error::new(
                    span,
                    "`#[fallback]` is the outermost layer (it answers the final error, after retries, so that the circuit breaker still counts what the call did): write it above the other resilience attributes",
                ));
            }
            stack.fallback = Some(args);
        }
        Kind::Retry => {
            let args = RetryArgs::parse(tokens, errors);
            set_crate(stack, args.krate.as_ref());
            stack.layers.push(explicit(Layer::Retry(args)));
        }
        Kind::CircuitBreaker => {
            let args = CircuitArgs::parse(tokens, errors);
            set_crate(stack, args.krate.as_ref());
            stack.layers.push(explicit(Layer::Circuit(args)));
        }
        Kind::RateLimit => {
            let args = RateLimitArgs::parse(tokens, errors);
            set_crate(stack, args.krate.as_ref());
            stack.layers.push(explicit(Layer::RateLimit(args)));
        }
        Kind::Timeout => {
            let args = TimeoutArgs::parse(tokens, span, true, errors);
            set_crate(stack, args.krate.as_ref());
            stack.layers.push(explicit(Layer::Timeout(args)));
        }
        Kind::Bulkhead => {
            let args = BulkheadArgs::parse(tokens, errors);
            set_crate(stack, args.krate.as_ref());
            stack.layers.push(explicit(Layer::Bulkhead(args)));
        }
        Kind::Hedge => {
            let args = HedgeArgs::parse(tokens, errors);
            set_crate(stack, args.krate.as_ref());
            stack.layers.push(explicit(Layer::Hedge(args)));
        }
        Kind::Resilient => {
            let args = ResilientArgs::parse(tokens, span, errors);
            set_crate(stack, args.krate.as_ref());
            let preset = args.preset;
            let optional = preset.is_some();
            // The key of every keyable layer that names none: `key = ..`, or, for a preset
            // whose limits are per tenant, the key written on the other keyable layer (the
            // tenant's circuit goes with its bucket).
            let per_tenant = preset.as_ref().is_some_and(|p| preset_tenant(&p.value()).is_some());
            let written = |c: &Option<CircuitArgs>, r: &Option<RateLimitArgs>| {
                let rate = r.as_ref().and_then(|r| r.key.clone());
                rate.or_else(|| c.as_ref().and_then(|c| c.key.clone()))
            };
            let key = args
                .key
                .clone()
                .or_else(|| per_tenant.then(|| written(&args.circuit, &args.rate_limit)).flatten());
            let keyed_circuit = |mut c: CircuitArgs| {
                if c.key.is_none() {
                    c.key.clone_from(&key);
                }
                Layer::Circuit(c)
            };
            let keyed_limit = |mut r: RateLimitArgs| {
                if r.key.is_none() {
                    r.key.clone_from(&key);
                }
                Layer::RateLimit(r)
            };
            let implied_retry = args.implied_retry;
            let mut add = |layer: Option<Layer>, implied: Layer| {
                let (layer, optional) = match layer {
                    Some(layer @ Layer::Retry(_)) if implied_retry => (layer, true),
                    Some(layer) => (layer, false),
                    None if optional => (implied, true),
                    None => return,
                };
                stack.layers.push(Planned {
                    layer,
                    span,
                    inherited_preset: preset.clone(),
                    optional,
                });
            };
            // The documented fixed order, outermost first.
            add(args.retry.map(Layer::Retry), Layer::Retry(RetryArgs::default()));
            // Hedging is never implied by a preset: only a written `hedge(...)` (which
            // starts from the preset's hedge, if it has one).
            if let Some(hedge) = args.hedge {
                add(Some(Layer::Hedge(hedge)), Layer::Hedge(HedgeArgs::default()));
            }
            add(args.circuit.map(keyed_circuit), keyed_circuit(CircuitArgs::default()));
            add(args.rate_limit.map(keyed_limit), keyed_limit(RateLimitArgs::default()));
            add(args.bulkhead.map(Layer::Bulkhead), Layer::Bulkhead(BulkheadArgs::default()));
            add(args.timeout.map(Layer::Timeout), Layer::Timeout(TimeoutArgs::default()));
        }
    }
}

fn set_crate(stack: &mut Stack, krate: Option<&syn::Path>) {
    if stack.krate.is_none() {
        stack.krate = krate.cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn attrs(tokens: TokenStream) -> Vec<Attribute> {
        let item: syn::Result<syn::ItemFn> = syn::parse2(quote!(#tokens fn f() {}));
        item.map(|i| i.attrs).unwrap_or_default()
    }

    fn order(stack: &Stack) -> Vec<&'static str> {
        stack
            .layers
            .iter()
            .map(|p| match p.layer {
                Layer::Retry(_) => "retry",
                Layer::Circuit(_) => "circuit_breaker",
                Layer::RateLimit(_) => "rate_limit",
                Layer::Bulkhead(_) => "bulkhead",
                Layer::Timeout(_) => "timeout",
                Layer::Hedge(_) => "hedge",
            })
            .collect()
    }

    #[test]
    fn written_order_is_kept_and_attributes_are_absorbed() {
        let mut attrs = attrs(quote!(
            /// docs
            #[circuit_breaker(name = "x")]
            #[inline]
            #[resilience::timeout(5s)]
            #[other::retry]
        ));
        let mut errors = Errors::default();
        let stack = collect(Kind::Retry, quote!(max_attempts = 3), &mut attrs, &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(order(&stack), ["retry", "circuit_breaker", "timeout"]);
        let kept: Vec<String> =
            attrs.iter().map(|a| quote::ToTokens::to_token_stream(a).to_string()).collect();
        assert_eq!(
            kept,
            [
                "# [doc = r\" docs\"]",
                "# [circuit_breaker (__resilience_absorbed)]",
                "# [inline]",
                "# [resilience :: timeout (__resilience_absorbed)]",
                "# [other :: retry]"
            ],
            "absorbed attributes stay as inert markers; the others stay as written"
        );
        assert!(
            attrs
                .iter()
                .filter(|a| is_absorbed(
                    &a.meta.require_list().map(|l| l.tokens.clone()).unwrap_or_default()
                ))
                .count()
                == 2
        );
    }

    #[test]
    fn facade_paths_are_absorbed_when_named() {
        let mut attrs = attrs(quote!(#[facade::res::bulkhead(max_concurrent = 2)]));
        let mut errors = Errors::default();
        let stack =
            collect(Kind::Timeout, quote!(1s, crate = "facade::res"), &mut attrs, &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(order(&stack), ["timeout", "bulkhead"]);
        assert_eq!(attrs.len(), 1);
        assert!(stack.krate.is_some());
    }

    #[test]
    fn resilient_uses_the_fixed_order() {
        let mut attrs = Vec::new();
        let mut errors = Errors::default();
        let stack = collect(
            Kind::Resilient,
            quote!(timeout(1s), rate_limit(per_second = 1), retry, bulkhead, circuit_breaker),
            &mut attrs,
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        assert_eq!(
            order(&stack),
            ["retry", "circuit_breaker", "rate_limit", "bulkhead", "timeout"]
        );
        let mut errors = Errors::default();
        let stack = collect(
            Kind::Resilient,
            quote!(timeout(1s), circuit_breaker, hedge(delay = p95), retry),
            &mut Vec::new(),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        assert_eq!(order(&stack), ["retry", "hedge", "circuit_breaker", "timeout"]);
        assert!(stack.layers.iter().all(|l| !l.optional));
    }

    #[test]
    fn resilient_preset_implies_every_layer_optionally() {
        let mut attrs = Vec::new();
        let mut errors = Errors::default();
        let stack = collect(
            Kind::Resilient,
            quote!(preset = "shopify", rate_limit(key = shop)),
            &mut attrs,
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        assert_eq!(stack.layers.len(), 5);
        let optional: Vec<bool> = stack.layers.iter().map(|l| l.optional).collect();
        assert_eq!(optional, [true, true, false, true, true]);
        assert!(stack.layers.iter().all(|l| l.inherited_preset.is_some()));
    }

    /// `(circuit key, rate-limit key)` of a `#[resilient]` stack, as written tokens
    /// (`none` for `key = none`, `-` for no key).
    fn keys(args: TokenStream) -> (String, String) {
        let mut errors = Errors::default();
        let stack = collect(Kind::Resilient, args, &mut Vec::new(), &mut errors);
        assert!(errors.finish().is_ok());
        let show = |k: Option<&crate::args::KeyArg>| match k {
            Some(crate::args::KeyArg::Expr(e)) => quote::ToTokens::to_token_stream(e).to_string(),
            Some(crate::args::KeyArg::None) => "none".to_owned(),
            None => "-".to_owned(),
        };
        let mut out = ("-".to_owned(), "-".to_owned());
        for l in &stack.layers {
            match &l.layer {
                Layer::Circuit(c) => out.0 = show(c.key.as_ref()),
                Layer::RateLimit(r) => out.1 = show(r.key.as_ref()),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn a_top_level_key_keys_every_keyable_layer_and_a_layer_key_overrides_it() {
        let k = |c: &str, r: &str| (c.to_owned(), r.to_owned());
        assert_eq!(keys(quote!(preset = "shopify", key = shop)), k("shop", "shop"));
        assert_eq!(keys(quote!(preset = "api", key = host)), k("host", "host"));
        assert_eq!(keys(quote!(preset = "shopify", key = none)), k("none", "none"));
        assert_eq!(
            keys(quote!(preset = "shopify", key = shop, rate_limit(key = token))),
            k("shop", "token")
        );
        // A per-tenant preset keys its breaker like its limiter.
        assert_eq!(keys(quote!(preset = "shopify", rate_limit(key = shop))), k("shop", "shop"));
        // Other presets key only what is written.
        assert_eq!(keys(quote!(preset = "api", rate_limit(key = host))), k("-", "host"));
    }

    #[test]
    fn errors_of_absorbed_attributes_are_reported() {
        let mut attrs = attrs(quote!(#[timeout(5)] #[bulkhead(max_concurrent = 0)]));
        let mut errors = Errors::default();
        let _ = collect(Kind::Retry, quote!(), &mut attrs, &mut errors);
        let count = errors.into_error().map(|e| e.into_iter().count()).unwrap_or(0);
        assert_eq!(count, 2);
    }
}
