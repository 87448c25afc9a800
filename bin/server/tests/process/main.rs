//! The `duet-server` binary as an operator runs it: start-up failures, signals, and what a
//! SIGKILL leaves behind.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use duet_domain::TextOperation;
use duet_protocol::ClientMessage;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(15);

fn server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_duet-server"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs the server expecting it to fail at start-up; returns its stderr.
fn failed_start(command: &mut Command) -> String {
    let output = command.output().expect("the server runs");
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit status {:?}",
        output.status
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_one_clear_line(stderr: &str, mentions: &str) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.contains(" INFO "))
        .collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with("duet-server: "), "{stderr}");
    assert!(lines[0].contains(mentions), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_database_url_is_one_line_and_exit_1() {
    let stderr = failed_start(server().env("DATABASE_URL", "mysql://localhost/duet"));
    assert_one_clear_line(&stderr, "DATABASE_URL");
    let stderr = failed_start(server().env("DATABASE_URL", "::::"));
    assert_one_clear_line(&stderr, "DATABASE_URL");
}

#[test]
fn an_unreachable_database_is_one_line_without_the_password() {
    let stderr =
        failed_start(server().env("DATABASE_URL", "postgres://duet:s3cret@127.0.0.1:1/duet"));
    assert_one_clear_line(&stderr, "cannot connect to the database");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn a_port_in_use_is_one_line_and_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("an address");
    let directory = tempfile::tempdir().expect("a directory");
    let stderr = failed_start(
        server()
            .current_dir(directory.path())
            .env("DUET_BIND", address.to_string()),
    );
    assert_one_clear_line(&stderr, &format!("cannot listen on {address}"));
}

#[test]
fn a_bad_setting_is_one_line_and_exit_1() {
    let stderr = failed_start(server().env("DUET_MAX_FRAME_BYTES", "lots"));
    assert_one_clear_line(&stderr, "DUET_MAX_FRAME_BYTES");
}

/// A server started on an SQLite file in `directory`, with the address it reports.
struct Running {
    child: Child,
    base: String,
    /// Every line the server logged after the one naming its address.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    fn start(directory: &std::path::Path) -> Self {
        Self::start_logging(directory, "info")
    }

    fn start_logging(directory: &std::path::Path, filter: &str) -> Self {
        Self::start_with(directory, filter, &[])
    }

    fn start_with(directory: &std::path::Path, filter: &str, env: &[(&str, &str)]) -> Self {
        let mut child = server()
            .current_dir(directory)
            .env("DUET_BIND", "127.0.0.1:0")
            .env("RUST_LOG", filter)
            .envs(env.iter().copied())
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        // Reads the log until the server says where it listens (blocking on the pipe).
        let address = loop {
            let line = lines
                .next()
                .expect("the server logs that it listens")
                .expect("readable stderr");
            if let Some(rest) = line.split("address=").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        Self {
            child,
            base: address,
            log,
        }
    }

    /// Blocks until the process exits.
    fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("the server can be waited on")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn create_room(base: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{base}/rooms"))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    body["roomId"].as_str().expect("a room id").to_owned()
}

/// Starts the server again on the same files and reads the room.
async fn read_after_restart(directory: &std::path::Path, room: &str) -> Value {
    let restarted = Running::start(directory);
    reqwest::get(format!("http://{}/rooms/{room}", restarted.base))
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON")
}

async fn next_frame(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Message {
    // Pings (plain buffers are each preceded by one) are answered by the library as it reads.
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame in time")
            .expect("an open connection")
            .expect("a valid frame");
        if !matches!(frame, Message::Ping(_) | Message::Pong(_)) {
            return frame;
        }
    }
}

/// Opens a duet.v1 connection with this query string.
async fn v1(
    base: &str,
    room: &str,
    query: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{base}/ws/{room}?{query}")
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "duet.v1".parse().expect("a header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the WebSocket opens")
        .0
}

fn text(frame: Message) -> Value {
    match frame {
        Message::Text(text) => serde_json::from_str(text.as_str()).expect("JSON"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn resume_tokens_never_reach_the_log() {
    let directory = tempfile::tempdir().expect("a directory");
    let running = Running::start_logging(directory.path(), "trace");
    let room = create_room(&running.base).await;
    let mut first = v1(&running.base, &room, "clientId=alice").await;
    let welcome = text(next_frame(&mut first).await);
    let token = welcome["resumeToken"].as_str().expect("a token").to_owned();
    drop(first);
    let query = format!("clientId=alice&resumeToken={token}&since=0");
    let mut again = v1(&running.base, &room, &query).await;
    assert_eq!(text(next_frame(&mut again).await)["clientId"], "alice");
    let edit = ClientMessage::Op {
        revision: 0,
        seq: 1,
        ops: TextOperation::new().insert("x"),
        selection: None,
    };
    again
        .send(Message::text(edit.encode()))
        .await
        .expect("sent");
    assert_eq!(text(next_frame(&mut again).await)["type"], "ack");
    drop(again);
    let logged = stop_and_read_log(running).await;
    assert!(logged.contains("request"), "trace logging was on: {logged}");
    assert!(!logged.contains(&token), "the token was logged:\n{logged}");
    assert!(
        !logged.contains("resumeToken"),
        "a query string was logged:\n{logged}"
    );
}

/// Stops the server with SIGTERM and returns everything it logged.
async fn stop_and_read_log(mut running: Running) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let (exit, log) = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking({
            let log = std::sync::Arc::clone(&running.log);
            move || (running.wait(), log)
        }),
    )
    .await
    .expect("the server exits in time")
    .expect("waited");
    assert!(exit.success());
    log.lock().map(|lines| lines.join("\n")).unwrap_or_default()
}

/// `duet-server token …` with `secret`: the token it prints.
fn mint(secret: &str, room: &str, role: &str) -> String {
    let output = server()
        .env("DUET_AUTH_SECRET", secret)
        .stdout(Stdio::piped())
        .args(["token", "--sub", "ada", "--room", room, "--role", role])
        .output()
        .expect("duet-server token runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn signed_tokens_and_the_secret_never_reach_the_log() {
    let directory = tempfile::tempdir().expect("a directory");
    let secret = "process-test-secret-0123456789-abcdefghij";
    let running = Running::start_with(directory.path(), "trace", &[("DUET_AUTH_SECRET", secret)]);
    let owner = mint(secret, "*", "owner");
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("http://{}/rooms", running.base))
        .bearer_auth(&owner)
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    let room = created["roomId"].as_str().expect("a room id").to_owned();
    let shared: Value = client
        .post(format!("http://{}/rooms/{room}/tokens", running.base))
        .bearer_auth(&owner)
        .json(&serde_json::json!({"role": "editor"}))
        .send()
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON");
    let editor = shared["token"].as_str().expect("a token").to_owned();
    // A browser's WebSocket carries its token in the query string.
    let mut socket = v1(&running.base, &room, &format!("token={editor}")).await;
    assert_eq!(text(next_frame(&mut socket).await)["type"], "welcome");
    drop(socket);
    let forged = format!("{}x", &owner[..owner.len() - 1]);
    let refused = client
        .get(format!("http://{}/rooms/{room}", running.base))
        .bearer_auth(&forged)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(refused.status(), 401);
    let upgrade =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/{room}?token={forged}", running.base))
            .await;
    assert!(
        upgrade.is_err(),
        "a forged token is refused before the upgrade"
    );
    let logged = stop_and_read_log(running).await;
    assert!(logged.contains("request"), "trace logging was on: {logged}");
    for (what, secret_text) in [
        ("the secret", secret),
        ("the owner token", owner.as_str()),
        ("the minted token", editor.as_str()),
        ("a forged token", forged.as_str()),
        // Any part of one: a token's signature, its payload.
        ("a signature", owner.rsplit('.').next().unwrap_or_default()),
        ("a payload", editor.split('.').nth(1).unwrap_or_default()),
    ] {
        assert!(
            !logged.contains(secret_text),
            "{what} was logged:\n{logged}"
        );
    }
    assert!(
        !logged.contains("token="),
        "a query string was logged:\n{logged}"
    );
}

#[test]
fn a_short_auth_secret_is_one_line_without_the_secret() {
    let stderr = failed_start(server().env("DUET_AUTH_SECRET", "hunter2-is-not-enough"));
    assert_one_clear_line(&stderr, "DUET_AUTH_SECRET");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test]
async fn open_rooms_on_a_public_address_are_warned_about() {
    let directory = tempfile::tempdir().expect("a directory");
    let open = Running::start_with(directory.path(), "info", &[("DUET_BIND", "0.0.0.0:0")]);
    let logged = stop_and_read_log(open).await;
    assert!(
        logged.contains("authentication is off"),
        "no warning:\n{logged}"
    );
    let closed = Running::start_with(
        directory.path(),
        "info",
        &[
            ("DUET_BIND", "0.0.0.0:0"),
            (
                "DUET_AUTH_SECRET",
                "process-test-secret-0123456789-abcdefghij",
            ),
        ],
    );
    let logged = stop_and_read_log(closed).await;
    assert!(
        !logged.contains("authentication is off"),
        "a warning with authentication on:\n{logged}"
    );
    // On this machine's own address, no warning either.
    let local = Running::start_with(directory.path(), "info", &[]);
    let logged = stop_and_read_log(local).await;
    assert!(!logged.contains("authentication is off"), "{logged}");
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_exits_cleanly() {
    let directory = tempfile::tempdir().expect("a directory");
    let mut running = Running::start(directory.path());
    let room = create_room(&running.base).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/{room}", running.base))
            .await
            .expect("the WebSocket opens");
    socket.send(Message::text("hello")).await.expect("sent");
    assert_eq!(next_frame(&mut socket).await, Message::text("hello"));

    let status = Command::new("kill")
        .args(["-TERM", &running.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    match next_frame(&mut socket).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame, got {other:?}"),
    }
    drop(socket);
    let exit = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || running.wait()),
    )
    .await
    .expect("the server exits in time")
    .expect("waited");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn every_broadcast_edit_survives_sigkill() {
    let directory = tempfile::tempdir().expect("a directory");
    let running = Running::start(directory.path());
    let room = create_room(&running.base).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/{room}", running.base))
            .await
            .expect("the WebSocket opens");
    let mut last = String::new();
    for edit in 1..=50 {
        last = format!("{last}line {edit} 😀\n");
        socket
            .send(Message::text(last.clone()))
            .await
            .expect("sent");
        assert_eq!(next_frame(&mut socket).await, Message::text(last.clone()));
    }
    // SIGKILL the moment the last edit came back.
    drop(running);

    let stored = read_after_restart(directory.path(), &room).await;
    assert_eq!(stored["code"], last.as_str());
    assert_eq!(stored["revision"], 50);
}

#[tokio::test]
async fn every_acknowledged_operation_survives_sigkill() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let directory = tempfile::tempdir().expect("a directory");
    let running = Running::start(directory.path());
    let room = create_room(&running.base).await;
    let mut request = format!("ws://{}/ws/{room}", running.base)
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "duet.v1".parse().expect("a header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the WebSocket opens");
    let text = |message: Message| -> Value {
        match message {
            Message::Text(text) => serde_json::from_str(text.as_str()).expect("JSON"),
            other => panic!("expected text, got {other:?}"),
        }
    };
    assert_eq!(text(next_frame(&mut socket).await)["type"], "welcome");
    let mut expected = String::new();
    for seq in 1..=50_u64 {
        let line = format!("edit {seq} 😀\n");
        let length: usize = expected.chars().map(char::len_utf16).sum();
        let op = ClientMessage::Op {
            revision: seq - 1,
            seq,
            ops: TextOperation::new().retain(length).insert(&line),
            selection: None,
        };
        socket.send(Message::text(op.encode())).await.expect("sent");
        expected.push_str(&line);
        let ack = text(next_frame(&mut socket).await);
        assert_eq!(
            ack,
            serde_json::json!({"type": "ack", "seq": seq, "revision": seq})
        );
    }
    // SIGKILL the moment the last acknowledgement arrived.
    drop(running);

    let stored = read_after_restart(directory.path(), &room).await;
    assert_eq!(stored["code"], expected.as_str());
    assert_eq!(stored["revision"], 50);
}
