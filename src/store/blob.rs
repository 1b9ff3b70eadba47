//! `BlobStore`: the R2 bucket (`BUCKET`) as the domain needs it.

use std::collections::HashMap;

use worker::{Bucket, Conditional, Env, HttpMetadata, Include};

use crate::error::{Error, Result};

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
    pub fn from_env(env: &Env) -> Result<Self> {
        let bucket = env.bucket("BUCKET").map_err(|e| Error::NotConfigured(format!("R2 binding BUCKET is missing: {e}")))?;
        Ok(BlobStore { bucket })
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
        crate::faults::trip("r2.put")?;
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
        crate::faults::trip("r2.put")?;
        self.put_builder(key, bytes, meta).execute().await.map_err(|e| Error::Storage(format!("R2 put {key}: {e}")))?;
        Ok(())
    }

    /// The object's bytes and metadata, or `None` when no object is at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<StoredBlob>> {
        crate::faults::trip("r2.get")?;
        let Some(object) = self.bucket.get(key).execute().await.map_err(|e| Error::Storage(format!("R2 get {key}: {e}")))? else {
            return Ok(None);
        };
        let info = info_of(&object);
        let bytes = match object.body() {
            Some(body) => body.bytes().await.map_err(|e| Error::Storage(format!("R2 read {key}: {e}")))?,
            None => Vec::new(),
        };
        Ok(Some(StoredBlob { info, bytes }))
    }

    pub async fn head(&self, key: &str) -> Result<Option<BlobInfo>> {
        let object = self.bucket.head(key).await.map_err(|e| Error::Storage(format!("R2 head {key}: {e}")))?;
        Ok(object.as_ref().map(info_of))
    }

    /// One page of keys under `prefix` in lexicographic order; R2 returns at most 1,000 per page.
    pub async fn list_page(&self, prefix: &str, cursor: Option<String>, limit: u32) -> Result<ListPage> {
        let mut list =
            self.bucket.list().prefix(prefix).limit(limit.clamp(1, 1000)).include(vec![Include::CustomMetadata, Include::HttpMetadata]);
        if let Some(c) = cursor {
            list = list.cursor(c);
        }
        let page = list.execute().await.map_err(|e| Error::Storage(format!("R2 list {prefix}: {e}")))?;
        let objects = page.objects().iter().map(info_of).collect();
        let cursor = if page.truncated() { page.cursor() } else { None };
        Ok(ListPage { objects, cursor })
    }

    /// Every object under `prefix`, page by page, stopping after `max` objects (the flag says
    /// whether the listing was complete).
    pub async fn list_all(&self, prefix: &str, max: usize) -> Result<(Vec<BlobInfo>, bool)> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_page(prefix, cursor, 1000).await?;
            all.extend(page.objects);
            cursor = page.cursor;
            if cursor.is_none() {
                return Ok((all, true));
            }
            if all.len() >= max {
                return Ok((all, false));
            }
        }
    }

    /// Deletes the keys; missing keys are not an error. R2 takes at most 1,000 keys per call.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<()> {
        crate::faults::trip("r2.delete")?;
        for chunk in keys.chunks(1000) {
            self.bucket.delete_multiple(chunk.to_vec()).await.map_err(|e| Error::Storage(format!("R2 delete: {e}")))?;
        }
        Ok(())
    }
}
