//! Omi maintenance, shared by the HTTP handlers and the jobs: importing legacy logs,
//! reconciling objects the index does not know, deleting a mentor, retention and rollups.
//! Deleting goes through the storage core's GC: rows first, with condemned marks in the same
//! batch, then a sweep; a failed R2 delete is finished by the next sweep.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;
use serde_json::{json, Value};

use super::content::content_sha256;
use super::ingest::{index_existing, store_memory, Adopted, Found, Incoming};
use super::keys::{self, parse_day_summary_key, parse_memory_key, parse_transcript_key};
use super::legacy::{self, Mapping};
use super::legacy_repo;
use super::link;
use super::payload::{memory_from_value, transcript_batch_from_value, unwrap_legacy};
use super::render::{day, day_series, iso};
use super::repo::{self, OmiRepo};
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::commit::{self, Guard, Reference};
use crate::store::digest::sha256_hex;
use crate::store::gc;
use crate::store::object::{self, NewObject, Read};
use crate::store::{Kind, Store};

/// How many records an import works on at once (D1 and R2 calls overlap; more buys little on
/// one isolate and risks the subrequest limit).
const IMPORT_CONCURRENCY: usize = 6;
pub const MAX_IMPORT_LINES: usize = 1000;
/// Objects younger than this may belong to a delivery still in flight: reconciliation leaves
/// them for the next run (`?grace_seconds=` overrides it on the routes).
pub const RECONCILE_GRACE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// One retention round: the expiry query, up to 200 memories (four statements per 90) and
/// the transcript and day-summary statements.
const RETENTION_ROUND_OPS: u64 = 1 + 3 * 4 + 2 + 2;

// ---------------------------------------------------------------------------------------------
// Import

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub success: bool,
    pub imported: usize,
    pub duplicates: usize,
    pub failed: usize,
    pub errors: Vec<Value>,
    /// Every record of the body was dealt with. When not, `next_line` is where to resume.
    pub done: bool,
    /// The body's line (1-based) of the first record not dealt with: the request's operation
    /// budget or time ran out. The client sends the lines from there again; the counts cover
    /// only the lines before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_line: Option<usize>,
}

/// The most R2 + D1 operations storing one new record costs: the duplicate check, the memory
/// and its daily copy, and the fenced index batch (tests/omi_import.test.mjs measures it).
pub const IMPORT_RECORD_OPS: u64 = 16;
/// Wall time an import works before it answers with `nextLine` (a client waits for it).
const IMPORT_TIME_MS: i64 = 20_000;

/// A record ready to store (parsed, with its uid and hash).
struct Parsed {
    line: usize,
    incoming: Incoming,
    sha: String,
}

/// What became of a line, before anything is stored.
enum Sorted {
    Bad(usize, Error),
    Duplicate(usize),
    New(Box<Parsed>),
}

