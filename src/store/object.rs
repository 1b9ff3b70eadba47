//! The object layer: one convention for every object r2d1 writes to R2, one way to write it
//! (create-only or explicit replace, always with R2's SHA-256 checksum of the stored bytes),
//! and one verified read.
//!
//! Custom metadata on every object:
//! - `r2d1-kind`: its [`Kind`] (`memory`, `app_blob`, …);
//! - `r2d1-writer`: `r2d1`, so the GC can tell our objects from anyone else's;
//! - `r2d1-sha256`: hex SHA-256 of the *logical* bytes (what the D1 rows name);
//! - `r2d1-encoding`: `identity` or `gzip` (how the stored bytes relate to the logical ones);
//! - per-kind extras the old tools read (memories keep `userId`, `memoryId`, `timestamp`,
//!   `type` and `sha256`).
//!
//! Reads accept the conventions already in buckets: a legacy `sha256` entry, or
//! `r2d1-sha256` with or without `r2d1-encoding`.

use std::io::{Read as _, Write as _};

use super::blob::{BlobInfo, BlobMeta, BlobStore, PutOutcome};
use super::digest::{sha256_hex, sha256_raw};
use super::kinds::Kind;
use crate::error::{Error, Result};

pub const META_KIND: &str = "r2d1-kind";
pub const META_WRITER: &str = "r2d1-writer";
pub const META_SHA256: &str = "r2d1-sha256";
pub const META_ENCODING: &str = "r2d1-encoding";
/// What `r2d1-writer` says on our objects.
pub const WRITER: &str = "r2d1";
/// The hash entry memories carried before the convention (old tools read it still).
pub const LEGACY_SHA256: &str = "sha256";
/// The writer entry memories carried before the convention.
pub const LEGACY_WRITER: &str = "writer";

/// How an object's stored bytes relate to its logical bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// The value recorded in D1 (`blobs.content_encoding`): `None` for identity.
    pub fn as_header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.as_header().unwrap_or("identity")
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

/// The bytes to store and their encoding: gzip when it saves space, else as they are.
/// Already-compressed formats rarely shrink, and then the plain copy wins.
pub fn encode(bytes: &[u8]) -> (Vec<u8>, Encoding) {
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

/// Undoes [`encode`]. `limit` bounds the output so a corrupt or hostile object cannot inflate
/// without end; `None` when the bytes do not decode or exceed it.
pub fn decode(stored: Vec<u8>, encoding: Encoding, limit: usize) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Identity => (stored.len() <= limit).then_some(stored),
        Encoding::Gzip => {
            let mut out = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(stored.as_slice()).take(limit as u64 + 1);
            reader.read_to_end(&mut out).ok()?;
            (out.len() <= limit).then_some(out)
        }
    }
}

/// How a write treats an object already at its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Write only if nothing is there (`onlyIf: etagDoesNotMatch *`); concurrent writers of
    /// one key cannot overwrite each other.
    CreateOnly,
    /// Write whatever is there (keys owned by one writer: derived reports, a version's
    /// manifest before its row exists).
    Replace,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    /// A create-only write found an object at the key; nothing was written.
    AlreadyExists,
    Replaced,
}

/// An object to write: its logical bytes' hash, the bytes as stored, and its metadata.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub kind: Kind,
    pub key: String,
    pub mode: WriteMode,
    /// SHA-256 of the logical bytes (what D1 rows name).
    pub sha256: String,
    pub logical_size: u64,
    /// The bytes as stored (gzip-compressed when `encoding` says so).
    pub stored: Vec<u8>,
    pub encoding: Encoding,
    pub content_type: String,
    pub extra: Vec<(String, String)>,
}

impl NewObject {
    /// An object stored as it is.
    pub fn plain(kind: Kind, key: impl Into<String>, bytes: Vec<u8>, content_type: &str) -> Self {
        NewObject {
            kind,
            key: key.into(),
            mode: WriteMode::CreateOnly,
            sha256: sha256_hex(&bytes),
            logical_size: bytes.len() as u64,
            stored: bytes,
            encoding: Encoding::Identity,
            content_type: content_type.to_string(),
            extra: Vec::new(),
        }
    }

    /// An object gzip-compressed when that pays (see [`encode`]).
    pub fn compressed(kind: Kind, key: impl Into<String>, bytes: &[u8], content_type: &str) -> Self {
        let (stored, encoding) = encode(bytes);
        NewObject {
            kind,
            key: key.into(),
            mode: WriteMode::CreateOnly,
            sha256: sha256_hex(bytes),
            logical_size: bytes.len() as u64,
            stored,
            encoding,
            content_type: content_type.to_string(),
            extra: Vec::new(),
        }
    }

