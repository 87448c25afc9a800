//! The HTTP API described as an OpenAPI 3.1 document, generated from the handlers' own
//! `#[utoipa::path]` attributes and wire types, and served as `GET /openapi.json` and as a page
//! for people, `GET /docs`.
//!
//! Each handler documents the answers of its own; [`CommonAnswers`] adds those that come from
//! in front of every handler (the connection and request limits, the origin check, the token
//! check, reading a JSON body), so that every operation lists every status it can answer. Every
//! 4xx and 5xx answer has the error body, `{"error": {"code", "message"}}`, whose `code` is one
//! of [`crate::error::CODES`].

mod page;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use duet_domain::Language;
use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::Response;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, ObjectBuilder, Ref, RefOr, Required, Type};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorCode};
use crate::routes::{
    AutocompleteRequest, CreateRoomRequest, CreatedRoom, Health, History, HistoryOperation,
    LanguageView, Languages, RoomView, ShareRequest, SharedRole, SharedToken, Status, Suggestion,
    UpdateRoom,
};

/// Every route the router serves, as (method, path in OpenAPI's form). The document must
/// describe exactly these, and the router must serve each of them: the tests hold both to it.
#[cfg(test)]
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/languages"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("POST", "/rooms"),
    ("POST", "/rooms/create"),
    ("GET", "/rooms/{roomId}"),
    ("GET", "/rooms/{roomId}/history"),
    ("PATCH", "/rooms/{roomId}"),
    ("DELETE", "/rooms/{roomId}"),
    ("POST", "/rooms/{roomId}/tokens"),
    ("POST", "/autocomplete"),
    ("GET", "/ws/{roomId}"),
];

const DESCRIPTION: &str = "Duet is a self-hostable, real-time pair-programming server: people \
open a room, connect to it over a WebSocket and edit the same code together. JSON in and out, \
camelCase fields; a request body must be sent as `Content-Type: application/json`. Every error \
has the same shape, `{\"error\": {\"code\", \"message\"}}`, with a stable `code`. With \
authentication on (`DUET_AUTH_SECRET`), every route but `GET /`, `/healthz`, `/readyz`, \
`/languages`, `/openapi.json` and `/docs` needs a token (`Authorization: Bearer`). The \
WebSocket protocols, `duet.v1` and the plain mode, are described in docs/PROTOCOL.md.";

#[derive(OpenApi)]
#[openapi(
    info(title = "Duet", version = env!("CARGO_PKG_VERSION"), description = DESCRIPTION),
    paths(
        crate::routes::status,
        crate::routes::healthz,
        crate::routes::readyz,
        crate::routes::languages,
        openapi_json,
        docs,
        crate::routes::create_room,
        crate::routes::create_room_legacy,
        crate::routes::get_room,
        crate::routes::room_history,
        crate::routes::update_room,
        crate::routes::delete_room,
        crate::routes::share_room,
        crate::routes::autocomplete,
        crate::ws::connect,
    ),
    components(schemas(
        ErrorBody,
        ErrorCode,
        LanguageId,
        Status,
        Health,
        Languages,
        LanguageView,
        CreateRoomRequest,
        CreatedRoom,
        RoomView,
        History,
        HistoryOperation,
        OtOperation,
        UpdateRoom,
        ShareRequest,
        SharedRole,
        SharedToken,
        AutocompleteRequest,
        Suggestion,
    )),
    tags(
        (name = "service", description = "What the server is and whether it can serve"),
        (name = "rooms", description = "Creating, reading, changing, sharing and deleting rooms"),
        (name = "autocomplete", description = "Completions"),
        (name = "websocket", description = "Editing together (docs/PROTOCOL.md)"),
        (name = "documentation", description = "This description of the API"),
    ),
    modifiers(&CommonAnswers)
)]
struct ApiDoc;

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The schema of a language's id: one of the domain's languages. Requests also take aliases
/// (`py`, `js`, `c++`, …); answers always carry the id.
pub(crate) struct LanguageId;

impl utoipa::PartialSchema for LanguageId {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Language::ALL.iter().map(|language| language.as_str())))
            .description(Some(
                "A language's id; requests also take aliases such as `py`, `js`, `c++`, \
                 `golang` and `text`",
            ))
            .into()
    }
}

impl utoipa::ToSchema for LanguageId {}

/// The schema of an operation in ot.js's JSON form (`duet.v1`'s `ops`): an array whose items
/// are a positive integer (keep that many UTF-16 code units), a negative integer (delete that
/// many) or a string (insert it).
pub(crate) struct OtOperation;

