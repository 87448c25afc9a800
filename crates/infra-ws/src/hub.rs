//! Per-room hubs: the live rooms held in memory, their connected members, and the one order in
//! which each room's edits are committed and broadcast.
//!
//! A hub is loaded when the first member joins and unloaded when the last one leaves; everything
//! it holds is already committed, so unloading loses nothing. Each hub has one writer at a time:
//! an edit holds the room's lock while it is committed and then queued to every member, so every
//! member sees edits in the same order, and a member that joins sees the code as of a point in
//! that order followed by every later edit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::ws::Message;
use duet_app::{ApplyEditError, GetRoomError, Rooms};
use duet_domain::{Edit, Room, RoomId};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

/// The live rooms of this server.
pub struct Hubs {
    rooms: Rooms,
    send_queue: usize,
    live: Mutex<HashMap<RoomId, Arc<RoomHub>>>,
    next_member: AtomicU64,
}

struct RoomHub {
    id: RoomId,
    /// The room's single writer. `None` until the room is loaded.
    room: tokio::sync::Mutex<Option<Room>>,
    members: Mutex<Members>,
}

#[derive(Default)]
struct Members {
    by_id: HashMap<u64, Member>,
    /// Set once the hub has been unloaded; a late joiner then starts a new hub.
    unloaded: bool,
}

struct Member {
    outbox: mpsc::Sender<Message>,
    /// Dropped, and so fired, when the member is removed from the room.
    _kick: oneshot::Sender<()>,
}

/// What a member receives: the frames to send it, in order, and a signal that fires when the
/// room drops it for falling behind.
pub struct Inbox {
    pub frames: mpsc::Receiver<Message>,
    pub kicked: oneshot::Receiver<()>,
}

/// A connection's place in a room. Dropping it leaves the room.
pub struct Membership {
    hubs: Arc<Hubs>,
    hub: Arc<RoomHub>,
    id: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these short critical sections hold a lock, and each leaves its data
    // consistent at every step, so a poisoned lock still guards valid data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hubs {
    /// Hubs over the room use cases; each member may fall `send_queue` frames behind before the
    /// room drops it.
    #[must_use]
    pub fn new(rooms: Rooms, send_queue: usize) -> Self {
        Self {
            rooms,
            send_queue: send_queue.max(1),
            live: Mutex::default(),
            next_member: AtomicU64::new(1),
        }
    }

    fn hub(&self, id: RoomId) -> Arc<RoomHub> {
        lock(&self.live)
            .entry(id)
            .or_insert_with(|| {
                Arc::new(RoomHub {
                    id,
                    room: tokio::sync::Mutex::new(None),
                    members: Mutex::default(),
                })
            })
            .clone()
    }

    /// How many rooms are held in memory.
    #[must_use]
    pub fn live_rooms(&self) -> usize {
        lock(&self.live).len()
    }

    /// Joins a room, loading it when nobody else is in it. The inbox starts with the room's
    /// current code (unless it is empty) and then receives every later edit.
    ///
    /// # Errors
    /// [`GetRoomError`] when the room does not exist or cannot be loaded.
    pub async fn join(self: &Arc<Self>, id: RoomId) -> Result<(Membership, Inbox), GetRoomError> {
        loop {
            let hub = self.hub(id);
            let mut room = hub.room.lock().await;
            if lock(&hub.members).unloaded {
                continue;
            }
            let loaded = match room.as_ref() {
                Some(loaded) => loaded,
                None => match self.rooms.join(id).await {
                    Ok(loaded) => room.insert(loaded),
                    Err(error) => {
                        self.unload_if_empty(&hub, &mut lock(&hub.members));
                        return Err(error);
                    }
                },
            };
            let (outbox, frames) = mpsc::channel(self.send_queue);
            let (kick, kicked) = oneshot::channel();
            if !loaded.code().is_empty() {
                // The queue is new and holds at least one frame, so this cannot fail.
                let _ = outbox.try_send(Message::Text(loaded.code().into()));
            }
            let member = self.next_member.fetch_add(1, Ordering::Relaxed);
            lock(&hub.members).by_id.insert(
                member,
                Member {
                    outbox,
                    _kick: kick,
                },
            );
            drop(room);
            let membership = Membership {
                hubs: Arc::clone(self),
                hub,
                id: member,
            };
            return Ok((membership, Inbox { frames, kicked }));
        }
    }

    /// Commits an edit and queues the resulting code to every member, in the room's one order.
    async fn commit(&self, hub: &RoomHub, edit: Edit) -> Result<(), ApplyEditError> {
        let mut room = hub.room.lock().await;
        let Some(room) = room.as_mut() else {
            return Err(ApplyEditError::NotFound(hub.id));
        };
        self.rooms.apply_edit(room, edit).await?;
        // One copy of the frame, shared by every member's queue.
        hub.broadcast(&Message::Text(room.code().into()));
        Ok(())
    }

    fn unload_if_empty(&self, hub: &Arc<RoomHub>, members: &mut Members) {
        if !members.by_id.is_empty() || members.unloaded {
            return;
        }
        members.unloaded = true;
        let mut live = lock(&self.live);
        if live
            .get(&hub.id)
            .is_some_and(|current| Arc::ptr_eq(current, hub))
        {
            live.remove(&hub.id);
            tracing::debug!(room = %hub.id, "room unloaded");
        }
    }

    async fn unload_when_idle(&self, hub: Arc<RoomHub>) {
        // Waiting for the writer's lock lets an edit in flight finish before the room goes.
        let _room = hub.room.lock().await;
        self.unload_if_empty(&hub, &mut lock(&hub.members));
    }
}

impl RoomHub {
    fn broadcast(&self, frame: &Message) {
        lock(&self.members)
            .by_id
            .retain(|member, Member { outbox, .. }| match outbox.try_send(frame.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(room = %self.id, member, "dropping a client that fell behind");
                    false
                }
                Err(TrySendError::Closed(_)) => false,
            });
    }
}

impl Membership {
    /// The room this membership is in.
    #[must_use]
    pub fn room_id(&self) -> RoomId {
        self.hub.id
    }

    /// Replaces the room's code with a whole buffer, commits it and broadcasts it to every
    /// member, this one included.
    ///
    /// # Errors
    /// [`ApplyEditError`] when the edit is refused or cannot be committed; nothing is broadcast.
    pub async fn replace_code(&self, code: String) -> Result<(), ApplyEditError> {
        let hubs = Arc::clone(&self.hubs);
        let hub = Arc::clone(&self.hub);
        // The commit and its broadcast run in their own task, so a connection that goes away
        // mid-commit cannot leave an edit committed but not broadcast.
        let task = tokio::spawn(async move { hubs.commit(&hub, Edit::ReplaceAll(code)).await });
        match task.await {
            Ok(result) => result,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let now_empty = {
            let mut members = lock(&self.hub.members);
            members.by_id.remove(&self.id);
            members.by_id.is_empty()
        };
        if now_empty && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let hubs = Arc::clone(&self.hubs);
            let hub = Arc::clone(&self.hub);
            runtime.spawn(async move { hubs.unload_when_idle(hub).await });
        }
    }
}
