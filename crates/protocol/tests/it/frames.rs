//! Reading the frames a `batch=1` client receives.

use duet_protocol::ServerMessage;
use duet_protocol::batch::{Frame, FrameBatch, read_frame};

fn ack(seq: u64) -> ServerMessage<'static> {
    ServerMessage::Ack { seq, revision: seq }
}

#[test]
fn a_frame_reads_as_its_messages_in_order() {
    assert_eq!(
        read_frame(r#"{"type":"ack","seq":1,"revision":1}"#).expect("one message"),
        [ack(1)]
    );
    assert_eq!(
        read_frame(
            r#"[{"type":"ack","seq":1,"revision":1},{"type":"left","clientId":"bob"},{"type":"ack","seq":2,"revision":2}]"#
        )
        .expect("an array of messages"),
        [
            ack(1),
            ServerMessage::Left {
                client_id: "bob".into()
            },
            ack(2)
        ]
    );
    assert_eq!(
        read_frame(" \n[{\"type\":\"ack\",\"seq\":3,\"revision\":3}]").expect("whitespace first"),
        [ack(3)]
    );
}

#[test]
fn what_a_batch_writes_a_client_reads() {
    let messages: Vec<ServerMessage<'static>> = (1..=5).map(ack).collect();
    let mut batch = FrameBatch::new();
    for message in &messages {
        assert!(batch.add(message.encode()).is_none());
    }
    let frame = batch.take().expect("a frame");
    assert!(matches!(frame, Frame::Array(_)));
    assert_eq!(read_frame(&frame).expect("the batch reads back"), messages);
}

#[test]
fn a_frame_that_is_not_messages_is_an_error() {
    for bad in [
        "",
        "not json",
        "[1,2]",
        r#"[{"type":"ack","seq":1,"revision":1},{"type":"nope"}]"#,
        r#"{"type":"ack"}"#,
        "[",
    ] {
        assert!(read_frame(bad).is_err(), "{bad}");
    }
}
