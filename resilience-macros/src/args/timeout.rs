//! `#[timeout(5s)]` / `#[timeout(duration = 5s)]` arguments, or the path of a `const` of
//! type `Duration` in either place: `#[timeout(TIMEOUT)]`.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, Token};

use super::{Errors, Seen, keys};
use crate::duration::DurationLit;
use crate::grammar;

const ATTR: &str = "timeout";

/// What the duration may be, for error messages.
const FORMS: &str = "a duration literal like `5s` or `250ms`, or the path of a `const` of type `std::time::Duration` (`const TIMEOUT: Duration = Duration::from_secs(5);` then `#[timeout(TIMEOUT)]`)";

/// Parsed `#[timeout(...)]`.
#[derive(Default)]
pub(crate) struct TimeoutArgs {
    pub(crate) krate: Option<syn::Path>,
    /// A duration literal.
    pub(crate) duration: Option<DurationLit>,
    /// The path of a `const` of type `Duration`, read when the call site resolves.
    pub(crate) constant: Option<syn::Path>,
}

impl TimeoutArgs {
    /// Parses the arguments, recording every problem in `errors`. `span` is the
    /// attribute's, for the "missing duration" error; a duration is `required` unless a
    /// preset can supply it.
    pub(crate) fn parse(
        tokens: TokenStream,
        span: Span,
        required: bool,
        errors: &mut Errors,
    ) -> TimeoutArgs {
        let mut own = Errors::default();
        let args = Self::parse_into(tokens, &mut own);
        if !args.has_duration() && required && own.is_empty() {
            own.push(syn::Error::new(
                span,
                "`#[timeout]` needs a duration: write `#[timeout(5s)]` or `#[timeout(duration = 5s)]`",
            ));
        }
        if let Some(e) = own.into_error() {
            errors.push(e);
        }
        args
    }

    /// Whether a literal or a `const` gives the duration.
    pub(crate) fn has_duration(&self) -> bool {
        self.duration.is_some() || self.constant.is_some()
    }

    /// Reads a duration: a literal or the path of a `const`.
    fn set_duration(&mut self, value: &Expr) -> syn::Result<()> {
        match value {
            Expr::Path(path) if path.qself.is_none() => {
                if path.path.segments.first().is_some_and(|s| s.ident == "Self") {
                    return Err(syn::Error::new_spanned(
                        value,
                        "`#[timeout]` cannot read an associated `const` of `Self`: the duration is read in an item of its own inside the function, where `Self` is not in scope; use a `const` outside the `impl`, like `const TIMEOUT: Duration = Duration::from_secs(5);`",
                    ));
                }
                self.constant = Some(path.path.clone());
                Ok(())
            }
            Expr::Lit(_) | Expr::Unary(_) | Expr::Group(_) => {
                self.duration = Some(super::duration(ATTR, "duration", value)?);
                Ok(())
            }
            _ => Err(syn::Error::new_spanned(
                value,
                format!("`#[timeout]` takes {FORMS}; an expression is not evaluated here"),
            )),
        }
    }

    fn parse_into(tokens: TokenStream, errors: &mut Errors) -> TimeoutArgs {
        let mut args = TimeoutArgs::default();
        let (first, rest) = match split_positional.parse2(tokens) {
            Ok(split) => split,
            Err(e) => {
                errors.push(e);
                return args;
            }
        };
        if let Some(value) = first {
            errors.ok(args.set_duration(&value));
        }
        let Some(entries) = errors.ok(super::parse_entries(rest)) else { return args };
        let keys = super::all_keys(&[], keys::TIMEOUT, &["crate"]);
        let mut seen = Seen::default();
        for entry in &entries {
            if !keys.contains(&entry.name().as_str()) {
                errors.push(super::unknown(ATTR, entry, &keys));
                continue;
            }
            if !seen.first(ATTR, entry, errors) {
                continue;
            }
            let value = match entry.assigned(
                ATTR,
                if entry.name() == "crate" { "\"my_facade::resilience\"" } else { "5s" },
            ) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if entry.name() == "crate" {
                args.krate = errors.ok(super::crate_path(ATTR, value));
            } else if args.has_duration() {
                errors.push(syn::Error::new(
                    entry.key.span(),
                    "duplicate duration in `#[timeout]`: write either `#[timeout(5s)]` or `#[timeout(duration = 5s)]`",
                ));
            } else {
                errors.ok(args.set_duration(value));
            }
        }
        args
    }
}

