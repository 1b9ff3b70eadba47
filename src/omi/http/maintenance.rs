//! Maintenance routes: legacy import, reindex from the bucket, reconciliation, deleting a
//! mentor, and the old app's migration (uid mapping, migrate). The work is in
//! `omi::maintenance` (shared with the jobs) and `omi::migration`.

use worker::{Request, Response};

use super::key_part;
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::omi::keys::check_key_part;
use crate::omi::legacy::Mapping;
use crate::omi::legacy_repo;
use crate::omi::maintenance::{self as domain, MAX_IMPORT_LINES, RECONCILE_GRACE_MS};
use crate::omi::migration::{self, Cursor};
use crate::omi::query::Params;
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

/// The largest mapping accepted (a line per mentor: a programme has hundreds).
const MAX_MAPPING_BYTES: usize = 1024 * 1024;

fn mapping_json(mapping: &Mapping) -> serde_json::Value {
    let pairs: serde_json::Map<String, serde_json::Value> = mapping.pairs().map(|(k, v)| (k.to_string(), v.into())).collect();
    serde_json::json!({ "success": true, "count": pairs.len(), "mapping": pairs })
}

/// `GET /api/omi/legacy/mapping`: the old app's sanitised ids and the real Omi uids they stand
/// for.
pub async fn mapping(app: &App) -> Result<Response> {
    http::ok(&mapping_json(&legacy_repo::mapping(&app.meta()?).await?))
}

/// `PUT /api/omi/legacy/mapping`: replaces the mapping with the body, a JSON object
/// `{"sanitized": "RealOmiUid"}` or CSV lines `sanitized,RealOmiUid` (as the CLI's `--mapping`).
pub async fn put_mapping(mut req: Request, app: &App) -> Result<Response> {
    let body = http::read_body(&mut req, MAX_MAPPING_BYTES).await?;
    let text = std::str::from_utf8(&body).map_err(|_| Error::invalid_field("mapping", "is not valid UTF-8"))?;
    let mapping = Mapping::parse(text)?;
    let meta = app.meta()?;
    meta.batch(legacy_repo::replace_mapping(&mapping, meta.request().now())).await?;
    http::ok(&mapping_json(&mapping))
}

/// `POST /api/omi/legacy/migrate[?dry_run=1][&cursor=][&limit=]`: one bounded step of the old
/// app's migration (see `omi::migration`); call again with `nextCursor` until `done`.
/// Without a cursor a new pass starts. One pass at a time.
pub async fn migrate(req: &Request, app: &App) -> Result<Response> {
    let p = Params::new(http::query_pairs(req));
    let dry_run = p.flag("dry_run")?;
    let limit = page_limit(req)?;
    let cursor = p
        .get("cursor")
        .map(|c| Cursor::decode(c).ok_or_else(|| Error::bad_request("invalid_cursor", "cursor: is not a cursor this API returned")))
        .transpose()?;
    http::ok(&migration::step(app, cursor, dry_run, limit).await?)
}
