//! The prototype's plain WebSocket mode: whole buffers, echoed to everyone in one order.

use duet_tests::{Backend, Client, TestServer, on_both_databases, test_config};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, Message};

async fn two_clients_sync_with_echo(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({})).await;
    let mut alice = server.plain_client(&room).await;
    let mut bob = server.plain_client(&room).await;

    alice.send_text("print('hi')").await;
    assert_eq!(alice.next_text().await, "print('hi')");
    assert_eq!(bob.next_text().await, "print('hi')");

    bob.send_text("print('hi')\nprint('bob 😀')").await;
    assert_eq!(bob.next_text().await, "print('hi')\nprint('bob 😀')");
    assert_eq!(alice.next_text().await, "print('hi')\nprint('bob 😀')");

    let stored = server.room(&room).await;
    assert_eq!(stored["code"], "print('hi')\nprint('bob 😀')");
    assert_eq!(stored["revision"], 2);
    server.stop().await;
}

async fn a_late_joiner_receives_the_code(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "x = 1"})).await;
    let mut first = server.plain_client(&room).await;
    assert_eq!(first.next_text().await, "x = 1");
    first.send_text("x = 2").await;
    assert_eq!(first.next_text().await, "x = 2");

    let mut late = server.plain_client(&room).await;
    assert_eq!(late.next_text().await, "x = 2");

    // A room with empty code sends nothing on join: the first frame is the next edit.
    let empty = server.create_room(json!({})).await;
    let mut quiet = server.plain_client(&empty).await;
    let mut writer = server.plain_client(&empty).await;
    writer.send_text("first").await;
    assert_eq!(quiet.next_text().await, "first");
    server.stop().await;
}

async fn concurrent_plain_typists_keep_every_line(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "# shared\n"})).await;
    let typists = 3;
    let lines = 10;
    let mut clients = Vec::new();
    for _ in 0..typists {
        let mut client = server.plain_client(&room).await;
        assert_eq!(client.next_text().await, "# shared\n");
        clients.push(client);
    }
    // Each typist adds its lines to the buffer it last received, as the prototype's editor
    // did, while the others do the same: buffers cross on the wire all the time, so a buffer
    // often arrives based on one that lacks another typist's newest line.
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(typist, mut client)| {
            tokio::spawn(async move {
                let mut buffer = "# shared\n".to_owned();
                for line in 0..lines {
                    let typed = format!("typist {typist} line {line} 😀\n");
                    buffer.push_str(&typed);
                    client.send_text(&buffer).await;
                    // Type on once the echo shows the line, keeping whatever else arrived.
                    loop {
                        buffer = client.next_text().await;
                        if buffer.contains(&typed) {
                            break;
                        }
                    }
                }
                let everything = |text: &str| {
                    (0..typists).all(|t| {
                        (0..lines).all(|l| text.contains(&format!("typist {t} line {l} 😀\n")))
                    })
                };
                while !everything(&buffer) {
                    buffer = client.next_text().await;
                }
                buffer
            })
        })
        .collect();
    let mut finals = Vec::new();
    for task in tasks {
        finals.push(task.await.expect("the typist finishes"));
    }
    let stored = server.room(&room).await;
    let code = stored["code"].as_str().expect("code");
    assert!(
        finals.iter().all(|text| text == code),
        "{finals:#?}\nserver: {code}"
    );
    assert_eq!(code.lines().count(), 1 + typists * lines, "{code}");
    server.stop().await;
}

async fn unknown_and_malformed_rooms_are_refused_before_the_upgrade(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let cases = [
        ("/ws/67e55044-10b1-426f-9247-bb680e5fe0c8", 404),
        ("/ws/not-a-room", 400),
    ];
    for (path, expected) in cases {
        match tokio_tungstenite::connect_async(server.ws_url(path)).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), expected, "{path}");
            }
            other => panic!("{path}: expected an HTTP refusal, got {other:?}"),
        }
    }
    // A plain GET without the upgrade is told to upgrade, once the room is known to exist.
    let room = server.create_room(json!({})).await;
    // A query the server cannot read is refused with its code, before the upgrade.
    let path = format!("/ws/{room}?batch=maybe");
    match tokio_tungstenite::connect_async(server.ws_url(&path)).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON error body");
            assert_eq!(body["error"]["code"], "invalid_query", "{body}");
        }
        other => panic!("{path}: expected an HTTP refusal, got {other:?}"),
    }
    let response = reqwest::get(server.url(&format!("/ws/{room}")))
        .await
        .expect("answer");
    assert_eq!(response.status(), 426);
    server.stop().await;
}

