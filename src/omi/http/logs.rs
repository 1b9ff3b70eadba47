//! Read routes over the index: logs, one memory, mentors, stats, daily analytics, transcripts
//! and day summaries. Routes naming a mentor were authorized for it by the router; list routes
//! apply the forced filter a narrow key gets (`super::only_mentors`).

use futures_util::future::join_all;
use serde::Serialize;
use serde_json::{json, Value};
use worker::{Headers, Request, Response};

use super::{key_part, only_mentors};
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::payload::unwrap_legacy;
use crate::omi::query::{daily_range, logs_query, Params, Sort};
use crate::omi::render::{day_series, iso, legacy_log, log_entry, LogEntry};
use crate::omi::repo::OmiRepo;
use crate::store::object;
use crate::store::BlobStore;

/// The largest stored memory, transcript batch or summary a read accepts (bodies are at most
/// `MAX_BODY_BYTES`, 8 MiB by default; this leaves room for a raised limit).
const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogsPage<'a> {
    success: bool,
    logs: Vec<LogEntry<'a>>,
    source: &'static str,
    total: i64,
    next_cursor: Option<String>,
}

fn params(req: &Request) -> Params {
    Params::new(http::query_pairs(req))
}

/// Reads an object that the index names, verified: missing or damaged is one error everywhere
/// (`Error::Integrity`, 500 `integrity_error`).
pub(super) async fn stored_bytes(blobs: &BlobStore, key: &str, sha256: &str) -> Result<Vec<u8>> {
    object::read(blobs, key, sha256, MAX_OBJECT_BYTES).await?.or_integrity(&format!("indexed object {key}"))
}

/// `GET /api/omi/logs?userId=&limit=&cursor=&from=&to=&category=&q=&sort=&include_discarded=&full=`
/// `[&source=][&format=legacy]`: the old app's parameters are accepted (`source` named where
/// it read from, `r2` or local files: everything is in R2 now, so it changes nothing), and
/// `format=legacy` answers each log in the old app's wrapper shape for its dashboard.
pub async fn list(req: &Request, app: &App) -> Result<Response> {
    let p = params(req);
    let mut q = logs_query(&p)?;
    q.only_users = only_mentors(app);
    if q.full {
        // Each stored memory is one R2 read: a `full` page holds what the request's budget
        // leaves after the page's two D1 statements (48 on the Free plan); `nextCursor` goes on.
        q.limit = full_page_limit(q.limit, app.state.ops_left());
    }
    let legacy = match p.get("format") {
        None | Some("json") => false,
        Some("legacy") => true,
        Some(_) => return Err(Error::invalid_field("format", "must be json or legacy")),
    };
    let repo = OmiRepo::new(app.meta()?);
    let (rows, total, next_cursor) = match q.sort {
        Sort::Newest => {
            let (mut rows, total) = repo.logs(&q).await?;
            let next = if rows.len() > q.limit as usize {
                rows.truncate(q.limit as usize);
                rows.last().map(|r| r.cursor().encode())
            } else {
                None
            };
            (rows, total, next)
        }
        Sort::Relevance => {
            let (rows, total, next) = repo.ranked(&q).await?;
            (rows, total, next.map(|c| c.encode()))
        }
    };
    if legacy {
        let blobs = app.blobs()?;
        let bodies = join_all(rows.iter().map(|r| stored_bytes(&blobs, &r.r2_key, &r.sha256))).await;
        let mut logs = Vec::with_capacity(rows.len());
        for (row, body) in rows.iter().zip(bodies) {
            let stored: Value = serde_json::from_slice(&body?).unwrap_or(Value::Null);
            // Objects the old app wrote and reindex adopted hold a wrapper already.
            let memory = unwrap_legacy(stored).map(|r| r.memory).unwrap_or(Value::Null);
            logs.push(legacy_log(row, memory));
        }
        return http::ok(&json!({ "success": true, "logs": logs, "source": "r2", "total": total, "nextCursor": next_cursor }));
    }
    let mut logs: Vec<LogEntry> = rows.iter().map(log_entry).collect();
    if q.full {
        let blobs = app.blobs()?;
        let bodies = join_all(rows.iter().map(|r| stored_bytes(&blobs, &r.r2_key, &r.sha256))).await;
        for (entry, body) in logs.iter_mut().zip(bodies) {
            entry.memory = Some(serde_json::from_slice(&body?).unwrap_or(Value::Null));
        }
    }
    http::ok(&LogsPage { success: true, logs, source: "r2", total, next_cursor })
}

/// The page size of `full=1`: what was asked, at most the operations left after the page's
/// two D1 statements (never below one).
fn full_page_limit(asked: u32, ops_left: u64) -> u32 {
    let fits = ops_left.saturating_sub(2).max(1);
    asked.min(u32::try_from(fits).unwrap_or(u32::MAX))
}

