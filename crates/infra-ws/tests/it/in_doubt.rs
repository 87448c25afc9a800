//! A commit whose outcome the server cannot learn (the store lost its connection during the
//! COMMIT, and cannot be asked afterwards): the room closes every member with 1013 and loads
//! again from the store, so that nobody edits on a room that may be behind what is stored, and
//! a client that resumes finds its edit exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use duet_app::ports::{RecordedSubmission, RepositoryError, RoomRepository};
use duet_app::testing::InMemoryRoomRepository;
use duet_domain::{ClientId, CommittedOperation, Language, Room, RoomId, TextOperation};
use duet_protocol::ClientMessage;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::connections::{Server, limits};

/// The in-memory store, except that while `broken` an append is stored but reported failed,
/// and from then on the store cannot be asked about it.
#[derive(Default)]
struct LosesCommits {
    store: InMemoryRoomRepository,
    broken: AtomicBool,
    lost_one: AtomicBool,
}

fn lost() -> RepositoryError {
    RepositoryError::Unavailable("the connection was lost".into())
}

#[async_trait]
impl RoomRepository for LosesCommits {
    async fn insert(&self, room: &Room) -> Result<(), RepositoryError> {
        self.store.insert(room).await
    }
    async fn find(&self, id: RoomId) -> Result<Option<Room>, RepositoryError> {
        self.store.find(id).await
    }
    async fn save(&self, room: &Room) -> Result<(), RepositoryError> {
        self.store.save(room).await
    }
    async fn append(
        &self,
        room: RoomId,
        operations: &[CommittedOperation],
        snapshot: Option<Room>,
    ) -> Result<(), RepositoryError> {
        self.store.append(room, operations, snapshot).await?;
        if self.broken.load(Ordering::SeqCst) {
            self.lost_one.store(true, Ordering::SeqCst);
            return Err(RepositoryError::Indeterminate(
                "the connection was lost during COMMIT".into(),
            ));
        }
        Ok(())
    }
    async fn operations_since(
        &self,
        room: RoomId,
        revision: u64,
    ) -> Result<Vec<CommittedOperation>, RepositoryError> {
        self.store.operations_since(room, revision).await
    }
    async fn operations_between(
        &self,
        room: RoomId,
        after: u64,
        up_to: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<CommittedOperation>, RepositoryError> {
        self.store
            .operations_between(room, after, up_to, limit, max_bytes)
            .await
    }
    async fn initial_code(&self, room: RoomId) -> Result<Option<String>, RepositoryError> {
        self.store.initial_code(room).await
    }
    async fn find_operation(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<RecordedSubmission>, RepositoryError> {
        if self.broken.load(Ordering::SeqCst) && self.lost_one.load(Ordering::SeqCst) {
            return Err(lost());
        }
        self.store.find_operation(room, client, seq).await
    }
    async fn confirm_stored(
        &self,
        room: RoomId,
        client: &ClientId,
        seq: u64,
    ) -> Result<Option<u64>, RepositoryError> {
        if self.broken.load(Ordering::SeqCst) && self.lost_one.load(Ordering::SeqCst) {
            return Err(lost());
        }
        self.store.confirm_stored(room, client, seq).await
    }
    async fn latest_seq(
        &self,
        room: RoomId,
        client: &ClientId,
    ) -> Result<Option<u64>, RepositoryError> {
        self.store.latest_seq(room, client).await
    }
    async fn has_client(&self, room: RoomId, client: &ClientId) -> Result<bool, RepositoryError> {
        self.store.has_client(room, client).await
    }
    async fn quarantine(
        &self,
        room: RoomId,
        from: u64,
        reason: &str,
    ) -> Result<u64, RepositoryError> {
        self.store.quarantine(room, from, reason).await
    }

    async fn delete(&self, room: RoomId) -> Result<bool, RepositoryError> {
        self.store.delete(room).await
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn join(server: &Server, room: RoomId, query: &str) -> Socket {
    let mut request = format!("ws://{}/ws/{room}?{query}", server.address)
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "duet.v1".parse().expect("a header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("opens")
        .0
}

async fn next(socket: &mut Socket) -> Message {
    tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("valid")
}

async fn json_message(socket: &mut Socket) -> Value {
    match next(socket).await {
        Message::Text(text) => serde_json::from_str(text.as_str()).expect("JSON"),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test]
async fn a_commit_in_doubt_reloads_the_room_and_the_edit_is_found_once() {
    let repository = Arc::new(LosesCommits::default());
    let room = Room::new(
        RoomId::generate(),
        Language::default(),
        "ab".into(),
        chrono::Utc::now(),
    )
    .expect("valid");
    repository.insert(&room).await.expect("stored");
    let server = Server::with_repository(limits(), repository.clone()).await;

    let mut alice = join(&server, room.id(), "clientId=alice").await;
    let welcome = json_message(&mut alice).await;
    let token = welcome["resumeToken"].as_str().expect("a token").to_owned();
    repository.broken.store(true, Ordering::SeqCst);
    let exclaim = ClientMessage::Op {
        revision: 0,
        seq: 1,
        ops: TextOperation::new().retain(2).insert("!"),
        selection: None,
    };
    alice
        .send(Message::text(exclaim.encode()))
        .await
        .expect("sent");
    match next(&mut alice).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1013),
        other => panic!("expected the room to close the connection, got {other:?}"),
    }
    repository.broken.store(false, Ordering::SeqCst);

    // The room loads again from the store: alice resumes, finds her edit among the missed
    // operations (her acknowledgement), and resending it is acknowledged, not applied again.
    let mut again = join(
        &server,
        room.id(),
        &format!("clientId=alice&resumeToken={token}&since=0"),
    )
    .await;
    let welcome = json_message(&mut again).await;
    assert_eq!(welcome["clientId"], "alice");
    assert_eq!(
        welcome["ops"],
        json!([{"revision": 1, "clientId": "alice", "ops": [2, "!"]}])
    );
    again
        .send(Message::text(exclaim.encode()))
        .await
        .expect("sent");
    assert_eq!(
        json_message(&mut again).await,
        json!({"type": "ack", "seq": 1, "revision": 1})
    );
    let stored = repository
        .operations_since(room.id(), 0)
        .await
        .expect("readable");
    assert_eq!(stored.len(), 1);
    drop((alice, again));
    server.stop().await;
}
