//! The `duet.v1` wire messages: JSON text frames, each with a `type`. See docs/PROTOCOL.md.

use duet_domain::{CommittedOperation, Selection, TextOperation};
use serde::{Deserialize, Serialize};

/// The WebSocket subprotocol a client asks for to speak `duet.v1`.
pub const SUBPROTOCOL: &str = "duet.v1";

/// What a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    /// An operation made against `revision`, the client's `seq`-th edit.
    #[serde(rename_all = "camelCase")]
    Op {
        revision: u64,
        seq: u64,
        ops: TextOperation,
        #[serde(default)]
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
        id: serde_json::Value,
        revision: u64,
        cursor_position: usize,
    },
}

/// A participant as others see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

/// A committed operation as sent to clients.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireOperation<'a> {
    pub revision: u64,
    pub client_id: &'a str,
    pub ops: &'a TextOperation,
}

impl<'a> From<&'a CommittedOperation> for WireOperation<'a> {
    fn from(committed: &'a CommittedOperation) -> Self {
        Self {
            revision: committed.revision,
            client_id: committed.client.as_str(),
            ops: &committed.operation,
        }
    }
}

/// What the server sends.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage<'a> {
    #[serde(rename_all = "camelCase")]
    Welcome {
        client_id: &'a str,
        /// Passed back with `clientId` to resume as this client.
        resume_token: &'a str,
        revision: u64,
        language: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ops: Option<Vec<WireOperation<'a>>>,
        participants: Vec<Participant<'a>>,
    },
    Ack {
        seq: u64,
        revision: u64,
    },
    Op(WireOperation<'a>),
    Presence(Participant<'a>),
    Joined(Participant<'a>),
    #[serde(rename_all = "camelCase")]
    Left {
        client_id: &'a str,
    },
    Error {
        code: &'a str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a serde_json::Value>,
    },
    Language {
        language: &'a str,
    },
    Suggestion {
        id: &'a serde_json::Value,
        suggestion: &'a str,
        alternatives: &'a [String],
    },
}

impl ServerMessage<'_> {
    /// The message as one text frame's payload.
    pub fn encode(&self) -> axum::extract::ws::Utf8Bytes {
        // Serialising these types cannot fail: every map key is a string.
        serde_json::to_string(self)
            .unwrap_or_else(|error| {
                tracing::error!(%error, "a server message did not serialise");
                String::from(r#"{"type":"error","code":"internal","message":"encoding failed"}"#)
            })
            .into()
    }
}

#[cfg(test)]
mod fuzz;
