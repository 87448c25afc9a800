//! Text operations: the unit of concurrent editing.
//!
//! An operation walks a document from start to end as a list of components: keep (retain) so
//! many characters, insert a string, delete so many characters. Lengths count UTF-16 code units,
//! the unit of CodeMirror, Monaco and LSP. The algebra (apply, compose, transform, invert) and
//! the JSON form (`[5, "abc", -2]`: a positive number retains, a negative one deletes, a string
//! inserts) follow ot.js exactly, so clients written against ot.js interoperate; in particular
//! `transform(a, b)` puts `a`'s insert first when both insert at one place.
//!
//! Written by hand rather than taken from a crate: the wire format, the UTF-16 unit and the
//! tie-break must match ot.js to the letter, and no maintained Rust crate offers that.

use std::fmt;

use compact_str::CompactString;
use smallvec::SmallVec;

use crate::text::utf16_len;

/// One step of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Component {
    /// Keep this many UTF-16 code units.
    Retain(usize),
    /// Insert this text (held inline when short, as typed text mostly is).
    Insert(CompactString),
    /// Delete this many UTF-16 code units.
    Delete(usize),
}

/// A normalised text operation: no empty components, no two adjacent components of one kind,
/// and an insert never directly after a delete (it goes before it, as in ot.js).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextOperation {
    // Inline room for the usual shape, keep-insert-keep: transforming and composing typed
    // edits then allocates nothing.
    components: SmallVec<[Component; 3]>,
    base_len: usize,
    target_len: usize,
}

/// Why an operation cannot be applied, composed or transformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperationError {
    /// The operation expects a document of another length.
    #[error("the operation applies to a text of {expected} UTF-16 code units, not {actual}")]
    BaseLengthMismatch { expected: usize, actual: usize },
    /// A retain or delete ends inside a surrogate pair (half an emoji, say).
    #[error("position {position} splits a surrogate pair")]
    SplitsSurrogatePair { position: usize },
    /// A retain or delete reaches past the end of the text.
    #[error("the operation reaches past the end of the text at position {position}")]
    PastEnd { position: usize },
    /// The operation would put a character no room may hold into the text.
    #[error(transparent)]
    InvalidCode(#[from] crate::room::CodeError),
    /// The operation describes a text longer than any text can be.
    #[error("an operation may span at most {limit} UTF-16 code units")]
    TooLong { limit: usize },
}

impl TextOperation {
    /// The most UTF-16 code units an operation may span, before or after: JavaScript's largest
    /// exact integer, so that every length a client sends or receives means the same to it.
    /// Lengths from outside are checked against it ([`TextOperation::try_retain`] and the
    /// JSON form), so the sums below can never wrap: two lengths under this limit add up to
    /// far less than `usize::MAX`.
    pub const MAX_LENGTH: usize = 9_007_199_254_740_991;

    /// The empty operation on the empty text.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The components, normalised.
    #[must_use]
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The length of the text this operation applies to.
    #[must_use]
    pub const fn base_len(&self) -> usize {
        self.base_len
    }

    /// The length of the text it produces.
    #[must_use]
    pub const fn target_len(&self) -> usize {
        self.target_len
    }

    /// How many bytes of UTF-8 text it inserts.
    #[must_use]
    pub fn inserted_bytes(&self) -> usize {
        self.components
            .iter()
            .map(|component| match component {
                Component::Insert(text) => text.len(),
                Component::Retain(_) | Component::Delete(_) => 0,
            })
            .sum()
    }

    /// Whether applying it changes nothing.
    #[must_use]
    pub fn is_noop(&self) -> bool {
        self.components
            .iter()
            .all(|component| matches!(component, Component::Retain(_)))
    }

    /// Appends a retain, merging it into a retain before it.
    ///
    /// # Panics
    /// When the operation would span more than [`TextOperation::MAX_LENGTH`] units; use
    /// [`TextOperation::try_retain`] for counts that come from outside.
    #[must_use]
    pub fn retain(self, count: usize) -> Self {
        self.try_retain(count)
            .unwrap_or_else(|error| panic!("retain({count}): {error}"))
    }

    /// Appends an insert, merging it into an insert before it (and placing it before a
    /// trailing delete, which gives the same result).
    ///
    /// # Panics
    /// When the operation would produce more than [`TextOperation::MAX_LENGTH`] units.
    #[must_use]
    pub fn insert(self, text: &str) -> Self {
        self.try_insert(text)
            .unwrap_or_else(|error| panic!("insert: {error}"))
    }

