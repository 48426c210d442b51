//! Lock-free sliding windows of call outcomes: the last N calls, or the last T in buckets.
//!
//! Recording takes a few atomic operations and never locks or allocates. Under heavy
//! concurrency a reading may be off by the calls being recorded at that instant; at rest
//! the counts are exact.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use super::config::Window;
use crate::clock::as_nanos;

/// Outcomes counted by a window: `(total, failures)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counts {
    pub(crate) total: u64,
    pub(crate) failures: u64,
}

impl Counts {
    /// The failure rate, when the window holds any outcome.
    pub(crate) fn rate(self) -> Option<f64> {
        (self.total > 0).then(|| self.failures as f64 / self.total as f64)
    }
}

/// A count or time window.
#[derive(Debug)]
pub(crate) enum FailureWindow {
    Count(CountWindow),
    Time(TimeWindow),
}

impl FailureWindow {
    pub(crate) fn new(window: Window) -> Self {
        match window {
            Window::Count(n) => FailureWindow::Count(CountWindow::new(n)),
            Window::Time { duration, buckets } => {
                FailureWindow::Time(TimeWindow::new(duration, buckets))
            }
        }
    }

    /// Record one outcome at clock time `now`.
    pub(crate) fn record(&self, now: Duration, failure: bool) {
        match self {
            FailureWindow::Count(w) => w.record(failure),
            FailureWindow::Time(w) => w.record(now, failure),
        }
    }

    /// The outcomes in the window at clock time `now`.
    pub(crate) fn counts(&self, now: Duration) -> Counts {
        match self {
            FailureWindow::Count(w) => w.counts(),
            FailureWindow::Time(w) => w.counts(now),
        }
    }

    /// Forget every outcome.
    pub(crate) fn clear(&self) {
        match self {
            FailureWindow::Count(w) => w.clear(),
            FailureWindow::Time(w) => w.clear(),
        }
    }

    /// Whether a time read is needed to record (time windows).
    pub(crate) fn needs_time(&self) -> bool {
        matches!(self, FailureWindow::Time(_))
    }
}

const EMPTY: u8 = 0;
const SUCCESS: u8 = 1;
const FAILURE: u8 = 2;

/// The last `n` outcomes: a ring of atomic slots plus running totals.
#[derive(Debug)]
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    cursor: AtomicU64,
    total: AtomicI64,
    failures: AtomicI64,
}

impl CountWindow {
    fn new(n: u32) -> Self {
        CountWindow {
            slots: (0..n.max(1)).map(|_| AtomicU8::new(EMPTY)).collect(),
            cursor: AtomicU64::new(0),
            total: AtomicI64::new(0),
            failures: AtomicI64::new(0),
        }
    }

    fn record(&self, failure: bool) {
        let len = self.slots.len() as u64;
        let i = self.cursor.fetch_add(1, Ordering::Relaxed) % len;
        let Some(slot) = usize::try_from(i).ok().and_then(|i| self.slots.get(i)) else {
            return;
        };
        let new = if failure { FAILURE } else { SUCCESS };
        let old = slot.swap(new, Ordering::AcqRel);
        self.account(old, new);
    }

    /// Keep the running totals equal to the slots' contents after `old` became `new`.
    fn account(&self, old: u8, new: u8) {
        let filled = |v: u8| i64::from(v != EMPTY);
        let failed = |v: u8| i64::from(v == FAILURE);
        let dt = filled(new) - filled(old);
        let df = failed(new) - failed(old);
        if dt != 0 {
            self.total.fetch_add(dt, Ordering::AcqRel);
        }
        if df != 0 {
            self.failures.fetch_add(df, Ordering::AcqRel);
        }
    }

    fn counts(&self) -> Counts {
        // Each slot change is accounted right after it, so a concurrent reading may be
        // briefly off (even negative); clamp it to a sane range.
        let total = self.total.load(Ordering::Acquire).max(0).unsigned_abs();
        let failures = self.failures.load(Ordering::Acquire).max(0).unsigned_abs().min(total);
        Counts { total, failures }
    }

    fn clear(&self) {
        for slot in self.slots.iter() {
            let old = slot.swap(EMPTY, Ordering::AcqRel);
            self.account(old, EMPTY);
        }
    }
}

const TOTAL_ONE: u64 = 1 << 16;
const COUNT_MAX: u64 = 0xFFFF;

/// The last `duration` of outcomes in `buckets` rotating buckets.
///
/// Each bucket is one `AtomicU64`: `period << 32 | total << 16 | failures`, where
/// `period` is the bucket's period number (truncated to 32 bits). Recording is a
/// compare-and-swap that either adds to the bucket's current period or recycles it for a
/// new one, so counts of different periods never mix. A bucket counts at most 65 535
/// calls; past that it keeps the rate of its first 65 535.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    width: u64,
    buckets: Box<[AtomicU64]>,
}

fn tag(word: u64) -> u32 {
    (word >> 32) as u32
}

fn total(word: u64) -> u64 {
    (word >> 16) & COUNT_MAX
}

