//! Maintenance routes (Bearer `API_TOKEN`): legacy import, reindex from the bucket,
//! reconciliation, and deleting a mentor.

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use worker::{Request, Response};

use super::ingest::{index_existing, store_memory, Incoming};
use super::key_part;
use super::keys::{self, check_key_part, parse_memory_key};
use super::payload::{memory_from_value, unwrap_legacy};
use super::repo::OmiRepo;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::store::BlobStore;

/// How many records an import works on at once (D1 and R2 calls overlap; more buys little on
/// one isolate and risks the subrequest limit).
const IMPORT_CONCURRENCY: usize = 6;
const MAX_IMPORT_LINES: usize = 1000;
/// Objects younger than this may belong to a delivery still in flight: reconciliation leaves
/// them for the next run (`?grace_seconds=` overrides it on the routes).
pub const RECONCILE_GRACE_MS: i64 = 60_000;

/// `POST /api/omi/import[?uid=]`: NDJSON of legacy records, each a bare Omi memory (with a
/// `uid`) or the old app's `{memory, processed, analytics, webhook_received_at}` wrapper.
/// Idempotent like the webhook: a record already stored is counted as a duplicate.
pub async fn import(mut req: Request, app: &App) -> Result<Response> {
    app.require_api_token(&req)?;
    let default_uid = http::query_param(&req, "uid");
    if let Some(u) = &default_uid {
        check_key_part(u).map_err(|why| Error::invalid_field("uid", why))?;
    }
    let body = http::read_body(&mut req, app.config.max_body_bytes).await?;
    let text = std::str::from_utf8(&body).map_err(|_| Error::bad_request("invalid_json", "body is not valid UTF-8"))?;
    let lines: Vec<(usize, &str)> = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, l)).collect();
    if lines.is_empty() {
        return Err(Error::bad_request("invalid_json", "body has no NDJSON records"));
    }
    if lines.len() > MAX_IMPORT_LINES {
        return Err(Error::PayloadTooLarge(format!("{} records; send at most {MAX_IMPORT_LINES} per request", lines.len())));
    }

    let repo = OmiRepo::new(app.meta()?);
    let blobs = app.blobs()?;
    let (repo, blobs, default_uid) = (&repo, &blobs, default_uid.as_deref());
    let results: Vec<(usize, Result<bool>)> = stream::iter(lines)
        .map(|(n, line)| async move { (n, import_line(app, repo, blobs, default_uid, line).await) })
        .buffer_unordered(IMPORT_CONCURRENCY)
        .collect()
        .await;

    let (mut imported, mut duplicates, mut errors) = (0, 0, Vec::new());
    for (n, r) in results {
        match r {
            Ok(false) => imported += 1,
            Ok(true) => duplicates += 1,
            // A storage failure fails the request, so the client retries the whole batch
            // (idempotent); bad records are reported and skipped.
            Err(e) if e.status() >= 500 => return Err(e),
            Err(e) => errors.push(json!({ "line": n, "code": e.code(), "message": e.to_string() })),
        }
    }
    errors.sort_by_key(|e| e["line"].as_u64());
    http::ok(
        &json!({ "success": errors.is_empty(), "imported": imported, "duplicates": duplicates, "failed": errors.len(), "errors": errors }),
    )
}

/// Stores one legacy record; `Ok(true)` when it was already stored.
async fn import_line(app: &App, repo: &OmiRepo, blobs: &BlobStore, default_uid: Option<&str>, line: &str) -> Result<bool> {
    let value: Value = serde_json::from_str(line).map_err(|e| Error::bad_request("invalid_json", format!("not valid JSON: {e}")))?;
    let record = unwrap_legacy(value)?;
    let uid = record
        .uid
        .as_deref()
        .or(default_uid)
        .ok_or_else(|| Error::bad_request("missing_field", "uid: the record has none and no ?uid= was given"))?;
    check_key_part(uid).map_err(|why| Error::invalid_field("uid", why))?;
    let memory = memory_from_value(&record.memory)?;
    let body = serde_json::to_vec(&record.memory)?;
    let received_ms = record.received_ms.unwrap_or(memory.created_ms);
    let stored = store_memory(
        blobs,
        repo,
        app.config.write_daily_copy,
        Incoming { uid: uid.to_string(), body, memory, received_ms, delivery_id: None, kind: "import" },
        async { Ok(()) },
    )
    .await?;
    Ok(stored.duplicate)
}

#[derive(Default, Debug)]
pub struct ReindexReport {
    pub scanned: usize,
    pub indexed: usize,
    pub already_indexed: usize,
    pub duplicates: usize,
    pub removed_orphans: usize,
    pub skipped_recent: usize,
    pub errors: Vec<Value>,
    pub next_cursor: Option<String>,
}

impl ReindexReport {
    pub fn to_json(&self) -> Value {
        json!({
            "success": self.errors.is_empty(), "scanned": self.scanned, "indexed": self.indexed,
            "alreadyIndexed": self.already_indexed, "duplicates": self.duplicates,
            "removedOrphans": self.removed_orphans, "skippedRecent": self.skipped_recent,
            "errors": self.errors, "nextCursor": self.next_cursor, "done": self.next_cursor.is_none(),
        })
    }
}

