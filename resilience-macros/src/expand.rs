//! Code generation: one pipeline, outermost layer first, around the user's body.
//!
//! The signature, attributes, docs and visibility come out as written; only the body is
//! rewritten. Generated code calls by absolute path, nothing from the user's scope: the
//! layers of `<crate>::pipeline::layer`, the hooks of `<crate>::retry::Hooks` and the
//! classifiers of `<crate>::circuit` (`Predicates`, `FailureIfOk`), with `<crate>::__private` as the glue
//! (call-site caching, the return type's plumbing). Each layer resolves its named
//! instance once per call site (a `static` cell) and all hooks are zero-sized types, so a
//! call costs what the hand-written runtime call costs.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::{Block, ItemFn, Stmt};

use crate::args::{CircuitArgs, KeyArg, LayerSettings, On, RetryArgs, Setting};
use crate::func::{ArgName, FnInfo, Shape};
use crate::stack::{Layer, Planned, Stack};

/// What every layer needs to know.
struct Ctx<'a> {
    /// `<crate>`.
    krate: TokenStream,
    /// `<crate>::__private`.
    p: TokenStream,
    info: &'a FnInfo,
    /// The `Result<T, E>` the pipeline carries: the body's type, or `Result<R, Infallible>`
    /// for a non-`Result` function with a fallback.
    rr: TokenStream,
    fn_name: String,
}