impl TimeWindow {
    fn new(duration: Duration, buckets: u32) -> Self {
        let buckets = buckets.max(1);
        TimeWindow {
            width: (as_nanos(duration) / u64::from(buckets)).max(1),
            buckets: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The period number of `now`, starting at 1 so that 0 marks an unused bucket.
    fn period(&self, now: Duration) -> u64 {
        (as_nanos(now) / self.width).saturating_add(1)
    }

    fn record(&self, now: Duration, failure: bool) {
        let period = self.period(now);
        let i = period % self.buckets.len() as u64;
        let Some(b) = usize::try_from(i).ok().and_then(|i| self.buckets.get(i)) else {
            return;
        };
        let t = period as u32;
        let mut seen = b.load(Ordering::Acquire);
        loop {
            let new = if tag(seen) == t {
                if total(seen) == COUNT_MAX {
                    return;
                }
                seen + TOTAL_ONE + u64::from(failure)
            } else if (t.wrapping_sub(tag(seen)) as i32) < 0 {
                // The bucket already holds a later period: this sample is late.
                return;
            } else {
                (u64::from(t) << 32) | TOTAL_ONE | u64::from(failure)
            };
            match b.compare_exchange_weak(seen, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => seen = actual,
            }
        }
    }

    fn counts(&self, now: Duration) -> Counts {
        let current = self.period(now) as u32;
        let len = self.buckets.len() as u64;
        let mut c = Counts::default();
        for b in self.buckets.iter() {
            let w = b.load(Ordering::Acquire);
            if u64::from(current.wrapping_sub(tag(w))) >= len {
                continue;
            }
            c.total += total(w);
            c.failures += w & COUNT_MAX;
        }
        c
    }

    fn clear(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const S: Duration = Duration::from_secs(1);

    fn counts(total: u64, failures: u64) -> Counts {
        Counts { total, failures }
    }

    #[test]
    fn count_window_slides_old_outcomes_out() {
        let w = FailureWindow::new(Window::calls(3));
        w.record(S, true);
        w.record(S, true);
        assert_eq!(w.counts(S), counts(2, 2));
        w.record(S, false);
        assert_eq!(w.counts(S), counts(3, 2));
        w.record(S, false); // evicts the first failure
        assert_eq!(w.counts(S), counts(3, 1));
        w.record(S, false); // evicts the second
        assert_eq!(w.counts(S), counts(3, 0));
        assert_eq!(w.counts(S).rate(), Some(0.0));
    }

    #[test]
    fn count_window_clear_forgets_everything() {
        let w = FailureWindow::new(Window::calls(4));
        for _ in 0..6 {
            w.record(S, true);
        }
        assert_eq!(w.counts(S), counts(4, 4));
        w.clear();
        assert_eq!(w.counts(S), counts(0, 0));
        assert_eq!(w.counts(S).rate(), None);
        w.record(S, false);
        assert_eq!(w.counts(S), counts(1, 0));
    }

    #[test]
    fn time_window_buckets_expire() {
        // 10 s in 10 buckets of 1 s.
        let w = FailureWindow::new(Window::duration(Duration::from_secs(10)));
        w.record(Duration::from_millis(500), true);
        w.record(Duration::from_millis(1500), false);
        assert_eq!(w.counts(Duration::from_millis(1500)), counts(2, 1));
        // Still inside the 10 s window (bucket 0 covers [0, 1 s)).
        assert_eq!(w.counts(Duration::from_millis(9999)), counts(2, 1));
        // Bucket 0 expires at 10 s; bucket 1 at 11 s.
        assert_eq!(w.counts(Duration::from_secs(10)), counts(1, 0));
        assert_eq!(w.counts(Duration::from_secs(11)), counts(0, 0));
    }

    #[test]
    fn time_window_recycles_a_bucket_for_a_new_period() {
        let w = FailureWindow::new(Window::Time { duration: Duration::from_secs(4), buckets: 4 });
        w.record(Duration::from_millis(100), true);
        w.record(Duration::from_millis(200), true);
        // 4.1 s maps to the same bucket as 0.1 s: it is reset, not added to.
        w.record(Duration::from_millis(4100), false);
        assert_eq!(w.counts(Duration::from_millis(4100)), counts(1, 0));
        // A late sample for the old period is dropped.
        w.record(Duration::from_millis(300), true);
        assert_eq!(w.counts(Duration::from_millis(4100)), counts(1, 0));
    }

    #[test]
    fn time_window_clear_forgets_everything() {
        let w = FailureWindow::new(Window::duration(Duration::from_secs(10)));
        w.record(S, true);
        w.record(2 * S, true);
        w.clear();
        assert_eq!(w.counts(2 * S), counts(0, 0));
        w.record(2 * S, false);
        assert_eq!(w.counts(2 * S), counts(1, 0));
    }

    #[test]
    fn concurrent_recording_is_exact_at_rest() {
        for window in [Window::calls(1_000), Window::duration(Duration::from_secs(10))] {
            let w = Arc::new(FailureWindow::new(window));
            let threads: Vec<_> = (0..8)
                .map(|t| {
                    let w = w.clone();
                    std::thread::spawn(move || {
                        for i in 0..500 {
                            w.record(S, (i + t) % 4 == 0);
                        }
                    })
                })
                .collect();
            for t in threads {
                assert!(t.join().is_ok());
            }
            let c = w.counts(S);
            match window {
                // 4000 outcomes through 1000 slots: the totals equal the slots' content.
                Window::Count(_) => {
                    assert_eq!(c.total, 1_000);
                    if let FailureWindow::Count(cw) = &*w {
                        let in_slots = cw
                            .slots
                            .iter()
                            .filter(|s| s.load(Ordering::Relaxed) == FAILURE)
                            .count() as u64;
                        assert_eq!(c.failures, in_slots);
                    }
                }
                Window::Time { .. } => assert_eq!(c, counts(4_000, 1_000)),
            }
        }
    }
}
