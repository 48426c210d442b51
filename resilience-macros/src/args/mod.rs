//! Parsing of attribute arguments into typed structs: the four layer attributes in
//! `layer`, `#[timeout]` and `#[resilient]` in files of their own.
//!
//! Every value keeps the span of the user's token so that errors point at it. Parsing
//! goes on after an error, so one compile reports every bad argument at once.

mod fallback;
pub(crate) mod keys;
mod layer;
mod resilient;
mod suggest;
mod timeout;

pub(crate) use fallback::{FallbackArgs, On};
pub(crate) use keys::{FloatRange, Kind};
pub(crate) use layer::{BulkheadArgs, CircuitArgs, HedgeArgs, RateLimitArgs, RetryArgs};
pub(crate) use resilient::ResilientArgs;

pub(crate) use timeout::TimeoutArgs;

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

use crate::duration::{self, DurationLit};

/// Accumulates errors so that every problem is reported in one compile.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(existing) => existing.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Keeps the value, or records the error and returns `None`.
    pub(crate) fn ok<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    #[cfg(test)]
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    pub(crate) fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}

/// `key = expr` of a keyable layer (`#[circuit_breaker]`, `#[rate_limit]`) or of
/// `#[resilient]`: one instance per value of `expr`, or `key = none`, one instance for
/// every tenant, written out.
#[derive(Clone)]
pub(crate) enum KeyArg {
    /// `key = expr`.
    Expr(Expr),
    /// `key = none`.
    None,
}

impl KeyArg {
    /// Reads `key = ..` of `#[attr]`: `none`, or an expression over the arguments. A
    /// literal is refused: a constant key puts every tenant in one circuit or bucket.
    pub(crate) fn parse(attr: &str, value: &Expr) -> syn::Result<KeyArg> {
        match value {
            Expr::Path(p) if p.qself.is_none() && p.path.is_ident("none") => Ok(KeyArg::None),
            Expr::Lit(syn::ExprLit { lit, .. }) => {
                let shown = quote::ToTokens::to_token_stream(lit).to_string();
                Err(syn::Error::new_spanned(
                    value,
                    format!(
                        "`key` in `#[{attr}]` is the expression that tells tenants apart, and the constant {shown} puts every call in one {}: key by the tenant (`key = shop`, `key = shop.domain`, `key = user.id`), or write `key = none` for one instance shared by all calls",
                        match attr {
                            "rate_limit" => "bucket",
                            "circuit_breaker" => "circuit",
                            _ => "circuit and one bucket",
                        }
                    ),
                ))
            }
            _ => Ok(KeyArg::Expr(value.clone())),
        }
    }

    /// The key expression, `None` for `key = none`.
    pub(crate) fn expr(&self) -> Option<&Expr> {
        match self {
            KeyArg::Expr(e) => Some(e),
            KeyArg::None => None,
        }
    }
}

/// The tenant a built-in preset sets its limits per (`Some("shop")` for `shopify`).
pub(crate) fn preset_tenant(preset: &str) -> Option<&'static str> {
    crate::preset_names::PER_TENANT
        .iter()
        .find(|(name, _)| *name == preset)
        .map(|(_, tenant)| *tenant)
}

/// The error for a per-tenant preset used without a key.
pub(crate) fn missing_key(attr: &str, preset: &LitStr, tenant: &str) -> syn::Error {
    let name = preset.value();
    let (shared, it) = match attr {
        "circuit_breaker" => {
            (format!("one circuit (one {tenant}'s failures would open it for all)"), "it")
        }
        "rate_limit" => ("one bucket".to_owned(), "it"),
        _ => (
            format!(
                "one circuit and one bucket (one {tenant}'s failures would open the circuit for all)"
            ),
            "them",
        ),
    };
    syn::Error::new(
        preset.span(),
        format!(
            "preset `{name}` sets its limits per {tenant}: without a key, `#[{attr}]` gives every {tenant} {shared}; write `#[{attr}(preset = \"{name}\", key = {tenant})]` (the expression naming the {tenant}), or `key = none` to share {it} on purpose"
        ),
    )
}

