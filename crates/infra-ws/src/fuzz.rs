//! Hostile frames: everything a `duet.v1` or plain client can send, through the parser and on
//! into the room's commit path (`Rooms::commit` over the in-memory store, as a room's session
//! calls it).
//! Nothing may panic; every committed operation must read back from the log and from its JSON
//! form; the room's text must be what its committed operations make of the text it began with.
//! (The parser alone is fuzzed in `duet_protocol`, whose strategies these frames are made of.)
//!
//! The default case counts keep `cargo test` quick; `make fuzz` runs the same properties
//! with many more cases through `PROPTEST_CASES`.

use std::sync::Arc;

use duet_app::ports::RoomRepository;
use duet_app::testing::{FixedClock, InMemoryRoomRepository};
use duet_app::{Change, LiveRoom, LiveSettings, NewRoom, Outcome, Rooms, Submission};
use duet_domain::{ClientId, CommittedOperation, Selection, utf16_len};
use duet_protocol::ClientMessage;
use duet_protocol::testing::{check_round_trip, config, ops_json, room_text, text};
use proptest::prelude::*;
use serde_json::Value;

const MAX_SEQ: u64 = Submission::MAX_SEQ;

/// One client's edit, to be written as a frame against the room as it is when it is sent.
#[derive(Clone, Debug)]
enum Edit {
    /// An operation made on the text at its base from these choices.
    Made(Vec<(u8, usize, String)>),
    /// An `ops` array as any client might send it.
    Raw(String),
    /// A whole buffer.
    Code(String),
}

#[derive(Clone, Debug)]
struct Step {
    client: usize,
    /// `None`: the client's next number; otherwise a number chosen to provoke.
    seq: Option<u64>,
    /// How many revisions behind the room the edit is made (`u8::MAX`: ahead of it).
    behind: u8,
    edit: Edit,
    selection: Option<(usize, usize)>,
    /// Whether the batch is committed after this step.
    commit: bool,
}

fn step() -> impl Strategy<Value = Step> {
    let seq = prop_oneof![
        8 => Just(None),
        1 => proptest::sample::select(vec![0, 1, MAX_SEQ, MAX_SEQ + 1, u64::MAX]).prop_map(Some),
    ];
    let behind = prop_oneof![6 => Just(0_u8), 3 => 1_u8..4, 1 => Just(u8::MAX)];
    let choices = proptest::collection::vec((any::<u8>(), 0_usize..4, room_text()), 0..5);
    let edit = prop_oneof![
        6 => choices.prop_map(Edit::Made),
        2 => ops_json().prop_map(Edit::Raw),
        2 => text().prop_map(Edit::Code),
    ];
    let position = prop_oneof![0_usize..20, Just(usize::MAX)];
    (
        0_usize..3,
        seq,
        behind,
        edit,
        proptest::option::of((position.clone(), position)),
        proptest::bool::weighted(0.4),
    )
        .prop_map(|(client, seq, behind, edit, selection, commit)| Step {
            client,
            seq,
            behind,
            edit,
            selection,
            commit,
        })
}

/// An operation on `base` from random choices: retains and deletes over whole characters, or
/// (for some choices) over half of one, and inserts between them.
fn made_operation(base: &str, choices: &[(u8, usize, String)]) -> String {
    let characters: Vec<char> = base.chars().collect();
    let mut components = Vec::new();
    let mut index = 0;
    for (kind, length, inserted) in choices {
        let end = (index + length + 1).min(characters.len());
        let units: usize = characters[index..end].iter().map(|c| c.len_utf16()).sum();
        let units = if kind % 7 == 6 { units + 1 } else { units };
        match kind % 3 {
            _ if units == 0 => continue,
            0 => components.push(units.to_string()),
            1 => components.push(format!("-{units}")),
            _ => {
                if !inserted.is_empty() {
                    components.push(Value::String(inserted.clone()).to_string());
                }
                continue;
            }
        }
        index = end;
    }
    let rest: usize = characters[index..].iter().map(|c| c.len_utf16()).sum();
    if rest > 0 {
        components.push(rest.to_string());
    }
    format!("[{}]", components.join(","))
}

