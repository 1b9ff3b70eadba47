//! HTTP for an app's lifecycle (issue 13): its settings (mode, quotas, retention) and state,
//! deleting versions and whole apps, tags, and retention on demand.

use serde_json::{json, Map, Value};
use worker::{Request, Response};

use super::flag_param;
use crate::config::StorageMode;
use crate::error::{Error, Result};
use crate::files::lifecycle::{self, Quota, Retention, Tag, TagChange};
use crate::files::path::AppId;
use crate::files::service::{AppContext, Files};
use crate::files::{lifecycle_repo, manifest, repo, retention};
use crate::http::{self, App};

/// The app's settings and state, as `GET /api/apps/{app}` shows them.
pub async fn app_document(files: &Files, app_id: &AppId) -> Result<Value> {
    let ctx: AppContext = files.context(app_id).await?;
    let row = ctx.row.clone().ok_or_else(|| Error::NotFound(format!("no app {app_id}")))?;
    let usage = lifecycle_repo::usage(&files.meta, app_id.as_str()).await?;
    let tags = lifecycle_repo::tags(&files.meta, app_id.as_str()).await?;
    let mut storage = Map::new();
    for r in lifecycle_repo::app_locations(&files.meta).await?.into_iter().filter(|r| r.app_id == row.id) {
        if let Some(loc) = r.location {
            storage.insert(loc, json!({ "files": r.files, "bytes": r.bytes }));
        }
    }
    for loc in ["database", "hybrid", "r2"] {
        storage.entry(loc).or_insert_with(|| json!({ "files": 0, "bytes": 0 }));
    }
    Ok(json!({
        "app": row.id,
        "storage_mode": row.storage_mode,
        "effective_storage_mode": ctx.mode.mode.as_str(),
        "cohort": ctx.mode.cohort,
        "rollout_bucket": crate::files::rollout::bucket(&row.id),
        "rollback": ctx.rollout.rollback,
        "inline_max_bytes": ctx.policy.inline_max,
        "hybrid_max_bytes": ctx.policy.hybrid_max,
        "storage": storage,
        "quota": row.quota(),
        "effective_quota": ctx.quota,
        "usage": usage,
        "retention": row.retention(),
        "tags": tags.iter().map(|t| json!({ "tag": t.tag, "version_number": t.version_number })).collect::<Vec<_>>(),
        "revision": row.revision,
        "next_version": row.next_version,
        "created_at": manifest::iso8601(row.created_at),
        "updated_at": manifest::iso8601(row.updated_at),
    }))
}

/// Largest number stored: D1 binds numbers as doubles, exact up to 2^53.
const MAX_SETTING: u64 = (1 << 53) - 1;

fn optional_u64(obj: &Map<String, Value>, field: &str, name: &str) -> Result<Option<Option<u64>>> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= MAX_SETTING)
            .map(|n| Some(Some(n)))
            .ok_or_else(|| Error::invalid_field(name, format!("must be a whole number from 0 to {MAX_SETTING}, or null"))),
    }
}

/// `PUT`/`PATCH /api/apps/{app}`: `storage_mode` (`database`, `hybrid`, `r2`, or null to
/// follow the rollout), `quota` (`max_bytes`, `max_files`, `max_versions`; null: the
/// `APP_MAX_*` default) and `retention` (`keep_last`, `keep_days`; null: keep every version).
/// A field left out is left alone, except `storage_mode` on `PUT` (left out: null).
pub async fn set_app(mut req: Request, app: &App, app_id: &AppId, replace: bool) -> Result<Response> {
    http::require_json_content_type(&req)?;
    let body = http::read_body(&mut req, 64 * 1024).await?;
    let parsed: Value = serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("body: {e}")))?;
    let obj = parsed.as_object().ok_or_else(|| Error::bad_request("invalid_json", "body: must be a JSON object"))?;
    let files = Files::new(app)?;
    let current = repo::app(&files.meta, app_id.as_str()).await?;
    let mode: Option<Option<&'static str>> = match obj.get("storage_mode") {
        None if replace => Some(None),
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(m)) => Some(Some(
            StorageMode::parse(m).ok_or_else(|| Error::invalid_field("storage_mode", "must be database, hybrid, r2 or null"))?.as_str(),
        )),
        Some(_) => return Err(Error::invalid_field("storage_mode", "must be database, hybrid, r2 or null")),
    };
    let mut quota = current.as_ref().map(|r| r.quota()).unwrap_or_default();
    match obj.get("quota") {
        None => {}
        Some(Value::Null) => quota = Quota::default(),
        Some(Value::Object(q)) => {
            for (field, slot) in
                [("max_bytes", &mut quota.max_bytes), ("max_files", &mut quota.max_files), ("max_versions", &mut quota.max_versions)]
            {
                if let Some(v) = optional_u64(q, field, &format!("quota.{field}"))? {
                    *slot = v;
                }
            }
        }
        Some(_) => return Err(Error::invalid_field("quota", "must be an object or null")),
    }
    let mut retention = current.as_ref().map(|r| r.retention()).unwrap_or_default();
    match obj.get("retention") {
        None => {}
        Some(Value::Null) => retention = Retention::default(),
        Some(Value::Object(r)) => {
            let keep_last = optional_u64(r, "keep_last", "retention.keep_last")?.unwrap_or(retention.keep_last.map(u64::from));
            let keep_days = optional_u64(r, "keep_days", "retention.keep_days")?.unwrap_or(retention.keep_days.map(u64::from));
            let small = |v: Option<u64>, name: &str| {
                v.map(|n| u32::try_from(n).map_err(|_| Error::invalid_field(name, "is too large"))).transpose()
            };
            retention = Retention::new(small(keep_last, "retention.keep_last")?, small(keep_days, "retention.keep_days")?)?;
        }
        Some(_) => return Err(Error::invalid_field("retention", "must be an object or null")),
    }
    let keep_mode = current.as_ref().and_then(|r| r.storage_mode.clone());
    let mode = match mode {
        Some(m) => m.map(str::to_string),
        None => keep_mode,
    };
    files
        .meta
        .batch(vec![
            repo::set_app_mode(app_id.as_str(), mode.as_deref(), app.now_ms),
            lifecycle_repo::set_limits(app_id.as_str(), (retention.keep_last, retention.keep_days), &quota, app.now_ms),
        ])
        .await?;
    http::ok(&app_document(&files, app_id).await?)
}

