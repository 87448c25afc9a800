//! Plain clients: which buffer a whole-buffer frame was written on, and the change it makes.
//!
//! A plain client sends its whole buffer after every edit and replaces its buffer with every
//! buffer it receives; it never says which buffer it edited. The server knows two kinds of
//! buffers the client may have had in its editor when it wrote a frame (the *candidates*):
//!
//! - the buffers it sent that connection and that the client may not yet have replaced, in
//!   order (the client shows the last one it received);
//! - the connection's own previous frame (the client had that text when it sent it, and
//!   keeps it until the next buffer arrives).
//!
//! Which of them the client had is known from the WebSocket pings the server sends just before
//! each buffer: a client answers a ping as it reads it, before the buffer behind it, and its
//! answers and its frames travel in one ordered stream. So when a frame arrives, the newest
//! ping answered tells which buffers the client had reached, and whether it answered one since
//! its previous frame tells whether its editor still held that frame:
//!
//! - it answered the ping of buffer *r* since its previous frame (or has sent none yet): the
//!   frame was written on buffer *r* (at join, the buffer sent then, which needs no ping);
//! - it answered none since: the frame was written on its own previous frame.
//!
//! [`PlainMember`] keeps that evidence for one connection and [`PlainMember::merge`] decides.
//! The buffer the evidence names is the base unless the frame refutes it, by showing,
//! unchanged, something the room changed after that buffer (a client that answers pings late,
//! or not at all); then the newest candidate is the base, since reading a frame against an
//! older buffer than the one it was written on would insert the difference a second time.
//! With nothing concurrent the evidence names the room itself, so the room becomes the frame
//! exactly (last write wins); a frame identical to an older candidate is read the same way, as
//! an edit (a revert), never as "no change".
//!
//! Answering a ping is not quite showing the buffer behind it: a client whose network side
//! answers while its editor still shows the previous text (a browser between its network
//! stack and the page's message handler; a client whose reader and writer run apart) may
//! write a frame on that previous text, and then shows the buffer, which replaces the frame
//! in its editor. So the previous text (the buffer answered before, or the own previous
//! frame) is an *alternative*, and so is, for the frame after, the buffer shown after a frame
//! written like that. An alternative is the base when, read from it, the frame only inserts,
//! and either
//!
//! - read from the named buffer it deletes: text of the client's own, or others' text only on
//!   lines where neither reading inserts, and nothing it deletes (four characters or more)
//!   reappears in what it inserts (a moved or swapped line); or
//! - one of the two is the own previous frame and, read from the named buffer, the frame
//!   inserts more (at more places, or more characters): the extra is the client's own typing,
//!   which would be inserted twice.
//!
//! A buffer that may only have been shown after a frame that read the same either way needs
//! the first case with some of others' text deleted. Of several alternatives, the one that
//! reads as the least typing wins.
//!
//! What remains ambiguous, byte for byte:
//!
//! - A frame written in that moment which, read from the named buffer, edits or replaces
//!   someone's text in place, is read as that edit (a turn that edits another client's line
//!   sends the same bytes): what the other client added there is lost.
//! - A keystroke written in that moment on text that lacked the client's own newer keystrokes,
//!   followed by typing on the buffer shown after it, is read as deleting those keystrokes
//!   (what a client that deletes its own text sends).
//! - A client that does not answer pings (or answers them out of order) has its frames read
//!   against its own previous frame or the last buffer it answered; a frame showing more than
//!   that is read against the newest buffer, which may read some of its own typing as
//!   deleting others' text.
//!
//! Candidates are never copied out as texts: each is described by the operation that turns the
//! room's current text into it (composed from the inverses the room keeps), and compared with
//! the frame only where that operation or the frame's own diff changes something. One diff of
//! the room's text against the frame (prefix and suffix trimmed on the rope) is the only pass
//! over the whole text.
//!
//! The change is then moved over what was committed after the chosen base, as ot.js servers
//! do, except that an insert at the place where the same connection's earlier (committed)
//! insert went is put after it: a keystroke typed on a buffer that lacked the author's previous
//! keystroke follows it, in typing order.

use std::collections::VecDeque;
use std::time::Duration;

use ropey::Rope;
use similar::{Algorithm, DiffOp, TextDiff};

use crate::document::Document;
use crate::operation::{Component, OperationError, TextOperation};
use crate::text::utf16_len;

/// Middles (after the common prefix and suffix) up to this many bytes, both sides together, are
/// diffed character by character; longer ones line by line first, then character by character
/// inside the changed lines. Myers' cost grows with the size times the number of differences.
const CHAR_DIFF_BYTES: usize = 32 * 1024;

/// The fewest characters (spaces at either end aside) a deleted piece must have to count as
/// moved when an insert holds it: shorter ones (a digit, a bracket) recur by chance.
const MOVED_AT_LEAST: usize = 4;

/// The longest stretch of one line between two changed places that still makes them one place
/// when telling what the frame shows unchanged.
const SAME_LINE_GAP: usize = 256;

/// A bound on a line diff of very large, very different texts (a 1 MB buffer replaced by
/// unrelated text): past it `similar` settles for a coarser, still exact, diff.
const LINE_DIFF_TIMEOUT: Duration = Duration::from_millis(200);