/// NDJSON of legacy records, each a bare Omi memory (with a `uid`) or the old app's
/// `{memory, processed, analytics, webhook_received_at}` wrapper (optionally with `path`, the
/// file or object it was read from), attributed by `legacy::attribute_import` through the
/// stored uid mapping. Idempotent like the webhook, and deduplicated against it by content.
/// Bounded by the request's operation budget: identical records within the body count once,
/// the records already stored are found with one D1 query, and the new ones are stored while
/// the budget (and [`IMPORT_TIME_MS`]) lasts; the rest is left to a next call (`next_line`).
pub async fn import(app: &App, default_uid: Option<&str>, lines: Vec<(usize, &str)>) -> Result<ImportReport> {
    let repo = OmiRepo::new(app.meta()?);
    let store = app.store()?;
    let mapping = legacy_repo::mapping(&store.meta).await?;
    let (repo, store) = (&repo, &store);
    let started = store.request().now();

    // Parse every line and drop the body's own repeats (pure, no operations).
    let mut seen = HashSet::new();
    let mut sorted: Vec<Sorted> = Vec::with_capacity(lines.len());
    for (n, line) in lines {
        match parse_record(n, &mapping, default_uid, line) {
            Err(e) => sorted.push(Sorted::Bad(n, e)),
            Ok(p) if !seen.insert((p.incoming.uid.clone(), p.incoming.memory.id.clone(), p.incoming.content_sha256.clone())) => {
                sorted.push(Sorted::Duplicate(n))
            }
            Ok(p) => sorted.push(Sorted::New(Box::new(p))),
        }
    }
    // The records already stored, in one query.
    let candidates: Vec<(&str, &str, &str)> = sorted
        .iter()
        .filter_map(|s| match s {
            Sorted::New(p) => Some((p.incoming.uid.as_str(), p.incoming.memory.id.as_str(), p.sha.as_str())),
            _ => None,
        })
        .collect();
    let stored = if candidates.is_empty() { HashSet::new() } else { repo.stored_versions(&candidates).await? };
    let mut at = 0;
    for s in sorted.iter_mut() {
        if let Sorted::New(p) = s {
            if stored.contains(&at) {
                *s = Sorted::Duplicate(p.line);
            }
            at += 1;
        }
    }

    // Store the new ones, a few at a time, while the budget and the time last.
    let mut todo: Vec<Parsed> = Vec::new();
    let mut rest = Vec::with_capacity(sorted.len());
    for s in sorted {
        match s {
            Sorted::New(p) => todo.push(*p),
            other => rest.push(other),
        }
    }
    let (mut imported, mut duplicates) = (0, 0);
    let mut todo = todo.into_iter().peekable();
    let mut next_line = None;
    while todo.peek().is_some() {
        let affordable = (store.request().ops_left() / IMPORT_RECORD_OPS) as usize;
        let n = affordable.min(IMPORT_CONCURRENCY);
        if n == 0 || store.request().now() - started >= IMPORT_TIME_MS {
            next_line = todo.peek().map(|p| p.line);
            break;
        }
        let chunk: Vec<Parsed> = todo.by_ref().take(n).collect();
        let results =
            futures_util::future::join_all(chunk.into_iter().map(|p| async move {
                (p.line, store_memory(store, repo, app.config.write_daily_copy, p.incoming, async { Ok(()) }).await)
            }))
            .await;
        for (n, r) in results {
            match r {
                Ok(s) if s.duplicate => duplicates += 1,
                Ok(_) => imported += 1,
                // A storage failure fails the request, so the client retries the whole batch
                // (idempotent).
                Err(e) if e.status() >= 500 || e.code() == "over_budget" => return Err(e),
                Err(e) => rest.push(Sorted::Bad(n, e)),
            }
        }
    }

    // The counts cover the lines before `next_line` only: the client sends the rest again.
    let counted = |line: usize| next_line.is_none_or(|next| line < next);
    let mut errors = Vec::new();
    for s in rest {
        match s {
            Sorted::Duplicate(n) if counted(n) => duplicates += 1,
            Sorted::Bad(n, e) if counted(n) => errors.push(json!({ "line": n, "code": e.code(), "message": e.to_string() })),
            _ => {}
        }
    }
    errors.sort_by_key(|e| e["line"].as_u64());
    Ok(ImportReport {
        success: errors.is_empty(),
        imported,
        duplicates,
        failed: errors.len(),
        errors,
        done: next_line.is_none(),
        next_line,
    })
}

/// One legacy record, parsed, attributed and checked.
fn parse_record(line_no: usize, mapping: &Mapping, default_uid: Option<&str>, line: &str) -> Result<Parsed> {
    let value: Value = serde_json::from_str(line).map_err(|e| Error::bad_request("invalid_json", format!("not valid JSON: {e}")))?;
    let path = value.get("memory").filter(|m| m.is_object()).and(value.get("path")).and_then(Value::as_str).map(str::to_string);
    let wrapper = legacy::read_wrapper(value)?;
    let who = legacy::attribute_import(&wrapper, path.as_deref(), mapping, default_uid)?;
    let memory = memory_from_value(&wrapper.memory)?;
    let body = serde_json::to_vec(&wrapper.memory)?;
    let sha = sha256_hex(&body);
    let received_ms = who.received_ms.unwrap_or(memory.created_ms);
    let incoming = Incoming {
        uid: who.uid,
        content_sha256: content_sha256(&wrapper.memory),
        body,
        memory,
        received_ms,
        delivery_id: None,
        kind: "import",
    };
    Ok(Parsed { line: line_no, incoming, sha })
}

