//! Duet's live rooms: the collaboration engine between the use cases and any transport.
//!
//! A [`Registry`] keeps one session per room that has someone in it: a task that is the room's
//! single writer. Members join through the registry and get a [`Membership`] (what they send:
//! edits, selections, language changes) and an [`Inbox`] (what they receive: [`Event`]s, in
//! order). Every rule of a live room is here: loading and unloading, ordering and group
//! commit, acknowledging only what is stored, reading whole-buffer members' frames, replacing
//! a reconnecting client, moving selections across edits, the bad-message limit, dropping a
//! member that falls behind. The transport decides nothing; it turns events into frames and
//! codes (`duet-infra-ws`'s `wire` module) and encodes the messages many members share through
//! the [`Encoder`] port, once per commit.
//!
//! This crate runs on tokio (its queues, a task per room) and does no I/O of its own: the room
//! store is reached through `duet-app`'s ports, so sessions are tested over the in-memory
//! repository and mockall mocks, with no sockets.

mod event;
mod registry;
mod session;

pub use event::{
    CloseReason, CommitEntry, Encoder, Event, MemberId, MemberKind, Participant, PresenceBatch,
    Refusal, Start, Welcome,
};
pub use registry::{
    DEFAULT_MAX_MEMBERS, Edit, Inbox, JoinError, JoinRequest, Membership, Registry, Replies,
    RoomStopped, Snapshot, SnapshotError,
};
pub use session::{MAX_CONSECUTIVE_ERRORS, MAX_NAME};
