//! A room loaded for editing: its document, the recent history of committed operations, and
//! the last sequence number seen from each client. One writer owns it at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use duet_domain::{
    Answered, ClientId, CommittedOperation, Document, OperationError, PlainMember, Room, Selection,
    Step, TextOperation,
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

pub(crate) struct HistoryEntry {
    pub(crate) committed: Arc<CommittedOperation>,
    /// Undoes the operation on the document it was applied to.
    pub(crate) inverse: TextOperation,
}

impl HistoryEntry {
    /// The text this entry holds (what the operation inserts and what its inverse puts
    /// back), in bytes: what keeping it costs.
    pub(crate) fn weight(&self) -> usize {
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

/// Drops the oldest entries until at most `operations` remain holding at most `bytes` of
/// text (the newest is kept whatever its size).
pub(crate) fn trim_history(history: &mut VecDeque<HistoryEntry>, operations: usize, bytes: usize) {
    let mut held: usize = history.iter().map(HistoryEntry::weight).sum();
    while history.len() > operations || (held > bytes && history.len() > 1) {
        let Some(oldest) = history.pop_front() else {
            break;
        };
        held = held.saturating_sub(oldest.weight());
    }
}

/// The live state of a room.
pub struct LiveRoom {
    /// The room's details and the revision of its stored snapshot; its code is left empty,
    /// the document holding the text once.
    pub(crate) room: Room,
    pub(crate) document: Document,
    pub(crate) history: VecDeque<HistoryEntry>,
    pub(crate) last_seq: HashMap<ClientId, u64>,
    /// Every client id given to a connection since the room was loaded: an id that was handed
    /// out belongs to whoever holds its token, edited or not.
    pub(crate) issued: std::collections::HashSet<ClientId>,
}

impl LiveRoom {
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

    pub(crate) fn entries_since(&self, revision: u64) -> impl Iterator<Item = &HistoryEntry> {
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

    pub(crate) fn check_base(&self, base: u64) -> Result<(), SubmitError> {
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
    pub(crate) fn rebase(&self, submission: &Submission) -> Result<TextOperation, SubmitError> {
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
    pub(crate) fn steps_since(&self, revision: u64, client: &ClientId) -> Vec<Step<'_>> {
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

    /// Whether `client` has edited this room since it was loaded, or is known by it.
    #[must_use]
    pub fn knows_client(&self, client: &ClientId) -> bool {
        self.last_seq.contains_key(client) || self.issued.contains(client)
    }
}
