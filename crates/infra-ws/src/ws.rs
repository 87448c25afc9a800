//! The WebSocket endpoint `/ws/{roomId}`. A client that asks for the `duet.v1` subprotocol
//! speaks it (docs/PROTOCOL.md); any other speaks the prototype's plain mode: every text frame
//! is the whole buffer, merged with concurrent edits, and everyone receives the merged buffer.
//!
//! Close codes (named in `duet_protocol::close`): 1001 the server is shutting down; 1003 a binary frame; 1007 (plain) code that
//! cannot be stored; 1008 too many bad messages; 1009 a message over the size limit; 1011 an
//! edit that could not be saved (plain); 1013 the room stopped; 4404 the room was deleted;
//! 4409 replaced by a newer connection with the same client id. A client that falls too far
//! behind, or stops answering pings, is disconnected without a close frame.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use duet_app::{Autocomplete, Change};
use duet_domain::access::Role;
use duet_domain::{Answered, ClientId, Language, RoomId};
use duet_live::{Edit, Inbox, JoinRequest, MemberKind, Membership, RoomStopped, SnapshotError};
use duet_protocol::batch::FrameBatch;
use duet_protocol::close::{
    GOING_AWAY, MESSAGE_TOO_BIG, POLICY_VIOLATION, TRY_AGAIN_LATER, UNSUPPORTED_DATA,
};
use duet_protocol::{ClientMessage, ErrorCode, SUBPROTOCOL, ServerMessage};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, error_chain};
use crate::wire;

/// How many frames' room a connection's writer keeps between writes.
const OUT_FRAMES_KEPT: usize = 64;
/// How long a close handshake may take before the connection is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 4 * 1024;
/// Bytes gathered before a write goes out (a flush sends them sooner).
const WRITE_BUFFER: usize = 8 * 1024;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    name: Option<String>,
    client_id: Option<String>,
    resume_token: Option<String>,
    since: Option<u64>,
    /// `1`/`true`: the client reads frames holding a JSON array of messages (duet.v1 only).
    batch: Option<String>,
}

