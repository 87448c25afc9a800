//! The baseline: a minimal WebSocket relay with Duet's framing and nothing else — no
//! transformation, no persistence, no history. Running the same load against it shows what this
//! machine can relay at all, so Duet's figures can be read as a ratio of that.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use duet_infra_ws::send_queued;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Default)]
struct RelayRoom {
    revision: u64,
    members: HashMap<u64, mpsc::UnboundedSender<Message>>,
}

#[derive(Clone, Default)]
struct Relay {
    rooms: Arc<Mutex<HashMap<String, RelayRoom>>>,
    next: Arc<Mutex<u64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running relay.
pub struct Running {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the relay on 127.0.0.1 (a free port).
///
/// # Errors
/// A message when no port can be bound.
pub async fn start() -> Result<Running, String> {
    let relay = Relay::default();
    let app = Router::new()
        .route("/rooms", post(create))
        .route("/ws/{room}", get(connect))
        .with_state(relay);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("the relay cannot listen: {error}"))?;
    let address: SocketAddr = listener
        .local_addr()
        .map_err(|error| format!("the relay has no address: {error}"))?;
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Running {
        url: format!("http://{address}"),
        task,
    })
}

async fn create(State(relay): State<Relay>) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    lock(&relay.rooms).insert(id.clone(), RelayRoom::default());
    (StatusCode::CREATED, axum::Json(json!({"roomId": id}))).into_response()
}

async fn connect(
    State(relay): State<Relay>,
    Path(room): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let upgrade = upgrade.protocols(["duet.v1"]);
    let v1 = upgrade.selected_protocol().is_some();
    let batch = v1 && query.get("batch").is_some_and(|value| value == "1");
    upgrade.on_upgrade(move |socket| serve(relay, room, socket, v1, batch))
}

async fn serve(relay: Relay, room: String, socket: WebSocket, v1: bool, batch: bool) {
    let id = {
        let mut next = lock(&relay.next);
        *next += 1;
        *next
    };
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut frames) = mpsc::unbounded_channel::<Message>();
    {
        let mut rooms = lock(&relay.rooms);
        let entry = rooms.entry(room.clone()).or_default();
        if v1 {
            let welcome = json!({"type": "welcome", "clientId": id.to_string(), "revision": entry.revision, "language": "python", "code": "", "participants": []});
            let _ = outbox.send(Message::text(welcome.to_string()));
        }
        entry.members.insert(id, outbox);
    }
    // Written as Duet writes: everything queued goes in one write, batched for a client that
    // asked for it.
    let writer = tokio::spawn(async move {
        while let Some(first) = frames.recv().await {
            let queued =
                std::iter::once(first).chain(std::iter::from_fn(|| frames.try_recv().ok()));
            if send_queued(&mut sink, queued, batch).await.is_err() {
                return;
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else { continue };
        let mut rooms = lock(&relay.rooms);
        let Some(entry) = rooms.get_mut(&room) else {
            break;
        };
        if v1 {
            let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            if message["type"] != "op" {
                continue;
            }
            entry.revision += 1;
            let ack = json!({"type": "ack", "seq": message["seq"], "revision": entry.revision});
            let op: Utf8Bytes = json!({"type": "op", "revision": entry.revision, "clientId": id.to_string(), "ops": message["ops"]}).to_string().into();
            for (member, outbox) in &entry.members {
                let frame = if *member == id {
                    Message::text(ack.to_string())
                } else {
                    Message::Text(op.clone())
                };
                let _ = outbox.send(frame);
            }
        } else {
            for outbox in entry.members.values() {
                let _ = outbox.send(Message::Text(text.clone()));
            }
        }
    }
    if let Some(entry) = lock(&relay.rooms).get_mut(&room) {
        entry.members.remove(&id);
    }
    writer.abort();
}
