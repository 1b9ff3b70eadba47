//! Every SQL statement about apps, files, versions and blobs (tables in
//! `migrations/0003_app_files.sql`). Statement builders are pure; the `async fn`s run them
//! through [`MetaStore`].
//!
//! Limits respected here: D1 allows 100 bound parameters per statement (lists are chunked so a
//! statement never needs more), and a batch is one transaction. Writes that must not race are
//! guarded by the app's `revision` (see the migration) rather than by a read-then-write check.

use serde::{Deserialize, Deserializer};

use super::lifecycle::{Quota, Retention};
use super::manifest::{Action, Planned};
use super::tier::Location;
use crate::error::Result;
use crate::stmt;
use crate::store::{MetaStore, Statement, Value};

/// D1's limit of bound parameters per statement.
pub const MAX_PARAMS: usize = 100;

/// BLOB columns come back from D1 as an array of numbers; accept raw bytes too.
pub(crate) fn bytes_opt<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<u8>>, D::Error> {
    struct Bytes;
    impl<'de> serde::de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a BLOB as bytes or an array of numbers")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> std::result::Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
    struct Opt;
    impl<'de> serde::de::Visitor<'de> for Opt {
        type Value = Option<Vec<u8>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a BLOB or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> std::result::Result<Self::Value, D2::Error> {
            d.deserialize_any(Bytes).map(Some)
        }
    }
    d.deserialize_option(Opt)
}

// ---------------------------------------------------------------------------------------------
// Rows

#[derive(Debug, Clone, Deserialize)]
pub struct AppRow {
    pub id: String,
    pub storage_mode: Option<String>,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The number the next version gets (a counter: numbers are never reused).
    #[serde(default = "one")]
    pub next_version: i64,
    #[serde(default)]
    pub rollout_bucket: Option<i64>,
    #[serde(default)]
    pub max_bytes: Option<u64>,
    #[serde(default)]
    pub max_files: Option<u64>,
    #[serde(default)]
    pub max_versions: Option<u64>,
    #[serde(default)]
    pub retention_keep_last: Option<u32>,
    #[serde(default)]
    pub retention_keep_days: Option<u32>,
    #[serde(default)]
    pub changes_pruned_through: i64,
}

fn one() -> i64 {
    1
}

impl AppRow {
    /// The quotas the app set itself (the defaults are laid under them by the caller).
    pub fn quota(&self) -> Quota {
        Quota { max_bytes: self.max_bytes, max_files: self.max_files, max_versions: self.max_versions }
    }

    pub fn retention(&self) -> Retention {
        Retention { keep_last: self.retention_keep_last, keep_days: self.retention_keep_days }
    }
}

/// Every column of `apps` a reader needs.
pub const APP_COLS: &str = "id, storage_mode, revision, created_at, updated_at, next_version, rollout_bucket, max_bytes, max_files, \
     max_versions, retention_keep_last, retention_keep_days, changes_pruned_through";

/// The rollout settings rows of `storage_settings` (a row wins over the variable), as one
/// column each: folded into the queries that read an app or a file, so the rollback switch
/// costs no extra round trip and takes effect on the next request.
pub const SETTINGS_COLS: &str = "(SELECT value FROM storage_settings WHERE name = 'STORAGE_R2_PERCENT') AS setting_r2_percent, \
     (SELECT value FROM storage_settings WHERE name = 'STORAGE_ROLLBACK') AS setting_rollback";

/// The `storage_settings` rows a query carried.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct SettingsRow {
    #[serde(default)]
    pub setting_r2_percent: Option<String>,
    #[serde(default)]
    pub setting_rollback: Option<String>,
}

impl SettingsRow {
    pub fn get(&self, name: &str) -> Option<String> {
        match name {
            super::rollout::PERCENT_SETTING => self.setting_r2_percent.clone(),
            super::rollout::ROLLBACK_SETTING => self.setting_rollback.clone(),
            _ => None,
        }
    }
}

/// An app (if it exists) and the rollout settings, read in one query.
#[derive(Debug, Clone, Default)]
pub struct AppAndSettings {
    pub app: Option<AppRow>,
    pub settings: SettingsRow,
}

/// A current file, or a version's line: the same columns, so reads share one code path.
/// `content` is only selected where the bytes are needed.
#[derive(Debug, Clone, Deserialize)]
pub struct FileRecord {
    pub path: String,
    pub file_type: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub is_entry_point: i64,
    /// `None` only for a version's `deleted` line.
    pub storage_location: Option<String>,
    pub r2_key: Option<String>,
    #[serde(default, deserialize_with = "bytes_opt")]
    pub content: Option<Vec<u8>>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// The `STORAGE_ROLLBACK` settings row, carried by the queries that serve reads.
    #[serde(default)]
    pub setting_rollback: Option<String>,
}

impl FileRecord {
    pub fn location(&self) -> Option<Location> {
        self.storage_location.as_deref().and_then(Location::parse)
    }

