//! ot.js clients ([`Client`]) editing one text at once through a central server, with messages
//! delayed in any order the network allows and connections lost and resumed: every client ends
//! with the server's text, and the server took every edit once.

use std::collections::VecDeque;

use duet_domain::{Client, Outgoing, TextOperation};
use proptest::prelude::*;

/// Characters of one to four UTF-8 bytes, and two UTF-16 units for the emoji.
const ALPHABET: &[char] = &['a', 'b', '\n', 'é', '中', '😀'];

/// A server message, in the order the server sent them.
enum Down {
    Ack {
        seq: u64,
        revision: u64,
    },
    Op {
        revision: u64,
        operation: TextOperation,
    },
}

/// One participant: its client, its text, and its connection's two directions.
struct Peer {
    client: Client,
    text: String,
    up: VecDeque<Outgoing>,
    down: VecDeque<Down>,
    /// Edits made, to check that each reached the server once.
    edits: usize,
}

/// Duet's server in miniature: the text, and every committed operation with its author.
#[derive(Default)]
struct Server {
    text: String,
    history: Vec<(usize, TextOperation)>,
}

impl Server {
    /// Moves `outgoing` past everything committed since its base, commits it and tells
    /// everyone.
    fn receive(&mut self, author: usize, outgoing: Outgoing, peers: &mut [Peer]) {
        let base = usize::try_from(outgoing.revision).expect("a small revision");
        let mut operation = outgoing.operation;
        for (_, committed) in &self.history[base..] {
            operation = TextOperation::transform(&operation, committed)
                .expect("the edit fits its base")
                .0;
        }
        self.text = operation.apply(&self.text).expect("the edit applies");
        self.history.push((author, operation.clone()));
        let revision = self.history.len() as u64;
        for (index, peer) in peers.iter_mut().enumerate() {
            peer.down.push_back(if index == author {
                Down::Ack {
                    seq: outgoing.seq,
                    revision,
                }
            } else {
                Down::Op {
                    revision,
                    operation: operation.clone(),
                }
            });
        }
    }
}

impl Peer {
    fn send(&mut self, outgoing: Option<Outgoing>) {
        self.up.extend(outgoing);
    }

    /// An edit at a place chosen by `at`, deleting up to `deleted` characters.
    fn edit(&mut self, at: usize, deleted: usize, inserted: &str) {
        let characters: Vec<char> = self.text.chars().collect();
        let start = at % (characters.len() + 1);
        let end = (start + deleted).min(characters.len());
        let units = |range: &[char]| range.iter().map(|c| c.len_utf16()).sum::<usize>();
        let operation = TextOperation::new()
            .retain(units(&characters[..start]))
            .delete(units(&characters[start..end]))
            .insert(inserted)
            .retain(units(&characters[end..]));
        self.text = operation.apply(&self.text).expect("a local edit applies");
        let outgoing = self
            .client
            .apply_local(operation)
            .expect("a local edit fits");
        self.send(outgoing);
        self.edits += 1;
    }

    fn deliver(&mut self) {
        match self.down.pop_front() {
            Some(Down::Ack { seq, revision }) => {
                let next = self
                    .client
                    .acknowledge(seq, revision)
                    .expect("acknowledged");
                self.send(next);
            }
            Some(Down::Op {
                revision,
                operation,
            }) => {
                let local = self
                    .client
                    .apply_remote(revision, &operation)
                    .expect("a remote operation fits");
                self.text = local.apply(&self.text).expect("applies locally");
            }
            None => {}
        }
    }
}

/// The connection of `peers[index]` drops with messages on the wire both ways; it resumes
/// from its revision: the welcome lists every operation since, the client catches up and
/// resends what is in flight.
fn reconnect(server: &Server, peers: &mut [Peer], index: usize) {
    let peer = &mut peers[index];
    peer.up.clear();
    peer.down.clear();
    let since = usize::try_from(peer.client.revision()).expect("a small revision");
    for (offset, (author, operation)) in server.history[since..].iter().enumerate() {
        let revision = (since + offset + 1) as u64;
        let local = peer
            .client
            .catch_up(revision, *author == index, operation)
            .expect("a missed operation fits");
        if let Some(local) = local {
            peer.text = local.apply(&peer.text).expect("applies locally");
        }
    }
    let resent = peer.client.resend();
    peer.send(resent);
}

#[derive(Clone, Debug)]
enum Step {
    Edit {
        peer: usize,
        at: usize,
        deleted: usize,
        inserted: String,
    },
    /// The server reads the peer's next message.
    Up(usize),
    /// The peer reads the server's next message.
    Down(usize),
    Reconnect(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let inserted = proptest::collection::vec(proptest::sample::select(ALPHABET), 0..3)
        .prop_map(|chars| chars.into_iter().collect::<String>());
    prop_oneof![
        3 => (any::<usize>(), any::<usize>(), 0..3_usize, inserted).prop_map(
            |(peer, at, deleted, inserted)| Step::Edit { peer, at, deleted, inserted }
        ),
        3 => any::<usize>().prop_map(Step::Up),
        3 => any::<usize>().prop_map(Step::Down),
        1 => any::<usize>().prop_map(Step::Reconnect),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn clients_editing_at_once_converge_to_the_servers_text(
        count in 2..5_usize,
        steps in proptest::collection::vec(step(), 0..120),
    ) {
        let mut server = Server::default();
        let mut peers: Vec<Peer> = (0..count)
            .map(|_| Peer {
                client: Client::new(0, 0),
                text: String::new(),
                up: VecDeque::new(),
                down: VecDeque::new(),
                edits: 0,
            })
            .collect();
        for step in steps {
            match step {
                Step::Edit { peer, at, deleted, inserted } => {
                    peers[peer % count].edit(at, deleted, &inserted);
                }
                Step::Up(peer) => {
                    let author = peer % count;
                    if let Some(outgoing) = peers[author].up.pop_front() {
                        server.receive(author, outgoing, &mut peers);
                    }
                }
                Step::Down(peer) => peers[peer % count].deliver(),
                Step::Reconnect(peer) => reconnect(&server, &mut peers, peer % count),
            }
        }
        // The network delivers everything left.
        while peers.iter().any(|peer| !peer.up.is_empty() || !peer.down.is_empty()) {
            for author in 0..count {
                if let Some(outgoing) = peers[author].up.pop_front() {
                    server.receive(author, outgoing, &mut peers);
                }
                peers[author].deliver();
            }
        }
        for peer in &peers {
            prop_assert!(peer.client.is_synchronized());
            prop_assert_eq!(peer.client.revision(), server.history.len() as u64);
            prop_assert_eq!(&peer.text, &server.text);
        }
        // Each edit was sent alone or composed with the ones buffered behind it, and each
        // operation sent was committed once: never more commits than edits.
        for (index, peer) in peers.iter().enumerate() {
            let committed = server.history.iter().filter(|(author, _)| *author == index).count();
            prop_assert!(committed <= peer.edits);
            prop_assert_eq!(committed == 0, peer.edits == 0);
        }
    }
}
