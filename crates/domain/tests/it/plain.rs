//! Plain clients' whole-buffer frames merged by `PlainMember`, against a simulated server: a
//! `Document`, the committed history with inverses, and one `PlainMember` per connection.
//! After every commit the server sends the whole room to every plain connection, each buffer
//! behind a ping that names its revision; a client answers it as it takes the buffer, and its
//! frames carry the newest revision it answered (the hub learns it from the pongs).

use std::collections::VecDeque;

use duet_domain::{Answered, Document, PlainMember, Step, TextOperation};
use proptest::prelude::*;

/// The server side of a room with plain connections only.
struct Server {
    document: Document,
    /// `history[i]` turns revision `i` into `i + 1`: (operation, inverse, author).
    history: Vec<(TextOperation, TextOperation, usize)>,
    members: Vec<PlainMember>,
}

impl Server {
    fn new(text: &str, connections: usize) -> Self {
        Self {
            document: Document::new(text, 0),
            history: Vec::new(),
            members: (0..connections).map(|_| PlainMember::joined(0)).collect(),
        }
    }

    fn text(&self) -> String {
        self.document.text()
    }

    /// Merges a frame from a client that had answered the ping of buffer `answered`; returns
    /// the room's revision and text when something was committed (then sent to every
    /// connection).
    fn receive(
        &mut self,
        connection: usize,
        frame: &str,
        answered: Answered,
    ) -> Option<(u64, String)> {
        self.commit(connection, frame, answered)
            .then(|| self.send_to_everyone())
    }

    /// Merges several frames in one batch, as the hub's group commit does; returns what is
    /// then sent, once, to every connection.
    fn receive_batch(&mut self, frames: &[(usize, String, Answered)]) -> Option<(u64, String)> {
        let mut committed = false;
        for (connection, frame, answered) in frames {
            committed |= self.commit(*connection, frame, *answered);
        }
        committed.then(|| self.send_to_everyone())
    }

    fn send_to_everyone(&mut self) -> (u64, String) {
        let revision = self.document.revision();
        for member in &mut self.members {
            member.sent(revision);
        }
        (revision, self.text())
    }

    /// Merges and applies a frame; whether anything was committed.
    fn commit(&mut self, connection: usize, frame: &str, answered: Answered) -> bool {
        let revision = self.document.revision();
        let member = &self.members[connection];
        let oldest = member.oldest_revision().unwrap_or(revision);
        let steps: Vec<Step<'_>> = self.history[usize::try_from(oldest).unwrap_or(0)..]
            .iter()
            .map(|(operation, inverse, author)| Step {
                operation,
                inverse,
                own: *author == connection,
            })
            .collect();
        let edit = member
            .merge(&self.document, &steps, frame, answered)
            .unwrap_or_else(|error| panic!("merge failed: {error}"));

        if edit.operation.is_noop() {
            self.members[connection].applied(edit, revision);
            return false;
        }
        let inverse = edit
            .operation
            .invert(&self.document.text())
            .unwrap_or_else(|error| panic!("{error}"));
        self.document
            .apply(&edit.operation)
            .unwrap_or_else(|error| panic!("{error}"));
        self.history
            .push((edit.operation.clone(), inverse, connection));
        self.members[connection].applied(edit, revision + 1);
        true
    }

    /// Merges a frame from a client that has received every buffer sent.
    fn receive_in_turn(&mut self, connection: usize, frame: &str) {
        let revision = self.document.revision();
        let answered = Answered {
            newest: Some(revision),
            previous: revision.checked_sub(1),
        };
        self.receive(connection, frame, answered);
    }
}

/// What a client that answered the ping of buffer `revision` (and no other since its previous
/// frame) reports.
fn newest(revision: u64) -> Answered {
    Answered {
        newest: Some(revision),
        previous: None,
    }
}

/// Clients that take turns: each frame is merged and its echo received by everyone before the
/// next frame. Checks that the room is each frame exactly.
fn check_turns(start: &str, turns: &[(usize, &str)]) {
    let clients = turns
        .iter()
        .map(|(client, _)| client + 1)
        .max()
        .unwrap_or(1);
    let mut server = Server::new(start, clients);
    for (client, frame) in turns {
        server.receive_in_turn(*client, frame);
        assert_eq!(
            server.text(),
            *frame,
            "after client {client} sent {frame:?}"
        );
    }
}

