//! Errors of the rules crate: each names the rule or template, and where in its file.

use std::fmt;

/// A place in a rule or template file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (or the rule's name when it has no file).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => f.write_str(&self.file),
            (l, 0) => write!(f, "{}:{l}", self.file),
            (l, c) => write!(f, "{}:{l}:{c}", self.file),
        }
    }
}

/// Everything that can go wrong loading, checking or testing rules and templates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// A script does not compile, or declares bad timers.
    #[error("{at}: rule `{rule}` does not compile: {message}")]
    Compile {
        /// The rule's name.
        rule: String,
        /// Where.
        at: Location,
        /// Why.
        message: String,
    },
    /// Several scripts failed to compile (every error is listed).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<RulesError>),
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
    /// A template is wrong or its rendering failed (unknown variable, syntax, over its fuel).
    #[error("template `{template}`: {message}")]
    Template {
        /// The template's name.
        template: String,
        /// Why, with the line where known.
        message: String,
    },
    /// A fixture or directory file is malformed.
    #[error("{file}: {message}")]
    Fixture {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
}

impl RulesError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, e: impl fmt::Display) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            message: e.to_string(),
        }
    }
}
