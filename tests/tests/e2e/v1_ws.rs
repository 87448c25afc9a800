//! The `duet.v1` protocol: operations, acknowledgements, presence, resume, errors.

use duet_domain::{Selection, TextOperation};
use duet_protocol::{ClientMessage, ErrorCode, ServerMessage};
use duet_tests::v1::{State, V1Client};
use duet_tests::{Backend, TestServer, on_both_databases, op, receive_message, test_config};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use duet_tests::{raw_v1 as raw, receive_json as receive, send_message as send};

async fn the_exchange_frame_by_frame(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server
        .create_room(json!({"code": "ab", "language": "rust"}))
        .await;

    let mut alice = raw(&server, &room, "name=Alice&clientId=alice").await;
    let mut welcome = receive(&mut alice).await;
    let token = welcome
        .as_object_mut()
        .and_then(|welcome| welcome.remove("resumeToken"));
    assert!(
        token.as_ref().and_then(Value::as_str).is_some_and(
            |token| token.len() == 64 && token.bytes().all(|byte| byte.is_ascii_hexdigit())
        ),
        "{token:?}"
    );
    assert_eq!(
        welcome,
        json!({"type": "welcome", "clientId": "alice", "revision": 0, "language": "rust",
               "code": "ab", "participants": []})
    );
    let mut bob = raw(&server, &room, "name=Bob&clientId=bob").await;
    let welcome = receive(&mut bob).await;
    assert_eq!(
        welcome["participants"],
        json!([{"clientId": "alice", "name": "Alice"}])
    );
    assert_eq!(
        receive(&mut alice).await,
        json!({"type": "joined", "clientId": "bob", "name": "Bob"})
    );

    // An edit: acknowledged to its sender, broadcast to the others.
    send(
        &mut alice,
        &op(0, 1, TextOperation::new().retain(1).insert("😀").retain(1)),
    )
    .await;
    assert_eq!(
        receive(&mut alice).await,
        json!({"type": "ack", "seq": 1, "revision": 1})
    );
    assert_eq!(
        receive(&mut bob).await,
        json!({"type": "op", "revision": 1, "clientId": "alice", "ops": [1, "😀", 1]})
    );
    // A concurrent edit on the old revision is transformed before it is broadcast.
    send(
        &mut bob,
        &op(0, 1, TextOperation::new().retain(2).insert("!")),
    )
    .await;
    assert_eq!(
        receive(&mut bob).await,
        json!({"type": "ack", "seq": 1, "revision": 2})
    );
    assert_eq!(
        receive(&mut alice).await,
        json!({"type": "op", "revision": 2, "clientId": "bob", "ops": [4, "!"]})
    );
    // A resent edit is acknowledged again and not applied twice.
    send(
        &mut bob,
        &op(0, 1, TextOperation::new().retain(2).insert("!")),
    )
    .await;
    assert_eq!(
        receive(&mut bob).await,
        json!({"type": "ack", "seq": 1, "revision": 2})
    );
    // A whole buffer written against an old revision is merged by diff.
    send(
        &mut alice,
        &ClientMessage::Code {
            revision: 1,
            seq: 2,
            code: "xa😀b".into(),
        },
    )
    .await;
    assert_eq!(
        receive(&mut alice).await,
        json!({"type": "ack", "seq": 2, "revision": 3})
    );
    assert_eq!(
        receive(&mut bob).await,
        json!({"type": "op", "revision": 3, "clientId": "alice", "ops": ["x", 5]})
    );
    // Presence, moved from the revision it was made at to the current one.
    send(
        &mut bob,
        &ClientMessage::Presence {
            revision: 2,
            selection: Selection { anchor: 0, head: 1 },
        },
    )
    .await;
    assert_eq!(
        receive(&mut alice).await,
        json!({"type": "presence", "clientId": "bob", "name": "Bob",
               "selection": {"anchor": 1, "head": 2}})
    );
    // Bad messages are answered with errors and change nothing. Those that are not duet.v1
    // messages at all are written by hand.
    let bad = [
        (
            op(3, 3, TextOperation::new().retain(99)).encode(),
            ErrorCode::InvalidOp,
        ),
        (
            op(
                3,
                3,
                TextOperation::new().retain(1).insert("\u{0}").retain(5),
            )
            .encode(),
            ErrorCode::InvalidOp,
        ),
        (
            r#"{"type":"op","revision":3,"seq":3,"ops":[0]}"#.to_owned(),
            ErrorCode::BadMessage,
        ),
        (
            op(9, 3, TextOperation::new().retain(6)).encode(),
            ErrorCode::BadRevision,
        ),
        (r#"{"type":"dance"}"#.to_owned(), ErrorCode::BadMessage),
        ("[1,2]".to_owned(), ErrorCode::BadMessage),
    ];
    for (frame, expected) in bad {
        alice
            .send(Message::text(frame.clone()))
            .await
            .expect("sent");
        let answer = receive_message(&mut alice).await;
        assert!(
            matches!(answer, ServerMessage::Error { code, .. } if code == expected),
            "{frame}: {answer:?}"
        );
    }
    assert_eq!(server.room(&room).await["code"], "xa😀b!");
    assert_eq!(server.room(&room).await["revision"], 3);

    // A departure is announced.
    drop(bob);
    assert_eq!(
        receive(&mut alice).await,
        json!({"type": "left", "clientId": "bob"})
    );
    server.stop().await;
}

async fn endless_bad_messages_close_with_1008(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({})).await;
    let mut socket = raw(&server, &room, "").await;
    receive(&mut socket).await;
    for _ in 0..20 {
        socket.send(Message::text("not json")).await.expect("sent");
    }
    loop {
        let frame = tokio::time::timeout(duet_tests::PATIENCE, socket.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("valid");
        match frame {
            Message::Text(_) => continue,
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1008);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    server.stop().await;
}

async fn silent_clients_are_dropped_after_pings(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = test_config(database.url());
    // Long enough that the watcher, read only while the test waits for a message, answers in
    // time on a busy machine; the silent client is gone after two or three of them.
    config.settings.ping_interval = std::time::Duration::from_secs(1);
    let server = TestServer::start(config).await;
    let room = server.create_room(json!({})).await;
    // The watcher is in the room first, so it sees the silent client come and go.
    let mut watcher = raw(&server, &room, "clientId=watcher").await;
    receive(&mut watcher).await;
    // This client never reads, so it never answers a ping.
    let mut silent = raw(&server, &room, "clientId=silent").await;
    let left = loop {
        if let ServerMessage::Left { client_id } = receive_message(&mut watcher).await {
            break client_id;
        }
    };
    assert_eq!(left, "silent");
    // The silent socket was closed by the server: reading it now ends.
    let ended = tokio::time::timeout(duet_tests::PATIENCE, async {
        while let Some(Ok(_)) = silent.next().await {}
    })
    .await;
    assert!(ended.is_ok());
    server.stop().await;
}

/// A small deterministic random generator, so a failing run can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

/// A random edit on `text`: an insert (with non-BMP text) or a delete, at character
/// boundaries, counted in UTF-16 units.
fn random_edit(random: &mut Random, text: &str, client: usize) -> TextOperation {
    let boundaries: Vec<usize> = std::iter::once(0)
        .chain(text.chars().scan(0, |units, c| {
            *units += c.len_utf16();
            Some(*units)
        }))
        .collect();
    let length = *boundaries.last().unwrap_or(&0);
    let at = boundaries[random.below(boundaries.len())];
    if random.below(3) == 0 && at < length {
        let end_index = boundaries.iter().position(|b| *b == at).unwrap_or(0) + 1 + random.below(3);
        let end = boundaries[end_index.min(boundaries.len() - 1)];
        TextOperation::new()
            .retain(at)
            .delete(end - at)
            .retain(length - end)
    } else {
        let pieces = ["a", "é", "中", "😀", "\n", " "];
        let inserted = format!("{client}{}", pieces[random.below(pieces.len())]);
        TextOperation::new()
            .retain(at)
            .insert(&inserted)
            .retain(length - at)
    }
}

async fn five_clients_converge_through_disconnects(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "start\n"})).await;
    let ws_url = format!("ws://{}", server.address);
    let tasks: Vec<_> = (0..5)
        .map(|client| {
            let ws_url = ws_url.clone();
            let room = room.clone();
            tokio::spawn(async move {
                let mut random = Random(0x9E37_79B9_7F4A_7C15 ^ (client as u64 + 1));
                // Clients 1 and 3 read batched frames (`batch=1`).
                let batch = client % 2 == 1;
                let mut connection = V1Client::connect_with(&ws_url, &room, None, batch).await;
                for step in 0..120 {
                    connection.edit(|text| random_edit(&mut random, text, client));
                    if step % 8 == 7 {
                        let selection = ClientMessage::Presence {
                            revision: connection.snapshot().client.revision(),
                            selection: Selection::cursor(0),
                        };
                        connection.send_raw(&selection.encode());
                    }
                    // Clients 0 and 1 drop their connection now and then, edits in flight,
                    // and resume where they were.
                    if client < 2 && step % 30 == 29 {
                        let state: State = connection.disconnect();
                        connection =
                            V1Client::connect_with(&ws_url, &room, Some(state), batch).await;
                    }
                    tokio::task::yield_now().await;
                }
                connection.settle().await;
                connection
            })
        })
        .collect();
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.expect("the client finishes"));
    }
    let stored = server.room(&room).await;
    let revision = stored["revision"].as_u64().expect("a revision");
    let code = stored["code"].as_str().expect("code");
    let mut acknowledged = Vec::new();
    for client in &clients {
        client
            .wait_until(|state| state.client.revision() == revision)
            .await;
        let state = client.snapshot();
        assert_eq!(state.text, code, "client {} diverged", state.client_id);
        assert!(state.errors.is_empty(), "{:?}", state.errors);
        acknowledged.extend(state.acked.values().copied());
    }
    // Every committed revision was acknowledged to exactly one client: nothing acknowledged
    // is missing, and nothing resent was applied twice.
    acknowledged.sort_unstable();
    assert_eq!(acknowledged, (1..=revision).collect::<Vec<_>>());
    server.stop().await;
}

