//! Storage maintenance: moving inline content to R2 (and back), the storage report, and
//! importing an app from the old schema. (Unreferenced objects are the storage core's GC's.)
//!
//! Every operation is bounded per call and resumable: it works from what D1 says is left to
//! do, so a call that dies half-way is finished by the next one, and a finished job is a no-op.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::content::{self, FileType};
use super::lifecycle_repo;
use super::manifest::{self, Action, FileState, Manifest};
use super::path::{AppId, FilePath};
use super::repo::{self, Holder, MovableRow, NewFile, NewVersion};
use super::report::{self, Facts, TierCount, Tiers};
use super::rollout::Rollout;
use super::service::{app_mode, content_object, effective_rollout, Files};
use super::snapshot_key;
use super::tier::{Location, Policy};
use crate::config::{Config, StorageMode};
use crate::error::{Error, Result};
use crate::store::commit::{self, Guard, Reference};
use crate::store::object::{self, NewObject, Read, Written};
use crate::store::{Kind, MetaStore, Statement};

// ---------------------------------------------------------------------------------------------
// Migration

#[derive(Debug, Serialize)]
pub struct Move {
    pub app: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub path: String,
    pub size_bytes: u64,
    pub from: &'static str,
    pub to: &'static str,
}

#[derive(Debug, Serialize)]
pub struct MoveProblem {
    pub app: String,
    pub path: String,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct MigrateReport {
    pub dry_run: bool,
    /// Rows looked at in this call.
    pub processed: usize,
    /// Rows that moved (or, in a dry run, would move).
    pub moved: Vec<Move>,
    pub bytes_moved: u64,
    pub problems: Vec<MoveProblem>,
    /// Rows still waiting after this call.
    pub remaining: u64,
    pub remaining_bytes: u64,
    pub done: bool,
    /// The rollback switch is on: the migrator moves nothing towards R2.
    pub paused_by_rollback: bool,
}

fn row_policy(config: &Config, rollout: &Rollout, row: &MovableRow) -> Policy {
    app_mode(config, rollout, &row.app_id, row.app_mode.as_deref()).1
}

/// Apps whose rollout bucket one migrate call fills in (older apps have none: see
/// migrations/0009); a handful of cheap updates, so the percentage reaches them soon.
const BUCKETS_PER_CALL: u32 = 200;

/// The rollout in force now (variables and settings rows), for the migrator and the report.
pub async fn current_rollout(meta: &MetaStore, config: &Config) -> Result<Rollout> {
    let settings = lifecycle_repo::settings(meta).await?;
    let row = repo::SettingsRow {
        setting_r2_percent: settings.iter().find(|s| s.name == super::rollout::PERCENT_SETTING).map(|s| s.value.clone()),
        setting_rollback: settings.iter().find(|s| s.name == super::rollout::ROLLBACK_SETTING).map(|s| s.value.clone()),
    };
    Ok(effective_rollout(config, &row))
}

/// Moves up to `batch` rows of inline content the policy wants in R2: first `hybrid` (an R2
/// copy beside the inline one), then, once the R2 copy has been read back and its SHA-256
/// checked, `r2` (inline copy dropped). Current files first, then version lines.
pub async fn migrate(files: &Files, config: &Config, now_ms: i64, app: Option<&AppId>, batch: u32, dry_run: bool) -> Result<MigrateReport> {
    let app_filter = app.map(AppId::as_str);
    let mode = config.storage_mode.as_str();
    let (inline_max, hybrid_max) = (config.inline_max_bytes, config.hybrid_max_bytes);
    let mut out = MigrateReport {
        dry_run,
        processed: 0,
        moved: vec![],
        bytes_moved: 0,
        problems: vec![],
        remaining: 0,
        remaining_bytes: 0,
        done: false,
        paused_by_rollback: false,
    };
    let rollout = current_rollout(&files.meta, config).await?;
    if !dry_run {
        let ids = repo::apps_without_bucket(&files.meta, BUCKETS_PER_CALL).await?;
        files.meta.batch(ids.iter().map(|id| repo::set_bucket(id)).collect()).await?;
    }
    let move_policy = repo::MovePolicy { mode, inline_max, hybrid_max, rollout_bp: rollout.r2_basis_points };
    if rollout.rollback {
        // The rollback switch: nothing moves towards R2 until it is off again.
        let pending = repo::migration_pending(&files.meta, app_filter, move_policy).await?;
        out.remaining = pending.files;
        out.remaining_bytes = pending.bytes;
        out.paused_by_rollback = true;
        return Ok(out);
    }
    for holder in [Holder::File, Holder::VersionLine] {
        let budget = batch.saturating_sub(out.processed as u32);
        if budget == 0 {
            break;
        }
        let rows = repo::migration_candidates(&files.meta, holder, app_filter, move_policy, budget).await?;
        for row in rows {
            out.processed += 1;
            let policy = row_policy(config, &rollout, &row);
            let Some(current) = Location::parse(&row.storage_location) else { continue };
            let target = policy.place(row.size_bytes as usize);
            if rollout.migration_step(&policy, current, row.size_bytes as usize).is_none() {
                continue;
            }
            let mv = Move {
                app: row.app_id.clone(),
                version: row.version_number,
                path: row.path.clone(),
                size_bytes: row.size_bytes,
                from: current.as_str(),
                to: target.as_str(),
            };
            if dry_run {
                out.bytes_moved += row.size_bytes;
                out.moved.push(mv);
                continue;
            }
            match move_row(files, holder, &row, current, target, now_ms).await {
                Ok(()) => {
                    out.bytes_moved += row.size_bytes;
                    out.moved.push(mv);
                }
                Err(Error::Integrity(why)) => {
                    worker::console_error!("r2d1 migrate: {}/{}: {why}", row.app_id, row.path);
                    out.problems.push(MoveProblem { app: row.app_id.clone(), path: row.path.clone(), error: why });
                }
                Err(e) => return Err(e),
            }
        }
    }
    let pending = repo::migration_pending(&files.meta, app_filter, move_policy).await?;
    out.remaining = pending.files;
    out.remaining_bytes = pending.bytes;
    out.done = pending.files == 0;
    Ok(out)
}

async fn move_row(files: &Files, holder: Holder, row: &MovableRow, current: Location, target: Location, now_ms: i64) -> Result<()> {
    let inline = row.content.as_ref().ok_or_else(|| Error::Integrity("row has no inline content".into()))?;
    if content::sha256_hex(inline) != row.sha256 {
        return Err(Error::Integrity(format!("inline content does not hash to {}", row.sha256)));
    }
    let path = FilePath::parse(&row.path)?;
    let content_type = content::content_type_for(&path, FileType::of(inline));
    let (blob_object, blob) = content_object(&row.app_id, inline, content_type);
    let key = blob_object.key.clone();
    let put_started = files.store.request().now();
    let written = object::put(&files.blobs, &blob_object).await?;
    // Verify the R2 copy by reading it back; an existing object at the key that is damaged is
    // replaced with our checked bytes (safe: the key is the content's hash).
    if let Some(problem) = problem_of(files.read_verified(&key, &row.sha256, row.size_bytes).await?) {
        if written == Written::Created {
            return Err(Error::Integrity(format!("R2 copy {key} {problem} right after writing it")));
        }
        worker::console_warn!("r2d1 migrate: existing {key} {problem}; rewriting it");
        object::put(&files.blobs, &blob_object.clone().replacing()).await?;
        if let Some(problem) = problem_of(files.read_verified(&key, &row.sha256, row.size_bytes).await?) {
            return Err(Error::Integrity(format!("R2 copy {key} {problem} after rewriting it")));
        }
    }
    files.store.request().trip("files.after_put")?;
    // Both steps reference the object: each batch is fenced against the GC, which may have
    // condemned an existing (deduplicated) object before our rows pointed at it.
    let refs = [Reference::of(&blob_object)];
    if current == Location::Database {
        let stmts = vec![repo::record_blob(&blob, now_ms), repo::mark_hybrid(holder, row, &key)];
        commit::commit(&files.store, &refs, put_started, Guard::Revive, stmts).await?;
    }
    if target == Location::R2 {
        let stmts = vec![repo::record_blob(&blob, now_ms), repo::clear_inline(holder, row, &key)];
        commit::commit(&files.store, &refs, put_started, Guard::Revive, stmts).await?;
    }
    Ok(())
}

fn problem_of(read: Read) -> Option<String> {
    match read {
        Read::Ok(_) => None,
        Read::Missing => Some("is missing".into()),
        Read::Corrupt(why) => Some(why),
    }
}

#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub processed: usize,
    pub restored_inline: usize,
    pub problems: Vec<MoveProblem>,
    pub remaining: u64,
    pub done: bool,
}

