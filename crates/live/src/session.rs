//! A room's session: the single writer of one live room. It loads the room, takes its
//! members' commands in arrival order, commits the edits that queued up together (group
//! commit), and only then acknowledges and broadcasts them; it stops, after storing a
//! snapshot, when the last member has left.
//!
//! Every event a member receives goes through that member's bounded queue; a member that falls
//! that far behind is dropped, and the room never waits for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use duet_app::{
    ApplyEditError, Change, GetRoomError, IdentifyError, LiveRoom, Outcome, PlainFrame, Rooms,
    Submission, error_chain, lock_plain,
};
use duet_domain::{
    ClientId, CommittedOperation, Language, PlainMember, Role, Room, RoomId, Selection,
};
use tokio::sync::{mpsc, oneshot};

use crate::event::{
    CloseReason, CommitEntry, Encoder, Event, MemberId, MemberKind, Participant, PresenceBatch,
    Refusal, Start, Welcome,
};
use crate::registry::{Command, Edit, JoinError, JoinRequest, Queued, Registry, Snapshot};

/// How many refused messages in a row close a member's place.
pub const MAX_CONSECUTIVE_ERRORS: u32 = 20;
/// The longest display name kept, in characters; a longer one is cut.
pub const MAX_NAME: usize = 64;
/// How many queued commands a session handles in one round (and commits in one transaction).
const BATCH: usize = 256;

struct Member<F> {
    client: ClientId,
    name: String,
    kind: MemberKind,
    role: Role,
    inbox: mpsc::Sender<Event<F>>,
    /// Dropped with the member: tells its connection it was dropped, even when its queue is
    /// full.
    _kick: oneshot::Sender<()>,
    selection: Option<Selection>,
    /// The presence batch last queued to this member, and the revision it was queued at:
    /// others' selections join it until it is taken or an edit is queued after it.
    presence_batch: Option<(Arc<PresenceBatch<F>>, u64)>,
    /// Whole-buffer members: the buffers sent to them and their previous frame, from which the
    /// room infers what each new frame was written on (`duet_domain::PlainMember`).
    plain: Option<Arc<Mutex<PlainMember>>>,
    /// Whole-buffer members: their sequence numbers, given by the room.
    plain_seq: u64,
    consecutive_errors: u32,
}

impl<F> Member<F> {
    fn participant(&self) -> Participant {
        Participant {
            client: self.client.clone(),
            name: self.name.clone(),
            selection: self.selection,
        }
    }
}

/// Where the outcome of one submission goes.
struct Pending {
    member: MemberId,
    /// The seq the member gave it (none for whole-buffer members, who are not acknowledged).
    seq: Option<u64>,
    selection: Option<Selection>,
}

pub(crate) struct Session<E: Encoder> {
    registry: Arc<Registry<E>>,
    room: RoomId,
    live: LiveRoom,
    members: HashMap<MemberId, Member<E::Frame>>,
    joining: Arc<AtomicUsize>,
    /// Set when the session must stop, with what later joins are told: the store failed in a
    /// way that leaves the live room possibly behind it (the next join loads the room
    /// afresh), or the room was deleted.
    stopping: Option<JoinError>,
}

/// Queues an event for a member; `false` when its queue is full (it fell behind) or gone.
fn queue<F>(inbox: &mpsc::Sender<Event<F>>, event: Event<F>) -> bool {
    inbox.try_send(event).is_ok()
}