/// `GET /ws/{roomId}`: checks the room, joins it, then upgrades.
#[utoipa::path(
    get,
    path = "/ws/{roomId}",
    tag = "websocket",
    summary = "Join a room over a WebSocket",
    description = "A WebSocket upgrade (`Connection: Upgrade`, `Upgrade: websocket`, \
                   `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key`). A client that asks for the \
                   subprotocol `duet.v1` (`Sec-WebSocket-Protocol: duet.v1`) speaks it; any other \
                   speaks the prototype's plain mode, where every text frame is the whole buffer. \
                   OpenAPI cannot describe the messages that follow the upgrade: docs/PROTOCOL.md \
                   does, with their errors and close codes. Everything is checked before the \
                   upgrade; needs a viewer's token or more for the room when authentication is on, \
                   in `Authorization: Bearer` or in the `token` parameter.",
    params(
        ("roomId" = String, Path, format = "uuid", description = "The room's id, a UUID"),
        ("name" = Option<String>, Query, description = "The name others see, unless the token \
            gives one (cut to 64 characters)"),
        ("clientId" = Option<String>, Query, description = "This client's id, to resume as it: 1 \
            to 64 ASCII letters, digits, `-`, `_`, `.` (else the server makes one)"),
        ("resumeToken" = Option<String>, Query, description = "The resume token the welcome of \
            this `clientId` carried: resumes that client's session"),
        ("since" = Option<u64>, Query, description = "duet.v1: the last revision the client holds; \
            the welcome carries the operations after it"),
        ("batch" = Option<String>, Query, description = "duet.v1: `1` or `true` lets the server \
            send several messages in one frame, as a JSON array; `0` or `false` (the default) does \
            not", pattern = "^(1|true|0|false)$"),
        ("token" = Option<String>, Query, description = "The bearer token, for clients that cannot \
            set the `Authorization` header (browsers)"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open \
            (docs/PROTOCOL.md)"),
        (status = 400, description = "`invalid_room_id`: the id is not a UUID; `invalid_query`: a \
            query parameter that cannot be read; `invalid_client_id`: a `clientId` that is not \
            one"),
        (status = 403, description = "`forbidden`: the token is for another room; \
            `client_id_taken`: the `clientId` belongs to another user; `room_full`: the room has \
            `DUET_MAX_MEMBERS_PER_ROOM` members"),
        (status = 404, description = "`room_not_found`: no such room"),
        (status = 426, description = "`upgrade_required`: a request that is not a WebSocket \
            upgrade"),
        (status = 503, description = "`unavailable`: the database failed, or the room is \
            reloading; try again"),
    ),
    security(("bearer" = []))
)]
pub async fn connect(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(room_id): Path<String>,
    params: Result<Query<ConnectParams>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let id = RoomId::parse(&room_id)?;
    let role = caller.require(id, Role::Viewer)?;
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            // A room that does not exist is reported as such, whatever the request lacks.
            state.rooms.get(id).await?;
            return Ok(ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                format!(
                    "this route speaks WebSocket only: {}",
                    rejection.body_text()
                ),
            )
            .into_response());
        }
    };
    let Query(params) = params.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    })?;
    let client = params
        .client_id
        .as_deref()
        .map(ClientId::new)
        .transpose()
        .map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_client_id",
                error.to_string(),
            )
        })?;
    let batch = match params.batch.as_deref() {
        None | Some("0" | "false") => false,
        Some("1" | "true") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("batch must be 1, true, 0 or false, not {other:?}"),
            ));
        }
    };
    let upgrade = upgrade.protocols([SUBPROTOCOL]);
    let kind = if upgrade.selected_protocol().is_some() {
        MemberKind::Operations
    } else {
        MemberKind::WholeBuffers
    };
    let request = JoinRequest {
        kind,
        client,
        resume_token: params.resume_token,
        // A name the token gives is the user's; without one, the client names itself.
        name: caller
            .name()
            .map(str::to_owned)
            .or(params.name)
            .unwrap_or_default(),
        since: params.since,
        role,
        subject: caller.subject().map(str::to_owned),
    };
    let (membership, inbox) = state.live.join(id, request).await?;
    let settings = state.settings.clone();
    // Messages up to twice the limit are read whole and refused with a clean close handshake;
    // only larger ones are cut off at their header.
    let hard_limit = settings.max_frame_bytes.saturating_mul(2);
    let shutdown = state.shutdown.clone();
    let tracker = state.connections.clone();
    let autocomplete = state.autocomplete.clone();
    Ok(upgrade
        // tungstenite reserves 128 KiB for reading and for writing by default; an idle
        // collaborator needs far less, and a large frame still grows the buffer as needed.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| async move {
            let _tracked = tracker;
            tracing::debug!(room = %membership.room_id(), client = %membership.client(), ?kind, "client joined");
            let connection = Connection {
                membership,
                rate: settings.message_rate,
                autocomplete,
                kind,
                batch: batch && kind == MemberKind::Operations,
                limit: settings.max_frame_bytes,
                ping_interval: settings.ping_interval,
                started: Instant::now(),
                last_seen: AtomicU64::new(0),
            };
            connection.serve(socket, inbox, shutdown).await;
        }))
}

/// Why a connection ends.
enum Ending {
    /// The client closed or went away, or the server already sent its close frame.
    Gone,
    /// The server closes with this code and reason.
    Close(u16, String),
}

/// How fast one connection may send messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRate {
    /// Messages a second, on average; twice as many may come at once.
    pub per_second: u32,
    /// How long a connection may stay over that rate (while the server stops reading it)
    /// before it is closed with 1008.
    pub abuse_after: Duration,
}

/// A token bucket per connection: while a client sends faster than its rate, the server stops
/// reading its socket (TCP pushes back on the client, and nothing it sent is dropped); one that
/// stays over the rate for `abuse_after` is closed with 1008.
struct RateLimit {
    rate: MessageRate,
    tokens: f64,
    updated: Instant,
    over_since: Option<Instant>,
}

impl RateLimit {
    fn new(rate: MessageRate) -> Self {
        Self {
            rate,
            tokens: Self::burst(rate),
            updated: Instant::now(),
            over_since: None,
        }
    }

    fn burst(rate: MessageRate) -> f64 {
        2.0 * f64::from(rate.per_second.max(1))
    }