// ---------------------------------------------------------------------------------------------
// Reconciliation

#[derive(Default, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    pub success: bool,
    pub scanned: usize,
    pub indexed: usize,
    pub already_indexed: usize,
    /// Objects someone else wrote whose content is indexed under another key (left alone,
    /// only counted).
    pub duplicates: usize,
    /// Memories under `by-user/` that r2d1 did not write: the old app's, left for
    /// `POST /api/omi/legacy/migrate`, which attributes them (wrapper, name, mapping) and
    /// deduplicates them against their `all/` copies. Indexing them here, under the uid in
    /// their key, would split a mapped mentor in two.
    pub legacy: usize,
    /// Our own leftovers of failed deliveries whose retry stored the same content: condemned
    /// and swept.
    pub removed_orphans: usize,
    pub skipped_recent: usize,
    /// Objects the GC has marked: never re-indexed.
    pub skipped_marked: usize,
    pub errors: Vec<Value>,
    pub next_cursor: Option<String>,
    pub done: bool,
    /// The page stopped early: the request's operation budget had no room for another object.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub out_of_budget: bool,
}

/// The prefixes reconciliation walks, in cursor order.
const RECONCILED: [Kind; 3] = [Kind::Memory, Kind::Transcript, Kind::DaySummary];

/// The most operations adopting one object can cost: its verified read and the fenced index
/// batch (the fence, the clearing of marks and the index rows of a memory with its FTS entry).
const ADOPT_OPS: u64 = 12;
/// Kept for the end of a page: condemning the leftovers found.
const CONDEMN_OPS: u64 = 3;
/// What a page needs to make progress: the listing, the index and mark lookups for up to 200
/// keys, and one adoption.
pub const PAGE_OPS: u64 = 7 + ADOPT_OPS + CONDEMN_OPS;

/// A resume position in a prefix: R2's own cursor, or (written `@key`) the key after which a
/// page that ran out of operation budget stopped.
fn resume_of(cursor: Option<String>) -> (Option<String>, Option<String>) {
    match cursor {
        Some(c) => match c.strip_prefix('@') {
            Some("") => (None, None),
            Some(key) => (None, Some(key.to_string())),
            None => (Some(c), None),
        },
        None => (None, None),
    }
}

/// Reconciles one page of `kind` objects from `cursor` (an R2 cursor, or `@key`): indexes
/// objects the index does not know, or condemns our own leftovers whose content is indexed
/// elsewhere. When the request's operation budget cannot adopt another object, the page stops
/// there and `nextCursor` (`@key`) resumes after the last object it dealt with.
pub async fn reconcile_page(app: &App, kind: Kind, cursor: Option<String>, limit: u32, grace_ms: i64) -> Result<ReconcileReport> {
    let store = app.store()?;
    let repo = OmiRepo::new(app.meta()?);
    let started_at = cursor.clone();
    let (r2_cursor, after) = resume_of(cursor);
    let page = store.blobs.list_page_after(kind.info().prefix, r2_cursor, after, limit).await?;
    let mut report = ReconcileReport { scanned: page.objects.len(), next_cursor: page.cursor.clone(), ..Default::default() };
    let keys: Vec<String> = page.objects.iter().map(|o| o.key.clone()).collect();
    let known = gc::referenced(&store, kind, &keys).await?;
    report.already_indexed = known.len();
    let now = store.request().now();
    let unknown: Vec<&crate::store::BlobInfo> = page.objects.iter().filter(|o| !known.contains(&o.key)).collect();
    let candidates: Vec<String> = unknown.iter().filter(|o| now - (o.uploaded_ms as i64) >= grace_ms).map(|o| o.key.clone()).collect();
    report.skipped_recent = unknown.len() - candidates.len();
    let marked: HashSet<String> = gc::marks(&store, &candidates).await?.into_iter().map(|m| m.key).collect();
    let mut condemn: Vec<String> = Vec::new();
    for (at, object) in page.objects.iter().enumerate() {
        if !candidates.contains(&object.key) {
            continue;
        }
        if marked.contains(&object.key) {
            report.skipped_marked += 1;
            continue;
        }
        if kind == Kind::Memory && !object::is_ours(object, kind) {
            report.legacy += 1;
            continue;
        }
        if !store.request().can_afford(ADOPT_OPS + CONDEMN_OPS) {
            // Out of budget: resume after the last object dealt with (every one before this).
            report.scanned = at;
            report.next_cursor = match at.checked_sub(1) {
                Some(prev) => Some(format!("@{}", page.objects[prev].key)),
                None => started_at.clone().or_else(|| Some("@".into())),
            };
            report.out_of_budget = true;
            break;
        }
        let outcome = match kind {
            Kind::Memory => adopt_memory(&store, &repo, object).await,
            Kind::Transcript => adopt_transcript(&store, object).await,
            _ => adopt_day_summary(&store, object).await,
        };
        match outcome {
            Ok(Outcome::Indexed) => report.indexed += 1,
            Ok(Outcome::Marked) => report.skipped_marked += 1,
            Ok(Outcome::Leftover(keys)) if object::is_ours(object, kind) => {
                condemn.extend(keys);
                report.removed_orphans += 1;
            }
            Ok(Outcome::Leftover(_)) => report.duplicates += 1,
            Err(e) if e.status() >= 500 => return Err(e),
            Err(e) => report.errors.push(json!({ "key": object.key, "message": e.to_string() })),
        }
    }
    if !condemn.is_empty() {
        store.meta.batch(gc::condemn_keys_now(&store, &condemn, "reconciliation: content indexed elsewhere")?).await?;
        gc::sweep_all(&store, app.config.gc_grace, 5).await?;
    }
    report.success = report.errors.is_empty();
    report.done = report.next_cursor.is_none();
    Ok(report)
}

