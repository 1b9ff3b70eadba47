//! Verified file bytes in the Workers Cache API, keyed by SHA-256.
//!
//! The key is the content's hash, so an entry can never be stale: a changed file has a new
//! hash and therefore a new key. Only bytes that passed the hash check are put, and what comes
//! back is checked again. The cache is an optimisation: every failure here is logged and
//! ignored, never turned into a failed request.

use worker::{Cache, Headers, Response};

fn url(sha256: &str) -> String {
    format!("https://r2d1.cache/blob/{sha256}")
}

pub async fn get(sha256: &str) -> Option<Vec<u8>> {
    let mut resp = match Cache::default().get(url(sha256), true).await {
        Ok(found) => found?,
        Err(e) => {
            worker::console_warn!("r2d1 cache get {sha256}: {e}");
            return None;
        }
    };
    resp.bytes().await.ok()
}

pub async fn put(sha256: &str, bytes: &[u8]) {
    let headers = Headers::new();
    let _ = headers.set("Cache-Control", "public, max-age=31536000, immutable");
    let _ = headers.set("Content-Type", "application/octet-stream");
    let resp = match Response::from_bytes(bytes.to_vec()) {
        Ok(r) => r.with_headers(headers),
        Err(_) => return,
    };
    if let Err(e) = Cache::default().put(url(sha256), resp).await {
        worker::console_warn!("r2d1 cache put {sha256}: {e}");
    }
}
