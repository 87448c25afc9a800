//! The `operations` table: each room's log of committed operations, one row a revision, with
//! the sender's (client id, sequence number) unique so that a resent edit is recognised.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Operations::Table)
                    .if_not_exists()
                    .col(uuid(Operations::RoomId))
                    .col(big_integer(Operations::Revision))
                    .col(string_len(Operations::ClientId, 64))
                    .col(big_integer(Operations::ClientSeq))
                    .col(text(Operations::Operation))
                    .col(timestamp_with_time_zone(Operations::CommittedAt))
                    .primary_key(
                        Index::create()
                            .col(Operations::RoomId)
                            .col(Operations::Revision),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_operations_room")
                            .from(Operations::Table, Operations::RoomId)
                            .to(Rooms::Table, Rooms::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_operations_room_client_seq")
                    .table(Operations::Table)
                    .col(Operations::RoomId)
                    .col(Operations::ClientId)
                    .col(Operations::ClientSeq)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Operations::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Operations {
    Table,
    RoomId,
    Revision,
    ClientId,
    ClientSeq,
    Operation,
    CommittedAt,
}

#[derive(DeriveIden)]
enum Rooms {
    Table,
    Id,
}
