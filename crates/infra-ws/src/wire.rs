//! The one place where the live room's events become WebSocket frames: duet.v1 messages for
//! operations members, bare text and pings for whole-buffer members, error codes for refusals
//! and close codes for a closed place. The room decides; this module only writes it down.

use std::borrow::Cow;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use duet_app::SubmitError;
use duet_domain::CommittedOperation;
use duet_live::{CloseReason, Encoder, Event, MemberId, Participant, Refusal, Start, Welcome};
use duet_protocol::close::{
    INTERNAL_ERROR, INVALID_PAYLOAD, POLICY_VIOLATION, REPLACED, ROOM_DELETED, TRY_AGAIN_LATER,
};
use duet_protocol::{ErrorCode, ServerMessage, WireOperation};

/// Encodes what many members receive alike, once, as the text of a frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wire;

impl Encoder for Wire {
    type Frame = Utf8Bytes;

    fn operation(&self, committed: &CommittedOperation) -> Utf8Bytes {
        ServerMessage::Op(WireOperation::from(committed))
            .encode()
            .into()
    }

    fn ack(&self, seq: u64, revision: u64) -> Utf8Bytes {
        ServerMessage::Ack { seq, revision }.encode().into()
    }

    fn presence(&self, participant: &Participant) -> Utf8Bytes {
        ServerMessage::Presence(wire_participant(participant))
            .encode()
            .into()
    }

    fn code(&self, code: String) -> Utf8Bytes {
        code.into()
    }
}

fn wire_participant(participant: &Participant) -> duet_protocol::Participant<'_> {
    duet_protocol::Participant {
        client_id: Cow::Borrowed(participant.client.as_str()),
        name: Cow::Borrowed(&participant.name),
        selection: participant.selection,
    }
}

fn text(message: &ServerMessage<'_>) -> Message {
    Message::Text(message.encode().into())
}

/// The frames an event makes for `member`, in order.
#[cfg(test)]
fn frames(event: Event<Utf8Bytes>, member: MemberId) -> Vec<Message> {
    let mut out = Vec::new();
    write_frames(event, member, &mut out);
    out
}

/// Appends the frames an event makes for `member`, in order, to `out` (a connection's writer
/// reuses one buffer for everything it sends).
pub fn write_frames(event: Event<Utf8Bytes>, member: MemberId, out: &mut Vec<Message>) {
    match event {
        Event::Welcome(welcome) => out.push(text(&welcome_message(&welcome))),
        Event::Code {
            revision,
            code,
            marked,
        } => {
            if marked {
                // Pongs come back in order with the client's frames, so the room learns which
                // buffer its editor held when it wrote each frame.
                out.push(Message::Ping(revision.to_be_bytes().to_vec().into()));
            }
            out.push(Message::Text(code));
        }
        Event::Committed(entries) => out.extend(
            entries
                .iter()
                .filter_map(|entry| entry.read_by(member).cloned().map(Message::Text)),
        ),
        Event::Ack { seq, revision } => out.push(text(&ServerMessage::Ack { seq, revision })),
        Event::Refused { seq, refusal } => out.push(Message::Text(error(
            refusal_code(&refusal),
            refusal.to_string(),
            seq,
            None,
        ))),
        Event::Presence(batch) => out.extend(batch.take().into_iter().map(Message::Text)),
        Event::Joined(participant) => {
            out.push(text(&ServerMessage::Joined(wire_participant(&participant))));
        }
        Event::Left(client) => out.push(text(&ServerMessage::Left {
            client_id: Cow::Borrowed(client.as_str()),
        })),
        Event::Language(language) => out.push(text(&ServerMessage::Language {
            language: Cow::Borrowed(language.as_str()),
        })),
        Event::Closed(reason) => out.push(closed(&reason)),
        Event::Reply(frame) => out.push(Message::Text(frame)),
    }
}

fn welcome_message(welcome: &Welcome) -> ServerMessage<'_> {
    let (code, ops) = match &welcome.start {
        Start::Code(code) => (Some(Cow::Borrowed(code.as_str())), None),
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
        client_id: Cow::Borrowed(welcome.client.as_str()),
        resume_token: Cow::Borrowed(&welcome.resume_token),
        revision: welcome.revision,
        language: Cow::Borrowed(welcome.language.as_str()),
        code,
        ops,
        participants: welcome.participants.iter().map(wire_participant).collect(),
    }
}

/// The stable code of a refusal.
fn refusal_code(refusal: &Refusal) -> ErrorCode {
    match refusal {
        Refusal::Edit(error) => submit_error_code(error),
        Refusal::Presence(error) => revision_error_code(error),
        Refusal::BadMessage(_) => ErrorCode::BadMessage,
        Refusal::Unavailable | Refusal::LanguageNotSaved => ErrorCode::Unavailable,
        Refusal::Forbidden => ErrorCode::Forbidden,
    }
}

/// The stable code of a refused edit.
fn submit_error_code(error: &SubmitError) -> ErrorCode {
    match error {
        SubmitError::InvalidOperation(_) => ErrorCode::InvalidOp,
        SubmitError::BadRevision { .. } => ErrorCode::BadRevision,
        SubmitError::ResyncRequired { .. } => ErrorCode::ResyncRequired,
        SubmitError::StaleSeq { .. } | SubmitError::InvalidSeq { .. } => ErrorCode::BadSeq,
        SubmitError::SeqReused { .. } => ErrorCode::SeqReused,
        SubmitError::RoomTooLarge { .. } => ErrorCode::RoomTooLarge,
    }
}

/// The stable code of a revision a selection or a completion request named that the room
/// cannot move from.
pub fn revision_error_code(error: &SubmitError) -> ErrorCode {
    match error {
        SubmitError::ResyncRequired { .. } => ErrorCode::ResyncRequired,
        _ => ErrorCode::BadRevision,
    }
}

/// An `error` message.
pub fn error(
    code: ErrorCode,
    message: String,
    seq: Option<u64>,
    id: Option<&serde_json::Value>,
) -> Utf8Bytes {
    ServerMessage::Error {
        code,
        message: message.into(),
        seq,
        id: id.map(Cow::Borrowed),
    }
    .encode()
    .into()
}

/// The close frame for a place the room closed.
fn closed(reason: &CloseReason) -> Message {
    match reason {
        CloseReason::RoomDeleted => close(ROOM_DELETED, "the room was deleted"),
        CloseReason::Replaced => close(REPLACED, "replaced by a newer connection"),
        CloseReason::TooManyBadMessages => close(POLICY_VIOLATION, "too many bad messages"),
        CloseReason::Reloading => close(
            TRY_AGAIN_LATER,
            "the room is reloading; reconnect and resume",
        ),
        CloseReason::SaveFailed => close(
            INTERNAL_ERROR,
            "the edit could not be saved; reconnect and resend",
        ),
        CloseReason::InvalidEdit(reason) => close(INVALID_PAYLOAD, reason),
        CloseReason::Forbidden => close(POLICY_VIOLATION, "a viewer may not edit the room"),
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