/// One operation of the room's history, as a plain merge reads it.
#[derive(Clone, Copy, Debug)]
pub struct Step<'a> {
    /// The operation as committed.
    pub operation: &'a TextOperation,
    /// The operation that undoes it (from the text after it to the text before).
    pub inverse: &'a TextOperation,
    /// Whether the connection being merged made it.
    pub own: bool,
}

/// The pings a client had answered when it sent a frame, each naming the revision of the
/// buffer sent just after it: the newest, and the one answered before that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    pub newest: Option<u64>,
    pub previous: Option<u64>,
}

impl Answered {
    /// Notes the answer to the ping of buffer `revision` (answers arrive in order; a repeated
    /// or older one changes nothing).
    pub fn answer(&mut self, revision: u64) {
        if self.newest.is_none_or(|newest| revision > newest) {
            self.previous = self.newest;
            self.newest = Some(revision);
        }
    }
}

/// Which buffer a frame was taken to be written on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// The buffer sent to the connection at this revision.
    Sent(u64),
    /// The connection's own previous frame, merged into the room's revision given.
    OwnFrame(u64),
}

/// The outcome of [`PlainMember::merge`]: the change to apply now, and what to remember.
#[derive(Clone, Debug)]
pub struct PlainEdit {
    /// The frame's change as an operation on the room's text at the revision passed to
    /// `merge`. A no-op when the frame changes nothing.
    pub operation: TextOperation,
    /// The buffer the frame was taken to be written on.
    pub base: Base,
    /// The newest buffer the client had answered the ping of when it sent the frame.
    reached: u64,
    /// Whether the frame was read as written just before that buffer was shown.
    raced: bool,
    /// Whether the client had answered a ping since its previous frame (so it may have
    /// written this one just before showing that buffer, unseen when both read the same).
    after_answer: bool,
    /// Turns the frame into the room's text after `operation`.
    to_room: TextOperation,
    /// Turns the room's text after `operation` into the frame.
    from_room: TextOperation,
}

/// The connection's previous frame, known through the room's text at a revision.
#[derive(Clone, Debug)]
struct OwnFrame {
    revision: u64,
    to_room: TextOperation,
    from_room: TextOperation,
}

/// What the server keeps about one plain connection to decide what its frames change.
///
/// Call [`PlainMember::sent`] for every buffer queued to the connection,
/// [`PlainMember::merge`] for every frame it sends (with the room's document as it is at that
/// moment), apply the returned operation, and report where it landed with
/// [`PlainMember::applied`].
#[derive(Clone, Debug)]
pub struct PlainMember {
    /// Revisions of the buffers sent that the client may still receive or show, oldest first.
    sent: VecDeque<u64>,
    own: Option<OwnFrame>,
    /// The newest buffer the client had reached (answered the ping of, or been sent at join)
    /// when it sent its previous frame.
    reached: u64,
    /// Whether that frame was read as written just before that buffer was shown, which then
    /// replaced it in the editor.
    shown_after: bool,
    /// Whether it may have been, unseen: it came after an answer, and read the same from the
    /// buffer before.
    maybe_shown_after: bool,
}

/// A buffer the client may have edited, described from the room's current text.
struct Candidate<'a> {
    base: Base,
    /// Orders candidates from oldest to newest: a frame comes just before its own echo.
    recency: (u64, u8),
    /// Turns the room's current text into the candidate.
    from_room: TextOperation,
    /// First the own frame's way to the room (when the candidate is the own frame), then the
    /// history from the candidate's revision.
    bridge: Option<&'a TextOperation>,
    revision: u64,
}

impl PlainMember {
    /// How many sent buffers stay candidates at most. A client more buffers behind than this
    /// (a hub's send queue drops it well before) has its frames read against newer ones.
    pub const MAX_SENT: usize = 128;

    /// A connection that joined and was sent the room's text at `revision` (possibly nothing,
    /// for an empty room: the client then has the empty text of that revision).
    #[must_use]
    pub fn joined(revision: u64) -> Self {
        Self {
            sent: VecDeque::from([revision]),
            own: None,
            reached: revision,
            shown_after: false,
            maybe_shown_after: false,
        }
    }

    /// Notes that the room's text at `revision` was queued to the connection, just after a ping
    /// that names `revision` (whose answer is passed to [`PlainMember::merge`] in `answered`).
    pub fn sent(&mut self, revision: u64) {
        if self.sent.back() == Some(&revision) {
            return;
        }
        if self.sent.len() == Self::MAX_SENT {
            self.sent.pop_front();
        }
        self.sent.push_back(revision);
    }

    /// The oldest revision [`PlainMember::merge`] needs the history from.
    #[must_use]
    pub fn oldest_revision(&self) -> Option<u64> {
        let sent = self.sent.front().copied();
        let own = self.own.as_ref().map(|own| own.revision);
        match (sent, own) {
            (Some(sent), Some(own)) => Some(sent.min(own)),
            (sent, own) => sent.or(own),
        }
    }

