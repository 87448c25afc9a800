//! The domain's integration tests: the algebra of operations, hostile input for them, clients
//! editing at once through a server, replays of real editing traces, and what the local
//! completion engine suggests.

mod algebra;
mod autocomplete;
mod client;
mod fuzz;
mod plain;
mod traces;