    pub fn action(&self) -> Option<Action> {
        self.action.as_deref().and_then(Action::parse)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct VersionRow {
    pub version_number: i64,
    pub changelog: String,
    pub environment: String,
    pub storage_strategy: String,
    pub snapshot_key: Option<String>,
    #[serde(default)]
    pub manifest: Option<String>,
    pub manifest_sha256: String,
    pub manifest_bytes: u64,
    pub file_count: u64,
    pub total_bytes: u64,
    pub restored_from: Option<i64>,
    pub created_at: i64,
}

/// The columns every file write sets.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub path: String,
    pub file_type: &'static str,
    pub content_type: &'static str,
    pub size_bytes: u64,
    pub sha256: String,
    pub is_entry_point: bool,
    pub location: Location,
    pub r2_key: Option<String>,
    pub content: Option<Vec<u8>>,
}

/// A content object written to R2, to be recorded in `blobs`.
#[derive(Debug, Clone)]
pub struct NewBlob {
    pub r2_key: String,
    pub app_id: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub stored_bytes: u64,
    pub content_encoding: Option<&'static str>,
}

// ---------------------------------------------------------------------------------------------
// Apps

pub async fn app(meta: &MetaStore, app_id: &str) -> Result<Option<AppRow>> {
    meta.first(stmt!(format!("SELECT {APP_COLS} FROM apps WHERE id = ?1"), app_id)).await
}

/// The app's row (if any) and the rollout settings, in one query (the settings row always
/// comes back; the app's columns are NULL when it does not exist). One plain read, no batch:
/// it is the first thing every write does, and a write's only batch is its commit.
pub async fn app_and_settings(meta: &MetaStore, app_id: &str) -> Result<AppAndSettings> {
    #[derive(Deserialize)]
    struct Joined {
        setting_r2_percent: Option<String>,
        setting_rollback: Option<String>,
        id: Option<String>,
        storage_mode: Option<String>,
        revision: Option<i64>,
        created_at: Option<i64>,
        updated_at: Option<i64>,
        next_version: Option<i64>,
        rollout_bucket: Option<i64>,
        max_bytes: Option<u64>,
        max_files: Option<u64>,
        max_versions: Option<u64>,
        retention_keep_last: Option<u32>,
        retention_keep_days: Option<u32>,
        changes_pruned_through: Option<i64>,
    }
    let sql = format!("SELECT s.*, a.* FROM (SELECT {SETTINGS_COLS}) s LEFT JOIN (SELECT {APP_COLS} FROM apps WHERE id = ?1) a ON 1 = 1");
    let Some(j) = meta.first::<Joined>(stmt!(sql, app_id)).await? else { return Ok(AppAndSettings::default()) };
    let settings = SettingsRow { setting_r2_percent: j.setting_r2_percent, setting_rollback: j.setting_rollback };
    let app = j.id.map(|id| AppRow {
        id,
        storage_mode: j.storage_mode,
        revision: j.revision.unwrap_or_default(),
        created_at: j.created_at.unwrap_or_default(),
        updated_at: j.updated_at.unwrap_or_default(),
        next_version: j.next_version.unwrap_or(1),
        rollout_bucket: j.rollout_bucket,
        max_bytes: j.max_bytes,
        max_files: j.max_files,
        max_versions: j.max_versions,
        retention_keep_last: j.retention_keep_last,
        retention_keep_days: j.retention_keep_days,
        changes_pruned_through: j.changes_pruned_through.unwrap_or_default(),
    });
    Ok(AppAndSettings { app, settings })
}

pub async fn apps(meta: &MetaStore) -> Result<Vec<AppRow>> {
    meta.all(stmt!(format!("SELECT {APP_COLS} FROM apps ORDER BY id"))).await
}

/// Creates the app if needed (with its rollout bucket) and moves its revision on: the first
/// statement of every write batch, so a concurrent snapshot sees that something changed. A new
/// app's first change is revision 1, so revision 0 is "no files yet" (`changes?since=0` from a
/// builder that holds nothing).
pub fn touch_app(app_id: &str, now_ms: i64) -> Statement {
    stmt!(
        "INSERT INTO apps (id, created_at, updated_at, rollout_bucket, revision) VALUES (?1, ?2, ?2, ?3, 1)
         ON CONFLICT (id) DO UPDATE SET revision = revision + 1, updated_at = ?2, rollout_bucket = COALESCE(rollout_bucket, ?3)",
        app_id,
        now_ms,
        super::rollout::bucket(app_id)
    )
}

pub fn set_app_mode(app_id: &str, mode: Option<&str>, now_ms: i64) -> Statement {
    stmt!(
        "INSERT INTO apps (id, storage_mode, created_at, updated_at, rollout_bucket) VALUES (?1, ?2, ?3, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET storage_mode = ?2, updated_at = ?3, rollout_bucket = COALESCE(rollout_bucket, ?4)",
        app_id,
        mode,
        now_ms,
        super::rollout::bucket(app_id)
    )
}

/// Apps created before rollout buckets were stored (migrations/0009), a page at a time.
pub async fn apps_without_bucket(meta: &MetaStore, limit: u32) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let rows: Vec<Id> = meta.all(stmt!("SELECT id FROM apps WHERE rollout_bucket IS NULL ORDER BY id LIMIT ?1", limit)).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

pub fn set_bucket(app_id: &str) -> Statement {
    stmt!("UPDATE apps SET rollout_bucket = ?2 WHERE id = ?1 AND rollout_bucket IS NULL", app_id, super::rollout::bucket(app_id))
}

/// Guard used in a WHERE clause: the app is still at the revision the caller read. Expects the
/// app id at `?1` and the revision at `?3`.
const REVISION_GUARD: &str = "(SELECT revision FROM apps WHERE id = ?1) = ?3";

/// Moves the revision on only if it is still `revision`, and the version counter past
/// `version`; last statement of a guarded batch.
fn bump_revision_if(app_id: &str, revision: i64, version: i64, now_ms: i64) -> Statement {
    stmt!(
        "UPDATE apps SET revision = revision + 1, updated_at = ?2, next_version = MAX(next_version, ?4 + 1) WHERE id = ?1 AND revision = ?3",
        app_id,
        now_ms,
        revision,
        version
    )
}

/// Moves the version counter past `version` (an imported version keeps its number).
pub fn advance_version_counter(app_id: &str, version: i64) -> Statement {
    stmt!("UPDATE apps SET next_version = MAX(next_version, ?2 + 1) WHERE id = ?1", app_id, version)
}

// ---------------------------------------------------------------------------------------------
// Current files

const FILE_META: &str =
    "path, file_type, content_type, size_bytes, sha256, is_entry_point, storage_location, r2_key, created_at, updated_at";

pub async fn list_files(meta: &MetaStore, app_id: &str) -> Result<Vec<FileRecord>> {
    meta.all(stmt!(format!("SELECT {FILE_META} FROM app_files WHERE app_id = ?1 ORDER BY path"), app_id)).await
}

pub async fn file(meta: &MetaStore, app_id: &str, path: &str) -> Result<Option<FileRecord>> {
    meta.first(stmt!(format!("SELECT {FILE_META}, content, {ROLLBACK_COL} FROM app_files WHERE app_id = ?1 AND path = ?2"), app_id, path))
        .await
}

/// The rollback switch's settings row as a column of a read.
const ROLLBACK_COL: &str = "(SELECT value FROM storage_settings WHERE name = 'STORAGE_ROLLBACK') AS setting_rollback";

/// Sizes of those of `paths` that exist (for a batch's quota check), in chunks under the
/// parameter limit.
pub async fn file_sizes(meta: &MetaStore, app_id: &str, paths: &[&str]) -> Result<std::collections::HashMap<String, u64>> {
    #[derive(Deserialize)]
    struct Size {
        path: String,
        size_bytes: u64,
    }
    let mut out = std::collections::HashMap::new();
    for chunk in paths.chunks(MAX_PARAMS - 5) {
        let list = (2..2 + chunk.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let mut s = stmt!(format!("SELECT path, size_bytes FROM app_files WHERE app_id = ?1 AND path IN ({list})"), app_id);
        for p in chunk {
            s = s.bind(*p);
        }
        out.extend(meta.all::<Size>(s).await?.into_iter().map(|r| (r.path, r.size_bytes)));
    }
    Ok(out)
}

/// How a write treats a file that may already exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteCondition {
    /// Create or replace.
    Any,
    /// Replace only if the stored hash is this one (`If-Match`).
    IfMatch(String),
    /// Create only (`If-None-Match: *`).
    IfAbsent,
}

const FILE_INSERT: &str = "INSERT INTO app_files (app_id, path, file_type, content_type, size_bytes, sha256, is_entry_point, storage_location, r2_key, content, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)";
const FILE_SET: &str = "file_type = ?3, content_type = ?4, size_bytes = ?5, sha256 = ?6, is_entry_point = ?7, storage_location = ?8, r2_key = ?9, content = ?10, updated_at = ?11";

/// Writes one file under `condition`; a conditional write that does not apply changes no row,
/// which the caller reads from [`RunInfo::changes`].
pub fn write_file(app_id: &str, f: &NewFile, condition: &WriteCondition, now_ms: i64) -> Statement {
    let sql = match condition {
        WriteCondition::Any => format!("{FILE_INSERT} ON CONFLICT (app_id, path) DO UPDATE SET {FILE_SET}"),
        WriteCondition::IfAbsent => format!("{FILE_INSERT} ON CONFLICT (app_id, path) DO NOTHING"),
        WriteCondition::IfMatch(_) => format!("UPDATE app_files SET {FILE_SET} WHERE app_id = ?1 AND path = ?2 AND sha256 = ?12"),
    };
    let mut s = stmt!(
        sql,
        app_id,
        f.path.as_str(),
        f.file_type,
        f.content_type,
        f.size_bytes,
        f.sha256.as_str(),
        f.is_entry_point,
        f.location.as_str(),
        f.r2_key.clone(),
        f.content.clone().map(Value::Blob).unwrap_or(Value::Null),
        now_ms
    );
    if let WriteCondition::IfMatch(sha) = condition {
        s = s.bind(sha.as_str());
    }
    s
}

pub fn delete_file(app_id: &str, path: &str, if_match: Option<&str>) -> Statement {
    match if_match {
        None => stmt!("DELETE FROM app_files WHERE app_id = ?1 AND path = ?2", app_id, path),
        Some(sha) => stmt!("DELETE FROM app_files WHERE app_id = ?1 AND path = ?2 AND sha256 = ?3", app_id, path, sha),
    }
}

// ---------------------------------------------------------------------------------------------
// The change log (`app_file_changes`, see `files::changes`): rows written inside the batch that
// changes the files, at the revision that batch gives the app, so a revision's rows appear
// together or not at all.

const NEW_REVISION: &str = "(SELECT revision FROM apps WHERE id = ?1)";

/// The row for writing `sha256` at `path`, placed after `touch_app` and before the write: it
/// says `created` or `updated` from the file as it was, and is left out when the write does
/// not apply (its condition fails) or changes no content.
pub fn log_write(app_id: &str, path: &str, sha256: &str, condition: &WriteCondition, now_ms: i64) -> Statement {
    let exists = "EXISTS (SELECT 1 FROM app_files WHERE app_id = ?1 AND path = ?2)";
    let applies = match condition {
        WriteCondition::Any => "1".to_string(),
        WriteCondition::IfAbsent => format!("NOT {exists}"),
        WriteCondition::IfMatch(_) => "EXISTS (SELECT 1 FROM app_files WHERE app_id = ?1 AND path = ?2 AND sha256 = ?5)".to_string(),
    };
    let s = stmt!(
        format!(
            "INSERT INTO app_file_changes (app_id, revision, path, action, sha256, created_at)
             SELECT ?1, {NEW_REVISION}, ?2, CASE WHEN {exists} THEN 'updated' ELSE 'created' END, ?3, ?4
             WHERE {applies} AND NOT EXISTS (SELECT 1 FROM app_files WHERE app_id = ?1 AND path = ?2 AND sha256 = ?3)"
        ),
        app_id,
        path,
        sha256,
        now_ms
    );
    match condition {
        WriteCondition::IfMatch(want) => s.bind(want.as_str()),
        _ => s,
    }
}

/// The row for deleting `path`, placed before the delete (and only if there is something to
/// delete, matching `if_match` when given).
pub fn log_delete(app_id: &str, path: &str, if_match: Option<&str>, now_ms: i64) -> Statement {
    stmt!(
        format!(
            "INSERT INTO app_file_changes (app_id, revision, path, action, sha256, created_at)
             SELECT ?1, {NEW_REVISION}, ?2, 'deleted', NULL, ?3
             WHERE EXISTS (SELECT 1 FROM app_files WHERE app_id = ?1 AND path = ?2 AND (?4 IS NULL OR sha256 = ?4))"
        ),
        app_id,
        path,
        now_ms,
        if_match
    )
}

/// The rows for a restore of version `v`, placed before [`restore_files`] and guarded like it:
/// the restore's batch ends by moving the revision from `revision` to `revision + 1`.
pub fn log_restore(app_id: &str, revision: i64, v: i64, now_ms: i64) -> Vec<Statement> {
    let target = "SELECT path, sha256 FROM app_version_files WHERE app_id = ?1 AND version_number = ?2 AND action != 'deleted'";
    let insert = "INSERT INTO app_file_changes (app_id, revision, path, action, sha256, created_at)";
    vec![
        stmt!(
            format!(
                "{insert} SELECT ?1, ?3 + 1, f.path, 'deleted', NULL, ?4 FROM app_files f
                 WHERE f.app_id = ?1 AND {REVISION_GUARD} AND f.path NOT IN (SELECT path FROM ({target}))"
            ),
            app_id,
            v,
            revision,
            now_ms
        ),
        stmt!(
            format!(
                "{insert} SELECT ?1, ?3 + 1, t.path, CASE WHEN f.path IS NULL THEN 'created' ELSE 'updated' END, t.sha256, ?4
                 FROM ({target}) t LEFT JOIN app_files f ON f.app_id = ?1 AND f.path = t.path
                 WHERE {REVISION_GUARD} AND (f.path IS NULL OR f.sha256 != t.sha256)"
            ),
            app_id,
            v,
            revision,
            now_ms
        ),
    ]
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChangeRow {
    pub revision: i64,
    pub path: String,
    pub action: String,
    pub sha256: Option<String>,
}

/// Up to `limit` log rows after (`revision`, `after_path`) in (revision, path) order.
pub async fn changes_after(
    meta: &MetaStore,
    app_id: &str,
    revision: i64,
    after_path: Option<&str>,
    limit: usize,
) -> Result<Vec<ChangeRow>> {
    meta.all(stmt!(
        "SELECT revision, path, action, sha256 FROM app_file_changes
         WHERE app_id = ?1 AND (revision > ?2 OR (revision = ?2 AND ?3 IS NOT NULL AND path > ?3))
         ORDER BY revision, path LIMIT ?4",
        app_id,
        revision,
        after_path,
        limit
    ))
    .await
}

/// Records an R2 object, or notes that a write just reused it (GC leaves it alone for a while).
pub fn record_blob(b: &NewBlob, now_ms: i64) -> Statement {
    stmt!(
        "INSERT INTO blobs (r2_key, app_id, sha256, size_bytes, stored_bytes, content_encoding, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (r2_key) DO UPDATE SET last_seen_at = ?7",
        b.r2_key.as_str(),
        b.app_id.as_str(),
        b.sha256.as_str(),
        b.size_bytes,
        b.stored_bytes,
        b.content_encoding,
        now_ms
    )
}

// ---------------------------------------------------------------------------------------------
// Versions

const VERSION_COLS: &str = "version_number, changelog, environment, storage_strategy, snapshot_key, manifest_sha256, manifest_bytes, file_count, total_bytes, restored_from, created_at";
const LINE_COLS: &str = "path, action, file_type, content_type, size_bytes, sha256, is_entry_point, storage_location, r2_key";

pub async fn versions(meta: &MetaStore, app_id: &str) -> Result<Vec<VersionRow>> {
    meta.all(stmt!(format!("SELECT {VERSION_COLS} FROM app_versions WHERE app_id = ?1 ORDER BY version_number"), app_id)).await
}

pub async fn version(meta: &MetaStore, app_id: &str, v: i64) -> Result<Option<VersionRow>> {
    meta.first(stmt!(format!("SELECT {VERSION_COLS}, manifest FROM app_versions WHERE app_id = ?1 AND version_number = ?2"), app_id, v))
        .await
}

pub async fn latest_version(meta: &MetaStore, app_id: &str) -> Result<Option<i64>> {
    #[derive(Deserialize)]
    struct Latest {
        v: Option<i64>,
    }
    let row: Option<Latest> = meta.first(stmt!("SELECT MAX(version_number) AS v FROM app_versions WHERE app_id = ?1", app_id)).await?;
    Ok(row.and_then(|r| r.v))
}

/// A version's lines (deleted ones too, unless `live_only`), without content.
pub async fn version_files(meta: &MetaStore, app_id: &str, v: i64, live_only: bool) -> Result<Vec<FileRecord>> {
    let filter = if live_only { " AND action != 'deleted'" } else { "" };
    meta.all(stmt!(
        format!("SELECT {LINE_COLS} FROM app_version_files WHERE app_id = ?1 AND version_number = ?2{filter} ORDER BY path"),
        app_id,
        v
    ))
    .await
}

/// One line of a version, with its inline content.
pub async fn version_file(meta: &MetaStore, app_id: &str, v: i64, path: &str) -> Result<Option<FileRecord>> {
    meta.first(stmt!(
        format!(
            "SELECT {LINE_COLS}, content, {ROLLBACK_COL} FROM app_version_files WHERE app_id = ?1 AND version_number = ?2 AND path = ?3"
        ),
        app_id,
        v,
        path
    ))
    .await
}

/// Live lines of a version with their inline content, `limit` from `offset` (for diff and
/// archive, which need the bytes; paged so one read never carries every inline copy at once).
pub async fn version_files_with_content(meta: &MetaStore, app_id: &str, v: i64, offset: u64, limit: u64) -> Result<Vec<FileRecord>> {
    meta.all(stmt!(
        format!(
            "SELECT {LINE_COLS}, content, {ROLLBACK_COL} FROM app_version_files
             WHERE app_id = ?1 AND version_number = ?2 AND action != 'deleted'
             ORDER BY path LIMIT ?3 OFFSET ?4"
        ),
        app_id,
        v,
        limit,
        offset
    ))
    .await
}

/// The new version's row.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub version_number: i64,
    pub changelog: String,
    pub environment: String,
    pub snapshot_key: Option<String>,
    pub manifest: Option<String>,
    pub manifest_sha256: String,
    pub manifest_bytes: u64,
    pub file_count: u64,
    pub total_bytes: u64,
    pub restored_from: Option<i64>,
}

/// Where a new version's lines take their content from.
#[derive(Debug, Clone, Copy)]
pub enum LineSource {
    /// The current files (a snapshot).
    CurrentFiles,
    /// Another version's lines (a restore).
    Version(i64),
}

/// The statements that record a version, all conditional on the app still being at
/// `revision`: if anything changed since the caller read it, none of them applies and the first
/// reports zero changes. `lines` are the planned lines, deleted ones included.
pub fn record_version(app_id: &str, revision: i64, v: &NewVersion, lines: &[Planned], source: LineSource, now_ms: i64) -> Vec<Statement> {
    let mut out = Vec::new();
    out.push(stmt!(
        format!(
            "INSERT INTO app_versions (app_id, version_number, changelog, environment, storage_strategy, snapshot_key, manifest,
               manifest_sha256, manifest_bytes, file_count, total_bytes, restored_from, created_at)
             SELECT ?1, ?2, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 WHERE {REVISION_GUARD}"
        ),
        app_id,
        v.version_number,
        revision,
        v.changelog.as_str(),
        v.environment.as_str(),
        if v.snapshot_key.is_some() { "r2" } else { "inline" },
        v.snapshot_key.clone(),
        v.manifest.clone(),
        v.manifest_sha256.as_str(),
        v.manifest_bytes,
        v.file_count,
        v.total_bytes,
        v.restored_from,
        now_ms
    ));

