//! `BlobStore`: the R2 bucket (`BUCKET`) as the domain needs it.

use std::collections::HashMap;

use worker::{Bucket, Conditional, Env, HttpMetadata, Include};

use super::usage::{OpClass, OpWorkload};
use crate::error::{Error, Result};
use crate::request::{Counters, Shared};

/// What is written beside an object's bytes.
#[derive(Debug, Clone, Default)]
pub struct BlobMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub custom: HashMap<String, String>,
    /// SHA-256 of the bytes as stored; R2 verifies it on upload and rejects a mismatch.
    pub sha256: Option<[u8; 32]>,
}

/// An object's listing entry or head: everything but the body.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub uploaded_ms: f64,
    pub custom: HashMap<String, String>,
    pub content_encoding: Option<String>,
}

#[derive(Debug)]
pub struct StoredBlob {
    pub info: BlobInfo,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// A create-only put found an object already at the key; nothing was written.
    AlreadyExists,
}

pub struct ListPage {
    pub objects: Vec<BlobInfo>,
    /// Pass back to continue; `None` when the listing is complete.
    pub cursor: Option<String>,
}

pub struct BlobStore {
    bucket: Bucket,
    state: Shared,
}

fn info_of(o: &worker::Object) -> BlobInfo {
    BlobInfo {
        key: o.key(),
        size: o.size(),
        etag: o.etag(),
        uploaded_ms: o.uploaded().as_millis() as f64,
        custom: o.custom_metadata().unwrap_or_default(),
        content_encoding: o.http_metadata().content_encoding,
    }
}

impl BlobStore {
    pub fn from_env(env: &Env, state: Shared) -> Result<Self> {
        let bucket = env.bucket("BUCKET").map_err(|e| Error::NotConfigured(format!("R2 binding BUCKET is missing: {e}")))?;
        Ok(BlobStore { bucket, state })
    }

    /// The request this store works for (clock, fault points, counters).
    pub fn request(&self) -> &Shared {
        &self.state
    }

    /// Counts one operation on `key` (a key or a listed prefix) of billing `class`.
    fn count(&self, key: &str, class: OpClass, bytes_read: u64, bytes_written: u64) {
        let c = &self.state.counters;
        Counters::add(&c.r2_operations, 1);
        Counters::add(&c.r2_bytes_read, bytes_read);
        Counters::add(&c.r2_bytes_written, bytes_written);
        c.r2_by_class.borrow_mut().add(OpWorkload::of_key(key), class, 1);
    }