    /// Appends a delete, merging it into a delete before it.
    ///
    /// # Panics
    /// When the operation would span more than [`TextOperation::MAX_LENGTH`] units; use
    /// [`TextOperation::try_delete`] for counts that come from outside.
    #[must_use]
    pub fn delete(self, count: usize) -> Self {
        self.try_delete(count)
            .unwrap_or_else(|error| panic!("delete({count}): {error}"))
    }

    /// Appends a retain, unless the operation would then span more than
    /// [`TextOperation::MAX_LENGTH`] units.
    ///
    /// # Errors
    /// [`OperationError::TooLong`], and the operation is dropped.
    pub fn try_retain(mut self, count: usize) -> Result<Self, OperationError> {
        Self::check_lengths(self.base_len, count, self.target_len, count)?;
        self.push_retain(count);
        Ok(self)
    }

    /// Appends an insert, unless the operation would then produce more than
    /// [`TextOperation::MAX_LENGTH`] units.
    ///
    /// # Errors
    /// [`OperationError::TooLong`], and the operation is dropped.
    pub fn try_insert(mut self, text: &str) -> Result<Self, OperationError> {
        Self::check_lengths(self.base_len, 0, self.target_len, utf16_len(text))?;
        self.push_insert(text);
        Ok(self)
    }

    /// Appends a delete, unless the operation would then span more than
    /// [`TextOperation::MAX_LENGTH`] units.
    ///
    /// # Errors
    /// [`OperationError::TooLong`], and the operation is dropped.
    pub fn try_delete(mut self, count: usize) -> Result<Self, OperationError> {
        Self::check_lengths(self.base_len, count, self.target_len, 0)?;
        self.push_delete(count);
        Ok(self)
    }

    fn check_lengths(
        base: usize,
        base_added: usize,
        target: usize,
        target_added: usize,
    ) -> Result<(), OperationError> {
        let within = |length: usize, added: usize| {
            length
                .checked_add(added)
                .is_some_and(|sum| sum <= Self::MAX_LENGTH)
        };
        if within(base, base_added) && within(target, target_added) {
            Ok(())
        } else {
            Err(OperationError::TooLong {
                limit: Self::MAX_LENGTH,
            })
        }
    }

    // The pushes below add without checks: they serve the algebra, whose inputs were checked
    // against `MAX_LENGTH` on the way in, so no sum comes near `usize::MAX`.
    fn push_retain(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        self.base_len += count;
        self.target_len += count;
        if let Some(Component::Retain(last)) = self.components.last_mut() {
            *last += count;
        } else {
            self.components.push(Component::Retain(count));
        }
    }

    fn push_insert(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.target_len += utf16_len(text);
        let length = self.components.len();
        match self.components.as_mut_slice() {
            [.., Component::Insert(last)] | [.., Component::Insert(last), Component::Delete(_)] => {
                last.push_str(text);
            }
            [.., Component::Delete(_)] => {
                self.components
                    .insert(length - 1, Component::Insert(CompactString::from(text)));
            }
            _ => self
                .components
                .push(Component::Insert(CompactString::from(text))),
        }
    }

    fn push_delete(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        self.base_len += count;
        if let Some(Component::Delete(last)) = self.components.last_mut() {
            *last += count;
        } else {
            self.components.push(Component::Delete(count));
        }
    }

    /// Applies the operation to a string (see [`crate::Document`] for large texts).
    ///
    /// # Errors
    /// [`OperationError`] when the text has another length, a position splits a surrogate
    /// pair, or an insert holds a NUL character.
    pub fn apply(&self, text: &str) -> Result<String, OperationError> {
        let actual = utf16_len(text);
        if actual != self.base_len {
            return Err(OperationError::BaseLengthMismatch {
                expected: self.base_len,
                actual,
            });
        }
        let mut result = String::with_capacity(text.len());
        let mut cursor = Utf16Cursor::new(text);
        for component in &self.components {
            match component {
                Component::Retain(count) => result.push_str(cursor.take(*count)?),
                Component::Insert(inserted) => {
                    crate::room::check_code(inserted)?;
                    result.push_str(inserted);
                }
                Component::Delete(count) => {
                    cursor.take(*count)?;
                }
            }
        }
        Ok(result)
    }

