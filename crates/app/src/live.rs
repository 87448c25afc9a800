//! A room loaded for editing: its document, the recent history of committed operations, and
//! the last sequence number seen from each client. One writer owns it at a time.
//!
//! The live room keeps these consistent itself: it applies a submission to all of them at once,
//! and rolls a batch back to a checkpoint when the store did not take it. `Rooms` decides, with
//! the store, what to apply and whether it stands.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use duet_domain::{
    Answered, ClientId, CommittedOperation, Document, OperationError, PlainMember, Room, RoomId,
    Selection, Step, TextOperation,
};

/// A change a client asks for: an operation, a whole buffer to diff against a revision it
/// names, or a plain client's whole buffer, whose base the room infers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Operation(TextOperation),
    Code(String),
    Buffer(PlainFrame),
}

/// A plain client's frame, with what the room knows of that connection (the buffers sent to
/// it and its previous frame), which [`PlainMember::merge`] reads when the frame is applied
/// and [`PlainMember::applied`] updates: shared with the connection's place in the room.
#[derive(Clone, Debug)]
pub struct PlainFrame {
    pub text: String,
    /// The pings the client had answered when it sent the frame: what
    /// [`PlainMember::merge`] reads as which buffer its editor held.
    pub answered: Answered,
    pub member: Arc<Mutex<PlainMember>>,
}

impl PartialEq for PlainFrame {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
            && self.answered == other.answered
            && Arc::ptr_eq(&self.member, &other.member)
    }
}

impl Eq for PlainFrame {}

/// Locks a plain member's state; a panic elsewhere cannot leave it half-written (its methods
/// replace whole fields), so a poisoned lock still guards a consistent value.
pub fn lock_plain(member: &Mutex<PlainMember>) -> MutexGuard<'_, PlainMember> {
    member.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One edit submitted by a client, made against revision `base`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub client: ClientId,
    pub seq: u64,
    pub base: u64,
    pub change: Change,
}

/// Why one submission was refused. The room is unchanged by it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the operation does not apply: {0}")]
    InvalidOperation(#[from] OperationError),
    #[error("revision {base} is ahead of the room, which is at revision {current}")]
    BadRevision { base: u64, current: u64 },
    #[error(
        "revision {base} is older than the history kept (from revision {oldest}); resynchronise"
    )]
    ResyncRequired { base: u64, oldest: u64 },
    #[error("sequence number {seq} was used before and not committed")]
    StaleSeq { seq: u64 },
    #[error("sequence number {seq} is out of range: 0 to {max}", max = Submission::MAX_SEQ)]
    InvalidSeq { seq: u64 },
    #[error("sequence number {seq} was committed before with a different edit")]
    SeqReused { seq: u64 },
    #[error("the edit would make the room larger than {limit} bytes")]
    RoomTooLarge { limit: usize },
}

impl Submission {
    /// The largest sequence number a client may use: JavaScript's largest exact integer, so
    /// every number a client sends means the same to it and fits every store.
    pub const MAX_SEQ: u64 = duet_domain::Client::MAX_SEQ;

    /// A digest of what the client sent (its base revision and change), the same on every
    /// run of every build, so that a resend of the same edit is told from a different edit
    /// that reuses its sequence number, even after the room was reloaded from the log.
    #[must_use]
    pub fn digest(&self) -> u64 {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(self.base.to_le_bytes());
        match &self.change {
            Change::Operation(operation) => {
                hasher.update(b"o");
                hasher.update(operation.to_string().as_bytes());
            }
            Change::Code(code) => {
                hasher.update(b"c");
                hasher.update(code.as_bytes());
            }
            Change::Buffer(frame) => {
                hasher.update(b"b");
                hasher.update(frame.text.as_bytes());
            }
        }
        let hash = hasher.finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&hash[..8]);
        u64::from_le_bytes(first)
    }
}

/// What became of one submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed now, as this operation.
    Committed(Arc<CommittedOperation>),
    /// Committed before (a resend), at this revision; not applied again.
    Duplicate { revision: u64 },
    /// Refused.
    Rejected(SubmitError),
}

