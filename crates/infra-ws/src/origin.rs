//! Which web pages may use the API. Browsers send an `Origin` header with cross-origin requests
//! and with every WebSocket upgrade, and CORS only stops a page from *reading* an answer: a
//! POST or an upgrade still reaches the server. So when `DUET_CORS_ORIGINS` lists origins, a
//! request whose `Origin` is neither listed nor the server's own is refused before any handler
//! runs (403 `origin_not_allowed`). Requests without an `Origin` (curl, the prototype's Python
//! clients, native programs) are not from a web page and pass; with the default (any origin),
//! nothing is checked.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AllowedOrigins;
use crate::error::ApiError;

/// Refuses a request from a web page whose origin is not allowed.
pub async fn enforce(
    State(allowed): State<Arc<AllowedOrigins>>,
    request: Request,
    next: Next,
) -> Response {
    if let AllowedOrigins::List(list) = &*allowed
        && !origin_allowed(list, request.headers())
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "requests from this web page's origin are not allowed (DUET_CORS_ORIGINS)",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether the request's `Origin`, if any, is listed or is the server's own (a page the server
/// served itself, whose origin's host is the `Host` it was asked for).
fn origin_allowed(list: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if list.iter().any(|allowed| allowed == origin) {
        return true;
    }
    let own_host = headers.get(HOST).and_then(|host| host.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, own_host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn only_listed_origins_the_servers_own_and_requests_from_no_page_pass() {
        let list = ["https://editor.example".to_owned()];
        let cases = [
            (None, true),
            (Some("https://editor.example"), true),
            (Some("https://duet.example:8000"), true),
            (Some("http://DUET.example:8000"), true),
            (Some("https://evil.example"), false),
            (Some("https://editor.example.evil.example"), false),
            (Some("https://duet.example:8001"), false),
            (Some("null"), false),
        ];
        for (origin, expected) in cases {
            assert_eq!(
                origin_allowed(&list, &headers(origin, "duet.example:8000")),
                expected,
                "{origin:?}"
            );
        }
    }
}