enum Outcome {
    Indexed,
    Marked,
    /// Content indexed under another key: these keys are leftovers.
    Leftover(Vec<String>),
}

fn parse_error(key: &str, why: impl std::fmt::Display) -> Error {
    Error::bad_request("invalid_object", format!("{key}: {why}"))
}

/// Reads an object found in the bucket, checked against the hash its metadata claims;
/// `None` when it vanished meanwhile.
async fn found_bytes(store: &Store, info: &crate::store::BlobInfo) -> Result<Option<Vec<u8>>> {
    match object::read_found(&store.blobs, &info.key, 64 * 1024 * 1024).await? {
        Read::Ok(bytes) => Ok(Some(bytes)),
        Read::Missing => Ok(None),
        Read::Corrupt(why) => Err(parse_error(&info.key, why)),
    }
}

async fn adopt_memory(store: &Store, repo: &OmiRepo, info: &crate::store::BlobInfo) -> Result<Outcome> {
    let (uid, memory_id, ts) =
        parse_memory_key(&info.key).ok_or_else(|| parse_error(&info.key, "key does not follow the by-user layout"))?;
    let Some(bytes) = found_bytes(store, info).await? else { return Ok(Outcome::Marked) };
    let record = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| Error::bad_request("invalid_json", format!("not JSON: {e}")))
        .and_then(unwrap_legacy)?;
    let memory = memory_from_value(&record.memory)?;
    if memory.id != memory_id {
        return Err(parse_error(&info.key, format!("body id {} differs from the key's {memory_id}", memory.id)));
    }
    let content = content_sha256(&record.memory);
    let found = Found { uid: &uid, memory: &memory, content_sha256: &content, key: &info.key, body: &bytes, ts };
    Ok(match index_existing(store, repo, found).await? {
        Adopted::Indexed(_) => Outcome::Indexed,
        Adopted::Marked => Outcome::Marked,
        Adopted::DuplicateOf(_) => Outcome::Leftover(vec![info.key.clone(), keys::daily_key(&uid, &memory_id, ts)]),
    })
}

