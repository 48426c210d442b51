//! Query-cost limits of GraphQL APIs that charge calculated cost instead of requests, as
//! Shopify's Admin GraphQL API does.
//!
//! Each response carries `extensions.cost`: the `requestedQueryCost` taken up front, the
//! `actualQueryCost` charged, and the bucket's `throttleStatus` (`maximumAvailable`,
//! `currentlyAvailable`, `restoreRate` per second); a throttled call is a `200` whose
//! `errors` hold one with `extensions.code == "THROTTLED"`. With a [`RateLimiter`] whose
//! permits are cost points:
//!
//! 1. acquire the query's requested cost before sending it
//!    ([`acquire(cost)`](RateLimiter::acquire), or a [`Pipeline`](crate::Pipeline) /
//!    tower layer [`with_cost`](crate::Pipeline::with_cost));
//! 2. after the response, [`RateLimiter::sync_from_query_cost`]: refunds
//!    `requested − actual`, then lowers the bucket to `currentlyAvailable` and adopts
//!    `maximumAvailable` as the burst and `restoreRate` as the rate when they differ;
//! 3. classify the response's error codes with [`error_code_class`]: `THROTTLED` is
//!    [throttled](ErrorClass::Throttled), retried after [`ThrottleStatus::wait_for`].
//!
//! ```
//! use resilience::clock::ManualClock;
//! use resilience::rate_limit::graphql::{QueryCost, ThrottleStatus};
//! use resilience::rate_limit::{RateLimitConfig, RateLimiter};
//!
//! let config = RateLimitConfig::builder().per_second(50).burst(1000).build()?;
//! let shop = RateLimiter::with_clock("docs-graphql", config, ManualClock::new().shared());
//! shop.acquire(112)?; // requestedQueryCost
//! // ... send the query; its response says:
//! let cost = QueryCost {
//!     requested: 112,
//!     actual: Some(12),
//!     throttle_status: Some(ThrottleStatus {
//!         maximum_available: 2000.0,
//!         currently_available: 1988.0,
//!         restore_rate: 100.0,
//!     }),
//! };
//! shop.sync_from_query_cost(&cost);
//! assert_eq!(shop.config().burst(), 2000, "the shop's bucket, adopted");
//! assert_eq!(shop.available(), 1988);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use super::{Rate, RateLimiter};
use crate::classify::ErrorClass;

/// Shopify's `extensions.cost` of a GraphQL response (`Deserialize` with the `serde`
/// feature, from the camelCase JSON object as Shopify sends it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(rename_all = "camelCase"))]
pub struct QueryCost {
    /// `requestedQueryCost`: the points taken before the query ran.
    #[cfg_attr(feature = "serde", serde(rename = "requestedQueryCost"))]
    pub requested: u32,
    /// `actualQueryCost`: the points charged (absent on a throttled response).
    #[cfg_attr(feature = "serde", serde(rename = "actualQueryCost", default))]
    pub actual: Option<u32>,
    /// `throttleStatus`: the bucket after the query.
    #[cfg_attr(feature = "serde", serde(default))]
    pub throttle_status: Option<ThrottleStatus>,
}

/// Shopify's `throttleStatus`: a leaky bucket of cost points.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(rename_all = "camelCase"))]
pub struct ThrottleStatus {
    /// `maximumAvailable`: the bucket's size.
    pub maximum_available: f64,
    /// `currentlyAvailable`: points left now.
    pub currently_available: f64,
    /// `restoreRate`: points restored per second.
    pub restore_rate: f64,
}

impl ThrottleStatus {
    /// How long until `cost` points are available (zero when they are; `None` when the
    /// bucket never restores or cannot hold them): the wait to honour after `THROTTLED`.
    ///
    /// ```
    /// use resilience::rate_limit::graphql::ThrottleStatus;
    /// use std::time::Duration;
    ///
    /// let s = ThrottleStatus { maximum_available: 1000.0, currently_available: 10.0, restore_rate: 50.0 };
    /// assert_eq!(s.wait_for(110), Some(Duration::from_secs(2)));
    /// assert_eq!(s.wait_for(5), Some(Duration::ZERO));
    /// ```
    pub fn wait_for(&self, cost: u32) -> Option<Duration> {
        let cost = f64::from(cost);
        if cost > self.maximum_available
            || !self.restore_rate.is_finite()
            || self.restore_rate <= 0.0
        {
            return None;
        }
        let missing = (cost - self.currently_available).max(0.0);
        Duration::try_from_secs_f64(missing / self.restore_rate).ok()
    }
}

/// The class of a GraphQL error's `extensions.code`: `THROTTLED` is
/// [throttled](ErrorClass::Throttled), `INTERNAL_SERVER_ERROR` and `TIMEOUT`
/// [transient](ErrorClass::Transient); any other code (`ACCESS_DENIED`,
/// `MAX_COST_EXCEEDED`, a validation error) is [permanent](ErrorClass::Permanent).
///
/// ```
/// use resilience::ErrorClass;
/// use resilience::rate_limit::graphql::error_code_class;
///
/// assert_eq!(error_code_class("THROTTLED"), ErrorClass::Throttled);
/// assert_eq!(error_code_class("MAX_COST_EXCEEDED"), ErrorClass::Permanent);
/// ```
pub fn error_code_class(code: &str) -> ErrorClass {
    match code {
        "THROTTLED" => ErrorClass::Throttled,
        "INTERNAL_SERVER_ERROR" | "TIMEOUT" => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// What [`RateLimiter::sync_from_query_cost`] applied.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct CostSync {
    /// Points given back (`requested − actual`).
    pub refunded: u32,
    /// The burst adopted from `maximumAvailable`, when it differed.
    pub adopted_burst: Option<u32>,
    /// The rate adopted from `restoreRate`, when it differed.
    pub adopted_rate: Option<Rate>,
    /// The level the bucket was lowered to (`currentlyAvailable`), when sent.
    pub available: Option<u32>,
}

/// A float of the server's, as whole points (negative or NaN: 0).
fn points(x: f64) -> u32 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        // In range and non-negative: the cast only drops the fraction.
        x.floor() as u32
    }
}