    // Live lines copy their content server-side (no bytes travel through the worker), in
    // chunks of (path, action) pairs that keep each statement under the parameter limit.
    let live: Vec<&Planned> = lines.iter().filter(|l| l.action != Action::Deleted).collect();
    let fixed = 4; // ?1 app, ?2 version, ?3 revision, ?4 source version
    for chunk in live.chunks((MAX_PARAMS - fixed) / 2) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("(?{}, ?{})", fixed + 1 + 2 * i, fixed + 2 + 2 * i)).collect();
        let from = match source {
            LineSource::CurrentFiles => "app_files s WHERE s.app_id = ?1 AND s.path = plan.path AND ?4 IS NULL".to_string(),
            LineSource::Version(_) => {
                "app_version_files s WHERE s.app_id = ?1 AND s.version_number = ?4 AND s.path = plan.path".to_string()
            }
        };
        let sql = format!(
            "WITH plan (path, action) AS (VALUES {})
             INSERT INTO app_version_files (app_id, version_number, path, action, file_type, content_type, size_bytes, sha256,
               is_entry_point, storage_location, r2_key, content)
             SELECT ?1, ?2, s.path, plan.action, s.file_type, s.content_type, s.size_bytes, s.sha256, s.is_entry_point,
               s.storage_location, s.r2_key, s.content
             FROM plan JOIN {from} AND {REVISION_GUARD}",
            values.join(", ")
        );
        let source_v = match source {
            LineSource::CurrentFiles => None,
            LineSource::Version(n) => Some(n),
        };
        let mut s = stmt!(sql, app_id, v.version_number, revision, source_v);
        for Planned { path, action, .. } in chunk {
            s = s.bind(path.as_str()).bind(action.as_str());
        }
        out.push(s);
    }
    for Planned { path, sha256: sha, size_bytes: size, .. } in lines.iter().filter(|l| l.action == Action::Deleted) {
        out.push(stmt!(
            format!(
                "INSERT INTO app_version_files (app_id, version_number, path, action, file_type, content_type, size_bytes, sha256)
                 SELECT ?1, ?2, ?4, 'deleted', 'binary', 'application/octet-stream', ?5, ?6 WHERE {REVISION_GUARD}"
            ),
            app_id,
            v.version_number,
            revision,
            path.as_str(),
            *size,
            sha.as_str()
        ));
    }
    out.push(bump_revision_if(app_id, revision, v.version_number, now_ms));
    out
}

