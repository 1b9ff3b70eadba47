//! The old app's R2 objects, migrated on the server (`POST /api/omi/legacy/migrate`), one
//! bounded step per call, resumable from the cursor each call returns.
//!
//! The old app left, for every delivery, a wrapper `{memory, processed, analytics, …}` at
//! `mobil3-mentorships/by-user/{uid}/{yyyy}/{mm}/{id}-{ms}.json` (later pruned) and at
//! `mobil3-mentorships/all/{yyyy-mm-dd}/{uid}-{id}-{ms}.json` (complete). A pass runs four
//! phases:
//!
//! 1. **hashes**: versions stored before migration 0008 get their content hash, so content the
//!    webhook stored already is recognised (the `omi.content_hashes` job does the same);
//! 2. **scan**: every object under `by-user/` and `all/` that is not r2d1's own, not indexed
//!    and not marked by the GC is read and classified with `legacy::read_copy` (attribution
//!    from the wrapper or the name, never a directory) into `omi_legacy_objects`. A dry run
//!    stops here: its report (mentors, memories, versions, duplicates, unreadable files,
//!    conflicts, unmapped mentors) is what the real run will do, and nothing else is written;
//! 3. **store**: each distinct content of each memory, under the uid the mapping resolves
//!    (`omi_legacy_resolved`), is stored once through the same path as the webhook
//!    (`ingest::store_memory`: r2d1's own objects, the index, deduplication by content), in
//!    received order;
//! 4. **cleanup**: the old objects whose content is stored are condemned and swept by the
//!    storage core's GC (never deleted directly): after a pass, the old layout holds only what
//!    could not be migrated (unreadable or unmappable copies, listed in the report).
//!
//! A second pass finds nothing left to do: condemned objects are gone or marked, so it
//! changes nothing.

use futures_util::{stream, StreamExt};
use serde::Serialize;
use serde_json::json;

use super::content::content_sha256;
use super::ingest::{store_memory, Incoming};
use super::keys::{ALL_PREFIX, BY_USER_PREFIX};
use super::legacy::{self, Report};
use super::legacy_repo::{self as repo, LegacyObject, PlannedVersion};
use super::payload::{memory_from_value, parse_json, unwrap_legacy};
use super::repo::{Count, OmiRepo};
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::blob::BlobInfo;
use crate::store::object::{self, Read};
use crate::store::{gc, Kind, Store};

/// The prefixes a scan walks, in cursor order.
pub const SCANNED: [&str; 2] = [BY_USER_PREFIX, ALL_PREFIX];
/// The largest old object read (memories with photos are a few MB).
const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;
/// Objects read, or memories stored, at once.
const CONCURRENCY: usize = 6;

// ---------------------------------------------------------------------------------------------
// The cursor (pure)

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Hashes { after_rowid: i64 },
    Scan { prefix: usize, cursor: Option<String> },
    Store,
    Cleanup,
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Hashes { .. } => "hashes",
            Phase::Scan { .. } => "scan",
            Phase::Store => "store",
            Phase::Cleanup => "cleanup",
        }
    }
}

/// Where a pass is: `v1:{pass}:{phase}[:…]`. The pass is the time it started (ms), which tags
/// the rows it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub pass: i64,
    pub phase: Phase,
}

impl Cursor {
    /// A new pass: a dry run goes straight to the scan.
    pub fn start(pass: i64, dry_run: bool) -> Cursor {
        Cursor { pass, phase: if dry_run { Phase::Scan { prefix: 0, cursor: None } } else { Phase::Hashes { after_rowid: 0 } } }
    }

    pub fn encode(&self) -> String {
        let pass = self.pass;
        match &self.phase {
            Phase::Hashes { after_rowid } => format!("v1:{pass}:hashes:{after_rowid}"),
            Phase::Scan { prefix, cursor } => format!("v1:{pass}:scan:{prefix}:{}", cursor.as_deref().unwrap_or("")),
            Phase::Store => format!("v1:{pass}:store"),
            Phase::Cleanup => format!("v1:{pass}:cleanup"),
        }
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let mut parts = text.splitn(5, ':');
        if parts.next()? != "v1" {
            return None;
        }
        let pass: i64 = parts.next()?.parse().ok()?;
        let phase = match (parts.next()?, parts.next(), parts.next()) {
            ("hashes", Some(n), None) => Phase::Hashes { after_rowid: n.parse().ok()? },
            ("scan", Some(i), Some(c)) => {
                let prefix: usize = i.parse().ok().filter(|i| *i < SCANNED.len())?;
                Phase::Scan { prefix, cursor: (!c.is_empty()).then(|| c.to_string()) }
            }
            ("store", None, None) => Phase::Store,
            ("cleanup", None, None) => Phase::Cleanup,
            _ => return None,
        };
        Some(Cursor { pass, phase })
    }
}

