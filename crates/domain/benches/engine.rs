//! The text engine under criterion: `cargo bench -p duet-domain --bench engine` (part of
//! `make bench`).
//!
//! - `operations/*`: apply, compose and transform on small (1 kB) and large (1 MB) documents.
//! - `replay/*`: a long sequential editing history applied op by op through `Document`, against
//!   the same edits applied straight to a bare rope (the floor). The history is a generated
//!   260,000-edit typing session, plus every trace file found in `DUET_TRACES_DIR` (default
//!   `../shared/data/traces`; editing traces by Joseph Gentle, CC BY 4.0), said loudly when
//!   absent.
//! - `transform/*`: an incoming edit transformed over concurrent committed edits, per edit.

use std::hint::black_box;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use duet_domain::replay::{self as central, Transaction};
use duet_domain::{Document, TextOperation};
use ropey::Rope;

/// An edit in both forms: for the document (UTF-16 operation) and for the bare rope (chars).
struct Edit {
    operation: TextOperation,
    char_position: usize,
    char_deleted: usize,
    inserted: String,
}

/// A deterministic typing session: runs of typing at a moving cursor, backspaces, jumps.
fn typing_history(edits: usize) -> Vec<Edit> {
    let mut random = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move |bound: usize| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        usize::try_from(random % (bound.max(1) as u64)).unwrap_or(0)
    };
    let letters = [
        "e", "t", "a", "o", " ", "n", "i", "s", "\n", "(", ")", "é", "😀",
    ];
    let mut rope = Rope::new();
    let mut cursor = 0;
    let mut history = Vec::with_capacity(edits);
    for _ in 0..edits {
        let length = rope.len_chars();
        cursor = cursor.min(length);
        let roll = next(100);
        if roll < 3 {
            cursor = next(length + 1);
        }
        let (char_deleted, inserted) = if roll >= 90 && cursor > 0 {
            cursor -= 1;
            (1, String::new())
        } else {
            (0, letters[next(letters.len())].to_owned())
        };
        history.push(edit_on(&rope, cursor, char_deleted, inserted));
        rope.remove(cursor..cursor + char_deleted);
        let inserted = &history
            .last()
            .map(|edit| edit.inserted.clone())
            .unwrap_or_default();
        rope.insert(cursor, inserted);
        cursor += inserted.chars().count();
    }
    history
}

fn edit_on(rope: &Rope, char_position: usize, char_deleted: usize, inserted: String) -> Edit {
    let start = rope.char_to_utf16_cu(char_position);
    let end = rope.char_to_utf16_cu(char_position + char_deleted);
    let operation = TextOperation::new()
        .retain(start)
        .delete(end - start)
        .insert(&inserted)
        .retain(rope.len_utf16_cu() - end);
    Edit {
        operation,
        char_position,
        char_deleted,
        inserted,
    }
}

fn traces_dir() -> PathBuf {
    std::env::var_os("DUET_TRACES_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/traces"),
        PathBuf::from,
    )
}

/// A sequential trace's edits, or `None` (said loudly) when the file is absent.
fn trace_history(name: &str) -> Option<(Vec<Edit>, String)> {
    let path = traces_dir().join(name);
    let Ok(file) = std::fs::File::open(&path) else {
        eprintln!(
            "NOTICE: trace {} absent; its replay is not measured",
            path.display()
        );
        return None;
    };
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .ok()?;
    let trace: serde_json::Value = serde_json::from_str(&json).ok()?;
    let mut rope = Rope::from_str(trace["startContent"].as_str().unwrap_or(""));
    let mut history = Vec::new();
    for transaction in trace["txns"].as_array()? {
        for patch in transaction["patches"].as_array()? {
            let position = usize::try_from(patch[0].as_u64()?).ok()?;
            let deleted = usize::try_from(patch[1].as_u64()?).ok()?;
            let inserted = patch[2].as_str()?.to_owned();
            history.push(edit_on(&rope, position, deleted, inserted.clone()));
            rope.remove(position..position + deleted);
            rope.insert(position, &inserted);
        }
    }
    Some((history, trace["endContent"].as_str()?.to_owned()))
}

