//! Duet's HTTP and WebSocket adapter on axum: the routes, the WebSocket transport, and the
//! `wire` module that turns the live rooms' events into frames and codes. Only this crate knows
//! axum, HTTP and JSON framing; the rules of a live room are in `duet-live`.
//!
//! [`serve`] runs the whole API on a listener until a shutdown future completes; [`router`]
//! builds the same routes for tests that call them in process.

pub mod auth;
mod error;
mod json;
mod limits;
mod openapi;
mod origin;
mod quota;
mod routes;
mod server;
mod web;
mod wire;
mod ws;

#[cfg(test)]
mod fuzz;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::routing::{get, post};
use duet_app::ports::HealthCheck;
use duet_app::{Autocomplete, Rooms};
use duet_live::Registry;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use auth::{AuthSecret, Authority};
pub use duet_protocol::SUBPROTOCOL;
pub use error::ApiError;
pub use wire::Wire;
pub use ws::MessageRate;

/// Which browser origins may call the API.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// Any origin (the default).
    #[default]
    Any,
    /// Only these, such as `https://editor.example.com`.
    List(Vec<String>),
}

/// How the HTTP and WebSocket edge behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The secret tokens are signed with; `None` leaves every room open to anyone.
    pub auth: Option<AuthSecret>,
    pub allowed_origins: AllowedOrigins,
    /// The largest HTTP request body accepted.
    pub max_body_bytes: usize,
    /// The largest WebSocket message accepted.
    pub max_frame_bytes: usize,
    /// How long open WebSockets get to close when the server stops.
    pub shutdown_grace: Duration,
    /// How often a quiet WebSocket is pinged; one silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// How fast one WebSocket may send messages, and how long it may stay over that rate.
    pub message_rate: MessageRate,
    /// How long connections and request heads may take, and how many connections there may be.
    pub connections: ConnectionLimits,
    /// How many rooms one client address may create a minute (all at once, at most); more are
    /// answered 429.
    pub rooms_per_minute: u32,
}

/// The limits that keep slow, idle or numerous clients from holding the server's connections
/// (each one a file descriptor and a task). README's configuration table lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a new connection has to send its first request head, and a kept-alive one to
    /// finish a head once its first byte arrived; past it the connection is closed unanswered.
    pub header_timeout: Duration,
    /// How long a kept-alive HTTP connection may wait for its next request.
    pub idle_timeout: Duration,
    /// How long a request body may take to arrive in full; past it the answer is 408.
    pub body_timeout: Duration,
    /// How long a WebSocket upgrade may take from its request to the 101 (the room is joined in
    /// between); past it the connection is dropped.
    pub handshake_timeout: Duration,
    /// How many connections (HTTP and WebSocket) may be open at once; more are answered 503.
    pub max_connections: usize,
    /// How many of those one client address may hold open; more are answered 429.
    pub max_connections_per_ip: usize,
    /// The longest request target (path and query) accepted; a longer one is answered 414.
    pub max_uri_bytes: usize,
    /// The most bytes of request line and headers accepted; more are answered 431.
    pub max_header_bytes: usize,
    /// The most header fields in a request; more are answered 431.
    pub max_headers: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auth: None,
            allowed_origins: AllowedOrigins::Any,
            max_body_bytes: 1024 * 1024,
            max_frame_bytes: 1024 * 1024,
            shutdown_grace: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            message_rate: MessageRate {
                per_second: 200,
                abuse_after: Duration::from_secs(10),
            },
            connections: ConnectionLimits::default(),
            rooms_per_minute: 30,
        }
    }
}

/// The use cases the edge calls.
#[derive(Clone)]
pub struct Services {
    pub rooms: Rooms,
    /// The live rooms, over the same use cases, with this adapter's [`Wire`] encoding.
    pub live: Arc<Registry<Wire>>,
    pub autocomplete: Autocomplete,
    pub health: Arc<dyn HealthCheck>,
}

/// What every handler can reach.
#[derive(Clone)]
struct AppState {
    rooms: Rooms,
    autocomplete: Autocomplete,
    health: Arc<dyn HealthCheck>,
    live: Arc<Registry<Wire>>,
    /// Checks and mints tokens; `None` when authentication is off.
    authority: Option<Arc<Authority>>,
    settings: Arc<Settings>,
    /// Turns true when the server starts shutting down.
    shutdown: watch::Receiver<bool>,
    /// Held by each open WebSocket, so shutdown can wait for all of them to close.
    connections: mpsc::Sender<()>,
    /// Turns at rebuilding a room's code at an old revision (see [`REBUILDS_AT_ONCE`]).
    rebuilds: Arc<routes::Rebuilds>,
}

/// How many rebuilds of a room's code at an old revision (`GET /rooms/{id}?revision=R`) run
/// at once; the others wait their turn. A rebuild replays the room's log from its nearest text
/// and costs one applied operation per revision replayed, so a few requests for old revisions
/// of a long-lived room could otherwise keep every core busy. One at a time leaves the rest of
/// the machine to the live rooms, whoever asks and however often.
pub const REBUILDS_AT_ONCE: usize = 1;

/// How many rebuild requests may wait for a turn; past that they are answered 503 `busy` with
/// `Retry-After` at once, so a caller asking again and again holds no more than this many
/// requests (and their connections' memory) in the server, and the wait stays short.
pub const REBUILDS_WAITING: usize = 32;