#[test]
fn the_same_line_edited_twice_is_last_write_wins() {
    // The first sequence: the echo was `x = 2\nx = 1\n`.
    check_turns("", &[(0, "x = 1\n"), (0, "x = 2\n")]);
    check_turns("", &[(0, "x = 1\n"), (1, "x = 2\n"), (0, "x = 3\n")]);
    check_turns(
        "",
        &[
            (0, "x"),
            (0, "x "),
            (0, "x ="),
            (0, "x = "),
            (0, "x = 1"),
            (0, "x = 2"),
        ],
    );
}

#[test]
fn a_cleared_buffer_clears_the_room() {
    check_turns("", &[(0, "x = 1\n"), (0, "")]);
    check_turns("", &[(0, "x = 1\n"), (1, "x = 1\ny = 2\n"), (0, "")]);
    check_turns(
        "a\n",
        &[
            (0, "a\nb\n"),
            (1, "a\nb\nc\n"),
            (2, "d\na\nb\nc\n"),
            (1, ""),
        ],
    );
}

#[test]
fn turns_are_last_write_wins_for_any_rewrite() {
    check_turns(
        "fn main() {}\n",
        &[
            (0, "fn main() {\n    let x = 1;\n}\n"),
            (1, "fn main() {\n    let x = 1;\n    let y = 2;\n}\n"),
            // Unrelated text, reordered lines, a duplicated line, a revert, non-BMP.
            (0, "print('hello')\n"),
            (1, "print('hello')\nprint('hello')\n"),
            (0, "b\na\n"),
            (1, "a\nb\n"),
            (0, "b\na\n"),
            (1, "a😀b\na\n"),
            (0, "a😀😀b\n"),
            (1, "fn main() {}\n"),
        ],
    );
}

#[test]
fn large_pastes_and_replacements_are_exact() {
    let paste: String = (0..40_000)
        .map(|n| format!("let a{n} = \"😀{n}\";\n"))
        .collect();
    let unrelated: String = (0..20_000).map(|n| format!("print({n} * 2)\n")).collect();
    let edited = paste.replacen("a17", "b17", 1);
    check_turns(
        "x\n",
        &[
            (0, paste.as_str()),
            (1, edited.as_str()),
            (0, unrelated.as_str()),
            (1, ""),
            (0, paste.as_str()),
        ],
    );
}

#[test]
fn a_keystroke_typed_on_an_out_of_date_buffer_keeps_the_others_and_typing_order() {
    let mut server = Server::new("\n\n", 2);
    // A types "a" on line 0; before its echo arrives, B's "x" (line 1) is committed and A
    // receives B's echo first, which lacks A's "a"; A types "b" on it.
    server.receive(1, "\nx\n", newest(0));
    server.receive(0, "a\n\n", newest(0));
    assert_eq!(server.text(), "a\nx\n");
    server.receive(0, "b\nx\n", newest(1));
    assert_eq!(server.text(), "ab\nx\n");
}

#[test]
fn a_frame_one_keystroke_from_the_own_previous_buffer_is_read_by_the_pings_answered() {
    // B's frame is one keystroke ("😀" for the first newline) from B's own previous buffer,
    // and a rewrite of A's newer one. Whether B had answered the ping of A's buffer tells
    // which: a turn when it had, a keystroke typed before A's buffer arrived when it had not.
    let mut server = Server::new("", 2);
    server.receive(1, "a\nb\n", newest(0));
    server.receive(0, "b\na\n", newest(1));
    server.receive(1, "a😀b\n", newest(2));
    assert_eq!(server.text(), "a😀b\n");

    let mut server = Server::new("", 2);
    server.receive(1, "a\nb\n", newest(0));
    server.receive(0, "b\na\n", newest(1));
    server.receive(1, "a😀b\n", newest(1));
    assert_eq!(server.text(), "b\na😀\n");
}

#[test]
fn lines_added_on_the_same_buffer_are_all_kept() {
    // The same bytes as a turn that edits A's line ("x = 1" to "x = 2"): only the pings
    // answered tell that B wrote its line before A's arrived.
    let mut server = Server::new("# s\n", 2);
    server.receive(0, "# s\nx = 1\n", newest(0));
    server.receive(1, "# s\nx = 2\n", newest(0));
    assert_eq!(server.text(), "# s\nx = 2\nx = 1\n");
}

