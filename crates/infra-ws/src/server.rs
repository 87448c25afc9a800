//! The listening side of the edge: accepts TCP connections, caps how many are open, and runs
//! HTTP/1 on each with hyper under the connection limits, so that a client that is slow, idle
//! or one of too many cannot hold a connection (a file descriptor and a task) for long.
//!
//! - **Caps.** Every connection holds a permit of one semaphore for as long as it is open, a
//!   WebSocket included: the permit lives in the connection's stream, which hyper hands to the
//!   WebSocket on upgrade. A connection past the cap is answered 503 at once, unread. Beside
//!   it, each connection holds a place in its client address's quota the same way
//!   (`quota::ConnectionsPerAddress`); one past that is answered 429.
//! - **Peer address.** Each request carries its connection's peer address as axum's
//!   `ConnectInfo<SocketAddr>`, for the per-address quotas of the routes.
//! - **Heads.** hyper starts its header-read timer whenever it waits for a request head: on a
//!   new connection, and on a kept-alive one as soon as the last response is out. [`HeadTimer`]
//!   gives that timer two lengths: the header timeout on a new connection, and on a kept-alive
//!   one the idle timeout until the next request's first byte, then the header timeout.
//! - **Upgrades.** A request asking for an upgrade starts the handshake clock; the connection
//!   is dropped when the 101 has not gone out before it runs out (the room is joined between).
//! - **hyper's own answers.** hyper answers a head it cannot parse (400), a URI it cannot hold
//!   (414) or a head over the limits (431) itself, with an empty body, before any route sees
//!   the request. [`ClientStream`] recognises that answer as it is written and sends the JSON
//!   error in its place.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::quota::{AddressPlace, ConnectionsPerAddress, TooManyFromAddress, client_address};
use crate::{ConnectionLimits, Shutdown};

/// How long a refused connection may take to read its refusal (503 or 429) before it is
/// dropped.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// The most bytes read (and thrown away) from a refused connection, so that closing it does
/// not reset it under the refusal it has not read yet.
const REFUSAL_DRAIN: usize = 16 * 1024;
/// What a connection refused for its address's quota is told to wait before trying again:
/// places come back as that address's own connections close, which the server cannot foresee.
const ADDRESS_RETRY_AFTER_SECONDS: u64 = 5;

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, asks the
/// HTTP connections to finish their request and the WebSockets to close (1001), and waits up
/// to `grace` for all of them before dropping the rest.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    grace: Duration,
    websockets: Shutdown,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = Arc::new(limits);
    let mut admission = Admission::new(&limits);
    let capacity = admission.capacity.clone();
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small frames must leave at once: Nagle's algorithm would hold them for up
                    // to 40 ms.
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "cannot set TCP_NODELAY");
                    }
                    match admission.admit(peer) {
                        Ok(place) => {
                            let stream = ClientStream::new(stream, place);
                            connections.spawn(serve_connection(
                                stream,
                                peer,
                                router.clone(),
                                limits.clone(),
                                stop.clone(),
                            ));
                        }
                        Err(refusal) => {
                            connections.spawn(refuse(stream, refusal));
                        }
                    }
                }
                Err(error) if matches!(
                    error.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) => {
                    // The client gave up before it was accepted.
                    tracing::debug!(%error, "connection gone before it was accepted");
                }
                Err(error) => {
                    // Out of file descriptors, most likely: the connections that hold them
                    // must close first.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
    drop(listener);
    // The router's state holds what tells the WebSocket closer that every connection is gone;
    // only the connections' own copies may keep it waiting now.
    drop(router);
    let deadline = Instant::now() + grace;
    stopping.send_replace(true);
    // WebSockets are told to close with 1001; hyper finishes each HTTP connection's request in
    // flight and closes it.
    let closing = tokio::spawn(websockets.close_connections(grace));
    let all_permits = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let everyone_gone = async {
        while connections.join_next().await.is_some() {}
        // WebSockets run in their own tasks; each holds its connection's permit.
        let _ = capacity.acquire_many(all_permits).await;
    };
    if tokio::time::timeout_at(deadline, everyone_gone)
        .await
        .is_err()
    {
        tracing::info!("shutdown grace period over; dropping the connections still open");
    }
    let _ = closing.await;
    connections.shutdown().await;
    Ok(())
}

/// A connection's places under the caps, given back when it is dropped.
struct Place {
    _server: OwnedSemaphorePermit,
    _address: AddressPlace,
}

/// Which connections are let in: the server-wide cap, and each address's quota.
struct Admission {
    capacity: Arc<Semaphore>,
    per_address: Arc<ConnectionsPerAddress>,
    max_connections: usize,
    max_connections_per_ip: usize,
    /// Whether the last connection was refused for the server-wide cap: a flood past it logs
    /// one warning, not one per connection.
    full: bool,
}