impl RateLimiter {
    /// Re-syncs a cost-point limiter from a GraphQL response's `extensions.cost` (see
    /// [`graphql`](super::graphql)): gives back `requested − actual`, adopts the bucket's
    /// `maximumAvailable` as the burst and its `restoreRate` (points per second, in
    /// thousandths) as the rate when they differ, then lowers the level to
    /// `currentlyAvailable` (a server's count only lowers it, as with headers). Values
    /// it cannot use (a zero bucket or rate) are left out.
    pub fn sync_from_query_cost(&self, cost: &QueryCost) -> CostSync {
        let mut sync = CostSync::default();
        if let Some(actual) = cost.actual {
            sync.refunded = cost.requested.saturating_sub(actual);
            if sync.refunded > 0 {
                self.refund(sync.refunded);
            }
        }
        let Some(status) = cost.throttle_status else {
            return sync;
        };
        let config = self.config();
        let milli = status.restore_rate * 1000.0;
        if milli >= 1.0 && milli < f64::from(u32::MAX) {
            let rate = Rate::new(points(milli), Duration::from_secs(1000));
            let current = config.rate();
            if rate.per_second_f64() != current.per_second_f64() && self.set_rate(rate).is_ok() {
                sync.adopted_rate = Some(rate);
            }
        }
        let capacity = points(status.maximum_available);
        let available = points(status.currently_available).min(capacity);
        if capacity > 0 {
            let used = capacity - available;
            let header = format!("{used}/{capacity}");
            let report =
                self.sync_from_headers([(super::headers::SHOPIFY_CALL_LIMIT, header.as_str())]);
            if report.call_limit.is_some() {
                if capacity != config.burst() {
                    sync.adopted_burst = Some(capacity);
                }
                sync.available = Some(available);
            }
        }
        sync
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::rate_limit::RateLimitConfig;

    fn status(max: f64, now: f64, rate: f64) -> Option<ThrottleStatus> {
        Some(ThrottleStatus {
            maximum_available: max,
            currently_available: now,
            restore_rate: rate,
        })
    }

    #[test]
    fn refund_then_lower_to_the_servers_level() {
        let config = RateLimitConfig::builder().per_second(50).burst(1000).build().unwrap();
        let l = RateLimiter::with_clock("gql-sync", config, ManualClock::new().shared());
        l.try_acquire(500).unwrap();
        let s = l.sync_from_query_cost(&QueryCost {
            requested: 500,
            actual: Some(100),
            throttle_status: None,
        });
        assert_eq!(s.refunded, 400);
        assert_eq!(l.available(), 900);
        let s = l.sync_from_query_cost(&QueryCost {
            requested: 0,
            actual: Some(0),
            throttle_status: status(1000.0, 850.5, 50.0),
        });
        assert_eq!((s.available, s.adopted_burst, s.adopted_rate), (Some(850), None, None));
        assert_eq!(l.available(), 850);
        // A higher server figure does not raise the level.
        l.sync_from_query_cost(&QueryCost {
            throttle_status: status(1000.0, 990.0, 50.0),
            ..QueryCost::default()
        });
        assert_eq!(l.available(), 850);
    }

    #[test]
    fn a_different_bucket_and_rate_are_adopted_and_nonsense_left_out() {
        let config = RateLimitConfig::builder().per_second(50).burst(1000).build().unwrap();
        let l = RateLimiter::with_clock("gql-adopt", config, ManualClock::new().shared());
        let s = l.sync_from_query_cost(&QueryCost {
            throttle_status: status(2000.0, 1500.0, 100.0),
            ..QueryCost::default()
        });
        assert_eq!(s.adopted_burst, Some(2000));
        assert_eq!(s.adopted_rate, Some(Rate::new(100_000, Duration::from_secs(1000))));
        assert_eq!(l.config().burst(), 2000);
        assert_eq!(l.available(), 1500);
        for bad in [
            status(0.0, 0.0, 0.0),
            status(f64::NAN, -5.0, f64::INFINITY),
            status(-1.0, 1e300, -3.0),
        ] {
            let s =
                l.sync_from_query_cost(&QueryCost { throttle_status: bad, ..QueryCost::default() });
            assert_eq!((s.adopted_burst, s.adopted_rate), (None, None), "{bad:?}");
        }
        assert_eq!(l.config().burst(), 2000);
    }

    #[test]
    fn throttled_waits_and_codes() {
        let s = status(1000.0, 0.0, 50.0).unwrap();
        assert_eq!(s.wait_for(100), Some(Duration::from_secs(2)));
        assert_eq!(s.wait_for(1001), None);
        assert_eq!(status(10.0, 0.0, 0.0).unwrap().wait_for(1), None);
        assert_eq!(error_code_class("THROTTLED"), ErrorClass::Throttled);
        assert_eq!(error_code_class("INTERNAL_SERVER_ERROR"), ErrorClass::Transient);
        assert_eq!(error_code_class("ACCESS_DENIED"), ErrorClass::Permanent);
    }
}
