//! Circuit breakers.

mod state;

pub use state::CircuitState;
