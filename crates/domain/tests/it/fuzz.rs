//! Hostile input for operations: everything a client can put in an `ops` array, and the
//! algebra run on whatever parses. Nothing may panic or wrap, and an operation the JSON form
//! accepts (or the algebra produces from accepted ones) must read back as itself.
//!
//! The default case counts keep `cargo test` quick; `make fuzz` runs the same properties
//! with many more cases through `PROPTEST_CASES`.

use duet_domain::{Component, Document, Selection, TextOperation, utf16_len};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// `cases` unless `PROPTEST_CASES` asks for another number (`with_cases` ignores it).
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        ..Config::default()
    }
}

const TWO_53: u64 = 1 << 53;
const TWO_63: u64 = 1 << 63;

/// Numbers where limits and conversions live: zero, the largest exact JavaScript integer and
/// its neighbours, the edges of i64 and u64, and the same negated.
fn edge_number() -> impl Strategy<Value = i128> {
    let edges = [
        0,
        1,
        2,
        3,
        i128::from(TWO_53) - 2,
        i128::from(TWO_53) - 1,
        i128::from(TWO_53),
        i128::from(TWO_53) + 1,
        i128::from(TWO_63) - 1,
        i128::from(TWO_63),
        i128::from(TWO_63) + 1,
        i128::from(u64::MAX) - 1,
        i128::from(u64::MAX),
        i128::from(u64::MAX) + 1,
    ];
    (proptest::sample::select(edges.to_vec()), any::<bool>())
        .prop_map(|(value, negative)| if negative { -value } else { value })
}

/// An integer as JSON text, from the whole i64/u64 range and a little past it.
fn integer_json() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (-4_i64..40).prop_map(|value| value.to_string()),
        3 => edge_number().prop_map(|value| value.to_string()),
        1 => any::<i64>().prop_map(|value| value.to_string()),
        1 => any::<u64>().prop_map(|value| value.to_string()),
        1 => (-3_i128..=3).prop_map(|offset| (i128::from(TWO_53) - 1 + offset).to_string()),
    ]
}

/// Numbers that are not integers to JSON, or are integers only in another spelling.
fn float_json() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |value| value.is_finite())
            .prop_map(|value| format!("{value:?}")),
        proptest::sample::select(vec![
            "-0",
            "0.0",
            "1.0",
            "-1.5",
            "1e3",
            "1E+2",
            "-2e0",
            "9007199254740991.0",
            "9.007199254740993e15",
            "1e400",
            "-1e400",
            "5e-324",
        ])
        .prop_map(String::from),
    ]
}

/// Characters a client may type or smuggle: ASCII, multi-byte, outside the BMP (two UTF-16
/// units), NUL and other controls, and what JSON must escape.
const CHARACTERS: &[char] = &[
    'a',
    'b',
    ' ',
    '\n',
    '\r',
    '\t',
    '\0',
    '\u{1}',
    '\u{7f}',
    '"',
    '\\',
    '/',
    'é',
    'ß',
    '中',
    '\u{2028}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    '😀',
    '🎉',
    '\u{10000}',
    '\u{10ffff}',
];

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(CHARACTERS), 0..24)
        .prop_map(|characters| characters.into_iter().collect())
}

/// Text a room may hold: anything but NUL.
fn room_text() -> impl Strategy<Value = String> {
    text().prop_map(|text| text.replace('\0', ""))
}

/// A string as JSON text: escaped properly, or with raw escapes serde_json must judge
/// (lone and reversed surrogates, NUL).
fn string_json() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => text().prop_map(|text| serde_json::Value::String(text).to_string()),
        1 => proptest::sample::select(vec![
            r#""""#, r#""\ud800""#, r#""\udc00""#, r#""a\ud83d""#, r#""\ude00\ud83d""#,
            r#""\ud83d\ude00""#, r#""\u0000""#, r#""\ud83dx""#, r#""\uDBFF\uDFFF""#, r#""\x""#,
            r#""\u12""#, "\"\u{0}\"", "\"\n\"",
        ])
        .prop_map(String::from),
    ]
}

/// Anything else JSON can hold, nested a little.
fn junk_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("{}".to_owned()),
        Just("[]".to_owned()),
        integer_json(),
        string_json(),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec(inner, 0..3).prop_map(|items| {
                let fields: Vec<String> = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| format!("\"k{index}\":{item}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

fn component_json() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => integer_json(),
        4 => string_json(),
        1 => float_json(),
        1 => junk_json(),
    ]
}

/// What a client might send as `ops`: mostly arrays of components, sometimes anything.
fn operation_json() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::collection::vec(component_json(), 0..8)
            .prop_map(|components| format!("[{}]", components.join(","))),
        1 => junk_json(),
        1 => ".*",
    ]
}

/// A count for a built operation: small (so operations fit real texts) or near the limits.
fn count() -> impl Strategy<Value = usize> {
    let max = TextOperation::MAX_LENGTH;
    prop_oneof![
        6 => 1_usize..6,
        1 => proptest::sample::select(vec![max - 1, max, max + 1, max / 2, usize::MAX]),
    ]
}

