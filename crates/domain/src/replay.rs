//! Replaying a concurrent editing history through central-server OT, as Duet's server orders
//! edits: for checking the engine against recorded histories (the public editing traces) and
//! for timing it.
//!
//! A history is a list of transactions in the order the server receives them. Each was made by
//! one author on the text it had seen: everything the server committed before some revision,
//! plus the author's own later transactions (which is how a client of a central server sees
//! the document). Each author is simulated as an ot.js client (its own edits pending until the
//! server's order catches up with them); each edit is transformed over what the server
//! committed since that revision and applied.

use std::collections::VecDeque;

use crate::{Document, OperationError, TextOperation};

/// One transaction: made by `author` on the state after `parents` (indexes of earlier
/// transactions), as splices `(position, deleted, inserted)` counted in code points, applied in
/// turn.
#[derive(Clone, Debug)]
pub struct Transaction {
    pub author: usize,
    pub parents: Vec<usize>,
    pub splices: Vec<(usize, usize, String)>,
}

struct Author {
    seen: usize,
    pending: VecDeque<(usize, TextOperation)>,
    document: Document,
}

/// Moves `pending` (and `extra`, an operation on top of it) across `remote`, made on the state
/// they were based on; returns `remote` as it applies on top of them.
fn transform_through(
    pending: &mut VecDeque<(usize, TextOperation)>,
    extra: Option<&mut TextOperation>,
    mut remote: TextOperation,
) -> Result<TextOperation, OperationError> {
    for (_, mine) in pending.iter_mut() {
        let (moved, theirs) = TextOperation::transform(mine, &remote)?;
        *mine = moved;
        remote = theirs;
    }
    if let Some(mine) = extra {
        let (moved, theirs) = TextOperation::transform(mine, &remote)?;
        *mine = moved;
        remote = theirs;
    }
    Ok(remote)
}

/// The operation for a splice in code points on `document`.
fn splice_operation(document: &Document, splice: &(usize, usize, String)) -> TextOperation {
    let (position, deleted, inserted) = splice;
    let rope = document.rope();
    let position = (*position).min(rope.len_chars());
    let end = (position + deleted).min(rope.len_chars());
    let start = rope.char_to_utf16_cu(position);
    let stop = rope.char_to_utf16_cu(end);
    TextOperation::new()
        .retain(start)
        .delete(stop - start)
        .insert(inserted)
        .retain(document.len_utf16() - stop)
}

/// Replays `transactions` (made by `authors` authors) and returns the server's final text.
///
/// # Errors
/// [`OperationError`] when a transaction does not fit the text its author saw, or the history
/// is not one a central server could have produced.
pub fn replay(authors: usize, transactions: &[Transaction]) -> Result<String, OperationError> {
    let mut committed: Vec<TextOperation> = Vec::with_capacity(transactions.len());
    let mut server = Document::new("", 0);
    // For each transaction: how much of the server's order its author had seen, counting it.
    let mut prefix_after: Vec<usize> = Vec::with_capacity(transactions.len());
    let mut simulated: Vec<Author> = (0..authors)
        .map(|_| Author {
            seen: 0,
            pending: VecDeque::new(),
            document: Document::new("", 0),
        })
        .collect();
    let author_of = |index: usize| transactions[index].author;
    for (index, transaction) in transactions.iter().enumerate() {
        let author = transaction.author;
        let parents = &transaction.parents;
        let seen_by = |j: usize| {
            parents
                .iter()
                .any(|&p| j < prefix_after[p] || (author_of(j) == author_of(p) && j <= p))
        };
        let mut seen = parents.iter().map(|&p| prefix_after[p]).max().unwrap_or(0);
        while seen < index && seen_by(seen) {
            seen += 1;
        }
        let Some(state) = simulated.get_mut(author) else {
            return Err(OperationError::PastEnd { position: author });
        };
        // The author catches up with the server's order up to what it had seen.
        for (k, other) in committed.iter().enumerate().take(seen).skip(state.seen) {
            if author_of(k) == author {
                state.pending.pop_front();
            } else {
                let remote = transform_through(&mut state.pending, None, other.clone())?;
                state.document.apply(&remote)?;
            }
        }
        state.seen = seen;
        // The author's edit, on the text it saw.
        let mut operation = TextOperation::new().retain(state.document.len_utf16());
        let mut working = state.document.clone();
        for splice in &transaction.splices {
            let step = splice_operation(&working, splice);
            working.apply(&step)?;
            operation = operation.compose(&step)?;
        }
        state.document = working;
        // The server transforms it over what was committed since that revision.
        let mut pending = state.pending.clone();
        let mut incoming = operation.clone();
        for (k, other) in committed.iter().enumerate().skip(seen) {
            if author_of(k) == author {
                pending.pop_front();
            } else {
                transform_through(&mut pending, Some(&mut incoming), other.clone())?;
            }
        }
        server.apply(&incoming)?;
        committed.push(incoming);
        state.pending.push_back((index, operation));
        prefix_after.push(if seen == index { index + 1 } else { seen });
    }
    Ok(server.text())
}
