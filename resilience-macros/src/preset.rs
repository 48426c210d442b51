//! Preset names, checked at compile time against the runtime's list of built-in presets
//! (the shared `preset_names` file). A preset registered at run time is written
//! `preset = "user:NAME"` and looked up when the call site first runs.

use syn::LitStr;

use crate::args::closest;
use crate::preset_names::{BUILT_IN, USER_PREFIX};

/// Checks the name of `preset = ".."` in `#[attr]`.
pub(crate) fn check(attr: &str, lit: &LitStr) -> syn::Result<()> {
    let written = lit.value();
    if let Some(user) = written.strip_prefix(USER_PREFIX) {
        if user.is_empty() {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "`preset` in `#[{attr}]` names no preset after `{USER_PREFIX}`: write `preset = \"{USER_PREFIX}billing\"` for the preset registered as `billing`"
                ),
            ));
        }
        return Ok(());
    }
    if BUILT_IN.contains(&written.as_str()) {
        return Ok(());
    }
    let list = BUILT_IN.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    let message = match closest(&written, BUILT_IN) {
        Some(near) => format!(
            "unknown preset `{written}` in `#[{attr}]`; did you mean `{near}`? the built-in presets are {list}"
        ),
        None => format!(
            "unknown preset `{written}` in `#[{attr}]`; the built-in presets are {list}; a preset registered at run time is written `preset = \"{USER_PREFIX}{written}\"`"
        ),
    };
    Err(syn::Error::new(lit.span(), message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn check_name(name: &str) -> Result<(), String> {
        check("resilient", &LitStr::new(name, Span::call_site())).map_err(|e| e.to_string())
    }

    #[test]
    fn built_in_and_user_presets_pass() {
        assert_eq!(check_name("shopify"), Ok(()));
        assert_eq!(check_name("user:billing"), Ok(()));
    }

    #[test]
    fn a_typo_gets_the_nearest_built_in_name() {
        let e = check_name("shopfy").err().unwrap_or_default();
        assert!(e.starts_with("unknown preset `shopfy` in `#[resilient]`; did you mean `shopify`? the built-in presets are `database`, `api`, "), "{e}");
        assert!(e.ends_with("`shopify`, `development`"), "{e}");
        let e = check_name("billing").err().unwrap_or_default();
        assert!(!e.contains("did you mean"), "{e}");
        assert!(e.ends_with("written `preset = \"user:billing\"`"), "{e}");
        assert!(check_name("user:").is_err());
    }
}
