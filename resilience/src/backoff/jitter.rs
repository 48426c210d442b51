//! Jitter: randomising each delay so that many clients do not retry in lockstep.

use fastrand::Rng;

use crate::ConfigError;

/// How a computed delay `d` is randomised before it is capped by the backoff's
/// `max_delay`.
///
/// | mode | delay | mean |
/// |---|---|---|
/// | [`Jitter::None`] | `d` | `d` |
/// | [`Jitter::Full`] | `U(0, d)` | `d/2` |
/// | [`Jitter::Equal`] | `d/2 + U(0, d/2)` | `3d/4` |
/// | [`Jitter::Proportional(f)`](Jitter::Proportional) | `d·U(1-f, 1+f)` | `d` |
/// | [`Jitter::Ratio(low)`](Jitter::Ratio) | `d·U(low, 1)` | `d·(1+low)/2` |
///
/// `Full` and `Equal` are the modes of the AWS architecture blog post "Exponential
/// Backoff And Jitter"; `Proportional` is the `±f` randomisation of gRPC and Polly;
/// `Ratio(0.5)` is the `U(0.5, 1.0)·d` variant (some clients call it "half jitter").
///
/// ```
/// use resilience::backoff::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let b = Backoff::exponential(Duration::from_millis(100)).with_jitter(Jitter::Ratio(0.5));
/// for (n, d) in b.iter_seeded(7).take(4).enumerate() {
///     let full = Duration::from_millis(100 << n);
///     assert!(d >= full / 2 && d <= full);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomisation: the computed delay as is.
    None,
    /// "Full jitter": uniform in `[0, d]`. The default: it spreads retries the most.
    #[default]
    Full,
    /// "Equal jitter": `d/2 + U(0, d/2)`, never less than half the computed delay.
    Equal,
    /// `d·U(1-f, 1+f)` for a factor `f` in `[0, 1]`: `Proportional(0.2)` is ±20 %.
    /// The result can exceed `d`, but never the backoff's `max_delay`.
    Proportional(f64),
    /// `d·U(low, 1)` for `low` in `[0, 1]`: at most the computed delay, at least the
    /// fraction `low` of it. `Ratio(0.5)` is the common `U(0.5, 1.0)·d` variant;
    /// `Ratio(0.0)` is the same distribution as [`Jitter::Full`].
    Ratio(f64),
}

impl Jitter {
    /// Checks that the factor of `Proportional` / `Ratio` is finite and in `[0, 1]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Jitter::None | Jitter::Full | Jitter::Equal => Ok(()),
            Jitter::Proportional(f) => crate::error::check::in_range("jitter", f, 0.0, 1.0),
            Jitter::Ratio(low) => crate::error::check::in_range("jitter", low, 0.0, 1.0),
        }
    }

    /// Randomises `nanos` with `rng`. Never panics, whatever the factor.
    pub(crate) fn apply(&self, nanos: u64, rng: &mut Rng) -> u64 {
        match *self {
            Jitter::None => nanos,
            Jitter::Full => rng.u64(0..=nanos),
            Jitter::Equal => {
                let half = nanos / 2;
                half.saturating_add(rng.u64(0..=nanos - half))
            }
            Jitter::Proportional(f) => scale(nanos, 1.0 - f, 1.0 + f, rng),
            Jitter::Ratio(low) => scale(nanos, low, 1.0, rng),
        }
    }
}

/// Jitter as written in attributes and config files: `none`, `full`, `equal`,
/// `proportional(0.25)` or `ratio(0.5)` (validated by [`Jitter::validate`]).
impl std::str::FromStr for Jitter {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let t = text.trim();
        let factor = |prefix: &str| {
            t.strip_prefix(prefix)
                .and_then(|r| r.trim_start().strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|f| f.trim().parse::<f64>().ok())
        };
        let jitter = match t {
            "none" => Jitter::None,
            "full" => Jitter::Full,
            "equal" => Jitter::Equal,
            _ => match (factor("proportional"), factor("ratio")) {
                (Some(f), _) => Jitter::Proportional(f),
                (_, Some(low)) => Jitter::Ratio(low),
                _ => {
                    return Err(ConfigError::new(
                        "jitter",
                        format!(
                            "`{t}` is not a jitter; use none, full, equal, proportional(0.25) or ratio(0.5)"
                        ),
                    ));
                }
            },
        };
        jitter.validate()?;
        Ok(jitter)
    }
}

/// `nanos · U(lo, hi)`, saturating (`as` casts saturate and map NaN to 0).
fn scale(nanos: u64, lo: f64, hi: f64, rng: &mut Rng) -> u64 {
    let factor = lo + rng.f64() * (hi - lo);
    (nanos as f64 * factor) as u64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn factors_outside_zero_one_are_rejected() {
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(Jitter::Proportional(bad).validate().is_err());
            assert!(Jitter::Ratio(bad).validate().is_err());
        }
        let err = Jitter::Ratio(2.0).validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid `jitter`: must be between 0 and 1 (got 2)");
        assert!(Jitter::Proportional(1.0).validate().is_ok());
        assert!(Jitter::Ratio(0.0).validate().is_ok());
    }

    #[test]
    fn apply_never_panics_on_extremes() {
        let mut rng = Rng::with_seed(1);
        for j in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Proportional(f64::NAN),
            Jitter::Proportional(1e300),
            Jitter::Ratio(-5.0),
        ] {
            for n in [0, 1, u64::MAX] {
                let _ = j.apply(n, &mut rng);
            }
        }
        assert_eq!(Jitter::None.apply(u64::MAX, &mut rng), u64::MAX);
        assert_eq!(Jitter::Full.apply(0, &mut rng), 0);
    }

    #[test]
    fn equal_jitter_stays_in_upper_half() {
        let mut rng = Rng::with_seed(3);
        for _ in 0..1000 {
            let d = Jitter::Equal.apply(1001, &mut rng);
            assert!((500..=1001).contains(&d), "{d}");
        }
    }
}
