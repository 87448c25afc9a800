//! Rooms stored before the initial code was kept (`m20261201_000001_keep_initial_code`): the
//! migration keeps the code of those whose snapshot is still at revision 0, which is the code
//! they were created with, and leaves the others unknown. On SQLite and on PostgreSQL.

use chrono::{DateTime, Utc};
use duet_app::ports::RoomRepository;
use duet_domain::RoomId;
use duet_infra_postgres::testing::TestDatabase;
use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Query};

async fn check_the_migration_keeps_what_is_known(database: TestDatabase) {
    let connection = sea_orm::Database::connect(database.url().expose())
        .await
        .expect("opens");
    let before = u32::try_from(Migrator::migrations().len() - 1).expect("few migrations");
    Migrator::up(&connection, Some(before))
        .await
        .expect("migrated up to the one before");
    let (fresh, moved_on) = (RoomId::generate(), RoomId::generate());
    let now = DateTime::<Utc>::from_timestamp(1_704_067_200, 0).unwrap_or_default();
    let insert = Query::insert()
        .into_table(Alias::new("rooms"))
        .columns(
            [
                "id",
                "language",
                "code",
                "revision",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            (*fresh.as_uuid()).into(),
            "python".into(),
            "as created".into(),
            0_i64.into(),
            now.into(),
            now.into(),
        ])
        .values_panic([
            (*moved_on.as_uuid()).into(),
            "python".into(),
            "at revision 5".into(),
            5_i64.into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    connection.execute(&insert).await.expect("stored");
    Migrator::up(&connection, None).await.expect("migrated");
    let _ = connection.close().await;
    let repository = database.repository().await;
    assert_eq!(
        repository
            .initial_code(fresh)
            .await
            .expect("read")
            .as_deref(),
        Some("as created")
    );
    assert_eq!(repository.initial_code(moved_on).await.expect("read"), None);
    // The rooms themselves are as they were.
    let room = repository
        .find(moved_on)
        .await
        .expect("read")
        .expect("found");
    assert_eq!((room.code(), room.revision()), ("at revision 5", 5));
}

#[tokio::test]
async fn sqlite_the_migration_keeps_what_is_known() {
    check_the_migration_keeps_what_is_known(TestDatabase::sqlite()).await;
}

#[tokio::test]
async fn postgres_the_migration_keeps_what_is_known() {
    if let Some(database) = TestDatabase::postgres().await {
        check_the_migration_keeps_what_is_known(database).await;
    }
}
