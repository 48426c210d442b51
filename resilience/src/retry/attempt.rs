//! The decision taken after each attempt, shared by the blocking and async drivers.

use std::fmt::Debug;
use std::time::Duration;

use super::hooks::{RetryEvent, RetryHooks, RetryReason};
use super::policy::PolicyInner;
use crate::backoff::BackoffIter;
use crate::deadline::Deadline;
use crate::events::{EventKind, GiveUpReason, Interest, Layer};
use crate::{Error, Fault};

/// How a driver sees the error side of an attempt.
pub(super) enum View<'a, E> {
    /// The operation's own error.
    Inner(&'a E),
    /// A rejection by an inner layer.
    Rejected(&'a Error),
}

impl<E> View<'_, E> {
    /// The view of a plain error (the `call*` drivers).
    pub(super) fn of_error(e: &E) -> View<'_, E> {
        View::Inner(e)
    }

    /// The view of a [`Fault`] (the `run*` drivers).
    pub(super) fn of_fault(f: &Fault<E>) -> View<'_, E> {
        match f {
            Fault::Inner(e) => View::Inner(e),
            Fault::Rejected(r) => View::Rejected(r),
        }
    }
}

/// What the driver does next.
pub(super) enum Next<T, X> {
    /// Return this result.
    Done(Result<T, X>),
    /// Sleep this long, then call again.
    Retry(Duration),
}

enum Hint {
    None,
    /// A server hint: replaces the computed delay, capped by `max_delay`.
    Replace(Duration),
    /// A rate limiter's wait: the delay is at least this long.
    AtLeast(Duration),
}

/// The state of one call through a policy.
pub(super) struct Attempts<'p> {
    policy: &'p PolicyInner,
    /// The attempt running now, 1-based.
    attempt: u32,
    /// The reading of the policy's clock at which the whole call ends (only when the
    /// policy has a deadline). A plain reading, not a [`Deadline`]: `Attempts` stays free
    /// of drop glue, so a first-attempt success keeps it in registers.
    end: Option<Duration>,
    /// Created at the first failure, so a first-attempt success draws no seed. Boxed:
    /// the iterator is 112 bytes, and an async call's future holds `Attempts` across its
    /// awaits, so inline it would make every call's future (and its moves) larger for
    /// the sake of the retry path, which already waits out a backoff.
    delays: Option<Box<BackoffIter>>,
}

impl<'p> Attempts<'p> {
    /// Starts a call: deposits in the budget and reads the clock if needed.
    #[inline]
    pub(super) fn start(policy: &'p PolicyInner) -> Self {
        if let Some(budget) = &policy.budget {
            budget.deposit();
        }
        let end = policy.deadline.map(|limit| Deadline::end_after(policy.clock.now(), limit));
        Attempts { policy, attempt: 1, end, delays: None }
    }

    /// The deadline the attempts run under, if the policy has one. Built on demand: the
    /// check is on a plain `Option<Duration>`, so a call without a deadline pays one branch.
    #[cfg(feature = "tokio")]
    #[inline(always)]
    pub(super) fn deadline(&self) -> Option<Deadline> {
        self.end.map(|end| Deadline::at(end, &self.policy.clock))
    }

