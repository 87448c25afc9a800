//! Per-room hubs: one task per live room that owns it, orders its edits, commits them and
//! fans the results out to the room's members.
//!
//! A hub is started when the first member joins and stops when the last one leaves, after
//! storing a snapshot; everything it acknowledged is already committed, so stopping loses
//! nothing. Commands reach the hub through a bounded queue, so a flood of edits slows the
//! senders' connections, not the server. Edits that queue up while a commit is in flight are
//! committed together in the next transaction (group commit). Every frame a member receives
//! goes through its own bounded queue; a member that falls that far behind is dropped, and the
//! room never waits for it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use duet_app::{
    ApplyEditError, Change, GetRoomError, LiveRoom, Outcome, PlainFrame, Rooms, Submission,
    SubmitError, lock_plain,
};
use duet_domain::{
    Answered, ClientId, CommittedOperation, Language, PlainMember, Room, RoomId, Selection,
};
use duet_protocol::close::{
    INTERNAL_ERROR, INVALID_PAYLOAD, POLICY_VIOLATION, REPLACED, ROOM_DELETED, TRY_AGAIN_LATER,
};
use duet_protocol::{ErrorCode, Participant, ServerMessage, WireOperation};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// How many refused messages in a row close a connection (with 1008).
pub const MAX_CONSECUTIVE_ERRORS: u32 = 20;
/// How many queued commands a hub handles in one round (and commits in one transaction).
const BATCH: usize = 256;
/// How many commands may wait for a hub before senders wait.
const COMMAND_QUEUE: usize = 1024;
/// How many of those one member may hold.
const PLACES_PER_MEMBER: usize = 16;

/// Which protocol a member speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The prototype's: whole buffers in and out.
    Plain,
    /// `duet.v1`: operations, acknowledgements, presence.
    V1,
}

/// Who is joining, and from where they resume.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub protocol: Protocol,
    pub client: Option<ClientId>,
    /// The proof that the connection is `client` (given in its first welcome).
    pub resume_token: Option<String>,
    pub name: String,
    pub since: Option<u64>,
}

/// What the room queues for a member.
pub enum Outgoing {
    /// One frame.
    Frame(Message),
    /// The room's code for a plain member, just after a ping whose payload is the revision
    /// (big-endian): the client's pong tells the room which buffers it had reached when it
    /// wrote its next frame (`duet_domain::PlainMember`).
    Buffer { revision: u64, code: Utf8Bytes },
    /// The operations one commit made, shared by every duet.v1 member: each reads its own as
    /// acknowledgements and the others' as `op` messages. One queue entry per commit, however
    /// many operations it holds, and one encoding of each.
    Committed(Arc<[CommitEntry]>),
    /// Others' latest selections, gathered while this entry waits in the member's queue: a
    /// member who moves their cursor a thousand times between two edits costs everyone else
    /// one entry, not a thousand.
    Presence(Arc<PresenceBatch>),
}

/// The latest `presence` message of each member who moved, for one receiver, until its
/// connection takes them.
pub struct PresenceBatch {
    /// `None` once taken: later selections go into a new batch.
    latest: Mutex<Option<Vec<(u64, Utf8Bytes)>>>,
}

impl PresenceBatch {
    fn new(sender: u64, message: Utf8Bytes) -> Self {
        Self {
            latest: Mutex::new(Some(vec![(sender, message)])),
        }
    }

