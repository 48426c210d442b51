//! What an "unknown argument" error suggests: the key a known synonym stands for (with
//! the value rewritten when it can be: `rate = "10/s"` is `per_second = 10`), else the
//! accepted key nearest by edit distance, within the bound rustc uses for its own
//! suggestions (a third of the name's length), else nothing.

use syn::{Expr, ExprLit, Lit};

use super::{Entry, EntryValue};

/// The `; ...` hint ending an unknown-argument error, or nothing.
pub(super) fn hint(attr: &str, entry: &Entry, valid: &[&str]) -> String {
    let name = entry.name();
    if let Some(hint) = synonym(attr, &name, entry) {
        return format!("; {hint}");
    }
    closest(&name, valid).map(|c| format!("; did you mean `{c}`?")).unwrap_or_default()
}

/// The accepted name nearest to `name`, if it is a plausible typo of it: an edit
/// distance (insertions, deletions, substitutions and swaps of neighbours) of at most a
/// third of the longer name, starting with the same letter (a typo rarely hits the first
/// one, and `rate` is not a misspelt `crate`).
pub(crate) fn closest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .filter(|v| v.len() > 1 && name.len() > 1)
        .map(|v| (edit_distance(name, v), *v))
        .filter(|(d, v)| *d <= name.len().max(v.len()).max(3) / 3)
        .filter(|(_, v)| name.chars().next() == v.chars().next())
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// Optimal string alignment distance: Levenshtein plus swaps of neighbouring characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        if let Some(cell) = d.get_mut(at(i, 0)) {
            *cell = i;
        }
    }
    for j in 0..=b.len() {
        if let Some(cell) = d.get_mut(at(0, j)) {
            *cell = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let get = |i: usize, j: usize| d.get(at(i, j)).copied().unwrap_or(usize::MAX / 2);
            let cost = usize::from(a.get(i - 1) != b.get(j - 1));
            let mut value =
                (get(i - 1, j) + 1).min(get(i, j - 1) + 1).min(get(i - 1, j - 1) + cost);
            if i > 1 && j > 1 && a.get(i - 1) == b.get(j - 2) && a.get(i - 2) == b.get(j - 1) {
                value = value.min(get(i - 2, j - 2) + 1);
            }
            if let Some(cell) = d.get_mut(at(i, j)) {
                *cell = value;
            }
        }
    }
    d.last().copied().unwrap_or(0)
}

/// The value of `key = value` when it is a string literal.
fn text(entry: &Entry) -> Option<String> {
    match &entry.value {
        EntryValue::Assign(Expr::Lit(ExprLit { lit: Lit::Str(s), .. })) => Some(s.value()),
        _ => None,
    }
}

/// The value of `key = value` when it is a whole number.
fn number(entry: &Entry) -> Option<u64> {
    match &entry.value {
        EntryValue::Assign(Expr::Lit(ExprLit { lit: Lit::Int(i), .. })) => {
            i.base10_digits().parse().ok()
        }
        _ => None,
    }
}

/// Names people write for a key this attribute spells otherwise.
fn synonym(attr: &str, name: &str, entry: &Entry) -> Option<String> {
    match (attr, name) {
        (
            "rate_limit",
            "rate"
            | "limit"
            | "rps"
            | "qps"
            | "requests"
            | "requests_per_second"
            | "per_sec"
            | "rpm"
            | "requests_per_minute"
            | "per_min",
        ) => Some(rate(name, entry)),
        ("retry", "max_retries" | "retries" | "max_tries" | "tries" | "attempts") => {
            let retries = matches!(name, "max_retries" | "retries");
            Some(match (number(entry), retries) {
                (Some(n), true) => format!(
                    "write `max_attempts = {}`: it counts every attempt, the first included",
                    n.saturating_add(1)
                ),
                (Some(n), false) => format!("write `max_attempts = {n}`"),
                (None, _) => "write `max_attempts = 3` (every attempt, the first included)".into(),
            })
        }
        ("retry", "delay" | "base_delay" | "initial_backoff" | "min_delay") => {
            Some("the first delay is written `initial_delay = 100ms`".into())
        }
        ("circuit_breaker", "threshold" | "failures" | "max_failures" | "consecutive_failures") => {
            Some("write `failure_threshold = 5` (consecutive failures)".into())
        }
        (
            "circuit_breaker",
            "reset_timeout" | "open_timeout" | "timeout" | "cooldown" | "open_duration",
        ) => Some("the time the circuit stays open is written `recovery_timeout = 30s`".into()),
        ("timeout", "limit" | "after" | "max" | "secs" | "time") => Some(
            "write the duration alone, `#[timeout(5s)]`, or as `#[timeout(duration = 5s)]`".into(),
        ),
        ("bulkhead", "max" | "limit" | "concurrency" | "max_concurrency" | "permits") => {
            Some("write `max_concurrent = 10`".into())
        }
        (
            "bulkhead",
            "algorithm" | "limit_algorithm" | "adaptive_limit" | "mode" | "strategy" | "dynamic",
        ) => Some(
            "an adaptive limit is written `adaptive = \"gradient\"` (or `\"aimd\"`, `\"vegas\"`)"
                .into(),
        ),
        ("bulkhead", "initial" | "start_limit" | "initial_concurrency" | "initial_concurrent") => {
            Some("an adaptive limit's start is written `initial_limit = 20`".into())
        }
        _ => None,
    }
}