    /// Decides which buffer `frame` was written on and returns its change as an operation on
    /// `room`'s current text.
    ///
    /// `answered` holds the pings the client had answered when it sent the frame (answers to
    /// earlier pings arrive first).
    ///
    /// `steps` are the room's latest committed operations, oldest first, ending at `room`'s
    /// revision: `steps[i]` turns the text at revision `room.revision() - steps.len() + i` into
    /// the next. Pass at least those since [`PlainMember::oldest_revision`]; candidates the
    /// steps do not reach are ignored, and with none left the frame is diffed against the room
    /// (last write wins).
    ///
    /// # Errors
    /// [`OperationError`] when `steps` do not fit `room` (a caller's bug), or the frame holds
    /// a character no room may hold (a NUL).
    pub fn merge(
        &self,
        room: &Document,
        steps: &[Step<'_>],
        frame: &str,
        answered: Answered,
    ) -> Result<PlainEdit, OperationError> {
        crate::room::check_code(frame)?;
        let since =
            |answer: Option<u64>| answer.map_or(self.reached, |answer| answer.max(self.reached));
        let reached = since(answered.newest);
        let rope = room.rope();
        let now = room.revision();
        let steps_len = u64::try_from(steps.len()).unwrap_or(u64::MAX);
        let first = now.saturating_sub(steps_len);
        let steps = &steps[usize::try_from(steps_len - (now - first)).unwrap_or(0)..];
        let candidates = self.candidates(rope, now, first, steps)?;
        // The buffer the evidence names: the newest one answered since the previous frame,
        // else that frame.
        let evidence = match &self.own {
            Some(own) if reached == self.reached => Base::OwnFrame(own.revision),
            _ => Base::Sent(reached),
        };
        let named = candidates
            .iter()
            .position(|candidate| candidate.base == evidence);
        let to_frame = diff_rope(rope, frame);
        if to_frame.is_noop() {
            let base = named
                .or_else(|| candidates.len().checked_sub(1))
                .map(|index| candidates[index].base);
            return Ok(unchanged(room, frame, base, reached));
        }
        let change_from = |candidate: &Candidate<'_>| {
            if candidate.from_room.is_noop() {
                (to_frame.clone(), false)
            } else {
                edit_between(rope, &candidate.from_room, &to_frame)
            }
        };
        // Answering a ping is not quite showing the buffer behind it: a frame may have been
        // written, in between, on what the editor held before (and the buffer then replaced
        // that frame in the editor, so the next frame may be written on it too). The buffers
        // that may then have been in the editor, most likely first:
        let before_reached = since(answered.previous);
        // (Each with whether it only may have been shown: then the frame must delete others'
        // text to be read against it, as a client that wrote its frames on its echoes,
        // deleting its own text, sends the same bytes.)
        let mut alternatives = Vec::new();
        let shown_after = if self.shown_after {
            Some(false)
        } else {
            self.maybe_shown_after.then_some(true)
        };
        if reached > self.reached {
            if before_reached > self.reached {
                alternatives.push((Base::Sent(before_reached), false));
            } else {
                if let Some(own) = &self.own {
                    alternatives.push((Base::OwnFrame(own.revision), false));
                }
                if self.own.is_none() {
                    alternatives.push((Base::Sent(self.reached), false));
                } else if let Some(weak) = shown_after {
                    alternatives.push((Base::Sent(self.reached), weak));
                }
            }
        } else if let Some(weak) = shown_after {
            alternatives.push((Base::Sent(self.reached), weak));
        }
        let alternatives: Vec<(usize, bool)> = alternatives
            .iter()
            .filter_map(|(base, weak)| {
                candidates
                    .iter()
                    .position(|candidate| candidate.base == *base)
                    .map(|index| (index, *weak))
            })
            .collect();
        let mut chosen = None;
        if let Some(index) = named {
            let (change, refuted) = change_from(&candidates[index]);
            if refuted {
                // The frame shows what came after that buffer: the first alternative it does
                // not refute.
                chosen = alternatives.iter().find_map(|(other, _)| {
                    let (before, refuted) = change_from(&candidates[*other]);
                    (!refuted).then_some((*other, before))
                });
            } else {
                // An alternative explains the frame better when, read from it, the frame only
                // inserts, and read from the named buffer it deletes: anything of the
                // client's own, and others' text only on lines where it inserts nothing (a
                // turn that edits or replaces someone's text reads as such), and when nothing
                // it deletes reappears in what it inserts (a moved line). Of several, the one
                // it reads as the least typing.
                let mut best: Option<(usize, TextOperation)> = None;
                for (other, weak) in &alternatives {
                    let (before, refuted) = change_from(&candidates[*other]);
                    let others = match candidates[index].base {
                        Base::Sent(_) => {
                            others_text(&candidates[*other], &candidates[index], first, steps)
                        }
                        Base::OwnFrame(_) => Vec::new(),
                    };
                    // Or when one of the two is the client's own previous frame and, read
                    // from either, the frame only inserts, but less from the alternative (at
                    // fewer places, or as many and fewer characters): what the client typed
                    // is in one and not the other, and the reading that inserts more would
                    // insert some of it twice.
                    let own =
                        |candidate: &Candidate<'_>| matches!(candidate.base, Base::OwnFrame(_));
                    let fewer = !weak
                        && (own(&candidates[*other]) || own(&candidates[index]))
                        && only_inserts(&change)
                        && inserted(&before) < inserted(&change);
                    if !refuted
                        && before != change
                        && only_inserts(&before)
                        && (fewer
                            || (deletes_on_other_lines(&change, &before, frame, &others, *weak)
                                && !moves_text(rope, &candidates[index], &change, &before)?))
                        && best
                            .as_ref()
                            .is_none_or(|(_, best)| inserted(&before) < inserted(best))
                    {
                        best = Some((*other, before));
                    }
                }
                chosen = Some(best.unwrap_or((index, change)));
            }
        }
        if chosen.is_none() {
            chosen = candidates.len().checked_sub(1).map(|index| {
                let (change, _) = change_from(&candidates[index]);
                (index, change)
            });
        }
        let Some((index, change)) = chosen else {
            // No candidate at all: the frame replaces the room.
            return rebase(
                to_frame,
                Base::Sent(now),
                None,
                &[],
                frame,
                room.len_utf16(),
                reached,
            );
        };
        let candidate = &candidates[index];
        let later = &steps[usize::try_from(candidate.revision - first).unwrap_or(0)..];
        let mut edit = rebase(
            change,
            candidate.base,
            candidate.bridge,
            later,
            frame,
            room.len_utf16(),
            reached,
        )?;
        edit.raced = named.is_some_and(|named| named != index)
            && alternatives.iter().any(|(other, _)| *other == index);
        edit.after_answer = reached > self.reached;
        Ok(edit)
    }