    /// The operation that undoes this one on `text` (the text it applies to).
    ///
    /// # Errors
    /// [`OperationError`] when this operation does not apply to `text`.
    pub fn invert(&self, text: &str) -> Result<Self, OperationError> {
        let actual = utf16_len(text);
        if actual != self.base_len {
            return Err(OperationError::BaseLengthMismatch {
                expected: self.base_len,
                actual,
            });
        }
        let mut inverse = Self::new();
        let mut cursor = Utf16Cursor::new(text);
        for component in &self.components {
            match component {
                Component::Retain(count) => {
                    cursor.take(*count)?;
                    inverse.push_retain(*count);
                }
                Component::Insert(inserted) => inverse.push_delete(utf16_len(inserted)),
                Component::Delete(count) => inverse.push_insert(cursor.take(*count)?),
            }
        }
        Ok(inverse)
    }

    /// The single operation with the effect of `self` followed by `next`.
    ///
    /// # Errors
    /// [`OperationError::BaseLengthMismatch`] when `next` does not apply to what `self`
    /// produces; [`OperationError::SplitsSurrogatePair`] when `next` cuts one of `self`'s
    /// inserts inside a character.
    pub fn compose(&self, next: &Self) -> Result<Self, OperationError> {
        if self.target_len != next.base_len {
            return Err(OperationError::BaseLengthMismatch {
                expected: next.base_len,
                actual: self.target_len,
            });
        }
        let mut composed = Self::new();
        let mut first = Pieces::new(&self.components);
        let mut second = Pieces::new(&next.components);
        let (mut a, mut b) = (first.next(), second.next());
        loop {
            match (a, b) {
                (None, None) => break,
                (Some(Piece::Delete(count)), _) => {
                    composed.push_delete(count);
                    a = first.next();
                }
                (_, Some(Piece::Insert(text))) => {
                    composed.push_insert(text);
                    b = second.next();
                }
                // Lengths were checked above, so neither side can run out before the other.
                (None, Some(_)) | (Some(_), None) => {
                    return Err(OperationError::BaseLengthMismatch {
                        expected: next.base_len,
                        actual: self.target_len,
                    });
                }
                (Some(Piece::Retain(left)), Some(Piece::Retain(right))) => {
                    let common = left.min(right);
                    composed.push_retain(common);
                    a = first.rest_or_next(Piece::Retain(left - common));
                    b = second.rest_or_next(Piece::Retain(right - common));
                }
                (Some(Piece::Insert(text)), Some(Piece::Delete(count))) => {
                    let length = utf16_len(text);
                    let common = length.min(count);
                    let (_, rest) = split_utf16(text, common)?;
                    a = first.rest_or_next(Piece::Insert(rest));
                    b = second.rest_or_next(Piece::Delete(count - common));
                }
                (Some(Piece::Insert(text)), Some(Piece::Retain(count))) => {
                    let length = utf16_len(text);
                    let common = length.min(count);
                    let (head, rest) = split_utf16(text, common)?;
                    composed.push_insert(head);
                    a = first.rest_or_next(Piece::Insert(rest));
                    b = second.rest_or_next(Piece::Retain(count - common));
                }
                (Some(Piece::Retain(left)), Some(Piece::Delete(right))) => {
                    let common = left.min(right);
                    composed.push_delete(common);
                    a = first.rest_or_next(Piece::Retain(left - common));
                    b = second.rest_or_next(Piece::Delete(right - common));
                }
            }
        }
        Ok(composed)
    }

