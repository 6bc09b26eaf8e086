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