async fn plain_and_v1_clients_share_a_room(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "one\n"})).await;
    let mut plain = server.plain_client(&room).await;
    assert_eq!(plain.next_text().await, "one\n");
    let mut v1 = raw(&server, &room, "clientId=editor").await;
    assert_eq!(receive(&mut v1).await["code"], "one\n");

    send(
        &mut v1,
        &op(0, 1, TextOperation::new().retain(4).insert("two\n")),
    )
    .await;
    assert_eq!(
        receive(&mut v1).await,
        json!({"type": "ack", "seq": 1, "revision": 1})
    );
    assert_eq!(plain.next_text().await, "one\ntwo\n");

    plain.send_text("zero\none\ntwo\n").await;
    let committed = match receive_message(&mut v1).await {
        ServerMessage::Op(committed) => committed,
        other => panic!("expected an op, got {other:?}"),
    };
    assert_eq!(committed.revision, 2);
    assert_eq!(
        *committed.ops,
        TextOperation::new().insert("zero\n").retain(8)
    );
    // The server named the plain client itself.
    assert!(!committed.client_id.is_empty() && committed.client_id != "editor");
    assert_eq!(plain.next_text().await, "zero\none\ntwo\n");
    assert_eq!(server.room(&room).await["code"], "zero\none\ntwo\n");
    server.stop().await;
}

