//! The connection limits over real TCP on 127.0.0.1: clients that send a head a byte at a
//! time, sit idle, trickle a body, never finish an upgrade or come in too great numbers, and
//! requests that hyper refuses before any route sees them. Every answer is in the JSON error
//! shape.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use duet_app::ports::{RecordedSubmission, RepositoryError, RoomRepository};
use duet_app::testing::{FixedClock, InMemoryRoomRepository};
use duet_app::{Autocomplete, Rooms};
use duet_domain::{CannedAutocompleter, ClientId, CommittedOperation, Room, RoomId};
use duet_infra_ws::{ConnectionLimits, Services, Settings, Wire, serve};
use duet_live::Registry;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a test waits for something it expects before failing.
const PATIENCE: Duration = Duration::from_secs(10);
/// The timeouts under test: short, so that the tests are quick, and far below `PATIENCE`.
const SHORT: Duration = Duration::from_secs(1);

pub(crate) struct Server {
    pub(crate) address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ConnectionLimits) -> Self {
        let repository = Arc::new(InMemoryRoomRepository::default());
        Self::with_repository(limits, repository).await
    }

    pub(crate) async fn with_repository(
        limits: ConnectionLimits,
        repository: Arc<dyn RoomRepository>,
    ) -> Self {
        let settings = Settings {
            connections: limits,
            shutdown_grace: Duration::from_secs(2),
            ..Settings::default()
        };
        Self::with_settings(settings, repository).await
    }

    async fn with_settings(settings: Settings, repository: Arc<dyn RoomRepository>) -> Self {
        let rooms = Rooms::new(repository, Arc::new(FixedClock::default()));
        let services = Services {
            live: Arc::new(Registry::new(rooms.clone(), Wire, 256)),
            rooms,
            autocomplete: Autocomplete::new(Arc::new(CannedAutocompleter)),
            health: Arc::new(InMemoryRoomRepository::default()),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, services, settings, async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.expect("connects")
    }

    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the server stops in time")
            .expect("the server does not panic");
        assert!(result.is_ok(), "{result:?}");
    }
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "not JSON: {}",
            self.head
        );
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The `error.code` of a JSON error body, after checking the body has the error shape.
    fn error_code(&self) -> String {
        let body = self.json();
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "an error has a message: {body}"
        );
        body["error"]["code"]
            .as_str()
            .unwrap_or("<no code>")
            .to_owned()
    }
}

/// Reads one response (head and `Content-Length` body); `None` when the connection ends first.
async fn read_answer(stream: &mut (impl AsyncRead + Unpin)) -> Option<Answer> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => body.extend_from_slice(&chunk[..read]),
        }
    }
    Some(Answer { status, head, body })
}

/// Sends `request` whole and reads the answer, failing after `PATIENCE`.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> Answer {
    stream
        .write_all(request)
        .await
        .expect("the request is sent");
    tokio::time::timeout(PATIENCE, read_answer(stream))
        .await
        .expect("an answer in time")
        .expect("an answer before the connection ends")
}

/// Waits until the server ends the connection (end of stream or reset) and returns how long
/// that took; fails after `PATIENCE`.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection in time")
}

const GET_STATUS: &[u8] = b"GET / HTTP/1.1\r\nHost: duet\r\n\r\n";

pub(crate) fn limits() -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: SHORT,
        ..ConnectionLimits::default()
    }
}

#[tokio::test]
async fn a_head_sent_a_byte_at_a_time_is_closed_after_the_header_timeout() {
    let server = Server::start(limits()).await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: duet\r\n")
        .await
        .expect("sent");
    // The slowloris: one more header byte every 100 ms, never the blank line that ends the head.
    let mut drip = tokio::time::interval(Duration::from_millis(100));
    let mut chunk = [0; 1024];
    let (mut reader, mut writer) = stream.split();
    let elapsed = tokio::time::timeout(PATIENCE, async {
        loop {
            tokio::select! {
                read = reader.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return started.elapsed(),
                    Ok(_) => panic!("the server answered a head it never received"),
                },
                _ = drip.tick() => {
                    if writer.write_all(b"X").await.is_err() {
                        return started.elapsed();
                    }
                }
            }
        }
    })
    .await
    .expect("the server closes a slow head in time");
    assert!(elapsed >= SHORT - Duration::from_millis(100), "{elapsed:?}");
    server.stop().await;
}

