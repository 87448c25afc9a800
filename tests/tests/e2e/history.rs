//! A room's history over HTTP: `GET /rooms/{id}/history` page by page, and
//! `GET /rooms/{id}?revision=R` for every revision, against rooms edited through `duet.v1` past
//! their snapshots; the refusals; who may read it.

use std::time::{SystemTime, UNIX_EPOCH};

use duet_domain::{TextOperation, utf16_len};
use duet_protocol::ServerMessage;
use duet_server::AuthSecret;
use duet_tests::v1::V1Client;
use duet_tests::{
    Backend, TestServer, on_both_databases, op, raw_v1, receive_message, send_message,
    test_config_with,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Snapshots every 3 operations, so that a few edits take the snapshot past early revisions.
fn snapshots_every_3(database: &duet_infra_postgres::DatabaseUrl) -> duet_server::Config {
    test_config_with(database, &[("DUET_SNAPSHOT_EVERY", "3")])
}

/// The status and JSON body of a GET, with `token` as the bearer when given.
async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

/// The edits of the tests, each made on the text before it: inserts, deletions, characters
/// outside the BMP, line ends.
fn edit(step: usize, text: &str) -> TextOperation {
    let length = utf16_len(text);
    match step % 4 {
        0 => TextOperation::new().retain(length).insert("x😀\n"),
        1 => TextOperation::new().insert("é").retain(length),
        2 => TextOperation::new().delete(1).retain(length - 1),
        _ => TextOperation::new()
            .retain(length / 2)
            .insert("\r\n\tmid")
            .retain(length - length / 2),
    }
}

/// A room created with `initial` in `language` and edited `edits` times by one `duet.v1`
/// client, one operation at a time; the client, still connected.
async fn edited_room(
    server: &TestServer,
    initial: &str,
    language: &str,
    edits: usize,
) -> (String, V1Client) {
    let room = server
        .create_room(json!({"code": initial, "language": language}))
        .await;
    let client = V1Client::connect(&format!("ws://{}", server.address), &room, None).await;
    for step in 0..edits {
        client.edit(|text| edit(step, text));
        client.settle().await;
    }
    (room, client)
}

/// Every operation of `room`'s history, read `limit` at a time; checks each page's `revision`
/// and `nextFrom` on the way, and returns the pages' revisions too.
async fn read_all(server: &TestServer, room: &str, limit: u64) -> (Vec<Value>, Vec<Vec<u64>>) {
    let (mut operations, mut pages) = (Vec::new(), Vec::new());
    let mut from = 0;
    loop {
        let (status, body) = get(
            server,
            &format!("/rooms/{room}/history?from={from}&limit={limit}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["operations"].as_array().expect("operations").clone();
        pages.push(
            page.iter()
                .map(|operation| operation["revision"].as_u64().expect("a revision"))
                .collect(),
        );
        operations.extend(page);
        match body["nextFrom"].as_u64() {
            Some(next) => {
                assert_eq!(
                    Some(next),
                    operations.last().and_then(|last| last["revision"].as_u64())
                );
                from = next;
            }
            None => {
                assert!(body["nextFrom"].is_null(), "{body}");
                break;
            }
        }
    }
    (operations, pages)
}

async fn the_history_pages_and_every_revision_is_rebuilt(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::start(snapshots_every_3(database.url())).await;
    let initial = "start\nof the room 😀\n";
    let (room, client) = edited_room(&server, initial, "plaintext", 8).await;
    let client_id = client.snapshot().client_id;

    // While the room is live: every acknowledged operation is in the store already.
    let (operations, pages) = read_all(&server, &room, 3).await;
    assert_eq!(pages, [vec![1, 2, 3], vec![4, 5, 6], vec![7, 8]]);
    for (revision, operation) in (1..).zip(&operations) {
        assert_eq!(operation["revision"], revision);
        assert_eq!(operation["clientId"], client_id.as_str());
        // RFC 3339 in UTC to the millisecond, like every timestamp of the API.
        let at = operation["committedAt"].as_str().expect("a time");
        assert!(
            at.len() == 24 && at.ends_with('Z') && at.as_bytes()[19] == b'.',
            "{at}"
        );
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    }
    let (status, body) = get(&server, &format!("/rooms/{room}/history"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["operations"].as_array().map(Vec::len), Some(8));
    assert_eq!(
        (&body["revision"], &body["nextFrom"]),
        (&json!(8), &Value::Null)
    );
    // A range inside the history, and the same range cut by the limit.
    let (_, body) = get(&server, &format!("/rooms/{room}/history?from=2&to=5"), None).await;
    assert_eq!(body["operations"], json!(operations[2..5]));
    assert_eq!(
        (&body["revision"], &body["nextFrom"]),
        (&json!(8), &Value::Null)
    );
    let (_, body) = get(
        &server,
        &format!("/rooms/{room}/history?from=2&to=5&limit=2"),
        None,
    )
    .await;
    assert_eq!(body["operations"], json!(operations[2..4]));
    assert_eq!(body["nextFrom"], 4);
    let (_, body) = get(&server, &format!("/rooms/{room}/history?from=5&to=5"), None).await;
    assert_eq!(
        body,
        json!({"operations": [], "revision": 8, "nextFrom": null})
    );
    drop(client.disconnect());

    // Each revision's code is the first operations applied to the room's first code, before
    // the snapshot (refreshed at 3 and 6, and when the client left) and after it.
    let now = server.room(&room).await;
    let mut text = initial.to_owned();
    for revision in 0..=8_u64 {
        if revision > 0 {
            let index = usize::try_from(revision - 1).expect("small");
            let ops: TextOperation =
                serde_json::from_value(operations[index]["ops"].clone()).expect("an operation");
            text = ops.apply(&text).expect("applies");
        }
        let (status, body) =
            get(&server, &format!("/rooms/{room}?revision={revision}"), None).await;
        assert_eq!(status, StatusCode::OK, "{revision}: {body}");
        assert_eq!(body["code"], text.as_str(), "revision {revision}");
        assert_eq!(body["revision"], revision);
        assert_eq!(
            (&body["roomId"], &body["language"]),
            (&now["roomId"], &now["language"])
        );
        assert_eq!(body["createdAt"], now["createdAt"]);
        let updated = if revision == 0 {
            &now["createdAt"]
        } else {
            &operations[usize::try_from(revision - 1).expect("small")]["committedAt"]
        };
        assert_eq!(&body["updatedAt"], updated, "revision {revision}");
    }
    assert_eq!(now["code"], text.as_str());
    let (_, at_now) = get(&server, &format!("/rooms/{room}?revision=8"), None).await;
    assert_eq!(at_now, now);
    // Past the current revision.
    let (status, body) = get(&server, &format!("/rooms/{room}?revision=9"), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "revision_not_found")
    );
    server.stop().await;
}

async fn unreadable_queries_and_ranges_are_refused(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let (room, client) = edited_room(&server, "ab", "plaintext", 2).await;
    drop(client.disconnect());
    let history = format!("/rooms/{room}/history");
    let refused = [
        (
            format!("{history}?from=abc"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{history}?from=-1"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{history}?to=1.5"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{history}?limit=ten"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{history}?from=18446744073709551616"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("/rooms/{room}?revision=two"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("/rooms/{room}?revision=-1"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{history}?from=2&to=1"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
        ),
        (
            format!("{history}?to=3"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
        ),
        (
            format!("{history}?from=3"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
        ),
        (
            format!("{history}?to=18446744073709551615"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_range",
        ),
        (
            format!("{history}?limit=0"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        ),
        (
            format!("{history}?limit=1001"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        ),
        (
            format!("/rooms/{room}?revision=3"),
            StatusCode::NOT_FOUND,
            "revision_not_found",
        ),
        (
            "/rooms/not-a-room/history".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_room_id",
        ),
    ];
    for (path, status, expected) in refused {
        let (answered, body) = get(&server, &path, None).await;
        assert_eq!(
            (answered, code(&body)),
            (status, expected),
            "{path}: {body}"
        );
    }
    let unknown = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    for path in [
        format!("/rooms/{unknown}/history"),
        format!("/rooms/{unknown}?revision=0"),
    ] {
        let (status, body) = get(&server, &path, None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "room_not_found"),
            "{path}"
        );
    }
    // The largest page is allowed; so are parameters the route does not know.
    let (status, body) = get(&server, &format!("{history}?limit=1000&other=x"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["operations"].as_array().map(Vec::len), Some(2));
    let (status, body) = get(&server, &format!("/rooms/{room}?other=x"), None).await;
    assert_eq!((status, &body["revision"]), (StatusCode::OK, &json!(2)));
    server.stop().await;
}

async fn revisions_that_cannot_be_rebuilt_are_gone(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::start(snapshots_every_3(database.url())).await;
    // Each room is told apart in SQL by its language.
    let (old, client) = edited_room(&server, "old", "rust", 7).await;
    drop(client.disconnect());
    let (lost, client) = edited_room(&server, "lost", "go", 3).await;
    drop(client.disconnect());
    // As a room made before servers kept its first code: its snapshot is at 6 (or 7, once
    // its session stored one on the way out).
    database
        .execute("UPDATE rooms SET initial_code = NULL WHERE language = 'rust'")
        .await;
    for revision in 0..6 {
        let (status, body) = get(&server, &format!("/rooms/{old}?revision={revision}"), None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::GONE, "revision_gone"),
            "{revision}: {body}"
        );
    }
    let (status, body) = get(&server, &format!("/rooms/{old}?revision=7"), None).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::OK, &server.room(&old).await["code"])
    );
    // Its operations are all there all the same.
    let (operations, _) = read_all(&server, &old, 1000).await;
    assert_eq!(operations.len(), 7);

    // A room that lost its operation 2 behind the server's back (its snapshot is at 3).
    database
        .execute(
            "DELETE FROM operations WHERE revision = 2 AND room_id IN \
             (SELECT id FROM rooms WHERE language = 'go')",
        )
        .await;
    for (revision, status) in [
        (0, StatusCode::OK),
        (1, StatusCode::OK),
        (2, StatusCode::GONE),
        (3, StatusCode::OK),
    ] {
        let (answered, body) =
            get(&server, &format!("/rooms/{lost}?revision={revision}"), None).await;
        assert_eq!(answered, status, "{revision}: {body}");
    }
    let (_, body) = get(&server, &format!("/rooms/{lost}/history"), None).await;
    assert_eq!(
        (
            body["operations"].as_array().map(Vec::len),
            &body["nextFrom"]
        ),
        (Some(1), &json!(1))
    );
    let (status, body) = get(&server, &format!("/rooms/{lost}/history?from=1"), None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::GONE, "revision_gone"),
        "{body}"
    );
    server.stop().await;
}

const SECRET: &str = "an-end-to-end-secret-of-more-than-32-bytes";

/// A valid token for `sub` as `role` in `room` (a room id or `*`), for an hour.
fn token(sub: &str, room: &str, role: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
        + 3600;
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "room": room, "role": role, "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encodes")
}

async fn viewers_read_the_history_and_other_rooms_tokens_do_not(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = snapshots_every_3(database.url());
    config.settings.auth = Some(AuthSecret::new(SECRET).expect("long enough"));
    let server = TestServer::start(config).await;
    let owner = token("ada", "*", "owner");
    let response = reqwest::Client::new()
        .post(server.url("/rooms"))
        .bearer_auth(&owner)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("JSON");
    let room = body["roomId"].as_str().expect("a room id").to_owned();
    let mut editor = raw_v1(&server, &room, &format!("token={owner}")).await;
    assert!(matches!(
        receive_message(&mut editor).await,
        ServerMessage::Welcome { .. }
    ));
    send_message(&mut editor, &op(0, 1, TextOperation::new().insert("a"))).await;
    assert!(matches!(
        receive_message(&mut editor).await,
        ServerMessage::Ack {
            seq: 1,
            revision: 1
        }
    ));
    let viewer = token("vi", &room, "viewer");
    let elsewhere = token("eve", "67e55044-10b1-426f-9247-bb680e5fe0c8", "owner");
    for path in [
        format!("/rooms/{room}/history"),
        format!("/rooms/{room}?revision=0"),
    ] {
        let (status, body) = get(&server, &path, Some(&viewer)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let (status, body) = get(&server, &path, Some(&elsewhere)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
        let (status, body) = get(&server, &path, None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
    }
    let (_, body) = get(&server, &format!("/rooms/{room}/history"), Some(&viewer)).await;
    assert_eq!(body["operations"][0]["ops"], json!(["a"]));
    let (_, body) = get(&server, &format!("/rooms/{room}?revision=0"), Some(&viewer)).await;
    assert_eq!(body["code"], "");
    drop(editor);
    server.stop().await;
}

on_both_databases!(
    the_history_pages_and_every_revision_is_rebuilt,
    unreadable_queries_and_ranges_are_refused,
    revisions_that_cannot_be_rebuilt_are_gone,
    viewers_read_the_history_and_other_rooms_tokens_do_not,
);
