//! `#[rate_limit(...)]` arguments.

use proc_macro2::TokenStream;
use syn::{Expr, ExprLit, Lit, LitStr};

use super::{Entry, Errors, LayerSettings, keys};

const ATTR: &str = "rate_limit";

/// The attribute's own keys; the layer's are [`keys::RATE_LIMIT`].
const OWN: &[&str] = &["cost", "key", "preset", "crate"];

/// Parsed `#[rate_limit(...)]`.
#[derive(Default)]
pub(crate) struct RateLimitArgs {
    pub(crate) krate: Option<syn::Path>,
    pub(crate) name: Option<LitStr>,
    /// The layer keys (`per_second`, `burst`, ...), for the runtime's config.
    pub(crate) settings: LayerSettings,
    pub(crate) cost: Option<Expr>,
    pub(crate) key: Option<Expr>,
    pub(crate) preset: Option<LitStr>,
}

impl RateLimitArgs {
    /// Parses the arguments, recording every problem in `errors`.
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> RateLimitArgs {
        let keys = super::all_keys(&["name"], keys::RATE_LIMIT, OWN);
        super::parse_keyed(tokens, errors, ATTR, &keys, Self::set)
    }

    fn set(&mut self, entry: &Entry) -> syn::Result<()> {
        let (key, value) = super::key_value(ATTR, entry, keys::RATE_LIMIT, example)?;
        if self.settings.set(ATTR, keys::RATE_LIMIT, &key, value)? {
            return Ok(());
        }
        match key.as_str() {
            "name" => self.name = Some(super::string(ATTR, &key, value)?),
            "cost" => {
                if let Expr::Lit(ExprLit { lit: Lit::Int(_), .. }) | Expr::Unary(_) = value {
                    super::count(ATTR, &key, value)?;
                }
                self.cost = Some(value.clone());
            }
            "key" => self.key = Some(value.clone()),
            "preset" => self.preset = Some(super::string(ATTR, &key, value)?),
            _ => self.krate = Some(super::crate_path(ATTR, value)?),
        }
        Ok(())
    }
}

/// Examples of the attribute's own keys (the layer's are in [`keys::RATE_LIMIT`]).
fn example(key: &str) -> &'static str {
    match key {
        "name" => "\"shopify\"",
        "cost" => "1",
        "key" => "shop",
        "preset" => "\"api\"",
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
        let args = RateLimitArgs::parse(
            quote!(
                name = "shopify",
                per_second = 2,
                burst = 40,
                cost = query.cost(),
                key = shop,
                on_limit = queue,
                max_wait = 5s,
                max_queue = 10,
                idle_timeout = 10min
            ),
            &mut errors,
        );
        assert!(errors.finish().is_ok());
        let s = &args.settings;
        assert_eq!(s.get("per_second").map(|v| v.0), Some(&Setting::Int(2)));
        assert_eq!(s.get("burst").map(|v| v.0), Some(&Setting::Int(40)));
        assert!(args.cost.is_some() && args.key.is_some());
        assert_eq!(s.text("on_limit").map(|v| v.0), Some("queue"));
        assert_eq!(s.nanos("max_wait").map(|v| v.0), Some(5_000_000_000));
        assert_eq!(s.get("max_queue").map(|v| v.0), Some(&Setting::Int(10)));
        assert_eq!(s.nanos("idle_timeout").map(|v| v.0), Some(600_000_000_000));
    }

    #[test]
    fn literal_cost_and_burst_are_checked() {
        let mut errors = Errors::default();
        let _ = RateLimitArgs::parse(quote!(per_second = 1, burst = 0, cost = 0), &mut errors);
        let messages: Vec<String> = errors
            .into_error()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(
            messages,
            [
                "`burst` in `#[rate_limit]` must be at least 1 (got 0)",
                "`cost` in `#[rate_limit]` must be at least 1 (got 0)"
            ]
        );
    }
}
