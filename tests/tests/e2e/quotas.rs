//! The per-address quotas as a client meets them: rooms created too fast from one address are
//! refused with 429 `rate_limited` and create nothing, and connections past the per-address cap
//! are refused with 429 `too_many_connections_from_address` until one of that address's own
//! closes. The tests' clients are on 127.0.0.1; one on 127.0.0.2 (loopback too, on Linux)
//! shows that another address has a quota of its own.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use duet_tests::{Backend, PATIENCE, Socket, TestServer, on_both_databases, test_config_with};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite;

const HERE: Ipv4Addr = Ipv4Addr::LOCALHOST;
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// What a refused request or connection was answered.
#[derive(Debug)]
struct Refusal {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

impl Refusal {
    /// Checks it is a 429 with this code and a whole number of seconds ≥ 1 to wait, and
    /// returns that number.
    fn check(&self, code: &str) -> u64 {
        assert_eq!(self.status, 429, "{self:?}");
        assert_eq!(self.body["error"]["code"], code, "{self:?}");
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{self:?}"
        );
        let seconds: u64 = self
            .retry_after
            .as_deref()
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("a Retry-After in whole seconds: {self:?}"));
        assert!(seconds >= 1, "{self:?}");
        seconds
    }
}

async fn create(client: &reqwest::Client, server: &TestServer, route: &str) -> Result<(), Refusal> {
    let response = client
        .post(server.url(route))
        .json(&json!({"code": "print(1)"}))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(());
    }
    assert!(
        response.headers().get("location").is_none(),
        "a refusal names no room"
    );
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().expect("ASCII").to_owned());
    let body = response.json().await.expect("a JSON body");
    Err(Refusal {
        status,
        retry_after,
        body,
    })
}

async fn rooms_past_the_quota_are_refused_and_create_nothing(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let config = test_config_with(database.url(), &[("DUET_ROOMS_PER_MINUTE", "3")]);
    let server = TestServer::start(config).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        create(&client, &server, "/rooms")
            .await
            .expect("within the quota");
    }
    assert_eq!(database.room_count().await, 3);
    // The fourth is refused, on the prototype's route too: both count against one quota.
    for route in ["/rooms", "/rooms/create"] {
        let refusal = create(&client, &server, route)
            .await
            .expect_err("past the quota");
        let seconds = refusal.check("rate_limited");
        // Three a minute: the next one is at most a third of a minute away.
        assert!(seconds <= 20, "{refusal:?}");
    }
    assert_eq!(database.room_count().await, 3, "a refusal stores nothing");
    // Another address has a quota of its own.
    let elsewhere = reqwest::Client::builder()
        .local_address(IpAddr::V4(ELSEWHERE))
        .build()
        .expect("a client");
    create(&elsewhere, &server, "/rooms/create")
        .await
        .expect("another address's quota is full");
    assert_eq!(database.room_count().await, 4);
    server.stop().await;
}

/// Opens a connection from `from` and sends `GET /healthz` on it, kept alive: the connection
/// once answered 200, or what it was refused with.
async fn open_http(server: &TestServer, from: Ipv4Addr) -> Result<TcpStream, Refusal> {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("a local address");
    let mut stream = socket.connect(server.address).await.expect("connects");
    let (status, retry_after, body) = exchange(&mut stream).await;
    if status == 200 {
        Ok(stream)
    } else {
        Err(Refusal {
            status,
            retry_after,
            body,
        })
    }
}