impl Ctx<'_> {
    fn ok_ty(&self) -> TokenStream {
        let (p, rr) = (&self.p, &self.rr);
        quote!(#p::OkOf<#rr>)
    }

    fn err_ty(&self) -> TokenStream {
        let (p, rr) = (&self.p, &self.rr);
        quote!(#p::ErrOf<#rr>)
    }

    /// Whether the function has a receiver: its default names start with `Self`'s path.
    fn is_method(&self) -> bool {
        self.info.args.iter().any(|a| matches!(a, ArgName::SelfValue { .. }))
    }

    /// The default instance name: `module::fn` for a free function; for a method, its
    /// name alone, which the resolver prefixes with `Self`'s path (see [`owner`]).
    fn default_name(&self) -> TokenStream {
        let name = &self.fn_name;
        if self.is_method() {
            quote!(#name)
        } else {
            quote!(::core::concat!(::core::module_path!(), "::", #name))
        }
    }
}

/// The owner a call site passes to its resolver: `Self`'s type name for a method whose
/// layer takes the default name (evaluated once, when the call site resolves), else none.
fn owner(ctx: &Ctx<'_>, written: bool) -> TokenStream {
    let p = &ctx.p;
    if ctx.is_method() && !written {
        quote!(|| ::core::option::Option::Some(::core::any::type_name::<Self>()))
    } else {
        quote!(#p::no_owner)
    }
}

fn ident(name: &str, index: usize) -> syn::Ident {
    format_ident!("__resilience_{}_{}", name, index, span = Span::mixed_site())
}

fn item_ident(name: &str, index: usize) -> syn::Ident {
    format_ident!("__RESILIENCE_{}_{}", name, index, span = Span::mixed_site())
}

fn opt<T: ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn string(s: Option<&syn::LitStr>) -> TokenStream {
    opt(s)
}

/// Generates the wrapped function.
pub(crate) fn function(mut item: ItemFn, stack: &Stack, info: &FnInfo) -> syn::Result<TokenStream> {
    let krate =
        stack.krate.clone().map(|k| k.into_token_stream()).unwrap_or_else(|| quote!(::resilience));
    let p = quote!(#krate::__private);
    let krate = krate.clone();
    let value_mode = !info.ret_is_result && has_fallback(stack);
    let ret = &info.ret;
    let rr = if value_mode {
        quote!(::core::result::Result<#ret, ::core::convert::Infallible>)
    } else {
        ret.clone()
    };
    let ctx = Ctx { krate, p, info, rr, fn_name: item.sig.ident.to_string() };

    let (outer_stmts, body, async_block) = match info.shape {
        Shape::AsyncBlock => split_async_block(&item.block)?,
        Shape::Sync | Shape::AsyncFn => (Vec::new(), (*item.block).clone(), None),
    };
    let (hoisted, body) = match info.shape {
        Shape::AsyncBlock => hoist_async_trait_prelude(body),
        _ => (Vec::new(), body),
    };

    let (finish, finisher) = finish(&ctx, stack, value_mode);
    let inner = innermost(&ctx, &body, value_mode);
    let is_async = info.is_async();

    let mut top = TokenStream::new();
    let mut pipeline = inner;
    let mut retry_above: Vec<bool> = Vec::with_capacity(stack.layers.len());
    let mut seen_retry = false;
    for planned in &stack.layers {
        retry_above.push(seen_retry);
        seen_retry |= matches!(planned.layer, Layer::Retry(_));
    }
    for (index, planned) in stack.layers.iter().enumerate().rev() {
        let resolve = resolve(&ctx, planned, index);
        let wrapped = wrap(
            &ctx,
            planned,
            index,
            pipeline,
            is_async,
            retry_above.get(index).copied().unwrap_or(false),
        );
        pipeline = if is_async {
            top.extend(resolve.into_token_stream());
            wrapped
        } else {
            quote!({ #resolve #wrapped })
        };
    }
    let result = ident("result", 0);
    // The call's span and whole-call event: named after the function, with its layers.
    let call = item_ident("CALL", 0);
    let (p, name) = (&ctx.p, ctx.default_name());
    let fallback = stack.fallback.as_ref().map(|_| "fallback");
    let layers = fallback
        .into_iter()
        .chain(stack.layers.iter().map(|l| layer_name(&l.layer)))
        .collect::<Vec<_>>()
        .join(",");
    let call_site = quote!(static #call: #p::CallSite = #p::CallSite::new(#name, #layers););
    let owner = if ctx.is_method() { quote!(#p::owner_of::<Self>) } else { quote!(#p::no_owner) };
    let direct = match (is_async, &finisher, stack.layers.as_slice()) {
        (false, Some(finisher), [only]) => {
            direct_circuit(&ctx, only, &body, &call, &owner, finisher)
        }
        _ => None,
    };
    let run = match (is_async, finisher) {
        _ if let Some(direct) = direct => direct,
        (true, _) => {
            quote!(let #result = #p::traced_async(&#call, #owner, #pipeline).await; #finish)
        }
        // Without a fallback, the sync call hands its result straight to the finisher: on
        // the bare path it becomes the return value without a copy in between.
        (false, Some(finisher)) => quote!(#p::traced_then(&#call, #owner, || #pipeline, #finisher)),
        (false, None) => quote!(let #result = #p::traced(&#call, #owner, || #pipeline); #finish),
    };
    let new_body = quote!({
        #(#hoisted)*
        #call_site
        #top
        #run
    });

    let block: Block = match async_block {
        None => syn::parse2(new_body)?,
        Some(rebuild) => {
            let future = rebuild(new_body);
            syn::parse2(quote!({ #(#outer_stmts)* #future }))?
        }
    };
    *item.block = block;
    Ok(item.into_token_stream())
}

/// A sync function under one unkeyed `#[circuit_breaker]` (and no fallback): the body
/// runs through the call site's breaker as the `Result<T, E>` it returns, without the
/// pipeline's `Fault` round trip, whenever nothing listens and the circuit is closed
/// (`__private::circuit_then`); any other call takes the pipeline, as every other stack
/// does.
fn direct_circuit(
    ctx: &Ctx<'_>,
    planned: &Planned,
    body: &Block,
    call: &syn::Ident,
    call_owner: &TokenStream,
    finisher: &TokenStream,
) -> Option<TokenStream> {
    let Layer::Circuit(args) = &planned.layer else { return None };
    if key_of(args.key.as_ref()).is_some() || is_throttle(args) {
        return None;
    }
    let p = &ctx.p;
    let ret = &ctx.info.ret;
    let Resolve { items, call: resolve, extra, .. } = resolve(ctx, planned, 0);
    let classifier = ident("classifier", 0);
    Some(quote!(
        #items
        #extra
        #p::circuit_then(
            &#call,
            #call_owner,
            || #resolve,
            &#classifier,
            || -> #ret #body,
            #finisher
        )
    ))
}

/// A layer's name in the call span's `layers` field.
fn layer_name(layer: &Layer) -> &'static str {
    match layer {
        Layer::Retry(_) => "retry",
        Layer::Circuit(_) => "circuit_breaker",
        Layer::RateLimit(_) => "rate_limiter",
        Layer::Bulkhead(_) => "bulkhead",
        Layer::Timeout(_) => "timeout",
        Layer::Hedge(_) => "hedge",
    }
}

/// `mode = "adaptive_throttle"`: the circuit is an `AdaptiveThrottle`.
fn is_throttle(args: &CircuitArgs) -> bool {
    args.settings.text("mode").is_some_and(|(mode, _)| mode == "adaptive_throttle")
}

fn has_fallback(stack: &Stack) -> bool {
    stack.fallback.is_some()
        || stack
            .layers
            .iter()
            .any(|l| matches!(&l.layer, Layer::Circuit(c) if c.fallback.is_some()))
}

type Rebuild = Box<dyn FnOnce(TokenStream) -> TokenStream>;

/// Splits `{ stmts; Box::pin(async move { body }) }` into the leading statements, the
/// async block's body, and a way to put a new body back in the same wrapper.
fn split_async_block(block: &Block) -> syn::Result<(Vec<Stmt>, Block, Option<Rebuild>)> {
    let mut stmts = block.stmts.clone();
    let Some(Stmt::Expr(last, None)) = stmts.pop() else {
        return Err(syn::Error::new(
            Span::call_site(),
            "expected the body to end in an async block",
        ));
    };
    fn rebuild(expr: syn::Expr) -> Option<(Block, Rebuild)> {
        match expr {
            syn::Expr::Async(a) => {
                let attrs = a.attrs;
                let capture = a.capture;
                let token = a.async_token;
                Some((a.block, Box::new(move |body| quote!(#(#attrs)* #token #capture #body))))
            }
            syn::Expr::Call(mut call) => {
                let arg = call.args.pop()?.into_value();
                let (block, inner) = rebuild(arg)?;
                Some((
                    block,
                    Box::new(move |body| {
                        let func = &call.func;
                        let attrs = &call.attrs;
                        let new_arg = inner(body);
                        quote!(#(#attrs)* #func(#new_arg))
                    }),
                ))
            }
            syn::Expr::Paren(p) => rebuild(*p.expr),
            _ => None,
        }
    }
    match rebuild(last) {
        Some((body, rebuild)) => Ok((stmts, body, Some(rebuild))),
        None => {
            Err(syn::Error::new(Span::call_site(), "expected the body to end in an async block"))
        }
    }
}

/// `#[async_trait]` starts its block with a type hint and moves every argument into it
/// (`let __self = self; let x = x;`). Those must run once, not once per attempt.
fn hoist_async_trait_prelude(body: Block) -> (Vec<Stmt>, Block) {
    let mut hoisted = Vec::new();
    let mut rest = body.stmts.into_iter().peekable();
    while let Some(stmt) = rest.peek() {
        let is_prelude = match stmt {
            Stmt::Local(local) => local.init.as_ref().is_some_and(|init| {
                init.diverge.is_none()
                    && matches!(&*init.expr, syn::Expr::Path(p) if p.path.get_ident().is_some() || p.path.is_ident("self"))
            }),
            Stmt::Expr(syn::Expr::If(e), _) => {
                matches!(&*e.cond, syn::Expr::Let(l) if matches!(&*l.expr, syn::Expr::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "None")))
            }
            _ => false,
        };
        if !is_prelude {
            break;
        }
        if let Some(stmt) = rest.next() {
            hoisted.push(stmt);
        }
    }
    (hoisted, Block { brace_token: body.brace_token, stmts: rest.collect() })
}

/// The user's body as the innermost future / value, its error wrapped in `Fault::Inner`.
fn innermost(ctx: &Ctx<'_>, body: &Block, value_mode: bool) -> TokenStream {
    let p = &ctx.p;
    let ret = &ctx.info.ret;
    let body_ident = ident("body", 0);
    let ret_ident = ident("ret", 0);
    if ctx.info.is_async() {
        let adapt =
            if value_mode { quote!(#p::inner_value_async) } else { quote!(#p::inner_async) };
        quote!({
            #[allow(unreachable_code, clippy::let_and_return, clippy::diverging_sub_expression)]
            let #body_ident = async {
                let #ret_ident: #ret = #body;
                #ret_ident
            };
            #adapt(#body_ident)
        })
    } else {
        let adapt = if value_mode { quote!(#p::inner_value) } else { quote!(#p::inner) };
        quote!(#adapt(#p::call(|| -> #ret #body)))
    }
}

/// How the pipeline's `Result<T, Fault<E>>` becomes the function's return value, and,
/// without a fallback, the finisher alone (the function the first applies to it).
fn finish(ctx: &Ctx<'_>, stack: &Stack, value_mode: bool) -> (TokenStream, Option<TokenStream>) {
    let p = &ctx.p;
    let result = ident("result", 0);
    // `#[fallback(handler, on = ..)]`, or a circuit breaker's `fallback = ..` (open
    // circuits only).
    let circuit_fallback = stack.layers.iter().find_map(|l| match &l.layer {
        Layer::Circuit(c) => c.fallback.as_ref(),
        _ => None,
    });
    let fallback = stack.fallback.as_ref().and_then(|f| f.handler.as_ref()).or(circuit_fallback);
    let ret = &ctx.info.ret;
    // Spanned at the return type: a missing `From<resilience::Error>` is reported there.
    // `finisher::<R>()` takes no argument, so a missing `From<resilience::Error>` (or a
    // return type that is not a `Result`) is reported at the user's return type.
    let finisher = quote_spanned!(ctx.info.ret_span=> #p::finisher::<#ret>());
    let finish = |value: &syn::Ident| quote!((#finisher)(#value));
    let Some(fallback) = fallback else {
        return (finish(&result), Some(quote!((#finisher))));
    };
    let args = ctx.info.args.iter().map(|a| match a {
        ArgName::SelfValue { span, .. } => quote_spanned!(*span=> self),
        ArgName::Ident(i) => i.to_token_stream(),
        ArgName::Pattern(_) => TokenStream::new(),
    });
    let span = syn::spanned::Spanned::span(fallback);
    // The probe refuses, at the fallback, a sync fallback for an async fn and an async one
    // for a sync fn, with one error naming the rule.
    let value = ident("fallback", 0);
    let probe = quote!(
        #[allow(unused_imports)]
        use #p::{FallbackIsFuture as _, FallbackIsValue as _};
    );
    let run = quote_spanned!(span=> #fallback(#(#args),*));
    let call = if ctx.info.is_async() {
        let check = at(span, quote!((&&#p::fallback_probe(&#value)).async_fallback(#value)));
        quote!({ let #value = #run; #probe #check.await })
    } else {
        let check = at(span, quote!((&&#p::fallback_probe(&#value)).sync_fallback(#value)));
        quote!({ let #value = #run; #probe #check })
    };
    let done = ident("done", 0);
    // An answer is reported under the call's name, as its whole-call event.
    let rejected = ident("rejected", 0);
    let site = item_ident("CALL", 0);
    let owner = if ctx.is_method() { quote!(#p::owner_of::<Self>) } else { quote!(#p::no_owner) };
    let call = quote!({ #p::fallback_used(&#site, #owner, #rejected); #call });
    let finish = if value_mode {
        quote!(match #p::value_or_fallback(#result) {
            #p::Outcome::Done(#done) => #done,
            #p::Outcome::Fallback(#rejected) => #call,
        })
    } else {
        let finish_done = finish(&done);
        let decide = match stack.fallback.as_ref().map(|f| &f.on) {
            None => quote!(#p::open_circuit(#result)),
            Some(On::Rejected) => quote!(#p::fallback_rejected(#result)),
            Some(On::Any) => quote!(#p::fallback_any(#result)),
            Some(On::Predicate(predicate)) => {
                let span = syn::spanned::Spanned::span(predicate);
                quote_spanned!(span=> #p::fallback_when(#result, #predicate))
            }
        };
        quote!(match #decide {
            #p::Outcome::Done(#done) => #finish_done,
            #p::Outcome::Fallback(#rejected) => #call,
        })
    };
    (finish, None)
}

/// `tokens` located at `span` (resolving as before: `mixed_site` hygiene), so that an
/// error in them points at the user's token and nowhere else.
fn at(span: Span, tokens: TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), at(span, group.stream()));
                inner.set_span(Span::mixed_site().located_at(span));
                return proc_macro2::TokenTree::Group(inner);
            }
            tree.set_span(Span::mixed_site().located_at(span));
            tree
        })
        .collect()
}

fn preset<'a>(own: Option<&'a syn::LitStr>, planned: &'a Planned) -> TokenStream {
    string(own.or(planned.inherited_preset.as_ref()))
}

/// The statements that resolve a layer's instance (once per call site) and build its
/// hooks.
fn resolve(ctx: &Ctx<'_>, planned: &Planned, index: usize) -> Resolve {
    let p = &ctx.p;
    let site = item_ident("SITE", index);
    let args_item = item_ident("ARGS", index);
    let timeout_settings;
    // (handle, instance type, resolver, instance name, own preset, layer keys, hooks)
    let mut written = false;
    // A circuit in the registry's mode: a breaker or a throttle (`CircuitSite`).
    let mut circuit_site = false;
    let (handle, instance, resolver, name, own_preset, settings, extra) = match &planned.layer {
        Layer::Retry(args) => {
            let hooks = ident("hooks", index);
            let hooks_value = retry_hooks(ctx, args);
            (
                "retry",
                quote!(#p::RetryPolicy),
                quote!(resolve_retry),
                ctx.default_name(),
                args.preset.as_ref(),
                &args.settings,
                quote!(let #hooks = #hooks_value;),
            )
        }
        Layer::Circuit(args) => {
            written = args.name.is_some();
            let classifier = ident("classifier", index);
            let classifier_value = classifier_value(ctx, args);
            let (instance, resolver) = if key_of(args.key.as_ref()).is_some() {
                (quote!(#p::KeyedCircuitBreaker), quote!(resolve_keyed_circuit_breaker))
            } else if is_throttle(args) {
                (quote!(#p::AdaptiveThrottle), quote!(resolve_adaptive_throttle))
            } else {
                circuit_site = true;
                (quote!(#p::Circuit), quote!(resolve_circuit))
            };
            (
                "circuit",
                instance,
                resolver,
                self::name(ctx, args.name.as_ref()),
                args.preset.as_ref(),
                &args.settings,
                quote!(let #classifier = #classifier_value;),
            )
        }
        Layer::RateLimit(args) => {
            written = args.name.is_some();
            let (instance, resolver) = if key_of(args.key.as_ref()).is_some() {
                (quote!(#p::KeyedRateLimiter), quote!(resolve_keyed_rate_limiter))
            } else {
                (quote!(#p::RateLimiter), quote!(resolve_rate_limiter))
            };
            let name = self::name(ctx, args.name.as_ref());
            ("limiter", instance, resolver, name, args.preset.as_ref(), &args.settings, quote!())
        }
        Layer::Bulkhead(args) => {
            written = args.name.is_some();
            (
                "bulkhead",
                quote!(#p::Bulkhead),
                quote!(resolve_bulkhead),
                self::name(ctx, args.name.as_ref()),
                args.preset.as_ref(),
                &args.settings,
                quote!(),
            )
        }
        Layer::Hedge(args) => {
            written = args.name.is_some();
            (
                "hedge",
                quote!(#p::Hedge),
                quote!(resolve_hedge),
                self::name(ctx, args.name.as_ref()),
                args.preset.as_ref(),
                &args.settings,
                quote!(),
            )
        }
        Layer::Timeout(args) => {
            let mut settings = LayerSettings::default();
            if let Some(d) = args.duration {
                settings.0.push(("duration".to_owned(), Setting::Duration(d.nanos), d.span));
            }
            if let Some(path) = &args.constant {
                let span = syn::spanned::Spanned::span(path);
                settings.0.push((
                    "duration".to_owned(),
                    Setting::DurationConst(path.clone()),
                    span,
                ));
            }
            timeout_settings = settings;
            written = true; // a timeout is not a named instance
            (
                "timeout",
                quote!(::core::time::Duration),
                quote!(resolve_timeout),
                ctx.default_name(),
                None,
                &timeout_settings,
                quote!(),
            )
        }
    };
    let (site_ty, site_new) = if circuit_site {
        (quote!(#p::CircuitSite), quote!(#p::CircuitSite::new()))
    } else {
        (quote!(#p::Site<#instance>), quote!(#p::Site::new()))
    };
    let handle = ident(handle, index);
    let spec = layer_args(ctx, name, preset(own_preset, planned), planned.optional, settings);
    let owner = owner(ctx, written);
    Resolve {
        items: quote!(
            static #site: #site_ty = #site_new;
            const #args_item: #p::LayerArgs = #spec;
        ),
        handle,
        call: quote!(#p::#resolver(&#site, &#args_item, #owner)),
        extra,
    }
}

/// A layer's resolution, in parts: the call site's items (its `static` cell and its
/// literals), the call resolving its instance into `handle`, and the statements building
/// its hooks.
struct Resolve {
    items: TokenStream,
    handle: syn::Ident,
    call: TokenStream,
    extra: TokenStream,
}

impl ToTokens for Resolve {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let Resolve { items, handle, call, extra } = self;
        tokens.extend(quote!(#items let #handle = #call; #extra));
    }
}

/// The key expression of a keyable layer; none for `key = none` or no key.
fn key_of(key: Option<&KeyArg>) -> Option<&syn::Expr> {
    key.and_then(KeyArg::expr)
}

/// The instance name: the one written, else the default (see [`Ctx::default_name`]).
fn name(ctx: &Ctx<'_>, written: Option<&syn::LitStr>) -> TokenStream {
    written.map(|n| n.to_token_stream()).unwrap_or_else(|| ctx.default_name())
}

/// A call site's `LayerArgs`: the layer keys as `(key, Value)` entries, which the
/// runtime's config type reads (and validates) once per call site.
fn layer_args(
    ctx: &Ctx<'_>,
    name: TokenStream,
    preset: TokenStream,
    optional: bool,
    settings: &LayerSettings,
) -> TokenStream {
    let p = &ctx.p;
    let entries = settings.0.iter().map(|(key, value, _)| {
        let value = match value {
            Setting::Int(n) => {
                let n = i64::try_from(*n).unwrap_or(i64::MAX);
                quote!(#p::Value::Int(#n))
            }
            Setting::Float(x) => quote!(#p::Value::Float(#x)),
            Setting::Duration(nanos) => {
                quote!(#p::Value::Duration(::core::time::Duration::from_nanos(#nanos)))
            }
            Setting::DurationConst(path) => {
                // Spanned at the path: a `const` of another type is reported there.
                let span = syn::spanned::Spanned::span(path);
                quote_spanned!(span=> #p::Value::Duration(#path))
            }
            Setting::Bool(b) => quote!(#p::Value::Bool(#b)),
            Setting::Text(t) => quote!(#p::Value::Str(#t)),
        };
        quote!((#key, #value))
    });
    quote!(#p::LayerArgs {
        name: #name,
        preset: #preset,
        optional: #optional,
        entries: &[#(#entries),*],
    })
}

fn retry_hooks(ctx: &Ctx<'_>, args: &RetryArgs) -> TokenStream {
    let (p, krate) = (&ctx.p, &ctx.krate);
    let (ok, err) = (ctx.ok_ty(), ctx.err_ty());
    let retry_if = match &args.retry_if {
        Some(f) => predicate(f, &err),
        None => quote!({
            #[allow(unused_imports)]
            use #p::{ByClassify as _, ByDefault as _};
            (&&#p::Probe::<#err>::NEW).default_retry_if()
        }),
    };
    let on_result = match &args.retry_on_result {
        Some(f) => predicate(f, &ok),
        None => quote!(|_: &#ok| false),
    };
    let on_retry = match &args.on_retry {
        Some(f) => quote!(#f),
        None => quote!(|_: &#krate::retry::RetryEvent<'_, #ok, #err>| {}),
    };
    let retry_after = quote!({
        #[allow(unused_imports)]
        use #p::{ByRetryAfter as _, ByDefault as _};
        (&&#p::Probe::<#err>::NEW).default_retry_after()
    });
    quote!(#krate::retry::Hooks::<#ok, #err>::new()
        .retry_if(#retry_if)
        .retry_on_result(#on_result)
        .retry_after(#retry_after)
        .on_retry(#on_retry))
}

/// A predicate hook (`retry_if`, `failure_if`, ...) over `&#arg`. A path is coerced to
/// `fn(&Arg) -> bool` first, so a function taking its argument by value is one type error
/// at the path, showing the expected signature, instead of several inside the pipeline.
/// A closure is passed as written (its argument type is inferred from the hook's bound;
/// the parser refuses one that takes the argument by value).
fn predicate(f: &syn::Expr, arg: &TokenStream) -> TokenStream {
    match f {
        syn::Expr::Path(_) => {
            let span = syn::spanned::Spanned::span(f);
            let checked = format_ident!("__resilience_predicate", span = Span::mixed_site());
            let ty = quote_spanned!(span=> fn(&#arg) -> bool);
            quote!({
                let #checked: #ty = #f;
                #checked
            })
        }
        _ => quote!(#f),
    }
}

fn classifier_value(ctx: &Ctx<'_>, args: &CircuitArgs) -> TokenStream {
    let (p, krate) = (&ctx.p, &ctx.krate);
    let err = ctx.err_ty();
    let ignore_if = match &args.ignore_if {
        Some(f) => predicate(f, &err),
        None => quote!(|_: &#err| false),
    };
    // `failure_if` decides alone; without it, an error type that implements `Classify`
    // counts by its class, any other counts every error.
    let errors = match &args.failure_if {
        Some(f) => {
            let f = predicate(f, &err);
            quote!(#krate::circuit::Predicates::<#err, _, _>::new(#f, #ignore_if))
        }
        None => quote!(#p::ignore_then::<#err>(#ignore_if, {
            #[allow(unused_imports)]
            use #p::{ByClassOutcome as _, ByDefault as _};
            (&&#p::Probe::<#err>::NEW).default_breaker_outcome()
        })),
    };
    match &args.failure_if_ok {
        Some(f) => {
            let ok = ctx.ok_ty();
            let f = predicate(f, &ok);
            quote!(#p::failure_if_ok::<#ok, #err, _>(#errors, #f))
        }
        None => errors,
    }
}

/// Wraps `inner` (a future in async code, a value expression in sync code) in a layer.
fn wrap(
    ctx: &Ctx<'_>,
    planned: &Planned,
    index: usize,
    inner: TokenStream,
    is_async: bool,
    retry_above: bool,
) -> TokenStream {
    let p = &ctx.p;
    let krate = &ctx.krate;
    let layer = quote!(#krate::pipeline::layer);
    match &planned.layer {
        Layer::Retry(_) => {
            let handle = ident("retry", index);
            let hooks = ident("hooks", index);
            let state = ident("state", index);
            let (outcome, done, delay, failed) = (
                ident("outcome", index),
                ident("done", index),
                ident("delay", index),
                ident("failed", index),
            );
            let (attempt, span) = (ident("attempt", index), ident("span", index));
            // Each attempt runs in its own `resilience.attempt` span, inside the call's
            // deadline if the retry has one.
            let (run, sleep) = if is_async {
                (
                    quote!({
                        let #span = #state.attempt_span();
                        let #attempt = ::core::pin::pin!(#p::attempt_async(#span, #inner));
                        #state.attempt_async(#attempt).await
                    }),
                    quote!(#p::sleep(#delay).await),
                )
            } else {
                (quote!(#state.run_attempt(|| #inner)), quote!(#state.sleep_blocking(#delay)))
            };
            let body = quote!({
                let mut #state = #p::RetryLoop::new(&#handle, &#hooks);
                loop {
                    let #outcome = match #state.begin() {
                        #p::Begin::Fail(#failed) => #failed,
                        #p::Begin::Run => #run,
                    };
                    match #state.step(#outcome) {
                        #p::Step::Done(#done) => break #done,
                        #p::Step::Sleep(#delay) => #sleep,
                    }
                }
            });
            if is_async { quote!(async #body) } else { body }
        }
        Layer::Circuit(args) => {
            let handle = ident("circuit", index);
            let classifier = ident("classifier", index);
            match (key_of(args.key.as_ref()), is_async) {
                (Some(key), true) => quote!(#layer::keyed_circuit_async(
                    &#handle,
                    #p::circuit_key(&(#key)),
                    &#classifier,
                    #inner
                )),
                (Some(key), false) => quote!(#layer::keyed_circuit(
                    &#handle,
                    #p::circuit_key(&(#key)),
                    &#classifier,
                    || #inner
                )),
                (None, true) if is_throttle(args) => {
                    quote!(#layer::throttle_async(&#handle, &#classifier, #inner))
                }
                (None, false) if is_throttle(args) => {
                    quote!(#layer::throttle(&#handle, &#classifier, || #inner))
                }
                (None, true) => {
                    quote!(#p::registry_circuit_async(&#handle, &#classifier, #inner))
                }
                (None, false) => quote!(#p::registry_circuit(&#handle, &#classifier, || #inner)),
            }
        }
        Layer::RateLimit(args) => {
            let handle = ident("limiter", index);
            let cost = match &args.cost {
                Some(cost) => quote!(#p::cost(#cost)),
                None => quote!(1),
            };
            match (key_of(args.key.as_ref()), is_async) {
                (Some(key), true) => quote!(#layer::keyed_rate_limit_async(
                    &#handle,
                    #p::rate_key(&(#key)),
                    #cost,
                    #inner
                )),
                (Some(key), false) => quote!(#layer::keyed_rate_limit(
                    &#handle,
                    #p::rate_key(&(#key)),
                    #cost,
                    || #inner
                )),
                (None, true) => quote!(#layer::rate_limit_async(&#handle, #cost, #inner)),
                (None, false) => quote!(#layer::rate_limit(&#handle, #cost, || #inner)),
            }
        }
        Layer::Hedge(_) => {
            // Async only (`validate` refuses a sync function): each hedge builds the
            // attempt below again, sharing the arguments with the first one.
            let handle = ident("hedge", index);
            quote!(#layer::hedge_async(&#handle, || #inner))
        }
        Layer::Bulkhead(_) => {
            let handle = ident("bulkhead", index);
            if is_async {
                quote!(#layer::bulkhead_async(&#handle, #inner))
            } else {
                quote!(#layer::bulkhead(&#handle, || #inner))
            }
        }
        Layer::Timeout(_) => {
            let handle = ident("timeout", index);
            if is_async {
                quote!(#layer::timeout_async(&#handle, #inner))
            } else {
                // The body moves to a worker thread; under a retry each attempt gets its
                // own clone of the arguments.
                let clones = if retry_above {
                    ctx.info
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            ArgName::Ident(i) => {
                                Some(quote!(let #i = ::core::clone::Clone::clone(&#i);))
                            }
                            _ => None,
                        })
                        .collect()
                } else {
                    TokenStream::new()
                };
                quote!({ #clones #layer::timeout_blocking(&#handle, move || #inner) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Errors;
    use crate::stack::{Kind, collect};

    fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> String {
        let Ok(mut item) = syn::parse2::<ItemFn>(item) else { return "bad item".into() };
        let mut errors = Errors::default();
        let stack = collect(kind, args, &mut item.attrs, &mut errors);
        let Ok(info) = crate::func::analyze(&item, kind.name()) else { return "bad fn".into() };
        function(item, &stack, &info).map(|t| t.to_string()).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn signature_and_attributes_are_kept() {
        let out = expand(
            Kind::Retry,
            quote!(max_attempts = 3),
            quote!(
                /// Docs.
                #[inline]
                pub(crate) async fn get<'a, T: Clone>(
                    &self,
                    id: &'a T,
                    x: impl Into<u8>,
                ) -> Result<u8, E>
                where
                    T: Send,
                {
                    Ok(1)
                }
            ),
        );
        assert!(out.starts_with("# [doc = r\" Docs.\"] # [inline] pub (crate) async fn get < 'a , T : Clone > (& self , id : & 'a T , x : impl Into < u8 > ,) -> Result < u8 , E > where T : Send , {"), "{out}");
        assert!(
            out.contains("(:: resilience :: __private :: finisher :: < Result < u8 , E > > ()) (__resilience_result_0)")
        );
        assert!(out.contains("static __RESILIENCE_SITE_0 : :: resilience :: __private :: Site < :: resilience :: __private :: RetryPolicy >"));
        assert!(out.contains("entries : & [(\"max_attempts\" , :: resilience :: __private :: Value :: Int (3i64))]"), "{out}");
    }

    #[test]
    fn stacked_layers_nest_in_written_order() {
        let out = expand(
            Kind::Retry,
            quote!(),
            quote!(
                #[circuit_breaker(name = "svc")]
                #[timeout(2s)]
                async fn f() -> Result<u8, E> {
                    Ok(1)
                }
            ),
        );
        let retry = out.find("RetryLoop :: new").unwrap_or(usize::MAX);
        let circuit = out.find("circuit_async").unwrap_or(usize::MAX);
        let timeout = out.find("timeout_async").unwrap_or(usize::MAX);
        assert!(retry < circuit && circuit < timeout, "{out}");
        assert!(out.contains("name : \"svc\""));
        assert!(out.contains("(\"duration\" , :: resilience :: __private :: Value :: Duration (:: core :: time :: Duration :: from_nanos (2000000000u64)))"), "{out}");
    }

    #[test]
    fn facade_crate_path_is_used_everywhere() {
        let out = expand(
            Kind::Timeout,
            quote!(1s, crate = "facade::res"),
            quote!(
                async fn f() -> Result<u8, E> {
                    Ok(1)
                }
            ),
        );
        assert!(out.contains("facade :: res :: pipeline :: layer :: timeout_async"), "{out}");
        assert!(!out.contains(":: resilience ::"));
    }

    #[test]
    fn async_trait_bodies_are_wrapped_inside_the_pinned_block() {
        let out = expand(
            Kind::Retry,
            quote!(),
            quote!(
                fn get<'life0, 'async_trait>(
                    &'life0 self,
                ) -> Pin<Box<dyn Future<Output = Result<u8, E>> + Send + 'async_trait>>
                {
                    Box::pin(async move {
                        if let Some(__ret) = None::<Result<u8, E>> {
                            return __ret;
                        }
                        let __self = self;
                        let __ret: Result<u8, E> = { __self.get_inner().await };
                        #[allow(unreachable_code)]
                        __ret
                    })
                }
            ),
        );
        assert!(out.contains("Box :: pin (async move { if let Some (__ret) = None :: < Result < u8 , E > > { return __ret ; } let __self = self ;"), "{out}");
        assert!(out.contains("RetryLoop"));
    }

    #[test]
    fn sync_bodies_run_in_a_closure_typed_by_the_return_type() {
        // With a fallback, so that the call takes the pipeline (see the next test).
        let out = expand(
            Kind::CircuitBreaker,
            quote!(fallback = cached),
            quote!(
                fn f(x: u8) -> Result<u8, E> {
                    let y = x?;
                    Ok(y)
                }
            ),
        );
        assert!(out.contains(":: resilience :: __private :: registry_circuit (& __resilience_circuit_0 , & __resilience_classifier_0 , | | :: resilience :: __private :: inner (:: resilience :: __private :: call (| | -> Result < u8 , E > { let y = x ? ; Ok (y) })))"), "{out}");
        assert!(out.contains("concat ! (:: core :: module_path ! () , \"::\" , \"f\")"));
    }

    #[test]
    fn a_lone_sync_circuit_breaker_hands_the_body_to_the_breaker_as_written() {
        let out = expand(
            Kind::CircuitBreaker,
            quote!(),
            quote!(
                fn f(x: u8) -> Result<u8, E> {
                    let y = x?;
                    Ok(y)
                }
            ),
        );
        assert!(out.contains(":: resilience :: __private :: circuit_then (& __RESILIENCE_CALL_0 , :: resilience :: __private :: no_owner , | | :: resilience :: __private :: resolve_circuit (& __RESILIENCE_SITE_0 , & __RESILIENCE_ARGS_0 , :: resilience :: __private :: no_owner) , & __resilience_classifier_0 , | | -> Result < u8 , E > { let y = x ? ; Ok (y) } , (:: resilience :: __private :: finisher :: < Result < u8 , E > > ()))"), "{out}");
        assert!(!out.contains("registry_circuit"), "{out}");
        // Stacked, keyed or async, the call takes the pipeline.
        let stacked = expand(
            Kind::CircuitBreaker,
            quote!(),
            quote!(
                #[bulkhead(max_concurrent = 2)]
                fn f() -> Result<u8, E> {
                    Ok(1)
                }
            ),
        );
        assert!(stacked.contains("registry_circuit") && !stacked.contains("circuit_then"));
        let keyed = expand(
            Kind::CircuitBreaker,
            quote!(key = x),
            quote!(
                fn f(x: u8) -> Result<u8, E> {
                    Ok(x)
                }
            ),
        );
        assert!(keyed.contains("keyed_circuit") && !keyed.contains("circuit_then"));
        let asynchronous = expand(
            Kind::CircuitBreaker,
            quote!(),
            quote!(
                async fn f() -> Result<u8, E> {
                    Ok(1)
                }
            ),
        );
        assert!(!asynchronous.contains("circuit_then"), "{asynchronous}");
    }

    #[test]
    fn methods_are_named_after_self_unless_named() {
        let out = expand(
            Kind::CircuitBreaker,
            quote!(),
            quote!(
                #[rate_limit(name = "shared", requests_per_second = 1)]
                #[timeout(1s)]
                async fn get(&self) -> Result<u8, E> {
                    Ok(1)
                }
            ),
        );
        let by_self =
            "| | :: core :: option :: Option :: Some (:: core :: any :: type_name :: < Self > ())";
        assert_eq!(out.matches(by_self).count(), 1, "{out}");
        assert!(out.contains("name : \"get\""), "{out}");
        assert!(out.contains("name : \"shared\""), "{out}");
        assert_eq!(out.matches(":: resilience :: __private :: no_owner").count(), 2, "{out}");
        assert!(!out.contains("module_path"), "{out}");
    }

    #[test]
    fn fallback_receives_the_arguments() {
        let out = expand(
            Kind::CircuitBreaker,
            quote!(fallback = Self::cached),
            quote!(
                async fn f(&self, id: u64) -> u8 {
                    1
                }
            ),
        );
        assert!(out.contains("value_or_fallback"), "{out}");
        assert!(
            out.contains("let __resilience_fallback_0 = Self :: cached (self , id) ;"),
            "{out}"
        );
        assert!(
            out.contains(
                "(& & :: resilience :: __private :: fallback_probe (& __resilience_fallback_0)) . async_fallback (__resilience_fallback_0) . await"
            ),
            "{out}"
        );
        assert!(!out.contains("finisher"));
    }

    #[test]
    fn a_timeout_const_is_read_by_path() {
        let out = expand(
            Kind::Timeout,
            quote!(config::TIMEOUT),
            quote!(
                async fn f() -> Result<u8, E> {
                    Ok(1)
                }
            ),
        );
        assert!(
            out.contains(
                "(\"duration\" , :: resilience :: __private :: Value :: Duration (config :: TIMEOUT))"
            ),
            "{out}"
        );
    }

    #[test]
    fn predicate_paths_are_coerced_to_fn_pointers() {
        let out = expand(
            Kind::Retry,
            quote!(retry_if = is_busy),
            quote!(
                fn f() -> Result<u8, E> {
                    Ok(1)
                }
            ),
        );
        assert!(out.contains("let __resilience_predicate : fn (& :: resilience :: __private :: ErrOf < Result < u8 , E > >) -> bool = is_busy ;"), "{out}");
    }

    #[test]
    fn sync_timeout_under_retry_clones_arguments() {
        let out = expand(
            Kind::Retry,
            quote!(),
            quote!(
                #[timeout(1s)]
                fn f(url: String) -> Result<u8, E> {
                    Ok(1)
                }
            ),
        );
        assert!(out.contains("let url = :: core :: clone :: Clone :: clone (& url) ; :: resilience :: pipeline :: layer :: timeout_blocking (& __resilience_timeout_1 , move | |"), "{out}");
    }
}
