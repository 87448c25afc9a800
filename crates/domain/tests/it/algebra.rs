//! The laws of text operations, checked on random texts with non-ASCII and non-BMP characters,
//! and ot.js's behaviour on hand-written cases.

use duet_domain::{Document, OperationError, TextOperation, diff};
use proptest::prelude::*;

/// Characters of one, two, three and four UTF-8 bytes, and two UTF-16 units for the emoji.
const ALPHABET: &[char] = &['a', 'b', ' ', '\n', 'é', 'ß', '中', '😀', '🎉'];

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(ALPHABET), 0..40)
        .prop_map(|chars| chars.into_iter().collect())
}

type Choices = Vec<(u8, usize, String)>;

fn choices() -> impl Strategy<Value = Choices> {
    proptest::collection::vec((any::<u8>(), 0..4_usize, text()), 0..12)
}

/// Builds an operation on `base` from random choices: runs of retains and deletes over whole
/// characters, and inserts between them.
fn operation(base: &str, choices: &Choices) -> TextOperation {
    let characters: Vec<char> = base.chars().collect();
    let mut operation = TextOperation::new();
    let mut index = 0;
    for (kind, length, inserted) in choices {
        let end = (index + length + 1).min(characters.len());
        let units: usize = characters[index..end].iter().map(|c| c.len_utf16()).sum();
        match kind % 3 {
            0 => operation = operation.retain(units),
            1 => operation = operation.delete(units),
            _ => {
                operation = operation.insert(inserted);
                continue;
            }
        }
        index = end;
    }
    let rest: usize = characters[index..].iter().map(|c| c.len_utf16()).sum();
    operation.retain(rest)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn transform_converges(base in text(), first in choices(), second in choices()) {
        let a = operation(&base, &first);
        let b = operation(&base, &second);
        let (a_prime, b_prime) = TextOperation::transform(&a, &b).expect("same base");
        let left = b_prime.apply(&a.apply(&base).expect("a applies")).expect("b' applies");
        let right = a_prime.apply(&b.apply(&base).expect("b applies")).expect("a' applies");
        prop_assert_eq!(left, right);
    }

    #[test]
    fn compose_is_applying_in_turn(base in text(), first in choices(), second in choices()) {
        let a = operation(&base, &first);
        let after_a = a.apply(&base).expect("a applies");
        let b = operation(&after_a, &second);
        let composed = a.compose(&b).expect("b follows a");
        prop_assert_eq!(
            composed.apply(&base).expect("composed applies"),
            b.apply(&after_a).expect("b applies")
        );
    }

    #[test]
    fn invert_undoes(base in text(), first in choices()) {
        let a = operation(&base, &first);
        let inverse = a.invert(&base).expect("inverts");
        let undone = inverse.apply(&a.apply(&base).expect("applies")).expect("inverse applies");
        prop_assert_eq!(undone, base);
    }

    #[test]
    fn json_round_trips(base in text(), first in choices()) {
        let a = operation(&base, &first);
        let json = serde_json::to_string(&a).expect("serialises");
        let back: TextOperation = serde_json::from_str(&json).expect("parses");
        prop_assert_eq!(back, a);
    }

    #[test]
    fn the_rope_document_agrees_with_strings(base in text(), first in choices(), second in choices()) {
        let a = operation(&base, &first);
        let mut document = Document::new(&base, 0);
        document.apply(&a).expect("applies");
        let after_a = a.apply(&base).expect("applies");
        prop_assert_eq!(document.text(), after_a.clone());
        let b = operation(&after_a, &second);
        prop_assert_eq!(document.invert(&b).expect("inverts"), b.invert(&after_a).expect("inverts"));
    }

    #[test]
    fn a_document_follows_a_sequence_of_edits(base in text(), steps in proptest::collection::vec(choices(), 1..6)) {
        let mut document = Document::new(&base, 0);
        let mut expected = base;
        for step in &steps {
            let operation = operation(&expected, step);
            expected = operation.apply(&expected).expect("applies");
            document.apply(&operation).expect("applies");
            prop_assert_eq!(document.text(), expected.clone());
        }
    }

    #[test]
    fn diff_produces_the_new_text(old in text(), new in text()) {
        prop_assert_eq!(diff(&old, &new).apply(&old).expect("applies"), new);
    }
}

#[test]
fn both_inserting_at_one_place_puts_the_first_operation_first() {
    let a = TextOperation::new().retain(1).insert("A").retain(1);
    let b = TextOperation::new().retain(1).insert("B").retain(1);
    let (a_prime, b_prime) = TextOperation::transform(&a, &b).expect("same base");
    assert_eq!(
        a_prime,
        TextOperation::new().retain(1).insert("A").retain(2)
    );
    assert_eq!(
        b_prime,
        TextOperation::new().retain(2).insert("B").retain(1)
    );
    let merged = b_prime
        .apply(&a.apply("xy").expect("applies"))
        .expect("applies");
    assert_eq!(merged, "xABy");
}

