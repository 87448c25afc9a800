//! What deleting a room leaves behind on disk: nothing of its code.

use chrono::Utc;
use duet_app::ports::RoomRepository;
use duet_domain::{ClientId, CommittedOperation, Language, Room, RoomId, TextOperation};
use duet_infra_postgres::testing::TestDatabase;

/// Whether `marker` is anywhere in the SQLite database's files (the database and its log).
fn on_disk(database: &TestDatabase, marker: &str) -> bool {
    let file = database.sqlite_file().expect("a SQLite database");
    let mut wal = file.clone().into_os_string();
    wal.push("-wal");
    [file.into_os_string(), wal].iter().any(|path| {
        std::fs::read(path).is_ok_and(|bytes| {
            bytes
                .windows(marker.len())
                .any(|window| window == marker.as_bytes())
        })
    })
}

#[tokio::test]
async fn a_deleted_room_s_code_is_not_left_in_the_sqlite_files() {
    let database = TestDatabase::sqlite();
    let repository = database.repository().await;
    let snapshot_marker = "SNAPSHOT-4d1f7e-never-to-be-seen-again";
    let log_marker = "LOGGED-9b2c55-never-to-be-seen-again";
    let room = Room::new(
        RoomId::generate(),
        Language::default(),
        snapshot_marker.into(),
        Utc::now(),
    )
    .expect("a room");
    repository.insert(&room).await.expect("inserted");
    let operation = CommittedOperation {
        revision: 1,
        client: ClientId::new("ada").expect("an id"),
        seq: 1,
        operation: TextOperation::new()
            .retain(snapshot_marker.len())
            .insert(log_marker),
        committed_at: Utc::now(),
        submission_digest: None,
    };
    repository
        .append(room.id(), &[operation], None)
        .await
        .expect("appended");
    assert!(on_disk(&database, snapshot_marker) && on_disk(&database, log_marker));
    assert!(repository.delete(room.id()).await.expect("deleted"));
    for marker in [snapshot_marker, log_marker] {
        assert!(!on_disk(&database, marker), "{marker} is still on disk");
    }
}
