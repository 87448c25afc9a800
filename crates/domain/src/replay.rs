//! Replaying a concurrent editing history through central-server OT, as Duet's server orders
//! edits: for checking the engine against recorded histories (the public editing traces) and
//! for timing it.
//!
//! A history is a list of transactions in the order the server receives them. Each was made by
//! one author on the text it had seen: everything the server committed before some revision,
//! plus the author's own later transactions (which is how a client of a central server sees
//! the document). Each author is simulated as a client that sends every transaction at once,
//! its own edits pending until the server's order catches up with them, and moves what arrives
//! meanwhile past them by the client's rule ([`crate::client`]): [`submissions`].
//!
//! Not as ot.js's [`Client`](crate::Client), which sends one operation at a time and composes
//! the rest into a buffer: the recorded histories show authors seeing each other's
//! transactions one by one, which buffering does not allow. Simulated that way (each
//! acknowledgement as early as what its author saw permits, each buffer sent at once), a fifth
//! of the transactions (5,391 of 26,078 in `concurrent-friendsforever`, 5,225 of 23,136 in
//! `concurrent-clownschool`) would be made on a text lacking some of what they were recorded
//! on, and neither trace would reach its end content. So this server, unlike Duet's, takes
//! several edits in flight from one author.
//!
//! The server's side, [`serve`], keeps for each author the others' edits that author has not
//! seen yet, already moved past everything the author has sent since (the Jupiter server of
//! Nichols et al., 1995): an incoming edit crosses each of them once and moves them past
//! itself, so its cost is the number of edits it is concurrent with, whatever the author still
//! has in flight.

use std::collections::VecDeque;

use crate::client::transform_past;
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
/// server's text at revision `seen` plus all the author's own earlier edits.
#[derive(Clone, Debug)]
pub struct Submission {
    pub author: usize,
    pub seen: usize,
    pub operation: TextOperation,
}

/// The server's side: its text, and for each author the others' edits (with their revision)
/// that author had not seen when it last sent one, moved past what it sent since.
struct Server {
    document: Document,
    revision: usize,
    unseen: Vec<VecDeque<(usize, TextOperation)>>,
}

impl Server {
    fn new(authors: usize) -> Self {
        Self {
            document: Document::default(),
            revision: 0,
            unseen: vec![VecDeque::new(); authors],
        }
    }

    /// Transforms `submission` into the server's order, applies it and returns it as
    /// committed.
    fn receive(&mut self, submission: &Submission) -> Result<TextOperation, OperationError> {
        let author = submission.author;
        let Some(unseen) = self.unseen.get_mut(author) else {
            return Err(OperationError::PastEnd { position: author });
        };
        let mut incoming = submission.operation.clone();
        while unseen
            .front()
            .is_some_and(|(revision, _)| *revision < submission.seen)
        {
            unseen.pop_front();
        }
        for (_, other) in unseen.iter_mut() {
            let (moved, theirs) = TextOperation::transform(&incoming, other)?;
            incoming = moved;
            *other = theirs;
        }
        self.document.apply(&incoming)?;
        for (someone, unseen) in self.unseen.iter_mut().enumerate() {
            if someone != author {
                unseen.push_back((self.revision, incoming.clone()));
            }
        }
        self.revision += 1;
        Ok(incoming)
    }
}

/// The clients' side of a replay: simulates every author as a client sending each transaction
/// at once, and returns, for each transaction in order, what its author sends.
///
/// # Errors
/// [`OperationError`] when a transaction does not fit the text its author saw, or the history
/// is not one a central server could have produced.
pub fn submissions(
    authors: usize,
    transactions: &[Transaction],
) -> Result<Vec<Submission>, OperationError> {
    let mut submitted: Vec<Submission> = Vec::with_capacity(transactions.len());
    let mut server = Server::new(authors);
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
            operation: operation.clone(),
        };
        // What the server commits for it, for the other authors to catch up with.
        committed.push(server.receive(&submission)?);
        submitted.push(submission);
        state.pending.push_back(operation);
        prefix_after.push(if seen == index { index + 1 } else { seen });
    }
    Ok(submitted)
}

