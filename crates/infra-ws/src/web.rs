//! The web app, served by the server itself: the files Vite built into `web/app/dist` are
//! embedded in the binary (rust-embed; read from disk in debug builds), so running the server
//! needs no Node.js.
//!
//! - `GET /` answers the app's page to a browser (an `Accept` naming `text/html`) and the JSON
//!   status to everyone else (curl and the prototype's clients send `*/*`), with
//!   `Vary: Accept`.
//! - `GET /r/{roomId}` is the app's page too: the app reads the room from its address.
//! - `GET /assets/{file}`: the built scripts and styles. Their names carry a hash of their
//!   content, so they are cached for a year (`immutable`); the page itself is revalidated
//!   every time (`no-cache` with an `ETag`), so a new build reaches browsers at once.
//!
//! Text files are gzipped when the client accepts it, once per file for the life of the
//! process (they never change), since the same few files are asked for again and again.
//! The page is sent with headers that keep it safe to open from a link: a content security
//! policy allowing only this origin (and its WebSocket), no referrer (share links carry tokens
//! in their query), and no framing.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "../../web/app/dist"]
struct Built;

/// The page every app route answers.
const INDEX: &str = "index.html";
/// Smaller files are not worth compressing.
const COMPRESS_FROM: usize = 1024;
/// How long a hashed asset may be cached: a year, the most browsers honour.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page's policy: scripts, styles and connections from this origin only (CodeMirror sets
/// styles inline, so those are allowed), images from here or inline, nothing framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The app's routes, public whatever the authentication: the page asks for what it shows
/// with the user's token.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/r/{room_id}", get(page))
        .route("/assets/{*file}", get(asset))
}

/// Whether the request comes from a browser asking for a page (`text/html`, not refused with
/// `q=0`).
pub fn wants_html(headers: &HeaderMap) -> bool {
    accepts(headers.get(header::ACCEPT), |media| {
        media.eq_ignore_ascii_case("text/html")
    })
}

/// Whether the list `value` (an `Accept` or `Accept-Encoding`) names an entry `wanted` picks
/// without refusing it (`q=0`).
fn accepts(value: Option<&HeaderValue>, wanted: impl Fn(&str) -> bool) -> bool {
    value
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(',').any(|entry| {
                let mut parts = entry.split(';');
                let name = parts.next().unwrap_or_default().trim();
                wanted(name) && !parts.any(refuses)
            })
        })
}

/// Whether a parameter of a list entry is a weight of zero (`q=0`, `Q=0.000`).
fn refuses(parameter: &str) -> bool {
    parameter.split_once('=').is_some_and(|(name, weight)| {
        name.trim().eq_ignore_ascii_case("q")
            && weight
                .trim()
                .parse::<f32>()
                .is_ok_and(|weight| weight == 0.0)
    })
}

/// Whether `If-None-Match` names `etag` (compared weakly, as the header is) or is `*`.
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|tags| tags.as_bytes().split(|byte| *byte == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == etag.as_bytes())
}

/// The app's page.
pub async fn page(headers: HeaderMap) -> Response {
    let mut response = serve(INDEX, &headers, "no-cache");
    let security = response.headers_mut();
    security.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    security.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    security.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A built asset.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    // Names are flat and hashed. Debug builds read them from disk, where `..` would reach
    // other built files (the page, with this year-long cache): never a dot segment.
    if file
        .split(['/', '\\'])
        .any(|segment| segment == ".." || segment == ".")
    {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file").into_response();
    }
    serve(&format!("assets/{file}"), &headers, IMMUTABLE)
}

/// A built file with its type, validator, caching and (when accepted) compression.
fn serve(path: &str, headers: &HeaderMap, cache_control: &'static str) -> Response {
    let Some(file) = Built::get(path) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            if path == INDEX {
                "the web app is not built into this server: run `make web`"
            } else {
                "no such file"
            },
        )
        .into_response();
    };
    let mime = file.metadata.mimetype();
    let gzipped = accepts_gzip(headers)
        .then(|| compressed(path, &file.data, mime))
        .flatten();
    // Each encoding is its own representation, with its own validator.
    let hash = hex(&file.metadata.sha256_hash()[..16]);
    let etag = if gzipped.is_some() {
        format!("\"{hash}-gzip\"")
    } else {
        format!("\"{hash}\"")
    };
    let mut response = if matches(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = match gzipped {
            Some(bytes) => {
                let mut response = Body::from(bytes).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                response
            }
            None => Body::from(file.data.into_owned()).into_response(),
        };
        if let Ok(mime) = HeaderValue::from_str(&content_type(mime)) {
            response.headers_mut().insert(header::CONTENT_TYPE, mime);
        }
        response
    };
    let answer = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        answer.insert(header::ETAG, etag);
    }
    answer.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    answer.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    answer.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Text types say they are UTF-8.
fn content_type(mime: &str) -> String {
    if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    accepts(headers.get(header::ACCEPT_ENCODING), |coding| {
        coding.eq_ignore_ascii_case("gzip")
    })
}