/// One argument: `key`, `key = value` or `key(...)`.
pub(crate) struct Entry {
    pub(crate) key: Ident,
    pub(crate) value: EntryValue,
}

pub(crate) enum EntryValue {
    /// `key` alone.
    Flag,
    /// `key = expr`.
    Assign(Expr),
    /// `key(tokens)`.
    List(TokenStream),
}

impl Entry {
    pub(crate) fn name(&self) -> String {
        self.key.unraw().to_string()
    }

    /// The value of `key = value`, or an error showing that form.
    pub(crate) fn assigned(&self, attr: &str, example: &str) -> syn::Result<&Expr> {
        match &self.value {
            EntryValue::Assign(expr) => Ok(expr),
            _ => Err(syn::Error::new(
                self.key.span(),
                format!(
                    "`{}` in `#[{attr}]` takes a value: write `{} = {example}`",
                    self.name(),
                    self.name()
                ),
            )),
        }
    }
}

/// Splits `a = 1, b(..), c` into entries. Fails only on malformed syntax.
/// Parses the `key = value` arguments of attribute `attr` into `A`: unknown and duplicate
/// keys are reported here, once for every attribute; `set` reads one entry. Every problem
/// is recorded in `errors` and parsing goes on, so one compile reports them all.
pub(crate) fn parse_keyed<A: Default>(
    tokens: TokenStream,
    errors: &mut Errors,
    attr: &str,
    keys: &[&str],
    set: fn(&mut A, &Entry) -> syn::Result<()>,
) -> A {
    let mut args = A::default();
    let Some(entries) = errors.ok(parse_entries(tokens)) else { return args };
    let mut seen = Seen::default();
    for entry in &entries {
        if !keys.contains(&entry.name().as_str()) {
            errors.push(unknown(attr, entry, keys));
            continue;
        }
        if !seen.first(attr, entry, errors) {
            continue;
        }
        let result = set(&mut args, entry);
        errors.ok(result);
    }
    args
}

pub(crate) fn parse_entries(tokens: TokenStream) -> syn::Result<Vec<Entry>> {
    let parser = |input: ParseStream<'_>| {
        let mut entries = Vec::new();
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            let value = if input.peek(Token![=]) {
                let _eq: Token![=] = input.parse()?;
                EntryValue::Assign(input.parse()?)
            } else if input.peek(syn::token::Paren) {
                let group: proc_macro2::Group = input.parse()?;
                EntryValue::List(group.stream())
            } else {
                EntryValue::Flag
            };
            entries.push(Entry { key, value });
            if input.is_empty() {
                break;
            }
            let _comma: Token![,] = input.parse()?;
        }
        Ok(entries)
    };
    parser.parse2(tokens)
}

/// The duplicate check shared by every attribute: `true` the first time a key is seen.
#[derive(Default)]
pub(crate) struct Seen(Vec<String>);

impl Seen {
    pub(crate) fn first(&mut self, attr: &str, entry: &Entry, errors: &mut Errors) -> bool {
        let name = entry.name();
        if self.0.contains(&name) {
            errors.push(syn::Error::new(
                entry.key.span(),
                format!("duplicate argument `{name}` in `#[{attr}]`; give it once"),
            ));
            return false;
        }
        self.0.push(name);
        true
    }
}

/// The "unknown argument" error, with the valid keys and the closest one (see
/// [`suggest`]).
pub(crate) fn unknown(attr: &str, entry: &Entry, valid: &[&str]) -> syn::Error {
    let name = entry.name();
    let list = valid.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
    let hint = suggest::hint(attr, entry, valid);
    syn::Error::new(
        entry.key.span(),
        format!("unknown argument `{name}` in `#[{attr}]`; expected one of: {list}{hint}"),
    )
}

