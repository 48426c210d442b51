//! `#[timeout(5s)]` / `#[timeout(duration = 5s)]` arguments.

use proc_macro2::{Span, TokenStream};
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Token};

use super::{Errors, Seen, keys};
use crate::duration::DurationLit;

const ATTR: &str = "timeout";

/// Parsed `#[timeout(...)]`.
#[derive(Default)]
pub(crate) struct TimeoutArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) duration: Option<DurationLit>,
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
        if args.duration.is_none() && required && own.is_empty() {
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

    fn parse_into(tokens: TokenStream, errors: &mut Errors) -> TimeoutArgs {
        let mut args = TimeoutArgs::default();
        let mut rest = tokens;
        if super::starts_with_literal(&rest) {
            let split = |input: ParseStream<'_>| {
                let value: Expr = input.parse()?;
                if !input.is_empty() {
                    let _comma: Token![,] = input.parse()?;
                }
                Ok((value, input.parse::<TokenStream>()?))
            };
            match split.parse2(rest) {
                Ok((value, tail)) => {
                    args.duration = errors.ok(super::duration(ATTR, "duration", &value));
                    rest = tail;
                }
                Err(e) => {
                    errors.push(e);
                    return args;
                }
            }
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
            } else if args.duration.is_some() {
                errors.push(syn::Error::new(
                    entry.key.span(),
                    "duplicate duration in `#[timeout]`: write either `#[timeout(5s)]` or `#[timeout(duration = 5s)]`",
                ));
            } else {
                args.duration = errors.ok(super::duration(ATTR, "duration", value));
            }
        }
        args
    }
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
}