/// Indexes one page of `by-user/` objects the index does not know. An object r2d1 itself
/// wrote whose content is already indexed under another key is an orphan of a failed
/// delivery and is removed (with its daily copy); the old app's duplicates are only counted.
pub async fn reindex_page(app: &App, cursor: Option<String>, limit: u32, grace_ms: i64) -> Result<ReindexReport> {
    let blobs = app.blobs()?;
    let repo = OmiRepo::new(app.meta()?);
    let page = blobs.list_page(keys::BY_USER_PREFIX, cursor, limit).await?;
    let mut report = ReindexReport { scanned: page.objects.len(), next_cursor: page.cursor, ..Default::default() };
    let keys: Vec<String> = page.objects.iter().map(|o| o.key.clone()).collect();
    let known = repo.indexed_keys(&keys).await?;
    for object in page.objects.iter().filter(|o| !known.contains(&o.key)) {
        if (app.now_ms as f64 - object.uploaded_ms) < grace_ms as f64 {
            report.skipped_recent += 1;
            continue;
        }
        let Some((uid, memory_id, ts)) = parse_memory_key(&object.key) else {
            report.errors.push(json!({ "key": object.key, "message": "key does not follow the by-user layout" }));
            continue;
        };
        let Some(blob) = blobs.get(&object.key).await? else { continue };
        let parsed = serde_json::from_slice::<Value>(&blob.bytes)
            .map_err(|e| Error::bad_request("invalid_json", format!("not JSON: {e}")))
            .and_then(unwrap_legacy)
            .and_then(|r| memory_from_value(&r.memory));
        let memory = match parsed {
            Ok(m) if m.id == memory_id => m,
            Ok(m) => {
                report.errors.push(json!({ "key": object.key, "message": format!("body id {} differs from the key's {memory_id}", m.id) }));
                continue;
            }
            Err(e) => {
                report.errors.push(json!({ "key": object.key, "message": e.to_string() }));
                continue;
            }
        };
        let winner = index_existing(&repo, &uid, &memory, &object.key, &blob.bytes, ts).await?;
        if winner.r2_key == object.key {
            report.indexed += 1;
        } else if blob.info.custom.get("writer").map(String::as_str) == Some("r2d1") {
            blobs.delete_many(vec![object.key.clone(), keys::daily_key(&uid, &memory_id, ts)]).await?;
            report.removed_orphans += 1;
        } else {
            report.duplicates += 1;
        }
    }
    report.already_indexed = known.len();
    Ok(report)
}

fn grace_ms(req: &Request) -> Result<i64> {
    match http::query_param(req, "grace_seconds") {
        None => Ok(RECONCILE_GRACE_MS),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=86_400).contains(n))
            .map(|s| s * 1000)
            .ok_or_else(|| Error::invalid_field("grace_seconds", "must be a whole number from 0 to 86400")),
    }
}

fn page_limit(req: &Request) -> Result<u32> {
    match http::query_param(req, "limit") {
        None => Ok(100),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| Error::invalid_field("limit", "must be a whole number from 1 to 500")),
    }
}

/// `POST /api/omi/reindex?cursor=&limit=`: one bounded page per call; call again with
/// `nextCursor` until `done`. Safe to re-run.
pub async fn reindex(req: &Request, app: &App) -> Result<Response> {
    app.require_api_token(req)?;
    let limit = page_limit(req)?;
    let cursor = http::query_param(req, "cursor").filter(|c| !c.is_empty());
    if cursor.as_ref().is_some_and(|c| c.len() > 1024) {
        return Err(Error::bad_request("invalid_cursor", "cursor: is not a cursor this API returned"));
    }
    let report = reindex_page(app, cursor, limit, grace_ms(req)?).await?;
    http::ok(&report.to_json())
}

/// `POST /api/omi/reconcile`: one step of the cron's reconciliation, on demand.
pub async fn reconcile(req: &Request, app: &App) -> Result<Response> {
    app.require_api_token(req)?;
    let report = super::jobs::reconcile_step(app, page_limit(req)?, grace_ms(req)?).await?;
    http::ok(&report.to_json())
}

/// `DELETE /api/omi/users/{uid}`: rows first (one transaction), then objects, so no row ever
/// names a deleted object; prefixes are swept too, so a retry after a partial R2 failure
/// finishes the job.
pub async fn delete_user(req: &Request, app: &App, uid: &str) -> Result<Response> {
    app.require_api_token(req)?;
    let uid = key_part("userId", uid)?;
    let repo = OmiRepo::new(app.meta()?);
    let blobs = app.blobs()?;
    let mut keys = repo.user_keys(&uid).await?;
    let memories = repo.delete_user(&uid).await?;
    for prefix in [keys::user_prefix(&uid), keys::transcript_user_prefix(&uid), keys::day_summary_user_prefix(&uid)] {
        let mut cursor = None;
        loop {
            let page = blobs.list_page(&prefix, cursor, 1000).await?;
            keys.extend(page.objects.into_iter().map(|o| o.key));
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
    }
    let stats_key = keys::user_stats_key(&uid);
    if blobs.head(&stats_key).await?.is_some() {
        keys.push(stats_key);
    }
    keys.sort();
    keys.dedup();
    if memories == 0 && keys.is_empty() {
        return Err(Error::NotFound(format!("no data for user {uid}")));
    }
    let objects = keys.len();
    blobs.delete_many(keys).await?;
    http::ok(&json!({ "success": true, "userId": uid, "deletedMemories": memories, "deletedObjects": objects }))
}
