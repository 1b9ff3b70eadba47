//! A streaming tar / tar.gz writer (issue 13): files go in as (path, size, chunk…) and
//! archive bytes come out as they are ready, so an archive of several hundred MB never sits in
//! the isolate's 128 MB. What is held at any time is the output of the last chunk not yet
//! drained (at most the chunk plus [`ENCODER_LAG_BYTES`]) and the gzip encoder's fixed state
//! (deflate window and tables, a few hundred KiB), whatever the archive's size.
//!
//! Layout: POSIX ustar headers; a path longer than the 100-byte name field gets a PAX extended
//! header (`x`) carrying `path=` first, and a truncated name in the ustar header for readers
//! without PAX. Every entry is a regular file, mode 0644, owner 0:0, stamped with one mtime;
//! data is padded to 512-byte blocks and the archive ends with two zero blocks. The same files
//! always produce the same bytes (the gzip header carries no time).
//!
//! Each file's bytes are counted and hashed as they pass: a file that comes out shorter,
//! longer or with another SHA-256 than announced is an error, and the caller must abort the
//! response (a truncated gzip or a tar without its end blocks fails on the client) rather than
//! finish it.
//!
//! Flow: `start_file`, `write_chunk`…, `end_file`, repeated; `take_output` whenever the
//! response can take bytes; `finish` for the last ones.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

const BLOCK: usize = 512;
const NAME_FIELD: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{path}: announced {expected} bytes, got {got}")]
    Size { path: String, expected: u64, got: u64 },
    #[error("{path}: content hashes to {actual}, not {expected}")]
    Hash { path: String, expected: String, actual: String },
    #[error("{path}: content is not valid UTF-8")]
    NotUtf8 { path: String },
    #[error("stream used out of order: {0}")]
    Sequence(&'static str),
    #[error("encoder: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StreamError> for crate::error::Error {
    /// Every stream error means stored bytes or the caller's bookkeeping are wrong: a server
    /// fault, never the client's.
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Size { .. } | StreamError::Hash { .. } | StreamError::NotUtf8 { .. } => {
                crate::error::Error::Integrity(e.to_string())
            }
            StreamError::Sequence(_) | StreamError::Io(_) => crate::error::Error::Internal(e.to_string()),
        }
    }
}

/// Counts and hashes one file's bytes as they stream past, against what was announced.
pub(crate) struct FileCheck {
    pub path: String,
    expected_size: u64,
    expected_sha256: Option<String>,
    seen: u64,
    hasher: Sha256,
}

impl FileCheck {
    pub fn new(path: &str, size: u64, sha256: Option<&str>) -> Self {
        FileCheck {
            path: path.to_string(),
            expected_size: size,
            expected_sha256: sha256.map(str::to_ascii_lowercase),
            seen: 0,
            hasher: Sha256::new(),
        }
    }

    /// Counts `chunk`; refuses it if the file would grow past its announced size.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), StreamError> {
        let seen = self.seen.saturating_add(chunk.len() as u64);
        if seen > self.expected_size {
            return Err(StreamError::Size { path: self.path.clone(), expected: self.expected_size, got: seen });
        }
        self.seen = seen;
        if self.expected_sha256.is_some() {
            self.hasher.update(chunk);
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), StreamError> {
        if self.seen != self.expected_size {
            return Err(StreamError::Size { path: self.path, expected: self.expected_size, got: self.seen });
        }
        if let Some(expected) = self.expected_sha256 {
            let actual = hex::encode(self.hasher.finalize());
            if actual != expected {
                return Err(StreamError::Hash { path: self.path, expected, actual });
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Tar,
    TarGz,
}

impl ArchiveFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ArchiveFormat::Tar => "application/x-tar",
            ArchiveFormat::TarGz => "application/gzip",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::Tar => "tar",
            ArchiveFormat::TarGz => "tar.gz",
        }
    }
}

/// Level 1: on a 300 MB archive the worker's CPU time is the scarce resource, and level 1
/// deflates several times faster than the default for a few percent more bytes; text (most of
/// an app) still shrinks about 3-4x.
pub const STREAM_GZIP_LEVEL: u32 = 1;

/// Output deflate may release later than the input that produced it (its 32 KiB output buffer
/// and the symbols of a block not yet closed): the bound on what waits beyond one chunk.
pub const ENCODER_LAG_BYTES: usize = 64 * 1024;

enum Sink {
    Plain(Vec<u8>),
    Gzip(GzEncoder<Vec<u8>>),
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            Sink::Gzip(gz) => gz.write_all(bytes),
        }
    }

    fn ready(&mut self) -> &mut Vec<u8> {
        match self {
            Sink::Plain(v) => v,
            Sink::Gzip(gz) => gz.get_mut(),
        }
    }
}

