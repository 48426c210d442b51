//! Durations in serialized stats as seconds (a float), as dashboards and JSON readers
//! expect, not serde's `{secs, nanos}`.

use std::time::Duration;

use serde::Serializer;

/// `d` as seconds.
pub(crate) fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// `d` as seconds, or none.
pub(crate) fn opt_secs<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}