    /// Puts `sender`'s newest selection in the batch, replacing an older one; `false` when the
    /// batch was already taken.
    fn offer(&self, sender: u64, message: Utf8Bytes) -> bool {
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

    fn take(&self) -> Vec<Utf8Bytes> {
        lock(&self.latest)
            .take()
            .map(|messages| messages.into_iter().map(|(_, message)| message).collect())
            .unwrap_or_default()
    }
}

/// One committed operation, encoded for everyone.
pub struct CommitEntry {
    owner: u64,
    op: Utf8Bytes,
    ack: Option<Utf8Bytes>,
}

impl Outgoing {
    /// The frames this holds for member `member`, in order.
    pub fn frames(self, member: u64) -> impl Iterator<Item = Message> {
        let (single, entries, presence) = match self {
            Self::Frame(frame) => (vec![frame], None, Vec::new()),
            Self::Buffer { revision, code } => (
                vec![
                    Message::Ping(revision.to_be_bytes().to_vec().into()),
                    Message::Text(code),
                ],
                None,
                Vec::new(),
            ),
            Self::Committed(entries) => (Vec::new(), Some(entries), Vec::new()),
            Self::Presence(batch) => (Vec::new(), None, batch.take()),
        };
        let committed = entries.into_iter().flat_map(move |entries| {
            (0..entries.len()).filter_map(move |index| {
                let entry = &entries[index];
                if entry.owner == member {
                    entry.ack.clone().map(Message::Text)
                } else {
                    Some(Message::Text(entry.op.clone()))
                }
            })
        });
        single
            .into_iter()
            .chain(committed)
            .chain(presence.into_iter().map(Message::Text))
    }
}

/// What a member receives: frames in order, and a signal that fires when the room drops it.
pub struct Inbox {
    pub frames: mpsc::Receiver<Outgoing>,
    pub kicked: oneshot::Receiver<()>,
}

/// A connection's place in a room. Dropping it leaves the room.
pub struct Membership {
    room: RoomId,
    member: u64,
    client: ClientId,
    commands: mpsc::Sender<Queued>,
    /// This member's places in the room's queue: a connection that sends faster than the
    /// room works waits for a place (and stops reading its socket), so it never holds more
    /// than its share of the queue and others' messages are never stuck behind a flood.
    places: Arc<Semaphore>,
    /// The member's own queue, for answers that do not go through the room (suggestions).
    outbox: mpsc::Sender<Outgoing>,
}

/// A command on its way to a room, holding one of its member's places in the queue.
struct Queued {
    command: Command,
    _place: Option<OwnedSemaphorePermit>,
}

impl From<Command> for Queued {
    fn from(command: Command) -> Self {
        Self {
            command,
            _place: None,
        }
    }
}

enum Command {
    Join {
        request: JoinRequest,
        member: u64,
        outbox: mpsc::Sender<Outgoing>,
        kick: oneshot::Sender<()>,
        reply: oneshot::Sender<Result<ClientId, GetRoomError>>,
    },
    Leave {
        member: u64,
    },
    Edit {
        member: u64,
        edit: MemberEdit,
    },
    Presence {
        member: u64,
        revision: u64,
        selection: Selection,
    },
    Refused {
        member: u64,
        reason: String,
    },
    /// A language change, from a member or (with no member) from the HTTP API.
    Language {
        member: Option<u64>,
        language: Language,
        reply: Option<oneshot::Sender<Result<Room, ApplyEditError>>>,
    },
    /// The room's text and language, and a cursor made at `revision` moved to the current one.
    Snapshot {
        revision: u64,
        cursor: usize,
        reply: oneshot::Sender<Result<(String, Language, usize), SubmitError>>,
    },
}

/// An edit as a member sent it.
pub enum MemberEdit {
    /// A plain client's whole buffer, and the pings (each before a buffer) it had answered
    /// before sending it.
    Plain { code: String, answered: Answered },
    /// A `duet.v1` operation or whole buffer.
    V1 {
        seq: u64,
        revision: u64,
        change: Change,
        selection: Option<Selection>,
    },
}

/// The live rooms of this server.
pub struct Hubs {
    rooms: Rooms,
    send_queue: usize,
    live: Mutex<HashMap<RoomId, HubHandle>>,
    next_member: AtomicU64,
}

/// A live room's queue, and how many joins are on their way to it: a hub stops only when it
/// has no members and no join is coming.
#[derive(Clone)]
struct HubHandle {
    commands: mpsc::Sender<Queued>,
    joining: Arc<AtomicUsize>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The registry is only read and written in short sections that cannot panic midway.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hubs {
    /// Hubs over the room use cases; each member may fall `send_queue` frames behind before the
    /// room drops it.
    #[must_use]
    pub fn new(rooms: Rooms, send_queue: usize) -> Self {
        Self {
            rooms,
            send_queue: send_queue.max(2),
            live: Mutex::default(),
            next_member: AtomicU64::new(1),
        }
    }

    /// Joins a room, starting its hub when nobody else is in it. The inbox starts with what the
    /// protocol sends first (the code, or a `welcome`) and then receives every later event.
    ///
    /// # Errors
    /// [`GetRoomError`] when the room does not exist or cannot be loaded.
    pub async fn join(
        self: &Arc<Self>,
        room: RoomId,
        request: JoinRequest,
    ) -> Result<(Membership, Inbox), GetRoomError> {
        let member = self.next_member.fetch_add(1, Ordering::Relaxed);
        let (outbox, frames) = mpsc::channel(self.send_queue);
        let (kick, kicked) = oneshot::channel();
        let (reply, replied) = oneshot::channel();
        let handle = self.hub_for_join(room);
        let own_outbox = outbox.clone();
        let command = Command::Join {
            request,
            member,
            outbox,
            kick,
            reply,
        };
        // The hub cannot stop while this join is counted, so the queue is open.
        if handle.commands.send(command.into()).await.is_err() {
            handle.joining.fetch_sub(1, Ordering::AcqRel);
            return Err(stopped());
        }
        let client = replied.await.map_err(|_| stopped())??;
        Ok((
            Membership {
                room,
                member,
                client,
                commands: handle.commands,
                places: Arc::new(Semaphore::new(PLACES_PER_MEMBER)),
                outbox: own_outbox,
            },
            Inbox { frames, kicked },
        ))
    }

    /// Changes a room's language, live or not, telling everyone in it; returns the room.
    ///
    /// # Errors
    /// [`ApplyEditError`] when the room does not exist or the store fails.
    pub async fn change_language(
        self: &Arc<Self>,
        room: RoomId,
        language: Language,
    ) -> Result<Room, ApplyEditError> {
        // Counted as a join, so a hub started for it stays until it has answered.
        let handle = self.hub_for_join(room);
        let (reply, replied) = oneshot::channel();
        let command = Command::Language {
            member: None,
            language,
            reply: Some(reply),
        };
        let stopped = || {
            ApplyEditError::Unavailable(duet_app::ports::RepositoryError::Unavailable(
                "the room stopped".into(),
            ))
        };
        if handle.commands.send(command.into()).await.is_err() {
            handle.joining.fetch_sub(1, Ordering::AcqRel);
            return Err(stopped());
        }
        replied.await.map_err(|_| stopped())?
    }

    /// The room's hub, started if needed, with this join counted.
    fn hub_for_join(self: &Arc<Self>, room: RoomId) -> HubHandle {
        let mut live = lock(&self.live);
        let handle = live
            .entry(room)
            .or_insert_with(|| {
                let (commands, queue) = mpsc::channel(COMMAND_QUEUE);
                let joining = Arc::new(AtomicUsize::new(0));
                let hubs = Arc::clone(self);
                let counter = Arc::clone(&joining);
                tokio::spawn(async move { hubs.run(room, queue, counter).await });
                HubHandle { commands, joining }
            })
            .clone();
        handle.joining.fetch_add(1, Ordering::AcqRel);
        handle
    }

    /// The hub of one room: loads it, serves commands until the last member leaves, stores a
    /// snapshot and stops.
    async fn run(
        self: Arc<Self>,
        room: RoomId,
        mut queue: mpsc::Receiver<Queued>,
        joining: Arc<AtomicUsize>,
    ) {
        let live = match self.rooms.open(room).await {
            Ok(live) => live,
            Err(error) => {
                self.stop(room, queue, &joining, &error).await;
                return;
            }
        };
        let mut hub = Hub {
            room,
            live,
            members: HashMap::new(),
            joining,
            stale: false,
        };
        let mut batch = Vec::with_capacity(BATCH);
        while queue.recv_many(&mut batch, BATCH).await > 0 {
            hub.handle(&self.rooms, batch.drain(..).map(|queued| queued.command))
                .await;
            if hub.stale {
                // The store may hold edits this room does not: it stops, and whoever comes
                // next loads it afresh from the store.
                let error =
                    GetRoomError::Unavailable(duet_app::ports::RepositoryError::Unavailable(
                        "the room is reloading; try again".into(),
                    ));
                self.stop(room, queue, &hub.joining, &error).await;
                return;
            }
            if !hub.members.is_empty() {
                continue;
            }
            if let Err(error) = self.rooms.close(&hub.live).await {
                tracing::warn!(room = %room, error = %crate::error::error_chain(&error), "snapshot not stored");
            }
            let mut live = lock(&self.live);
            if hub.joining.load(Ordering::Acquire) == 0 {
                // Nobody is in the room and nobody is on the way: what is still queued comes
                // from members that already left.
                live.remove(&room);
                tracing::debug!(room = %room, "room unloaded");
                return;
            }
        }
    }
}

impl Hubs {
    /// Takes a room out of the registry and refuses every join (and language change) queued
    /// for it, and any that still comes, with `error`.
    async fn stop(
        &self,
        room: RoomId,
        mut queue: mpsc::Receiver<Queued>,
        joining: &AtomicUsize,
        error: &GetRoomError,
    ) {
        lock(&self.live).remove(&room);
        queue.close();
        while let Some(Queued { command, .. }) = queue.recv().await {
            match command {
                Command::Join { reply, .. } => {
                    joining.fetch_sub(1, Ordering::AcqRel);
                    let _ = reply.send(Err(copy_error(error)));
                }
                Command::Language {
                    member: None,
                    reply: Some(reply),
                    ..
                } => {
                    joining.fetch_sub(1, Ordering::AcqRel);
                    let _ = reply.send(Err(match copy_error(error) {
                        GetRoomError::NotFound(id) => ApplyEditError::NotFound(id),
                        GetRoomError::Unavailable(cause) => ApplyEditError::Unavailable(cause),
                    }));
                }
                _ => {}
            }
        }
    }
}

fn stopped() -> GetRoomError {
    GetRoomError::Unavailable(duet_app::ports::RepositoryError::Unavailable(
        "the room stopped".into(),
    ))
}

fn copy_error(error: &GetRoomError) -> GetRoomError {
    match error {
        GetRoomError::NotFound(id) => GetRoomError::NotFound(*id),
        GetRoomError::Unavailable(cause) => GetRoomError::Unavailable(
            duet_app::ports::RepositoryError::Unavailable(cause.to_string().into()),
        ),
    }
}

struct Member {
    client: ClientId,
    name: String,
    protocol: Protocol,
    outbox: mpsc::Sender<Outgoing>,
    _kick: oneshot::Sender<()>,
    selection: Option<Selection>,
    /// The presence batch last queued to this member, and the revision it was queued at:
    /// others' selections join it until it is sent or an edit is queued after it.
    presence_batch: Option<(Arc<PresenceBatch>, u64)>,
    /// Plain members: the buffers queued to them and their previous frame, from which the
    /// room infers what each new frame was written on (`duet_domain::PlainMember`).
    plain: Option<Arc<std::sync::Mutex<PlainMember>>>,
    /// Plain members: their own sequence numbers, given by the server.
    plain_seq: u64,
    consecutive_errors: u32,
}

struct Hub {
    room: RoomId,
    live: LiveRoom,
    members: HashMap<u64, Member>,
    joining: Arc<AtomicUsize>,
    /// The store failed in a way that leaves the live room possibly behind it: the room must
    /// stop and be loaded again.
    stale: bool,
}

/// Where the outcome of one submission goes.
struct Pending {
    member: u64,
    seq: Option<u64>,
    selection: Option<Selection>,
}

impl Hub {
    async fn handle(&mut self, rooms: &Rooms, commands: impl Iterator<Item = Command>) {
        let mut submissions = Vec::new();
        let mut pending = Vec::new();
        for command in commands {
            if self.stale {
                // Dropped: the room stops after this round, and a join dropped here is
                // answered "the room stopped" by its sender.
                continue;
            }
            if let Command::Edit { member, edit } = command {
                if let Some(submission) = self.submission(member, edit, &mut pending) {
                    submissions.push(submission);
                }
                continue;
            }
            // Anything else sees the state after the edits before it.
            self.commit(rooms, &mut submissions, &mut pending).await;
            match command {
                Command::Join {
                    request,
                    member,
                    outbox,
                    kick,
                    reply,
                } => {
                    let joined = self.join(rooms, request, member, outbox, kick).await;
                    self.joining.fetch_sub(1, Ordering::AcqRel);
                    let _ = reply.send(joined);
                }
                Command::Leave { member } => self.leave(member),
                Command::Presence {
                    member,
                    revision,
                    selection,
                } => self.presence(member, revision, selection),
                Command::Refused { member, reason } => {
                    self.send_error(member, ErrorCode::BadMessage, reason, None, false);
                }
                Command::Language {
                    member,
                    language,
                    reply,
                } => self.change_language(rooms, member, language, reply).await,
                Command::Snapshot {
                    revision,
                    cursor,
                    reply,
                } => {
                    let answer = self
                        .live
                        .transform_selection(Selection::cursor(cursor), revision)
                        .map(|moved| {
                            (
                                self.live.document().text(),
                                self.live.language(),
                                moved.head,
                            )
                        });
                    let _ = reply.send(answer);
                }
                Command::Edit { .. } => {}
            }
        }
        self.commit(rooms, &mut submissions, &mut pending).await;
    }

