//! Hostile duet.v1 clients: numbers that would wrap, sequence numbers out of range, selections
//! far past the end, and connections that claim someone else's client id. Each harms only its
//! sender; the room stays readable and everyone else's edits go through.

use duet_domain::{Selection, TextOperation};
use duet_protocol::ClientMessage;
use duet_tests::{
    Backend, Socket, TestServer, on_both_databases, op, raw_v1, receive_json, send_json,
    send_message,
};
use serde_json::{Value, json};

/// Reads until a message of `kind` arrives (skipping presence and membership news).
async fn receive_type(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = receive_json(socket).await;
        if message["type"] == kind {
            return message;
        }
        assert!(
            ["joined", "left", "presence", "op"].contains(&message["type"].as_str().unwrap_or("")),
            "expected {kind}, got {message}"
        );
    }
}

async fn hostile_lengths_are_refused_and_the_room_stays_readable(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "abc"})).await;
    let mut mallory = raw_v1(&server, &room, "name=Mallory").await;
    receive_type(&mut mallory, "welcome").await;
    // Each once summed, with wrapping arithmetic, to a length that fit the room.
    for ops in [
        "[9223372036854775808,9223372036854775808,\"X\",3]",
        "[-9223372036854775808,-9223372036854775808,3]",
        "[3,\"W\",18446744073709551615,1]",
        "[18446744073709551615,4]",
    ] {
        let frame = format!(r#"{{"type":"op","revision":0,"seq":1,"ops":{ops}}}"#);
        send_json(
            &mut mallory,
            serde_json::from_str(&frame).unwrap_or(Value::Null),
        )
        .await;
        let answer = receive_json(&mut mallory).await;
        if serde_json::from_str::<Value>(&frame).is_ok() {
            assert_eq!(answer["type"], "error", "{ops} was accepted: {answer}");
        }
    }
    // 18446744073709551615 parses as a JSON number; the frames above that serde_json keeps as
    // floats were sent raw below, as a client would write them.
    for ops in ["[18446744073709551616,4]", "[1e30,\"x\"]"] {
        let frame = format!(r#"{{"type":"op","revision":0,"seq":1,"ops":{ops}}}"#);
        futures_util::SinkExt::send(
            &mut mallory,
            tokio_tungstenite::tungstenite::Message::text(frame),
        )
        .await
        .expect("sent");
        let answer = receive_json(&mut mallory).await;
        assert_eq!(answer["code"], "bad_message", "{ops}: {answer}");
    }
    let stored = server.room(&room).await;
    assert_eq!(
        (&stored["code"], &stored["revision"]),
        (&json!("abc"), &json!(0))
    );
    // The room still takes edits, and reads back after a restart.
    send_message(
        &mut mallory,
        &op(0, 1, TextOperation::new().retain(3).insert("!")),
    )
    .await;
    assert_eq!(
        receive_type(&mut mallory, "ack").await,
        json!({"type": "ack", "seq": 1, "revision": 1})
    );
    drop(mallory);
    server.stop().await;
    let server = TestServer::on(&database).await;
    assert_eq!(server.room(&room).await["code"], "abc!");
}

async fn a_sequence_number_out_of_range_fails_only_its_sender(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": ""})).await;
    let mut mallory = raw_v1(&server, &room, "name=Mallory").await;
    receive_type(&mut mallory, "welcome").await;
    let mut alice = raw_v1(&server, &room, "name=Alice").await;
    receive_type(&mut alice, "welcome").await;
    // Sent back to back, so that both can land in one group commit.
    for seq in [1_u64 << 63, u64::MAX, 9_007_199_254_740_992] {
        send_message(&mut mallory, &op(0, seq, TextOperation::new().insert("m"))).await;
    }
    send_message(
        &mut alice,
        &op(0, 9_007_199_254_740_991, TextOperation::new().insert("a")),
    )
    .await;
    assert_eq!(
        receive_type(&mut alice, "ack").await,
        json!({"type": "ack", "seq": 9_007_199_254_740_991_u64, "revision": 1})
    );
    for seq in [1_u64 << 63, u64::MAX, 9_007_199_254_740_992] {
        let refused = receive_type(&mut mallory, "error").await;
        assert_eq!(
            (&refused["code"], &refused["seq"]),
            (&json!("bad_seq"), &json!(seq))
        );
    }
    assert_eq!(server.room(&room).await["code"], "a");
}

async fn a_selection_sent_with_an_op_is_held_to_the_text(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server
        .create_room(json!({"code": "twenty units of text"}))
        .await;
    let mut alice = raw_v1(&server, &room, "name=Alice").await;
    receive_type(&mut alice, "welcome").await;
    send_message(
        &mut alice,
        &ClientMessage::Op {
            revision: 0,
            seq: 1,
            ops: TextOperation::new().retain(20).insert("!"),
            selection: Some(Selection {
                anchor: 1_000_000,
                head: usize::MAX,
            }),
        },
    )
    .await;
    receive_type(&mut alice, "ack").await;
    let mut bob = raw_v1(&server, &room, "name=Bob").await;
    let welcome = receive_type(&mut bob, "welcome").await;
    assert_eq!(
        welcome["participants"],
        json!([{"clientId": welcome["participants"][0]["clientId"], "name": "Alice",
                "selection": {"anchor": 21, "head": 21}}])
    );
}

async fn a_session_cannot_be_taken_over_by_naming_its_client_id(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": ""})).await;
    let mut alice = raw_v1(&server, &room, "name=Alice&clientId=alice").await;
    let welcome = receive_type(&mut alice, "welcome").await;
    assert_eq!(welcome["clientId"], "alice");
    let token = welcome["resumeToken"].as_str().expect("a token").to_owned();
    send_message(&mut alice, &op(0, 1, TextOperation::new().insert("a"))).await;
    receive_type(&mut alice, "ack").await;

    // Naming alice, without her token or with another's, gives a new identity and replaces
    // nobody.
    let mut mallory = raw_v1(&server, &room, "name=Mallory&clientId=alice&since=1").await;
    let impostor = receive_type(&mut mallory, "welcome").await;
    assert_ne!(impostor["clientId"], "alice");
    let forged = format!(
        "clientId=alice&resumeToken={}",
        impostor["resumeToken"].as_str().unwrap_or("")
    );
    let mut forger = raw_v1(&server, &room, &forged).await;
    assert_ne!(
        receive_type(&mut forger, "welcome").await["clientId"],
        "alice"
    );
    // The impostor's next seq is its own; alice's next edit is hers and is applied.
    send_message(
        &mut mallory,
        &op(1, 2, TextOperation::new().retain(1).insert("M")),
    )
    .await;
    receive_type(&mut mallory, "ack").await;
    send_message(
        &mut alice,
        &op(1, 2, TextOperation::new().insert("A").retain(1)),
    )
    .await;
    assert_eq!(receive_type(&mut alice, "ack").await["seq"], 2);
    assert_eq!(server.room(&room).await["code"], "AaM");

    // A seq reused for another edit is refused; the same edit resent is acknowledged again.
    send_message(
        &mut alice,
        &op(1, 2, TextOperation::new().retain(1).insert("X")),
    )
    .await;
    assert_eq!(
        receive_type(&mut alice, "error").await["code"],
        "seq_reused"
    );
    send_message(
        &mut alice,
        &op(1, 2, TextOperation::new().insert("A").retain(1)),
    )
    .await;
    let resent = receive_type(&mut alice, "ack").await;
    assert_eq!(resent, json!({"type": "ack", "seq": 2, "revision": 3}));

    // Alice herself resumes with her token, also after a restart: her old connection goes.
    let resume = format!("clientId=alice&resumeToken={token}&since=3");
    let mut again = raw_v1(&server, &room, &resume).await;
    assert_eq!(
        receive_type(&mut again, "welcome").await["clientId"],
        "alice"
    );
    let closed = loop {
        match futures_util::StreamExt::next(&mut alice).await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                break u16::from(frame.code);
            }
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed, 4409);
    drop((again, mallory, forger));
    server.stop().await;
    let server = TestServer::on(&database).await;
    let mut after_restart = raw_v1(&server, &room, &resume).await;
    let welcome = receive_type(&mut after_restart, "welcome").await;
    assert_eq!(
        (&welcome["clientId"], &welcome["resumeToken"]),
        (&json!("alice"), &json!(token))
    );
}

