//! Bulkheads: a limit on calls in flight.
