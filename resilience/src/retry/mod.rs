//! Retry policies, the retry budget, and the blocking and async retry drivers.
