//! The local engine: deterministic, offline, and fast enough to run on every keystroke.
//!
//! In order of preference it offers: a block snippet right after a block keyword typed alone on
//! its line (`def`, `fn`, `for`, …); the rest of the identifier under the cursor, ranked from
//! the identifiers in the buffer (by frequency and nearness to the cursor) and the language's
//! keywords and built-ins; and the brackets and quotes left open on the current line. It never
//! suggests text that already follows the cursor.
//!
//! Written by hand: it is the part of Duet that decides what a suggestion is; no crate offers
//! a buffer-based, multi-language completer without a language server.

use std::collections::HashMap;

use async_trait::async_trait;

use super::knowledge::{self, Knowledge};
use super::{AutocompleteError, Autocompleter, Completion, CompletionRequest};

/// How many alternatives follow the suggestion.
const ALTERNATIVES: usize = 4;

/// The default engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalAutocompleter;

#[async_trait]
impl Autocompleter for LocalAutocompleter {
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, AutocompleteError> {
        Ok(Self::suggest(request))
    }
}

fn is_identifier_byte(byte: u8, dollar: bool) -> bool {
    // Bytes of non-ASCII characters count as identifier bytes: letters such as `é` or `名`
    // belong in identifiers, and a boundary is then always at an ASCII byte, so slicing is safe.
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80 || (dollar && byte == b'$')
}

/// Removes from the end of `suggestion` what already follows the cursor, so that accepting it
/// does not type twice what is there (`after` starting with `)` turns `x)` into `x`).
#[must_use]
pub fn trim_what_follows(suggestion: &str, after: &str) -> String {
    if suggestion.is_empty() || after.starts_with(suggestion) {
        return String::new();
    }
    let longest = (1..suggestion.len())
        .rev()
        .filter(|cut| suggestion.is_char_boundary(*cut))
        .find(|cut| after.starts_with(&suggestion[*cut..]))
        .unwrap_or(suggestion.len());
    suggestion[..longest].to_owned()
}

impl LocalAutocompleter {
    /// The completion for a request (the engine never fails).
    #[must_use]
    pub fn suggest(request: &CompletionRequest) -> Completion {
        let knowledge = knowledge::of(*request.language());
        let before = request.before_cursor();
        let after = request.after_cursor();
        let dollar = knowledge.dollar_identifiers;
        let prefix_start = before
            .bytes()
            .rposition(|byte| !is_identifier_byte(byte, dollar))
            .map_or(0, |index| index + 1);
        let prefix = &before[prefix_start..];
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let line_before = &before[line_start..];
        let rest_of_line = after.split('\n').next().unwrap_or("");

        if let Some(snippet) = snippet(knowledge, line_before, rest_of_line) {
            return Completion::new(snippet);
        }
        let context = Scan::of(knowledge, line_before);
        if context.in_comment {
            return Completion::default();
        }
        let starts_with_digit = prefix.bytes().next().is_some_and(|b| b.is_ascii_digit());
        if !prefix.is_empty() && !starts_with_digit && !context.in_string {
            let ranked = rank(knowledge, request.code(), prefix_start, prefix);
            let mut suffixes = ranked
                .into_iter()
                .map(|word| trim_what_follows(&word[prefix.len()..], after))
                .filter(|suffix| !suffix.is_empty());
            if let Some(suggestion) = suffixes.next() {
                let alternatives = suffixes.take(ALTERNATIVES).collect();
                return Completion {
                    suggestion,
                    alternatives,
                    replaces: None,
                };
            }
        }
        // Nothing to complete: close what the current line left open, if the line ends here.
        if rest_of_line.trim().is_empty() || after.starts_with([')', ']', '}', '"', '\'', '`']) {
            let closers = context.closers();
            return Completion::new(trim_what_follows(&closers, after));
        }
        Completion::default()
    }
}

/// The snippet for a block keyword typed alone on its line, with the cursor right after it.
fn snippet(knowledge: &Knowledge, line_before: &str, rest_of_line: &str) -> Option<String> {
    if !rest_of_line.trim().is_empty() {
        return None;
    }
    let indent_length = line_before.len() - line_before.trim_start().len();
    let (indent, typed) = line_before.split_at(indent_length);
    let (trigger, body) = knowledge.snippets.iter().find(|(trigger, _)| {
        if trigger.starts_with(|c: char| c.is_ascii_alphabetic()) {
            typed == *trigger
        } else {
            // A symbol trigger such as `=>` may end a longer line.
            typed.trim_end() == typed && typed.ends_with(trigger)
        }
    })?;
    let _ = trigger;
    Some(
        body.replace("{i}", indent)
            .replace("{u}", knowledge.indent_unit),
    )
}