// ---------------------------------------------------------------------------------------------
// Classifying an old object (pure)

/// What the scan records for an old object's bytes.
pub fn classify(info_key: &str, size: u64, bytes: &[u8]) -> LegacyObject {
    let base = LegacyObject { key: info_key.to_string(), size_bytes: size, ..Default::default() };
    let Some(layout) = legacy::layout_of(info_key) else { return LegacyObject { state: "skipped", ..base } };
    let base = LegacyObject { layout: Some(layout.as_str()), ..base };
    match legacy::read_copy(info_key, bytes) {
        Err(e) => LegacyObject { state: "unreadable", reason: Some(e.to_string()), ..base },
        Ok(copy) => {
            let spelling = copy.attribution.uid.clone();
            let class = legacy::uid_class(&spelling);
            LegacyObject {
                state: "copy",
                storable: super::keys::check_key_part(&spelling).is_ok(),
                class_storable: super::keys::check_key_part(&class).is_ok(),
                spelling: Some(spelling),
                uid_class: Some(class),
                memory_id: Some(copy.memory_id.clone()),
                content_sha256: Some(content_sha256(&copy.memory)),
                received_ms: Some(copy.received_ms),
                others: (!copy.attribution.others.is_empty()).then(|| json!(copy.attribution.others).to_string()),
                ..base
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running a step

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// hashes: versions given a content hash; skipped: their object was unreadable or their
    /// content already held by another version.
    pub hashed: usize,
    pub hash_skipped: usize,
    /// scan: objects listed, and what became of them.
    pub scanned: usize,
    pub ours: usize,
    pub marked: usize,
    pub already_indexed: usize,
    pub recorded: usize,
    /// store: versions stored, versions r2d1 already held, versions whose copies could not be
    /// read back.
    pub stored: usize,
    pub duplicates: usize,
    pub failed: usize,
    /// cleanup: old objects condemned, and deleted by this call's sweep.
    pub condemned: usize,
    pub deleted: usize,
}

/// The migration's progress beyond the report's plan.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Versions whose content is stored (this pass).
    pub stored_versions: i64,
    /// Versions r2d1 already holds before they are stored (found by content hash).
    pub already_stored: i64,
    pub condemned: i64,
    pub unreadable: i64,
    pub skipped: i64,
    pub conflicts: i64,
    /// Uids of copies that cannot be stored without a mapping (not storable, even sanitised).
    pub unresolved: Vec<String>,
    /// Old objects condemned by earlier passes.
    pub migrated_earlier: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepAnswer {
    pub success: bool,
    pub dry_run: bool,
    pub pass: i64,
    pub phase: &'static str,
    pub step: StepReport,
    pub report: Report,
    pub progress: Progress,
    pub next_cursor: Option<String>,
    pub done: bool,
}

/// One bounded step from `cursor` (a new pass when `None`).
pub async fn step(app: &App, cursor: Option<Cursor>, dry_run: bool, limit: u32) -> Result<StepAnswer> {
    let store = app.store()?;
    let cursor = match cursor {
        Some(c) => c,
        None => {
            store.meta.run(repo::start_pass()).await?;
            Cursor::start(store.request().now(), dry_run)
        }
    };
    let pass = cursor.pass;
    let phase = cursor.phase.name();
    let mut step = StepReport::default();
    let next = match cursor.phase {
        Phase::Hashes { after_rowid } => match hashes(&store, after_rowid, limit, &mut step).await? {
            (Some(last), true) => Some(Phase::Hashes { after_rowid: last }),
            _ => Some(Phase::Scan { prefix: 0, cursor: None }),
        },
        Phase::Scan { prefix, cursor } => match scan(&store, pass, prefix, cursor, limit, &mut step).await? {
            Some(c) => Some(Phase::Scan { prefix, cursor: Some(c) }),
            None if prefix + 1 < SCANNED.len() => Some(Phase::Scan { prefix: prefix + 1, cursor: None }),
            None if dry_run => None,
            None => Some(Phase::Store),
        },
        Phase::Store if dry_run => None,
        Phase::Store => store_versions(app, &store, pass, limit, &mut step).await?.then_some(Phase::Store).or(Some(Phase::Cleanup)),
        Phase::Cleanup if dry_run => None,
        Phase::Cleanup => cleanup(app, &store, limit, &mut step).await?.then_some(Phase::Cleanup),
    };
    let (report, progress) = report(&store, pass).await?;
    let next_cursor = next.map(|phase| Cursor { pass, phase }.encode());
    Ok(StepAnswer { success: true, dry_run, pass, phase, step, report, progress, done: next_cursor.is_none(), next_cursor })
}

/// Content hashes for versions stored before 0008, `limit` rows from `after_rowid`: the last
/// rowid seen, and whether there may be more.
pub async fn hashes(store: &Store, after_rowid: i64, limit: u32, step: &mut StepReport) -> Result<(Option<i64>, bool)> {
    let rows: Vec<repo::Unhashed> = store.meta.all(repo::unhashed_versions(after_rowid, limit)).await?;
    let results: Vec<Option<String>> = stream::iter(rows.iter())
        .map(|r| async move {
            let bytes = match object::read(&store.blobs, &r.r2_key, &r.sha256, MAX_OBJECT_BYTES).await? {
                Read::Ok(bytes) => bytes,
                _ => return Ok(None),
            };
            Ok::<_, Error>(parse_json(&bytes).and_then(unwrap_legacy).ok().map(|rec| content_sha256(&rec.memory)))
        })
        .buffered(CONCURRENCY)
        .collect::<Vec<Result<Option<String>>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let updates: Vec<_> = rows.iter().zip(&results).filter_map(|(r, h)| h.as_ref().map(|h| repo::set_content_hash(r.id, h))).collect();
    let changed: u64 = if updates.is_empty() { 0 } else { store.meta.batch(updates).await?.iter().map(|i| i.changes).sum() };
    step.hashed += changed as usize;
    step.hash_skipped += rows.len() - changed as usize;
    Ok((rows.last().map(|r| r.id), rows.len() == limit as usize))
}

/// One page of the scan; the R2 cursor to continue from.
async fn scan(
    store: &Store,
    pass: i64,
    prefix: usize,
    cursor: Option<String>,
    limit: u32,
    step: &mut StepReport,
) -> Result<Option<String>> {
    let page = store.blobs.list_page(SCANNED[prefix], cursor, limit).await?;
    step.scanned += page.objects.len();
    let kind = if prefix == 0 { Kind::Memory } else { Kind::DailyCopy };
    let foreign: Vec<&BlobInfo> = page.objects.iter().filter(|o| !object::is_ours(o, kind)).collect();
    step.ours += page.objects.len() - foreign.len();
    let keys: Vec<String> = foreign.iter().map(|o| o.key.clone()).collect();
    let marked: std::collections::HashSet<String> = gc::marks(store, &keys).await?.into_iter().map(|m| m.key).collect();
    let indexed = gc::referenced(store, kind, &keys).await?;
    let todo: Vec<&BlobInfo> = foreign.into_iter().filter(|o| !marked.contains(&o.key) && !indexed.contains(&o.key)).collect();
    step.marked += marked.len();
    step.already_indexed += indexed.iter().filter(|k| !marked.contains(*k)).count();
    let found: Vec<Option<LegacyObject>> = stream::iter(todo)
        .map(|info| async move {
            Ok::<_, Error>(match object::read_found(&store.blobs, &info.key, MAX_OBJECT_BYTES).await? {
                Read::Ok(bytes) => Some(classify(&info.key, info.size, &bytes)),
                Read::Missing => None,
                Read::Corrupt(why) => Some(LegacyObject {
                    key: info.key.clone(),
                    layout: legacy::layout_of(&info.key).map(|l| l.as_str()),
                    state: "unreadable",
                    reason: Some(why),
                    size_bytes: info.size,
                    ..Default::default()
                }),
            })
        })
        .buffered(CONCURRENCY)
        .collect::<Vec<Result<Option<LegacyObject>>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let now = store.request().now();
    let stmts: Vec<_> = found.iter().flatten().map(|o| repo::record_object(pass, o, now)).collect();
    step.recorded += stmts.len();
    if !stmts.is_empty() {
        store.meta.batch(stmts).await?;
    }
    Ok(page.cursor)
}

/// Stores up to `limit` versions; whether there may be more.
async fn store_versions(app: &App, store: &Store, pass: i64, limit: u32, step: &mut StepReport) -> Result<bool> {
    let planned: Vec<PlannedVersion> = store.meta.all(repo::next_versions(pass, limit)).await?;
    let repo = OmiRepo::new(app.meta()?);
    // Versions of one memory go in received order (their version numbers follow it); memories
    // go side by side.
    let mut memories: Vec<Vec<&PlannedVersion>> = Vec::new();
    for v in &planned {
        match memories.last_mut() {
            Some(m) if m[0].uid == v.uid && m[0].memory_id == v.memory_id => m.push(v),
            _ => memories.push(vec![v]),
        }
    }
    let (repo_ref, write_daily_copy) = (&repo, app.config.write_daily_copy);
    let outcomes: Vec<Result<Vec<Outcome>>> = stream::iter(memories)
        .map(|versions| async move {
            let mut out = Vec::new();
            for v in versions {
                out.push(store_version(store, repo_ref, write_daily_copy, v).await?);
            }
            Ok(out)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let now = store.request().now();
    let mut stmts = Vec::new();
    for outcome in outcomes {
        for o in outcome? {
            match o {
                Outcome::Stored { keys, uid, key, duplicate } => {
                    if duplicate {
                        step.duplicates += 1;
                    } else {
                        step.stored += 1;
                    }
                    stmts.extend(repo::mark_stored(&keys, &uid, &key, now));
                }
                Outcome::Unreadable { keys, reason } => {
                    step.failed += 1;
                    stmts.extend(repo::mark_unreadable(&keys, &reason, now));
                }
            }
        }
    }
    if !stmts.is_empty() {
        store.meta.batch(stmts).await?;
    }
    Ok(planned.len() == limit as usize)
}

enum Outcome {
    Stored { keys: Vec<String>, uid: String, key: String, duplicate: bool },
    Unreadable { keys: Vec<String>, reason: String },
}

/// Stores one planned version from the first of its copies that reads back as planned.
async fn store_version(store: &Store, repo: &OmiRepo, write_daily_copy: bool, v: &PlannedVersion) -> Result<Outcome> {
    let keys = v.keys();
    let mut reason = String::from("no copy could be read back");
    for key in &keys {
        let bytes = match object::read_found(&store.blobs, key, MAX_OBJECT_BYTES).await? {
            Read::Ok(bytes) => bytes,
            Read::Missing => continue,
            Read::Corrupt(why) => {
                reason = why;
                continue;
            }
        };
        let copy = match legacy::read_copy(key, &bytes) {
            Ok(c) if content_sha256(&c.memory) == v.content_sha256 => c,
            Ok(_) => {
                reason = format!("{key} changed since it was scanned");
                continue;
            }
            Err(e) => {
                reason = e.to_string();
                continue;
            }
        };
        let memory = memory_from_value(&copy.memory)?;
        let incoming = Incoming {
            uid: v.uid.clone(),
            body: serde_json::to_vec(&copy.memory)?,
            memory,
            content_sha256: v.content_sha256.clone(),
            received_ms: v.received_at,
            delivery_id: None,
            kind: "legacy_migration",
        };
        let stored = store_memory(store, repo, write_daily_copy, incoming, async { Ok(()) }).await?;
        return Ok(Outcome::Stored { keys, uid: v.uid.clone(), key: stored.r2_key, duplicate: stored.duplicate });
    }
    Ok(Outcome::Unreadable { keys, reason })
}

/// Condemns up to `limit` old objects whose content is stored, and sweeps; whether there may
/// be more.
async fn cleanup(app: &App, store: &Store, limit: u32, step: &mut StepReport) -> Result<bool> {
    let rows: Vec<repo::KeyRow> = store.meta.all(repo::stored_keys(limit)).await?;
    let keys: Vec<String> = rows.into_iter().map(|r| r.key).collect();
    if !keys.is_empty() {
        let mut stmts = gc::condemn_keys_now(store, &keys, "old app's copy, migrated")?;
        stmts.extend(repo::mark_condemned(&keys, store.request().now()));
        store.meta.batch(stmts).await?;
        step.condemned += keys.len();
        // The marks are durable: a sweep that fails here is finished by the gc job.
        match gc::sweep_all(store, app.config.gc_grace, 10).await {
            Ok(r) => step.deleted += r.deleted.iter().filter(|k| keys.contains(k)).count(),
            Err(e) => worker::console_error!("r2d1 legacy migration: sweep failed, the gc job will finish it: {e}"),
        }
    }
    Ok(keys.len() == limit as usize)
}

/// The pass's report, from what the scan recorded.
pub async fn report(store: &Store, pass: i64) -> Result<(Report, Progress)> {
    let results = store.meta.batch_results(repo::report_statements(pass)).await?;
    let rows = |i: usize| results.get(i).ok_or_else(|| Error::Internal("D1 batch returned fewer results than statements".into()));
    let mentors: Vec<legacy::MentorReport> = rows(0)?.rows::<repo::MentorRow>()?.into_iter().map(Into::into).collect();
    let totals = rows(1)?.rows::<repo::TotalsRow>()?.into_iter().next().unwrap_or_default();
    let unreadable: Vec<legacy::Problem> = rows(2)?.rows::<repo::ProblemRow>()?.into_iter().map(Into::into).collect();
    let conflicts: Vec<legacy::Conflict> = rows(3)?.rows::<repo::ConflictRow>()?.into_iter().map(Into::into).collect();
    let skipped: Vec<String> = rows(4)?.rows::<repo::KeyRow>()?.into_iter().map(|r| r.key).collect();
    let unresolved: Vec<String> = rows(5)?.rows::<repo::KeyRow>()?.into_iter().map(|r| r.key).collect();
    let counts = rows(6)?.rows::<repo::StateCount>()?;
    let count = |state: &str| counts.iter().filter(|c| c.state == state).map(|c| c.n).sum::<i64>();
    let already = rows(7)?.rows::<Count>()?.first().map(|c| c.n).unwrap_or(0);
    let report = Report {
        unmapped: mentors.iter().filter(|m| !m.mapped).map(|m| m.uid.clone()).collect(),
        mentors,
        memories: totals.memories as usize,
        versions: totals.versions as usize,
        copies: totals.copies as usize,
        duplicates: (totals.copies - totals.versions).max(0) as usize,
        unreadable,
        conflicts,
        skipped,
    };
    let progress = Progress {
        stored_versions: totals.stored_versions,
        already_stored: already,
        condemned: count("condemned"),
        unreadable: count("unreadable"),
        skipped: count("skipped"),
        conflicts: count("conflicts"),
        unresolved,
        migrated_earlier: count("earlier"),
    };
    Ok((report, progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        for c in [
            Cursor::start(5, false),
            Cursor::start(5, true),
            Cursor { pass: 7, phase: Phase::Scan { prefix: 1, cursor: Some("opaque:with:colons".into()) } },
            Cursor { pass: 7, phase: Phase::Store },
            Cursor { pass: 7, phase: Phase::Cleanup },
            Cursor { pass: 7, phase: Phase::Hashes { after_rowid: 42 } },
        ] {
            assert_eq!(Cursor::decode(&c.encode()), Some(c.clone()), "{}", c.encode());
        }
        assert_eq!(Cursor::start(5, false).phase, Phase::Hashes { after_rowid: 0 });
        assert_eq!(Cursor::start(5, true).phase, Phase::Scan { prefix: 0, cursor: None });
        for bad in ["", "v2:1:store", "v1:x:store", "v1:1:scan:9:", "v1:1:store:extra", "v1:1:hashes:x", "v1:1:nope"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn old_objects_are_classified_from_their_wrapper_and_name() {
        let id = "0b7c2a1e-3f4d-4c5b-9a8e-1d2c3b4a5f6e";
        let wrapper = serde_json::to_vec(&json!({
            "memory": {"id": id, "created_at": "2025-01-01T00:00:00Z"},
            "processed": {"id": id, "uid": "aliceat_x_com"},
            "webhook_received_at": "2025-01-01T00:00:01Z"
        }))
        .unwrap();
        let o = classify(&format!("mobil3-mentorships/all/2025-01-01/Alice@X.com-{id}-1735689601000.json"), 9, &wrapper);
        assert_eq!(o.state, "copy");
        assert_eq!(o.layout, Some("r2-all"));
        assert_eq!((o.spelling.as_deref(), o.uid_class.as_deref()), (Some("Alice@X.com"), Some("aliceat_x_com")));
        assert!(!o.storable && o.class_storable);
        assert_eq!(o.received_ms, Some(1_735_689_601_000));
        assert_eq!(o.content_sha256.as_deref(), Some(content_sha256(&json!({"id": id, "created_at": "2025-01-01T00:00:00Z"})).as_str()));
        assert_eq!(o.size_bytes, 9);
        let bad = classify(&format!("mobil3-mentorships/all/2025-01-01/alice-{id}-1.json"), 1, b"{oops");
        assert_eq!((bad.state, bad.layout), ("unreadable", Some("r2-all")));
        assert!(bad.reason.unwrap().contains("JSON"));
        assert_eq!(classify("mobil3-mentorships/by-user/alice/notes.json", 1, b"{}").state, "skipped");
        // a wrapper naming another mentor than the key: the wrapper wins, the key is a conflict
        let o = classify(&format!("mobil3-mentorships/by-user/dave/2025/01/{id}-1.json"), 1, &wrapper);
        assert_eq!(o.spelling.as_deref(), Some("aliceat_x_com"));
        assert_eq!(o.others.as_deref(), Some(r#"["dave"]"#));
    }
}
