//! Duet's pure core: the types and rules of collaborative rooms, with no I/O.
//!
//! This crate knows no async runtime, database or web framework, so any Rust program can reuse it:
//! a room and its code ([`Room`]), typed ids ([`RoomId`]) and languages ([`Language`]), edits to a
//! room's code ([`TextOperation`], applied to a [`Document`]), positions counted the way editors count them ([`Utf16Position`]), the
//! client's rules for sending edits and receiving others' ([`Client`], ot.js's), the
//! merge of plain clients' whole-buffer frames ([`PlainMember`]), and
//! the autocomplete port ([`Autocompleter`]) with the prototype's canned engine, and who may do
//! what in a room ([`Role`], [`Grant`]).

pub mod access;
mod autocomplete;
pub mod client;
mod diff;
mod document;
mod language;
mod operation;
pub mod plain;
pub mod replay;
mod room;
mod selection;
mod text;

pub use access::{Grant, Role};
#[cfg(any(test, feature = "test-support"))]
pub use autocomplete::MockAutocompleter;
pub use autocomplete::{
    AutocompleteError, Autocompleter, CannedAutocompleter, Completion, CompletionRequest,
    LocalAutocompleter, trim_what_follows,
};
pub use client::{Client, ClientError, Outgoing};
pub use diff::{DIFF_DEADLINE, diff};
pub use document::Document;
pub use operation::{Component, OperationError, TextOperation};
pub use plain::{Answered, Base, PlainEdit, PlainMember, Step};
pub use room::{
    ClientId, ClientIdError, CodeError, CommittedOperation, Language, LanguageError, Room, RoomId,
    RoomIdError,
};
pub use selection::Selection;
pub use text::{PositionError, Utf16Position, utf16_len};