impl<E: Encoder> Session<E> {
    /// Loads the room, serves commands until the last member leaves, stores a snapshot and
    /// stops.
    pub(crate) async fn run(
        registry: Arc<Registry<E>>,
        room: RoomId,
        mut queue: mpsc::Receiver<Queued<E::Frame>>,
        joining: Arc<AtomicUsize>,
    ) {
        let live = match registry.rooms.open(room).await {
            Ok(live) => live,
            Err(error) => {
                let error = match error {
                    GetRoomError::NotFound(id) => JoinError::NotFound(id),
                    GetRoomError::Unavailable(cause) => JoinError::Unavailable(Arc::new(cause)),
                };
                stop(&registry, room, queue, &joining, &error).await;
                return;
            }
        };
        let mut session = Self {
            registry,
            room,
            live,
            members: HashMap::new(),
            joining,
            stopping: None,
        };
        let mut batch = Vec::with_capacity(BATCH);
        while queue.recv_many(&mut batch, BATCH).await > 0 {
            session
                .handle(batch.drain(..).map(|queued| queued.command))
                .await;
            if let Some(error) = session.stopping.take() {
                let Self {
                    registry, joining, ..
                } = session;
                stop(&registry, room, queue, &joining, &error).await;
                return;
            }
            if !session.members.is_empty() {
                continue;
            }
            if let Err(error) = session.rooms().close(&session.live).await {
                tracing::warn!(room = %room, error = %error_chain(&error), "snapshot not stored");
            }
            if session.registry.unload(room, &session.joining) {
                tracing::debug!(room = %room, "room unloaded");
                return;
            }
        }
    }

    fn rooms(&self) -> &Rooms {
        &self.registry.rooms
    }

    async fn handle(&mut self, commands: impl Iterator<Item = Command<E::Frame>>) {
        let mut submissions = Vec::new();
        let mut pending = Vec::new();
        for command in commands {
            if let Some(error) = &self.stopping {
                // The session stops after this round: what is queued behind is answered as
                // later commands will be.
                refuse_when_stopped(command, &self.joining, error);
                continue;
            }
            if let Command::Edit { member, edit } = command {
                if let Some(submission) = self.submission(member, edit, &mut pending) {
                    submissions.push(submission);
                }
                continue;
            }
            // Anything else sees the state after the edits before it.
            self.commit(&mut submissions, &mut pending).await;
            match command {
                Command::Join {
                    request,
                    member,
                    inbox,
                    kick,
                    reply,
                } => {
                    let joined = self.join(request, member, inbox, kick).await;
                    self.joining.fetch_sub(1, Ordering::AcqRel);
                    let _ = reply.send(joined);
                }
                Command::Leave { member } => self.leave(member),
                Command::Presence {
                    member,
                    revision,
                    selection,
                } => self.presence(member, revision, selection),
                Command::BadMessage { member, reason } => {
                    self.refuse(member, None, Refusal::BadMessage(reason));
                }
                Command::Language {
                    member,
                    language,
                    reply,
                } => self.change_language(member, language, reply).await,
                Command::Snapshot {
                    revision,
                    cursor,
                    reply,
                } => {
                    let answer = self
                        .live
                        .transform_selection(Selection::cursor(cursor), revision)
                        .map(|moved| Snapshot {
                            code: self.live.document().text(),
                            language: self.live.language(),
                            cursor: moved.head,
                        });
                    let _ = reply.send(answer);
                }
                Command::Delete { reply } => {
                    self.joining.fetch_sub(1, Ordering::AcqRel);
                    let _ = reply.send(self.delete().await);
                }
                Command::Edit { .. } => {}
            }
        }
        self.commit(&mut submissions, &mut pending).await;
    }

    /// Deletes the room and closes everyone in it; the session stops after this round.
    async fn delete(&mut self) -> Result<(), JoinError> {
        match self.rooms().delete(self.room).await {
            Ok(()) | Err(GetRoomError::NotFound(_)) => {
                tracing::info!(room = %self.room, members = self.members.len(), "room deleted");
                self.close_everyone(&CloseReason::RoomDeleted);
                self.stopping = Some(JoinError::NotFound(self.room));
                Ok(())
            }
            Err(GetRoomError::Unavailable(cause)) => {
                tracing::error!(room = %self.room, error = %error_chain(&cause), "room not deleted");
                Err(JoinError::Unavailable(Arc::new(cause)))
            }
        }
    }

