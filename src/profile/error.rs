//! Located profile errors: `origin:line:col: message`, so `gazua check` and a failed reload
//! point at the character to fix.

use std::fmt;

/// Why a profile file was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    /// The file's path, or `profiles/NAME.json (built in)` for a shipped profile.
    pub origin: String,
    /// 1-based; 0 when the error is about the file as a whole (it cannot be read).
    pub line: usize,
    /// 1-based; 0 together with `line`.
    pub col: usize,
    pub message: String,
}

impl ProfileError {
    pub fn new(origin: &str, (line, col): (usize, usize), message: impl Into<String>) -> Self {
        ProfileError {
            origin: origin.to_owned(),
            line,
            col,
            message: message.into(),
        }
    }

    /// An error about the whole file (unreadable, a directory that cannot be listed).
    pub fn whole(origin: &str, message: impl Into<String>) -> Self {
        ProfileError::new(origin, (0, 0), message)
    }

    /// serde_json's error, its position taken out of the message and into ours.
    pub(crate) fn from_json(origin: &str, e: &serde_json::Error) -> Self {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text);
        ProfileError::new(origin, (e.line(), e.column()), message)
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.origin, self.line, self.col, self.message
            )
        }
    }
}

impl std::error::Error for ProfileError {}

/// The 1-based line and column of byte `offset` in `text` (columns count characters).
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Where the value of the top-level member `key` starts in a JSON object text, so that errors
/// found after deserializing (an unknown `extends`, a duplicate `name`) still point at it.
/// Falls back to the start of the text when the member is not found.
pub(crate) fn locate_member(text: &str, key: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let string = &text[start + 1..i.min(text.len())];
                if depth == 1 && string == key {
                    let rest = &text[(i + 1).min(text.len())..];
                    let after_ws = rest.trim_start();
                    if let Some(value) = after_ws.strip_prefix(':') {
                        let value_at = text.len() - value.trim_start().len();
                        return line_col(text, value_at);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    (1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_top_level_members_only() {
        let text = "{\n  \"rules\": [{\"name\": \"x\"}],\n  \"name\": \"top\"\n}";
        assert_eq!(locate_member(text, "name"), (3, 11));
        assert_eq!(locate_member(text, "missing"), (1, 1));
    }

    #[test]
    fn displays_origin_line_col() {
        let e = ProfileError::new("p.json", (3, 7), "unknown field");
        assert_eq!(e.to_string(), "p.json:3:7: unknown field");
        assert_eq!(
            ProfileError::whole("p.json", "cannot read").to_string(),
            "p.json: cannot read"
        );
    }
}