    /// Records that `edit` was applied and the room is now at `revision` (the revision passed
    /// to `merge` when the operation was a no-op and nothing was committed).
    pub fn applied(&mut self, edit: PlainEdit, revision: u64) {
        // The client will never show a buffer older than the newest it had reached (that one
        // it shows after the frame when it wrote the frame just before showing it).
        self.sent.retain(|sent| *sent >= edit.reached);
        self.reached = edit.reached;
        self.shown_after = edit.raced;
        self.maybe_shown_after = edit.after_answer && !edit.raced;
        self.own = Some(OwnFrame {
            revision,
            to_room: edit.to_room,
            from_room: edit.from_room,
        });
    }

    /// The candidates the history reaches, oldest first, each described from the room's text.
    fn candidates<'a>(
        &'a self,
        rope: &Rope,
        now: u64,
        first: u64,
        steps: &[Step<'_>],
    ) -> Result<Vec<Candidate<'a>>, OperationError> {
        let reached = |revision: u64| revision >= first && revision <= now;
        let mut wanted: Vec<u64> = self.sent.iter().copied().filter(|r| reached(*r)).collect();
        let own = self.own.as_ref().filter(|own| reached(own.revision));
        if let Some(own) = own {
            wanted.push(own.revision);
        }
        wanted.sort_unstable();
        wanted.dedup();
        // Walk back from the room's text once, composing inverses: the room at each wanted
        // revision, as an operation from the current text.
        let mut at = now;
        let mut from_room = identity(rope.len_utf16_cu());
        let mut found: Vec<(u64, TextOperation)> = Vec::with_capacity(wanted.len());
        for revision in wanted.iter().rev() {
            while at > *revision {
                let step = &steps[usize::try_from(at - first - 1).unwrap_or(0)];
                from_room = from_room.compose(step.inverse)?;
                at -= 1;
            }
            found.push((*revision, from_room.clone()));
        }
        let mut candidates = Vec::with_capacity(found.len() + 1);
        for (revision, from_room) in found {
            if self.sent.contains(&revision) {
                candidates.push(Candidate {
                    base: Base::Sent(revision),
                    recency: (revision, 1),
                    from_room: from_room.clone(),
                    bridge: None,
                    revision,
                });
            }
            if let Some(own) = own.filter(|own| own.revision == revision) {
                candidates.push(Candidate {
                    base: Base::OwnFrame(revision),
                    recency: (revision, 0),
                    from_room: from_room.compose(&own.from_room)?,
                    bridge: Some(&own.to_room),
                    revision,
                });
            }
        }
        candidates.sort_by_key(|candidate| candidate.recency);
        Ok(candidates)
    }
}

/// The outcome for a frame identical to the room: nothing changes.
fn unchanged(room: &Document, frame: &str, base: Option<Base>, reached: u64) -> PlainEdit {
    let length = utf16_len(frame);
    PlainEdit {
        operation: identity(room.len_utf16()),
        base: base.unwrap_or(Base::Sent(room.revision())),
        reached,
        raced: false,
        after_answer: false,
        to_room: identity(length),
        from_room: identity(length),
    }
}

