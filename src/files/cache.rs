//! Verified file bytes in the Workers Cache API, keyed by SHA-256.
//!
//! The key is the content's hash, so an entry can never be stale: a changed file has a new
//! hash and therefore a new key. Only bytes that passed the hash check are put, and what comes
//! back is checked again. The cache is an optimisation: every failure here is logged and
//! ignored, never turned into a failed request. Each call is a subrequest, counted in the
//! request's operations; when the request's budget has no room left, the cache is skipped.

use worker::{Cache, Headers, Response};

use crate::request::{Counters, RequestState};

fn url(sha256: &str) -> String {
    format!("https://r2d1.cache/blob/{sha256}")
}

/// Counts one cache call, or says to skip it when the budget is spent.
fn affordable(state: &RequestState) -> bool {
    if state.spend(1).is_err() {
        return false;
    }
    Counters::add(&state.counters.other_operations, 1);
    true
}

pub async fn get(state: &RequestState, sha256: &str) -> Option<Vec<u8>> {
    if !affordable(state) {
        return None;
    }
    let mut resp = match Cache::default().get(url(sha256), true).await {
        Ok(found) => found?,
        Err(e) => {
            worker::console_warn!("r2d1 cache get {sha256}: {e}");
            return None;
        }
    };
    resp.bytes().await.ok()
}

pub async fn put(state: &RequestState, sha256: &str, bytes: &[u8]) {
    if !affordable(state) {
        return;
    }
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
