//! What the attribute is applied to: sync or async, what the body produces, the
//! argument names (for `fallback`), in the manner of tracing-attributes' `AsyncInfo`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{
    Block, Expr, ExprAsync, FnArg, GenericArgument, ItemFn, Pat, PathArguments, ReturnType, Stmt,
    Type, TypeParamBound,
};

/// How the body runs.
pub(crate) enum Shape {
    /// A plain `fn`.
    Sync,
    /// An `async fn`.
    AsyncFn,
    /// A `fn` whose body ends in `async move { .. }` or `Box::pin(async move { .. })`
    /// (what `#[async_trait]` produces before this attribute runs).
    AsyncBlock,
}

/// An argument as the fallback call passes it on.
pub(crate) enum ArgName {
    /// `self` in any form.
    SelfValue { by_reference: bool, span: Span },
    /// A plain identifier pattern (`x`, `mut x`).
    Ident(syn::Ident),
    /// Any other pattern (`(a, b)`, `Struct { .. }`).
    Pattern(Span),
}

/// The analysed function.
pub(crate) struct FnInfo {
    pub(crate) shape: Shape,
    /// What the body evaluates to: the return type, or the future's `Output`.
    pub(crate) ret: TokenStream,
    /// Where errors about the return type point.
    pub(crate) ret_span: Span,
    /// Whether `ret` reads as a `Result` (`Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>`).
    pub(crate) ret_is_result: bool,
    /// Whether `ret` is certainly not a `Result` (`()`, `u32`, `String`, `Option<T>`,
    /// a reference, a tuple, ...): reported by the macro itself, before type checking.
    pub(crate) ret_not_result: bool,
    pub(crate) args: Vec<ArgName>,
    /// Argument types, for the `'static` rule of a sync `#[timeout]`.
    pub(crate) arg_types: Vec<Type>,
    /// The error type `E` of `Result<T, E>` when it is a type parameter of the function
    /// without `Classify` among its bounds: a retry cannot classify its errors.
    pub(crate) unclassified_error: Option<syn::Ident>,
}

impl FnInfo {
    pub(crate) fn is_async(&self) -> bool {
        !matches!(self.shape, Shape::Sync)
    }
}

/// Analyses `item`, refusing what no attribute can wrap.
pub(crate) fn analyze(item: &ItemFn, attr: &str) -> syn::Result<FnInfo> {
    if let Some(constness) = &item.sig.constness {
        return Err(syn::Error::new(
            constness.span,
            format!(
                "`#[{attr}]` cannot wrap a `const fn`: retries, breakers and limiters run at run time; remove `const`"
            ),
        ));
    }
    let (shape, ret, ret_span) = if item.sig.asyncness.is_some() {
        let (ret, span) = declared(&item.sig.output, item.sig.ident.span());
        (Shape::AsyncFn, ret, span)
    } else if let Some(found) = trailing_async(&item.block) {
        let output = future_output(&item.sig.output).or_else(|| async_trait_hint(found));
        let Some(output) = output else {
            return Err(return_error(
                &item.sig,
                format!(
                    "`#[{attr}]` cannot tell what this future returns: write the return type as `impl Future<Output = Result<T, E>>`"
                ),
            ));
        };
        let span = output.span();
        (Shape::AsyncBlock, output.to_token_stream(), span)
    } else if names_future(&item.sig.output) {
        return Err(return_error(
            &item.sig,
            format!(
                "`#[{attr}]` on a function returning a future needs its body to be the future: make it an `async fn`, or end the body with `async move {{ .. }}`; wrapping only the construction of the future would not protect the call"
            ),
        ));
    } else {
        let (ret, span) = declared(&item.sig.output, item.sig.ident.span());
        (Shape::Sync, ret, span)
    };
    let ret_is_result = reads_as_result(&ret);
    let ret_not_result = certainly_not_result(&ret);
    let mut args = Vec::new();
    let mut arg_types = Vec::new();
    for input in &item.sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                args.push(ArgName::SelfValue {
                    by_reference: r.reference.is_some() || !matches!(*r.ty, Type::Path(_)),
                    span: r.self_token.span,
                });
                arg_types.push((*r.ty).clone());
            }
            FnArg::Typed(t) => {
                args.push(match &*t.pat {
                    Pat::Ident(p) if p.subpat.is_none() => ArgName::Ident(p.ident.clone()),
                    other => ArgName::Pattern(other.span()),
                });
                arg_types.push((*t.ty).clone());
            }
        }
    }
    let unclassified_error = unclassified_error(&ret, &item.sig.generics);
    Ok(FnInfo {
        shape,
        ret,
        ret_span,
        ret_is_result,
        ret_not_result,
        args,
        arg_types,
        unclassified_error,
    })
}