/// How long a rebuild request waits for its turn before it is answered 503 `busy`: a browser
/// scrubbing history is better told to try again than left hanging behind others.
pub const REBUILD_WAIT: Duration = Duration::from_secs(10);

/// Stops the WebSocket connections of a [`router`] and waits for them.
pub struct Shutdown {
    signal: watch::Sender<bool>,
    connections: mpsc::Receiver<()>,
}

impl Shutdown {
    /// Asks every open WebSocket to close (code 1001) and waits up to `grace` for them.
    pub async fn close_connections(mut self, grace: Duration) {
        self.signal.send_replace(true);
        // Every connection holds a sender; `recv` answers `None` once the last one is gone.
        let _ = tokio::time::timeout(grace, self.connections.recv()).await;
    }
}

/// The API's routes with their middleware, and the handle that closes their WebSockets.
pub fn router(services: Services, settings: Settings) -> (Router, Shutdown) {
    let (signal, shutdown) = watch::channel(false);
    let (connections, connections_closed) = mpsc::channel(1);
    let cors = cors(&settings.allowed_origins);
    let allowed_origins = Arc::new(settings.allowed_origins.clone());
    let max_body = settings.max_body_bytes;
    let body_limit = RequestBodyLimitLayer::new(max_body);
    let request_limits = limits::RequestLimits {
        max_uri_bytes: settings.connections.max_uri_bytes,
        body_timeout: settings.connections.body_timeout,
    };
    let authority = settings
        .auth
        .as_ref()
        .map(|secret| Arc::new(Authority::new(secret)));
    let room_creation = from_fn_with_state(
        Arc::new(quota::RatePerAddress::per_minute(settings.rooms_per_minute)),
        quota::limit_room_creation,
    );
    let state = AppState {
        authority: authority.clone(),
        live: services.live,
        rooms: services.rooms,
        autocomplete: services.autocomplete,
        health: services.health,
        settings: Arc::new(settings),
        shutdown,
        connections,
        rebuilds: Arc::new(routes::Rebuilds::new(
            REBUILDS_AT_ONCE,
            REBUILDS_WAITING,
            REBUILD_WAIT,
        )),
    };
    // Everything but what a load balancer, a status page or a client choosing a language asks
    // needs a token when authentication is on. Room creation is counted per address once the
    // caller is known, so refused tokens use up nothing.
    let protected = Router::new()
        .route(
            "/rooms",
            post(routes::create_room).route_layer(room_creation.clone()),
        )
        .route(
            "/rooms/create",
            post(routes::create_room_legacy).route_layer(room_creation),
        )
        // Every route taking a room id refuses a bad one the same way, before its handler.
        .route(
            "/rooms/{room_id}",
            get(routes::get_room)
                .patch(routes::update_room)
                .delete(routes::delete_room)
                .route_layer(from_fn(routes::require_room_id)),
        )
        .route(
            "/rooms/{room_id}/history",
            get(routes::room_history).route_layer(from_fn(routes::require_room_id)),
        )
        .route(
            "/rooms/{room_id}/tokens",
            post(routes::share_room).route_layer(from_fn(routes::require_room_id)),
        )
        .route("/autocomplete", post(routes::autocomplete))
        .route(
            "/ws/{room_id}",
            get(ws::connect).route_layer(from_fn(routes::require_room_id)),
        )
        .route_layer(from_fn_with_state(authority, auth::authenticate));
    let router = Router::new()
        .route("/", get(routes::status))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/languages", get(routes::languages))
        .merge(openapi::routes())
        .merge(web::routes())
        .merge(protected)
        .fallback(routes::not_found)
        .with_state(state)
        // axum's own default cap (2 MB) would stop bodies the configured limit allows.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(body_limit)
        .layer(from_fn_with_state(request_limits, limits::enforce))
        // Inside CORS, so that preflights are still answered (without the CORS headers that
        // would let a refused page go on).
        .layer(from_fn_with_state(allowed_origins, origin::enforce))
        .layer(cors)
        .layer(map_response(error::normalise_error_response))
        // The span names the path only: query strings carry resume tokens, which never go to
        // the logs.
        .layer(TraceLayer::new_for_http().make_span_with(
            |request: &axum::http::Request<axum::body::Body>| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path()
                )
            },
        ));
    let shutdown = Shutdown {
        signal,
        connections: connections_closed,
    };
    (router, shutdown)
}

fn cors(origins: &AllowedOrigins) -> CorsLayer {
    let allow_origin = match origins {
        AllowedOrigins::Any => AllowOrigin::any(),
        AllowedOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        ),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        // Mirrored rather than `*`: a wildcard does not cover `Authorization`.
        .allow_headers(AllowHeaders::mirror_request())
        // Pages may read when a refused request may be tried again.
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(3600))
}

/// Serves the API on `listener` until `shutdown` completes, then stops accepting, closes every
/// WebSocket with 1001 and returns once every connection is gone (or the grace period is over).
/// Connections are held to `settings.connections` (see `server`).
///
/// # Errors
/// None at present: a failed accept is logged and retried. The `Result` leaves room for
/// listeners that can fail for good.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = settings.shutdown_grace;
    let limits = settings.connections.clone();
    let (router, websockets) = router(services, settings);
    server::run(listener, router, limits, grace, websockets, shutdown).await
}