/// Brings up to `batch` rows' content back inline (`database`), reading and checking the R2
/// copy where no inline copy is left. The R2 objects stay until GC finds them unreferenced.
pub async fn rollback(files: &Files, app: Option<&AppId>, batch: u32) -> Result<RollbackReport> {
    let app_filter = app.map(AppId::as_str);
    let mut out = RollbackReport { processed: 0, restored_inline: 0, problems: vec![], remaining: 0, done: false };
    for holder in [Holder::File, Holder::VersionLine] {
        let budget = batch.saturating_sub(out.processed as u32);
        if budget == 0 {
            break;
        }
        for row in repo::rollback_candidates(&files.meta, holder, app_filter, budget).await? {
            out.processed += 1;
            let key = row.r2_key.clone().unwrap_or_default();
            let inline = match row.content.clone().filter(|c| content::sha256_hex(c) == row.sha256) {
                Some(c) => Ok(c),
                None => match files.read_verified(&key, &row.sha256, row.size_bytes).await? {
                    Read::Ok(bytes) => Ok(bytes),
                    other => Err(problem_of(other).unwrap_or_default()),
                },
            };
            match inline {
                Ok(bytes) => {
                    files.meta.batch(vec![repo::make_inline(holder, &row, bytes)]).await?;
                    out.restored_inline += 1;
                }
                Err(problem) => {
                    worker::console_error!("r2d1 rollback: {}/{}: R2 object {key} {problem}", row.app_id, row.path);
                    out.problems.push(MoveProblem {
                        app: row.app_id.clone(),
                        path: row.path.clone(),
                        error: format!("R2 object {problem}"),
                    });
                }
            }
        }
    }
    out.remaining = repo::rollback_pending(&files.meta, app_filter).await?;
    out.done = out.remaining == 0;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Report

pub async fn report(meta: &MetaStore, config: &Config, app: Option<&AppId>) -> Result<report::Report> {
    let app_filter = app.map(AppId::as_str);
    let repo::ReportRows { files, lines, blobs } = repo::report_rows(meta, app_filter).await?;
    let tiers = |rows: &[repo::TierRow]| {
        let mut t = Tiers::default();
        for r in rows {
            let c = TierCount { files: r.files, bytes: r.bytes };
            match Location::parse(&r.location) {
                Some(Location::Database) => t.database = c,
                Some(Location::Hybrid) => t.hybrid = c,
                Some(Location::R2) => t.r2 = c,
                None => {}
            }
        }
        t
    };
    let rollout = current_rollout(meta, config).await?;
    let policy = repo::MovePolicy {
        mode: config.storage_mode.as_str(),
        inline_max: config.inline_max_bytes,
        hybrid_max: config.hybrid_max_bytes,
        rollout_bp: rollout.r2_basis_points,
    };
    let pending = repo::migration_pending(meta, app_filter, policy).await?;
    Ok(report::build(&Facts {
        files: tiers(&files),
        versions: tiers(&lines),
        blob_objects: blobs.objects,
        blob_bytes: blobs.bytes,
        blob_stored_bytes: blobs.stored,
        snapshot_objects: blobs.snapshots,
        snapshot_bytes: blobs.snapshot_bytes,
        pending_files: pending.files,
        pending_bytes: pending.bytes,
    }))
}

// ---------------------------------------------------------------------------------------------
// Import from the old schema

/// A file row of the old schema: content inline, as text or base64.
#[derive(Debug, Deserialize)]
pub struct OldFile {
    pub path: String,
    #[serde(alias = "file_content", alias = "body")]
    pub content: String,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default, alias = "isEntryPoint")]
    pub is_entry_point: Option<serde_json::Value>,
}

