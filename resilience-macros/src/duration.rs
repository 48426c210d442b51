//! Duration literals: `250ms`, `2s`, `1.5s`, `5m`, `1h`.
//!
//! The suffix arrives as part of a `LitInt`/`LitFloat` token and is checked explicitly:
//! a plain `base10_parse::<u64>()` would silently read `5ms` as `5`.

use proc_macro2::Span;
use syn::{Expr, ExprLit, Lit};

/// A duration written in an attribute, kept in nanoseconds with the span of its token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationLit {
    pub(crate) nanos: u64,
    pub(crate) span: Span,
}

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const HINT: &str = "like `250ms`, `2s`, `1.5s`, `5m` or `1h`";

fn unit_nanos(suffix: &str) -> Option<u64> {
    UNITS.iter().find(|(name, _)| *name == suffix).map(|(_, nanos)| *nanos)
}

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
    let Some(unit) = unit_nanos(&suffix) else {
        return Err(syn::Error::new(
            span,
            format!(
                "unknown duration unit `{suffix}` in `{key}` of `#[{attr}]`; write `ns`, `us`, `ms`, `s`, `m` or `h`, like `{digits}ms`"
            ),
        ));
    };
    let nanos = to_nanos(&digits, unit).ok_or_else(|| {
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

/// `digits` (decimal, optionally with a fraction, no exponent) times `unit` nanoseconds,
/// rounded down to whole nanoseconds. `None` on overflow or an unreadable number.
fn to_nanos(digits: &str, unit: u64) -> Option<u64> {
    const LIMIT: u128 = 500 * 365 * 24 * 3_600 * 1_000_000_000;
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    if whole.is_empty() && frac.is_empty() || digits.contains(['e', 'E']) {
        return None;
    }
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut nanos = whole.checked_mul(u128::from(unit))?;
    let mut scale = u128::from(unit);
    for c in frac.chars().take(18) {
        let d = u128::from(c.to_digit(10)?);
        scale /= 10;
        nanos = nanos.checked_add(d.checked_mul(scale)?)?;
    }
    if nanos > LIMIT {
        return None;
    }
    u64::try_from(nanos).ok()
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