/// Makes the current files exactly version `v`'s live lines (content references included),
/// conditional on `revision` like [`record_version`], whose statements should follow these.
pub fn restore_files(app_id: &str, revision: i64, v: i64, now_ms: i64) -> Vec<Statement> {
    vec![
        stmt!(
            format!(
                "DELETE FROM app_files WHERE app_id = ?1 AND {REVISION_GUARD} AND path NOT IN
                   (SELECT path FROM app_version_files WHERE app_id = ?1 AND version_number = ?2 AND action != 'deleted')"
            ),
            app_id,
            v,
            revision
        ),
        stmt!(
            format!(
                "INSERT INTO app_files (app_id, path, file_type, content_type, size_bytes, sha256, is_entry_point, storage_location,
                   r2_key, content, created_at, updated_at)
                 SELECT ?1, path, file_type, content_type, size_bytes, sha256, is_entry_point, storage_location, r2_key, content, ?4, ?4
                 FROM app_version_files WHERE app_id = ?1 AND version_number = ?2 AND action != 'deleted' AND {REVISION_GUARD}
                 ON CONFLICT (app_id, path) DO UPDATE SET file_type = excluded.file_type, content_type = excluded.content_type,
                   size_bytes = excluded.size_bytes, sha256 = excluded.sha256, is_entry_point = excluded.is_entry_point,
                   storage_location = excluded.storage_location, r2_key = excluded.r2_key, content = excluded.content,
                   updated_at = excluded.updated_at
                 WHERE app_files.sha256 != excluded.sha256 OR app_files.storage_location != excluded.storage_location
                   OR app_files.is_entry_point != excluded.is_entry_point"
            ),
            app_id,
            v,
            revision,
            now_ms
        ),
    ]
}