/// `GET /api/omi/logs/{uid}/{memoryId}[?version=n]`: the stored JSON, byte for byte.
pub async fn one(req: &Request, app: &App, uid: &str, memory_id: &str) -> Result<Response> {
    let (uid, memory_id) = (key_part("userId", uid)?, key_part("memoryId", memory_id)?);
    let version = params(req)
        .get("version")
        .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| Error::invalid_field("version", "must be a whole number from 1")))
        .transpose()?;
    let row = OmiRepo::new(app.meta()?).version(&uid, &memory_id, version).await?.ok_or_else(|| {
        Error::NotFound(format!("no memory {memory_id} for user {uid}{}", version.map(|v| format!(" at version {v}")).unwrap_or_default()))
    })?;
    let etag = format!("\"{}\"", row.sha256);
    let headers = Headers::new();
    headers.set("ETag", &etag)?;
    headers.set("X-R2D1-Version", &row.version.to_string())?;
    headers.set("Cache-Control", "private, no-cache")?;
    if http::header(req, "If-None-Match").is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return Ok(Response::empty()?.with_status(304).with_headers(headers));
    }
    let bytes = stored_bytes(&app.blobs()?, &row.r2_key, &row.sha256).await?;
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    Ok(Response::from_bytes(bytes)?.with_headers(headers))
}

/// `GET /api/omi/logs/{uid}/{memoryId}/versions`
pub async fn versions(app: &App, uid: &str, memory_id: &str) -> Result<Response> {
    let (uid, memory_id) = (key_part("userId", uid)?, key_part("memoryId", memory_id)?);
    let rows = OmiRepo::new(app.meta()?).versions(&uid, &memory_id).await?;
    if rows.is_empty() {
        return Err(Error::NotFound(format!("no memory {memory_id} for user {uid}")));
    }
    let versions: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({ "version": r.version, "r2Key": r.r2_key, "sha256": r.sha256, "sizeBytes": r.size_bytes,
                    "receivedAt": iso(r.received_at) })
        })
        .collect();
    http::ok(&json!({ "success": true, "userId": uid, "memoryId": memory_id, "versions": versions }))
}

/// `GET /api/omi/users`: mentors with counts, first and last seen (a narrow key: its own).
pub async fn users(app: &App) -> Result<Response> {
    let rows = OmiRepo::new(app.meta()?).users_among(&only_mentors(app)).await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "userId": r.user_id, "memories": r.memories, "discarded": r.discarded,
                "totalDurationSeconds": r.total_duration_seconds,
                "minutes": (r.total_duration_seconds / 6.0).round() / 10.0,
                "words": r.words,
                "firstSeen": r.first_seen.map(iso), "lastSeen": r.last_seen.map(iso),
            })
        })
        .collect();
    http::ok(&json!({ "success": true, "users": users, "total": users.len() }))
}

/// A mentor's stats as `GET /api/omi/users/{uid}/stats` shows them; `None` without memories.
pub async fn stats_json(app: &App, uid: &str) -> Result<Option<Value>> {
    let (t, categories) = OmiRepo::new(app.meta()?).user_stats(uid).await?;
    if t.memories == 0 {
        return Ok(None);
    }
    let categories: serde_json::Map<String, Value> = categories.iter().map(|c| (c.category.clone(), json!(c.memories))).collect();
    Ok(Some(json!({
        "memories": t.memories, "discarded": t.discarded.unwrap_or(0),
        "totalDurationSeconds": t.total_duration_seconds,
        "totalMinutes": (t.total_duration_seconds / 6.0).round() / 10.0,
        "words": t.words, "segments": t.segments,
        "categories": categories,
        "actionItems": { "total": t.action_items_total, "completed": t.action_items_completed },
        "activeDays": t.active_days,
        "first": t.first.map(iso), "last": t.last.map(iso),
    })))
}

/// `GET /api/omi/users/{uid}/stats`
pub async fn stats(app: &App, uid: &str) -> Result<Response> {
    let uid = key_part("userId", uid)?;
    let stats = stats_json(app, &uid).await?.ok_or_else(|| Error::NotFound(format!("no memories for user {uid}")))?;
    http::ok(&json!({ "success": true, "userId": uid, "stats": stats }))
}

/// `GET /api/omi/analytics/daily?from=&to=&userId=`
pub async fn daily(req: &Request, app: &App) -> Result<Response> {
    let p = params(req);
    let uid = p.user_id("userId")?;
    let (from, to) = daily_range(&p, app.now_ms)?;
    let rows = OmiRepo::new(app.meta()?).daily_among(from, to, uid.as_deref(), &only_mentors(app)).await?;
    let days = day_series(&rows, from, to);
    let memories: i64 = days.iter().map(|d| d["memories"].as_i64().unwrap_or(0)).sum();
    http::ok(&json!({ "success": true, "userId": uid, "from": iso(from), "to": iso(to), "totalMemories": memories, "days": days }))
}

/// `GET /api/omi/day-summaries/{uid}/{yyyy-mm-dd}`: the stored day summary, as Omi sent it.
pub async fn day_summary(app: &App, uid: &str, date: &str) -> Result<Response> {
    let uid = key_part("userId", uid)?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| Error::invalid_field("date", "must be YYYY-MM-DD"))?;
    let row = OmiRepo::new(app.meta()?)
        .day_summary(&uid, date)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no day summary for user {uid} on {date}")))?;
    let bytes = stored_bytes(&app.blobs()?, &row.r2_key, &row.sha256).await?;
    let headers = Headers::new();
    headers.set("Content-Type", "application/json; charset=utf-8")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    Ok(Response::from_bytes(bytes)?.with_headers(headers))
}

#[cfg(test)]
mod tests {
    use super::full_page_limit;

    #[test]
    fn a_full_page_stays_within_the_budget() {
        assert_eq!(full_page_limit(100, 50), 48);
        assert_eq!(full_page_limit(20, 50), 20);
        assert_eq!(full_page_limit(100, 1000), 100);
        assert_eq!(full_page_limit(100, u64::MAX), 100);
        assert_eq!(full_page_limit(100, 0), 1);
    }
}
