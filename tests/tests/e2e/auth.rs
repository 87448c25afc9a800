//! Who may read and write, as clients with signed tokens see it: tokens minted here as a
//! team's own backend would (any JWT library, HS256, the shared secret), one test per row of
//! the contract in docs/PROTOCOL.md ("Authentication").

use std::time::{SystemTime, UNIX_EPOCH};

use duet_domain::TextOperation;
use duet_protocol::close::{POLICY_VIOLATION, ROOM_DELETED};
use duet_protocol::{ClientMessage, ErrorCode, ServerMessage};
use duet_server::{AuthSecret, Config};
use duet_tests::{
    Backend, Socket, TestServer, on_both_databases, op, receive_message, send_message, test_config,
    try_upgrade,
};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "an-end-to-end-secret-of-more-than-32-bytes";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A token signed with `secret`, with these claims.
fn sign_with(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encodes")
}

/// A valid token for `sub` as `role` in `room` (a room id or `*`), for an hour.
fn token(sub: &str, room: &str, role: &str) -> String {
    sign_with(
        SECRET,
        &json!({"sub": sub, "room": room, "role": role, "exp": now() + 3600}),
    )
}

fn config_with(database: &duet_infra_postgres::DatabaseUrl) -> Config {
    let mut config = test_config(database);
    config.settings.auth = Some(AuthSecret::new(SECRET).expect("long enough"));
    config
}

/// The status and JSON body (if any) of a request.
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

