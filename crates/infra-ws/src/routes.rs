//! The HTTP routes and their wire types (JSON, camelCase).
//!
//! Each handler's `#[utoipa::path]` documents its own answers; those every route can give (the
//! limits, a missing token, a bad body) are added to every operation in one place, in
//! `crate::openapi`.

use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::SecondsFormat;
use duet_app::{HistoryPage, NewRoom};
use duet_domain::access::Role;
use duet_domain::{Language, Room, RoomId, TextOperation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, SemaphorePermit};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, now_secs};
use crate::error::ApiError;
use crate::json::{JsonBody, OptionalJson};

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "duet")]
    service: &'static str,
    #[schema(example = "0.1.0")]
    version: &'static str,
}

/// `GET /`: what this service is; to a browser asking for a page, the web app.
#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    summary = "What this service is (or, to a browser, the web app)",
    description = "Answers JSON to any client that does not name `text/html` in `Accept` \
                   (curl and the prototype's clients send `*/*`), and the web app's page to \
                   one that does.",
    responses(
        (status = 200, description = "Its name and version; or the web app's page",
         content(
             (Status = "application/json"),
             (String = "text/html")
         ),
         headers(("Vary" = String, description = "Accept")))
    )
)]
pub async fn status(headers: axum::http::HeaderMap) -> Response {
    let mut response = if crate::web::wants_html(&headers) {
        crate::web::page(headers).await
    } else {
        Json(Status {
            service: "duet",
            version: env!("CARGO_PKG_VERSION"),
        })
        .into_response()
    };
    response
        .headers_mut()
        .append(header::VARY, axum::http::HeaderValue::from_static("Accept"));
    response
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    summary = "Whether the process is up",
    responses((status = 200, description = "It is: `{\"status\": \"ok\"}`", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /readyz`: the process can serve, which means its database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    summary = "Whether the server can serve",
    description = "Ready while the database answers and takes writes. After a failed write it \
                   stays unready until a probe write succeeds (checked on each request).",
    responses(
        (status = 200, description = "Ready: `{\"status\": \"ready\"}`", body = Health),
        (status = 503, description = "`unavailable`: the database does not answer or take writes"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state
        .health
        .check()
        .await
        .map_err(|error| ApiError::unavailable(&error))?;
    Ok(Json(Health { status: "ready" }))
}

/// A new room's language and code; without them, an empty Python room.
#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateRoomRequest {
    /// One of `GET /languages`, or an alias such as `py`, `js`, `c++` (default `python`).
    #[schema(value_type = Option<crate::openapi::LanguageId>, example = "rust")]
    language: Option<String>,
    /// The room's first code: no NUL character, at most `DUET_MAX_ROOM_BYTES` bytes.
    #[schema(pattern = "^[^\\u0000]*$", example = "fn main() {}")]
    code: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedRoom {
    #[schema(format = "uuid")]
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
#[utoipa::path(
    post,
    path = "/rooms/create",
    tag = "rooms",
    summary = "Create a room (the prototype's route)",
    description = "As `POST /rooms`, answering 200 without a `Location`. Needs a token for \
                   room `*` with role `owner` when authentication is on.",
    // Marked optional in `crate::openapi`: `Option<_>` here would document a `null` body, which
    // is refused.
    request_body(content = CreateRoomRequest, description = "Optional: an empty body creates an \
        empty Python room"),
    responses(
        (status = 200, description = "Created", body = CreatedRoom),
        (status = 403, description = "`forbidden`: the token may not create rooms"),
        (status = 422, description = "`invalid_language`: not a supported language; \
            `invalid_code`: code holding a NUL character; `room_too_large`: code over \
            `DUET_MAX_ROOM_BYTES`"),
        (status = 429, description = "`rate_limited`: this address created `DUET_ROOMS_PER_MINUTE` \
            rooms in the last minute; nothing was created"),
        (status = 503, description = "`unavailable`: the database failed"),
    ),
    security(("bearer" = []))
)]
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
#[utoipa::path(
    post,
    path = "/rooms",
    tag = "rooms",
    summary = "Create a room",
    description = "Needs a token for room `*` with role `owner` when authentication is on. \
                   Every request counts towards the address's `DUET_ROOMS_PER_MINUTE`, even one \
                   refused for its body.",
    // Marked optional in `crate::openapi`: `Option<_>` here would document a `null` body, which
    // is refused.
    request_body(content = CreateRoomRequest, description = "Optional: an empty body creates an \
        empty Python room"),
    responses(
        (status = 201, description = "Created", body = CreatedRoom,
            headers(("Location" = String, description = "`/rooms/{roomId}`, the new room"))),
        (status = 403, description = "`forbidden`: the token may not create rooms"),
        (status = 422, description = "`invalid_language`: not a supported language; \
            `invalid_code`: code holding a NUL character; `room_too_large`: code over \
            `DUET_MAX_ROOM_BYTES`"),
        (status = 429, description = "`rate_limited`: this address created `DUET_ROOMS_PER_MINUTE` \
            rooms in the last minute; nothing was created"),
        (status = 503, description = "`unavailable`: the database failed"),
    ),
    security(("bearer" = []))
)]
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

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    #[schema(format = "uuid")]
    room_id: String,
    #[schema(value_type = crate::openapi::LanguageId, example = "python")]
    language: String,
    code: String,
    /// How many operations the room has committed.
    revision: u64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
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

