//! One test per rule of a live room.

use std::sync::Arc;

use duet_app::ports::RepositoryError;
use duet_app::testing::{FixedClock, mock_store_holding, room_holding};
use duet_app::{Change, Rooms, SubmitError};
use duet_domain::{Answered, ClientId, Language, Role, Selection, TextOperation};
use duet_live::{
    CloseReason, Edit, Event, JoinError, JoinRequest, MAX_CONSECUTIVE_ERRORS, MAX_NAME, MemberKind,
    Refusal, Start,
};

use crate::{Fixture, Member};

fn operation(seq: u64, revision: u64, operation: TextOperation) -> Edit {
    Edit::Change {
        seq,
        revision,
        change: Change::Operation(operation),
        selection: None,
    }
}

fn insert(seq: u64, revision: u64, at: usize, text: &str, length: usize) -> Edit {
    operation(
        seq,
        revision,
        TextOperation::new()
            .retain(at)
            .insert(text)
            .retain(length - at),
    )
}

/// The welcome an operations member receives first.
async fn welcome(member: &mut Member) -> duet_live::Welcome {
    match member.next().await {
        Event::Welcome(welcome) => *welcome,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// Joins an operations member and reads its welcome.
async fn operations_member(fixture: &Fixture) -> (Member, duet_live::Welcome) {
    let mut member = fixture.join(MemberKind::Operations).await;
    let welcome = welcome(&mut member).await;
    (member, welcome)
}

#[tokio::test]
async fn concurrent_edits_are_committed_in_arrival_order_and_everyone_sees_that_order() {
    let fixture = Fixture::new("ac").await;
    let (mut alice, _) = operations_member(&fixture).await;
    let (mut bob, bob_welcome) = operations_member(&fixture).await;
    let alice_id = alice.membership.client().clone();
    assert!(
        matches!(alice.next().await, Event::Joined(joined) if joined.client == bob_welcome.client)
    );
    // Both made on revision 0: Alice's arrives first, Bob's is moved past it.
    alice
        .membership
        .edit(insert(1, 0, 1, "b", 2))
        .await
        .expect("sent");
    bob.membership
        .edit(insert(1, 0, 1, "B", 2))
        .await
        .expect("sent");
    let seen_by_alice = alice.labels(2).await;
    let seen_by_bob = bob.labels(2).await;
    let bob_id = bob.membership.client().clone();
    assert_eq!(
        seen_by_alice,
        [
            "ack 1 r1".to_owned(),
            format!("op r2 {bob_id} [1, \"B\", 2]")
        ]
    );
    assert_eq!(
        seen_by_bob,
        [
            format!("op r1 {alice_id} [1, \"b\", 1]"),
            "ack 1 r2".to_owned()
        ]
    );
    // The incoming edit wins the tie at the same place, as in ot.js servers.
    assert_eq!(fixture.stored().await, ("aBbc".to_owned(), 2));
}

#[tokio::test]
async fn an_edit_is_acknowledged_only_once_it_is_stored() {
    let fixture = Fixture::new("").await;
    let (mut alice, _) = operations_member(&fixture).await;
    alice
        .membership
        .edit(insert(1, 0, 0, "x", 0))
        .await
        .expect("sent");
    assert_eq!(alice.next_labels().await, ["ack 1 r1"]);
    // By the time the acknowledgement is out, the store has the edit.
    assert_eq!(fixture.stored().await, ("x".to_owned(), 1));
}

/// A room holding `code` over a store whose appends fail `failures` times and then succeed.
fn flaky_fixture(code: &str, failures: usize) -> Fixture {
    let room = room_holding(code);
    let mut repository = mock_store_holding(&room);
    repository
        .expect_append()
        .times(failures)
        .returning(|_, _, _| Err(RepositoryError::Unavailable("disk full".into())));
    repository.expect_append().returning(|_, _, _| Ok(()));
    let rooms = Rooms::new(Arc::new(repository), Arc::new(FixedClock::default()));
    Fixture::over(rooms, room.id(), 64)
}

#[tokio::test]
async fn an_edit_the_store_refuses_changes_nothing_and_can_be_sent_again() {
    let fixture = flaky_fixture("abc", 1);
    let (mut alice, _) = operations_member(&fixture).await;
    let (mut bob, _) = operations_member(&fixture).await;
    let _joined = alice.next().await;
    alice
        .membership
        .edit(insert(1, 0, 3, "!", 3))
        .await
        .expect("sent");
    match alice.next().await {
        Event::Refused {
            seq: Some(1),
            refusal: Refusal::Unavailable,
        } => {}
        other => panic!("expected the edit refused as unavailable, got {other:?}"),
    }
    // Nobody else heard of it, and the room is where it was: the same edit, resent with the
    // same seq on the same revision, is committed as revision 1.
    assert!(bob.nothing_queued());
    alice
        .membership
        .edit(insert(1, 0, 3, "!", 3))
        .await
        .expect("sent");
    assert_eq!(alice.next_labels().await, ["ack 1 r1"]);
    let alice_id = alice.membership.client().clone();
    assert_eq!(
        bob.next_labels().await,
        [format!("op r1 {alice_id} [3, \"!\"]")]
    );
}

#[tokio::test]
async fn a_resent_edit_is_acknowledged_again_and_applied_once() {
    let fixture = Fixture::new("").await;
    let (mut alice, _) = operations_member(&fixture).await;
    let (mut bob, _) = operations_member(&fixture).await;
    let _joined = alice.next().await;
    for _ in 0..2 {
        alice
            .membership
            .edit(insert(7, 0, 0, "x", 0))
            .await
            .expect("sent");
    }
    assert_eq!(alice.labels(2).await, ["ack 7 r1", "ack 7 r1"]);
    assert_eq!(bob.labels(1).await.len(), 1);
    assert_eq!(fixture.stored().await, ("x".to_owned(), 1));
    assert!(bob.nothing_queued(), "the resend is not broadcast");
}

#[tokio::test]
async fn a_client_resuming_with_its_token_gets_what_it_missed_and_replaces_its_old_connection() {
    let fixture = Fixture::new("").await;
    let (mut alice, first) = operations_member(&fixture).await;
    let (mut bob, _) = operations_member(&fixture).await;
    let _joined = alice.next().await;
    bob.membership
        .edit(insert(1, 0, 0, "hi", 0))
        .await
        .expect("sent");
    assert_eq!(bob.next_labels().await, ["ack 1 r1"]);
    // Alice reconnects before her old connection is gone, having seen revision 0.
    let mut again = fixture
        .join_as(
            MemberKind::Operations,
            Some(first.client.as_str()),
            Some(&first.resume_token),
            Some(0),
        )
        .await;
    let resumed = welcome(&mut again).await;
    assert_eq!(resumed.client, first.client);
    match resumed.start {
        Start::Missed(missed) => {
            assert_eq!(missed.len(), 1);
            assert_eq!(missed[0].revision, 1);
        }
        Start::Code(code) => panic!("expected the missed operations, got the code {code:?}"),
    }
    // The old connection is told it was replaced, after what was queued for it.
    let mut old_events = Vec::new();
    loop {
        match alice.next().await {
            Event::Closed(reason) => {
                assert_eq!(reason, CloseReason::Replaced);
                break;
            }
            event => old_events.push(event),
        }
    }
    assert!(
        old_events
            .iter()
            .any(|event| matches!(event, Event::Committed(_)))
    );
    // Someone naming Alice's id without her token is someone else, and replaces nobody.
    let mut impostor = fixture
        .join_as(
            MemberKind::Operations,
            Some(first.client.as_str()),
            None,
            None,
        )
        .await;
    assert_ne!(welcome(&mut impostor).await.client, first.client);
    assert!(matches!(again.next().await, Event::Joined(_)));
    assert!(again.nothing_queued(), "the resumed connection stays");
}

#[tokio::test]
async fn a_selection_made_before_an_edit_is_moved_across_it() {
    let fixture = Fixture::new("abcdef").await;
    let (mut alice, _) = operations_member(&fixture).await;
    let (mut bob, _) = operations_member(&fixture).await;
    let _joined = alice.next().await;
    alice
        .membership
        .edit(insert(1, 0, 0, "xx", 6))
        .await
        .expect("sent");
    assert_eq!(bob.labels(1).await.len(), 1);
    // Bob's cursor at 3 on revision 0 is at 5 once Alice's two characters are in.
    bob.membership
        .presence(0, Selection::cursor(3))
        .await
        .expect("sent");
    let _ack = alice.next_labels().await;
    let bob_id = bob.membership.client().clone();
    assert_eq!(
        alice.next_labels().await,
        [format!("presence {bob_id} 5..5")]
    );
    // A selection on a revision the room never had is refused, to its sender alone.
    bob.membership
        .presence(9, Selection::cursor(0))
        .await
        .expect("sent");
    assert!(matches!(
        bob.next().await,
        Event::Refused {
            seq: None,
            refusal: Refusal::Presence(SubmitError::BadRevision { base: 9, .. })
        }
    ));
}

#[tokio::test]
async fn members_are_told_who_joins_and_who_leaves() {
    let fixture = Fixture::new("").await;
    let (mut alice, _) = operations_member(&fixture).await;
    let (bob, bob_welcome) = operations_member(&fixture).await;
    assert_eq!(bob_welcome.participants.len(), 1, "Alice is there");
    match alice.next().await {
        Event::Joined(joined) => assert_eq!(joined.client, bob_welcome.client),
        other => panic!("expected Bob's arrival, got {other:?}"),
    }
    drop(bob);
    match alice.next().await {
        Event::Left(client) => assert_eq!(client, bob_welcome.client),
        other => panic!("expected Bob's departure, got {other:?}"),
    }
    // Whole-buffer members are listed in a welcome, but their comings and goings are not
    // announced: they send no presence.
    let plain = fixture.join(MemberKind::WholeBuffers).await;
    let (carol, carol_welcome) = operations_member(&fixture).await;
    assert_eq!(carol_welcome.participants.len(), 2);
    assert!(
        matches!(alice.next().await, Event::Joined(joined) if joined.client == carol_welcome.client)
    );
    drop(plain);
    // The whole-buffer member's leaving comes before Carol's edit, and is not announced.
    carol
        .membership
        .edit(insert(1, 0, 0, "x", 0))
        .await
        .expect("sent");
    assert!(matches!(alice.next().await, Event::Committed(_)));
}

#[tokio::test]
async fn too_many_bad_messages_in_a_row_close_the_member() {
    let fixture = Fixture::new("").await;
    let (mut alice, _) = operations_member(&fixture).await;
    let (mut bob, _) = operations_member(&fixture).await;
    let _joined = alice.next().await;
    for _ in 0..MAX_CONSECUTIVE_ERRORS {
        bob.membership
            .bad_message("not duet.v1".into())
            .await
            .expect("sent");
    }
    for _ in 1..MAX_CONSECUTIVE_ERRORS {
        assert!(matches!(
            bob.next().await,
            Event::Refused {
                refusal: Refusal::BadMessage(_),
                ..
            }
        ));
    }
    assert!(matches!(
        bob.next().await,
        Event::Refused {
            refusal: Refusal::BadMessage(_),
            ..
        }
    ));
    assert!(matches!(
        bob.next().await,
        Event::Closed(CloseReason::TooManyBadMessages)
    ));
    assert!(matches!(alice.next().await, Event::Left(_)));
}

#[tokio::test]
async fn a_good_message_resets_the_bad_message_count() {
    let fixture = Fixture::new("").await;
    let (mut bob, _) = operations_member(&fixture).await;
    for round in 0..2 {
        for _ in 1..MAX_CONSECUTIVE_ERRORS {
            bob.membership
                .bad_message("not duet.v1".into())
                .await
                .expect("sent");
        }
        bob.membership
            .edit(insert(
                round + 1,
                round,
                0,
                "x",
                usize::try_from(round).expect("small"),
            ))
            .await
            .expect("sent");
    }
    let mut closed = false;
    for _ in 0..2 * MAX_CONSECUTIVE_ERRORS {
        closed |= matches!(bob.next().await, Event::Closed(_));
    }
    assert!(!closed, "an acknowledged edit starts the count again");
}

#[tokio::test]
async fn a_member_that_falls_behind_is_dropped_and_the_room_goes_on() {
    let fixture = Fixture::with(Arc::default(), "", 4).await;
    let (mut alice, _) = operations_member(&fixture).await;
    // Bob never reads what he is sent.
    let bob = fixture.join(MemberKind::Operations).await;
    let bob_id = bob.membership.client().clone();
    let Member {
        membership: _bob_membership,
        inbox: mut bob_inbox,
    } = bob;
    let _joined = alice.next().await;
    let mut bob_left = false;
    for seq in 1..=20 {
        let length = usize::try_from(seq - 1).expect("small");
        alice
            .membership
            .edit(insert(seq, seq - 1, 0, "x", length))
            .await
            .expect("sent");
        // Alice's acknowledgements keep coming; Bob's departure comes once among them.
        loop {
            match alice.next().await {
                Event::Left(client) => {
                    assert_eq!(client, bob_id);
                    assert!(!bob_left, "Bob leaves once");
                    bob_left = true;
                }
                Event::Committed(entries) => {
                    let member = alice.membership.member();
                    let labels: Vec<_> = entries
                        .iter()
                        .filter_map(|entry| entry.read_by(member))
                        .collect();
                    assert_eq!(labels, [&format!("ack {seq} r{seq}")]);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(bob_left);
    tokio::time::timeout(crate::PATIENCE, &mut bob_inbox.kicked)
        .await
        .expect("Bob is told in time")
        .expect_err("Bob's place is gone");
    assert_eq!(fixture.stored().await.1, 20);
}

#[tokio::test]
async fn a_room_is_unloaded_after_its_last_member_leaves_and_a_racing_join_loses_nothing() {
    let fixture = Fixture::new("").await;
    for seq in 1..=30 {
        let (alice, welcome) = operations_member(&fixture).await;
        // What the previous member committed before leaving is in every welcome, whether
        // this join found the room still live or loaded it again.
        assert_eq!(welcome.start, Start::Code("x".repeat(seq - 1)));
        let mut alice = alice;
        let length = seq - 1;
        alice
            .membership
            .edit(insert(
                1,
                u64::try_from(length).expect("small"),
                0,
                "x",
                length,
            ))
            .await
            .expect("sent");
        assert_eq!(alice.labels(1).await.len(), 1);
        drop(alice);
    }
    // With nobody left and nobody coming, the room stops.
    tokio::time::timeout(crate::PATIENCE, async {
        while fixture.registry.is_live(fixture.room) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the room unloads");
    assert_eq!(fixture.stored().await, ("x".repeat(30), 30));
}

#[tokio::test]
async fn a_language_change_reaches_every_member_and_is_stored() {
    let fixture = Fixture::new("").await;
    let (mut alice, _) = operations_member(&fixture).await;
    let (mut bob, _) = operations_member(&fixture).await;
    let _joined = alice.next().await;
    let room = fixture
        .registry
        .change_language(fixture.room, Language::Rust)
        .await
        .expect("changed");
    assert_eq!(*room.language(), Language::Rust);
    assert!(matches!(
        alice.next().await,
        Event::Language(Language::Rust)
    ));
    assert!(matches!(bob.next().await, Event::Language(Language::Rust)));
    // And from a member.
    bob.membership
        .change_language(Language::Go)
        .await
        .expect("sent");
    assert!(matches!(alice.next().await, Event::Language(Language::Go)));
    assert!(matches!(bob.next().await, Event::Language(Language::Go)));
    let stored = fixture
        .registry
        .rooms()
        .get(fixture.room)
        .await
        .expect("found");
    assert_eq!(*stored.language(), Language::Go);
}

#[tokio::test]
async fn whole_buffer_members_receive_the_merged_code_and_their_buffers_become_edits() {
    let fixture = Fixture::new("hello").await;
    let mut plain = fixture.join(MemberKind::WholeBuffers).await;
    match plain.next().await {
        Event::Code {
            revision: 0,
            code,
            marked: false,
        } => assert_eq!(code, "hello"),
        other => panic!("expected the code, got {other:?}"),
    }
    let (mut alice, _) = operations_member(&fixture).await;
    alice
        .membership
        .edit(insert(1, 0, 5, "!", 5))
        .await
        .expect("sent");
    match plain.next().await {
        Event::Code {
            revision: 1,
            code,
            marked: true,
        } => assert_eq!(code, "hello!"),
        other => panic!("expected the merged code, got {other:?}"),
    }
    // The whole-buffer member, having taken revision 1, adds a line; Alice receives it as an
    // operation.
    let mut answered = Answered::default();
    answered.answer(1);
    plain
        .membership
        .edit(Edit::WholeBuffer {
            code: "hello!\nworld".into(),
            answered,
        })
        .await
        .expect("sent");
    let _ack = alice.next_labels().await;
    let plain_id = plain.membership.client().clone();
    assert_eq!(
        alice.next_labels().await,
        [format!("op r2 {plain_id} [6, \"\\nworld\"]")]
    );
    assert_eq!(fixture.stored().await, ("hello!\nworld".to_owned(), 2));
}

#[tokio::test]
async fn a_whole_buffer_member_that_cannot_resend_is_closed_when_its_edit_is_not_saved() {
    let fixture = flaky_fixture("abc", 1);
    let mut plain = fixture.join(MemberKind::WholeBuffers).await;
    let _code = plain.next().await;
    plain
        .membership
        .edit(Edit::WholeBuffer {
            code: "abcd".into(),
            answered: Answered::default(),
        })
        .await
        .expect("sent");
    match plain.next().await {
        Event::Closed(CloseReason::SaveFailed) => {}
        other => panic!("expected the member closed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_display_name_is_kept_to_its_first_characters() {
    let fixture = Fixture::new("").await;
    let (mut alice, _) = operations_member(&fixture).await;
    let long = "é".repeat(MAX_NAME + 10);
    let _bob = fixture
        .join_with(duet_live::JoinRequest {
            name: long.clone(),
            ..duet_live::JoinRequest::new(MemberKind::Operations)
        })
        .await;
    match alice.next().await {
        Event::Joined(joined) => assert_eq!(joined.name, "é".repeat(MAX_NAME)),
        other => panic!("expected Bob's arrival, got {other:?}"),
    }
}

/// Joins as `role`, for the user `subject`, naming `client`.
fn request(kind: MemberKind, role: Role, subject: &str, client: Option<&str>) -> JoinRequest {
    JoinRequest {
        role,
        subject: Some(subject.to_owned()),
        client: client.map(|id| ClientId::new(id).expect("a valid id")),
        ..JoinRequest::new(kind)
    }
}

#[tokio::test]
async fn a_viewer_reads_everything_and_changes_nothing() {
    let fixture = Fixture::new("ab").await;
    let mut viewer = fixture
        .join_with(request(MemberKind::Operations, Role::Viewer, "vi", None))
        .await;
    let _welcome = welcome(&mut viewer).await;
    let (mut editor, _) = operations_member(&fixture).await;
    let _joined = viewer.next().await;
    viewer
        .membership
        .edit(insert(1, 0, 0, "x", 2))
        .await
        .expect("sent");
    match viewer.next().await {
        Event::Refused {
            seq: Some(1),
            refusal: Refusal::Forbidden,
        } => {}
        other => panic!("expected the edit refused, got {other:?}"),
    }
    viewer
        .membership
        .change_language(Language::Rust)
        .await
        .expect("sent");
    assert!(matches!(
        viewer.next().await,
        Event::Refused {
            seq: None,
            refusal: Refusal::Forbidden
        }
    ));
    // Presence is allowed; the editor sees it, then edits, and the viewer sees the edit.
    viewer
        .membership
        .presence(0, Selection::cursor(1))
        .await
        .expect("sent");
    let viewer_id = viewer.membership.client().clone();
    assert_eq!(
        editor.next_labels().await,
        [format!("presence {viewer_id} 1..1")]
    );
    editor
        .membership
        .edit(insert(1, 0, 2, "c", 2))
        .await
        .expect("sent");
    let editor_id = editor.membership.client().clone();
    assert_eq!(
        viewer.next_labels().await,
        [format!("op r1 {editor_id} [2, \"c\"]")]
    );
    assert_eq!(fixture.stored().await, ("abc".to_owned(), 1));
    let room = fixture
        .registry
        .rooms()
        .get(fixture.room)
        .await
        .expect("found");
    assert_eq!(*room.language(), Language::default());
}

#[tokio::test]
async fn a_whole_buffer_viewer_that_sends_a_buffer_is_closed() {
    let fixture = Fixture::new("ab").await;
    let mut viewer = fixture
        .join_with(request(MemberKind::WholeBuffers, Role::Viewer, "vi", None))
        .await;
    let _code = viewer.next().await;
    viewer
        .membership
        .edit(Edit::WholeBuffer {
            code: "abc".into(),
            answered: Answered::default(),
        })
        .await
        .expect("sent");
    assert!(matches!(
        viewer.next().await,
        Event::Closed(CloseReason::Forbidden)
    ));
    assert_eq!(fixture.stored().await, ("ab".to_owned(), 0));
}

#[tokio::test]
async fn a_full_room_refuses_one_more_member() {
    let fixture = Fixture::new("").await;
    let registry = Arc::new(
        duet_live::Registry::new(fixture.registry.rooms().clone(), crate::Labels, 16)
            .with_max_members(2),
    );
    let join = || registry.join(fixture.room, JoinRequest::new(MemberKind::Operations));
    let first = join().await.expect("joins");
    let _second = join().await.expect("joins");
    assert!(matches!(
        join().await,
        Err(JoinError::RoomFull { limit: 2 })
    ));
    // A place is free again once someone leaves.
    drop(first);
    tokio::time::timeout(crate::PATIENCE, async {
        loop {
            match join().await {
                Ok(member) => return member,
                Err(JoinError::RoomFull { .. }) => tokio::task::yield_now().await,
                Err(error) => panic!("{error}"),
            }
        }
    })
    .await
    .expect("a place frees up");
}

#[tokio::test]
async fn a_client_resuming_in_a_full_room_takes_its_old_place() {
    let fixture = Fixture::new("").await;
    let registry = Arc::new(
        duet_live::Registry::new(fixture.registry.rooms().clone(), crate::Labels, 16)
            .with_max_members(1),
    );
    let (_old, mut inbox) = registry
        .join(fixture.room, JoinRequest::new(MemberKind::Operations))
        .await
        .expect("joins");
    let Ok(Some(Event::Welcome(welcome))) =
        tokio::time::timeout(crate::PATIENCE, inbox.events.recv()).await
    else {
        panic!("expected a welcome");
    };
    // Someone else is refused; the client itself, proving it, replaces its old connection.
    assert!(matches!(
        registry
            .join(fixture.room, JoinRequest::new(MemberKind::Operations))
            .await,
        Err(JoinError::RoomFull { limit: 1 })
    ));
    let impostor = JoinRequest {
        client: Some(welcome.client.clone()),
        ..JoinRequest::new(MemberKind::Operations)
    };
    assert!(matches!(
        registry.join(fixture.room, impostor).await,
        Err(JoinError::RoomFull { limit: 1 })
    ));
    let resumed = JoinRequest {
        client: Some(welcome.client.clone()),
        resume_token: Some(welcome.resume_token.clone()),
        ..JoinRequest::new(MemberKind::Operations)
    };
    let _new = registry.join(fixture.room, resumed).await.expect("resumes");
    assert!(matches!(
        tokio::time::timeout(crate::PATIENCE, inbox.events.recv()).await,
        Ok(Some(Event::Closed(CloseReason::Replaced)))
    ));
}

#[tokio::test]
async fn a_client_id_is_never_taken_over_by_another_user() {
    let fixture = Fixture::new("").await;
    let mut ada = fixture
        .join_with(request(
            MemberKind::Operations,
            Role::Editor,
            "ada",
            Some("laptop"),
        ))
        .await;
    let ada_welcome = welcome(&mut ada).await;
    assert_eq!(ada_welcome.client.as_str(), "laptop");
    // Eve names the id, even with ada's resume token: refused, and ada stays.
    let eve = JoinRequest {
        resume_token: Some(ada_welcome.resume_token.clone()),
        ..request(MemberKind::Operations, Role::Editor, "eve", Some("laptop"))
    };
    match fixture.registry.join(fixture.room, eve).await {
        Err(JoinError::ClientTaken(client)) => assert_eq!(client.as_str(), "laptop"),
        Err(error) => panic!("expected the id refused, got {error}"),
        Ok(_) => panic!("expected the id refused, got a membership"),
    }
    assert!(ada.nothing_queued(), "ada was not replaced");
    // Ada herself resumes, replacing her old connection.
    let resumed = JoinRequest {
        resume_token: Some(ada_welcome.resume_token),
        ..request(MemberKind::Operations, Role::Editor, "ada", Some("laptop"))
    };
    let _again = fixture.join_with(resumed).await;
    assert!(matches!(
        ada.next().await,
        Event::Closed(CloseReason::Replaced)
    ));
}

#[tokio::test]
async fn deleting_a_room_closes_its_members_and_its_data_is_gone() {
    let fixture = Fixture::new("secret").await;
    let (mut alice, _) = operations_member(&fixture).await;
    let mut plain = fixture.join(MemberKind::WholeBuffers).await;
    let _code = plain.next().await;
    fixture
        .registry
        .delete(fixture.room)
        .await
        .expect("deleted");
    for member in [&mut alice, &mut plain] {
        assert!(matches!(
            member.next().await,
            Event::Closed(CloseReason::RoomDeleted)
        ));
    }
    assert!(matches!(
        fixture
            .registry
            .join(fixture.room, JoinRequest::new(MemberKind::Operations))
            .await,
        Err(JoinError::NotFound(_))
    ));
    assert!(matches!(
        fixture.registry.rooms().get(fixture.room).await,
        Err(duet_app::GetRoomError::NotFound(_))
    ));
    assert!(matches!(
        fixture.registry.delete(fixture.room).await,
        Err(JoinError::NotFound(_))
    ));
}
