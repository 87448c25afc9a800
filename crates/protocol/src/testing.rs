//! Strategies for hostile `duet.v1` frames, for property tests here and in other crates (the
//! server's fuzz tests run them through its commit path): numbers at every limit a client can
//! aim for, text of every width, operations well and badly formed, objects with fields missing,
//! mistyped, unknown or doubled, and cut-off JSON.

use duet_domain::TextOperation;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;

/// `cases` unless `PROPTEST_CASES` asks for another number (`with_cases` ignores it).
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        ..Config::default()
    }
}

/// An operation's JSON form reads back as the operation itself.
pub fn check_round_trip(operation: &TextOperation) -> Result<(), TestCaseError> {
    prop_assert!(operation.base_len() <= TextOperation::MAX_LENGTH);
    prop_assert!(operation.target_len() <= TextOperation::MAX_LENGTH);
    let json = serde_json::to_string(operation)
        .map_err(|error| TestCaseError::fail(format!("{operation}: {error}")))?;
    let read: TextOperation = serde_json::from_str(&json)
        .map_err(|error| TestCaseError::fail(format!("{json} does not read back: {error}")))?;
    prop_assert_eq!(&read, operation);
    Ok(())
}

/// Numbers as JSON text: small, at every integer limit a client can aim for, past u64, and
/// floats.
fn number_json() -> impl Strategy<Value = String> {
    let edges = vec![
        "0",
        "-0",
        "1",
        "-1",
        "9007199254740991",
        "9007199254740992",
        "-9007199254740991",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "1.0",
        "1e3",
        "-2.5",
        "1e400",
    ];
    prop_oneof![
        3 => (0_u64..8).prop_map(|value| value.to_string()),
        3 => proptest::sample::select(edges).prop_map(String::from),
        1 => any::<i64>().prop_map(|value| value.to_string()),
        1 => any::<u64>().prop_map(|value| value.to_string()),
    ]
}

/// Characters of every width, NUL and what JSON must escape.
const CHARACTERS: &[char] = &[
    'a',
    'b',
    ' ',
    '\n',
    '\0',
    '\u{1}',
    '"',
    '\\',
    'é',
    '中',
    '\u{2028}',
    '\u{ffff}',
    '😀',
    '\u{10ffff}',
];

pub fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(CHARACTERS), 0..16)
        .prop_map(|characters| characters.into_iter().collect())
}

/// Text a room may hold: anything but NUL.
pub fn room_text() -> impl Strategy<Value = String> {
    text().prop_map(|text| text.replace('\0', ""))
}

fn string_json() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => text().prop_map(|text| Value::String(text).to_string()),
        1 => proptest::sample::select(vec![
            r#""\ud800""#, r#""\udc00x""#, r#""\ud83d\ude00""#, r#""\u0000""#, r#""\q""#,
        ])
        .prop_map(String::from),
    ]
}

/// What a client might send as `ops`.
pub fn ops_json() -> impl Strategy<Value = String> {
    let component =
        prop_oneof![3 => number_json(), 2 => string_json(), 1 => Just("null".to_owned())];
    let well_formed = prop_oneof![
        (1_u64..20).prop_map(|count| count.to_string()),
        (1_u64..20).prop_map(|count| format!("-{count}")),
        text()
            .prop_filter("an insert is not empty", |text| !text.is_empty())
            .prop_map(|text| Value::String(text).to_string()),
    ];
    prop_oneof![
        4 => proptest::collection::vec(component, 0..6)
            .prop_map(|components| format!("[{}]", components.join(","))),
        8 => proptest::collection::vec(well_formed, 0..6)
            .prop_map(|components| format!("[{}]", components.join(","))),
        1 => Just("{}".to_owned()),
        1 => string_json(),
    ]
}

/// A number that is mostly a small count, sometimes anything.
fn small_or_any_number() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0_u64..20).prop_map(|value| value.to_string()),
        1 => number_json(),
    ]
}

