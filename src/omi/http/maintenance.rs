//! Maintenance routes: legacy import, reindex from the bucket, reconciliation, deleting a
//! mentor. The work is in `omi::maintenance`, shared with the jobs.

use worker::{Request, Response};

use super::key_part;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::keys::check_key_part;
use crate::omi::maintenance::{self as domain, MAX_IMPORT_LINES, RECONCILE_GRACE_MS};
use crate::store::{jobs, Kind};

/// `POST /api/omi/import[?uid=]`: NDJSON of legacy records.
pub async fn import(mut req: Request, app: &App) -> Result<Response> {
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
    http::ok(&domain::import(app, default_uid.as_deref(), lines).await?)
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

/// `POST /api/omi/reindex?cursor=&limit=`: one bounded page of `by-user/` per call; call
/// again with `nextCursor` until `done`. Safe to re-run.
pub async fn reindex(req: &Request, app: &App) -> Result<Response> {
    let limit = page_limit(req)?;
    let cursor = http::query_param(req, "cursor").filter(|c| !c.is_empty());
    if cursor.as_ref().is_some_and(|c| c.len() > 1024) {
        return Err(Error::bad_request("invalid_cursor", "cursor: is not a cursor this API returned"));
    }
    http::ok(&domain::reconcile_page(app, Kind::Memory, cursor, limit, grace_ms(req)?).await?)
}

/// `POST /api/omi/reconcile`: one step of the `omi.reconcile` job, on demand, resuming from
/// the job's cursor (memories, then transcripts, then day summaries).
pub async fn reconcile(req: &Request, app: &App) -> Result<Response> {
    let (limit, grace) = (page_limit(req)?, grace_ms(req)?);
    let cursor = jobs::states(app).await?.into_iter().find(|r| r.name == "omi.reconcile").and_then(|r| r.cursor);
    let report = domain::reconcile_step(app, cursor, limit, grace).await?;
    jobs::set_cursor(app, "omi.reconcile", report.next_cursor.as_deref()).await?;
    http::ok(&report)
}

/// `DELETE /api/omi/users/{uid}`: every row of the mentor and every object (see
/// `omi::maintenance::delete_user`).
pub async fn delete_user(app: &App, uid: &str) -> Result<Response> {
    let uid = key_part("userId", uid)?;
    http::ok(&domain::delete_user(app, &uid).await?)
}
