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
    #[error("the edit would make the room longer than {limit} UTF-16 code units")]
    RoomTooLarge { limit: usize },
}

impl Submission {
    /// The largest sequence number a client may use: JavaScript's largest exact integer, so
    /// every number a client sends means the same to it and fits every store.
    pub const MAX_SEQ: u64 = 9_007_199_254_740_991;

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
    /// The longest text a room may hold, in UTF-16 code units; an edit that would make it
    /// longer is refused (`room_too_large`) and changes nothing.
    pub max_room_units: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            history: 1000,
            snapshot_every: 200,
            history_bytes: 64 * 1024 * 1024,
            max_room_units: 4 * 1024 * 1024,
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
    /// The history's length: entries are only appended until the checkpoint is settled.
    history: usize,
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
    last_seq: HashMap<ClientId, u64>,
    /// Every client id given to a connection since the room was loaded: an id that was handed
    /// out belongs to whoever holds its token, edited or not.
    issued: HashSet<ClientId>,
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
            last_seq: HashMap::new(),
            issued: HashSet::new(),
        };
        let mut damaged = None;
        for committed in operations {
            let revision = committed.revision;
            if let Err(reason) = live.replay(committed) {
                damaged = Some((revision, reason));
                break;
            }
            if live.history.len() > settings.history {
                live.history.pop_front();
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
        self.history.push_back(HistoryEntry {
            committed: Arc::new(committed),
            inverse,
        });
        Ok(())
    }

    /// Drops the oldest entries until at most `settings.history` remain holding at most
    /// `settings.history_bytes` of text (the newest is kept whatever its size).
    fn trim_history(&mut self, settings: &LiveSettings) {
        let history = &mut self.history;
        let mut held: usize = history.iter().map(HistoryEntry::weight).sum();
        while history.len() > settings.history
            || (held > settings.history_bytes && history.len() > 1)
        {
            let Some(oldest) = history.pop_front() else {
                break;
            };
            held = held.saturating_sub(oldest.weight());
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
            undo: Vec::new(),
        }
    }

    /// Applies one submission as of `now`: transforms it (or, for a plain client's frame,
    /// merges it) onto the document, applies it, appends it to the history and notes its
    /// sequence number, recording in `checkpoint` what it replaced.
    ///
    /// # Errors
    /// [`SubmitError`] when the submission is refused: it does not apply, its base is not in
    /// the history, or it would make the room longer than `max_room_units`. The room and
    /// `checkpoint` are unchanged then.
    pub(crate) fn apply(
        &mut self,
        submission: &Submission,
        now: chrono::DateTime<chrono::Utc>,
        max_room_units: usize,
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
        // A room over the limit (made before it, or with a lower one) may still shrink.
        if operation.target_len() > max_room_units && operation.target_len() > operation.base_len()
        {
            return Err(SubmitError::RoomTooLarge {
                limit: max_room_units,
            });
        }
        let inverse = self.document.invert(&operation)?;
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
        self.history.push_back(HistoryEntry {
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

    /// Notes that `client` was given to a connection: it is known from now on.
    pub(crate) fn issue(&mut self, client: ClientId) {
        self.issued.insert(client);
    }

    /// Whether `client` has edited this room since it was loaded, or is known by it.
    #[must_use]
    pub fn knows_client(&self, client: &ClientId) -> bool {
        self.last_seq.contains_key(client) || self.issued.contains(client)
    }
}
