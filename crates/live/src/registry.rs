//! The live rooms of a server, and a member's place in one.
//!
//! A room's session is started when the first member joins (or the HTTP API changes its
//! language) and stops when the last one leaves and no join is on its way; the registry counts
//! joins on their way under its lock, so a join never races a stopping session into a lost
//! room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use duet_app::ports::RepositoryError;
use duet_app::{Change, Rooms, SubmitError};
use duet_domain::{Answered, ClientId, Language, Role, Room, RoomId, Selection};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::event::{Encoder, Event, MemberId, MemberKind, lock};
use crate::session::Session;

/// How many commands may wait for a room before senders wait.
const COMMAND_QUEUE: usize = 1024;
/// How many members a room takes by default.
pub const DEFAULT_MAX_MEMBERS: usize = 1000;
/// How many of those one member may hold, so a member that sends faster than the room works
/// waits for its own places and never starves the others.
const PLACES_PER_MEMBER: usize = 16;

/// Who is joining, and from where they resume.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub kind: MemberKind,
    /// The client id it asks for (to resume as that client).
    pub client: Option<ClientId>,
    /// The proof that the connection is `client` (given in its first welcome).
    pub resume_token: Option<String>,
    /// Its display name; the room keeps the first [`crate::MAX_NAME`] characters.
    pub name: String,
    /// The revision it has seen, to receive only the operations since.
    pub since: Option<u64>,
    /// What it may do: a viewer's edits and language changes are refused.
    pub role: Role,
    /// With authentication on, the user it is (its token's subject): a client id is bound to
    /// the first user given it while the room is loaded.
    pub subject: Option<String>,
}

impl JoinRequest {
    /// A request to join as nobody in particular, with every right (authentication off).
    #[must_use]
    pub fn new(kind: MemberKind) -> Self {
        Self {
            kind,
            client: None,
            resume_token: None,
            name: String::new(),
            since: None,
            role: Role::Owner,
            subject: None,
        }
    }
}

/// An edit as a member sent it.
#[derive(Debug)]
pub enum Edit {
    /// A whole-buffer member's buffer, and the marks (each sent with a buffer) it had
    /// answered before sending it.
    WholeBuffer { code: String, answered: Answered },
    /// An operations member's edit: an operation or a whole buffer made at `revision`, its
    /// `seq`-th, and where its selection is once the edit is made.
    Change {
        seq: u64,
        revision: u64,
        change: Change,
        selection: Option<Selection>,
    },
}

/// Why a live room could not be reached: to join it, or to change its language from outside.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("room {0} does not exist")]
    NotFound(RoomId),
    #[error("the room store is unavailable")]
    Unavailable(#[source] Arc<RepositoryError>),
    /// The room stopped while the request was on its way (it is reloading after a failed
    /// commit); asking again loads it afresh.
    #[error("the room stopped; try again")]
    Stopped,
    /// The room has as many members as it takes.
    #[error("the room is full: it takes {limit} members")]
    RoomFull { limit: usize },
    /// The client id asked for was given to another user.
    #[error("client id {0} belongs to another user")]
    ClientTaken(ClientId),
}

/// The room stopped: a member's message did not reach it, and its connection should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the room stopped")]
pub struct RoomStopped;

/// Why a member could not read the room's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Stopped(#[from] RoomStopped),
    /// The revision named is not in the room's history.
    #[error(transparent)]
    Revision(SubmitError),
}

/// The room's code and language, and a cursor moved to the current revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub code: String,
    pub language: Language,
    pub cursor: usize,
}

/// The live rooms of a server: starts a room's session when someone joins it, and hands each
/// member its place in the room.
pub struct Registry<E: Encoder> {
    pub(crate) rooms: Rooms,
    pub(crate) encoder: E,
    send_queue: usize,
    pub(crate) max_members: usize,
    live: Mutex<HashMap<RoomId, Handle<E::Frame>>>,
    next_member: AtomicU64,
}

