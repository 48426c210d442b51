//! The core every entry point calls: parse → validate → expand, never losing the item.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::ItemFn;

use crate::args::Errors;
use crate::stack::{self, Kind};
use crate::{expand, func, validate};

/// Expands attribute `kind` with `args` on `item`. On any error, returns the function
/// as written (minus the resilience attributes, whose errors are reported) plus the
/// errors.
pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    if stack::is_absorbed(&args) {
        // The attribute above already built this one into its pipeline.
        return item;
    }
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let message = format!(
                "`#[{}]` applies to functions with a body (free functions, methods, trait impl methods); {e}",
                kind.name()
            );
            let error = syn::Error::new(e.span(), message).to_compile_error();
            return quote!(#error #item);
        }
    };
    let mut errors = Errors::default();
    let stack = stack::collect(kind, args, &mut function.attrs, &mut errors);
    let info = errors.ok(func::analyze(&function, kind.name()));
    if let Some(info) = &info {
        validate::check(&stack, info, kind.name(), &mut errors);
    }
    match (errors.into_error(), info) {
        (None, Some(info)) => match expand::function(function.clone(), &stack, &info) {
            Ok(tokens) => tokens,
            Err(e) => unchanged(e, &function),
        },
        (Some(e), _) => unchanged(e, &function),
        (None, None) => function.into_token_stream(),
    }
}

fn unchanged(error: syn::Error, function: &ItemFn) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#error #function)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_function() {
        let out = expand(
            Kind::Retry,
            quote!(max_attempts = 0),
            quote!(
                #[timeout(1s)]
                pub fn keep_me(x: u8) -> Result<u8, E> {
                    Ok(x)
                }
            ),
        )
        .to_string();
        assert!(
            out.contains(
                "compile_error ! { \"`max_attempts` in `#[retry]` must be at least 1 (got 0)\" }"
            ),
            "{out}"
        );
        assert!(out.ends_with("pub fn keep_me (x : u8) -> Result < u8 , E > { Ok (x) }"), "{out}");
    }

    #[test]
    fn an_absorbed_attribute_passes_the_item_through() {
        let item = crate::fixtures::fallible_fn();
        let out = expand(Kind::Timeout, quote!(__resilience_absorbed), item.clone());
        assert_eq!(out.to_string(), item.to_string());
    }

    #[test]
    fn non_functions_are_refused_and_kept() {
        let out = expand(
            Kind::Retry,
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(out.contains("applies to functions with a body"), "{out}");
        assert!(out.ends_with("struct S ;"));
    }

    #[test]
    fn valid_input_expands() {
        let out =
            expand(Kind::Bulkhead, quote!(max_concurrent = 2), crate::fixtures::fallible_fn())
                .to_string();
        assert!(
            out.contains(
                ":: resilience :: pipeline :: layer :: bulkhead (& __resilience_bulkhead_0"
            ),
            "{out}"
        );
        assert!(!out.contains("compile_error"));
    }
}
