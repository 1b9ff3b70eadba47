//! The "every current file" export as NDJSON (issue 13), written as a stream: a build machine
//! gets a whole app in one request, and the worker holds one chunk of one file at a time.
//!
//! Lines, each a JSON object ending in `\n`:
//! 1. `{"type":"header","format":"r2d1.files.ndjson/1","app":…,"version":…|null,"revision":…|null,"files":n,"bytes":b,"complete":bool,"next_after":…|null}`
//!    (`files`/`bytes`: what this stream carries; `complete: false` with `next_after`: the
//!    request's budget ended it early, continue with `?after=`);
//! 2. per file, in path order, `{"type":"file","path":…,"sha256":…,"size":…,"content_type":…,"encoding":"utf8"|"base64","content":…}`;
//! 3. `{"type":"trailer","files":n,"bytes":b,"tree_sha256":…}`.
//!
//! `content` is last in its line, so its bytes can be escaped or base64-encoded chunk by
//! chunk. `tree_sha256` is SHA-256 over `"{path}\0{sha256}\n"` for every file in order: the
//! same value [`tree_sha256`] computes from a manifest, so a builder can tell it holds exactly
//! a given version. A stream that ends without its trailer is incomplete (the worker aborts
//! it when a file fails its size or hash check, which is only known after its line began).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::stream::{FileCheck, StreamError};

pub const FORMAT: &str = "r2d1.files.ndjson/1";
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// How a file's bytes are carried in its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentEncoding {
    /// A JSON string of the text itself; only for valid UTF-8 (the store's `text` files).
    Utf8,
    Base64,
}

impl ContentEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncoding::Utf8 => "utf8",
            ContentEncoding::Base64 => "base64",
        }
    }

    /// `utf8` for the store's `text` files, `base64` for everything else.
    pub fn for_file_type(file_type: &str) -> Self {
        if file_type == "text" {
            ContentEncoding::Utf8
        } else {
            ContentEncoding::Base64
        }
    }
}

/// What the header line says.
#[derive(Debug, Clone)]
pub struct ExportHeader {
    pub app: String,
    /// The version exported, or `None` for the current files.
    pub version: Option<i64>,
    /// The app's revision the listing was read at (a cursor for `changes since`).
    pub revision: Option<i64>,
    pub files: u64,
    pub bytes: u64,
    /// Continue with `?after=` this path: the request's budget ended the stream early (see
    /// `files::export_plan`). `None`: every file is in this stream.
    pub next_after: Option<String>,
}

/// One file's facts, as its line states them before the content.
#[derive(Debug, Clone)]
pub struct ExportFile<'a> {
    pub path: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub encoding: ContentEncoding,
}

struct Current {
    check: FileCheck,
    encoding: ContentEncoding,
    /// Bytes held back between chunks: up to 2 for base64 (a group of 3 not yet complete),
    /// up to 3 for UTF-8 (a character cut by the chunk boundary).
    carry: Vec<u8>,
}

/// The streaming NDJSON writer.
pub struct NdjsonWriter {
    out: Vec<u8>,
    current: Option<Current>,
    files: u64,
    bytes: u64,
    tree: Sha256,
    max_buffered: usize,
}

impl NdjsonWriter {
    /// A writer whose output starts with the header line.
    pub fn new(header: &ExportHeader) -> Self {
        let mut w = NdjsonWriter { out: Vec::new(), current: None, files: 0, bytes: 0, tree: Sha256::new(), max_buffered: 0 };
        let line = json!({
            "type": "header",
            "format": FORMAT,
            "app": header.app,
            "version": header.version,
            "revision": header.revision,
            "files": header.files,
            "bytes": header.bytes,
            "complete": header.next_after.is_none(),
            "next_after": header.next_after,
        });
        w.line(&line);
        w
    }

    /// Opens a file's line (everything up to the content's opening quote).
    pub fn start_file(&mut self, file: &ExportFile<'_>) -> Result<(), StreamError> {
        if self.current.is_some() {
            return Err(StreamError::Sequence("start_file before end_file"));
        }
        let head = json!({
            "type": "file",
            "path": file.path,
            "sha256": file.sha256,
            "size": file.size,
            "content_type": file.content_type,
            "encoding": file.encoding.as_str(),
        })
        .to_string();
        // `{…}` → `{…,"content":"`: the object stays open for the content.
        self.out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        self.out.extend_from_slice(br#","content":""#);
        self.tree.update(file.path.as_bytes());
        self.tree.update([0]);
        self.tree.update(file.sha256.to_ascii_lowercase().as_bytes());
        self.tree.update(b"\n");
        self.current =
            Some(Current { check: FileCheck::new(file.path, file.size, Some(file.sha256)), encoding: file.encoding, carry: Vec::new() });
        self.note_buffer();
        Ok(())
    }

    /// The next bytes of the current file.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), StreamError> {
        let cur = self.current.as_mut().ok_or(StreamError::Sequence("write_chunk outside a file"))?;
        cur.check.feed(chunk)?;
        let mut pending = std::mem::take(&mut cur.carry);
        pending.extend_from_slice(chunk);
        match cur.encoding {
            ContentEncoding::Base64 => {
                let whole = pending.len() / 3 * 3;
                push_base64(&mut self.out, &pending[..whole]);
                cur.carry = pending[whole..].to_vec();
            }
            ContentEncoding::Utf8 => {
                let valid = match std::str::from_utf8(&pending) {
                    Ok(s) => s.len(),
                    // A character cut at the chunk's end is completed by the next chunk.
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => return Err(StreamError::NotUtf8 { path: cur.check.path.clone() }),
                };
                let text = std::str::from_utf8(&pending[..valid]).expect("checked above");
                push_json_string_body(&mut self.out, text);
                cur.carry = pending[valid..].to_vec();
            }
        }
        self.bytes += chunk.len() as u64;
        self.note_buffer();
        Ok(())
    }

