//! Turning a whole-buffer write into an operation, for clients that cannot send operations.

use similar::{Algorithm, ChangeTag, TextDiff};

use crate::operation::TextOperation;
use crate::text::utf16_len;

/// How long a diff may search for the smallest change. Myers' cost grows with the size times
/// the number of differences, so two large, unrelated texts would otherwise take minutes (on
/// the room's own task); past the deadline `similar` settles for a coarser change that still
/// turns `old` into `new` exactly.
pub const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(200);

/// The operation that turns `old` into `new`, found with a character diff (Myers), so that
/// the unchanged parts are retained and concurrent edits elsewhere survive a merge.
#[must_use]
pub fn diff(old: &str, new: &str) -> TextOperation {
    let mut operation = TextOperation::new();
    if old == new {
        return operation.retain(utf16_len(old));
    }
    let text_diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(DIFF_DEADLINE)
        .diff_chars(old, new);
    for change in text_diff.iter_all_changes() {
        let value = change.value();
        operation = match change.tag() {
            ChangeTag::Equal => operation.retain(utf16_len(value)),
            ChangeTag::Delete => operation.delete(utf16_len(value)),
            ChangeTag::Insert => operation.insert(value),
        };
    }
    operation
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_unrelated_texts_are_diffed_exactly_within_the_deadline() {
        let old = "a".repeat(200_000);
        let new = "b".repeat(200_000);
        // Without a deadline Myers' search takes minutes here; with it the change is coarser
        // but still exact.
        let operation = super::diff(&old, &new);
        assert_eq!(operation.apply(&old).as_deref(), Ok(new.as_str()));
    }

    use super::*;

    #[test]
    fn keeps_what_did_not_change() {
        let operation = diff("let x = 1;\nlet y = 2;\n", "let x = 10;\nlet y = 2;\n");
        assert_eq!(
            operation,
            TextOperation::new().retain(9).insert("0").retain(13)
        );
        assert_eq!(diff("same", "same"), TextOperation::new().retain(4));
        assert_eq!(diff("", "new"), TextOperation::new().insert("new"));
    }

    #[test]
    fn counts_in_utf16_units() {
        let operation = diff("a😀b", "a😀cb");
        assert_eq!(
            operation,
            TextOperation::new().retain(3).insert("c").retain(1)
        );
        assert_eq!(operation.apply("a😀b").as_deref(), Ok("a😀cb"));
    }
}