impl Admission {
    fn new(limits: &ConnectionLimits) -> Self {
        Self {
            // The configuration keeps the cap far below the semaphore's ceiling; `min` keeps
            // `new` from panicking on settings made some other way.
            capacity: Arc::new(Semaphore::new(
                limits.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            per_address: ConnectionsPerAddress::new(limits.max_connections_per_ip),
            max_connections: limits.max_connections,
            max_connections_per_ip: limits.max_connections_per_ip,
            full: false,
        }
    }

    /// The places of a connection from `peer`, or the answer that refuses it. An address over
    /// its quota is refused before it can take one of the server's places.
    fn admit(&mut self, peer: SocketAddr) -> Result<Place, ApiError> {
        let address = client_address(peer.ip());
        let address_place = match self.per_address.hold(address) {
            Ok(place) => place,
            Err(TooManyFromAddress { first_of_flood }) => {
                if first_of_flood {
                    tracing::warn!(
                        %address,
                        limit = self.max_connections_per_ip,
                        "connections from one address refused: as many open as \
                         DUET_MAX_CONNECTIONS_PER_IP allows"
                    );
                }
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections_from_address",
                    "this address has as many connections open as the server accepts from \
                     one address; close one or try again later",
                )
                .retry_after(ADDRESS_RETRY_AFTER_SECONDS));
            }
        };
        let Ok(permit) = self.capacity.clone().try_acquire_owned() else {
            if !self.full {
                tracing::warn!(
                    limit = self.max_connections,
                    "connections refused: as many open as DUET_MAX_CONNECTIONS allows"
                );
            }
            self.full = true;
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                "the server has as many connections open as it accepts; try again later",
            ));
        };
        self.full = false;
        Ok(Place {
            _server: permit,
            _address: address_place,
        })
    }
}

/// Answers `refusal` to a connection that was not let in and closes it, reading at most a
/// little of what it sent.
async fn refuse(mut stream: TcpStream, refusal: ApiError) {
    let answer = refusal.to_http1();
    let _ = tokio::time::timeout(REFUSAL_LINGER, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        // Reading what the client already sent lets the close be a FIN rather than a reset,
        // which could discard the refusal before the client reads it.
        let mut drained = 0;
        let mut chunk = [0; 4096];
        while drained < REFUSAL_DRAIN {
            match stream.read(&mut chunk).await? {
                0 => break,
                read => drained += read,
            }
        }
        io::Result::Ok(())
    })
    .await;
}

