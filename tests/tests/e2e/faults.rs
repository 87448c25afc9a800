//! Storage faults while two `duet.v1` clients type: nothing acknowledged is lost (while the
//! server runs and after a restart), nothing refused and not resent is stored, `/readyz`
//! reports the fault, and the server recovers without a restart.

use std::time::Duration;

use duet_domain::TextOperation;
use duet_infra_postgres::DatabaseUrl;
use duet_infra_postgres::testing::{DiskFiller, TestDatabase, Unwritable};
use duet_tests::v1::V1Client;
use duet_tests::{Backend, PATIENCE, PrivatePostgres, TestServer, on_both_databases, test_config};
use serde_json::{Value, json};

/// The pause between two keystrokes of a typist.
const KEYSTROKE: Duration = Duration::from_millis(10);

fn type_at_end(text: &str, character: &str) -> TextOperation {
    TextOperation::new()
        .retain(text.encode_utf16().count())
        .insert(character)
}

async fn readyz(server: &TestServer) -> u16 {
    reqwest::get(server.url("/readyz"))
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

/// `GET /rooms/{id}`, asked again while the store refuses reads.
async fn room_when_readable(server: &TestServer, room: &str) -> Value {
    let url = server.url(&format!("/rooms/{room}"));
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            let response = reqwest::get(&url).await.expect("the server answers");
            if response.status() == 200 {
                return response.json::<Value>().await.expect("a JSON body");
            }
            tokio::time::sleep(KEYSTROKE).await;
        }
    })
    .await;
    read.expect("the room is readable again")
}

/// Both typists press a key each, then resend whatever was refused.
fn keystroke(typists: &[&V1Client; 2]) {
    for (typist, character) in typists.iter().zip(["a", "b"]) {
        typist.resend_refused();
        typist.edit(|text| type_at_end(text, character));
    }
}

fn refusals(typist: &V1Client) -> usize {
    typist.snapshot().refused
}

/// Types until `done` holds, at most [`PATIENCE`].
async fn type_until<F: Future<Output = bool>>(
    typists: &[&V1Client; 2],
    mut done: impl FnMut() -> F,
    what: &str,
) {
    let typed = tokio::time::timeout(PATIENCE, async {
        loop {
            keystroke(typists);
            if done().await {
                return;
            }
            tokio::time::sleep(KEYSTROKE).await;
        }
    })
    .await;
    assert!(typed.is_ok(), "typing never led to: {what}");
}

/// Resends until both typists have every edit acknowledged.
async fn settle(typists: &[&V1Client; 2]) {
    let settled = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut idle = true;
            for typist in typists {
                typist.resend_refused();
                idle &= typist.snapshot().client.is_synchronized();
            }
            if idle {
                return;
            }
            tokio::time::sleep(KEYSTROKE).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "edits were never all acknowledged");
}

/// Checks that the room holds exactly the acknowledged edits: its text is each typist's, and
/// every revision up to its own was acknowledged to exactly one of them.
fn check_exactly_acknowledged(stored: &Value, typists: &[&V1Client; 2]) {
    let revision = stored["revision"].as_u64().expect("a revision");
    let mut acknowledged: Vec<u64> = typists
        .iter()
        .flat_map(|typist| typist.snapshot().acked.into_values())
        .collect();
    acknowledged.sort_unstable();
    assert_eq!(
        acknowledged,
        (1..=revision).collect::<Vec<_>>(),
        "stored revisions that were never acknowledged, or acknowledged twice"
    );
    for typist in typists {
        assert_eq!(stored["code"], typist.snapshot().text.as_str());
    }
}

