//! Small helpers every stage uses.

/// The first non-empty line of a message, trimmed: libtorch's errors (and tch's panics with them)
/// carry a C++ backtrace after the line that says what happened.
pub fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// Lower-case hexadecimal of `bytes` (SHA-256 digests in keys, file names and checksums).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What is wrong with one key of a sweep-file table, found by the code that owns the key's meaning
/// (an optimizer's rules live beside the optimizer): the key's name, which element of a list when
/// it is one, and what to do. The config stage turns it into a file:line:column error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    pub key: &'static str,
    pub element: Option<usize>,
    pub message: String,
}

impl KeyProblem {
    pub fn new(key: &'static str, message: impl Into<String>) -> KeyProblem {
        KeyProblem {
            key,
            element: None,
            message: message.into(),
        }
    }

    /// A problem with element `i` of the list `key`.
    pub fn element(key: &'static str, i: usize, message: impl Into<String>) -> KeyProblem {
        KeyProblem {
            key,
            element: Some(i),
            message: message.into(),
        }
    }
}