/// A version row of the old schema: its files as full copies.
#[derive(Debug, Deserialize)]
pub struct OldVersion {
    #[serde(alias = "version")]
    pub version_number: i64,
    #[serde(default)]
    pub changelog: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    /// Milliseconds since the epoch, or an RFC 3339 string.
    #[serde(default)]
    pub created_at: Option<serde_json::Value>,
    #[serde(default)]
    pub files: Vec<OldFile>,
}

#[derive(Debug, Deserialize)]
pub struct ImportRequest {
    pub app: String,
    #[serde(default)]
    pub app_files: Vec<OldFile>,
    #[serde(default)]
    pub app_versions: Vec<OldVersion>,
}

#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub app: String,
    pub files_written: usize,
    pub files_unchanged: usize,
    pub versions_created: Vec<i64>,
    pub versions_skipped: Vec<i64>,
}

pub fn decode_content(field: &str, content: &str, encoding: Option<&str>) -> Result<Vec<u8>> {
    use base64::Engine;
    match encoding.unwrap_or("utf8") {
        "utf8" | "utf-8" | "text" => Ok(content.as_bytes().to_vec()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| Error::invalid_field(field, format!("is not valid base64: {e}"))),
        other => Err(Error::invalid_field(field, format!("encoding must be utf8 or base64, got {other:?}"))),
    }
}