    /// Takes one message's token, waiting for it when the bucket is empty.
    async fn admit(&mut self) -> Result<(), Ending> {
        let per_second = f64::from(self.rate.per_second.max(1));
        let now = Instant::now();
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(Self::burst(self.rate));
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.over_since = None;
            return Ok(());
        }
        let since = *self.over_since.get_or_insert(now);
        if now.duration_since(since) >= self.rate.abuse_after {
            return Err(Ending::Close(
                POLICY_VIOLATION,
                format!(
                    "more than {} messages a second for too long",
                    self.rate.per_second
                ),
            ));
        }
        let wait = Duration::from_secs_f64((1.0 - self.tokens) / per_second);
        tokio::time::sleep(wait).await;
        self.updated = Instant::now();
        self.tokens = 0.0;
        Ok(())
    }
}

struct Connection {
    membership: Membership<Utf8Bytes>,
    /// How fast this connection may send.
    rate: MessageRate,
    autocomplete: Autocomplete,
    kind: MemberKind,
    /// Messages queued together go out as one frame holding a JSON array of them.
    batch: bool,
    limit: usize,
    ping_interval: Duration,
    started: Instant,
    /// When the client last sent anything, in milliseconds since `started`: a client silent
    /// for two ping intervals is dropped.
    last_seen: AtomicU64,
}

