//! Taking versions and apps away (issue 13): deleting a version, deleting an app with
//! everything it owns, and the per-app retention policy, run on demand and by the
//! `files.retention` job.
//!
//! Everything goes through the storage core's GC, in its order: one D1 batch condemns the
//! objects the doomed rows name and deletes the rows, then a sweep deletes from R2 what is
//! still unreferenced (an object another file or version shares is referenced again when the
//! sweep claims, so it stays). A row is therefore never left without its object, and a sweep
//! that fails half way is finished by the next GC run: the deletion itself has succeeded.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lifecycle::{check_delete, Retention, Tag, VersionInfo};
use super::lifecycle_repo;
use super::path::AppId;
use super::service::Files;
use crate::app::App;
use crate::error::{Error, Result};
use crate::stmt;
use crate::store::gc::{self, Grace};
use crate::store::jobs::{Job, JobInput, JobOutcome};
use crate::store::object::is_ours;
use crate::store::Kind;

/// Sweeps a deletion runs before answering; what is left stays condemned for the GC job.
const SWEEP_ROUNDS: usize = 20;
/// Pages of an app's prefix a deletion lists for objects no row names (1,000 keys a page);
/// beyond that the GC's listing pass finds them after the grace.
const DELETE_LISTING_PAGES: usize = 10;
/// Change-log rows older than this are pruned by the retention job; a builder whose cursor is
/// older resyncs from a full export.
pub const CHANGE_LOG_KEEP_MS: i64 = 30 * 86_400_000;

/// What a deletion took away.
#[derive(Debug, Default, Serialize)]
pub struct Removed {
    pub app: String,
    /// Versions deleted (for a whole app: all of them).
    pub versions: Vec<i64>,
    /// Objects the deleted rows (or, for an app, its prefix) named.
    pub objects_condemned: usize,
    /// Of those, deleted from R2 by this request's sweep (the others are shared with rows that
    /// stay, or left to the GC job if the sweep could not finish).
    pub objects_deleted: usize,
    /// Stored bytes of the objects deleted.
    pub bytes_freed: u64,
    /// Condemned objects this request's sweep did not reach (0 unless R2 failed).
    pub objects_pending: usize,
}

#[derive(Debug, Deserialize)]
struct KeySize {
    k: String,
    stored: u64,
}

/// The objects versions `numbers` name, with their stored sizes.
async fn version_objects(files: &Files, app_id: &str, numbers: &[i64]) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for chunk in numbers.chunks(90) {
        let list = (2..2 + chunk.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let mut s = stmt!(
            format!(
                "SELECT l.r2_key AS k, COALESCE(b.stored_bytes, 0) AS stored FROM app_version_files l
                   LEFT JOIN blobs b ON b.r2_key = l.r2_key
                 WHERE l.app_id = ?1 AND l.version_number IN ({list}) AND l.r2_key IS NOT NULL
                 UNION SELECT snapshot_key, manifest_bytes FROM app_versions
                 WHERE app_id = ?1 AND version_number IN ({list}) AND snapshot_key IS NOT NULL"
            ),
            app_id
        );
        for n in chunk {
            s = s.bind(*n);
        }
        out.extend(files.meta.all::<KeySize>(s).await?.into_iter().map(|r| (r.k, r.stored)));
    }
    Ok(out)
}

/// Sweeps until nothing eligible is left; counts what of `ours` went.
async fn sweep(files: &Files, grace: Grace, ours: &HashMap<String, u64>, out: &mut Removed) {
    match gc::sweep_all(&files.store, grace, SWEEP_ROUNDS).await {
        Ok(r) => {
            for key in r.deleted.iter().filter(|k| ours.contains_key(*k)) {
                out.objects_deleted += 1;
                out.bytes_freed += ours[key];
            }
        }
        Err(e) => worker::console_error!("r2d1 delete in {}: sweep failed, the GC job will finish it: {e}", out.app),
    }
    // What is still marked condemned among ours was either shared (its mark is dropped by the
    // claim, so it is not pending) or not reached.
    out.objects_pending = pending_marks(files, ours.keys().cloned().collect()).await.unwrap_or(0);
}