fn replay(criterion: &mut Criterion, name: &str, history: &[Edit], start: &str) {
    let mut group = criterion.benchmark_group(format!("replay/{name}"));
    group.throughput(Throughput::Elements(history.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("document", |bench| {
        bench.iter_batched(
            || Document::new(start, 0),
            |mut document| {
                for edit in history {
                    document.apply(&edit.operation).expect("the edit applies");
                }
                document
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("bare rope", |bench| {
        bench.iter_batched(
            || Rope::from_str(start),
            |mut rope| {
                for edit in history {
                    rope.remove(edit.char_position..edit.char_position + edit.char_deleted);
                    rope.insert(edit.char_position, &edit.inserted);
                }
                rope
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn replays(criterion: &mut Criterion) {
    let generated = typing_history(260_000);
    replay(criterion, "generated-260k", &generated, "");
    for name in [
        "sveltecomponent.json.gz",
        "rustcode.json.gz",
        "friendsforever_flat.json.gz",
    ] {
        if let Some((history, end)) = trace_history(name) {
            let mut check = Document::new("", 0);
            for edit in &history {
                check.apply(&edit.operation).expect("applies");
            }
            assert_eq!(
                check.text(),
                end,
                "{name} does not replay to its end content"
            );
            replay(criterion, name.trim_end_matches(".json.gz"), &history, "");
        }
    }
}

fn operations(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("operations");
    for (label, size) in [("1kB", 1_000), ("1MB", 1_000_000)] {
        let text = "fn main() { println!(\"héllo 😀\"); }\n".repeat(size / 40 + 1);
        let document = Document::new(&text, 0);
        let length = document.len_utf16();
        let middle = length / 2 - (length / 2) % 2;
        let typed = TextOperation::new()
            .retain(middle)
            .insert("x")
            .retain(length - middle);
        let other = TextOperation::new()
            .retain(10)
            .delete(4)
            .insert("abc")
            .retain(length - 14);
        group.bench_function(format!("apply/{label}"), |bench| {
            bench.iter_batched(
                || document.clone(),
                |mut document| {
                    document.apply(black_box(&typed)).expect("applies");
                    document
                },
                BatchSize::SmallInput,
            );
        });
        let next = TextOperation::new()
            .retain(middle + 1)
            .insert("y")
            .retain(length - middle);
        group.bench_function(format!("compose/{label}"), |bench| {
            bench.iter(|| {
                black_box(&typed)
                    .compose(black_box(&next))
                    .expect("composes")
            });
        });
        group.bench_function(format!("transform/{label}"), |bench| {
            bench.iter(|| {
                TextOperation::transform(black_box(&typed), black_box(&other)).expect("same base")
            });
        });
    }
    group.finish();
}

/// Two typists, each edit made 4 edits behind: the incoming edit is transformed over the 4
/// committed since its base, as the server does. Time per incoming edit.
fn concurrent(criterion: &mut Criterion) {
    let history = typing_history(2_000);
    let mut group = criterion.benchmark_group("transform");
    group.throughput(Throughput::Elements(1));
    let base = Document::new("", 0);
    let mut document = base;
    let mut committed: Vec<TextOperation> = Vec::new();
    for edit in &history[..1_000] {
        document.apply(&edit.operation).expect("applies");
        committed.push(edit.operation.clone());
    }
    // An edit on the state 4 revisions back, and the 4 committed since.
    let mut behind = Document::new("", 0);
    for operation in &committed[..committed.len() - 4] {
        behind.apply(operation).expect("applies");
    }
    let length = behind.len_utf16();
    let incoming = TextOperation::new()
        .retain(length / 3)
        .insert("z")
        .retain(length - length / 3);
    let since = &committed[committed.len() - 4..];
    group.bench_function("incoming-over-4-concurrent", |bench| {
        bench.iter(|| {
            let mut operation = black_box(&incoming).clone();
            for other in since {
                operation = TextOperation::transform(&operation, other)
                    .expect("same base")
                    .0;
            }
            operation
        });
    });
    group.finish();
}

/// The concurrent traces replayed through central-server OT (each author simulated as a
/// client, each edit transformed over what was committed since its revision): time per edit,
/// for the server's share alone and for clients and server together.
fn concurrent_traces(criterion: &mut Criterion) {
    for name in [
        "concurrent-friendsforever.json.gz",
        "concurrent-clownschool.json.gz",
    ] {
        let path = traces_dir().join(name);
        let Ok(file) = std::fs::File::open(&path) else {
            eprintln!(
                "NOTICE: trace {} absent; its replay is not measured",
                path.display()
            );
            continue;
        };
        let mut json = String::new();
        if flate2::read::GzDecoder::new(file)
            .read_to_string(&mut json)
            .is_err()
        {
            continue;
        }
        let Ok(trace) = serde_json::from_str::<serde_json::Value>(&json) else {
            continue;
        };
        let number = |value: &serde_json::Value| {
            value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0)
        };
        let transactions: Vec<Transaction> = trace["txns"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|transaction| Transaction {
                        author: number(&transaction["agent"]),
                        parents: transaction["parents"]
                            .as_array()
                            .map(|p| p.iter().map(number).collect())
                            .unwrap_or_default(),
                        splices: transaction["patches"]
                            .as_array()
                            .map(|patches| {
                                patches
                                    .iter()
                                    .map(|patch| {
                                        (
                                            number(&patch[0]),
                                            number(&patch[1]),
                                            patch[2].as_str().unwrap_or("").to_owned(),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let authors = number(&trace["numAgents"]);
        let end = trace["endContent"].as_str().unwrap_or("").to_owned();
        assert_eq!(
            central::replay(authors, &transactions).expect("replays"),
            end,
            "{name}"
        );
        let mut group =
            criterion.benchmark_group(format!("concurrent/{}", name.trim_end_matches(".json.gz")));
        group.throughput(Throughput::Elements(transactions.len() as u64));
        group.sample_size(10);
        // The server's share: each edit transformed over what was committed since its
        // author's revision and applied (what a room's session does per edit).
        let submissions = central::submissions(authors, &transactions).expect("replays");
        group.bench_function("server", |bench| {
            bench.iter(|| central::serve(black_box(&submissions)).expect("serves"));
        });
        // Everything: the authors simulated as clients too.
        group.bench_function("clients-and-server", |bench| {
            bench.iter(|| central::replay(authors, black_box(&transactions)).expect("replays"));
        });
        group.finish();
    }
}

criterion_group!(benches, operations, concurrent, concurrent_traces, replays);
criterion_main!(benches);