/// Sends `GET /healthz` and reads the answer: its status, `Retry-After` and JSON body.
async fn exchange(stream: &mut TcpStream) -> (u16, Option<String>, Value) {
    // A refused connection is answered before its request is read; the request may then fail
    // to go out, and the answer is read all the same.
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: duet\r\n\r\n")
        .await;
    tokio::time::timeout(PATIENCE, async {
        let mut buffer = Vec::new();
        let mut chunk = [0; 4096];
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break end + 4;
            }
            let read = stream.read(&mut chunk).await.expect("an answer");
            assert!(read > 0, "closed before answering");
            buffer.extend_from_slice(&chunk[..read]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let status = head
            .get(9..12)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {head}"));
        let header = |name: &str| {
            head.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_owned())
        };
        let length: usize = header("content-length:")
            .and_then(|length| length.parse().ok())
            .unwrap_or_else(|| panic!("a content length: {head}"));
        while buffer.len() < head_end + length {
            let read = stream.read(&mut chunk).await.expect("the body");
            assert!(read > 0, "closed in the body");
            buffer.extend_from_slice(&chunk[..read]);
        }
        let body = serde_json::from_slice(&buffer[head_end..head_end + length]).expect("JSON");
        (status, header("retry-after:"), body)
    })
    .await
    .expect("answered in time")
}

/// Opens a WebSocket to `room` from 127.0.0.1: the socket, or what the upgrade was refused
/// with (the status and `Retry-After`; the body is not always read with the head).
async fn open_websocket(server: &TestServer, room: &str) -> Result<Socket, Refusal> {
    let url = server.ws_url(&format!("/ws/{room}"));
    match tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .expect("answered in time")
    {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => Err(Refusal {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .map(|value| value.to_str().expect("ASCII").to_owned()),
            body: Value::Null,
        }),
        Err(error) => panic!("the upgrade failed: {error}"),
    }
}

/// Tries until a connection is accepted: what the server lets go of when a client closes, it
/// lets go of just after, so a new connection may still find the address's quota full for a
/// moment. Every refusal on the way must be the address's quota.
async fn until_accepted<T, Attempt>(mut attempt: impl FnMut() -> Attempt) -> T
where
    Attempt: Future<Output = Result<T, Refusal>>,
{
    tokio::time::timeout(PATIENCE, async {
        loop {
            match attempt().await {
                Ok(accepted) => return accepted,
                Err(refusal) => {
                    assert_eq!(refusal.status, 429, "{refusal:?}");
                    tokio::task::yield_now().await;
                }
            }
        }
    })
    .await
    .expect("a place comes free in time")
}

async fn connections_past_the_address_quota_are_refused_until_one_closes(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let config = test_config_with(database.url(), &[("DUET_MAX_CONNECTIONS_PER_IP", "2")]);
    let server = TestServer::start(config).await;
    // The connections of the readiness check and of this request were closed by their
    // clients, which the server may not have seen yet; hence `until_accepted` below.
    let room = server.create_room(json!({"code": ""})).await;
    let mut websocket = until_accepted(|| open_websocket(&server, &room)).await;
    let mut kept_alive = until_accepted(|| open_http(&server, HERE)).await;

    // Both held: a third connection, HTTP or WebSocket, is refused.
    open_http(&server, HERE)
        .await
        .expect_err("past the quota")
        .check("too_many_connections_from_address");
    let refused_upgrade = open_websocket(&server, &room)
        .await
        .expect_err("past the quota");
    assert_eq!(refused_upgrade.status, 429, "{refused_upgrade:?}");
    assert!(refused_upgrade.retry_after.is_some(), "{refused_upgrade:?}");
    // Another address is let in, and the two held still work.
    let elsewhere = open_http(&server, ELSEWHERE)
        .await
        .expect("another address's quota is free");
    assert_eq!(exchange(&mut kept_alive).await.0, 200);

    // Closing the WebSocket gives its place back, and only its place.
    websocket.close(None).await.expect("closes");
    while let Some(Ok(_)) = websocket.next().await {}
    let reopened = until_accepted(|| open_http(&server, HERE)).await;
    open_http(&server, HERE)
        .await
        .expect_err("two held again")
        .check("too_many_connections_from_address");
    // So does an HTTP connection the client closes.
    drop(kept_alive);
    let _again = until_accepted(|| open_http(&server, HERE)).await;
    drop((reopened, elsewhere));
    server.stop().await;
}

on_both_databases!(
    rooms_past_the_quota_are_refused_and_create_nothing,
    connections_past_the_address_quota_are_refused_until_one_closes,
);
