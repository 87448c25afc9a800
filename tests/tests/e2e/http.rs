//! The HTTP API as a client sees it.

use duet_tests::{Backend, TestServer, on_both_databases, test_config};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Sends a request and returns its status and JSON body.
async fn check(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    (status, body)
}

fn error_code(body: &Value) -> &str {
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "an error has a message: {body}"
    );
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

async fn status_health_and_readiness(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    let (status, body) = check(client.get(server.url("/"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["service"], "duet");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let (status, _) = check(client.get(server.url("/healthz"))).await;
    assert_eq!(status, 200);
    let (status, body) = check(client.get(server.url("/readyz"))).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    server.stop().await;
}

async fn creating_rooms(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();

    // The prototype's route, with no body at all.
    let (status, body) = check(client.post(server.url("/rooms/create"))).await;
    assert_eq!(status, 200);
    let id = body["roomId"].as_str().expect("a room id");
    let room = server.room(id).await;
    assert_eq!(room["roomId"], id);
    assert_eq!(room["language"], "python");
    assert_eq!(room["code"], "");
    assert_eq!(room["revision"], 0);
    assert!(room["createdAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(room["createdAt"], room["updatedAt"]);

    // The REST route with details.
    let response = client
        .post(server.url("/rooms"))
        .json(&json!({"language": "Rust", "code": "fn main() {\n    println!(\"😀\");\n}\n"}))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let body: Value = response.json().await.expect("JSON");
    let id = body["roomId"].as_str().expect("a room id");
    assert_eq!(location, format!("/rooms/{id}"));
    let room = server.room(id).await;
    assert_eq!(room["language"], "rust");
    assert_eq!(room["code"], "fn main() {\n    println!(\"😀\");\n}\n");

    // An empty object and an explicit empty body are both fine.
    let (status, _) = check(client.post(server.url("/rooms/create")).json(&json!({}))).await;
    assert_eq!(status, 200);
    server.stop().await;
}

async fn bad_room_requests(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    let bodies: &[(&str, StatusCode, &str)] = &[
        (
            "[1, 2]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        ("42", StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        // An array of a body's field values is not the body (serde would read it as one).
        (
            "[null, null]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "\"python\"",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        ("null", StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (
            "{\"language\": 5}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "{\"code\": [\"x\"]}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "{\"language\": \"py thon\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_language",
        ),
        (
            "{\"code\": \"a\\u0000b\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
        ),
        ("{\"language\": ", StatusCode::BAD_REQUEST, "malformed_json"),
        ("{not json}", StatusCode::BAD_REQUEST, "malformed_json"),
    ];
    for route in ["/rooms", "/rooms/create"] {
        for (body, expected_status, expected_code) in bodies {
            let (status, answer) = check(
                client
                    .post(server.url(route))
                    .header("content-type", "application/json")
                    .body(*body),
            )
            .await;
            assert_eq!(status, *expected_status, "{route} {body}");
            assert_eq!(error_code(&answer), *expected_code, "{route} {body}");
        }
    }

    let (status, body) = check(client.get(server.url("/rooms/not-a-uuid"))).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_room_id")
    );
    let (status, body) =
        check(client.get(server.url("/rooms/67e55044-10b1-426f-9247-bb680e5fe0c8"))).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "room_not_found")
    );
    let (status, body) = check(client.get(server.url("/no/such/route"))).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = check(client.get(server.url("/rooms/create"))).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    server.stop().await;
}

async fn room_ids_that_are_not_utf8_are_invalid_room_ids(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    // Each decodes to bytes that are not UTF-8, which axum's path extractor refuses before the
    // id could be checked as a UUID.
    let requests = [
        client.get(server.url("/rooms/%FF")),
        client
            .patch(server.url("/rooms/%FF"))
            .json(&json!({"language": "go"})),
        client.get(server.url("/ws/%C3%28")),
        client
            .get(server.url("/ws/%FF"))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    for request in requests {
        let described = format!("{request:?}");
        let (status, body) = check(request).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_room_id"),
            "{described}"
        );
    }
    server.stop().await;
}

async fn oversized_bodies_are_refused(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = test_config(database.url());
    config.settings.max_body_bytes = 1024;
    let server = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let code = "x".repeat(2000);
    for route in ["/rooms", "/autocomplete"] {
        let (status, body) = check(
            client
                .post(server.url(route))
                .json(&json!({"code": code, "cursorPosition": 0})),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{route}");
        assert_eq!(error_code(&body), "payload_too_large");
    }
    server.stop().await;

    // A limit above axum's own default (2 MB) is honoured too.
    let mut config = test_config(database.url());
    config.settings.max_body_bytes = 4 * 1024 * 1024;
    let server = TestServer::start(config).await;
    let large = "x".repeat(3 * 1024 * 1024);
    let response = client
        .post(server.url("/rooms"))
        .json(&json!({"code": large}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::CREATED);
    server.stop().await;
}

async fn autocomplete_keeps_the_prototype_rule(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = test_config(database.url());
    config.autocomplete = duet_server::AutocompleteEngine::Canned;
    let server = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let cases = [
        (
            json!({"code": "pri", "cursorPosition": 3, "language": "python"}),
            "print('Hello World')",
        ),
        (
            json!({"code": "x = 1\n", "cursorPosition": 0, "language": "python"}),
            "print('Hello World')",
        ),
        (
            json!({"code": "print(1)\n  pri  ", "cursorPosition": 10, "language": "python"}),
            "print('Hello World')",
        ),
        (
            json!({"code": "print(1)\n", "cursorPosition": 9, "language": "python"}),
            "",
        ),
        (json!({"code": "print(1)", "cursorPosition": 2}), ""),
        (
            json!({"code": "😀 print", "cursorPosition": 2, "language": "python"}),
            "",
        ),
    ];
    for (request, expected) in cases {
        let (status, body) = check(client.post(server.url("/autocomplete")).json(&request)).await;
        assert_eq!(status, 200, "{request}");
        assert_eq!(body["suggestion"], expected, "{request}");
    }
    server.stop().await;
}

async fn bad_autocomplete_requests(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    let cases = [
        (
            json!({"cursorPosition": 0, "language": "python"}),
            "invalid_request",
        ),
        (json!({"code": 5, "cursorPosition": 0}), "invalid_request"),
        (
            json!({"code": null, "cursorPosition": 0}),
            "invalid_request",
        ),
        (json!({"code": "abc"}), "invalid_request"),
        (
            json!({"code": "abc", "cursorPosition": "1"}),
            "invalid_request",
        ),
        (
            json!({"code": "abc", "cursorPosition": 1.5}),
            "invalid_request",
        ),
        (
            json!({"code": "abc", "cursorPosition": -1}),
            "invalid_cursor",
        ),
        (
            json!({"code": "abc", "cursorPosition": 4}),
            "invalid_cursor",
        ),
        (
            json!({"code": "a😀", "cursorPosition": 2}),
            "invalid_cursor",
        ),
        (
            json!({"code": "abc", "cursorPosition": 1, "language": ""}),
            "invalid_language",
        ),
        (
            json!({"code": "abc", "cursorPosition": 1, "language": "cobol"}),
            "invalid_language",
        ),
        (json!(["code"]), "invalid_request"),
    ];
    for (request, expected) in cases {
        let (status, body) = check(client.post(server.url("/autocomplete")).json(&request)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{request}");
        assert_eq!(error_code(&body), expected, "{request}");
    }
    let (status, body) = check(
        client
            .post(server.url("/autocomplete"))
            .header("content-type", "application/json")
            .body("{\"code\": \"a\", "),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    server.stop().await;
}

async fn cross_origin_calls(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let client = reqwest::Client::new();
    let preflight = |server: &TestServer, origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, server.url("/rooms/create"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
    };

    let server = TestServer::on(&database).await;
    let response = preflight(&server, "https://editor.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(
        response.headers()["access-control-allow-methods"]
            .to_str()
            .is_ok_and(|methods| methods.contains("POST"))
    );
    server.stop().await;

    let mut config = test_config(database.url());
    config.settings.allowed_origins = duet_infra_ws_origins(&["https://editor.example"]);
    let server = TestServer::start(config).await;
    let allowed = preflight(&server, "https://editor.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://editor.example"
    );
    let refused = preflight(&server, "https://evil.example")
        .send()
        .await
        .expect("answer");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    server.stop().await;
}

/// An upgrade to the room's WebSocket sent from `origin`: the status of the answer and, when it
/// was refused, its JSON body.
async fn upgrade_from(server: &TestServer, room: &str, origin: &str) -> (u16, Value) {
    match duet_tests::try_upgrade(server, &format!("/ws/{room}"), &[("origin", origin)]).await {
        Ok(_) => (101, Value::Null),
        Err(refusal) => refusal,
    }
}

async fn pages_from_unlisted_origins_are_refused(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let mut config = test_config(database.url());
    config.settings.allowed_origins = duet_infra_ws_origins(&["https://editor.example"]);
    let server = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let create = |origin: Option<String>| {
        let request = client.post(server.url("/rooms")).json(&json!({}));
        match origin {
            Some(origin) => request.header("origin", origin),
            None => request,
        }
    };
    let (status, body) = check(create(Some("https://evil.example".into()))).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "origin_not_allowed")
    );
    // A listed page, a page the server served itself, and a program that is no web page.
    let own = server.url("");
    for origin in [
        Some("https://editor.example".to_owned()),
        Some(own.clone()),
        None,
    ] {
        let (status, body) = check(create(origin.clone())).await;
        assert_eq!(status, StatusCode::CREATED, "{origin:?}: {body}");
    }
    let room = server.create_room(json!({})).await;
    let (status, body) = upgrade_from(&server, &room, "https://evil.example").await;
    assert_eq!((status, error_code(&body)), (403, "origin_not_allowed"));
    for origin in ["https://editor.example", own.as_str()] {
        assert_eq!(
            upgrade_from(&server, &room, origin).await.0,
            101,
            "{origin}"
        );
    }
    server.stop().await;

    // With the default (any origin), nothing is checked.
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({})).await;
    assert_eq!(
        upgrade_from(&server, &room, "https://evil.example").await.0,
        101
    );
    server.stop().await;
}

async fn bodies_must_say_they_are_json(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    let room = server.create_room(json!({})).await;
    let room_path = format!("/rooms/{room}");
    let requests = [
        ("POST", "/rooms", r#"{"code": "x"}"#),
        ("POST", "/rooms/create", r#"{"code": "x"}"#),
        (
            "POST",
            "/autocomplete",
            r#"{"code": "pri", "cursorPosition": 3}"#,
        ),
        ("PATCH", room_path.as_str(), r#"{"language": "rust"}"#),
    ];
    // What a web page may send anywhere without asking first.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        for (method, path, body) in requests {
            let mut request = client
                .request(method.parse().expect("a method"), server.url(path))
                .body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let (status, answer) = check(request).await;
            assert_eq!(
                (status, error_code(&answer)),
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
                "{method} {path} as {content_type:?}"
            );
        }
    }
    // Nothing was created or changed.
    let (_, read) = check(client.get(server.url(&room_path))).await;
    assert_eq!(read["language"], "python");
    // JSON with a charset is JSON; an empty body needs no type.
    let (status, _) = check(
        client
            .post(server.url("/rooms"))
            .header("content-type", "Application/JSON; charset=utf-8")
            .body(r#"{"code": "x"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = check(client.post(server.url("/rooms/create"))).await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

fn duet_infra_ws_origins(origins: &[&str]) -> duet_server::AllowedOrigins {
    duet_server::AllowedOrigins::List(origins.iter().map(|o| (*o).to_owned()).collect())
}

async fn the_local_engine_answers_by_default(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    let cases = [
        (
            json!({"code": "pri", "cursorPosition": 3, "language": "python"}),
            "nt",
        ),
        (
            json!({"code": "fn", "cursorPosition": 2, "language": "rust"}),
            " name() {\n    \n}",
        ),
        (
            json!({"code": "let total = 1;\ntot", "cursorPosition": 18, "language": "js"}),
            "al",
        ),
        (json!({"code": "print(len(x", "cursorPosition": 11}), "))"),
    ];
    for (request, expected) in cases {
        let (status, body) = check(client.post(server.url("/autocomplete")).json(&request)).await;
        assert_eq!(status, 200, "{request}");
        assert_eq!(body["suggestion"], expected, "{request}");
        assert!(body["alternatives"].is_array(), "{body}");
    }
    server.stop().await;
}

async fn languages_are_listed_and_changed(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    let (status, body) = check(client.get(server.url("/languages"))).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["languages"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|language| language["id"].as_str().expect("an id"))
        .collect();
    assert_eq!(
        ids,
        [
            "python",
            "javascript",
            "typescript",
            "rust",
            "go",
            "java",
            "c",
            "cpp",
            "plaintext"
        ]
    );

    let room = server.create_room(json!({"code": "x"})).await;
    let (status, body) = check(
        client
            .patch(server.url(&format!("/rooms/{room}")))
            .json(&json!({"language": "Rust"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["language"].as_str(), body["code"].as_str()),
        (Some("rust"), Some("x"))
    );
    assert_eq!(server.room(&room).await["language"], "rust");

    let unknown_room = "/rooms/67e55044-10b1-426f-9247-bb680e5fe0c8".to_owned();
    let bad = [
        (
            format!("/rooms/{room}"),
            json!({"language": "cobol"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_language",
        ),
        (
            format!("/rooms/{room}"),
            json!({"language": 7}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            format!("/rooms/{room}"),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            "/rooms/nope".to_owned(),
            json!({"language": "go"}),
            StatusCode::BAD_REQUEST,
            "invalid_room_id",
        ),
        (
            unknown_room,
            json!({"language": "go"}),
            StatusCode::NOT_FOUND,
            "room_not_found",
        ),
    ];
    for (path, request, expected_status, expected_code) in bad {
        let (status, body) = check(client.patch(server.url(&path)).json(&request)).await;
        assert_eq!(
            (status, error_code(&body)),
            (expected_status, expected_code),
            "{path} {request}"
        );
        if expected_code == "invalid_language" {
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("python") && message.contains("cpp"),
                "{message}"
            );
        }
    }
    assert_eq!(server.room(&room).await["language"], "rust");
    server.stop().await;
}

on_both_databases!(
    the_local_engine_answers_by_default,
    languages_are_listed_and_changed,
    status_health_and_readiness,
    creating_rooms,
    bad_room_requests,
    room_ids_that_are_not_utf8_are_invalid_room_ids,
    oversized_bodies_are_refused,
    autocomplete_keeps_the_prototype_rule,
    bad_autocomplete_requests,
    cross_origin_calls,
    pages_from_unlisted_origins_are_refused,
    bodies_must_say_they_are_json,
);