/// `data` gzipped, computed once per file; `None` for files not worth it.
fn compressed(path: &str, data: &[u8], mime: &str) -> Option<Bytes> {
    static CACHE: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    let textual = mime.starts_with("text/")
        || mime.ends_with("javascript")
        || mime.ends_with("json")
        || mime.ends_with("svg+xml");
    if !textual || data.len() < COMPRESS_FROM {
        return None;
    }
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(bytes) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(path)
    {
        return Some(bytes.clone());
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).ok()?;
    let bytes = Bytes::from(encoder.finish().ok()?);
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(path.to_owned(), bytes.clone());
    Some(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).expect("a value")))
            .collect()
    }

    #[test]
    fn only_browsers_asking_for_a_page_get_one() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(&headers(&[(header::ACCEPT, browser)])));
        for api in ["*/*", "application/json", "application/json, text/plain"] {
            assert!(!wants_html(&headers(&[(header::ACCEPT, api)])), "{api}");
        }
        assert!(!wants_html(&HeaderMap::new()));
        for refused in ["text/html;q=0", "text/html; Q=0.0, application/json"] {
            assert!(
                !wants_html(&headers(&[(header::ACCEPT, refused)])),
                "{refused}"
            );
        }
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "br;q=1, GZIP;q=0.5"
        )])));
        assert!(!accepts_gzip(&headers(&[(
            header::ACCEPT_ENCODING,
            "gzip;q=0"
        )])));
        for refused in ["gzip;Q=0", "gzip; q=0.000", "br, gzip ; q = 0"] {
            assert!(
                !accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, refused)])),
                "{refused}"
            );
        }
        assert!(!accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, "br")])));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn compressed_text_reads_back_and_small_or_binary_files_are_left_alone() {
        use std::io::Read;
        let text = "let x = 1;\n".repeat(500);
        let packed = compressed("test/a.js", text.as_bytes(), "text/javascript").expect("packed");
        assert!(packed.len() < text.len() / 10);
        let mut unpacked = String::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_string(&mut unpacked)
            .expect("gzip");
        assert_eq!(unpacked, text);
        assert!(compressed("test/b.js", b"tiny", "text/javascript").is_none());
        assert!(compressed("test/c.png", &[0; 4096], "image/png").is_none());
    }

    #[test]
    fn if_none_match_is_compared_weakly_and_star_matches_anything() {
        let tag = "\"abc\"";
        for sent in ["\"abc\"", "W/\"abc\"", "\"x\", W/\"abc\"", "*"] {
            assert!(
                matches(&headers(&[(header::IF_NONE_MATCH, sent)]), tag),
                "{sent}"
            );
        }
        for sent in ["\"abcd\"", "\"abc-gzip\"", "abc"] {
            assert!(
                !matches(&headers(&[(header::IF_NONE_MATCH, sent)]), tag),
                "{sent}"
            );
        }
        assert!(!matches(&HeaderMap::new(), tag));
    }

    #[tokio::test]
    async fn an_asset_path_never_leaves_the_assets() {
        let script = Built::iter()
            .find(|path| path.starts_with("assets/"))
            .expect("the app is built");
        let name = script.trim_start_matches("assets/").to_owned();
        let found = asset(Path(name.clone()), HeaderMap::new()).await;
        assert_eq!(found.status(), StatusCode::OK);
        for sneaky in [
            "../index.html".to_owned(),
            "./../index.html".to_owned(),
            format!("./{name}"),
            "..\\index.html".to_owned(),
        ] {
            let refused = asset(Path(sneaky.clone()), HeaderMap::new()).await;
            assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{sneaky}");
        }
    }

    #[test]
    fn each_encoding_has_its_own_etag() {
        // A built script: large enough to be compressed.
        let script = Built::iter()
            .find(|path| path.ends_with(".js"))
            .expect("the app is built");
        let get = |pairs: &[(header::HeaderName, &str)]| serve(&script, &headers(pairs), IMMUTABLE);
        let etag = |response: &Response| {
            response
                .headers()
                .get(header::ETAG)
                .and_then(|tag| tag.to_str().ok())
                .expect("an etag")
                .to_owned()
        };
        let plain = get(&[]);
        let gzipped = get(&[(header::ACCEPT_ENCODING, "gzip")]);
        assert_eq!(
            gzipped.headers().get(header::CONTENT_ENCODING),
            Some(&HeaderValue::from_static("gzip"))
        );
        assert_ne!(etag(&plain), etag(&gzipped));
        // Each validator revalidates its own encoding, and only that one.
        for (response, encoding) in [(&plain, "identity"), (&gzipped, "gzip")] {
            let same = get(&[
                (header::ACCEPT_ENCODING, encoding),
                (header::IF_NONE_MATCH, &etag(response)),
            ]);
            assert_eq!(same.status(), StatusCode::NOT_MODIFIED, "{encoding}");
        }
        let crossed = get(&[
            (header::ACCEPT_ENCODING, "gzip"),
            (header::IF_NONE_MATCH, &etag(&plain)),
        ]);
        assert_eq!(crossed.status(), StatusCode::OK);
        assert_eq!(etag(&crossed), etag(&gzipped));
    }
}
