//! File and version operations over R2 and D1.
//!
//! The write order is the invariant: R2 first (create-only, content-addressed, so a retry or a
//! concurrent writer of the same bytes is harmless), then one atomic D1 batch through the
//! storage core (`store::commit`), which fences the batch against the GC. A D1 row therefore
//! never points at an object that was not written; an object whose D1 write never happened is
//! garbage the GC condemns after its grace period.

use std::collections::HashMap;

use serde::Serialize;

use super::content::{self, FileType};
use super::lifecycle::{check_quota, Quota, Usage};
use super::lifecycle_repo;
use super::manifest::{self, Action, FileState, Manifest, ManifestFile};
use super::path::{AppId, FilePath};
use super::repo::{self, AppRow, FileRecord, LineSource, NewBlob, NewFile, NewVersion, WriteCondition};
use super::rollout::{self, AppMode, ReadSource, Rollout};
use super::tier::{Location, Policy};
use super::{blob_key, cache, diff, snapshot_key};
use crate::config::{Config, StorageMode};
use crate::error::{Error, Result};
use crate::http::App;
use crate::store::commit::write_and_commit;
use crate::store::meta::{Rows, RunInfo};
use crate::store::object::{self, NewObject, Read};
use crate::store::{BlobStore, Kind, MetaStore, Statement, Store};

/// Up to this many R2 copies, a restore reads and hashes each; above it, one listing checks
/// them all.
const READ_TO_VERIFY: usize = 4;

pub struct Files {
    pub blobs: BlobStore,
    pub meta: MetaStore,
    pub store: Store,
    pub config: Config,
}

/// What a write to an app needs to know, read in one round trip: the app (if it exists), the
/// rollout in force (variables with the D1 settings over them), the app's effective mode and
/// policy, and its quotas (its own over the defaults).
#[derive(Debug, Clone)]
pub struct AppContext {
    pub row: Option<AppRow>,
    pub rollout: Rollout,
    pub mode: AppMode,
    pub policy: Policy,
    pub quota: Quota,
}

impl AppContext {
    /// Where new content of `size` bytes goes: the app's policy, or inline only under the
    /// rollback switch (where it fits a D1 row).
    pub fn place(&self, size: usize) -> Location {
        self.rollout.write_location(&self.policy, size)
    }
}

/// The rollout from the variables with the settings rows over them; a bad row (only a hand
/// edit can make one) is logged and ignored, never an outage.
pub fn effective_rollout(config: &Config, settings: &repo::SettingsRow) -> Rollout {
    match config.rollout.with_settings(|name| settings.get(name)) {
        Ok(r) => r,
        Err(why) => {
            worker::console_error!("r2d1 rollout: storage_settings has a bad value ({why}); using the variables");
            config.rollout
        }
    }
}

/// The app's mode and policy under `rollout`.
pub fn app_mode(config: &Config, rollout: &Rollout, app_id: &str, app_override: Option<&str>) -> (AppMode, Policy) {
    let mode = rollout.app_mode(config.storage_mode, app_id, app_override.and_then(StorageMode::parse));
    (mode, Policy { mode: mode.mode, inline_max: config.inline_max_bytes, hybrid_max: config.hybrid_max_bytes })
}

fn infos(rows: &[Rows]) -> Vec<RunInfo> {
    rows.iter().map(Rows::info).collect()
}

/// Where served bytes came from (the `X-R2D1-Source` header): lets an operator, and the tests,
/// see a fallback happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Database,
    R2,
    Cache,
    /// The R2 copy was missing or failed its hash; the D1 copy was served.
    DatabaseFallback,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Database => "database",
            Source::R2 => "r2",
            Source::Cache => "cache",
            Source::DatabaseFallback => "database-fallback",
        }
    }
}

/// A file's metadata as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub path: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub storage_location: String,
    pub content_type: String,
    pub file_type: String,
    pub is_entry_point: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl From<&FileRecord> for FileView {
    fn from(r: &FileRecord) -> Self {
        FileView {
            path: r.path.clone(),
            size_bytes: r.size_bytes,
            sha256: r.sha256.clone(),
            storage_location: r.storage_location.clone().unwrap_or_default(),
            content_type: r.content_type.clone(),
            file_type: r.file_type.clone(),
            is_entry_point: r.is_entry_point != 0,
            created_at: r.created_at.map(manifest::iso8601),
            updated_at: r.updated_at.map(manifest::iso8601),
        }
    }
}

/// Bytes prepared for a write: the row to write and, if the location needs an R2 copy, the
/// object to put before it (with its `blobs` row).
pub struct Prepared {
    pub file: NewFile,
    pub blob: Option<NewBlob>,
    pub object: Option<NewObject>,
}

