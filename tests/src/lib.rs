//! Helpers for the end-to-end tests: the real server on 127.0.0.1 port 0 over a scratch
//! database, and small HTTP and WebSocket clients that fail loudly instead of hanging.

pub mod v1;

use std::net::SocketAddr;
use std::time::Duration;

use duet_infra_postgres::DatabaseUrl;
use duet_infra_postgres::testing::TestDatabase;
use duet_server::{Config, ServerError};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for something it expects before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// A fresh database of this kind, or `None` (after a loud notice) when PostgreSQL is not
    /// reachable outside CI.
    pub async fn database(self) -> Option<TestDatabase> {
        match self {
            Self::Sqlite => Some(TestDatabase::sqlite()),
            Self::Postgres => TestDatabase::postgres().await,
        }
    }
}

/// Runs an async test body once on SQLite and once on PostgreSQL:
/// `on_both_databases!(name);` expects `async fn name(backend: Backend)` in scope.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )+
        }
    };
}

/// A server running in this process.
pub struct TestServer {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

/// A configuration for tests: the given database, port 0, otherwise the defaults.
///
/// # Panics
/// Never for the fixed values it uses.
#[must_use]
pub fn test_config(database: &DatabaseUrl) -> Config {
    let url = database.expose().to_owned();
    Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "DUET_BIND" => Some("127.0.0.1:0".to_owned()),
        _ => None,
    })
    .expect("the test configuration is valid")
}

impl TestServer {
    /// Starts the server with `config` and waits until it answers.
    ///
    /// # Panics
    /// When it cannot bind or start.
    pub async fn start(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("a bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(duet_server::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let server = Self {
            address,
            stop: Some(stop),
            task,
        };
        server.wait_until_ready().await;
        server
    }

    /// Starts the server on `database` with default settings.
    pub async fn on(database: &TestDatabase) -> Self {
        Self::start(test_config(database.url())).await
    }

    async fn wait_until_ready(&self) {
        // The listener is bound before the server starts, so this request waits in the
        // backlog until the migrations are done and the server accepts it.
        let response = tokio::time::timeout(PATIENCE, reqwest::get(self.url("/readyz")))
            .await
            .expect("the server answers in time")
            .expect("the server starts");
        assert_eq!(response.status(), 200, "the server is not ready");
    }

    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    #[must_use]
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.address)
    }

    /// Creates a room with this JSON body and returns its id.
    ///
    /// # Panics
    /// When the server does not create it.
    pub async fn create_room(&self, body: Value) -> String {
        let response = reqwest::Client::new()
            .post(self.url("/rooms"))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("a JSON body");
        body["roomId"].as_str().expect("a room id").to_owned()
    }

    /// `GET /rooms/{id}` as JSON.
    ///
    /// # Panics
    /// When the room cannot be read.
    pub async fn room(&self, id: &str) -> Value {
        let response = reqwest::get(self.url(&format!("/rooms/{id}")))
            .await
            .expect("the server answers");
        assert_eq!(response.status(), 200);
        response.json().await.expect("a JSON body")
    }

    /// Opens a plain-mode WebSocket to a room.
    ///
    /// # Panics
    /// When the upgrade fails.
    pub async fn plain_client(&self, room: &str) -> Client {
        let (socket, _) = tokio_tungstenite::connect_async(self.ws_url(&format!("/ws/{room}")))
            .await
            .expect("the WebSocket opens");
        Client { socket }
    }

    /// Stops the server as SIGTERM would and waits for it to finish.
    ///
    /// # Panics
    /// When the server ended with an error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the server stops in time")
            .expect("the server task does not panic");
        assert!(result.is_ok(), "the server failed: {result:?}");
    }
}

/// A WebSocket connection as the tests hold it.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw duet.v1 connection to `room` with this query string, for checking frames to the
/// letter.
///
/// # Panics
/// When the upgrade fails.
pub async fn raw_v1(server: &TestServer, room: &str, query: &str) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = server
        .ws_url(&format!("/ws/{room}?{query}"))
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "duet.v1".parse().expect("a header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("opens")
        .0
}

/// The next JSON text frame (pings skipped), failing the test after [`PATIENCE`].
///
/// # Panics
/// When nothing arrives in time or the next frame is not JSON text.
pub async fn receive_json(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("valid");
        match frame {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Sends one JSON text frame.
///
/// # Panics
/// When the connection is gone.
pub async fn send_json(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

/// A WebSocket client.
pub struct Client {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("the frame is sent");
    }

    /// The next frame other than a ping or pong, failing the test after [`PATIENCE`]. Pings are
    /// answered as they are read, before the frames behind them, as browsers do (the server
    /// sends each plain buffer behind one).
    ///
    /// # Panics
    /// When nothing arrives in time or the connection fails.
    pub async fn next_frame(&mut self) -> Message {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let frame = self
                    .socket
                    .next()
                    .await
                    .expect("the connection is open")
                    .expect("the frame is valid");
                if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
                    return frame;
                }
            }
        })
        .await
        .expect("a frame arrives in time")
    }

    /// The next text frame.
    ///
    /// # Panics
    /// When the next frame is not text.
    pub async fn next_text(&mut self) -> String {
        match self.next_frame().await {
            Message::Text(text) => text.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Reads until the server's close frame and returns its code and reason.
    ///
    /// # Panics
    /// When the connection ends without a close frame or another frame arrives first.
    pub async fn expect_close(&mut self) -> (u16, String) {
        match self.next_frame().await {
            Message::Close(Some(CloseFrame { code, reason })) => {
                (u16::from(code), reason.as_str().to_owned())
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }

    /// Reads until the connection ends, however it ends, and returns how many text frames came
    /// first.
    ///
    /// # Panics
    /// When it is still open after [`PATIENCE`].
    pub async fn drain_until_closed(&mut self) -> usize {
        tokio::time::timeout(PATIENCE, async {
            let mut texts = 0;
            while let Some(Ok(frame)) = self.socket.next().await {
                match frame {
                    Message::Text(_) => texts += 1,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            texts
        })
        .await
        .expect("the connection ends in time")
    }
}
