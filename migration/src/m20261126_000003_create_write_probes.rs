//! The `write_probes` table: one row the readiness check rewrites, after a failed write, to find
//! out whether the database takes writes again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WriteProbes::Table)
                    .if_not_exists()
                    .col(integer(WriteProbes::Id).primary_key())
                    .col(timestamp_with_time_zone(WriteProbes::WrittenAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WriteProbes::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WriteProbes {
    Table,
    Id,
    WrittenAt,
}
