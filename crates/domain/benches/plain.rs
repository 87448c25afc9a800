//! Merging a plain client's whole-buffer frame: `cargo bench -p duet-domain --bench plain`.
//!
//! A room of 100 kB or 1 MB of code where ten plain members type, each on its own line. The
//! member being merged was sent the last ten buffers (ten candidates) and typed one character
//! on the fifth newest, which lacks the five keystrokes committed since. `merge/*` is
//! `PlainMember::merge` (choosing among the candidates, diffing, moving the change over the
//! five later commits); `bare_diff/*` is `duet_domain::diff` of the room's text and the same
//! frame, the floor. `latest/*` merges a frame typed on the newest buffer.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use duet_domain::{Answered, Document, PlainMember, Step, TextOperation, diff};

/// A room of about `bytes` of code-like lines, with `edits` later keystrokes on distinct lines
/// by other members: the document and its history (operation, inverse).
fn room(bytes: usize, edits: usize) -> (Document, Vec<(TextOperation, TextOperation)>) {
    let mut text = String::with_capacity(bytes + 64);
    let mut line = 0;
    while text.len() < bytes {
        text.push_str(&format!("    let value_{line} = compute({line}, \"é\");\n"));
        line += 1;
    }
    let mut document = Document::new(&text, 0);
    let mut history = Vec::with_capacity(edits);
    for edit in 0..edits {
        let current = document.text();
        // The end of line 100 × (edit + 1), before its newline.
        let position = line_end(&current, 100 * (edit + 1));
        let operation = TextOperation::new()
            .retain(position)
            .insert("x")
            .retain(utf16(&current) - position);
        let inverse = operation
            .invert(&current)
            .unwrap_or_else(|error| panic!("{error}"));
        document
            .apply(&operation)
            .unwrap_or_else(|error| panic!("{error}"));
        history.push((operation, inverse));
    }
    (document, history)
}

fn utf16(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// The UTF-16 position of the end of line `line` (before its newline).
fn line_end(text: &str, line: usize) -> usize {
    let mut units = 0;
    let mut seen = 0;
    for character in text.chars() {
        if character == '\n' {
            if seen == line {
                return units;
            }
            seen += 1;
        }
        units += character.len_utf16();
    }
    units
}

/// `text` with a character typed at the end of line 7 (the merged member's own line).
fn typed(text: &str) -> String {
    let position = line_end(text, 7);
    let byte = text
        .char_indices()
        .scan(0, |units, (byte, character)| {
            let at = *units;
            *units += character.len_utf16();
            Some((at, byte))
        })
        .find(|(at, _)| *at == position)
        .map_or(text.len(), |(_, byte)| byte);
    format!("{}k{}", &text[..byte], &text[byte..])
}

fn bench_size(criterion: &mut Criterion, name: &str, bytes: usize) {
    const CANDIDATES: u64 = 10;
    let (document, history) = room(bytes, usize::try_from(CANDIDATES).unwrap_or(10));
    let steps: Vec<Step<'_>> = history
        .iter()
        .map(|(operation, inverse)| Step {
            operation,
            inverse,
            own: false,
        })
        .collect();
    let now = document.revision();
    let mut member = PlainMember::joined(now - CANDIDATES + 1);
    for revision in now - CANDIDATES + 2..=now {
        member.sent(revision);
    }
    // The fifth newest buffer, as the client has it (its ping answered), plus one keystroke.
    let stale_revision = Answered {
        newest: Some(now - 5),
        previous: None,
    };
    let mut stale = document.clone();
    for (_, inverse) in history.iter().rev().take(5) {
        stale
            .apply(inverse)
            .unwrap_or_else(|error| panic!("{error}"));
    }
    let stale_frame = typed(&stale.text());
    let latest_frame = typed(&document.text());
    let room_text = document.text();

    let check = member
        .merge(&document, &steps, &stale_frame, stale_revision)
        .unwrap_or_else(|error| panic!("{error}"));
    let merged = check
        .operation
        .apply(&room_text)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(merged, typed(&room_text), "the keystroke joins the room");

    let mut group = criterion.benchmark_group(name);
    group.bench_function("merge", |bencher| {
        bencher.iter(|| {
            member.merge(
                black_box(&document),
                &steps,
                black_box(&stale_frame),
                stale_revision,
            )
        });
    });
    group.bench_function("bare_diff", |bencher| {
        bencher.iter(|| diff(black_box(&room_text), black_box(&stale_frame)));
    });
    group.bench_function("latest", |bencher| {
        bencher.iter(|| {
            member.merge(
                black_box(&document),
                &steps,
                black_box(&latest_frame),
                Answered {
                    newest: Some(now),
                    previous: None,
                },
            )
        });
    });
    group.bench_function("bare_diff_latest", |bencher| {
        bencher.iter(|| diff(black_box(&room_text), black_box(&latest_frame)));
    });
    group.finish();
}

fn plain(criterion: &mut Criterion) {
    bench_size(criterion, "plain_100kB", 100_000);
    bench_size(criterion, "plain_1MB", 1_000_000);
}

criterion_group!(benches, plain);
criterion_main!(benches);
