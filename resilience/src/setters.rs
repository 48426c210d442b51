//! The builders' plain setters, written as one table per builder.
//!
//! Most builder methods store their argument and return the builder; spelling each of
//! them out repeats the same five lines. `setters!` writes them from one line each,
//! keeping the doc comment and the assignment visible at the call site:
//!
//! ```text
//! setters! {
//!     /// Bucket capacity.
//!     pub fn burst(burst: u32) => self.burst = Some(burst);
//! }
//! ```
//!
//! A setter that does more than one assignment is written out by hand.

/// Builder setters `fn name(mut self, arg: Type) -> Self` that make one assignment.
macro_rules! setters {
    ($(
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($arg:ident: $ty:ty) => self.$($field:ident).+ = $value:expr;
    )*) => {
        $(
            $(#[$attr])*
            $vis fn $name(mut self, $arg: $ty) -> Self {
                self.$($field).+ = $value;
                self
            }
        )*
    };
}