/// The streaming archive writer.
pub struct ArchiveWriter {
    sink: Sink,
    top_dir: String,
    mtime_secs: u64,
    current: Option<FileCheck>,
    files: u64,
    input_bytes: u64,
    output_bytes: u64,
    max_buffered: usize,
}

impl ArchiveWriter {
    /// Entries are named `{top_dir}/{path}`; `mtime_secs` stamps all of them (the version's
    /// creation time, so the same version always gives the same archive).
    pub fn new(format: ArchiveFormat, top_dir: &str, mtime_secs: u64) -> Self {
        let sink = match format {
            ArchiveFormat::Tar => Sink::Plain(Vec::new()),
            ArchiveFormat::TarGz => Sink::Gzip(GzEncoder::new(Vec::new(), Compression::new(STREAM_GZIP_LEVEL))),
        };
        ArchiveWriter {
            sink,
            top_dir: top_dir.trim_end_matches('/').to_string(),
            mtime_secs,
            current: None,
            files: 0,
            input_bytes: 0,
            output_bytes: 0,
            max_buffered: 0,
        }
    }

    /// Starts a file of exactly `size` bytes; with `sha256`, its content must hash to it.
    pub fn start_file(&mut self, path: &str, size: u64, sha256: Option<&str>) -> Result<(), StreamError> {
        if self.current.is_some() {
            return Err(StreamError::Sequence("start_file before end_file"));
        }
        let name = format!("{}/{}", self.top_dir, path);
        self.start_entry(&name, path, size, sha256)
    }

    /// A whole small file named `name` beside the top directory rather than in it (the
    /// archive's checksum list, `{top}.sha256`).
    pub fn add_root_file(&mut self, name: &str, bytes: &[u8]) -> Result<(), StreamError> {
        if self.current.is_some() {
            return Err(StreamError::Sequence("add_root_file inside a file"));
        }
        self.start_entry(name, name, bytes.len() as u64, None)?;
        self.write_chunk(bytes)?;
        self.end_file()
    }

    fn start_entry(&mut self, name: &str, path: &str, size: u64, sha256: Option<&str>) -> Result<(), StreamError> {
        if name.len() > NAME_FIELD {
            let records = pax_record("path", name);
            let pax_name = format!("{}/PaxHeaders/{}", self.top_dir, path.rsplit('/').next().unwrap_or(path));
            let header = self.header(&pax_name, records.len() as u64, tar::EntryType::XHeader);
            self.emit(&header)?;
            self.emit(&records)?;
            self.emit(&[0u8; BLOCK][..padding(records.len() as u64)])?;
        }
        let header = self.header(name, size, tar::EntryType::Regular);
        self.emit(&header)?;
        self.current = Some(FileCheck::new(path, size, sha256));
        Ok(())
    }

    /// The next bytes of the current file.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), StreamError> {
        let check = self.current.as_mut().ok_or(StreamError::Sequence("write_chunk outside a file"))?;
        check.feed(chunk)?;
        self.input_bytes += chunk.len() as u64;
        self.emit(chunk)
    }

    /// Ends the current file: checks its size and hash, pads it to a block.
    pub fn end_file(&mut self) -> Result<(), StreamError> {
        let check = self.current.take().ok_or(StreamError::Sequence("end_file outside a file"))?;
        let size = check.expected_size;
        check.finish()?;
        self.emit(&[0u8; BLOCK][..padding(size)])?;
        self.files += 1;
        Ok(())
    }

    /// The archive bytes ready so far (possibly none); the writer keeps no copy.
    pub fn take_output(&mut self) -> Vec<u8> {
        let out = std::mem::take(self.sink.ready());
        self.output_bytes += out.len() as u64;
        out
    }

    /// Writes the end-of-archive blocks and the gzip trailer; returns the last bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, StreamError> {
        if self.current.is_some() {
            return Err(StreamError::Sequence("finish inside a file"));
        }
        self.emit(&[0u8; 2 * BLOCK])?;
        let rest = match self.sink {
            Sink::Plain(v) => v,
            Sink::Gzip(gz) => gz.finish()?,
        };
        Ok(rest)
    }

    /// Files completed so far.
    pub fn files(&self) -> u64 {
        self.files
    }

    /// File bytes taken in so far.
    pub fn input_bytes(&self) -> u64 {
        self.input_bytes
    }

    /// Archive bytes handed out by `take_output` so far.
    pub fn output_bytes(&self) -> u64 {
        self.output_bytes
    }

    /// The most output ever waiting to be drained: with a drain after every chunk, at most one
    /// chunk plus [`ENCODER_LAG_BYTES`].
    pub fn max_buffered(&self) -> usize {
        self.max_buffered
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.sink.write_all(bytes)?;
        self.max_buffered = self.max_buffered.max(self.sink.ready().len());
        Ok(())
    }

    fn header(&self, name: &str, size: u64, kind: tar::EntryType) -> [u8; BLOCK] {
        let mut h = tar::Header::new_ustar();
        let field = &mut h.as_old_mut().name;
        let n = name.len().min(NAME_FIELD);
        field[..n].copy_from_slice(&name.as_bytes()[..n]);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime_secs);
        h.set_entry_type(kind);
        h.set_cksum();
        *h.as_bytes()
    }
}