async fn adopt_transcript(store: &Store, info: &crate::store::BlobInfo) -> Result<Outcome> {
    let (uid, session, ts) =
        parse_transcript_key(&info.key).ok_or_else(|| parse_error(&info.key, "key does not follow the transcript layout"))?;
    let Some(bytes) = found_bytes(store, info).await? else { return Ok(Outcome::Marked) };
    let batch = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| parse_error(&info.key, format!("not JSON: {e}")))
        .and_then(|v| transcript_batch_from_value(v).map_err(|e| parse_error(&info.key, e)))?;
    let text = link::batch_text(&batch.segments);
    let stmts = repo::record_transcript_batch(&uid, &session, ts, &sha256_hex(&bytes), &info.key, batch.segments.len(), &text);
    match commit::commit(store, &[Reference::existing(&info.key)], store.request().now(), Guard::IfUnmarked, stmts).await {
        Ok(rows) if rows.first().map(|r| r.info().changes).unwrap_or(0) > 0 => Ok(Outcome::Indexed),
        Ok(_) => Ok(Outcome::Leftover(vec![info.key.clone()])),
        Err(Error::Fenced(_)) => Ok(Outcome::Marked),
        Err(e) => Err(e),
    }
}

async fn adopt_day_summary(store: &Store, info: &crate::store::BlobInfo) -> Result<Outcome> {
    let (uid, date, ts) =
        parse_day_summary_key(&info.key).ok_or_else(|| parse_error(&info.key, "key does not follow the day-summary layout"))?;
    let Some(bytes) = found_bytes(store, info).await? else { return Ok(Outcome::Marked) };
    let ts = ts.unwrap_or(info.uploaded_ms as i64);
    let stmts = repo::record_day_summary(&uid, &date, &info.key, &sha256_hex(&bytes), ts, store.request().now());
    match commit::commit(store, &[Reference::existing(&info.key)], store.request().now(), Guard::IfUnmarked, stmts).await {
        Ok(rows) => {
            let current = rows.last().map(|r| r.rows::<repo::DaySummaryRow>()).transpose()?.and_then(|r| r.into_iter().next());
            Ok(if current.is_some_and(|c| c.r2_key == info.key) { Outcome::Indexed } else { Outcome::Leftover(vec![info.key.clone()]) })
        }
        Err(Error::Fenced(_)) => Ok(Outcome::Marked),
        Err(e) => Err(e),
    }
}

/// `"{prefix index}:{R2 cursor}"` over [`RECONCILED`]; anything else starts over.
fn parse_cursor(cursor: Option<&str>) -> (usize, Option<String>) {
    match cursor.and_then(|c| c.split_once(':')) {
        Some((i, rest)) => match i.parse::<usize>() {
            Ok(i) if i < RECONCILED.len() => (i, (!rest.is_empty()).then(|| rest.to_string())),
            _ => (0, None),
        },
        None => (0, None),
    }
}

/// One page of reconciliation from `cursor`, moving on to the next prefix when one is done;
/// the report's `nextCursor` is `None` once every prefix was walked.
pub async fn reconcile_step(app: &App, cursor: Option<String>, limit: u32, grace_ms: i64) -> Result<ReconcileReport> {
    let (index, r2_cursor) = parse_cursor(cursor.as_deref());
    let mut report = reconcile_page(app, RECONCILED[index], r2_cursor, limit, grace_ms).await?;
    report.next_cursor = match report.next_cursor.take() {
        Some(c) => Some(format!("{index}:{c}")),
        None if index + 1 < RECONCILED.len() => Some(format!("{}:", index + 1)),
        None => None,
    };
    report.done = report.next_cursor.is_none();
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Deleting a mentor

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedUser {
    pub success: bool,
    pub user_id: String,
    pub deleted_memories: u64,
    /// Objects condemned for this mentor.
    pub deleted_objects: usize,
    /// Of those, still in R2 after this request's sweep (the GC job finishes them).
    pub objects_pending: usize,
}

async fn list_all_keys(store: &Store, prefix: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.blobs.list_page(prefix, cursor, 1000).await?;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(keys);
        }
    }
}