async fn a_binary_frame_closes_only_its_connection(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "start"})).await;
    let mut sender = server.plain_client(&room).await;
    let mut other = server.plain_client(&room).await;
    assert_eq!(sender.next_text().await, "start");
    assert_eq!(other.next_text().await, "start");

    sender
        .socket
        .send(Message::binary(vec![0_u8, 159, 146, 150]))
        .await
        .expect("sent");
    assert_eq!(sender.expect_close().await.0, 1003);

    // The room keeps working for everyone else, and for newcomers.
    other.send_text("still here").await;
    assert_eq!(other.next_text().await, "still here");
    let mut newcomer = server.plain_client(&room).await;
    assert_eq!(newcomer.next_text().await, "still here");
    newcomer.send_text("and more").await;
    assert_eq!(other.next_text().await, "and more");
    assert_eq!(server.room(&room).await["code"], "and more");
    server.stop().await;
}

async fn oversized_frames_close_with_1009_and_store_nothing(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = test_config(database.url());
    config.settings.max_frame_bytes = 1024;
    let server = TestServer::start(config).await;
    let room = server.create_room(json!({"code": "small"})).await;
    let mut other = server.plain_client(&room).await;
    assert_eq!(other.next_text().await, "small");

    for size in [1025, 64 * 1024] {
        let mut sender = server.plain_client(&room).await;
        assert_eq!(sender.next_text().await, "small");
        sender.send_text(&"x".repeat(size)).await;
        let (code, reason) = sender.expect_close().await;
        assert_eq!(code, 1009, "{size} bytes");
        assert!(reason.contains("1024"), "{reason}");
    }
    let stored = server.room(&room).await;
    assert_eq!(
        (stored["code"].as_str(), stored["revision"].as_u64()),
        (Some("small"), Some(0))
    );

    // Exactly at the limit is fine.
    let exact = "y".repeat(1024);
    other.send_text(&exact).await;
    assert_eq!(other.next_text().await, exact);
    server.stop().await;
}

async fn code_with_nul_closes_with_1007_and_stores_nothing(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "kept"})).await;
    let mut sender = server.plain_client(&room).await;
    assert_eq!(sender.next_text().await, "kept");
    sender.send_text("a\0b").await;
    assert_eq!(sender.expect_close().await.0, 1007);
    assert_eq!(server.room(&room).await["code"], "kept");
    server.stop().await;
}

async fn a_client_that_falls_behind_is_dropped_without_slowing_the_room(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = test_config(database.url());
    config.send_queue = 4;
    let server = TestServer::start(config).await;
    let room = server.create_room(json!({})).await;
    // This client never reads, so its socket buffers fill and then its queue overflows.
    let mut stalled = server.plain_client(&room).await;
    let mut typist = server.plain_client(&room).await;
    let block = "z".repeat(64 * 1024);
    let edits = 300;
    for edit in 0..edits {
        let frame = format!("{edit} {block}");
        typist.send_text(&frame).await;
        assert_eq!(typist.next_text().await, frame, "edit {edit}");
    }
    let received = stalled.drain_until_closed().await;
    assert!(
        received < edits,
        "the stalled client got all {received} edits"
    );
    assert_eq!(server.room(&room).await["revision"], edits);
    server.stop().await;
}

async fn shutdown_closes_sockets_with_1001(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"code": "bye"})).await;
    let mut client: Client = server.plain_client(&room).await;
    assert_eq!(client.next_text().await, "bye");
    let stopping = tokio::spawn(server.stop());
    assert_eq!(client.expect_close().await.0, 1001);
    stopping.await.expect("the server stops cleanly");
}

on_both_databases!(
    two_clients_sync_with_echo,
    a_late_joiner_receives_the_code,
    concurrent_plain_typists_keep_every_line,
    unknown_and_malformed_rooms_are_refused_before_the_upgrade,
    a_binary_frame_closes_only_its_connection,
    oversized_frames_close_with_1009_and_store_nothing,
    code_with_nul_closes_with_1007_and_stores_nothing,
    a_client_that_falls_behind_is_dropped_without_slowing_the_room,
    shutdown_closes_sockets_with_1001,
);
