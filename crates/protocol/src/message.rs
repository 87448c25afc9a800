//! The `duet.v1` messages: JSON objects, each with a `type`.
//!
//! Server messages hold their text as [`Cow`]s: the server borrows from its own state to encode
//! without copying, and a client decodes into owned values (`ServerMessage<'static>`). Their
//! fields serialise in the order they are declared, and optional ones are left out when absent:
//! the bytes on the wire are part of the protocol.

use std::borrow::Cow;
use std::str::FromStr;

use duet_domain::{CommittedOperation, Selection, TextOperation};
use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// What a client sends. Unknown fields are refused (`bad_message`), so a misspelt field is an
/// error rather than silently ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    /// An operation made against `revision`, the client's `seq`-th edit.
    #[serde(rename_all = "camelCase")]
    Op {
        revision: u64,
        seq: u64,
        ops: TextOperation,
        /// Where the client's cursor is once the operation is made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selection: Option<Selection>,
    },
    /// A whole buffer written against `revision`, to be diffed and merged.
    #[serde(rename_all = "camelCase")]
    Code {
        revision: u64,
        seq: u64,
        code: String,
    },
    /// Where the client's selection is, at `revision`.
    #[serde(rename_all = "camelCase")]
    Presence { revision: u64, selection: Selection },
    /// Changes the room's language.
    #[serde(rename_all = "camelCase")]
    Language { language: String },
    /// Asks for a completion at `cursor_position` (UTF-16) in the room's text at `revision`.
    #[serde(rename_all = "camelCase")]
    Autocomplete {
        /// Any JSON value, echoed back in the answer.
        id: serde_json::Value,
        revision: u64,
        cursor_position: usize,
    },
}

impl ClientMessage {
    /// The message as one text frame's payload.
    #[must_use]
    pub fn encode(&self) -> String {
        // Serialising cannot fail: every map key is a string and every value serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a text frame a client sent.
    ///
    /// # Errors
    /// When the text is not a `duet.v1` client message: not JSON, an unknown `type`, a
    /// missing, mistyped or unknown field, an invalid operation component.
    pub fn decode(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl FromStr for ClientMessage {
    type Err = serde_json::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::decode(text)
    }
}

/// A participant as others see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant<'a> {
    pub client_id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

/// A committed operation as sent to clients: `ops` applies on top of `revision - 1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireOperation<'a> {
    pub revision: u64,
    pub client_id: Cow<'a, str>,
    pub ops: Cow<'a, TextOperation>,
}

impl<'a> From<&'a CommittedOperation> for WireOperation<'a> {
    fn from(committed: &'a CommittedOperation) -> Self {
        Self {
            revision: committed.revision,
            client_id: Cow::Borrowed(committed.client.as_str()),
            ops: Cow::Borrowed(&committed.operation),
        }
    }
}

