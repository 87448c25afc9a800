//! One simulated typist: a WebSocket, the ot.js client rules ([`duet_domain::Client`]) spoken
//! through the protocol's types ([`duet_protocol`]), and the measurements.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use duet_domain::{Client, Document, Outgoing};
use duet_protocol::{ClientMessage, ServerMessage, batch};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::pattern::{self, Pattern};
use crate::report::Stats;
use crate::{Options, Protocol};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the typists of one room share: when each committed edit was made, to time its arrival
/// at the others. Every typist reads it for every edit that reaches it, so it is read-locked.
pub struct Room {
    pub id: String,
    /// The room's revision when the run began.
    start: u64,
    /// revision (v1) or marker number (plain, see [`marker_number`]) → when the edit was made.
    made: RwLock<HashMap<u64, Instant>>,
    /// Arrivals seen before the edit's time was known.
    early: Mutex<HashMap<u64, Vec<Instant>>>,
    acked: AtomicU64,
    /// Plain: every marker typed, each exactly once into a frame.
    typed_markers: Mutex<Vec<String>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Room {
    /// A room at `start`, its revision before the run.
    pub fn new(id: String, start: u64) -> Self {
        Self {
            id,
            start,
            made: RwLock::default(),
            early: Mutex::default(),
            acked: AtomicU64::new(0),
            typed_markers: Mutex::default(),
        }
    }

    fn acknowledged(
        &self,
        key: u64,
        made: Instant,
        arrivals: &mut Arrivals,
        measuring_from: Instant,
    ) {
        self.acked.fetch_add(1, Ordering::Relaxed);
        if made < measuring_from {
            return;
        }
        // Known first, then the early ones collected: an arrival that missed `made` is
        // already in `early` (it looks again under that lock).
        write(&self.made).insert(key, made);
        if let Some(early) = lock(&self.early).remove(&key) {
            for arrival in early {
                arrivals.record(arrival.saturating_duration_since(made));
            }
        }
    }

    /// Times arrivals `(key, when)` against when their edits were made; those whose edit is
    /// not acknowledged yet wait in `early`.
    fn resolve(&self, seen: &[(u64, Instant)], latencies: &mut Vec<Duration>) {
        let mut unknown = Vec::new();
        {
            let made = read(&self.made);
            for (key, at) in seen {
                match made.get(key) {
                    Some(made) => latencies.push(at.saturating_duration_since(*made)),
                    None => unknown.push((*key, *at)),
                }
            }
        }
        if unknown.is_empty() {
            return;
        }
        let mut early = lock(&self.early);
        let made = read(&self.made);
        for (key, at) in unknown {
            match made.get(&key) {
                Some(made) => latencies.push(at.saturating_duration_since(*made)),
                None => early.entry(key).or_default().push(at),
            }
        }
    }

    /// Edits the server's final state does not account for: acknowledged ones (duet.v1), or
    /// typed ones missing from the text (plain: each keystroke carries a marker).
    pub fn lost_edits(&self, revision: u64, code: &str) -> u64 {
        let markers = lock(&self.typed_markers);
        if markers.is_empty() {
            // v1: every acknowledgement names a distinct revision made during the run.
            self.acked
                .load(Ordering::Relaxed)
                .saturating_sub(revision.saturating_sub(self.start))
        } else {
            markers
                .iter()
                .filter(|marker| !code.contains(marker.as_str()))
                .count() as u64
        }
    }

    /// Plain: typed keystrokes that the server's final text holds more than once.
    pub fn doubled_edits(&self, code: &str) -> u64 {
        lock(&self.typed_markers)
            .iter()
            .filter(|marker| code.matches(marker.as_str()).nth(1).is_some())
            .count() as u64
    }
}

/// Arrival times recorded by one typist, handed to the shared histogram in bundles (one lock
/// per bundle rather than per edit received).
#[derive(Default)]
pub struct Arrivals {
    /// Arrivals not timed yet: (revision or marker number, when).
    seen: Vec<(u64, Instant)>,
    /// Timed, not yet in the shared histogram.
    waiting: Vec<Duration>,
    room: Option<Arc<Room>>,
    stats: Option<Arc<Stats>>,
}

impl Arrivals {
    const BUNDLE: usize = 256;

    fn new(room: &Arc<Room>, stats: &Arc<Stats>) -> Self {
        Self {
            seen: Vec::with_capacity(Self::BUNDLE),
            waiting: Vec::with_capacity(Self::BUNDLE),
            room: Some(Arc::clone(room)),
            stats: Some(Arc::clone(stats)),
        }
    }

