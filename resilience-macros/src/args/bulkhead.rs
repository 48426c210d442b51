//! `#[bulkhead(...)]` arguments.

use proc_macro2::TokenStream;
use syn::LitStr;

use super::{Entry, Errors};
use crate::duration::DurationLit;

const ATTR: &str = "bulkhead";

pub(crate) const KEYS: &[&str] = &["name", "max_concurrent", "max_wait", "preset", "crate"];

/// Parsed `#[bulkhead(...)]`.
#[derive(Default)]
pub(crate) struct BulkheadArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    pub(crate) max_concurrent: Option<u32>,
    pub(crate) max_wait: Option<DurationLit>,
    pub(crate) preset: Option<LitStr>,
}

impl BulkheadArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> BulkheadArgs {
        super::parse_keyed(tokens, errors, ATTR, KEYS, Self::set)
    }

    fn set(&mut self, entry: &Entry) -> syn::Result<()> {
        let key = entry.name();
        if let Some(err) = super::no_list(ATTR, entry) {
            return Err(err);
        }
        let example = match key.as_str() {
            "name" => "\"db\"",
            "max_concurrent" => "10",
            "max_wait" => "1s",
            "preset" => "\"database\"",
            _ => "\"my_facade::resilience\"",
        };
        let value = entry.assigned(ATTR, example)?;
        match key.as_str() {
            "name" => self.name = Some(super::string(ATTR, &key, value)?),
            "max_concurrent" => self.max_concurrent = Some(super::count(ATTR, &key, value)?),
            "max_wait" => self.max_wait = Some(super::duration(ATTR, &key, value)?),
            "preset" => self.preset = Some(super::string(ATTR, &key, value)?),
            _ => self.krate = Some(super::crate_path(ATTR, value)?),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn parses_every_argument() {
        let mut errors = Errors::default();
        let args = BulkheadArgs::parse(
            quote!(max_concurrent = 10, max_wait = 1s, name = "db"),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        assert_eq!(args.max_concurrent, Some(10));
        assert_eq!(args.max_wait.map(|d| d.nanos), Some(1_000_000_000));
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let mut errors = Errors::default();
        let _ = BulkheadArgs::parse(quote!(max_concurrent = 0), &mut errors);
        let message = errors.finish().err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(message, "`max_concurrent` in `#[bulkhead]` must be at least 1 (got 0)");
    }
}
