//! Room use cases: create, read, open for editing, commit edits, close.

use std::sync::Arc;

use duet_domain::{ClientId, CodeError, CommittedOperation, Language, LanguageError, Room, RoomId};

use crate::live::{LiveRoom, LiveSettings, Outcome, Submission, SubmitError};
use crate::ports::{Clock, RepositoryError, RoomRepository};
use crate::resume::ResumeTokens;

/// What a client may say about a room it creates; everything is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewRoom {
    pub language: Option<String>,
    pub code: Option<String>,
}

/// Why a room could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateRoomError {
    #[error(transparent)]
    InvalidLanguage(#[from] LanguageError),
    #[error(transparent)]
    InvalidCode(#[from] CodeError),
    #[error("the code is larger than a room may hold ({limit} bytes)")]
    TooLarge { limit: usize },
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
}

/// Why a room could not be read or opened.
#[derive(Debug, thiserror::Error)]
pub enum GetRoomError {
    #[error("room {0} does not exist")]
    NotFound(RoomId),
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
}

/// Why a batch of edits was not committed. The live room is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum ApplyEditError {
    #[error("room {0} does not exist")]
    NotFound(RoomId),
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
    /// The store failed, and could not be asked afterwards whether the batch was stored: the
    /// live room may be behind the store and must be loaded again before it takes more edits.
    #[error("the room store failed and the edits may or may not be stored")]
    InDoubt(#[source] RepositoryError),
}

/// Why a joining connection could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    /// The client id it asked for was given to another user (authentication is on).
    #[error("client id {0} belongs to another user")]
    TakenByAnotherUser(ClientId),
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
}

/// Whether loading a room may repair its log (only its single writer may).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Repair {
    Yes,
    No,
}

/// The room use cases, over a room store and a clock.
#[derive(Clone)]
pub struct Rooms {
    repository: Arc<dyn RoomRepository>,
    clock: Arc<dyn Clock>,
    settings: LiveSettings,
    tokens: ResumeTokens,
}

/// Who a joining connection is in a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Its client id: the one it asked for when it proved it or nobody had used it, else a
    /// new one.
    pub client: ClientId,
    /// Whether it proved it is the client that used this id before (its resume token), so
    /// that it takes over that client's session and connection.
    pub proved: bool,
    /// The token it passes back to resume as `client`.
    pub token: String,
}

fn unavailable_or_not_found(id: RoomId, error: RepositoryError) -> ApplyEditError {
    match error {
        RepositoryError::RoomNotFound(_) => ApplyEditError::NotFound(id),
        error => ApplyEditError::Unavailable(error),
    }
}

impl Rooms {
    #[must_use]
    pub fn new(repository: Arc<dyn RoomRepository>, clock: Arc<dyn Clock>) -> Self {
        Self::with_settings(repository, clock, LiveSettings::default())
    }

    #[must_use]
    pub fn with_settings(
        repository: Arc<dyn RoomRepository>,
        clock: Arc<dyn Clock>,
        settings: LiveSettings,
    ) -> Self {
        Self {
            repository,
            clock,
            settings,
            tokens: ResumeTokens::ephemeral(),
        }
    }

    /// The room store, for the use cases in other modules (`history`).
    pub(crate) fn repository(&self) -> &dyn RoomRepository {
        self.repository.as_ref()
    }

