//! App ids and file paths: the only two names a client chooses, so both are validated here
//! before they reach a key, a row or a tar header.
//!
//! A file path arrives either percent-encoded in the URL (`/files/{*path}`) or as a JSON string
//! (`files:batch`, import). The URL parser has already resolved literal `..` segments by the
//! time the worker sees the path, but an encoded slash (`a%2F..%2Fb`) survives it, so we decode
//! first and validate the decoded string: what is checked is exactly what is stored.

use crate::error::Error;

/// Longest accepted path, in bytes of UTF-8.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest accepted app id; it is a key prefix, so it stays short and plain.
pub const MAX_APP_ID_BYTES: usize = 64;

/// A validated app id: `[A-Za-z0-9._-]{1,64}`, not starting with a dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppId(String);

impl AppId {
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if raw.is_empty() || raw.len() > MAX_APP_ID_BYTES || !raw.chars().all(ok_char) || raw.starts_with('.') {
            return Err(Error::invalid_field("app", "must be 1-64 characters of A-Z a-z 0-9 . _ - and not start with a dot"));
        }
        Ok(AppId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated, normalised relative file path (`dir/sub/file.ext`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FilePath(String);

impl FilePath {
    /// Validates a decoded path. `.` segments are dropped (they name the same file); everything
    /// that could escape the app or alias another file is refused: `..`, a leading `/`
    /// (absolute), empty segments (`a//b`, trailing `/`), backslashes (a separator on Windows,
    /// where an archive may be unpacked), NUL and other control characters.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let bad = |why: &str| Err(Error::bad_request("invalid_path", format!("path {}: {why}", shown(raw))));
        if raw.is_empty() {
            return bad("must not be empty");
        }
        if raw.len() > MAX_PATH_BYTES {
            return bad("is longer than 1024 bytes");
        }
        if raw.contains('\0') {
            return bad("must not contain NUL");
        }
        if raw.chars().any(char::is_control) {
            return bad("must not contain control characters");
        }
        if raw.contains('\\') {
            return bad("must not contain backslashes");
        }
        if raw.starts_with('/') {
            return bad("must be relative, not absolute");
        }
        let mut segments = Vec::new();
        for segment in raw.split('/') {
            match segment {
                "" => return bad("must not contain empty segments"),
                "." => continue,
                ".." => return bad("must not contain '..'"),
                s => segments.push(s),
            }
        }
        if segments.is_empty() {
            return bad("names no file");
        }
        Ok(FilePath(segments.join("/")))
    }

    /// Decodes the URL's percent-encoded path tail, then validates it; invalid UTF-8 is refused.
    pub fn from_url_segments(segments: &[&str]) -> Result<Self, Error> {
        let joined = segments.join("/");
        let bytes = percent_decode(&joined).ok_or_else(|| Error::bad_request("invalid_path", "path has a malformed percent escape"))?;
        let decoded = String::from_utf8(bytes).map_err(|_| Error::bad_request("invalid_path", "path is not valid UTF-8"))?;
        FilePath::parse(&decoded)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file name's extension, lower-cased (`"HTML"` → `"html"`).
    pub fn extension(&self) -> Option<String> {
        let name = self.0.rsplit('/').next()?;
        let (stem, ext) = name.rsplit_once('.')?;
        (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
    }
}

impl std::fmt::Display for FilePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The path as it may appear in an error message: escaped, and cut so a 1 MB path does not
/// become a 1 MB error body.
fn shown(raw: &str) -> String {
    let escaped: String = raw.escape_debug().collect();
    if escaped.len() > 80 {
        let mut cut = 80;
        while !escaped.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("\"{}…\"", &escaped[..cut])
    } else {
        format!("\"{escaped}\"")
    }
}

/// `%XX` decoding; `None` on a malformed escape. `+` stays `+` (this is a path, not a form).
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        FilePath::parse(raw).unwrap().0
    }

    fn rejected(raw: &str) -> bool {
        matches!(FilePath::parse(raw), Err(Error::BadRequest { code: "invalid_path", .. }))
    }

    #[test]
    fn plain_paths_pass_and_dot_segments_vanish() {
        assert_eq!(ok("index.html"), "index.html");
        assert_eq!(ok("src/app/main.rs"), "src/app/main.rs");
        assert_eq!(ok("./src/./a.js"), "src/a.js");
        assert_eq!(ok("ünïcode/文件.txt"), "ünïcode/文件.txt");
        assert_eq!(ok(".hidden/..x/x.."), ".hidden/..x/x..");
    }

    #[test]
    fn escapes_and_aliases_are_refused() {
        for raw in ["", "..", "../x", "a/../b", "a/..", "/etc/passwd", "a//b", "a/", "a\\b", "..\\x", "a\0b", "a\nb", ".", "./"] {
            assert!(rejected(raw), "{raw:?} should be rejected");
        }
    }

    #[test]
    fn length_limit_is_in_bytes() {
        assert!(FilePath::parse(&"a".repeat(1024)).is_ok());
        assert!(rejected(&"a".repeat(1025)));
        // 512 two-byte characters are 1024 bytes; one more is over.
        assert!(FilePath::parse(&"é".repeat(512)).is_ok());
        assert!(rejected(&"é".repeat(513)));
    }

    #[test]
    fn url_paths_are_decoded_before_validation() {
        assert_eq!(FilePath::from_url_segments(&["dir", "a%20b.txt"]).unwrap().as_str(), "dir/a b.txt");
        assert_eq!(FilePath::from_url_segments(&["%E6%96%87.txt"]).unwrap().as_str(), "文.txt");
        for segs in [&["a%2F..%2Fb"][..], &["%2e%2e", "x"], &["a%00b"], &["%FF%FE"], &["bad%2"], &["%2Fetc"], &["a", "", "b"]] {
            assert!(FilePath::from_url_segments(segs).is_err(), "{segs:?} should be rejected");
        }
    }

    #[test]
    fn app_ids_are_plain() {
        assert!(AppId::parse("my-app_1.0").is_ok());
        for raw in ["", ".app", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(AppId::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn extension_is_lower_case_and_needs_a_stem() {
        assert_eq!(FilePath::parse("a/B.HTML").unwrap().extension().as_deref(), Some("html"));
        assert_eq!(FilePath::parse(".gitignore").unwrap().extension(), None);
        assert_eq!(FilePath::parse("Makefile").unwrap().extension(), None);
    }
}
