//! The use cases' integration tests: real editing histories committed through `Rooms`.

mod traces;
