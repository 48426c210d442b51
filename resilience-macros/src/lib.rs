//! Attribute macros for [`resilience`](https://docs.rs/resilience).
//!
//! Do not depend on this crate directly: use the macros through `resilience`, which
//! re-exports them and provides the runtime their expansions call.