/// Moves `change` (on the base's text) over what was committed since the base, and works out
/// how the frame relates to the room afterwards.
fn rebase(
    change: TextOperation,
    base: Base,
    bridge: Option<&TextOperation>,
    later: &[Step<'_>],
    frame: &str,
    room_len: usize,
    reached: u64,
) -> Result<PlainEdit, OperationError> {
    let mut operation = change;
    // Turns the frame into the room as it becomes: the others' edits, moved past the frame's.
    let mut to_room = identity(utf16_len(frame));
    let bridge = bridge.map(|operation| Step {
        operation,
        inverse: operation,
        own: false,
    });
    for step in bridge.iter().chain(later) {
        let (moved, step_moved) = if step.own {
            // The connection's own earlier insert at the same place goes first: typing order.
            let (step_moved, moved) = TextOperation::transform(step.operation, &operation)?;
            (moved, step_moved)
        } else {
            // As ot.js servers do: the incoming insert goes first.
            TextOperation::transform(&operation, step.operation)?
        };
        operation = moved;
        to_room = to_room.compose(&step_moved)?;
    }
    debug_assert_eq!(operation.base_len(), room_len);
    let from_room = if to_room.is_noop() {
        identity(to_room.target_len())
    } else {
        to_room.invert(frame)?
    };
    Ok(PlainEdit {
        operation,
        base,
        reached,
        raced: false,
        after_answer: false,
        to_room,
        from_room,
    })
}

fn identity(length: usize) -> TextOperation {
    TextOperation::new().retain(length)
}

/// Appends `other`'s components to `operation`. Lengths come from real texts, far below
/// [`TextOperation::MAX_LENGTH`], so the appends cannot fail.
fn append(mut operation: TextOperation, other: &TextOperation) -> TextOperation {
    for component in other.components() {
        operation = match component {
            Component::Retain(count) => operation.retain(*count),
            Component::Insert(text) => operation.insert(text),
            Component::Delete(count) => operation.delete(*count),
        };
    }
    operation
}

/// Whether something `change` deletes from `candidate`'s text reappears in what `before`
/// inserts: the frame moved text the client had, so it was not written without it.
fn moves_text(
    rope: &Rope,
    candidate: &Candidate<'_>,
    change: &TextOperation,
    before: &TextOperation,
) -> Result<bool, OperationError> {
    let room = rope.to_string();
    let text = if candidate.from_room.is_noop() {
        room
    } else {
        candidate.from_room.apply(&room)?
    };
    let inserted: Vec<&str> = before
        .components()
        .iter()
        .filter_map(|component| match component {
            Component::Insert(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let mut characters = text.chars();
    for component in change.components() {
        match component {
            Component::Retain(count) => skip_utf16(&mut characters, *count),
            Component::Delete(count) => {
                // Trimmed: a diff may take a moved line with the line break before it.
                let deleted = take_utf16(&mut characters, *count);
                let deleted = deleted.trim();
                if deleted.chars().count() >= MOVED_AT_LEAST
                    && inserted.iter().any(|insert| insert.contains(deleted))
                {
                    return Ok(true);
                }
            }
            Component::Insert(_) => {}
        }
    }
    Ok(false)
}

fn skip_utf16(characters: &mut std::str::Chars<'_>, count: usize) {
    let mut units = 0;
    while units < count {
        match characters.next() {
            Some(character) => units += character.len_utf16(),
            None => break,
        }
    }
}

fn take_utf16(characters: &mut std::str::Chars<'_>, count: usize) -> String {
    let mut taken = String::new();
    let mut units = 0;
    while units < count {
        match characters.next() {
            Some(character) => {
                units += character.len_utf16();
                taken.push(character);
            }
            None => break,
        }
    }
    taken
}

/// How many places `operation` inserts at, then how many characters: a diff of texts with
/// repeated pieces may explain one typed run as several scattered ones.
fn inserted(operation: &TextOperation) -> (usize, usize) {
    let (mut places, mut characters) = (0, 0);
    let mut in_run = false;
    for component in operation.components() {
        if let Component::Insert(text) = component {
            if !in_run {
                places += 1;
            }
            characters += text.chars().count();
        }
        in_run = matches!(component, Component::Insert(_));
    }
    (places, characters)
}

/// Whether `operation` inserts something and deletes nothing.
fn only_inserts(operation: &TextOperation) -> bool {
    let components = operation.components();
    components
        .iter()
        .any(|component| matches!(component, Component::Insert(_)))
        && !components
            .iter()
            .any(|component| matches!(component, Component::Delete(_)))
}

/// Whether `operation`, which turns some text into `result`, deletes something (some of
/// `others`, if `others_needed`), and deletes of `others` (stretches of its base text other
/// connections wrote) only on lines of `result`
/// where neither it nor `alternative` (another reading that also gives `result`) inserts
/// anything: a line break lies between each such deletion and every insert.
fn deletes_on_other_lines(
    operation: &TextOperation,
    alternative: &TextOperation,
    result: &str,
    others: &[(usize, usize)],
    others_needed: bool,
) -> bool {
    // Where each deletion of others' text and each insert lands in `result`, in UTF-16 units.
    let mut deleted_at = Vec::new();
    let mut deletes = false;
    let mut inserted = Vec::new();
    let (mut source, mut position) = (0, 0);
    for component in operation.components() {
        match component {
            Component::Retain(count) => {
                source += count;
                position += count;
            }
            Component::Delete(count) => {
                deletes = true;
                let end = source + count;
                if others.iter().any(|(from, to)| *from < end && source < *to) {
                    deleted_at.push(position);
                }
                source = end;
            }
            Component::Insert(text) => {
                let length = utf16_len(text);
                inserted.push((position, position + length));
                position += length;
            }
        }
    }
    let mut position = 0;
    for component in alternative.components() {
        match component {
            Component::Retain(count) => position += count,
            Component::Delete(_) => {}
            Component::Insert(text) => {
                let length = utf16_len(text);
                inserted.push((position, position + length));
                position += length;
            }
        }
    }
    if !deletes || (others_needed && deleted_at.is_empty()) {
        return false;
    }
    let mut breaks = Vec::new();
    let mut units = 0;
    for character in result.chars() {
        if character == '\n' {
            breaks.push(units);
        }
        units += character.len_utf16();
    }
    // A line break at a position in [from, to).
    let break_between = |from: usize, to: usize| {
        let first = breaks.partition_point(|at| *at < from);
        breaks.get(first).is_some_and(|at| *at < to)
    };
    deleted_at.iter().all(|at| {
        inserted.iter().all(|(start, end)| {
            if at <= start {
                break_between(*at, *start)
            } else {
                break_between(*end, *at)
            }
        })
    })
}

/// The stretches of `newer`'s text (a buffer sent) that other connections wrote after
/// `older` was the client's: their operations committed between the two. (When `older` is an
/// own frame, what it was merged over is left out: it mixes the client's own earlier
/// operations with others'.)
fn others_text(
    older: &Candidate<'_>,
    newer: &Candidate<'_>,
    first: u64,
    steps: &[Step<'_>],
) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    if let Some(bridge) = older.bridge {
        ranges = carry(&ranges, bridge, false);
    }
    let from = usize::try_from(older.revision - first).unwrap_or(0);
    let to = usize::try_from(newer.revision.saturating_sub(first)).unwrap_or(0);
    for step in steps.get(from..to).unwrap_or_default() {
        ranges = carry(&ranges, step.operation, !step.own);
    }
    ranges
}

/// Moves stretches of a text `[start, end)` (UTF-16, disjoint) over `operation`: deleted parts
/// drop out; with `mark`, what the operation inserts is added as new stretches.
fn carry(ranges: &[(usize, usize)], operation: &TextOperation, mark: bool) -> Vec<(usize, usize)> {
    // Retained segments: (old start, old end, new start).
    let mut kept: Vec<(usize, usize, usize)> = Vec::new();
    let mut result = Vec::new();
    let (mut old, mut new) = (0, 0);
    for component in operation.components() {
        match component {
            Component::Retain(count) => {
                kept.push((old, old + count, new));
                old += count;
                new += count;
            }
            Component::Delete(count) => old += count,
            Component::Insert(text) => {
                let length = utf16_len(text);
                if mark && length > 0 {
                    result.push((new, new + length));
                }
                new += length;
            }
        }
    }
    for (start, end) in ranges {
        let first = kept.partition_point(|(_, kept_end, _)| kept_end <= start);
        for (kept_start, kept_end, kept_new) in &kept[first..] {
            if kept_start >= end {
                break;
            }
            let (from, to) = ((*start).max(*kept_start), (*end).min(*kept_end));
            if from < to {
                result.push((kept_new + from - kept_start, kept_new + to - kept_start));
            }
        }
    }
    result.sort_unstable();
    result
}

/// A stretch of the room's text `[start, end)` (UTF-16) that an operation replaces by `insert`.
struct Span<'a> {
    start: usize,
    end: usize,
    insert: Vec<&'a str>,
}

fn spans(operation: &TextOperation) -> Vec<Span<'_>> {
    let mut spans: Vec<Span<'_>> = Vec::new();
    let mut position = 0;
    let mut open = false;
    for component in operation.components() {
        match component {
            Component::Retain(count) => {
                position += count;
                open = false;
            }
            Component::Insert(text) => {
                if !open {
                    spans.push(Span {
                        start: position,
                        end: position,
                        insert: Vec::new(),
                    });
                    open = true;
                }
                if let Some(span) = spans.last_mut() {
                    span.insert.push(text);
                }
            }
            Component::Delete(count) => {
                if !open {
                    spans.push(Span {
                        start: position,
                        end: position,
                        insert: Vec::new(),
                    });
                    open = true;
                }
                position += count;
                if let Some(span) = spans.last_mut() {
                    span.end = position;
                }
            }
        }
    }
    spans
}

/// The operation from `candidate` (the room's text after `to_candidate`) to the frame (the
/// room's text after `to_frame`), found by diffing only the stretch from the first place
/// either changes the room to the last: outside it both texts are the room's. (Diffing each
/// changed place apart would follow the room-to-frame diff's alignment, which may pair a
/// character the frame typed with one only the candidate lacks, and split one keystroke in
/// two.)
///
/// Also whether the frame shows, unchanged, something the room changed after the candidate:
/// then the client had a newer buffer than the candidate, and reading the frame against it
/// would insert that change a second time (or undo it).
fn edit_between(
    rope: &Rope,
    to_candidate: &TextOperation,
    to_frame: &TextOperation,
) -> (TextOperation, bool) {
    let mut refuted = false;
    let candidate_spans = spans(to_candidate);
    let frame_spans = spans(to_frame);
    let (mut i, mut j) = (0, 0);
    loop {
        let start = match (candidate_spans.get(i), frame_spans.get(j)) {
            (None, None) => break,
            (Some(a), None) => a.start,
            (None, Some(b)) => b.start,
            (Some(a), Some(b)) => a.start.min(b.start),
        };
        let (first_i, first_j) = (i, j);
        let mut end = start;
        // A zone: spans of either side that overlap, touch or share a line, chained (a diff
        // may align a line's changes differently on either side).
        let joins = |span: &Span<'_>, end: usize| {
            span.start <= end
                || (span.start - end <= SAME_LINE_GAP
                    && !slice_utf16(rope, end, span.start).contains('\n'))
        };
        loop {
            if let Some(span) = candidate_spans.get(i).filter(|span| joins(span, end)) {
                end = end.max(span.end);
                i += 1;
            } else if let Some(span) = frame_spans.get(j).filter(|span| joins(span, end)) {
                end = end.max(span.end);
                j += 1;
            } else {
                break;
            }
        }
        if first_j == j {
            let original = slice_utf16(rope, start, end);
            let candidate = replace_spans(&original, start, &candidate_spans[first_i..i]);
            refuted |= candidate != original;
        }
    }
    let first = candidate_spans
        .iter()
        .chain(&frame_spans)
        .map(|span| span.start)
        .min();
    let last = candidate_spans
        .iter()
        .chain(&frame_spans)
        .map(|span| span.end)
        .max();
    let length = rope.len_utf16_cu();
    let (Some(start), Some(end)) = (first, last) else {
        return (identity(length), refuted);
    };
    let original = slice_utf16(rope, start, end);
    let candidate = replace_spans(&original, start, &candidate_spans);
    let frame = replace_spans(&original, start, &frame_spans);
    let operation = append(
        TextOperation::new().retain(start),
        &diff_text(&candidate, &frame),
    );
    (operation.retain(length - end), refuted)
}

/// The rope's text between two UTF-16 positions (both character boundaries).
fn slice_utf16(rope: &Rope, start: usize, end: usize) -> String {
    let start = rope.utf16_cu_to_char(start);
    let end = rope.utf16_cu_to_char(end);
    rope.slice(start..end).to_string()
}

/// `original` (which starts at `offset` in the room's text) with `spans` replaced.
fn replace_spans(original: &str, offset: usize, spans: &[Span<'_>]) -> String {
    let mut result = String::with_capacity(original.len());
    let mut units = offset;
    let mut characters = original.char_indices().peekable();
    let mut byte_at = |target: usize, units: &mut usize| {
        while *units < target {
            match characters.next() {
                Some((_, character)) => *units += character.len_utf16(),
                None => break,
            }
        }
        characters.peek().map_or(original.len(), |(byte, _)| *byte)
    };
    let mut copied = 0;
    for span in spans {
        let start = byte_at(span.start, &mut units);
        result.push_str(&original[copied..start]);
        for text in &span.insert {
            result.push_str(text);
        }
        copied = byte_at(span.end, &mut units);
    }
    result.push_str(&original[copied..]);
    result
}

/// Length of the common prefix of two byte strings, compared in blocks first.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let length = a.len().min(b.len());
    let mut index = 0;
    while index + BLOCK <= length && a[index..index + BLOCK] == b[index..index + BLOCK] {
        index += BLOCK;
    }
    while index < length && a[index] == b[index] {
        index += 1;
    }
    index
}

/// Length of the common suffix of two byte strings, compared in blocks first.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let length = a.len().min(b.len());
    let (a_end, b_end) = (a.len(), b.len());
    let mut count = 0;
    while count + BLOCK <= length
        && a[a_end - count - BLOCK..a_end - count] == b[b_end - count - BLOCK..b_end - count]
    {
        count += BLOCK;
    }
    while count < length && a[a_end - count - 1] == b[b_end - count - 1] {
        count += 1;
    }
    count
}

