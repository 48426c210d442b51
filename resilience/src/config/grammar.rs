//! The duration grammar shared by every front-end: attribute literals (`250ms`, `1.5s`)
//! and config text (`"250ms"`, `"1.5s"`).
//!
//! A duration is a decimal number (a fraction allowed, no sign, no exponent) followed by
//! a unit: `ns`, `us`, `ms`, `s`, `min` (also written `m`) or `h`. It is read exactly
//! (no floating point) and rounded down to whole nanoseconds; at most 500 years.
//!
//! This file is compiled into both crates: it has no dependencies and holds no error
//! texts of its own, so each front-end words its errors for its own syntax.

/// The units, with their length in nanoseconds.
pub(crate) const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("min", 60_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The units as listed in error messages.
pub(crate) const UNIT_LIST: &str = "`ns`, `us`, `ms`, `s`, `min` (or `m`) or `h`";

/// The longest accepted duration, in nanoseconds: 500 years.
const LIMIT: u128 = 500 * 365 * 24 * 3_600 * 1_000_000_000;

/// Why a duration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A number without a unit.
    NoUnit,
    /// A unit that is not one of [`UNITS`].
    UnknownUnit,
    /// The number part is not a plain decimal.
    BadNumber,
    /// Longer than 500 years.
    TooLarge,
}

/// The length of `unit` in nanoseconds.
pub(crate) fn unit_nanos(unit: &str) -> Option<u64> {
    UNITS.iter().find(|(name, _)| *name == unit).map(|(_, nanos)| *nanos)
}

/// `digits` (decimal, optionally with a fraction) times `unit` nanoseconds, rounded down.
pub(crate) fn to_nanos(digits: &str, unit: u64) -> Result<u64, Refused> {
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !plain(whole) || !plain(frac) {
        return Err(Refused::BadNumber);
    }
    let whole: u128 =
        if whole.is_empty() { 0 } else { whole.parse().map_err(|_| Refused::TooLarge)? };
    let mut nanos = whole.checked_mul(u128::from(unit)).ok_or(Refused::TooLarge)?;
    let mut scale = u128::from(unit);
    for c in frac.chars().take(18) {
        scale /= 10;
        nanos += u128::from(c.to_digit(10).unwrap_or(0)) * scale;
    }
    if nanos > LIMIT {
        return Err(Refused::TooLarge);
    }
    u64::try_from(nanos).map_err(|_| Refused::TooLarge)
}

/// Splits `"1.5s"` into `("1.5", "s")` (surrounding and inner spaces ignored).
pub(crate) fn split(text: &str) -> (&str, &str) {
    let t = text.trim();
    let at = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(at);
    (number, unit.trim())
}

/// Parses duration text such as `"250ms"` into nanoseconds.
pub(crate) fn parse(text: &str) -> Result<u64, Refused> {
    let (number, unit) = split(text);
    if unit.is_empty() {
        return Err(if number.is_empty() { Refused::BadNumber } else { Refused::NoUnit });
    }
    let unit = unit_nanos(unit).ok_or(Refused::UnknownUnit)?;
    to_nanos(number, unit)
}