    /// Transforms two concurrent operations on the same text into `(a', b')` such that
    /// applying `a` then `b'` gives what applying `b` then `a'` gives. When both insert at the
    /// same place, `a`'s insert comes first: the server passes the incoming operation as `a`.
    ///
    /// # Errors
    /// [`OperationError::BaseLengthMismatch`] when the two apply to texts of different lengths;
    /// [`OperationError::TooLong`] when the merged text would be longer than
    /// [`TextOperation::MAX_LENGTH`] (each side's inserts fit, but not both together).
    pub fn transform(a: &Self, b: &Self) -> Result<(Self, Self), OperationError> {
        if a.base_len != b.base_len {
            return Err(OperationError::BaseLengthMismatch {
                expected: a.base_len,
                actual: b.base_len,
            });
        }
        let mut a_prime = Self::new();
        let mut b_prime = Self::new();
        let mut first = Pieces::new(&a.components);
        let mut second = Pieces::new(&b.components);
        let (mut x, mut y) = (first.next(), second.next());
        loop {
            match (x, y) {
                (None, None) => break,
                (Some(Piece::Insert(text)), _) => {
                    a_prime.push_insert(text);
                    b_prime.push_retain(utf16_len(text));
                    x = first.next();
                }
                (_, Some(Piece::Insert(text))) => {
                    a_prime.push_retain(utf16_len(text));
                    b_prime.push_insert(text);
                    y = second.next();
                }
                (None, Some(_)) | (Some(_), None) => {
                    return Err(OperationError::BaseLengthMismatch {
                        expected: a.base_len,
                        actual: b.base_len,
                    });
                }
                (Some(Piece::Retain(left)), Some(Piece::Retain(right))) => {
                    let common = left.min(right);
                    a_prime.push_retain(common);
                    b_prime.push_retain(common);
                    x = first.rest_or_next(Piece::Retain(left - common));
                    y = second.rest_or_next(Piece::Retain(right - common));
                }
                (Some(Piece::Delete(left)), Some(Piece::Delete(right))) => {
                    let common = left.min(right);
                    x = first.rest_or_next(Piece::Delete(left - common));
                    y = second.rest_or_next(Piece::Delete(right - common));
                }
                (Some(Piece::Delete(left)), Some(Piece::Retain(right))) => {
                    let common = left.min(right);
                    a_prime.push_delete(common);
                    x = first.rest_or_next(Piece::Delete(left - common));
                    y = second.rest_or_next(Piece::Retain(right - common));
                }
                (Some(Piece::Retain(left)), Some(Piece::Delete(right))) => {
                    let common = left.min(right);
                    b_prime.push_delete(common);
                    x = first.rest_or_next(Piece::Retain(left - common));
                    y = second.rest_or_next(Piece::Delete(right - common));
                }
            }
        }
        // Both results produce the merged text: `a`'s target plus `b`'s inserts, which can pass
        // the limit even though each operation is within it, and then no longer read back.
        if a_prime.target_len > Self::MAX_LENGTH {
            return Err(OperationError::TooLong {
                limit: Self::MAX_LENGTH,
            });
        }
        Ok((a_prime, b_prime))
    }

    /// Where a position (UTF-16 code units) in the text before this operation ends up after
    /// it; a position where text is inserted moves past the insert, as in ot.js.
    #[must_use]
    pub fn transform_position(&self, position: usize) -> usize {
        let mut remaining = position;
        let mut moved = position;
        for component in &self.components {
            match component {
                Component::Retain(count) => {
                    if *count > remaining {
                        break;
                    }
                    remaining -= count;
                }
                // Saturating: a position from outside may lie far past the end of the text.
                Component::Insert(text) => moved = moved.saturating_add(utf16_len(text)),
                Component::Delete(count) => {
                    moved -= (*count).min(remaining);
                    if *count > remaining {
                        break;
                    }
                    remaining -= count;
                }
            }
        }
        moved
    }
}

/// A component borrowed, possibly cut short, while walking an operation.
#[derive(Clone, Copy, Debug)]
enum Piece<'a> {
    Retain(usize),
    Insert(&'a str),
    Delete(usize),
}

impl Piece<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Piece::Retain(count) | Piece::Delete(count) => *count == 0,
            Piece::Insert(text) => text.is_empty(),
        }
    }
}

struct Pieces<'a> {
    components: std::slice::Iter<'a, Component>,
}

impl<'a> Pieces<'a> {
    fn new(components: &'a [Component]) -> Self {
        Self {
            components: components.iter(),
        }
    }

    fn next(&mut self) -> Option<Piece<'a>> {
        self.components.next().map(|component| match component {
            Component::Retain(count) => Piece::Retain(*count),
            Component::Insert(text) => Piece::Insert(text),
            Component::Delete(count) => Piece::Delete(*count),
        })
    }

    /// What is left of the current piece, or the next piece when nothing is left.
    fn rest_or_next(&mut self, rest: Piece<'a>) -> Option<Piece<'a>> {
        if rest.is_empty() {
            self.next()
        } else {
            Some(rest)
        }
    }
}

