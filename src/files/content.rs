//! Facts about a file's bytes: hash, kind, media type, and how it is encoded in R2.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use super::path::FilePath;

/// Lower-case hex SHA-256: the file's identity, its ETag and its R2 key.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn sha256_raw(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

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

/// How an R2 object's bytes relate to the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// The value recorded in D1 and in the object's custom metadata (`None` for identity).
    pub fn as_header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
        }
    }

    pub fn from_header(v: Option<&str>) -> Self {
        match v {
            Some(s) if s.eq_ignore_ascii_case("gzip") => Encoding::Gzip,
            _ => Encoding::Identity,
        }
    }
}

/// Gzip must save at least this share of the bytes (and one R2 read's worth of CPU to undo):
/// below that the stored copy stays plain.
const GZIP_MIN_SAVING_PERCENT: usize = 5;

/// The bytes to store in R2 and their encoding: gzip when it saves space, else as they are.
/// Already-compressed formats rarely shrink, and then the plain copy wins.
pub fn encode_for_r2(bytes: &[u8]) -> (Vec<u8>, Encoding) {
    if bytes.len() < 64 {
        return (bytes.to_vec(), Encoding::Identity);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 2), flate2::Compression::default());
    let compressed = gz.write_all(bytes).and_then(|_| gz.finish());
    match compressed {
        Ok(c) if gzip_pays(bytes.len(), c.len()) => (c, Encoding::Gzip),
        _ => (bytes.to_vec(), Encoding::Identity),
    }
}

pub fn gzip_pays(original: usize, compressed: usize) -> bool {
    compressed * 100 <= original * (100 - GZIP_MIN_SAVING_PERCENT)
}

/// Undoes [`encode_for_r2`]. `limit` bounds the output so a corrupt or hostile object cannot
/// inflate without end; `None` when the bytes do not decode.
pub fn decode_from_r2(stored: Vec<u8>, encoding: Encoding, limit: usize) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Identity => Some(stored),
        Encoding::Gzip => {
            let mut out = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(stored.as_slice()).take(limit as u64 + 1);
            reader.read_to_end(&mut out).ok()?;
            (out.len() <= limit).then_some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_lower_hex() {
        let h = sha256_hex(b"abc");
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_sha256_hex(&h));
        assert!(!is_sha256_hex(&h.to_uppercase()));
        assert!(!is_sha256_hex("abc"));
    }

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

    #[test]
    fn repetitive_content_is_gzipped_and_round_trips() {
        let text = "hello world\n".repeat(500);
        let (stored, enc) = encode_for_r2(text.as_bytes());
        assert_eq!(enc, Encoding::Gzip);
        assert!(stored.len() < text.len() / 10);
        assert_eq!(decode_from_r2(stored, enc, text.len()).unwrap(), text.as_bytes());
    }

    #[test]
    fn incompressible_content_stays_plain() {
        // A xorshift stream: no structure for deflate to find.
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (stored, enc) = encode_for_r2(&noise);
        assert_eq!(enc, Encoding::Identity);
        assert_eq!(stored, noise);
        assert_eq!(encode_for_r2(b"tiny").1, Encoding::Identity);
    }

    #[test]
    fn gzip_decision_needs_a_real_saving() {
        assert!(gzip_pays(1000, 950));
        assert!(!gzip_pays(1000, 951));
        assert!(!gzip_pays(1000, 1200));
    }

    #[test]
    fn decoding_refuses_garbage_and_bombs() {
        assert_eq!(decode_from_r2(b"not gzip".to_vec(), Encoding::Gzip, 100), None);
        let (stored, enc) = encode_for_r2(&vec![b'a'; 10_000]);
        assert_eq!(decode_from_r2(stored.clone(), enc, 9_999), None);
        assert_eq!(decode_from_r2(stored, enc, 10_000).unwrap().len(), 10_000);
        assert_eq!(Encoding::from_header(Some("GZIP")), Encoding::Gzip);
        assert_eq!(Encoding::from_header(None), Encoding::Identity);
    }
}
