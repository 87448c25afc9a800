//! The ports the use cases need, each named for its role. Adapters implement them.

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use duet_domain::{ClientId, CommittedOperation, Room, RoomId};

/// A boxed error from an adapter, kept as the cause of a port error so it can be logged.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a storage port can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The room named by the call does not exist.
    #[error("room {0} does not exist")]
    RoomNotFound(RoomId),
    /// A room with that id exists already.
    #[error("room {0} already exists")]
    RoomExists(RoomId),
    /// An operation with that revision, or that client and sequence number, is stored already.
    #[error("room {0} already has an operation at that revision or with that client sequence")]
    OperationExists(RoomId),
    /// The store holds an operation of the room that cannot be read back (a damaged row);
    /// `readable` holds the operations read before it, in order.
    #[error("room {room}: the stored operation at revision {revision} is unreadable: {reason}")]
    Unreadable {
        room: RoomId,
        revision: u64,
        reason: String,
        readable: Vec<CommittedOperation>,
    },
    /// The store could not be reached or failed; the cause is attached for the logs.
    #[error("the room store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store failed while committing (a connection lost during `COMMIT`): what was being
    /// written may or may not be stored.
    #[error("the room store failed while committing; the writes may or may not be stored")]
    Indeterminate(#[source] BoxError),
}

/// What the log records of one (client, seq): the revision it was committed as, and the
/// digest of what the client sent (`None` for operations stored before digests were kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedSubmission {
    pub revision: u64,
    pub digest: Option<u64>,
}

/// About how many bytes an operation takes in a store: the text it inserts, and a few bytes
/// for each of its components (a store that keeps its JSON form may count that instead). Pages
/// of a log are held to a number of these, so that a page of large operations stays small.
#[must_use]
pub fn stored_size(operation: &duet_domain::TextOperation) -> usize {
    operation.inserted_bytes() + 8 * operation.components().len()
}

/// Where rooms are kept.
#[cfg_attr(any(test, feature = "test-support"), mockall::automock)]
#[async_trait]
pub trait RoomRepository: Send + Sync {
    /// Stores a new room. The code of a room at revision 0 (as every new room is) is also
    /// kept as its initial code for good ([`RoomRepository::initial_code`]).
    ///
    /// # Errors
    /// [`RepositoryError::RoomExists`] when the id is taken; [`RepositoryError::Unavailable`]
    /// when the store fails.
    async fn insert(&self, room: &Room) -> Result<(), RepositoryError>;

    /// The room with this id, or `None` when there is none.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store fails.
    async fn find(&self, id: RoomId) -> Result<Option<Room>, RepositoryError>;

    /// Replaces the stored snapshot of an existing room (its code, language, revision and update
    /// time) and returns once that is durable.
    ///
    /// # Errors
    /// [`RepositoryError::RoomNotFound`] when the room does not exist;
    /// [`RepositoryError::Unavailable`] when the store fails.
    async fn save(&self, room: &Room) -> Result<(), RepositoryError>;

    /// Appends committed operations to a room's log, and replaces its snapshot when one is
    /// given, all in one transaction; returns once that is durable.
    ///
    /// # Errors
    /// [`RepositoryError::OperationExists`] when a revision or a (client, seq) pair is taken;
    /// [`RepositoryError::RoomNotFound`] when the room does not exist;
    /// [`RepositoryError::Unavailable`] when the store fails, and nothing is stored;
    /// [`RepositoryError::Indeterminate`] when it failed while committing, and the operations
    /// may or may not be stored (ask [`RoomRepository::confirm_stored`]).
    async fn append(
        &self,
        room: RoomId,
        operations: &[CommittedOperation],
        snapshot: Option<Room>,
    ) -> Result<(), RepositoryError>;

    /// The operations of a room after `revision`, in order.
    ///
    /// # Errors
    /// [`RepositoryError::Unreadable`] naming the first operation that cannot be read back;
    /// [`RepositoryError::Unavailable`] when the store fails.
    async fn operations_since(
        &self,
        room: RoomId,
        revision: u64,
    ) -> Result<Vec<CommittedOperation>, RepositoryError>;

    /// A page of a room's log: its operations with revisions after `after` and up to `up_to`
    /// (`after < revision <= up_to`), oldest first, at most `limit` of them, and no more than
    /// fit in `max_bytes` of their stored form (see [`stored_size`]), though always the first;
    /// nothing for a room that does not exist. The log is append-only below a room's current revision (only
    /// quarantine, which moves a damaged tail away, and deleting the room remove rows), so a
    /// page read once reads the same again.
    ///
    /// # Errors
    /// [`RepositoryError::Unreadable`] naming the first operation of the page that cannot be
    /// read back, with those before it; [`RepositoryError::Unavailable`] when the store fails.
    async fn operations_between(
        &self,
        room: RoomId,
        after: u64,
        up_to: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<CommittedOperation>, RepositoryError>;

    /// The code the room was created with, kept for good while its snapshot moves on, so
    /// that its code at any revision can be rebuilt from it and the log. `None` when the store
    /// does not know it: for a room stored before it was kept whose snapshot had moved past
    /// revision 0 then, for a room inserted at a later revision, and for no room at all.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store fails.
    async fn initial_code(&self, room: RoomId) -> Result<Option<String>, RepositoryError>;

    /// What was committed of the operation `client` sent as its `seq`-th, if anything.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store fails.
    async fn find_operation(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<RecordedSubmission>, RepositoryError>;

    /// The revision `client`'s `seq`-th operation was stored as, if it was, asked on a fresh
    /// connection: this is the question after a commit that failed, when pooled connections
    /// may be broken by the same fault.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store cannot be reached.
    async fn confirm_stored(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<u64>, RepositoryError>;

    /// The highest sequence number `client` has committed in the room, if any: a client first
    /// seen after the room was loaded continues from there.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store fails.
    async fn latest_seq(
        &self,
        room: RoomId,
        client: &ClientId,
    ) -> Result<Option<u64>, RepositoryError>;

    /// Whether `client` has any operation in the room's log: a client id that has edited a
    /// room belongs to whoever can prove it (its resume token), not to whoever names it.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store fails.
    async fn has_client(&self, room: RoomId, client: &ClientId) -> Result<bool, RepositoryError>;

    /// Moves the room's operations from revision `from` on out of its log into quarantine
    /// (kept for an operator, with `reason`), so the room can go on from its last good
    /// state; returns how many were moved.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store fails; then nothing moved.
    async fn quarantine(
        &self,
        room: RoomId,
        from: u64,
        reason: &str,
    ) -> Result<u64, RepositoryError>;

    /// Deletes the room and everything kept of it (its log, its quarantined operations);
    /// `false` when there was no such room.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store fails; then nothing was deleted.
    async fn delete(&self, room: RoomId) -> Result<bool, RepositoryError>;
}

/// Where the server's own secrets are kept, so that they survive restarts.
#[cfg_attr(any(test, feature = "test-support"), mockall::automock)]
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The 32-byte key that signs resume tokens, made (from the operating system's random
    /// source) and stored the first time it is asked for; the same key ever after.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the store fails.
    async fn resume_key(&self) -> Result<[u8; 32], RepositoryError>;
}

/// Tells whether the storage behind the service answers, for readiness probes.
#[cfg_attr(any(test, feature = "test-support"), mockall::automock)]
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// Succeeds when the store answers a trivial query.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when it does not.
    async fn check(&self) -> Result<(), RepositoryError>;
}

/// The time, as the use cases see it.
#[cfg_attr(any(test, feature = "test-support"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time, truncated to whole milliseconds so that it round-trips through every
    /// store unchanged.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(3)
    }
}
