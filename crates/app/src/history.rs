//! A room's history, read from the store: pages of its committed operations, and its code as it
//! was at any revision, rebuilt from the nearest known text at or before it and the log.
//!
//! Everything here reads the store, never a live room, and that is correct for live rooms too:
//! an operation is stored before it is acknowledged or broadcast (commit before ack), so the
//! store holds every operation anyone has seen. The log is append-only below a room's current
//! revision: rows leave it only when the room is deleted, or when a damaged tail after the
//! snapshot is quarantined (and the revisions it held are committed afresh). So the rows a page
//! reads never change under it.
//!
//! The store keeps two texts of a room: its snapshot (the code at some revision, refreshed as the
//! room moves on) and the code it was created with (its initial code). The code at revision `R`
//! is the snapshot replayed forward when the snapshot is at `R` or before, else the initial code
//! replayed forward; both cost one applied operation per revision replayed, read from the store a
//! page at a time. Rooms created before the initial code was kept, whose snapshot had moved past
//! revision 0 by then, cannot be rebuilt before their snapshot: those revisions are gone.

use chrono::{DateTime, Utc};
use duet_domain::{CommittedOperation, Document, Room, RoomId};

use crate::ports::RepositoryError;
use crate::rooms::{GetRoomError, Rooms};

/// How many operations are read from the store at once while a revision is rebuilt: memory
/// stays bounded however far the replay goes.
const REPLAY_PAGE: usize = 1000;
/// The most a page read from the store may hold (in [`stored_size`](crate::ports::stored_size) bytes), for a history page
/// and for each step of a replay, beyond its first operation: a thousand large operations would
/// otherwise be read into memory at once.
pub const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// A page of a room's history: committed operations, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    /// The operations of the page, each at the revision after the one before.
    pub operations: Vec<CommittedOperation>,
    /// The room's current revision.
    pub revision: u64,
    /// The revision to read the next page after, or `None` when this page reached the end of
    /// the range asked for.
    pub next_from: Option<u64>,
}

/// Why part of a room's history cannot be read or rebuilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryGap {
    /// The room was created before its initial code was kept, and its snapshot is past the
    /// revision asked for.
    #[error(
        "the room was created before its first code was kept, and its code before revision {snapshot} is not known"
    )]
    InitialCodeUnknown { snapshot: u64 },
    /// The log has no operation at this revision (it was quarantined, say).
    #[error("operation {revision} is missing from the room's log")]
    Missing { revision: u64 },
    /// The operation at this revision cannot be read back or applied (the cause is logged).
    #[error("operation {revision} of the room's log is damaged")]
    Damaged { revision: u64 },
}

/// Why a page of a room's history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("room {0} does not exist")]
    NotFound(RoomId),
    /// `from` past `to`, or `to` past the room's current revision.
    #[error(
        "the range after revision {from} up to {to} is not in the room's history: from must not be past to, nor to past the current revision, {current}"
    )]
    InvalidRange { from: u64, to: u64, current: u64 },
    /// The first operation of the page cannot be read.
    #[error("the room's history after revision {from} cannot be read: {gap}")]
    Gone { from: u64, gap: HistoryGap },
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
}

/// Why a room's code at a revision could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RoomAtError {
    #[error("room {0} does not exist")]
    NotFound(RoomId),
    #[error("revision {revision} is past the room's current revision, {current}")]
    RevisionNotFound { revision: u64, current: u64 },
    #[error("the room's code at revision {revision} cannot be rebuilt: {gap}")]
    Gone { revision: u64, gap: HistoryGap },
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
}

impl From<GetRoomError> for HistoryError {
    fn from(error: GetRoomError) -> Self {
        match error {
            GetRoomError::NotFound(id) => Self::NotFound(id),
            GetRoomError::Unavailable(error) => Self::Unavailable(error),
        }
    }
}

impl From<GetRoomError> for RoomAtError {
    fn from(error: GetRoomError) -> Self {
        match error {
            GetRoomError::NotFound(id) => Self::NotFound(id),
            GetRoomError::Unavailable(error) => Self::Unavailable(error),
        }
    }
}

/// Logs an operation of the log that cannot be read or applied, and names the gap it makes.
fn damaged(id: RoomId, revision: u64, reason: &str) -> HistoryGap {
    tracing::error!(room = %id, revision, reason, "the room's stored log is damaged at this revision; its history cannot be read past it");
    HistoryGap::Damaged { revision }
}

