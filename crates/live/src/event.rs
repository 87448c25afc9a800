//! What a live room tells its members, in words of the room, not of a wire: a transport (the
//! WebSocket adapter) turns each [`Event`] into frames and codes, in one place of its own.
//!
//! The messages every member receives alike (committed operations, presence, the whole code)
//! are encoded once, by the transport's [`Encoder`], and shared by every member's queue.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use duet_app::SubmitError;
use duet_domain::{ClientId, CommittedOperation, Language, Selection};

/// A member's number in its room, given when it joins; a client id can be reused by a newer
/// connection, a member number never is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub(crate) u64);

impl MemberId {
    /// A member number; the registry gives each member its own, so this is for tests.
    #[must_use]
    pub const fn new(number: u64) -> Self {
        Self(number)
    }

    /// The number, for logs.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// What a member reads and writes: operations (with acknowledgements, presence, the
/// participants), or whole buffers (the prototype's clients: the room's code in, the member's
/// whole buffer out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    Operations,
    WholeBuffers,
}

/// A participant as the others see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub client: ClientId,
    pub name: String,
    pub selection: Option<Selection>,
}

/// The port through which the room has its transport encode, once, what many members receive
/// alike; the room then queues the same encoded value to each of them.
pub trait Encoder: Send + Sync + 'static {
    /// One encoded message, cheap to clone.
    type Frame: Clone + Send + Sync + 'static;

    /// A committed operation, as members other than its author receive it.
    fn operation(&self, committed: &CommittedOperation) -> Self::Frame;

    /// The acknowledgement of an author's edit `seq`, committed as `revision`.
    fn ack(&self, seq: u64, revision: u64) -> Self::Frame;

    /// A participant's selection.
    fn presence(&self, participant: &Participant) -> Self::Frame;

    /// The room's whole code, for whole-buffer members.
    fn code(&self, code: String) -> Self::Frame;
}

/// What an operations member receives first: who it is in the room and where the room stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    pub client: ClientId,
    /// The proof that this connection is `client`, passed back to resume as it.
    pub resume_token: String,
    pub revision: u64,
    pub language: Language,
    pub start: Start,
    /// Everyone else in the room.
    pub participants: Vec<Participant>,
}

/// How a joining member catches up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// The whole code at the welcome's revision.
    Code(String),
    /// The operations committed since the revision the member resumed from.
    Missed(Vec<Arc<CommittedOperation>>),
}

/// Why the room refused something a member sent; the room is unchanged by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// An edit the room cannot take (a bad operation, revision or sequence number, a room
    /// grown too large).
    Edit(SubmitError),
    /// A selection made at a revision the room cannot move from.
    Presence(SubmitError),
    /// A message the transport could not read.
    BadMessage(String),
    /// The store failed: the edit was not saved and may be sent again, with the same seq.
    Unavailable,
    /// The store failed: the language was not changed.
    LanguageNotSaved,
    /// The member's role does not allow it (a viewer's edit or language change).
    Forbidden,
}

impl std::fmt::Display for Refusal {
    /// What the member is told.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Edit(error) | Self::Presence(error) => error.fmt(formatter),
            Self::BadMessage(reason) => formatter.write_str(reason),
            Self::Unavailable => formatter.write_str("the edit could not be saved; send it again"),
            Self::LanguageNotSaved => formatter.write_str("the language could not be saved"),
            Self::Forbidden => {
                formatter.write_str("a viewer may not change the room's code or language")
            }
        }
    }
}

impl Refusal {
    /// Whether the member caused it (and it counts towards the bad-message limit), rather
    /// than the server.
    #[must_use]
    pub const fn is_clients(&self) -> bool {
        !matches!(self, Self::Unavailable | Self::LanguageNotSaved)
    }
}