/// An operation built from arbitrary components with the checked builders, then padded with
/// a retain (when it still fits) to span `base` units, so that pairs of them often match.
fn built_operation(base: usize) -> impl Strategy<Value = TextOperation> {
    let component = prop_oneof![
        count().prop_map(Component::Retain),
        count().prop_map(Component::Delete),
        text().prop_map(|text| Component::Insert(text.as_str().into())),
    ];
    proptest::collection::vec(component, 0..6).prop_map(move |components| {
        let mut operation = TextOperation::new();
        for component in components {
            let appended = match &component {
                Component::Retain(count) => operation.clone().try_retain(*count),
                Component::Delete(count) => operation.clone().try_delete(*count),
                Component::Insert(text) => operation.clone().try_insert(text),
            };
            if let Ok(appended) = appended {
                operation = appended;
            }
        }
        let missing = base.saturating_sub(operation.base_len());
        operation.clone().try_retain(missing).unwrap_or(operation)
    })
}

/// The length of the text two operations apply to: short, or at the limit.
fn base_length() -> impl Strategy<Value = usize> {
    let max = TextOperation::MAX_LENGTH;
    prop_oneof![
        4 => 0_usize..12,
        1 => proptest::sample::select(vec![max - 2, max - 1, max]),
    ]
}

/// An operation from JSON that parses, or a built one (also when the JSON does not parse,
/// rather than rejecting the case); of about `base` units when built.
fn any_operation(base: usize) -> impl Strategy<Value = TextOperation> {
    prop_oneof![
        1 => (operation_json(), built_operation(base)).prop_map(|(json, built)| {
            serde_json::from_str::<TextOperation>(&json).unwrap_or(built)
        }),
        3 => built_operation(base),
    ]
}

/// The lengths an operation must have, summed independently and with checks.
fn checked_lengths(operation: &TextOperation) -> Option<(usize, usize)> {
    let (mut base, mut target) = (0_usize, 0_usize);
    for component in operation.components() {
        match component {
            Component::Retain(count) => {
                base = base.checked_add(*count)?;
                target = target.checked_add(*count)?;
            }
            Component::Insert(text) => target = target.checked_add(utf16_len(text))?,
            Component::Delete(count) => base = base.checked_add(*count)?,
        }
    }
    Some((base, target))
}

/// Checks what every operation that exists must satisfy: its lengths are the checked sums of
/// its components and within the limit, it is normalised, and it reads back from its JSON.
fn check_readable(operation: &TextOperation) -> Result<(), TestCaseError> {
    let lengths = checked_lengths(operation);
    prop_assert_eq!(
        lengths,
        Some((operation.base_len(), operation.target_len())),
        "{}",
        operation
    );
    prop_assert!(
        operation.base_len() <= TextOperation::MAX_LENGTH,
        "{}",
        operation
    );
    prop_assert!(
        operation.target_len() <= TextOperation::MAX_LENGTH,
        "{}",
        operation
    );
    for pair in operation.components().windows(2) {
        let normalised = !matches!(
            pair,
            [Component::Retain(_), Component::Retain(_)]
                | [Component::Insert(_), Component::Insert(_)]
                | [Component::Delete(_), Component::Delete(_)]
                | [Component::Delete(_), Component::Insert(_)]
        );
        prop_assert!(normalised, "not normalised: {}", operation);
    }
    for component in operation.components() {
        let empty = match component {
            Component::Retain(count) | Component::Delete(count) => *count == 0,
            Component::Insert(text) => text.is_empty(),
        };
        prop_assert!(!empty, "an empty component: {}", operation);
    }
    let json = serde_json::to_string(operation)
        .map_err(|error| TestCaseError::fail(format!("{operation} does not serialise: {error}")))?;
    let read: TextOperation = serde_json::from_str(&json)
        .map_err(|error| TestCaseError::fail(format!("{json} does not read back: {error}")))?;
    prop_assert_eq!(&read, operation, "{}", json);
    Ok(())
}

