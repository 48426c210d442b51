//! Backoff strategies: iterators of delays between attempts.
