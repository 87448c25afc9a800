//! A completion engine backed by any OpenAI-compatible completion server (llama.cpp's server,
//! Ollama, vLLM, …): it sends the code before the cursor as the prompt and, for
//! fill-in-the-middle, the code after it as the suffix, to `POST {base_url}/completions`.
//!
//! A model is a hint, never a dependency: when the server is slow (past the timeout),
//! unreachable, or answers something that is not a completion, the engine logs a warning and
//! answers with the local engine's suggestion instead.

use std::time::Duration;

use async_trait::async_trait;
use duet_domain::{
    AutocompleteError, Autocompleter, Completion, CompletionRequest, LocalAutocompleter,
    trim_what_follows,
};
use serde::{Deserialize, Serialize};

/// The most code sent before the cursor, in characters: models have bounded contexts.
const PROMPT_CHARS: usize = 8_000;
/// The most code sent after the cursor, in characters.
const SUFFIX_CHARS: usize = 2_000;

/// How to reach the completion server.
#[derive(Clone, Debug)]
pub struct OpenAiConfig {
    /// Up to and including the API version, such as `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
    pub max_tokens: usize,
    /// Whether to send the code after the cursor as `suffix` (fill-in-the-middle).
    pub fill_in_the_middle: bool,
}

/// The engine.
#[derive(Clone, Debug)]
pub struct OpenAiAutocompleter {
    client: reqwest::Client,
    config: OpenAiConfig,
}

#[derive(Serialize)]
struct CompletionBody<'a> {
    model: &'a str,
    prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    suffix: Option<&'a str>,
    max_tokens: usize,
    temperature: f32,
    stop: [&'a str; 1],
    stream: bool,
}

#[derive(Deserialize)]
struct CompletionAnswer {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    text: String,
}

fn last_chars(text: &str, count: usize) -> &str {
    let skip = text.chars().count().saturating_sub(count);
    text.char_indices()
        .nth(skip)
        .map_or(text, |(index, _)| &text[index..])
}

fn first_chars(text: &str, count: usize) -> &str {
    text.char_indices()
        .nth(count)
        .map_or(text, |(index, _)| &text[..index])
}

impl OpenAiAutocompleter {
    #[must_use]
    pub fn new(config: OpenAiConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .unwrap_or_default();
        Self { client, config }
    }

    async fn ask(&self, request: &CompletionRequest) -> Result<String, AutocompleteError> {
        let body = CompletionBody {
            model: &self.config.model,
            prompt: last_chars(request.before_cursor(), PROMPT_CHARS),
            suffix: self
                .config
                .fill_in_the_middle
                .then(|| first_chars(request.after_cursor(), SUFFIX_CHARS)),
            max_tokens: self.config.max_tokens,
            temperature: 0.0,
            stop: ["\n\n"],
            stream: false,
        };
        let mut call = self
            .client
            .post(format!("{}/completions", self.config.base_url))
            .json(&body);
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key);
        }
        let response = call
            .send()
            .await
            .map_err(|error| AutocompleteError::Unavailable(error.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(AutocompleteError::Unavailable(format!(
                "the completion server answered {status}"
            )));
        }
        let answer: CompletionAnswer = response
            .json()
            .await
            .map_err(|error| AutocompleteError::InvalidAnswer(error.without_url().to_string()))?;
        answer
            .choices
            .into_iter()
            .next()
            .map(|choice| choice.text)
            .ok_or_else(|| AutocompleteError::InvalidAnswer("no choices".into()))
    }
}

#[async_trait]
impl Autocompleter for OpenAiAutocompleter {
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, AutocompleteError> {
        let answer = tokio::time::timeout(self.config.timeout, self.ask(request))
            .await
            .unwrap_or_else(|_| {
                Err(AutocompleteError::Unavailable(format!(
                    "no answer within {} ms",
                    self.config.timeout.as_millis()
                )))
            });
        match answer {
            Ok(text) => Ok(Completion::new(trim_what_follows(
                &text,
                request.after_cursor(),
            ))),
            Err(error) => {
                tracing::warn!(%error, "completion model failed; answering with the local engine");
                Ok(LocalAutocompleter::suggest(request))
            }
        }
    }
}