/// `E` in `Result<T, E>` when `E` is one of `generics`' type parameters and no bound on
/// it (in the parameter list or the `where` clause) names `Classify`. The attribute reads
/// the bounds as written: a bound through another trait is not seen.
fn unclassified_error(ret: &TokenStream, generics: &syn::Generics) -> Option<syn::Ident> {
    let Ok(Type::Path(ty)) = syn::parse2::<Type>(ret.clone()) else { return None };
    let last = ty.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let (Some(_), Some(Type::Path(err)), None) = (types.next(), types.next(), types.next()) else {
        return None;
    };
    let ident = err.path.get_ident().filter(|_| err.qself.is_none())?;
    let param = generics.type_params().find(|p| p.ident == *ident)?;
    let names_classify = |bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>| {
        bounds.iter().any(|b| {
            matches!(b, TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == "Classify"))
        })
    };
    if names_classify(&param.bounds) {
        return None;
    }
    let in_where = generics.where_clause.iter().flat_map(|w| &w.predicates).any(|p| {
        matches!(p, syn::WherePredicate::Type(t)
            if matches!(&t.bounded_ty, Type::Path(b) if b.qself.is_none() && b.path.is_ident(ident))
                && names_classify(&t.bounds))
    });
    if in_where { None } else { Some(ident.clone()) }
}

fn declared(output: &ReturnType, fallback: Span) -> (TokenStream, Span) {
    match output {
        ReturnType::Default => (quote!(()), fallback),
        ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
    }
}

/// An error on the whole return type (or the function name when there is none).
fn return_error(sig: &syn::Signature, message: String) -> syn::Error {
    match &sig.output {
        ReturnType::Type(_, ty) => syn::Error::new_spanned(ty, message),
        ReturnType::Default => syn::Error::new(sig.ident.span(), message),
    }
}

/// The trailing `async move { .. }` of a body, possibly inside `Box::pin(..)`.
pub(crate) fn trailing_async(block: &Block) -> Option<&ExprAsync> {
    match block.stmts.last()? {
        Stmt::Expr(expr, None) => async_in(expr),
        _ => None,
    }
}

fn async_in(expr: &Expr) -> Option<&ExprAsync> {
    match expr {
        Expr::Async(a) => Some(a),
        Expr::Call(call) if call.args.len() == 1 => {
            let is_pin = matches!(&*call.func, Expr::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "pin"));
            if is_pin { call.args.first().and_then(async_in) } else { None }
        }
        Expr::Paren(p) => async_in(&p.expr),
        _ => None,
    }
}

/// `R` in `impl Future<Output = R>`, `Pin<Box<dyn Future<Output = R> + Send>>`, ...
fn future_output(output: &ReturnType) -> Option<Type> {
    match output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => output_of(ty),
    }
}

