//! Rooms in the `rooms` table.

use async_trait::async_trait;
use duet_app::ports::{HealthCheck, RepositoryError, RoomRepository};
use duet_domain::{ClientId, CommittedOperation, Language, Room, RoomId, TextOperation};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};

use std::sync::Arc;

use sea_orm::DbBackend;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::operation_entity::{self, Entity as Operations};
use crate::room_entity::{self, Column, Entity as Rooms};

/// The room store on an SQL database (PostgreSQL or SQLite) through sea-orm.
#[derive(Clone, Debug)]
pub struct SqlRoomRepository {
    connection: DatabaseConnection,
    appends: mpsc::Sender<Append>,
}

/// One room's batch of operations waiting for the shared commit.
#[derive(Debug)]
struct Append {
    room: RoomId,
    rows: Vec<operation_entity::ActiveModel>,
    snapshot: Option<Room>,
    done: oneshot::Sender<Result<(), RepositoryError>>,
}

/// How many rooms' appends share one transaction at most.
const APPENDS_PER_COMMIT: usize = 512;
/// Transactions in flight at once on PostgreSQL: rooms are independent (each room waits for
/// its own append before sending the next), and PostgreSQL flushes concurrent commits
/// together, so appends arriving during a commit need not wait for it. SQLite has one writer.
const POSTGRES_COMMITTERS: usize = 4;

impl SqlRoomRepository {
    /// A store on an open, migrated connection (see [`crate::connect`]). It starts the task
    /// that commits appends, so it must be made inside a Tokio runtime.
    #[must_use]
    pub fn new(connection: DatabaseConnection) -> Self {
        let (appends, queue) = mpsc::channel(4 * APPENDS_PER_COMMIT);
        let committers = match connection.get_database_backend() {
            DbBackend::Postgres => POSTGRES_COMMITTERS,
            _ => 1,
        };
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..committers {
            tokio::spawn(commit_appends(connection.clone(), Arc::clone(&queue)));
        }
        Self {
            connection,
            appends,
        }
    }
}

/// Commits the appends of every room that arrive together in one transaction: with many live
/// rooms, one flush to disk then carries the edits of hundreds of rooms instead of one. When a
/// shared transaction fails, each append is retried alone so that the error reaches only the
/// room that caused it.
async fn commit_appends(connection: DatabaseConnection, queue: Arc<Mutex<mpsc::Receiver<Append>>>) {
    let mut batch = Vec::with_capacity(APPENDS_PER_COMMIT);
    // One committer takes what is queued while the others are busy writing.
    while queue
        .lock()
        .await
        .recv_many(&mut batch, APPENDS_PER_COMMIT)
        .await
        > 0
    {
        let appends = std::mem::take(&mut batch);
        if appends.len() > 1 && write_appends(&connection, &appends).await.is_ok() {
            for append in appends {
                let _ = append.done.send(Ok(()));
            }
            continue;
        }
        for append in appends {
            let result = write_appends(&connection, std::slice::from_ref(&append)).await;
            let _ = append.done.send(result);
        }
    }
}