    async fn change_language(
        &mut self,
        member: Option<MemberId>,
        language: Language,
        reply: Option<oneshot::Sender<Result<Room, JoinError>>>,
    ) {
        if member.is_none() {
            self.joining.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(member) = member
            && self
                .members
                .get(&member)
                .is_some_and(|member| !member.role.may_edit())
        {
            self.refuse(member, None, Refusal::Forbidden);
            return;
        }
        let result = self
            .registry
            .rooms
            .change_language(&mut self.live, language)
            .await;
        match &result {
            Ok(()) => self.broadcast(None, || Event::Language(language)),
            Err(error) => {
                tracing::error!(room = %self.room, error = %error_chain(error), "language not changed");
                if let Some(member) = member {
                    self.refuse(member, None, Refusal::LanguageNotSaved);
                }
            }
        }
        if let Some(reply) = reply {
            let answer = match result {
                Ok(()) => Ok(self.live.room()),
                Err(ApplyEditError::NotFound(id)) => Err(JoinError::NotFound(id)),
                Err(ApplyEditError::Unavailable(cause) | ApplyEditError::InDoubt(cause)) => {
                    Err(JoinError::Unavailable(Arc::new(cause)))
                }
            };
            let _ = reply.send(answer);
        }
    }

    fn submission(
        &mut self,
        member_id: MemberId,
        edit: Edit,
        pending: &mut Vec<Pending>,
    ) -> Option<Submission> {
        let member = self.members.get_mut(&member_id)?;
        if !member.role.may_edit() {
            let seq = match &edit {
                Edit::Change { seq, .. } => Some(*seq),
                Edit::WholeBuffer { .. } => None,
            };
            self.refuse(member_id, seq, Refusal::Forbidden);
            return None;
        }
        let (seq, base, change, selection, reported_seq) = match edit {
            Edit::WholeBuffer { code, answered } => {
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
            Edit::Change {
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

    async fn commit(&mut self, submissions: &mut Vec<Submission>, pending: &mut Vec<Pending>) {
        if submissions.is_empty() {
            return;
        }
        let batch = std::mem::take(submissions);
        let owners = std::mem::take(pending);
        let registry = Arc::clone(&self.registry);
        match registry.rooms.commit(&mut self.live, batch).await {
            Ok(outcomes) => self.publish(owners, outcomes),
            Err(ApplyEditError::NotFound(_)) => self.close_everyone(&CloseReason::RoomDeleted),
            Err(error @ ApplyEditError::InDoubt(_)) => {
                tracing::error!(room = %self.room, error = %error_chain(&error), "edits may or may not be stored: every member must reconnect and resume");
                self.close_everyone(&CloseReason::Reloading);
                self.stopping = Some(JoinError::Stopped);
            }
            Err(error @ ApplyEditError::Unavailable(_)) => {
                tracing::error!(room = %self.room, error = %error_chain(&error), "edits not committed");
                for owner in owners {
                    self.refuse(owner.member, owner.seq, Refusal::Unavailable);
                }
            }
        }
    }

    fn close_everyone(&mut self, reason: &CloseReason) {
        for member in self.members.values() {
            let _ = member.inbox.try_send(Event::Closed(reason.clone()));
        }
        self.members.clear();
    }

    /// Acknowledges, broadcasts and reports what a committed batch did. The operations go to
    /// every operations member as one shared queue entry; anything else (a duplicate's ack, a
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
                        self.send(owner.member, Event::Ack { seq, revision });
                    }
                }
                Outcome::Rejected(error) => {
                    self.broadcast_committed(&mut entries);
                    self.refuse(owner.member, owner.seq, Refusal::Edit(error));
                }
            }
        }
        self.broadcast_committed(&mut entries);
        if committed_any {
            self.send_code();
        }
    }