pub(crate) use suggest::closest;

fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

/// A whole number with a lower bound, e.g. `max_attempts = 3`.
pub(crate) fn int(attr: &str, key: &str, expr: &Expr, min: u64, max: u64) -> syn::Result<u64> {
    let wrong = || {
        syn::Error::new_spanned(
            expr,
            format!("`{key}` in `#[{attr}]` expects a whole number, like `{key} = {}`", min.max(3)),
        )
    };
    if let Expr::Unary(unary) = expr
        && matches!(unary.op, syn::UnOp::Neg(_))
    {
        return Err(syn::Error::new_spanned(
            expr,
            format!("`{key}` in `#[{attr}]` must be at least {min} (got a negative number)"),
        ));
    }
    let Some(Lit::Int(int)) = literal(expr) else { return Err(wrong()) };
    if !int.suffix().is_empty() && !matches!(int.suffix(), "u32" | "u64" | "usize") {
        return Err(syn::Error::new(
            int.span(),
            format!(
                "`{key}` in `#[{attr}]` is a count, not a duration: write `{key} = {}`",
                int.base10_digits()
            ),
        ));
    }
    let value: u64 = int.base10_digits().parse().map_err(|_| {
        syn::Error::new(int.span(), format!("`{key}` in `#[{attr}]` must be at most {max}"))
    })?;
    if value < min {
        return Err(syn::Error::new(
            int.span(),
            format!("`{key}` in `#[{attr}]` must be at least {min} (got {value})"),
        ));
    }
    if value > max {
        return Err(syn::Error::new(
            int.span(),
            format!("`{key}` in `#[{attr}]` must be at most {max} (got {value})"),
        ));
    }
    Ok(value)
}

/// A `u32` count of at least 1.
pub(crate) fn count(attr: &str, key: &str, expr: &Expr) -> syn::Result<u32> {
    int(attr, key, expr, 1, u64::from(u32::MAX - 1)).map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// A number in a range, e.g. `multiplier = 2.0` or `failure_rate = 0.5`.
pub(crate) fn float(attr: &str, key: &str, expr: &Expr, range: &FloatRange) -> syn::Result<f64> {
    let out_of_range = |got: &str| {
        syn::Error::new_spanned(
            expr,
            format!("`{key}` in `#[{attr}]` must be {} (got {got})", range.text),
        )
    };
    if let Expr::Unary(unary) = expr
        && matches!(unary.op, syn::UnOp::Neg(_))
    {
        return Err(out_of_range("a negative number"));
    }
    let (digits, suffix) = match literal(expr) {
        Some(Lit::Float(f)) => (f.base10_digits().to_owned(), f.suffix().to_owned()),
        Some(Lit::Int(i)) => (i.base10_digits().to_owned(), i.suffix().to_owned()),
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                format!("`{key}` in `#[{attr}]` expects a number, like `{key} = 0.5`"),
            ));
        }
    };
    if !suffix.is_empty() && suffix != "f64" && suffix != "f32" {
        return Err(syn::Error::new_spanned(
            expr,
            format!(
                "`{key}` in `#[{attr}]` is a plain number, not a duration: write `{key} = {digits}`"
            ),
        ));
    }
    let value: f64 = digits.parse().map_err(|_| out_of_range(&digits))?;
    let above_low = if range.low_inclusive { value >= range.low } else { value > range.low };
    if !value.is_finite() || !above_low || value > range.high {
        return Err(out_of_range(&digits));
    }
    Ok(value)
}

/// A duration literal.
pub(crate) fn duration(attr: &str, key: &str, expr: &Expr) -> syn::Result<DurationLit> {
    duration::parse(attr, key, expr)
}