/// A live room's queue, and how many joins are on their way to it: a session stops only when
/// it has no members and no join is coming.
pub(crate) struct Handle<F> {
    commands: mpsc::Sender<Queued<F>>,
    pub(crate) joining: Arc<AtomicUsize>,
}

impl<F> Clone for Handle<F> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
            joining: Arc::clone(&self.joining),
        }
    }
}

/// A command on its way to a room, holding one of its member's places in the queue.
pub(crate) struct Queued<F> {
    pub(crate) command: Command<F>,
    _place: Option<OwnedSemaphorePermit>,
}

impl<F> From<Command<F>> for Queued<F> {
    fn from(command: Command<F>) -> Self {
        Self {
            command,
            _place: None,
        }
    }
}

/// What a session is asked to do.
pub(crate) enum Command<F> {
    Join {
        request: JoinRequest,
        member: MemberId,
        /// The member's queue, its sender kept by the room.
        inbox: mpsc::Sender<Event<F>>,
        kick: oneshot::Sender<()>,
        reply: oneshot::Sender<Result<ClientId, JoinError>>,
    },
    Leave {
        member: MemberId,
    },
    Edit {
        member: MemberId,
        edit: Edit,
    },
    Presence {
        member: MemberId,
        revision: u64,
        selection: Selection,
    },
    BadMessage {
        member: MemberId,
        reason: String,
    },
    /// A language change, from a member or (with no member) from the HTTP API.
    Language {
        member: Option<MemberId>,
        language: Language,
        reply: Option<oneshot::Sender<Result<Room, JoinError>>>,
    },
    Snapshot {
        revision: u64,
        cursor: usize,
        reply: oneshot::Sender<Result<Snapshot, SubmitError>>,
    },
    /// The room is deleted (from the HTTP API).
    Delete {
        reply: oneshot::Sender<Result<(), JoinError>>,
    },
}

/// What a member receives: events in order, and a signal that fires when the room drops it.
pub struct Inbox<F> {
    pub events: mpsc::Receiver<Event<F>>,
    pub kicked: oneshot::Receiver<()>,
}

/// A connection's place in a room. Dropping it leaves the room.
pub struct Membership<F: Send + Sync + 'static> {
    room: RoomId,
    member: MemberId,
    client: ClientId,
    commands: mpsc::Sender<Queued<F>>,
    places: Arc<Semaphore>,
    /// The member's own queue, for answers that do not go through the room (completions).
    replies: mpsc::Sender<Event<F>>,
}

impl<E: Encoder> Registry<E> {
    /// The live rooms over the room use cases; `encoder` encodes what many members receive
    /// alike, and each member may fall `send_queue` events behind before the room drops it.
    #[must_use]
    pub fn new(rooms: Rooms, encoder: E, send_queue: usize) -> Self {
        Self {
            rooms,
            encoder,
            send_queue: send_queue.max(2),
            max_members: DEFAULT_MAX_MEMBERS,
            live: Mutex::default(),
            next_member: AtomicU64::new(1),
        }
    }

    /// The same registry, with rooms that take at most `max_members` members (at least one).
    #[must_use]
    pub fn with_max_members(mut self, max_members: usize) -> Self {
        self.max_members = max_members.max(1);
        self
    }