impl Connection {
    async fn serve(
        self,
        socket: WebSocket,
        inbox: Inbox<Utf8Bytes>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let (mut sink, mut stream) = socket.split();
        let Inbox {
            events: mut frames,
            kicked,
        } = inbox;
        let ending = tokio::select! {
            ending = self.read(&mut stream) => ending,
            ending = self.forward(&mut frames, &mut sink) => ending,
            _ = kicked => {
                tracing::info!(room = %self.membership.room_id(), "client dropped");
                // Whatever the room queued last (a close frame, perhaps) still goes out.
                let member = self.membership.member();
                let mut out = Vec::new();
                'queued: while let Ok(event) = frames.try_recv() {
                    wire::write_frames(event, member, &mut out);
                    for frame in out.drain(..) {
                        let closing = matches!(frame, Message::Close(_));
                        if tokio::time::timeout(CLOSE_TIMEOUT, sink.send(frame)).await.is_err() || closing {
                            break 'queued;
                        }
                    }
                }
                Ending::Gone
            }
            () = async { let _ = shutdown.wait_for(|stopping| *stopping).await; } => {
                Ending::Close(GOING_AWAY, "the server is shutting down".into())
            }
        };
        drop(self.membership);
        match ending {
            Ending::Close(code, reason) => {
                close(&mut sink, &mut stream, code, reason).await;
            }
            Ending::Gone => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
            }
        }
    }

    /// Reads the client's frames and passes them to the room, at most at the configured rate.
    async fn read(&self, stream: &mut SplitStream<WebSocket>) -> Ending {
        let mut rate = RateLimit::new(self.rate);
        // The newest buffer whose ping a plain client answered: pongs and frames arrive in the
        // order the client sent them, so this is what it had reached when it sent each frame.
        let mut answered = Answered::default();
        while let Some(frame) = stream.next().await {
            self.seen();
            let text = match frame {
                Ok(Message::Text(text)) => text,
                Ok(Message::Binary(_)) => {
                    return Ending::Close(
                        UNSUPPORTED_DATA,
                        "binary frames are not supported: send text".into(),
                    );
                }
                Ok(Message::Close(_)) => return Ending::Gone,
                Ok(Message::Pong(payload)) => {
                    if let Ok(revision) = <[u8; 8]>::try_from(payload.as_ref()) {
                        answered.answer(u64::from_be_bytes(revision));
                    }
                    continue;
                }
                Ok(Message::Ping(_)) => continue,
                Err(error) => return self.read_error(&error),
            };
            if text.len() > self.limit {
                return self.too_large();
            }
            if let Err(ending) = rate.admit().await {
                tracing::info!(room = %self.membership.room_id(), client = %self.membership.client(), "closing a connection that kept sending faster than allowed");
                return ending;
            }
            let sent = match self.kind {
                MemberKind::WholeBuffers => {
                    self.membership
                        .edit(Edit::WholeBuffer {
                            code: text.as_str().to_owned(),
                            answered,
                        })
                        .await
                }
                MemberKind::Operations => self.read_v1(text.as_str()).await,
            };
            if sent.is_err() {
                return Ending::Close(TRY_AGAIN_LATER, "the room stopped; reconnect".into());
            }
        }
        Ending::Gone
    }

    async fn read_v1(&self, text: &str) -> Result<(), RoomStopped> {
        match ClientMessage::decode(text) {
            Ok(ClientMessage::Op {
                revision,
                seq,
                ops,
                selection,
            }) => {
                self.membership
                    .edit(Edit::Change {
                        seq,
                        revision,
                        change: Change::Operation(ops),
                        selection,
                    })
                    .await
            }
            Ok(ClientMessage::Code {
                revision,
                seq,
                code,
            }) => {
                self.membership
                    .edit(Edit::Change {
                        seq,
                        revision,
                        change: Change::Code(code),
                        selection: None,
                    })
                    .await
            }
            Ok(ClientMessage::Presence {
                revision,
                selection,
            }) => self.membership.presence(revision, selection).await,
            Ok(ClientMessage::Language { language }) => match Language::new(&language) {
                Ok(language) => self.membership.change_language(language).await,
                Err(error) => {
                    self.answer_error(ErrorCode::InvalidLanguage, error.to_string(), None);
                    Ok(())
                }
            },
            Ok(ClientMessage::Autocomplete {
                id,
                revision,
                cursor_position,
            }) => self.autocomplete(id, revision, cursor_position).await,
            Err(error) => {
                self.membership
                    .bad_message(format!("the message is not valid duet.v1: {error}"))
                    .await
            }
        }
    }

    /// Answers a completion request on the room's own text: the room hands over its text and
    /// moves the cursor to its current revision; the engine then runs outside the room, so a
    /// slow model delays only this answer.
    async fn autocomplete(
        &self,
        id: serde_json::Value,
        revision: u64,
        cursor: usize,
    ) -> Result<(), RoomStopped> {
        let snapshot = match self.membership.snapshot(revision, cursor).await {
            Ok(snapshot) => snapshot,
            Err(SnapshotError::Stopped(stopped)) => return Err(stopped),
            Err(SnapshotError::Revision(error)) => {
                let code = wire::revision_error_code(&error);
                self.answer_error(code, error.to_string(), Some(&id));
                return Ok(());
            }
        };
        let autocomplete = self.autocomplete.clone();
        let replies = self.membership.replies();
        tokio::spawn(async move {
            let frame = match autocomplete
                .suggest(
                    snapshot.code,
                    snapshot.cursor,
                    Some(snapshot.language.as_str()),
                )
                .await
            {
                Ok(completion) => ServerMessage::Suggestion {
                    id: Cow::Borrowed(&id),
                    suggestion: Cow::Borrowed(&completion.suggestion),
                    alternatives: Cow::Borrowed(&completion.alternatives),
                }
                .encode()
                .into(),
                Err(error) => {
                    wire::error(ErrorCode::InvalidCursor, error.to_string(), None, Some(&id))
                }
            };
            replies.send(frame);
        });
        Ok(())
    }

    fn answer_error(&self, code: ErrorCode, message: String, id: Option<&serde_json::Value>) {
        self.membership
            .replies()
            .send(wire::error(code, message, None, id));
    }

    fn seen(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_seen.store(now, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_seen.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    fn too_large(&self) -> Ending {
        Ending::Close(
            MESSAGE_TOO_BIG,
            format!("messages may be at most {} bytes", self.limit),
        )
    }

    fn read_error(&self, error: &axum::Error) -> Ending {
        let capacity = std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<tungstenite::Error>())
            .is_some_and(|error| matches!(error, tungstenite::Error::Capacity(_)));
        if capacity {
            self.too_large()
        } else {
            tracing::debug!(error = %error_chain(error), "connection failed");
            Ending::Gone
        }
    }

    /// Sends the member's queued frames, flushing once per batch rather than once per frame,
    /// and pings the client when it has been quiet for a while.
    async fn forward(
        &self,
        frames: &mut tokio::sync::mpsc::Receiver<duet_live::Event<Utf8Bytes>>,
        sink: &mut SplitSink<WebSocket, Message>,
    ) -> Ending {
        let mut pings =
            tokio::time::interval_at(Instant::now() + self.ping_interval, self.ping_interval);
        // The frames of one write, reused from write to write (and kept small between bursts).
        let mut out = Vec::new();
        loop {
            let frame = tokio::select! {
                frame = frames.recv() => frame,
                _ = pings.tick() => {
                    if self.quiet_for() > self.ping_interval * 2 {
                        tracing::info!(room = %self.membership.room_id(), "client stopped answering pings");
                        return Ending::Gone;
                    }
                    if sink.send(Message::Ping(Default::default())).await.is_err() {
                        return Ending::Gone;
                    }
                    continue;
                }
            };
            // `None`: the room dropped this member; the kick signal says why.
            let Some(frame) = frame else {
                return std::future::pending().await;
            };
            // Everything queued by now goes in one write.
            let member = self.membership.member();
            wire::write_frames(frame, member, &mut out);
            while let Ok(event) = frames.try_recv() {
                wire::write_frames(event, member, &mut out);
            }
            let Ok(closing) = send_queued(sink, out.drain(..), self.batch).await else {
                return Ending::Gone;
            };
            out.shrink_to(OUT_FRAMES_KEPT);
            if sink.flush().await.is_err() || closing {
                return Ending::Gone;
            }
        }
    }
}

