//! Configuration errors: each one names where it was written, what is wrong, and how to fix it.
//!
//! Loading never stops at the first mistake: every error is collected into [`Errors`] and reported at
//! once, one per line, in the `file:line:col: message` form editors understand.

use std::fmt;
use std::path::PathBuf;

use super::node::Pos;

/// One mistake in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where; `None` for errors about the directory as a whole (e.g. it does not exist).
    pub pos: Option<Pos>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn at(pos: Pos, message: impl Into<String>) -> Self {
        ConfigError {
            pos: Some(pos),
            message: message.into(),
            hint: None,
        }
    }

    pub fn general(message: impl Into<String>) -> Self {
        ConfigError {
            pos: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn in_file(file: &std::path::Path, message: impl Into<String>) -> Self {
        ConfigError::at(
            Pos {
                file: std::sync::Arc::new(PathBuf::from(file)),
                line: 1,
                col: 1,
            },
            message,
        )
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pos) = &self.pos {
            write!(f, "{pos}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Every mistake found while loading, in the order they were found, and the warnings (things gantry
/// accepts but asks to be changed, such as mittnite's deprecated attribute names) beside them.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Errors(pub Vec<ConfigError>, Vec<ConfigError>);

impl Errors {
    pub fn push(&mut self, e: ConfigError) {
        self.0.push(e);
    }

    /// Records a warning: accepted, but worth changing. It does not make loading fail.
    pub fn warn(&mut self, w: ConfigError) {
        self.1.push(w);
    }

    /// The warnings recorded so far, in order.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.1
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} configuration error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}