/// Whether the JSON form should accept `json`, judged on its generic JSON value: an array of
/// non-zero integers and non-empty strings whose running lengths stay within the limit.
fn should_accept(json: &str) -> bool {
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(json) else {
        return false;
    };
    let limit = u128::try_from(TextOperation::MAX_LENGTH).unwrap_or(u128::MAX);
    let (mut base, mut target) = (0_u128, 0_u128);
    for item in items {
        match item {
            serde_json::Value::Number(number) => {
                if let Some(count) = number.as_u64().filter(|count| *count > 0) {
                    base += u128::from(count);
                    target += u128::from(count);
                } else if let Some(count) = number.as_i64().filter(|count| *count < 0) {
                    base += u128::from(count.unsigned_abs());
                } else {
                    return false;
                }
            }
            serde_json::Value::String(text) if !text.is_empty() => {
                target += u128::try_from(utf16_len(&text)).unwrap_or(u128::MAX);
            }
            _ => return false,
        }
        if base > limit || target > limit {
            return false;
        }
    }
    true
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn the_json_form_accepts_exactly_what_it_can_read_back(json in operation_json()) {
        let parsed = serde_json::from_str::<TextOperation>(&json);
        prop_assert_eq!(parsed.is_ok(), should_accept(&json), "{} gave {:?}", json, parsed);
        if let Ok(operation) = parsed {
            check_readable(&operation)?;
            let _ = operation.to_string();
        }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn apply_on_a_string_and_on_a_document_agree(
        base in room_text(),
        operation in (0_usize..40).prop_flat_map(any_operation),
    ) {
        let applied = operation.apply(&base);
        let mut document = Document::new(&base, 7);
        let before = document.clone();
        let on_document = document.apply(&operation);
        prop_assert_eq!(&on_document.clone().map(|()| document.text()), &applied, "{}", operation);
        match applied {
            Ok(text) => {
                prop_assert_eq!(utf16_len(&text), operation.target_len());
                prop_assert_eq!(document.len_utf16(), operation.target_len());
                prop_assert_eq!(document.revision(), 8);
                let inverse = operation.invert(&base).expect("an operation that applies inverts");
                check_readable(&inverse)?;
                prop_assert_eq!(&before.invert(&operation).expect("inverts"), &inverse);
                prop_assert_eq!(inverse.apply(&text).expect("the inverse applies"), base);
            }
            Err(_) => prop_assert_eq!(document, before, "{}", operation),
        }
    }

    #[test]
    fn transform_and_compose_of_any_operations_never_panic(
        (a, b, c) in base_length().prop_flat_map(|base| any_operation(base).prop_flat_map(
            move |a| {
                let target = a.target_len();
                (Just(a), any_operation(base), any_operation(target))
            },
        )),
        text in room_text(),
    ) {
        for (first, second) in [(&a, &b), (&b, &a), (&a, &c), (&c, &a)] {
            if let Ok((first_prime, second_prime)) = TextOperation::transform(first, second) {
                check_readable(&first_prime)?;
                check_readable(&second_prime)?;
                prop_assert_eq!(first_prime.base_len(), second.target_len());
                prop_assert_eq!(second_prime.base_len(), first.target_len());
                prop_assert_eq!(first_prime.target_len(), second_prime.target_len());
                if let (Ok(after_first), Ok(after_second)) = (first.apply(&text), second.apply(&text)) {
                    // Inserts are applied unchecked only when valid, so compare what applies.
                    let left = second_prime.apply(&after_first);
                    let right = first_prime.apply(&after_second);
                    prop_assert_eq!(left, right);
                }
            }
            if let Ok(composed) = first.compose(second) {
                check_readable(&composed)?;
                prop_assert_eq!(composed.base_len(), first.base_len());
                prop_assert_eq!(composed.target_len(), second.target_len());
                if let Ok(between) = first.apply(&text)
                    && let Ok(after) = second.apply(&between)
                {
                    prop_assert_eq!(composed.apply(&text), Ok(after));
                }
            }
        }
    }

    #[test]
    fn positions_anywhere_move_without_panicking(
        operation in base_length().prop_flat_map(any_operation),
        anchor in prop_oneof![0_usize..40, Just(usize::MAX), Just(usize::MAX - 1), count()],
        head in prop_oneof![0_usize..40, Just(usize::MAX), count()],
    ) {
        let moved = operation.transform_position(head);
        let selection = Selection { anchor, head }.transform(&operation);
        prop_assert_eq!(selection.head, moved);
        if head <= operation.base_len() {
            prop_assert!(moved <= operation.target_len(), "{} moved {} to {}", operation, head, moved);
        }
        let clamped = selection.clamp(operation.target_len());
        prop_assert!(clamped.anchor <= operation.target_len() && clamped.head <= operation.target_len());
    }
}

/// Inputs that once went wrong or sit exactly at a limit.
#[test]
fn hostile_operations_are_refused_or_read_back() {
    let max = TextOperation::MAX_LENGTH;
    let cases = [
        // Two retains of 2^63 once wrapped to a small length.
        ("[9223372036854775808,9223372036854775808,\"X\",3]", false),
        ("[18446744073709551615]", false),
        ("[18446744073709551616]", false),
        ("[-9223372036854775808]", false),
        ("[-9223372036854775809]", false),
        (&*format!("[{max}]"), true),
        (&*format!("[{}]", max + 1), false),
        (&*format!("[-{max}]"), true),
        (&*format!("[{max},\"x\"]"), false),
        (&*format!("[{},\"x\"]", max - 1), true),
        (&*format!("[{max},-1]"), false),
        ("[1.0]", false),
        ("[-0]", false),
        ("[\"\\ud800\"]", false),
        ("[\"\\u0000\"]", true),
    ];
    for (json, accepted) in cases {
        let parsed = serde_json::from_str::<TextOperation>(json);
        assert_eq!(parsed.is_ok(), accepted, "{json}: {parsed:?}");
        assert_eq!(should_accept(json), accepted, "{json}");
    }
}