    async fn change_language(
        &mut self,
        rooms: &Rooms,
        member: Option<u64>,
        language: Language,
        reply: Option<oneshot::Sender<Result<Room, ApplyEditError>>>,
    ) {
        if member.is_none() {
            self.joining.fetch_sub(1, Ordering::AcqRel);
        }
        let result = rooms.change_language(&mut self.live, language).await;
        match &result {
            Ok(()) => {
                let message = ServerMessage::Language {
                    language: language.as_str().into(),
                };
                self.broadcast_v1(None, Message::Text(message.encode().into()));
            }
            Err(error) => {
                tracing::error!(room = %self.room, error = %crate::error::error_chain(error), "language not changed");
                if let Some(member) = member {
                    self.send_error(
                        member,
                        ErrorCode::Unavailable,
                        "the language could not be saved".into(),
                        None,
                        true,
                    );
                }
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(result.map(|()| self.live.room()));
        }
    }

    fn submission(
        &mut self,
        member_id: u64,
        edit: MemberEdit,
        pending: &mut Vec<Pending>,
    ) -> Option<Submission> {
        let member = self.members.get_mut(&member_id)?;
        let (seq, base, change, selection, reported_seq) = match edit {
            MemberEdit::Plain { code, answered } => {
                member.plain_seq += 1;
                let plain = member.plain.as_ref()?;
                let frame = PlainFrame {
                    text: code,
                    answered,
                    member: Arc::clone(plain),
                };
                // The base is inferred when the frame is applied; this one is only recorded.
                let base = self.live.document().revision();
                (member.plain_seq, base, Change::Buffer(frame), None, None)
            }
            MemberEdit::V1 {
                seq,
                revision,
                change,
                selection,
            } => (seq, revision, change, selection, Some(seq)),
        };
        pending.push(Pending {
            member: member_id,
            seq: reported_seq,
            selection,
        });
        Some(Submission {
            client: member.client.clone(),
            seq,
            base,
            change,
        })
    }

    async fn commit(
        &mut self,
        rooms: &Rooms,
        submissions: &mut Vec<Submission>,
        pending: &mut Vec<Pending>,
    ) {
        if submissions.is_empty() {
            return;
        }
        let batch = std::mem::take(submissions);
        let owners = std::mem::take(pending);
        match rooms.commit(&mut self.live, batch).await {
            Ok(outcomes) => self.publish(owners, outcomes),
            Err(ApplyEditError::NotFound(_)) => {
                for member in self.members.values() {
                    let _ = member
                        .outbox
                        .try_send(Outgoing::Frame(close(ROOM_DELETED, "the room was deleted")));
                }
                self.members.clear();
            }
            Err(error @ ApplyEditError::InDoubt(_)) => {
                tracing::error!(room = %self.room, error = %crate::error::error_chain(&error), "edits may or may not be stored: every member must reconnect and resume");
                for member in self.members.values() {
                    let _ = member.outbox.try_send(Outgoing::Frame(close(
                        TRY_AGAIN_LATER,
                        "the room is reloading; reconnect and resume",
                    )));
                }
                self.members.clear();
                self.stale = true;
            }
            Err(error) => {
                tracing::error!(room = %self.room, error = %crate::error::error_chain(&error), "edits not committed");
                for owner in owners {
                    self.send_error(
                        owner.member,
                        ErrorCode::Unavailable,
                        "the edit could not be saved; send it again".into(),
                        owner.seq,
                        true,
                    );
                }
            }
        }
    }

    /// Acknowledges, broadcasts and reports what a committed batch did. The operations go to
    /// every duet.v1 member as one shared queue entry; anything else (a duplicate's ack, a
    /// refusal) first sends the operations before it, so every member sees them in order.
    fn publish(&mut self, owners: Vec<Pending>, outcomes: Vec<Outcome>) {
        let mut committed_any = false;
        let mut entries = Vec::new();
        for (owner, outcome) in owners.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Committed(committed) => {
                    committed_any = true;
                    entries.push(self.commit_entry(owner.member, owner.seq, &committed));
                    if let Some(member) = self.members.get_mut(&owner.member) {
                        member.consecutive_errors = 0;
                        // A selection sent with an edit is where the cursor is once the edit
                        // is made: held to that text, as a presence selection is.
                        if let Some(selection) = owner.selection {
                            member.selection =
                                Some(selection.clamp(committed.operation.target_len()));
                        }
                    }
                }
                Outcome::Duplicate { revision } => {
                    self.broadcast_committed(&mut entries);
                    if let Some(seq) = owner.seq {
                        let ack = ServerMessage::Ack { seq, revision }.encode().into();
                        self.send(owner.member, Message::Text(ack));
                    }
                }
                Outcome::Rejected(error) => {
                    self.broadcast_committed(&mut entries);
                    let code = match &error {
                        SubmitError::InvalidOperation(_) => ErrorCode::InvalidOp,
                        SubmitError::BadRevision { .. } => ErrorCode::BadRevision,
                        SubmitError::ResyncRequired { .. } => ErrorCode::ResyncRequired,
                        SubmitError::StaleSeq { .. } | SubmitError::InvalidSeq { .. } => {
                            ErrorCode::BadSeq
                        }
                        SubmitError::SeqReused { .. } => ErrorCode::SeqReused,
                        SubmitError::RoomTooLarge { .. } => ErrorCode::RoomTooLarge,
                    };
                    self.send_error(owner.member, code, error.to_string(), owner.seq, false);
                }
            }
        }
        self.broadcast_committed(&mut entries);
        if committed_any {
            self.send_plain_code();
        }
    }