    pub fn replacing(mut self) -> Self {
        self.mode = WriteMode::Replace;
        self
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.extra.push((name.to_string(), value.into()));
        self
    }

    /// The metadata written beside the bytes: the convention plus the kind's extras.
    pub fn meta(&self) -> BlobMeta {
        let mut custom = std::collections::HashMap::new();
        custom.insert(META_KIND.to_string(), self.kind.name().to_string());
        custom.insert(META_WRITER.to_string(), WRITER.to_string());
        custom.insert(META_SHA256.to_string(), self.sha256.clone());
        custom.insert(META_ENCODING.to_string(), self.encoding.as_str().to_string());
        for (k, v) in &self.extra {
            custom.insert(k.clone(), v.clone());
        }
        BlobMeta { content_type: Some(self.content_type.clone()), content_encoding: None, custom, sha256: Some(sha256_raw(&self.stored)) }
    }
}

/// Writes `object` as its mode says. R2 verifies the stored bytes against the checksum.
pub async fn put(blobs: &BlobStore, object: &NewObject) -> Result<Written> {
    match object.mode {
        WriteMode::CreateOnly => Ok(match blobs.put_create_only(&object.key, object.stored.clone(), object.meta()).await? {
            PutOutcome::Created => Written::Created,
            PutOutcome::AlreadyExists => Written::AlreadyExists,
        }),
        WriteMode::Replace => {
            blobs.put(&object.key, object.stored.clone(), object.meta()).await?;
            Ok(Written::Replaced)
        }
    }
}

/// What a verified read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The logical bytes, decoded and hash-checked.
    Ok(Vec<u8>),
    Missing,
    /// Present but wrong: does not decode, too large, or hashes to something else.
    Corrupt(String),
}

impl Read {
    /// The bytes, or the one error every path uses for a missing or damaged indexed object.
    pub fn or_integrity(self, what: &str) -> Result<Vec<u8>> {
        match self {
            Read::Ok(bytes) => Ok(bytes),
            Read::Missing => Err(Error::Integrity(format!("{what} is missing from R2"))),
            Read::Corrupt(why) => Err(Error::Integrity(format!("{what} {why}"))),
        }
    }
}

/// The stored object's encoding, from the convention (absent means identity).
pub fn encoding_of(info: &BlobInfo) -> Encoding {
    Encoding::from_header(info.custom.get(META_ENCODING).map(String::as_str))
}

/// The logical hash the object says it has, from any convention r2d1 ever wrote.
pub fn sha_of(info: &BlobInfo) -> Option<String> {
    info.custom.get(META_SHA256).or_else(|| info.custom.get(LEGACY_SHA256)).cloned()
}

/// Whether r2d1 wrote the object: by its writer metadata when it has any (another writer's
/// object is never ours, whatever its key), else by our hash metadata or a key shape only
/// r2d1 writes.
pub fn is_ours(info: &BlobInfo, kind: Kind) -> bool {
    match info.custom.get(META_WRITER).or_else(|| info.custom.get(LEGACY_WRITER)) {
        Some(writer) => writer == WRITER,
        None => info.custom.contains_key(META_SHA256) || kind.is_legacy_shape(&info.key),
    }
}

/// Checks stored bytes against the expected logical hash (pure; the read below uses it).
pub fn verify(stored: Vec<u8>, encoding: Encoding, expected_sha256: &str, size_limit: usize) -> Read {
    let Some(bytes) = decode(stored, encoding, size_limit) else {
        return Read::Corrupt(format!("does not decode as {} within {size_limit} bytes", encoding.as_str()));
    };
    let actual = sha256_hex(&bytes);
    if actual != expected_sha256 {
        return Read::Corrupt(format!("hashes to {actual}, not {expected_sha256}"));
    }
    Read::Ok(bytes)
}

/// The one verified read: fetches `key`, decodes it per its metadata, and checks the logical
/// bytes hash to `expected_sha256`. The outer error is a storage failure (retryable); the
/// caller decides what a missing or corrupt object means (fallback, or `Integrity`).
pub async fn read(blobs: &BlobStore, key: &str, expected_sha256: &str, size_limit: usize) -> Result<Read> {
    let Some(object) = blobs.get(key).await? else { return Ok(Read::Missing) };
    let encoding = encoding_of(&object.info);
    Ok(verify(object.bytes, encoding, expected_sha256, size_limit))
}

