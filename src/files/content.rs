//! Facts about a file's bytes: hash, kind and media type. (How they are encoded in R2 is the
//! object layer's business: `store::object`.)

use super::path::FilePath;

/// The file's identity, its ETag and its R2 key: the crate's one SHA-256 (`store::digest`).
pub use crate::store::digest::{is_sha256_hex, sha256_hex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Text,
    Binary,
}

impl FileType {
    /// Text is valid UTF-8 without NUL bytes; that is what a unified diff can show.
    pub fn of(bytes: &[u8]) -> Self {
        if !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok() {
            FileType::Text
        } else {
            FileType::Binary
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Text => "text",
            FileType::Binary => "binary",
        }
    }
}

/// The media type served for a file, by extension. The request's own `Content-Type` is not
/// trusted: `curl --data-binary` sends `application/x-www-form-urlencoded` for everything.
pub fn content_type_for(path: &FilePath, file_type: FileType) -> &'static str {
    let by_ext = match path.extension().as_deref() {
        Some("html" | "htm") => Some("text/html; charset=utf-8"),
        Some("css") => Some("text/css; charset=utf-8"),
        Some("js" | "mjs" | "cjs") => Some("text/javascript; charset=utf-8"),
        Some("json" | "map") => Some("application/json; charset=utf-8"),
        Some("md") => Some("text/markdown; charset=utf-8"),
        Some("txt" | "log") => Some("text/plain; charset=utf-8"),
        Some("csv") => Some("text/csv; charset=utf-8"),
        Some("xml") => Some("application/xml"),
        Some("svg") => Some("image/svg+xml"),
        Some("png") => Some("image/png"),
        Some("jpg" | "jpeg") => Some("image/jpeg"),
        Some("gif") => Some("image/gif"),
        Some("webp") => Some("image/webp"),
        Some("ico") => Some("image/x-icon"),
        Some("wasm") => Some("application/wasm"),
        Some("pdf") => Some("application/pdf"),
        Some("woff2") => Some("font/woff2"),
        Some("woff") => Some("font/woff"),
        Some("ts" | "tsx" | "jsx" | "rs" | "py" | "toml" | "yaml" | "yml" | "sh" | "sql") => Some("text/plain; charset=utf-8"),
        Some("gz") => Some("application/gzip"),
        Some("zip") => Some("application/zip"),
        _ => None,
    };
    by_ext.unwrap_or(match file_type {
        FileType::Text => "text/plain; charset=utf-8",
        FileType::Binary => "application/octet-stream",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_utf8_without_nul() {
        assert_eq!(FileType::of(b"hello\n"), FileType::Text);
        assert_eq!(FileType::of("é".as_bytes()), FileType::Text);
        assert_eq!(FileType::of(b""), FileType::Text);
        assert_eq!(FileType::of(b"a\0b"), FileType::Binary);
        assert_eq!(FileType::of(&[0xff, 0xfe]), FileType::Binary);
    }

    #[test]
    fn content_type_follows_extension_then_kind() {
        let p = |s| FilePath::parse(s).unwrap();
        assert_eq!(content_type_for(&p("index.HTML"), FileType::Text), "text/html; charset=utf-8");
        assert_eq!(content_type_for(&p("logo.png"), FileType::Binary), "image/png");
        assert_eq!(content_type_for(&p("README"), FileType::Text), "text/plain; charset=utf-8");
        assert_eq!(content_type_for(&p("blob"), FileType::Binary), "application/octet-stream");
    }
}