    /// Moves everyone's selection over a committed operation and encodes it, once, both as
    /// others see it and as its author's acknowledgement.
    fn commit_entry(
        &mut self,
        owner: u64,
        seq: Option<u64>,
        committed: &CommittedOperation,
    ) -> CommitEntry {
        for member in self.members.values_mut() {
            if let Some(selection) = member.selection {
                member.selection = Some(selection.transform(&committed.operation));
            }
        }
        CommitEntry {
            owner,
            op: ServerMessage::Op(WireOperation::from(committed))
                .encode()
                .into(),
            ack: seq.map(|seq| {
                ServerMessage::Ack {
                    seq,
                    revision: committed.revision,
                }
                .encode()
                .into()
            }),
        }
    }

    /// Queues the operations gathered in `entries` (emptying it) for every duet.v1 member.
    fn broadcast_committed(&mut self, entries: &mut Vec<CommitEntry>) {
        if entries.is_empty() {
            return;
        }
        let shared: Arc<[CommitEntry]> = std::mem::take(entries).into();
        let overflowed: Vec<u64> = self
            .members
            .iter()
            .filter(|(_, member)| member.protocol == Protocol::V1)
            .filter(|(_, member)| !queue(&member.outbox, Outgoing::Committed(Arc::clone(&shared))))
            .map(|(id, _)| *id)
            .collect();
        self.drop_members(overflowed);
    }

