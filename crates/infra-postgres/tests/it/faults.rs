//! Storage faults injected into a real SQLite file and a real PostgreSQL database: a write that
//! fails is refused and never stored, nothing acknowledged is lost, readiness fails while
//! writes do, and the store recovers by itself once the fault is gone.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use duet_app::ports::{HealthCheck, RepositoryError, RoomRepository};
use duet_domain::{ClientId, CommittedOperation, Language, Room, RoomId, TextOperation};
use duet_infra_postgres::SqlRoomRepository;
use duet_infra_postgres::testing::TestDatabase;

const PATIENCE: Duration = Duration::from_secs(10);

fn operation(revision: u64) -> CommittedOperation {
    CommittedOperation {
        revision,
        client: ClientId::new("typist").expect("valid client id"),
        seq: revision,
        operation: TextOperation::new()
            .retain(usize::try_from(revision - 1).expect("small"))
            .insert("x"),
        committed_at: Utc::now().trunc_subsecs(3),
        submission_digest: Some(revision),
    }
}

async fn new_room(repository: &SqlRoomRepository) -> RoomId {
    let room = Room::new(
        RoomId::generate(),
        Language::PlainText,
        String::new(),
        Utc::now(),
    )
    .expect("a valid room");
    repository.insert(&room).await.expect("inserted");
    room.id()
}

/// The revisions stored for `room`, as a fresh reader sees them.
async fn stored(repository: &SqlRoomRepository, room: RoomId) -> Vec<u64> {
    repository
        .operations_since(room, 0)
        .await
        .expect("readable")
        .iter()
        .map(|committed| committed.revision)
        .collect()
}

/// Appends the next operation as a client would: the same revision and seq again after a
/// refusal. Returns whether it was acknowledged.
async fn type_once(
    repository: &SqlRoomRepository,
    room: RoomId,
    acknowledged: &mut Vec<u64>,
) -> bool {
    let revision = acknowledged.len() as u64 + 1;
    match repository.append(room, &[operation(revision)], None).await {
        Ok(()) => {
            acknowledged.push(revision);
            true
        }
        Err(RepositoryError::Unavailable(_)) => false,
        // Failed while committing: the store is asked, as the room does, on a fresh connection.
        Err(RepositoryError::Indeterminate(_)) => {
            let client = ClientId::new("typist").expect("valid client id");
            match repository.confirm_stored(room, &client, revision).await {
                Ok(Some(stored)) if stored == revision => {
                    acknowledged.push(revision);
                    true
                }
                _ => false,
            }
        }
        Err(other) => panic!("revision {revision}: unexpected {other:?}"),
    }
}

async fn wait_until_healthy(repository: &SqlRoomRepository) {
    let healthy = tokio::time::timeout(PATIENCE, async {
        while repository.check().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(healthy.is_ok(), "the store did not become ready again");
}

/// After the fault, the store takes new writes, and both the running store and a restarted one
/// hold exactly what was acknowledged.
async fn check_recovered(
    database: &TestDatabase,
    repository: &SqlRoomRepository,
    room: RoomId,
    acknowledged: &mut Vec<u64>,
) {
    wait_until_healthy(repository).await;
    for _ in 0..5 {
        assert!(
            type_once(repository, room, acknowledged).await,
            "a write failed after recovery"
        );
    }
    assert_eq!(
        stored(repository, room).await,
        *acknowledged,
        "while running"
    );
    let restarted = database.repository().await;
    assert_eq!(
        stored(&restarted, room).await,
        *acknowledged,
        "after a restart"
    );
    assert!(restarted.check().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_writes_to_an_unwritable_file_and_recovers() {
    let database = TestDatabase::sqlite();
    let repository = database.repository().await;
    let room = new_room(&repository).await;
    let mut acknowledged = Vec::new();
    for _ in 0..3 {
        assert!(type_once(&repository, room, &mut acknowledged).await);
    }
    let Some(fault) = database.make_unwritable() else {
        return;
    };
    for _ in 0..5 {
        assert!(
            !type_once(&repository, room, &mut acknowledged).await,
            "a write to an immutable file was acknowledged"
        );
        assert!(repository.check().await.is_err(), "ready while writes fail");
    }
    // A restart-free reader sees nothing of what was refused.
    assert_eq!(stored(&repository, room).await, acknowledged);
    fault.heal();
    check_recovered(&database, &repository, room, &mut acknowledged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_readiness_recovers_without_edits() {
    let database = TestDatabase::sqlite();
    let repository = database.repository().await;
    let room = new_room(&repository).await;
    let mut acknowledged = Vec::new();
    assert!(type_once(&repository, room, &mut acknowledged).await);
    let Some(fault) = database.make_unwritable() else {
        return;
    };
    assert!(!type_once(&repository, room, &mut acknowledged).await);
    assert!(repository.check().await.is_err());
    fault.heal();
    // Nobody writes: the readiness check itself finds out that writes work again.
    wait_until_healthy(&repository).await;
    check_recovered(&database, &repository, room, &mut acknowledged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_terminated_connections_lose_nothing_and_recover() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let repository = database.repository().await;
    let room = new_room(&repository).await;
    let mut acknowledged = Vec::new();
    for _ in 0..3 {
        assert!(type_once(&repository, room, &mut acknowledged).await);
    }
    assert!(database.terminate_connections().await > 0);
    // The next writes meet dead connections: refused or acknowledged, never both or neither.
    let mut refused = 0;
    for _ in 0..8 {
        if !type_once(&repository, room, &mut acknowledged).await {
            refused += 1;
        }
    }
    assert!(
        refused < 8,
        "no write succeeded after the connections were replaced"
    );
    check_recovered(&database, &repository, room, &mut acknowledged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_readiness_fails_after_a_failed_write_until_writes_work() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let repository = database.repository().await;
    let room = new_room(&repository).await;
    let mut acknowledged = Vec::new();
    assert!(type_once(&repository, room, &mut acknowledged).await);
    // Terminated while a write is queued: the committer's connection is dead when it writes.
    database.terminate_connections().await;
    let refused = !type_once(&repository, room, &mut acknowledged).await;
    assert!(
        refused,
        "a write on a terminated connection was acknowledged"
    );
    // Readiness recovers by itself: the check writes through a fresh connection.
    wait_until_healthy(&repository).await;
    check_recovered(&database, &repository, room, &mut acknowledged).await;
}
