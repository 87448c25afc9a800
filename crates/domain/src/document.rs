//! A document: text in a rope, with the revision it is at.
//!
//! Applying an operation costs time in proportion to the operation (each component is one
//! O(log n) step in the rope), never to the size of the document.

use ropey::Rope;
use smallvec::SmallVec;

use crate::operation::{Component, OperationError, TextOperation};
use crate::text::utf16_len;

/// One change an operation makes: (start, deleted, inserted) in characters, then the start and
/// the deleted length in UTF-16 units.
type Change<'a> = (usize, usize, &'a str, usize, usize);

/// How far before the last edit's end (UTF-16 units) a position is found by stepping back.
const NEAR: usize = 16;

/// Text at a revision.
#[derive(Clone, Debug, Default)]
pub struct Document {
    rope: Rope,
    revision: u64,
    /// Where the last edit ended: a known boundary. Typing edits at the cursor, so the next
    /// edit usually starts there (or just before it) and needs no rope lookup.
    cursor: Option<Cursor>,
}

/// A position known in both units, with the width of the character before it when known.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    units: usize,
    chars: usize,
    /// UTF-16 units of the character just before (the last one inserted there).
    before: Option<usize>,
}

impl PartialEq for Document {
    fn eq(&self, other: &Self) -> bool {
        self.revision == other.revision && self.rope == other.rope
    }
}

impl Eq for Document {}

impl Document {
    /// A document holding `text` at `revision`.
    #[must_use]
    pub fn new(text: &str, revision: u64) -> Self {
        Self {
            rope: Rope::from_str(text),
            revision,
            cursor: None,
        }
    }

    /// The revision: how many operations made this text.
    #[must_use]
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    /// The length in UTF-16 code units.
    #[must_use]
    pub fn len_utf16(&self) -> usize {
        self.rope.len_utf16_cu()
    }

    /// The length in bytes of UTF-8.
    #[must_use]
    pub fn len_bytes(&self) -> usize {
        self.rope.len_bytes()
    }

    /// The text, copied out.
    #[must_use]
    pub fn text(&self) -> String {
        self.rope.to_string()
    }

    /// The text as a rope, for reading without copying.
    #[must_use]
    pub const fn rope(&self) -> &Rope {
        &self.rope
    }

    /// Checks that `position` (UTF-16) is a character boundary inside the text, and returns its
    /// character index.
    fn char_index(&self, position: usize) -> Result<usize, OperationError> {
        let length = self.rope.len_utf16_cu();
        if position > length {
            return Err(OperationError::PastEnd { position });
        }
        if let Some(cursor) = self.cursor {
            if cursor.units == position {
                return Ok(cursor.chars);
            }
            // Backspace right after typing: the character before is the one typed.
            if cursor
                .before
                .is_some_and(|width| cursor.units == position + width)
            {
                return Ok(cursor.chars - 1);
            }
        }
        // Without characters outside the BMP, UTF-16 units and characters are one and the same.
        if length == self.rope.len_chars() {
            return Ok(position);
        }
        // A little before the last edit's end (a backspace, say): step back from there, one
        // lookup instead of two.
        if let Some(Cursor { units, chars, .. }) = self.cursor
            && position < units
            && units - position <= NEAR
        {
            let mut behind = self.rope.chars_at(chars);
            let (mut units, mut chars) = (units, chars);
            while units > position {
                let Some(character) = behind.prev() else {
                    break;
                };
                units -= character.len_utf16();
                chars -= 1;
            }
            return if units == position {
                Ok(chars)
            } else {
                Err(OperationError::SplitsSurrogatePair { position })
            };
        }
        let index = self.rope.utf16_cu_to_char(position);
        if self.rope.char_to_utf16_cu(index) == position {
            Ok(index)
        } else {
            Err(OperationError::SplitsSurrogatePair { position })
        }
    }