    /// Sends plain members the whole code as it now is, once per committed batch, each behind
    /// a ping naming the revision.
    fn send_plain_code(&mut self) {
        let revision = self.live.document().revision();
        let mut code: Option<Utf8Bytes> = None;
        let mut overflowed = Vec::new();
        for (id, member) in &mut self.members {
            if member.protocol != Protocol::Plain {
                continue;
            }
            let code = code
                .get_or_insert_with(|| self.live.document().text().into())
                .clone();
            if let Some(plain) = &member.plain {
                lock_plain(plain).sent(revision);
            }
            if !queue(&member.outbox, Outgoing::Buffer { revision, code }) {
                overflowed.push(*id);
            }
        }
        self.drop_members(overflowed);
    }

    async fn join(
        &mut self,
        rooms: &Rooms,
        request: JoinRequest,
        member_id: u64,
        outbox: mpsc::Sender<Outgoing>,
        kick: oneshot::Sender<()>,
    ) -> Result<ClientId, GetRoomError> {
        let connected = request
            .client
            .as_ref()
            .is_some_and(|client| self.members.values().any(|member| member.client == *client));
        let identity = rooms
            .identify(
                &mut self.live,
                request.client,
                request.resume_token.as_deref(),
                connected,
            )
            .await
            .map_err(GetRoomError::Unavailable)?;
        let client = identity.client;
        // A client id in use belongs to the newer connection when it proves it is that client
        // (one that reconnects before its old connection timed out); a connection that cannot
        // prove it was given another id above and replaces nobody.
        let replaced: Vec<u64> = self
            .members
            .iter()
            .filter(|(_, member)| identity.proved && member.client == client)
            .map(|(id, _)| *id)
            .collect();
        for id in replaced {
            if let Some(old) = self.members.remove(&id) {
                let _ = old.outbox.try_send(Outgoing::Frame(close(
                    REPLACED,
                    "replaced by a newer connection",
                )));
            }
        }
        let document = self.live.document();
        let revision = document.revision();
        let first = match request.protocol {
            Protocol::Plain => {
                (document.len_utf16() > 0).then(|| Message::Text(document.text().into()))
            }
            Protocol::V1 => {
                let resumed = request
                    .since
                    .and_then(|since| self.live.operations_since(since));
                let participants = self
                    .members
                    .values()
                    .map(|member| Participant {
                        client_id: member.client.as_str().into(),
                        name: Cow::Borrowed(&member.name),
                        selection: member.selection,
                    })
                    .collect();
                let language = self.live.language().to_string();
                let welcome = ServerMessage::Welcome {
                    client_id: client.as_str().into(),
                    resume_token: Cow::Borrowed(&identity.token),
                    revision,
                    language: Cow::Borrowed(&language),
                    code: resumed.is_none().then(|| document.text().into()),
                    ops: resumed
                        .as_ref()
                        .map(|ops| ops.iter().map(|op| WireOperation::from(&**op)).collect()),
                    participants,
                };
                Some(Message::Text(welcome.encode().into()))
            }
        };
        if let Some(first) = first {
            // The queue is new and holds at least two frames.
            let _ = outbox.try_send(Outgoing::Frame(first));
        }
        if request.protocol == Protocol::V1 {
            let joined = ServerMessage::Joined(Participant {
                client_id: client.as_str().into(),
                name: Cow::Borrowed(&request.name),
                selection: None,
            });
            self.broadcast_v1(Some(member_id), Message::Text(joined.encode().into()));
        }
        self.members.insert(
            member_id,
            Member {
                client: client.clone(),
                name: request.name,
                protocol: request.protocol,
                outbox,
                _kick: kick,
                selection: None,
                presence_batch: None,
                plain: (request.protocol == Protocol::Plain)
                    .then(|| Arc::new(std::sync::Mutex::new(PlainMember::joined(revision)))),
                plain_seq: 0,
                consecutive_errors: 0,
            },
        );
        Ok(client)
    }