/// Candidates that extend `prefix`, best first: words of the buffer (more frequent and nearer
/// to the cursor rank higher), then keywords and built-ins.
fn rank(knowledge: &Knowledge, code: &str, cursor_word_start: usize, prefix: &str) -> Vec<String> {
    let dollar = knowledge.dollar_identifiers;
    let bytes = code.as_bytes();
    let first = prefix.as_bytes()[0];
    // word → (occurrences, distance of the nearest occurrence to the cursor)
    let mut seen: HashMap<&str, (u32, usize)> = HashMap::new();
    let mut index = 0;
    while index < bytes.len() {
        if !is_identifier_byte(bytes[index], dollar) {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && is_identifier_byte(bytes[index], dollar) {
            index += 1;
        }
        // Only words that can extend the prefix are counted, and not the word being typed.
        if bytes[start] != first || start == cursor_word_start || index - start <= prefix.len() {
            continue;
        }
        let word = &code[start..index];
        if !word.starts_with(prefix) || word.as_bytes()[0].is_ascii_digit() {
            continue;
        }
        let distance = start.abs_diff(cursor_word_start);
        let entry = seen.entry(word).or_insert((0, usize::MAX));
        entry.0 += 1;
        entry.1 = entry.1.min(distance);
    }
    let mut scored: Vec<(f64, &str)> = seen
        .into_iter()
        .map(|(word, (count, distance))| {
            let frequency = f64::from(count).ln_1p();
            let nearness = 2.0 / (1.0 + distance as f64 / 400.0);
            let known = if knowledge.keywords.contains(&word) || knowledge.builtins.contains(&word)
            {
                0.5
            } else {
                0.0
            };
            (frequency + nearness + known, word)
        })
        .collect();
    for (weight, words) in [(0.9, knowledge.keywords), (0.8, knowledge.builtins)] {
        for word in words {
            if word.len() > prefix.len()
                && word.starts_with(prefix)
                && !scored.iter().any(|(_, known)| known == word)
            {
                scored.push((weight, word));
            }
        }
    }
    scored.sort_by(|(score_a, word_a), (score_b, word_b)| {
        score_b
            .total_cmp(score_a)
            .then(word_a.len().cmp(&word_b.len()))
            .then(word_a.cmp(word_b))
    });
    scored
        .into_iter()
        .map(|(_, word)| word.to_owned())
        .collect()
}

/// What the current line leaves open at the cursor.
struct Scan {
    brackets: Vec<u8>,
    quote: Option<u8>,
    in_string: bool,
    in_comment: bool,
}

impl Scan {
    fn of(knowledge: &Knowledge, line: &str) -> Self {
        let bytes = line.as_bytes();
        let mut scan = Self {
            brackets: Vec::new(),
            quote: None,
            in_string: false,
            in_comment: false,
        };
        let mut index = 0;
        while index < bytes.len() {
            let byte = bytes[index];
            if let Some(quote) = scan.quote {
                if byte == b'\\' {
                    index += 2;
                    continue;
                }
                if byte == quote {
                    scan.quote = None;
                }
                index += 1;
                continue;
            }
            if knowledge
                .line_comment
                .is_some_and(|token| line[index..].starts_with(token))
            {
                scan.in_comment = true;
                return scan;
            }
            if knowledge.block_comments && line[index..].starts_with("/*") {
                match line[index + 2..].find("*/") {
                    Some(end) => {
                        index += end + 4;
                        continue;
                    }
                    None => {
                        scan.in_comment = true;
                        return scan;
                    }
                }
            }
            match byte {
                b'"' | b'`' => scan.quote = Some(byte),
                b'\'' if knowledge.single_quote_strings => scan.quote = Some(byte),
                b'(' | b'[' | b'{' => scan.brackets.push(byte),
                b')' | b']' | b'}' => {
                    scan.brackets.pop();
                }
                _ => {}
            }
            index += 1;
        }
        scan.in_string = scan.quote.is_some();
        scan
    }

    /// The quote and brackets that close what is open, innermost first. Braces are left
    /// alone: they open blocks, which go on over the next lines.
    fn closers(&self) -> String {
        let mut closers = String::new();
        if let Some(quote) = self.quote {
            closers.push(char::from(quote));
        }
        for open in self.brackets.iter().rev() {
            match open {
                b'(' => closers.push(')'),
                b'[' => closers.push(']'),
                _ => break,
            }
        }
        closers
    }
}