/// An imported version line with explicit content (no current file to copy from).
pub fn import_version_line(app_id: &str, v: i64, action: Action, f: &NewFile) -> Statement {
    stmt!(
        "INSERT OR IGNORE INTO app_version_files (app_id, version_number, path, action, file_type, content_type, size_bytes, sha256,
           is_entry_point, storage_location, r2_key, content)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        app_id,
        v,
        f.path.as_str(),
        action.as_str(),
        f.file_type,
        f.content_type,
        f.size_bytes,
        f.sha256.as_str(),
        f.is_entry_point,
        if action == Action::Deleted { None } else { Some(f.location.as_str()) },
        f.r2_key.clone(),
        f.content.clone().map(Value::Blob).unwrap_or(Value::Null)
    )
}

/// An imported version's row; `INSERT OR IGNORE` so re-running an import changes nothing.
pub fn import_version(app_id: &str, v: &NewVersion, created_at: i64) -> Statement {
    stmt!(
        "INSERT OR IGNORE INTO app_versions (app_id, version_number, changelog, environment, storage_strategy, snapshot_key, manifest,
           manifest_sha256, manifest_bytes, file_count, total_bytes, restored_from, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        app_id,
        v.version_number,
        v.changelog.as_str(),
        v.environment.as_str(),
        if v.snapshot_key.is_some() { "r2" } else { "inline" },
        v.snapshot_key.clone(),
        v.manifest.clone(),
        v.manifest_sha256.as_str(),
        v.manifest_bytes,
        v.file_count,
        v.total_bytes,
        v.restored_from,
        created_at
    )
}