    /// An edit of someone else's arrived.
    fn arrived(&mut self, key: u64, at: Instant, measuring_from: Instant) {
        // Arriving before the measurement began, it was made before too.
        if at >= measuring_from {
            self.seen.push((key, at));
            if self.seen.len() >= Self::BUNDLE {
                self.flush();
            }
        }
    }

    /// An edit of someone else's that arrived before its author's acknowledgement.
    fn record(&mut self, latency: Duration) {
        self.waiting.push(latency);
    }

    fn flush(&mut self) {
        if let Some(room) = &self.room {
            room.resolve(&self.seen, &mut self.waiting);
        }
        self.seen.clear();
        if let Some(stats) = &self.stats {
            stats.record_arrivals(&self.waiting);
        }
        self.waiting.clear();
    }
}

#[derive(Default)]
struct State {
    /// The typist's text, in a rope: every edit of the room is applied to it.
    text: Document,
    arrivals: Arrivals,
    /// duet.v1: the ot.js client (the revision, the operation in flight, the buffer).
    client: Client,
    /// duet.v1: when the first edit in the operation in flight, and in the buffer, was made.
    in_flight_made: Option<Instant>,
    buffer_made: Option<Instant>,
    /// Plain: how many buffers arrived.
    buffers: u64,
    welcomed: bool,
    closed: bool,
    /// Plain: own markers not yet seen echoed, with when they were typed.
    pending_markers: HashMap<String, Instant>,
    seen_markers: HashSet<String>,
    edits: u64,
    /// Edits made before this are warm-up and not counted.
    measuring_from: Option<Instant>,
}

/// A connected typist.
pub struct Typist {
    pub room: Arc<Room>,
    index: usize,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    outgoing: mpsc::UnboundedSender<Message>,
    tasks: Vec<JoinHandle<()>>,
    protocol: Protocol,
    pattern: Pattern,
    /// Between two edits; `None`: never types.
    interval: Option<Duration>,
    stats: Arc<Stats>,
    apply_remote: bool,
}

/// A plain typist's marker `«typist.edit»` as one number, to key its timing by.
fn marker_number(marker: &str) -> Option<u64> {
    let inner = marker.strip_prefix('«')?.strip_suffix('»')?;
    let (typist, edit) = inner.split_once('.')?;
    Some((typist.parse::<u64>().ok()? << 32) | edit.parse::<u64>().ok()?)
}

fn marker_keys(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices('«').filter_map(move |(start, _)| {
        text[start..]
            .find('»')
            .map(|end| &text[start..start + end + '»'.len_utf8()])
    })
}

impl State {
    /// The room's revision as the typist has it: its client's (duet.v1), or the number of
    /// buffers that arrived (plain).
    fn revision(&self, protocol: Protocol) -> u64 {
        match protocol {
            Protocol::V1 => self.client.revision(),
            Protocol::Plain => self.buffers,
        }
    }

    /// Whether every edit the typist made was acknowledged.
    fn idle(&self) -> bool {
        self.closed || (self.client.is_synchronized() && self.pending_markers.is_empty())
    }

