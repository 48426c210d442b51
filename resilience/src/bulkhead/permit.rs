//! [`BulkheadPermit`]: one slot in a bulkhead, released on drop.

use std::fmt;
use std::time::Duration;

use super::Bulkhead;

/// One of a [`Bulkhead`]'s `max_concurrent` slots, held for the duration of a call.
///
/// Dropping the permit releases the slot and wakes one waiting caller, so a call that
/// returns early, panics, or (in async code) is cancelled never leaks a slot.
///
/// ```
/// use resilience::bulkhead::{Bulkhead, BulkheadConfig};
///
/// let bulkhead = Bulkhead::new("db", BulkheadConfig::default());
/// let permit = bulkhead.try_acquire()?;
/// assert_eq!(bulkhead.in_flight(), 1);
/// drop(permit);
/// assert_eq!(bulkhead.in_flight(), 0);
/// # Ok::<(), resilience::Error>(())
/// ```
#[must_use = "the slot is released as soon as the permit is dropped"]
pub struct BulkheadPermit<'a> {
    bulkhead: &'a Bulkhead,
    /// When an adaptive bulkhead granted it, on the bulkhead's clock (`None` for a fixed
    /// limit, which times nothing).
    started: Option<Duration>,
}

impl<'a> BulkheadPermit<'a> {
    /// Wraps a slot that `bulkhead` has already counted as in flight.
    pub(super) fn new(bulkhead: &'a Bulkhead, started: Option<Duration>) -> Self {
        BulkheadPermit { bulkhead, started }
    }

    /// The bulkhead this permit belongs to.
    pub fn bulkhead(&self) -> &'a Bulkhead {
        self.bulkhead
    }

    /// Releases the slot now: what the drop does, inlined into the caller (the drop glue
    /// is a call of its own on the path of every call through the bulkhead).
    #[inline(always)]
    pub(super) fn release(self) {
        let this = std::mem::ManuallyDrop::new(self);
        this.bulkhead.release(this.started);
    }
}

impl Drop for BulkheadPermit<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.bulkhead.release(self.started);
    }
}

impl fmt::Debug for BulkheadPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadPermit").field("bulkhead", self.bulkhead.name()).finish()
    }
}