impl utoipa::PartialSchema for OtOperation {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let retain_or_delete = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some(
                "Positive: keep that many UTF-16 code units; negative: delete that many",
            ));
        let insert = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("Insert this text"));
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(
                utoipa::openapi::schema::OneOfBuilder::new()
                    .item(retain_or_delete)
                    .item(insert),
            )
            .description(Some(
                "An operation in ot.js's JSON form, as in duet.v1's `op` message: applied in \
                 order from the start of the text, it must cover the whole text it applies to",
            ))
            .examples([serde_json::json!([3, "x", -1, 2])])
            .into()
    }
}

impl utoipa::ToSchema for OtOperation {}

/// Which operations an answer that comes from in front of the handlers applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applies {
    /// Every operation.
    Always,
    /// Those that read a JSON body.
    WithBody,
    /// Those that need a token when authentication is on.
    WithToken,
}

/// An answer given in front of the handlers, by the server, a middleware or a body extractor.
struct Common {
    status: u16,
    applies: Applies,
    /// The codes, each with when it is answered.
    description: &'static str,
}

const COMMON: &[Common] = &[
    Common {
        status: 400,
        applies: Applies::WithBody,
        description: "`malformed_json`: the body is not JSON",
    },
    Common {
        status: 400,
        applies: Applies::Always,
        description: "`malformed_request`: the request is not valid HTTP (its request line, a \
                      header, or a chunked body cannot be read); `bad_request`: any other \
                      request the server cannot read",
    },
    Common {
        status: 401,
        applies: Applies::WithToken,
        description: "`unauthorized`: authentication is on and the token is missing, forged, \
                      expired or malformed",
    },
    Common {
        status: 403,
        applies: Applies::Always,
        description: "`origin_not_allowed`: `DUET_CORS_ORIGINS` lists origins and the request \
                      comes from a web page of another origin",
    },
    Common {
        status: 405,
        applies: Applies::Always,
        description: "`method_not_allowed`: this path does not take that method",
    },
    Common {
        status: 408,
        applies: Applies::WithBody,
        description: "`request_timeout`: the body did not arrive within \
                      `DUET_BODY_TIMEOUT_SECS`",
    },
    Common {
        status: 413,
        applies: Applies::Always,
        description: "`payload_too_large`: the body is over `DUET_MAX_BODY_BYTES`",
    },
    Common {
        status: 414,
        applies: Applies::Always,
        description: "`uri_too_long`: the request target is over `DUET_MAX_URI_BYTES`",
    },
    Common {
        status: 415,
        applies: Applies::WithBody,
        description: "`unsupported_media_type`: a body not sent as `Content-Type: \
                      application/json` (an empty body needs no type)",
    },
    Common {
        status: 422,
        applies: Applies::WithBody,
        description: "`invalid_request`: the JSON does not have the expected fields or types",
    },
    Common {
        status: 429,
        applies: Applies::Always,
        description: "`too_many_connections_from_address`: the client's address holds \
                      `DUET_MAX_CONNECTIONS_PER_IP` connections open already",
    },
    Common {
        status: 431,
        applies: Applies::Always,
        description: "`headers_too_large`: the request head is over `DUET_MAX_HEADER_BYTES` or \
                      has more than `DUET_MAX_HEADERS` fields",
    },
    Common {
        status: 503,
        applies: Applies::Always,
        description: "`too_many_connections`: `DUET_MAX_CONNECTIONS` connections are open \
                      already",
    },
];

/// The operations whose body may be left out (an empty body), as (method, path). utoipa makes
/// a body optional only by making it nullable, and a `null` body is refused (422).
const OPTIONAL_BODIES: &[(&str, &str)] = &[("POST", "/rooms"), ("POST", "/rooms/create")];

/// Adds the bearer scheme, the answers every operation shares ([`COMMON`]), the error body to
/// every error answer, and the headers that come with some statuses; marks the bodies of
/// [`OPTIONAL_BODIES`] optional.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "A JWT signed with HS256 and `DUET_AUTH_SECRET`; claims `sub`, \
                             `name`, `room` (a room id or `*`), `role` (`viewer`, `editor`, \
                             `owner`), `exp`. Only needed when authentication is on.",
                        ))
                        .build(),
                ),
            );
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                ("GET", &mut item.get),
                ("POST", &mut item.post),
                ("PUT", &mut item.put),
                ("PATCH", &mut item.patch),
                ("DELETE", &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                add_common_answers(operation);
                if OPTIONAL_BODIES.contains(&(method, path.as_str()))
                    && let Some(body) = &mut operation.request_body
                {
                    body.required = Some(Required::False);
                }
            }
        }
    }
}

