//! Duet's database migrations, in the sea-orm-migration layout. The server runs them at start-up;
//! `make migrate` runs them on their own. A migration is never edited once released: add one.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_rooms;
mod m20261126_000001_create_operations;
mod m20261126_000002_guard_the_log;
mod m20261126_000003_create_write_probes;
mod m20261201_000001_keep_initial_code;

/// Every migration, in the order it applies.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_rooms::Migration),
            Box::new(m20261126_000001_create_operations::Migration),
            Box::new(m20261126_000002_guard_the_log::Migration),
            Box::new(m20261126_000003_create_write_probes::Migration),
            Box::new(m20261201_000001_keep_initial_code::Migration),
        ]
    }
}