/// Why the room closed a member's place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The room no longer exists.
    RoomDeleted,
    /// A newer connection proved it is the same client and took its place.
    Replaced,
    /// The member sent too many refused messages in a row.
    TooManyBadMessages,
    /// Edits may or may not be stored (the store failed mid-commit): the room reloads, and
    /// every member must reconnect and resume.
    Reloading,
    /// A whole-buffer member's frame could not be saved; it has no way to resend but
    /// reconnecting.
    SaveFailed,
    /// A whole-buffer member sent a buffer the room cannot take.
    InvalidEdit(String),
    /// A whole-buffer member whose role does not allow edits sent one.
    Forbidden,
}

/// One thing a member receives, in order. `F` is the transport's encoded frame.
#[derive(Debug)]
pub enum Event<F> {
    /// The first event of an operations member.
    Welcome(Box<Welcome>),
    /// The room's whole code, for a whole-buffer member. `marked`: the transport must let the
    /// client tell when its editor has taken this buffer (the WebSocket adapter sends a ping
    /// naming `revision` before it), so the room can read which buffer each of its frames was
    /// written on (`duet_domain::PlainMember`); the code a member joins with is not marked.
    Code {
        revision: u64,
        code: F,
        marked: bool,
    },
    /// The operations one commit made, shared by every operations member: each reads its own
    /// as acknowledgements and the others' as operations ([`CommitEntry::read_by`]).
    Committed(Arc<[CommitEntry<F>]>),
    /// A resent edit that was committed before, as `revision`.
    Ack {
        seq: u64,
        revision: u64,
    },
    /// Something the member sent was refused; `seq` names the edit, if it was one.
    Refused {
        seq: Option<u64>,
        refusal: Refusal,
    },
    /// Others' newest selections.
    Presence(Arc<PresenceBatch<F>>),
    Joined(Participant),
    Left(ClientId),
    Language(Language),
    /// The member's place in the room is over; the transport says why and ends the
    /// connection.
    Closed(CloseReason),
    /// An answer the transport queued itself, in order with the room's events.
    Reply(F),
}

/// One committed operation, encoded for everyone.
#[derive(Debug)]
pub struct CommitEntry<F> {
    pub(crate) author: MemberId,
    pub(crate) operation: F,
    /// `None` for an edit with nothing to acknowledge (a whole-buffer member's).
    pub(crate) ack: Option<F>,
}

impl<F> CommitEntry<F> {
    /// An entry: `author` reads `ack` (or nothing), everyone else `operation`.
    pub const fn new(author: MemberId, operation: F, ack: Option<F>) -> Self {
        Self {
            author,
            operation,
            ack,
        }
    }

    /// What `member` reads of this entry: its acknowledgement when `member` made the edit,
    /// else the operation; nothing for an author that needs no acknowledgement.
    pub fn read_by(&self, member: MemberId) -> Option<&F> {
        if self.author == member {
            self.ack.as_ref()
        } else {
            Some(&self.operation)
        }
    }
}

/// The newest presence of each member who moved, for one receiver, until its transport takes
/// them: a member who moves their cursor a thousand times between two edits costs everyone
/// else one queue entry, not a thousand.
#[derive(Debug)]
pub struct PresenceBatch<F> {
    /// `None` once taken: later selections go into a new batch.
    latest: Mutex<Option<Vec<(MemberId, F)>>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Held only in short sections that replace whole values and cannot panic midway.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F> PresenceBatch<F> {
    pub(crate) fn new(sender: MemberId, message: F) -> Self {
        Self {
            latest: Mutex::new(Some(vec![(sender, message)])),
        }
    }

    /// Puts `sender`'s newest selection in the batch, replacing an older one; `false` when the
    /// batch was already taken.
    pub(crate) fn offer(&self, sender: MemberId, message: F) -> bool {
        let mut latest = lock(&self.latest);
        let Some(messages) = latest.as_mut() else {
            return false;
        };
        match messages.iter_mut().find(|(from, _)| *from == sender) {
            Some(entry) => entry.1 = message,
            None => messages.push((sender, message)),
        }
        true
    }

    /// The selections gathered, one per member in the order they first moved; empty once
    /// taken.
    pub fn take(&self) -> Vec<F> {
        lock(&self.latest)
            .take()
            .map(|messages| messages.into_iter().map(|(_, message)| message).collect())
            .unwrap_or_default()
    }
}