/// `rate = "10/s"` → `per_second = 10`; otherwise the two forms of a rate.
fn rate(name: &str, entry: &Entry) -> String {
    const FORMS: &str = "a rate is written `per_second = 10` or `per_minute = 600`";
    const KEYS: &str = "the rate keys are `per_second` and `per_minute`";
    let per_minute = matches!(name, "rpm" | "requests_per_minute" | "per_min");
    if let Some(n) = number(entry) {
        let key = if per_minute { "per_minute" } else { "per_second" };
        return format!("write `{key} = {n}`: {KEYS}");
    }
    let Some(text) = text(entry) else { return FORMS.to_owned() };
    let (count, unit) = text.split_once('/').unwrap_or((text.as_str(), ""));
    let count = count.trim();
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return FORMS.to_owned();
    }
    match unit.trim() {
        "s" | "sec" | "second" | "1s" => format!("write `per_second = {count}`: {KEYS}"),
        "m" | "min" | "minute" | "1m" | "1min" => format!("write `per_minute = {count}`: {KEYS}"),
        _ => FORMS.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn hint_for(attr: &str, tokens: proc_macro2::TokenStream, valid: &[&str]) -> String {
        let entries = super::super::parse_entries(tokens).unwrap_or_default();
        entries.first().map(|e| hint(attr, e, valid)).unwrap_or_default()
    }

    #[test]
    fn typos_get_the_nearest_key() {
        assert_eq!(closest("max_attemps", &["max_attempts", "backoff"]), Some("max_attempts"));
        assert_eq!(closest("backof", &["max_attempts", "backoff"]), Some("backoff"));
        assert_eq!(closest("bakcoff", &["max_attempts", "backoff"]), Some("backoff"));
        assert_eq!(closest("zzz", &["max_attempts", "backoff"]), None);
        assert_eq!(closest("shopfy", &["api", "shopify"]), Some("shopify"));
    }

    #[test]
    fn short_unrelated_names_get_no_suggestion() {
        assert_eq!(closest("rate", &["per_second", "burst", "name", "crate"]), None);
        assert_eq!(closest("key", &["name", "cost"]), None);
    }

    #[test]
    fn a_rate_is_rewritten_in_the_runtime_spelling() {
        let keys = ["per_second", "per_minute", "crate"];
        let h = hint_for("rate_limit", quote!(rate = "10/s"), &keys);
        assert!(h.starts_with("; write `per_second = 10`"), "{h}");
        let h = hint_for("rate_limit", quote!(rate = "600/min"), &keys);
        assert!(h.starts_with("; write `per_minute = 600`"), "{h}");
        let h = hint_for("rate_limit", quote!(rate = "fast"), &keys);
        assert_eq!(h, "; a rate is written `per_second = 10` or `per_minute = 600`");
        assert!(!hint_for("rate_limit", quote!(rate = 5), &keys).contains("crate"));
    }

    #[test]
    fn retries_are_counted_as_attempts() {
        let h = hint_for("retry", quote!(max_retries = 3), &["max_attempts"]);
        assert!(h.starts_with("; write `max_attempts = 4`"), "{h}");
    }
}