/// A query string's parameters, read once the caller is known to be allowed; one that cannot
/// be read is `invalid_query`.
type QueryParams<T> = Result<Query<T>, QueryRejection>;

fn read_query<T>(query: QueryParams<T>) -> Result<T, ApiError> {
    query.map(|Query(query)| query).map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    })
}

/// The parameters of `GET /rooms/{roomId}`.
#[derive(Deserialize)]
pub struct RoomQuery {
    revision: Option<u64>,
}

/// `GET /rooms/{roomId}`: a room's code and details, now or at an earlier revision.
#[utoipa::path(
    get,
    path = "/rooms/{roomId}",
    tag = "rooms",
    summary = "A room's code and details, now or at an earlier revision",
    description = "Needs a viewer's token or more for the room when authentication is on. With \
                   `revision`, the code is rebuilt as it was then, from the room's snapshot or \
                   the code it was created with and its log of operations (one operation \
                   replayed per revision on the way); `updatedAt` is when that revision was \
                   committed (`createdAt` for 0), and `language` is the room's current one.",
    params(
        ("roomId" = String, Path, format = "uuid", description = "The room's id, a UUID"),
        ("revision" = Option<u64>, Query, minimum = 0, description = "The revision to answer \
            the room at, 0 (as it was created) to its current one; without it, the room now"),
    ),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 400, description = "`invalid_room_id`: the id is not a UUID; `invalid_query`: \
            `revision` is not a whole number from 0 to 2^64 − 1"),
        (status = 403, description = "`forbidden`: the token is for another room"),
        (status = 404, description = "`room_not_found`: no such room; `revision_not_found`: \
            `revision` is past the room's current revision"),
        (status = 410, description = "`revision_gone`: the code at `revision` cannot be rebuilt: \
            the room was created before servers kept its first code and has been snapshotted \
            since, or an operation on the way is missing from its log or damaged"),
        (status = 503, description = "`unavailable`: the database failed; `busy`: as many \
            old revisions are being rebuilt, and waiting to be, as the server takes, or this one \
            waited 10 seconds for its turn (`Retry-After` says when to ask again)"),
    ),
    security(("bearer" = []))
)]
pub async fn get_room(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(room_id): Path<String>,
    query: QueryParams<RoomQuery>,
) -> Result<Json<RoomView>, ApiError> {
    let id = RoomId::parse(&room_id)?;
    caller.require(id, Role::Viewer)?;
    let room = match read_query(query)?.revision {
        None => state.rooms.get(id).await?,
        Some(revision) => {
            let current = state.rooms.get(id).await?;
            if revision == current.revision() {
                current
            } else {
                // An older revision is rebuilt by replaying the log, so it waits for a turn; a
                // later one is refused at once.
                let _turn = if revision < current.revision() {
                    Some(state.rebuilds.turn().await?)
                } else {
                    None
                };
                state.rooms.at_revision(id, revision).await?
            }
        }
    };
    Ok(Json(room.into()))
}

