//! The one place where the live room's events become WebSocket frames: duet.v1 messages for
//! operations members, bare text and pings for whole-buffer members, error codes for refusals
//! and close codes for a closed place. The room decides; this module only writes it down.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, close_code};
use duet_app::SubmitError;
use duet_domain::CommittedOperation;
use duet_live::{CloseReason, Encoder, Event, MemberId, Participant, Refusal, Start, Welcome};

use crate::protocol::{self, ServerMessage, WireOperation};

/// Close code for a room that no longer exists.
pub const ROOM_DELETED: u16 = 4404;
/// Close code for a connection replaced by a newer one with the same client id.
pub const REPLACED: u16 = 4409;

/// Encodes what many members receive alike, once, as the text of a frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wire;

impl Encoder for Wire {
    type Frame = Utf8Bytes;

    fn operation(&self, committed: &CommittedOperation) -> Utf8Bytes {
        ServerMessage::Op(WireOperation::from(committed)).encode()
    }

    fn ack(&self, seq: u64, revision: u64) -> Utf8Bytes {
        ServerMessage::Ack { seq, revision }.encode()
    }

    fn presence(&self, participant: &Participant) -> Utf8Bytes {
        ServerMessage::Presence(wire_participant(participant)).encode()
    }

    fn code(&self, code: String) -> Utf8Bytes {
        code.into()
    }
}

fn wire_participant(participant: &Participant) -> protocol::Participant<'_> {
    protocol::Participant {
        client_id: participant.client.as_str(),
        name: &participant.name,
        selection: participant.selection,
    }
}

/// The frames an event makes for `member`, in order.
pub fn frames(event: Event<Utf8Bytes>, member: MemberId) -> Vec<Message> {
    match event {
        Event::Welcome(welcome) => vec![Message::Text(encode_welcome(&welcome))],
        Event::Code {
            revision,
            code,
            marked,
        } => {
            let text = Message::Text(code);
            if marked {
                // Pongs come back in order with the client's frames, so the room learns which
                // buffer its editor held when it wrote each frame.
                vec![Message::Ping(revision.to_be_bytes().to_vec().into()), text]
            } else {
                vec![text]
            }
        }
        Event::Committed(entries) => entries
            .iter()
            .filter_map(|entry| entry.read_by(member).cloned().map(Message::Text))
            .collect(),
        Event::Ack { seq, revision } => {
            vec![Message::Text(ServerMessage::Ack { seq, revision }.encode())]
        }
        Event::Refused { seq, refusal } => vec![Message::Text(error(
            refusal_code(&refusal),
            refusal_message(&refusal),
            seq,
            None,
        ))],
        Event::Presence(batch) => batch.take().into_iter().map(Message::Text).collect(),
        Event::Joined(participant) => vec![Message::Text(
            ServerMessage::Joined(wire_participant(&participant)).encode(),
        )],
        Event::Left(client) => vec![Message::Text(
            ServerMessage::Left {
                client_id: client.as_str(),
            }
            .encode(),
        )],
        Event::Language(language) => vec![Message::Text(
            ServerMessage::Language {
                language: language.as_str(),
            }
            .encode(),
        )],
        Event::Closed(reason) => vec![closed(&reason)],
        Event::Reply(frame) => vec![Message::Text(frame)],
    }
}

fn encode_welcome(welcome: &Welcome) -> Utf8Bytes {
    let (code, ops) = match &welcome.start {
        Start::Code(code) => (Some(code.clone()), None),
        Start::Missed(missed) => (
            None,
            Some(
                missed
                    .iter()
                    .map(|committed| WireOperation::from(&**committed))
                    .collect(),
            ),
        ),
    };
    ServerMessage::Welcome {
        client_id: welcome.client.as_str(),
        resume_token: &welcome.resume_token,
        revision: welcome.revision,
        language: welcome.language.as_str(),
        code,
        ops,
        participants: welcome.participants.iter().map(wire_participant).collect(),
    }
    .encode()
}

/// The stable code of a refusal.
fn refusal_code(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::Edit(error) => submit_error_code(error),
        Refusal::Presence(error) => revision_error_code(error),
        Refusal::BadMessage(_) => "bad_message",
        Refusal::Unavailable | Refusal::LanguageNotSaved => "unavailable",
    }
}