/// Zero bytes after `size` bytes of data to reach the next block.
fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// One PAX record, `"{len} {key}={value}\n"`, where `len` counts the whole record, itself
/// included.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Deterministic bytes that deflate cannot shrink (the worst case for buffering).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn sha(bytes: &[u8]) -> String {
        crate::store::digest::sha256_hex(bytes)
    }

    /// Streams `files` in `chunk`-byte pieces, draining after each, and returns the archive.
    fn stream(format: ArchiveFormat, files: &[(String, Vec<u8>)], chunk: usize) -> (Vec<u8>, usize) {
        let mut w = ArchiveWriter::new(format, "demo-v3", 1_700_000_000);
        let mut out = Vec::new();
        for (path, bytes) in files {
            w.start_file(path, bytes.len() as u64, Some(&sha(bytes))).unwrap();
            for piece in bytes.chunks(chunk) {
                w.write_chunk(piece).unwrap();
                out.extend(w.take_output());
            }
            w.end_file().unwrap();
            out.extend(w.take_output());
        }
        assert_eq!(w.files(), files.len() as u64);
        let max = w.max_buffered();
        let drained = w.output_bytes();
        out.extend(w.finish().unwrap());
        assert!(drained <= out.len() as u64);
        (out, max)
    }

    fn read_back(archive: &[u8], gz: bool) -> Vec<(String, Vec<u8>, u32, u64)> {
        let reader: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(archive)) } else { Box::new(archive) };
        let mut a = tar::Archive::new(reader);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mode = e.header().mode().unwrap();
                let mtime = e.header().mtime().unwrap();
                let mut body = Vec::new();
                e.read_to_end(&mut body).unwrap();
                (path, body, mode, mtime)
            })
            .collect()
    }

    fn many_files() -> Vec<(String, Vec<u8>)> {
        let mut files = vec![
            ("index.html".to_string(), b"<h1>hi</h1>\n".to_vec()),
            ("empty.txt".to_string(), Vec::new()),
            (format!("{}/{}.js", "deep/".repeat(30).trim_end_matches('/'), "x".repeat(120)), b"long name".to_vec()),
            (format!("{}/b.txt", "é".repeat(60)), "unicode path, 125 bytes".as_bytes().to_vec()),
            ("exactly-one-block.bin".to_string(), noise(7, 512)),
            ("big/one-mib.bin".to_string(), noise(9, 1 << 20)),
            ("big/one-mib-text.txt".to_string(), "all work and no play\n".repeat(50_000).as_bytes()[..1 << 20].to_vec()),
        ];
        // A path whose full entry name is exactly 100 bytes: fits the name field, no PAX.
        let pad = 100 - "demo-v3/".len();
        files.push(("p".repeat(pad), b"edge".to_vec()));
        for i in 0..200 {
            files.push((format!("src/f{i:03}.ts"), format!("export const n{i} = {i};\n").repeat(i % 7).into_bytes()));
        }
        files
    }

    #[test]
    fn tar_gz_round_trips_through_the_tar_and_flate2_readers() {
        let files = many_files();
        let (archive, _) = stream(ArchiveFormat::TarGz, &files, 64 * 1024);
        let back = read_back(&archive, true);
        assert_eq!(back.len(), files.len());
        for ((path, bytes), (got_path, got_bytes, mode, mtime)) in files.iter().zip(&back) {
            assert_eq!(got_path, &format!("demo-v3/{path}"));
            assert_eq!(got_bytes, bytes, "{path}");
            assert_eq!((*mode, *mtime), (0o644, 1_700_000_000));
        }
    }

    #[test]
    fn plain_tar_round_trips_and_is_block_aligned() {
        let files = many_files();
        let (archive, _) = stream(ArchiveFormat::Tar, &files, 10_000);
        assert_eq!(archive.len() % BLOCK, 0);
        assert!(archive.ends_with(&[0u8; 2 * BLOCK]));
        let back = read_back(&archive, false);
        assert_eq!(back.iter().map(|(_, b, _, _)| b.clone()).collect::<Vec<_>>(), files.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn same_files_same_bytes_whatever_the_chunking() {
        let files = many_files();
        let (a, _) = stream(ArchiveFormat::TarGz, &files, 64 * 1024);
        let (b, _) = stream(ArchiveFormat::TarGz, &files, 333);
        assert_eq!(a, b);
    }

    #[test]
    fn memory_stays_bounded_by_one_chunk_not_the_archive() {
        // 24 MiB of incompressible files (the worst case: nothing shrinks): between drains the
        // writer holds at most one chunk of output plus what deflate had not released yet
        // (measured: up to ~57 KiB at level 1), however large the archive grows.
        let files: Vec<(String, Vec<u8>)> = (0..24).map(|i| (format!("blob-{i}.bin"), noise(i + 1, 1 << 20))).collect();
        for chunk in [4 * 1024, 64 * 1024, 256 * 1024] {
            let (archive, max) = stream(ArchiveFormat::TarGz, &files, chunk);
            assert!(archive.len() > 24 << 20, "incompressible input cannot shrink");
            assert!(max <= chunk + ENCODER_LAG_BYTES, "chunk {chunk}: buffered {max} bytes");
            let (_, max_plain) = stream(ArchiveFormat::Tar, &files, chunk);
            assert!(max_plain <= chunk + 2 * BLOCK, "chunk {chunk}: buffered {max_plain} bytes");
        }
        let (archive, _) = stream(ArchiveFormat::TarGz, &files, 64 * 1024);
        assert_eq!(read_back(&archive, true).len(), 24);
    }

    #[test]
    fn wrong_sizes_and_hashes_are_caught() {
        let mut w = ArchiveWriter::new(ArchiveFormat::TarGz, "t", 0);
        w.start_file("a", 3, None).unwrap();
        assert!(matches!(w.write_chunk(b"abcd"), Err(StreamError::Size { got: 4, .. })));
        let mut w = ArchiveWriter::new(ArchiveFormat::Tar, "t", 0);
        w.start_file("a", 3, None).unwrap();
        w.write_chunk(b"ab").unwrap();
        assert!(matches!(w.end_file(), Err(StreamError::Size { expected: 3, got: 2, .. })));
        let mut w = ArchiveWriter::new(ArchiveFormat::Tar, "t", 0);
        w.start_file("a", 3, Some(&sha(b"abc"))).unwrap();
        w.write_chunk(b"abd").unwrap();
        let e = w.end_file().unwrap_err();
        assert!(matches!(e, StreamError::Hash { .. }));
        assert_eq!(crate::error::Error::from(e).status(), 500);
        let mut w = ArchiveWriter::new(ArchiveFormat::Tar, "t", 0);
        w.start_file("a", 3, Some(&sha(b"abc").to_uppercase())).unwrap();
        w.write_chunk(b"abc").unwrap();
        w.end_file().unwrap();
    }

    #[test]
    fn calls_out_of_order_are_refused() {
        let mut w = ArchiveWriter::new(ArchiveFormat::Tar, "t", 0);
        assert!(matches!(w.write_chunk(b"x"), Err(StreamError::Sequence(_))));
        assert!(matches!(w.end_file(), Err(StreamError::Sequence(_))));
        w.start_file("a", 1, None).unwrap();
        assert!(matches!(w.start_file("b", 1, None), Err(StreamError::Sequence(_))));
        assert!(matches!(w.finish(), Err(StreamError::Sequence(_))));
        let empty = ArchiveWriter::new(ArchiveFormat::TarGz, "t", 0).finish().unwrap();
        assert!(read_back(&empty, true).is_empty());
    }

    #[test]
    fn a_root_file_sits_beside_the_top_directory() {
        let mut w = ArchiveWriter::new(ArchiveFormat::Tar, "demo-v3", 5);
        let mut out = Vec::new();
        w.start_file("a.txt", 1, Some(&sha(b"a"))).unwrap();
        w.write_chunk(b"a").unwrap();
        w.end_file().unwrap();
        w.add_root_file("demo-v3.sha256", b"sums\n").unwrap();
        out.extend(w.take_output());
        out.extend(w.finish().unwrap());
        let back = read_back(&out, false);
        assert_eq!(
            back.iter().map(|(p, b, _, _)| (p.as_str(), b.as_slice())).collect::<Vec<_>>(),
            vec![("demo-v3/a.txt", b"a".as_slice()), ("demo-v3.sha256", b"sums\n".as_slice())]
        );
    }

    #[test]
    fn pax_records_count_their_own_length() {
        for len in [1, 5, 90, 91, 92, 95, 96, 990, 995, 996, 1000] {
            let r = pax_record("path", &"a".repeat(len));
            let (n, _) = std::str::from_utf8(&r).unwrap().split_once(' ').unwrap();
            assert_eq!(n.parse::<usize>().unwrap(), r.len(), "value of {len} bytes");
        }
        assert_eq!(pax_record("path", "ab"), b"11 path=ab\n");
    }
}
