//! The `rooms` table as a sea-orm entity (created by `migration`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rooms")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub language: String,
    #[sea_orm(column_type = "Text")]
    pub code: String,
    pub revision: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The code the room was created with; `NULL` for rooms whose first snapshot had moved on
    /// before it was kept.
    #[sea_orm(column_type = "Text", nullable)]
    pub initial_code: Option<String>,
}

/// A room's snapshot: every column but its initial code, which loading a room never needs
/// and which can be as large as the code.
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "Entity")]
pub struct Snapshot {
    pub id: Uuid,
    pub language: String,
    pub code: String,
    pub revision: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
