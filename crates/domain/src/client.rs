//! The client's side of central-server OT: ot.js's `Client`, for Rust programs that edit a room
//! (Duet's load generator and end-to-end tests use it, and so does the replay of recorded
//! histories).
//!
//! A client has at most one operation in flight: sent, and not yet acknowledged. Edits made
//! meanwhile are composed into a buffer, which is sent as one operation when the
//! acknowledgement arrives. An operation from someone else that arrives meanwhile is
//! transformed over the operation in flight and then over the buffer, and what comes out is
//! applied to the local text. These are ot.js's three states: synchronized, awaiting confirm,
//! awaiting with buffer.
//!
//! The client keeps operations, not text: the caller owns the text (a `String`, a
//! [`Document`](crate::Document), an editor's buffer). It applies its own edits to it before
//! handing them to [`Client::apply_local`], and applies what [`Client::apply_remote`] returns.
//! The client knows the text's length, so an operation from the server that does not fit is an
//! error here rather than a corrupted text. It is pure: it sends nothing, and says what to send
//! ([`Outgoing`]: the `seq`, base `revision` and `ops` of a `duet.v1` `op` message).
//!
//! A client that lost its connection keeps its `Client`, reconnects with `since` set to
//! [`Client::revision`], hands each operation the `welcome` lists to [`Client::catch_up`] (its
//! own ones acknowledge, the others apply), and then sends [`Client::resend`]: the operation in
//! flight with the `seq` and base it was first sent with, which the server recognises if it
//! already committed it.
//!
//! # Example
//!
//! The exchange of `docs/PROTOCOL.md`: Alice and Bob edit "ab" at the same time, and the server
//! (played by hand here) commits Alice's edit first.
//!
//! ```
//! use duet_domain::{Client, TextOperation};
//!
//! // Both joined at revision 0, on a text of 2 UTF-16 units.
//! let (mut alice, mut alices_text) = (Client::new(0, 2), String::from("ab"));
//! let (mut bob, mut bobs_text) = (Client::new(0, 2), String::from("ab"));
//!
//! // Each edits their own text and sends the edit at once: nothing else is in flight.
//! let emoji = TextOperation::new().retain(1).insert("😀").retain(1);
//! alices_text = emoji.apply(&alices_text)?;
//! let from_alice = alice.apply_local(emoji)?.expect("sent at once");
//! let exclamation = TextOperation::new().retain(2).insert("!");
//! bobs_text = exclamation.apply(&bobs_text)?;
//! let from_bob = bob.apply_local(exclamation)?.expect("sent at once");
//! assert_eq!((from_bob.seq, from_bob.revision), (1, 0));
//!
//! // The server commits Alice's edit as revision 1: she is acknowledged, Bob receives it.
//! assert_eq!(alice.acknowledge(from_alice.seq, 1)?, None);
//! let for_bob = bob.apply_remote(1, &from_alice.operation)?;
//! bobs_text = for_bob.apply(&bobs_text)?;
//!
//! // It moves Bob's edit past Alice's and commits it as revision 2.
//! let (committed, _) = TextOperation::transform(&from_bob.operation, &from_alice.operation)?;
//! assert_eq!(bob.acknowledge(from_bob.seq, 2)?, None);
//! let for_alice = alice.apply_remote(2, &committed)?;
//! alices_text = for_alice.apply(&alices_text)?;
//!
//! assert_eq!(alices_text, "a😀b!");
//! assert_eq!(bobs_text, "a😀b!");
//! assert!(alice.is_synchronized() && bob.is_synchronized());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::operation::{OperationError, TextOperation};

/// An operation to send: a `duet.v1` `op` message's `seq`, base `revision` and `ops`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Numbers the client's operations, in the order it sends them; a resend keeps it.
    pub seq: u64,
    /// The server revision the operation was made on.
    pub revision: u64,
    pub operation: TextOperation,
}

/// Why a client cannot take what it was given. The client is unchanged, but its text and the
/// server's no longer agree (a message was lost, or the server is broken or hostile): the way
/// on is to reconnect without `since` and [`Client::resynchronize`] on the whole text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// An operation does not fit the text it is said to apply to.
    #[error(transparent)]
    Operation(#[from] OperationError),
    /// An acknowledgement of an operation that is not the one in flight (`None`: an own
    /// operation in a `welcome`, which names no `seq`).
    #[error(
        "acknowledgement of seq {acknowledged:?}, but the operation in flight is {in_flight:?}"
    )]
    UnexpectedAck {
        acknowledged: Option<u64>,
        in_flight: Option<u64>,
    },
    /// A revision that is not the one after the client's: the server sends every revision,
    /// in order, so one was lost.
    #[error("revision {revision} does not follow revision {known}")]
    OutOfOrder { known: u64, revision: u64 },
    /// Every sequence number the protocol allows was used.
    #[error("no sequence number is left (the largest is {})", Client::MAX_SEQ)]
    SeqExhausted,
}