    /// Moves everyone's selection over a committed operation and encodes it, once, both as
    /// others see it and as its author's acknowledgement.
    fn commit_entry(
        &mut self,
        author: MemberId,
        seq: Option<u64>,
        committed: &CommittedOperation,
    ) -> CommitEntry<E::Frame> {
        for member in self.members.values_mut() {
            if let Some(selection) = member.selection {
                member.selection = Some(selection.transform(&committed.operation));
            }
        }
        let encoder = &self.registry.encoder;
        CommitEntry {
            author,
            operation: encoder.operation(committed),
            ack: seq.map(|seq| encoder.ack(seq, committed.revision)),
        }
    }

    /// Queues the operations gathered in `entries` (emptying it) for every operations member.
    fn broadcast_committed(&mut self, entries: &mut Vec<CommitEntry<E::Frame>>) {
        if entries.is_empty() {
            return;
        }
        let shared: Arc<[CommitEntry<E::Frame>]> = std::mem::take(entries).into();
        let overflowed: Vec<MemberId> = self
            .members
            .iter_mut()
            .filter(|(_, member)| member.kind == MemberKind::Operations)
            .filter_map(|(id, member)| {
                // Later selections go after these operations, not into a batch queued before.
                member.presence_batch = None;
                (!queue(&member.inbox, Event::Committed(Arc::clone(&shared)))).then_some(*id)
            })
            .collect();
        self.drop_members(overflowed);
    }

    /// Sends whole-buffer members the code as it now is, once per committed batch, marked
    /// with its revision.
    fn send_code(&mut self) {
        let revision = self.live.document().revision();
        let mut code: Option<E::Frame> = None;
        let mut overflowed = Vec::new();
        for (id, member) in &mut self.members {
            let Some(plain) = &member.plain else {
                continue;
            };
            let code = code
                .get_or_insert_with(|| self.registry.encoder.code(self.live.document().text()))
                .clone();
            lock_plain(plain).sent(revision);
            let event = Event::Code {
                revision,
                code,
                marked: true,
            };
            if !queue(&member.inbox, event) {
                overflowed.push(*id);
            }
        }
        self.drop_members(overflowed);
    }