async fn a_room_whose_log_is_damaged_opens_at_its_last_good_state(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "abc"})).await;
    let mut alice = raw_v1(&server, &room, "name=Alice").await;
    receive_type(&mut alice, "welcome").await;
    for (seq, at, inserted) in [(1, 3, "d"), (2, 4, "e"), (3, 5, "f")] {
        let ops = TextOperation::new().retain(at).insert(inserted);
        send_message(&mut alice, &op(seq - 1, seq, ops)).await;
        receive_type(&mut alice, "ack").await;
    }
    drop(alice);
    server.stop().await;
    // As after a crash before any snapshot, with revision 2 unreadable (the scratch database
    // holds this one room).
    database
        .execute("UPDATE rooms SET code = 'abc', revision = 0")
        .await;
    database
        .execute("UPDATE operations SET operation = '[0,\"X\",3' WHERE revision = 2")
        .await;
    let server = TestServer::on(&database).await;
    let read = server.room(&room).await;
    assert_eq!(
        (&read["code"], &read["revision"]),
        (&json!("abcd"), &json!(1))
    );
    // Joining repairs the log (the damage goes to quarantine) and editing goes on from there.
    let mut bob = raw_v1(&server, &room, "name=Bob").await;
    let welcome = receive_type(&mut bob, "welcome").await;
    assert_eq!(
        (&welcome["code"], &welcome["revision"]),
        (&json!("abcd"), &json!(1))
    );
    send_message(
        &mut bob,
        &op(1, 1, TextOperation::new().retain(4).insert("!")),
    )
    .await;
    assert_eq!(receive_type(&mut bob, "ack").await["revision"], 2);
    drop(bob);
    server.stop().await;
    let server = TestServer::on(&database).await;
    assert_eq!(server.room(&room).await["code"], "abcd!");
}

on_both_databases!(
    a_room_whose_log_is_damaged_opens_at_its_last_good_state,
    hostile_lengths_are_refused_and_the_room_stays_readable,
    a_sequence_number_out_of_range_fails_only_its_sender,
    a_selection_sent_with_an_op_is_held_to_the_text,
    a_session_cannot_be_taken_over_by_naming_its_client_id,
);
