//! [`CallPermit`]: the right to make one call, and the duty to report how it went.

use std::fmt;
use std::mem::ManuallyDrop;
use std::time::Duration;

use super::breaker::CircuitBreaker;
use super::classifier::CallOutcome;

/// What kind of call a permit admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermitKind {
    /// A call through a closed circuit.
    Closed,
    /// A half-open probe: holds one of the `half_open_max_calls` slots.
    Probe,
    /// A call through a disabled breaker: counted in stats only.
    Disabled,
}

/// Permission for one call, from [`CircuitBreaker::try_acquire`].
///
/// Report the outcome with [`success`](Self::success), [`failure`](Self::failure),
/// [`ignore`](Self::ignore) or [`record`](Self::record). Dropping the permit without an
/// outcome (a panic, a cancelled future) counts as ignored and frees a half-open probe
/// slot, so a probe can never leak.
///
/// ```
/// use resilience::circuit::{CircuitBreaker, CircuitBreakerConfig};
///
/// let breaker = CircuitBreaker::new("payments", CircuitBreakerConfig::default());
/// let permit = breaker.try_acquire()?;
/// let ok = true; // ... make the call ...
/// if ok { permit.success() } else { permit.failure() }
/// assert_eq!(breaker.stats().successes, 1);
/// # Ok::<(), resilience::Error>(())
/// ```
#[must_use = "report the call's outcome; dropping the permit counts the call as ignored"]
pub struct CallPermit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u32,
    kind: PermitKind,
    started: Option<Duration>,
}

impl<'a> CallPermit<'a> {
    #[inline]
    pub(super) fn new(
        breaker: &'a CircuitBreaker,
        generation: u32,
        kind: PermitKind,
        started: Option<Duration>,
    ) -> Self {
        CallPermit { breaker, generation, kind, started }
    }

    /// The call succeeded (a failure anyway if slower than the slow-call threshold).
    #[inline]
    pub fn success(self) {
        self.record(CallOutcome::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.record(CallOutcome::Failure);
    }

    /// The call's outcome says nothing about the service's health.
    pub fn ignore(self) {
        self.record(CallOutcome::Ignored);
    }

    /// Report `outcome`.
    #[inline(always)]
    pub fn record(self, outcome: CallOutcome) {
        // Reported: the drop's "ignored" must not run.
        let this = ManuallyDrop::new(self);
        this.breaker.on_outcome(this.generation, this.kind, this.started, outcome);
    }

    /// Whether this permit is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.kind == PermitKind::Probe
    }
}

impl Drop for CallPermit<'_> {
    fn drop(&mut self) {
        // Not reported (`record` skips this drop): a panic or a cancelled future.
        self.breaker.on_outcome(self.generation, self.kind, self.started, CallOutcome::Ignored);
    }
}

/// A [`CallPermit`] taken apart, for a future that owns its breaker through an `Arc` and
/// so cannot keep the permit's borrow (the tower services'): [`CallPermit::detach`],
/// then [`CircuitBreaker::attach`] to report the outcome. Not a permit by itself:
/// dropping it reports nothing, so its holder must attach it (and drop the permit to
/// count the call as ignored).
#[cfg(feature = "tower")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct DetachedPermit {
    generation: u32,
    kind: PermitKind,
    started: Option<Duration>,
}

#[cfg(feature = "tower")]
impl CallPermit<'_> {
    /// The permit's duty, handed to whoever attaches it again.
    #[inline(always)]
    pub(crate) fn detach(self) -> DetachedPermit {
        let this = ManuallyDrop::new(self);
        DetachedPermit { generation: this.generation, kind: this.kind, started: this.started }
    }
}

#[cfg(feature = "tower")]
impl CircuitBreaker {
    /// The permit `detached` from one of this breaker's permits, whole again.
    #[inline(always)]
    pub(crate) fn attach(&self, detached: DetachedPermit) -> CallPermit<'_> {
        CallPermit::new(self, detached.generation, detached.kind, detached.started)
    }
}

/// A call admitted on the closed fast path by the breaker's own call drivers
/// ([`CircuitBreaker::call`] and friends): a [`CallPermit`] of kind `Closed` without a
/// start time, reduced to what its outcome needs. Dropped unreported (the operation
/// panicked, or its future was dropped), it counts as ignored, as a permit does.
pub(super) struct ClosedCall<'a> {
    breaker: &'a CircuitBreaker,
    generation: u32,
}

impl<'a> ClosedCall<'a> {
    #[inline(always)]
    pub(super) fn new(breaker: &'a CircuitBreaker, generation: u32) -> Self {
        ClosedCall { breaker, generation }
    }

    /// Report `outcome`.
    #[inline(always)]
    pub(super) fn record(self, outcome: CallOutcome) {
        let this = ManuallyDrop::new(self);
        if outcome == CallOutcome::Success {
            this.breaker.closed_success(this.generation);
        } else {
            this.breaker.on_outcome_slow(this.generation, PermitKind::Closed, None, outcome);
        }
    }
}

impl Drop for ClosedCall<'_> {
    fn drop(&mut self) {
        let ignored = CallOutcome::Ignored;
        self.breaker.on_outcome_slow(self.generation, PermitKind::Closed, None, ignored);
    }
}

impl fmt::Debug for CallPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallPermit")
            .field("circuit", self.breaker.name())
            .field("generation", &self.generation)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}