fn add_common_answers(operation: &mut Operation) {
    let reads_body = operation.request_body.is_some();
    let needs_token = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    for common in COMMON {
        let applies = match common.applies {
            Applies::Always => true,
            Applies::WithBody => reads_body,
            Applies::WithToken => needs_token,
        };
        if !applies {
            continue;
        }
        let answer = operation
            .responses
            .responses
            .entry(common.status.to_string())
            .or_insert_with(|| RefOr::T(Response::new("")));
        if let RefOr::T(response) = answer {
            if response.description.is_empty() {
                response.description = common.description.to_owned();
            } else {
                response.description = format!("{}; {}", response.description, common.description);
            }
        }
    }
    for (status, answer) in &mut operation.responses.responses {
        let RefOr::T(response) = answer else { continue };
        if status.starts_with('4') || status.starts_with('5') {
            response.content.insert(
                "application/json".to_owned(),
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
        }
        match status.as_str() {
            "401" => {
                response.headers.insert(
                    "WWW-Authenticate".to_owned(),
                    header(Type::String, "`Bearer`, as RFC 6750 asks"),
                );
            }
            // Only `busy` among the 503 answers says when to come back.
            "503" if response.description.contains("`busy`") => {
                response.headers.insert(
                    "Retry-After".to_owned(),
                    header(
                        Type::Integer,
                        "With `busy`: whole seconds until the client may try again",
                    ),
                );
            }
            "429" => {
                response.headers.insert(
                    "Retry-After".to_owned(),
                    header(
                        Type::Integer,
                        "Whole seconds until the client may try again",
                    ),
                );
            }
            _ => {}
        }
    }
}

fn header(kind: Type, description: &str) -> Header {
    let mut header = Header::new(Object::with_type(kind));
    header.description = Some(description.to_owned());
    header
}

/// The document and the page, made once when the router is built.
struct Published {
    json: Bytes,
    html: Bytes,
}

/// `GET /openapi.json` and `GET /docs`, public: a client or a person needs no token to learn
/// how to ask for one.
pub fn routes<S>() -> Router<S> {
    let document = document();
    // Serialised from the document itself, its fields keep OpenAPI's usual order (`openapi`
    // first); a `Value` sorts them.
    let json = serde_json::to_string(&document).unwrap_or_default();
    let value = serde_json::to_value(&document).unwrap_or_default();
    let published = Published {
        json: Bytes::from(json),
        html: Bytes::from(page::render(&value)),
    };
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .with_state(Arc::new(published))
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "documentation",
    summary = "This API as an OpenAPI 3.1 document",
    responses(
        (status = 200, description = "The document", content_type = "application/json", body = Object)
    )
)]
async fn openapi_json(State(published): State<Arc<Published>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], published.json.clone())
}