/// A content object for `bytes` at its content address, compressed when that pays. (The hash
/// is computed once, here: a 1 MB file is hashed once per write.)
pub fn content_object(app_id: &str, bytes: &[u8], content_type: &str) -> (NewObject, NewBlob) {
    let mut object = NewObject::compressed(Kind::AppBlob, String::new(), bytes, content_type);
    object.key = blob_key(app_id, &object.sha256);
    let blob = NewBlob {
        r2_key: object.key.clone(),
        app_id: app_id.to_string(),
        sha256: object.sha256.clone(),
        size_bytes: bytes.len() as u64,
        stored_bytes: object.stored.len() as u64,
        content_encoding: object.encoding.as_header(),
    };
    (object, blob)
}

impl Files {
    pub fn new(app: &App) -> Result<Self> {
        Ok(Files { blobs: app.blobs()?, meta: app.meta()?, store: app.store()?, config: app.config.clone() })
    }

    /// The app, the rollout and the app's policy and quotas (see [`AppContext`]).
    pub async fn context(&self, app_id: &AppId) -> Result<AppContext> {
        let read = repo::app_and_settings(&self.meta, app_id.as_str()).await?;
        let rollout = effective_rollout(&self.config, &read.settings);
        let (mode, policy) = app_mode(&self.config, &rollout, app_id.as_str(), read.app.as_ref().and_then(|a| a.storage_mode.as_deref()));
        let quota = read.app.as_ref().map(AppRow::quota).unwrap_or_default().or(self.config.default_quota);
        Ok(AppContext { row: read.app, rollout, mode, policy, quota })
    }

    /// Whether the rollback switch is on, as the read of `rec` saw the settings.
    fn rollback_for(&self, rec: &FileRecord) -> bool {
        rec.setting_rollback.as_deref().and_then(rollout::parse_flag).unwrap_or(self.config.rollout.rollback)
    }

    /// Before a change that may grow the app: its usage now, the check of `after(usage)`
    /// against its quotas (the refusal names the quota), and the fence statements that end the
    /// change's batch. Nothing to read or fence when the app has no quota.
    async fn quota_guard(&self, ctx: &AppContext, app_id: &AppId, after: impl Fn(Usage) -> Usage) -> Result<QuotaGuard> {
        if ctx.quota == Quota::default() {
            return Ok(QuotaGuard { quota: ctx.quota, before: Usage::default(), fence: Vec::new() });
        }
        let before = lifecycle_repo::usage(&self.meta, app_id.as_str()).await?;
        check_quota(&ctx.quota, before, after(before)).map_err(|q| q.into_error())?;
        Ok(QuotaGuard { quota: ctx.quota, before, fence: lifecycle_repo::quota_fence(app_id.as_str(), &ctx.quota, &before) })
    }

    /// A fence that fired (a concurrent change got there first) as the full refusal, with the
    /// limit and the usage read again.
    async fn quota_refusal(&self, e: Error, guard: &QuotaGuard, app_id: &AppId, after: impl Fn(Usage) -> Usage) -> Error {
        let Error::QuotaExceeded { quota, .. } = &e else { return e };
        let now = lifecycle_repo::usage(&self.meta, app_id.as_str()).await.unwrap_or(guard.before);
        match check_quota(&guard.quota, now, after(now)) {
            Err(q) => q.into_error(),
            Ok(()) => Error::Conflict(format!("a concurrent change took the app to its {quota} quota; retry")),
        }
    }

    /// Puts `prepared`'s objects and commits `stmts` through the storage core.
    async fn commit(&self, prepared: &[&Prepared], existing: &[String], stmts: Vec<Statement>) -> Result<Vec<RunInfo>> {
        let objects: Vec<&NewObject> = prepared.iter().filter_map(|p| p.object.as_ref()).collect();
        let (_, rows) = write_and_commit(&self.store, &objects, existing, "files.after_put", stmts).await?;
        Ok(infos(&rows))
    }

    /// Hashes and places `bytes` (`place` says where content of a size goes); the object to put
    /// comes with it where the location needs one.
    pub fn prepare(
        &self,
        app_id: &AppId,
        path: &FilePath,
        bytes: Vec<u8>,
        entry_point: bool,
        place: impl Fn(usize) -> Location,
    ) -> Prepared {
        let file_type = FileType::of(&bytes);
        let content_type = content::content_type_for(path, file_type);
        let location = place(bytes.len());
        let (object, blob) = match location.has_r2() {
            true => {
                let (o, b) = content_object(app_id.as_str(), &bytes, content_type);
                (Some(o), Some(b))
            }
            false => (None, None),
        };
        let sha256 = match &object {
            Some(o) => o.sha256.clone(),
            None => content::sha256_hex(&bytes),
        };
        let file = NewFile {
            path: path.as_str().to_string(),
            file_type: file_type.as_str(),
            content_type,
            size_bytes: bytes.len() as u64,
            sha256,
            is_entry_point: entry_point,
            location,
            r2_key: blob.as_ref().map(|b| b.r2_key.clone()),
            content: location.has_inline().then_some(bytes),
        };
        Prepared { file, blob, object }
    }