/// An ot.js client: the server revision it has seen, the operation in flight, the buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    revision: u64,
    /// The local text's length in UTF-16 code units.
    len: usize,
    /// The last sequence number used (0: none yet).
    last_seq: u64,
    state: State,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Synchronized,
    AwaitingConfirm(InFlight),
    AwaitingWithBuffer(InFlight, TextOperation),
}

/// The operation in flight: as sent, for resending, and moved past what arrived since, for
/// transforming what arrives next.
#[derive(Clone, Debug, PartialEq, Eq)]
struct InFlight {
    sent: Outgoing,
    transformed: TextOperation,
}

impl Client {
    /// The largest sequence number: JavaScript's largest exact integer, as in the protocol.
    pub const MAX_SEQ: u64 = 9_007_199_254_740_991;

    /// A client synchronized at `revision` on a text of `len` UTF-16 code units (a `welcome`'s
    /// `revision` and `code`); its first operation gets `seq` 1.
    #[must_use]
    pub const fn new(revision: u64, len: usize) -> Self {
        Self {
            revision,
            len,
            last_seq: 0,
            state: State::Synchronized,
        }
    }

    /// The last server revision the client has seen.
    #[must_use]
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    /// Whether every local edit was acknowledged (nothing in flight, nothing buffered).
    #[must_use]
    pub const fn is_synchronized(&self) -> bool {
        matches!(self.state, State::Synchronized)
    }

    /// The operation in flight, as it was sent.
    #[must_use]
    pub const fn in_flight(&self) -> Option<&Outgoing> {
        match &self.state {
            State::Synchronized => None,
            State::AwaitingConfirm(in_flight) | State::AwaitingWithBuffer(in_flight, _) => {
                Some(&in_flight.sent)
            }
        }
    }

    /// The local edits waiting for the operation in flight to be acknowledged, composed into
    /// one, on the text as it was after that operation.
    #[must_use]
    pub const fn buffer(&self) -> Option<&TextOperation> {
        match &self.state {
            State::AwaitingWithBuffer(_, buffer) => Some(buffer),
            State::Synchronized | State::AwaitingConfirm(_) => None,
        }
    }

    /// A local edit, already applied to the local text: returns what to send now, if nothing
    /// was in flight; otherwise the edit joins the buffer.
    ///
    /// # Errors
    /// [`ClientError::Operation`] when the edit does not apply to a text of the local text's
    /// length (or cannot be composed into the buffer); [`ClientError::SeqExhausted`].
    pub fn apply_local(
        &mut self,
        operation: TextOperation,
    ) -> Result<Option<Outgoing>, ClientError> {
        if operation.base_len() != self.len {
            return Err(OperationError::BaseLengthMismatch {
                expected: operation.base_len(),
                actual: self.len,
            }
            .into());
        }
        let len = operation.target_len();
        let outgoing = match &mut self.state {
            State::Synchronized => Some(self.send(operation)?),
            State::AwaitingConfirm(_) => {
                if let State::AwaitingConfirm(in_flight) = std::mem::take(&mut self.state) {
                    self.state = State::AwaitingWithBuffer(in_flight, operation);
                }
                None
            }
            State::AwaitingWithBuffer(_, buffer) => {
                *buffer = buffer.compose(&operation)?;
                None
            }
        };
        self.len = len;
        Ok(outgoing)
    }

