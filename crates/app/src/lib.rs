//! Duet's use cases: creating and reading rooms (and their history), opening them for editing,
//! committing concurrent edits in one order, and asking for completions.
//!
//! Each use case talks to the outside world only through the ports in [`ports`], which this crate
//! owns; adapters (the SQL store, the WebSocket server) implement or call them. This crate knows
//! no database library, web framework or wire format. In-memory fakes and mockall mocks of every
//! port are exported behind the `test-support` feature.

mod autocomplete;
mod history;
mod live;
pub mod ports;
mod resume;
mod rooms;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use autocomplete::{Autocomplete, AutocompleteRequestError};
pub use history::{HistoryError, HistoryGap, HistoryPage, RoomAtError};
pub use live::{
    Change, LiveRoom, LiveSettings, Outcome, PlainFrame, Submission, SubmitError, lock_plain,
};
pub use resume::ResumeTokens;
pub use rooms::{
    ApplyEditError, CreateRoomError, GetRoomError, IdentifyError, Identity, NewRoom, Rooms,
};

/// Formats an error with all its causes, `outer: inner: innermost`, for one log line.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