    async fn join(
        &mut self,
        request: JoinRequest,
        member_id: MemberId,
        inbox: mpsc::Sender<Event<E::Frame>>,
        kick: oneshot::Sender<()>,
    ) -> Result<ClientId, JoinError> {
        let connected = request
            .client
            .as_ref()
            .is_some_and(|client| self.members.values().any(|member| member.client == *client));
        // A full room refuses at once, unless the connection may take the place of one of its
        // members (it names a connected client id); then it is counted once it is identified.
        let limit = self.registry.max_members;
        if self.members.len() >= limit && !connected {
            return Err(JoinError::RoomFull { limit });
        }
        let registry = Arc::clone(&self.registry);
        let identity = registry
            .rooms
            .identify(
                &mut self.live,
                request.client,
                request.resume_token.as_deref(),
                request.subject.as_deref(),
                connected,
            )
            .await
            .map_err(|error| match error {
                IdentifyError::TakenByAnotherUser(client) => JoinError::ClientTaken(client),
                IdentifyError::Unavailable(cause) => JoinError::Unavailable(Arc::new(cause)),
            })?;
        let client = identity.client;
        // A client id in use belongs to the newer connection when it proves it is that client
        // (one that reconnects before its old connection timed out); a connection that cannot
        // prove it was given another id above and replaces nobody.
        let replaced: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(_, member)| identity.proved && member.client == client)
            .map(|(id, _)| *id)
            .collect();
        // A connection that takes an old one's place takes its place in the count too.
        if self.members.len() - replaced.len() >= limit {
            return Err(JoinError::RoomFull { limit });
        }
        for id in replaced {
            if let Some(old) = self.members.remove(&id) {
                let _ = old.inbox.try_send(Event::Closed(CloseReason::Replaced));
            }
        }
        let document = self.live.document();
        let revision = document.revision();
        let first = match request.kind {
            MemberKind::WholeBuffers => (document.len_utf16() > 0).then(|| Event::Code {
                revision,
                code: self.registry.encoder.code(document.text()),
                marked: false,
            }),
            MemberKind::Operations => {
                let start = request
                    .since
                    .and_then(|since| self.live.operations_since(since))
                    .map_or_else(|| Start::Code(document.text()), Start::Missed);
                Some(Event::Welcome(Box::new(Welcome {
                    client: client.clone(),
                    resume_token: identity.token,
                    revision,
                    language: self.live.language(),
                    start,
                    participants: self.members.values().map(Member::participant).collect(),
                })))
            }
        };
        if let Some(first) = first {
            // The queue is new and holds at least two events.
            let _ = inbox.try_send(first);
        }
        let name: String = request.name.chars().take(MAX_NAME).collect();
        if request.kind == MemberKind::Operations {
            let joined = Participant {
                client: client.clone(),
                name: name.clone(),
                selection: None,
            };
            self.broadcast(Some(member_id), || Event::Joined(joined.clone()));
        }
        self.members.insert(
            member_id,
            Member {
                client: client.clone(),
                name,
                kind: request.kind,
                role: request.role,
                inbox,
                _kick: kick,
                selection: None,
                presence_batch: None,
                plain: (request.kind == MemberKind::WholeBuffers)
                    .then(|| Arc::new(Mutex::new(PlainMember::joined(revision)))),
                plain_seq: 0,
                consecutive_errors: 0,
            },
        );
        Ok(client)
    }

    fn leave(&mut self, member_id: MemberId) {
        if let Some(member) = self.members.remove(&member_id) {
            self.announce_departure(&member);
        }
    }

    /// Tells the others that a member's client left, unless another connection of the same
    /// client is still in the room.
    fn announce_departure(&mut self, member: &Member<E::Frame>) {
        if member.kind == MemberKind::Operations
            && !self
                .members
                .values()
                .any(|other| other.client == member.client)
        {
            let client = member.client.clone();
            self.broadcast(None, || Event::Left(client.clone()));
        }
    }

    fn presence(&mut self, member_id: MemberId, revision: u64, selection: Selection) {
        let moved = match self.live.transform_selection(selection, revision) {
            Ok(moved) => moved,
            Err(error) => {
                self.refuse(member_id, None, Refusal::Presence(error));
                return;
            }
        };
        let Some(member) = self.members.get_mut(&member_id) else {
            return;
        };
        member.selection = Some(moved);
        member.consecutive_errors = 0;
        let message = self.registry.encoder.presence(&member.participant());
        self.broadcast_presence(member_id, &message);
    }

    /// Queues a member's selection for every other operations member, in the presence batch
    /// already waiting in their queue when nothing was queued after it.
    fn broadcast_presence(&mut self, sender: MemberId, message: &E::Frame) {
        let revision = self.live.document().revision();
        let mut overflowed = Vec::new();
        for (id, member) in &mut self.members {
            if member.kind != MemberKind::Operations || *id == sender {
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
            if queue(&member.inbox, Event::Presence(Arc::clone(&batch))) {
                member.presence_batch = Some((batch, revision));
            } else {
                overflowed.push(*id);
            }
        }
        self.drop_members(overflowed);
    }

    /// Queues an event for every operations member but `except`.
    fn broadcast(&mut self, except: Option<MemberId>, event: impl Fn() -> Event<E::Frame>) {
        let mut overflowed = Vec::new();
        for (id, member) in &mut self.members {
            if member.kind != MemberKind::Operations || Some(*id) == except {
                continue;
            }
            // Later selections go after this event (a `left` before a `joined`, say), not
            // into a presence batch queued before it.
            member.presence_batch = None;
            if !queue(&member.inbox, event()) {
                overflowed.push(*id);
            }
        }
        self.drop_members(overflowed);
    }

    fn drop_members(&mut self, members: Vec<MemberId>) {
        for id in members {
            if let Some(member) = self.members.remove(&id) {
                tracing::info!(room = %self.room, client = %member.client, "dropping a client that fell behind");
                self.announce_departure(&member);
            }
        }
    }

    fn send(&mut self, member_id: MemberId, event: Event<E::Frame>) {
        let delivered = self
            .members
            .get(&member_id)
            .is_none_or(|member| queue(&member.inbox, event));
        if !delivered {
            self.drop_members(vec![member_id]);
        }
    }

    /// Tells a member that something it sent was refused. Whole-buffer members, who have no
    /// way to read a refusal, are closed instead. A refusal the member caused counts towards
    /// the bad-message limit.
    fn refuse(&mut self, member_id: MemberId, seq: Option<u64>, refusal: Refusal) {
        let Some(member) = self.members.get(&member_id) else {
            return;
        };
        let clients = refusal.is_clients();
        let event = match member.kind {
            MemberKind::Operations => Event::Refused { seq, refusal },
            MemberKind::WholeBuffers if refusal == Refusal::Forbidden => {
                Event::Closed(CloseReason::Forbidden)
            }
            MemberKind::WholeBuffers if clients => {
                Event::Closed(CloseReason::InvalidEdit(refusal.to_string()))
            }
            MemberKind::WholeBuffers => Event::Closed(CloseReason::SaveFailed),
        };
        self.send(member_id, event);
        if clients {
            self.count_error(member_id);
        }
    }

    fn count_error(&mut self, member_id: MemberId) {
        let Some(member) = self.members.get_mut(&member_id) else {
            return;
        };
        member.consecutive_errors += 1;
        if member.consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            let _ = member
                .inbox
                .try_send(Event::Closed(CloseReason::TooManyBadMessages));
            if let Some(member) = self.members.remove(&member_id) {
                self.announce_departure(&member);
            }
        }
    }
}