/// How much of a live room is kept, and how often its snapshot is refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveSettings {
    /// How many recent operations are kept in memory to transform late edits and resume
    /// clients; a client further behind must resynchronise.
    pub history: usize,
    /// How many operations may follow the stored snapshot before it is refreshed.
    pub snapshot_every: u64,
    /// How much text (bytes inserted and deleted) the kept history may hold: large pastes
    /// shorten it, so a room's memory stays bounded.
    pub history_bytes: usize,
    /// The largest text a room may hold, in bytes of UTF-8; an edit that would make it larger
    /// is refused (`room_too_large`) and changes nothing, and so is a new room's code.
    pub max_room_bytes: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            history: 1000,
            snapshot_every: 200,
            history_bytes: 64 * 1024 * 1024,
            max_room_bytes: 4 * 1024 * 1024,
        }
    }
}

struct HistoryEntry {
    committed: Arc<CommittedOperation>,
    /// Undoes the operation on the document it was applied to.
    inverse: TextOperation,
}

impl HistoryEntry {
    /// The text this entry holds (what the operation inserts and what its inverse puts
    /// back), in bytes: what keeping it costs.
    fn weight(&self) -> usize {
        [&self.committed.operation, &self.inverse]
            .into_iter()
            .flat_map(TextOperation::components)
            .map(|component| match component {
                duet_domain::Component::Insert(text) => text.len(),
                _ => 0,
            })
            .sum()
    }
}

/// Why an operation read back from a room's log cannot follow the ones before it; the text is
/// what the log's quarantine records as the reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unreplayable {
    #[error("follows revision {0} out of order")]
    OutOfOrder(u64),
    #[error("does not apply: {0}")]
    DoesNotApply(#[from] OperationError),
}

/// What a batch of submissions changed in a live room, from [`LiveRoom::checkpoint`] on: the
/// room goes back to it with [`LiveRoom::rollback`] when the batch is not stored, or keeps the
/// changes with [`LiveRoom::committed`].
pub(crate) struct Checkpoint {
    document: Document,
    /// The history's length and weight: entries are only appended until the checkpoint is
    /// settled.
    history: usize,
    held: usize,
    /// What the batch changed outside the document and history, in order.
    undo: Vec<Undo>,
}

/// One change outside the document and history, with what it replaced.
enum Undo {
    /// A client's last sequence number before the batch.
    Seq(ClientId, Option<u64>),
    /// A plain connection's state before the batch.
    Plain(Arc<Mutex<PlainMember>>, Box<PlainMember>),
}

/// The live state of a room.
pub struct LiveRoom {
    /// The room's details and the revision of its stored snapshot; its code is left empty,
    /// the document holding the text once.
    room: Room,
    document: Document,
    history: VecDeque<HistoryEntry>,
    /// The text the history holds, in bytes: the sum of its entries' weights, kept as entries
    /// come and go, so that trimming after a commit does not weigh the whole history again.
    held: usize,
    last_seq: HashMap<ClientId, u64>,
    /// Every client id given to a connection since the room was loaded: an id that was handed
    /// out belongs to whoever holds its token, edited or not.
    issued: HashSet<ClientId>,
    /// With authentication on: the user (token subject) each client id was first given to
    /// since the room was loaded; no other user may connect as it.
    subjects: HashMap<ClientId, String>,
}

impl LiveRoom {
    /// A room loaded from its stored snapshot and the operations logged after it, the newest
    /// of which are kept as history. When one of them cannot follow the ones before it, the
    /// room stops at its last good state, and that operation's revision is returned with why.
    pub(crate) fn load(
        mut room: Room,
        operations: Vec<CommittedOperation>,
        settings: &LiveSettings,
    ) -> (Self, Option<(u64, Unreplayable)>) {
        // The document holds the text; the live room keeps only the details.
        let document = Document::new(&room.take_code(), room.revision());
        let mut live = Self {
            room,
            document,
            history: VecDeque::new(),
            held: 0,
            last_seq: HashMap::new(),
            issued: HashSet::new(),
            subjects: HashMap::new(),
        };
        let mut damaged = None;
        for committed in operations {
            let revision = committed.revision;
            if let Err(reason) = live.replay(committed) {
                damaged = Some((revision, reason));
                break;
            }
            if live.history.len() > settings.history {
                live.forget_oldest();
            }
        }
        live.trim_history(settings);
        (live, damaged)
    }

