//! A participant's selection (a cursor when empty), moved along with concurrent edits.

use serde::{Deserialize, Serialize};

use crate::operation::TextOperation;

/// A selection from `anchor` to `head`, in UTF-16 code units; `head` is where the cursor is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub anchor: usize,
    pub head: usize,
}

impl Selection {
    /// An empty selection: a cursor at `position`.
    #[must_use]
    pub const fn cursor(position: usize) -> Self {
        Self {
            anchor: position,
            head: position,
        }
    }

    /// The same selection after `operation` (as ot.js moves selections).
    #[must_use]
    pub fn transform(self, operation: &TextOperation) -> Self {
        Self {
            anchor: operation.transform_position(self.anchor),
            head: operation.transform_position(self.head),
        }
    }

    /// The selection limited to a text of `length` UTF-16 code units.
    #[must_use]
    pub fn clamp(self, length: usize) -> Self {
        Self {
            anchor: self.anchor.min(length),
            head: self.head.min(length),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_with_edits_before_it() {
        let selection = Selection { anchor: 2, head: 5 };
        let insert_before = TextOperation::new().retain(1).insert("xyz").retain(9);
        assert_eq!(
            selection.transform(&insert_before),
            Selection { anchor: 5, head: 8 }
        );
        let delete_across = TextOperation::new().retain(1).delete(3).retain(6);
        assert_eq!(
            selection.transform(&delete_across),
            Selection { anchor: 1, head: 2 }
        );
        let insert_after = TextOperation::new().retain(6).insert("!").retain(4);
        assert_eq!(selection.transform(&insert_after), selection);
        // An insert exactly at the cursor pushes it along, as in ot.js.
        let insert_at = TextOperation::new().retain(5).insert("ab").retain(5);
        assert_eq!(selection.transform(&insert_at).head, 7);
    }
}