fn output_of(ty: &Type) -> Option<Type> {
    match ty {
        Type::ImplTrait(t) => t.bounds.iter().find_map(bound_output),
        Type::TraitObject(t) => t.bounds.iter().find_map(bound_output),
        Type::Paren(p) => output_of(&p.elem),
        Type::Group(g) => output_of(&g.elem),
        Type::Path(p) => p.path.segments.iter().find_map(|seg| match &seg.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                GenericArgument::Type(t) => output_of(t),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    }
}

fn bound_output(bound: &TypeParamBound) -> Option<Type> {
    let TypeParamBound::Trait(t) = bound else { return None };
    let last = t.path.segments.last()?;
    if last.ident != "Future" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    args.args.iter().find_map(|a| match a {
        GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(assoc.ty.clone()),
        _ => None,
    })
}

/// `R` from `#[async_trait]`'s `if let Some(__ret) = None::<R> { .. }` type hint.
fn async_trait_hint(block: &ExprAsync) -> Option<Type> {
    block.block.stmts.iter().find_map(|stmt| {
        let Stmt::Expr(Expr::If(e), _) = stmt else { return None };
        let Expr::Let(l) = &*e.cond else { return None };
        let Expr::Path(p) = &*l.expr else { return None };
        let last = p.path.segments.last()?;
        if last.ident != "None" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
        args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })
    })
}

fn names_future(output: &ReturnType) -> bool {
    match output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => {
            ty.to_token_stream()
                .into_iter()
                .any(|t| matches!(t, proc_macro2::TokenTree::Ident(i) if i == "Future"))
                || contains_future(ty.to_token_stream())
        }
    }
}

fn contains_future(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "Future",
        proc_macro2::TokenTree::Group(g) => contains_future(g.stream()),
        _ => false,
    })
}

fn reads_as_result(ret: &TokenStream) -> bool {
    let Ok(ty) = syn::parse2::<Type>(ret.clone()) else { return false };
    match ty {
        Type::Path(p) => {
            p.path.segments.last().is_some_and(|s| s.ident.to_string().ends_with("Result"))
        }
        _ => false,
    }
}

fn certainly_not_result(ret: &TokenStream) -> bool {
    const NOT_RESULT: &[&str] = &[
        "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32",
        "i64", "i128", "isize", "f32", "f64", "String", "Vec", "Option", "Box", "Arc", "Rc",
        "HashMap", "BTreeMap", "HashSet", "Duration",
    ];
    let Ok(ty) = syn::parse2::<Type>(ret.clone()) else { return false };
    match ty {
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::ImplTrait(_)
        | Type::Never(_)
        | Type::Ptr(_)
        | Type::BareFn(_)
        | Type::TraitObject(_) => true,
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| NOT_RESULT.contains(&s.ident.to_string().as_str())),
        _ => false,
    }
}