    fn leave(&mut self, member_id: u64) {
        if let Some(member) = self.members.remove(&member_id) {
            self.announce_departure(&member);
        }
    }

    fn announce_departure(&mut self, member: &Member) {
        if member.protocol == Protocol::V1
            && !self
                .members
                .values()
                .any(|other| other.client == member.client)
        {
            let left = ServerMessage::Left {
                client_id: member.client.as_str().into(),
            };
            self.broadcast_v1(None, Message::Text(left.encode().into()));
        }
    }

    fn presence(&mut self, member_id: u64, revision: u64, selection: Selection) {
        let moved = match self.live.transform_selection(selection, revision) {
            Ok(moved) => moved,
            Err(error) => {
                let code = match error {
                    SubmitError::ResyncRequired { .. } => ErrorCode::ResyncRequired,
                    _ => ErrorCode::BadRevision,
                };
                self.send_error(member_id, code, error.to_string(), None, false);
                return;
            }
        };
        let Some(member) = self.members.get_mut(&member_id) else {
            return;
        };
        member.selection = Some(moved);
        member.consecutive_errors = 0;
        let message = ServerMessage::Presence(Participant {
            client_id: member.client.as_str().into(),
            name: Cow::Borrowed(&member.name),
            selection: Some(moved),
        })
        .encode()
        .into();
        self.broadcast_presence(member_id, message);
    }

