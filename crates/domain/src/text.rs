//! Positions in text counted in UTF-16 code units, the unit of browser editors, Monaco,
//! CodeMirror and the Language Server Protocol, mapped to Rust's UTF-8 byte offsets.

/// The length of `text` in UTF-16 code units.
#[must_use]
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// A position inside a text, known to fall on a character boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf16Position {
    units: usize,
    byte: usize,
}

/// A UTF-16 position that does not name a place between two characters of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// The position lies past the end of the text.
    #[error("position {position} is past the end of the text ({length} UTF-16 code units)")]
    PastEnd { position: usize, length: usize },
    /// The position falls between the two halves of a surrogate pair (inside an emoji, say).
    #[error("position {position} splits a surrogate pair")]
    SplitsSurrogatePair { position: usize },
}

impl Utf16Position {
    /// Finds the place `units` UTF-16 code units into `text`.
    ///
    /// # Errors
    /// [`PositionError`] when the position is past the end or inside a character.
    pub fn resolve(text: &str, units: usize) -> Result<Self, PositionError> {
        let mut seen = 0;
        for (byte, character) in text.char_indices() {
            if seen == units {
                return Ok(Self { units, byte });
            }
            seen += character.len_utf16();
            if seen > units {
                return Err(PositionError::SplitsSurrogatePair { position: units });
            }
        }
        if seen == units {
            Ok(Self {
                units,
                byte: text.len(),
            })
        } else {
            Err(PositionError::PastEnd {
                position: units,
                length: seen,
            })
        }
    }

    /// The position in UTF-16 code units.
    #[must_use]
    pub const fn units(&self) -> usize {
        self.units
    }

    /// The same position as a UTF-8 byte offset, usable to slice the text.
    #[must_use]
    pub const fn byte(&self) -> usize {
        self.byte
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_utf16_units() {
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é"), 1);
        assert_eq!(utf16_len("😀"), 2);
        assert_eq!(utf16_len("a😀b"), 4);
    }

    #[test]
    fn resolves_positions_to_byte_offsets() {
        let text = "aé😀b";
        let cases = [
            (0, Ok(0)),
            (1, Ok(1)),
            (2, Ok(3)),
            (3, Err(PositionError::SplitsSurrogatePair { position: 3 })),
            (4, Ok(7)),
            (5, Ok(8)),
            (
                6,
                Err(PositionError::PastEnd {
                    position: 6,
                    length: 5,
                }),
            ),
        ];
        for (units, expected) in cases {
            assert_eq!(
                Utf16Position::resolve(text, units).map(|p| p.byte()),
                expected,
                "position {units}"
            );
        }
    }

    #[test]
    fn resolves_the_end_of_an_empty_text() {
        assert_eq!(Utf16Position::resolve("", 0).map(|p| p.byte()), Ok(0));
    }
}