/// A string literal, e.g. `name = "shopify"`.
pub(crate) fn string(attr: &str, key: &str, expr: &Expr) -> syn::Result<LitStr> {
    match literal(expr) {
        Some(Lit::Str(s)) if !s.value().is_empty() => Ok(s.clone()),
        Some(Lit::Str(s)) => {
            Err(syn::Error::new(s.span(), format!("`{key}` in `#[{attr}]` must not be empty")))
        }
        _ => Err(syn::Error::new_spanned(
            expr,
            format!("`{key}` in `#[{attr}]` expects a string literal, like `{key} = \"shopify\"`"),
        )),
    }
}

/// One identifier among `choices`, e.g. `backoff = exponential` (or the same as a
/// string, `backend = "redis"`).
pub(crate) fn choice(
    attr: &str,
    key: &str,
    expr: &Expr,
    choices: &[&str],
) -> syn::Result<(String, Span)> {
    let list = choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    if let Expr::Path(path) = expr
        && let Some(ident) = path.path.get_ident()
    {
        let name = ident.unraw().to_string();
        if choices.contains(&name.as_str()) {
            return Ok((name, ident.span()));
        }
    }
    if let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = expr
        && choices.contains(&s.value().as_str())
    {
        return Ok((s.value(), s.span()));
    }
    Err(syn::Error::new_spanned(expr, format!("`{key}` in `#[{attr}]` must be one of: {list}")))
}

/// `preset = "shopify"` (a built-in name, checked here) or `preset = "user:billing"` (a
/// preset registered at run time).
pub(crate) fn preset(attr: &str, expr: &Expr) -> syn::Result<LitStr> {
    let lit = string(attr, "preset", expr)?;
    crate::preset::check(attr, &lit)?;
    Ok(lit)
}

/// A path to a function, e.g. `on_retry = log_retry`.
pub(crate) fn path(attr: &str, key: &str, expr: &Expr) -> syn::Result<Expr> {
    match expr {
        Expr::Path(_) => Ok(expr.clone()),
        _ => Err(syn::Error::new_spanned(
            expr,
            format!("`{key}` in `#[{attr}]` expects a path to a function, like `{key} = my_fn`"),
        )),
    }
}

/// A path to a function or a closure, e.g. `retry_if = |e: &MyError| e.is_transient()`.
pub(crate) fn path_or_closure(attr: &str, key: &str, expr: &Expr) -> syn::Result<Expr> {
    match expr {
        Expr::Path(_) | Expr::Closure(_) => Ok(expr.clone()),
        _ => Err(syn::Error::new_spanned(
            expr,
            format!(
                "`{key}` in `#[{attr}]` expects a path to a function or a closure, like `{key} = is_transient` or `{key} = |e| e.is_transient()`"
            ),
        )),
    }
}

/// A predicate over the error (or the `Ok` value): a path to a function, or a closure
/// taking its argument by reference. A closure whose argument is written by value is
/// refused here, with the corrected signature.
pub(crate) fn predicate(attr: &str, key: &str, expr: &Expr) -> syn::Result<Expr> {
    let expr = path_or_closure(attr, key, expr)?;
    if let Expr::Closure(closure) = &expr
        && let Some(syn::Pat::Type(typed)) = closure.inputs.first()
        && !matches!(&*typed.ty, syn::Type::Reference(_) | syn::Type::Infer(_))
    {
        let tidy = |t: String| {
            t.replace(" :: ", "::").replace(" <", "<").replace("< ", "<").replace(" >", ">")
        };
        let ty = tidy(quote::ToTokens::to_token_stream(&typed.ty).to_string());
        let pat = tidy(quote::ToTokens::to_token_stream(&typed.pat).to_string());
        let shown = format!("|{pat}: &{ty}|");
        return Err(syn::Error::new_spanned(
            &typed.ty,
            format!(
                "`{key}` in `#[{attr}]` receives its argument by reference, so that the value stays available after the check: write `{shown} ..`"
            ),
        ));
    }
    Ok(expr)
}

