//! The autocomplete use case: validate a request, ask the configured engine, never fail on it.

use std::sync::Arc;

use duet_domain::{
    Autocompleter, Completion, CompletionRequest, Language, LanguageError, PositionError,
};

/// Why a completion request was refused before reaching an engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutocompleteRequestError {
    #[error(transparent)]
    InvalidCursor(#[from] PositionError),
    #[error(transparent)]
    InvalidLanguage(#[from] LanguageError),
}

/// Suggests completions with the configured engine.
#[derive(Clone)]
pub struct Autocomplete {
    engine: Arc<dyn Autocompleter>,
}

impl Autocomplete {
    #[must_use]
    pub fn new(engine: Arc<dyn Autocompleter>) -> Self {
        Self { engine }
    }

    /// Suggests what to insert at `cursor` (UTF-16 code units) in `code`. A failing engine is
    /// logged and answered with an empty suggestion: a completion is a hint, never worth an error.
    ///
    /// # Errors
    /// [`AutocompleteRequestError`] when the cursor is not a position in the code or the
    /// language cannot be a name.
    pub async fn suggest(
        &self,
        code: String,
        cursor: usize,
        language: Option<&str>,
    ) -> Result<Completion, AutocompleteRequestError> {
        let language = match language {
            Some(name) => Language::new(name)?,
            None => Language::default(),
        };
        let request = CompletionRequest::new(code, cursor, language)?;
        match self.engine.complete(&request).await {
            Ok(completion) => Ok(completion),
            Err(error) => {
                tracing::warn!(%error, "completion engine failed; answering with no suggestion");
                Ok(Completion::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_domain::{AutocompleteError, MockAutocompleter};
    use mockall::predicate::function;

    #[tokio::test]
    async fn passes_a_validated_request_to_the_engine() {
        let mut engine = MockAutocompleter::new();
        engine
            .expect_complete()
            .with(function(|request: &CompletionRequest| {
                request.before_cursor() == "pri"
                    && request.after_cursor() == "\n"
                    && request.language().as_str() == "python"
            }))
            .times(1)
            .returning(|_| Ok(Completion::new("nt()")));
        let autocomplete = Autocomplete::new(Arc::new(engine));
        let completion = autocomplete
            .suggest("pri\n".into(), 3, Some("Python"))
            .await
            .expect("valid request");
        assert_eq!(completion.suggestion, "nt()");
    }

    #[tokio::test]
    async fn a_failing_engine_gives_an_empty_suggestion() {
        let mut engine = MockAutocompleter::new();
        engine
            .expect_complete()
            .returning(|_| Err(AutocompleteError::Unavailable("timed out".into())));
        let autocomplete = Autocomplete::new(Arc::new(engine));
        let completion = autocomplete
            .suggest("x".into(), 1, None)
            .await
            .expect("valid request");
        assert_eq!(completion.suggestion, "");
    }

    #[tokio::test]
    async fn bad_requests_never_reach_the_engine() {
        let mut engine = MockAutocompleter::new();
        engine.expect_complete().never();
        let autocomplete = Autocomplete::new(Arc::new(engine));
        assert!(matches!(
            autocomplete.suggest("abc".into(), 4, None).await,
            Err(AutocompleteRequestError::InvalidCursor(
                PositionError::PastEnd { .. }
            ))
        ));
        assert!(matches!(
            autocomplete.suggest("😀".into(), 1, None).await,
            Err(AutocompleteRequestError::InvalidCursor(
                PositionError::SplitsSurrogatePair { .. }
            ))
        ));
        assert!(matches!(
            autocomplete.suggest("abc".into(), 0, Some("")).await,
            Err(AutocompleteRequestError::InvalidLanguage(_))
        ));
    }
}
