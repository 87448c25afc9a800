//! `rooms.initial_code`: the code a room was created with, kept for good, so that the room's
//! code at any revision can be rebuilt by replaying its log from it. The snapshot in `code`
//! is overwritten as the room moves on; before this column, a room's first code was lost at
//! its first snapshot after revision 0.
//!
//! Rooms that exist already get their snapshot's code when that snapshot is still at revision
//! 0 (then it is the code they were created with); the others keep `NULL`: their code before
//! the current snapshot cannot be rebuilt.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .add_column(text_null(Rooms::InitialCode))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Rooms::Table)
                    .value(Rooms::InitialCode, Expr::col(Rooms::Code))
                    .and_where(Expr::col(Rooms::Revision).eq(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Rooms::Table)
                    .drop_column(Rooms::InitialCode)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Code,
    Revision,
    InitialCode,
}