/// Feeds `frames` to `sink` without flushing, up to and including a close frame; with `batch`,
/// each run of text messages goes as one frame holding a JSON array of them. Returns whether a
/// close frame was sent.
///
/// # Errors
/// The sink's error.
pub async fn send_queued<S>(
    sink: &mut S,
    frames: impl Iterator<Item = Message>,
    batch: bool,
) -> Result<bool, S::Error>
where
    S: futures_util::Sink<Message> + Unpin,
{
    let mut gathered = FrameBatch::<Utf8Bytes>::new();
    for frame in frames {
        match frame {
            Message::Text(text) if batch => {
                if let Some(full) = gathered.add(text) {
                    sink.feed(Message::Text(full.into_text())).await?;
                }
            }
            other => {
                if let Some(run) = gathered.take() {
                    sink.feed(Message::Text(run.into_text())).await?;
                }
                let closing = matches!(other, Message::Close(_));
                sink.feed(other).await?;
                if closing {
                    return Ok(true);
                }
            }
        }
    }
    if let Some(run) = gathered.take() {
        sink.feed(Message::Text(run.into_text())).await?;
    }
    Ok(false)
}

/// Sends a close frame and waits, briefly, for the client's answer, so that the frame is read
/// before the connection goes.
async fn close(
    sink: &mut SplitSink<WebSocket, Message>,
    stream: &mut SplitStream<WebSocket>,
    code: u16,
    reason: String,
) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if !matches!(
        tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(frame)) = stream.next().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that keeps what it is fed.
    #[derive(Default)]
    struct Recorder(Vec<Message>);

    impl futures_util::Sink<Message> for Recorder {
        type Error = std::convert::Infallible;

        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn start_send(
            mut self: std::pin::Pin<&mut Self>,
            item: Message,
        ) -> Result<(), Self::Error> {
            self.0.push(item);
            Ok(())
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn queued_frames_go_out_in_order_and_stop_at_a_close() {
        let queued = || {
            vec![
                Message::Text("1".into()),
                Message::Text("2".into()),
                Message::Close(None),
                Message::Text("after the close".into()),
            ]
            .into_iter()
        };
        let mut batched = Recorder::default();
        assert_eq!(send_queued(&mut batched, queued(), true).await, Ok(true));
        assert_eq!(
            batched.0,
            [Message::Text("[1,2]".into()), Message::Close(None)]
        );
        let mut single = Recorder::default();
        assert_eq!(send_queued(&mut single, queued(), false).await, Ok(true));
        assert_eq!(
            single.0,
            [
                Message::Text("1".into()),
                Message::Text("2".into()),
                Message::Close(None)
            ]
        );
        let mut open = Recorder::default();
        let texts = ["3", "4"]
            .map(|text| Message::Text(text.into()))
            .into_iter();
        assert_eq!(send_queued(&mut open, texts, true).await, Ok(false));
        assert_eq!(open.0, [Message::Text("[3,4]".into())]);
    }
}