/// Reads an object a listing found (no row names it yet, e.g. for reconciliation): decoded per
/// its metadata and checked against the hash that metadata claims, when it claims one (legacy
/// objects may claim none).
pub async fn read_found(blobs: &BlobStore, key: &str, size_limit: usize) -> Result<Read> {
    let Some(object) = blobs.get(key).await? else { return Ok(Read::Missing) };
    let encoding = encoding_of(&object.info);
    match sha_of(&object.info) {
        Some(claimed) => Ok(verify(object.bytes, encoding, &claimed, size_limit)),
        None => Ok(match decode(object.bytes, encoding, size_limit) {
            Some(bytes) => Read::Ok(bytes),
            None => Read::Corrupt(format!("does not decode as {} within {size_limit} bytes", encoding.as_str())),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_follows_the_convention() {
        let o = NewObject::plain(Kind::Transcript, "k", b"[]".to_vec(), "application/json").with("userId", "u");
        let m = o.meta();
        assert_eq!(m.custom[META_KIND], "transcript");
        assert_eq!(m.custom[META_WRITER], "r2d1");
        assert_eq!(m.custom[META_SHA256], sha256_hex(b"[]"));
        assert_eq!(m.custom[META_ENCODING], "identity");
        assert_eq!(m.custom["userId"], "u");
        assert_eq!(m.sha256, Some(sha256_raw(b"[]")));
    }

    #[test]
    fn compressed_objects_hash_their_logical_bytes_and_checksum_their_stored_ones() {
        let text = "hello world\n".repeat(500);
        let o = NewObject::compressed(Kind::AppBlob, "k", text.as_bytes(), "text/plain");
        assert_eq!(o.encoding, Encoding::Gzip);
        assert_eq!(o.sha256, sha256_hex(text.as_bytes()));
        assert_eq!(o.meta().sha256, Some(sha256_raw(&o.stored)));
        assert_eq!(verify(o.stored.clone(), o.encoding, &o.sha256, text.len()), Read::Ok(text.as_bytes().to_vec()));
        assert!(matches!(verify(o.stored.clone(), o.encoding, &"0".repeat(64), text.len()), Read::Corrupt(_)));
        assert!(matches!(verify(o.stored, o.encoding, &o.sha256, 10), Read::Corrupt(_)));
    }

    #[test]
    fn incompressible_content_stays_plain() {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (stored, enc) = encode(&noise);
        assert_eq!(enc, Encoding::Identity);
        assert_eq!(stored, noise);
        assert_eq!(encode(b"tiny").1, Encoding::Identity);
        assert!(gzip_pays(1000, 950));
        assert!(!gzip_pays(1000, 951));
    }

    #[test]
    fn decoding_refuses_garbage_and_bombs() {
        assert_eq!(decode(b"not gzip".to_vec(), Encoding::Gzip, 100), None);
        let (stored, enc) = encode(&vec![b'a'; 10_000]);
        assert_eq!(decode(stored.clone(), enc, 9_999), None);
        assert_eq!(decode(stored, enc, 10_000).unwrap().len(), 10_000);
        assert_eq!(Encoding::from_header(Some("GZIP")), Encoding::Gzip);
        assert_eq!(Encoding::from_header(Some("identity")), Encoding::Identity);
        assert_eq!(Encoding::from_header(None), Encoding::Identity);
    }

    fn info(key: &str, custom: &[(&str, &str)]) -> BlobInfo {
        BlobInfo {
            key: key.into(),
            size: 1,
            etag: String::new(),
            uploaded_ms: 0.0,
            custom: custom.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            content_encoding: None,
        }
    }

    #[test]
    fn every_convention_in_buckets_is_read() {
        assert_eq!(sha_of(&info("k", &[("sha256", "aa")])), Some("aa".into()));
        assert_eq!(sha_of(&info("k", &[("r2d1-sha256", "bb"), ("sha256", "aa")])), Some("bb".into()));
        assert_eq!(encoding_of(&info("k", &[("r2d1-encoding", "gzip")])), Encoding::Gzip);
        assert!(is_ours(&info("x/y", &[("writer", "r2d1")]), Kind::Memory));
        assert!(is_ours(&info("x/y", &[("r2d1-writer", "r2d1")]), Kind::Memory));
        assert!(!is_ours(&info("apps/a/blobs/nothash", &[]), Kind::AppBlob));
        assert!(is_ours(&info(&format!("apps/a/blobs/{}", "1".repeat(64)), &[]), Kind::AppBlob));
        assert!(!is_ours(&info(&format!("apps/a/blobs/{}", "1".repeat(64)), &[("r2d1-writer", "someone")]), Kind::AppBlob));
    }
}