    /// Writes one file. Returns its metadata and whether it was created.
    pub async fn put_file(
        &self,
        app: &App,
        app_id: &AppId,
        path: &FilePath,
        bytes: Vec<u8>,
        condition: WriteCondition,
        entry_point: bool,
    ) -> Result<(FileView, bool)> {
        let existing = repo::file(&self.meta, app_id.as_str(), path.as_str()).await?;
        match (&condition, &existing) {
            (WriteCondition::IfMatch(want), Some(have)) if &have.sha256 != want => {
                return Err(precondition(path, Some(&have.sha256)));
            }
            (WriteCondition::IfMatch(_), None) => return Err(precondition(path, None)),
            (WriteCondition::IfAbsent, Some(have)) => return Err(precondition(path, Some(&have.sha256))),
            _ => {}
        }
        let ctx = self.context(app_id).await?;
        let prepared = self.prepare(app_id, path, bytes, entry_point, |size| ctx.place(size));
        let (old_size, new_size) = (existing.as_ref().map(|e| e.size_bytes), prepared.file.size_bytes);
        let after = |u: Usage| Usage {
            bytes: (u.bytes + new_size).saturating_sub(old_size.unwrap_or(0)),
            files: u.files + u64::from(old_size.is_none()),
            ..u
        };
        let guard = self.quota_guard(&ctx, app_id, after).await?;
        let mut stmts = vec![repo::touch_app(app_id.as_str(), app.now_ms)];
        if let Some(b) = &prepared.blob {
            stmts.push(repo::record_blob(b, app.now_ms));
        }
        stmts.push(repo::log_write(app_id.as_str(), path.as_str(), &prepared.file.sha256, &condition, app.now_ms));
        let write_at = stmts.len();
        stmts.push(repo::write_file(app_id.as_str(), &prepared.file, &condition, app.now_ms));
        stmts.extend(guard.fence.iter().cloned());
        let results = match self.commit(&[&prepared], &[], stmts).await {
            Ok(r) => r,
            Err(e) => return Err(self.quota_refusal(e, &guard, app_id, after).await),
        };
        if results.get(write_at).map(|r| r.changes).unwrap_or(0) == 0 {
            // Someone else changed the file between our read and our write.
            let now = repo::file(&self.meta, app_id.as_str(), path.as_str()).await?;
            return Err(precondition(path, now.as_ref().map(|r| r.sha256.as_str())));
        }
        let f = &prepared.file;
        let view = FileView {
            path: f.path.clone(),
            size_bytes: f.size_bytes,
            sha256: f.sha256.clone(),
            storage_location: f.location.as_str().to_string(),
            content_type: f.content_type.to_string(),
            file_type: f.file_type.to_string(),
            is_entry_point: f.is_entry_point,
            created_at: Some(manifest::iso8601(existing.as_ref().and_then(|e| e.created_at).unwrap_or(app.now_ms))),
            updated_at: Some(manifest::iso8601(app.now_ms)),
        };
        Ok((view, existing.is_none()))
    }