#[test]
fn operations_stay_normalised() {
    let operation = TextOperation::new()
        .retain(2)
        .retain(3)
        .delete(1)
        .insert("ab")
        .delete(2)
        .insert("c")
        .retain(0)
        .insert("");
    // ot.js order: inserts before deletes, neighbours merged, nothing empty.
    assert_eq!(operation.to_string(), r#"[5, "abc", -3]"#);
    assert_eq!(operation.base_len(), 8);
    assert_eq!(operation.target_len(), 8);
}

#[test]
fn reads_the_ot_js_json_form() {
    let operation: TextOperation = serde_json::from_str(r#"[5, "abc", -2, 10]"#).expect("parses");
    assert_eq!(
        operation,
        TextOperation::new()
            .retain(5)
            .insert("abc")
            .delete(2)
            .retain(10)
    );
    assert_eq!(
        serde_json::to_string(&operation).expect("writes"),
        r#"[5,"abc",-2,10]"#
    );
    // Unnormalised input is normalised on the way in.
    let operation: TextOperation = serde_json::from_str(r#"[1, 2, -1, "x"]"#).expect("parses");
    assert_eq!(operation.to_string(), r#"[3, "x", -1]"#);
    for bad in [
        "[0]",
        r#"[""]"#,
        "[1.5]",
        "[null]",
        "{}",
        "[true]",
        r#"["\ud83d"]"#,
    ] {
        assert!(
            serde_json::from_str::<TextOperation>(bad).is_err(),
            "{bad} was accepted"
        );
    }
}

#[test]
fn mismatched_operations_are_refused() {
    let a = TextOperation::new().retain(3);
    let b = TextOperation::new().retain(4);
    assert_eq!(
        TextOperation::transform(&a, &b),
        Err(OperationError::BaseLengthMismatch {
            expected: 3,
            actual: 4
        })
    );
    assert!(a.compose(&b).is_err());
    assert!(a.apply("ab").is_err());
    // Composing may not cut an inserted emoji in half.
    let insert_emoji = TextOperation::new().insert("😀");
    let cut = TextOperation::new().retain(1).delete(1);
    assert_eq!(
        insert_emoji.compose(&cut),
        Err(OperationError::SplitsSurrogatePair { position: 1 })
    );
}

#[test]
fn lengths_past_what_a_text_can_hold_are_refused_not_wrapped() {
    // Each of these once summed to a small length with wrapping arithmetic, so that an edit
    // of a three-unit room was accepted as something else entirely.
    for hostile in [
        "[9223372036854775808,9223372036854775808,\"X\",3]",
        "[-9223372036854775808,-9223372036854775808,3]",
        "[3,\"W\",18446744073709551615,1]",
        "[18446744073709551615,4]",
        "[9007199254740992]",
        "[-9007199254740992]",
        "[9007199254740991,1]",
        "[4503599627370496,-4503599627370496]",
    ] {
        let parsed = serde_json::from_str::<TextOperation>(hostile);
        assert!(parsed.is_err(), "{hostile} was accepted as {parsed:?}");
    }
    // The largest length JavaScript counts exactly is still an operation.
    let largest: TextOperation = serde_json::from_str("[9007199254740990,-1]").expect("parses");
    assert_eq!(largest.base_len(), TextOperation::MAX_LENGTH);
    assert_eq!(
        serde_json::from_str::<TextOperation>(&serde_json::to_string(&largest).expect("writes"))
            .expect("reads back"),
        largest
    );
    assert_eq!(
        TextOperation::new().try_retain(TextOperation::MAX_LENGTH),
        Ok(TextOperation::new().retain(TextOperation::MAX_LENGTH))
    );
    assert_eq!(
        TextOperation::new()
            .retain(1)
            .try_delete(TextOperation::MAX_LENGTH),
        Err(OperationError::TooLong {
            limit: TextOperation::MAX_LENGTH
        })
    );
}

#[test]
fn positions_far_past_the_end_move_without_overflowing() {
    let insert = TextOperation::new().insert("ab").retain(3);
    assert_eq!(insert.transform_position(usize::MAX), usize::MAX);
    let selection = duet_domain::Selection {
        anchor: 1_000_000,
        head: usize::MAX,
    };
    assert_eq!(
        selection.transform(&insert).clamp(5),
        duet_domain::Selection { anchor: 5, head: 5 }
    );
}

/// Two inserts at one place on a text just under the limit: each operation fits, the merged
/// text does not. Transform used to return operations past the limit that the JSON form then
/// refused to read back; now it refuses them itself.
#[test]
fn transform_refuses_a_merged_text_past_the_limit() {
    let just_under = TextOperation::MAX_LENGTH - 1;
    let a: TextOperation =
        serde_json::from_str(&format!("[\"x\",{just_under}]")).expect("fits the limit");
    let b: TextOperation =
        serde_json::from_str(&format!("[\"y\",{just_under}]")).expect("fits the limit");
    let too_long = Err(OperationError::TooLong {
        limit: TextOperation::MAX_LENGTH,
    });
    assert_eq!(TextOperation::transform(&a, &b), too_long);
    assert_eq!(TextOperation::transform(&b, &a), too_long);
    // One insert on its own still transforms.
    let retain = TextOperation::new().retain(just_under);
    let (a_prime, retain_prime) = TextOperation::transform(&a, &retain).expect("fits");
    assert_eq!(a_prime.target_len(), TextOperation::MAX_LENGTH);
    assert_eq!(retain_prime.target_len(), TextOperation::MAX_LENGTH);
}
