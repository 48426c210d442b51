//! The breaker's state word: state, generation and half-open counters in one `AtomicU64`.
//!
//! Layout: `generation << 32 | slow << 31 | successes << 17 | probes << 3 | state`. Every
//! transition bumps the generation, so a permit taken in one state (which remembers the
//! generation) can tell that the circuit has moved on since, and the half-open counters
//! are updated with a compare-and-swap that fails as soon as the generation changes.
//!
//! The `slow` bit mirrors the config: set when a call through the closed circuit needs
//! more than a success count (a slow-call threshold to time it, or a failure-rate window
//! to record it in). With it clear, one load of the word admits a closed call and tells
//! its success to skip the policy.

use super::CircuitState;

const STATE_MASK: u64 = 0b111;
const PROBES_SHIFT: u32 = 3;
const SUCCESSES_SHIFT: u32 = 17;
const COUNTER_MASK: u64 = (1 << 14) - 1;
const SLOW: u64 = 1 << 31;

/// A decoded state word (the half-open counters hold up to 16 383).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    /// `state` at `generation` with zeroed half-open counters.
    pub(crate) fn new(state: CircuitState, generation: u32) -> Self {
        let code = match state {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
            CircuitState::ForcedOpen => 3,
            CircuitState::Disabled => 4,
        };
        Word((u64::from(generation) << 32) | code)
    }

    pub(crate) fn state(self) -> CircuitState {
        match self.0 & STATE_MASK {
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            3 => CircuitState::ForcedOpen,
            4 => CircuitState::Disabled,
            _ => CircuitState::Closed,
        }
    }

    /// Closed, with a config under which a closed call is timed by nobody and recorded
    /// in no window: the fast path, in one mask.
    #[inline(always)]
    pub(crate) fn is_fast_closed(self) -> bool {
        self.0 & (STATE_MASK | SLOW) == 0
    }

    /// Whether a closed call needs more than a success count (see the module docs).
    #[inline(always)]
    pub(crate) fn is_slow(self) -> bool {
        self.0 & SLOW != 0
    }

    /// The same word with the `slow` bit set to `slow`.
    pub(crate) fn with_slow(self, slow: bool) -> Self {
        Word((self.0 & !SLOW) | if slow { SLOW } else { 0 })
    }

    /// `state() == Closed`, in one mask.
    #[inline]
    pub(crate) fn is_closed(self) -> bool {
        self.0 & STATE_MASK == 0
    }

    #[inline]
    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Probe calls in flight (half-open).
    pub(crate) fn probes(self) -> u32 {
        ((self.0 >> PROBES_SHIFT) & COUNTER_MASK) as u32
    }

    /// Successful probes so far (half-open).
    pub(crate) fn successes(self) -> u32 {
        ((self.0 >> SUCCESSES_SHIFT) & COUNTER_MASK) as u32
    }

    /// The same word with the counters replaced (each saturating at 16 383).
    pub(crate) fn with_counters(self, probes: u32, successes: u32) -> Self {
        let p = u64::from(probes).min(COUNTER_MASK);
        let s = u64::from(successes).min(COUNTER_MASK);
        let cleared =
            self.0 & !((COUNTER_MASK << PROBES_SHIFT) | (COUNTER_MASK << SUCCESSES_SHIFT));
        Word(cleared | (p << PROBES_SHIFT) | (s << SUCCESSES_SHIFT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
            CircuitState::ForcedOpen,
            CircuitState::Disabled,
        ] {
            let w = Word::new(state, u32::MAX).with_counters(10_000, 9_999).with_slow(true);
            assert_eq!(w.state(), state);
            assert_eq!(w.is_closed(), state == CircuitState::Closed);
            assert!(w.is_slow() && !w.is_fast_closed());
            assert_eq!(w.with_slow(false).is_fast_closed(), state == CircuitState::Closed);
            assert_eq!(w.with_slow(false).with_counters(0, 0), Word::new(state, u32::MAX));
            assert_eq!(w.generation(), u32::MAX);
            assert_eq!(w.probes(), 10_000);
            assert_eq!(w.successes(), 9_999);
        }
    }

    #[test]
    fn counters_saturate_without_touching_other_fields() {
        let w = Word::new(CircuitState::HalfOpen, 7).with_slow(true);
        let w = w.with_counters(u32::MAX, u32::MAX);
        assert_eq!((w.probes(), w.successes(), w.is_slow()), (16_383, 16_383, true));
        assert_eq!((w.state(), w.generation()), (CircuitState::HalfOpen, 7));
        let w = w.with_counters(0, 1);
        assert_eq!((w.probes(), w.successes()), (0, 1));
    }
}