/// One whole-buffer rewrite of a list of lines.
#[derive(Clone, Debug)]
enum Rewrite {
    Change(usize, String),
    Insert(usize, String),
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Clear,
    Replace(Vec<String>),
    /// Back to the buffer as it was this many rewrites ago.
    Revert(usize),
}

fn line() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ab é😀\t]{0,5}").unwrap_or_else(|error| panic!("{error}"))
}

fn rewrite() -> impl Strategy<Value = Rewrite> {
    prop_oneof![
        4 => (any::<usize>(), line()).prop_map(|(at, text)| Rewrite::Change(at, text)),
        3 => (any::<usize>(), line()).prop_map(|(at, text)| Rewrite::Insert(at, text)),
        2 => any::<usize>().prop_map(Rewrite::Delete),
        1 => any::<usize>().prop_map(Rewrite::Duplicate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Rewrite::Swap(a, b)),
        1 => Just(Rewrite::Clear),
        1 => proptest::collection::vec(line(), 0..4).prop_map(Rewrite::Replace),
        1 => (1..6_usize).prop_map(Rewrite::Revert),
    ]
}

fn rewritten(lines: &mut Vec<String>, earlier: &[Vec<String>], rewrite: &Rewrite) {
    let pick = |at: usize, length: usize| at % length.max(1);
    match rewrite {
        Rewrite::Change(at, text) if !lines.is_empty() => {
            let at = pick(*at, lines.len());
            lines[at].clone_from(text);
        }
        Rewrite::Change(_, text) | Rewrite::Insert(_, text) if lines.is_empty() => {
            lines.push(text.clone());
        }
        Rewrite::Insert(at, text) => lines.insert(pick(*at, lines.len() + 1), text.clone()),
        Rewrite::Delete(at) if !lines.is_empty() => {
            lines.remove(pick(*at, lines.len()));
        }
        Rewrite::Duplicate(at) if !lines.is_empty() => {
            let at = pick(*at, lines.len());
            lines.insert(at, lines[at].clone());
        }
        Rewrite::Swap(a, b) if !lines.is_empty() => {
            let (a, b) = (pick(*a, lines.len()), pick(*b, lines.len()));
            lines.swap(a, b);
        }
        Rewrite::Clear => lines.clear(),
        Rewrite::Replace(new) => lines.clone_from(new),
        Rewrite::Revert(back) if *back <= earlier.len() => {
            lines.clone_from(&earlier[earlier.len() - back]);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Guarantee 1: one client, nothing concurrent (each echo arrives before the next frame):
    /// the room after each frame is the frame, byte for byte.
    #[test]
    fn without_concurrency_the_room_is_the_frame(
        start in proptest::collection::vec(line(), 0..4),
        rewrites in proptest::collection::vec(rewrite(), 1..40),
        idle_members in 0..3_usize,
    ) {
        let mut lines = start.clone();
        let mut server = Server::new(&join(&start), 1 + idle_members);
        let mut earlier = vec![lines.clone()];
        for rewrite in &rewrites {
            rewritten(&mut lines, &earlier, rewrite);
            earlier.push(lines.clone());
            let frame = join(&lines);
            server.receive_in_turn(0, &frame);
            prop_assert_eq!(server.text(), frame);
        }
    }
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

fn split(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// A naive plain client: it replaces its buffer with every buffer it receives and sends its
/// whole buffer after each keystroke, typed at the end of its own line.
struct Typist {
    line: usize,
    buffer: String,
    /// The pings of the buffers it received.
    answered: Answered,
    /// Buffers on their way to it, oldest first.
    inbox: VecDeque<(u64, String)>,
    /// Frames on their way to the server, oldest first, with the revision answered.
    outbox: VecDeque<(String, Answered)>,
    /// Every character it typed, in order (each one distinct).
    typed: Vec<char>,
}

impl Typist {
    fn new(line: usize, text: &str) -> Self {
        Self {
            line,
            buffer: text.to_owned(),
            answered: newest(0),
            inbox: VecDeque::new(),
            outbox: VecDeque::new(),
            typed: Vec::new(),
        }
    }

    fn keystroke(&mut self, character: char) {
        let mut lines: Vec<String> = split(&self.buffer);
        while lines.len() <= self.line {
            lines.push(String::new());
        }
        lines[self.line].push(character);
        self.buffer = join(&lines);
        self.typed.push(character);
        self.outbox.push_back((self.buffer.clone(), self.answered));
    }

    /// Takes the next buffer, answering its ping.
    fn receive(&mut self) {
        if let Some((revision, buffer)) = self.inbox.pop_front() {
            self.answered.answer(revision);
            self.buffer = buffer;
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Type(usize),
    Merge(usize),
    Deliver(usize),
}

fn event(typists: usize) -> impl Strategy<Value = Event> {
    prop_oneof![
        2 => (0..typists).prop_map(Event::Type),
        2 => (0..typists).prop_map(Event::Merge),
        3 => (0..typists).prop_map(Event::Deliver),
    ]
}

/// A distinct character for each keystroke; the third typist types outside the BMP.
fn keystroke_character(typist: usize, count: usize) -> char {
    let base = [0x4E00, 0x5E00, 0x1_F300][typist % 3];
    char::from_u32(base + u32::try_from(count).unwrap_or(0)).unwrap_or('?')
}

fn run_typists(typists: usize, events: &[Event]) -> (Server, Vec<Typist>) {
    let start = "\n".repeat(typists);
    let mut server = Server::new(&start, typists);
    let mut clients: Vec<Typist> = (0..typists).map(|line| Typist::new(line, &start)).collect();
    let merge = |server: &mut Server, clients: &mut [Typist], who: usize| {
        if let Some((frame, answered)) = clients[who].outbox.pop_front()
            && let Some(buffer) = server.receive(who, &frame, answered)
        {
            for client in clients.iter_mut() {
                client.inbox.push_back(buffer.clone());
            }
        }
    };
    for event in events {
        match *event {
            Event::Type(who) => {
                let character = keystroke_character(who, clients[who].typed.len());
                clients[who].keystroke(character);
            }
            Event::Merge(who) => merge(&mut server, &mut clients, who),
            Event::Deliver(who) => clients[who].receive(),
        }
    }
    // Everything still on its way arrives.
    while clients.iter().any(|client| !client.outbox.is_empty()) {
        for who in 0..typists {
            merge(&mut server, &mut clients, who);
        }
    }
    for client in &mut clients {
        while !client.inbox.is_empty() {
            client.receive();
        }
    }
    (server, clients)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Guarantee 3 (and 4): naive typists on their own lines, frames merged in any order and
    /// buffers delivered late. Every keystroke is in the room exactly once, in its author's
    /// order, and every typist ends with the room's text.
    #[test]
    fn naive_typists_lose_and_double_nothing(
        typists in 2..4_usize,
        events in proptest::collection::vec(event(3), 1..200),
    ) {
        let events: Vec<Event> = events
            .into_iter()
            .map(|event| match event {
                Event::Type(who) => Event::Type(who % typists),
                Event::Merge(who) => Event::Merge(who % typists),
                Event::Deliver(who) => Event::Deliver(who % typists),
            })
            .collect();
        let (server, clients) = run_typists(typists, &events);
        let room = server.text();
        let lines = split(&room);
        prop_assert_eq!(lines.len(), typists, "lines: {:?}", room);
        for (who, client) in clients.iter().enumerate() {
            prop_assert_eq!(&client.buffer, &room);
            for character in &client.typed {
                let count = room.matches(*character).count();
                prop_assert_eq!(count, 1, "typist {}: {:?} in {:?}", who, character, room);
            }
            let on_line: Vec<char> = lines[client.line].chars().collect();
            prop_assert_eq!(on_line, client.typed.clone());
        }
    }
}

/// A small deterministic generator, as the end-to-end tests use.
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

/// The end-to-end turns of `plain_exact.rs`: three clients take turns with line edits,
/// deletions, inserts, swaps, duplicates and clears.
#[test]
fn three_clients_taking_turns_with_line_rewrites() {
    let mut failed = Vec::new();
    for seed in 0..200 {
        let mut random = Lcg(seed);
        let mut text = "one\ntwo\nthree\n".to_owned();
        let mut turns = Vec::new();
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
            text = join(&lines);
            turns.push((turn % 3, text.clone()));
        }
        let mut server = Server::new("one\ntwo\nthree\n", 3);
        for (index, (client, frame)) in turns.iter().enumerate() {
            server.receive_in_turn(*client, frame);
            if &server.text() != frame {
                failed.push((seed, index));
                break;
            }
        }
    }
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
}

/// A client of the batched simulation: what it shows, and what is on the wire both ways.
struct Wired {
    buffer: String,
    answered: Answered,
    inbox: VecDeque<(u64, String)>,
    outbox: VecDeque<(String, Answered)>,
    sent: usize,
    /// Whole-line typists wait until their last line comes back before typing the next.
    waiting_for: Option<String>,
}

impl Wired {
    /// Types its next keystroke (or line), as `plain_exact.rs` (or `plain_ws.rs`) does.
    fn type_next(&mut self, who: usize, whole_lines: bool) -> Result<(), String> {
        let typed = token(who, self.sent, whole_lines);
        if whole_lines {
            self.buffer.push_str(&typed);
            self.waiting_for = Some(typed);
        } else {
            let line = format!("line {who}:");
            let at = self.buffer.find(&line).ok_or("lost its line")?;
            let end = self.buffer[at..]
                .find('\n')
                .map_or(self.buffer.len(), |end| at + end);
            self.buffer.insert_str(end, &typed);
        }
        self.sent += 1;
        self.outbox.push_back((self.buffer.clone(), self.answered));
        Ok(())
    }

    fn show(&mut self, buffer: String) {
        self.buffer = buffer;
        if self
            .waiting_for
            .as_ref()
            .is_some_and(|typed| self.buffer.contains(typed.as_str()))
        {
            self.waiting_for = None;
        }
    }
}

fn token(typist: usize, count: usize, whole_lines: bool) -> String {
    if whole_lines {
        format!("typist {typist} line {count} 😀\n")
    } else {
        format!("[{typist}.{count}]")
    }
}

/// Clients typing against a server that commits in batches (several frames, one echo), as the
/// hub does. With `whole_lines` each appends whole lines, waiting for each to come back, as
/// `plain_ws.rs` does; otherwise each types `[t.k]` at the end of its own line, as
/// `plain_exact.rs` does. Each answers a buffer's ping as it shows the buffer.
fn run_batched(
    seed: u64,
    typists: usize,
    per_typist: usize,
    whole_lines: bool,
) -> Result<(), String> {
    let start = if whole_lines {
        "# shared\n".to_owned()
    } else {
        (0..typists)
            .map(|typist| format!("line {typist}:\n"))
            .collect()
    };
    let mut server = Server::new(&start, typists);
    let mut clients: Vec<Wired> = (0..typists)
        .map(|_| Wired {
            buffer: start.clone(),
            answered: newest(0),
            inbox: VecDeque::new(),
            outbox: VecDeque::new(),
            sent: 0,
            waiting_for: None,
        })
        .collect();
    let mut random = Lcg(seed);
    for _ in 0..100_000 {
        let done = clients.iter().all(|client| {
            client.sent == per_typist && client.outbox.is_empty() && client.inbox.is_empty()
        });
        if done {
            break;
        }
        let who = random.below(typists);
        let client = &mut clients[who];
        let can_type = client.sent < per_typist && client.waiting_for.is_none();
        match random.below(6) {
            0 | 1 if can_type => client.type_next(who, whole_lines)?,
            2 | 3 => {
                // A batch: a few frames, each connection's in its order.
                let mut frames = Vec::new();
                for _ in 0..1 + random.below(4) {
                    let who = random.below(typists);
                    if let Some((frame, answered)) = clients[who].outbox.pop_front() {
                        frames.push((who, frame, answered));
                    }
                }
                if let Some(echo) = server.receive_batch(&frames) {
                    for client in &mut clients {
                        client.inbox.push_back(echo.clone());
                    }
                }
            }
            _ => {
                if let Some((revision, buffer)) = client.inbox.pop_front() {
                    client.answered.answer(revision);
                    client.show(buffer);
                }
            }
        }
    }
    let room = server.text();
    for (who, client) in clients.iter().enumerate() {
        if client.buffer != room {
            return Err(format!(
                "client {who} ends with {:?}, room {room:?}",
                client.buffer
            ));
        }
        for count in 0..per_typist {
            let typed = token(who, count, whole_lines);
            let found = room.matches(typed.as_str()).count();
            if found != 1 {
                return Err(format!("{typed:?} {found} times in {room:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn batched_whole_line_typists_keep_every_line() {
    let failures: Vec<String> = (0..300)
        .filter_map(|seed| {
            run_batched(seed, 3, 10, true)
                .err()
                .map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn batched_naive_typists_lose_and_double_nothing() {
    let failures: Vec<String> = (0..300)
        .filter_map(|seed| {
            run_batched(seed, 4, 15, false)
                .err()
                .map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures, first: {}",
        failures.len(),
        failures[0]
    );
}