async fn pending_marks(files: &Files, keys: Vec<String>) -> Result<usize> {
    Ok(gc::marks(&files.store, &keys).await?.iter().filter(|m| m.state != "deleted").count())
}

async fn tags_of(files: &Files, app_id: &AppId) -> Result<BTreeMap<Tag, i64>> {
    Ok(lifecycle_repo::tags(&files.meta, app_id.as_str())
        .await?
        .into_iter()
        .filter_map(|t| Tag::parse(&t.tag).ok().map(|tag| (tag, t.version_number)))
        .collect())
}

/// Deletes versions `numbers` (already checked by the caller) and sweeps.
async fn remove_versions(files: &Files, grace: Grace, app_id: &AppId, numbers: &[i64], reason: &str) -> Result<Removed> {
    let ours = version_objects(files, app_id.as_str(), numbers).await?;
    files.meta.batch(lifecycle_repo::delete_versions(app_id.as_str(), numbers, reason, files.store.request().now())).await?;
    let mut out = Removed { app: app_id.to_string(), versions: numbers.to_vec(), objects_condemned: ours.len(), ..Removed::default() };
    sweep(files, grace, &ours, &mut out).await;
    Ok(out)
}

/// `DELETE /api/apps/{app}/versions/{version}`: a version that exists and no tag names. Its
/// number is never given to another version (the app's counter has passed it).
pub async fn delete_version(files: &Files, grace: Grace, app_id: &AppId, v: i64) -> Result<Removed> {
    let versions: Vec<i64> = lifecycle_repo::version_infos(&files.meta, app_id.as_str()).await?.iter().map(|x| x.number).collect();
    check_delete(v, &versions, &tags_of(files, app_id).await?)?;
    remove_versions(files, grace, app_id, &[v], "version deleted").await
}