    /// Applies an operation read back from the log after the document's revision.
    fn replay(&mut self, committed: CommittedOperation) -> Result<(), Unreplayable> {
        // Checked: the revisions come from the store, which may be damaged.
        if self.document.revision().checked_add(1) != Some(committed.revision) {
            return Err(Unreplayable::OutOfOrder(self.document.revision()));
        }
        let inverse = self.document.invert(&committed.operation)?;
        self.document.apply(&committed.operation)?;
        self.remember(HistoryEntry {
            committed: Arc::new(committed),
            inverse,
        });
        Ok(())
    }

    fn remember(&mut self, entry: HistoryEntry) {
        self.held = self.held.saturating_add(entry.weight());
        self.history.push_back(entry);
    }

    /// Drops the oldest history entry; false when there is none.
    fn forget_oldest(&mut self) -> bool {
        let Some(oldest) = self.history.pop_front() else {
            return false;
        };
        self.held = self.held.saturating_sub(oldest.weight());
        true
    }

    /// Drops the oldest entries until at most `settings.history` remain holding at most
    /// `settings.history_bytes` of text (the newest is kept whatever its size).
    fn trim_history(&mut self, settings: &LiveSettings) {
        while self.history.len() > settings.history
            || (self.held > settings.history_bytes && self.history.len() > 1)
        {
            if !self.forget_oldest() {
                break;
            }
        }
    }

    /// The room's id.
    pub(crate) const fn id(&self) -> RoomId {
        self.room.id()
    }

    /// The room's details, with its live code and revision.
    #[must_use]
    pub fn room(&self) -> Room {
        let mut room = self.room.clone();
        let updated = self
            .history
            .back()
            .map_or(room.updated_at(), |entry| entry.committed.committed_at);
        room.advance(&self.document, updated.max(room.updated_at()));
        room
    }

    /// The room's language.
    #[must_use]
    pub fn language(&self) -> duet_domain::Language {
        *self.room.language()
    }

    /// The live document.
    #[must_use]
    pub const fn document(&self) -> &Document {
        &self.document
    }

    /// The revision operations can still be transformed from: older bases must resynchronise.
    #[must_use]
    pub fn oldest_revision(&self) -> u64 {
        self.history
            .front()
            .map_or(self.document.revision(), |entry| {
                entry.committed.revision - 1
            })
    }

    /// The operations committed after `revision`, when the history still holds them all.
    #[must_use]
    pub fn operations_since(&self, revision: u64) -> Option<Vec<Arc<CommittedOperation>>> {
        if revision < self.oldest_revision() || revision > self.document.revision() {
            return None;
        }
        Some(
            self.entries_since(revision)
                .map(|entry| Arc::clone(&entry.committed))
                .collect(),
        )
    }

    fn entries_since(&self, revision: u64) -> impl Iterator<Item = &HistoryEntry> {
        let skip =
            usize::try_from(revision.saturating_sub(self.oldest_revision())).unwrap_or(usize::MAX);
        self.history.iter().skip(skip)
    }

    /// Moves a selection made at revision `base` to the current revision.
    ///
    /// # Errors
    /// [`SubmitError::BadRevision`] or [`SubmitError::ResyncRequired`] when `base` is not in
    /// the history.
    pub fn transform_selection(
        &self,
        selection: Selection,
        base: u64,
    ) -> Result<Selection, SubmitError> {
        self.check_base(base)?;
        let moved = self
            .entries_since(base)
            .fold(selection, |selection, entry| {
                selection.transform(&entry.committed.operation)
            });
        Ok(moved.clamp(self.document.len_utf16()))
    }

    fn check_base(&self, base: u64) -> Result<(), SubmitError> {
        let current = self.document.revision();
        if base > current {
            return Err(SubmitError::BadRevision { base, current });
        }
        let oldest = self.oldest_revision();
        if base < oldest {
            return Err(SubmitError::ResyncRequired { base, oldest });
        }
        Ok(())
    }