    /// Applies `operation` and moves to the next revision. Nothing changes on error.
    ///
    /// # Errors
    /// [`OperationError`] when the operation was made for a text of another length, a
    /// position splits a surrogate pair, or an insert holds a NUL character.
    pub fn apply(&mut self, operation: &TextOperation) -> Result<(), OperationError> {
        let length = self.rope.len_utf16_cu();
        if operation.base_len() != length {
            return Err(OperationError::BaseLengthMismatch {
                expected: operation.base_len(),
                actual: length,
            });
        }
        // First every boundary is found (and checked) in the text as it is, so a bad operation
        // leaves no trace; then the changes are made left to right, shifted by those before.
        // (start, deleted, inserted) in characters, then the start and deleted in UTF-16 units.
        // Almost every operation makes one or two changes: kept inline, no allocation.
        let mut changes: SmallVec<[Change<'_>; 2]> = SmallVec::new();
        let mut position = 0;
        let mut at = 0;
        let components = operation.components();
        for (index, component) in components.iter().enumerate() {
            match component {
                // A trailing retain only keeps the rest, which the length check covered.
                Component::Retain(count) if index + 1 == components.len() => position += count,
                Component::Retain(count) => {
                    position += count;
                    at = self.char_index(position)?;
                }
                Component::Insert(text) => {
                    crate::room::check_code(text)?;
                    changes.push((at, 0, text, position, 0));
                }
                Component::Delete(count) => {
                    let start16 = position;
                    position += count;
                    let end = self.char_index(position)?;
                    match changes.last_mut() {
                        Some((start, deleted, _, _, deleted16))
                            if *start == at && *deleted == 0 =>
                        {
                            *deleted = end - at;
                            *deleted16 = *count;
                        }
                        _ => changes.push((at, end - at, "", start16, *count)),
                    }
                    at = end;
                }
            }
        }
        let mut shift: isize = 0;
        let mut shift16: isize = 0;
        let mut cursor = None;
        for (start, deleted, inserted, start16, deleted16) in changes {
            let start = start.saturating_add_signed(shift);
            if deleted > 0 {
                self.rope.remove(start..start + deleted);
            }
            if !inserted.is_empty() {
                self.rope.insert(start, inserted);
            }
            let added = inserted.chars().count();
            let added16 = utf16_len(inserted);
            // Where this change ends, in both units: known without looking it up.
            cursor = Some(Cursor {
                units: start16.saturating_add_signed(shift16) + added16,
                chars: start + added,
                before: inserted.chars().next_back().map(char::len_utf16),
            });
            shift += isize::try_from(added).unwrap_or(isize::MAX)
                - isize::try_from(deleted).unwrap_or(isize::MAX);
            shift16 += isize::try_from(added16).unwrap_or(isize::MAX)
                - isize::try_from(deleted16).unwrap_or(isize::MAX);
        }
        // Remember where the last change ended, for the next edit.
        self.cursor = cursor;
        self.revision += 1;
        Ok(())
    }

    /// The operation that undoes `operation` on this document.
    ///
    /// # Errors
    /// [`OperationError`] when `operation` does not apply to this document.
    pub fn invert(&self, operation: &TextOperation) -> Result<TextOperation, OperationError> {
        let length = self.rope.len_utf16_cu();
        if operation.base_len() != length {
            return Err(OperationError::BaseLengthMismatch {
                expected: operation.base_len(),
                actual: length,
            });
        }
        let mut inverse = TextOperation::new();
        let mut position = 0;
        for component in operation.components() {
            match component {
                Component::Retain(count) => {
                    position += count;
                    inverse = inverse.retain(*count);
                }
                Component::Insert(text) => inverse = inverse.delete(utf16_len(text)),
                Component::Delete(count) => {
                    let start = self.char_index(position)?;
                    let end = self.char_index(position + count)?;
                    inverse = inverse.insert(&self.rope.slice(start..end).to_string());
                    position += count;
                }
            }
        }
        Ok(inverse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_operations_in_utf16_units() {
        let mut document = Document::new("a😀b", 4);
        let operation = TextOperation::new().retain(3).insert("é").delete(1);
        document.apply(&operation).expect("applies");
        assert_eq!(document.text(), "a😀é");
        assert_eq!(document.revision(), 5);
        assert_eq!(document.len_utf16(), 4);
    }

    #[test]
    fn a_bad_operation_changes_nothing() {
        let original = Document::new("a😀b", 0);
        let cases = [
            (
                TextOperation::new().retain(5),
                OperationError::BaseLengthMismatch {
                    expected: 5,
                    actual: 4,
                },
            ),
            (
                TextOperation::new().retain(2).insert("x").retain(2),
                OperationError::SplitsSurrogatePair { position: 2 },
            ),
            (
                TextOperation::new()
                    .insert("ok")
                    .retain(1)
                    .delete(1)
                    .retain(2),
                OperationError::SplitsSurrogatePair { position: 2 },
            ),
            (
                TextOperation::new().insert("\0").retain(4),
                OperationError::InvalidCode(crate::CodeError::ContainsNul),
            ),
        ];
        for (operation, expected) in cases {
            let mut document = original.clone();
            assert_eq!(document.apply(&operation), Err(expected), "{operation}");
            assert_eq!(document, original);
        }
    }

    #[test]
    fn positions_just_before_the_last_edit_are_found_by_stepping_back() {
        let mut document = Document::new("😀", 0);
        // Typing leaves the remembered end after "é😀x" (units 1 + 2 + 1 = 4, then "😀").
        let typed = TextOperation::new().insert("é😀x").retain(2);
        document.apply(&typed).expect("applies");
        // Backspace over "x", then over the emoji, both just before the last edit's end.
        let backspace = TextOperation::new().retain(3).delete(1).retain(2);
        document.apply(&backspace).expect("applies");
        assert_eq!(document.text(), "é😀😀");
        // Half the emoji before the cursor: refused, nothing changed.
        let half = TextOperation::new().retain(2).delete(1).retain(2);
        let before = document.clone();
        assert_eq!(
            document.apply(&half),
            Err(OperationError::SplitsSurrogatePair { position: 2 })
        );
        assert_eq!(document, before);
        let whole = TextOperation::new().retain(1).delete(2).retain(2);
        document.apply(&whole).expect("applies");
        assert_eq!(document.text(), "é😀");
        // Typing an emoji, then half of it, then all of it, right after typing it.
        document
            .apply(&TextOperation::new().retain(3).insert("🎉"))
            .expect("applies");
        let half = TextOperation::new().retain(4).delete(1);
        assert_eq!(
            document.apply(&half),
            Err(OperationError::SplitsSurrogatePair { position: 4 })
        );
        document
            .apply(&TextOperation::new().retain(3).delete(2))
            .expect("applies");
        assert_eq!(document.text(), "é😀");
        // Farther back than the stepping distance, and at the very start.
        let mut long = Document::new("", 0);
        long.apply(&TextOperation::new().insert(&"😀a".repeat(20)))
            .expect("applies");
        long.apply(&TextOperation::new().retain(3).insert("b").retain(57))
            .expect("applies");
        long.apply(&TextOperation::new().delete(2).retain(59))
            .expect("applies");
        assert_eq!(long.text(), format!("ab{}", "😀a".repeat(19)));
    }

    #[test]
    fn inverts_against_its_text() {
        let document = Document::new("hello 😀 world", 0);
        let operation = TextOperation::new()
            .retain(6)
            .delete(3)
            .insert("🎉")
            .retain(5);
        let inverse = document.invert(&operation).expect("inverts");
        let mut edited = document.clone();
        edited.apply(&operation).expect("applies");
        edited.apply(&inverse).expect("undoes");
        assert_eq!(edited.text(), "hello 😀 world");
    }
}