    /// Closes the file's line after checking its size and hash.
    pub fn end_file(&mut self) -> Result<(), StreamError> {
        let cur = self.current.take().ok_or(StreamError::Sequence("end_file outside a file"))?;
        match cur.encoding {
            ContentEncoding::Base64 => push_base64(&mut self.out, &cur.carry),
            ContentEncoding::Utf8 if !cur.carry.is_empty() => return Err(StreamError::NotUtf8 { path: cur.check.path }),
            ContentEncoding::Utf8 => {}
        }
        cur.check.finish()?;
        self.out.extend_from_slice(b"\"}\n");
        self.files += 1;
        Ok(())
    }

    /// The output ready so far; the writer keeps no copy.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// The trailer line (and anything not yet taken).
    pub fn finish(mut self) -> Result<Vec<u8>, StreamError> {
        if self.current.is_some() {
            return Err(StreamError::Sequence("finish inside a file"));
        }
        let tree = hex::encode(std::mem::take(&mut self.tree).finalize());
        let line = json!({ "type": "trailer", "files": self.files, "bytes": self.bytes, "tree_sha256": tree });
        self.line(&line);
        Ok(self.out)
    }

    /// The most output ever waiting to be taken.
    pub fn max_buffered(&self) -> usize {
        self.max_buffered
    }

    fn line(&mut self, value: &serde_json::Value) {
        serde_json::to_writer(&mut self.out, value).expect("a JSON value always serialises");
        self.out.push(b'\n');
        self.note_buffer();
    }

    fn note_buffer(&mut self) {
        self.max_buffered = self.max_buffered.max(self.out.len());
    }
}

/// SHA-256 over `"{path}\0{sha256}\n"` for each file in the order given (path order in an
/// export): the trailer's `tree_sha256`, computable from any list of a version's files.
pub fn tree_sha256<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (path, sha) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(sha.to_ascii_lowercase().as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Appends `bytes` as base64 (padded, so only the file's last group may carry `=`).
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + base64::encoded_len(bytes.len(), true).expect("a chunk's base64 length fits in usize"), 0);
    let written = STANDARD.encode_slice(bytes, &mut out[start..]).expect("the buffer was sized for it");
    out.truncate(start + written);
}