fn truthy(v: &Option<serde_json::Value>) -> bool {
    match v {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(n)) => n.as_i64() == Some(1),
        Some(serde_json::Value::String(s)) => matches!(s.as_str(), "1" | "true"),
        _ => false,
    }
}

/// A version's creation time, leniently: junk, and times outside 1970-9999 (which would render
/// as an empty `created_at`), fall back to `default`.
fn timestamp(v: &Option<serde_json::Value>, default: i64) -> i64 {
    let ms = match v {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").map(|t| t.and_utc().timestamp_millis()))
            .ok(),
        _ => None,
    };
    ms.filter(|t| (0..=crate::omi::payload::MAX_TIME_MS).contains(t)).unwrap_or(default)
}

/// The largest version number there can be: D1 hands integers past 2^53 - 1 back as floats,
/// which no row type reads (schemathesis stored 2^53 once, and the app's version list was a 502
/// from then on). One below that, because the app's counter (`apps.next_version`) holds the
/// number after the newest; snapshots and restores past it are refused.
pub const MAX_VERSION_NUMBER: i64 = (1 << 53) - 2;

/// Checked before anything is written, so a bad number changes nothing.
fn check_version_numbers(versions: &[OldVersion]) -> Result<()> {
    match versions.iter().find(|v| !(1..=MAX_VERSION_NUMBER).contains(&v.version_number)) {
        Some(v) => Err(Error::invalid_field(
            "app_versions[].version_number",
            format!("must be a whole number from 1 to {MAX_VERSION_NUMBER}, got {}", v.version_number),
        )),
        None => Ok(()),
    }
}

