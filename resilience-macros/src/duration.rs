//! Duration literals: `250ms`, `2s`, `1.5s`, `5min`, `1h`, in the grammar the runtime
//! reads config files with (the shared `grammar` module: `ns us ms s min h`, `m` for
//! `min`).
//!
//! The suffix arrives as part of a `LitInt`/`LitFloat` token and is checked explicitly:
//! a plain `base10_parse::<u64>()` would silently read `5ms` as `5`.

use proc_macro2::Span;
use syn::{Expr, ExprLit, Lit};

use crate::grammar;

/// A duration written in an attribute, kept in nanoseconds with the span of its token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationLit {
    pub(crate) nanos: u64,
    pub(crate) span: Span,
}

const HINT: &str = "like `250ms`, `2s`, `1.5s`, `5m` or `1h`";

/// Parses a positive duration literal for argument `key` of `#[attr]`.
pub(crate) fn parse(attr: &str, key: &str, expr: &Expr) -> syn::Result<DurationLit> {
    let lit = match expr {
        Expr::Lit(ExprLit { lit, .. }) => lit,
        Expr::Unary(_) => {
            return Err(syn::Error::new_spanned(
                expr,
                format!("`{key}` in `#[{attr}]` must be a positive duration, {HINT}"),
            ));
        }
        _ => {
            return Err(syn::Error::new_spanned(
                expr,
                format!("`{key}` in `#[{attr}]` expects a duration, {HINT}"),
            ));
        }
    };
    let (digits, suffix, span) = match lit {
        Lit::Int(int) => (int.base10_digits().to_owned(), int.suffix().to_owned(), int.span()),
        Lit::Float(float) => {
            (float.base10_digits().to_owned(), float.suffix().to_owned(), float.span())
        }
        other => {
            return Err(syn::Error::new_spanned(
                other,
                format!("`{key}` in `#[{attr}]` expects a duration, {HINT}"),
            ));
        }
    };
    if suffix.is_empty() {
        return Err(syn::Error::new(
            span,
            format!("`{key}` in `#[{attr}]` needs a unit: write `{digits}ms` or `{digits}s`"),
        ));
    }
    let Some(unit) = grammar::unit_nanos(&suffix) else {
        return Err(syn::Error::new(
            span,
            format!(
                "unknown duration unit `{suffix}` in `{key}` of `#[{attr}]`; write {}, like `{digits}ms`",
                grammar::UNIT_LIST
            ),
        ));
    };
    let nanos = grammar::to_nanos(&digits, unit).map_err(|_| {
        syn::Error::new(
            span,
            format!("`{key}` in `#[{attr}]` is too large: durations are limited to 500 years"),
        )
    })?;
    if nanos == 0 {
        return Err(syn::Error::new(
            span,
            format!("`{key}` in `#[{attr}]` must be a positive duration (got 0)"),
        ));
    }
    Ok(DurationLit { nanos, span })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(src: &str) -> syn::Result<u64> {
        let expr: Expr = syn::parse_str(src)?;
        parse("retry", "delay", &expr).map(|d| d.nanos)
    }

    #[test]
    fn reads_every_unit() {
        assert_eq!(nanos("7ns").ok(), Some(7));
        assert_eq!(nanos("7us").ok(), Some(7_000));
        assert_eq!(nanos("250ms").ok(), Some(250_000_000));
        assert_eq!(nanos("2s").ok(), Some(2_000_000_000));
        assert_eq!(nanos("5m").ok(), Some(300_000_000_000));
        assert_eq!(nanos("5min").ok(), Some(300_000_000_000));
        assert_eq!(nanos("1h").ok(), Some(3_600_000_000_000));
    }

    #[test]
    fn reads_fractions() {
        assert_eq!(nanos("1.5s").ok(), Some(1_500_000_000));
        assert_eq!(nanos("0.25ms").ok(), Some(250_000));
        assert_eq!(nanos("2.5m").ok(), Some(150_000_000_000));
    }

    #[test]
    fn five_ms_is_never_five() {
        assert_eq!(nanos("5ms").ok(), Some(5_000_000));
    }

    #[test]
    fn rejects_a_missing_unit() {
        let err = nanos("5").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`delay` in `#[retry]` needs a unit: write `5ms` or `5s`"), "{err}");
    }

    #[test]
    fn rejects_an_unknown_unit() {
        let err = nanos("5sec").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("unknown duration unit `sec`"), "{err}");
    }

    #[test]
    fn rejects_zero_negative_and_huge() {
        let err = |s: &str| nanos(s).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err("0ms").contains("must be a positive duration"));
        assert!(err("-5ms").contains("must be a positive duration"));
        assert!(err("999999999h").contains("too large"));
        assert!(err("\"5s\"").contains("expects a duration"));
        assert!(err("x").contains("expects a duration"));
    }
}
