//! Real editing histories (josephg/editing-traces, CC BY 4.0) replayed through the domain:
//! sequential ones through a `Document`, concurrent ones through central-server OT. The traces
//! are not part of the repository; they are read from `DUET_TRACES_DIR` (default
//! `../shared/data/traces` beside the checkout), and each test says loudly when they are absent.

use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;

use duet_domain::{Document, TextOperation};
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

/// One author as a central-server OT client sees it: the server revision it has seen, its
/// own operations the server committed after that (in its own frame), and its text.
struct Author {
    seen: usize,
    pending: VecDeque<(usize, TextOperation)>,
    document: Document,
}

/// Moves `pending` (and `extra`, an operation on top of it) across a remote operation `remote`
/// made on the server state they were based on; returns `remote` as it applies on top of them.
fn transform_through(
    pending: &mut VecDeque<(usize, TextOperation)>,
    extra: Option<&mut TextOperation>,
    mut remote: TextOperation,
) -> TextOperation {
    for (_, mine) in pending.iter_mut() {
        let (moved, theirs) = TextOperation::transform(mine, &remote).expect("same base");
        *mine = moved;
        remote = theirs;
    }
    if let Some(mine) = extra {
        let (moved, theirs) = TextOperation::transform(mine, &remote).expect("same base");
        *mine = moved;
        remote = theirs;
    }
    remote
}

fn replay_concurrent(name: &str) {
    let Some(trace) = load(name) else { return };
    let transactions = trace["txns"].as_array().expect("transactions");
    let agents = usize::try_from(trace["numAgents"].as_u64().expect("agents")).expect("fits");
    let agent_of: Vec<usize> = transactions
        .iter()
        .map(|t| usize::try_from(t["agent"].as_u64().expect("an agent")).expect("fits"))
        .collect();
    // Server order is the trace's order. `history[k]` is transaction k as committed.
    let mut history: Vec<TextOperation> = Vec::with_capacity(transactions.len());
    let mut server = Document::new("", 0);
    // For each transaction: the length of the longest prefix of the server order its author
    // had seen when making it (the rest it had seen are its own, as the trace guarantees).
    let mut prefix_after: Vec<usize> = Vec::with_capacity(transactions.len());
    let mut authors: Vec<Author> = (0..agents)
        .map(|_| Author {
            seen: 0,
            pending: VecDeque::new(),
            document: Document::new("", 0),
        })
        .collect();
    for (index, transaction) in transactions.iter().enumerate() {
        let agent = agent_of[index];
        let parents: Vec<usize> = transaction["parents"]
            .as_array()
            .expect("parents")
            .iter()
            .map(|p| usize::try_from(p.as_u64().expect("an index")).expect("fits"))
            .collect();
        let seen_by = |j: usize| {
            parents
                .iter()
                .any(|&p| j < prefix_after[p] || (agent_of[j] == agent_of[p] && j <= p))
        };
        let mut seen = parents.iter().map(|&p| prefix_after[p]).max().unwrap_or(0);
        while seen < index && seen_by(seen) {
            seen += 1;
        }
        // The author catches up to the server revision it had seen.
        let author = &mut authors[agent];
        for k in author.seen..seen {
            if agent_of[k] == agent {
                let (acknowledged, _) = author.pending.pop_front().expect("an own operation");
                assert_eq!(acknowledged, k);
            } else {
                let remote = transform_through(&mut author.pending, None, history[k].clone());
                author
                    .document
                    .apply(&remote)
                    .expect("a remote operation applies");
            }
        }
        author.seen = seen;
        // The author's edit, on the text it saw.
        let mut operation = TextOperation::new().retain(author.document.len_utf16());
        for patch in transaction["patches"].as_array().expect("patches") {
            let mut step_document = author.document.clone();
            step_document.apply(&operation).expect("applies");
            let step = patch_operation(&step_document, patch);
            operation = operation.compose(&step).expect("composes");
        }
        author.document.apply(&operation).expect("the edit applies");
        // The server transforms it over what was committed since the author's revision.
        let mut pending = author.pending.clone();
        let mut incoming = operation.clone();
        for (k, committed) in history.iter().enumerate().skip(seen) {
            if agent_of[k] == agent {
                pending.pop_front();
            } else {
                transform_through(&mut pending, Some(&mut incoming), committed.clone());
            }
        }
        server
            .apply(&incoming)
            .expect("the transformed edit applies");
        history.push(incoming);
        author.pending.push_back((index, operation));
        prefix_after.push(if seen == index { index + 1 } else { seen });
    }
    assert_eq!(
        server.text(),
        trace["endContent"].as_str().expect("the end content")
    );
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