/// Removes every row of a mentor and condemns every object of theirs (indexed or not, daily
/// copies derived from memory keys included) in one D1 batch, then sweeps.
pub async fn delete_user(app: &App, uid: &str) -> Result<DeletedUser> {
    let store = app.store()?;
    let repo = OmiRepo::new(app.meta()?);
    let known: BTreeSet<String> = repo.user_keys(uid).await?.into_iter().collect();
    let mut found: BTreeSet<String> = BTreeSet::new();
    for prefix in [keys::user_prefix(uid), keys::transcript_user_prefix(uid), keys::day_summary_user_prefix(uid)] {
        for key in list_all_keys(&store, &prefix).await? {
            if let Some((u, m, ts)) = parse_memory_key(&key) {
                found.insert(keys::daily_key(&u, &m, ts));
            }
            found.insert(key);
        }
    }
    let stats_key = keys::user_stats_key(uid);
    if store.blobs.head(&stats_key).await?.is_some() {
        found.insert(stats_key);
    }
    // Keys the rows do not name (unindexed objects, derived copies, the rollup): condemned by
    // key. Keys the rows name are condemned from the rows inside the batch.
    let extra: Vec<String> = found.difference(&known).cloned().collect();
    let mut stmts = repo::delete_user(uid, store.request().now());
    stmts.extend(gc::condemn_keys_now(&store, &extra, "mentor deleted")?);
    // Their name and mentees in the directory are personal data too.
    stmts.extend(super::programme::repo::forget_uid(uid));
    let results = store.meta.batch_results(stmts).await?;
    let memories = results.first().map(|r| r.rows::<repo::Count>()).transpose()?.and_then(|r| r.into_iter().next()).map(|c| c.n as u64);
    let all: BTreeSet<String> = known.union(&found).cloned().collect();
    if memories.unwrap_or(0) == 0 && all.is_empty() {
        return Err(Error::NotFound(format!("no data for user {uid}")));
    }
    // The rows are gone and the marks are durable: a sweep that fails here is finished by the
    // GC job, so the deletion itself has succeeded.
    let swept = match gc::sweep_all(&store, app.config.gc_grace, 20).await {
        Ok(r) => r.deleted.into_iter().filter(|k| all.contains(k)).count(),
        Err(e) => {
            worker::console_error!("r2d1 delete user {uid}: sweep failed, the GC job will finish it: {e}");
            0
        }
    };
    Ok(DeletedUser {
        success: true,
        user_id: uid.to_string(),
        deleted_memories: memories.unwrap_or(0),
        deleted_objects: all.len(),
        objects_pending: all.len().saturating_sub(swept),
    })
}

// ---------------------------------------------------------------------------------------------
// Retention and rollups

/// Deletes memories, transcript batches and day summaries older than `RETENTION_DAYS`
/// (rows first, with condemned marks), round after round until nothing is left or the
/// deadline, then sweeps.
pub async fn retention(app: &App, deadline_ms: i64) -> Result<Value> {
    let Some(days) = app.config.retention_days else { return Ok(json!({ "enabled": false })) };
    let store = app.store()?;
    let repo = OmiRepo::new(app.meta()?);
    let cutoff = app.now_ms - days as i64 * DAY_MS;
    let cutoff_date = day(cutoff);
    let (mut memories, mut transcripts, mut summaries) = (0usize, 0u64, 0u64);
    // Each round must leave room for one sweep, so what a round condemns can go at once.
    while store.request().can_afford(RETENTION_ROUND_OPS + gc::SWEEP_OPS) {
        let seqs = repo.expired(cutoff, 200).await?;
        let now = store.request().now();
        let mut stmts = repo::retire_memories(&seqs, now);
        let t_at = stmts.len() + 1;
        stmts.extend(repo::retire_transcripts(cutoff, 500, now));
        let s_at = stmts.len() + 1;
        stmts.extend(repo::retire_day_summaries(&cutoff_date, 500, now));
        let results = store.meta.batch_results(stmts).await?;
        let t = results.get(t_at).map(|r| r.rows::<repo::KeyRow>()).transpose()?.map(|r| r.len() as u64).unwrap_or(0);
        let s = results.get(s_at).map(|r| r.info().changes).unwrap_or(0);
        memories += seqs.len();
        transcripts += t;
        summaries += s;
        if (seqs.is_empty() && t == 0 && s == 0) || store.request().now() >= deadline_ms {
            break;
        }
    }
    let mut deleted = 0;
    while store.request().can_afford(gc::SWEEP_OPS) {
        let r = gc::sweep(&store, app.config.gc_grace).await?;
        deleted += r.claimed;
        if r.claimed == 0 || store.request().now() >= deadline_ms {
            break;
        }
    }
    Ok(json!({
        "enabled": true, "cutoff": iso(cutoff), "deletedMemories": memories, "deletedTranscriptBatches": transcripts,
        "deletedDaySummaries": summaries, "deletedObjects": deleted,
    }))
}