/// `crate = "path"`, for facades that re-export `resilience`.
pub(crate) fn crate_path(attr: &str, expr: &Expr) -> syn::Result<syn::Path> {
    let lit = string(attr, "crate", expr)?;
    lit.parse::<syn::Path>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`crate` in `#[{attr}]` expects a path, like `crate = \"my_facade::resilience\"`"
            ),
        )
    })
}

/// Arguments given as `key(...)` for a key that takes `key = value`.
pub(crate) fn no_list(attr: &str, entry: &Entry) -> Option<syn::Error> {
    match entry.value {
        EntryValue::List(_) => Some(syn::Error::new(
            entry.key.span(),
            format!("`{}` in `#[{attr}]` is written `{} = value`", entry.name(), entry.name()),
        )),
        _ => None,
    }
}

/// The key and the assigned value of a `key = value` entry, refusing `key(..)` and a bare
/// `key` with the attribute's example for that key.
pub(crate) fn key_value<'e>(
    attr: &str,
    entry: &'e Entry,
    layer: &[(&str, Kind, &'static str)],
    example: impl FnOnce(&str) -> &'static str,
) -> syn::Result<(String, &'e Expr)> {
    if let Some(err) = no_list(attr, entry) {
        return Err(err);
    }
    let key = entry.name();
    let example =
        layer.iter().find(|(k, _, _)| *k == key).map_or_else(|| example(&key), |(_, _, e)| *e);
    let value = entry.assigned(attr, example)?;
    Ok((key, value))
}

/// A layer key's value, as the runtime's `resilience::config::Value` receives it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Setting {
    Int(u64),
    Float(f64),
    /// Nanoseconds.
    Duration(u64),
    /// The path of a `const` of type `Duration` (`#[timeout(TIMEOUT)]`).
    DurationConst(syn::Path),
    Bool(bool),
    Text(String),
}

/// The layer keys given to one attribute, in written order, each with the span of its
/// value: what the expansion hands to the runtime's config type.
#[derive(Default)]
pub(crate) struct LayerSettings(pub(crate) Vec<(String, Setting, Span)>);

impl LayerSettings {
    /// The value of `key`, with its span.
    pub(crate) fn get(&self, key: &str) -> Option<(&Setting, Span)> {
        self.0.iter().find(|(k, _, _)| k == key).map(|(_, v, span)| (v, *span))
    }

    /// The text of a `Choice` or `Text` key.
    pub(crate) fn text(&self, key: &str) -> Option<(&str, Span)> {
        match self.get(key) {
            Some((Setting::Text(t), span)) => Some((t.as_str(), span)),
            _ => None,
        }
    }

    /// The nanoseconds of a duration key.
    pub(crate) fn nanos(&self, key: &str) -> Option<(u64, Span)> {
        match self.get(key) {
            Some((Setting::Duration(n), span)) => Some((*n, span)),
            _ => None,
        }
    }

    /// Reads `value` for the layer key `key` of the table `keys`; `false` if `key` is
    /// not a layer key.
    pub(crate) fn set(
        &mut self,
        attr: &str,
        keys: &[(&str, Kind, &str)],
        key: &str,
        value: &Expr,
    ) -> syn::Result<bool> {
        let Some((_, kind, _)) = keys.iter().find(|(k, _, _)| *k == key) else { return Ok(false) };
        let setting = layer_value(attr, key, kind, value)?;
        self.0.push((key.to_owned(), setting, syn::spanned::Spanned::span(value)));
        Ok(true)
    }
}

