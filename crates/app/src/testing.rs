//! In-memory fakes of the ports, for tests here and in other crates (feature `test-support`).
//! The mockall mocks (`MockRoomRepository`, `MockHealthCheck`, `MockClock`) live beside their
//! traits in [`crate::ports`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use duet_domain::{ClientId, CommittedOperation, Room, RoomId};

use crate::ports::{
    Clock, HealthCheck, KeyStore, RecordedSubmission, RepositoryError, RoomRepository,
};

/// A room store in a hash map. It behaves as the SQL store does, as the shared contract suite
/// checks.
#[derive(Debug, Default)]
pub struct InMemoryRoomRepository {
    rooms: Mutex<HashMap<RoomId, StoredRoom>>,
}

#[derive(Debug)]
struct StoredRoom {
    snapshot: Room,
    initial_code: Option<String>,
    operations: Vec<CommittedOperation>,
    quarantined: Vec<CommittedOperation>,
}

impl InMemoryRoomRepository {
    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomId, StoredRoom>> {
        // A panic while holding the lock cannot leave the map half-written, so a poisoned lock
        // still guards a consistent map.
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many rooms are stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rooms().len()
    }

    /// Whether no room is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rooms().is_empty()
    }
}

#[async_trait]
impl RoomRepository for InMemoryRoomRepository {
    async fn insert(&self, room: &Room) -> Result<(), RepositoryError> {
        let mut rooms = self.rooms();
        if rooms.contains_key(&room.id()) {
            return Err(RepositoryError::RoomExists(room.id()));
        }
        rooms.insert(
            room.id(),
            StoredRoom {
                snapshot: room.clone(),
                initial_code: (room.revision() == 0).then(|| room.code().to_owned()),
                operations: Vec::new(),
                quarantined: Vec::new(),
            },
        );
        Ok(())
    }

    async fn find(&self, id: RoomId) -> Result<Option<Room>, RepositoryError> {
        Ok(self.rooms().get(&id).map(|stored| stored.snapshot.clone()))
    }

    async fn save(&self, room: &Room) -> Result<(), RepositoryError> {
        match self.rooms().get_mut(&room.id()) {
            Some(stored) => {
                stored.snapshot = room.clone();
                Ok(())
            }
            None => Err(RepositoryError::RoomNotFound(room.id())),
        }
    }

    async fn append(
        &self,
        room: RoomId,
        operations: &[CommittedOperation],
        snapshot: Option<Room>,
    ) -> Result<(), RepositoryError> {
        let mut rooms = self.rooms();
        let stored = rooms
            .get_mut(&room)
            .ok_or(RepositoryError::RoomNotFound(room))?;
        for (index, operation) in operations.iter().enumerate() {
            // The numbers first: comparing every stored client id made long logs slow to
            // append to.
            let clashes = |other: &CommittedOperation| {
                other.revision == operation.revision
                    || (other.seq == operation.seq && other.client == operation.client)
            };
            if stored.operations.iter().any(clashes) || operations[..index].iter().any(clashes) {
                return Err(RepositoryError::OperationExists(room));
            }
        }
        stored.operations.extend_from_slice(operations);
        if let Some(snapshot) = snapshot {
            stored.snapshot = snapshot;
        }
        Ok(())
    }

