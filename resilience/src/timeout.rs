//! Timeouts for async and blocking calls.