/// Reads a layer key's literal by its kind, checking what can be checked at compile time.
fn layer_value(attr: &str, key: &str, kind: &Kind, value: &Expr) -> syn::Result<Setting> {
    Ok(match kind {
        Kind::Count => Setting::Int(u64::from(count(attr, key, value)?)),
        Kind::Float(range) => Setting::Float(float(attr, key, value, range)?),
        Kind::Duration => Setting::Duration(duration(attr, key, value)?.nanos),
        Kind::Bool => match literal(value) {
            Some(Lit::Bool(b)) => Setting::Bool(b.value),
            _ => {
                return Err(syn::Error::new_spanned(
                    value,
                    format!(
                        "`{key}` in `#[{attr}]` expects `true` or `false`, like `{key} = false`"
                    ),
                ));
            }
        },
        Kind::Choice(choices) => Setting::Text(choice(attr, key, value, choices)?.0),
        Kind::Text => Setting::Text(string(attr, key, value)?.value()),
        Kind::Window => window(attr, key, value)?,
        Kind::Jitter => Setting::Text(jitter(attr, value)?),
        Kind::HedgeDelay => hedge_delay(attr, key, value)?,
    })
}

/// `delay = 50ms` (a duration) or `delay = p95` / `delay = "p99.9"` (a percentile in
/// `(0, 100)` of recent latencies).
fn hedge_delay(attr: &str, key: &str, value: &Expr) -> syn::Result<Setting> {
    let percentile = match value {
        Expr::Path(path) => path.path.get_ident().map(|i| (i.unraw().to_string(), i.span())),
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Some((s.value(), s.span())),
        _ => None,
    };
    if let Some((text, span)) = percentile {
        let number = text.strip_prefix('p').map(|n| n.replace('_', ".")).unwrap_or_default();
        return match number.parse::<f64>() {
            Ok(p) if p > 0.0 && p < 100.0 => Ok(Setting::Text(format!("p{number}"))),
            Ok(_) => Err(syn::Error::new(
                span,
                format!(
                    "the percentile `{key}` in `#[{attr}]` must be above 0 and below 100, like `{key} = p95`"
                ),
            )),
            Err(_) => Err(syn::Error::new(
                span,
                format!(
                    "`{key}` in `#[{attr}]` is a duration (`{key} = 50ms`) or a percentile of recent latencies (`{key} = p95`, `{key} = p99_9` for p99.9)"
                ),
            )),
        };
    }
    match duration(attr, key, value) {
        Ok(d) => Ok(Setting::Duration(d.nanos)),
        Err(e) => Err(syn::Error::new_spanned(
            value,
            format!("{e}; or a percentile of recent latencies, like `{key} = p95`"),
        )),
    }
}

/// `window = 100` (calls) or `window = 60s` (a duration).
fn window(attr: &str, key: &str, value: &Expr) -> syn::Result<Setting> {
    if let Some(Lit::Int(int)) = literal(value)
        && int.suffix().is_empty()
    {
        return Ok(Setting::Int(u64::from(count(attr, key, value)?)));
    }
    match duration(attr, key, value) {
        Ok(d) => Ok(Setting::Duration(d.nanos)),
        Err(_) => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` in `#[{attr}]` is a number of calls (`{key} = 100`) or a duration (`{key} = 60s`)"
            ),
        )),
    }
}

/// `jitter = none | full | equal | proportional(f) | ratio(low)`, as the runtime spells it.
fn jitter(attr: &str, value: &Expr) -> syn::Result<String> {
    let expected = format!(
        "`jitter` in `#[{attr}]` must be one of: `none`, `full`, `equal`, `proportional(0.25)`, `ratio(0.5)`"
    );
    let Expr::Call(call) = value else {
        let (name, _) = choice(attr, "jitter", value, &["none", "full", "equal"])
            .map_err(|_| syn::Error::new_spanned(value, &expected))?;
        return Ok(name);
    };
    let func = match &*call.func {
        Expr::Path(p) if p.path.is_ident("proportional") => "proportional",
        Expr::Path(p) if p.path.is_ident("ratio") => "ratio",
        _ => return Err(syn::Error::new_spanned(value, expected)),
    };
    let mut args = call.args.iter();
    let (Some(factor), None) = (args.next(), args.next()) else {
        return Err(syn::Error::new_spanned(
            value,
            format!("`{func}` jitter takes one factor, like `jitter = {func}(0.5)`"),
        ));
    };
    let range = if func == "ratio" {
        FloatRange { low: 0.0, low_inclusive: true, high: 1.0, text: "a fraction from 0.0 to 1.0" }
    } else {
        FloatRange {
            low: 0.0,
            low_inclusive: false,
            high: 1.0,
            text: "a factor above 0.0 and at most 1.0",
        }
    };
    let f = float(attr, func, factor, &range)?;
    Ok(format!("{func}({f})"))
}

