//! The domain's integration tests: the algebra of operations, hostile input for them, plain
//! clients' buffers, and what the local completion engine suggests. (The real editing traces are
//! replayed in `crates/app/tests/it/traces.rs`, through the domain and through `Rooms`.)

mod algebra;
mod autocomplete;
mod fuzz;
mod plain;
