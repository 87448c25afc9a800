//! The HTTP routes and their wire types (JSON, camelCase).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use duet_app::NewRoom;
use duet_domain::{Language, Room, RoomId};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;
use crate::json::{JsonBody, OptionalJson};

#[derive(Serialize)]
pub struct Status {
    service: &'static str,
    version: &'static str,
}

/// `GET /`: what this service is.
pub async fn status() -> Json<Status> {
    Json(Status {
        service: "duet",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /readyz`: the process can serve, which means its database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state
        .health
        .check()
        .await
        .map_err(|error| ApiError::unavailable(&error))?;
    Ok(Json(Health { status: "ready" }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateRoomRequest {
    language: Option<String>,
    code: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedRoom {
    room_id: String,
}

async fn create(state: &AppState, body: Option<CreateRoomRequest>) -> Result<RoomId, ApiError> {
    let body = body.unwrap_or_default();
    let room = state
        .rooms
        .create(NewRoom {
            language: body.language,
            code: body.code,
        })
        .await?;
    tracing::info!(room = %room.id(), language = %room.language(), "room created");
    Ok(room.id())
}

/// `POST /rooms/create`: the prototype's route, answering 200.
pub async fn create_room_legacy(
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<CreateRoomRequest>,
) -> Result<Json<CreatedRoom>, ApiError> {
    let id = create(&state, body).await?;
    Ok(Json(CreatedRoom {
        room_id: id.to_string(),
    }))
}

/// `POST /rooms`: creates a room, answering 201 with its location.
pub async fn create_room(
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<CreateRoomRequest>,
) -> Result<Response, ApiError> {
    let id = create(&state, body).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/rooms/{id}"))],
        Json(CreatedRoom {
            room_id: id.to_string(),
        }),
    )
        .into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    room_id: String,
    language: String,
    code: String,
    revision: u64,
    created_at: String,
    updated_at: String,
}

impl From<Room> for RoomView {
    fn from(room: Room) -> Self {
        Self {
            room_id: room.id().to_string(),
            language: room.language().to_string(),
            revision: room.revision(),
            created_at: room
                .created_at()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            updated_at: room
                .updated_at()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            code: room.code().to_owned(),
        }
    }
}

/// `GET /rooms/{roomId}`: a room's code and details.
pub async fn get_room(
    State(state): State<AppState>,
    Path(room_id): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    let id = RoomId::parse(&room_id)?;
    let room = state.rooms.get(id).await?;
    Ok(Json(room.into()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutocompleteRequest {
    code: String,
    cursor_position: i64,
    language: Option<String>,
}

#[derive(Serialize)]
pub struct Suggestion {
    suggestion: String,
    alternatives: Vec<String>,
}

/// `POST /autocomplete`: a suggestion for the code at the cursor.
pub async fn autocomplete(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<AutocompleteRequest>,
) -> Result<Json<Suggestion>, ApiError> {
    let cursor = usize::try_from(request.cursor_position).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_cursor",
            format!(
                "cursorPosition must not be negative, got {}",
                request.cursor_position
            ),
        )
    })?;
    let completion = state
        .autocomplete
        .suggest(request.code, cursor, request.language.as_deref())
        .await?;
    Ok(Json(Suggestion {
        suggestion: completion.suggestion,
        alternatives: completion.alternatives,
    }))
}

#[derive(Serialize)]
pub struct LanguageView {
    id: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
pub struct Languages {
    languages: Vec<LanguageView>,
}

/// `GET /languages`: the languages a room can be in.
pub async fn languages() -> Json<Languages> {
    Json(Languages {
        languages: Language::ALL
            .iter()
            .map(|language| LanguageView {
                id: language.as_str(),
                name: language.display_name(),
            })
            .collect(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    language: String,
}

/// `PATCH /rooms/{roomId}`: changes a room's language; everyone in it is told.
pub async fn update_room(
    State(state): State<AppState>,
    Path(room_id): Path<String>,
    JsonBody(update): JsonBody<UpdateRoom>,
) -> Result<Json<RoomView>, ApiError> {
    let id = RoomId::parse(&room_id)?;
    let language = Language::new(&update.language).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_language",
            error.to_string(),
        )
    })?;
    let room = state.live.change_language(id, language).await?;
    Ok(Json(room.into()))
}

/// In front of every route taking a room id: one that is not valid UTF-8 once percent-decoded
/// (which axum's path extractor refuses before a handler could), or not a UUID, is
/// `invalid_room_id`.
pub async fn require_room_id(
    room_id: Result<Path<String>, PathRejection>,
    request: Request,
    next: Next,
) -> Response {
    let checked = match room_id {
        Ok(Path(room_id)) => RoomId::parse(&room_id).map(|_| ()).map_err(ApiError::from),
        Err(rejection) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_room_id",
            format!("the room id is not a UUID: {}", rejection.body_text()),
        )),
    };
    match checked {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Any route that does not exist.
pub async fn not_found() -> ApiError {
    ApiError::for_status(StatusCode::NOT_FOUND)
}