/// The keys of an attribute: `first` (the instance name), the layer's, then `rest`.
pub(crate) fn all_keys(
    first: &[&'static str],
    layer: &[(&'static str, Kind, &str)],
    rest: &[&'static str],
) -> Vec<&'static str> {
    first.iter().chain(layer.iter().map(|(k, _, _)| k)).chain(rest).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn entries_of_every_form() -> syn::Result<()> {
        let entries = parse_entries(quote!(a = 1, b(2, 3), c, crate = "x"))?;
        let names: Vec<String> = entries.iter().map(Entry::name).collect();
        assert_eq!(names, ["a", "b", "c", "crate"]);
        assert!(matches!(entries.get(1).map(|e| &e.value), Some(EntryValue::List(_))));
        assert!(matches!(entries.get(2).map(|e| &e.value), Some(EntryValue::Flag)));
        Ok(())
    }

    #[test]
    fn ints_check_range_and_suffix() {
        let e = |s: &str| -> String {
            let expr: Expr =
                syn::parse_str(s).unwrap_or_else(|_| Expr::Verbatim(TokenStream::new()));
            match count("retry", "max_attempts", &expr) {
                Ok(v) => v.to_string(),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(e("3"), "3");
        assert_eq!(e("0"), "`max_attempts` in `#[retry]` must be at least 1 (got 0)");
        assert!(e("3s").contains("is a count, not a duration: write `max_attempts = 3`"));
        assert!(e("-1").contains("got a negative number"));
        assert!(e("\"3\"").contains("expects a whole number"));
        assert!(e("99999999999").contains("must be at most"));
    }

    #[test]
    fn floats_check_range() {
        let range =
            FloatRange { low: 1.0, low_inclusive: true, high: f64::MAX, text: "at least 1.0" };
        let f = |s: &str| -> String {
            let expr: Expr =
                syn::parse_str(s).unwrap_or_else(|_| Expr::Verbatim(TokenStream::new()));
            match float("retry", "multiplier", &expr, &range) {
                Ok(v) => v.to_string(),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(f("2.0"), "2");
        assert_eq!(f("2"), "2");
        assert_eq!(f("0.5"), "`multiplier` in `#[retry]` must be at least 1.0 (got 0.5)");
        assert!(f("2s").contains("not a duration"));
    }

    fn layer(key: &str, src: &str) -> String {
        let expr: Expr = syn::parse_str(src).unwrap_or_else(|_| Expr::Verbatim(TokenStream::new()));
        let mut settings = LayerSettings::default();
        match settings.set("retry", keys::RETRY, key, &expr) {
            Ok(true) => format!("{:?}", settings.0.first().map(|(_, v, _)| v)),
            Ok(false) => "not a layer key".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn layer_keys_are_read_by_kind() {
        assert_eq!(layer("jitter", "ratio(0.5)"), "Some(Text(\"ratio(0.5)\"))");
        assert_eq!(layer("jitter", "proportional(0.25)"), "Some(Text(\"proportional(0.25)\"))");
        assert!(layer("jitter", "ratio(1.5)").contains("must be a fraction from 0.0 to 1.0"));
        assert_eq!(layer("honor_retry_after", "false"), "Some(Bool(false))");
        assert!(layer("honor_retry_after", "1").contains("expects `true` or `false`"));
        assert_eq!(layer("initial_delay", "2min"), "Some(Duration(120000000000))");
        assert_eq!(layer("retry_if", "f"), "not a layer key");
    }
}