    /// Queues a member's selection for every other duet.v1 member, in the presence batch
    /// already waiting in their queue when no edit was queued after it.
    fn broadcast_presence(&mut self, sender: u64, message: Utf8Bytes) {
        let revision = self.live.document().revision();
        let mut overflowed = Vec::new();
        for (id, member) in &mut self.members {
            if member.protocol != Protocol::V1 || *id == sender {
                continue;
            }
            let gathered = member
                .presence_batch
                .as_ref()
                .is_some_and(|(batch, at)| *at == revision && batch.offer(sender, message.clone()));
            if gathered {
                continue;
            }
            let batch = Arc::new(PresenceBatch::new(sender, message.clone()));
            if queue(&member.outbox, Outgoing::Presence(Arc::clone(&batch))) {
                member.presence_batch = Some((batch, revision));
            } else {
                overflowed.push(*id);
            }
        }
        self.drop_members(overflowed);
    }

    fn broadcast_v1(&mut self, except: Option<u64>, frame: Message) {
        let mut overflowed = Vec::new();
        for (id, member) in &mut self.members {
            if member.protocol != Protocol::V1 || Some(*id) == except {
                continue;
            }
            // Later selections go after this message (a `left` before a `joined`, say), not
            // into a presence batch queued before it.
            member.presence_batch = None;
            if !deliver(&member.outbox, frame.clone()) {
                overflowed.push(*id);
            }
        }
        self.drop_members(overflowed);
    }

    fn drop_members(&mut self, members: Vec<u64>) {
        for id in members {
            if let Some(member) = self.members.remove(&id) {
                tracing::info!(room = %self.room, client = %member.client, "dropping a client that fell behind");
                self.announce_departure(&member);
            }
        }
    }

    fn send(&mut self, member_id: u64, frame: Message) {
        let delivered = self
            .members
            .get(&member_id)
            .is_none_or(|member| deliver(&member.outbox, frame));
        if !delivered {
            self.drop_members(vec![member_id]);
        }
    }

    /// Reports a refused message to a member; plain members, who have no error message, are
    /// closed instead.
    fn send_error(
        &mut self,
        member_id: u64,
        code: ErrorCode,
        message: String,
        seq: Option<u64>,
        server_side: bool,
    ) {
        let Some(member) = self.members.get(&member_id) else {
            return;
        };
        let frame = match member.protocol {
            Protocol::Plain if server_side => close(
                INTERNAL_ERROR,
                "the edit could not be saved; reconnect and resend",
            ),
            Protocol::Plain => close(INVALID_PAYLOAD, &message),
            Protocol::V1 => Message::Text(
                ServerMessage::Error {
                    code,
                    message: message.into(),
                    seq,
                    id: None,
                }
                .encode()
                .into(),
            ),
        };
        self.send(member_id, frame);
        if !server_side {
            self.count_error(member_id);
        }
    }

    fn count_error(&mut self, member_id: u64) {
        let Some(member) = self.members.get_mut(&member_id) else {
            return;
        };
        member.consecutive_errors += 1;
        if member.consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            let frame = close(POLICY_VIOLATION, "too many bad messages");
            let _ = member.outbox.try_send(Outgoing::Frame(frame));
            if let Some(member) = self.members.remove(&member_id) {
                self.announce_departure(&member);
            }
        }
    }
}