fn client(index: usize) -> ClientId {
    ClientId::new(&format!("client-{index}")).unwrap_or_else(|_| ClientId::generate())
}

fn runtime() -> Result<tokio::runtime::Runtime, TestCaseError> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|error| TestCaseError::fail(error.to_string()))
}

async fn open_room(rooms: &Rooms, code: &str) -> Result<LiveRoom, TestCaseError> {
    let room = rooms
        .create(NewRoom {
            language: None,
            code: Some(code.to_owned()),
        })
        .await
        .map_err(|error| TestCaseError::fail(error.to_string()))?;
    rooms
        .open(room.id())
        .await
        .map_err(|error| TestCaseError::fail(error.to_string()))
}

/// Checks what a room and its store hold after `committed` were committed on `initial`: the
/// log reads back in order, each operation's JSON reads back, replaying the log gives the
/// room's text, and the room opened again from the store has that text.
async fn check_room(
    rooms: &Rooms,
    repository: &InMemoryRoomRepository,
    live: &LiveRoom,
    initial: &str,
    committed: &[CommittedOperation],
) -> Result<(), TestCaseError> {
    let id = live.room().id();
    let log = repository
        .operations_since(id, 0)
        .await
        .map_err(|error| TestCaseError::fail(error.to_string()))?;
    prop_assert_eq!(log.as_slice(), committed);
    let mut text = initial.to_owned();
    for (index, operation) in log.iter().enumerate() {
        prop_assert_eq!(
            operation.revision,
            u64::try_from(index).unwrap_or(u64::MAX) + 1
        );
        check_round_trip(&operation.operation)?;
        text = operation
            .operation
            .apply(&text)
            .map_err(|error| TestCaseError::fail(format!("the log does not replay: {error}")))?;
    }
    prop_assert_eq!(&live.document().text(), &text);
    let reopened = rooms
        .open(id)
        .await
        .map_err(|error| TestCaseError::fail(error.to_string()))?;
    prop_assert_eq!(reopened.document(), live.document());
    prop_assert_eq!(repository.quarantined(id), 0);
    Ok(())
}

