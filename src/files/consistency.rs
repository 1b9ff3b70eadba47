//! The app-files part of `GET /api/admin/consistency`.

use super::repo;
use super::service::META_SHA256;
use crate::consistency::{compare, Entry, Section};
use crate::error::Result;
use crate::http::App;

const MAX_OBJECTS: usize = 200_000;

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
    let mut references = compare("files.references", &Entry::from_rows(&referenced, "r2_key"), &blob_objects);
    // Unreferenced blobs are GC's business (and counted by files.blobs), not a broken reference.
    references.objects_without_rows = 0;
    references.examples.retain(|e| !e.starts_with("object without row"));
    Ok((
        vec![
            compare("files.blobs", &Entry::from_rows(&blobs, "r2_key"), &blob_objects),
            references,
            compare("files.snapshots", &Entry::from_rows(&snapshots, "r2_key"), &snapshot_objects),
        ],
        complete,
    ))
}
