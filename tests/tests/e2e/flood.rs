//! One member flooding the room: its flood costs it, never the others. Presence is coalesced
//! per member, each connection holds a bounded share of the room's queue and a bounded rate,
//! and a connection that stays over its rate is closed with 1008.

use duet_domain::{Selection, TextOperation};
use duet_protocol::{ClientMessage, ServerMessage};
use duet_tests::{
    Backend, Socket, TestServer, on_both_databases, op, raw_v1, receive_message, receive_messages,
    send_message, test_config,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Joins `count` members, each with its welcome read.
async fn members(server: &TestServer, room: &str, count: usize) -> Vec<Socket> {
    let mut sockets = Vec::new();
    for index in 0..count {
        let mut socket = raw_v1(server, room, &format!("name=member{index}")).await;
        while !matches!(
            receive_message(&mut socket).await,
            ServerMessage::Welcome { .. }
        ) {}
        sockets.push(socket);
    }
    sockets
}

/// Writes every message in one go (one flush), as a flooding client would.
async fn flood(socket: &mut Socket, messages: impl Iterator<Item = ClientMessage>) {
    for message in messages {
        socket
            .feed(Message::text(message.encode()))
            .await
            .expect("queued");
    }
    socket.flush().await.expect("written");
}

/// Reads until this member's edit `seq` is acknowledged and returns the revision it was
/// committed as; everything else on the way (others' operations, presence, membership news)
/// is fine, an error or a close is not.
async fn acknowledged(socket: &mut Socket, seq: u64) -> u64 {
    loop {
        for message in receive_messages(socket).await {
            match message {
                ServerMessage::Ack {
                    seq: acked,
                    revision,
                } if acked == seq => return revision,
                ServerMessage::Error { .. } => panic!("{message:?}"),
                _ => {}
            }
        }
    }
}

/// Each member inserts a marker at the start of the text as it was at `revision` (older than
/// the room by then: the edits are transformed, not refused); returns the revisions they
/// were committed as.
async fn each_other_member_edits(others: &mut [Socket], seq: u64, revision: u64) -> Vec<u64> {
    for (index, socket) in others.iter_mut().enumerate() {
        let marker = TextOperation::new().insert(&format!("<{index}>"));
        send_message(socket, &op(revision, seq, marker)).await;
    }
    let mut revisions = Vec::new();
    for socket in others.iter_mut() {
        revisions.push(acknowledged(socket, seq).await);
    }
    revisions
}

/// A server that reads as fast as a client writes: what protects the others is then the room's
/// own rules (coalesced presence, a bounded share of the queue), not the rate limit.
async fn unthrottled(database: &duet_infra_postgres::testing::TestDatabase) -> TestServer {
    let mut config = test_config(database.url());
    config.settings.message_rate.per_second = 10_000_000;
    // Members may fall only a few entries behind: a flood that cost them an entry per message
    // would drop them at once.
    config.send_queue = 8;
    TestServer::start(config).await
}

async fn a_presence_flood_drops_nobody(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = unthrottled(&database).await;
    let room = server.create_room(json!({"code": ""})).await;
    let mut others = members(&server, &room, 5).await;
    let mut flooder = members(&server, &room, 1).await.remove(0);
    for other in &mut others {
        // Each learns of the flooder joining before the flood.
        while !matches!(receive_message(other).await, ServerMessage::Joined(_)) {}
    }
    flood(
        &mut flooder,
        (0..50_000_usize).map(|index| {
            // Selections past the end are held to the text, and this one is empty.
            ClientMessage::Presence {
                revision: 0,
                selection: Selection::cursor(index % 10),
            }
        }),
    )
    .await;
    // Everyone else is still in the room, and their edits are acknowledged during the flood.
    each_other_member_edits(&mut others, 1, 0).await;
    let code = server.room(&room).await["code"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    for index in 0..5 {
        assert!(code.contains(&format!("<{index}>")), "{code}");
    }
}

async fn pipelined_operations_do_not_starve_the_others(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = unthrottled(&database).await;
    let room = server.create_room(json!({"code": ""})).await;
    let mut others = members(&server, &room, 3).await;
    let mut flooder = members(&server, &room, 1).await.remove(0);
    flood(
        &mut flooder,
        (1..=10_000_u64).map(|seq| op(0, seq, TextOperation::new().insert("x"))),
    )
    .await;
    // Acknowledged long before the flooder's 10,000 are through (the history holds 1,000,
    // so an edit based on revision 0 committed after them would be refused).
    let first = each_other_member_edits(&mut others, 1, 0).await;
    assert!(first.iter().all(|revision| *revision < 1000), "{first:?}");
}

async fn a_connection_that_stays_over_its_rate_is_closed_with_1008(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = test_config(database.url());
    config.settings.message_rate.per_second = 20;
    config.settings.message_rate.abuse_after = std::time::Duration::from_millis(500);
    let server = TestServer::start(config).await;
    let room = server.create_room(json!({"code": ""})).await;
    let mut others = members(&server, &room, 2).await;
    let mut flooder = members(&server, &room, 1).await.remove(0);
    flood(
        &mut flooder,
        (0..2_000).map(|_| ClientMessage::Presence {
            revision: 0,
            selection: Selection::cursor(1),
        }),
    )
    .await;
    let code = tokio::time::timeout(duet_tests::PATIENCE, async {
        while let Some(frame) = flooder.next().await {
            if let Ok(Message::Close(Some(frame))) = frame {
                return Some(u16::from(frame.code));
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert_eq!(code, Some(1008));
    each_other_member_edits(&mut others, 1, 0).await;
}

on_both_databases!(
    a_presence_flood_drops_nobody,
    pipelined_operations_do_not_starve_the_others,
    a_connection_that_stays_over_its_rate_is_closed_with_1008,
);
