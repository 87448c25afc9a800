//! Real editing histories (josephg/editing-traces, CC BY 4.0): the sequential ones applied
//! through a `Document`, the concurrent ones replayed through central-server OT
//! (`duet_domain::replay`, which the domain's benchmarks also run) and committed through
//! `Rooms::commit`, one submission per commit, to prove that the live room's transformations
//! are the replay's server's: each edit is committed as the same operation, and the room ends
//! with the trace's end content. The traces are not part of the repository; they are read from
//! `DUET_TRACES_DIR` (default `../shared/data/traces` beside the checkout), and each test says
//! loudly when they are absent.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use duet_app::testing::{FixedClock, InMemoryRoomRepository};
use duet_app::{Change, LiveSettings, NewRoom, Outcome, Rooms, Submission};
use duet_domain::replay::{self, Transaction, replay};
use duet_domain::{ClientId, Document, TextOperation};
use serde_json::Value;

fn traces_dir() -> PathBuf {
    std::env::var_os("DUET_TRACES_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/traces"),
        PathBuf::from,
    )
}

fn load(name: &str) -> Option<Value> {
    let path = traces_dir().join(name);
    let Ok(file) = std::fs::File::open(&path) else {
        eprintln!(
            "\n!!!!!!!! NOTICE: the editing trace {} is absent; this replay did NOT run. \
             Set DUET_TRACES_DIR to the traces folder. !!!!!!!!\n",
            path.display()
        );
        return None;
    };
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .expect("a gzipped trace");
    Some(serde_json::from_str(&json).expect("a JSON trace"))
}

/// The operation for one patch (`[position, deleted, inserted]` in code points) on `document`.
fn patch_operation(document: &Document, patch: &Value) -> TextOperation {
    let number =
        |index: usize| usize::try_from(patch[index].as_u64().expect("a number")).expect("fits");
    let (position, deleted) = (number(0), number(1));
    let inserted = patch[2].as_str().expect("a string");
    let rope = document.rope();
    let start = rope.char_to_utf16_cu(position);
    let end = rope.char_to_utf16_cu(position + deleted);
    TextOperation::new()
        .retain(start)
        .delete(end - start)
        .insert(inserted)
        .retain(document.len_utf16() - end)
}

fn replay_sequential(name: &str) {
    let Some(trace) = load(name) else { return };
    let mut document = Document::new(trace["startContent"].as_str().unwrap_or(""), 0);
    for transaction in trace["txns"].as_array().expect("transactions") {
        for patch in transaction["patches"].as_array().expect("patches") {
            let operation = patch_operation(&document, patch);
            document.apply(&operation).expect("the patch applies");
        }
    }
    assert_eq!(
        document.text(),
        trace["endContent"].as_str().expect("the end content")
    );
}

#[test]
fn sequential_traces_reproduce_their_end_content() {
    for name in [
        "sveltecomponent.json.gz",
        "rustcode.json.gz",
        "friendsforever_flat.json.gz",
    ] {
        replay_sequential(name);
    }
}

