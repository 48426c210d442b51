//! [`BulkheadStats`]: a snapshot of a bulkhead's counters.

/// A point-in-time snapshot of a [`Bulkhead`](super::Bulkhead).
///
/// `in_flight` and `waiting` are gauges (current values); `rejected` and `completed`
/// count since creation or the last [`reset`](super::Bulkhead::reset).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BulkheadStats {
    /// Name of the bulkhead.
    pub name: String,
    /// The current concurrency limit (an adaptive bulkhead's, as it stands now).
    pub max_concurrent: u32,
    /// Calls holding a permit now (may exceed `max_concurrent` for a while after the limit
    /// was lowered).
    pub in_flight: u32,
    /// Callers waiting for a permit now.
    pub waiting: u64,
    /// Calls rejected with [`Error::BulkheadFull`](crate::Error::BulkheadFull).
    pub rejected: u64,
    /// Permits released (calls that ran, whatever their outcome).
    pub completed: u64,
    /// An adaptive bulkhead's algorithm, bounds and measured latencies (`None` for a
    /// fixed limit); its current limit is `max_concurrent`.
    pub adaptive: Option<super::AdaptiveStats>,
}