    /// The server committed the operation in flight, `seq`, as `revision`: returns the buffer,
    /// to send now, if there is one.
    ///
    /// # Errors
    /// [`ClientError::UnexpectedAck`] when `seq` is not in flight;
    /// [`ClientError::OutOfOrder`] when `revision` does not follow the client's;
    /// [`ClientError::SeqExhausted`].
    pub fn acknowledge(
        &mut self,
        seq: u64,
        revision: u64,
    ) -> Result<Option<Outgoing>, ClientError> {
        let in_flight = self.in_flight().map(|sent| sent.seq);
        if in_flight != Some(seq) {
            return Err(ClientError::UnexpectedAck {
                acknowledged: Some(seq),
                in_flight,
            });
        }
        self.advance_to(revision)?;
        if self.buffer().is_some() {
            // Checked first, so that a refusal changes nothing.
            self.next_seq()?;
        }
        self.revision = revision;
        match std::mem::take(&mut self.state) {
            State::AwaitingWithBuffer(_, buffer) => self.send(buffer).map(Some),
            State::Synchronized | State::AwaitingConfirm(_) => Ok(None),
        }
    }

    /// Someone else's operation, committed as `revision`: returns it as it applies to the
    /// local text (moved past the operation in flight and the buffer), for the caller to apply.
    ///
    /// # Errors
    /// [`ClientError::OutOfOrder`] when `revision` does not follow the client's;
    /// [`ClientError::Operation`] when the operation does not fit the server's text as the
    /// client knows it.
    pub fn apply_remote(
        &mut self,
        revision: u64,
        operation: &TextOperation,
    ) -> Result<TextOperation, ClientError> {
        self.advance_to(revision)?;
        // The server's text is the local text without the operation in flight and the buffer.
        let server_len = match &self.state {
            State::Synchronized => self.len,
            State::AwaitingConfirm(in_flight) | State::AwaitingWithBuffer(in_flight, _) => {
                in_flight.transformed.base_len()
            }
        };
        if operation.base_len() != server_len {
            return Err(OperationError::BaseLengthMismatch {
                expected: operation.base_len(),
                actual: server_len,
            }
            .into());
        }
        let local = match &mut self.state {
            State::Synchronized => transform_past([], operation)?,
            State::AwaitingConfirm(in_flight) => {
                transform_past([&mut in_flight.transformed], operation)?
            }
            State::AwaitingWithBuffer(in_flight, buffer) => {
                transform_past([&mut in_flight.transformed, buffer], operation)?
            }
        };
        self.revision = revision;
        self.len = local.target_len();
        Ok(local)
    }

    /// One of the operations a `welcome` lists for a resumed client, in order: an `own` one
    /// acknowledges the operation in flight (the buffer then waits for [`Client::resend`]),
    /// another's is applied as by [`Client::apply_remote`] and returned.
    ///
    /// # Errors
    /// As [`Client::acknowledge`] and [`Client::apply_remote`].
    pub fn catch_up(
        &mut self,
        revision: u64,
        own: bool,
        operation: &TextOperation,
    ) -> Result<Option<TextOperation>, ClientError> {
        if !own {
            return self.apply_remote(revision, operation).map(Some);
        }
        let Some(seq) = self.in_flight().map(|sent| sent.seq) else {
            return Err(ClientError::UnexpectedAck {
                acknowledged: None,
                in_flight: None,
            });
        };
        // The buffer, if any, is in flight now: `resend` hands it over.
        self.acknowledge(seq, revision)?;
        Ok(None)
    }

    /// What to send after reconnecting (once the `welcome`'s operations went through
    /// [`Client::catch_up`]), or after the server refused it as `unavailable`: the operation in
    /// flight, with the `seq` and base revision it was first sent with. The server takes it
    /// once, however often it arrives.
    #[must_use]
    pub fn resend(&self) -> Option<Outgoing> {
        self.in_flight().cloned()
    }

    /// Starts again from a whole text (a `welcome` with `code`, when the server no longer
    /// holds the operations since the client's revision): synchronized at `revision` on a
    /// text of `len` units. Sequence numbers go on, as the server remembers each one. Returns
    /// whether unacknowledged edits were dropped (the new text lacks them).
    pub fn resynchronize(&mut self, revision: u64, len: usize) -> bool {
        let dropped = !self.is_synchronized();
        *self = Self {
            revision,
            len,
            last_seq: self.last_seq,
            state: State::Synchronized,
        };
        dropped
    }

    /// Checks that `revision` is the one after the client's.
    fn advance_to(&self, revision: u64) -> Result<(), ClientError> {
        if self.revision.checked_add(1) == Some(revision) {
            Ok(())
        } else {
            Err(ClientError::OutOfOrder {
                known: self.revision,
                revision,
            })
        }
    }

    /// The sequence number the next operation sent gets.
    fn next_seq(&self) -> Result<u64, ClientError> {
        self.last_seq
            .checked_add(1)
            .filter(|seq| *seq <= Self::MAX_SEQ)
            .ok_or(ClientError::SeqExhausted)
    }

