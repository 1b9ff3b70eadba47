//! The app-files part of `GET /api/admin/consistency`.

use serde_json::Value;

use super::repo;
use super::service::META_SHA256;
use crate::consistency::{compare, Entry, Section};
use crate::error::Result;
use crate::http::App;

const MAX_OBJECTS: usize = 200_000;

fn entries(rows: &[Value]) -> Vec<Entry> {
    rows.iter()
        .filter_map(|v| Some(Entry { key: v["r2_key"].as_str()?.to_string(), sha256: v["sha256"].as_str().map(str::to_string) }))
        .collect()
}

/// Sections: blob rows against blob objects (an object without a row is an upload whose D1
/// write never happened: garbage for GC once past its grace period); keys that files and
/// version lines name (each must exist); snapshot manifests.
pub async fn check(app: &App) -> Result<(Vec<Section>, bool)> {
    let meta = app.meta()?;
    let [blobs, referenced, snapshots] = repo::consistency_rows(&meta).await?;
    let (listed, complete) = app.blobs()?.list_all("apps/", MAX_OBJECTS).await?;
    let (blob_objects, snapshot_objects): (Vec<Entry>, Vec<Entry>) = listed
        .into_iter()
        .map(|o| Entry { sha256: o.custom.get(META_SHA256).cloned(), key: o.key })
        .partition(|e| e.key.contains("/blobs/"));
    let mut references = compare("files.references", &entries(&referenced), &blob_objects);
    // Unreferenced blobs are GC's business (and counted by files.blobs), not a broken reference.
    references.objects_without_rows = 0;
    references.examples.retain(|e| !e.starts_with("object without row"));
    Ok((
        vec![
            compare("files.blobs", &entries(&blobs), &blob_objects),
            references,
            compare("files.snapshots", &entries(&snapshots), &snapshot_objects),
        ],
        complete,
    ))
}