    /// Sends an operation the client let go, its first edit made at `made`.
    fn send(
        &mut self,
        outgoing: Outgoing,
        made: Instant,
        channel: &mpsc::UnboundedSender<Message>,
        stats: &Stats,
    ) {
        let message = ClientMessage::Op {
            revision: outgoing.revision,
            seq: outgoing.seq,
            ops: outgoing.operation,
            selection: None,
        };
        let _ = channel.send(Message::text(message.encode()));
        if self.measuring_from.is_none_or(|from| made >= from) {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        }
        self.in_flight_made = Some(made);
    }
}

impl Typist {
    pub async fn connect(
        ws_base: &str,
        room: Arc<Room>,
        index: usize,
        options: &Options,
        stats: Arc<Stats>,
        measuring_from: Instant,
    ) -> Result<Self, String> {
        let batch = if options.batch { "&batch=1" } else { "" };
        let url = format!("{ws_base}/ws/{}?name=typist-{index}{batch}", room.id);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|error| format!("bad URL {url}: {error}"))?;
        if options.protocol == Protocol::V1 {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                duet_protocol::SUBPROTOCOL
                    .parse()
                    .map_err(|_| "bad header")?,
            );
        }
        // tungstenite zeroes a 128 KiB read buffer by default on every read; frames here are
        // small, so a small buffer saves the generator that work.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(8 * 1024);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map_err(|error| format!("typist {index} cannot connect: {error}"))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();
        let state = Arc::new(Mutex::new(State {
            welcomed: options.protocol == Protocol::Plain,
            measuring_from: Some(measuring_from),
            arrivals: Arrivals::new(&room, &stats),
            ..State::default()
        }));
        let changed = Arc::new(Notify::new());
        let writer = tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let reader = {
            let state = Arc::clone(&state);
            let changed = Arc::clone(&changed);
            let room = Arc::clone(&room);
            let stats = Arc::clone(&stats);
            let outgoing = outgoing.clone();
            let protocol = options.protocol;
            let apply_remote = options.check_convergence;
            tokio::spawn(async move {
                while let Some(frame) = stream.next().await {
                    let Ok(Message::Text(text)) = frame else {
                        if frame.is_err() {
                            break;
                        }
                        continue;
                    };
                    let now = Instant::now();
                    {
                        let mut state = lock(&state);
                        match protocol {
                            Protocol::V1 => receive_v1(
                                &mut state,
                                text.as_str(),
                                now,
                                &room,
                                &stats,
                                &outgoing,
                                measuring_from,
                                apply_remote,
                            ),
                            Protocol::Plain => receive_plain(
                                &mut state,
                                text.as_str(),
                                now,
                                &room,
                                &stats,
                                measuring_from,
                            ),
                        }
                    }
                    changed.notify_waiters();
                }
                stats.disconnects.fetch_add(1, Ordering::Relaxed);
                lock(&state).closed = true;
                changed.notify_waiters();
            })
        };
        let pattern = match &options.trace {
            Some(trace) => Pattern::Trace {
                trace: Arc::clone(trace),
                next: index * 7919,
            },
            None => Pattern::typing(index as u64 + 1),
        };
        let typist = Self {
            room,
            index,
            state,
            changed,
            outgoing,
            tasks: vec![writer, reader],
            protocol: options.protocol,
            pattern,
            interval: (options.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / options.rate)),
            stats,
            apply_remote: options.check_convergence,
        };
        typist
            .wait(
                |state| state.welcomed || state.closed,
                Duration::from_secs(30),
            )
            .await;
        if lock(&typist.state).closed {
            return Err(format!("typist {index} was disconnected on joining"));
        }
        Ok(typist)
    }

    async fn wait(&self, condition: impl Fn(&State) -> bool, patience: Duration) -> bool {
        tokio::time::timeout(patience, async {
            loop {
                let notified = self.changed.notified();
                if condition(&lock(&self.state)) {
                    return;
                }
                notified.await;
            }
        })
        .await
        .is_ok()
    }

    /// Types at the configured rate until `stop_at` (a rate of 0: stays idle).
    pub async fn type_until(mut self, stop_at: Instant) -> Self {
        let Some(interval) = self.interval else {
            tokio::time::sleep_until(stop_at.into()).await;
            return self;
        };
        // Typists start spread over one interval, as people do not type in step.
        let offset = interval.mul_f64((self.index % 97) as f64 / 97.0);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if Instant::now() >= stop_at || lock(&self.state).closed {
                break;
            }
            self.edit();
        }
        self
    }

    fn edit(&mut self) {
        let now = Instant::now();
        let mut state = lock(&self.state);
        state.edits += 1;
        match self.protocol {
            Protocol::V1 => {
                let text = state.text.text();
                let splice = self.pattern.next(&text, None);
                let operation = pattern::operation(&text, &splice);
                if state.text.apply(&operation).is_err() {
                    return;
                }
                match state.client.apply_local(operation) {
                    Ok(Some(outgoing)) => state.send(outgoing, now, &self.outgoing, &self.stats),
                    Ok(None) => {
                        state.buffer_made.get_or_insert(now);
                    }
                    Err(_) => {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Protocol::Plain => {
                let marker = format!("«{}.{}»", self.index, state.edits);
                let text = pattern::type_on_own_line(&state.text.text(), self.index, &marker);
                state.text = Document::new(&text, 0);
                state.pending_markers.insert(marker.clone(), now);
                lock(&self.room.typed_markers).push(marker.clone());
                state.seen_markers.insert(marker);
                let _ = self.outgoing.send(Message::text(text));
                if state.measuring_from.is_none_or(|from| now >= from) {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The typist's text now.
    pub fn text(&self) -> String {
        lock(&self.state).text.text()
    }

    /// Hands the arrival times still held here to the shared figures.
    pub fn flush_arrivals(&self) {
        lock(&self.state).arrivals.flush();
    }

    /// Edits sent and never acknowledged.
    pub fn unacknowledged(&self) -> u64 {
        let state = lock(&self.state);
        match self.protocol {
            Protocol::V1 => {
                u64::from(state.client.in_flight().is_some())
                    + u64::from(state.client.buffer().is_some())
            }
            Protocol::Plain => state.pending_markers.len() as u64,
        }
    }

    fn idle(&self) -> bool {
        lock(&self.state).idle()
    }
}

impl Drop for Typist {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Waits until every typist has its edits acknowledged and holds the same text as the others
/// of its room. Returns whether that happened in time.
pub async fn settle(typists: &[Typist], patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    for typist in typists {
        let left = deadline.saturating_duration_since(Instant::now());
        if !typist.wait(State::idle, left).await {
            return false;
        }
    }
    if typists.iter().any(|typist| !typist.apply_remote) {
        return typists.iter().all(Typist::idle);
    }
    // Same text as everyone else in the room: wait for the last revision to reach everyone.
    loop {
        let mut agreed = true;
        for typist in typists {
            let protocol = typist.protocol;
            let mine = lock(&typist.state).revision(protocol);
            let newest = typists
                .iter()
                .filter(|other| Arc::ptr_eq(&other.room, &typist.room))
                .map(|other| lock(&other.state).revision(protocol))
                .max()
                .unwrap_or(mine);
            if mine < newest {
                agreed = false;
                let left = deadline.saturating_duration_since(Instant::now());
                if !typist
                    .wait(
                        |state| state.revision(protocol) >= newest || state.closed,
                        left,
                    )
                    .await
                {
                    return false;
                }
            }
        }
        if agreed {
            return true;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn receive_v1(
    state: &mut State,
    text: &str,
    now: Instant,
    room: &Room,
    stats: &Stats,
    outgoing: &mpsc::UnboundedSender<Message>,
    measuring_from: Instant,
    apply_remote: bool,
) {
    let Ok(messages) = batch::read_frame(text) else {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    for message in messages {
        match message {
            ServerMessage::Welcome { revision, code, .. } => {
                state.welcomed = true;
                state.text = Document::new(code.as_deref().unwrap_or_default(), 0);
                state.client = Client::new(revision, state.text.len_utf16());
            }
            ServerMessage::Ack { seq, revision } => {
                // A relay does not transform, so a typist there does not follow the others'
                // edits: to its client, the room holds its own edits only.
                let known = if apply_remote {
                    revision
                } else {
                    state.client.revision().saturating_add(1)
                };
                match state.client.acknowledge(seq, known) {
                    Ok(next) => {
                        if let Some(made) = state.in_flight_made.take() {
                            if made >= measuring_from {
                                stats.record_ack(now.saturating_duration_since(made));
                            }
                            room.acknowledged(revision, made, &mut state.arrivals, measuring_from);
                        }
                        if let Some(next) = next {
                            let made = state.buffer_made.take().unwrap_or(now);
                            state.send(next, made, outgoing, stats);
                        }
                    }
                    Err(_) => {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            ServerMessage::Op(committed) => {
                state
                    .arrivals
                    .arrived(committed.revision, now, measuring_from);
                if apply_remote {
                    let applied = state
                        .client
                        .apply_remote(committed.revision, &committed.ops)
                        .map_err(drop)
                        .and_then(|local| state.text.apply(&local).map_err(drop));
                    if applied.is_err() {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            ServerMessage::Error { .. } => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

fn receive_plain(
    state: &mut State,
    text: &str,
    now: Instant,
    room: &Room,
    stats: &Stats,
    measuring_from: Instant,
) {
    state.buffers += 1;
    let mut mine = Vec::new();
    for key in marker_keys(text) {
        if let Some(made) = state.pending_markers.remove(key) {
            mine.push((key.to_owned(), made));
        } else if state.seen_markers.insert(key.to_owned())
            && let Some(number) = marker_number(key)
        {
            state.arrivals.arrived(number, now, measuring_from);
        }
    }
    for (key, made) in mine {
        if made >= measuring_from {
            stats.record_ack(now.saturating_duration_since(made));
        }
        if let Some(number) = marker_number(&key) {
            room.acknowledged(number, made, &mut state.arrivals, measuring_from);
        }
    }
    // The naive client of the prototype (and of the README's browser snippet): whatever
    // arrives replaces the editor's text, even when it lacks what was just typed; the server
    // must still merge every keystroke exactly once.
    state.text = Document::new(text, 0);
}
