//! Every message both ways, and the exact bytes the server sends: these are the protocol, so a
//! change here is a change clients see.

use std::borrow::Cow;

use duet_domain::{Selection, TextOperation};
use duet_protocol::{ClientMessage, ErrorCode, Participant, ServerMessage, WireOperation};
use serde_json::json;

fn operation(ops: serde_json::Value) -> TextOperation {
    serde_json::from_value(ops).expect("a valid operation")
}

/// Every kind of server message, with the bytes the server sends for it.
fn server_messages() -> Vec<(ServerMessage<'static>, &'static str)> {
    let alice = || Participant {
        client_id: "alice".into(),
        name: "Alice".into(),
        selection: None,
    };
    let emoji = || WireOperation {
        revision: 1,
        client_id: "alice".into(),
        ops: Cow::Owned(operation(json!([1, "😀", 1]))),
    };
    vec![
        (
            ServerMessage::Welcome {
                client_id: "bob".into(),
                resume_token: "token".into(),
                revision: 0,
                language: "rust".into(),
                code: Some("ab".into()),
                ops: None,
                participants: vec![alice()],
            },
            r#"{"type":"welcome","clientId":"bob","resumeToken":"token","revision":0,"language":"rust","code":"ab","participants":[{"clientId":"alice","name":"Alice"}]}"#,
        ),
        (
            ServerMessage::Welcome {
                client_id: "bob".into(),
                resume_token: "token".into(),
                revision: 1,
                language: "rust".into(),
                code: None,
                ops: Some(vec![emoji()]),
                participants: vec![Participant {
                    selection: Some(Selection { anchor: 0, head: 1 }),
                    ..alice()
                }],
            },
            r#"{"type":"welcome","clientId":"bob","resumeToken":"token","revision":1,"language":"rust","ops":[{"revision":1,"clientId":"alice","ops":[1,"😀",1]}],"participants":[{"clientId":"alice","name":"Alice","selection":{"anchor":0,"head":1}}]}"#,
        ),
        (
            ServerMessage::Ack {
                seq: 1,
                revision: 1,
            },
            r#"{"type":"ack","seq":1,"revision":1}"#,
        ),
        (
            ServerMessage::Op(emoji()),
            r#"{"type":"op","revision":1,"clientId":"alice","ops":[1,"😀",1]}"#,
        ),
        (
            ServerMessage::Presence(Participant {
                selection: Some(Selection { anchor: 0, head: 1 }),
                ..alice()
            }),
            r#"{"type":"presence","clientId":"alice","name":"Alice","selection":{"anchor":0,"head":1}}"#,
        ),
        (
            ServerMessage::Joined(alice()),
            r#"{"type":"joined","clientId":"alice","name":"Alice"}"#,
        ),
        (
            ServerMessage::Left {
                client_id: "alice".into(),
            },
            r#"{"type":"left","clientId":"alice"}"#,
        ),
        (
            ServerMessage::Error {
                code: ErrorCode::BadSeq,
                message: "seq 3 was used before".into(),
                seq: Some(3),
                id: None,
            },
            r#"{"type":"error","code":"bad_seq","message":"seq 3 was used before","seq":3}"#,
        ),
        (
            ServerMessage::Error {
                code: ErrorCode::InvalidCursor,
                message: "inside a surrogate pair".into(),
                seq: None,
                id: Some(Cow::Owned(json!({"request": 7}))),
            },
            r#"{"type":"error","code":"invalid_cursor","message":"inside a surrogate pair","id":{"request":7}}"#,
        ),
        (
            ServerMessage::Error {
                code: ErrorCode::BadMessage,
                message: "not JSON".into(),
                seq: None,
                id: None,
            },
            r#"{"type":"error","code":"bad_message","message":"not JSON"}"#,
        ),
        (
            ServerMessage::Language {
                language: "python".into(),
            },
            r#"{"type":"language","language":"python"}"#,
        ),
        (
            ServerMessage::Suggestion {
                id: Cow::Owned(json!("a")),
                suggestion: "print()".into(),
                alternatives: Cow::Owned(vec!["pass".to_owned()]),
            },
            r#"{"type":"suggestion","id":"a","suggestion":"print()","alternatives":["pass"]}"#,
        ),
    ]
}