#[tokio::test]
async fn three_hundred_partial_heads_are_all_closed_while_others_are_served() {
    // Three hundred clients, which all come from 127.0.0.1 here: the quota of one address
    // would refuse them before their heads could be slow.
    let server = Server::start(ConnectionLimits {
        max_connections_per_ip: 1000,
        ..limits()
    })
    .await;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = server.connect().await;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: duet\r\nX-Slow: ")
            .await
            .expect("sent");
        slow.push(stream);
    }
    let mut stream = server.connect().await;
    assert_eq!(exchange(&mut stream, GET_STATUS).await.status, 200);
    for stream in &mut slow {
        let elapsed = closed_after(stream, started).await;
        assert!(elapsed >= SHORT - Duration::from_millis(100), "{elapsed:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_slow_but_complete_head_is_answered_and_idling_does_not_count_against_the_next() {
    let server = Server::start(ConnectionLimits {
        // The head comes in pieces over about half a second: well within, even on a busy
        // machine.
        header_timeout: Duration::from_secs(5),
        idle_timeout: PATIENCE,
        ..ConnectionLimits::default()
    })
    .await;
    let mut stream = server.connect().await;
    for piece in GET_STATUS.chunks(8) {
        stream.write_all(piece).await.expect("sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = tokio::time::timeout(PATIENCE, read_answer(&mut stream))
        .await
        .expect("in time")
        .expect("an answer");
    assert_eq!(answer.status, 200);
    // Idle for longer than the header timeout: the header clock only starts with the next
    // request's first byte, so the kept-alive connection still serves it.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(exchange(&mut stream, GET_STATUS).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(ConnectionLimits {
        header_timeout: PATIENCE * 3,
        idle_timeout: SHORT,
        ..ConnectionLimits::default()
    })
    .await;
    let mut stream = server.connect().await;
    assert_eq!(exchange(&mut stream, GET_STATUS).await.status, 200);
    let idle_since = Instant::now();
    let elapsed = closed_after(&mut stream, idle_since).await;
    assert!(elapsed >= SHORT - Duration::from_millis(100), "{elapsed:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408() {
    let server = Server::start(ConnectionLimits {
        body_timeout: SHORT,
        ..ConnectionLimits::default()
    })
    .await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    stream
        .write_all(
            b"POST /autocomplete HTTP/1.1\r\nHost: duet\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"code\": \"",
        )
        .await
        .expect("sent");
    let mut drip = tokio::time::interval(Duration::from_millis(100));
    let (mut reader, mut writer) = stream.split();
    let answer = tokio::time::timeout(PATIENCE, async {
        let reading = read_answer(&mut reader);
        tokio::pin!(reading);
        loop {
            tokio::select! {
                answer = &mut reading => return answer,
                // One more byte of the body every 100 ms: it never arrives in full in time.
                _ = drip.tick() => { let _ = writer.write_all(b"x").await; }
            }
        }
    })
    .await
    .expect("an answer in time")
    .expect("an answer");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.error_code(), "request_timeout");
    assert!(started.elapsed() >= SHORT - Duration::from_millis(100));
    server.stop().await;
}

/// Opens a WebSocket to `room` over a connection of its own.
async fn websocket(
    server: &Server,
    room: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let url = format!("ws://{}/ws/{room}", server.address);
    let (socket, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .expect("in time")
        .expect("the WebSocket opens");
    socket
}

#[tokio::test]
async fn connections_past_the_cap_are_answered_503_until_one_closes() {
    let server = Server::start(ConnectionLimits {
        max_connections: 2,
        ..ConnectionLimits::default()
    })
    .await;
    let mut http = server.connect().await;
    let created = exchange(
        &mut http,
        b"POST /rooms HTTP/1.1\r\nHost: duet\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let room = created.json()["roomId"]
        .as_str()
        .expect("a room id")
        .to_owned();
    // An open WebSocket counts for as long as it is open.
    let mut socket = websocket(&server, &room).await;

    let mut third = server.connect().await;
    let refused = exchange(&mut third, GET_STATUS).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.error_code(), "too_many_connections");
    closed_after(&mut third, Instant::now()).await;

    // The two within the cap still work.
    assert_eq!(exchange(&mut http, GET_STATUS).await.status, 200);
    socket
        .send(tokio_tungstenite::tungstenite::Message::text("hello"))
        .await
        .expect("sent");
    // The echo comes just after a ping naming its revision (docs/PROTOCOL.md, "Plain mode").
    let echoed = tokio::time::timeout(PATIENCE, async {
        loop {
            let frame = socket.next().await.expect("open").expect("a frame");
            if !frame.is_ping() && !frame.is_pong() {
                return frame;
            }
        }
    })
    .await
    .expect("in time");
    assert_eq!(echoed.to_text().expect("text"), "hello");

    // Once the WebSocket has closed, its place is free again. The server lets go of it just
    // after its close frame, so a new connection may still find the server full for a moment.
    socket.close(None).await.expect("closes");
    while let Some(Ok(_)) = socket.next().await {}
    let reopened = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut stream = server.connect().await;
            let answer = exchange(&mut stream, GET_STATUS).await;
            if answer.status != 503 {
                return answer;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("capacity returns in time");
    assert_eq!(reopened.status, 200);
    server.stop().await;
}

/// A store whose reads never finish, as a database that hangs would.
struct HangingRepository;

#[async_trait]
impl RoomRepository for HangingRepository {
    async fn insert(&self, _room: &Room) -> Result<(), RepositoryError> {
        Ok(())
    }
    async fn find(&self, _id: RoomId) -> Result<Option<Room>, RepositoryError> {
        std::future::pending().await
    }
    async fn save(&self, _room: &Room) -> Result<(), RepositoryError> {
        std::future::pending().await
    }
    async fn append(
        &self,
        _room: RoomId,
        _operations: &[CommittedOperation],
        _snapshot: Option<Room>,
    ) -> Result<(), RepositoryError> {
        std::future::pending().await
    }
    async fn operations_since(
        &self,
        _room: RoomId,
        _revision: u64,
    ) -> Result<Vec<CommittedOperation>, RepositoryError> {
        std::future::pending().await
    }
    async fn operations_between(
        &self,
        _room: RoomId,
        _after: u64,
        _up_to: u64,
        _limit: usize,
        _max_bytes: usize,
    ) -> Result<Vec<CommittedOperation>, RepositoryError> {
        std::future::pending().await
    }
    async fn initial_code(&self, _room: RoomId) -> Result<Option<String>, RepositoryError> {
        std::future::pending().await
    }
    async fn find_operation(
        &self,
        _room: RoomId,
        _client: &ClientId,
        _seq: u64,
    ) -> Result<Option<RecordedSubmission>, RepositoryError> {
        std::future::pending().await
    }
    async fn confirm_stored(
        &self,
        _room: RoomId,
        _client: &ClientId,
        _seq: u64,
    ) -> Result<Option<u64>, RepositoryError> {
        std::future::pending().await
    }
    async fn latest_seq(
        &self,
        _room: RoomId,
        _client: &ClientId,
    ) -> Result<Option<u64>, RepositoryError> {
        std::future::pending().await
    }
    async fn has_client(&self, _room: RoomId, _client: &ClientId) -> Result<bool, RepositoryError> {
        std::future::pending().await
    }
    async fn quarantine(
        &self,
        _room: RoomId,
        _from: u64,
        _reason: &str,
    ) -> Result<u64, RepositoryError> {
        std::future::pending().await
    }

    async fn delete(&self, _room: RoomId) -> Result<bool, RepositoryError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_websocket_upgrade_that_does_not_complete_in_time_is_dropped() {
    let server = Server::with_repository(
        ConnectionLimits {
            handshake_timeout: SHORT,
            ..ConnectionLimits::default()
        },
        Arc::new(HangingRepository),
    )
    .await;
    let mut stream = server.connect().await;
    let started = Instant::now();
    stream
        .write_all(
            b"GET /ws/67e55044-10b1-426f-9247-bb680e5fe0c8 HTTP/1.1\r\nHost: duet\r\n\
              Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .expect("sent");
    let answer = tokio::time::timeout(PATIENCE, read_answer(&mut stream))
        .await
        .expect("the server drops the upgrade in time");
    assert!(answer.is_none(), "no answer, not {answer:?}");
    assert!(started.elapsed() >= SHORT - Duration::from_millis(100));
    server.stop().await;
}

/// `GET {target}` with `headers` extra header lines.
fn request(target: &str, headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: duet\r\n{headers}\r\n").into_bytes()
}

#[tokio::test]
async fn requests_hyper_refuses_are_answered_in_the_json_shape() {
    let max_header_bytes = 2000;
    let server = Server::start(ConnectionLimits {
        max_uri_bytes: 1000,
        max_header_bytes,
        max_headers: 10,
        ..ConnectionLimits::default()
    })
    .await;
    let uri_at_limit = format!("/{}", "a".repeat(999));
    let uri_past_limit = format!("/{}", "a".repeat(1000));
    let headers = |count: usize| -> String {
        (0..count)
            .map(|index| format!("X-Header-{index}: {index}\r\n"))
            .collect()
    };
    // A head of exactly `max_header_bytes`, and one a byte longer.
    let padded = |length: usize| -> Vec<u8> {
        let bare = request("/", "X-Pad: \r\n").len();
        request("/", &format!("X-Pad: {}\r\n", "p".repeat(length - bare)))
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a malformed request line",
            b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            "a malformed header",
            b"GET / HTTP/1.1\r\nHost duet\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            "a URI at the limit",
            request(&uri_at_limit, ""),
            404,
            "not_found",
        ),
        (
            "a URI past the limit",
            request(&uri_past_limit, ""),
            414,
            "uri_too_long",
        ),
        (
            "a URI longer than the whole head may be",
            request(&format!("/{}", "a".repeat(4000)), ""),
            431,
            "headers_too_large",
        ),
        // `Host` is one of the ten.
        ("headers at the limit", request("/", &headers(9)), 200, ""),
        (
            "one header too many",
            request("/", &headers(10)),
            431,
            "headers_too_large",
        ),
        ("a head at the limit", padded(max_header_bytes), 200, ""),
        (
            "a head a byte too long",
            padded(max_header_bytes + 1),
            431,
            "headers_too_large",
        ),
    ];
    for (what, bytes, status, code) in cases {
        let mut stream = server.connect().await;
        let answer = exchange(&mut stream, &bytes).await;
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        if status >= 400 {
            assert_eq!(answer.error_code(), code, "{what}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn stopping_closes_websockets_with_1001_and_waits_for_nothing_else() {
    let server = Server::with_settings(
        Settings {
            // Far longer than a stop that waits for nothing takes, even on a busy machine.
            shutdown_grace: PATIENCE * 3,
            ..Settings::default()
        },
        Arc::new(InMemoryRoomRepository::default()),
    )
    .await;
    let mut http = server.connect().await;
    let created = exchange(
        &mut http,
        b"POST /rooms HTTP/1.1\r\nHost: duet\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    let room = created.json()["roomId"]
        .as_str()
        .expect("a room id")
        .to_owned();
    let mut socket = websocket(&server, &room).await;
    let started = Instant::now();
    let stopping = tokio::spawn(server.stop());
    let frame = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .expect("in time")
        .expect("a frame")
        .expect("valid");
    let tokio_tungstenite::tungstenite::Message::Close(Some(close)) = frame else {
        panic!("expected a close frame, got {frame:?}");
    };
    assert_eq!(u16::from(close.code), 1001);
    drop(socket);
    // The idle HTTP connection and the closed WebSocket are all there was: no grace to wait out.
    stopping.await.expect("stops");
    assert!(started.elapsed() < PATIENCE, "{:?}", started.elapsed());
    closed_after(&mut http, started).await;
}
