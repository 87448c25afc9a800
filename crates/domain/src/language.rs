//! The languages rooms are written in, and what the local completion engine knows of each.

use std::fmt;

/// A language Duet supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Python,
    JavaScript,
    TypeScript,
    Rust,
    Go,
    Java,
    C,
    Cpp,
    PlainText,
}

/// A name that is not a supported language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanguageError {
    /// The name was empty or only whitespace.
    #[error("the language must not be empty; supported: {}", Language::names())]
    Empty,
    /// No supported language has that name.
    #[error("unknown language `{0}`; supported: {names}", names = Language::names())]
    Unsupported(String),
}

impl Language {
    /// Every supported language, in the order `GET /languages` lists them.
    pub const ALL: [Self; 9] = [
        Self::Python,
        Self::JavaScript,
        Self::TypeScript,
        Self::Rust,
        Self::Go,
        Self::Java,
        Self::C,
        Self::Cpp,
        Self::PlainText,
    ];

    /// The language of a room created without one: the prototype's rooms held Python.
    pub const DEFAULT: Self = Self::Python;

    /// Reads a language name: its canonical name (`python`, `cpp`, …) or a common alias
    /// (`py`, `js`, `ts`, `rs`, `golang`, `c++`, `text`, …), in any case.
    ///
    /// # Errors
    /// [`LanguageError`] for an empty or unknown name.
    pub fn new(name: &str) -> Result<Self, LanguageError> {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return Err(LanguageError::Empty);
        }
        let language = match trimmed.to_ascii_lowercase().as_str() {
            "python" | "py" | "python3" => Self::Python,
            "javascript" | "js" | "jsx" | "node" => Self::JavaScript,
            "typescript" | "ts" | "tsx" => Self::TypeScript,
            "rust" | "rs" => Self::Rust,
            "go" | "golang" => Self::Go,
            "java" => Self::Java,
            "c" | "h" => Self::C,
            "cpp" | "c++" | "cxx" | "cc" | "hpp" => Self::Cpp,
            "plaintext" | "text" | "plain" | "txt" => Self::PlainText,
            _ => {
                let shown: String = trimmed.chars().take(40).collect();
                return Err(LanguageError::Unsupported(shown));
            }
        };
        Ok(language)
    }

    /// The canonical name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::JavaScript => "javascript",
            Self::TypeScript => "typescript",
            Self::Rust => "rust",
            Self::Go => "go",
            Self::Java => "java",
            Self::C => "c",
            Self::Cpp => "cpp",
            Self::PlainText => "plaintext",
        }
    }

    /// A human name, for lists shown to people.
    #[must_use]
    pub const fn display_name(&self) -> &'static str {
        match self {
            Self::Python => "Python",
            Self::JavaScript => "JavaScript",
            Self::TypeScript => "TypeScript",
            Self::Rust => "Rust",
            Self::Go => "Go",
            Self::Java => "Java",
            Self::C => "C",
            Self::Cpp => "C++",
            Self::PlainText => "Plain text",
        }
    }

    fn names() -> String {
        Self::ALL
            .iter()
            .map(Self::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for Language {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for Language {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_aliases() {
        let cases = [
            ("python", Language::Python),
            (" Py ", Language::Python),
            ("JS", Language::JavaScript),
            ("typescript", Language::TypeScript),
            ("rs", Language::Rust),
            ("golang", Language::Go),
            ("Java", Language::Java),
            ("c", Language::C),
            ("C++", Language::Cpp),
            ("text", Language::PlainText),
        ];
        for (name, expected) in cases {
            assert_eq!(Language::new(name), Ok(expected), "{name}");
        }
        for language in Language::ALL {
            assert_eq!(Language::new(language.as_str()), Ok(language));
        }
    }

    #[test]
    fn refuses_unknown_names_listing_the_supported_ones() {
        assert_eq!(Language::new("  "), Err(LanguageError::Empty));
        let error = Language::new("cobol").expect_err("unsupported");
        assert_eq!(error, LanguageError::Unsupported("cobol".into()));
        let message = error.to_string();
        assert!(
            message.contains("python") && message.contains("plaintext"),
            "{message}"
        );
    }
}