    /// Puts `operation` in flight, on the client's revision with the next sequence number
    /// (the state must be synchronized); returns it as sent.
    fn send(&mut self, operation: TextOperation) -> Result<Outgoing, ClientError> {
        let seq = self.next_seq()?;
        let sent = Outgoing {
            seq,
            revision: self.revision,
            operation: operation.clone(),
        };
        self.last_seq = seq;
        self.state = State::AwaitingConfirm(InFlight {
            sent: sent.clone(),
            transformed: operation,
        });
        Ok(sent)
    }
}

/// ot.js's rule for an operation that arrives from the server: it crosses the client's own
/// operations that the server has not ordered yet (the one in flight, then the buffer), in the
/// order they were made, moving each past itself; what comes out applies to the local text.
/// At each crossing the pending operation is the first argument of the transform, as the
/// server, which receives it later, places it. Nothing changes on error.
pub(crate) fn transform_past<'a>(
    pending: impl IntoIterator<Item = &'a mut TextOperation>,
    remote: &TextOperation,
) -> Result<TextOperation, OperationError> {
    let mut pending: SmallVec<[&mut TextOperation; 2]> = pending.into_iter().collect();
    let mut moved: SmallVec<[TextOperation; 2]> = SmallVec::with_capacity(pending.len());
    let mut remote = Cow::Borrowed(remote);
    for mine in &pending {
        let (mine, theirs) = TextOperation::transform(mine, &remote)?;
        moved.push(mine);
        remote = Cow::Owned(theirs);
    }
    for (slot, mine) in pending.iter_mut().zip(moved) {
        **slot = mine;
    }
    Ok(remote.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(at: usize, text: &str, len: usize) -> TextOperation {
        TextOperation::new()
            .retain(at)
            .insert(text)
            .retain(len - at)
    }

    #[test]
    fn edits_made_while_one_is_in_flight_wait_in_a_buffer_and_go_as_one_after_the_ack() {
        let mut client = Client::new(7, 0);
        let first = client.apply_local(insert(0, "a", 0)).unwrap();
        assert_eq!(
            first,
            Some(Outgoing {
                seq: 1,
                revision: 7,
                operation: insert(0, "a", 0)
            })
        );
        assert_eq!(client.apply_local(insert(1, "b", 1)).unwrap(), None);
        assert_eq!(client.apply_local(insert(2, "c", 2)).unwrap(), None);
        assert_eq!(client.buffer(), Some(&insert(1, "bc", 1)));
        let second = client.acknowledge(1, 8).unwrap();
        assert_eq!(
            second,
            Some(Outgoing {
                seq: 2,
                revision: 8,
                operation: insert(1, "bc", 1)
            })
        );
        assert_eq!(client.acknowledge(2, 9).unwrap(), None);
        assert!(client.is_synchronized());
        assert_eq!(client.revision(), 9);
    }

    #[test]
    fn a_remote_operation_crosses_the_operation_in_flight_and_then_the_buffer() {
        // The server's text is "abc"; locally "X" went before it (in flight) and "Y" after it
        // (buffered); someone deleted the "b".
        let mut client = Client::new(0, 3);
        let mut text = String::from("abc");
        for edit in [insert(0, "X", 3), insert(4, "Y", 4)] {
            text = edit.apply(&text).unwrap();
            client.apply_local(edit).unwrap();
        }
        let deleted_b = TextOperation::new().retain(1).delete(1).retain(1);
        let local = client.apply_remote(1, &deleted_b).unwrap();
        assert_eq!(local.apply(&text).unwrap(), "XacY");
        // What the client sends later carries the deletion: it applies to the server's "ac".
        assert_eq!(
            client.acknowledge(1, 2).unwrap().unwrap().operation,
            insert(3, "Y", 3)
        );
        assert_eq!(
            client.resend().unwrap().revision,
            2,
            "the buffer goes on the revision of the acknowledgement"
        );
    }

    #[test]
    fn what_does_not_fit_is_refused_and_changes_nothing() {
        let synchronized = Client::new(3, 2);
        let mut awaiting = Client::new(3, 2);
        awaiting.apply_local(insert(0, "a", 2)).unwrap();
        let mut buffered = awaiting.clone();
        buffered.apply_local(insert(0, "b", 3)).unwrap();
        let exhausted = Client {
            last_seq: Client::MAX_SEQ,
            ..synchronized.clone()
        };
        let mut exhausted_buffered = buffered.clone();
        exhausted_buffered.last_seq = Client::MAX_SEQ;
        let misfit = |actual| {
            ClientError::Operation(OperationError::BaseLengthMismatch {
                expected: 9,
                actual,
            })
        };
        type Attempt = fn(&mut Client) -> Result<(), ClientError>;
        let cases: [(&str, &Client, Attempt, ClientError); 10] = [
            (
                "an ack with nothing in flight",
                &synchronized,
                |client| client.acknowledge(1, 4).map(drop),
                ClientError::UnexpectedAck {
                    acknowledged: Some(1),
                    in_flight: None,
                },
            ),
            (
                "an ack of another seq",
                &awaiting,
                |client| client.acknowledge(2, 4).map(drop),
                ClientError::UnexpectedAck {
                    acknowledged: Some(2),
                    in_flight: Some(1),
                },
            ),
            (
                "an own operation in a welcome, with nothing in flight",
                &synchronized,
                |client| client.catch_up(4, true, &TextOperation::new()).map(drop),
                ClientError::UnexpectedAck {
                    acknowledged: None,
                    in_flight: None,
                },
            ),
            (
                "an ack skipping a revision",
                &awaiting,
                |client| client.acknowledge(1, 5).map(drop),
                ClientError::OutOfOrder {
                    known: 3,
                    revision: 5,
                },
            ),
            (
                "an operation from the past",
                &buffered,
                |client| client.apply_remote(3, &insert(0, "x", 2)).map(drop),
                ClientError::OutOfOrder {
                    known: 3,
                    revision: 3,
                },
            ),
            (
                "a local edit on another text",
                &buffered,
                |client| client.apply_local(insert(0, "x", 9)).map(drop),
                misfit(4),
            ),
            (
                "a remote operation on another text, synchronized",
                &synchronized,
                |client| client.apply_remote(4, &insert(0, "x", 9)).map(drop),
                misfit(2),
            ),
            (
                "a remote operation on another text, with a buffer",
                &buffered,
                |client| client.apply_remote(4, &insert(0, "x", 9)).map(drop),
                misfit(2),
            ),
            (
                "no seq left to send with",
                &exhausted,
                |client| client.apply_local(insert(0, "x", 2)).map(drop),
                ClientError::SeqExhausted,
            ),
            (
                "no seq left to send the buffer with",
                &exhausted_buffered,
                |client| client.acknowledge(1, 4).map(drop),
                ClientError::SeqExhausted,
            ),
        ];
        for (what, before, attempt, expected) in cases {
            let mut client = before.clone();
            assert_eq!(attempt(&mut client), Err(expected), "{what}");
            assert_eq!(&client, before, "{what}");
        }
    }

    #[test]
    fn a_resumed_client_catches_up_and_resends_what_is_in_flight_as_it_was_sent() {
        let mut client = Client::new(0, 0);
        let sent = client.apply_local(insert(0, "a", 0)).unwrap().unwrap();
        // Connection lost; someone else's edit was committed meanwhile, and not ours.
        let theirs = insert(0, "x", 0);
        let local = client.catch_up(1, false, &theirs).unwrap();
        assert_eq!(local, Some(insert(1, "x", 1)), "after our \"a\"");
        assert_eq!(client.resend(), Some(sent), "same seq, base and operation");

        // Another loss: this time ours was committed (as revision 2), with a buffer behind it.
        client.apply_local(insert(2, "b", 2)).unwrap();
        assert_eq!(client.catch_up(2, true, &insert(1, "a", 1)).unwrap(), None);
        assert_eq!(
            client.resend(),
            Some(Outgoing {
                seq: 2,
                revision: 2,
                operation: insert(2, "b", 2)
            })
        );
    }

    #[test]
    fn a_resynchronized_client_says_what_it_dropped_and_keeps_numbering() {
        let mut client = Client::new(0, 0);
        client.apply_local(insert(0, "a", 0)).unwrap();
        assert!(
            client.resynchronize(5, 3),
            "the \"a\" was never acknowledged"
        );
        assert!(client.is_synchronized());
        let next = client.apply_local(insert(0, "b", 3)).unwrap().unwrap();
        assert_eq!((next.seq, next.revision), (2, 5));
        client.acknowledge(2, 6).unwrap();
        assert!(!client.resynchronize(9, 0));
    }
}
