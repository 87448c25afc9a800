//! In-memory fakes of the ports, for tests here and in other crates (feature `test-support`).
//! The mockall mocks (`MockRoomRepository`, `MockHealthCheck`, `MockClock`) live beside their
//! traits in [`crate::ports`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use duet_domain::{Room, RoomId};

use crate::ports::{Clock, HealthCheck, RepositoryError, RoomRepository};

/// A room store in a hash map. It behaves as the SQL store does, as the shared contract suite
/// checks.
#[derive(Debug, Default)]
pub struct InMemoryRoomRepository {
    rooms: Mutex<HashMap<RoomId, Room>>,
}

impl InMemoryRoomRepository {
    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomId, Room>> {
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
        rooms.insert(room.id(), room.clone());
        Ok(())
    }

    async fn find(&self, id: RoomId) -> Result<Option<Room>, RepositoryError> {
        Ok(self.rooms().get(&id).cloned())
    }

    async fn save(&self, room: &Room) -> Result<(), RepositoryError> {
        match self.rooms().get_mut(&room.id()) {
            Some(stored) => {
                *stored = room.clone();
                Ok(())
            }
            None => Err(RepositoryError::RoomNotFound(room.id())),
        }
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
    use duet_domain::{Edit, Language, Room, RoomId};

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
        room.apply(Edit::ReplaceAll(large), later).expect("valid");
        room.apply(Edit::ReplaceAll(format!("{}!", room.code())), later)
            .expect("valid");
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
        }
    };
}

#[cfg(test)]
mod tests {
    use super::InMemoryRoomRepository;

    async fn in_memory() -> Option<Box<InMemoryRoomRepository>> {
        Some(Box::default())
    }

    crate::room_repository_contract!(in_memory);
}
