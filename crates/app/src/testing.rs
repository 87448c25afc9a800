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
