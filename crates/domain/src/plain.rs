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
//! What the evidence cannot see: a client that answered a ping but had not yet put the buffer
//! behind it in its editor when it wrote a frame (a moment in a browser, between its network
//! stack answering and the page handling the message) has that frame read against the newer
//! buffer, as if it deleted what the older one lacked.
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
use similar::{Algorithm, ChangeTag, DiffOp, TextDiff};

use crate::document::Document;
use crate::operation::{Component, OperationError, TextOperation};
use crate::text::utf16_len;

/// Middles (after the common prefix and suffix) up to this many bytes, both sides together, are
/// diffed character by character; longer ones line by line first, then character by character
/// inside the changed lines. Myers' cost grows with the size times the number of differences.
const CHAR_DIFF_BYTES: usize = 32 * 1024;

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
        }
    }

    /// Notes that the room's text at `revision` was queued to the connection, just after a ping
    /// that names `revision` (whose answer is passed to [`PlainMember::merge`] as `answered`).
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
    /// `answered` is the newest buffer whose ping the client had answered when it sent the
    /// frame (answers to earlier pings arrive first), or `None` if it answered none.
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
        answered: Option<u64>,
    ) -> Result<PlainEdit, OperationError> {
        crate::room::check_code(frame)?;
        let reached = answered.map_or(self.reached, |answered| answered.max(self.reached));
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
        let mut chosen = named.and_then(|index| {
            let (change, refuted) = change_from(&candidates[index]);
            (!refuted).then_some((index, change))
        });
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
        rebase(
            change,
            candidate.base,
            candidate.bridge,
            later,
            frame,
            room.len_utf16(),
            reached,
        )
    }

    /// Records that `edit` was applied and the room is now at `revision` (the revision passed
    /// to `merge` when the operation was a no-op and nothing was committed).
    pub fn applied(&mut self, edit: PlainEdit, revision: u64) {
        if let Base::Sent(base) = edit.base {
            // The client had received that buffer, so it will never show it or an older one
            // again: buffers arrive in order and its editor now holds this frame.
            self.sent.retain(|sent| *sent > base);
        }
        // Nor a buffer older than the newest it had reached.
        self.sent.retain(|sent| *sent >= edit.reached);
        self.reached = edit.reached;
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
        // A zone: spans of either side that overlap or touch, chained.
        loop {
            if let Some(span) = candidate_spans.get(i).filter(|span| span.start <= end) {
                end = end.max(span.end);
                i += 1;
            } else if let Some(span) = frame_spans.get(j).filter(|span| span.start <= end) {
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
    let first = candidate_spans.iter().chain(&frame_spans).map(|span| span.start).min();
    let last = candidate_spans.iter().chain(&frame_spans).map(|span| span.end).max();
    let length = rope.len_utf16_cu();
    let (Some(start), Some(end)) = (first, last) else {
        return (identity(length), refuted);
    };
    let original = slice_utf16(rope, start, end);
    let candidate = replace_spans(&original, start, &candidate_spans);
    let frame = replace_spans(&original, start, &frame_spans);
    let operation = append(TextOperation::new().retain(start), &diff_text(&candidate, &frame));
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
        return diff_characters(old, new);
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
                append(operation, &diff_characters(old_part, new_part))
            }
            DiffOp::Replace { .. } => operation.insert(new_part).delete(utf16_len(old_part)),
        };
    }
    operation
}

fn diff_characters(old: &str, new: &str) -> TextOperation {
    let text_diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .diff_chars(old, new);
    let mut operation = TextOperation::new();
    for change in text_diff.iter_all_changes() {
        let value = change.value();
        operation = match change.tag() {
            ChangeTag::Equal => operation.retain(utf16_len(value)),
            ChangeTag::Delete => operation.delete(utf16_len(value)),
            ChangeTag::Insert => operation.insert(value),
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