/// An `autocomplete` request.
fn autocomplete(id: Value, revision: u64, cursor_position: usize) -> ClientMessage {
    ClientMessage::Autocomplete {
        id,
        revision,
        cursor_position,
    }
}

/// A request to change the room's language.
fn language(language: &str) -> ClientMessage {
    ClientMessage::Language {
        language: language.to_owned(),
    }
}

async fn language_changes_and_suggestions_in_the_room(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server
        .create_room(json!({"code": "pri", "language": "python"}))
        .await;
    let mut alice = raw(&server, &room, "clientId=alice").await;
    receive(&mut alice).await;
    let mut bob = raw(&server, &room, "clientId=bob").await;
    receive(&mut bob).await;
    assert_eq!(receive(&mut alice).await["type"], "joined");

    send(&mut alice, &autocomplete(json!("a1"), 0, 3)).await;
    let answer = receive(&mut alice).await;
    assert_eq!(
        (answer["type"].as_str(), answer["id"].as_str()),
        (Some("suggestion"), Some("a1"))
    );
    assert_eq!(answer["suggestion"], "nt");

    // A cursor made at an older revision is moved over what happened since.
    send(
        &mut bob,
        &op(0, 1, TextOperation::new().insert("x = 1\n").retain(3)),
    )
    .await;
    assert_eq!(receive(&mut bob).await["type"], "ack");
    assert_eq!(receive(&mut alice).await["type"], "op");
    send(&mut alice, &autocomplete(json!(2), 0, 3)).await;
    let answer = receive(&mut alice).await;
    assert_eq!(
        (answer["id"].as_u64(), answer["suggestion"].as_str()),
        (Some(2), Some("nt"))
    );

    // A language change reaches everyone, the sender included, and is stored.
    send(&mut bob, &language("rust")).await;
    assert_eq!(
        receive(&mut alice).await,
        json!({"type": "language", "language": "rust"})
    );
    assert_eq!(
        receive(&mut bob).await,
        json!({"type": "language", "language": "rust"})
    );
    assert_eq!(server.room(&room).await["language"], "rust");
    // Through HTTP too.
    let patched = reqwest::Client::new()
        .patch(server.url(&format!("/rooms/{room}")))
        .json(&json!({"language": "go"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(patched.status(), 200);
    assert_eq!(
        receive(&mut alice).await,
        json!({"type": "language", "language": "go"})
    );
    assert_eq!(
        receive(&mut bob).await,
        json!({"type": "language", "language": "go"})
    );

    // Bad requests are answered and change nothing.
    send(&mut bob, &language("cobol")).await;
    assert_eq!(receive(&mut bob).await["code"], "invalid_language");
    send(&mut bob, &autocomplete(json!("x"), 9, 0)).await;
    let answer = receive(&mut bob).await;
    assert_eq!(
        (answer["code"].as_str(), answer["id"].as_str()),
        (Some("bad_revision"), Some("x"))
    );
    // A cursor past the end is kept to the end of the text.
    send(&mut bob, &autocomplete(json!("y"), 1, 99)).await;
    let answer = receive(&mut bob).await;
    assert_eq!(
        (answer["type"].as_str(), answer["id"].as_str()),
        (Some("suggestion"), Some("y"))
    );
    assert_eq!(server.room(&room).await["language"], "go");
    server.stop().await;
}

on_both_databases!(
    language_changes_and_suggestions_in_the_room,
    plain_and_v1_clients_share_a_room,
    the_exchange_frame_by_frame,
    endless_bad_messages_close_with_1008,
    silent_clients_are_dropped_after_pings,
    five_clients_converge_through_disconnects,
);
