//! Real editing histories (josephg/editing-traces, CC BY 4.0) replayed through the domain:
//! sequential ones through a `Document`, concurrent ones through central-server OT. The traces
//! are not part of the repository; they are read from `DUET_TRACES_DIR` (default
//! `../shared/data/traces` beside the checkout), and each test says loudly when they are absent.

use std::io::Read;
use std::path::PathBuf;

use duet_domain::replay::{Transaction, replay};
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

/// A concurrent trace's transactions in the domain's replay form.
pub fn concurrent_transactions(trace: &Value) -> (usize, Vec<Transaction>) {
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
