//! What the SQL store does with rows it cannot read back, and the key it keeps for resume
//! tokens: on SQLite and on PostgreSQL.

use duet_app::ports::{KeyStore, RepositoryError, RoomRepository};
use duet_domain::{ClientId, CommittedOperation, Language, Room, RoomId, TextOperation};
use duet_infra_postgres::testing::TestDatabase;
use sea_orm::ConnectionTrait;

async fn check_an_unreadable_row_is_reported_with_what_precedes_it(database: TestDatabase) {
    let repository = database.repository().await;
    let room = Room::new(
        RoomId::generate(),
        Language::default(),
        "abc".into(),
        duet_app::ports::Clock::now(&duet_app::ports::SystemClock),
    )
    .expect("valid");
    repository.insert(&room).await.expect("inserted");
    let operation = |revision: u64, text: &str| CommittedOperation {
        revision,
        client: ClientId::new("alice").expect("valid"),
        seq: revision,
        operation: TextOperation::new()
            .retain(2 + usize::try_from(revision).unwrap_or(0))
            .insert(text),
        committed_at: room.created_at(),
        submission_digest: Some(u64::MAX - revision),
    };
    let operations = [operation(1, "d"), operation(2, "e"), operation(3, "f")];
    repository
        .append(room.id(), &operations, None)
        .await
        .expect("appended");
    // The hostile operation of the issue, as a store that summed it with wrapping arithmetic
    // would have written it.
    let connection = database.connect().await.expect("opens");
    connection
        // The scratch database holds this one room.
        .execute_unprepared("UPDATE operations SET operation = '[0,\"X\",3' WHERE revision = 2")
        .await
        .expect("damaged");
    match repository.operations_since(room.id(), 0).await {
        Err(RepositoryError::Unreadable {
            revision, readable, ..
        }) => {
            assert_eq!(revision, 2);
            assert_eq!(readable, operations[..1]);
        }
        other => panic!("expected the damage to be reported, got {other:?}"),
    }
    // A page of the history stops at it the same way; one that does not reach it is whole.
    match repository
        .operations_between(room.id(), 0, 3, 10, usize::MAX)
        .await
    {
        Err(RepositoryError::Unreadable {
            revision, readable, ..
        }) => {
            assert_eq!(revision, 2);
            assert_eq!(readable, operations[..1]);
        }
        other => panic!("expected the damage to be reported, got {other:?}"),
    }
    assert_eq!(
        repository
            .operations_between(room.id(), 2, 3, 10, usize::MAX)
            .await
            .expect("readable"),
        operations[2..]
    );
    assert_eq!(
        repository
            .quarantine(room.id(), 2, "unreadable")
            .await
            .expect("moved"),
        2
    );
    assert_eq!(
        repository
            .operations_since(room.id(), 0)
            .await
            .expect("readable again"),
        operations[..1]
    );
    let quarantined = connection
        .query_one_raw(sea_orm::Statement::from_string(
            connection.get_database_backend(),
            "SELECT COUNT(*) AS count FROM quarantined_operations",
        ))
        .await
        .expect("counted")
        .expect("a row");
    assert_eq!(quarantined.try_get::<i64>("", "count").expect("a count"), 2);
}

async fn check_the_resume_key_is_made_once(database: TestDatabase) {
    let first = database
        .repository()
        .await
        .resume_key()
        .await
        .expect("made");
    let again = database
        .repository()
        .await
        .resume_key()
        .await
        .expect("read");
    assert_eq!(first, again);
    assert_ne!(first, [0; 32]);
    let other = TestDatabase::sqlite().repository().await.resume_key().await;
    assert_ne!(Some(first), other.ok(), "each database has its own key");
}

#[tokio::test]
async fn sqlite_an_unreadable_row_is_reported_with_what_precedes_it() {
    check_an_unreadable_row_is_reported_with_what_precedes_it(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn postgres_an_unreadable_row_is_reported_with_what_precedes_it() {
    if let Some(database) = TestDatabase::postgres().await {
        check_an_unreadable_row_is_reported_with_what_precedes_it(database).await;
    }
}

#[tokio::test]
async fn sqlite_the_resume_key_is_made_once() {
    check_the_resume_key_is_made_once(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn postgres_the_resume_key_is_made_once() {
    if let Some(database) = TestDatabase::postgres().await {
        check_the_resume_key_is_made_once(database).await;
    }
}
