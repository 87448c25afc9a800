//! The baseline: a minimal WebSocket relay with Duet's framing and nothing else — no
//! transformation, no persistence, no history. Running the same load against it shows what this
//! machine can relay at all, so Duet's figures can be read as a ratio of that.
//!
//! It speaks WebSocket only (tokio-tungstenite's server side): `/ws/{room}` with or without
//! the `duet.v1` subprotocol, and `batch=1`. A room exists as soon as someone connects to it,
//! so the load generator names the relay's rooms itself ([`crate::Options::create_rooms`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use duet_protocol::batch::FrameBatch;
use duet_protocol::{ClientMessage, SUBPROTOCOL, ServerMessage, WireOperation};
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Default)]
struct RelayRoom {
    revision: u64,
    members: HashMap<u64, mpsc::UnboundedSender<Utf8Bytes>>,
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
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| format!("the relay cannot listen: {error}"))?;
    let address: SocketAddr = listener
        .local_addr()
        .map_err(|error| format!("the relay has no address: {error}"))?;
    let relay = Relay::default();
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, most likely: give connections time to close
                    // rather than spin (axum's `serve` does the same).
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(relay.clone().connect(stream));
        }
    });
    Ok(Running {
        url: format!("http://{address}"),
        task,
    })
}

/// Which room a connection joins and how it speaks, read from its upgrade request.
struct Joining {
    room: String,
    v1: bool,
    batch: bool,
}

/// Reads an upgrade request: `/ws/{room}`, the `duet.v1` subprotocol if asked for, `batch=1`;
/// `None` for any other path.
fn joining(request: &Request) -> Option<Joining> {
    let room = request.uri().path().strip_prefix("/ws/")?;
    let v1 = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    let batch = v1
        && request
            .uri()
            .query()
            .is_some_and(|query| query.split('&').any(|pair| pair == "batch=1"));
    Some(Joining {
        room: room.to_owned(),
        v1,
        batch,
    })
}

impl Relay {
    #[expect(
        clippy::result_large_err,
        reason = "tungstenite's handshake callback returns its error response by value"
    )]
    async fn connect(self, stream: TcpStream) {
        let mut joined = None;
        let accepted = tokio_tungstenite::accept_hdr_async(
            stream,
            |request: &Request, mut response: Response| {
                let Some(joining) = joining(request) else {
                    let mut refusal = ErrorResponse::new(None);
                    *refusal.status_mut() = StatusCode::NOT_FOUND;
                    return Err(refusal);
                };
                if joining.v1 {
                    response.headers_mut().insert(
                        header::SEC_WEBSOCKET_PROTOCOL,
                        HeaderValue::from_static(SUBPROTOCOL),
                    );
                }
                joined = Some(joining);
                Ok(response)
            },
        )
        .await;
        if let (Ok(socket), Some(joining)) = (accepted, joined) {
            self.serve(socket, joining).await;
        }
    }

    async fn serve(
        self,
        socket: tokio_tungstenite::WebSocketStream<TcpStream>,
        Joining { room, v1, batch }: Joining,
    ) {
        let id = {
            let mut next = lock(&self.next);
            *next += 1;
            *next
        };
        let client_id = id.to_string();
        let (mut sink, mut stream) = socket.split();
        let (outbox, mut frames) = mpsc::unbounded_channel::<Utf8Bytes>();
        {
            let mut rooms = lock(&self.rooms);
            let entry = rooms.entry(room.clone()).or_default();
            if v1 {
                let welcome = ServerMessage::Welcome {
                    client_id: Cow::Borrowed(&client_id),
                    resume_token: Cow::Borrowed(""),
                    revision: entry.revision,
                    language: Cow::Borrowed("python"),
                    code: Some(Cow::Borrowed("")),
                    ops: None,
                    participants: Vec::new(),
                };
                let _ = outbox.send(welcome.encode().into());
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
            let mut rooms = lock(&self.rooms);
            let Some(entry) = rooms.get_mut(&room) else {
                break;
            };
            if v1 {
                let Ok(ClientMessage::Op { seq, ops, .. }) = ClientMessage::decode(&text) else {
                    continue;
                };
                entry.revision += 1;
                let revision = entry.revision;
                let op: Utf8Bytes = ServerMessage::Op(WireOperation {
                    revision,
                    client_id: Cow::Borrowed(&client_id),
                    ops: Cow::Owned(ops),
                })
                .encode()
                .into();
                for (member, outbox) in &entry.members {
                    let frame = if *member == id {
                        ServerMessage::Ack { seq, revision }.encode().into()
                    } else {
                        op.clone()
                    };
                    let _ = outbox.send(frame);
                }
            } else {
                for outbox in entry.members.values() {
                    let _ = outbox.send(text.clone());
                }
            }
        }
        if let Some(entry) = lock(&self.rooms).get_mut(&room) {
            entry.members.remove(&id);
        }
        writer.abort();
    }
}

/// Feeds `texts` to `sink` without flushing; with `batch`, as few frames as the protocol's
/// batching makes of them.
async fn send_queued<S>(
    sink: &mut S,
    texts: impl Iterator<Item = Utf8Bytes>,
    batch: bool,
) -> Result<(), S::Error>
where
    S: Sink<Message> + Unpin,
{
    if !batch {
        for text in texts {
            sink.feed(Message::Text(text)).await?;
        }
        return Ok(());
    }
    let mut gathered = FrameBatch::new();
    for text in texts {
        if let Some(full) = gathered.add(text) {
            sink.feed(Message::Text(full.into_text())).await?;
        }
    }
    if let Some(rest) = gathered.take() {
        sink.feed(Message::Text(rest.into_text())).await?;
    }
    Ok(())
}