/// A concurrent trace's transactions in the domain's replay form.
fn concurrent_transactions(trace: &Value) -> (usize, Vec<Transaction>) {
    let number = |value: &Value| usize::try_from(value.as_u64().expect("a number")).expect("fits");
    let authors = number(&trace["numAgents"]);
    let transactions = trace["txns"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|transaction| Transaction {
            author: number(&transaction["agent"]),
            parents: transaction["parents"]
                .as_array()
                .expect("parents")
                .iter()
                .map(number)
                .collect(),
            splices: transaction["patches"]
                .as_array()
                .expect("patches")
                .iter()
                .map(|patch| {
                    (
                        number(&patch[0]),
                        number(&patch[1]),
                        patch[2].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect(),
        })
        .collect();
    (authors, transactions)
}

/// Commits every submission the replay's authors send through `Rooms::commit`, one per commit,
/// and checks each against what the replay's server commits for it.
///
/// Duet's protocol lets a client have one operation in flight, made on a revision that includes
/// its own acknowledged edits (docs/PROTOCOL.md, as ot.js's `Client`); the room transforms it
/// over everything committed since (as ot.js's server). The replay's authors also send edits
/// while earlier ones of theirs are still unacknowledged, which only a server that keeps state
/// per author (the replay's Jupiter server) can place: on the room they are made on no revision
/// it holds. Those are committed as the replay's server committed them, on the room's current
/// revision, so that the room keeps following the trace; every other submission goes in as sent
/// and must come out as the replay's server committed it.
async fn check(name: &str) {
    let Some(trace) = load(name) else { return };
    let started = Instant::now();
    let (authors, transactions) = concurrent_transactions(&trace);
    let submissions = replay::submissions(authors, &transactions).expect("the history replays");
    let expected = replay::committed(&submissions).expect("the replay's server commits it");
    let served = replay::serve(&submissions).expect("the replay's server serves it");

    // The history holds the whole trace, so no edit is ever too far behind to transform.
    let settings = LiveSettings {
        history: submissions.len() + 1,
        history_bytes: usize::MAX,
        ..LiveSettings::default()
    };
    let rooms = Rooms::with_settings(
        Arc::new(InMemoryRoomRepository::default()),
        Arc::new(FixedClock::default()),
        settings,
    );
    let room = rooms.create(NewRoom::default()).await.expect("created");
    let mut live = rooms.open(room.id()).await.expect("opens");
    let clients: Vec<ClientId> = (0..authors)
        .map(|author| ClientId::new(&format!("author-{author}")).expect("a client id"))
        .collect();
    let mut seqs = vec![0_u64; authors];
    // Each author's latest submission; submission `i` is committed as revision `i + 1`.
    let mut latest: Vec<Option<usize>> = vec![None; authors];
    let mut as_sent = 0;
    for (index, (submission, expected)) in submissions.iter().zip(&expected).enumerate() {
        let author = submission.author;
        let in_flight = latest[author].is_some_and(|own| own >= submission.seen);
        latest[author] = Some(index);
        seqs[author] += 1;
        let (base, operation) = if in_flight {
            (live.document().revision(), expected.clone())
        } else {
            as_sent += 1;
            (
                u64::try_from(submission.seen).expect("fits"),
                submission.operation.clone(),
            )
        };
        let batch = vec![Submission {
            client: clients[author].clone(),
            seq: seqs[author],
            base,
            change: Change::Operation(operation),
        }];
        let outcomes = rooms.commit(&mut live, batch).await.expect("stored");
        match outcomes.as_slice() {
            [Outcome::Committed(committed)] => assert_eq!(
                &committed.operation, expected,
                "{name}: submission {index} was committed unlike the replay's server did"
            ),
            other => panic!("{name}: submission {index} was not committed: {other:?}"),
        }
    }
    assert!(as_sent > 0, "{name}: no submission was checked as sent");
    let text = live.document().text();
    let end = trace["endContent"].as_str().expect("the end content");
    for (other, what) in [
        (served.as_str(), "the replay's server's text"),
        (end, "the trace's end content"),
    ] {
        let differs_at = text
            .chars()
            .zip(other.chars())
            .take_while(|(a, b)| a == b)
            .count();
        assert!(
            text == other,
            "{name}: the room's text ({} chars) differs from {what} ({} chars) from char {differs_at}",
            text.chars().count(),
            other.chars().count(),
        );
    }
    eprintln!(
        "{name}: {} submissions committed in {:.2?}, {as_sent} of them as sent (the others were \
         made with the author's own edits in flight)",
        submissions.len(),
        started.elapsed()
    );
}

#[tokio::test]
async fn concurrent_traces_commit_as_the_replays_server_does() {
    for name in [
        "concurrent-friendsforever.json.gz",
        "concurrent-clownschool.json.gz",
    ] {
        check(name).await;
    }
}

fn replay_concurrent(name: &str) {
    let Some(trace) = load(name) else { return };
    let (authors, transactions) = concurrent_transactions(&trace);
    let text = replay(authors, &transactions).expect("the history replays");
    assert_eq!(text, trace["endContent"].as_str().expect("the end content"));
}

#[test]
fn concurrent_traces_converge_to_their_end_content() {
    for name in [
        "concurrent-friendsforever.json.gz",
        "concurrent-clownschool.json.gz",
    ] {
        replay_concurrent(name);
    }
}