fn refusal_message(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Edit(error) | Refusal::Presence(error) => error.to_string(),
        Refusal::BadMessage(reason) => reason.clone(),
        Refusal::Unavailable => "the edit could not be saved; send it again".into(),
        Refusal::LanguageNotSaved => "the language could not be saved".into(),
    }
}

/// The stable code of a refused edit.
fn submit_error_code(error: &SubmitError) -> &'static str {
    match error {
        SubmitError::InvalidOperation(_) => "invalid_op",
        SubmitError::BadRevision { .. } => "bad_revision",
        SubmitError::ResyncRequired { .. } => "resync_required",
        SubmitError::StaleSeq { .. } | SubmitError::InvalidSeq { .. } => "bad_seq",
        SubmitError::SeqReused { .. } => "seq_reused",
        SubmitError::RoomTooLarge { .. } => "room_too_large",
    }
}

/// The stable code of a revision a selection or a completion request named that the room
/// cannot move from.
pub fn revision_error_code(error: &SubmitError) -> &'static str {
    match error {
        SubmitError::ResyncRequired { .. } => "resync_required",
        _ => "bad_revision",
    }
}

/// An `error` message.
pub fn error(
    code: &str,
    message: String,
    seq: Option<u64>,
    id: Option<&serde_json::Value>,
) -> Utf8Bytes {
    ServerMessage::Error {
        code,
        message,
        seq,
        id,
    }
    .encode()
}

/// The close frame for a place the room closed.
fn closed(reason: &CloseReason) -> Message {
    match reason {
        CloseReason::RoomDeleted => close(ROOM_DELETED, "the room was deleted"),
        CloseReason::Replaced => close(REPLACED, "replaced by a newer connection"),
        CloseReason::TooManyBadMessages => close(close_code::POLICY, "too many bad messages"),
        CloseReason::Reloading => close(
            close_code::AGAIN,
            "the room is reloading; reconnect and resume",
        ),
        CloseReason::SaveFailed => close(
            close_code::ERROR,
            "the edit could not be saved; reconnect and resend",
        ),
        CloseReason::InvalidEdit(reason) => close(close_code::INVALID, reason),
    }
}

/// A close frame; the reason is cut to the 123 bytes a close frame holds.
pub fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duet_live::CommitEntry;

    use super::*;

    fn texts(frames: Vec<Message>) -> Vec<String> {
        frames
            .into_iter()
            .map(|frame| match frame {
                Message::Text(text) => text.as_str().to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_commit_reads_as_acks_for_its_authors_and_ops_for_everyone_else() {
        let shared: Arc<[CommitEntry<Utf8Bytes>]> = vec![
            CommitEntry::new(MemberId::new(1), "op7".into(), Some("ack7".into())),
            CommitEntry::new(MemberId::new(2), "op8".into(), Some("ack8".into())),
            CommitEntry::new(MemberId::new(3), "op9".into(), None),
        ]
        .into();
        let committed = |member| texts(frames(Event::Committed(Arc::clone(&shared)), member));
        assert_eq!(committed(MemberId::new(1)), ["ack7", "op8", "op9"]);
        assert_eq!(committed(MemberId::new(2)), ["op7", "ack8", "op9"]);
        // An edit with nothing to acknowledge (a whole-buffer member's) is not echoed to its
        // author.
        assert_eq!(committed(MemberId::new(3)), ["op7", "op8"]);
        assert_eq!(committed(MemberId::new(4)), ["op7", "op8", "op9"]);
        assert_eq!(
            texts(frames(Event::Reply("alone".into()), MemberId::new(1))),
            ["alone"]
        );
    }

    #[test]
    fn a_marked_code_goes_behind_a_ping_naming_its_revision() {
        let marked = frames(
            Event::Code {
                revision: 258,
                code: "x".into(),
                marked: true,
            },
            MemberId::new(1),
        );
        assert_eq!(
            marked,
            [
                Message::Ping(vec![0, 0, 0, 0, 0, 0, 1, 2].into()),
                Message::Text("x".into())
            ]
        );
        let first = frames(
            Event::Code {
                revision: 3,
                code: "x".into(),
                marked: false,
            },
            MemberId::new(1),
        );
        assert_eq!(first, [Message::Text("x".into())]);
    }
}