/// Creates a room with the `*` owner token.
async fn create_room(server: &TestServer, owner: &str, code: &str) -> String {
    let (status, body) = answer(
        reqwest::Client::new()
            .post(server.url("/rooms"))
            .bearer_auth(owner)
            .json(&json!({"code": code})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["roomId"].as_str().expect("a room id").to_owned()
}

/// A duet.v1 connection to `room` with this query (its token in it).
async fn connect(server: &TestServer, room: &str, query: &str) -> Result<Socket, (u16, Value)> {
    try_upgrade(
        server,
        &format!("/ws/{room}?{query}"),
        &[("sec-websocket-protocol", "duet.v1")],
    )
    .await
}

async fn welcome(socket: &mut Socket) -> (String, String, u64) {
    match receive_message(socket).await {
        ServerMessage::Welcome {
            client_id,
            resume_token,
            revision,
            ..
        } => (client_id.into_owned(), resume_token.into_owned(), revision),
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// The close code the server ends `socket` with (frames before it skipped).
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(duet_tests::PATIENCE, socket.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn room_code(server: &TestServer, room: &str) -> String {
    let (status, body) = answer(
        reqwest::Client::new()
            .get(server.url(&format!("/rooms/{room}")))
            .bearer_auth(token("reader", room, "viewer")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["code"].as_str().expect("code").to_owned()
}

async fn missing_forged_expired_and_malformed_tokens_are_401(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::start(config_with(database.url())).await;
    let owner = token("ada", "*", "owner");
    let room = create_room(&server, &owner, "x").await;
    let client = reqwest::Client::new();
    // The public routes need nothing.
    for path in ["/", "/healthz", "/readyz", "/languages"] {
        let (status, _) = answer(client.get(server.url(path))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let claims = |exp: u64| json!({"sub": "ada", "room": "*", "role": "owner", "exp": exp});
    let refused = [
        ("no token", None),
        (
            "forged",
            Some(sign_with(
                "another-secret-that-is-also-32-bytes-long",
                &claims(now() + 60),
            )),
        ),
        ("expired", Some(sign_with(SECRET, &claims(now() - 3600)))),
        (
            "no role",
            Some(sign_with(
                SECRET,
                &json!({"sub": "ada", "room": "*", "exp": now() + 60}),
            )),
        ),
        ("not a JWT", Some("hello".to_owned())),
    ];
    for (what, token) in &refused {
        let with = |request: reqwest::RequestBuilder| match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        for request in [
            client.get(server.url(&format!("/rooms/{room}"))),
            client.post(server.url("/rooms")).json(&json!({})),
            client.post(server.url("/rooms/create")),
            client
                .patch(server.url(&format!("/rooms/{room}")))
                .json(&json!({"language": "rust"})),
            client.delete(server.url(&format!("/rooms/{room}"))),
            client
                .post(server.url("/autocomplete"))
                .json(&json!({"code": "pri", "cursorPosition": 3})),
            client
                .post(server.url(&format!("/rooms/{room}/tokens")))
                .json(&json!({"role": "viewer"})),
        ] {
            let response = with(request).send().await.expect("the server answers");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.as_bytes()),
                Some(&b"Bearer"[..])
            );
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(code(&body), "unauthorized", "{what}: {body}");
        }
        // Before the upgrade, in the query string as a browser sends it.
        let query = token
            .as_ref()
            .map(|token| format!("token={token}"))
            .unwrap_or_default();
        let (status, body) = connect(&server, &room, &query).await.expect_err("refused");
        assert_eq!((status, code(&body)), (401, "unauthorized"), "{what}");
    }
    // Another scheme is no token; in the query string, only the first token counts, and only
    // on the WebSocket route.
    let (status, body) = answer(
        client
            .get(server.url(&format!("/rooms/{room}")))
            .header("authorization", format!("Basic {owner}")),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (status, _) = answer(client.get(server.url(&format!("/rooms/{room}?token={owner}")))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = connect(&server, &room, &format!("token=forged&token={owner}"))
        .await
        .expect_err("the first token is forged");
    assert_eq!((status, code(&body)), (401, "unauthorized"));
    let mut socket = connect(&server, &room, &format!("token={owner}&token=forged"))
        .await
        .expect("the first token is good");
    let _ = welcome(&mut socket).await;
    // Nothing was changed by any of them.
    assert_eq!(room_code(&server, &room).await, "x");
    server.stop().await;
}

async fn viewers_read_editors_write_owners_manage(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::start(config_with(database.url())).await;
    let owner = token("ada", "*", "owner");
    let room = create_room(&server, &owner, "ab").await;
    let other_room = create_room(&server, &owner, "").await;
    let client = reqwest::Client::new();
    let viewer = token("vic", &room, "viewer");
    let editor = token("eddie", &room, "editor");
    let room_path = format!("/rooms/{room}");
    // Reading: everyone with a token for the room; nobody with a token for another.
    for bearer in [&viewer, &editor] {
        let (status, _) = answer(client.get(server.url(&room_path)).bearer_auth(bearer)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = answer(
        client
            .get(server.url(&format!("/rooms/{other_room}")))
            .bearer_auth(&editor),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    // Changing the language: editors, not viewers.
    let patch = |bearer: &str, language: &str| {
        client
            .patch(server.url(&room_path))
            .bearer_auth(bearer)
            .json(&json!({"language": language}))
    };
    let (status, body) = answer(patch(&viewer, "go")).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let (status, body) = answer(patch(&editor, "rust")).await;
    assert_eq!(
        (status, body["language"].as_str()),
        (StatusCode::OK, Some("rust"))
    );
    // Creating rooms and deleting them: owners only, and creating only for `*`.
    for bearer in [
        &viewer,
        &editor,
        &token("ada", &room, "owner"),
        &token("x", "*", "editor"),
    ] {
        let (status, body) = answer(
            client
                .post(server.url("/rooms"))
                .bearer_auth(bearer)
                .json(&json!({})),
        )
        .await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
        let (status, body) =
            answer(client.post(server.url("/rooms/create")).bearer_auth(bearer)).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    }
    for bearer in [&viewer, &editor] {
        let (status, body) =
            answer(client.delete(server.url(&room_path)).bearer_auth(bearer)).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    }

    // Over the WebSocket: the viewer sees everything and changes nothing.
    let mut watcher = connect(&server, &room, &format!("token={viewer}&name=Vic"))
        .await
        .expect("a viewer connects");
    let (_, _, revision) = welcome(&mut watcher).await;
    let mut writer = connect(&server, &room, &format!("token={editor}"))
        .await
        .expect("an editor connects");
    let (writer_id, _, _) = welcome(&mut writer).await;
    assert!(matches!(
        receive_message(&mut watcher).await,
        ServerMessage::Joined(_)
    ));
    send_message(
        &mut watcher,
        &op(revision, 1, TextOperation::new().retain(2).insert("!")),
    )
    .await;
    match receive_message(&mut watcher).await {
        ServerMessage::Error { code, seq, .. } => {
            assert_eq!((code, seq), (ErrorCode::Forbidden, Some(1)));
        }
        other => panic!("expected the edit refused, got {other:?}"),
    }
    for refused in [
        ClientMessage::Code {
            revision,
            seq: 2,
            code: "mine".into(),
        },
        ClientMessage::Language {
            language: "go".into(),
        },
    ] {
        send_message(&mut watcher, &refused).await;
        match receive_message(&mut watcher).await {
            ServerMessage::Error { code, .. } => assert_eq!(code, ErrorCode::Forbidden),
            other => panic!("expected {refused:?} refused, got {other:?}"),
        }
    }
    // Completions are allowed.
    send_message(
        &mut watcher,
        &ClientMessage::Autocomplete {
            id: json!(7),
            revision,
            cursor_position: 2,
        },
    )
    .await;
    match receive_message(&mut watcher).await {
        ServerMessage::Suggestion { id, .. } => assert_eq!(*id, json!(7)),
        other => panic!("expected a suggestion, got {other:?}"),
    }
    // Presence is allowed: the editor sees the viewer's cursor.
    send_message(
        &mut watcher,
        &ClientMessage::Presence {
            revision,
            selection: duet_domain::Selection::cursor(1),
        },
    )
    .await;
    match receive_message(&mut writer).await {
        ServerMessage::Presence(participant) => assert_eq!(participant.name, "Vic"),
        other => panic!("expected the viewer's presence, got {other:?}"),
    }
    // The editor's edit goes through, and the viewer receives it.
    send_message(
        &mut writer,
        &op(revision, 1, TextOperation::new().retain(2).insert("c")),
    )
    .await;
    assert!(matches!(
        receive_message(&mut writer).await,
        ServerMessage::Ack { seq: 1, .. }
    ));
    match receive_message(&mut watcher).await {
        ServerMessage::Op(operation) => assert_eq!(operation.client_id, writer_id),
        other => panic!("expected the editor's edit, got {other:?}"),
    }
    assert_eq!(room_code(&server, &room).await, "abc");

    // A viewer in the prototype's plain mode that sends a buffer is closed with 1008.
    let mut plain = try_upgrade(&server, &format!("/ws/{room}?token={viewer}"), &[])
        .await
        .expect("a plain viewer connects");
    plain
        .send(Message::text("overwritten"))
        .await
        .expect("sent");
    assert_eq!(close_code(&mut plain).await, POLICY_VIOLATION);
    assert_eq!(room_code(&server, &room).await, "abc");
    server.stop().await;
}

async fn owners_share_links_never_above_themselves_and_delete_rooms(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::start(config_with(database.url())).await;
    let root = token("ada", "*", "owner");
    let room = create_room(&server, &root, "shared").await;
    let elsewhere = create_room(&server, &root, "").await;
    let client = reqwest::Client::new();
    let share = |bearer: &str, room: &str, body: Value| {
        client
            .post(server.url(&format!("/rooms/{room}/tokens")))
            .bearer_auth(bearer)
            .json(&body)
    };
    // An owner of this room only, whose own token ends in ten minutes.
    let ends = now() + 600;
    let owner = sign_with(
        SECRET,
        &json!({"sub": "olga", "room": room, "role": "owner", "exp": ends}),
    );
    let (status, body) = answer(share(
        &owner,
        &room,
        json!({"role": "viewer", "name": "Guest", "ttlSecs": 86_400}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let link = body["token"].as_str().expect("a token").to_owned();
    let expires = chrono_seconds(body["expiresAt"].as_str().expect("a time"));
    assert!(
        expires <= ends,
        "a link never outlives its maker: {expires} > {ends}"
    );
    // The link reads this room, as a viewer named by the link, and nothing more.
    let (status, _) = answer(
        client
            .get(server.url(&format!("/rooms/{room}")))
            .bearer_auth(&link),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for request in [
        client.get(server.url(&format!("/rooms/{elsewhere}"))),
        client
            .patch(server.url(&format!("/rooms/{room}")))
            .json(&json!({"language": "go"})),
        client
            .post(server.url(&format!("/rooms/{room}/tokens")))
            .json(&json!({"role": "viewer"})),
    ] {
        let (status, body) = answer(request.bearer_auth(&link)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{body}"
        );
    }
    let mut guest = connect(&server, &room, &format!("token={link}&name=Mallory"))
        .await
        .expect("the link connects");
    let _ = welcome(&mut guest).await;
    let mut host = connect(&server, &room, &format!("token={root}"))
        .await
        .expect("connects");
    match receive_message(&mut host).await {
        ServerMessage::Welcome { participants, .. } => {
            assert_eq!(participants.len(), 1);
            assert_eq!(
                participants[0].name, "Guest",
                "the link's name, not the one asked for"
            );
        }
        other => panic!("expected a welcome, got {other:?}"),
    }
    // Never more than the maker holds: no owner links, no links for other rooms, and none
    // from editors or viewers.
    let (status, body) = answer(share(&owner, &room, json!({"role": "owner"}))).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_role")
    );
    let (status, body) = answer(share(&owner, &elsewhere, json!({"role": "viewer"}))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    let editor = token("eddie", &room, "editor");
    let (status, body) = answer(share(&editor, &room, json!({"role": "viewer"}))).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    for bad in [
        json!({"role": "viewer", "ttlSecs": 0}),
        json!({"role": "viewer", "ttlSecs": -1}),
        json!({"role": "viewer", "ttlSecs": 999_999_999}),
    ] {
        let (status, body) = answer(share(&owner, &room, bad)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_ttl")
        );
    }
    let (status, body) = answer(share(
        &owner,
        &room,
        json!({"role": "viewer", "name": "x".repeat(65)}),
    ))
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_name")
    );
    // An editor link edits.
    let (_, body) = answer(share(&root, &room, json!({"role": "editor"}))).await;
    let editor_link = body["token"].as_str().expect("a token").to_owned();
    let (status, _) = answer(
        client
            .patch(server.url(&format!("/rooms/{room}")))
            .bearer_auth(&editor_link)
            .json(&json!({"language": "go"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Deleting: everyone in the room is closed with 4404, and the room is gone.
    let (status, _) = answer(
        client
            .delete(server.url(&format!("/rooms/{room}")))
            .bearer_auth(&owner),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for socket in [&mut guest, &mut host] {
        assert_eq!(close_code(socket).await, ROOM_DELETED);
    }
    let (status, body) = answer(
        client
            .get(server.url(&format!("/rooms/{room}")))
            .bearer_auth(&root),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "room_not_found")
    );
    let (status, body) = connect(&server, &room, &format!("token={root}"))
        .await
        .expect_err("refused");
    assert_eq!((status, code(&body)), (404, "room_not_found"));
    let (status, _) = answer(
        client
            .delete(server.url(&format!("/rooms/{room}")))
            .bearer_auth(&root),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The other room is untouched.
    assert_eq!(room_code(&server, &elsewhere).await, "");
    server.stop().await;
}

/// Seconds since the epoch of an RFC 3339 time.
fn chrono_seconds(time: &str) -> u64 {
    let parsed = chrono::DateTime::parse_from_rfc3339(time).expect("an RFC 3339 time");
    u64::try_from(parsed.timestamp()).expect("after 1970")
}

async fn a_client_id_belongs_to_the_user_who_first_used_it(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::start(config_with(database.url())).await;
    let room = create_room(&server, &token("root", "*", "owner"), "").await;
    let ada = sign_with(
        SECRET,
        &json!({"sub": "ada", "name": "Ada L.", "room": room, "role": "editor", "exp": now() + 600}),
    );
    let mut first = connect(
        &server,
        &room,
        &format!("token={ada}&clientId=laptop&name=Someone"),
    )
    .await
    .expect("connects");
    let (client_id, resume_token, revision) = welcome(&mut first).await;
    assert_eq!(client_id, "laptop");
    // Eve, with a valid token of her own and even ada's resume token, cannot be "laptop".
    let eve = token("eve", &room, "editor");
    for query in [
        format!("token={eve}&clientId=laptop"),
        format!("token={eve}&clientId=laptop&resumeToken={resume_token}&since=0"),
    ] {
        let (status, body) = connect(&server, &room, &query).await.expect_err("refused");
        assert_eq!((status, code(&body)), (403, "client_id_taken"), "{body}");
    }
    // Ada's connection was not replaced: it still edits.
    send_message(
        &mut first,
        &op(revision, 1, TextOperation::new().insert("a")),
    )
    .await;
    assert!(matches!(
        receive_message(&mut first).await,
        ServerMessage::Ack { seq: 1, .. }
    ));
    // Others see ada under her token's name, not the one her client asked for.
    let mut watcher = connect(&server, &room, &format!("token={eve}"))
        .await
        .expect("connects");
    match receive_message(&mut watcher).await {
        ServerMessage::Welcome { participants, .. } => {
            assert_eq!(participants.len(), 1);
            assert_eq!(participants[0].name, "Ada L.");
        }
        other => panic!("expected a welcome, got {other:?}"),
    }
    // Ada herself resumes, replacing her old connection.
    let mut again = connect(
        &server,
        &room,
        &format!("token={ada}&clientId=laptop&resumeToken={resume_token}&since=1"),
    )
    .await
    .expect("ada resumes");
    assert_eq!(welcome(&mut again).await.0, "laptop");
    assert_eq!(close_code(&mut first).await, duet_protocol::close::REPLACED);
    server.stop().await;
}

async fn rooms_are_held_to_their_members_and_size(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = config_with(database.url());
    config.max_members = 2;
    config.live.max_room_bytes = 8;
    let server = TestServer::start(config).await;
    let root = token("root", "*", "owner");
    let client = reqwest::Client::new();
    // A room's code is held to the size from the start.
    let (status, body) = answer(
        client
            .post(server.url("/rooms"))
            .bearer_auth(&root)
            .json(&json!({"code": "123456789"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "room_too_large")
    );
    let room = create_room(&server, &root, "1234567").await;
    let mut first = connect(&server, &room, &format!("token={root}"))
        .await
        .expect("connects");
    let (_, _, revision) = welcome(&mut first).await;
    // 7 bytes and a two-byte character is 9: refused, and nothing changes; one byte fits.
    send_message(
        &mut first,
        &op(revision, 1, TextOperation::new().retain(7).insert("é")),
    )
    .await;
    match receive_message(&mut first).await {
        ServerMessage::Error { code, seq, .. } => {
            assert_eq!((code, seq), (ErrorCode::RoomTooLarge, Some(1)));
        }
        other => panic!("expected the edit refused, got {other:?}"),
    }
    send_message(
        &mut first,
        &op(revision, 2, TextOperation::new().retain(7).insert("8")),
    )
    .await;
    assert!(matches!(
        receive_message(&mut first).await,
        ServerMessage::Ack { seq: 2, .. }
    ));
    assert_eq!(room_code(&server, &room).await, "12345678");
    // Two members fit; a third is refused before the upgrade, whatever its mode.
    let _second = connect(&server, &room, &format!("token={root}"))
        .await
        .expect("connects");
    let (status, body) = connect(&server, &room, &format!("token={root}"))
        .await
        .expect_err("full");
    assert_eq!((status, code(&body)), (403, "room_full"));
    let (status, body) = try_upgrade(&server, &format!("/ws/{room}?token={root}"), &[])
        .await
        .expect_err("full");
    assert_eq!((status, code(&body)), (403, "room_full"));
    server.stop().await;
}

async fn without_a_secret_rooms_are_open_and_no_tokens_are_minted(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    let id = server.create_room(json!({"code": "open"})).await;
    let mut socket = duet_tests::raw_v1(&server, &id, "").await;
    let _ = welcome(&mut socket).await;
    let (status, body) = answer(
        client
            .post(server.url(&format!("/rooms/{id}/tokens")))
            .json(&json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "auth_disabled")
    );
    // Anyone may delete, as anyone may edit.
    let (status, _) = answer(client.delete(server.url(&format!("/rooms/{id}")))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(close_code(&mut socket).await, ROOM_DELETED);
    let (status, _) = answer(client.get(server.url(&format!("/rooms/{id}")))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

async fn only_callers_that_may_create_rooms_spend_the_creation_quota(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = config_with(database.url());
    config.settings.rooms_per_minute = 2;
    let server = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let viewer = token("vic", "6f1c2b9e-8a4d-4c3e-9f7a-2b1d0e5c4a39", "viewer");
    for _ in 0..5 {
        // Refused for its role, before its body is read.
        let (status, body) = answer(
            client
                .post(server.url("/rooms"))
                .bearer_auth(&viewer)
                .body("not even JSON"),
        )
        .await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    }
    let owner = token("ada", "*", "owner");
    for _ in 0..2 {
        create_room(&server, &owner, "").await;
    }
    let (status, body) = answer(client.post(server.url("/rooms")).bearer_auth(&owner)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    server.stop().await;
}

on_both_databases!(
    only_callers_that_may_create_rooms_spend_the_creation_quota,
    missing_forged_expired_and_malformed_tokens_are_401,
    viewers_read_editors_write_owners_manage,
    owners_share_links_never_above_themselves_and_delete_rooms,
    a_client_id_belongs_to_the_user_who_first_used_it,
    rooms_are_held_to_their_members_and_size,
    without_a_secret_rooms_are_open_and_no_tokens_are_minted,
);
