//! Plain mode exactly as the prototype's clients need it (docs/PROTOCOL.md, "Plain mode"):
//! with nothing concurrent the room becomes the frame, byte for byte; clients taking turns see
//! last-write-wins; naive clients typing at once lose and double nothing.

use std::sync::Arc;
use std::time::Duration;

use duet_tests::{Backend, Client, TestServer, on_both_databases};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{Mutex, Notify};
use tokio_tungstenite::tungstenite::Message;

async fn an_edited_line_replaces_the_line(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({})).await;
    let mut client = server.plain_client(&room).await;
    client.send_text("x = 1\n").await;
    assert_eq!(client.next_text().await, "x = 1\n");
    client.send_text("x = 2\n").await;
    assert_eq!(client.next_text().await, "x = 2\n");
    assert_eq!(server.room(&room).await["code"], "x = 2\n");
    let mut joiner = server.plain_client(&room).await;
    assert_eq!(joiner.next_text().await, "x = 2\n");
    server.stop().await;
}

async fn a_client_can_clear_its_buffer(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({})).await;
    let mut alice = server.plain_client(&room).await;
    let mut bob = server.plain_client(&room).await;
    for (writer, text) in [(0, "a\n"), (1, "a\nb\n"), (0, "a\nb\nc\n")] {
        let clients = [&mut alice, &mut bob];
        let [first, second] = clients;
        let (writer, other) = if writer == 0 {
            (first, second)
        } else {
            (second, first)
        };
        writer.send_text(text).await;
        assert_eq!(writer.next_text().await, text);
        assert_eq!(other.next_text().await, text);
    }
    bob.send_text("").await;
    assert_eq!(bob.next_text().await, "");
    assert_eq!(alice.next_text().await, "");
    assert_eq!(server.room(&room).await["code"], "");
    server.stop().await;
}

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap_or(0) % bound.max(1)
    }
}

async fn clients_taking_turns_see_last_write_wins(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server
        .create_room(json!({"code": "one\ntwo\nthree\n"}))
        .await;
    let mut clients: Vec<Client> = Vec::new();
    for _ in 0..3 {
        let mut client = server.plain_client(&room).await;
        assert_eq!(client.next_text().await, "one\ntwo\nthree\n");
        clients.push(client);
    }
    let mut random = Lcg(7);
    let mut text = "one\ntwo\nthree\n".to_owned();
    for turn in 0..30 {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        match random.below(5) {
            0 if !lines.is_empty() => {
                let at = random.below(lines.len());
                lines[at] = format!("edited {turn} 😀");
            }
            1 if !lines.is_empty() => {
                lines.remove(random.below(lines.len()));
            }
            2 => lines.insert(random.below(lines.len() + 1), format!("new {turn}")),
            3 if lines.len() > 1 => {
                let last = lines.len() - 1;
                lines.swap(0, last);
            }
            4 if !lines.is_empty() => {
                let copy = lines[random.below(lines.len())].clone();
                lines.push(copy);
            }
            _ => lines.clear(),
        }
        text = lines.iter().map(|line| format!("{line}\n")).collect();
        let writer = turn % clients.len();
        clients[writer].send_text(&text).await;
        for client in &mut clients {
            assert_eq!(client.next_text().await, text, "turn {turn}");
        }
        assert_eq!(
            server.room(&room).await["code"],
            text.as_str(),
            "turn {turn}"
        );
    }
    server.stop().await;
}

/// A naive client: its text is whatever it received last, or what it typed since.
struct Naive {
    text: Mutex<String>,
    changed: Notify,
}

async fn ten_naive_typists_lose_and_double_nothing(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let typists = 10;
    let keystrokes = 60;
    let start: String = (0..typists)
        .map(|typist| format!("line {typist}:\n"))
        .collect();
    let room = server.create_room(json!({ "code": start })).await;
    let mut clients = Vec::new();
    for _ in 0..typists {
        let mut client = server.plain_client(&room).await;
        assert_eq!(client.next_text().await, start);
        clients.push(client);
    }
    let mut tasks = Vec::new();
    let mut naives = Vec::new();
    for (typist, client) in clients.into_iter().enumerate() {
        let (mut sink, mut stream) = client.socket.split();
        let naive = Arc::new(Naive {
            text: Mutex::new(start.clone()),
            changed: Notify::new(),
        });
        naives.push(Arc::clone(&naive));
        let reader = Arc::clone(&naive);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame {
                    *reader.text.lock().await = text.as_str().to_owned();
                    reader.changed.notify_waiters();
                }
            }
        });
        tasks.push(tokio::spawn(async move {
            let mut random = Lcg(typist as u64 + 1);
            for keystroke in 0..keystrokes {
                let frame = {
                    let mut text = naive.text.lock().await;
                    // Typed at the end of its own line, on whatever text it has now.
                    let line = format!("line {typist}:");
                    let Some(at) = text.find(&line) else {
                        panic!("typist {typist} lost its line: {text}");
                    };
                    let end = text[at..].find('\n').map_or(text.len(), |end| at + end);
                    text.insert_str(end, &format!("[{typist}.{keystroke}]"));
                    text.clone()
                };
                sink.send(Message::text(frame)).await.expect("sent");
                // Human speed: a pause of 50 to 150 ms between keystrokes (a fast typist).
                let pause = 50 + random.below(101) as u64;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            sink
        }));
    }
    let mut sinks = Vec::new();
    for task in tasks {
        sinks.push(task.await.expect("the typist finishes"));
    }
    // Every client ends with the room's code: wait until each has received it.
    let code = tokio::time::timeout(duet_tests::PATIENCE, async {
        loop {
            let code = server.room(&room).await["code"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let mut settled = true;
            for naive in &naives {
                let changed = naive.changed.notified();
                if *naive.text.lock().await != code {
                    settled = false;
                    // The room may have moved on after it was read, with the client already
                    // holding the newer text: then read the room again soon.
                    let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
                    break;
                }
            }
            if settled {
                return code;
            }
        }
    })
    .await
    .expect("every client ends with the room's code");
    for typist in 0..typists {
        for keystroke in 0..keystrokes {
            let token = format!("[{typist}.{keystroke}]");
            assert_eq!(code.matches(&token).count(), 1, "{token} in {code}");
        }
    }
    drop(sinks);
    server.stop().await;
}

on_both_databases!(
    an_edited_line_replaces_the_line,
    a_client_can_clear_its_buffer,
    clients_taking_turns_see_last_write_wins,
    ten_naive_typists_lose_and_double_nothing,
);