    /// Runs one blocking attempt, inside the call's deadline when the policy has one.
    #[inline(always)]
    pub(super) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.end {
            None => f(),
            // By value: a call taking `&self` would keep this state out of registers.
            Some(end) => run_within(end, &self.policy.clock, f),
        }
    }

    /// Report an event of this call's policy.
    #[inline(always)]
    fn report(&self, topic: Interest, level: tracing::Level, kind: impl FnOnce() -> EventKind) {
        let p = self.policy;
        if p.hub.enabled(topic, level) {
            let name = p.name.as_ref().unwrap_or_else(|| crate::events::unnamed());
            p.hub.emit_built(Layer::Retry, name, || (p.clock.now(), kind()));
        }
    }

    fn give_up(&self, reason: GiveUpReason) {
        let attempts = self.attempt;
        // Giving up is a warning, except after an exhausted budget, which has warned already.
        let level = match reason {
            GiveUpReason::BudgetExhausted => tracing::Level::DEBUG,
            _ => tracing::Level::WARN,
        };
        self.report(Interest::RETRIES, level, || EventKind::GaveUp { attempts, reason });
    }

    /// Decides what to do with the result of the current attempt.
    #[inline]
    pub(super) fn next<T, X, E, H>(
        &mut self,
        hooks: &H,
        result: Result<T, X>,
        view: fn(&X) -> View<'_, E>,
    ) -> Next<T, X>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
    {
        // Attempts and results are not logged: one relaxed load when nobody subscribed.
        let wanted = self.policy.hub.interest();
        if wanted.intersects(Interest::ATTEMPTS) {
            // By value: a call taking `&self` would keep this state out of registers.
            report_attempt(self.policy, self.attempt, result.is_ok());
        }
        // Hot path: a success the hooks accept is returned as is.
        let next = if let Ok(value) = &result
            && !hooks.should_retry_result(value)
        {
            Next::Done(result)
        } else {
            self.after_failure(hooks, result, view)
        };
        if wanted.intersects(Interest::CALLS)
            && let Next::Done(result) = &next
        {
            report_finished(self.policy, self.attempt, result.is_ok());
        }
        #[cfg(feature = "metrics")]
        if crate::metrics::active()
            && let Next::Done(result) = &next
        {
            let name = self.policy.name.as_ref().unwrap_or_else(|| crate::events::unnamed());
            crate::metrics::count_retry(&self.policy.metrics, name, self.attempt, result.is_ok());
        }
        next
    }

    /// [`next`](Self::next) for an error, or a value the hooks asked to retry.
    #[inline(never)]
    fn after_failure<T, X, E, H>(
        &mut self,
        hooks: &H,
        result: Result<T, X>,
        view: fn(&X) -> View<'_, E>,
    ) -> Next<T, X>
    where
        E: Debug,
        H: RetryHooks<T, E> + ?Sized,
    {
        let p = self.policy;
        let (reason, hint) = match &result {
            // Only values that `should_retry_result` asked to retry get here.
            Ok(value) => (RetryReason::Result(value), Hint::None),
            Err(x) => match view(x) {
                View::Inner(e) => {
                    if !hooks.should_retry(e) {
                        return Next::Done(result);
                    }
                    let hint = match p.honor_retry_after.then(|| hooks.retry_after(e)).flatten() {
                        Some(h) => Hint::Replace(h),
                        None => Hint::None,
                    };
                    (RetryReason::Error(e), hint)
                }
                View::Rejected(r) => match r {
                    // A fail-closed backend re-checks Redis on its own schedule: an
                    // immediate retry would only be rejected again.
                    // Likewise a blocking pool whose workers are all stuck.
                    Error::CircuitOpen { .. }
                    | Error::BackendUnavailable { .. }
                    | Error::BlockingPoolFull { .. }
                    | Error::Config(_) => return Next::Done(result),
                    Error::RateLimited { retry_after, .. } => {
                        (RetryReason::Rejected(r), Hint::AtLeast(*retry_after))
                    }
                    Error::Timeout { .. } | Error::BulkheadFull { .. } => {
                        (RetryReason::Rejected(r), Hint::None)
                    }
                },
            },
        };

        if self.attempt >= p.max_attempts {
            self.give_up(GiveUpReason::AttemptsExhausted);
            return Next::Done(result);
        }

        let backoff = &p.backoff;
        let computed = self
            .delays
            .get_or_insert_with(|| {
                Box::new(match p.seed {
                    Some(seed) => backoff.iter_seeded(seed),
                    None => backoff.iter(),
                })
            })
            .next()
            .unwrap_or(Duration::ZERO);
        let delay = match hint {
            Hint::None => computed,
            Hint::Replace(h) => h.min(backoff.max_delay()),
            Hint::AtLeast(h) => computed.max(h),
        };

        if let Some(end) = self.end
            && delay > end.saturating_sub(p.clock.now())
        {
            self.give_up(GiveUpReason::Deadline);
            return Next::Done(result);
        }

        if let Some(budget) = &p.budget
            && !budget.try_withdraw()
        {
            let attempt = self.attempt;
            self.report(Interest::REJECTIONS, tracing::Level::WARN, || {
                EventKind::BudgetExhausted { budget: budget.name().into(), attempt }
            });
            self.give_up(GiveUpReason::BudgetExhausted);
            return Next::Done(result);
        }

        let event = RetryEvent {
            name: p.name.as_deref(),
            attempt: self.attempt,
            max_attempts: p.max_attempts,
            delay,
            reason,
        };
        let (attempt, max_attempts) = (self.attempt, p.max_attempts);
        self.report(Interest::RETRIES, tracing::Level::DEBUG, || EventKind::RetryScheduled {
            attempt,
            max_attempts,
            delay,
            error: match reason {
                RetryReason::Error(e) => format!("{e:?}").into(),
                RetryReason::Rejected(e) => format!("{e:?}").into(),
                RetryReason::Result(_) => "result rejected by the retry predicate".into(),
            },
        });
        hooks.on_retry(&event);
        self.attempt = self.attempt.saturating_add(1);
        Next::Retry(delay)
    }
}

/// Reports attempt `attempt` of a call through `policy` to the observers of attempts.
#[cold]
#[inline(never)]
fn report_attempt(policy: &PolicyInner, attempt: u32, succeeded: bool) {
    let name = policy.name.as_ref().unwrap_or_else(|| crate::events::unnamed());
    policy.hub.emit_built(Layer::Retry, name, || {
        (policy.clock.now(), EventKind::Attempt { attempt, succeeded })
    });
}

/// [`Attempts::run`] with a deadline, out of line: the scope's drop glue stays off the
/// path of calls without one.
#[inline(never)]
fn run_within<R>(end: Duration, clock: &crate::clock::SharedClock, f: impl FnOnce() -> R) -> R {
    crate::deadline::scope(&Deadline::at(end, clock), f)
}

/// Reports the end of a call through `policy` after `attempts` attempts to the observers
/// of calls.
#[cold]
#[inline(never)]
fn report_finished(policy: &PolicyInner, attempts: u32, succeeded: bool) {
    let name = policy.name.as_ref().unwrap_or_else(|| crate::events::unnamed());
    policy.hub.emit_built(Layer::Retry, name, || {
        (policy.clock.now(), EventKind::RetryFinished { attempts, succeeded })
    });
}
