//! A `duet.v1` client for tests: ot.js's client rules ([`duet_domain::Client`]) over a real
//! WebSocket, speaking through the protocol's types ([`duet_protocol`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use duet_domain::{Client, ClientError, Outgoing, TextOperation, utf16_len};
use duet_protocol::{ClientMessage, ErrorCode, Participant, ServerMessage, batch};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::PATIENCE;

/// What the client knows, shared between its reader and the test.
#[derive(Debug, Default, Clone)]
pub struct State {
    pub client_id: String,
    /// The welcome's proof of identity, passed back to resume.
    pub resume_token: String,
    /// The ot.js client: the last server revision seen, the operation in flight, the buffer.
    pub client: Client,
    /// The local text: the server's at the client's revision, plus the edits in flight and
    /// buffered.
    pub text: String,
    /// Every acknowledgement: seq → revision.
    pub acked: BTreeMap<u64, u64>,
    /// Everything the client did not expect, refusals included.
    pub errors: Vec<Problem>,
    /// How many edits the server refused as `unavailable`, resent or not.
    pub refused: usize,
    pub participants: Vec<Participant<'static>>,
    pub closed: bool,
    pub welcomed: bool,
}

/// Something a test client did not expect.
#[derive(Debug, Clone)]
pub enum Problem {
    /// An `error` message: the server refused something.
    Refused {
        code: ErrorCode,
        message: String,
        seq: Option<u64>,
    },
    /// A frame that is not `duet.v1`, or an array the client did not ask for (or of one).
    UnexpectedFrame(String),
    /// A message the client's rules refuse: an acknowledgement of another `seq`, a revision
    /// out of order, an operation that does not fit.
    Client(ClientError),
}

/// A connected client.
pub struct V1Client {
    pub state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    outgoing: mpsc::UnboundedSender<Message>,
    tasks: Vec<JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends `outgoing` as an `op` message, if there is one.
fn send(outgoing: &mpsc::UnboundedSender<Message>, operation: Option<Outgoing>) {
    if let Some(Outgoing {
        seq,
        revision,
        operation,
    }) = operation
    {
        let message = ClientMessage::Op {
            revision,
            seq,
            ops: operation,
            selection: None,
        };
        let _ = outgoing.send(Message::text(message.encode()));
    }
}

impl State {
    /// Applies someone else's operation, as the client's rules move it, to the local text.
    fn apply_remote(&mut self, revision: u64, operation: &TextOperation) {
        match self.client.apply_remote(revision, operation) {
            Ok(local) => self.apply_local_text(&local),
            Err(error) => self.errors.push(Problem::Client(error)),
        }
    }

    /// Applies an operation the client's rules returned to the local text.
    fn apply_local_text(&mut self, local: &TextOperation) {
        match local.apply(&self.text) {
            Ok(text) => self.text = text,
            Err(error) => self.errors.push(Problem::Client(error.into())),
        }
    }

    fn receive(
        &mut self,
        message: ServerMessage<'static>,
        outgoing: &mpsc::UnboundedSender<Message>,
    ) {
        match message {
            ServerMessage::Welcome {
                client_id,
                resume_token,
                revision,
                code,
                ops,
                participants,
                ..
            } => {
                self.welcomed = true;
                self.client_id = client_id.into_owned();
                self.resume_token = resume_token.into_owned();
                self.participants = participants;
                if let Some(code) = code {
                    assert!(
                        !self.client.resynchronize(revision, utf16_len(&code)),
                        "a resync lost edits"
                    );
                    self.text = code.into_owned();
                } else {
                    // Own operations acknowledge the one in flight, the others apply.
                    for missed in ops.unwrap_or_default() {
                        let own = missed.client_id == self.client_id;
                        let in_flight = self.client.in_flight().map(|sent| sent.seq);
                        match self.client.catch_up(missed.revision, own, &missed.ops) {
                            Ok(Some(local)) => self.apply_local_text(&local),
                            Ok(None) => {
                                if let Some(seq) = in_flight {
                                    self.acked.insert(seq, missed.revision);
                                }
                            }
                            Err(error) => self.errors.push(Problem::Client(error)),
                        }
                    }
                    // Resend what may not have arrived, with its sequence number and base.
                    send(outgoing, self.client.resend());
                }
            }
            ServerMessage::Ack { seq, revision } => match self.client.acknowledge(seq, revision) {
                Ok(next) => {
                    self.acked.insert(seq, revision);
                    send(outgoing, next);
                }
                Err(error) => self.errors.push(Problem::Client(error)),
            },
            ServerMessage::Op(committed) => self.apply_remote(committed.revision, &committed.ops),
            ServerMessage::Error {
                code, message, seq, ..
            } => {
                if code == ErrorCode::Unavailable {
                    self.refused += 1;
                }
                self.errors.push(Problem::Refused {
                    code,
                    message: message.into_owned(),
                    seq,
                });
            }
            _ => {}
        }
    }
}

impl V1Client {
    /// Connects to `room`, optionally as `client_id` resuming from `state`.
    pub async fn connect(ws_url: &str, room: &str, resume: Option<State>) -> Self {
        Self::connect_with(ws_url, room, resume, false).await
    }