/// Runs HTTP/1 on one connection until it closes, is upgraded, runs out of time to upgrade, or
/// the server stops.
async fn serve_connection(
    stream: ClientStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<ConnectionLimits>,
    mut stop: watch::Receiver<bool>,
) {
    let timer = HeadTimer::new(
        stream.reads.clone(),
        limits.header_timeout,
        limits.idle_timeout,
    );
    // When the upgrade asked for must be done by; `None` while no upgrade is under way.
    let (upgrade_started, mut upgrade_deadline) = watch::channel(None::<Instant>);
    let handshake_timeout = limits.handshake_timeout;
    let service = service_fn(move |mut request: Request<Incoming>| {
        let router = router.clone();
        let upgrade_started = upgrade_started.clone();
        request.extensions_mut().insert(ConnectInfo(peer));
        async move {
            let upgrading = request.headers().contains_key(header::UPGRADE);
            if upgrading {
                upgrade_started.send_replace(Some(Instant::now() + handshake_timeout));
            }
            let response = router.oneshot(request).await;
            if upgrading
                && response
                    .as_ref()
                    .is_ok_and(|response| response.status() != StatusCode::SWITCHING_PROTOCOLS)
            {
                // Refused: the connection stays an HTTP one.
                upgrade_started.send_replace(None);
            }
            response
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(timer)
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let mut stopping = false;
    loop {
        let deadline = *upgrade_deadline.borrow_and_update();
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            () = sleep_until(deadline) => {
                tracing::debug!("WebSocket upgrade timed out; connection dropped");
                break;
            }
            Ok(()) = upgrade_deadline.changed() => {}
            Ok(()) = stop.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Completes at `deadline`, or never when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// How many reads from a connection brought bytes; the head timer compares counts to see
/// whether a request has started.
#[derive(Default)]
struct Reads(AtomicU64);

impl Reads {
    fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// hyper's timer for one connection's request heads. hyper asks for a sleep each time it
/// starts waiting for a head, and uses it only for that (an HTTP/1 server has no other timer).
struct HeadTimer {
    reads: Arc<Reads>,
    header_timeout: Duration,
    idle_timeout: Duration,
    heads: AtomicU64,
}

impl HeadTimer {
    fn new(reads: Arc<Reads>, header_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            reads,
            header_timeout,
            idle_timeout,
            heads: AtomicU64::new(0),
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(HeadSleep {
            sleep: Box::pin(tokio::time::sleep(duration)),
            idle: None,
        })
    }

    fn sleep_until(&self, _deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        // hyper's deadline is now plus the header timeout; the first head of a connection gets
        // exactly that, a later one first waits as long as the idle timeout for its first byte.
        let first = self.heads.fetch_add(1, Ordering::Relaxed) == 0;
        let now = Instant::now();
        if first {
            return Box::pin(HeadSleep {
                sleep: Box::pin(tokio::time::sleep_until(now + self.header_timeout)),
                idle: None,
            });
        }
        Box::pin(HeadSleep {
            sleep: Box::pin(tokio::time::sleep_until(now + self.idle_timeout)),
            idle: Some(Idle {
                reads: self.reads.clone(),
                reads_before: self.reads.count(),
                header_timeout: self.header_timeout,
            }),
        })
    }
}

/// A kept-alive connection waiting for its next request.
struct Idle {
    reads: Arc<Reads>,
    reads_before: u64,
    header_timeout: Duration,
}

struct HeadSleep {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// While set, no byte of the next request has arrived yet.
    idle: Option<Idle>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // hyper polls this sleep right after each read that left the head incomplete, so the
        // first poll after bytes arrived is when the request started. (A head that came in
        // with the previous request's bytes, pipelined, is held to the idle timeout instead:
        // bounded all the same.)
        if let Some(idle) = &this.idle
            && idle.reads.count() != idle.reads_before
        {
            let deadline = Instant::now() + idle.header_timeout;
            this.idle = None;
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.as_mut().poll(context)
    }
}

impl Sleep for HeadSleep {}

/// A client's TCP stream as hyper (and, after an upgrade, the WebSocket) uses it: it holds the
/// connection's places under the caps, counts reads for [`HeadTimer`], and swaps hyper's bare
/// error answers for the JSON ones.
pub(crate) struct ClientStream {
    stream: TcpStream,
    reads: Arc<Reads>,
    /// The JSON answer written in place of hyper's, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
    _place: Place,
}

impl ClientStream {
    fn new(stream: TcpStream, place: Place) -> Self {
        Self {
            stream,
            reads: Arc::default(),
            replacement: None,
            _place: place,
        }
    }

    /// Writes out what is left of a replacement answer.
    fn poll_replacement(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.replacement {
            if *written == answer.len() {
                self.replacement = None;
                break;
            }
            let sent = ready!(Pin::new(&mut self.stream).poll_write(context, &answer[*written..]))?;
            if sent == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += sent;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `buffer` in place of writing it when it is one of hyper's bare error answers.
    fn replaces(&mut self, buffer: &[u8], context: &mut Context<'_>) -> bool {
        let Some(status) = bare_error_status(buffer) else {
            return false;
        };
        self.replacement = Some((ApiError::for_status(status).to_http1(), 0));
        // Whatever does not go out now goes out on the next write, flush or shutdown.
        let _ = self.poll_replacement(context);
        true
    }
}

/// The status of `buffer` when it is exactly an answer hyper writes by itself for a request it
/// could not read: a 400, 414 or 431 head announcing an empty body, with no body. The server's
/// own error answers always carry a JSON body, and WebSocket frames never start with `HTTP/`.
fn bare_error_status(buffer: &[u8]) -> Option<StatusCode> {
    const MAX_HEAD: usize = 512;
    let rest = buffer.strip_prefix(b"HTTP/1.1 ")?;
    let status = match rest.get(..4)? {
        b"400 " => StatusCode::BAD_REQUEST,
        b"414 " => StatusCode::URI_TOO_LONG,
        b"431 " => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    if buffer.len() > MAX_HEAD {
        return None;
    }
    let end = buffer.windows(4).position(|window| window == b"\r\n\r\n")?;
    if end + 4 != buffer.len() {
        return None;
    }
    let head = std::str::from_utf8(buffer).ok()?.to_ascii_lowercase();
    (head.contains("\r\ncontent-length: 0\r\n") && !head.contains("\r\ncontent-type:"))
        .then_some(status)
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buffer.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(context, buffer))?;
        if buffer.filled().len() > before {
            this.reads.0.fetch_add(1, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(context))?;
        if this.replaces(buffer, context) {
            return Poll::Ready(Ok(buffer.len()));
        }
        Pin::new(&mut this.stream).poll_write(context, buffer)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(context))?;
        let mut filled = buffers.iter().filter(|buffer| !buffer.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && this.replaces(only, context)
        {
            return Poll::Ready(Ok(only.len()));
        }
        Pin::new(&mut this.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(context))?;
        Pin::new(&mut this.stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(context))?;
        Pin::new(&mut this.stream).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_hyper_s_bare_error_answers() {
        let date = "date: Mon, 01 Jan 2024 00:00:00 GMT\r\n";
        let bare = |status: &str| format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n{date}\r\n");
        assert_eq!(
            bare_error_status(bare("400 Bad Request").as_bytes()),
            Some(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            bare_error_status(bare("414 URI Too Long").as_bytes()),
            Some(StatusCode::URI_TOO_LONG)
        );
        assert_eq!(
            bare_error_status(bare("431 Request Header Fields Too Large").as_bytes()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let not_replaced = [
            bare("404 Not Found"),
            bare("200 OK"),
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"
                .to_owned(),
            format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n{date}\r\n"),
            format!("{}{{}}", bare("400 Bad Request")),
            "{\"error\": \"HTTP/1.1 400 \"}".to_owned(),
        ];
        for answer in not_replaced {
            assert_eq!(bare_error_status(answer.as_bytes()), None, "{answer}");
        }
    }
}