/// Splits `text` after `units` UTF-16 code units.
fn split_utf16(text: &str, units: usize) -> Result<(&str, &str), OperationError> {
    let mut seen = 0;
    for (byte, character) in text.char_indices() {
        if seen == units {
            return Ok(text.split_at(byte));
        }
        seen += character.len_utf16();
        if seen > units {
            return Err(OperationError::SplitsSurrogatePair { position: units });
        }
    }
    Ok((text, ""))
}

/// Walks a string in UTF-16 code units.
struct Utf16Cursor<'a> {
    rest: &'a str,
    position: usize,
}

impl<'a> Utf16Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            rest: text,
            position: 0,
        }
    }

    fn take(&mut self, units: usize) -> Result<&'a str, OperationError> {
        let mut seen = 0;
        let mut end = self.rest.len();
        for (byte, character) in self.rest.char_indices() {
            if seen == units {
                end = byte;
                break;
            }
            seen += character.len_utf16();
            if seen > units {
                return Err(OperationError::SplitsSurrogatePair {
                    position: self.position + units,
                });
            }
        }
        if seen < units {
            return Err(OperationError::PastEnd {
                position: self.position + seen,
            });
        }
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        self.position += units;
        Ok(taken)
    }
}

impl fmt::Display for TextOperation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[")?;
        for (index, component) in self.components.iter().enumerate() {
            if index > 0 {
                formatter.write_str(", ")?;
            }
            match component {
                Component::Retain(count) => write!(formatter, "{count}")?,
                Component::Insert(text) => write!(formatter, "{text:?}")?,
                Component::Delete(count) => write!(formatter, "-{count}")?,
            }
        }
        formatter.write_str("]")
    }
}

mod serde_impl {
    //! The ot.js JSON form: `[5, "abc", -2]`.

    use serde::de::{self, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Component, TextOperation};

    impl Serialize for TextOperation {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut sequence = serializer.serialize_seq(Some(self.components.len()))?;
            for component in &self.components {
                match component {
                    Component::Retain(count) => sequence.serialize_element(count)?,
                    Component::Insert(text) => sequence.serialize_element(text.as_str())?,
                    Component::Delete(count) => {
                        let count = i64::try_from(*count).map_err(serde::ser::Error::custom)?;
                        sequence.serialize_element(&-count)?;
                    }
                }
            }
            sequence.end()
        }
    }

    struct ComponentVisitor;

    impl<'de> Visitor<'de> for ComponentVisitor {
        type Value = Component;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a non-zero integer or a non-empty string")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Component, E> {
            match usize::try_from(value) {
                Ok(0) => Err(E::custom("0 is not an operation component")),
                Ok(count) => Ok(Component::Retain(count)),
                Err(_) => Err(E::custom("retain count too large")),
            }
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Component, E> {
            match value {
                0 => Err(E::custom("0 is not an operation component")),
                positive if positive > 0 => self.visit_u64(positive.unsigned_abs()),
                negative => usize::try_from(negative.unsigned_abs())
                    .map(Component::Delete)
                    .map_err(|_| E::custom("delete count too large")),
            }
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Component, E> {
            if value.is_empty() {
                Err(E::custom("an insert must not be empty"))
            } else {
                Ok(Component::Insert(compact_str::CompactString::from(value)))
            }
        }

        fn visit_string<E: de::Error>(self, value: String) -> Result<Component, E> {
            if value.is_empty() {
                Err(E::custom("an insert must not be empty"))
            } else {
                Ok(Component::Insert(compact_str::CompactString::from(value)))
            }
        }
    }

    impl<'de> Deserialize<'de> for Component {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ComponentVisitor)
        }
    }

    struct OperationVisitor;

    impl<'de> Visitor<'de> for OperationVisitor {
        type Value = TextOperation;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("an array of operation components")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<TextOperation, A::Error> {
            // Every count is checked against the limit before it is added: lengths from a
            // client never wrap.
            let mut operation = TextOperation::new();
            while let Some(component) = sequence.next_element::<Component>()? {
                operation = match component {
                    Component::Retain(count) => operation.try_retain(count),
                    Component::Insert(text) => operation.try_insert(&text),
                    Component::Delete(count) => operation.try_delete(count),
                }
                .map_err(de::Error::custom)?;
            }
            Ok(operation)
        }
    }

    impl<'de> Deserialize<'de> for TextOperation {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_seq(OperationVisitor)
        }
    }
}