// ---------------------------------------------------------------------------------------------
// Migration and rollback: the same moves on current files and on version lines.

/// Which table holds a piece of content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    File,
    VersionLine,
}

/// A row whose content may move, identified by its key columns.
#[derive(Debug, Clone, Deserialize)]
pub struct MovableRow {
    pub app_id: String,
    #[serde(default)]
    pub version_number: Option<i64>,
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub storage_location: String,
    pub r2_key: Option<String>,
    pub app_mode: Option<String>,
    #[serde(default, deserialize_with = "bytes_opt")]
    pub content: Option<Vec<u8>>,
}

fn holder_sql(h: Holder) -> (&'static str, &'static str, &'static str) {
    match h {
        Holder::File => ("app_files", "NULL AS version_number", "t.app_id = ?1 AND t.path = ?2"),
        Holder::VersionLine => ("app_version_files", "t.version_number", "t.app_id = ?1 AND t.path = ?2 AND t.version_number = ?3"),
    }
}

/// The policy's "content inline that belongs in R2" as SQL, mirroring
/// [`super::tier::Policy::migration_step`] under the rollout (`super::rollout`): an app's own
/// mode, else the global `mode` if the percentage (`bp`, basis points) reaches its stored
/// bucket, else `database`; `inline` and `hybrid` are the thresholds.
fn needs_move_sql(mode: &str, inline: &str, hybrid: &str, bp: &str) -> String {
    format!(
        "t.content IS NOT NULL AND (CASE COALESCE(a.storage_mode,
             CASE WHEN {bp} >= 10000 OR a.rollout_bucket < {bp} THEN {mode} ELSE 'database' END)
           WHEN 'r2' THEN 1
           WHEN 'database' THEN t.size_bytes > {hard}
           ELSE (t.storage_location = 'database' AND t.size_bytes > {inline}) OR (t.storage_location = 'hybrid' AND t.size_bytes > {hybrid})
         END)",
        hard = super::tier::D1_INLINE_HARD_MAX
    )
}