fn close(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

/// Queues a frame for a member; `false` when its queue is full (it fell behind) or gone.
fn deliver(outbox: &mpsc::Sender<Outgoing>, frame: Message) -> bool {
    queue(outbox, Outgoing::Frame(frame))
}

/// Queues anything for a member; `false` when its queue is full or gone.
fn queue(outbox: &mpsc::Sender<Outgoing>, outgoing: Outgoing) -> bool {
    match outbox.try_send(outgoing) {
        Ok(()) => true,
        Err(TrySendError::Full(_) | TrySendError::Closed(_)) => false,
    }
}

impl Membership {
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

    /// Sends an edit to the room. Waits while the room is busy.
    ///
    /// # Errors
    /// `Err(())` when the room has stopped; the connection should end.
    pub async fn edit(&self, edit: MemberEdit) -> Result<(), ()> {
        self.submit(Command::Edit {
            member: self.member,
            edit,
        })
        .await
    }

    /// Queues a command for the room once this member has a place in its queue.
    async fn submit(&self, command: Command) -> Result<(), ()> {
        let place = Arc::clone(&self.places)
            .acquire_owned()
            .await
            .map_err(|_| ())?;
        self.commands
            .send(Queued {
                command,
                _place: Some(place),
            })
            .await
            .map_err(|_| ())
    }

    /// Changes the room's language.
    ///
    /// # Errors
    /// `Err(())` when the room has stopped.
    pub async fn change_language(&self, language: Language) -> Result<(), ()> {
        self.submit(Command::Language {
            member: Some(self.member),
            language,
            reply: None,
        })
        .await
    }

    /// The room's text and language now, with a cursor made at `revision` moved to match.
    ///
    /// # Errors
    /// `Err(None)` when the room has stopped; `Err(Some(_))` when `revision` is not in the
    /// history.
    pub async fn snapshot(
        &self,
        revision: u64,
        cursor: usize,
    ) -> Result<(String, Language, usize), Option<SubmitError>> {
        let (reply, replied) = oneshot::channel();
        self.submit(Command::Snapshot {
            revision,
            cursor,
            reply,
        })
        .await
        .map_err(|()| None)?;
        replied.await.map_err(|_| None)?.map_err(Some)
    }

    /// Queues a frame for this member directly (an answer only it receives).
    pub fn answer(&self, frame: Message) {
        let _ = self.outbox.try_send(Outgoing::Frame(frame));
    }

    /// The member's own queue, for answers sent later from elsewhere.
    #[must_use]
    pub fn outbox(&self) -> mpsc::Sender<Outgoing> {
        self.outbox.clone()
    }

    /// This member's number in its room, which [`Outgoing::frames`] takes.
    #[must_use]
    pub const fn member(&self) -> u64 {
        self.member
    }

    /// Sends the member's selection at `revision`.
    ///
    /// # Errors
    /// `Err(())` when the room has stopped.
    pub async fn presence(&self, revision: u64, selection: Selection) -> Result<(), ()> {
        self.submit(Command::Presence {
            member: self.member,
            revision,
            selection,
        })
        .await
    }

    /// Reports a message the connection could not read, and counts it against the member.
    ///
    /// # Errors
    /// `Err(())` when the room has stopped.
    pub async fn refused(&self, reason: String) -> Result<(), ()> {
        self.submit(Command::Refused {
            member: self.member,
            reason,
        })
        .await
    }
}

impl Drop for Membership {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(outgoing: Outgoing, member: u64) -> Vec<String> {
        outgoing
            .frames(member)
            .map(|frame| match frame {
                Message::Text(text) => text.as_str().to_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_commit_reads_as_acks_for_its_authors_and_ops_for_everyone_else() {
        let entry = |owner: u64, revision: u64, ack: bool| CommitEntry {
            owner,
            op: format!("op{revision}").into(),
            ack: ack.then(|| format!("ack{revision}").into()),
        };
        let shared: Arc<[CommitEntry]> =
            vec![entry(1, 7, true), entry(2, 8, true), entry(3, 9, false)].into();
        let committed = || Outgoing::Committed(Arc::clone(&shared));
        assert_eq!(texts(committed(), 1), ["ack7", "op8", "op9"]);
        assert_eq!(texts(committed(), 2), ["op7", "ack8", "op9"]);
        // An edit with nothing to acknowledge (a plain member's) is not echoed to its author.
        assert_eq!(texts(committed(), 3), ["op7", "op8"]);
        assert_eq!(texts(committed(), 4), ["op7", "op8", "op9"]);
        assert_eq!(
            texts(Outgoing::Frame(Message::Text("alone".into())), 1),
            ["alone"]
        );
    }
}
