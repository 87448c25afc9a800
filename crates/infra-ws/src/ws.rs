//! The WebSocket endpoint `/ws/{roomId}` and its plain mode: the prototype's protocol, where
//! every text frame is the whole buffer and is echoed to every member of the room.
//!
//! Close codes this mode uses: 1001 when the server shuts down, 1003 for a binary frame, 1007
//! for code a room cannot hold, 1009 for a frame over the size limit, 1011 when the edit cannot
//! be committed. A client that falls too far behind is disconnected without a close frame
//! (its connection is congested, so none could reach it).

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use duet_app::ApplyEditError;
use duet_domain::RoomId;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;

use crate::AppState;
use crate::error::{ApiError, error_chain};
use crate::hub::{Inbox, Membership};

/// How long a close handshake may take before the connection is dropped anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /ws/{roomId}`: checks the room, joins it, then upgrades.
pub async fn connect(
    State(state): State<AppState>,
    Path(room_id): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let id = RoomId::parse(&room_id)?;
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
    let (membership, inbox) = state.hubs.join(id).await?;
    let limit = state.settings.max_frame_bytes;
    // Frames up to twice the limit are read whole and refused with a clean close handshake;
    // only larger ones are cut off at their header.
    let hard_limit = limit.saturating_mul(2);
    let shutdown = state.shutdown.clone();
    let tracker = state.connections.clone();
    Ok(upgrade
        .max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| async move {
            let _tracked = tracker;
            tracing::debug!(room = %membership.room_id(), "plain client joined");
            serve_plain(socket, membership, inbox, shutdown, limit).await;
        }))
}

/// Why a connection ends.
enum Ending {
    /// The client closed or went away; nothing more to say.
    Gone,
    /// The server closes with this code and reason.
    Close(u16, String),
}

async fn serve_plain(
    socket: WebSocket,
    membership: Membership,
    inbox: Inbox,
    mut shutdown: watch::Receiver<bool>,
    limit: usize,
) {
    let (mut sink, mut stream) = socket.split();
    let Inbox { mut frames, kicked } = inbox;
    let ending = tokio::select! {
        ending = read_plain(&mut stream, &membership, limit) => ending,
        ending = forward(&mut frames, &mut sink) => ending,
        _ = kicked => {
            tracing::info!(room = %membership.room_id(), "client dropped for falling behind");
            return;
        }
        _ = shutdown.wait_for(|stopping| *stopping) => {
            Ending::Close(close_code::AWAY, "the server is shutting down".into())
        }
    };
    drop(membership);
    if let Ending::Close(code, reason) = ending {
        close(&mut sink, &mut stream, code, reason).await;
    }
}

/// Reads the client's frames, committing each text frame as the room's new code.
async fn read_plain(
    stream: &mut SplitStream<WebSocket>,
    membership: &Membership,
    limit: usize,
) -> Ending {
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Binary(_)) => {
                return Ending::Close(
                    close_code::UNSUPPORTED,
                    "binary frames are not supported: send text".into(),
                );
            }
            Ok(Message::Close(_)) => return Ending::Gone,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Err(error) => return read_error(&error, limit),
        };
        if text.len() > limit {
            return too_large(limit);
        }
        match membership.replace_code(text.as_str().to_owned()).await {
            Ok(()) => {}
            Err(error @ ApplyEditError::InvalidCode(_)) => {
                return Ending::Close(close_code::INVALID, error.to_string());
            }
            Err(error) => {
                tracing::error!(room = %membership.room_id(), error = %error_chain(&error), "edit not committed");
                return Ending::Close(
                    close_code::ERROR,
                    "the edit could not be saved; reconnect and resend".into(),
                );
            }
        }
    }
    Ending::Gone
}

fn too_large(limit: usize) -> Ending {
    Ending::Close(
        close_code::SIZE,
        format!("frames may be at most {limit} bytes"),
    )
}

fn read_error(error: &axum::Error, limit: usize) -> Ending {
    let capacity = std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|error| matches!(error, tungstenite::Error::Capacity(_)));
    if capacity {
        too_large(limit)
    } else {
        tracing::debug!(error = %error_chain(error), "connection failed");
        Ending::Gone
    }
}

/// Sends the member's queued frames, flushing once per batch rather than once per frame.
async fn forward(
    frames: &mut tokio::sync::mpsc::Receiver<Message>,
    sink: &mut SplitSink<WebSocket, Message>,
) -> Ending {
    while let Some(frame) = frames.recv().await {
        if sink.feed(frame).await.is_err() {
            return Ending::Gone;
        }
        while let Ok(frame) = frames.try_recv() {
            if sink.feed(frame).await.is_err() {
                return Ending::Gone;
            }
        }
        if sink.flush().await.is_err() {
            return Ending::Gone;
        }
    }
    // The room removed this member's queue: it fell behind.
    Ending::Gone
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
