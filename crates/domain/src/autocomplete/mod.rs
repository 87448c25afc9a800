//! The autocomplete port: what a completion engine is asked and what it answers; and the two
//! engines that need nothing outside the process: the local, language-aware one (the default)
//! and the prototype's canned one.

mod knowledge;
mod local;

use async_trait::async_trait;

pub use local::{LocalAutocompleter, trim_what_follows};

use crate::room::Language;
use crate::text::{PositionError, Utf16Position};

/// What an engine is asked: complete `code` at `cursor`, written in `language`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletionRequest {
    code: String,
    cursor: Utf16Position,
    language: Language,
}

impl CompletionRequest {
    /// A request with the cursor `cursor_units` UTF-16 code units into `code`.
    ///
    /// # Errors
    /// [`PositionError`] when the cursor is past the end of the code or inside a character.
    pub fn new(
        code: String,
        cursor_units: usize,
        language: Language,
    ) -> Result<Self, PositionError> {
        let cursor = Utf16Position::resolve(&code, cursor_units)?;
        Ok(Self {
            code,
            cursor,
            language,
        })
    }

    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    #[must_use]
    pub const fn cursor(&self) -> Utf16Position {
        self.cursor
    }

    #[must_use]
    pub const fn language(&self) -> &Language {
        &self.language
    }

    /// The code before the cursor.
    #[must_use]
    pub fn before_cursor(&self) -> &str {
        &self.code[..self.cursor.byte()]
    }

    /// The code after the cursor.
    #[must_use]
    pub fn after_cursor(&self) -> &str {
        &self.code[self.cursor.byte()..]
    }
}

/// An engine's answer: the text to insert at the cursor (empty when it has nothing to offer),
/// further candidates in falling rank, and, when the suggestion replaces text rather than
/// being inserted, the UTF-16 range it replaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    pub suggestion: String,
    pub alternatives: Vec<String>,
    pub replaces: Option<std::ops::Range<usize>>,
}

impl Completion {
    #[must_use]
    pub fn new(suggestion: impl Into<String>) -> Self {
        Self {
            suggestion: suggestion.into(),
            alternatives: Vec::new(),
            replaces: None,
        }
    }
}

/// Why an engine gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutocompleteError {
    /// The engine could not be reached or did not answer in time.
    #[error("the completion engine is unavailable: {0}")]
    Unavailable(String),
    /// The engine answered something that is not a completion.
    #[error("the completion engine answered something unusable: {0}")]
    InvalidAnswer(String),
}

/// A completion engine.
#[cfg_attr(any(test, feature = "test-support"), mockall::automock)]
#[async_trait]
pub trait Autocompleter: Send + Sync {
    /// Suggests text to insert at the request's cursor.
    ///
    /// # Errors
    /// [`AutocompleteError`] when the engine cannot answer; callers treat that as no suggestion.
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, AutocompleteError>;
}

/// The prototype's engine, kept to the letter for clients that rely on it: it suggests
/// `print('Hello World')` when the trimmed code ends with `pri` or the code holds no `print`,
/// and nothing otherwise. It ignores the cursor and the language.
#[derive(Clone, Copy, Debug, Default)]
pub struct CannedAutocompleter;

impl CannedAutocompleter {
    /// The one suggestion the prototype ever made.
    pub const SUGGESTION: &'static str = "print('Hello World')";

    fn suggest(code: &str) -> &'static str {
        if code.trim().ends_with("pri") || !code.contains("print") {
            Self::SUGGESTION
        } else {
            ""
        }
    }
}

#[async_trait]
impl Autocompleter for CannedAutocompleter {
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, AutocompleteError> {
        Ok(Completion::new(Self::suggest(request.code())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_rule_matches_the_prototype() {
        let cases = [
            ("", CannedAutocompleter::SUGGESTION),
            ("x = 1", CannedAutocompleter::SUGGESTION),
            ("pri", CannedAutocompleter::SUGGESTION),
            ("  pri \n", CannedAutocompleter::SUGGESTION),
            ("print('a')\npri", CannedAutocompleter::SUGGESTION),
            ("print('a')", ""),
            ("print", ""),
            ("Print('a')", CannedAutocompleter::SUGGESTION),
            ("print('a')\nx = 1", ""),
        ];
        for (code, expected) in cases {
            assert_eq!(CannedAutocompleter::suggest(code), expected, "{code:?}");
        }
    }

    #[test]
    fn request_splits_code_at_the_cursor() {
        let request =
            CompletionRequest::new("a😀bc".into(), 3, Language::default()).expect("valid cursor");
        assert_eq!(request.before_cursor(), "a😀");
        assert_eq!(request.after_cursor(), "bc");
    }

    #[test]
    fn request_rejects_a_cursor_past_the_end() {
        assert_eq!(
            CompletionRequest::new("abc".into(), 4, Language::default()),
            Err(PositionError::PastEnd {
                position: 4,
                length: 3
            })
        );
    }
}
