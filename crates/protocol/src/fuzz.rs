//! Hostile frames through the client-message parser: whatever it accepts is an object of a
//! known `type` with only that type's fields, reads back from its own encoding, and any
//! operation in it reads back from its JSON.
//!
//! The default case count keeps `cargo test` quick; `make fuzz` runs the same property with
//! many more cases through `PROPTEST_CASES`.

use proptest::prelude::*;
use serde_json::Value;

use crate::ClientMessage;
use crate::testing::{check_round_trip, config, frame};

/// The fields a message of each type may carry besides `type`.
fn allowed_fields(message: &ClientMessage) -> (&'static str, &'static [&'static str]) {
    match message {
        ClientMessage::Op { .. } => ("op", &["revision", "seq", "ops", "selection"]),
        ClientMessage::Code { .. } => ("code", &["revision", "seq", "code"]),
        ClientMessage::Presence { .. } => ("presence", &["revision", "selection"]),
        ClientMessage::Language { .. } => ("language", &["language"]),
        ClientMessage::Autocomplete { .. } => {
            ("autocomplete", &["id", "revision", "cursorPosition"])
        }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn any_frame_is_parsed_or_refused(frame in frame()) {
        let Ok(message) = ClientMessage::decode(&frame) else {
            return Ok(());
        };
        // What was accepted is an object of the right type with no field it does not know.
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&frame) else {
            return Err(TestCaseError::fail(format!("accepted a non-object: {frame}")));
        };
        let (kind, allowed) = allowed_fields(&message);
        prop_assert_eq!(fields.get("type"), Some(&Value::String(kind.into())), "{}", frame);
        for name in fields.keys() {
            prop_assert!(name == "type" || allowed.contains(&name.as_str()), "{} in {}", name, frame);
        }
        let encoded = message.encode();
        let read = ClientMessage::decode(&encoded)
            .map_err(|error| TestCaseError::fail(format!("{encoded} does not read back: {error}")))?;
        prop_assert_eq!(&read, &message);
        if let ClientMessage::Op { ops, .. } = &message {
            check_round_trip(ops)?;
        }
    }
}
