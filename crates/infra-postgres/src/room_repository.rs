//! Rooms in the `rooms` table, their operations in `operations`, and what happens when a write
//! fails.
//!
//! A failed write is handled, not just reported. Appends are written by committer tasks, each
//! through a connection it owns: after any error from `BEGIN`, a statement or `COMMIT` the
//! committer closes that connection and opens a fresh one for its next batch. A failed `COMMIT`
//! can leave a connection inside a transaction that sqlx no longer counts correctly (its
//! transaction depth is only lowered when `COMMIT`/`ROLLBACK` succeed, so later transactions
//! on it become savepoints that never commit and hold SQLite's write lock); closing the
//! connection makes the database roll back whatever it holds. The shared pool only runs reads
//! and single-statement (autocommit) writes, which leave no transaction behind.
//!
//! Every write's outcome is recorded: after one fails, the readiness check fails until a probe
//! write (to `write_probes`) through a fresh connection succeeds, so readiness recovers by
//! itself once the database takes writes again.

use async_trait::async_trait;
use duet_app::ports::{HealthCheck, KeyStore, RecordedSubmission, RepositoryError, RoomRepository};
use duet_domain::{ClientId, CommittedOperation, Language, Room, RoomId, TextOperation};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sea_orm::DbBackend;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::connection::{DatabaseUrl, connect_writer};
use crate::operation_entity::{self, Entity as Operations};
use crate::room_entity::{self, Column, Entity as Rooms};
use crate::write_probe_entity::{self, Entity as WriteProbes};

/// The room store on an SQL database (PostgreSQL or SQLite) through sea-orm.
#[derive(Clone, Debug)]
pub struct SqlRoomRepository {
    /// The shared pool: reads and single-statement writes only, never a transaction.
    connection: DatabaseConnection,
    url: DatabaseUrl,
    appends: mpsc::Sender<Append>,
    writes: Arc<WriteHealth>,
}

/// One room's batch of operations waiting for the shared commit.
#[derive(Debug)]
struct Append {
    room: RoomId,
    rows: Vec<operation_entity::ActiveModel>,
    snapshot: Option<Room>,
    done: oneshot::Sender<Result<(), RepositoryError>>,
}

/// Whether the last write failed, for the readiness check, and how many failed so far, so that
/// every committer replaces its connection after any of them saw the store fail: a database
/// restart or a terminated backend breaks all their connections at once.
#[derive(Debug, Default)]
struct WriteHealth {
    failing: AtomicBool,
    failures: AtomicU64,
}

impl WriteHealth {
    /// Notes a write's outcome: a store failure marks writes as failing, a success as working;
    /// a refusal for the data's sake (a taken id, a missing room) says nothing about the store.
    fn record<T>(&self, result: &Result<T, RepositoryError>) {
        match result {
            Ok(_) => self.failing.store(false, Ordering::Release),
            Err(RepositoryError::Unavailable(_) | RepositoryError::Indeterminate(_)) => {
                self.failures.fetch_add(1, Ordering::AcqRel);
                self.failing.store(true, Ordering::Release);
            }
            Err(_) => {}
        }
    }

    fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }
}

/// How many rooms' appends share one transaction at most.
const APPENDS_PER_COMMIT: usize = 512;
/// Transactions in flight at once on PostgreSQL: rooms are independent (each room waits for
/// its own append before sending the next), and PostgreSQL flushes concurrent commits
/// together, so appends arriving during a commit need not wait for it. SQLite has one writer.
const POSTGRES_COMMITTERS: usize = 4;

impl SqlRoomRepository {
    /// A store on an open, migrated connection pool (see [`crate::connect`]) for reads, with
    /// committer tasks that each open their own connection to `url` for appends. It starts
    /// those tasks, so it must be made inside a Tokio runtime.
    #[must_use]
    pub fn new(connection: DatabaseConnection, url: &DatabaseUrl) -> Self {
        let (appends, queue) = mpsc::channel(4 * APPENDS_PER_COMMIT);
        let committers = match connection.get_database_backend() {
            DbBackend::Postgres => POSTGRES_COMMITTERS,
            _ => 1,
        };
        let queue = Arc::new(Mutex::new(queue));
        let writes = Arc::new(WriteHealth::default());
        for _ in 0..committers {
            let committer = Committer {
                url: url.clone(),
                connection: None,
                writes: Arc::clone(&writes),
            };
            tokio::spawn(committer.run(Arc::clone(&queue)));
        }
        Self {
            connection,
            url: url.clone(),
            appends,
            writes,
        }
    }

