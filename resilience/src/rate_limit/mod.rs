//! Token-bucket rate limiters: direct and keyed, with wait, reject and queue policies.
