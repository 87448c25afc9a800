//! Rooms: the shared unit of collaboration, named by a [`RoomId`], holding code in a [`Language`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::document::Document;
pub use crate::language::{Language, LanguageError};
use crate::operation::TextOperation;

/// The id of a room: a UUID, written in its hyphenated lowercase form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Uuid);

/// A string that is not a room id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a room id: expected a UUID such as 67e55044-10b1-426f-9247-bb680e5fe0c8")]
pub struct RoomIdError {
    input: String,
}

impl RoomId {
    /// A new random (version 4) id.
    #[must_use]
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a room id from its textual form.
    ///
    /// # Errors
    /// [`RoomIdError`] when `input` is not a UUID.
    pub fn parse(input: &str) -> Result<Self, RoomIdError> {
        let mut shown: String = input.chars().take(64).collect();
        if shown.len() < input.len() {
            shown.push('…');
        }
        Uuid::parse_str(input)
            .map(Self)
            .map_err(|_| RoomIdError { input: shown })
    }

    /// Wraps a UUID read from trusted storage.
    #[must_use]
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID behind this id.
    #[must_use]
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(formatter)
    }
}

impl FromStr for RoomId {
    type Err = RoomIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

/// Code that no room may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// NUL characters are refused: no source file holds them on purpose, and PostgreSQL's text
    /// type cannot store them, so accepting them would make storage differ between databases.
    #[error("code must not contain NUL characters (U+0000)")]
    ContainsNul,
}

pub(crate) fn check_code(code: &str) -> Result<(), CodeError> {
    if code.contains('\0') {
        Err(CodeError::ContainsNul)
    } else {
        Ok(())
    }
}

/// A room: its code, the language of that code, and how many edits made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    id: RoomId,
    language: Language,
    code: String,
    revision: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Room {
    /// A new room at revision 0.
    ///
    /// # Errors
    /// [`CodeError`] when the code cannot be held by a room.
    pub fn new(
        id: RoomId,
        language: Language,
        code: String,
        now: DateTime<Utc>,
    ) -> Result<Self, CodeError> {
        check_code(&code)?;
        Ok(Self {
            id,
            language,
            code,
            revision: 0,
            created_at: now,
            updated_at: now,
        })
    }

    /// Rebuilds a room from storage, trusting what was stored.
    #[must_use]
    pub fn restore(
        id: RoomId,
        language: Language,
        code: String,
        revision: u64,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            language,
            code,
            revision,
            created_at,
            updated_at,
        }
    }

    /// Records that the room's code is now `document`, as of `now`.
    pub fn advance(&mut self, document: &Document, now: DateTime<Utc>) {
        self.code = document.text();
        self.revision = document.revision();
        self.updated_at = now;
    }

    /// Changes the room's language, as of `now`.
    pub fn set_language(&mut self, language: Language, now: DateTime<Utc>) {
        self.language = language;
        self.updated_at = now;
    }

    /// Takes the code out of the room, leaving it empty: for holders of the code elsewhere
    /// (a live document) that keep only the room's details.
    pub fn take_code(&mut self) -> String {
        std::mem::take(&mut self.code)
    }

    /// The room's code as a document at its revision.
    #[must_use]
    pub fn document(&self) -> Document {
        Document::new(&self.code, self.revision)
    }

    #[must_use]
    pub const fn id(&self) -> RoomId {
        self.id
    }

    #[must_use]
    pub const fn language(&self) -> &Language {
        &self.language
    }

    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// How many edits the room has taken since it was created.
    #[must_use]
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    #[must_use]
    pub const fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    #[must_use]
    pub const fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_id_round_trips_through_text() {
        let id = RoomId::generate();
        assert_eq!(RoomId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn room_id_rejects_what_is_not_a_uuid() {
        for input in ["", "room-1", "67e55044-10b1-426f-9247", "../etc/passwd"] {
            assert!(RoomId::parse(input).is_err(), "{input:?} was accepted");
        }
    }

    #[test]
    fn room_id_error_shortens_long_input() {
        let long = "x".repeat(10_000);
        let message = RoomId::parse(&long)
            .expect_err("too long to be an id")
            .to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn advancing_takes_the_documents_code_and_revision() {
        let created = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let later = DateTime::<Utc>::from_timestamp(1_700_000_100, 0).unwrap_or_default();
        let mut room = Room::new(RoomId::generate(), Language::default(), "a".into(), created)
            .expect("valid code");
        let mut document = room.document();
        document
            .apply(&TextOperation::new().retain(1).insert("bc"))
            .expect("applies");
        room.advance(&document, later);
        assert_eq!(room.code(), "abc");
        assert_eq!(room.revision(), 1);
        assert_eq!(room.created_at(), created);
        assert_eq!(room.updated_at(), later);
    }

    #[test]
    fn code_with_nul_is_refused_and_changes_nothing() {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        assert_eq!(
            Room::new(RoomId::generate(), Language::default(), "a\0b".into(), now),
            Err(CodeError::ContainsNul)
        );
    }
}

/// The id a client gives itself (or is given) in a room: 1 to 64 letters, digits, `-`, `_`
/// or `.`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

/// A string that cannot be a client id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a client id is 1 to 64 letters, digits, `-`, `_` or `.`")]
pub struct ClientIdError;

impl ClientId {
    /// Checks a client id.
    ///
    /// # Errors
    /// [`ClientIdError`] when it is empty, too long or holds other characters.
    pub fn new(id: &str) -> Result<Self, ClientIdError> {
        let valid = (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            Err(ClientIdError)
        }
    }

    /// A new random id.
    #[must_use]
    pub fn generate() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// An operation the server has committed: the room's `revision`-th, sent by `client` as its
/// `seq`-th edit, already transformed to apply to revision `revision - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOperation {
    pub revision: u64,
    pub client: ClientId,
    pub seq: u64,
    pub operation: TextOperation,
    pub committed_at: DateTime<Utc>,
    /// A digest of what the client sent as this `seq` (its base revision and change), so that
    /// a resend can be told from a different edit reusing the number; `None` when unknown.
    pub submission_digest: Option<u64>,
}