    /// The room use cases the sessions run.
    #[must_use]
    pub const fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// Joins a room, starting its session when nobody else is in it. The inbox starts with
    /// what a member of its kind receives first (the welcome, or the code) and then receives
    /// every later event.
    ///
    /// # Errors
    /// [`JoinError`] when the room does not exist, cannot be loaded, or stopped meanwhile.
    pub async fn join(
        self: &Arc<Self>,
        room: RoomId,
        request: JoinRequest,
    ) -> Result<(Membership<E::Frame>, Inbox<E::Frame>), JoinError> {
        let member = MemberId(self.next_member.fetch_add(1, Ordering::Relaxed));
        let (sender, events) = mpsc::channel(self.send_queue);
        let (kick, kicked) = oneshot::channel();
        let (reply, replied) = oneshot::channel();
        let handle = self.session_for_join(room);
        let replies = sender.clone();
        let command = Command::Join {
            request,
            member,
            inbox: sender,
            kick,
            reply,
        };
        // The session cannot stop while this join is counted, so its queue is open.
        if handle.commands.send(command.into()).await.is_err() {
            handle.joining.fetch_sub(1, Ordering::AcqRel);
            return Err(JoinError::Stopped);
        }
        let client = replied.await.map_err(|_| JoinError::Stopped)??;
        Ok((
            Membership {
                room,
                member,
                client,
                commands: handle.commands,
                places: Arc::new(Semaphore::new(PLACES_PER_MEMBER)),
                replies,
            },
            Inbox { events, kicked },
        ))
    }

    /// Changes a room's language, live or not, telling everyone in it; returns the room.
    ///
    /// # Errors
    /// [`JoinError`] when the room does not exist, the store fails, or the room stopped.
    pub async fn change_language(
        self: &Arc<Self>,
        room: RoomId,
        language: Language,
    ) -> Result<Room, JoinError> {
        // Counted as a join, so a session started for it stays until it has answered.
        let handle = self.session_for_join(room);
        let (reply, replied) = oneshot::channel();
        let command = Command::Language {
            member: None,
            language,
            reply: Some(reply),
        };
        if handle.commands.send(command.into()).await.is_err() {
            handle.joining.fetch_sub(1, Ordering::AcqRel);
            return Err(JoinError::Stopped);
        }
        replied.await.map_err(|_| JoinError::Stopped)?
    }

    /// Deletes a room: its members are closed ([`crate::CloseReason::RoomDeleted`]) and
    /// everything kept of it is deleted. Joins that come afterwards find no room.
    ///
    /// # Errors
    /// [`JoinError`] when the room does not exist, the store fails (then nothing was deleted
    /// and the members stay), or the room stopped.
    pub async fn delete(self: &Arc<Self>, room: RoomId) -> Result<(), JoinError> {
        // Through the room's session, its single writer, so that nothing it does afterwards
        // writes the room again; counted as a join, so the session waits for it.
        let handle = self.session_for_join(room);
        let (reply, replied) = oneshot::channel();
        if handle
            .commands
            .send(Command::Delete { reply }.into())
            .await
            .is_err()
        {
            handle.joining.fetch_sub(1, Ordering::AcqRel);
            return Err(JoinError::Stopped);
        }
        replied.await.map_err(|_| JoinError::Stopped)?
    }

    /// Whether a room has a live session now.
    #[must_use]
    pub fn is_live(&self, room: RoomId) -> bool {
        lock(&self.live).contains_key(&room)
    }

    /// The room's session, started if needed, with this join counted.
    fn session_for_join(self: &Arc<Self>, room: RoomId) -> Handle<E::Frame> {
        let mut live = lock(&self.live);
        let handle = live
            .entry(room)
            .or_insert_with(|| {
                let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
                let joining = Arc::new(AtomicUsize::new(0));
                let registry = Arc::clone(self);
                let counter = Arc::clone(&joining);
                tokio::spawn(async move { Session::run(registry, room, queue, counter).await });
                Handle { commands, joining }
            })
            .clone();
        handle.joining.fetch_add(1, Ordering::AcqRel);
        handle
    }

    /// Takes a stopping room out of the registry when no join is on its way; `false` (and the
    /// room stays) when one is.
    pub(crate) fn unload(&self, room: RoomId, joining: &AtomicUsize) -> bool {
        let mut live = lock(&self.live);
        if joining.load(Ordering::Acquire) == 0 {
            // Nobody is in the room and nobody is on the way: what is still queued comes from
            // members that already left.
            live.remove(&room);
            return true;
        }
        false
    }

    /// Takes a room out of the registry whatever is on its way (the session failed).
    pub(crate) fn forget(&self, room: RoomId) {
        lock(&self.live).remove(&room);
    }
}