/// The fault a test injects; dropping it heals it (a stopped server is started again).
enum Fault<'a> {
    /// The SQLite file, its log and their directory made immutable.
    Unwritable(#[allow(dead_code)] Unwritable),
    /// The SQLite file's disk filled up.
    FullDisk(#[allow(dead_code)] DiskFiller),
    /// Every PostgreSQL connection of the database terminated (healed by reconnecting).
    Terminated,
    /// The whole PostgreSQL server stopped.
    Stopped(&'a PrivatePostgres),
}

impl Drop for Fault<'_> {
    fn drop(&mut self) {
        if let Self::Stopped(cluster) = self {
            cluster.start_again().expect("PostgreSQL starts again");
        }
    }
}

/// Which fault to inject, on which database.
#[derive(Clone, Copy)]
enum Inject<'a> {
    Unwritable(&'a TestDatabase),
    FullDisk(&'a TestDatabase),
    Terminated(&'a TestDatabase),
    Stopped(&'a PrivatePostgres),
}

async fn typing_through_a_storage_fault(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let inject = match backend {
        Backend::Sqlite => Inject::Unwritable(&database),
        Backend::Postgres => Inject::Terminated(&database),
    };
    typing_through(database.url(), inject).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_through_a_full_disk() {
    let Some(database) = TestDatabase::sqlite_on_small_disk(16 << 20) else {
        return;
    };
    typing_through(database.url(), Inject::FullDisk(&database)).await;
}

async fn typing_through(url: &DatabaseUrl, inject: Inject<'_>) {
    let server = TestServer::start(test_config(url)).await;
    let room = server.create_room(json!({"language": "plaintext"})).await;
    let ws_url = format!("ws://{}", server.address);
    let alice = V1Client::connect(&ws_url, &room, None).await;
    let bob = V1Client::connect(&ws_url, &room, None).await;
    let typists = [&alice, &bob];
    for _ in 0..5 {
        keystroke(&typists);
    }
    settle(&typists).await;

    let fault = match inject {
        Inject::Unwritable(database) => match database.make_unwritable() {
            Some(unwritable) => Fault::Unwritable(unwritable),
            None => return,
        },
        Inject::FullDisk(database) => Fault::FullDisk(database.fill_disk()),
        Inject::Terminated(database) => {
            assert!(database.terminate_connections().await > 0);
            Fault::Terminated
        }
        Inject::Stopped(cluster) => {
            cluster.stop().expect("PostgreSQL stops");
            Fault::Stopped(cluster)
        }
    };
    type_until(
        &typists,
        || async { refusals(&alice) + refusals(&bob) > 0 },
        "an edit refused as unavailable",
    )
    .await;
    if !matches!(fault, Fault::Terminated) {
        // While the fault lasts, the server says it is not ready.
        type_until(
            &typists,
            || async { readyz(&server).await == 503 },
            "readyz 503",
        )
        .await;
    }
    if matches!(fault, Fault::Unwritable(_) | Fault::FullDisk(_)) {
        // The file can still be read: the refused edits are not in it.
        let during = room_when_readable(&server, &room).await;
        let stored_revision = during["revision"].as_u64().expect("a revision");
        let acknowledged = typists
            .iter()
            .flat_map(|typist| typist.snapshot().acked.into_values())
            .max();
        assert_eq!(acknowledged, Some(stored_revision), "during the fault");
    }
    drop(fault);

    // Healed: readiness comes back by itself, and the refused edits go through when resent.
    type_until(
        &typists,
        || async { readyz(&server).await == 200 },
        "readyz 200",
    )
    .await;
    for _ in 0..5 {
        keystroke(&typists);
    }
    settle(&typists).await;
    let running = room_when_readable(&server, &room).await;
    check_exactly_acknowledged(&running, &typists);

    drop((alice.disconnect(), bob.disconnect()));
    server.stop().await;
    let restarted = TestServer::start(test_config(url)).await;
    let after_restart = restarted.room(&room).await;
    assert_eq!(
        after_restart["code"], running["code"],
        "lost in the restart"
    );
    assert_eq!(after_restart["revision"], running["revision"]);
    restarted.stop().await;
}

on_both_databases!(typing_through_a_storage_fault);

/// A real PostgreSQL restart while two clients type (a server of the test's own, so that the
/// one other tests share is never stopped): while it is down, edits are refused as
/// unavailable and readiness is 503; once it is back, the refused edits go through when
/// resent, and the room holds exactly what was acknowledged, also after Duet restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_through_a_postgres_restart() {
    let Some(cluster) = PrivatePostgres::start() else {
        return;
    };
    typing_through(&cluster.url(), Inject::Stopped(&cluster)).await;
}
