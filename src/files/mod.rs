//! Versioned app files (issue 4): files of an app kept inline in D1, in R2, or both, by size;
//! versions as snapshots with per-file actions, diffs, restores and archives; and the admin
//! side: migration between tiers, garbage collection and a storage report.
//!
//! Pure core (no `worker`): [`path`], [`tier`], [`content`], [`manifest`], [`diff`],
//! [`archive`], [`report`]. SQL: [`repo`]. Domain: [`service`] (files and versions) and
//! [`maintenance`] (migration, rollback, import, report), writing through the storage core.
//! HTTP: [`http`]. (Unreferenced blobs and snapshots are collected by the storage core's GC.)

pub mod archive;
pub mod changes;
pub mod content;
pub mod costs;
pub mod diff;
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
pub mod http;
pub mod maintenance;
pub mod repo;
pub mod service;

use crate::config::{Config, StorageMode};
use path::AppId;
use tier::Policy;

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

/// The policy in force for an app: the global thresholds, and the app's own mode if it set one.
pub fn policy_for(config: &Config, app_mode: Option<&str>) -> Policy {
    let mode = app_mode.and_then(StorageMode::parse).unwrap_or(config.storage_mode);
    Policy { mode, inline_max: config.inline_max_bytes, hybrid_max: config.hybrid_max_bytes }
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

    #[test]
    fn an_apps_mode_overrides_the_global_one() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(policy_for(&config, None).mode, StorageMode::Hybrid);
        assert_eq!(policy_for(&config, Some("r2")).mode, StorageMode::R2);
        assert_eq!(policy_for(&config, Some("nonsense")).mode, StorageMode::Hybrid);
    }
}