    async fn operations_since(
        &self,
        room: RoomId,
        revision: u64,
    ) -> Result<Vec<CommittedOperation>, RepositoryError> {
        let rooms = self.rooms();
        let mut operations: Vec<CommittedOperation> = rooms
            .get(&room)
            .map(|stored| {
                stored
                    .operations
                    .iter()
                    .filter(|operation| operation.revision > revision)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        operations.sort_by_key(|operation| operation.revision);
        Ok(operations)
    }

    async fn operations_between(
        &self,
        room: RoomId,
        after: u64,
        up_to: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<CommittedOperation>, RepositoryError> {
        let mut operations = self.operations_since(room, after).await?;
        operations.retain(|operation| operation.revision <= up_to);
        operations.truncate(limit);
        let mut total = 0usize;
        let fit = operations
            .iter()
            .take_while(|operation| {
                total = total.saturating_add(crate::ports::stored_size(&operation.operation));
                total <= max_bytes
            })
            .count();
        operations.truncate(fit.max(1));
        Ok(operations)
    }

    async fn initial_code(&self, room: RoomId) -> Result<Option<String>, RepositoryError> {
        Ok(self
            .rooms()
            .get(&room)
            .and_then(|stored| stored.initial_code.clone()))
    }

    async fn find_operation(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<RecordedSubmission>, RepositoryError> {
        Ok(self.rooms().get(&room).and_then(|stored| {
            stored
                .operations
                .iter()
                .find(|operation| operation.client == *client && operation.seq == seq)
                .map(|operation| RecordedSubmission {
                    revision: operation.revision,
                    digest: operation.submission_digest,
                })
        }))
    }

    async fn confirm_stored(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<u64>, RepositoryError> {
        Ok(self
            .find_operation(room, client, seq)
            .await?
            .map(|recorded| recorded.revision))
    }

    async fn latest_seq(
        &self,
        room: RoomId,
        client: &ClientId,
    ) -> Result<Option<u64>, RepositoryError> {
        Ok(self.rooms().get(&room).and_then(|stored| {
            stored
                .operations
                .iter()
                .filter(|operation| operation.client == *client)
                .map(|operation| operation.seq)
                .max()
        }))
    }

    async fn has_client(&self, room: RoomId, client: &ClientId) -> Result<bool, RepositoryError> {
        Ok(self.rooms().get(&room).is_some_and(|stored| {
            stored
                .operations
                .iter()
                .any(|operation| operation.client == *client)
        }))
    }

    async fn quarantine(
        &self,
        room: RoomId,
        from: u64,
        _reason: &str,
    ) -> Result<u64, RepositoryError> {
        let mut rooms = self.rooms();
        let Some(stored) = rooms.get_mut(&room) else {
            return Ok(0);
        };
        let (moved, kept) = std::mem::take(&mut stored.operations)
            .into_iter()
            .partition(|operation| operation.revision >= from);
        stored.operations = kept;
        let moved: Vec<CommittedOperation> = moved;
        let count = u64::try_from(moved.len()).unwrap_or(u64::MAX);
        stored.quarantined.extend(moved);
        Ok(count)
    }

    async fn delete(&self, room: RoomId) -> Result<bool, RepositoryError> {
        Ok(self.rooms().remove(&room).is_some())
    }
}

impl InMemoryRoomRepository {
    /// Stores operations as they are, unchecked: for tests of what happens when a log holds
    /// something it should not.
    ///
    /// # Panics
    /// When the room does not exist.
    pub fn force_append(&self, room: RoomId, operations: &[CommittedOperation]) {
        self.rooms()
            .get_mut(&room)
            .expect("the room exists")
            .operations
            .extend_from_slice(operations);
    }

    /// Forgets a room's initial code, as the store of a room made before it was kept.
    ///
    /// # Panics
    /// When the room does not exist.
    pub fn forget_initial_code(&self, room: RoomId) {
        self.rooms()
            .get_mut(&room)
            .expect("the room exists")
            .initial_code = None;
    }

    /// How many of a room's operations were moved into quarantine.
    #[must_use]
    pub fn quarantined(&self, room: RoomId) -> usize {
        self.rooms()
            .get(&room)
            .map_or(0, |stored| stored.quarantined.len())
    }
}

#[async_trait]
impl KeyStore for InMemoryRoomRepository {
    async fn resume_key(&self) -> Result<[u8; 32], RepositoryError> {
        Ok([7; 32])
    }
}

#[async_trait]
impl HealthCheck for InMemoryRoomRepository {
    async fn check(&self) -> Result<(), RepositoryError> {
        Ok(())
    }
}

/// A clock stopped at one instant.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub DateTime<Utc>);

impl Default for FixedClock {
    /// 2024-01-01T00:00:00Z.
    fn default() -> Self {
        Self(DateTime::<Utc>::from_timestamp(1_704_067_200, 0).unwrap_or_default())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The contract every [`RoomRepository`] keeps, written once and run against each adapter with
/// [`room_repository_contract!`](crate::room_repository_contract).
pub mod contract {
    use chrono::TimeDelta;
    use duet_domain::{ClientId, CommittedOperation, Language, Room, RoomId, TextOperation};

    use super::FixedClock;
    use crate::ports::{Clock, RepositoryError, RoomRepository};

    fn room(code: &str) -> Room {
        Room::new(
            RoomId::generate(),
            Language::new("rust").expect("valid language"),
            code.to_owned(),
            FixedClock::default().now(),
        )
        .expect("valid code")
    }

    pub async fn an_inserted_room_is_found_unchanged(repository: &dyn RoomRepository) {
        let room = room("fn main() {\r\n\tprintln!(\"héllo 😀\");\r\n}\n");
        repository.insert(&room).await.expect("inserted");
        assert_eq!(repository.find(room.id()).await.expect("read"), Some(room));
    }

    pub async fn an_unknown_room_is_none(repository: &dyn RoomRepository) {
        assert_eq!(
            repository.find(RoomId::generate()).await.expect("read"),
            None
        );
    }

    pub async fn a_room_id_is_taken_once(repository: &dyn RoomRepository) {
        let room = room("first");
        repository.insert(&room).await.expect("inserted");
        let again = Room::restore(
            room.id(),
            Language::default(),
            "second".into(),
            0,
            room.created_at(),
            room.updated_at(),
        );
        assert!(matches!(
            repository.insert(&again).await,
            Err(RepositoryError::RoomExists(id)) if id == room.id()
        ));
        assert_eq!(repository.find(room.id()).await.expect("read"), Some(room));
    }

    pub async fn a_saved_room_replaces_the_stored_one(repository: &dyn RoomRepository) {
        let mut room = room("");
        let other = self::room("untouched");
        repository.insert(&room).await.expect("inserted");
        repository.insert(&other).await.expect("inserted");
        let later = room.created_at() + TimeDelta::milliseconds(1500);
        let large = "x = 'é😀'\n".repeat(20_000);
        let mut document = room.document();
        document
            .apply(&TextOperation::new().insert(&large))
            .expect("applies");
        document
            .apply(
                &TextOperation::new()
                    .retain(document.len_utf16())
                    .insert("!"),
            )
            .expect("applies");
        room.advance(&document, later);
        repository.save(&room).await.expect("saved");
        let stored = repository.find(room.id()).await.expect("read");
        assert_eq!(stored.as_ref().map(Room::revision), Some(2));
        assert_eq!(stored, Some(room));
        assert_eq!(
            repository.find(other.id()).await.expect("read"),
            Some(other)
        );
    }

    pub async fn saving_an_unknown_room_is_not_found(repository: &dyn RoomRepository) {
        let room = room("");
        assert!(matches!(
            repository.save(&room).await,
            Err(RepositoryError::RoomNotFound(id)) if id == room.id()
        ));
        assert_eq!(repository.find(room.id()).await.expect("read"), None);
    }

    fn operation(revision: u64, client: &str, seq: u64, text: &str) -> CommittedOperation {
        CommittedOperation {
            revision,
            client: ClientId::new(client).expect("valid client id"),
            seq,
            operation: TextOperation::new()
                .retain(usize::try_from(revision - 1).unwrap_or(0))
                .insert(text),
            committed_at: FixedClock::default().now() + TimeDelta::milliseconds(7),
            submission_digest: Some(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | (1 << 63)),
        }
    }

    pub async fn appended_operations_are_read_back_in_order(repository: &dyn RoomRepository) {
        let room = room("");
        repository.insert(&room).await.expect("inserted");
        let first = vec![operation(1, "alice", 1, "a"), operation(2, "bob", 1, "😀")];
        let second = vec![operation(3, "alice", 2, "\"é\"\n")];
        repository
            .append(room.id(), &first, None)
            .await
            .expect("appended");
        repository
            .append(room.id(), &second, None)
            .await
            .expect("appended");
        let all = repository
            .operations_since(room.id(), 0)
            .await
            .expect("read");
        assert_eq!(all, [first.clone(), second.clone()].concat());
        let later = repository
            .operations_since(room.id(), 2)
            .await
            .expect("read");
        assert_eq!(later, second);
        let alice = ClientId::new("alice").expect("valid");
        assert_eq!(
            repository
                .find_operation(room.id(), &alice, 2)
                .await
                .expect("read"),
            Some(crate::ports::RecordedSubmission {
                revision: 3,
                digest: second[0].submission_digest,
            })
        );
        assert!(
            repository
                .has_client(room.id(), &alice)
                .await
                .expect("read")
        );
        let carol = ClientId::new("carol").expect("valid");
        assert!(
            !repository
                .has_client(room.id(), &carol)
                .await
                .expect("read")
        );
        assert_eq!(
            repository
                .find_operation(room.id(), &alice, 3)
                .await
                .expect("read"),
            None
        );
        // Another room's log is separate.
        let other = self::room("");
        repository.insert(&other).await.expect("inserted");
        assert!(
            repository
                .operations_since(other.id(), 0)
                .await
                .expect("read")
                .is_empty()
        );
    }

    pub async fn a_page_of_the_log_is_read_between_two_revisions(repository: &dyn RoomRepository) {
        let room = room("");
        repository.insert(&room).await.expect("inserted");
        let operations: Vec<CommittedOperation> = (1..=5)
            .map(|revision| operation(revision, "alice", revision, "x"))
            .collect();
        repository
            .append(room.id(), &operations[..2], None)
            .await
            .expect("appended");
        repository
            .append(room.id(), &operations[2..], None)
            .await
            .expect("appended");
        let id = room.id();
        let page = |after: u64, up_to: u64, limit: usize| async move {
            repository
                .operations_between(id, after, up_to, limit, usize::MAX)
                .await
                .expect("read")
        };
        assert_eq!(page(0, 5, 100).await, operations);
        // `after` is left out, `up_to` is in, and `limit` cuts the page at its oldest end.
        assert_eq!(page(1, 4, 100).await, operations[1..4]);
        assert_eq!(page(0, 5, 2).await, operations[..2]);
        assert_eq!(page(2, 5, 1).await, operations[2..3]);
        assert_eq!(page(4, 5, 1).await, operations[4..]);
        // Empty ranges and pages.
        assert!(page(3, 3, 10).await.is_empty());
        assert!(page(4, 2, 10).await.is_empty());
        assert!(page(5, 9, 10).await.is_empty());
        assert!(page(0, 5, 0).await.is_empty());
        // Bounds past anything a store can hold.
        assert_eq!(page(3, u64::MAX, usize::MAX).await, operations[3..]);
        assert!(page(u64::MAX, u64::MAX, 10).await.is_empty());
        // Other rooms, and rooms that do not exist, have nothing in it.
        let other = self::room("");
        repository.insert(&other).await.expect("inserted");
        for id in [other.id(), RoomId::generate()] {
            assert!(
                repository
                    .operations_between(id, 0, 5, 10, usize::MAX)
                    .await
                    .expect("read")
                    .is_empty()
            );
        }
    }

    pub async fn a_page_of_the_log_is_held_to_a_size(repository: &dyn RoomRepository) {
        let room = room("");
        repository.insert(&room).await.expect("inserted");
        // Five operations of about 1,000 bytes each, whatever a store counts exactly.
        let big = "é".repeat(500);
        let operations: Vec<CommittedOperation> = (1..=5)
            .map(|revision| {
                let mut operation = operation(revision, "alice", revision, "");
                operation.operation = TextOperation::new()
                    .retain(usize::try_from(revision - 1).expect("small") * 500)
                    .insert(&big);
                operation
            })
            .collect();
        repository
            .append(room.id(), &operations, None)
            .await
            .expect("appended");
        let id = room.id();
        let page = |after: u64, limit: usize, max_bytes: usize| async move {
            repository
                .operations_between(id, after, 5, limit, max_bytes)
                .await
                .expect("read")
        };
        assert_eq!(page(0, 10, 2_500).await, operations[..2]);
        assert_eq!(page(2, 10, 3_500).await, operations[2..5]);
        // The count still holds, and the first operation comes whatever its size.
        assert_eq!(page(0, 1, 2_500).await, operations[..1]);
        assert_eq!(page(3, 10, 10).await, operations[3..4]);
        assert_eq!(page(0, 10, 0).await, operations[..1]);
        assert_eq!(page(0, 10, usize::MAX).await, operations);
        assert!(page(5, 10, 10).await.is_empty());
    }

    pub async fn the_initial_code_outlives_every_snapshot(repository: &dyn RoomRepository) {
        let code = "fn main() {\r\n\tprintln!(\"héllo 😀\");\r\n}\n";
        let room = room(code);
        repository.insert(&room).await.expect("inserted");
        let initial = |id: RoomId| async move { repository.initial_code(id).await.expect("read") };
        assert_eq!(initial(room.id()).await.as_deref(), Some(code));
        // Snapshots replace the code, never the initial code.
        let mut saved = room.clone();
        saved.advance(&duet_domain::Document::new("saved", 1), room.created_at());
        repository.save(&saved).await.expect("saved");
        let mut appended = room.clone();
        appended.advance(&duet_domain::Document::new("x", 2), room.created_at());
        repository
            .append(
                room.id(),
                &[operation(1, "alice", 1, "a"), operation(2, "alice", 2, "b")],
                Some(appended),
            )
            .await
            .expect("appended");
        assert_eq!(initial(room.id()).await.as_deref(), Some(code));
        // An empty room's initial code is empty, not unknown.
        let empty = self::room("");
        repository.insert(&empty).await.expect("inserted");
        assert_eq!(initial(empty.id()).await.as_deref(), Some(""));
        // A room stored at a later revision has none, and neither has a room that is not there.
        let later = Room::restore(
            RoomId::generate(),
            Language::default(),
            "later".into(),
            4,
            room.created_at(),
            room.updated_at(),
        );
        repository.insert(&later).await.expect("inserted");
        assert_eq!(initial(later.id()).await, None);
        assert_eq!(initial(RoomId::generate()).await, None);
        assert!(repository.delete(room.id()).await.expect("deleted"));
        assert_eq!(initial(room.id()).await, None);
    }

    pub async fn a_taken_revision_or_client_seq_stores_nothing(repository: &dyn RoomRepository) {
        let room = room("");
        repository.insert(&room).await.expect("inserted");
        repository
            .append(room.id(), &[operation(1, "alice", 1, "a")], None)
            .await
            .expect("appended");
        let mut snapshot = room.clone();
        snapshot.advance(&duet_domain::Document::new("zz", 9), room.created_at());
        // A taken revision, and a taken (client, seq) at a free revision.
        for clash in [operation(1, "bob", 1, "b"), operation(3, "alice", 1, "b")] {
            let batch = [operation(2, "carol", 1, "c"), clash];
            let result = repository
                .append(room.id(), &batch, Some(snapshot.clone()))
                .await;
            assert!(
                matches!(result, Err(RepositoryError::OperationExists(_))),
                "{result:?}"
            );
        }
        assert_eq!(
            repository
                .operations_since(room.id(), 0)
                .await
                .expect("read")
                .len(),
            1
        );
        assert_eq!(repository.find(room.id()).await.expect("read"), Some(room));
    }

    pub async fn a_snapshot_is_stored_with_its_operations(repository: &dyn RoomRepository) {
        let room = room("");
        repository.insert(&room).await.expect("inserted");
        let mut snapshot = room.clone();
        let mut document = room.document();
        let operations = vec![operation(1, "alice", 1, "a"), operation(2, "alice", 2, "b")];
        for committed in &operations {
            document.apply(&committed.operation).expect("applies");
        }
        snapshot.advance(&document, operations[1].committed_at);
        repository
            .append(room.id(), &operations, Some(snapshot))
            .await
            .expect("appended");
        let stored = repository
            .find(room.id())
            .await
            .expect("read")
            .expect("found");
        assert_eq!((stored.code(), stored.revision()), ("ab", 2));
        assert!(
            repository
                .operations_since(room.id(), 2)
                .await
                .expect("read")
                .is_empty()
        );
    }

    pub async fn quarantined_operations_leave_the_log(repository: &dyn RoomRepository) {
        let room = room("");
        repository.insert(&room).await.expect("inserted");
        let operations: Vec<CommittedOperation> = (1..=4)
            .map(|revision| operation(revision, "alice", revision, "x"))
            .collect();
        repository
            .append(room.id(), &operations, None)
            .await
            .expect("appended");
        assert_eq!(
            repository
                .quarantine(room.id(), 3, "unreadable")
                .await
                .expect("moved"),
            2
        );
        assert_eq!(
            repository
                .operations_since(room.id(), 0)
                .await
                .expect("read"),
            operations[..2]
        );
        // The revisions and sequence numbers moved out are free again.
        let next = operation(3, "alice", 3, "y");
        repository
            .append(room.id(), std::slice::from_ref(&next), None)
            .await
            .expect("appended");
        assert_eq!(
            repository
                .quarantine(room.id(), 9, "nothing there")
                .await
                .expect("moved"),
            0
        );
    }

    pub async fn a_deleted_room_is_gone_with_its_log(repository: &dyn RoomRepository) {
        let room = room("");
        let kept = self::room("kept");
        repository.insert(&room).await.expect("inserted");
        repository.insert(&kept).await.expect("inserted");
        let operations: Vec<CommittedOperation> = (1..=3)
            .map(|revision| operation(revision, "alice", revision, "x"))
            .collect();
        repository
            .append(room.id(), &operations, None)
            .await
            .expect("appended");
        repository
            .quarantine(room.id(), 3, "unreadable")
            .await
            .expect("moved");
        assert!(repository.delete(room.id()).await.expect("deleted"));
        assert_eq!(repository.find(room.id()).await.expect("read"), None);
        assert!(
            repository
                .operations_since(room.id(), 0)
                .await
                .expect("read")
                .is_empty()
        );
        assert!(
            !repository
                .has_client(room.id(), &ClientId::new("alice").expect("an id"))
                .await
                .expect("read")
        );
        assert!(!repository.delete(room.id()).await.expect("answered"));
        // Other rooms are untouched, and the id may be taken again.
        assert_eq!(repository.find(kept.id()).await.expect("read"), Some(kept));
        repository.insert(&room).await.expect("inserted again");
    }
}

/// Generates one test per clause of the [`RoomRepository`] contract. `$make` is an async
/// function returning something that dereferences to the repository under test (and keeps
/// whatever it needs alive, such as a temporary database).
#[macro_export]
macro_rules! room_repository_contract {
    ($make:path) => {
        mod room_repository_contract {
            use super::*;
            use $crate::testing::contract;

            #[tokio::test]
            async fn an_inserted_room_is_found_unchanged() {
                let Some(fixture) = $make().await else { return };
                contract::an_inserted_room_is_found_unchanged(&*fixture).await;
            }

            #[tokio::test]
            async fn an_unknown_room_is_none() {
                let Some(fixture) = $make().await else { return };
                contract::an_unknown_room_is_none(&*fixture).await;
            }

            #[tokio::test]
            async fn a_room_id_is_taken_once() {
                let Some(fixture) = $make().await else { return };
                contract::a_room_id_is_taken_once(&*fixture).await;
            }

            #[tokio::test]
            async fn a_saved_room_replaces_the_stored_one() {
                let Some(fixture) = $make().await else { return };
                contract::a_saved_room_replaces_the_stored_one(&*fixture).await;
            }

            #[tokio::test]
            async fn saving_an_unknown_room_is_not_found() {
                let Some(fixture) = $make().await else { return };
                contract::saving_an_unknown_room_is_not_found(&*fixture).await;
            }

            #[tokio::test]
            async fn appended_operations_are_read_back_in_order() {
                let Some(fixture) = $make().await else { return };
                contract::appended_operations_are_read_back_in_order(&*fixture).await;
            }

            #[tokio::test]
            async fn a_page_of_the_log_is_read_between_two_revisions() {
                let Some(fixture) = $make().await else { return };
                contract::a_page_of_the_log_is_read_between_two_revisions(&*fixture).await;
            }

            #[tokio::test]
            async fn a_page_of_the_log_is_held_to_a_size() {
                let Some(fixture) = $make().await else { return };
                contract::a_page_of_the_log_is_held_to_a_size(&*fixture).await;
            }

            #[tokio::test]
            async fn the_initial_code_outlives_every_snapshot() {
                let Some(fixture) = $make().await else { return };
                contract::the_initial_code_outlives_every_snapshot(&*fixture).await;
            }

            #[tokio::test]
            async fn a_taken_revision_or_client_seq_stores_nothing() {
                let Some(fixture) = $make().await else { return };
                contract::a_taken_revision_or_client_seq_stores_nothing(&*fixture).await;
            }

            #[tokio::test]
            async fn quarantined_operations_leave_the_log() {
                let Some(fixture) = $make().await else { return };
                contract::quarantined_operations_leave_the_log(&*fixture).await;
            }

            #[tokio::test]
            async fn a_deleted_room_is_gone_with_its_log() {
                let Some(fixture) = $make().await else { return };
                contract::a_deleted_room_is_gone_with_its_log(&*fixture).await;
            }

            #[tokio::test]
            async fn a_snapshot_is_stored_with_its_operations() {
                let Some(fixture) = $make().await else { return };
                contract::a_snapshot_is_stored_with_its_operations(&*fixture).await;
            }
        }
    };
}

/// A mock store that holds `room` with an empty log and answers every read a live room makes
/// of a store that knows nothing else (no earlier edit of any client, no known client id) and
/// every snapshot save with success; what a test wants to fail (appends, say) it expects on
/// top.
#[must_use]
pub fn mock_store_holding(room: &Room) -> crate::ports::MockRoomRepository {
    let mut repository = crate::ports::MockRoomRepository::new();
    let stored = room.clone();
    repository
        .expect_find()
        .returning(move |_| Ok(Some(stored.clone())));
    repository
        .expect_operations_since()
        .returning(|_, _| Ok(Vec::new()));
    repository
        .expect_find_operation()
        .returning(|_, _, _| Ok(None));
    repository.expect_latest_seq().returning(|_, _| Ok(None));
    repository.expect_has_client().returning(|_, _| Ok(false));
    repository.expect_save().returning(|_| Ok(()));
    repository
}

/// A valid room holding `code`, made now by the fixed clock.
///
/// # Panics
/// When `code` is not valid room code (it holds a NUL character).
#[must_use]
pub fn room_holding(code: &str) -> Room {
    Room::new(
        RoomId::generate(),
        duet_domain::Language::default(),
        code.into(),
        FixedClock::default().now(),
    )
    .expect("valid code")
}

/// A client id for tests.
///
/// # Panics
/// When `name` is not a valid client id.
#[must_use]
pub fn client(name: &str) -> ClientId {
    ClientId::new(name).expect("valid client id")
}

/// `name`'s edit number `seq`: `operation`, made on revision `base`.
#[must_use]
pub fn op(
    name: &str,
    seq: u64,
    base: u64,
    operation: duet_domain::TextOperation,
) -> crate::Submission {
    crate::Submission {
        client: client(name),
        seq,
        base,
        change: crate::Change::Operation(operation),
    }
}

#[cfg(test)]
mod tests {
    use super::InMemoryRoomRepository;

    async fn in_memory() -> Option<Box<InMemoryRoomRepository>> {
        Some(Box::default())
    }

    crate::room_repository_contract!(in_memory);
}
