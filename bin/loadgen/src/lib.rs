//! `duet-loadgen`: simulated typists driving a Duet server over real WebSockets.
//!
//! Each room gets `clients_per_room` typists. A typist edits its own copy of the text at a
//! steady rate (realistic typing, or a recorded editing trace), keeps the ot.js client rules
//! (one operation in flight, later edits composed into a buffer, incoming operations
//! transformed), and records how long each edit takes to be acknowledged and to arrive at
//! every other typist in the room. At the end it checks that every typist's text equals the
//! room's text on the server and that no acknowledged edit is missing.

pub mod pattern;
pub mod relay;
mod report;
mod typist;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use report::{Latency, Report};

/// Which protocol the typists speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Plain,
    V1,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The server's base URL, such as `http://127.0.0.1:8000`.
    pub url: String,
    pub rooms: usize,
    pub clients_per_room: usize,
    /// Edits per second per typist.
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub protocol: Protocol,
    /// duet.v1: ask for batched frames (`?batch=1`: several messages in one frame, as a JSON
    /// array).
    pub batch: bool,
    /// An existing room to join instead of creating `rooms` rooms.
    pub room: Option<String>,
    /// Whether rooms are created with `POST /rooms` (a Duet server) or named here with fresh
    /// ids (the bare relay, which opens a room for any id on connect).
    pub create_rooms: bool,
    /// Edits replayed from an editing trace instead of generated typing.
    pub trace: Option<Arc<pattern::Trace>>,
    /// Whether to check convergence against `GET /rooms/{id}` (a bare relay keeps no text).
    pub check_convergence: bool,
    /// Print a progress line every second on stderr.
    pub progress: bool,
}

/// Creates an empty room with `POST /rooms` and returns its id.
async fn create_room(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let answer = client
        .post(format!("{url}/rooms"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .map_err(|error| format!("cannot create a room at {url}: {error}"))?;
    let body: serde_json::Value = answer
        .json()
        .await
        .map_err(|error| format!("the room was not created: {error}"))?;
    body["roomId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the server answered no roomId".to_owned())
}

/// Runs the load and returns what was measured.
///
/// # Errors
/// A message when rooms cannot be created or typists cannot connect.
pub async fn run(options: &Options) -> Result<Report, String> {
    let stats = Arc::new(report::Stats::new());
    let client = reqwest::Client::new();
    let mut rooms = Vec::with_capacity(options.rooms);
    if let Some(id) = &options.room {
        let state: serde_json::Value = client
            .get(format!("{}/rooms/{id}", options.url))
            .send()
            .await
            .map_err(|error| format!("cannot read room {id}: {error}"))?
            .json()
            .await
            .map_err(|error| format!("room {id} unreadable: {error}"))?;
        let start = state["revision"].as_u64().ok_or(format!("no room {id}"))?;
        rooms.push(Arc::new(typist::Room::new(id.clone(), start)));
    }
    while rooms.len() < options.rooms && options.room.is_none() {
        let id = if options.create_rooms {
            create_room(&client, &options.url).await?
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        rooms.push(Arc::new(typist::Room::new(id, 0)));
    }
    let ws_base = options.url.replacen("http", "ws", 1);
    let started = Instant::now();
    let measuring_from = started + options.warmup;
    let stop_at = measuring_from + options.duration;
    let mut typists = Vec::new();
    let mut index = 0;
    for room in &rooms {
        for _ in 0..options.clients_per_room {
            let typist = typist::Typist::connect(
                &ws_base,
                Arc::clone(room),
                index,
                options,
                Arc::clone(&stats),
                measuring_from,
            )
            .await?;
            typists.push(typist);
            index += 1;
        }
    }
    let cpu_before = report::cpu_seconds();
    let wall_before = Instant::now();
    let progress = options.progress.then(|| {
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!("{}", stats.progress_line(started.elapsed()));
            }
        })
    });
    let tasks: Vec<_> = typists
        .into_iter()
        .map(|typist| tokio::spawn(typist.type_until(stop_at)))
        .collect();
    let mut finished = Vec::with_capacity(tasks.len());
    for task in tasks {
        finished.push(
            task.await
                .map_err(|error| format!("a typist failed: {error}"))?,
        );
    }
    let wall = wall_before.elapsed();
    let cpu = report::cpu_seconds() - cpu_before;
    if let Some(progress) = progress {
        progress.abort();
    }
    // Let every typist settle: its edits acknowledged and everyone's edits received.
    let settled = typist::settle(&finished, Duration::from_secs(15)).await;
    let mut converged = settled;
    let mut lost = 0_u64;
    let mut doubled = 0_u64;
    if options.check_convergence {
        for room in &rooms {
            let state: serde_json::Value = client
                .get(format!("{}/rooms/{}", options.url, room.id))
                .send()
                .await
                .map_err(|error| format!("cannot read room {}: {error}", room.id))?
                .json()
                .await
                .map_err(|error| format!("room {} unreadable: {error}", room.id))?;
            let code = state["code"].as_str().unwrap_or_default();
            let revision = state["revision"].as_u64().unwrap_or_default();
            for typist in finished.iter().filter(|t| Arc::ptr_eq(&t.room, room)) {
                if typist.text() != code {
                    converged = false;
                }
            }
            lost += room.lost_edits(revision, code);
            doubled += room.doubled_edits(code);
        }
    }
    for typist in &finished {
        typist.flush_arrivals();
    }
    let unacknowledged: u64 = finished.iter().map(typist::Typist::unacknowledged).sum();
    Ok(stats.report(
        options,
        options.duration,
        cpu,
        wall,
        report::Tally {
            converged: converged && (options.check_convergence || settled),
            lost_edits: lost + unacknowledged,
            doubled_edits: doubled,
        },
    ))
}