/// `DELETE /api/apps/{app}`: every file, version, line, tag and change-log row of the app,
/// every object its rows name, and every object of ours under its prefix that no row names.
pub async fn delete_app(files: &Files, grace: Grace, app_id: &AppId) -> Result<Removed> {
    let row = super::repo::app(&files.meta, app_id.as_str()).await?;
    let versions: Vec<i64> = lifecycle_repo::version_infos(&files.meta, app_id.as_str()).await?.iter().map(|x| x.number).collect();
    #[derive(Deserialize)]
    struct Key {
        k: String,
        stored: u64,
    }
    let named: Vec<Key> = files
        .meta
        .all(stmt!(
            "SELECT k, MAX(stored) AS stored FROM (
               SELECT f.r2_key AS k, COALESCE(b.stored_bytes, 0) AS stored FROM app_files f LEFT JOIN blobs b ON b.r2_key = f.r2_key
                 WHERE f.app_id = ?1 AND f.r2_key IS NOT NULL
               UNION ALL SELECT l.r2_key, COALESCE(b.stored_bytes, 0) FROM app_version_files l LEFT JOIN blobs b ON b.r2_key = l.r2_key
                 WHERE l.app_id = ?1 AND l.r2_key IS NOT NULL
               UNION ALL SELECT snapshot_key, manifest_bytes FROM app_versions WHERE app_id = ?1 AND snapshot_key IS NOT NULL)
             GROUP BY k",
            app_id.as_str()
        ))
        .await?;
    let mut ours: HashMap<String, u64> = named.into_iter().map(|k| (k.k, k.stored)).collect();
    // Objects under the app's prefix that no row names (a write whose D1 batch failed, …).
    let prefix = format!("apps/{app_id}/");
    let mut extra: BTreeSet<String> = BTreeSet::new();
    let mut cursor = None;
    for _ in 0..DELETE_LISTING_PAGES {
        let page = files.blobs.list_page(&prefix, cursor, 1000).await?;
        for o in &page.objects {
            let Some(kind) = Kind::of_key(&o.key).filter(|k| matches!(k, Kind::AppBlob | Kind::Snapshot)) else { continue };
            if is_ours(o, kind) && !ours.contains_key(&o.key) {
                extra.insert(o.key.clone());
                ours.insert(o.key.clone(), o.size);
            }
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    if row.is_none() && ours.is_empty() {
        return Err(Error::NotFound(format!("no app {app_id}")));
    }
    let mut stmts = lifecycle_repo::delete_app(app_id.as_str(), "app deleted", files.store.request().now());
    stmts.extend(gc::condemn_keys_now(&files.store, &extra.into_iter().collect::<Vec<_>>(), "app deleted")?);
    files.meta.batch(stmts).await?;
    let mut out = Removed { app: app_id.to_string(), versions, objects_condemned: ours.len(), ..Removed::default() };
    sweep(files, grace, &ours, &mut out).await;
    Ok(out)
}

/// What retention decided (and, unless a dry run, did) for one app.
#[derive(Debug, Serialize)]
pub struct RetentionRun {
    pub app: String,
    pub policy: Retention,
    pub dry_run: bool,
    /// Versions the policy lets go (deleted unless a dry run).
    pub delete: Vec<i64>,
    /// Versions kept, newest first.
    pub keep: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

/// Applies the app's retention policy at `now_ms`: never the newest version, never a tagged one.
pub async fn apply_retention(files: &Files, grace: Grace, app_id: &AppId, now_ms: i64, dry_run: bool) -> Result<RetentionRun> {
    let row = super::repo::app(&files.meta, app_id.as_str()).await?.ok_or_else(|| Error::NotFound(format!("no app {app_id}")))?;
    let policy = row.retention();
    let versions: Vec<VersionInfo> = lifecycle_repo::version_infos(&files.meta, app_id.as_str()).await?;
    let delete = policy.to_delete(&versions, now_ms);
    let mut keep: Vec<i64> = versions.iter().map(|v| v.number).filter(|n| !delete.contains(n)).collect();
    keep.reverse();
    let removed = match (dry_run, delete.is_empty()) {
        (false, false) => Some(remove_versions(files, grace, app_id, &delete, "retention").await?),
        _ => None,
    };
    Ok(RetentionRun { app: app_id.to_string(), policy, dry_run, delete, keep, removed })
}

// ---------------------------------------------------------------------------------------------
// The `files.retention` job

pub static JOB: Job = Job {
    name: "files.retention",
    what: "applies each app's version retention policy (never the newest or a tagged version); prunes the change log after 30 days",
    min_interval_ms: 3_600_000,
    run: run_job,
};

/// Apps read per page of the walk.
const APPS_PER_PAGE: u32 = 50;

fn run_job<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let files = Files::new(app)?;
        let mut cursor = input.cursor.unwrap_or_default();
        let (mut apps, mut versions, mut objects) = (0usize, 0usize, 0usize);
        let mut out_of_time = false;
        let finished = loop {
            let page = lifecycle_repo::apps_with_retention(&files.meta, &cursor, APPS_PER_PAGE).await?;
            for id in &page {
                let app_id = AppId::parse(id)?;
                let run = apply_retention(&files, app.config.gc_grace, &app_id, app.now_ms, false).await?;
                apps += 1;
                versions += run.delete.len();
                objects += run.removed.map(|r| r.objects_deleted).unwrap_or(0);
                cursor = id.clone();
                if app.state.now() >= input.deadline_ms {
                    out_of_time = true;
                    break;
                }
            }
            if out_of_time {
                break false;
            }
            if (page.len() as u32) < APPS_PER_PAGE {
                break true;
            }
        };
        // The change log: the walk's last step, once per complete walk.
        let pruned = if finished {
            let results = files.meta.batch(lifecycle_repo::prune_changes(app.now_ms - CHANGE_LOG_KEEP_MS)).await?;
            results.last().map(|r| r.changes).unwrap_or(0)
        } else {
            0
        };
        Ok(JobOutcome {
            cursor: (!finished).then_some(cursor),
            report: json!({ "apps": apps, "versionsDeleted": versions, "objectsDeleted": objects, "changeRowsPruned": pruned, "complete": finished }),
        })
    })
}
