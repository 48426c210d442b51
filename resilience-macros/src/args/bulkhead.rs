//! `#[bulkhead(...)]` arguments.

use proc_macro2::TokenStream;
use syn::LitStr;

use super::{Entry, Errors, LayerSettings, keys};

const ATTR: &str = "bulkhead";

/// The attribute's own keys; the layer's are [`keys::BULKHEAD`].
const OWN: &[&str] = &["preset", "crate"];

/// Parsed `#[bulkhead(...)]`.
#[derive(Default)]
pub(crate) struct BulkheadArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    /// The layer keys (`max_concurrent`, `max_wait`), for the runtime's config.
    pub(crate) settings: LayerSettings,
    pub(crate) preset: Option<LitStr>,
}

impl BulkheadArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> BulkheadArgs {
        let keys = super::all_keys(&["name"], keys::BULKHEAD, OWN);
        super::parse_keyed(tokens, errors, ATTR, &keys, Self::set)
    }

    fn set(&mut self, entry: &Entry) -> syn::Result<()> {
        let (key, value) = super::key_value(ATTR, entry, keys::BULKHEAD, example)?;
        if self.settings.set(ATTR, keys::BULKHEAD, &key, value)? {
            return Ok(());
        }
        match key.as_str() {
            "name" => self.name = Some(super::string(ATTR, &key, value)?),
            "preset" => self.preset = Some(super::string(ATTR, &key, value)?),
            _ => self.krate = Some(super::crate_path(ATTR, value)?),
        }
        Ok(())
    }
}

/// Examples of the attribute's own keys (the layer's are in [`keys::BULKHEAD`]).
fn example(key: &str) -> &'static str {
    match key {
        "name" => "\"db\"",
        "preset" => "\"database\"",
        _ => "\"my_facade::resilience\"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Setting;
    use quote::quote;

    #[test]
    fn parses_every_argument() {
        let mut errors = Errors::default();
        let args = BulkheadArgs::parse(
            quote!(max_concurrent = 10, max_wait = 1s, name = "db"),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        assert_eq!(args.settings.get("max_concurrent").map(|v| v.0), Some(&Setting::Int(10)));
        assert_eq!(args.settings.nanos("max_wait").map(|v| v.0), Some(1_000_000_000));
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let mut errors = Errors::default();
        let _ = BulkheadArgs::parse(quote!(max_concurrent = 0), &mut errors);
        let message = errors.finish().err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(message, "`max_concurrent` in `#[bulkhead]` must be at least 1 (got 0)");
    }
}
