//! Reading JSON request bodies with errors in the common shape.
//!
//! Unlike axum's `Json`, this does not insist on a `Content-Type: application/json` header: the
//! prototype's clients did not always send one, and a body that parses is accepted either way.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body; an empty body reads as `T::default()` when `T` allows it (see
/// [`OptionalJson`]).
pub struct JsonBody<T>(pub T);

/// A JSON body that may be absent: an empty body gives `None`.
pub struct OptionalJson<T>(pub Option<T>);

async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if crate::limits::timed_out(&rejection) {
                ApiError::for_status(StatusCode::REQUEST_TIMEOUT)
            } else {
                ApiError::for_status(rejection.status())
            }
        })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        if error.is_data() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("the request body does not have the expected fields: {error}"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {error}"),
            )
        }
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(request, state).await?;
        parse(&bytes).map(Self)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        parse(&bytes).map(|value| Self(Some(value)))
    }
}