impl Rooms {
    /// A page of a room's committed operations: those with revisions after `from` and up to
    /// `to` (the room's current revision when `None`), oldest first, at most `limit` of them
    /// (at least one). A page ends early, before the first operation that is missing from the
    /// log or damaged; the page after it answers [`HistoryError::Gone`].
    ///
    /// Costs what [`Rooms::get`] costs (the current revision is the room's as it answers it),
    /// plus one read of at most `limit` operations.
    ///
    /// # Errors
    /// [`HistoryError::NotFound`] for an unknown room; [`HistoryError::InvalidRange`] for
    /// `from` past `to` or `to` past the current revision; [`HistoryError::Gone`] when the
    /// operation after `from` is missing or damaged; [`HistoryError::Unavailable`] when the
    /// store fails.
    pub async fn history(
        &self,
        id: RoomId,
        from: u64,
        to: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage, HistoryError> {
        let current = self.get(id).await?.revision();
        let to = to.unwrap_or(current);
        if from > to || to > current {
            return Err(HistoryError::InvalidRange { from, to, current });
        }
        if from == to {
            return Ok(HistoryPage {
                operations: Vec::new(),
                revision: current,
                next_from: None,
            });
        }
        let mut operations = match self
            .repository()
            .operations_between(id, from, to, limit.max(1), PAGE_BYTES)
            .await
        {
            Ok(operations) => operations,
            Err(RepositoryError::Unreadable {
                revision,
                reason,
                readable,
                ..
            }) => {
                if readable.is_empty() {
                    return Err(HistoryError::Gone {
                        from,
                        gap: damaged(id, revision, &reason),
                    });
                }
                // The page ends before the damage; the next one reports it.
                readable
            }
            Err(error) => return Err(HistoryError::Unavailable(error)),
        };
        // Only the unbroken run of revisions after `from`: a gap ends the page. `from < to`, so
        // `from + 1` cannot overflow.
        let run = operations
            .iter()
            .zip(from + 1..)
            .take_while(|(operation, expected)| operation.revision == *expected)
            .count();
        operations.truncate(run);
        let Some(last) = operations.last().map(|operation| operation.revision) else {
            return Err(HistoryError::Gone {
                from,
                gap: HistoryGap::Missing { revision: from + 1 },
            });
        };
        Ok(HistoryPage {
            operations,
            revision: current,
            next_from: (last < to).then_some(last),
        })
    }

    /// The room as it was at `revision`: its code then, rebuilt from its snapshot when that is
    /// at `revision` or before, else from its initial code, by replaying the log forward; its
    /// `updated_at` is when that revision was committed (its creation for revision 0). Its
    /// language is the room's current one: language changes are not in the log. The current
    /// revision answers what [`Rooms::get`] does.
    ///
    /// Costs what [`Rooms::get`] costs, plus reading and applying every operation between the
    /// text it starts from and `revision`, a thousand at a time: `revision` of them before the
    /// snapshot (from revision 0), or those after the snapshot.
    ///
    /// # Errors
    /// [`RoomAtError::NotFound`] for an unknown room; [`RoomAtError::RevisionNotFound`] for a
    /// revision past the current one; [`RoomAtError::Gone`] when the code cannot be rebuilt
    /// (the initial code is not known and the snapshot is past `revision`, or an operation on
    /// the way is missing or damaged); [`RoomAtError::Unavailable`] when the store fails.
    pub async fn at_revision(&self, id: RoomId, revision: u64) -> Result<Room, RoomAtError> {
        let current = self.get(id).await?;
        if revision > current.revision() {
            return Err(RoomAtError::RevisionNotFound {
                revision,
                current: current.revision(),
            });
        }
        if revision == current.revision() {
            return Ok(current);
        }
        let repository = self.repository();
        let snapshot = repository
            .find(id)
            .await
            .map_err(RoomAtError::Unavailable)?
            .ok_or(RoomAtError::NotFound(id))?;
        let gone = |gap| RoomAtError::Gone { revision, gap };
        let mut document = if snapshot.revision() <= revision {
            snapshot.document()
        } else {
            match repository
                .initial_code(id)
                .await
                .map_err(RoomAtError::Unavailable)?
            {
                Some(code) => Document::new(&code, 0),
                None => {
                    return Err(gone(HistoryGap::InitialCodeUnknown {
                        snapshot: snapshot.revision(),
                    }));
                }
            }
        };
        let mut updated_at = None;
        while document.revision() < revision {
            let page = match repository
                .operations_between(id, document.revision(), revision, REPLAY_PAGE, PAGE_BYTES)
                .await
            {
                Ok(page) => page,
                Err(RepositoryError::Unreadable {
                    revision: at,
                    reason,
                    ..
                }) => return Err(gone(damaged(id, at, &reason))),
                Err(error) => return Err(RoomAtError::Unavailable(error)),
            };
            if page.is_empty() {
                return Err(gone(HistoryGap::Missing {
                    revision: document.revision() + 1,
                }));
            }
            for committed in page {
                let expected = document.revision() + 1;
                if committed.revision != expected {
                    return Err(gone(HistoryGap::Missing { revision: expected }));
                }
                if let Err(error) = document.apply(&committed.operation) {
                    return Err(gone(damaged(id, expected, &error.to_string())));
                }
                updated_at = Some(committed.committed_at);
            }
        }
        let updated_at = match updated_at {
            Some(updated_at) => updated_at,
            None => self.committed_at(id, revision, &current, &snapshot).await?,
        };
        Ok(Room::restore(
            id,
            *current.language(),
            document.text(),
            revision,
            current.created_at(),
            updated_at,
        ))
    }

    /// When `revision` was committed (the room's creation for 0), for a revision rebuilt
    /// without replaying anything (the snapshot is at it). A log that no longer says gives
    /// the snapshot's time, which is that revision's or later.
    async fn committed_at(
        &self,
        id: RoomId,
        revision: u64,
        current: &Room,
        snapshot: &Room,
    ) -> Result<DateTime<Utc>, RoomAtError> {
        let Some(before) = revision.checked_sub(1) else {
            return Ok(current.created_at());
        };
        match self
            .repository()
            .operations_between(id, before, revision, 1, usize::MAX)
            .await
        {
            Ok(operations) => Ok(operations
                .first()
                .map_or(snapshot.updated_at(), |committed| committed.committed_at)),
            Err(RepositoryError::Unreadable { .. }) => Ok(snapshot.updated_at()),
            Err(error) => Err(RoomAtError::Unavailable(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use chrono::TimeDelta;
    use duet_domain::{ClientId, TextOperation};

    use super::*;
    use crate::ports::{Clock, MockRoomRepository, RoomRepository};
    use crate::testing::{FixedClock, InMemoryRoomRepository, op, room_holding};
    use crate::{LiveSettings, NewRoom};

    /// A clock one second further on each time it is read, so that every commit has its time.
    #[derive(Default)]
    struct Ticking(AtomicI64);

    impl Clock for Ticking {
        fn now(&self) -> DateTime<Utc> {
            let seconds = self.0.fetch_add(1, Ordering::SeqCst);
            FixedClock::default().now() + TimeDelta::seconds(seconds)
        }
    }

    /// The texts a room holds after each of `edits` (appended one commit each), from revision
    /// 0 on, with the room, its store and its use cases. Its snapshot is refreshed every 2
    /// operations.
    async fn edited(edits: &[&str]) -> (Rooms, Arc<InMemoryRoomRepository>, RoomId, Vec<String>) {
        edited_with(LiveSettings::default(), edits).await
    }

    /// [`edited`], with the room held to `settings` (but for its snapshots' frequency).
    async fn edited_with(
        settings: LiveSettings,
        edits: &[&str],
    ) -> (Rooms, Arc<InMemoryRoomRepository>, RoomId, Vec<String>) {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let settings = LiveSettings {
            snapshot_every: 2,
            ..settings
        };
        let rooms =
            Rooms::with_settings(repository.clone(), Arc::new(Ticking::default()), settings);
        let room = rooms
            .create(NewRoom {
                code: Some("start".into()),
                ..NewRoom::default()
            })
            .await
            .expect("created");
        let mut live = rooms.open(room.id()).await.expect("opens");
        let mut texts = vec!["start".to_owned()];
        for (seq, edit) in (1..).zip(edits) {
            let text = live.document().text();
            let operation = TextOperation::new()
                .retain(duet_domain::utf16_len(&text))
                .insert(edit);
            rooms
                .commit(&mut live, vec![op("alice", seq, seq - 1, operation)])
                .await
                .expect("committed");
            texts.push(live.document().text());
        }
        (rooms, repository, room.id(), texts)
    }

    fn revisions(page: &HistoryPage) -> Vec<u64> {
        page.operations
            .iter()
            .map(|operation| operation.revision)
            .collect()
    }

    #[tokio::test]
    async fn the_history_is_read_page_by_page_oldest_first() {
        let (rooms, _, id, _) = edited(&["a", "b", "c", "d", "e"]).await;
        let mut pages = Vec::new();
        let mut from = 0;
        loop {
            let page = rooms.history(id, from, None, 2).await.expect("read");
            assert_eq!(page.revision, 5);
            pages.push(revisions(&page));
            match page.next_from {
                Some(next) => from = next,
                None => break,
            }
        }
        assert_eq!(pages, [vec![1, 2], vec![3, 4], vec![5]]);
        let middle = rooms.history(id, 1, Some(3), 10).await.expect("read");
        assert_eq!((revisions(&middle), middle.next_from), (vec![2, 3], None));
        let page = rooms.history(id, 0, Some(4), 2).await.expect("read");
        assert_eq!((revisions(&page), page.next_from), (vec![1, 2], Some(2)));
        // The operations are the ones committed, with who sent them and when.
        let first = &page.operations[0];
        assert_eq!(first.client, ClientId::new("alice").expect("an id"));
        assert_eq!(first.operation, TextOperation::new().retain(5).insert("a"));
        // An empty range is an empty last page.
        for (from, to) in [(3, Some(3)), (5, None), (0, Some(0))] {
            let empty = rooms.history(id, from, to, 10).await.expect("read");
            assert_eq!((empty.operations.len(), empty.next_from), (0, None));
        }
    }

    #[tokio::test]
    async fn large_operations_make_shorter_pages_and_still_rebuild() {
        // Ten operations of a mebibyte each: a page holds what fits in PAGE_BYTES.
        let large: Vec<String> = (0..10u8)
            .map(|index| char::from(b'a' + index).to_string().repeat(1 << 20))
            .collect();
        let edits: Vec<&str> = large.iter().map(String::as_str).collect();
        let settings = LiveSettings {
            max_room_bytes: 16 << 20,
            ..LiveSettings::default()
        };
        let (rooms, _, id, texts) = edited_with(settings, &edits).await;
        assert_eq!(texts.len(), 11);
        let mut pages = Vec::new();
        let mut from = 0;
        loop {
            let page = rooms.history(id, from, None, 1000).await.expect("read");
            let bytes: usize = page
                .operations
                .iter()
                .map(|operation| crate::ports::stored_size(&operation.operation))
                .sum();
            assert!(page.operations.len() == 1 || bytes <= PAGE_BYTES, "{bytes}");
            pages.push(revisions(&page));
            match page.next_from {
                Some(next) => from = next,
                None => break,
            }
        }
        assert!(pages.len() > 1, "{pages:?}");
        assert_eq!(pages.concat(), (1..=10).collect::<Vec<u64>>());
        // A replay reads the log in pieces of the same size and rebuilds every revision.
        for revision in [0, 7, 9] {
            let room = rooms.at_revision(id, revision).await.expect("rebuilt");
            assert_eq!(
                room.code(),
                texts[usize::try_from(revision).expect("small")]
            );
        }
    }

    #[tokio::test]
    async fn a_range_outside_the_history_is_refused() {
        let (rooms, _, id, _) = edited(&["a", "b"]).await;
        for (from, to) in [(2, Some(1)), (0, Some(3)), (3, None), (u64::MAX, None)] {
            let refused = rooms.history(id, from, to, 10).await;
            assert!(
                matches!(refused, Err(HistoryError::InvalidRange { current: 2, .. })),
                "{from} {to:?}: {refused:?}"
            );
        }
        let unknown = RoomId::generate();
        assert!(matches!(
            rooms.history(unknown, 0, None, 10).await,
            Err(HistoryError::NotFound(id)) if id == unknown
        ));
    }

    #[tokio::test]
    async fn the_code_at_every_revision_is_rebuilt_across_snapshots() {
        let (rooms, repository, id, texts) = edited(&["a", "😀", "\n", "é", "z"]).await;
        let snapshot = repository.find(id).await.expect("read").expect("found");
        assert_eq!(snapshot.revision(), 4, "the snapshot moved on");
        let created = rooms.get(id).await.expect("found").created_at();
        let committed = rooms.history(id, 0, None, 10).await.expect("read");
        for (revision, text) in (0..).zip(&texts) {
            let room = rooms.at_revision(id, revision).await.expect("rebuilt");
            assert_eq!((room.code(), room.revision()), (text.as_str(), revision));
            let when = match revision.checked_sub(1) {
                None => created,
                Some(index) => {
                    committed.operations[usize::try_from(index).expect("small")].committed_at
                }
            };
            assert_eq!(room.updated_at(), when, "revision {revision}");
            assert_eq!(room.created_at(), created);
        }
        assert!(matches!(
            rooms.at_revision(id, 6).await,
            Err(RoomAtError::RevisionNotFound {
                revision: 6,
                current: 5
            })
        ));
        assert!(matches!(
            rooms.at_revision(RoomId::generate(), 0).await,
            Err(RoomAtError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn without_the_initial_code_only_revisions_from_the_snapshot_on_are_rebuilt() {
        let (rooms, repository, id, texts) = edited(&["a", "b", "c", "d", "e"]).await;
        repository.forget_initial_code(id);
        for revision in 0..4 {
            let gone = rooms.at_revision(id, revision).await;
            assert!(
                matches!(
                    gone,
                    Err(RoomAtError::Gone {
                        gap: HistoryGap::InitialCodeUnknown { snapshot: 4 },
                        ..
                    })
                ),
                "{revision}: {gone:?}"
            );
        }
        for revision in 4..=5 {
            let room = rooms.at_revision(id, revision).await.expect("rebuilt");
            assert_eq!(
                room.code(),
                texts[usize::try_from(revision).expect("small")]
            );
        }
        // The operations themselves are all there.
        let page = rooms.history(id, 0, None, 10).await.expect("read");
        assert_eq!(revisions(&page), [1, 2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_gap_in_the_log_ends_what_can_be_read() {
        let (rooms, repository, id, texts) = edited(&["a", "b", "c", "d", "e"]).await;
        // Operations 2 on moved away behind the snapshot's back (at 4): the room is at 4.
        repository.quarantine(id, 2, "a test").await.expect("moved");
        assert_eq!(rooms.get(id).await.expect("found").revision(), 4);
        assert_eq!(
            rooms.at_revision(id, 1).await.expect("rebuilt").code(),
            texts[1]
        );
        assert!(matches!(
            rooms.at_revision(id, 3).await,
            Err(RoomAtError::Gone {
                revision: 3,
                gap: HistoryGap::Missing { revision: 2 }
            })
        ));
        let page = rooms.history(id, 0, None, 10).await.expect("read");
        assert_eq!((revisions(&page), page.next_from), (vec![1], Some(1)));
        assert!(matches!(
            rooms.history(id, 1, None, 10).await,
            Err(HistoryError::Gone {
                from: 1,
                gap: HistoryGap::Missing { revision: 2 }
            })
        ));
    }

    #[tokio::test]
    async fn an_operation_that_does_not_apply_cannot_be_replayed() {
        let (rooms, repository, id, _) = edited(&["a", "b", "c", "d"]).await;
        repository.quarantine(id, 2, "a test").await.expect("moved");
        let mut forged = rooms
            .history(id, 0, None, 1)
            .await
            .expect("read")
            .operations[0]
            .clone();
        forged.operation = TextOperation::new().retain(100);
        forged.revision = 2;
        let mut after = forged.clone();
        after.revision = 3;
        repository.force_append(id, &[forged, after]);
        assert!(matches!(
            rooms.at_revision(id, 3).await,
            Err(RoomAtError::Gone {
                gap: HistoryGap::Damaged { revision: 2 },
                ..
            })
        ));
    }

    #[tokio::test]
    async fn an_unreadable_operation_ends_the_page_before_it() {
        let room = room_holding("");
        let id = room.id();
        // The room's snapshot is at revision 3, with nothing logged after it.
        let mut at_three = room.clone();
        at_three.advance(&Document::new("xyz", 3), room.created_at());
        let mut repository = MockRoomRepository::new();
        repository
            .expect_find()
            .returning(move |_| Ok(Some(at_three.clone())));
        repository
            .expect_operations_since()
            .returning(|_, _| Ok(Vec::new()));
        let first = CommittedOperation {
            revision: 1,
            client: ClientId::new("alice").expect("an id"),
            seq: 1,
            operation: TextOperation::new().insert("x"),
            committed_at: room.created_at(),
            submission_digest: None,
        };
        repository
            .expect_operations_between()
            .returning(move |room, after, _, _, _| {
                Err(RepositoryError::Unreadable {
                    room,
                    revision: 2,
                    reason: "damaged".into(),
                    readable: if after == 0 {
                        vec![first.clone()]
                    } else {
                        Vec::new()
                    },
                })
            });
        let rooms = Rooms::new(Arc::new(repository), Arc::new(FixedClock::default()));
        let page = rooms.history(id, 0, None, 10).await.expect("read");
        assert_eq!((revisions(&page), page.next_from), (vec![1], Some(1)));
        assert!(matches!(
            rooms.history(id, 1, None, 10).await,
            Err(HistoryError::Gone {
                from: 1,
                gap: HistoryGap::Damaged { revision: 2 }
            })
        ));
    }
}
