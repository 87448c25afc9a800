//! What keeps the operation log trustworthy under hostile clients and damaged rows:
//! - `operations.submission_digest`: a digest of what the client sent for that (client, seq),
//!   so a resend is told from a different edit that reuses the sequence number (null for rows
//!   stored before it was kept);
//! - `quarantined_operations`: rows moved out of a room's log because they could not be read
//!   or applied, kept for an operator to inspect while the room opens at its last good state;
//! - `server_keys`: the key that signs clients' resume tokens, made once per database, so that
//!   tokens stay valid across restarts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Operations::Table)
                    .add_column(big_integer_null(Operations::SubmissionDigest))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(QuarantinedOperations::Table)
                    .if_not_exists()
                    .col(pk_auto(QuarantinedOperations::Id))
                    .col(uuid(QuarantinedOperations::RoomId))
                    .col(big_integer(QuarantinedOperations::Revision))
                    .col(string_len(QuarantinedOperations::ClientId, 64))
                    .col(big_integer(QuarantinedOperations::ClientSeq))
                    .col(text(QuarantinedOperations::Operation))
                    .col(timestamp_with_time_zone(QuarantinedOperations::CommittedAt))
                    .col(text(QuarantinedOperations::Reason))
                    .col(timestamp_with_time_zone(
                        QuarantinedOperations::QuarantinedAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ServerKeys::Table)
                    .if_not_exists()
                    .col(string_len(ServerKeys::Name, 64).primary_key())
                    .col(text(ServerKeys::Value))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerKeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(QuarantinedOperations::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Operations::Table)
                    .drop_column(Operations::SubmissionDigest)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Operations {
    Table,
    SubmissionDigest,
}

#[derive(DeriveIden)]
enum QuarantinedOperations {
    Table,
    Id,
    RoomId,
    Revision,
    ClientId,
    ClientSeq,
    Operation,
    CommittedAt,
    Reason,
    QuarantinedAt,
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Name,
    Value,
}