/// `text` as the inside of a JSON string (no quotes).
fn push_json_string_body(out: &mut Vec<u8>, text: &str) {
    let quoted = serde_json::to_string(text).expect("a str always serialises");
    out.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sha(bytes: &[u8]) -> String {
        crate::store::digest::sha256_hex(bytes)
    }

    struct F {
        path: String,
        bytes: Vec<u8>,
        encoding: ContentEncoding,
    }

    fn export(files: &[F], chunk: usize) -> (Vec<u8>, usize) {
        let header = ExportHeader {
            app: "demo".into(),
            version: Some(3),
            revision: Some(41),
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.bytes.len() as u64).sum(),
            next_after: None,
        };
        let mut w = NdjsonWriter::new(&header);
        let mut out = w.take_output();
        for f in files {
            let digest = sha(&f.bytes);
            w.start_file(&ExportFile {
                path: &f.path,
                sha256: &digest,
                size: f.bytes.len() as u64,
                content_type: "text/plain",
                encoding: f.encoding,
            })
            .unwrap();
            for piece in f.bytes.chunks(chunk) {
                w.write_chunk(piece).unwrap();
                out.extend(w.take_output());
            }
            w.end_file().unwrap();
            out.extend(w.take_output());
        }
        let max = w.max_buffered();
        out.extend(w.finish().unwrap());
        (out, max)
    }

    fn files() -> Vec<F> {
        let utf8 = |p: &str, s: &str| F { path: p.into(), bytes: s.as_bytes().to_vec(), encoding: ContentEncoding::Utf8 };
        let b64 = |p: &str, b: Vec<u8>| F { path: p.into(), bytes: b, encoding: ContentEncoding::Base64 };
        vec![
            utf8("a.txt", "hello\n"),
            utf8("empty.txt", ""),
            utf8("quotes.json", "{\"k\": \"v\\n\"}\n\ttab \u{1} control"),
            utf8("unicode.md", &"日本語 ✓ é 🎉\n".repeat(1_000)),
            b64("bin/empty.bin", Vec::new()),
            b64("bin/one.bin", vec![0xff]),
            b64("bin/two.bin", vec![0, 1]),
            b64("bin/mib.bin", (0..(1u32 << 20)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ]
    }

    #[test]
    fn lines_decode_to_the_exact_files_whatever_the_chunking() {
        let fs = files();
        let (a, _) = export(&fs, 7);
        let (b, _) = export(&fs, 64 * 1024);
        assert_eq!(a, b, "chunk boundaries (inside UTF-8 characters, base64 groups) must not show");
        let lines: Vec<Value> = std::str::from_utf8(&a).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), fs.len() + 2);
        assert_eq!(lines[0]["type"], "header");
        assert_eq!(lines[0]["format"], FORMAT);
        assert_eq!(lines[0]["version"], 3);
        assert_eq!(lines[0]["revision"], 41);
        for (f, line) in fs.iter().zip(&lines[1..]) {
            assert_eq!(line["type"], "file");
            assert_eq!(line["path"], f.path.as_str());
            assert_eq!(line["sha256"], sha(&f.bytes));
            assert_eq!(line["size"], f.bytes.len() as u64);
            let content = line["content"].as_str().unwrap();
            let decoded = match f.encoding {
                ContentEncoding::Utf8 => content.as_bytes().to_vec(),
                ContentEncoding::Base64 => STANDARD.decode(content).unwrap(),
            };
            assert_eq!(decoded, f.bytes, "{}", f.path);
            assert_eq!(line["encoding"], f.encoding.as_str());
        }
        let trailer = lines.last().unwrap();
        assert_eq!(trailer["type"], "trailer");
        assert_eq!(trailer["files"], fs.len() as u64);
        assert_eq!(trailer["bytes"], fs.iter().map(|f| f.bytes.len() as u64).sum::<u64>());
        let shas: Vec<(String, String)> = fs.iter().map(|f| (f.path.clone(), sha(&f.bytes))).collect();
        assert_eq!(trailer["tree_sha256"], tree_sha256(shas.iter().map(|(p, s)| (p.as_str(), s.as_str()))));
    }

    #[test]
    fn memory_is_one_chunk_not_one_file() {
        let big = F { path: "big.bin".into(), bytes: vec![7u8; 4 << 20], encoding: ContentEncoding::Base64 };
        let (_, max) = export(&[big], 16 * 1024);
        // base64 is 4/3 of the chunk; plus the line's head.
        assert!(max <= 16 * 1024 * 4 / 3 + 512, "buffered {max}");
    }

    #[test]
    fn bad_content_is_caught() {
        let header = ExportHeader { app: "a".into(), version: None, revision: None, files: 1, bytes: 3, next_after: None };
        let start = |w: &mut NdjsonWriter, sha: &str, enc| {
            w.start_file(&ExportFile { path: "x", sha256: sha, size: 3, content_type: "text/plain", encoding: enc }).unwrap();
        };
        let mut w = NdjsonWriter::new(&header);
        start(&mut w, &sha(b"abc"), ContentEncoding::Utf8);
        w.write_chunk(b"abd").unwrap();
        assert!(matches!(w.end_file(), Err(StreamError::Hash { .. })));

        let mut w = NdjsonWriter::new(&header);
        start(&mut w, &sha(b"a\xffb"), ContentEncoding::Utf8);
        assert!(matches!(w.write_chunk(b"a\xffb"), Err(StreamError::NotUtf8 { .. })));

        // A character cut off at the very end is invalid too.
        let mut w = NdjsonWriter::new(&header);
        start(&mut w, &sha(b"a\xe6\x97"), ContentEncoding::Utf8);
        w.write_chunk(b"a\xe6\x97").unwrap();
        assert!(matches!(w.end_file(), Err(StreamError::NotUtf8 { .. })));

        let mut w = NdjsonWriter::new(&header);
        start(&mut w, &sha(b"abc"), ContentEncoding::Base64);
        assert!(matches!(w.write_chunk(b"abcd"), Err(StreamError::Size { .. })));
        assert!(matches!(w.finish(), Err(StreamError::Sequence(_))));
    }

    #[test]
    fn an_empty_export_is_header_and_trailer() {
        let (out, _) = export(&[], 10);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let trailer: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(trailer["files"], 0);
        assert_eq!(trailer["tree_sha256"], hex::encode(Sha256::digest(b"")));
        assert!(text.ends_with('\n'));
    }
}