    /// Writes many files and deletes others in one D1 transaction.
    pub async fn put_many(
        &self,
        app: &App,
        app_id: &AppId,
        files: Vec<(FilePath, Vec<u8>, bool)>,
        deletes: Vec<FilePath>,
    ) -> Result<Vec<FileView>> {
        let ctx = self.context(app_id).await?;
        let prepared: Vec<Prepared> =
            files.into_iter().map(|(path, bytes, entry)| self.prepare(app_id, &path, bytes, entry, |size| ctx.place(size))).collect();
        // What the batch does to the app's size: only read when a quota needs it.
        let (mut added_bytes, mut removed_bytes, mut new_files, mut gone_files) = (0u64, 0u64, 0u64, 0u64);
        if ctx.quota != Quota::default() {
            let paths: Vec<&str> = prepared.iter().map(|p| p.file.path.as_str()).chain(deletes.iter().map(FilePath::as_str)).collect();
            let sizes: HashMap<String, u64> = repo::file_sizes(&self.meta, app_id.as_str(), &paths).await?;
            for p in &prepared {
                added_bytes += p.file.size_bytes;
                match sizes.get(&p.file.path) {
                    Some(old) => removed_bytes += old,
                    None => new_files += 1,
                }
            }
            for d in &deletes {
                if let Some(old) = sizes.get(d.as_str()) {
                    removed_bytes += old;
                    gone_files += 1;
                }
            }
        }
        let after = |u: Usage| Usage {
            bytes: (u.bytes + added_bytes).saturating_sub(removed_bytes),
            files: (u.files + new_files).saturating_sub(gone_files),
            ..u
        };
        let guard = self.quota_guard(&ctx, app_id, after).await?;
        let mut stmts = vec![repo::touch_app(app_id.as_str(), app.now_ms)];
        for p in &prepared {
            if let Some(b) = &p.blob {
                stmts.push(repo::record_blob(b, app.now_ms));
            }
            stmts.push(repo::log_write(app_id.as_str(), &p.file.path, &p.file.sha256, &WriteCondition::Any, app.now_ms));
            stmts.push(repo::write_file(app_id.as_str(), &p.file, &WriteCondition::Any, app.now_ms));
        }
        for d in &deletes {
            stmts.push(repo::log_delete(app_id.as_str(), d.as_str(), None, app.now_ms));
            stmts.push(repo::delete_file(app_id.as_str(), d.as_str(), None));
        }
        stmts.extend(guard.fence.iter().cloned());
        if let Err(e) = self.commit(&prepared.iter().collect::<Vec<_>>(), &[], stmts).await {
            return Err(self.quota_refusal(e, &guard, app_id, after).await);
        }
        Ok(prepared
            .iter()
            .map(|p| FileView {
                path: p.file.path.clone(),
                size_bytes: p.file.size_bytes,
                sha256: p.file.sha256.clone(),
                storage_location: p.file.location.as_str().to_string(),
                content_type: p.file.content_type.to_string(),
                file_type: p.file.file_type.to_string(),
                is_entry_point: p.file.is_entry_point,
                created_at: None,
                updated_at: Some(manifest::iso8601(app.now_ms)),
            })
            .collect())
    }

    pub async fn delete_file(&self, app: &App, app_id: &AppId, path: &FilePath, if_match: Option<String>) -> Result<()> {
        let existing = repo::file(&self.meta, app_id.as_str(), path.as_str()).await?.ok_or_else(|| not_found(path))?;
        if let Some(want) = &if_match {
            if &existing.sha256 != want {
                return Err(precondition(path, Some(&existing.sha256)));
            }
        }
        let results = self
            .commit(
                &[],
                &[],
                vec![
                    repo::touch_app(app_id.as_str(), app.now_ms),
                    repo::log_delete(app_id.as_str(), path.as_str(), if_match.as_deref(), app.now_ms),
                    repo::delete_file(app_id.as_str(), path.as_str(), if_match.as_deref()),
                ],
            )
            .await?;
        if results.last().map(|r| r.changes).unwrap_or(0) == 0 {
            return Err(precondition(path, None));
        }
        Ok(())
    }

    /// The file's bytes, verified against its hash. Hybrid content is read from R2 first and
    /// falls back to the D1 copy when R2's is missing or damaged; R2-only content that fails
    /// the check is an integrity error and never reaches the client.
    ///
    /// Under the rollback switch a hybrid file is read from D1 first (R2 only if that copy is
    /// bad), so it stays readable, without an R2 call, even with its R2 object gone.
    pub async fn load(&self, what: &str, rec: &FileRecord) -> Result<(Vec<u8>, Source)> {
        let location = rec.location().ok_or_else(|| Error::NotFound(format!("{what} was deleted in this version")))?;
        let inline_ok = |rec: &FileRecord| rec.content.as_ref().filter(|c| content::sha256_hex(c) == rec.sha256).cloned();
        let order = Rollout { r2_basis_points: 0, rollback: self.rollback_for(rec) }.read_order(location);
        let mut problems = Vec::new();
        for (i, source) in order.iter().enumerate() {
            match source {
                ReadSource::Database => match inline_ok(rec) {
                    Some(bytes) => return Ok((bytes, if i == 0 { Source::Database } else { Source::DatabaseFallback })),
                    None => problems.push(format!("inline content does not hash to {}", rec.sha256)),
                },
                ReadSource::R2 => {
                    if let Some(bytes) = cache::get(self.blobs.request(), &rec.sha256).await {
                        if content::sha256_hex(&bytes) == rec.sha256 {
                            return Ok((bytes, Source::Cache));
                        }
                    }
                    let Some(key) = rec.r2_key.as_deref() else {
                        problems.push(format!("{location:?} row without r2_key"));
                        continue;
                    };
                    let problem = match self.read_verified(key, &rec.sha256, rec.size_bytes).await? {
                        Read::Ok(bytes) => {
                            cache::put(self.blobs.request(), &rec.sha256, &bytes).await;
                            return Ok((bytes, Source::R2));
                        }
                        Read::Missing => "is missing".to_string(),
                        Read::Corrupt(why) => why,
                    };
                    worker::console_error!("r2d1 integrity: {what}: R2 object {key} {problem}");
                    problems.push(format!("R2 object {key} {problem}"));
                }
            }
        }
        Err(Error::Integrity(format!("{what}: {}; no good copy is left", problems.join("; "))))
    }

