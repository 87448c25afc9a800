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
    pending: VecDeque<TextOperation>,
    document: Document,
}

/// Moves `pending` (and `extra`, an operation on top of it) across `remote`, made on the state
/// they were based on; returns `remote` as it applies on top of them.
fn transform_through(
    pending: &mut VecDeque<TextOperation>,
    extra: Option<&mut TextOperation>,
    remote: &TextOperation,
) -> Result<TextOperation, OperationError> {
    let mut moved_remote: Option<TextOperation> = None;
    for mine in pending.iter_mut().chain(extra) {
        let (moved, theirs) =
            TextOperation::transform(mine, moved_remote.as_ref().unwrap_or(remote))?;
        *mine = moved;
        moved_remote = Some(theirs);
    }
    Ok(moved_remote.unwrap_or_else(|| remote.clone()))
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

/// One edit as the server receives it: the author's operation on the text it saw, which is the
/// server's text at revision `seen` plus the author's own edits the server had committed after
/// `seen` (`pending`, as the author has them).
#[derive(Clone, Debug)]
pub struct Submission {
    pub author: usize,
    pub seen: usize,
    pub pending: Vec<TextOperation>,
    pub operation: TextOperation,
}

/// The clients' side of a replay: simulates every author as an ot.js client and returns, for
/// each transaction in order, what its author sends.
///
/// # Errors
/// [`OperationError`] when a transaction does not fit the text its author saw, or the history
/// is not one a central server could have produced.
pub fn submissions(
    authors: usize,
    transactions: &[Transaction],
) -> Result<Vec<Submission>, OperationError> {
    let mut submitted: Vec<Submission> = Vec::with_capacity(transactions.len());
    // The server's order, as each author will see it.
    let mut committed: Vec<TextOperation> = Vec::with_capacity(transactions.len());
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
        let document = &mut state.document;
        catch_up(
            &committed[state.seen..seen],
            |k| author_of(state.seen + k) == author,
            &mut state.pending,
            None,
            |remote| document.apply(&remote),
        )?;
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
        let submission = Submission {
            author,
            seen,
            pending: state.pending.iter().cloned().collect(),
            operation: operation.clone(),
        };
        // What the server commits for it, for the other authors to catch up with.
        committed.push(serve_one(&committed, &submission, author_of)?);
        submitted.push(submission);
        state.pending.push_back(operation);
        prefix_after.push(if seen == index { index + 1 } else { seen });
    }
    Ok(submitted)
}

/// The server's work for one submission: its operation transformed over what was committed
/// since `seen` by other authors (carrying the author's own pending edits along, and dropping
/// each as the server's order reaches it).
fn serve_one(
    committed: &[TextOperation],
    submission: &Submission,
    author_of: impl Fn(usize) -> usize,
) -> Result<TextOperation, OperationError> {
    let mut pending: VecDeque<TextOperation> = submission.pending.iter().cloned().collect();
    let mut incoming = submission.operation.clone();
    catch_up(
        &committed[submission.seen..],
        |k| author_of(submission.seen + k) == submission.author,
        &mut pending,
        Some(&mut incoming),
        |_| Ok(()),
    )?;
    Ok(incoming)
}

/// Walks `committed` for one author: drops a pending edit where the order reaches one of its
/// own (`own(k)`), and moves the pending edits (and `extra`) across the others' edits, handing
/// each of those, as it applies on top of them, to `remote`. When several edits must cross a
/// run of others' edits, the run is composed into one first, so they cross it once rather
/// than once per edit in it.
fn catch_up(
    committed: &[TextOperation],
    own: impl Fn(usize) -> bool,
    pending: &mut VecDeque<TextOperation>,
    mut extra: Option<&mut TextOperation>,
    mut remote: impl FnMut(TextOperation) -> Result<(), OperationError>,
) -> Result<(), OperationError> {
    let mut k = 0;
    while k < committed.len() {
        if own(k) {
            pending.pop_front();
            k += 1;
            continue;
        }
        let start = k;
        k += 1;
        // Composing only pays when more than one edit would cross the run.
        let crossing = pending.len() + usize::from(extra.is_some());
        while crossing > 1 && k < committed.len() && !own(k) {
            k += 1;
        }
        let run = &committed[start..k];
        let composed;
        let others = match run {
            [single] => single,
            [first, rest @ ..] => {
                let mut all = first.clone();
                for next in rest {
                    all = all.compose(next)?;
                }
                composed = all;
                &composed
            }
            [] => continue,
        };
        remote(transform_through(pending, extra.as_deref_mut(), others)?)?;
    }
    Ok(())
}

/// The server's side of a replay: transforms each submission over what was committed since
/// the revision its author had seen, applies it, and returns the final text.
///
/// # Errors
/// [`OperationError`] when a submission does not fit the server's history.
pub fn serve(submissions: &[Submission]) -> Result<String, OperationError> {
    let mut committed: Vec<TextOperation> = Vec::with_capacity(submissions.len());
    let mut server = Document::new("", 0);
    let author_of = |index: usize| submissions[index].author;
    for submission in submissions {
        let incoming = serve_one(&committed, submission, author_of)?;
        server.apply(&incoming)?;
        committed.push(incoming);
    }
    Ok(server.text())
}

/// Replays `transactions` (made by `authors` authors) and returns the server's final text.
///
/// # Errors
/// [`OperationError`] when a transaction does not fit the text its author saw, or the history
/// is not one a central server could have produced.
pub fn replay(authors: usize, transactions: &[Transaction]) -> Result<String, OperationError> {
    serve(&submissions(authors, transactions)?)
}
