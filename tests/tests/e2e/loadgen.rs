//! A short load run as an end-to-end test: a handful of typists for a few seconds, through
//! the real load generator, and its convergence check must pass.
//!
//! The counts of acknowledged operations are only checked to be well above nothing: keystrokes
//! typed while an acknowledgement is awaited travel as one operation, so a busy machine
//! acknowledges fewer, larger operations for the same typing.

use std::time::Duration;

use duet_loadgen::{Options, Protocol, relay};
use duet_tests::{Backend, TestServer, on_both_databases};

fn options(url: String) -> Options {
    Options {
        url,
        rooms: 2,
        clients_per_room: 3,
        rate: 20.0,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        protocol: Protocol::V1,
        trace: None,
        batch: true,
        room: None,
        create_rooms: true,
        check_convergence: true,
        progress: false,
    }
}

async fn a_short_load_run_converges_with_nothing_lost(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let report = duet_loadgen::run(&options(format!("http://{}", server.address)))
        .await
        .expect("the load runs");
    assert!(report.converged, "{}", report.table("smoke"));
    assert_eq!(report.lost_edits, 0, "{}", report.table("smoke"));
    assert_eq!(report.errors, 0, "{}", report.table("smoke"));
    assert!(report.edits_acked > 20, "{}", report.table("smoke"));
    assert!(
        report.arrival.count >= report.edits_acked,
        "{}",
        report.table("smoke")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_relay_carries_the_same_load() {
    let relay = relay::start().await.expect("the relay starts");
    let mut options = options(relay.url.clone());
    options.check_convergence = false;
    options.create_rooms = false;
    let report = duet_loadgen::run(&options).await.expect("the load runs");
    assert!(report.edits_acked > 20, "{}", report.table("relay"));
    assert_eq!(report.errors, 0, "{}", report.table("relay"));
}

/// Typists joining a room that already holds code and history (`--room`), one of them idle
/// (`--rate 0`): they converge on it and the lost-edit count covers only the run's edits.
async fn typists_join_an_existing_room(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server
        .create_room(serde_json::json!({"code": "fn main() {}\n"}))
        .await;
    let url = format!("http://{}", server.address);
    let mut first = options(url.clone());
    first.room = Some(room.clone());
    first.clients_per_room = 2;
    let report = duet_loadgen::run(&first).await.expect("the load runs");
    assert!(
        report.converged && report.lost_edits == 0,
        "{}",
        report.table("first")
    );
    assert!(report.edits_acked > 5, "{}", report.table("first"));
    let before = server.room(&room).await;
    // An idle typist changes nothing and still agrees with the room.
    let mut idle = options(url);
    idle.room = Some(room.clone());
    idle.clients_per_room = 1;
    idle.rate = 0.0;
    idle.duration = Duration::from_millis(300);
    idle.warmup = Duration::ZERO;
    let report = duet_loadgen::run(&idle).await.expect("the idle run");
    assert!(report.converged, "{}", report.table("idle"));
    assert_eq!(report.edits_sent, 0, "{}", report.table("idle"));
    assert_eq!(server.room(&room).await["revision"], before["revision"]);
    server.stop().await;
}

on_both_databases!(
    a_short_load_run_converges_with_nothing_lost,
    typists_join_an_existing_room
);
