//! The use cases' integration tests: real editing histories replayed through the domain and
//! committed through `Rooms`.

mod traces;