    /// The verified read of the object layer, bounded by the file's size.
    pub async fn read_verified(&self, key: &str, sha256: &str, size: u64) -> Result<Read> {
        object::read(&self.blobs, key, sha256, size as usize).await
    }

    pub async fn file(&self, app_id: &AppId, path: &FilePath) -> Result<FileRecord> {
        repo::file(&self.meta, app_id.as_str(), path.as_str()).await?.ok_or_else(|| not_found(path))
    }

    // -----------------------------------------------------------------------------------------
    // Versions

    /// Snapshots the current files as a new version.
    pub async fn create_version(&self, app: &App, app_id: &AppId, changelog: String, environment: String) -> Result<Manifest> {
        let ctx = self.context(app_id).await?;
        let app_row = ctx.row.clone().ok_or_else(|| Error::NotFound(format!("app {app_id} has no files")))?;
        let after = |u: Usage| Usage { versions: u.versions + 1, ..u };
        let guard = self.quota_guard(&ctx, app_id, after).await?;
        let current = repo::list_files(&self.meta, app_id.as_str()).await?;
        let previous = self.live_lines_of_latest(app_id).await?;
        let planned = manifest::plan_version(&states(&previous.1), &states(&current), false);
        let locations: HashMap<&str, &str> =
            current.iter().map(|f| (f.path.as_str(), f.storage_location.as_deref().unwrap_or(""))).collect();
        // The counter, not the newest version + 1: a deleted version's number is never reused.
        let next = next_version_number(app_id, app_row.next_version, previous.0)?;
        let recorded = self
            .record(
                app,
                app_id,
                app_row.revision,
                next,
                changelog,
                environment,
                None,
                &planned,
                &locations,
                vec![],
                LineSource::CurrentFiles,
                &[],
                guard.fence.clone(),
            )
            .await;
        match recorded {
            Err(e) => Err(self.quota_refusal(e, &guard, app_id, after).await),
            ok => ok,
        }
    }

    /// Makes the current files exactly version `v`'s (every byte hash-checked first) and
    /// records that as a new version whose changed files are `restored`.
    pub async fn restore(&self, app: &App, app_id: &AppId, v: i64) -> Result<Manifest> {
        let ctx = self.context(app_id).await?;
        let app_row = ctx.row.clone().ok_or_else(|| no_version(app_id, v))?;
        let version = repo::version(&self.meta, app_id.as_str(), v).await?.ok_or_else(|| no_version(app_id, v))?;
        let after = |u: Usage| Usage { bytes: version.total_bytes, files: version.file_count, versions: u.versions + 1 };
        let guard = self.quota_guard(&ctx, app_id, after).await?;
        let target = repo::version_files(&self.meta, app_id.as_str(), v, true).await?;
        // Check that everything we are about to make current is intact: inline copies byte
        // by byte (paged), R2 copies by the SHA-256 their objects carry (see `verify_in_r2`).
        let mut offset = 0;
        let mut in_r2 = Vec::new();
        loop {
            let page = repo::version_files_with_content(&self.meta, app_id.as_str(), v, offset, 50).await?;
            let full = page.len() == 50;
            for rec in page {
                match rec.location() {
                    Some(Location::Hybrid) | Some(Location::R2) => in_r2.push(rec),
                    _ => {
                        self.load(&format!("version {v} file {}", rec.path), &rec).await?;
                    }
                }
            }
            if !full {
                break;
            }
            offset += 50;
        }
        self.verify_in_r2(app_id, v, in_r2).await?;
        let previous = self.live_lines_of_latest(app_id).await?;
        let planned = manifest::plan_version(&states(&previous.1), &states(&target), true);
        let locations: HashMap<&str, &str> =
            target.iter().map(|f| (f.path.as_str(), f.storage_location.as_deref().unwrap_or(""))).collect();
        let next = next_version_number(app_id, app_row.next_version, previous.0)?;
        let mut restore = repo::log_restore(app_id.as_str(), app_row.revision, v, app.now_ms);
        restore.extend(repo::restore_files(app_id.as_str(), app_row.revision, v, app.now_ms));
        // The restored rows reference the version's objects: the batch is fenced for them too.
        let referenced: Vec<String> = target.iter().filter_map(|f| f.r2_key.clone()).collect();
        let recorded = self
            .record(
                app,
                app_id,
                app_row.revision,
                next,
                format!("restore of version {v}"),
                "restore".into(),
                Some(v),
                &planned,
                &locations,
                restore,
                LineSource::Version(v),
                &referenced,
                guard.fence.clone(),
            )
            .await;
        match recorded {
            Err(e) => Err(self.quota_refusal(e, &guard, app_id, after).await),
            ok => ok,
        }
    }