#[test]
fn server_messages_encode_to_their_exact_bytes_and_decode_back() {
    for (message, bytes) in server_messages() {
        assert_eq!(message.encode(), bytes);
        assert_eq!(ServerMessage::decode(bytes).expect(bytes), message);
        assert_eq!(bytes.parse::<ServerMessage>().expect(bytes), message);
    }
}

#[test]
fn the_server_encodes_borrowed_state_as_it_would_owned() {
    let committed = duet_domain::CommittedOperation {
        revision: 4,
        client: duet_domain::ClientId::new("alice").expect("a client id"),
        seq: 2,
        operation: operation(json!([2, "!"])),
        committed_at: chrono::DateTime::default(),
        submission_digest: None,
    };
    let borrowed = ServerMessage::Op(WireOperation::from(&committed));
    assert!(matches!(
        &borrowed,
        ServerMessage::Op(WireOperation {
            client_id: Cow::Borrowed(_),
            ops: Cow::Borrowed(_),
            ..
        })
    ));
    assert_eq!(
        borrowed.encode(),
        r#"{"type":"op","revision":4,"clientId":"alice","ops":[2,"!"]}"#
    );
}

/// Every kind of client message, as a client writes it.
fn client_messages() -> Vec<(ClientMessage, &'static str)> {
    vec![
        (
            ClientMessage::Op {
                revision: 0,
                seq: 1,
                ops: operation(json!([1, "😀", 1])),
                selection: None,
            },
            r#"{"type":"op","revision":0,"seq":1,"ops":[1,"😀",1]}"#,
        ),
        (
            ClientMessage::Op {
                revision: 2,
                seq: 2,
                ops: operation(json!([-2, 1])),
                selection: Some(Selection::cursor(0)),
            },
            r#"{"type":"op","revision":2,"seq":2,"ops":[-2,1],"selection":{"anchor":0,"head":0}}"#,
        ),
        (
            ClientMessage::Code {
                revision: 3,
                seq: 4,
                code: "fn main() {}\n".into(),
            },
            r#"{"type":"code","revision":3,"seq":4,"code":"fn main() {}\n"}"#,
        ),
        (
            ClientMessage::Presence {
                revision: 2,
                selection: Selection { anchor: 0, head: 1 },
            },
            r#"{"type":"presence","revision":2,"selection":{"anchor":0,"head":1}}"#,
        ),
        (
            ClientMessage::Language {
                language: "python".into(),
            },
            r#"{"type":"language","language":"python"}"#,
        ),
        (
            ClientMessage::Autocomplete {
                id: json!(1),
                revision: 0,
                cursor_position: 5,
            },
            r#"{"type":"autocomplete","id":1,"revision":0,"cursorPosition":5}"#,
        ),
    ]
}

#[test]
fn client_messages_encode_as_documented_and_decode_back() {
    for (message, bytes) in client_messages() {
        assert_eq!(message.encode(), bytes);
        assert_eq!(ClientMessage::decode(bytes).expect(bytes), message);
        assert_eq!(bytes.parse::<ClientMessage>().expect(bytes), message);
    }
}