/// Commits `batch`, checking each outcome; committed operations are added to `committed`.
async fn commit(
    rooms: &Rooms,
    live: &mut LiveRoom,
    batch: Vec<Submission>,
    committed: &mut Vec<CommittedOperation>,
) -> Result<(), TestCaseError> {
    let length = batch.len();
    let outcomes = rooms
        .commit(live, batch)
        .await
        .map_err(|error| TestCaseError::fail(format!("the in-memory store failed: {error}")))?;
    prop_assert_eq!(outcomes.len(), length);
    for outcome in outcomes {
        match outcome {
            Outcome::Committed(operation) => {
                // Each committed operation applies to the text the ones before it left.
                let before = committed.last().map(|last| last.operation.target_len());
                if let Some(before) = before {
                    prop_assert_eq!(operation.operation.base_len(), before);
                }
                prop_assert!(operation.seq <= MAX_SEQ);
                check_round_trip(&operation.operation)?;
                committed.push(CommittedOperation::clone(&operation));
            }
            Outcome::Duplicate { revision } => {
                prop_assert!(revision >= 1 && revision <= live.document().revision());
            }
            Outcome::Rejected(_) => {}
        }
    }
    let expected = committed.last().map(|last| last.operation.target_len());
    if let Some(expected) = expected {
        prop_assert_eq!(live.document().len_utf16(), expected);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn accepted_edits_commit_and_read_back(
        initial in room_text(),
        steps in proptest::collection::vec(step(), 1..16),
        history in 1_usize..6,
    ) {
        runtime()?.block_on(async {
            let repository = Arc::new(InMemoryRoomRepository::default());
            let settings = LiveSettings { history, snapshot_every: 3, ..LiveSettings::default() };
            let rooms = Rooms::with_settings(repository.clone(), Arc::new(FixedClock::default()), settings);
            let mut live = open_room(&rooms, &initial).await?;
            let mut committed = Vec::new();
            let mut seqs = [0_u64; 3];
            let mut batch = Vec::new();
            for step in steps {
                let current = live.document().revision();
                let revision = if step.behind == u8::MAX {
                    current + 1
                } else {
                    current.saturating_sub(u64::from(step.behind))
                };
                let seq = step.seq.unwrap_or_else(|| {
                    seqs[step.client] += 1;
                    seqs[step.client]
                });
                let selection = step.selection.map_or(String::new(), |(anchor, head)| {
                    format!(r#","selection":{{"anchor":{anchor},"head":{head}}}"#)
                });
                let frame = match &step.edit {
                    Edit::Made(choices) => {
                        let base = live.text_at(revision).unwrap_or_else(|_| live.document().text());
                        let ops = made_operation(&base, choices);
                        format!(r#"{{"type":"op","revision":{revision},"seq":{seq},"ops":{ops}{selection}}}"#)
                    }
                    Edit::Raw(ops) => {
                        format!(r#"{{"type":"op","revision":{revision},"seq":{seq},"ops":{ops}{selection}}}"#)
                    }
                    Edit::Code(code) => {
                        let code = Value::String(code.clone());
                        format!(r#"{{"type":"code","revision":{revision},"seq":{seq},"code":{code}}}"#)
                    }
                };
                let (change, selection) = match ClientMessage::decode(&frame) {
                    Ok(ClientMessage::Op { revision: sent, seq: sent_seq, ops, selection }) => {
                        prop_assert_eq!((sent, sent_seq), (revision, seq));
                        (Change::Operation(ops), selection)
                    }
                    Ok(ClientMessage::Code { code, .. }) => (Change::Code(code), None),
                    Ok(other) => return Err(TestCaseError::fail(format!("{frame} read as {other:?}"))),
                    // Refused at the door: nothing reaches the room.
                    Err(_) => {
                        prop_assert!(matches!(step.edit, Edit::Raw(_)), "{}", frame);
                        continue;
                    }
                };
                if let Some(selection) = selection {
                    // Presence goes the same way: moved to the room's revision and clamped.
                    let length = live.document().len_utf16();
                    if let Ok(moved) = live.transform_selection(selection, revision) {
                        prop_assert!(moved.anchor <= length && moved.head <= length);
                    }
                }
                batch.push(Submission { client: client(step.client), seq, base: revision, change });
                if step.commit {
                    commit(&rooms, &mut live, std::mem::take(&mut batch), &mut committed).await?;
                }
            }
            commit(&rooms, &mut live, batch, &mut committed).await?;
            if committed.is_empty() {
                prop_assert_eq!(live.document().text(), initial.clone());
            }
            check_room(&rooms, &repository, &live, &initial, &committed).await
        })?;
    }

    #[test]
    fn whole_buffers_become_the_room_text(
        initial in room_text(),
        buffers in proptest::collection::vec(
            prop_oneof![4 => text(), 1 => Just(String::new()), 1 => room_text().prop_map(|text| text.repeat(40))],
            1..10,
        ),
    ) {
        runtime()?.block_on(async {
            let repository = Arc::new(InMemoryRoomRepository::default());
            let settings = LiveSettings { history: 4, snapshot_every: 3, ..LiveSettings::default() };
            let rooms = Rooms::with_settings(repository.clone(), Arc::new(FixedClock::default()), settings);
            let mut live = open_room(&rooms, &initial).await?;
            let mut committed = Vec::new();
            let plain = client(9);
            for (seq, buffer) in (1..).zip(buffers) {
                let before = live.document().text();
                let submission = Submission {
                    client: plain.clone(),
                    seq,
                    base: live.document().revision(),
                    change: Change::Code(buffer.clone()),
                };
                commit(&rooms, &mut live, vec![submission], &mut committed).await?;
                if buffer.contains('\0') {
                    // A NUL cannot be stored: refused, nothing changed.
                    prop_assert_eq!(live.document().text(), before);
                } else {
                    prop_assert_eq!(live.document().text(), buffer.clone());
                    prop_assert_eq!(live.document().len_utf16(), utf16_len(&buffer));
                }
                let cursor = Selection::cursor(usize::MAX);
                let moved = live.transform_selection(cursor, live.document().revision().saturating_sub(1));
                prop_assert!(moved.is_err() || moved.is_ok_and(|moved| moved.head <= live.document().len_utf16()));
            }
            check_room(&rooms, &repository, &live, &initial, &committed).await
        })?;
    }
}
