//! The one error type of the HTTP edge: a status, a stable code and a message, answered as
//! `{"error": {"code": "...", "message": "..."}}`. Causes that are the server's own (a failing
//! database) are logged here once and never shown to the client.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use duet_app::{
    AutocompleteRequestError, CreateRoomError, GetRoomError, HistoryError, RoomAtError,
};
use duet_domain::{PositionError, RoomIdError};
use duet_live::JoinError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every code an error answer can carry; README's table says when each is answered. The OpenAPI
/// document lists them as the values of `error.code`.
pub const CODES: &[&str] = &[
    "malformed_request",
    "bad_request",
    "malformed_json",
    "unsupported_media_type",
    "origin_not_allowed",
    "invalid_request",
    "invalid_room_id",
    "invalid_query",
    "invalid_client_id",
    "room_not_found",
    "revision_not_found",
    "revision_gone",
    "invalid_range",
    "invalid_limit",
    "invalid_language",
    "invalid_code",
    "room_too_large",
    "unauthorized",
    "forbidden",
    "client_id_taken",
    "room_full",
    "auth_disabled",
    "invalid_role",
    "invalid_ttl",
    "invalid_name",
    "invalid_cursor",
    "payload_too_large",
    "not_found",
    "method_not_allowed",
    "request_timeout",
    "uri_too_long",
    "headers_too_large",
    "upgrade_required",
    "unavailable",
    "too_many_connections",
    "too_many_connections_from_address",
    "rate_limited",
    "busy",
    "internal",
];

/// An error answered to an HTTP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds for a `Retry-After` header, when the client may try again later.
    retry_after: Option<u64>,
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    /// Stable, for programs to act on.
    #[schema(value_type = ErrorCode)]
    code: &'a str,
    /// For people; it may change.
    message: &'a str,
}

/// The schema of `error.code`: a string, one of [`CODES`].
pub(crate) struct ErrorCode;

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(CODES.iter().copied()))
            .into()
    }
}

impl ToSchema for ErrorCode {}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        // A code missing from the list would be missing from the OpenAPI document: the tests,
        // which answer every code, stop on it.
        debug_assert!(CODES.contains(&code), "{code} is not in error::CODES");
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Its stable code, one of [`CODES`].
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The same error, telling the client to try again in `seconds` (at least 1).
    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// A failure of the server's own, logged with its cause chain; the client learns only
    /// that the service is unavailable.
    pub fn unavailable(error: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %error_chain(error), "request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service cannot answer right now; try again later",
        )
    }

    /// The generic error for a status answered by the framework (unknown route, wrong method,
    /// missing upgrade) or by hyper (a request it cannot read), so that those bodies have the
    /// same shape too.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => ("malformed_request", "the request is not valid HTTP"),
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method_not_allowed", "this route does not take that method")
            }
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is larger than the server accepts",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "the request body has an unsupported type",
            ),
            StatusCode::REQUEST_TIMEOUT => (
                "request_timeout",
                "the request did not arrive in full in time",
            ),
            StatusCode::URI_TOO_LONG => (
                "uri_too_long",
                "the request target is longer than the server accepts",
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "headers_too_large",
                "the request head has more or larger header fields than the server accepts",
            ),
            StatusCode::UPGRADE_REQUIRED => (
                "upgrade_required",
                "this route speaks WebSocket only: send an upgrade request",
            ),
            status if status.is_server_error() => {
                ("internal", "the server failed to answer this request")
            }
            _ => ("bad_request", "the request is not valid"),
        };
        Self::new(status, code, message)
    }
}

impl ApiError {
    /// This error as a whole HTTP/1.1 response that closes the connection, for the answers
    /// written straight to a socket rather than through the router.
    pub(crate) fn to_http1(&self) -> Vec<u8> {
        let body = serde_json::to_vec(&ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        })
        .unwrap_or_default();
        let retry_after = self
            .retry_after
            .map(|seconds| format!("retry-after: {seconds}\r\n"))
            .unwrap_or_default();
        let mut response = format!(
            "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             {retry_after}connection: close\r\n\r\n",
            self.status,
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        response
    }
}

pub use duet_app::error_chain;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Rewrites an error response that is not already JSON (one the framework or a middleware made)
/// into the common error shape, keeping its status.
pub async fn normalise_error_response(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value == HeaderValue::from_static("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let replacement = ApiError::for_status(status).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let (_, body) = replacement.into_parts();
    Response::from_parts(parts, Body::new(body))
}

impl From<RoomIdError> for ApiError {
    fn from(error: RoomIdError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_room_id",
            error.to_string(),
        )
    }
}

impl From<GetRoomError> for ApiError {
    fn from(error: GetRoomError) -> Self {
        match error {
            GetRoomError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "room_not_found", error.to_string())
            }
            GetRoomError::Unavailable(_) => Self::unavailable(&error),
        }
    }
}

impl From<HistoryError> for ApiError {
    fn from(error: HistoryError) -> Self {
        match error {
            HistoryError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "room_not_found", error.to_string())
            }
            HistoryError::InvalidRange { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_range",
                error.to_string(),
            ),
            HistoryError::Gone { .. } => {
                Self::new(StatusCode::GONE, "revision_gone", error.to_string())
            }
            HistoryError::Unavailable(_) => Self::unavailable(&error),
        }
    }
}

impl From<RoomAtError> for ApiError {
    fn from(error: RoomAtError) -> Self {
        match error {
            RoomAtError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "room_not_found", error.to_string())
            }
            RoomAtError::RevisionNotFound { .. } => Self::new(
                StatusCode::NOT_FOUND,
                "revision_not_found",
                error.to_string(),
            ),
            RoomAtError::Gone { .. } => {
                Self::new(StatusCode::GONE, "revision_gone", error.to_string())
            }
            RoomAtError::Unavailable(_) => Self::unavailable(&error),
        }
    }
}

impl From<CreateRoomError> for ApiError {
    fn from(error: CreateRoomError) -> Self {
        match error {
            CreateRoomError::InvalidLanguage(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_language",
                error.to_string(),
            ),
            CreateRoomError::InvalidCode(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_code",
                error.to_string(),
            ),
            CreateRoomError::TooLarge { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "room_too_large",
                error.to_string(),
            ),
            CreateRoomError::Unavailable(_) => Self::unavailable(&error),
        }
    }
}

impl From<JoinError> for ApiError {
    fn from(error: JoinError) -> Self {
        match error {
            JoinError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "room_not_found", error.to_string())
            }
            JoinError::RoomFull { .. } => {
                Self::new(StatusCode::FORBIDDEN, "room_full", error.to_string())
            }
            JoinError::ClientTaken(_) => {
                Self::new(StatusCode::FORBIDDEN, "client_id_taken", error.to_string())
            }
            JoinError::Unavailable(_) | JoinError::Stopped => Self::unavailable(&error),
        }
    }
}

impl From<AutocompleteRequestError> for ApiError {
    fn from(error: AutocompleteRequestError) -> Self {
        let code = match error {
            AutocompleteRequestError::InvalidCursor(
                PositionError::PastEnd { .. } | PositionError::SplitsSurrogatePair { .. },
            ) => "invalid_cursor",
            AutocompleteRequestError::InvalidLanguage(_) => "invalid_language",
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, error.to_string())
    }
}