/// Imports an app's files and versions as the old schema held them: content inline (mode
/// `database`, so the migrator then moves it at its own pace). Re-running is safe: files with
/// the same bytes are left alone and versions that exist are skipped.
pub async fn import(files: &Files, now_ms: i64, req: ImportRequest) -> Result<ImportReport> {
    let app_id = AppId::parse(&req.app)?;
    check_version_numbers(&req.app_versions)?;
    let inline_policy = Policy { mode: StorageMode::Database, inline_max: 0, hybrid_max: 0 };
    let mut out =
        ImportReport { app: app_id.to_string(), files_written: 0, files_unchanged: 0, versions_created: vec![], versions_skipped: vec![] };

    // Current files, compared with what is there so a re-run writes nothing.
    let existing: BTreeMap<String, String> =
        repo::list_files(&files.meta, app_id.as_str()).await?.into_iter().map(|f| (f.path, f.sha256)).collect();
    let mut stmts = vec![repo::touch_app(app_id.as_str(), now_ms)];
    let mut objects: Vec<NewObject> = Vec::new();
    let mut prepared_any = false;
    for (i, f) in req.app_files.iter().enumerate() {
        let path = FilePath::parse(&f.path)?;
        let bytes = decode_content(&format!("app_files[{i}].content"), &f.content, f.encoding.as_deref())?;
        if existing.get(path.as_str()) == Some(&content::sha256_hex(&bytes)) {
            out.files_unchanged += 1;
            continue;
        }
        let p = files.prepare(&app_id, &path, bytes, truthy(&f.is_entry_point), |size| inline_policy.place(size));
        if let Some(b) = &p.blob {
            stmts.push(repo::record_blob(b, now_ms));
        }
        stmts.push(repo::log_write(app_id.as_str(), &p.file.path, &p.file.sha256, &repo::WriteCondition::Any, now_ms));
        stmts.push(repo::write_file(app_id.as_str(), &p.file, &repo::WriteCondition::Any, now_ms));
        objects.extend(p.object);
        out.files_written += 1;
        prepared_any = true;
    }
    if prepared_any || repo::app(&files.meta, app_id.as_str()).await?.is_none() {
        commit::write_and_commit(&files.store, &objects.iter().collect::<Vec<_>>(), &[], "files.after_put", stmts).await?;
    }

    // Versions in number order, each compared with the one before for its actions.
    let mut versions = req.app_versions;
    versions.sort_by_key(|v| v.version_number);
    let known: HashSet<i64> = repo::versions(&files.meta, app_id.as_str()).await?.into_iter().map(|v| v.version_number).collect();
    let mut previous: Vec<FileState> = Vec::new();
    for v in versions {
        let mut new_files = Vec::new();
        let mut stmts: Vec<Statement> = Vec::new();
        let mut objects: Vec<NewObject> = Vec::new();
        for (i, f) in v.files.iter().enumerate() {
            let path = FilePath::parse(&f.path)?;
            let bytes =
                decode_content(&format!("app_versions[{}].files[{i}].content", v.version_number), &f.content, f.encoding.as_deref())?;
            let p = files.prepare(&app_id, &path, bytes, truthy(&f.is_entry_point), |size| inline_policy.place(size));
            if let Some(b) = &p.blob {
                stmts.push(repo::record_blob(b, now_ms));
            }
            objects.extend(p.object);
            new_files.push(p.file);
        }
        let states: Vec<FileState> =
            new_files.iter().map(|f| FileState { path: f.path.clone(), sha256: f.sha256.clone(), size_bytes: f.size_bytes }).collect();
        let planned = manifest::plan_version(&previous, &states, false);
        previous = states;
        if known.contains(&v.version_number) {
            out.versions_skipped.push(v.version_number);
            continue;
        }
        let created_at = timestamp(&v.created_at, now_ms);
        let by_path: BTreeMap<&str, &NewFile> = new_files.iter().map(|f| (f.path.as_str(), f)).collect();
        let doc = Manifest::build(
            manifest::VersionHeader {
                app: app_id.to_string(),
                version_number: v.version_number,
                changelog: v.changelog.clone().unwrap_or_default(),
                environment: v.environment.clone().unwrap_or_else(|| "production".into()),
                created_ms: created_at,
                restored_from: None,
            },
            &planned,
            |path| by_path.get(path).map(|f| f.location.as_str().to_string()),
        );
        let (file_count, total_bytes) = (doc.file_count, doc.total_bytes);
        let bytes = doc.to_bytes();
        let (snapshot, inline) = if Manifest::fits_inline(&bytes) {
            (None, Some(String::from_utf8(bytes.clone()).expect("JSON is UTF-8")))
        } else {
            // Written in the object convention, so its hash metadata is there for the
            // consistency check; the key names the manifest's hash (see `snapshot_key`).
            let key = snapshot_key(&app_id, v.version_number, &content::sha256_hex(&bytes));
            objects.push(NewObject::plain(Kind::Snapshot, key.clone(), bytes.clone(), "application/json"));
            (Some(key), None)
        };
        let row = NewVersion {
            version_number: v.version_number,
            changelog: doc.changelog.clone(),
            environment: doc.environment.clone(),
            snapshot_key: snapshot,
            manifest: inline,
            manifest_sha256: content::sha256_hex(&bytes),
            manifest_bytes: bytes.len() as u64,
            file_count,
            total_bytes,
            restored_from: None,
        };
        stmts.insert(0, repo::touch_app(app_id.as_str(), now_ms));
        stmts.push(repo::import_version(app_id.as_str(), &row, created_at));
        stmts.push(repo::advance_version_counter(app_id.as_str(), v.version_number));
        for p in &planned {
            match by_path.get(p.path.as_str()) {
                Some(f) => stmts.push(repo::import_version_line(app_id.as_str(), v.version_number, p.action, f)),
                None => {
                    let gone = NewFile {
                        path: p.path.clone(),
                        file_type: "binary",
                        content_type: "application/octet-stream",
                        size_bytes: p.size_bytes,
                        sha256: p.sha256.clone(),
                        is_entry_point: false,
                        location: Location::Database,
                        r2_key: None,
                        content: None,
                    };
                    stmts.push(repo::import_version_line(app_id.as_str(), v.version_number, Action::Deleted, &gone));
                }
            }
        }
        commit::write_and_commit(&files.store, &objects.iter().collect::<Vec<_>>(), &[], "files.after_put", stmts).await?;
        out.versions_created.push(v.version_number);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_schema_values_are_read_leniently() {
        assert!(truthy(&Some(serde_json::json!(1))));
        assert!(truthy(&Some(serde_json::json!("true"))));
        assert!(!truthy(&None));
        assert_eq!(timestamp(&Some(serde_json::json!("1970-01-01T00:00:01Z")), 0), 1000);
        assert_eq!(timestamp(&Some(serde_json::json!("1970-01-01 00:00:02")), 0), 2000);
        assert_eq!(timestamp(&Some(serde_json::json!(5)), 0), 5);
        assert_eq!(timestamp(&Some(serde_json::json!("junk")), 7), 7);
        assert_eq!(timestamp(&Some(serde_json::json!(9_007_199_254_740_991i64)), 7), 7);
        assert_eq!(timestamp(&Some(serde_json::json!(-1)), 7), 7);
        assert_eq!(decode_content("c", "aGk=", Some("base64")).unwrap(), b"hi");
        assert!(decode_content("c", "!!", Some("base64")).is_err());
        assert!(decode_content("c", "x", Some("rot13")).is_err());
    }

    #[test]
    fn import_version_numbers_are_bounded_before_anything_is_written() {
        let v = |n: i64| OldVersion { version_number: n, changelog: None, environment: None, created_at: None, files: vec![] };
        assert!(check_version_numbers(&[v(1), v(MAX_VERSION_NUMBER)]).is_ok());
        for bad in [0, -1, MAX_VERSION_NUMBER + 1, i64::MAX] {
            let e = check_version_numbers(&[v(1), v(bad)]).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().starts_with("app_versions[].version_number"), "{e}");
        }
    }
}
