//! Rooms in the `rooms` table.

use async_trait::async_trait;
use duet_app::ports::{HealthCheck, KeyStore, RecordedSubmission, RepositoryError, RoomRepository};
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

/// Reads a stored operation back; `Err` says why it cannot be.
fn into_operation(model: operation_entity::Model) -> Result<CommittedOperation, String> {
    let revision = u64::try_from(model.revision)
        .map_err(|_| format!("negative revision {}", model.revision))?;
    let seq = u64::try_from(model.client_seq)
        .map_err(|_| format!("negative sequence number {}", model.client_seq))?;
    let client = ClientId::new(&model.client_id).map_err(|error| error.to_string())?;
    let operation: TextOperation =
        serde_json::from_str(&model.operation).map_err(|error| error.to_string())?;
    Ok(CommittedOperation {
        revision,
        client,
        seq,
        operation,
        committed_at: model.committed_at,
        submission_digest: model
            .submission_digest
            .map(|digest| u64::from_le_bytes(digest.to_le_bytes())),
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
        // Stored as the bits of the digest: SQL has no unsigned 64-bit integer.
        submission_digest: Set(committed
            .submission_digest
            .map(|digest| i64::from_le_bytes(digest.to_le_bytes()))),
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
        let rows = Operations::find()
            .filter(operation_entity::Column::RoomId.eq(*room.as_uuid()))
            .filter(operation_entity::Column::Revision.gt(revision_column(revision)?))
            .order_by_asc(operation_entity::Column::Revision)
            .all(&self.connection)
            .await
            .map_err(unavailable)?;
        let mut readable = Vec::with_capacity(rows.len());
        for row in rows {
            // A row that cannot be read is reported with everything before it, so the room
            // can still open at its last good state.
            let damaged = u64::try_from(row.revision).unwrap_or(0);
            match into_operation(row) {
                Ok(operation) => readable.push(operation),
                Err(reason) => {
                    return Err(RepositoryError::Unreadable {
                        room,
                        revision: damaged,
                        reason,
                        readable,
                    });
                }
            }
        }
        Ok(readable)
    }

    async fn find_operation(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<RecordedSubmission>, RepositoryError> {
        let found: Option<(i64, Option<i64>)> = Operations::find()
            .select_only()
            .column(operation_entity::Column::Revision)
            .column(operation_entity::Column::SubmissionDigest)
            .filter(operation_entity::Column::RoomId.eq(*room.as_uuid()))
            .filter(operation_entity::Column::ClientId.eq(client.as_str()))
            .filter(operation_entity::Column::ClientSeq.eq(revision_column(seq)?))
            .into_tuple()
            .one(&self.connection)
            .await
            .map_err(unavailable)?;
        found
            .map(|(revision, digest)| {
                let revision = u64::try_from(revision)
                    .map_err(|_| corrupt(format!("negative revision {revision}")))?;
                Ok(RecordedSubmission {
                    revision,
                    digest: digest.map(|digest| u64::from_le_bytes(digest.to_le_bytes())),
                })
            })
            .transpose()
    }

    async fn has_client(&self, room: RoomId, client: &ClientId) -> Result<bool, RepositoryError> {
        let found: Option<i64> = Operations::find()
            .select_only()
            .column(operation_entity::Column::Revision)
            .filter(operation_entity::Column::RoomId.eq(*room.as_uuid()))
            .filter(operation_entity::Column::ClientId.eq(client.as_str()))
            .into_tuple()
            .one(&self.connection)
            .await
            .map_err(unavailable)?;
        Ok(found.is_some())
    }

    async fn quarantine(
        &self,
        room: RoomId,
        from: u64,
        reason: &str,
    ) -> Result<u64, RepositoryError> {
        let backend = self.connection.get_database_backend();
        let uuid = *room.as_uuid();
        let from = revision_column(from)?;
        let now = chrono::Utc::now();
        let transaction = self.connection.begin().await.map_err(unavailable)?;
        // Copy, then delete, in one transaction: the rows are kept for an operator as they
        // were, damaged or not.
        let copy = sea_orm::Statement::from_sql_and_values(
            backend,
            match backend {
                DbBackend::Postgres => {
                    "INSERT INTO quarantined_operations (room_id, revision, client_id, client_seq, operation, committed_at, reason, quarantined_at) \
                     SELECT room_id, revision, client_id, client_seq, operation, committed_at, $1, $2 FROM operations WHERE room_id = $3 AND revision >= $4"
                }
                _ => {
                    "INSERT INTO quarantined_operations (room_id, revision, client_id, client_seq, operation, committed_at, reason, quarantined_at) \
                     SELECT room_id, revision, client_id, client_seq, operation, committed_at, ?, ? FROM operations WHERE room_id = ? AND revision >= ?"
                }
            },
            [reason.into(), now.into(), uuid.into(), from.into()],
        );
        let result = async {
            transaction.execute_raw(copy).await?;
            let deleted = Operations::delete_many()
                .filter(operation_entity::Column::RoomId.eq(uuid))
                .filter(operation_entity::Column::Revision.gte(from))
                .exec(&transaction)
                .await?;
            Ok::<u64, DbErr>(deleted.rows_affected)
        }
        .await;
        match result {
            Ok(moved) => {
                transaction.commit().await.map_err(unavailable)?;
                Ok(moved)
            }
            Err(error) => {
                let _ = transaction.rollback().await;
                Err(unavailable(error))
            }
        }
    }
}

#[async_trait]
impl KeyStore for SqlRoomRepository {
    async fn resume_key(&self) -> Result<[u8; 32], RepositoryError> {
        const NAME: &str = "resume_token_key";
        let backend = self.connection.get_database_backend();
        let read = || {
            sea_orm::Statement::from_sql_and_values(
                backend,
                match backend {
                    DbBackend::Postgres => "SELECT value FROM server_keys WHERE name = $1",
                    _ => "SELECT value FROM server_keys WHERE name = ?",
                },
                [NAME.into()],
            )
        };
        // Two UUIDv4s carry 244 bits from the operating system's random source; the key is
        // made once per database, and whichever server stores it first wins.
        let fresh = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let insert = sea_orm::Statement::from_sql_and_values(
            backend,
            match backend {
                DbBackend::Postgres => {
                    "INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
                }
                _ => {
                    "INSERT INTO server_keys (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
                }
            },
            [NAME.into(), fresh.into()],
        );
        self.connection
            .execute_raw(insert)
            .await
            .map_err(unavailable)?;
        let row = self
            .connection
            .query_one_raw(read())
            .await
            .map_err(unavailable)?
            .ok_or_else(|| corrupt("the resume key was not stored".to_owned()))?;
        let value: String = row.try_get("", "value").map_err(unavailable)?;
        key_from_hex(&value).ok_or_else(|| corrupt("the stored resume key is malformed".to_owned()))
    }
}

/// The 32 bytes written as 64 hexadecimal digits.
fn key_from_hex(value: &str) -> Option<[u8; 32]> {
    let digits = value.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut key = [0; 32];
    for (byte, pair) in key.iter_mut().zip(digits.chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(key)
}

#[async_trait]
impl HealthCheck for SqlRoomRepository {
    async fn check(&self) -> Result<(), RepositoryError> {
        self.connection.ping().await.map_err(unavailable)
    }
}
