//! The domain's integration tests: the algebra of operations, replays of real editing traces,
//! and what the local completion engine suggests.

mod algebra;
mod autocomplete;
mod plain;
mod traces;
