//! Rooms in the `rooms` table.

use async_trait::async_trait;
use duet_app::ports::{HealthCheck, RepositoryError, RoomRepository};
use duet_domain::{Language, Room, RoomId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, SqlErr,
};

use crate::room_entity::{self, Column, Entity as Rooms};

/// The room store on an SQL database (PostgreSQL or SQLite) through sea-orm.
#[derive(Clone, Debug)]
pub struct SqlRoomRepository {
    connection: DatabaseConnection,
}

impl SqlRoomRepository {
    /// A store on an open, migrated connection (see [`crate::connect`]).
    #[must_use]
    pub const fn new(connection: DatabaseConnection) -> Self {
        Self { connection }
    }
}

fn unavailable(error: DbErr) -> RepositoryError {
    RepositoryError::Unavailable(Box::new(error))
}

fn corrupt(what: String) -> RepositoryError {
    RepositoryError::Unavailable(what.into())
}

fn revision_column(revision: u64) -> Result<i64, RepositoryError> {
    i64::try_from(revision).map_err(|_| corrupt(format!("revision {revision} is too large")))
}

fn into_room(model: room_entity::Model) -> Result<Room, RepositoryError> {
    let id = RoomId::from_uuid(model.id);
    let language = Language::new(&model.language)
        .map_err(|error| corrupt(format!("room {id} has a bad language: {error}")))?;
    let revision = u64::try_from(model.revision)
        .map_err(|_| corrupt(format!("room {id} has a negative revision")))?;
    Ok(Room::restore(
        id,
        language,
        model.code,
        revision,
        model.created_at,
        model.updated_at,
    ))
}

#[async_trait]
impl RoomRepository for SqlRoomRepository {
    async fn insert(&self, room: &Room) -> Result<(), RepositoryError> {
        let row = room_entity::ActiveModel {
            id: Set(*room.id().as_uuid()),
            language: Set(room.language().as_str().to_owned()),
            code: Set(room.code().to_owned()),
            revision: Set(revision_column(room.revision())?),
            created_at: Set(room.created_at()),
            updated_at: Set(room.updated_at()),
        };
        match Rooms::insert(row)
            .exec_without_returning(&self.connection)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(RepositoryError::RoomExists(room.id()))
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn find(&self, id: RoomId) -> Result<Option<Room>, RepositoryError> {
        Rooms::find_by_id(*id.as_uuid())
            .one(&self.connection)
            .await
            .map_err(unavailable)?
            .map(into_room)
            .transpose()
    }

    async fn save(&self, room: &Room) -> Result<(), RepositoryError> {
        let result = Rooms::update_many()
            .col_expr(Column::Language, Expr::value(room.language().as_str()))
            .col_expr(Column::Code, Expr::value(room.code()))
            .col_expr(
                Column::Revision,
                Expr::value(revision_column(room.revision())?),
            )
            .col_expr(Column::UpdatedAt, Expr::value(room.updated_at()))
            .filter(Column::Id.eq(*room.id().as_uuid()))
            .exec(&self.connection)
            .await
            .map_err(unavailable)?;
        if result.rows_affected == 0 {
            Err(RepositoryError::RoomNotFound(room.id()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl HealthCheck for SqlRoomRepository {
    async fn check(&self) -> Result<(), RepositoryError> {
        self.connection.ping().await.map_err(unavailable)
    }
}