/// `GET /docs`: the same document as a page for people.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "documentation",
    summary = "This API as a page for people",
    description = "Every operation with its parameters, body and answers, and every schema, \
                   from the same document as `/openapi.json`. Self-contained: it loads nothing \
                   else.",
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
async fn docs(State(published): State<Arc<Published>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        published.html.clone(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use duet_app::testing::{FixedClock, InMemoryRoomRepository};
    use duet_app::{Autocomplete, Rooms};
    use duet_domain::{CannedAutocompleter, RoomId};
    use duet_live::Registry;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::{AuthSecret, Services, Settings, Wire, router};

    fn app(settings: Settings) -> Router {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = Rooms::new(repository.clone(), Arc::new(FixedClock::default()));
        let services = Services {
            live: Arc::new(Registry::new(rooms.clone(), Wire, 256)),
            rooms,
            autocomplete: Autocomplete::new(Arc::new(CannedAutocompleter)),
            health: repository,
        };
        router(services, settings).0
    }

    /// The status, content type and body of `method path` (with a fresh room id for
    /// `{roomId}`), without a token.
    async fn call(app: &Router, method: &str, path: &str) -> (StatusCode, String, Vec<u8>) {
        let uri = path.replace("{roomId}", &RoomId::generate().to_string());
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("a request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = to_bytes(response.into_body(), 1 << 22)
            .await
            .expect("a body");
        (status, content_type, body.to_vec())
    }

    async fn served_document() -> Value {
        let (status, content_type, body) =
            call(&app(Settings::default()), "GET", "/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        serde_json::from_slice(&body).expect("the document is JSON")
    }

    /// Every (method, path) the document describes, with whether it needs a token.
    fn operations(document: &Value) -> BTreeSet<(String, String, bool)> {
        let mut operations = BTreeSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let needs_token = operation["security"]
                    .as_array()
                    .is_some_and(|requirements| !requirements.is_empty());
                operations.insert((method.to_uppercase(), path.clone(), needs_token));
            }
        }
        operations
    }

    #[tokio::test]
    async fn the_document_is_openapi_3_1_and_describes_exactly_the_routes() {
        let document = served_document().await;
        let version = document["openapi"].as_str().expect("a version");
        assert!(version.starts_with("3.1."), "{version}");
        assert_eq!(document["info"]["title"], "Duet");
        assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
        let described: BTreeSet<(String, String)> = operations(&document)
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect();
        let routes: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
            .collect();
        assert_eq!(described, routes);
    }

    /// A path with its parameters' names left out: `/rooms/{}`.
    fn shape(path: &str) -> String {
        let mut shaped = String::new();
        let mut in_parameter = false;
        for character in path.chars() {
            match character {
                '{' => {
                    in_parameter = true;
                    shaped.push('{');
                }
                '}' => {
                    in_parameter = false;
                    shaped.push('}');
                }
                _ if in_parameter => {}
                other => shaped.push(other),
            }
        }
        shaped
    }

    #[tokio::test]
    async fn the_router_serves_every_route_in_the_list_and_no_other() {
        let app = app(Settings::default());
        for (method, path) in ROUTES {
            let (status, _, body) = call(&app, method, path).await;
            let unknown = status == StatusCode::NOT_FOUND
                && serde_json::from_slice::<Value>(&body)
                    .is_ok_and(|body| body["error"]["code"] == "not_found");
            assert!(
                !unknown && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {status}"
            );
        }
        // The routes are declared in these files; each one declared is in the list.
        let listed: BTreeSet<String> = ROUTES.iter().map(|(_, path)| shape(path)).collect();
        for source in [include_str!("lib.rs"), include_str!("openapi.rs")] {
            for declared in source.split(".route(\"").skip(1) {
                let path = declared.split('"').next().unwrap_or_default();
                assert!(listed.contains(&shape(path)), "{path} is not in ROUTES");
            }
        }
    }

    #[tokio::test]
    async fn exactly_the_operations_that_say_they_need_a_token_refuse_a_request_without_one() {
        let secret = AuthSecret::new([7; 32]).expect("long enough");
        let app = app(Settings {
            auth: Some(secret),
            ..Settings::default()
        });
        for (method, path, needs_token) in operations(&served_document().await) {
            let (status, _, _) = call(&app, &method, &path).await;
            assert_eq!(
                status == StatusCode::UNAUTHORIZED,
                needs_token,
                "{method} {path}: {status}"
            );
        }
    }

    #[tokio::test]
    async fn every_error_code_in_the_readme_is_in_the_document_and_no_other() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        // The rows of the table headed `| code | status | when |`; a row may name several codes.
        let table = readme
            .split("| code | status | when |")
            .nth(1)
            .expect("the error table");
        let mut documented = BTreeSet::new();
        for row in table
            .lines()
            .skip(2)
            .take_while(|line| line.starts_with('|'))
        {
            let codes = row.split('|').nth(1).unwrap_or_default();
            for code in codes.split(',') {
                documented.insert(code.trim().trim_matches('`').to_owned());
            }
        }
        let document = served_document().await;
        let listed: BTreeSet<String> = document["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .expect("the codes")
            .iter()
            .filter_map(|code| code.as_str().map(str::to_owned))
            .collect();
        assert!(documented.len() > 20, "{documented:?}");
        assert_eq!(documented, listed);
    }

    #[tokio::test]
    async fn a_busy_answer_documents_when_to_come_back_and_a_failed_database_does_not() {
        let document = served_document().await;
        let old_code = &document["paths"]["/rooms/{roomId}"]["get"]["responses"]["503"];
        assert!(
            old_code["description"]
                .as_str()
                .is_some_and(|text| text.contains("`busy`")),
            "{old_code}"
        );
        assert!(old_code["headers"]["Retry-After"].is_object(), "{old_code}");
        let history = &document["paths"]["/rooms/{roomId}/history"]["get"]["responses"]["503"];
        assert!(history.is_object(), "{history}");
        assert!(history["headers"]["Retry-After"].is_null(), "{history}");
    }

    #[tokio::test]
    async fn every_error_answer_has_the_error_body() {
        let document = served_document().await;
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                for (status, response) in operation["responses"].as_object().expect("answers") {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn the_docs_page_is_html_naming_every_path() {
        let (status, content_type, body) = call(&app(Settings::default()), "GET", "/docs").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let page = String::from_utf8(body).expect("UTF-8");
        assert!(page.starts_with("<!doctype html>"));
        for (_, path) in ROUTES {
            assert!(page.contains(&format!("<code>{path}</code>")), "{path}");
        }
        // Nothing is loaded from elsewhere.
        assert!(!page.contains("<script"), "a script");
        assert!(!page.contains("src="), "a resource");
        assert!(!page.contains("<link"), "a stylesheet");
    }
}