    /// The same use cases, signing resume tokens with `tokens` (the server's stored key, so
    /// that clients resume across restarts).
    #[must_use]
    pub fn with_resume_tokens(mut self, tokens: ResumeTokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Who a connection joining `live` is. It asked to be `claimed` (or nobody in particular),
    /// with `token` as its proof; `connected` tells whether a member of the room has that id
    /// now. A client id that is connected or has edited the room belongs to whoever holds its
    /// token: a connection that names it without the token gets a new id, and takes over
    /// nothing. With authentication on, `subject` is the connection's user: a client id is
    /// bound to the first user given it while the room is loaded, and its token proves it
    /// for that user only.
    ///
    /// # Errors
    /// [`IdentifyError::TakenByAnotherUser`] when `claimed` is bound to another user;
    /// [`IdentifyError::Unavailable`] when the store cannot say whether the id has edited
    /// the room.
    pub async fn identify(
        &self,
        live: &mut LiveRoom,
        claimed: Option<ClientId>,
        token: Option<&str>,
        subject: Option<&str>,
        connected: bool,
    ) -> Result<Identity, IdentifyError> {
        let room = live.id();
        let proved = |client: &ClientId| {
            token.is_some_and(|token| self.tokens.verify(room, client, subject, token))
        };
        // A token proves the id for its own user only; that proof beats a binding made without
        // one (an id that had never edited, taken by another user after the room reloaded).
        if let (Some(client), Some(subject)) = (&claimed, subject)
            && live
                .subject_of(client)
                .is_some_and(|bound| bound != subject)
            && !proved(client)
        {
            return Err(IdentifyError::TakenByAnotherUser(client.clone()));
        }
        let (client, proved) = match claimed {
            Some(client) if proved(&client) => (client, true),
            Some(client)
                if !connected
                    && !live.knows_client(&client)
                    && !self
                        .repository
                        .has_client(room, &client)
                        .await
                        .map_err(IdentifyError::Unavailable)? =>
            {
                (client, false)
            }
            Some(client) => {
                tracing::info!(room = %room, client = %client, "a connection named a client id it could not prove; it gets a new one");
                (ClientId::generate(), false)
            }
            None => (ClientId::generate(), false),
        };
        let token = self.tokens.issue(room, &client, subject);
        live.issue(client.clone(), subject, proved);
        Ok(Identity {
            client,
            proved,
            token,
        })
    }

    /// Deletes a room and everything kept of it. A live room must be closed by its session
    /// first, so that nothing writes to it afterwards.
    ///
    /// # Errors
    /// [`GetRoomError::NotFound`] when there is no such room; [`GetRoomError::Unavailable`]
    /// when the store fails (then nothing was deleted).
    pub async fn delete(&self, id: RoomId) -> Result<(), GetRoomError> {
        match self.repository.delete(id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(GetRoomError::NotFound(id)),
            Err(error) => Err(GetRoomError::Unavailable(error)),
        }
    }

    /// Creates a room with a fresh id, in the given language (Python when none is given) and
    /// with the given code (empty when none is given).
    ///
    /// # Errors
    /// [`CreateRoomError::InvalidLanguage`] for a language that cannot be a name;
    /// [`CreateRoomError::InvalidCode`] for code a room cannot hold;
    /// [`CreateRoomError::TooLarge`] for code larger than a room may be;
    /// [`CreateRoomError::Unavailable`] when the store fails.
    pub async fn create(&self, request: NewRoom) -> Result<Room, CreateRoomError> {
        let language = match request.language.as_deref() {
            Some(name) => Language::new(name)?,
            None => Language::default(),
        };
        let code = request.code.unwrap_or_default();
        if code.len() > self.settings.max_room_bytes {
            return Err(CreateRoomError::TooLarge {
                limit: self.settings.max_room_bytes,
            });
        }
        let room = Room::new(RoomId::generate(), language, code, self.clock.now())?;
        self.repository
            .insert(&room)
            .await
            .map_err(CreateRoomError::Unavailable)?;
        Ok(room)
    }

    /// The room with this id, with its live code: the stored snapshot plus every operation
    /// committed after it. A log damaged past some revision is read up to it (and the damage
    /// logged); repairing it is left to the room's single writer ([`Rooms::open`]).
    ///
    /// # Errors
    /// [`GetRoomError::NotFound`] for an unknown id; [`GetRoomError::Unavailable`] when the
    /// store fails.
    pub async fn get(&self, id: RoomId) -> Result<Room, GetRoomError> {
        Ok(self.load(id, Repair::No).await?.room())
    }

    /// Loads a room for editing: its snapshot, then the operations after it. Operations that
    /// cannot be read or applied, and everything after them, are moved into quarantine and
    /// logged loudly, so the room opens at its last good state instead of never again. Only
    /// the room's single writer may call this.
    ///
    /// # Errors
    /// As [`Rooms::get`]; also unavailable when the damaged operations cannot be moved.
    pub async fn open(&self, id: RoomId) -> Result<LiveRoom, GetRoomError> {
        self.load(id, Repair::Yes).await
    }

    async fn load(&self, id: RoomId, repair: Repair) -> Result<LiveRoom, GetRoomError> {
        let room = match self.repository.find(id).await {
            Ok(Some(room)) => room,
            Ok(None) => return Err(GetRoomError::NotFound(id)),
            Err(error) => return Err(GetRoomError::Unavailable(error)),
        };
        let operations = match self.repository.operations_since(id, room.revision()).await {
            Ok(operations) => operations,
            Err(RepositoryError::Unreadable {
                revision: damaged,
                reason,
                readable,
                ..
            }) => {
                self.set_aside(id, damaged, &reason, repair).await?;
                readable
            }
            Err(error) => return Err(GetRoomError::Unavailable(error)),
        };
        let (live, damaged) = LiveRoom::load(room, operations, &self.settings);
        if let Some((revision, reason)) = damaged {
            self.set_aside(id, revision, &reason.to_string(), repair)
                .await?;
        }
        tracing::debug!(room = %id, revision = live.document().revision(), "room opened");
        Ok(live)
    }

    /// Logs a damaged log loudly and, for the room's writer, moves the damage into quarantine.
    async fn set_aside(
        &self,
        id: RoomId,
        damaged: u64,
        reason: &str,
        repair: Repair,
    ) -> Result<(), GetRoomError> {
        if repair == Repair::No {
            tracing::error!(room = %id, revision = damaged, reason, "the room's stored log is damaged from this revision on; serving the last good state");
            return Ok(());
        }
        let moved = self
            .repository
            .quarantine(id, damaged, reason)
            .await
            .map_err(GetRoomError::Unavailable)?;
        tracing::error!(room = %id, revision = damaged, reason, moved, "the room's stored log was damaged: operations from this revision on were moved to quarantined_operations; the room goes on from its last good state");
        Ok(())
    }

    /// Commits a batch of submissions in one transaction (group commit): each is transformed
    /// over what was committed since its base revision, applied, and logged. Returns what
    /// became of each, in order, once the batch is durable.
    ///
    /// # Errors
    /// [`ApplyEditError`] when the store fails; then nothing of the batch is committed and
    /// the live room is as it was.
    pub async fn commit(
        &self,
        live: &mut LiveRoom,
        batch: Vec<Submission>,
    ) -> Result<Vec<Outcome>, ApplyEditError> {
        let id = live.id();
        let mut checkpoint = live.checkpoint();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut committed = Vec::new();
        let now = self.clock.now();
        for submission in batch {
            let outcome = match self.known_revision(live, &submission).await {
                Err(error) => {
                    live.rollback(checkpoint);
                    return Err(unavailable_or_not_found(id, error));
                }
                Ok(Some(Ok(revision))) => Outcome::Duplicate { revision },
                Ok(Some(Err(error))) => Outcome::Rejected(error),
                Ok(None) => match live.apply(
                    &submission,
                    now,
                    self.settings.max_room_bytes,
                    &mut checkpoint,
                ) {
                    Err(error) => Outcome::Rejected(error),
                    Ok(operation) => {
                        committed.push(CommittedOperation::clone(&operation));
                        Outcome::Committed(operation)
                    }
                },
            };
            outcomes.push(outcome);
        }
        if committed.is_empty() {
            return Ok(outcomes);
        }
        let snapshot = live.snapshot_due(self.settings.snapshot_every, now);
        if let Err(error) = self
            .repository
            .append(id, &committed, snapshot.clone())
            .await
        {
            match self.stored_anyway(id, &committed, &error).await {
                Ok(true) => {
                    tracing::warn!(room = %id, error = %error, "the store reported a failed commit that it had made: the edits stand");
                }
                Ok(false) if matches!(error, RepositoryError::OperationExists(_)) => {
                    // The store holds what this room thought free: the live room is behind
                    // the store and must be loaded again.
                    live.rollback(checkpoint);
                    return Err(ApplyEditError::InDoubt(error));
                }
                Ok(false) => {
                    live.rollback(checkpoint);
                    return Err(unavailable_or_not_found(id, error));
                }
                Err(unknown) => {
                    live.rollback(checkpoint);
                    return Err(ApplyEditError::InDoubt(unknown));
                }
            }
        }
        live.committed(snapshot, &self.settings);
        Ok(outcomes)
    }

    /// Whether a batch whose append failed was stored all the same: a connection lost while
    /// its COMMIT was under way leaves the outcome unknown to the writer, so the store is asked
    /// (the batch is one transaction: its first operation tells for all).
    ///
    /// # Errors
    /// The store's error when it cannot be asked: the outcome stays unknown.
    async fn stored_anyway(
        &self,
        id: RoomId,
        committed: &[CommittedOperation],
        error: &RepositoryError,
    ) -> Result<bool, RepositoryError> {
        let (RepositoryError::Indeterminate(_), Some(first)) = (error, committed.first()) else {
            return Ok(false);
        };
        let stored = self
            .repository
            .confirm_stored(id, &first.client, first.seq)
            .await?;
        Ok(stored == Some(first.revision))
    }

    /// For a submission already committed, its revision; for one that reuses a sequence number
    /// it never committed, or committed with another edit, an error; for a new one, `None`.
    async fn known_revision(
        &self,
        live: &mut LiveRoom,
        submission: &Submission,
    ) -> Result<Option<Result<u64, SubmitError>>, RepositoryError> {
        let (client, seq) = (&submission.client, submission.seq);
        if seq > Submission::MAX_SEQ {
            return Ok(Some(Err(SubmitError::InvalidSeq { seq })));
        }
        // A client first seen since the room was loaded continues from its latest committed
        // seq: a lower or equal one is a resend (or a reuse), never a new edit, so it can never
        // collide with the log.
        if live.last_seq(client).is_none()
            && let Some(latest) = self.repository.latest_seq(live.id(), client).await?
        {
            live.seed_seq(client, latest);
        }
        let recorded = match live.last_seq(client) {
            Some(last) if seq > last => return Ok(None),
            Some(_) => match live.recorded_in_history(client, seq) {
                Some(recorded) => Some(recorded),
                None => {
                    let found = self
                        .repository
                        .find_operation(live.id(), client, seq)
                        .await?;
                    if found.is_none() {
                        return Ok(Some(Err(SubmitError::StaleSeq { seq })));
                    }
                    found
                }
            },
            None => return Ok(None),
        };
        Ok(recorded.map(|recorded| match recorded.digest {
            Some(digest) if digest != submission.digest() => Err(SubmitError::SeqReused { seq }),
            _ => Ok(recorded.revision),
        }))
    }

    /// Changes a live room's language and stores it (with a snapshot of the code).
    ///
    /// # Errors
    /// [`ApplyEditError`] when the store fails; the live room keeps its language then.
    pub async fn change_language(
        &self,
        live: &mut LiveRoom,
        language: Language,
    ) -> Result<(), ApplyEditError> {
        let mut room = live.room();
        room.set_language(language, self.clock.now());
        self.repository
            .save(&room)
            .await
            .map_err(|error| unavailable_or_not_found(room.id(), error))?;
        live.snapshot_stored(room);
        Ok(())
    }

    /// Stores a snapshot of a live room that is about to be unloaded, if it moved on since the
    /// last one, so the next load replays fewer operations.
    ///
    /// # Errors
    /// [`ApplyEditError`] when the store fails; the operations are safe in the log regardless.
    pub async fn close(&self, live: &LiveRoom) -> Result<(), ApplyEditError> {
        if !live.ahead_of_snapshot() {
            return Ok(());
        }
        let room = live.room();
        self.repository
            .save(&room)
            .await
            .map_err(|error| unavailable_or_not_found(room.id(), error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::Change;
    use crate::testing::{FixedClock, InMemoryRoomRepository, client, op};
    use duet_domain::{CommittedOperation, TextOperation};

    fn rooms_over(repository: Arc<InMemoryRoomRepository>, settings: LiveSettings) -> Rooms {
        Rooms::with_settings(repository, Arc::new(FixedClock::default()), settings)
    }

    fn revisions(outcomes: &[Outcome]) -> Vec<Option<u64>> {
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Committed(committed) => Some(committed.revision),
                Outcome::Duplicate { revision } => Some(*revision),
                Outcome::Rejected(_) => None,
            })
            .collect()
    }

    async fn room_with(rooms: &Rooms, code: &str) -> LiveRoom {
        let room = rooms
            .create(NewRoom {
                language: None,
                code: Some(code.into()),
            })
            .await
            .expect("created");
        rooms.open(room.id()).await.expect("opens")
    }

    #[tokio::test]
    async fn a_created_room_can_be_read_back() {
        let rooms = rooms_over(Arc::default(), LiveSettings::default());
        let created = rooms
            .create(NewRoom {
                language: Some("Rust".into()),
                code: Some("fn main() {}".into()),
            })
            .await
            .expect("created");
        let read = rooms.get(created.id()).await.expect("found");
        assert_eq!(read, created);
        assert_eq!(read.language().as_str(), "rust");
        assert_eq!(read.revision(), 0);
        let empty = rooms.create(NewRoom::default()).await.expect("created");
        assert_eq!((empty.language().as_str(), empty.code()), ("python", ""));
    }

    #[tokio::test]
    async fn invalid_rooms_create_nothing() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), LiveSettings::default());
        let bad_language = NewRoom {
            language: Some("not a language".into()),
            code: None,
        };
        assert!(matches!(
            rooms.create(bad_language).await,
            Err(CreateRoomError::InvalidLanguage(_))
        ));
        let bad_code = NewRoom {
            language: None,
            code: Some("\0".into()),
        };
        assert!(matches!(
            rooms.create(bad_code).await,
            Err(CreateRoomError::InvalidCode(_))
        ));
        assert!(repository.is_empty());
        let id = RoomId::generate();
        assert!(matches!(rooms.get(id).await, Err(GetRoomError::NotFound(found)) if found == id));
    }

    #[tokio::test]
    async fn concurrent_operations_are_transformed_in_arrival_order() {
        let rooms = rooms_over(Arc::default(), LiveSettings::default());
        let mut live = room_with(&rooms, "ac").await;
        // Both made against revision 0: Bob's arrives second and is moved past Alice's.
        let outcomes = rooms
            .commit(
                &mut live,
                vec![
                    op(
                        "alice",
                        1,
                        0,
                        TextOperation::new().retain(1).insert("b").retain(1),
                    ),
                    op("bob", 1, 0, TextOperation::new().retain(2).insert("d")),
                    op(
                        "bob",
                        2,
                        0,
                        TextOperation::new().retain(1).insert("B").retain(1),
                    ),
                ],
            )
            .await
            .expect("committed");
        assert_eq!(revisions(&outcomes), [Some(1), Some(2), Some(3)]);
        // Bob's second insert at Alice's place goes first: the incoming operation wins ties.
        assert_eq!(live.document().text(), "aBbcd");
        let stored = rooms.get(live.room().id()).await.expect("found");
        assert_eq!((stored.code(), stored.revision()), ("aBbcd", 3));
    }

    #[tokio::test]
    async fn a_resent_operation_is_acknowledged_again_and_not_applied_twice() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), LiveSettings::default());
        let mut live = room_with(&rooms, "").await;
        let edit = op("alice", 7, 0, TextOperation::new().insert("x"));
        let first = rooms
            .commit(&mut live, vec![edit.clone()])
            .await
            .expect("ok");
        let again = rooms
            .commit(&mut live, vec![edit.clone()])
            .await
            .expect("ok");
        assert_eq!(revisions(&first), [Some(1)]);
        assert_eq!(again, [Outcome::Duplicate { revision: 1 }]);
        assert_eq!(live.document().text(), "x");
        // Also after the room was unloaded and loaded again, from the stored log.
        let mut reloaded = rooms.open(live.room().id()).await.expect("opens");
        let after_reload = rooms.commit(&mut reloaded, vec![edit]).await.expect("ok");
        assert_eq!(after_reload, [Outcome::Duplicate { revision: 1 }]);
        assert_eq!(reloaded.document().text(), "x");
    }

    #[tokio::test]
    async fn bad_submissions_are_refused_alone() {
        let rooms = rooms_over(Arc::default(), LiveSettings::default());
        let mut live = room_with(&rooms, "abc").await;
        let outcomes = rooms
            .commit(
                &mut live,
                vec![
                    op("alice", 1, 5, TextOperation::new().retain(3)),
                    op("alice", 2, 0, TextOperation::new().retain(4)),
                    op("alice", 3, 0, TextOperation::new().insert("\0").retain(3)),
                    op("bob", 1, 0, TextOperation::new().retain(3).insert("!")),
                    op("alice", 2, 1, TextOperation::new().retain(4)),
                ],
            )
            .await
            .expect("the batch commits");
        assert!(matches!(
            outcomes[0],
            Outcome::Rejected(SubmitError::BadRevision {
                base: 5,
                current: 0
            })
        ));
        assert!(matches!(
            outcomes[1],
            Outcome::Rejected(SubmitError::InvalidOperation(_))
        ));
        assert!(matches!(
            outcomes[2],
            Outcome::Rejected(SubmitError::InvalidOperation(_))
        ));
        assert_eq!(revisions(&outcomes[3..4]), [Some(1)]);
        // Sequence 2 was never committed, so it is still free for the retry.
        assert_eq!(revisions(&outcomes[4..]), [Some(2)]);
        assert_eq!(live.document().text(), "abc!");
    }

    #[tokio::test]
    async fn a_whole_buffer_is_diffed_against_its_base_and_merged() {
        let rooms = rooms_over(Arc::default(), LiveSettings::default());
        let mut live = room_with(&rooms, "hello world").await;
        let code = |client_name: &str, base, text: &str| Submission {
            client: client(client_name),
            seq: 1,
            base,
            change: Change::Code(text.into()),
        };
        let outcomes = rooms
            .commit(
                &mut live,
                vec![
                    code("alice", 0, "hello big world"),
                    code("bob", 0, "hello world!"),
                ],
            )
            .await
            .expect("committed");
        assert_eq!(revisions(&outcomes), [Some(1), Some(2)]);
        assert_eq!(live.document().text(), "hello big world!");
    }

    #[tokio::test]
    async fn a_base_older_than_the_history_must_resynchronise() {
        let settings = LiveSettings {
            history: 2,
            snapshot_every: 2,
            ..LiveSettings::default()
        };
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), settings);
        let mut live = room_with(&rooms, "").await;
        for seq in 1..=5 {
            let at = usize::try_from(seq - 1).unwrap_or(0);
            rooms
                .commit(
                    &mut live,
                    vec![op(
                        "alice",
                        seq,
                        seq - 1,
                        TextOperation::new().retain(at).insert("x"),
                    )],
                )
                .await
                .expect("committed");
        }
        assert_eq!(live.oldest_revision(), 3);
        let outcomes = rooms
            .commit(
                &mut live,
                vec![op("bob", 1, 2, TextOperation::new().retain(2))],
            )
            .await
            .expect("ok");
        assert_eq!(
            outcomes,
            [Outcome::Rejected(SubmitError::ResyncRequired {
                base: 2,
                oldest: 3
            })]
        );
        assert!(live.operations_since(2).is_none());
        assert_eq!(live.operations_since(3).map(|ops| ops.len()), Some(2));
        // The snapshot was refreshed on the way, and a reload still sees every edit.
        let snapshot = repository
            .find(live.room().id())
            .await
            .expect("ok")
            .expect("found");
        assert!(
            snapshot.revision() >= 4,
            "snapshot at {}",
            snapshot.revision()
        );
        assert_eq!(
            rooms.get(live.room().id()).await.expect("found").code(),
            "xxxxx"
        );
    }

    #[tokio::test]
    async fn a_failed_commit_leaves_the_live_room_unchanged() {
        // Asked after the failure, the store says the edit is not there.
        let (rooms, mut live) = failing_append(|| Ok(None)).await;
        let result = rooms.commit(&mut live, alice_appends()).await;
        assert!(matches!(result, Err(ApplyEditError::Unavailable(_))));
        assert_eq!(live.document().text(), "before");
        assert_eq!(live.document().revision(), 0);
        assert_eq!(live.oldest_revision(), 0);
    }

    /// A room holding "before" whose append fails, and whose store then answers `afterwards`
    /// when asked whether alice's edit was stored.
    async fn failing_append(
        afterwards: fn() -> Result<Option<u64>, RepositoryError>,
    ) -> (Rooms, LiveRoom) {
        let room = crate::testing::room_holding("before");
        // Asked first whether the edit is a resend (it is not), then whether it was stored.
        let mut repository = crate::testing::mock_store_holding(&room);
        repository
            .expect_confirm_stored()
            .returning(move |_, _, _| afterwards());
        repository
            .expect_append()
            .times(1)
            .returning(|_, _, _| Err(RepositoryError::Indeterminate("connection lost".into())));
        let rooms = Rooms::new(Arc::new(repository), Arc::new(FixedClock::default()));
        let live = rooms.open(room.id()).await.expect("opens");
        (rooms, live)
    }

    fn alice_appends() -> Vec<Submission> {
        vec![op(
            "alice",
            1,
            0,
            TextOperation::new().retain(6).insert("!"),
        )]
    }

    #[tokio::test]
    async fn a_commit_reported_failed_but_made_stands() {
        let (rooms, mut live) = failing_append(|| Ok(Some(1))).await;
        let outcomes = rooms
            .commit(&mut live, alice_appends())
            .await
            .expect("the store had it");
        assert_eq!(revisions(&outcomes), [Some(1)]);
        assert_eq!(live.document().text(), "before!");
    }

    #[tokio::test]
    async fn a_commit_whose_outcome_cannot_be_learned_is_in_doubt() {
        let (rooms, mut live) =
            failing_append(|| Err(RepositoryError::Unavailable("still down".into()))).await;
        let result = rooms.commit(&mut live, alice_appends()).await;
        assert!(
            matches!(result, Err(ApplyEditError::InDoubt(_))),
            "{result:?}"
        );
        assert_eq!(live.document().text(), "before");
        let (rooms, mut live) = failing_append(|| Ok(None)).await;
        let result = rooms.commit(&mut live, alice_appends()).await;
        assert!(
            matches!(result, Err(ApplyEditError::Unavailable(_))),
            "{result:?}"
        );
        assert_eq!(live.document().revision(), 0);
    }

    #[tokio::test]
    async fn a_language_change_is_stored_with_the_live_code() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), LiveSettings::default());
        let mut live = room_with(&rooms, "x").await;
        rooms
            .commit(
                &mut live,
                vec![op(
                    "alice",
                    1,
                    0,
                    TextOperation::new().retain(1).insert("y"),
                )],
            )
            .await
            .expect("committed");
        rooms
            .change_language(&mut live, Language::Rust)
            .await
            .expect("changed");
        assert_eq!(live.room().language(), &Language::Rust);
        let stored = rooms.get(live.room().id()).await.expect("found");
        assert_eq!((stored.language(), stored.code()), (&Language::Rust, "xy"));
    }

    fn stored(revision: u64, client_name: &str, operation: TextOperation) -> CommittedOperation {
        CommittedOperation {
            revision,
            client: client(client_name),
            seq: revision,
            operation,
            committed_at: FixedClock::default().now(),
            submission_digest: None,
        }
    }

    #[tokio::test]
    async fn a_damaged_log_is_set_aside_and_the_room_opens_at_its_last_good_state() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), LiveSettings::default());
        let id = room_with(&rooms, "abc").await.room().id();
        repository.force_append(
            id,
            &[
                stored(1, "alice", TextOperation::new().retain(3).insert("d")),
                // Made for a text of another length: it cannot be applied.
                stored(2, "mallory", TextOperation::new().retain(99).insert("x")),
                stored(3, "alice", TextOperation::new().retain(4).insert("e")),
            ],
        );
        // A reader serves the last good state and leaves the log to the room's writer.
        let read = rooms.get(id).await.expect("readable");
        assert_eq!((read.code(), read.revision()), ("abcd", 1));
        assert_eq!(repository.quarantined(id), 0);
        // The writer moves the damage aside and the room goes on from there.
        let mut live = rooms.open(id).await.expect("opens");
        assert_eq!(repository.quarantined(id), 2);
        assert_eq!(live.document().text(), "abcd");
        let outcomes = rooms
            .commit(
                &mut live,
                vec![op("bob", 1, 1, TextOperation::new().retain(4).insert("!"))],
            )
            .await
            .expect("committed");
        assert_eq!(revisions(&outcomes), [Some(2)]);
        let reopened = rooms.open(id).await.expect("opens");
        assert_eq!(reopened.document().text(), "abcd!");
        // A log with a gap is damaged from the gap on.
        repository.force_append(id, &[stored(9, "alice", TextOperation::new().retain(5))]);
        assert_eq!(
            rooms.open(id).await.expect("opens").document().revision(),
            2
        );
        assert_eq!(repository.quarantined(id), 3);
    }

    #[tokio::test]
    async fn sequence_numbers_past_the_documented_range_are_refused_alone() {
        let rooms = rooms_over(Arc::default(), LiveSettings::default());
        let mut live = room_with(&rooms, "").await;
        let outcomes = rooms
            .commit(
                &mut live,
                vec![
                    op("mallory", 1 << 63, 0, TextOperation::new().insert("m")),
                    op(
                        "mallory",
                        Submission::MAX_SEQ + 1,
                        0,
                        TextOperation::new().insert("m"),
                    ),
                    op(
                        "alice",
                        Submission::MAX_SEQ,
                        0,
                        TextOperation::new().insert("a"),
                    ),
                ],
            )
            .await
            .expect("the others' edits commit");
        assert_eq!(
            outcomes[..2],
            [
                Outcome::Rejected(SubmitError::InvalidSeq { seq: 1 << 63 }),
                Outcome::Rejected(SubmitError::InvalidSeq {
                    seq: Submission::MAX_SEQ + 1
                })
            ]
        );
        assert_eq!(revisions(&outcomes[2..]), [Some(1)]);
        assert_eq!(live.document().text(), "a");
    }

    #[tokio::test]
    async fn after_a_reload_an_old_seq_cannot_fail_the_others_in_its_batch() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), LiveSettings::default());
        let mut live = room_with(&rooms, "").await;
        rooms
            .commit(
                &mut live,
                vec![op("mallory", 5, 0, TextOperation::new().insert("m"))],
            )
            .await
            .expect("committed");
        let mut reloaded = rooms.open(live.room().id()).await.expect("opens");
        let outcomes = rooms
            .commit(
                &mut reloaded,
                vec![
                    op("mallory", 0, 1, TextOperation::new().retain(1).insert("0")),
                    op("mallory", 5, 1, TextOperation::new().retain(1).insert("5")),
                    op("alice", 1, 1, TextOperation::new().retain(1).insert("a")),
                ],
            )
            .await
            .expect("alice's edit is not failed by mallory's");
        assert_eq!(
            outcomes[..2],
            [
                Outcome::Rejected(SubmitError::StaleSeq { seq: 0 }),
                Outcome::Rejected(SubmitError::SeqReused { seq: 5 })
            ]
        );
        assert_eq!(revisions(&outcomes[2..]), [Some(2)]);
        assert_eq!(reloaded.document().text(), "ma");
    }

    #[tokio::test]
    async fn a_room_never_grows_past_its_limit_and_its_history_past_its_budget() {
        let settings = LiveSettings {
            max_room_bytes: 10,
            history_bytes: 20,
            ..LiveSettings::default()
        };
        let rooms = rooms_over(Arc::default(), settings);
        let mut live = room_with(&rooms, "12345678").await;
        let outcomes = rooms
            .commit(
                &mut live,
                vec![
                    op(
                        "mallory",
                        1,
                        0,
                        TextOperation::new().retain(8).insert("abc"),
                    ),
                    op("alice", 1, 0, TextOperation::new().retain(8).insert("ab")),
                    op("alice", 2, 1, TextOperation::new().delete(10)),
                ],
            )
            .await
            .expect("committed");
        assert_eq!(
            outcomes[0],
            Outcome::Rejected(SubmitError::RoomTooLarge { limit: 10 })
        );
        assert_eq!(revisions(&outcomes[1..]), [Some(1), Some(2)]);
        assert_eq!(live.document().text(), "");
        // The deletion's inverse holds 10 bytes, the insert 2: both fit in 20. One more
        // insert of 10 bytes does not fit with them, and the oldest goes.
        rooms
            .commit(
                &mut live,
                vec![op("alice", 3, 2, TextOperation::new().insert("0123456789"))],
            )
            .await
            .expect("committed");
        assert_eq!(live.oldest_revision(), 1);
        assert!(live.operations_since(0).is_none());
    }

    #[tokio::test]
    async fn a_room_is_limited_in_bytes_not_in_characters() {
        let settings = LiveSettings {
            max_room_bytes: 10,
            ..LiveSettings::default()
        };
        let rooms = rooms_over(Arc::default(), settings);
        let too_large = rooms
            .create(NewRoom {
                code: Some("ééééé!".into()),
                ..NewRoom::default()
            })
            .await;
        assert!(
            matches!(too_large, Err(CreateRoomError::TooLarge { limit: 10 })),
            "{too_large:?}"
        );
        let mut live = room_with(&rooms, "12345678").await;
        let outcomes = rooms
            .commit(
                &mut live,
                vec![
                    // 8 + 2 bytes fit; 2 more do not, though they are one UTF-16 unit.
                    op("alice", 1, 0, TextOperation::new().retain(8).insert("é")),
                    op("alice", 2, 1, TextOperation::new().retain(9).insert("é")),
                    // Replacing 3 bytes by a 3-byte character keeps the size.
                    op(
                        "alice",
                        3,
                        1,
                        TextOperation::new().delete(3).insert("€").retain(6),
                    ),
                ],
            )
            .await
            .expect("committed");
        assert_eq!(
            outcomes[1],
            Outcome::Rejected(SubmitError::RoomTooLarge { limit: 10 })
        );
        assert_eq!(
            revisions(&[outcomes[0].clone(), outcomes[2].clone()]),
            [Some(1), Some(2)]
        );
        assert_eq!(live.document().text(), "€45678é");
        assert_eq!(live.document().len_bytes(), 10);
    }

    #[tokio::test]
    async fn a_sequence_number_reused_for_another_edit_is_refused() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), LiveSettings::default());
        let mut live = room_with(&rooms, "").await;
        let first = op("alice", 1, 0, TextOperation::new().insert("mine"));
        let forged = op("alice", 1, 0, TextOperation::new().insert("not mine"));
        rooms
            .commit(&mut live, vec![first.clone()])
            .await
            .expect("committed");
        let again = rooms
            .commit(&mut live, vec![forged.clone(), first.clone()])
            .await
            .expect("ok");
        assert_eq!(
            again,
            [
                Outcome::Rejected(SubmitError::SeqReused { seq: 1 }),
                Outcome::Duplicate { revision: 1 }
            ]
        );
        // The same after the room was loaded again from the log.
        let mut reloaded = rooms.open(live.room().id()).await.expect("opens");
        let after_reload = rooms
            .commit(&mut reloaded, vec![forged, first])
            .await
            .expect("ok");
        assert_eq!(
            after_reload,
            [
                Outcome::Rejected(SubmitError::SeqReused { seq: 1 }),
                Outcome::Duplicate { revision: 1 }
            ]
        );
        assert_eq!(reloaded.document().text(), "mine");
    }

    #[tokio::test]
    async fn a_client_id_in_use_belongs_to_whoever_holds_its_token() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), LiveSettings::default());
        let mut live = room_with(&rooms, "").await;
        let anyone = rooms
            .identify(&mut live, None, None, None, false)
            .await
            .expect("identified");
        assert!(!anyone.proved);
        // A fresh id is granted to whoever names it first.
        let alice = rooms
            .identify(&mut live, Some(client("alice")), None, None, false)
            .await
            .expect("identified");
        assert_eq!((alice.client.as_str(), alice.proved), ("alice", false));
        // While alice is connected, or once she has edited, naming her proves nothing.
        let impostor = rooms
            .identify(
                &mut live,
                Some(client("alice")),
                Some(&anyone.token),
                None,
                true,
            )
            .await
            .expect("identified");
        assert_ne!(impostor.client, alice.client);
        rooms
            .commit(
                &mut live,
                vec![op("alice", 1, 0, TextOperation::new().insert("a"))],
            )
            .await
            .expect("committed");
        let mut reloaded = rooms.open(live.room().id()).await.expect("opens");
        for token in [None, Some("forged"), Some(anyone.token.as_str())] {
            let impostor = rooms
                .identify(&mut reloaded, Some(client("alice")), token, None, false)
                .await
                .expect("identified");
            assert!(
                impostor.client != alice.client && !impostor.proved,
                "{token:?}"
            );
        }
        // Alice herself resumes with her token, connected or not.
        for connected in [false, true] {
            let resumed = rooms
                .identify(
                    &mut reloaded,
                    Some(client("alice")),
                    Some(&alice.token),
                    None,
                    connected,
                )
                .await
                .expect("identified");
            assert_eq!(
                resumed,
                Identity {
                    proved: true,
                    ..alice.clone()
                }
            );
        }
    }

    #[tokio::test]
    async fn a_client_id_is_bound_to_the_user_first_given_it() {
        let rooms = rooms_over(
            Arc::new(InMemoryRoomRepository::default()),
            LiveSettings::default(),
        );
        let mut live = room_with(&rooms, "").await;
        let ada = rooms
            .identify(&mut live, Some(client("laptop")), None, Some("ada"), false)
            .await
            .expect("identified");
        assert_eq!(ada.client.as_str(), "laptop");
        // Another user naming it is refused, with or without ada's token; ada resumes.
        for token in [None, Some(ada.token.as_str())] {
            for connected in [false, true] {
                let taken = rooms
                    .identify(
                        &mut live,
                        Some(client("laptop")),
                        token,
                        Some("eve"),
                        connected,
                    )
                    .await;
                assert!(
                    matches!(taken, Err(IdentifyError::TakenByAnotherUser(ref id)) if id.as_str() == "laptop"),
                    "{taken:?}"
                );
            }
        }
        let resumed = rooms
            .identify(
                &mut live,
                Some(client("laptop")),
                Some(&ada.token),
                Some("ada"),
                true,
            )
            .await
            .expect("identified");
        assert!(resumed.proved);
        // Once the room is loaded afresh the binding is gone, but an id that edited still
        // belongs to its token, and ada's token proves nothing for eve: she gets an id of her
        // own.
        rooms
            .commit(
                &mut live,
                vec![op("laptop", 1, 0, TextOperation::new().insert("a"))],
            )
            .await
            .expect("committed");
        let mut reloaded = rooms.open(live.room().id()).await.expect("opens");
        // An id that never edited is free again after a reload: bob takes it without proof,
        // and carol, who proves it, takes it back from him.
        let carol = rooms
            .identify(
                &mut reloaded,
                Some(client("tablet")),
                None,
                Some("carol"),
                false,
            )
            .await
            .expect("identified");
        let mut again = rooms.open(live.room().id()).await.expect("opens");
        let bob = rooms
            .identify(&mut again, Some(client("tablet")), None, Some("bob"), false)
            .await
            .expect("identified");
        assert_eq!((bob.client.as_str(), bob.proved), ("tablet", false));
        let back = rooms
            .identify(
                &mut again,
                Some(client("tablet")),
                Some(&carol.token),
                Some("carol"),
                true,
            )
            .await
            .expect("carol proves her id");
        assert!(back.proved);
        assert_eq!(again.subject_of(&client("tablet")), Some("carol"));
        let refused = rooms
            .identify(&mut again, Some(client("tablet")), None, Some("bob"), true)
            .await;
        assert!(matches!(refused, Err(IdentifyError::TakenByAnotherUser(_))));
        let eve = rooms
            .identify(
                &mut reloaded,
                Some(client("laptop")),
                Some(&ada.token),
                Some("eve"),
                false,
            )
            .await
            .expect("identified");
        assert!(!eve.proved);
        assert_ne!(eve.client.as_str(), "laptop");
    }

    #[tokio::test]
    async fn a_deleted_room_is_gone() {
        let rooms = rooms_over(
            Arc::new(InMemoryRoomRepository::default()),
            LiveSettings::default(),
        );
        let live = room_with(&rooms, "x").await;
        let id = live.room().id();
        rooms.delete(id).await.expect("deleted");
        assert!(matches!(
            rooms.get(id).await,
            Err(GetRoomError::NotFound(_))
        ));
        assert!(matches!(
            rooms.delete(id).await,
            Err(GetRoomError::NotFound(_))
        ));
    }
    #[tokio::test]
    async fn closing_stores_a_snapshot() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone(), LiveSettings::default());
        let mut live = room_with(&rooms, "").await;
        rooms
            .commit(
                &mut live,
                vec![op("alice", 1, 0, TextOperation::new().insert("kept"))],
            )
            .await
            .expect("committed");
        rooms.close(&live).await.expect("closed");
        let snapshot = repository
            .find(live.room().id())
            .await
            .expect("ok")
            .expect("found");
        assert_eq!((snapshot.code(), snapshot.revision()), ("kept", 1));
    }
}
