//! Reading JSON request bodies with errors in the common shape.
//!
//! A body must be sent as `Content-Type: application/json` (parameters such as `charset` allowed);
//! anything else is answered 415 `unsupported_media_type`. A web page can post
//! `text/plain` or a form to any server without asking first, but `application/json` makes the
//! browser ask (a CORS preflight), so no page can post to the API unless it is allowed. An empty
//! body needs no type: `POST /rooms/create` with nothing, as the prototype's clients send it,
//! still creates a room.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::ApiError;

/// A JSON request body; an empty body reads as `T::default()` when `T` allows it (see
/// [`OptionalJson`]).
pub struct JsonBody<T>(pub T);

/// A JSON body that may be absent: an empty body gives `None`.
pub struct OptionalJson<T>(pub Option<T>);

/// Whether the request says its body is JSON.
fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    let json = is_json(&request);
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if crate::limits::timed_out(&rejection) {
                ApiError::for_status(StatusCode::REQUEST_TIMEOUT)
            } else {
                ApiError::for_status(rejection.status())
            }
        })?;
    if !json && !bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the request body as Content-Type: application/json",
        ));
    }
    Ok(bytes)
}

/// Reads a body that must be a JSON object. serde reads a struct from an array of its fields'
/// values too (`[null, null]` would create a room), so anything but an object is refused before
/// it is read into `T`.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: &RawValue = serde_json::from_slice(bytes).map_err(|error| refusal(&error))?;
    if !value.get().starts_with('{') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "the request body does not have the expected fields: it must be a JSON object",
        ));
    }
    serde_json::from_str(value.get()).map_err(|error| refusal(&error))
}

fn refusal(error: &serde_json::Error) -> ApiError {
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Fields {
        language: Option<String>,
        code: Option<String>,
    }

    #[test]
    fn a_body_is_an_object_with_the_expected_fields_or_refused() {
        let refused = |body: &str| {
            parse::<Fields>(body.as_bytes())
                .err()
                .map(|error| error.code())
        };
        assert_eq!(
            parse::<Fields>(br#" {"language": "rust"} "#).ok(),
            Some(Fields {
                language: Some("rust".into()),
                code: None
            })
        );
        // serde alone would read these as the struct's fields, in order.
        assert_eq!(refused("[null, null]"), Some("invalid_request"));
        assert_eq!(
            refused(r#"["rust", "fn main() {}"]"#),
            Some("invalid_request")
        );
        assert_eq!(refused("null"), Some("invalid_request"));
        assert_eq!(refused("42"), Some("invalid_request"));
        assert_eq!(refused(r#"{"language": 5}"#), Some("invalid_request"));
        assert_eq!(refused("[1,"), Some("malformed_json"));
        assert_eq!(refused(r#"{"language": "rust""#), Some("malformed_json"));
        assert_eq!(refused("{} {}"), Some("malformed_json"));
    }
}
