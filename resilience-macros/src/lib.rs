//! Attribute macros for [`resilience`](https://docs.rs/resilience).
//!
//! Do not depend on this crate directly: use the macros through `resilience`, which
//! re-exports them and provides the runtime their expansions call. The documentation
//! of each attribute, with examples and the equivalent hand-written code, is on its
//! re-export in `resilience`.
//!
//! Each entry point hands the tokens to [`expand`](crate::entry), which parses the
//! arguments, validates them against each other and against the function, and generates
//! the pipeline. On an error the function comes out unchanged beside the error, so the
//! rest of the crate keeps compiling.

mod args;
mod duration;
mod entry;
mod expand;
mod func;
mod stack;
mod validate;

use proc_macro::TokenStream;

use stack::Kind;

/// Retries the function on failure with backoff. See `resilience::retry`.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Retry, args.into(), item.into()).into()
}

/// Guards the function with a named circuit breaker. See `resilience::circuit_breaker`.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::CircuitBreaker, args.into(), item.into()).into()
}

/// Rate-limits the function with a named token bucket. See `resilience::rate_limit`.
#[proc_macro_attribute]
pub fn rate_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::RateLimit, args.into(), item.into()).into()
}

/// Bounds each call's duration. See `resilience::timeout`.
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Timeout, args.into(), item.into()).into()
}

/// Bounds the number of calls in flight. See `resilience::bulkhead`.
#[proc_macro_attribute]
pub fn bulkhead(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Bulkhead, args.into(), item.into()).into()
}

/// The whole stack in one attribute. See `resilience::resilient`.
#[proc_macro_attribute]
pub fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    entry::expand(Kind::Resilient, args.into(), item.into()).into()
}