    fn put_builder<'a>(&'a self, key: &str, bytes: Vec<u8>, meta: BlobMeta) -> worker::PutOptionsBuilder<'a> {
        let mut put = self.bucket.put(key, bytes).http_metadata(HttpMetadata {
            content_type: meta.content_type,
            content_encoding: meta.content_encoding,
            ..Default::default()
        });
        if !meta.custom.is_empty() {
            put = put.custom_metadata(meta.custom);
        }
        if let Some(sha) = meta.sha256 {
            put = put.sha256(sha.to_vec());
        }
        put
    }

    /// Writes `bytes` at `key` only if nothing is stored there yet (`onlyIf` with
    /// `etagDoesNotMatch: "*"`), so concurrent writers of the same key cannot overwrite each
    /// other: exactly one gets `Created`, the rest `AlreadyExists`. Idempotent by construction.
    pub async fn put_create_only(&self, key: &str, bytes: Vec<u8>, meta: BlobMeta) -> Result<PutOutcome> {
        self.state.trip("r2.put")?;
        self.state.spend(1)?;
        self.count(key, OpClass::A, 0, bytes.len() as u64);
        let written = self
            .put_builder(key, bytes, meta)
            .only_if(Conditional { etag_does_not_match: Some("*".into()), ..Default::default() })
            .execute()
            .await
            .map_err(|e| Error::Storage(format!("R2 put {key}: {e}")))?;
        Ok(if written.is_some() { PutOutcome::Created } else { PutOutcome::AlreadyExists })
    }

    /// Writes (or replaces) the object at `key`. Use only for keys owned by one writer, such as
    /// derived reports, where last-writer-wins is the intended outcome.
    pub async fn put(&self, key: &str, bytes: Vec<u8>, meta: BlobMeta) -> Result<()> {
        self.state.trip("r2.put")?;
        self.state.spend(1)?;
        self.count(key, OpClass::A, 0, bytes.len() as u64);
        self.put_builder(key, bytes, meta).execute().await.map_err(|e| Error::Storage(format!("R2 put {key}: {e}")))?;
        Ok(())
    }

    /// The object's bytes and metadata, or `None` when no object is at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<StoredBlob>> {
        self.state.trip("r2.get")?;
        self.state.spend(1)?;
        let Some(object) = self.bucket.get(key).execute().await.map_err(|e| Error::Storage(format!("R2 get {key}: {e}")))? else {
            // A miss is billed like a hit.
            self.count(key, OpClass::B, 0, 0);
            return Ok(None);
        };
        let info = info_of(&object);
        let bytes = match object.body() {
            Some(body) => body.bytes().await.map_err(|e| Error::Storage(format!("R2 read {key}: {e}")))?,
            None => Vec::new(),
        };
        self.count(key, OpClass::B, bytes.len() as u64, 0);
        Ok(Some(StoredBlob { info, bytes }))
    }

    /// The object's metadata and its body as a stream of chunks, for bodies too large to hold
    /// (an archive's files): the caller reads, checks and forwards one chunk at a time.
    /// `None` when no object is at `key`. The bytes are counted as read when the get is made.
    pub async fn get_stream(&self, key: &str) -> Result<Option<(BlobInfo, worker::ByteStream)>> {
        self.state.trip("r2.get")?;
        self.state.spend(1)?;
        let Some(object) = self.bucket.get(key).execute().await.map_err(|e| Error::Storage(format!("R2 get {key}: {e}")))? else {
            self.count(key, OpClass::B, 0, 0);
            return Ok(None);
        };
        let info = info_of(&object);
        self.count(key, OpClass::B, info.size, 0);
        let stream = match object.body() {
            Some(body) => body.stream().map_err(|e| Error::Storage(format!("R2 read {key}: {e}")))?,
            None => return Err(Error::Storage(format!("R2 get {key}: an object without a body"))),
        };
        Ok(Some((info, stream)))
    }

    pub async fn head(&self, key: &str) -> Result<Option<BlobInfo>> {
        self.state.spend(1)?;
        self.count(key, OpClass::B, 0, 0);
        let object = self.bucket.head(key).await.map_err(|e| Error::Storage(format!("R2 head {key}: {e}")))?;
        Ok(object.as_ref().map(info_of))
    }

    /// One page of keys under `prefix` in lexicographic order; R2 returns at most 1,000 per page.
    pub async fn list_page(&self, prefix: &str, cursor: Option<String>, limit: u32) -> Result<ListPage> {
        self.list_page_after(prefix, cursor, None, limit).await
    }

    /// Like [`list_page`](Self::list_page), starting after `start_after` (a key) when given:
    /// how the consistency check walks a prefix in key order from where it stopped.
    pub async fn list_page_after(&self, prefix: &str, cursor: Option<String>, start_after: Option<String>, limit: u32) -> Result<ListPage> {
        self.state.trip("r2.list")?;
        self.state.spend(1)?;
        self.count(prefix, OpClass::A, 0, 0);
        let mut list =
            self.bucket.list().prefix(prefix).limit(limit.clamp(1, 1000)).include(vec![Include::CustomMetadata, Include::HttpMetadata]);
        if let Some(c) = cursor {
            list = list.cursor(c);
        } else if let Some(after) = start_after {
            list = list.start_after(after);
        }
        let page = list.execute().await.map_err(|e| Error::Storage(format!("R2 list {prefix}: {e}")))?;
        let objects = page.objects().iter().map(info_of).collect();
        let cursor = if page.truncated() { page.cursor() } else { None };
        Ok(ListPage { objects, cursor })
    }

    /// Deletes the keys; missing keys are not an error. R2 takes at most 1,000 keys per call.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<()> {
        self.state.trip("r2.delete")?;
        self.state.spend(keys.len().div_ceil(1000) as u64)?;
        for chunk in keys.chunks(1000) {
            self.count(chunk.first().map(String::as_str).unwrap_or(""), OpClass::Free, 0, 0);
            self.bucket.delete_multiple(chunk.to_vec()).await.map_err(|e| Error::Storage(format!("R2 delete: {e}")))?;
        }
        Ok(())
    }
}