/// Whether a type borrows (a reference, or a lifetime other than `'static`).
pub(crate) fn borrows(ty: &Type) -> bool {
    fn scan(tokens: TokenStream) -> bool {
        let mut iter = tokens.into_iter().peekable();
        while let Some(t) = iter.next() {
            match t {
                proc_macro2::TokenTree::Punct(p) if p.as_char() == '&' => return true,
                proc_macro2::TokenTree::Punct(p) if p.as_char() == '\'' => {
                    if let Some(proc_macro2::TokenTree::Ident(i)) = iter.peek()
                        && i != "static"
                    {
                        return true;
                    }
                }
                proc_macro2::TokenTree::Group(g) if scan(g.stream()) => return true,
                _ => {}
            }
        }
        false
    }
    scan(ty.to_token_stream())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(src: &str) -> Result<FnInfo, String> {
        let item: ItemFn = syn::parse_str(src).map_err(|e| e.to_string())?;
        analyze(&item, "retry").map_err(|e| e.to_string())
    }

    fn ret(src: &str) -> String {
        info(src).map(|i| i.ret.to_string()).unwrap_or_else(|e| e)
    }

    #[test]
    fn shapes() {
        assert!(matches!(
            info("fn f() -> Result<u8, E> { Ok(1) }").map(|i| i.shape),
            Ok(Shape::Sync)
        ));
        assert!(matches!(
            info("async fn f() -> Result<u8, E> { Ok(1) }").map(|i| i.shape),
            Ok(Shape::AsyncFn)
        ));
        assert!(matches!(
            info("fn f() -> impl Future<Output = Result<u8, E>> { async move { Ok(1) } }")
                .map(|i| i.shape),
            Ok(Shape::AsyncBlock)
        ));
    }

    #[test]
    fn future_outputs() {
        assert_eq!(
            ret("fn f() -> impl Future<Output = Result<u8, E>> + Send { async move { Ok(1) } }"),
            "Result < u8 , E >"
        );
        assert_eq!(
            ret(
                "fn f(&self) -> Pin<Box<dyn Future<Output = Result<u8, E>> + Send + 'async_trait>> { Box::pin(async move { Ok(1) }) }"
            ),
            "Result < u8 , E >"
        );
        assert_eq!(ret("fn f() { }"), "()");
    }

    #[test]
    fn async_trait_hint_names_the_output() {
        assert_eq!(
            ret(
                "fn f(&self) -> BoxFut<'_> { Box::pin(async move { if let Some(__ret) = None::<Result<u8, E>> { return __ret; } Ok(1) }) }"
            ),
            "Result < u8 , E >"
        );
    }

    #[test]
    fn refusals() {
        let e = info("const fn f() -> Result<u8, E> { Ok(1) }").err().unwrap_or_default();
        assert!(e.contains("cannot wrap a `const fn`"), "{e}");
        let e = info("fn f() -> impl Future<Output = Result<u8, E>> { make() }")
            .err()
            .unwrap_or_default();
        assert!(e.contains("needs its body to be the future"), "{e}");
    }

    #[test]
    fn result_detection_and_args() {
        let i = info(
            "fn f(&self, a: &str, (b, c): (u8, u8), mut d: String) -> io::Result<()> { Ok(()) }",
        );
        let Ok(i) = i else { return };
        assert!(i.ret_is_result);
        assert!(matches!(i.args[0], ArgName::SelfValue { by_reference: true, .. }));
        assert!(matches!(&i.args[1], ArgName::Ident(id) if id == "a"));
        assert!(matches!(i.args[2], ArgName::Pattern(_)));
        assert!(matches!(&i.args[3], ArgName::Ident(id) if id == "d"));
        assert!(borrows(&i.arg_types[1]));
        assert!(!borrows(&i.arg_types[3]));
        assert!(!info("fn f() -> u8 { 1 }").is_ok_and(|i| i.ret_is_result));
        assert!(info("fn f() -> u8 { 1 }").is_ok_and(|i| i.ret_not_result));
        assert!(info("fn f() { }").is_ok_and(|i| i.ret_not_result));
        assert!(info("fn f() -> Option<u8> { None }").is_ok_and(|i| i.ret_not_result));
        assert!(
            info("fn f() -> Response { Response::default() }")
                .is_ok_and(|i| !i.ret_not_result && !i.ret_is_result)
        );
    }

    #[test]
    fn a_generic_error_type_needs_classify_among_its_bounds() {
        let e = |src: &str| info(src).map(|i| i.unclassified_error.map(|e| e.to_string()));
        assert_eq!(e("fn f<E: Debug>() -> Result<u8, E> { todo() }"), Ok(Some("E".to_owned())));
        assert_eq!(
            e("async fn f<T, Err>() -> Result<T, Err> where Err: Send { todo() }"),
            Ok(Some("Err".to_owned()))
        );
        assert_eq!(e("fn f<E: resilience::Classify>() -> Result<u8, E> { todo() }"), Ok(None));
        assert_eq!(
            e("fn f<E>() -> Result<u8, E> where E: Classify + RetryAfter { todo() }"),
            Ok(None)
        );
        assert_eq!(e("fn f<E>() -> Result<u8, MyError> { todo() }"), Ok(None));
        assert_eq!(e("fn f<T>() -> Result<T, MyError> { todo() }"), Ok(None));
        assert_eq!(e("fn f<E>() -> Result<u8, Box<E>> { todo() }"), Ok(None));
    }

    #[test]
    fn static_lifetimes_do_not_borrow() {
        let ty: Type =
            syn::parse_str("Cow<'static, str>").unwrap_or(Type::Verbatim(TokenStream::new()));
        assert!(!borrows(&ty));
        let ty: Type = syn::parse_str("Cow<'a, str>").unwrap_or(Type::Verbatim(TokenStream::new()));
        assert!(borrows(&ty));
    }
}