/// The operation turning the rope's text into `new`: the common prefix and suffix are found
/// on the rope's chunks, and only the middle is copied out and diffed.
fn diff_rope(rope: &Rope, new: &str) -> TextOperation {
    let bytes = new.as_bytes();
    let total = rope.len_bytes();
    let mut prefix = 0;
    for chunk in rope.chunks() {
        let common = common_prefix(chunk.as_bytes(), &bytes[prefix..]);
        prefix += common;
        if common < chunk.len() {
            break;
        }
    }
    // The same bytes lie before `prefix` on both sides, so a boundary in one is one in both.
    while !new.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let room = total.min(bytes.len()) - prefix;
    let mut suffix = 0;
    let (chunks, ..) = rope.chunks_at_byte(total);
    for chunk in chunks.reversed() {
        let rest = &bytes[..bytes.len() - suffix];
        let common = common_suffix(chunk.as_bytes(), rest);
        suffix += common;
        if common < chunk.len() || suffix >= room {
            break;
        }
    }
    suffix = suffix.min(room);
    while !new.is_char_boundary(bytes.len() - suffix) {
        suffix -= 1;
    }
    let old_end = total - suffix;
    let prefix_units = rope.char_to_utf16_cu(rope.byte_to_char(prefix));
    let end_units = rope.char_to_utf16_cu(rope.byte_to_char(old_end));
    let old_middle = rope.byte_slice(prefix..old_end).to_string();
    let new_middle = &new[prefix..bytes.len() - suffix];
    let operation = TextOperation::new().retain(prefix_units);
    let operation = append(operation, &diff_middle(&old_middle, new_middle));
    operation.retain(rope.len_utf16_cu() - end_units)
}

