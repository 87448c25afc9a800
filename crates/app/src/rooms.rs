//! Room use cases: create, read, join, edit.

use std::sync::Arc;

use duet_domain::{CodeError, Edit, Language, LanguageError, Room, RoomId};

use crate::ports::{Clock, RepositoryError, RoomRepository};

/// What a client may say about a room it creates; everything is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewRoom {
    pub language: Option<String>,
    pub code: Option<String>,
}

/// Why a room could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateRoomError {
    #[error(transparent)]
    InvalidLanguage(#[from] LanguageError),
    #[error(transparent)]
    InvalidCode(#[from] CodeError),
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
}

/// Why a room could not be read or joined.
#[derive(Debug, thiserror::Error)]
pub enum GetRoomError {
    #[error("room {0} does not exist")]
    NotFound(RoomId),
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
}

/// Why an edit was not applied. The room is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum ApplyEditError {
    #[error(transparent)]
    InvalidCode(#[from] CodeError),
    #[error("room {0} does not exist")]
    NotFound(RoomId),
    #[error("the room store is unavailable")]
    Unavailable(#[source] RepositoryError),
}

/// The room use cases, over a room store and a clock.
#[derive(Clone)]
pub struct Rooms {
    repository: Arc<dyn RoomRepository>,
    clock: Arc<dyn Clock>,
}

impl Rooms {
    #[must_use]
    pub fn new(repository: Arc<dyn RoomRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { repository, clock }
    }

    /// Creates a room with a fresh id, in the given language (Python when none is given) and
    /// with the given code (empty when none is given).
    ///
    /// # Errors
    /// [`CreateRoomError::InvalidLanguage`] for a language that cannot be a name;
    /// [`CreateRoomError::InvalidCode`] for code a room cannot hold;
    /// [`CreateRoomError::Unavailable`] when the store fails.
    pub async fn create(&self, request: NewRoom) -> Result<Room, CreateRoomError> {
        let language = match request.language.as_deref() {
            Some(name) => Language::new(name)?,
            None => Language::default(),
        };
        let room = Room::new(
            RoomId::generate(),
            language,
            request.code.unwrap_or_default(),
            self.clock.now(),
        )?;
        self.repository
            .insert(&room)
            .await
            .map_err(CreateRoomError::Unavailable)?;
        Ok(room)
    }

    /// The room with this id, as stored.
    ///
    /// # Errors
    /// [`GetRoomError::NotFound`] for an unknown id; [`GetRoomError::Unavailable`] when the
    /// store fails.
    pub async fn get(&self, id: RoomId) -> Result<Room, GetRoomError> {
        match self.repository.find(id).await {
            Ok(Some(room)) => Ok(room),
            Ok(None) => Err(GetRoomError::NotFound(id)),
            Err(error) => Err(GetRoomError::Unavailable(error)),
        }
    }

    /// Loads a room for a client that joins it, so that its live state can be held in memory.
    ///
    /// # Errors
    /// As [`Rooms::get`].
    pub async fn join(&self, id: RoomId) -> Result<Room, GetRoomError> {
        let room = self.get(id).await?;
        tracing::debug!(room = %id, revision = room.revision(), "room loaded for joining");
        Ok(room)
    }

    /// Applies an edit to the live room and makes it durable. On success `room` holds the new
    /// state, which the store has committed; on failure `room` is unchanged.
    ///
    /// # Errors
    /// [`ApplyEditError::InvalidCode`] when the edit leaves code a room cannot hold;
    /// [`ApplyEditError::NotFound`] when the room has been deleted from the store;
    /// [`ApplyEditError::Unavailable`] when the store fails.
    pub async fn apply_edit(&self, room: &mut Room, edit: Edit) -> Result<(), ApplyEditError> {
        let mut next = room.clone();
        next.apply(edit, self.clock.now())?;
        match self.repository.save(&next).await {
            Ok(()) => {
                *room = next;
                Ok(())
            }
            Err(RepositoryError::RoomNotFound(id)) => Err(ApplyEditError::NotFound(id)),
            Err(error) => Err(ApplyEditError::Unavailable(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockRoomRepository;
    use crate::testing::{FixedClock, InMemoryRoomRepository};

    fn rooms_over(repository: Arc<InMemoryRoomRepository>) -> Rooms {
        Rooms::new(repository, Arc::new(FixedClock::default()))
    }

    #[tokio::test]
    async fn a_created_room_can_be_read_back() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone());
        let created = rooms
            .create(NewRoom {
                language: Some("Rust".into()),
                code: Some("fn main() {}".into()),
            })
            .await
            .expect("created");
        let read = rooms.get(created.id()).await.expect("found");
        assert_eq!(read, created);
        assert_eq!(read.language().as_str(), "rust");
        assert_eq!(read.code(), "fn main() {}");
        assert_eq!(read.revision(), 0);
    }

    #[tokio::test]
    async fn a_room_without_details_holds_empty_python() {
        let rooms = rooms_over(Arc::default());
        let room = rooms.create(NewRoom::default()).await.expect("created");
        assert_eq!(room.language().as_str(), "python");
        assert_eq!(room.code(), "");
    }

    #[tokio::test]
    async fn an_invalid_language_creates_nothing() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone());
        let result = rooms
            .create(NewRoom {
                language: Some("not a language".into()),
                code: None,
            })
            .await;
        assert!(matches!(result, Err(CreateRoomError::InvalidLanguage(_))));
        assert_eq!(repository.len(), 0);
    }

    #[tokio::test]
    async fn an_unknown_room_is_not_found() {
        let rooms = rooms_over(Arc::default());
        let id = RoomId::generate();
        assert!(matches!(rooms.get(id).await, Err(GetRoomError::NotFound(found)) if found == id));
        assert!(matches!(
            rooms.join(id).await,
            Err(GetRoomError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn edits_are_committed_in_order() {
        let repository = Arc::new(InMemoryRoomRepository::default());
        let rooms = rooms_over(repository.clone());
        let mut room = rooms.create(NewRoom::default()).await.expect("created");
        for code in ["a", "ab", "abc"] {
            rooms
                .apply_edit(&mut room, Edit::ReplaceAll(code.into()))
                .await
                .expect("applied");
        }
        assert_eq!(room.revision(), 3);
        assert_eq!(rooms.get(room.id()).await.expect("found"), room);
    }

    #[tokio::test]
    async fn a_failed_commit_leaves_the_live_room_unchanged() {
        let mut repository = MockRoomRepository::new();
        repository
            .expect_save()
            .times(1)
            .returning(|_| Err(RepositoryError::Unavailable("disk full".into())));
        let rooms = Rooms::new(Arc::new(repository), Arc::new(FixedClock::default()));
        let mut room = duet_domain::Room::new(
            RoomId::generate(),
            Language::default(),
            "before".into(),
            FixedClock::default().now(),
        )
        .expect("valid code");
        let before = room.clone();
        let result = rooms
            .apply_edit(&mut room, Edit::ReplaceAll("after".into()))
            .await;
        assert!(matches!(result, Err(ApplyEditError::Unavailable(_))));
        assert_eq!(room, before);
    }

    #[tokio::test]
    async fn an_edit_to_a_deleted_room_is_not_found() {
        let rooms = rooms_over(Arc::default());
        let mut room = duet_domain::Room::new(
            RoomId::generate(),
            Language::default(),
            String::new(),
            FixedClock::default().now(),
        )
        .expect("valid code");
        let result = rooms
            .apply_edit(&mut room, Edit::ReplaceAll("x".into()))
            .await;
        assert!(matches!(result, Err(ApplyEditError::NotFound(_))));
        assert_eq!(room.revision(), 0);
    }

    #[tokio::test]
    async fn a_failing_store_is_reported_as_unavailable() {
        let mut repository = MockRoomRepository::new();
        repository
            .expect_find()
            .returning(|_| Err(RepositoryError::Unavailable("connection refused".into())));
        repository
            .expect_insert()
            .returning(|_| Err(RepositoryError::Unavailable("connection refused".into())));
        let rooms = Rooms::new(Arc::new(repository), Arc::new(FixedClock::default()));
        assert!(matches!(
            rooms.get(RoomId::generate()).await,
            Err(GetRoomError::Unavailable(_))
        ));
        assert!(matches!(
            rooms.create(NewRoom::default()).await,
            Err(CreateRoomError::Unavailable(_))
        ));
    }
}
