//! The live room's rules, driven through the registry as a transport would, over the in-memory
//! repository (and mockall mocks where the store must fail), with no sockets. The encoder
//! writes each shared message as a short label, so what a member receives reads plainly.

mod session;

use std::sync::Arc;
use std::time::Duration;

use duet_app::Rooms;
use duet_app::testing::{FixedClock, InMemoryRoomRepository};
use duet_app::{LiveSettings, NewRoom};
use duet_domain::{CommittedOperation, RoomId};
use duet_live::{
    Encoder, Event, Inbox, JoinRequest, MemberKind, Membership, Participant, Registry,
};

/// How long a test waits for an event before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Labels: `op r<revision> <client> <operation>`, `ack <seq> r<revision>`,
/// `presence <client> <anchor>..<head>`, and the code itself.
pub struct Labels;

impl Encoder for Labels {
    type Frame = String;

    fn operation(&self, committed: &CommittedOperation) -> String {
        format!(
            "op r{} {} {}",
            committed.revision, committed.client, committed.operation
        )
    }

    fn ack(&self, seq: u64, revision: u64) -> String {
        format!("ack {seq} r{revision}")
    }

    fn presence(&self, participant: &Participant) -> String {
        let selection = participant.selection.unwrap_or_default();
        format!(
            "presence {} {}..{}",
            participant.client, selection.anchor, selection.head
        )
    }

    fn code(&self, code: String) -> String {
        code
    }
}

/// A room and the registry it is live in.
pub struct Fixture {
    pub registry: Arc<Registry<Labels>>,
    pub room: RoomId,
}

impl Fixture {
    /// A room holding `code` over a fresh in-memory store.
    pub async fn new(code: &str) -> Self {
        Self::with(Arc::new(InMemoryRoomRepository::default()), code, 64).await
    }

    /// A room holding `code` over `repository`; members may fall `send_queue` events behind.
    pub async fn with(
        repository: Arc<InMemoryRoomRepository>,
        code: &str,
        send_queue: usize,
    ) -> Self {
        let rooms = Rooms::with_settings(
            repository,
            Arc::new(FixedClock::default()),
            LiveSettings::default(),
        );
        let room = rooms
            .create(NewRoom {
                language: None,
                code: Some(code.into()),
            })
            .await
            .expect("created")
            .id();
        Self::over(rooms, room, send_queue)
    }

    /// The registry over `rooms`, for a room that exists in their store.
    pub fn over(rooms: Rooms, room: RoomId, send_queue: usize) -> Self {
        Self {
            registry: Arc::new(Registry::new(rooms, Labels, send_queue)),
            room,
        }
    }

    pub async fn join(&self, kind: MemberKind) -> Member {
        self.join_as(kind, None, None, None).await
    }

    pub async fn join_as(
        &self,
        kind: MemberKind,
        client: Option<&str>,
        token: Option<&str>,
        since: Option<u64>,
    ) -> Member {
        self.join_with(JoinRequest {
            kind,
            client: client.map(|id| duet_domain::ClientId::new(id).expect("a valid id")),
            resume_token: token.map(str::to_owned),
            name: "tester".into(),
            since,
            ..JoinRequest::new(kind)
        })
        .await
    }

    pub async fn join_with(&self, request: JoinRequest) -> Member {
        let (membership, inbox) = self.registry.join(self.room, request).await.expect("joins");
        Member { membership, inbox }
    }

    /// The room's code and revision as the store has it.
    pub async fn stored(&self) -> (String, u64) {
        let room = self.registry.rooms().get(self.room).await.expect("found");
        (room.code().to_owned(), room.revision())
    }
}

/// A member, as its transport holds it.
pub struct Member {
    pub membership: Membership<String>,
    pub inbox: Inbox<String>,
}

impl Member {
    /// The next event, waiting for it.
    ///
    /// # Panics
    /// When none comes in time, or the room dropped the member.
    pub async fn next(&mut self) -> Event<String> {
        tokio::time::timeout(PATIENCE, self.inbox.events.recv())
            .await
            .expect("an event in time")
            .expect("the member is still in the room")
    }

    /// The next event, as the labels a transport would send for it (several for a commit).
    pub async fn next_labels(&mut self) -> Vec<String> {
        let member = self.membership.member();
        match self.next().await {
            Event::Committed(entries) => entries
                .iter()
                .filter_map(|entry| entry.read_by(member).cloned())
                .collect(),
            Event::Presence(batch) => batch.take(),
            Event::Code { code, .. } | Event::Reply(code) => vec![code],
            Event::Ack { seq, revision } => vec![format!("ack {seq} r{revision}")],
            other => vec![format!("{other:?}")],
        }
    }

    /// Labels until `count` have arrived.
    pub async fn labels(&mut self, count: usize) -> Vec<String> {
        let mut labels = Vec::new();
        while labels.len() < count {
            labels.extend(self.next_labels().await);
        }
        labels
    }

    /// Whether nothing is waiting in the member's queue now.
    pub fn nothing_queued(&mut self) -> bool {
        self.inbox.events.try_recv().is_err()
    }
}