/// Takes a room out of the registry and refuses every join (and language change) queued for
/// it, and any that still comes, with `error`.
async fn stop<E: Encoder>(
    registry: &Registry<E>,
    room: RoomId,
    mut queue: mpsc::Receiver<Queued<E::Frame>>,
    joining: &AtomicUsize,
    error: &JoinError,
) {
    registry.forget(room);
    queue.close();
    while let Some(Queued { command, .. }) = queue.recv().await {
        refuse_when_stopped(command, joining, error);
    }
}

/// Answers a command that reached a stopped room: joins, language changes from outside and
/// deletions are told `error`; a member's commands are dropped (its connection is ending).
fn refuse_when_stopped<F>(command: Command<F>, joining: &AtomicUsize, error: &JoinError) {
    match command {
        Command::Join { reply, .. } => {
            joining.fetch_sub(1, Ordering::AcqRel);
            let _ = reply.send(Err(copy(error)));
        }
        Command::Language {
            member: None,
            reply: Some(reply),
            ..
        } => {
            joining.fetch_sub(1, Ordering::AcqRel);
            let _ = reply.send(Err(copy(error)));
        }
        Command::Delete { reply } => {
            joining.fetch_sub(1, Ordering::AcqRel);
            let _ = reply.send(Err(copy(error)));
        }
        _ => {}
    }
}

fn copy(error: &JoinError) -> JoinError {
    match error {
        JoinError::NotFound(id) => JoinError::NotFound(*id),
        JoinError::Unavailable(cause) => JoinError::Unavailable(Arc::clone(cause)),
        JoinError::Stopped => JoinError::Stopped,
        JoinError::RoomFull { limit } => JoinError::RoomFull { limit: *limit },
        JoinError::ClientTaken(client) => JoinError::ClientTaken(client.clone()),
    }
}
