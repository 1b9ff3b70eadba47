//! Versioned app files (issue 4): files of an app kept inline in D1, in R2, or both, by size;
//! versions as snapshots with per-file actions, diffs, restores and archives; and the admin
//! side: migration between tiers, garbage collection and a storage report.
//!
//! Pure core (no `worker`): [`path`], [`tier`], [`content`], [`manifest`], [`diff`],
//! [`report`]; and for issue 13 [`rollout`], [`lifecycle`], [`stream`],
//! [`ndjson`], [`export_plan`], [`changes`], [`costs`], [`signed_url`]. SQL: [`repo`],
//! [`lifecycle_repo`]. Domain: [`service`] (files and versions), [`maintenance`] (migration,
//! rollback, import, report), [`retention`] (deleting versions and apps, retention),
//! [`export`] (streamed exports and archives), [`savings`] (the cost report), all writing
//! through the storage core. HTTP: [`http`]. (Unreferenced blobs and snapshots are collected by
//! the storage core's GC.)

pub mod changes;
pub mod content;
pub mod costs;
pub mod diff;
pub mod export_plan;
pub mod lifecycle;
pub mod manifest;
pub mod ndjson;
pub mod path;
pub mod report;
pub mod rollout;
pub mod signed_url;
pub mod stream;
pub mod tier;

mod cache;
pub mod export;
pub mod http;
pub mod lifecycle_repo;
pub mod maintenance;
pub mod repo;
pub mod retention;
pub mod savings;
pub mod service;

use path::AppId;

/// Content-addressed key of an object holding file bytes: the same bytes in one app always
/// land on the same key, which is what makes writes idempotent and storage deduplicated.
pub fn blob_key(app: &str, sha256: &str) -> String {
    format!("apps/{app}/blobs/{sha256}")
}

/// Key of a version's manifest when it is too large to stay inline: named by the version and
/// the manifest's hash, so two attempts at the same version number (one of which loses its
/// D1 batch) never overwrite each other's object; the loser's is garbage for the GC.
/// (Manifests stored before this sit at `apps/{app}/snapshots/{version}.json`.)
pub fn snapshot_key(app: &AppId, version: i64, manifest_sha256: &str) -> String {
    format!("apps/{app}/snapshots/{version}-{}.json", &manifest_sha256[..manifest_sha256.len().min(16)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let app = AppId::parse("demo").unwrap();
        assert_eq!(blob_key("demo", "ab"), "apps/demo/blobs/ab");
        assert_eq!(snapshot_key(&app, 12, &"ab".repeat(32)), "apps/demo/snapshots/12-abababababababab.json");
    }
}