#[test]
fn client_messages_refuse_what_the_server_refuses() {
    for refused in [
        "",
        "not json",
        "[]",
        r#"{"revision":0}"#,
        r#"{"type":"ack","seq":1,"revision":1}"#,
        r#"{"type":"op","revision":0,"seq":1}"#,
        r#"{"type":"op","revision":0,"seq":1,"ops":[0]}"#,
        r#"{"type":"op","revision":0,"seq":1,"ops":[""]}"#,
        r#"{"type":"op","revision":"0","seq":1,"ops":[]}"#,
        r#"{"type":"op","revision":0,"seq":1,"ops":[],"extra":true}"#,
        r#"{"type":"language","language":"python","revision":0}"#,
        r#"{"type":"autocomplete","id":1,"revision":0,"cursor_position":5}"#,
    ] {
        assert!(ClientMessage::decode(refused).is_err(), "{refused}");
    }
    // An absent selection and a null one are the same.
    assert_eq!(
        ClientMessage::decode(r#"{"type":"op","revision":0,"seq":1,"ops":[],"selection":null}"#)
            .expect("a null selection"),
        ClientMessage::Op {
            revision: 0,
            seq: 1,
            ops: TextOperation::new(),
            selection: None,
        }
    );
}

#[test]
fn every_error_code_is_written_as_documented() {
    let codes = [
        (ErrorCode::BadMessage, "bad_message"),
        (ErrorCode::InvalidOp, "invalid_op"),
        (ErrorCode::BadRevision, "bad_revision"),
        (ErrorCode::ResyncRequired, "resync_required"),
        (ErrorCode::BadSeq, "bad_seq"),
        (ErrorCode::SeqReused, "seq_reused"),
        (ErrorCode::RoomTooLarge, "room_too_large"),
        (ErrorCode::Forbidden, "forbidden"),
        (ErrorCode::InvalidLanguage, "invalid_language"),
        (ErrorCode::InvalidCursor, "invalid_cursor"),
        (ErrorCode::Unavailable, "unavailable"),
        (ErrorCode::Internal, "internal"),
    ];
    for (code, name) in codes {
        assert_eq!(code.as_str(), name);
        assert_eq!(code.to_string(), name);
        assert_eq!(serde_json::to_value(code).expect("a string"), json!(name));
        assert_eq!(
            serde_json::from_value::<ErrorCode>(json!(name)).expect(name),
            code
        );
    }
}

#[test]
fn what_a_newer_server_may_send_still_reads() {
    // An error code this version does not know.
    let message = ServerMessage::decode(
        r#"{"type":"error","code":"quota_exceeded","message":"too many rooms","seq":4}"#,
    )
    .expect("an unknown code still reads");
    assert_eq!(
        message,
        ServerMessage::Error {
            code: ErrorCode::Unknown,
            message: "too many rooms".into(),
            seq: Some(4),
            id: None,
        }
    );
    // A field this version does not know.
    assert_eq!(
        ServerMessage::decode(r#"{"type":"ack","seq":1,"revision":2,"committedAt":"now"}"#)
            .expect("an unknown field is ignored"),
        ServerMessage::Ack {
            seq: 1,
            revision: 2
        }
    );
    // A message type it does not know is an error the client can skip.
    assert!(ServerMessage::decode(r#"{"type":"typing","clientId":"alice"}"#).is_err());
}

#[test]
fn a_server_message_reads_whatever_its_fields_order_and_refuses_a_missing_field() {
    let op = ServerMessage::decode(r#"{"ops":[1,"x"],"clientId":"bob","revision":3,"type":"op"}"#)
        .expect("the type may come last");
    assert_eq!(
        op,
        ServerMessage::Op(WireOperation {
            revision: 3,
            client_id: "bob".into(),
            ops: std::borrow::Cow::Owned(operation(serde_json::json!([1, "x"]))),
        })
    );
    for missing in [
        r#"{"type":"ack","revision":2}"#,
        r#"{"type":"op","revision":3,"clientId":"bob"}"#,
        r#"{"type":"welcome","clientId":"a","resumeToken":"t","revision":0,"language":"python"}"#,
        r#"{"type":"error","message":"no code"}"#,
        r#"{"revision":2,"seq":1}"#,
    ] {
        assert!(
            ServerMessage::decode(missing).is_err(),
            "{missing} lacks a field and must not read"
        );
    }
    // `ops` is an operation in `op` and a list of operations in `welcome`; one in the other's
    // place does not read.
    assert!(
        ServerMessage::decode(
            r#"{"type":"op","revision":3,"clientId":"b","ops":[{"revision":1}]}"#
        )
        .is_err()
    );
}