    /// Connects like [`Self::connect`]; with `batch`, asks for batched frames and reads the
    /// messages of each array in order.
    pub async fn connect_with(
        ws_url: &str,
        room: &str,
        resume: Option<State>,
        batch: bool,
    ) -> Self {
        let mut url = format!("{ws_url}/ws/{room}?name=tester");
        if batch {
            url.push_str("&batch=1");
        }
        if let Some(state) = &resume {
            url.push_str(&format!(
                "&clientId={}&resumeToken={}&since={}",
                state.client_id,
                state.resume_token,
                state.client.revision()
            ));
        }
        let mut request = url.into_client_request().expect("a request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            duet_protocol::SUBPROTOCOL.parse().expect("a header"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            duet_protocol::SUBPROTOCOL
        );
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();
        let mut state = resume.unwrap_or_default();
        state.welcomed = false;
        state.closed = false;
        let state = Arc::new(Mutex::new(state));
        let changed = Arc::new(Notify::new());
        let writer = tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let reader = {
            let state = Arc::clone(&state);
            let changed = Arc::clone(&changed);
            let outgoing = outgoing.clone();
            tokio::spawn(async move {
                while let Some(Ok(frame)) = stream.next().await {
                    if let Message::Text(text) = frame {
                        let text = text.as_str();
                        let mut state = lock(&state);
                        match batch::read_frame(text) {
                            Ok(messages) => {
                                // Arrays only for a client that asked, and never of one.
                                if text.trim_start().starts_with('[')
                                    && (!batch || messages.len() < 2)
                                {
                                    state.errors.push(Problem::UnexpectedFrame(text.to_owned()));
                                }
                                for message in messages {
                                    state.receive(message, &outgoing);
                                }
                            }
                            Err(_) => state.errors.push(Problem::UnexpectedFrame(text.to_owned())),
                        }
                        drop(state);
                        changed.notify_waiters();
                    }
                }
                lock(&state).closed = true;
                changed.notify_waiters();
            })
        };
        let client = Self {
            state,
            changed,
            outgoing,
            tasks: vec![writer, reader],
        };
        client.wait_until(|state| state.welcomed).await;
        client
    }

    /// A copy of what the client knows.
    pub fn snapshot(&self) -> State {
        lock(&self.state).clone()
    }

    /// Makes a local edit (built from the current text) and sends it when it may.
    pub fn edit(&self, make: impl FnOnce(&str) -> TextOperation) {
        let mut state = lock(&self.state);
        let operation = make(&state.text);
        state.text = operation.apply(&state.text).expect("a local edit applies");
        let next = state
            .client
            .apply_local(operation)
            .expect("a local edit fits the client");
        send(&self.outgoing, next);
    }

    /// Sends the operation in flight again, with its sequence number and base, if the server
    /// refused it as `unavailable`; returns whether it did.
    pub fn resend_refused(&self) -> bool {
        let mut state = lock(&self.state);
        let Some(in_flight) = state.client.resend() else {
            return false;
        };
        let before = state.errors.len();
        state.errors.retain(|error| {
            !matches!(error, Problem::Refused { code: ErrorCode::Unavailable, seq: Some(seq), .. }
                if *seq == in_flight.seq)
        });
        if state.errors.len() == before {
            return false;
        }
        send(&self.outgoing, Some(in_flight));
        true
    }

    /// Sends a raw text frame.
    pub fn send_raw(&self, text: &str) {
        let _ = self.outgoing.send(Message::text(text));
    }

    /// Waits, at most [`PATIENCE`], until `condition` holds.
    ///
    /// # Panics
    /// When it does not hold in time.
    pub async fn wait_until(&self, condition: impl Fn(&State) -> bool) {
        let waited = tokio::time::timeout(PATIENCE, async {
            loop {
                let notified = self.changed.notified();
                if condition(&lock(&self.state)) {
                    return;
                }
                notified.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "timed out; state: {:?}", self.snapshot());
    }

    /// Waits until nothing is in flight or buffered.
    pub async fn settle(&self) {
        self.wait_until(|state| state.client.is_synchronized())
            .await;
    }

    /// Drops the connection without a goodbye and returns what the client knew.
    pub fn disconnect(self) -> State {
        for task in &self.tasks {
            task.abort();
        }
        self.snapshot()
    }
}
