//! The room store's contract, run against SQLite and PostgreSQL, and what only the SQL store
//! has: damaged rows, faults, migrations.

use std::ops::Deref;

use duet_infra_postgres::SqlRoomRepository;
use duet_infra_postgres::testing::TestDatabase;

mod damage;
mod deletion;
mod faults;
mod health;
mod initial_code;

/// A repository with the database it lives in.
struct Fixture {
    repository: SqlRoomRepository,
    _database: TestDatabase,
}

impl Deref for Fixture {
    type Target = SqlRoomRepository;

    fn deref(&self) -> &SqlRoomRepository {
        &self.repository
    }
}

impl Fixture {
    async fn on(database: TestDatabase) -> Self {
        Self {
            repository: database.repository().await,
            _database: database,
        }
    }
}

mod sqlite {
    use super::*;

    async fn make() -> Option<Fixture> {
        Some(Fixture::on(TestDatabase::sqlite()).await)
    }

    duet_app::room_repository_contract!(make);
}

mod postgres {
    use super::*;

    async fn make() -> Option<Fixture> {
        Some(Fixture::on(TestDatabase::postgres().await?).await)
    }

    duet_app::room_repository_contract!(make);
}
