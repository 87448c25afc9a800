//! Helpers for the end-to-end tests: the real server on 127.0.0.1 port 0 over a scratch
//! database, and small HTTP and WebSocket clients that fail loudly instead of hanging.

pub mod v1;

use std::net::SocketAddr;
use std::time::Duration;

use duet_domain::TextOperation;
use duet_infra_postgres::DatabaseUrl;
use duet_infra_postgres::testing::TestDatabase;
use duet_protocol::{ClientMessage, ServerMessage};
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
    test_config_with(database, &[])
}

/// [`test_config`] with these environment variables set as well, read as the server reads
/// them.
///
/// # Panics
/// When a value is not valid.
#[must_use]
pub fn test_config_with(database: &DatabaseUrl, variables: &[(&str, &str)]) -> Config {
    let url = database.expose().to_owned();
    Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "DUET_BIND" => Some("127.0.0.1:0".to_owned()),
        _ => variables
            .iter()
            .find(|(variable, _)| *variable == name)
            .map(|(_, value)| (*value).to_owned()),
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

/// Opens a WebSocket at `path` (with its query) sending `headers` too; when the server does
/// not upgrade, the status and JSON body it answered instead.
///
/// # Panics
/// When the connection fails for another reason, or a refusal has no JSON body.
pub async fn try_upgrade(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Socket, (u16, Value)> {
    use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest};
    let mut request = server
        .ws_url(path)
        .into_client_request()
        .expect("a request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .expect("a header name"),
            value.parse().expect("a header value"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(Error::Http(response)) => Err((
            response.status().as_u16(),
            serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                .expect("a JSON body"),
        )),
        Err(other) => panic!("the upgrade failed: {other}"),
    }
}

/// The next text frame (pings skipped), failing the test after [`PATIENCE`].
async fn receive_text(socket: &mut Socket) -> String {
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("valid");
        match frame {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The next JSON text frame (pings skipped), failing the test after [`PATIENCE`], for
/// checking what the server sent to the letter.
///
/// # Panics
/// When nothing arrives in time or the next frame is not JSON text.
pub async fn receive_json(socket: &mut Socket) -> Value {
    serde_json::from_str(&receive_text(socket).await).expect("JSON")
}

/// The next `duet.v1` message (pings skipped), failing the test after [`PATIENCE`]; for a
/// connection without `batch=1`, where every frame holds one message.
///
/// # Panics
/// When nothing arrives in time or the next frame is not one server message.
pub async fn receive_message(socket: &mut Socket) -> ServerMessage<'static> {
    let text = receive_text(socket).await;
    ServerMessage::decode(&text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// The messages in the next frame (pings skipped), in order: one, or several from a batched
/// frame.
///
/// # Panics
/// When nothing arrives in time or the next frame is not server messages.
pub async fn receive_messages(socket: &mut Socket) -> Vec<ServerMessage<'static>> {
    let text = receive_text(socket).await;
    duet_protocol::batch::read_frame(&text).unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// Sends one JSON text frame, for frames that are not `duet.v1` messages (malformed or
/// hostile ones).
///
/// # Panics
/// When the connection is gone.
pub async fn send_json(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

/// Sends one `duet.v1` message.
///
/// # Panics
/// When the connection is gone.
pub async fn send_message(socket: &mut Socket, message: &ClientMessage) {
    socket
        .send(Message::text(message.encode()))
        .await
        .expect("sent");
}

/// An `op` message with no selection: `ops` made on `revision`, the client's `seq`-th edit.
#[must_use]
pub fn op(revision: u64, seq: u64, ops: TextOperation) -> ClientMessage {
    ClientMessage::Op {
        revision,
        seq,
        ops,
        selection: None,
    }
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

/// A PostgreSQL server of the test's own (its own data directory and port), so that a test can
/// stop and start it without touching the server other tests share. It runs as the `postgres`
/// user, with the binaries of Debian's PostgreSQL package; dropping it stops it and removes
/// its data.
pub struct PrivatePostgres {
    directory: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Makes and starts a cluster, or `None` (after a loud notice) where that cannot be done
    /// (no PostgreSQL binaries, or not root); under `CI=true` it panics instead.
    ///
    /// # Panics
    /// Under CI when the cluster cannot be made.
    pub fn start() -> Option<Self> {
        match Self::try_start() {
            Ok(cluster) => Some(cluster),
            Err(why) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true but a private PostgreSQL cannot be started: {why}"
                );
                eprintln!(
                    "\n!!!!!!!! NOTICE: no private PostgreSQL ({why}); this restart test did NOT run. !!!!!!!!\n"
                );
                None
            }
        }
    }

    fn try_start() -> Result<Self, String> {
        let versions = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|error| format!("no /usr/lib/postgresql: {error}"))?;
        let bin = versions
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max()
            .ok_or("no initdb")?;
        let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| error.to_string())?
            .port();
        let cluster = Self {
            directory,
            bin,
            port,
        };
        run("chown", &["-R", "postgres", &cluster.path("")])?;
        cluster.as_postgres(
            "initdb",
            &[
                "-D",
                &cluster.path("data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        cluster.start_again()?;
        Ok(cluster)
    }

    fn path(&self, name: &str) -> String {
        self.directory.path().join(name).display().to_string()
    }

    fn as_postgres(&self, program: &str, arguments: &[&str]) -> Result<(), String> {
        let program = self.bin.join(program).display().to_string();
        let mut all = vec!["-u", "postgres", "--", program.as_str()];
        all.extend_from_slice(arguments);
        run("runuser", &all)
    }

    /// Starts the server (again), waiting until it accepts connections.
    ///
    /// # Errors
    /// What `pg_ctl` said when it could not.
    pub fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.path("")
        );
        self.as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.path("data"),
                "-l",
                &self.path("log"),
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
    }

    /// Stops the server at once (`-m fast`: sessions are ended), waiting until it is down.
    ///
    /// # Errors
    /// What `pg_ctl` said when it could not.
    pub fn stop(&self) -> Result<(), String> {
        self.as_postgres(
            "pg_ctl",
            &["-D", &self.path("data"), "-m", "fast", "-w", "stop"],
        )
    }

    /// The URL of its `postgres` database.
    ///
    /// # Panics
    /// Never for the URL it makes.
    #[must_use]
    pub fn url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.port
        ))
        .expect("a PostgreSQL URL")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn run(program: &str, arguments: &[&str]) -> Result<(), String> {
    let output = std::process::Command::new(program)
        .args(arguments)
        .output()
        .map_err(|error| format!("{program}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
