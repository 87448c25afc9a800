//! The routes in process, over fakes and mocks: how failures of the server's own surface to a
//! client (as 503 with no internals), which the real databases cannot easily be made to do.
//! `connections` serves them on 127.0.0.1 and misbehaves as raw TCP clients do.

mod connections;
mod in_doubt;

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use duet_app::ports::{MockHealthCheck, MockRoomRepository, RepositoryError};
use duet_app::testing::{FixedClock, InMemoryRoomRepository};
use duet_app::{Autocomplete, Rooms};
use duet_domain::CannedAutocompleter;
use duet_infra_ws::{Services, Settings, Wire, router};
use duet_live::Registry;
use serde_json::Value;
use tower::ServiceExt;

const SECRET_CAUSE: &str = "password authentication failed for user duet at 10.0.0.7";

fn failing_repository() -> MockRoomRepository {
    let mut repository = MockRoomRepository::new();
    repository
        .expect_find()
        .returning(|_| Err(RepositoryError::Unavailable(SECRET_CAUSE.into())));
    repository
        .expect_insert()
        .returning(|_| Err(RepositoryError::Unavailable(SECRET_CAUSE.into())));
    repository
}

fn services(repository: MockRoomRepository, health: MockHealthCheck) -> Services {
    let rooms = Rooms::new(Arc::new(repository), Arc::new(FixedClock::default()));
    Services {
        live: Arc::new(Registry::new(rooms.clone(), Wire, 256)),
        rooms,
        autocomplete: Autocomplete::new(Arc::new(CannedAutocompleter)),
        health: Arc::new(health),
    }
}

async fn check(services: Services, request: Request<Body>) -> (StatusCode, Value) {
    let (app, _shutdown) = router(services, Settings::default());
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    let body: Value = serde_json::from_slice(&bytes).expect("a JSON body");
    (status, body)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("a request")
}

#[tokio::test]
async fn readiness_fails_while_the_database_does_not_answer() {
    let mut health = MockHealthCheck::new();
    health
        .expect_check()
        .returning(|| Err(RepositoryError::Unavailable(SECRET_CAUSE.into())));
    let (status, body) = check(services(MockRoomRepository::new(), health), get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(!body.to_string().contains("password"), "{body}");
}

#[tokio::test]
async fn a_failing_store_is_503_without_internals() {
    let requests = [
        get("/rooms/67e55044-10b1-426f-9247-bb680e5fe0c8"),
        Request::post("/rooms")
            .body(Body::empty())
            .expect("a request"),
        Request::post("/rooms/create")
            .body(Body::empty())
            .expect("a request"),
        get("/ws/67e55044-10b1-426f-9247-bb680e5fe0c8"),
    ];
    for request in requests {
        let uri = request.uri().to_string();
        let (status, body) = check(
            services(failing_repository(), MockHealthCheck::new()),
            request,
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(body["error"]["code"], "unavailable", "{uri}");
        assert!(!body.to_string().contains("10.0.0.7"), "{uri}: {body}");
    }
}

#[tokio::test]
async fn the_in_memory_store_serves_the_same_routes() {
    let repository = Arc::new(InMemoryRoomRepository::default());
    let rooms = Rooms::new(repository.clone(), Arc::new(FixedClock::default()));
    let services = Services {
        live: Arc::new(Registry::new(rooms.clone(), Wire, 256)),
        rooms,
        autocomplete: Autocomplete::new(Arc::new(CannedAutocompleter)),
        health: repository.clone(),
    };
    let (app, _shutdown) = router(services, Settings::default());
    let created = app
        .clone()
        .oneshot(
            Request::post("/rooms")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"code":"let x = 1;","language":"rust"}"#))
                .expect("a request"),
        )
        .await
        .expect("infallible");
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let read = app.oneshot(get(&location)).await.expect("infallible");
    assert_eq!(read.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&to_bytes(read.into_body(), 1 << 20).await.expect("a body"))
            .expect("JSON");
    assert_eq!(body["code"], "let x = 1;");
    assert_eq!(body["createdAt"], "2024-01-01T00:00:00.000Z");
    assert_eq!(repository.len(), 1);
}
