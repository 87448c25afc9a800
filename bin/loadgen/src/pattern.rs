//! What typists type: realistic typing, or a recorded editing trace.

use std::io::Read;
use std::path::Path;

use duet_domain::TextOperation;

/// An edit as a splice in code points: delete `deleted` at `position`, then insert `inserted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splice {
    pub position: usize,
    pub deleted: usize,
    pub inserted: String,
}

/// A sequential editing trace in the public editing-traces format (plain or gzipped JSON,
/// positions in Unicode code points).
#[derive(Debug)]
pub struct Trace {
    pub splices: Vec<Splice>,
}

impl Trace {
    /// Reads a trace file.
    ///
    /// # Errors
    /// A message when the file cannot be read or is not a trace.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let json = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut text = String::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut text)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            text
        } else {
            String::from_utf8(bytes).map_err(|error| format!("{}: {error}", path.display()))?
        };
        let trace: serde_json::Value =
            serde_json::from_str(&json).map_err(|error| format!("{}: {error}", path.display()))?;
        let mut splices = Vec::new();
        for transaction in trace["txns"].as_array().ok_or("the trace has no txns")? {
            for patch in transaction["patches"]
                .as_array()
                .ok_or("a txn has no patches")?
            {
                let number = |index: usize| {
                    patch[index]
                        .as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or("a patch is not [position, deleted, inserted]")
                };
                splices.push(Splice {
                    position: number(0)?,
                    deleted: number(1)?,
                    inserted: patch[2].as_str().unwrap_or_default().to_owned(),
                });
            }
        }
        if splices.is_empty() {
            return Err(format!("{}: the trace holds no edits", path.display()));
        }
        Ok(Self { splices })
    }
}

/// A small deterministic generator (xorshift), so a run can be repeated.
#[derive(Clone, Debug)]
pub struct Random(u64);

impl Random {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, bound: usize) -> usize {
        let bound = u64::try_from(bound.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % bound).unwrap_or(0)
    }
}

/// A typist's way of editing.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// Runs of characters typed at a cursor that moves on, some backspaces, occasional jumps.
    Typing { cursor: usize, random: Random },
    /// The trace's edits in turn (positions clamped to the typist's text), from the start again
    /// at the end.
    Trace {
        trace: std::sync::Arc<Trace>,
        next: usize,
    },
}

const LETTERS: &[&str] = &[
    "e", "t", "a", "o", "i", "n", " ", "s", "r", "h", "l", "d", "c", "u", "m", " ", "(", ")", "=",
    "\n", "_", ".", "é", "😀",
];

impl Pattern {
    #[must_use]
    pub fn typing(seed: u64) -> Self {
        Self::Typing {
            cursor: 0,
            random: Random::new(seed),
        }
    }

    /// The next edit on `text`, as a splice in code points; `marker`, when given, is inserted
    /// with it (plain clients use markers to recognise their edits).
    pub fn next(&mut self, text: &str, marker: Option<&str>) -> Splice {
        let length = text.chars().count();
        let mut splice = match self {
            Self::Typing { cursor, random } => {
                *cursor = (*cursor).min(length);
                let roll = random.below(100);
                if roll < 4 {
                    *cursor = random.below(length + 1);
                }
                if roll >= 92 && *cursor > 0 {
                    *cursor -= 1;
                    Splice {
                        position: *cursor,
                        deleted: 1,
                        inserted: String::new(),
                    }
                } else {
                    let typed = LETTERS[random.below(LETTERS.len())];
                    let splice = Splice {
                        position: *cursor,
                        deleted: 0,
                        inserted: typed.to_owned(),
                    };
                    *cursor += 1;
                    splice
                }
            }
            Self::Trace { trace, next } => {
                let original = &trace.splices[*next % trace.splices.len()];
                *next += 1;
                let position = original.position.min(length);
                Splice {
                    position,
                    deleted: original.deleted.min(length - position),
                    inserted: original.inserted.clone(),
                }
            }
        };
        if let Some(marker) = marker {
            splice.inserted.insert_str(0, marker);
            if let Self::Typing { cursor, .. } = self {
                *cursor += marker.chars().count();
            }
        }
        splice
    }
}

/// A plain typist's keystroke, as the naive client of the prototype types: `keystroke` at the
/// end of the typist's own line (`§{typist}:` …), which it starts at the end of the text when
/// its buffer does not show it yet. Every typist types on its own line, as people pairing on a
/// file mostly do, and nobody's typing touches another's keystrokes.
#[must_use]
pub fn type_on_own_line(text: &str, typist: usize, keystroke: &str) -> String {
    let label = format!("§{typist}:");
    let mut typed = text.to_owned();
    let at_line_start = |at: usize| at == 0 || text[..at].ends_with('\n');
    let own = text
        .match_indices(&label)
        .map(|(at, _)| at)
        .find(|at| at_line_start(*at));
    match own {
        Some(start) => {
            let end = text[start..]
                .find('\n')
                .map_or(text.len(), |end| start + end);
            typed.insert_str(end, keystroke);
        }
        None => {
            if !typed.is_empty() && !typed.ends_with('\n') {
                typed.push('\n');
            }
            typed.push_str(&label);
            typed.push_str(keystroke);
            typed.push('\n');
        }
    }
    typed
}

/// The operation on `text` that performs `splice` (code points → UTF-16 units).
#[must_use]
pub fn operation(text: &str, splice: &Splice) -> TextOperation {
    let mut chars = text.chars();
    let before: usize = chars
        .by_ref()
        .take(splice.position)
        .map(char::len_utf16)
        .sum();
    let deleted: usize = chars
        .by_ref()
        .take(splice.deleted)
        .map(char::len_utf16)
        .sum();
    let after: usize = chars.map(char::len_utf16).sum();
    TextOperation::new()
        .retain(before)
        .delete(deleted)
        .insert(&splice.inserted)
        .retain(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_typists_type_at_the_end_of_their_own_line() {
        let first = type_on_own_line("", 1, "«1.0»");
        assert_eq!(first, "§1:«1.0»\n");
        let other = type_on_own_line(&first, 2, "«2.0»");
        assert_eq!(other, "§1:«1.0»\n§2:«2.0»\n");
        assert_eq!(
            type_on_own_line(&other, 1, "«1.1»"),
            "§1:«1.0»«1.1»\n§2:«2.0»\n"
        );
        // A label inside a line is not the typist's line; a text without a final newline gets
        // one before the new line.
        assert_eq!(type_on_own_line("x §3:", 3, "k"), "x §3:\n§3:k\n");
    }

    #[test]
    fn typing_makes_valid_edits() {
        let mut pattern = Pattern::typing(7);
        let mut text = String::from("start");
        for _ in 0..2_000 {
            let splice = pattern.next(&text, None);
            text = operation(&text, &splice).apply(&text).expect("applies");
        }
        assert!(text.chars().count() > 1_000, "{}", text.len());
    }

    #[test]
    fn splices_count_code_points_and_send_utf16() {
        let splice = Splice {
            position: 1,
            deleted: 1,
            inserted: "x".into(),
        };
        let op = operation("a😀b", &splice);
        assert_eq!(op.apply("a😀b").as_deref(), Ok("axb"));
    }
}