/// Turns at rebuilding a room's code at an old revision: a few run at once, a bounded number
/// wait up to a deadline, and the rest are told at once to try again (503 `busy`).
pub(crate) struct Rebuilds {
    running: Semaphore,
    places: Semaphore,
    wait: Duration,
}

/// A turn at rebuilding; the next request gets it when this is dropped.
pub(crate) struct RebuildTurn<'a> {
    _running: SemaphorePermit<'a>,
    _place: SemaphorePermit<'a>,
}

impl Rebuilds {
    pub(crate) fn new(at_once: usize, waiting: usize, wait: Duration) -> Self {
        Self {
            running: Semaphore::new(at_once),
            places: Semaphore::new(at_once + waiting),
            wait,
        }
    }

    /// Waits for a turn, or answers `busy` when too many wait already or the wait is too long.
    pub(crate) async fn turn(&self) -> Result<RebuildTurn<'_>, ApiError> {
        let busy = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is rebuilding as many old revisions as it takes at once; try again \
                 in a moment",
            )
            .retry_after(1)
        };
        let place = self.places.try_acquire().map_err(|_| busy())?;
        // The semaphores are never closed, so `acquire` fails only by the deadline.
        let running = tokio::time::timeout(self.wait, self.running.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        Ok(RebuildTurn {
            _running: running,
            _place: place,
        })
    }
}

/// How many operations a page of history holds when `limit` is not given.
pub const DEFAULT_HISTORY_LIMIT: u64 = 500;
/// The most operations a page of history may hold.
pub const MAX_HISTORY_LIMIT: u64 = 1000;

/// The parameters of `GET /rooms/{roomId}/history`.
#[derive(Deserialize)]
pub struct HistoryQuery {
    from: Option<u64>,
    to: Option<u64>,
    limit: Option<u64>,
}

/// One committed operation of a room's history.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryOperation {
    /// The revision it made: it applies to the code at `revision - 1`.
    #[schema(minimum = 1, example = 1)]
    revision: u64,
    /// The client that sent it.
    #[schema(example = "alice")]
    client_id: String,
    /// The operation in ot.js's JSON form, as in `duet.v1`'s `op` message.
    #[schema(value_type = crate::openapi::OtOperation)]
    ops: TextOperation,
    /// When it was committed.
    #[schema(format = DateTime)]
    committed_at: String,
}

/// A page of a room's history.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// The operations with revisions after `from` and up to `to`, oldest first.
    operations: Vec<HistoryOperation>,
    /// The room's current revision.
    #[schema(minimum = 0, example = 42)]
    revision: u64,
    /// The `from` of the next page, or `null` when this page reached `to`.
    #[schema(minimum = 0, required = true)]
    next_from: Option<u64>,
}

impl From<HistoryPage> for History {
    fn from(page: HistoryPage) -> Self {
        Self {
            operations: page
                .operations
                .into_iter()
                .map(|committed| HistoryOperation {
                    revision: committed.revision,
                    client_id: committed.client.to_string(),
                    ops: committed.operation,
                    committed_at: committed
                        .committed_at
                        .to_rfc3339_opts(SecondsFormat::Millis, true),
                })
                .collect(),
            revision: page.revision,
            next_from: page.next_from,
        }
    }
}