    /// Writes the probe row through a connection of its own, closed afterwards.
    async fn probe_write(&self) -> Result<(), DbErr> {
        let connection = connect_writer(&self.url).await?;
        let row = write_probe_entity::ActiveModel {
            id: Set(1),
            written_at: Set(chrono::Utc::now()),
        };
        let written = WriteProbes::insert(row)
            .on_conflict(
                OnConflict::column(write_probe_entity::Column::Id)
                    .update_column(write_probe_entity::Column::WrittenAt)
                    .to_owned(),
            )
            .exec_without_returning(&connection)
            .await;
        let _ = connection.close().await;
        written.map(|_| ())
    }
}

/// A committer task with the connection it writes through, opened when needed and closed
/// after any failure.
struct Committer {
    url: DatabaseUrl,
    /// The connection, with the number of store failures seen when it was opened.
    connection: Option<(DatabaseConnection, u64)>,
    writes: Arc<WriteHealth>,
}

impl Committer {
    /// Commits the appends of every room that arrive together in one transaction: with many
    /// live rooms, one flush to disk then carries the edits of hundreds of rooms instead of
    /// one. When a shared transaction fails because of one room's data, each append is retried
    /// alone so that the error reaches only that room; when the store fails, every append of
    /// the batch is refused.
    async fn run(mut self, queue: Arc<Mutex<mpsc::Receiver<Append>>>) {
        // Connect before the first batch arrives, so it does not wait for that; a failure
        // here is retried when the batch comes.
        let failures = self.writes.failures();
        self.connection = connect_writer(&self.url)
            .await
            .ok()
            .map(|connection| (connection, failures));
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
            if appends.len() > 1 {
                let result = self.write(&appends).await;
                self.writes.record(&result);
                match result {
                    Ok(()) => {
                        for append in appends {
                            let _ = append.done.send(Ok(()));
                        }
                        continue;
                    }
                    Err(RepositoryError::Unavailable(cause)) => {
                        let cause = SharedCause(Arc::from(cause));
                        for append in appends {
                            let error = RepositoryError::Unavailable(Box::new(cause.clone()));
                            let _ = append.done.send(Err(error));
                        }
                        continue;
                    }
                    Err(RepositoryError::Indeterminate(cause)) => {
                        let cause = SharedCause(Arc::from(cause));
                        for append in appends {
                            let error = RepositoryError::Indeterminate(Box::new(cause.clone()));
                            let _ = append.done.send(Err(error));
                        }
                        continue;
                    }
                    Err(_) => {}
                }
            }
            for append in appends {
                let result = self.write(std::slice::from_ref(&append)).await;
                self.writes.record(&result);
                let _ = append.done.send(result);
            }
        }
    }

    /// Writes `appends` in one transaction. After any error the connection is closed, so the
    /// database rolls back whatever it still holds and no later batch runs on it.
    /// A connection opened before the store last failed (here or in another committer) is
    /// replaced first: it may be as broken as the one that failed.
    async fn write(&mut self, appends: &[Append]) -> Result<(), RepositoryError> {
        let failures = self.writes.failures();
        let connection = match self.connection.take() {
            Some((connection, opened_after)) if opened_after == failures => connection,
            stale => {
                if let Some((connection, _)) = stale {
                    let _ = connection.close().await;
                }
                connect_writer(&self.url).await.map_err(unavailable)?
            }
        };
        let result = write_appends(&connection, appends).await;
        if result.is_ok() {
            self.connection = Some((connection, failures));
        } else {
            let _ = connection.close().await;
        }
        result
    }
}

