//! Runnable examples of `resilience`: see the binaries in `src/bin/`.