    /// The document as it was at revision `base`, rebuilt by undoing later operations.
    ///
    /// # Errors
    /// [`SubmitError`] when `base` is not in the history.
    pub fn text_at(&self, base: u64) -> Result<String, SubmitError> {
        // The undo operations are applied as new ones, so the copy's revision says nothing.
        self.check_base(base)?;
        let mut document = self.document.clone();
        let later: Vec<&HistoryEntry> = self.entries_since(base).collect();
        for entry in later.iter().rev() {
            document.apply(&entry.inverse)?;
        }
        Ok(document.text())
    }

    /// The document's text at each of `revisions` that the history still covers, newest
    /// first, rebuilt in one walk back through the history.
    #[must_use]
    pub fn texts_at(&self, revisions: &[u64]) -> Vec<(u64, String)> {
        let mut wanted: Vec<u64> = revisions
            .iter()
            .copied()
            .filter(|revision| self.check_base(*revision).is_ok())
            .collect();
        wanted.sort_unstable_by(|a, b| b.cmp(a));
        wanted.dedup();
        let Some(&oldest) = wanted.last() else {
            return Vec::new();
        };
        // Undoing moves the text back; `at` is the revision the text is at.
        let mut document = self.document.clone();
        let mut at = self.document.revision();
        let mut texts = Vec::with_capacity(wanted.len());
        let mut later: Vec<&HistoryEntry> = self.entries_since(oldest).collect();
        for revision in wanted {
            while at > revision {
                let Some(entry) = later.pop() else { break };
                if document.apply(&entry.inverse).is_err() {
                    return texts;
                }
                at -= 1;
            }
            texts.push((revision, document.text()));
        }
        texts
    }

    /// Turns a submission into an operation on the current document.
    fn rebase(&self, submission: &Submission) -> Result<TextOperation, SubmitError> {
        self.check_base(submission.base)?;
        let mut operation = match &submission.change {
            Change::Operation(operation) => operation.clone(),
            Change::Code(code) => duet_domain::diff(&self.text_at(submission.base)?, code),
            Change::Buffer(_) => {
                return Err(SubmitError::BadRevision {
                    base: submission.base,
                    current: self.document.revision(),
                });
            }
        };
        for entry in self.entries_since(submission.base) {
            // The incoming operation goes first: its inserts win ties, as in ot.js servers.
            operation = TextOperation::transform(&operation, &entry.committed.operation)?.0;
        }
        Ok(operation)
    }