/// What the migrator's SQL decides by: the global mode, the thresholds and the rollout's
/// percentage (basis points).
#[derive(Debug, Clone, Copy)]
pub struct MovePolicy<'a> {
    pub mode: &'a str,
    pub inline_max: usize,
    pub hybrid_max: usize,
    pub rollout_bp: u16,
}

/// Up to `limit` rows whose inline content the policy wants (also) in R2, oldest keys first.
pub async fn migration_candidates(
    meta: &MetaStore,
    holder: Holder,
    app: Option<&str>,
    p: MovePolicy<'_>,
    limit: u32,
) -> Result<Vec<MovableRow>> {
    let (table, version_col, _) = holder_sql(holder);
    let live = if holder == Holder::VersionLine { " AND t.action != 'deleted'" } else { "" };
    let sql = format!(
        "SELECT t.app_id, {version_col}, t.path, t.sha256, t.size_bytes, t.storage_location, t.r2_key, a.storage_mode AS app_mode, t.content
         FROM {table} t JOIN apps a ON a.id = t.app_id
         WHERE (?1 IS NULL OR t.app_id = ?1){live} AND {}
         ORDER BY t.app_id, t.path LIMIT ?5",
        needs_move_sql("?2", "?3", "?4", "?6")
    );
    meta.all(stmt!(sql, app, p.mode, p.inline_max, p.hybrid_max, limit, u32::from(p.rollout_bp))).await
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct CountBytes {
    pub files: u64,
    pub bytes: u64,
}

/// How many rows (and bytes) are still waiting to move, across both tables.
pub async fn migration_pending(meta: &MetaStore, app: Option<&str>, p: MovePolicy<'_>) -> Result<CountBytes> {
    let one = |table: &str, live: &str| {
        format!(
            "SELECT COUNT(*) AS files, COALESCE(SUM(t.size_bytes), 0) AS bytes FROM {table} t JOIN apps a ON a.id = t.app_id
             WHERE (?1 IS NULL OR t.app_id = ?1){live} AND {}",
            needs_move_sql("?2", "?3", "?4", "?5")
        )
    };
    let sql = format!(
        "SELECT SUM(files) AS files, SUM(bytes) AS bytes FROM ({} UNION ALL {})",
        one("app_files", ""),
        one("app_version_files", " AND t.action != 'deleted'")
    );
    Ok(meta.first(stmt!(sql, app, p.mode, p.inline_max, p.hybrid_max, u32::from(p.rollout_bp))).await?.unwrap_or_default())
}

fn key_binds(s: Statement, holder: Holder, row: &MovableRow) -> Statement {
    let s = s.bind(row.app_id.as_str()).bind(row.path.as_str());
    match holder {
        Holder::File => s.bind(Value::Null),
        Holder::VersionLine => s.bind(row.version_number),
    }
}

/// `database` → `hybrid`: records the R2 copy beside the inline one, if the row still holds
/// the same content.
pub fn mark_hybrid(holder: Holder, row: &MovableRow, r2_key: &str) -> Statement {
    let (table, _, key) = holder_sql(holder);
    let key = key.replace("t.", "");
    key_binds(
        Statement::new(format!(
            "UPDATE {table} SET storage_location = 'hybrid', r2_key = ?4 WHERE {key} AND sha256 = ?5 AND storage_location = 'database'"
        )),
        holder,
        row,
    )
    .bind(r2_key)
    .bind(row.sha256.as_str())
}

/// `hybrid` → `r2`: drops the inline copy once the caller has checked the R2 copy.
pub fn clear_inline(holder: Holder, row: &MovableRow, r2_key: &str) -> Statement {
    let (table, _, key) = holder_sql(holder);
    let key = key.replace("t.", "");
    key_binds(
        Statement::new(format!(
            "UPDATE {table} SET storage_location = 'r2', content = NULL WHERE {key} AND sha256 = ?5 AND storage_location = 'hybrid' AND r2_key = ?4"
        )),
        holder,
        row,
    )
    .bind(r2_key)
    .bind(row.sha256.as_str())
}

/// Up to `limit` rows with an R2 reference that rollback can bring back inline.
pub async fn rollback_candidates(meta: &MetaStore, holder: Holder, app: Option<&str>, limit: u32) -> Result<Vec<MovableRow>> {
    let (table, version_col, _) = holder_sql(holder);
    let sql = format!(
        "SELECT t.app_id, {version_col}, t.path, t.sha256, t.size_bytes, t.storage_location, t.r2_key, a.storage_mode AS app_mode, t.content
         FROM {table} t JOIN apps a ON a.id = t.app_id
         WHERE (?1 IS NULL OR t.app_id = ?1) AND t.r2_key IS NOT NULL AND t.size_bytes <= ?2
         ORDER BY t.app_id, t.path LIMIT ?3"
    );
    meta.all(stmt!(sql, app, super::tier::D1_INLINE_HARD_MAX, limit)).await
}

pub async fn rollback_pending(meta: &MetaStore, app: Option<&str>) -> Result<u64> {
    let sql = "SELECT (SELECT COUNT(*) FROM app_files WHERE (?1 IS NULL OR app_id = ?1) AND r2_key IS NOT NULL AND size_bytes <= ?2)
                    + (SELECT COUNT(*) FROM app_version_files WHERE (?1 IS NULL OR app_id = ?1) AND r2_key IS NOT NULL AND size_bytes <= ?2) AS files, 0 AS bytes";
    Ok(meta.first::<CountBytes>(stmt!(sql, app, super::tier::D1_INLINE_HARD_MAX)).await?.unwrap_or_default().files)
}

/// Back to `database`: the content inline again and the R2 reference dropped.
pub fn make_inline(holder: Holder, row: &MovableRow, content: Vec<u8>) -> Statement {
    let (table, _, key) = holder_sql(holder);
    let key = key.replace("t.", "");
    key_binds(
        Statement::new(format!(
            "UPDATE {table} SET storage_location = 'database', r2_key = NULL, content = ?4 WHERE {key} AND sha256 = ?5 AND r2_key = ?6"
        )),
        holder,
        row,
    )
    .bind(Value::Blob(content))
    .bind(row.sha256.as_str())
    .bind(row.r2_key.clone())
}

// ---------------------------------------------------------------------------------------------
// GC and report

#[derive(Debug, Clone, Deserialize)]
pub struct TierRow {
    pub location: String,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BlobTotals {
    pub objects: u64,
    pub bytes: u64,
    pub stored: u64,
    pub snapshots: u64,
    pub snapshot_bytes: u64,
}

/// What the storage report is built from.
pub struct ReportRows {
    pub files: Vec<TierRow>,
    pub lines: Vec<TierRow>,
    pub blobs: BlobTotals,
}

pub async fn report_rows(meta: &MetaStore, app: Option<&str>) -> Result<ReportRows> {
    let files = meta
        .all(stmt!(
            "SELECT storage_location AS location, COUNT(*) AS files, COALESCE(SUM(size_bytes), 0) AS bytes
             FROM app_files WHERE (?1 IS NULL OR app_id = ?1) GROUP BY storage_location",
            app
        ))
        .await?;
    let lines = meta
        .all(stmt!(
            "SELECT storage_location AS location, COUNT(*) AS files, COALESCE(SUM(size_bytes), 0) AS bytes
             FROM app_version_files WHERE (?1 IS NULL OR app_id = ?1) AND action != 'deleted' GROUP BY storage_location",
            app
        ))
        .await?;
    let blobs = meta
        .first(stmt!(
            "SELECT (SELECT COUNT(*) FROM blobs WHERE ?1 IS NULL OR app_id = ?1) AS objects,
                    (SELECT COALESCE(SUM(size_bytes), 0) FROM blobs WHERE ?1 IS NULL OR app_id = ?1) AS bytes,
                    (SELECT COALESCE(SUM(stored_bytes), 0) FROM blobs WHERE ?1 IS NULL OR app_id = ?1) AS stored,
                    (SELECT COUNT(*) FROM app_versions WHERE snapshot_key IS NOT NULL AND (?1 IS NULL OR app_id = ?1)) AS snapshots,
                    (SELECT COALESCE(SUM(manifest_bytes), 0) FROM app_versions WHERE snapshot_key IS NOT NULL AND (?1 IS NULL OR app_id = ?1)) AS snapshot_bytes",
            app
        ))
        .await?
        .unwrap_or_default();
    Ok(ReportRows { files, lines, blobs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(path: &str, action: Action) -> Planned {
        Planned { path: path.to_string(), action, sha256: "0".repeat(64), size_bytes: 1 }
    }

    #[test]
    fn version_statements_stay_under_the_parameter_limit() {
        let lines: Vec<_> = (0..200).map(|i| line(&format!("f{i:03}"), Action::Created)).chain([line("gone", Action::Deleted)]).collect();
        let v = NewVersion {
            version_number: 2,
            changelog: String::new(),
            environment: "dev".into(),
            snapshot_key: None,
            manifest: Some("{}".into()),
            manifest_sha256: "0".repeat(64),
            manifest_bytes: 2,
            file_count: 200,
            total_bytes: 200,
            restored_from: None,
        };
        let stmts = record_version("app", 7, &v, &lines, LineSource::CurrentFiles, 0);
        assert!(stmts.iter().all(|s| s.params.len() <= MAX_PARAMS));
        // version row + ceil(200 / 48) copy chunks + 1 deleted line + revision bump
        assert_eq!(stmts.len(), 1 + 5 + 1 + 1);
        let copied: usize = stmts[1..6].iter().map(|s| (s.params.len() - 4) / 2).sum();
        assert_eq!(copied, 200);
        assert!(stmts.last().unwrap().sql.starts_with("UPDATE apps SET revision"));
    }

    #[test]
    fn conditional_writes_bind_the_expected_hash_last() {
        let f = NewFile {
            path: "a".into(),
            file_type: "text",
            content_type: "text/plain",
            size_bytes: 1,
            sha256: "1".repeat(64),
            is_entry_point: false,
            location: Location::Database,
            r2_key: None,
            content: Some(b"a".to_vec()),
        };
        let s = write_file("app", &f, &WriteCondition::IfMatch("2".repeat(64)), 5);
        assert!(s.sql.starts_with("UPDATE app_files"));
        assert_eq!(s.params.len(), 12);
        assert_eq!(s.params[11], Value::Text("2".repeat(64)));
        assert_eq!(s.params[9], Value::Blob(b"a".to_vec()));
        assert!(write_file("app", &f, &WriteCondition::IfAbsent, 5).sql.contains("DO NOTHING"));
    }
}