fn selection_json() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (small_or_any_number(), small_or_any_number())
            .prop_map(|(anchor, head)| format!(r#"{{"anchor":{anchor},"head":{head}}}"#)),
        1 => number_json().prop_map(|anchor| format!(r#"{{"anchor":{anchor}}}"#)),
        1 => Just(r#"{"anchor":1,"head":2,"tail":3}"#.to_owned()),
        1 => Just("null".to_owned()),
    ]
}

/// Any JSON value, nested a little.
fn any_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        number_json(),
        string_json(),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec((field_name(), inner), 0..4)
                .prop_map(|fields| object(&fields)),
        ]
    })
}

const FIELDS: &[&str] = &[
    "type",
    "revision",
    "seq",
    "ops",
    "selection",
    "code",
    "language",
    "id",
    "cursorPosition",
    "cursor_position",
    "clientId",
    "extra",
];

const TYPES: &[&str] = &[
    "op",
    "code",
    "presence",
    "language",
    "autocomplete",
    "Op",
    "ack",
    "welcome",
    "",
];

fn field_name() -> impl Strategy<Value = String> {
    proptest::sample::select(FIELDS).prop_map(String::from)
}

/// A JSON object written out field by field, so that a name may come twice.
fn object(fields: &[(String, String)]) -> String {
    let fields: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::String(name.clone())))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// A value for a field, often the right kind for it and often not.
fn field_value(name: &str) -> BoxedStrategy<String> {
    let right = match name {
        "revision" | "seq" | "cursorPosition" => small_or_any_number().boxed(),
        "ops" => ops_json().boxed(),
        "selection" => selection_json().boxed(),
        "code" | "language" => string_json().boxed(),
        "type" => proptest::sample::select(TYPES)
            .prop_map(|kind| Value::String(kind.into()).to_string())
            .boxed(),
        _ => any_json().boxed(),
    };
    prop_oneof![9 => right, 1 => any_json()].boxed()
}

/// A message of a known `type` with all its fields and maybe more, some mistyped or missing.
fn structured_frame() -> impl Strategy<Value = String> {
    let fields_of = |kind: &str| -> &'static [&'static str] {
        match kind {
            "op" => &["revision", "seq", "ops", "selection"],
            "code" => &["revision", "seq", "code"],
            "presence" => &["revision", "selection"],
            "language" => &["language"],
            "autocomplete" => &["id", "revision", "cursorPosition"],
            _ => &["revision", "seq"],
        }
    };
    let kind = prop_oneof![
        4 => proptest::sample::select(&TYPES[..5]),
        1 => proptest::sample::select(TYPES),
    ];
    let extra = prop_oneof![
        4 => Just(Vec::new()),
        1 => proptest::collection::vec(field_name(), 1..3),
    ];
    (
        kind,
        // Mostly every field is there; now and then one is missing.
        proptest::collection::vec(proptest::bool::weighted(0.9), 4),
        extra,
    )
        .prop_flat_map(move |(kind, keep, extra)| {
            let mut names: Vec<String> = fields_of(kind)
                .iter()
                .zip(&keep)
                .filter(|(_, kept)| **kept)
                .map(|(name, _)| (*name).to_owned())
                .collect();
            names.extend(extra);
            let values: Vec<BoxedStrategy<String>> =
                names.iter().map(|name| field_value(name)).collect();
            (Just(kind), Just(names), values)
        })
        .prop_map(|(kind, names, values)| {
            let mut fields = vec![("type".to_owned(), Value::String(kind.into()).to_string())];
            fields.extend(names.into_iter().zip(values));
            object(&fields)
        })
}

/// Anything a socket can carry as text.
pub fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => structured_frame(),
        2 => any_json(),
        1 => structured_frame().prop_flat_map(|frame| {
            let length = frame.len();
            (Just(frame), 0..=length)
        })
        .prop_map(|(frame, cut)| frame.get(..cut).unwrap_or_default().to_owned()),
        1 => ".*",
    ]
}
