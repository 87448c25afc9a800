//! The engine against a fake OpenAI-compatible server started on 127.0.0.1 inside each test,
//! so the real HTTP client code runs: a good answer, fill-in-the-middle on and off, and every
//! way the model can fail, each of which falls back to the local engine.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use duet_domain::{Autocompleter, CompletionRequest, Language};
use duet_infra_openai::{OpenAiAutocompleter, OpenAiConfig};
use serde_json::{Value, json};

/// How the fake server answers.
#[derive(Clone, Copy)]
enum Behaviour {
    Answer(&'static str),
    Hang,
    Garbage,
    Fail,
}

/// The last request's body and `Authorization` header.
type Seen = Option<(Value, Option<String>)>;

#[derive(Clone)]
struct Fake {
    behaviour: Behaviour,
    seen: Arc<Mutex<Seen>>,
}

async fn completions(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    *fake.seen.lock().expect("unpoisoned") = Some((body, authorization));
    match fake.behaviour {
        Behaviour::Answer(text) => {
            Json(json!({"choices": [{"text": text, "index": 0}]})).into_response()
        }
        // Never answers: the engine's timeout is what ends the wait.
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Garbage => (StatusCode::OK, "<html>not json</html>").into_response(),
        Behaviour::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn fake_server(behaviour: Behaviour) -> (SocketAddr, Fake) {
    let fake = Fake {
        behaviour,
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/completions", post(completions))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, fake)
}

/// Long enough for an answer from the fake server on a busy machine: a slower one would make
/// the engine fall back to the local one and the answer tests fail for nothing.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// What the test of a server that never answers waits.
const HANG_TIMEOUT: Duration = Duration::from_millis(300);

fn engine(address: SocketAddr, fill_in_the_middle: bool) -> OpenAiAutocompleter {
    engine_waiting(address, fill_in_the_middle, ANSWER_TIMEOUT)
}

fn engine_waiting(
    address: SocketAddr,
    fill_in_the_middle: bool,
    timeout: Duration,
) -> OpenAiAutocompleter {
    OpenAiAutocompleter::new(OpenAiConfig {
        base_url: format!("http://{address}/v1"),
        api_key: Some("sk-test".into()),
        model: "coder".into(),
        timeout,
        max_tokens: 32,
        fill_in_the_middle,
    })
}

fn request(code: &str, cursor: usize) -> CompletionRequest {
    CompletionRequest::new(code.into(), cursor, Language::Python).expect("a valid cursor")
}

#[tokio::test]
async fn asks_the_model_with_fill_in_the_middle() {
    let (address, fake) = fake_server(Behaviour::Answer("nt('hello')")).await;
    let completion = engine(address, true)
        .complete(&request("pri\nx = 1\n", 3))
        .await
        .expect("an answer");
    assert_eq!(completion.suggestion, "nt('hello')");
    let (body, authorization) = fake
        .seen
        .lock()
        .expect("unpoisoned")
        .clone()
        .expect("a request");
    assert_eq!(body["model"], "coder");
    assert_eq!(body["prompt"], "pri");
    assert_eq!(body["suffix"], "\nx = 1\n");
    assert_eq!(body["max_tokens"], 32);
    assert_eq!(authorization.as_deref(), Some("Bearer sk-test"));
}

#[tokio::test]
async fn sends_no_suffix_without_fill_in_the_middle() {
    let (address, fake) = fake_server(Behaviour::Answer("nt")).await;
    engine(address, false)
        .complete(&request("pri", 3))
        .await
        .expect("an answer");
    let (body, _) = fake
        .seen
        .lock()
        .expect("unpoisoned")
        .clone()
        .expect("a request");
    assert!(body.get("suffix").is_none(), "{body}");
}

#[tokio::test]
async fn never_suggests_what_follows_the_cursor() {
    let (address, _) = fake_server(Behaviour::Answer("len(items))")).await;
    let completion = engine(address, true)
        .complete(&request("print()", 6))
        .await
        .expect("an answer");
    assert_eq!(completion.suggestion, "len(items)");
}

#[tokio::test]
async fn falls_back_to_the_local_engine_when_the_model_fails() {
    for behaviour in [Behaviour::Hang, Behaviour::Garbage, Behaviour::Fail] {
        let timeout = if matches!(behaviour, Behaviour::Hang) {
            HANG_TIMEOUT
        } else {
            ANSWER_TIMEOUT
        };
        let (address, _) = fake_server(behaviour).await;
        let completion = engine_waiting(address, true, timeout)
            .complete(&request("pri", 3))
            .await
            .expect("an answer");
        // The local engine completes the built-in.
        assert_eq!(completion.suggestion, "nt");
    }
}

#[tokio::test]
async fn falls_back_when_nothing_listens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = listener.local_addr().expect("an address");
    drop(listener);
    let completion = engine(address, true)
        .complete(&request("pri", 3))
        .await
        .expect("an answer");
    assert_eq!(completion.suggestion, "nt");
}