async fn write_appends(
    connection: &DatabaseConnection,
    appends: &[Append],
) -> Result<(), RepositoryError> {
    let transaction = connection.begin().await.map_err(unavailable)?;
    // All rooms' rows in few statements, each under the databases' bound-parameter limits
    // (SQLite's, 32,766, is the lowest: 1,000 rows of 6 columns stay well below).
    let rows: Vec<operation_entity::ActiveModel> = appends
        .iter()
        .flat_map(|append| append.rows.iter().cloned())
        .collect();
    let room = appends.first().map(|append| append.room);
    for chunk in rows.chunks(1000) {
        if let Err(error) = Operations::insert_many(chunk.to_vec())
            .exec_without_returning(&transaction)
            .await
        {
            return Err(match (error.sql_err(), room) {
                (Some(SqlErr::UniqueConstraintViolation(_)), Some(room)) => {
                    RepositoryError::OperationExists(room)
                }
                (Some(SqlErr::ForeignKeyConstraintViolation(_)), Some(room)) => {
                    RepositoryError::RoomNotFound(room)
                }
                _ => unavailable(error),
            });
        }
    }
    for append in appends {
        if let Some(snapshot) = &append.snapshot
            && !write_snapshot(&transaction, snapshot).await?
        {
            return Err(RepositoryError::RoomNotFound(append.room));
        }
    }
    transaction.commit().await.map_err(unavailable)
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

fn into_operation(model: operation_entity::Model) -> Result<CommittedOperation, RepositoryError> {
    let revision = u64::try_from(model.revision)
        .map_err(|_| corrupt(format!("negative revision {}", model.revision)))?;
    let seq = u64::try_from(model.client_seq)
        .map_err(|_| corrupt(format!("negative sequence number {}", model.client_seq)))?;
    let client = ClientId::new(&model.client_id)
        .map_err(|error| corrupt(format!("revision {revision}: {error}")))?;
    let operation: TextOperation = serde_json::from_str(&model.operation)
        .map_err(|error| corrupt(format!("revision {revision} is unreadable: {error}")))?;
    Ok(CommittedOperation {
        revision,
        client,
        seq,
        operation,
        committed_at: model.committed_at,
    })
}

fn operation_row(
    room: RoomId,
    committed: &CommittedOperation,
) -> Result<operation_entity::ActiveModel, RepositoryError> {
    let operation = serde_json::to_string(&committed.operation)
        .map_err(|error| corrupt(format!("operation not serialisable: {error}")))?;
    Ok(operation_entity::ActiveModel {
        room_id: Set(*room.as_uuid()),
        revision: Set(revision_column(committed.revision)?),
        client_id: Set(committed.client.as_str().to_owned()),
        client_seq: Set(revision_column(committed.seq)?),
        operation: Set(operation),
        committed_at: Set(committed.committed_at),
    })
}

/// Writes a room's snapshot columns; `Ok(false)` when there is no such room.
async fn write_snapshot(
    connection: &impl ConnectionTrait,
    room: &Room,
) -> Result<bool, RepositoryError> {
    let result = Rooms::update_many()
        .col_expr(Column::Language, Expr::value(room.language().as_str()))
        .col_expr(Column::Code, Expr::value(room.code()))
        .col_expr(
            Column::Revision,
            Expr::value(revision_column(room.revision())?),
        )
        .col_expr(Column::UpdatedAt, Expr::value(room.updated_at()))
        .filter(Column::Id.eq(*room.id().as_uuid()))
        .exec(connection)
        .await
        .map_err(unavailable)?;
    Ok(result.rows_affected > 0)
}

fn into_room(model: room_entity::Model) -> Result<Room, RepositoryError> {
    let id = RoomId::from_uuid(model.id);
    // A room stored under a language no longer supported is served as plain text.
    let language = Language::new(&model.language).unwrap_or_else(|error| {
        tracing::warn!(room = %id, %error, "stored language not supported; using plain text");
        Language::PlainText
    });
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
        if write_snapshot(&self.connection, room).await? {
            Ok(())
        } else {
            Err(RepositoryError::RoomNotFound(room.id()))
        }
    }

    async fn append(
        &self,
        room: RoomId,
        operations: &[CommittedOperation],
        snapshot: Option<Room>,
    ) -> Result<(), RepositoryError> {
        let rows = operations
            .iter()
            .map(|committed| operation_row(room, committed))
            .collect::<Result<Vec<_>, _>>()?;
        let (done, finished) = oneshot::channel();
        let append = Append {
            room,
            rows,
            snapshot,
            done,
        };
        let stopped = || RepositoryError::Unavailable("the commit task stopped".into());
        self.appends.send(append).await.map_err(|_| stopped())?;
        finished.await.map_err(|_| stopped())?
    }

    async fn operations_since(
        &self,
        room: RoomId,
        revision: u64,
    ) -> Result<Vec<CommittedOperation>, RepositoryError> {
        Operations::find()
            .filter(operation_entity::Column::RoomId.eq(*room.as_uuid()))
            .filter(operation_entity::Column::Revision.gt(revision_column(revision)?))
            .order_by_asc(operation_entity::Column::Revision)
            .all(&self.connection)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(into_operation)
            .collect()
    }

    async fn find_operation(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<u64>, RepositoryError> {
        let revision: Option<i64> = Operations::find()
            .select_only()
            .column(operation_entity::Column::Revision)
            .filter(operation_entity::Column::RoomId.eq(*room.as_uuid()))
            .filter(operation_entity::Column::ClientId.eq(client.as_str()))
            .filter(operation_entity::Column::ClientSeq.eq(revision_column(seq)?))
            .into_tuple()
            .one(&self.connection)
            .await
            .map_err(unavailable)?;
        revision
            .map(|revision| {
                u64::try_from(revision)
                    .map_err(|_| corrupt(format!("negative revision {revision}")))
            })
            .transpose()
    }
}

#[async_trait]
impl HealthCheck for SqlRoomRepository {
    async fn check(&self) -> Result<(), RepositoryError> {
        self.connection.ping().await.map_err(unavailable)
    }
}