impl<F: Send + Sync + 'static> Membership<F> {
    /// The room this membership is in.
    #[must_use]
    pub const fn room_id(&self) -> RoomId {
        self.room
    }

    /// The client id this member has in the room.
    #[must_use]
    pub const fn client(&self) -> &ClientId {
        &self.client
    }

    /// This member's number in its room, which [`crate::CommitEntry::read_by`] takes.
    #[must_use]
    pub const fn member(&self) -> MemberId {
        self.member
    }

    /// Sends an edit to the room. Waits while the member's places in the room's queue are
    /// taken.
    ///
    /// # Errors
    /// [`RoomStopped`] when the room has stopped; the connection should end.
    pub async fn edit(&self, edit: Edit) -> Result<(), RoomStopped> {
        self.submit(Command::Edit {
            member: self.member,
            edit,
        })
        .await
    }

    /// Sends the member's selection at `revision`.
    ///
    /// # Errors
    /// [`RoomStopped`] when the room has stopped.
    pub async fn presence(&self, revision: u64, selection: Selection) -> Result<(), RoomStopped> {
        self.submit(Command::Presence {
            member: self.member,
            revision,
            selection,
        })
        .await
    }

    /// Reports a message the transport could not read; the room answers it and counts it
    /// against the member.
    ///
    /// # Errors
    /// [`RoomStopped`] when the room has stopped.
    pub async fn bad_message(&self, reason: String) -> Result<(), RoomStopped> {
        self.submit(Command::BadMessage {
            member: self.member,
            reason,
        })
        .await
    }

    /// Changes the room's language.
    ///
    /// # Errors
    /// [`RoomStopped`] when the room has stopped.
    pub async fn change_language(&self, language: Language) -> Result<(), RoomStopped> {
        self.submit(Command::Language {
            member: Some(self.member),
            language,
            reply: None,
        })
        .await
    }

    /// The room's code and language now, with a cursor made at `revision` moved to match.
    ///
    /// # Errors
    /// [`SnapshotError`] when the room has stopped or `revision` is not in its history.
    pub async fn snapshot(&self, revision: u64, cursor: usize) -> Result<Snapshot, SnapshotError> {
        let (reply, replied) = oneshot::channel();
        self.submit(Command::Snapshot {
            revision,
            cursor,
            reply,
        })
        .await?;
        replied
            .await
            .map_err(|_| RoomStopped)?
            .map_err(SnapshotError::Revision)
    }

    /// A handle that queues answers for this member alone, in order with the room's events,
    /// from anywhere (a completion computed outside the room). An answer that finds the
    /// member's queue full is dropped, as the room would drop the member.
    #[must_use]
    pub fn replies(&self) -> Replies<F> {
        Replies(self.replies.clone())
    }

    /// Queues a command for the room once this member has a place in its queue.
    async fn submit(&self, command: Command<F>) -> Result<(), RoomStopped> {
        let place = Arc::clone(&self.places)
            .acquire_owned()
            .await
            .map_err(|_| RoomStopped)?;
        self.commands
            .send(Queued {
                command,
                _place: Some(place),
            })
            .await
            .map_err(|_| RoomStopped)
    }
}

/// Queues answers for one member (see [`Membership::replies`]).
#[derive(Clone)]
pub struct Replies<F>(mpsc::Sender<Event<F>>);

impl<F> Replies<F> {
    /// Queues `frame` for the member; `false` when its queue is full or gone.
    pub fn send(&self, frame: F) -> bool {
        self.0.try_send(Event::Reply(frame)).is_ok()
    }
}

impl<F: Send + Sync + 'static> Drop for Membership<F> {
    fn drop(&mut self) {
        let leave = Queued::from(Command::Leave {
            member: self.member,
        });
        if let Err(TrySendError::Full(leave)) = self.commands.try_send(leave)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let commands = self.commands.clone();
            runtime.spawn(async move {
                let _ = commands.send(leave).await;
            });
        }
    }
}
