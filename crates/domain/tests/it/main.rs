//! The domain's integration tests: the algebra of operations, hostile input for them, clients
//! editing at once through a server, plain clients' buffers, and what the local completion
//! engine suggests. (The real editing traces are replayed in `crates/app/tests/it/traces.rs`,
//! through the domain and through `Rooms`.)

mod algebra;
mod autocomplete;
mod client;
mod fuzz;
mod plain;
