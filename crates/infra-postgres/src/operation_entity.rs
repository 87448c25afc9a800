//! The `operations` table as a sea-orm entity (created by `migration`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "operations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub revision: i64,
    pub client_id: String,
    pub client_seq: i64,
    /// The operation in its ot.js JSON form.
    #[sea_orm(column_type = "Text")]
    pub operation: String,
    pub committed_at: DateTimeUtc,
    /// A digest of what the client sent (the bits of a `u64`), to recognise a resend.
    pub submission_digest: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
