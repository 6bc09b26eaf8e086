//! Diagnostics: a [`ConfigError`] names the file, the line and column, the key and what is allowed;
//! a [`SourceMap`] keeps where keys are written for checks made after parsing (against the data).

use std::fmt;
use std::path::PathBuf;

/// A sweep-file error: what, where, and what to do. Exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, where known.
    pub at: Option<(usize, usize)>,
    /// Dotted key (`grid.temperature`), where known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.at {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Locations of keys, for errors found after parsing (e.g. a subset larger than the data).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMap {
    pub file: PathBuf,
    pub keys: Vec<(String, (usize, usize))>,
}

impl SourceMap {
    /// Whether the sweep file sets `key` (only the keys errors can point at are kept).
    pub fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == key)
    }

    /// An error pointing at `key` in the sweep file.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            at: self.keys.iter().find(|(k, _)| k == key).map(|(_, at)| *at),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

/// Every problem found in a sweep file, in file order (those without a place first), as a compiler
/// reports them: all at once, so that one edit fixes them all. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// `errors` sorted by place (stable: two at one place keep their order), repeats dropped; `None`
    /// for an empty list.
    pub fn new(mut errors: Vec<ConfigError>) -> Option<ConfigErrors> {
        errors.sort_by_key(|e| e.at.unwrap_or((0, 0)));
        errors.dedup();
        (!errors.is_empty()).then_some(ConfigErrors(errors))
    }

    /// The first problem in file order.
    pub fn first(&self) -> &ConfigError {
        &self.0[0]
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true; here for the convention that goes with `len`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![e])
    }
}

/// One problem per line (the command line prints `error: ` before each).
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
