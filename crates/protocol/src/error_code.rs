//! The stable codes of `error` messages (docs/PROTOCOL.md, "Errors").

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why the server refused a message; on the wire, the `code` of an `error` message as a
/// snake_case string (`"bad_message"`). Whatever the code, the refused message changed nothing.
///
/// Codes are stable: a client may match on them. A code this version does not know (sent by a
/// newer server) reads as [`ErrorCode::Unknown`] instead of failing the whole message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, an unknown `type`, missing or mistyped fields, a `0` or `""` component.
    BadMessage,
    /// The operation does not fit the text at its revision (wrong length, a cut surrogate
    /// pair, a NUL character).
    InvalidOp,
    /// The `revision` is ahead of the room.
    BadRevision,
    /// The `revision` is older than the history the server keeps: reconnect without `since`.
    ResyncRequired,
    /// The `seq` was used before for an operation that was never committed, or is past
    /// 2^53 − 1.
    BadSeq,
    /// The `(clientId, seq)` was committed before with a different edit.
    SeqReused,
    /// The edit would make the room larger than the server allows.
    RoomTooLarge,
    /// The connection's role does not allow it: a viewer's `op`, `code` or `language`.
    Forbidden,
    /// Not a supported language.
    InvalidLanguage,
    /// An `autocomplete` cursor inside a surrogate pair.
    InvalidCursor,
    /// The database failed and nothing was committed: send the same message again.
    Unavailable,
    /// The server could not encode its answer: a bug in the server, never the client's fault.
    Internal,
    /// A code this version of the protocol does not know. The server never sends it as such:
    /// it is what any other code reads as.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it is written on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadMessage => "bad_message",
            Self::InvalidOp => "invalid_op",
            Self::BadRevision => "bad_revision",
            Self::ResyncRequired => "resync_required",
            Self::BadSeq => "bad_seq",
            Self::SeqReused => "seq_reused",
            Self::RoomTooLarge => "room_too_large",
            Self::Forbidden => "forbidden",
            Self::InvalidLanguage => "invalid_language",
            Self::InvalidCursor => "invalid_cursor",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