/// Splits off a leading positional duration (`5s`, `TIMEOUT`, or a mistaken expression),
/// leaving the `key = value` arguments. A number followed by a unit after a space (`5 s`)
/// is reported as such.
fn split_positional(input: ParseStream<'_>) -> syn::Result<(Option<Expr>, TokenStream)> {
    let keyed = input.peek(Ident::peek_any)
        && (input.peek2(Token![=]) || input.peek2(syn::token::Paren) || named_flag(input));
    if input.is_empty() || keyed {
        return Ok((None, input.parse()?));
    }
    let value: Expr = input.parse()?;
    if !input.is_empty() && !input.peek(Token![,]) {
        let next: TokenTree = input.fork().parse()?;
        if let (Expr::Lit(_), TokenTree::Ident(unit)) = (&value, &next)
            && grammar::unit_nanos(&unit.to_string()).is_some()
        {
            let number = quote::ToTokens::to_token_stream(&value).to_string();
            return Err(syn::Error::new_spanned(
                quote::quote!(#value #unit),
                format!(
                    "write the unit right after the number, without a space: `#[timeout({number}{unit})]`"
                ),
            ));
        }
        return Err(syn::Error::new_spanned(
            next,
            format!("`#[timeout]` takes one duration, then `key = value` arguments: {FORMS}"),
        ));
    }
    if !input.is_empty() {
        let _comma: Token![,] = input.parse()?;
    }
    Ok((Some(value), input.parse()?))
}

/// `duration` or `crate` alone, a key without its value (reported as such later).
fn named_flag(input: ParseStream<'_>) -> bool {
    let fork = input.fork();
    let Ok(ident) = Ident::parse_any(&fork) else { return false };
    (ident == "duration" || ident == "crate") && (fork.is_empty() || fork.peek(Token![,]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Option<u64>, Vec<String>) {
        let mut errors = Errors::default();
        let args = TimeoutArgs::parse(tokens, Span::call_site(), true, &mut errors);
        let messages = errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (args.duration.map(|d| d.nanos), messages)
    }

    #[test]
    fn bare_and_named_forms() {
        assert_eq!(parse(quote!(5s)), (Some(5_000_000_000), vec![]));
        assert_eq!(parse(quote!(duration = 250ms)), (Some(250_000_000), vec![]));
        assert_eq!(parse(quote!(2s, crate = "f::r")).0, Some(2_000_000_000));
    }

    #[test]
    fn missing_or_unitless_duration() {
        let (_, errs) = parse(quote!());
        assert_eq!(
            errs,
            [
                "`#[timeout]` needs a duration: write `#[timeout(5s)]` or `#[timeout(duration = 5s)]`"
            ]
        );
        let (_, errs) = parse(quote!(5));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("needs a unit: write `5ms` or `5s`"));
        let (_, errs) = parse(quote!(5s, duration = 1s));
        assert!(errs[0].starts_with("duplicate duration"));
    }

    fn constant(tokens: TokenStream) -> (Option<String>, Vec<String>) {
        let mut errors = Errors::default();
        let args = TimeoutArgs::parse(tokens, Span::call_site(), true, &mut errors);
        let messages = errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (args.constant.map(|p| quote::ToTokens::to_token_stream(&p).to_string()), messages)
    }

    #[test]
    fn a_const_path_in_either_form() {
        assert_eq!(constant(quote!(TIMEOUT)), (Some("TIMEOUT".to_owned()), vec![]));
        assert_eq!(
            constant(quote!(config::TIMEOUT)),
            (Some("config :: TIMEOUT".to_owned()), vec![])
        );
        assert_eq!(
            constant(quote!(duration = TIMEOUT, crate = "f::r")),
            (Some("TIMEOUT".to_owned()), vec![])
        );
        let (_, errs) = constant(quote!(Self::TIMEOUT));
        assert!(errs[0].contains("cannot read an associated `const` of `Self`"), "{errs:?}");
    }

    #[test]
    fn expressions_and_spaced_units_are_explained() {
        let (_, errs) = parse(quote!(Duration::from_secs(5)));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("`#[timeout]` takes a duration literal like `5s`"), "{errs:?}");
        assert!(errs[0].contains("`#[timeout(TIMEOUT)]`"), "{errs:?}");
        let (_, errs) = parse(quote!(5 s));
        assert_eq!(
            errs,
            ["write the unit right after the number, without a space: `#[timeout(5s)]`"]
        );
        let (_, errs) = parse(quote!(duration));
        assert_eq!(errs, ["`duration` in `#[timeout]` takes a value: write `duration = 5s`"]);
    }
}
