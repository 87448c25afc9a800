//! The HTTP routes and their wire types (JSON, camelCase).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::SecondsFormat;
use duet_app::NewRoom;
use duet_domain::access::Role;
use duet_domain::{Language, Room, RoomId};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{Caller, now_secs};
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

/// A request body, read only once the caller is known to be allowed: a caller without the
/// right learns that first, whatever it sent.
type Body<T> = Result<T, ApiError>;

async fn create(
    state: &AppState,
    caller: &Caller,
    body: Body<OptionalJson<CreateRoomRequest>>,
) -> Result<RoomId, ApiError> {
    caller.require_room_creation()?;
    let OptionalJson(body) = body?;
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
    Extension(caller): Extension<Caller>,
    body: Body<OptionalJson<CreateRoomRequest>>,
) -> Result<Json<CreatedRoom>, ApiError> {
    let id = create(&state, &caller, body).await?;
    Ok(Json(CreatedRoom {
        room_id: id.to_string(),
    }))
}

/// `POST /rooms`: creates a room, answering 201 with its location.
pub async fn create_room(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body<OptionalJson<CreateRoomRequest>>,
) -> Result<Response, ApiError> {
    let id = create(&state, &caller, body).await?;
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
    Extension(caller): Extension<Caller>,
    Path(room_id): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    let id = RoomId::parse(&room_id)?;
    caller.require(id, Role::Viewer)?;
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
    Extension(caller): Extension<Caller>,
    Path(room_id): Path<String>,
    update: Body<JsonBody<UpdateRoom>>,
) -> Result<Json<RoomView>, ApiError> {
    let id = RoomId::parse(&room_id)?;
    caller.require(id, Role::Editor)?;
    let JsonBody(update) = update?;
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

/// `DELETE /rooms/{roomId}` (owners): deletes the room; everyone in it is closed with 4404.
pub async fn delete_room(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(room_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = RoomId::parse(&room_id)?;
    caller.require(id, Role::Owner)?;
    state.live.delete(id).await?;
    tracing::info!(room = %id, by = caller.subject().unwrap_or("anyone"), "room deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// How long a shared token lasts when the request does not say.
pub const DEFAULT_SHARE_TTL_SECS: u64 = 24 * 60 * 60;
/// The longest a shared token may last (and never longer than its maker's own).
pub const MAX_SHARE_TTL_SECS: u64 = 30 * 24 * 60 * 60;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareRequest {
    role: String,
    name: Option<String>,
    /// Signed, so that a negative one is `invalid_ttl` like any other out of range.
    ttl_secs: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedToken {
    token: String,
    expires_at: String,
    room_id: String,
    role: &'static str,
}

/// `POST /rooms/{roomId}/tokens` (owners): a token for this room, as a viewer or an editor,
/// to share as a link. It never grants more than its maker holds: this room only, no owner,
/// and it ends when the maker's token does, if that is sooner.
pub async fn share_room(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(room_id): Path<String>,
    request: Body<JsonBody<ShareRequest>>,
) -> Result<(StatusCode, Json<SharedToken>), ApiError> {
    let id = RoomId::parse(&room_id)?;
    let (Some(authority), Caller::Bearer(grant)) = (&state.authority, &caller) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "auth_disabled",
            "this server does not use tokens (DUET_AUTH_SECRET is not set): its rooms are open to anyone",
        ));
    };
    caller.require(id, Role::Owner)?;
    let JsonBody(request) = request?;
    let invalid = |code: &'static str, message: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    };
    let role = match request.role.as_str() {
        "viewer" => Role::Viewer,
        "editor" => Role::Editor,
        _ => {
            return Err(invalid(
                "invalid_role",
                "role must be viewer or editor; a shared token is never an owner's".into(),
            ));
        }
    };
    let ttl = match request.ttl_secs.map(u64::try_from) {
        None => DEFAULT_SHARE_TTL_SECS,
        Some(Ok(ttl)) if (1..=MAX_SHARE_TTL_SECS).contains(&ttl) => ttl,
        Some(_) => {
            return Err(invalid(
                "invalid_ttl",
                format!("ttlSecs must be 1 to {MAX_SHARE_TTL_SECS} (30 days)"),
            ));
        }
    };
    if let Some(name) = &request.name
        && (name.is_empty() || name.chars().count() > duet_live::MAX_NAME)
    {
        return Err(invalid(
            "invalid_name",
            format!("name must be 1 to {} characters", duet_live::MAX_NAME),
        ));
    }
    // The room must exist: a link to nothing helps nobody.
    state.rooms.get(id).await?;
    let now = now_secs();
    // Each link is a user of its own: whoever opens it, under the name the link gives or the
    // one they choose.
    let subject = format!("link:{}", RoomId::generate());
    let shared = grant
        .share(id, role, subject, request.name, now.saturating_add(ttl))
        .map_err(|error| crate::auth::forbidden(error.to_string()))?;
    let token = authority
        .mint(&shared, now)
        .map_err(|error| ApiError::unavailable(&error))?;
    let expires_at = i64::try_from(shared.expires_at)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    tracing::info!(room = %id, by = %grant.subject, role = %role, "token minted");
    Ok((
        StatusCode::CREATED,
        Json(SharedToken {
            token,
            expires_at,
            room_id: id.to_string(),
            role: role.as_str(),
        }),
    ))
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