/// An author catching up with `committed`: drops a pending edit where the order reaches one of
/// its own (`own(k)`), and moves the pending edits across the others' edits, handing each of
/// those, as it applies on top of them, to `remote`. When several edits must cross a run of
/// others' edits, the run is composed into one first, so they cross it once rather than once
/// per edit in it.
fn catch_up(
    committed: &[TextOperation],
    own: impl Fn(usize) -> bool,
    pending: &mut VecDeque<TextOperation>,
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
        while pending.len() > 1 && k < committed.len() && !own(k) {
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
        remote(transform_past(pending.iter_mut(), others)?)?;
    }
    Ok(())
}

/// The server's side of a replay: transforms each submission into the server's order and
/// applies it; returns the final text.
///
/// # Errors
/// [`OperationError`] when a submission does not fit the server's history.
pub fn serve(submissions: &[Submission]) -> Result<String, OperationError> {
    let authors = submissions.iter().map(|s| s.author + 1).max().unwrap_or(0);
    let mut server = Server::new(authors);
    for submission in submissions {
        server.receive(submission)?;
    }
    Ok(server.document.text())
}

/// The server's side of a replay, edit by edit: what [`serve`] commits for each submission,
/// in order, for comparing another server's transformations with it.
///
/// # Errors
/// [`OperationError`] when a submission does not fit the server's history.
pub fn committed(submissions: &[Submission]) -> Result<Vec<TextOperation>, OperationError> {
    let authors = submissions.iter().map(|s| s.author + 1).max().unwrap_or(0);
    let mut server = Server::new(authors);
    submissions
        .iter()
        .map(|submission| server.receive(submission))
        .collect()
}

/// Replays `transactions` (made by `authors` authors) and returns the server's final text.
///
/// # Errors
/// [`OperationError`] when a transaction does not fit the text its author saw, or the history
/// is not one a central server could have produced.
pub fn replay(authors: usize, transactions: &[Transaction]) -> Result<String, OperationError> {
    serve(&submissions(authors, transactions)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(author: usize, parents: &[usize], position: usize, text: &str) -> Transaction {
        Transaction {
            author,
            parents: parents.to_vec(),
            splices: vec![(position, 0, text.to_owned())],
        }
    }

    #[test]
    fn concurrent_typists_with_edits_in_flight_converge_in_the_servers_order() {
        // Author 0 types "ab" then "c" without seeing author 1's "X", who types "X" then "Y"
        // without seeing author 0's edits. The server took "ab" first, so "X" (arriving
        // later at the same place) goes first; "Y" follows "X" for the same reason.
        let history = [
            typed(0, &[], 0, "ab"),
            typed(1, &[], 0, "X"),
            typed(0, &[0], 2, "c"),
            typed(1, &[1], 1, "Y"),
        ];
        let submitted = submissions(2, &history).unwrap();
        assert_eq!(
            submitted.iter().map(|s| s.seen).collect::<Vec<_>>(),
            [0, 0, 1, 0],
            "\"c\" was typed on the server's first revision, the others on the empty text"
        );
        assert_eq!(serve(&submitted).unwrap(), "XYabc");
        assert_eq!(replay(2, &history).unwrap(), "XYabc");
    }

    #[test]
    fn a_submission_from_an_unknown_author_or_on_another_text_is_refused() {
        let stranger = Submission {
            author: 3,
            seen: 0,
            operation: TextOperation::new().insert("a"),
        };
        let mut server = Server::new(2);
        assert!(server.receive(&stranger).is_err());
        let misfit = Submission {
            author: 0,
            seen: 0,
            operation: TextOperation::new().retain(5).insert("a"),
        };
        assert!(matches!(
            server.receive(&misfit),
            Err(OperationError::BaseLengthMismatch { .. })
        ));
    }
}