    /// The history from `revision` on, as a plain merge reads it, `client`'s own operations
    /// marked.
    fn steps_since(&self, revision: u64, client: &ClientId) -> Vec<Step<'_>> {
        self.entries_since(revision)
            .map(|entry| Step {
                operation: &entry.committed.operation,
                inverse: &entry.inverse,
                own: entry.committed.client == *client,
            })
            .collect()
    }

    /// What `client` committed as `seq`, if the history still holds it.
    pub(crate) fn recorded_in_history(
        &self,
        client: &ClientId,
        seq: u64,
    ) -> Option<crate::ports::RecordedSubmission> {
        self.history
            .iter()
            .rev()
            .find(|entry| entry.committed.client == *client && entry.committed.seq == seq)
            .map(|entry| crate::ports::RecordedSubmission {
                revision: entry.committed.revision,
                digest: entry.committed.submission_digest,
            })
    }

    /// The room as it is now, to go back to if the submissions applied next are not stored.
    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            document: self.document.clone(),
            history: self.history.len(),
            held: self.held,
            undo: Vec::new(),
        }
    }

    /// Applies one submission as of `now`: transforms it (or, for a plain client's frame,
    /// merges it) onto the document, applies it, appends it to the history and notes its
    /// sequence number, recording in `checkpoint` what it replaced.
    ///
    /// # Errors
    /// [`SubmitError`] when the submission is refused: it does not apply, its base is not in
    /// the history, or it would make the room larger than `max_room_bytes`. The room and
    /// `checkpoint` are unchanged then.
    pub(crate) fn apply(
        &mut self,
        submission: &Submission,
        now: chrono::DateTime<chrono::Utc>,
        max_room_bytes: usize,
        checkpoint: &mut Checkpoint,
    ) -> Result<Arc<CommittedOperation>, SubmitError> {
        // A plain frame's base is inferred now, against the room as this batch has left it,
        // so that two frames of one connection in a batch read each other.
        let (operation, plain) = match &submission.change {
            Change::Buffer(frame) => {
                let member = lock_plain(&frame.member);
                let oldest = member
                    .oldest_revision()
                    .unwrap_or_else(|| self.document.revision());
                let steps = self.steps_since(oldest, &submission.client);
                let edit = member.merge(&self.document, &steps, &frame.text, frame.answered)?;
                (edit.operation.clone(), Some((frame, edit)))
            }
            _ => (self.rebase(submission)?, None),
        };
        let inverse = self.document.invert(&operation)?;
        // The text's size once edited: what the edit inserts, less what it deletes (which its
        // inverse inserts). A room over the limit (made before it, or with a lower one) may
        // still shrink.
        let before = self.document.len_bytes();
        let after = (before + operation.inserted_bytes()).saturating_sub(inverse.inserted_bytes());
        if after > max_room_bytes && after > before {
            return Err(SubmitError::RoomTooLarge {
                limit: max_room_bytes,
            });
        }
        self.document.apply(&operation)?;
        let plain_before = plain.map(|(frame, edit)| {
            let mut member = lock_plain(&frame.member);
            let before = member.clone();
            member.applied(edit, self.document.revision());
            (Arc::clone(&frame.member), before)
        });
        let committed = Arc::new(CommittedOperation {
            revision: self.document.revision(),
            client: submission.client.clone(),
            seq: submission.seq,
            operation,
            committed_at: now,
            submission_digest: Some(submission.digest()),
        });
        self.remember(HistoryEntry {
            committed: Arc::clone(&committed),
            inverse,
        });
        let previous = self
            .last_seq
            .insert(submission.client.clone(), submission.seq);
        checkpoint
            .undo
            .push(Undo::Seq(submission.client.clone(), previous));
        if let Some((member, before)) = plain_before {
            checkpoint.undo.push(Undo::Plain(member, Box::new(before)));
        }
        Ok(committed)
    }

    /// Undoes everything applied since `checkpoint` was taken: the document, the history,
    /// the sequence numbers and the plain connections' states are as they were then. The
    /// history must not have been trimmed since ([`LiveRoom::committed`] ends a checkpoint).
    pub(crate) fn rollback(&mut self, checkpoint: Checkpoint) {
        self.document = checkpoint.document;
        self.history.truncate(checkpoint.history);
        self.held = checkpoint.held;
        for step in checkpoint.undo.into_iter().rev() {
            match step {
                Undo::Seq(client, Some(seq)) => {
                    self.last_seq.insert(client, seq);
                }
                Undo::Seq(client, None) => {
                    self.last_seq.remove(&client);
                }
                Undo::Plain(member, before) => *lock_plain(&member) = *before,
            }
        }
    }

    /// The room to store as its new snapshot, as of `now`, when `every` operations or more
    /// follow the stored one.
    pub(crate) fn snapshot_due(
        &self,
        every: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<Room> {
        (self.document.revision() - self.room.revision() >= every).then(|| {
            let mut room = self.room.clone();
            room.advance(&self.document, now);
            room
        })
    }

    /// Keeps what was applied since the last checkpoint, now stored (with `snapshot` when one
    /// was stored with it), and trims the history to what `settings` keep.
    pub(crate) fn committed(&mut self, snapshot: Option<Room>, settings: &LiveSettings) {
        if let Some(snapshot) = snapshot {
            self.snapshot_stored(snapshot);
        }
        self.trim_history(settings);
    }

    /// Records that `room`, the room's details at its live revision, was stored as its
    /// snapshot; its code is dropped, the document holding the text.
    pub(crate) fn snapshot_stored(&mut self, mut room: Room) {
        room.take_code();
        self.room = room;
    }

    /// Whether operations were committed after the stored snapshot.
    pub(crate) fn ahead_of_snapshot(&self) -> bool {
        self.document.revision() != self.room.revision()
    }

    /// The last sequence number this room knows `client` committed.
    pub(crate) fn last_seq(&self, client: &ClientId) -> Option<u64> {
        self.last_seq.get(client).copied()
    }

    /// Notes `latest`, read from the store, as `client`'s last sequence number, unless the
    /// room already knows one.
    pub(crate) fn seed_seq(&mut self, client: &ClientId, latest: u64) {
        self.last_seq.entry(client.clone()).or_insert(latest);
    }

    /// Notes that `client` was given to a connection (of the user `subject`, when
    /// authentication is on): it is known from now on, and bound to the first user given it,
    /// or to the user who `proved` it is theirs.
    pub(crate) fn issue(&mut self, client: ClientId, subject: Option<&str>, proved: bool) {
        if let Some(subject) = subject {
            match self.subjects.entry(client.clone()) {
                std::collections::hash_map::Entry::Occupied(mut bound) if proved => {
                    subject.clone_into(bound.get_mut());
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
                std::collections::hash_map::Entry::Vacant(free) => {
                    free.insert(subject.to_owned());
                }
            }
        }
        self.issued.insert(client);
    }

    /// The user `client` was first given to, when authentication is on.
    #[must_use]
    pub fn subject_of(&self, client: &ClientId) -> Option<&str> {
        self.subjects.get(client).map(String::as_str)
    }

    /// Whether `client` has edited this room since it was loaded, or is known by it.
    #[must_use]
    pub fn knows_client(&self, client: &ClientId) -> bool {
        self.last_seq.contains_key(client) || self.issued.contains(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Clock;
    use crate::testing::{FixedClock, client, op};
    use duet_domain::{Language, RoomId};

    fn now() -> chrono::DateTime<chrono::Utc> {
        FixedClock::default().now()
    }

    fn live_with(code: &str) -> LiveRoom {
        let room =
            Room::new(RoomId::generate(), Language::default(), code.into(), now()).expect("valid");
        LiveRoom::load(room, Vec::new(), &LiveSettings::default()).0
    }

    /// Applies `submission` and keeps it, as a stored batch of one.
    fn commit(live: &mut LiveRoom, submission: &Submission) -> Arc<CommittedOperation> {
        let mut checkpoint = live.checkpoint();
        let committed = live
            .apply(submission, now(), usize::MAX, &mut checkpoint)
            .expect("applies");
        live.committed(None, &LiveSettings::default());
        committed
    }

    /// Everything a live room holds, to compare two of its states.
    #[derive(Debug, PartialEq)]
    struct State {
        room: Room,
        text: String,
        revision: u64,
        history: Vec<(Arc<CommittedOperation>, TextOperation)>,
        held: usize,
        last_seq: HashMap<ClientId, u64>,
        issued: HashSet<ClientId>,
    }

    /// The history's weight, counted afresh: what the running `held` must equal.
    fn weighed(live: &LiveRoom) -> usize {
        live.history.iter().map(HistoryEntry::weight).sum()
    }

    fn state(live: &LiveRoom) -> State {
        assert_eq!(
            live.held,
            weighed(live),
            "the running weight is the history's"
        );
        State {
            room: live.room.clone(),
            text: live.document.text(),
            revision: live.document.revision(),
            history: live
                .history
                .iter()
                .map(|entry| (Arc::clone(&entry.committed), entry.inverse.clone()))
                .collect(),
            held: live.held,
            last_seq: live.last_seq.clone(),
            issued: live.issued.clone(),
        }
    }

    /// A plain member's whole state: it has no `PartialEq`, and its `Debug` shows every field.
    fn plain_state(member: &Mutex<PlainMember>) -> String {
        format!("{:?}", *lock_plain(member))
    }

    fn plain_frame(member: &Arc<Mutex<PlainMember>>, text: &str) -> Change {
        Change::Buffer(PlainFrame {
            text: text.into(),
            answered: Answered::default(),
            member: Arc::clone(member),
        })
    }

    #[test]
    fn applying_then_rolling_back_restores_the_room_exactly() {
        let mut live = live_with("abc");
        commit(
            &mut live,
            &op("alice", 1, 0, TextOperation::new().retain(3).insert("d")),
        );
        live.seed_seq(&client("bob"), 7);
        live.issue(client("carol"), None, false);
        let member = Arc::new(Mutex::new(PlainMember::joined(1)));
        let before = state(&live);
        let member_before = plain_state(&member);

        let mut checkpoint = live.checkpoint();
        let batch = [
            op("alice", 2, 1, TextOperation::new().insert("<").retain(4)),
            op("bob", 8, 0, TextOperation::new().retain(3).insert("!")),
            Submission {
                client: client("dave"),
                seq: 1,
                base: 1,
                change: Change::Code("abcd?".into()),
            },
            Submission {
                client: client("carol"),
                seq: 1,
                base: 0,
                change: plain_frame(&member, "Xabcd"),
            },
        ];
        for submission in &batch {
            live.apply(submission, now(), usize::MAX, &mut checkpoint)
                .expect("applies");
        }
        // Bob's "!", made before alice's "d" at the same place, arrived later and goes first.
        assert_eq!(live.document().text(), "X<abc!d?");
        assert_eq!(
            [
                client("alice"),
                client("bob"),
                client("carol"),
                client("dave")
            ]
            .map(|client| live.last_seq(&client)),
            [Some(2), Some(8), Some(1), Some(1)]
        );
        assert_ne!(plain_state(&member), member_before);

        live.rollback(checkpoint);
        assert_eq!(state(&live), before);
        assert_eq!(plain_state(&member), member_before);
        assert!(!live.knows_client(&client("dave")));
        assert_eq!(live.last_seq(&client("bob")), Some(7));
    }

    #[test]
    fn a_checkpoint_with_nothing_applied_rolls_back_to_the_same_state() {
        let mut live = live_with("abc");
        commit(
            &mut live,
            &op("alice", 1, 0, TextOperation::new().retain(3).insert("d")),
        );
        let before = state(&live);
        let checkpoint = live.checkpoint();
        live.rollback(checkpoint);
        assert_eq!(state(&live), before);
    }

    #[test]
    fn a_refused_submission_changes_nothing_and_records_nothing() {
        let mut live = live_with("abc");
        let before = state(&live);
        let mut checkpoint = live.checkpoint();
        let refusals = [
            (
                op("alice", 1, 0, TextOperation::new().retain(3).insert("d")),
                3,
            ),
            (
                op("alice", 1, 5, TextOperation::new().retain(3)),
                usize::MAX,
            ),
            (
                op("alice", 1, 0, TextOperation::new().retain(4)),
                usize::MAX,
            ),
        ];
        for (submission, max_room_bytes) in &refusals {
            assert!(
                live.apply(submission, now(), *max_room_bytes, &mut checkpoint)
                    .is_err()
            );
        }
        assert_eq!(state(&live), before);
        assert!(checkpoint.undo.is_empty());
        // A room already over the limit may still shrink.
        let shrink = op("alice", 1, 0, TextOperation::new().delete(1).retain(2));
        assert!(live.apply(&shrink, now(), 1, &mut checkpoint).is_ok());
    }

    #[test]
    fn committing_keeps_the_snapshot_without_its_code_and_trims_the_history() {
        let mut live = live_with("");
        let settings = LiveSettings {
            history: 2,
            ..LiveSettings::default()
        };
        let mut checkpoint = live.checkpoint();
        for seq in 1..=3 {
            let at = usize::try_from(seq - 1).unwrap_or(0);
            let submission = op(
                "alice",
                seq,
                seq - 1,
                TextOperation::new().retain(at).insert("x"),
            );
            live.apply(&submission, now(), usize::MAX, &mut checkpoint)
                .expect("applies");
        }
        assert!(live.snapshot_due(4, now()).is_none());
        let snapshot = live.snapshot_due(3, now());
        assert_eq!(
            snapshot.as_ref().map(|room| (room.code(), room.revision())),
            Some(("xxx", 3))
        );
        assert!(live.ahead_of_snapshot());
        live.committed(snapshot, &settings);
        assert!(!live.ahead_of_snapshot());
        assert_eq!((live.room.code(), live.room.revision()), ("", 3));
        assert_eq!(live.room().code(), "xxx");
        assert_eq!(live.oldest_revision(), 1);
        assert_eq!(live.held, weighed(&live));
    }

    #[test]
    fn the_history_keeps_to_its_byte_budget_and_always_the_newest_entry() {
        let mut live = live_with("");
        let settings = LiveSettings {
            history_bytes: 3,
            ..LiveSettings::default()
        };
        let mut held = Vec::new();
        for (seq, text) in [(1, "ab"), (2, "c"), (3, "defg")] {
            let mut checkpoint = live.checkpoint();
            let at = live.document().len_utf16();
            let submission = op(
                "alice",
                seq,
                seq - 1,
                TextOperation::new().retain(at).insert(text),
            );
            live.apply(&submission, now(), usize::MAX, &mut checkpoint)
                .expect("applies");
            live.committed(None, &settings);
            held.push((live.oldest_revision(), live.held));
        }
        // "ab" and "c" fit in 3 bytes; "defg" alone does not, and is kept all the same.
        assert_eq!(held, [(0, 2), (0, 3), (2, 4)]);
        assert_eq!(live.held, weighed(&live));
    }

    #[test]
    fn a_sequence_number_from_the_store_never_lowers_a_known_one() {
        let mut live = live_with("");
        let alice = client("alice");
        live.seed_seq(&alice, 5);
        assert_eq!(live.last_seq(&alice), Some(5));
        commit(
            &mut live,
            &op("alice", 6, 0, TextOperation::new().insert("a")),
        );
        live.seed_seq(&alice, 3);
        assert_eq!(live.last_seq(&alice), Some(6));
        assert!(live.knows_client(&alice));
    }

    #[test]
    fn loading_stops_at_the_first_logged_operation_that_cannot_follow() {
        let logged = |revision, operation| CommittedOperation {
            revision,
            client: client("alice"),
            seq: revision,
            operation,
            committed_at: now(),
            submission_digest: None,
        };
        let room = || Room::new(RoomId::generate(), Language::default(), "ab".into(), now());
        let (live, damaged) = LiveRoom::load(
            room().expect("valid"),
            vec![
                logged(1, TextOperation::new().retain(2).insert("c")),
                logged(3, TextOperation::new().retain(3).insert("d")),
                logged(4, TextOperation::new().retain(4).insert("e")),
            ],
            &LiveSettings::default(),
        );
        assert_eq!(live.document().text(), "abc");
        assert_eq!(
            damaged.map(|(revision, reason)| (revision, reason.to_string())),
            Some((3, "follows revision 1 out of order".to_owned()))
        );
        let (live, damaged) = LiveRoom::load(
            room().expect("valid"),
            vec![logged(1, TextOperation::new().retain(9))],
            &LiveSettings::default(),
        );
        assert_eq!(
            (live.document().text(), live.oldest_revision()),
            ("ab".to_owned(), 0)
        );
        assert!(
            matches!(damaged, Some((1, Unreplayable::DoesNotApply(_)))),
            "{damaged:?}"
        );
    }

    #[test]
    fn selections_follow_the_edits_since_their_revision() {
        let mut live = live_with("abcdef");
        commit(
            &mut live,
            &op("alice", 1, 0, TextOperation::new().insert("12").retain(6)),
        );
        let moved = live
            .transform_selection(Selection { anchor: 1, head: 3 }, 0)
            .expect("in history");
        assert_eq!(moved, Selection { anchor: 3, head: 5 });
        assert!(live.transform_selection(Selection::cursor(0), 9).is_err());
    }

    #[test]
    fn old_texts_are_rebuilt_from_the_history() {
        let mut live = live_with("");
        for (seq, text) in ["a", "b", "c"].iter().enumerate() {
            let seq = seq as u64;
            commit(
                &mut live,
                &op(
                    "alice",
                    seq + 1,
                    seq,
                    TextOperation::new()
                        .retain(usize::try_from(seq).unwrap_or(0))
                        .insert(text),
                ),
            );
        }
        assert_eq!(live.text_at(1).expect("in history"), "a");
        assert_eq!(
            live.texts_at(&[0, 2, 3, 9]),
            [
                (3, "abc".to_owned()),
                (2, "ab".to_owned()),
                (0, String::new())
            ]
        );
    }
}