/// `DELETE /api/apps/{app}`: everything the app owns, objects through the GC.
pub async fn delete_app(app: &App, app_id: &AppId) -> Result<Response> {
    let files = Files::new(app)?;
    http::ok(&retention::delete_app(&files, app.config.gc_grace, app_id).await?)
}

/// `DELETE /api/apps/{app}/versions/{version}`: a version no tag names.
pub async fn delete_version(app: &App, app_id: &AppId, v: i64) -> Result<Response> {
    let files = Files::new(app)?;
    http::ok(&retention::delete_version(&files, app.config.gc_grace, app_id, v).await?)
}

/// `POST /api/apps/{app}/retention/run[?dry_run=true]`: the app's retention policy, now.
pub async fn run_retention(req: &Request, app: &App, app_id: &AppId) -> Result<Response> {
    let dry_run = flag_param(req, "dry_run")?;
    let files = Files::new(app)?;
    http::ok(&retention::apply_retention(&files, app.config.gc_grace, app_id, app.now_ms, dry_run).await?)
}

pub async fn list_tags(app: &App, app_id: &AppId) -> Result<Response> {
    let meta = app.meta()?;
    repo::app(&meta, app_id.as_str()).await?.ok_or_else(|| Error::NotFound(format!("no app {app_id}")))?;
    let tags = lifecycle_repo::tags(&meta, app_id.as_str()).await?;
    let list: Vec<Value> = tags
        .iter()
        .map(|t| json!({ "tag": t.tag, "version_number": t.version_number, "updated_at": manifest::iso8601(t.updated_at) }))
        .collect();
    http::ok(&json!({ "app": app_id.as_str(), "tags": list }))
}

/// `PUT /api/apps/{app}/tags/{tag}` with `{"version": n}`: names version `n`; a tag on
/// another version moves. Tagged versions are kept by retention and cannot be deleted.
pub async fn set_tag(mut req: Request, app: &App, app_id: &AppId, tag: &str) -> Result<Response> {
    let tag = Tag::parse(tag)?;
    http::require_json_content_type(&req)?;
    let body = http::read_body(&mut req, 4 * 1024).await?;
    let parsed: Value = serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("body: {e}")))?;
    let v = parsed
        .get("version")
        .and_then(Value::as_i64)
        .filter(|v| *v >= 1)
        .ok_or_else(|| Error::invalid_field("version", "must be a version number (1, 2, …)"))?;
    let meta = app.meta()?;
    let existing = lifecycle_repo::tags(&meta, app_id.as_str())
        .await?
        .into_iter()
        .filter_map(|t| Tag::parse(&t.tag).ok().map(|tag| (tag, t.version_number)))
        .collect();
    let versions: Vec<i64> = lifecycle_repo::version_infos(&meta, app_id.as_str()).await?.iter().map(|x| x.number).collect();
    let change = lifecycle::set_tag(&existing, &versions, &tag, v)?;
    if change != TagChange::Unchanged {
        let done = meta.run(lifecycle_repo::set_tag(app_id.as_str(), tag.as_str(), v, app.now_ms)).await?;
        if done.changes == 0 {
            return Err(Error::NotFound(format!("version {v} does not exist")));
        }
    }
    let status = if change == TagChange::Created { 201 } else { 200 };
    http::json(status, &json!({ "app": app_id.as_str(), "tag": tag, "version_number": v, "change": change }))
}

pub async fn delete_tag(app: &App, app_id: &AppId, tag: &str) -> Result<Response> {
    let tag = Tag::parse(tag)?;
    let done = app.meta()?.run(lifecycle_repo::delete_tag(app_id.as_str(), tag.as_str())).await?;
    if done.changes == 0 {
        return Err(Error::NotFound(format!("app {app_id} has no tag {tag}")));
    }
    Ok(Response::empty()?.with_status(204))
}