/// What the server sends. A client ignores fields it does not know, so a newer server may add
/// some.
///
/// Reading one does not go through serde's internally tagged enums, which buffer every message
/// into a tree before reading it: clients read thousands a second (the load generator's 400
/// typists read 700,000), so [`ServerMessage`]'s `Deserialize` reads the fields of any message
/// in one pass (`Fields`) and then builds the variant its `type` names.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage<'a> {
    /// The first message of every connection: who the client is and the room as it is.
    #[serde(rename_all = "camelCase")]
    Welcome {
        client_id: Cow<'a, str>,
        /// Passed back with `clientId` to resume as this client.
        resume_token: Cow<'a, str>,
        revision: u64,
        language: Cow<'a, str>,
        /// The room's text at `revision`, when the client did not resume (or could not).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<Cow<'a, str>>,
        /// Every operation after the client's `since`, when it resumed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ops: Option<Vec<WireOperation<'a>>>,
        /// The others in the room.
        participants: Vec<Participant<'a>>,
    },
    /// The client's operation `seq` was committed as `revision`.
    Ack { seq: u64, revision: u64 },
    /// Someone else's operation, committed.
    Op(WireOperation<'a>),
    /// Someone's selection, at the revision the client has after every `op` before it.
    Presence(Participant<'a>),
    /// Someone joined.
    Joined(Participant<'a>),
    /// Someone left.
    #[serde(rename_all = "camelCase")]
    Left { client_id: Cow<'a, str> },
    /// The client's message was refused; nothing changed.
    Error {
        code: ErrorCode,
        message: Cow<'a, str>,
        /// The refused edit's `seq`, when an edit was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        /// The refused `autocomplete`'s `id`, when a completion was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<Cow<'a, serde_json::Value>>,
    },
    /// The room's language changed.
    Language { language: Cow<'a, str> },
    /// The answer to the client's `autocomplete` `id`.
    Suggestion {
        id: Cow<'a, serde_json::Value>,
        suggestion: Cow<'a, str>,
        alternatives: Cow<'a, [String]>,
    },
}

/// Every field any server message has, read in one pass whatever their order; the `type` then
/// says which are required. `ops` is an operation in `op` and a list of committed operations in
/// `welcome`, so it is kept raw until the type is known; `code` is the room's text in
/// `welcome` and an error code in `error`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    #[serde(rename = "type")]
    kind: Kind,
    client_id: Option<String>,
    resume_token: Option<String>,
    revision: Option<u64>,
    language: Option<String>,
    code: Option<String>,
    ops: Option<Box<serde_json::value::RawValue>>,
    participants: Option<Vec<Participant<'static>>>,
    seq: Option<u64>,
    name: Option<String>,
    selection: Option<Selection>,
    message: Option<String>,
    id: Option<serde_json::Value>,
    suggestion: Option<String>,
    alternatives: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
enum Kind {
    Welcome,
    Ack,
    Op,
    Presence,
    Joined,
    Left,
    Error,
    Language,
    Suggestion,
}

fn required<T, E: serde::de::Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(field))
}

/// A raw field read as `T`, now that the message's type says what it holds.
fn raw<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    raw: Option<&serde_json::value::RawValue>,
) -> Result<Option<T>, E> {
    raw.map(|raw| serde_json::from_str(raw.get()).map_err(E::custom))
        .transpose()
}

impl<'de> Deserialize<'de> for ServerMessage<'static> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let fields = Fields::deserialize(deserializer)?;
        let participant = |fields: Fields| -> Result<Participant<'static>, D::Error> {
            Ok(Participant {
                client_id: Cow::Owned(required(fields.client_id, "clientId")?),
                name: Cow::Owned(required(fields.name, "name")?),
                selection: fields.selection,
            })
        };
        Ok(match fields.kind {
            Kind::Welcome => Self::Welcome {
                client_id: Cow::Owned(required(fields.client_id, "clientId")?),
                resume_token: Cow::Owned(required(fields.resume_token, "resumeToken")?),
                revision: required(fields.revision, "revision")?,
                language: Cow::Owned(required(fields.language, "language")?),
                code: fields.code.map(Cow::Owned),
                ops: raw(fields.ops.as_deref())?,
                participants: required(fields.participants, "participants")?,
            },
            Kind::Ack => Self::Ack {
                seq: required(fields.seq, "seq")?,
                revision: required(fields.revision, "revision")?,
            },
            Kind::Op => Self::Op(WireOperation {
                revision: required(fields.revision, "revision")?,
                client_id: Cow::Owned(required(fields.client_id, "clientId")?),
                ops: Cow::Owned(required(raw(fields.ops.as_deref())?, "ops")?),
            }),
            Kind::Presence => Self::Presence(participant(fields)?),
            Kind::Joined => Self::Joined(participant(fields)?),
            Kind::Left => Self::Left {
                client_id: Cow::Owned(required(fields.client_id, "clientId")?),
            },
            Kind::Error => Self::Error {
                code: serde_json::from_value(serde_json::Value::String(required(
                    fields.code,
                    "code",
                )?))
                .map_err(D::Error::custom)?,
                message: Cow::Owned(required(fields.message, "message")?),
                seq: fields.seq,
                id: fields.id.map(Cow::Owned),
            },
            Kind::Language => Self::Language {
                language: Cow::Owned(required(fields.language, "language")?),
            },
            Kind::Suggestion => Self::Suggestion {
                id: Cow::Owned(required(fields.id, "id")?),
                suggestion: Cow::Owned(required(fields.suggestion, "suggestion")?),
                alternatives: Cow::Owned(required(fields.alternatives, "alternatives")?),
            },
        })
    }
}

/// What [`ServerMessage::encode`] sends should serialising ever fail.
const ENCODING_FAILED: &str = r#"{"type":"error","code":"internal","message":"encoding failed"}"#;

impl ServerMessage<'_> {
    /// The message as one text frame's payload.
    #[must_use]
    pub fn encode(&self) -> String {
        // Serialising cannot fail: every map key is a string and every value serialises. Were
        // it to, the client would get an `internal` error rather than the server a panic.
        serde_json::to_string(self).unwrap_or_else(|_| ENCODING_FAILED.to_owned())
    }
}

impl ServerMessage<'static> {
    /// Reads one message (not a batched frame: see [`crate::batch::read_frame`]).
    ///
    /// # Errors
    /// When the text is not a `duet.v1` server message.
    pub fn decode(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

impl FromStr for ServerMessage<'static> {
    type Err = serde_json::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::decode(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_for_a_failed_encoding_is_an_internal_error() {
        let decoded = ServerMessage::decode(ENCODING_FAILED).expect("a server message");
        assert!(matches!(
            decoded,
            ServerMessage::Error {
                code: ErrorCode::Internal,
                seq: None,
                id: None,
                ..
            }
        ));
    }
}