/// One store failure reported to every append of a batch.
#[derive(Clone, Debug)]
struct SharedCause(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
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
    // A failure here may come after the database committed (the connection lost on the way
    // back): the outcome is unknown, and the caller asks.
    transaction
        .commit()
        .await
        .map_err(|error| RepositoryError::Indeterminate(Box::new(error)))
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

/// Reads stored operations back, in the order given. A row that cannot be read is reported
/// with everything before it, so a room can still open at its last good state.
fn read_operations(
    room: RoomId,
    rows: Vec<operation_entity::Model>,
) -> Result<Vec<CommittedOperation>, RepositoryError> {
    let mut readable = Vec::with_capacity(rows.len());
    for row in rows {
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

fn into_room(model: room_entity::Snapshot) -> Result<Room, RepositoryError> {
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
            initial_code: Set((room.revision() == 0).then(|| room.code().to_owned())),
        };
        // One statement in autocommit mode: a failure leaves no transaction on the connection.
        let result = match Rooms::insert(row)
            .exec_without_returning(&self.connection)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(RepositoryError::RoomExists(room.id()))
            }
            Err(error) => Err(unavailable(error)),
        };
        self.writes.record(&result);
        result
    }

    async fn find(&self, id: RoomId) -> Result<Option<Room>, RepositoryError> {
        Rooms::find_by_id(*id.as_uuid())
            .into_partial_model::<room_entity::Snapshot>()
            .one(&self.connection)
            .await
            .map_err(unavailable)?
            .map(into_room)
            .transpose()
    }

    async fn save(&self, room: &Room) -> Result<(), RepositoryError> {
        // One statement in autocommit mode, like `insert`.
        let result = match write_snapshot(&self.connection, room).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RepositoryError::RoomNotFound(room.id())),
            Err(error) => Err(error),
        };
        self.writes.record(&result);
        result
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
        read_operations(room, rows)
    }

    async fn operations_between(
        &self,
        room: RoomId,
        after: u64,
        up_to: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<CommittedOperation>, RepositoryError> {
        // No stored revision is past i64::MAX, so bounds past it are as good as it; so is a
        // limit past it (SQL's LIMIT is a signed 64-bit integer).
        let (Ok(after), up_to) = (
            i64::try_from(after),
            i64::try_from(up_to).unwrap_or(i64::MAX),
        ) else {
            return Ok(Vec::new());
        };
        if limit == 0 || up_to <= after {
            return Ok(Vec::new());
        }
        const MOST: u64 = i64::MAX.unsigned_abs();
        let limit = u64::try_from(limit).unwrap_or(MOST).min(MOST);
        let range = || {
            Operations::find()
                .filter(operation_entity::Column::RoomId.eq(*room.as_uuid()))
                .filter(operation_entity::Column::Revision.gt(after))
                .order_by_asc(operation_entity::Column::Revision)
                .limit(limit)
        };
        // Held to `max_bytes`: the sizes of the page's rows first (their stored JSON, in
        // bytes), then only the rows that fit, so large operations are never all read at once.
        let up_to = if max_bytes == usize::MAX {
            up_to
        } else {
            let size = match self.connection.get_database_backend() {
                DbBackend::Sqlite => "LENGTH(CAST(\"operation\" AS BLOB))",
                _ => "CAST(OCTET_LENGTH(\"operation\") AS BIGINT)",
            };
            let sizes: Vec<(i64, i64)> = range()
                .filter(operation_entity::Column::Revision.lte(up_to))
                .select_only()
                .column(operation_entity::Column::Revision)
                .column_as(Expr::cust(size), "size")
                .into_tuple()
                .all(&self.connection)
                .await
                .map_err(unavailable)?;
            let mut total = 0usize;
            let mut last = None;
            for (revision, size) in sizes {
                total = total.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
                if last.is_some() && total > max_bytes {
                    break;
                }
                last = Some(revision);
            }
            match last {
                Some(last) => last,
                None => return Ok(Vec::new()),
            }
        };
        let rows = range()
            .filter(operation_entity::Column::Revision.lte(up_to))
            .all(&self.connection)
            .await
            .map_err(unavailable)?;
        read_operations(room, rows)
    }

    async fn initial_code(&self, room: RoomId) -> Result<Option<String>, RepositoryError> {
        let code: Option<Option<String>> = Rooms::find_by_id(*room.as_uuid())
            .select_only()
            .column(Column::InitialCode)
            .into_tuple()
            .one(&self.connection)
            .await
            .map_err(unavailable)?;
        Ok(code.flatten())
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

    async fn confirm_stored(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<u64>, RepositoryError> {
        let connection = connect_writer(&self.url).await.map_err(unavailable)?;
        let found: Result<Option<i64>, DbErr> = Operations::find()
            .select_only()
            .column(operation_entity::Column::Revision)
            .filter(operation_entity::Column::RoomId.eq(*room.as_uuid()))
            .filter(operation_entity::Column::ClientId.eq(client.as_str()))
            .filter(operation_entity::Column::ClientSeq.eq(revision_column(seq)?))
            .into_tuple()
            .one(&connection)
            .await;
        let _ = connection.close().await;
        found
            .map_err(unavailable)?
            .map(|revision| {
                u64::try_from(revision)
                    .map_err(|_| corrupt(format!("negative revision {revision}")))
            })
            .transpose()
    }

    async fn latest_seq(
        &self,
        room: RoomId,
        client: &ClientId,
    ) -> Result<Option<u64>, RepositoryError> {
        let latest: Option<Option<i64>> = Operations::find()
            .select_only()
            .column_as(operation_entity::Column::ClientSeq.max(), "latest")
            .filter(operation_entity::Column::RoomId.eq(*room.as_uuid()))
            .filter(operation_entity::Column::ClientId.eq(client.as_str()))
            .into_tuple()
            .one(&self.connection)
            .await
            .map_err(unavailable)?;
        latest
            .flatten()
            .map(|seq| u64::try_from(seq).map_err(|_| corrupt(format!("negative seq {seq}"))))
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
        // Copy, then delete, in one transaction: the rows are kept for an operator as they
        // were, damaged or not. The transaction runs on a connection of its own, closed
        // afterwards whatever happened, so a failed commit cannot leave a pooled connection
        // inside a transaction.
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
        let connection = connect_writer(&self.url).await.map_err(unavailable)?;
        let result = async {
            let transaction = connection.begin().await?;
            transaction.execute_raw(copy).await?;
            let deleted = Operations::delete_many()
                .filter(operation_entity::Column::RoomId.eq(uuid))
                .filter(operation_entity::Column::Revision.gte(from))
                .exec(&transaction)
                .await?;
            transaction.commit().await?;
            Ok::<u64, DbErr>(deleted.rows_affected)
        }
        .await
        .map_err(unavailable);
        let _ = connection.close().await;
        self.writes.record(&result);
        result
    }

    async fn delete(&self, room: RoomId) -> Result<bool, RepositoryError> {
        let backend = self.connection.get_database_backend();
        let uuid = *room.as_uuid();
        let quarantined = sea_orm::Statement::from_sql_and_values(
            backend,
            match backend {
                DbBackend::Postgres => "DELETE FROM quarantined_operations WHERE room_id = $1",
                _ => "DELETE FROM quarantined_operations WHERE room_id = ?",
            },
            [uuid.into()],
        );
        // One transaction on a connection of its own, as for quarantine: the log, what was
        // quarantined and the room go together or not at all (SQLite enforces no foreign keys
        // unless asked, so the log is deleted explicitly).
        let connection = connect_writer(&self.url).await.map_err(unavailable)?;
        let sqlite = backend == DbBackend::Sqlite;
        let result = async {
            if sqlite {
                // Deleted code is overwritten with zeros rather than left in free pages.
                connection
                    .execute_unprepared("PRAGMA secure_delete = ON")
                    .await?;
            }
            let transaction = connection.begin().await?;
            Operations::delete_many()
                .filter(operation_entity::Column::RoomId.eq(uuid))
                .exec(&transaction)
                .await?;
            transaction.execute_raw(quarantined).await?;
            let deleted = Rooms::delete_by_id(uuid).exec(&transaction).await?;
            transaction.commit().await?;
            if sqlite {
                // The write-ahead log still holds the pages as they were until a checkpoint
                // resets it; best effort, since readers may hold it (the next checkpoint
                // does it then).
                let _ = connection
                    .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await;
            }
            Ok::<bool, DbErr>(deleted.rows_affected > 0)
        }
        .await
        .map_err(unavailable);
        let _ = connection.close().await;
        self.writes.record(&result);
        result
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
    /// While writes work, a ping; after a write failed, a real write through a fresh
    /// connection, which marks writes as working again when it succeeds.
    async fn check(&self) -> Result<(), RepositoryError> {
        if !self.writes.failing() {
            return self.connection.ping().await.map_err(unavailable);
        }
        let probed = self.probe_write().await.map_err(unavailable);
        self.writes.record(&probed);
        probed
    }
}
