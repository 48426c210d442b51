//! `#[fallback(handler, on = "rejected" | "any" | predicate)]` arguments.

use proc_macro2::{Span, TokenStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, Token};

use super::Errors;

const ATTR: &str = "fallback";

/// The keys after the handler.
pub(crate) const KEYS: &[&str] = &["on", "crate"];

/// Which final errors the fallback answers.
pub(crate) enum On {
    /// `on = "rejected"` (the default): a layer's refusal only.
    Rejected,
    /// `on = "any"`: every error.
    Any,
    /// `on = is_outage`: the errors a predicate over `&E` picks.
    Predicate(Expr),
}

/// Parsed `#[fallback(...)]`.
pub(crate) struct FallbackArgs {
    pub(crate) krate: Option<syn::Path>,
    /// The function called in place of the failed call, with the same arguments.
    pub(crate) handler: Option<Expr>,
    pub(crate) on: On,
    /// The `on = ..` value, for errors.
    pub(crate) on_span: Option<Span>,
}

impl FallbackArgs {
    /// Parses the arguments, recording every problem in `errors`; `span` is the
    /// attribute's, for the "missing handler" error.
    pub(crate) fn parse(tokens: TokenStream, span: Span, errors: &mut Errors) -> FallbackArgs {
        let mut args = FallbackArgs { krate: None, handler: None, on: On::Rejected, on_span: None };
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        let Some(items) = errors.ok(syn::parse::Parser::parse2(parser, tokens)) else {
            return args;
        };
        let mut seen_on = false;
        for (index, item) in items.iter().enumerate() {
            match item {
                Expr::Path(_) if index == 0 => args.handler = Some(item.clone()),
                Expr::Assign(assign) => {
                    let key = match &*assign.left {
                        Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
                        _ => None,
                    };
                    match key.as_deref() {
                        Some("on") if !seen_on => {
                            seen_on = true;
                            args.on_span = Some(assign.right.span());
                            if let Some(on) = errors.ok(on(&assign.right)) {
                                args.on = on;
                            }
                        }
                        Some("on") => errors.push(syn::Error::new_spanned(
                            &assign.left,
                            "`on` is set twice in `#[fallback]`: keep one",
                        )),
                        Some("crate") => {
                            args.krate = errors.ok(super::crate_path(ATTR, &assign.right));
                        }
                        Some("handler") => errors.push(syn::Error::new_spanned(
                            assign,
                            "the handler of `#[fallback]` comes first, without a key: write `#[fallback(cached_value, on = \"any\")]`",
                        )),
                        _ => {
                            let written = quote::ToTokens::to_token_stream(&assign.left).to_string();
                            let hint = super::closest(&written, KEYS)
                                .map(|k| format!("; did you mean `{k}`?"))
                                .unwrap_or_default();
                            errors.push(syn::Error::new_spanned(
                                &assign.left,
                                format!(
                                    "unknown argument `{written}` in `#[fallback]`; expected the handler first, then `on` or `crate`{hint}"
                                ),
                            ));
                        }
                    }
                }
                _ => errors.push(syn::Error::new_spanned(
                    item,
                    "`#[fallback]` takes the path of the handler first, then `on = ..`: write `#[fallback(cached_value)]` or `#[fallback(cached_value, on = \"any\")]`",
                )),
            }
        }
        if args.handler.is_none() && items.first().is_none_or(|i| !matches!(i, Expr::Path(_))) {
            errors.push(syn::Error::new(
                span,
                "`#[fallback]` needs a handler, a function taking the same arguments and returning the same type: write `#[fallback(cached_value)]`",
            ));
        }
        args
    }
}

fn on(expr: &Expr) -> syn::Result<On> {
    if let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = expr {
        return match s.value().as_str() {
            "rejected" => Ok(On::Rejected),
            "any" => Ok(On::Any),
            other => Err(syn::Error::new_spanned(
                s,
                format!(
                    "`on` in `#[fallback]` must be \"rejected\" (a layer refused the call: open circuit, rate limit, full bulkhead, timeout), \"any\" (every error), or a predicate over `&E` like `on = is_outage`; got \"{other}\""
                ),
            )),
        };
    }
    match expr {
        Expr::Path(_) | Expr::Closure(_) => Ok(On::Predicate(super::predicate(ATTR, "on", expr)?)),
        _ => Err(syn::Error::new_spanned(
            expr,
            "`on` in `#[fallback]` must be \"rejected\", \"any\", or a predicate over `&E` (a path or a closure), like `on = is_outage` or `on = |e: &MyError| e.is_outage()`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (FallbackArgs, Option<String>) {
        let mut errors = Errors::default();
        let args = FallbackArgs::parse(tokens, Span::call_site(), &mut errors);
        (args, errors.into_error().map(|e| e.to_string()))
    }

    #[test]
    fn handler_and_on() {
        let (args, err) = parse(quote!(Self::cached, on = "any"));
        assert!(err.is_none(), "{err:?}");
        assert!(args.handler.is_some() && matches!(args.on, On::Any));
        let (args, err) = parse(quote!(cached));
        assert!(err.is_none() && matches!(args.on, On::Rejected));
        let (args, err) = parse(quote!(cached, on = |e: &E| e.is_outage()));
        assert!(err.is_none() && matches!(args.on, On::Predicate(_)));
    }

    #[test]
    fn errors_name_the_accepted_forms() {
        let (_, err) = parse(quote!(cached, on = "sometimes"));
        assert!(err.is_some_and(|e| e.contains("\"rejected\"") && e.contains("\"sometimes\"")));
        let (_, err) = parse(quote!());
        assert!(err.is_some_and(|e| e.contains("needs a handler")));
        let (_, err) = parse(quote!(cached, onn = "any"));
        assert!(err.is_some_and(|e| e.contains("did you mean `on`")), "typo");
        let (_, err) = parse(quote!(cached, on = 3));
        assert!(err.is_some());
        let (_, err) = parse(quote!(cached, on = |e: E| true));
        assert!(err.is_some_and(|e| e.contains("by reference")));
    }
}