/// `GET /rooms/{roomId}/history`: a page of a room's committed operations.
#[utoipa::path(
    get,
    path = "/rooms/{roomId}/history",
    tag = "rooms",
    summary = "A page of a room's committed operations",
    description = "The operations with revisions after `from` and up to `to`, oldest first, at \
                   most `limit` of them; applied in order to the code at `from` (`GET \
                   /rooms/{roomId}?revision=`), they make the code at each revision. To read a \
                   range page by page, pass the answer's `nextFrom` as the next `from` (with the \
                   same `to`) until it is `null`. A page ends early before an operation that is \
                   missing from the log or damaged; asking from there answers 410. Needs a \
                   viewer's token or more for the room when authentication is on.",
    params(
        ("roomId" = String, Path, format = "uuid", description = "The room's id, a UUID"),
        ("from" = Option<u64>, Query, minimum = 0, description = "The revision the page starts \
            after (not included); default 0, the room as it was created"),
        ("to" = Option<u64>, Query, minimum = 0, description = "The last revision of the range \
            (included); default the room's current revision"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "The most \
            operations in the page: 1 to 1,000, default 500. A page of large operations ends \
            early (about 8 MiB), with `nextFrom`; it always holds at least one"),
    ),
    responses(
        (status = 200, description = "The page", body = History),
        (status = 400, description = "`invalid_room_id`: the id is not a UUID; `invalid_query`: \
            `from`, `to` or `limit` is not a whole number from 0 to 2^64 − 1"),
        (status = 403, description = "`forbidden`: the token is for another room"),
        (status = 404, description = "`room_not_found`: no such room"),
        (status = 410, description = "`revision_gone`: the operation after `from` is missing \
            from the room's log or damaged"),
        (status = 422, description = "`invalid_range`: `from` is past `to`, or `to` past the \
            room's current revision; `invalid_limit`: `limit` is 0 or over 1,000"),
        (status = 503, description = "`unavailable`: the database failed"),
    ),
    security(("bearer" = []))
)]
pub async fn room_history(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(room_id): Path<String>,
    query: QueryParams<HistoryQuery>,
) -> Result<Json<History>, ApiError> {
    let id = RoomId::parse(&room_id)?;
    caller.require(id, Role::Viewer)?;
    let query = read_query(query)?;
    let limit = match query.limit {
        None => DEFAULT_HISTORY_LIMIT,
        Some(limit) if (1..=MAX_HISTORY_LIMIT).contains(&limit) => limit,
        Some(limit) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_limit",
                format!("limit must be 1 to {MAX_HISTORY_LIMIT}, not {limit}"),
            ));
        }
    };
    // A page is read from the store, live room or not: every operation is stored before it
    // is acknowledged or broadcast, so the store has all that anyone has seen.
    let page = state
        .rooms
        .history(
            id,
            query.from.unwrap_or(0),
            query.to,
            usize::try_from(limit).unwrap_or(usize::MAX),
        )
        .await?;
    Ok(Json(page.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutocompleteRequest {
    #[schema(example = "pri")]
    code: String,
    /// Where the cursor is in `code`, in UTF-16 code units (as browser editors and LSP count).
    #[schema(minimum = 0, example = 3)]
    cursor_position: i64,
    /// A language id or alias (default `python`).
    #[schema(value_type = Option<crate::openapi::LanguageId>, example = "python")]
    language: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Suggestion {
    /// What to insert at the cursor; empty when there is nothing to suggest.
    #[schema(example = "nt")]
    suggestion: String,
    alternatives: Vec<String>,
}

/// `POST /autocomplete`: a suggestion for the code at the cursor.
#[utoipa::path(
    post,
    path = "/autocomplete",
    tag = "autocomplete",
    summary = "A suggestion for the code at the cursor",
    description = "Any valid token may ask. A failing completion engine never fails the \
                   request: the answer is then an empty suggestion.",
    request_body = AutocompleteRequest,
    responses(
        (status = 200, description = "The suggestion", body = Suggestion),
        (status = 422, description = "`invalid_cursor`: `cursorPosition` negative, past the end of \
            `code` or inside a surrogate pair; `invalid_language`: not a supported language"),
    ),
    security(("bearer" = []))
)]
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

#[derive(Serialize, ToSchema)]
pub struct LanguageView {
    #[schema(value_type = crate::openapi::LanguageId, example = "python")]
    id: &'static str,
    #[schema(example = "Python")]
    name: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Languages {
    languages: Vec<LanguageView>,
}

/// `GET /languages`: the languages a room can be in.
#[utoipa::path(
    get,
    path = "/languages",
    tag = "service",
    summary = "The languages a room can be in",
    responses(
        (status = 200, description = "Every language, by id and display name", body = Languages)
    )
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    /// A language id or alias.
    #[schema(value_type = crate::openapi::LanguageId, example = "rust")]
    language: String,
}

/// `PATCH /rooms/{roomId}`: changes a room's language; everyone in it is told.
#[utoipa::path(
    patch,
    path = "/rooms/{roomId}",
    tag = "rooms",
    summary = "Change a room's language",
    description = "Everyone in the room is told. Needs an editor's token or more for the room \
                   when authentication is on.",
    params(("roomId" = String, Path, format = "uuid", description = "The room's id, a UUID")),
    request_body = UpdateRoom,
    responses(
        (status = 200, description = "The room, in its new language", body = RoomView),
        (status = 400, description = "`invalid_room_id`: the id is not a UUID"),
        (status = 403, description = "`forbidden`: the token is for another room, or a viewer's"),
        (status = 404, description = "`room_not_found`: no such room"),
        (status = 422, description = "`invalid_language`: not a supported language"),
        (status = 503, description = "`unavailable`: the database failed, or the room is \
            reloading; try again"),
    ),
    security(("bearer" = []))
)]
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
#[utoipa::path(
    delete,
    path = "/rooms/{roomId}",
    tag = "rooms",
    summary = "Delete a room",
    description = "Everyone in the room is closed with 4404, and its code and history are \
                   deleted. Needs an owner's token for the room when authentication is on.",
    params(("roomId" = String, Path, format = "uuid", description = "The room's id, a UUID")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_room_id`: the id is not a UUID"),
        (status = 403, description = "`forbidden`: the token is for another room, or below an \
            owner's"),
        (status = 404, description = "`room_not_found`: no such room"),
        (status = 503, description = "`unavailable`: the database failed, or the room is \
            reloading; try again"),
    ),
    security(("bearer" = []))
)]
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

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareRequest {
    /// What the link lets its holder do: `viewer` or `editor`, never `owner`.
    #[schema(value_type = SharedRole)]
    role: String,
    /// The name everyone who opens the link is shown under (else the one they choose).
    #[schema(min_length = 1, max_length = 64, example = "Guest")]
    name: Option<String>,
    /// How long the token lasts (default a day), and never past its maker's own.
    // Signed, so that a negative one is `invalid_ttl` like any other out of range.
    #[schema(minimum = 1, maximum = 2_592_000, example = 3600)]
    ttl_secs: Option<i64>,
}

/// The roles a shared token may carry.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(
    dead_code,
    reason = "only documents the role fields, which stay strings"
)]
pub enum SharedRole {
    Viewer,
    Editor,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SharedToken {
    /// A JWT to send as `Authorization: Bearer` or in a WebSocket's `token` parameter.
    token: String,
    #[schema(format = DateTime)]
    expires_at: String,
    #[schema(format = "uuid")]
    room_id: String,
    #[schema(value_type = SharedRole)]
    role: &'static str,
}

/// `POST /rooms/{roomId}/tokens` (owners): a token for this room, as a viewer or an editor,
/// to share as a link. It never grants more than its maker holds: this room only, no owner,
/// and it ends when the maker's token does, if that is sooner.
#[utoipa::path(
    post,
    path = "/rooms/{roomId}/tokens",
    tag = "rooms",
    summary = "Mint a share link's token",
    description = "A viewer's or an editor's token for this room, to share as a link. It never \
                   grants more than its maker holds: this room only, never an owner's, and it \
                   ends when the maker's token does, if that is sooner. Needs an owner's token \
                   for the room; a server without authentication answers 404 `auth_disabled`.",
    params(("roomId" = String, Path, format = "uuid", description = "The room's id, a UUID")),
    request_body = ShareRequest,
    responses(
        (status = 201, description = "The token", body = SharedToken),
        (status = 400, description = "`invalid_room_id`: the id is not a UUID"),
        (status = 403, description = "`forbidden`: the token is for another room, or below an \
            owner's"),
        (status = 404, description = "`room_not_found`: no such room; `auth_disabled`: this server \
            does not use tokens (`DUET_AUTH_SECRET` is not set)"),
        (status = 422, description = "`invalid_role`: a role other than viewer or editor; \
            `invalid_ttl`: `ttlSecs` outside 1 to 2,592,000; `invalid_name`: a name empty or over \
            64 characters"),
        (status = 503, description = "`unavailable`: the database failed"),
    ),
    security(("bearer" = []))
)]
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use duet_app::ports::{RecordedSubmission, RepositoryError, RoomRepository};
    use duet_app::testing::{FixedClock, InMemoryRoomRepository, op};
    use duet_app::{Autocomplete, NewRoom, Rooms};
    use duet_domain::{
        CannedAutocompleter, ClientId, CommittedOperation, Room, RoomId, TextOperation,
    };
    use duet_live::Registry;
    use tokio::sync::Semaphore;
    use tower::ServiceExt;

    use crate::{
        REBUILD_WAIT, REBUILDS_AT_ONCE, REBUILDS_WAITING, Services, Settings, Wire, router,
    };

    /// The in-memory store, with every read of a range of the log held at a gate until the
    /// test opens it, and counted as it arrives.
    struct Gated {
        store: InMemoryRoomRepository,
        gate: Semaphore,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl RoomRepository for Gated {
        async fn insert(&self, room: &Room) -> Result<(), RepositoryError> {
            self.store.insert(room).await
        }
        async fn find(&self, id: RoomId) -> Result<Option<Room>, RepositoryError> {
            self.store.find(id).await
        }
        async fn save(&self, room: &Room) -> Result<(), RepositoryError> {
            self.store.save(room).await
        }
        async fn append(
            &self,
            room: RoomId,
            operations: &[CommittedOperation],
            snapshot: Option<Room>,
        ) -> Result<(), RepositoryError> {
            self.store.append(room, operations, snapshot).await
        }
        async fn operations_since(
            &self,
            room: RoomId,
            revision: u64,
        ) -> Result<Vec<CommittedOperation>, RepositoryError> {
            self.store.operations_since(room, revision).await
        }
        async fn operations_between(
            &self,
            room: RoomId,
            after: u64,
            up_to: u64,
            limit: usize,
            max_bytes: usize,
        ) -> Result<Vec<CommittedOperation>, RepositoryError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.gate
                .acquire()
                .await
                .expect("the gate stays open")
                .forget();
            self.store
                .operations_between(room, after, up_to, limit, max_bytes)
                .await
        }
        async fn initial_code(&self, room: RoomId) -> Result<Option<String>, RepositoryError> {
            self.store.initial_code(room).await
        }
        async fn find_operation(
            &self,
            room: RoomId,
            client: &ClientId,
            seq: u64,
        ) -> Result<Option<RecordedSubmission>, RepositoryError> {
            self.store.find_operation(room, client, seq).await
        }
        async fn confirm_stored(
            &self,
            room: RoomId,
            client: &ClientId,
            seq: u64,
        ) -> Result<Option<u64>, RepositoryError> {
            self.store.confirm_stored(room, client, seq).await
        }
        async fn latest_seq(
            &self,
            room: RoomId,
            client: &ClientId,
        ) -> Result<Option<u64>, RepositoryError> {
            self.store.latest_seq(room, client).await
        }
        async fn has_client(
            &self,
            room: RoomId,
            client: &ClientId,
        ) -> Result<bool, RepositoryError> {
            self.store.has_client(room, client).await
        }
        async fn quarantine(
            &self,
            room: RoomId,
            from: u64,
            reason: &str,
        ) -> Result<u64, RepositoryError> {
            self.store.quarantine(room, from, reason).await
        }
        async fn delete(&self, room: RoomId) -> Result<bool, RepositoryError> {
            self.store.delete(room).await
        }
    }

    async fn get(app: &Router, uri: String) -> StatusCode {
        let request = Request::get(uri).body(Body::empty()).expect("a request");
        app.clone()
            .oneshot(request)
            .await
            .expect("infallible")
            .status()
    }

    /// Lets every other task on this (single-threaded) runtime run until it waits.
    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    /// A server on the gated store with one room of three revisions.
    async fn gated_server() -> (Router, Arc<Gated>, RoomId) {
        let store = Arc::new(Gated {
            store: InMemoryRoomRepository::default(),
            gate: Semaphore::new(0),
            reads: AtomicUsize::new(0),
        });
        let rooms = Rooms::new(store.clone(), Arc::new(FixedClock::default()));
        let room = rooms.create(NewRoom::default()).await.expect("created");
        let mut live = rooms.open(room.id()).await.expect("opens");
        for (seq, length) in (1..=3).zip(0..) {
            let edit = TextOperation::new().retain(length).insert("x");
            rooms
                .commit(&mut live, vec![op("alice", seq, seq - 1, edit)])
                .await
                .expect("committed");
        }
        let health = Arc::new(InMemoryRoomRepository::default());
        let services = Services {
            live: Arc::new(Registry::new(rooms.clone(), Wire, 256)),
            rooms,
            autocomplete: Autocomplete::new(Arc::new(CannedAutocompleter)),
            health,
        };
        (router(services, Settings::default()).0, store, room.id())
    }

    /// The status, the error code and the `Retry-After` of an answer.
    async fn answer(app: &Router, uri: String) -> (StatusCode, String, Option<String>) {
        let request = Request::get(uri).body(Body::empty()).expect("a request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let retry_after = response
            .headers()
            .get(axum::http::header::RETRY_AFTER)
            .map(|value| value.to_str().expect("ASCII").to_owned());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (status, code, retry_after)
    }

    /// Sends `count` requests for the room's code at revision 1, each in a task of its own.
    fn ask_for_revision_1(
        app: &Router,
        id: RoomId,
        count: usize,
    ) -> Vec<tokio::task::JoinHandle<StatusCode>> {
        (0..count)
            .map(|_| {
                let app = app.clone();
                let uri = format!("/rooms/{id}?revision=1");
                tokio::spawn(async move { get(&app, uri).await })
            })
            .collect()
    }

    #[tokio::test]
    async fn old_revisions_are_rebuilt_one_at_a_time() {
        let (app, store, id) = gated_server().await;
        // Many people ask for old revisions at once: one rebuild reads the log, the rest wait.
        let asked = REBUILDS_AT_ONCE + 3;
        let requests = ask_for_revision_1(&app, id, asked);
        settle().await;
        assert_eq!(store.reads.load(Ordering::SeqCst), REBUILDS_AT_ONCE);
        // The current code is not a rebuild, nor is a revision not yet reached, nor an unknown
        // room: they are answered meanwhile.
        assert_eq!(get(&app, format!("/rooms/{id}")).await, StatusCode::OK);
        assert_eq!(
            get(&app, format!("/rooms/{id}?revision=3")).await,
            StatusCode::OK
        );
        assert_eq!(
            get(&app, format!("/rooms/{id}?revision=4")).await,
            StatusCode::NOT_FOUND
        );
        let unknown = RoomId::generate();
        assert_eq!(
            get(&app, format!("/rooms/{unknown}?revision=1")).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(store.reads.load(Ordering::SeqCst), REBUILDS_AT_ONCE);
        // Each rebuild that finishes lets the next one in, and every one is answered.
        store.gate.add_permits(asked);
        for request in requests {
            assert_eq!(request.await.expect("answered"), StatusCode::OK);
        }
        assert_eq!(store.reads.load(Ordering::SeqCst), asked);
    }

    #[tokio::test]
    async fn rebuilds_past_the_waiting_places_are_told_to_come_back() {
        let (app, store, id) = gated_server().await;
        let held = ask_for_revision_1(&app, id, REBUILDS_AT_ONCE + REBUILDS_WAITING);
        settle().await;
        // Every place is taken: the next request is refused at once, and reads nothing.
        let (status, code, retry_after) = answer(&app, format!("/rooms/{id}?revision=2")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(code, "busy");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(store.reads.load(Ordering::SeqCst), REBUILDS_AT_ONCE);
        // Those that waited are all answered, and then there is room again.
        store.gate.add_permits(held.len() + 1);
        for request in held {
            assert_eq!(request.await.expect("answered"), StatusCode::OK);
        }
        let (status, _, _) = answer(&app, format!("/rooms/{id}?revision=2")).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rebuild_that_waits_too_long_for_its_turn_is_told_to_come_back() {
        let (app, store, id) = gated_server().await;
        let running = ask_for_revision_1(&app, id, 1);
        settle().await;
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        // The rebuild ahead never finishes; this one gives up at the deadline, not before.
        let started = tokio::time::Instant::now();
        let (status, code, retry_after) = answer(&app, format!("/rooms/{id}?revision=2")).await;
        let waited = started.elapsed();
        assert!(
            waited >= REBUILD_WAIT && waited < REBUILD_WAIT * 2,
            "{waited:?}"
        );
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(code, "busy");
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        store.gate.add_permits(1);
        for request in running {
            assert_eq!(request.await.expect("answered"), StatusCode::OK);
        }
    }
}