fn rollup(key: String, doc: &Value) -> Result<NewObject> {
    Ok(NewObject::plain(Kind::Rollup, key, serde_json::to_vec_pretty(doc)?, "application/json").replacing())
}

/// One mentor's stats document: the stats batch and the put.
const USER_ROLLUP_OPS: u64 = 3;

/// Where an unfinished pass of rollups is: the day it summarises and the last mentor
/// written (`{date}|{uid}`).
fn parse_rollups_cursor(cursor: Option<&str>) -> Option<(&str, &str)> {
    cursor.and_then(|c| c.split_once('|'))
}

/// `analytics/daily-summaries/{date}.json` for the UTC day before `now`, then
/// `analytics/user-stats/{uid}.json` for every mentor, in uid order, as many as the request's
/// operation budget allows; the cursor (`{date}|{uid}`) resumes the pass at the next run, and
/// is `None` once the day's pass is complete.
pub async fn rollups(app: &App, cursor: Option<&str>) -> Result<(Value, Option<String>)> {
    let repo = OmiRepo::new(app.meta()?);
    let store = app.store()?;
    let day_start = (app.now_ms.div_euclid(DAY_MS) - 1) * DAY_MS;
    let date = day(day_start);
    let mut after = match parse_rollups_cursor(cursor) {
        Some((d, uid)) if d == date => Some(uid.to_string()),
        _ => None,
    };
    if after.is_none() {
        let rows = repo.daily(day_start, day_start + DAY_MS, None).await?;
        let series = day_series(&rows, day_start, day_start + DAY_MS);
        let summary = json!({ "date": date, "generatedAt": iso(app.now_ms), "totals": series.first() });
        object::put(&store.blobs, &rollup(keys::daily_rollup_key(&date), &summary)?).await?;
    }
    let mut users = repo.users().await?;
    users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let mut written = 0;
    let mut complete = true;
    let from = after.clone();
    for u in users.iter().filter(|u| from.as_deref().is_none_or(|a| u.user_id.as_str() > a)) {
        if !store.request().can_afford(USER_ROLLUP_OPS) {
            complete = false;
            break;
        }
        let (totals, categories) = repo.user_stats(&u.user_id).await?;
        let doc = json!({ "userId": u.user_id, "generatedAt": iso(app.now_ms), "totals": totals, "categories": categories });
        object::put(&store.blobs, &rollup(keys::user_stats_key(&u.user_id), &doc)?).await?;
        after = Some(u.user_id.clone());
        written += 1;
    }
    let next = (!complete).then(|| format!("{date}|{}", after.unwrap_or_default()));
    Ok((json!({ "dailySummary": date, "userStats": written, "complete": complete }), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_cursors_name_the_day_and_the_last_mentor() {
        assert_eq!(parse_rollups_cursor(Some("2025-01-14|mentor-1")), Some(("2025-01-14", "mentor-1")));
        assert_eq!(parse_rollups_cursor(None), None);
    }

    #[test]
    fn a_page_resumes_from_r2s_cursor_or_after_a_key() {
        assert_eq!(resume_of(None), (None, None));
        assert_eq!(resume_of(Some("opaque".into())), (Some("opaque".into()), None));
        assert_eq!(resume_of(Some("@mobil3-mentorships/by-user/u/k".into())), (None, Some("mobil3-mentorships/by-user/u/k".into())));
        assert_eq!(resume_of(Some("@".into())), (None, None));
        assert_eq!(parse_cursor(Some("1:@mobil3-mentorships/x")), (1, Some("@mobil3-mentorships/x".into())));
    }

    #[test]
    fn reconciliation_cursors_walk_every_prefix() {
        assert_eq!(parse_cursor(None), (0, None));
        assert_eq!(parse_cursor(Some("1:")), (1, None));
        assert_eq!(parse_cursor(Some("2:abc")), (2, Some("abc".into())));
        assert_eq!(parse_cursor(Some("9:abc")), (0, None));
    }
}
