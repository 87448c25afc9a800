//! A `duet.v1` client for tests, keeping the ot.js client's rules: one operation in flight,
//! later local edits composed into a buffer, incoming operations transformed over both.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use duet_domain::TextOperation;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
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
    /// The last server revision this client has seen.
    pub revision: u64,
    /// The local text: the server's at `revision`, plus the outstanding and buffered edits.
    pub text: String,
    /// The operation sent and not yet acknowledged: its seq, base revision and operation as
    /// sent, and the operation transformed up to `revision`.
    pub outstanding: Option<(u64, u64, TextOperation, TextOperation)>,
    pub buffer: Option<TextOperation>,
    pub next_seq: u64,
    /// Every acknowledgement: seq → revision.
    pub acked: BTreeMap<u64, u64>,
    pub errors: Vec<Value>,
    /// How many edits the server refused as `unavailable`, resent or not.
    pub refused: usize,
    pub participants: Vec<Value>,
    pub closed: bool,
    pub welcomed: bool,
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

fn op_message(seq: u64, revision: u64, operation: &TextOperation) -> Message {
    Message::text(
        json!({"type": "op", "revision": revision, "seq": seq, "ops": operation}).to_string(),
    )
}

impl State {
    fn send_next(&mut self, outgoing: &mpsc::UnboundedSender<Message>) {
        if self.outstanding.is_some() {
            return;
        }
        if let Some(operation) = self.buffer.take() {
            self.next_seq += 1;
            let seq = self.next_seq;
            let _ = outgoing.send(op_message(seq, self.revision, &operation));
            self.outstanding = Some((seq, self.revision, operation.clone(), operation));
        }
    }

    fn acknowledge(&mut self, seq: u64, revision: u64) {
        if self
            .outstanding
            .as_ref()
            .is_some_and(|(sent, ..)| *sent == seq)
        {
            self.outstanding = None;
            self.revision = revision;
        }
        self.acked.insert(seq, revision);
    }

    fn apply_remote(&mut self, revision: u64, operation: &TextOperation) {
        let mut incoming = operation.clone();
        if let Some((seq, base, sent, mine)) = self.outstanding.take() {
            let (mine, theirs) = TextOperation::transform(&mine, &incoming).expect("same base");
            self.outstanding = Some((seq, base, sent, mine));
            incoming = theirs;
        }
        if let Some(buffer) = self.buffer.take() {
            let (buffer, theirs) = TextOperation::transform(&buffer, &incoming).expect("same base");
            self.buffer = Some(buffer);
            incoming = theirs;
        }
        self.text = incoming
            .apply(&self.text)
            .expect("a remote operation applies");
        self.revision = revision;
    }

    fn receive(&mut self, message: &Value, outgoing: &mpsc::UnboundedSender<Message>) {
        let number = |key: &str| message[key].as_u64().expect("a number");
        match message["type"].as_str() {
            Some("welcome") => {
                self.welcomed = true;
                self.client_id = message["clientId"].as_str().expect("an id").to_owned();
                self.resume_token = message["resumeToken"]
                    .as_str()
                    .expect("a resume token")
                    .to_owned();
                self.participants = message["participants"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(code) = message["code"].as_str() {
                    assert!(
                        self.outstanding.is_none() && self.buffer.is_none(),
                        "a resync lost edits"
                    );
                    self.text = code.to_owned();
                    self.revision = number("revision");
                } else {
                    for missed in message["ops"].as_array().expect("ops") {
                        let revision = missed["revision"].as_u64().expect("a revision");
                        if missed["clientId"] == self.client_id.as_str() {
                            if let Some((seq, ..)) = self.outstanding {
                                self.acknowledge(seq, revision);
                            }
                        } else {
                            let operation =
                                serde_json::from_value(missed["ops"].clone()).expect("ops");
                            self.apply_remote(revision, &operation);
                        }
                    }
                    // Resend what may not have arrived, with its sequence number and base.
                    if let Some((seq, base, sent, _)) = &self.outstanding {
                        let _ = outgoing.send(op_message(*seq, *base, sent));
                    }
                }
            }
            Some("ack") => self.acknowledge(number("seq"), number("revision")),
            Some("op") => {
                let operation = serde_json::from_value(message["ops"].clone()).expect("ops");
                self.apply_remote(number("revision"), &operation);
            }
            Some("error") => {
                if message["code"] == "unavailable" {
                    self.refused += 1;
                }
                self.errors.push(message.clone());
            }
            _ => {}
        }
        self.send_next(outgoing);
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
                state.client_id, state.resume_token, state.revision
            ));
        }
        let mut request = url.into_client_request().expect("a request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "duet.v1".parse().expect("a header"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket opens");
        assert_eq!(response.headers()["sec-websocket-protocol"], "duet.v1");
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
                        let message: Value = serde_json::from_str(text.as_str()).expect("JSON");
                        let messages = match message {
                            Value::Array(messages) => {
                                // Arrays only for a client that asked, and never of one.
                                if !batch || messages.len() < 2 {
                                    lock(&state)
                                        .errors
                                        .push(json!({"unexpected frame": text.as_str()}));
                                }
                                messages
                            }
                            single => vec![single],
                        };
                        for message in &messages {
                            lock(&state).receive(message, &outgoing);
                        }
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
        state.buffer = Some(match state.buffer.take() {
            Some(buffer) => buffer.compose(&operation).expect("composes"),
            None => operation,
        });
        state.send_next(&self.outgoing);
    }

    /// Sends the operation in flight again, with its sequence number and base, if the server
    /// refused it as `unavailable`; returns whether it did.
    pub fn resend_refused(&self) -> bool {
        let mut state = lock(&self.state);
        let Some((seq, base, sent, _)) = state.outstanding.clone() else {
            return false;
        };
        let before = state.errors.len();
        state
            .errors
            .retain(|error| !(error["code"] == "unavailable" && error["seq"] == seq));
        if state.errors.len() == before {
            return false;
        }
        let _ = self.outgoing.send(op_message(seq, base, &sent));
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
        self.wait_until(|state| state.outstanding.is_none() && state.buffer.is_none())
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