    /// Checks that the R2 copies of a version's files are there with the right hash. A few are
    /// read and hashed; more are checked by listing the app's objects, whose metadata carries
    /// the SHA-256 R2 verified the upload against: one call per 1,000 objects instead of up
    /// to three (cache, R2, cache) per file, so an 85-file app fits in a Free-plan request.
    /// An object the listing cannot vouch for (missing, no hash, another hash) goes through
    /// the verified read, which falls back to a hybrid file's D1 copy or refuses with
    /// `integrity_error`.
    async fn verify_in_r2(&self, app_id: &AppId, v: i64, records: Vec<FileRecord>) -> Result<()> {
        let what = |rec: &FileRecord| format!("version {v} file {}", rec.path);
        if records.len() <= READ_TO_VERIFY {
            for rec in &records {
                self.load(&what(rec), rec).await?;
            }
            return Ok(());
        }
        let mut wanted: HashMap<&str, &FileRecord> = records.iter().filter_map(|r| r.r2_key.as_deref().map(|k| (k, r))).collect();
        let mut doubtful: Vec<&FileRecord> = records.iter().filter(|r| r.r2_key.is_none()).collect();
        let prefix = format!("apps/{app_id}/blobs/");
        let mut cursor = None;
        while !wanted.is_empty() {
            let page = self.blobs.list_page(&prefix, cursor, 1000).await?;
            for o in &page.objects {
                if let Some(rec) = wanted.remove(o.key.as_str()) {
                    if object::sha_of(o).as_deref() != Some(rec.sha256.as_str()) {
                        doubtful.push(rec);
                    }
                }
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        doubtful.extend(wanted.into_values());
        for rec in doubtful {
            self.load(&what(rec), rec).await?;
        }
        Ok(())
    }

    async fn live_lines_of_latest(&self, app_id: &AppId) -> Result<(Option<i64>, Vec<FileRecord>)> {
        let latest = repo::latest_version(&self.meta, app_id.as_str()).await?;
        let lines = match latest {
            Some(n) => repo::version_files(&self.meta, app_id.as_str(), n, true).await?,
            None => Vec::new(),
        };
        Ok((latest, lines))
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        app: &App,
        app_id: &AppId,
        revision: i64,
        number: i64,
        changelog: String,
        environment: String,
        restored_from: Option<i64>,
        planned: &[manifest::Planned],
        locations: &HashMap<&str, &str>,
        before: Vec<Statement>,
        source: LineSource,
        referenced: &[String],
        tail: Vec<Statement>,
    ) -> Result<Manifest> {
        let doc = Manifest::build(
            manifest::VersionHeader {
                app: app_id.to_string(),
                version_number: number,
                changelog: changelog.clone(),
                environment: environment.clone(),
                created_ms: app.now_ms,
                restored_from,
            },
            planned,
            |path| Some(locations.get(path).unwrap_or(&"").to_string()),
        );
        let (file_count, total_bytes) = (doc.file_count, doc.total_bytes);
        let bytes = doc.to_bytes();
        let manifest_sha256 = content::sha256_hex(&bytes);
        let (snapshot, inline) = if Manifest::fits_inline(&bytes) {
            (None, Some(String::from_utf8(bytes.clone()).expect("JSON is UTF-8")))
        } else {
            (Some(snapshot_key(app_id, number, &manifest_sha256)), None)
        };
        // Create-only under a key named by the manifest's hash: an object already there holds
        // these very bytes. A reader checks `manifest_sha256` all the same and rebuilds from the
        // version's rows if it ever differs.
        let snapshot_object = snapshot.as_ref().map(|key| NewObject::plain(Kind::Snapshot, key.clone(), bytes.clone(), "application/json"));
        let row = NewVersion {
            version_number: number,
            changelog,
            environment,
            snapshot_key: snapshot,
            manifest: inline,
            manifest_sha256,
            manifest_bytes: bytes.len() as u64,
            file_count,
            total_bytes,
            restored_from,
        };
        let skip = before.len();
        let mut stmts = before;
        stmts.extend(repo::record_version(app_id.as_str(), revision, &row, planned, source, app.now_ms));
        stmts.extend(tail);
        let objects: Vec<&NewObject> = snapshot_object.iter().collect();
        let results = match write_and_commit(&self.store, &objects, referenced, "files.after_put", stmts).await {
            Ok((_, rows)) => infos(&rows),
            Err(Error::Conflict(_)) => return Err(Error::Conflict("another version was created at the same time; retry".into())),
            Err(e) => return Err(e),
        };
        if results.get(skip).map(|r| r.changes).unwrap_or(0) != 1 {
            return Err(Error::Conflict("the app's files changed while the version was being recorded; retry".into()));
        }
        Ok(doc)
    }

    /// A version's manifest: the inline copy or the R2 object, checked against its hash; if
    /// either is damaged it is rebuilt from the version's rows, which are the source of truth.
    pub async fn manifest(&self, app_id: &AppId, v: i64) -> Result<(Manifest, &'static str)> {
        let row = repo::version(&self.meta, app_id.as_str(), v).await?.ok_or_else(|| no_version(app_id, v))?;
        let stored: Option<Vec<u8>> = match (&row.manifest, &row.snapshot_key) {
            (Some(text), _) => Some(text.as_bytes().to_vec()),
            (None, Some(key)) => match object::read(&self.blobs, key, &row.manifest_sha256, 64 * 1024 * 1024).await? {
                Read::Ok(bytes) => Some(bytes),
                _ => None,
            },
            _ => None,
        };
        if let Some(bytes) = stored.filter(|b| content::sha256_hex(b) == row.manifest_sha256) {
            if let Ok(m) = Manifest::from_bytes(&bytes) {
                return Ok((m, if row.snapshot_key.is_some() { "r2" } else { "inline" }));
            }
        }
        worker::console_error!("r2d1 integrity: manifest of {app_id} v{v} is missing or damaged; rebuilt from D1");
        let lines = repo::version_files(&self.meta, app_id.as_str(), v, false).await?;
        Ok((
            Manifest {
                app: app_id.to_string(),
                version_number: v,
                changelog: row.changelog,
                environment: row.environment,
                created_at: manifest::iso8601(row.created_at),
                restored_from: row.restored_from,
                file_count: row.file_count,
                total_bytes: row.total_bytes,
                files: lines
                    .iter()
                    .map(|l| ManifestFile {
                        path: l.path.clone(),
                        action: l.action().unwrap_or(Action::Unchanged),
                        sha256: l.sha256.clone(),
                        size_bytes: l.size_bytes,
                        storage_location: l.storage_location.clone(),
                    })
                    .collect(),
            },
            "rebuilt",
        ))
    }

    pub async fn version_file(&self, app_id: &AppId, v: i64, path: &FilePath) -> Result<FileRecord> {
        repo::version(&self.meta, app_id.as_str(), v).await?.ok_or_else(|| no_version(app_id, v))?;
        repo::version_file(&self.meta, app_id.as_str(), v, path.as_str())
            .await?
            .filter(|r| r.action() != Some(Action::Deleted))
            .ok_or_else(|| Error::NotFound(format!("{path} is not in version {v}")))
    }

    /// Per-file comparison of two versions with unified diffs for text, within one request's
    /// [`diff::DiffBudget`]: a file over a cap, or past what the request has left, gets a
    /// "too large to diff" marker instead (and costs no read when refused up front).
    pub async fn diff(&self, app_id: &AppId, a: i64, b: i64) -> Result<DiffView> {
        for v in [a, b] {
            repo::version(&self.meta, app_id.as_str(), v).await?.ok_or_else(|| no_version(app_id, v))?;
        }
        let from = repo::version_files(&self.meta, app_id.as_str(), a, true).await?;
        let to = repo::version_files(&self.meta, app_id.as_str(), b, true).await?;
        let by_path = |lines: &[FileRecord]| lines.iter().map(|l| (l.path.clone(), l.clone())).collect::<HashMap<_, _>>();
        let (from_map, to_map) = (by_path(&from), by_path(&to));
        let mut files = Vec::new();
        let mut summary = DiffSummary::default();
        let mut budget = diff::DiffBudget::default();
        for change in diff::compare(&states(&from), &states(&to)) {
            match change.change {
                diff::Change::Added => summary.added += 1,
                diff::Change::Modified => summary.modified += 1,
                diff::Change::Deleted => summary.deleted += 1,
                diff::Change::Unchanged => summary.unchanged += 1,
            }
            let old = from_map.get(&change.path);
            let new = to_map.get(&change.path);
            let texty = |r: Option<&FileRecord>| r.is_none_or(|r| r.file_type == "text");
            let mut too_large = None;
            let mut unified = None;
            if change.change != diff::Change::Unchanged && texty(old) && texty(new) {
                match budget.admit(old.map(|r| r.size_bytes), new.map(|r| r.size_bytes)) {
                    Err(why) => too_large = Some(why),
                    Ok(()) => {
                        let old_text = match old {
                            Some(_) => Some(self.version_text(app_id, a, &change.path).await?),
                            None => None,
                        };
                        let new_text = match new {
                            Some(_) => Some(self.version_text(app_id, b, &change.path).await?),
                            None => None,
                        };
                        match budget.diff(&change.path, old_text.as_deref(), new_text.as_deref()) {
                            diff::TextDiff::Unified(text) => unified = Some(text),
                            diff::TextDiff::TooLarge(why) => too_large = Some(why),
                        }
                    }
                }
            }
            files.push(DiffFile {
                path: change.path,
                change: change.change,
                from_sha256: change.from_sha256,
                to_sha256: change.to_sha256,
                from_size: old.map(|r| r.size_bytes),
                to_size: new.map(|r| r.size_bytes),
                diff: unified,
                too_large: too_large.map(|reason| TooLargeMarker { reason, message: reason.message() }),
            });
        }
        Ok(DiffView { from: a, to: b, summary, files, budget: budget.spent() })
    }

    async fn version_text(&self, app_id: &AppId, v: i64, path: &str) -> Result<String> {
        let rec = repo::version_file(&self.meta, app_id.as_str(), v, path)
            .await?
            .ok_or_else(|| Error::Internal(format!("line {path} of version {v} vanished")))?;
        let (bytes, _) = self.load(&format!("version {v} file {path}"), &rec).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The number a new version gets: the app's counter (never below the newest + 1), refused past
/// [`maintenance::MAX_VERSION_NUMBER`] so the counter stays a number D1 hands back exactly.
fn next_version_number(app_id: &AppId, counter: i64, newest: Option<i64>) -> Result<i64> {
    let next = counter.max(newest.unwrap_or(0) + 1);
    if next > crate::files::maintenance::MAX_VERSION_NUMBER {
        return Err(Error::Conflict(format!(
            "{app_id} has used every version number (the last is {})",
            crate::files::maintenance::MAX_VERSION_NUMBER
        )));
    }
    Ok(next)
}

/// A change's quota check: the quota, the usage it was checked from, and the statements that
/// end the change's batch.
struct QuotaGuard {
    quota: Quota,
    before: Usage,
    fence: Vec<Statement>,
}

#[derive(Debug, Default, Serialize)]
pub struct DiffSummary {
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
    pub unchanged: u64,
}

#[derive(Debug, Serialize)]
pub struct DiffFile {
    pub path: String,
    pub change: diff::Change,
    pub from_sha256: Option<String>,
    pub to_sha256: Option<String>,
    pub from_size: Option<u64>,
    pub to_size: Option<u64>,
    /// Unified diff for text files that changed; `None` for binary, unchanged or too large files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Why a changed text file got no diff ("too large to diff: …").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub too_large: Option<TooLargeMarker>,
}

#[derive(Debug, Serialize)]
pub struct TooLargeMarker {
    pub reason: diff::TooLarge,
    pub message: &'static str,
}

#[derive(Debug, Serialize)]
pub struct DiffView {
    pub from: i64,
    pub to: i64,
    pub summary: DiffSummary,
    pub files: Vec<DiffFile>,
    /// What this request's diffs spent of their budget.
    pub budget: diff::Spent,
}

fn states(records: &[FileRecord]) -> Vec<FileState> {
    records.iter().map(|r| FileState { path: r.path.clone(), sha256: r.sha256.clone(), size_bytes: r.size_bytes }).collect()
}

fn not_found(path: &FilePath) -> Error {
    Error::NotFound(format!("no file {path}"))
}

fn no_version(app_id: &AppId, v: i64) -> Error {
    Error::NotFound(format!("app {app_id} has no version {v}"))
}

fn precondition(path: &FilePath, current: Option<&str>) -> Error {
    match current {
        Some(sha) => Error::PreconditionFailed(format!("{path} is at sha256 {sha}, not the one the condition names")),
        None => Error::PreconditionFailed(format!("{path} does not exist")),
    }
}