/// The operation turning `old` into `new`: common prefix and suffix kept, the middle diffed.
fn diff_text(old: &str, new: &str) -> TextOperation {
    if old == new {
        return identity(utf16_len(old));
    }
    let mut prefix = common_prefix(old.as_bytes(), new.as_bytes());
    while !new.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let room = old.len().min(new.len()) - prefix;
    let mut suffix = common_suffix(old.as_bytes(), new.as_bytes()).min(room);
    while !new.is_char_boundary(new.len() - suffix) {
        suffix -= 1;
    }
    let operation = TextOperation::new().retain(utf16_len(&old[..prefix]));
    let operation = append(
        operation,
        &diff_middle(
            &old[prefix..old.len() - suffix],
            &new[prefix..new.len() - suffix],
        ),
    );
    operation.retain(utf16_len(&old[old.len() - suffix..]))
}

/// Diffs two texts that differ at both ends: by characters when small, else by lines first.
fn diff_middle(old: &str, new: &str) -> TextOperation {
    if old.is_empty() || new.is_empty() {
        return TextOperation::new().delete(utf16_len(old)).insert(new);
    }
    if old.len() + new.len() <= CHAR_DIFF_BYTES {
        return crate::diff::diff(old, new);
    }
    let line_diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(LINE_DIFF_TIMEOUT)
        .diff_lines(old, new);
    let byte_offsets = |slices: &[&str]| {
        let mut offsets = Vec::with_capacity(slices.len() + 1);
        let mut total = 0;
        offsets.push(0);
        for slice in slices {
            total += slice.len();
            offsets.push(total);
        }
        offsets
    };
    let old_offsets = byte_offsets(line_diff.old_slices());
    let new_offsets = byte_offsets(line_diff.new_slices());
    let mut operation = TextOperation::new();
    for op in line_diff.ops() {
        let old_range = op.old_range();
        let new_range = op.new_range();
        let old_part = &old[old_offsets[old_range.start]..old_offsets[old_range.end]];
        let new_part = &new[new_offsets[new_range.start]..new_offsets[new_range.end]];
        operation = match op {
            DiffOp::Equal { .. } => operation.retain(utf16_len(old_part)),
            DiffOp::Delete { .. } => operation.delete(utf16_len(old_part)),
            DiffOp::Insert { .. } => operation.insert(new_part),
            DiffOp::Replace { .. } if old_part.len() + new_part.len() <= CHAR_DIFF_BYTES => {
                append(operation, &crate::diff::diff(old_part, new_part))
            }
            DiffOp::Replace { .. } => operation.insert(new_part).delete(utf16_len(old_part)),
        };
    }
    operation
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(operation: &TextOperation, text: &str) -> String {
        operation
            .apply(text)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn rope_diff_keeps_the_common_ends() {
        for (old, new) in [
            ("", ""),
            ("", "abc"),
            ("abc", ""),
            ("abc", "abXc"),
            ("a😀b", "a😀cb"),
            ("😀😀", "😀😁"),
            ("aaaa", "aa"),
            ("x = 1\n", "x = 2\n"),
        ] {
            let operation = diff_rope(&Rope::from_str(old), new);
            assert_eq!(apply(&operation, old), new, "{old:?} -> {new:?}");
        }
        let long = "line\n".repeat(50_000);
        let edited = format!("{}X{}", &long[..123_457], &long[123_457..]);
        let operation = diff_rope(&Rope::from_str(&long), &edited);
        assert_eq!(operation.components().len(), 3);
        assert_eq!(apply(&operation, &long), edited);
    }

    #[test]
    fn edit_between_goes_from_candidate_to_frame() {
        let room = "a\nb\nc\n";
        let rope = Rope::from_str(room);
        // The candidate lacks the room's "b"; the frame added "X" to the first line.
        let to_candidate = diff_text(room, "a\n\nc\n");
        let to_frame = diff_text(room, "aX\n\nc\n");
        let (operation, refuted) = edit_between(&rope, &to_candidate, &to_frame);
        assert_eq!(apply(&operation, "a\n\nc\n"), "aX\n\nc\n");
        assert!(!refuted);
        // A frame that kept the room's "b" was written on a newer buffer than the candidate.
        let (operation, refuted) =
            edit_between(&rope, &to_candidate, &diff_text(room, "aX\nb\nc\n"));
        assert_eq!(apply(&operation, "a\n\nc\n"), "aX\nb\nc\n");
        assert!(refuted);
    }

    #[test]
    fn large_different_middles_are_diffed_by_lines() {
        let old: String = (0..20_000).map(|n| format!("old {n}\n")).collect();
        let new: String = (0..20_000).map(|n| format!("new {n}\n")).collect();
        assert_eq!(apply(&diff_text(&old, &new), &old), new);
    }
}
