//! HTTP for the files workload (`/api/apps/…` and `/api/admin/storage/…`): the routes (each
//! needs a key, its scope being its row in `access::table`, except the signed URLs under
//! `/api/signed/`, whose HMAC is the credential), and thin handlers that parse the request into
//! typed values, call the service, and render the response. Issue 13's handlers live in
//! [`lifecycle`] (settings, deletes, tags, retention), [`builds`] (exports, changes, signed URLs)
//! and [`storage`] (rollout settings, the report).

mod builds;
pub mod lifecycle;
mod storage;

use serde::Deserialize;
use serde_json::json;
use worker::{Headers, Method, Request, Response};

use super::maintenance;
use super::path::{AppId, FilePath};
use super::repo::{self, FileRecord, WriteCondition};
use super::service::{FileView, Files, Source};
use super::{content, lifecycle_repo, manifest};
use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::routes::{route, Route};
use crate::store::gc::{self, Grace};
use crate::store::jobs::API_BUDGET_MS;

/// Files one `files:batch` request may carry: each is a statement in one D1 transaction.
const MAX_BATCH_FILES: usize = 500;

pub static ROUTES: &[Route] = &[
    route!(Get "/api/apps", ApiToken, |_req, app, _p| list_apps(app).await),
    route!(Get "/api/apps/{app}", ApiToken, |_req, app, p| get_app(app, &AppId::parse(p.get("app"))?).await),
    route!(Put "/api/apps/{app}", ApiToken, |req, app, p| lifecycle::set_app(req, app, &AppId::parse(p.get("app"))?, true).await),
    route!(Patch "/api/apps/{app}", ApiToken, |req, app, p| lifecycle::set_app(req, app, &AppId::parse(p.get("app"))?, false).await),
    route!(Get "/api/apps/{app}/files", ApiToken, |_req, app, p| list_files(app, &AppId::parse(p.get("app"))?).await),
    route!(Post "/api/apps/{app}/files:batch", ApiToken, |req, app, p| batch(req, app, &AppId::parse(p.get("app"))?).await),
    route!(Get "/api/apps/{app}/files/{path+}", ApiToken, |req, app, p| {
        let (app_id, path) = (AppId::parse(p.get("app"))?, FilePath::parse(p.get("path"))?);
        get_file(&req, app, &app_id, &path).await
    }),
    route!(Put "/api/apps/{app}/files/{path+}", ApiToken, |req, app, p| {
        let (app_id, path) = (AppId::parse(p.get("app"))?, FilePath::parse(p.get("path"))?);
        put_file(req, app, &app_id, &path).await
    }),
    route!(Delete "/api/apps/{app}/files/{path+}", ApiToken, |req, app, p| {
        let (app_id, path) = (AppId::parse(p.get("app"))?, FilePath::parse(p.get("path"))?);
        delete_file(&req, app, &app_id, &path).await
    }),
    route!(Get "/api/apps/{app}/versions", ApiToken, |_req, app, p| list_versions(app, &AppId::parse(p.get("app"))?).await),
    route!(Post "/api/apps/{app}/versions", ApiToken, |req, app, p| create_version(req, app, &AppId::parse(p.get("app"))?).await),
    route!(Get "/api/apps/{app}/versions/{version}", ApiToken, |_req, app, p| {
        get_version(app, &AppId::parse(p.get("app"))?, version_number(p.get("version"))?).await
    }),
    route!(Get "/api/apps/{app}/versions/{version}/files/{path+}", ApiToken, |req, app, p| {
        let (app_id, v) = (AppId::parse(p.get("app"))?, version_number(p.get("version"))?);
        let path = FilePath::parse(p.get("path"))?;
        let files = Files::new(app)?;
        let rec = files.version_file(&app_id, v, &path).await?;
        serve(&req, &files, &format!("{app_id} v{v} {path}"), &rec).await
    }),
    route!(Get "/api/apps/{app}/versions/{version}/diff/{other}", ApiToken, |_req, app, p| {
        let files = Files::new(app)?;
        let app_id = AppId::parse(p.get("app"))?;
        http::ok(&files.diff(&app_id, version_number(p.get("version"))?, version_number(p.get("other"))?).await?)
    }),
    route!(Post "/api/apps/{app}/versions/{version}/restore", ApiToken, |_req, app, p| {
        let files = Files::new(app)?;
        let doc = files.restore(app, &AppId::parse(p.get("app"))?, version_number(p.get("version"))?).await?;
        http::json(201, &doc)
    }),
    route!(Get "/api/apps/{app}/versions/{version}/archive", ApiToken, |req, app, p| {
        builds::archive(&req, app, &AppId::parse(p.get("app"))?, version_number(p.get("version"))?).await
    }),
    // Lifecycle (issue 13): deleting versions and apps, tags, retention.
    route!(Delete "/api/apps/{app}", ApiToken, |_req, app, p| lifecycle::delete_app(app, &AppId::parse(p.get("app"))?).await),
    route!(Delete "/api/apps/{app}/versions/{version}", ApiToken, |_req, app, p| {
        lifecycle::delete_version(app, &AppId::parse(p.get("app"))?, version_number(p.get("version"))?).await
    }),
    route!(Get "/api/apps/{app}/tags", ApiToken, |_req, app, p| lifecycle::list_tags(app, &AppId::parse(p.get("app"))?).await),
    route!(Put "/api/apps/{app}/tags/{tag}", ApiToken, |req, app, p| {
        let app_id = AppId::parse(p.get("app"))?;
        lifecycle::set_tag(req, app, &app_id, p.get("tag")).await
    }),
    route!(Delete "/api/apps/{app}/tags/{tag}", ApiToken, |_req, app, p| {
        lifecycle::delete_tag(app, &AppId::parse(p.get("app"))?, p.get("tag")).await
    }),
    route!(Post "/api/apps/{app}/retention/run", ApiToken, |req, app, p| {
        lifecycle::run_retention(&req, app, &AppId::parse(p.get("app"))?).await
    }),
    // Builds (issue 13): the whole app in one stream, changes since a revision, signed URLs.
    route!(Get "/api/apps/{app}/export", ApiToken, |req, app, p| builds::export(&req, app, &AppId::parse(p.get("app"))?).await),
    route!(Get "/api/apps/{app}/changes", ApiToken, |req, app, p| builds::changes(&req, app, &AppId::parse(p.get("app"))?).await),
    route!(Post "/api/apps/{app}/signed-urls", ApiToken, |req, app, p| builds::sign(req, app, &AppId::parse(p.get("app"))?).await),
    route!(Get "/api/signed/apps/{app}/files/{path+}", Open, |req, app, p| {
        let (app_id, path) = (AppId::parse(p.get("app"))?, FilePath::parse(p.get("path"))?);
        builds::signed_file(&req, app, &app_id, &path).await
    }),
    route!(Get "/api/signed/apps/{app}/versions/{version}/files/{path+}", Open, |req, app, p| {
        let (app_id, path) = (AppId::parse(p.get("app"))?, FilePath::parse(p.get("path"))?);
        builds::signed_version_file(&req, app, &app_id, p.get("version"), &path).await
    }),
    route!(Get "/api/signed/apps/{app}/versions/{version}/archive", Open, |req, app, p| {
        builds::signed_archive(&req, app, &AppId::parse(p.get("app"))?, p.get("version")).await
    }),
    route!(Post "/api/admin/storage/migrate", ApiToken, |req, app, _p| {
        let batch = number_param(&req, "batch", 25, 1, 500)? as u32;
        let dry_run = flag_param(&req, "dry_run")?;
        let filter = app_filter(&req)?;
        http::ok(&maintenance::migrate(&Files::new(app)?, &app.config, app.now_ms, filter.as_ref(), batch, dry_run).await?)
    }),
    route!(Post "/api/admin/storage/rollback", ApiToken, |req, app, _p| {
        let batch = number_param(&req, "batch", 25, 1, 500)? as u32;
        let filter = app_filter(&req)?;
        http::ok(&maintenance::rollback(&Files::new(app)?, filter.as_ref(), batch).await?)
    }),
    route!(Post "/api/admin/storage/gc", ApiToken, |req, app, _p| gc(&req, app).await),
    route!(Get "/api/admin/storage/report", ApiToken, |req, app, _p| storage::report(&req, app).await),
    route!(Post "/api/admin/storage/import", ApiToken, |req, app, _p| import(req, app).await),
    // The rollout and its rollback switch, without a deploy (issue 13).
    route!(Get "/api/admin/storage/rollout", ApiToken, |_req, app, _p| storage::get_rollout(app).await),
    route!(Put "/api/admin/storage/rollout", ApiToken, |req, app, _p| storage::put_rollout(req, app).await),
];

pub(super) fn app_filter(req: &Request) -> Result<Option<AppId>> {
    match http::query_param(req, "app") {
        Some(a) if !a.is_empty() => Ok(Some(AppId::parse(&a)?)),
        _ => Ok(None),
    }
}

/// `POST /api/admin/storage/gc?grace_hours=&cursor=`: one bounded run of the storage core's GC
/// (the `gc` job's code): a listing pass from `cursor` (or the first key) that condemns
/// unreferenced objects older than the grace, then a sweep of eligible marks. Objects are
/// deleted by a later call, once their marks are older than the grace.
async fn gc(req: &Request, app: &App) -> Result<Response> {
    let grace = match http::query_param(req, "grace_hours") {
        None => app.config.gc_grace,
        Some(g) => Grace::from_hours(&g).map_err(|why| Error::invalid_field("grace_hours", why))?,
    };
    let cursor = http::query_param(req, "cursor").filter(|c| !c.is_empty());
    let run = gc::run(app, grace, cursor, app.state.now() + API_BUDGET_MS).await?;
    http::ok(&json!({
        "scanned": run.listing.scanned,
        "condemned": run.listing.condemned,
        "kept_in_grace": run.listing.kept_recent,
        "kept_not_ours": run.listing.kept_not_ours,
        "claimed": run.sweep.claimed,
        "deleted": run.sweep.deleted,
        "complete": run.listing.pass_complete,
        "cursor": run.listing.cursor,
    }))
}

async fn import(mut req: Request, app: &App) -> Result<Response> {
    http::require_json_content_type(&req)?;
    let body = http::read_body(&mut req, app.config.max_body_bytes).await?;
    let parsed: maintenance::ImportRequest =
        serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("import body: {e}")))?;
    http::ok(&maintenance::import(&Files::new(app)?, app.now_ms, parsed).await?)
}

// ---------------------------------------------------------------------------------------------

pub(super) fn version_number(raw: &str) -> Result<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| Error::invalid_field("version", format!("must be a version number (1, 2, …), got {raw:?}")))
}

pub(super) fn number_param(req: &Request, name: &str, default: u64, min: u64, max: u64) -> Result<u64> {
    match http::query_param(req, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| Error::invalid_field(name, format!("must be a whole number from {min} to {max}"))),
    }
}

pub(super) fn flag_param(req: &Request, name: &str) -> Result<bool> {
    match http::query_param(req, name).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("0") | Some("false") | Some("no") => Ok(false),
        Some("1") | Some("true") | Some("yes") => Ok(true),
        Some(_) => Err(Error::invalid_field(name, "must be true or false")),
    }
}

/// An `If-Match`/`If-None-Match` value: a quoted or bare SHA-256 (weak prefix tolerated).
fn etag_value(raw: &str) -> String {
    raw.trim().trim_start_matches("W/").trim_matches('"').to_ascii_lowercase()
}

fn write_condition(req: &Request) -> Result<WriteCondition> {
    if let Some(m) = http::header(req, "If-Match") {
        let sha = etag_value(&m);
        if !content::is_sha256_hex(&sha) {
            return Err(Error::invalid_field("If-Match", "must be the file's sha256 (its ETag)"));
        }
        return Ok(WriteCondition::IfMatch(sha));
    }
    match http::header(req, "If-None-Match").map(|v| v.trim().to_string()) {
        Some(v) if v == "*" => Ok(WriteCondition::IfAbsent),
        Some(_) => Err(Error::invalid_field("If-None-Match", "only * is supported on writes")),
        None => Ok(WriteCondition::Any),
    }
}

async fn list_apps(app: &App) -> Result<Response> {
    let rows = repo::apps(&app.meta()?).await?;
    // A key for some apps only (`apps:read:{app}`) lists those (the router's forced filter).
    let only = app.caller.grant.only.as_ref().filter(|o| o.kind == crate::access::scope::TargetKind::App);
    let apps: Vec<_> = rows
        .iter()
        .filter(|r| only.is_none_or(|o| o.values.contains(&r.id)))
        .map(|r| json!({ "app": r.id, "storage_mode": r.storage_mode, "created_at": manifest::iso8601(r.created_at), "updated_at": manifest::iso8601(r.updated_at) }))
        .collect();
    http::ok(&json!({ "apps": apps }))
}

async fn get_app(app: &App, app_id: &AppId) -> Result<Response> {
    http::ok(&lifecycle::app_document(&Files::new(app)?, app_id).await?)
}

async fn list_files(app: &App, app_id: &AppId) -> Result<Response> {
    let files = repo::list_files(&app.meta()?, app_id.as_str()).await?;
    let views: Vec<FileView> = files.iter().map(FileView::from).collect();
    let total: u64 = files.iter().map(|f| f.size_bytes).sum();
    http::ok(&json!({ "app": app_id.as_str(), "file_count": views.len(), "total_bytes": total, "files": views }))
}

async fn get_file(req: &Request, app: &App, app_id: &AppId, path: &FilePath) -> Result<Response> {
    let files = Files::new(app)?;
    let rec = files.file(app_id, path).await?;
    serve(req, &files, &format!("{app_id} {path}"), &rec).await
}

/// Answers with a file's bytes, `ETag` = sha256, and 304 when `If-None-Match` names it.
pub(super) async fn serve(req: &Request, files: &Files, what: &str, rec: &FileRecord) -> Result<Response> {
    let headers = Headers::new();
    headers.set("ETag", &format!("\"{}\"", rec.sha256))?;
    headers.set("Cache-Control", "no-cache")?;
    headers.set("X-Content-SHA256", &rec.sha256)?;
    headers.set("X-R2D1-Storage-Location", rec.storage_location.as_deref().unwrap_or(""))?;
    if let Some(inm) = http::header(req, "If-None-Match") {
        if inm.split(',').any(|t| t.trim() == "*" || etag_value(t) == rec.sha256) {
            return Ok(Response::empty()?.with_status(304).with_headers(headers));
        }
    }
    let (bytes, source): (Vec<u8>, Source) = files.load(what, rec).await?;
    headers.set("Content-Type", &rec.content_type)?;
    for (name, value) in crate::access::headers::download_headers(&rec.content_type, &rec.path) {
        headers.set(name, &value)?;
    }
    headers.set("X-R2D1-Source", source.as_str())?;
    if req.method() == Method::Head {
        headers.set("Content-Length", &bytes.len().to_string())?;
        return Ok(Response::empty()?.with_headers(headers));
    }
    Ok(Response::from_bytes(bytes)?.with_headers(headers))
}

fn file_response(status: u16, view: &FileView) -> Result<Response> {
    let mut resp = http::json(status, view)?;
    resp.headers_mut().set("ETag", &format!("\"{}\"", view.sha256))?;
    Ok(resp)
}

async fn put_file(mut req: Request, app: &App, app_id: &AppId, path: &FilePath) -> Result<Response> {
    let condition = write_condition(&req)?;
    let entry_point = flag_param(&req, "entry_point")?;
    let body = http::read_body(&mut req, app.config.max_body_bytes).await?;
    let files = Files::new(app)?;
    let (view, created) = files.put_file(app, app_id, path, body, condition, entry_point).await?;
    file_response(if created { 201 } else { 200 }, &view)
}

async fn delete_file(req: &Request, app: &App, app_id: &AppId, path: &FilePath) -> Result<Response> {
    let if_match = match http::header(req, "If-Match") {
        Some(m) => {
            let sha = etag_value(&m);
            if !content::is_sha256_hex(&sha) {
                return Err(Error::invalid_field("If-Match", "must be the file's sha256 (its ETag)"));
            }
            Some(sha)
        }
        None => None,
    };
    Files::new(app)?.delete_file(app, app_id, path, if_match).await?;
    Ok(Response::empty()?.with_status(204))
}

#[derive(Deserialize)]
struct BatchFile {
    path: String,
    content: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    entry_point: bool,
}

#[derive(Deserialize)]
struct BatchRequest {
    #[serde(default)]
    files: Vec<BatchFile>,
    #[serde(default)]
    delete: Vec<String>,
}

async fn batch(mut req: Request, app: &App, app_id: &AppId) -> Result<Response> {
    http::require_json_content_type(&req)?;
    let body = http::read_body(&mut req, app.config.max_body_bytes).await?;
    let parsed: BatchRequest = serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("batch body: {e}")))?;
    if parsed.files.len() + parsed.delete.len() > MAX_BATCH_FILES {
        return Err(Error::invalid_field("files", format!("at most {MAX_BATCH_FILES} files and deletions per batch")));
    }
    if parsed.files.is_empty() && parsed.delete.is_empty() {
        return Err(Error::invalid_field("files", "must not be empty"));
    }
    // Validate everything before writing anything.
    let mut files = Vec::with_capacity(parsed.files.len());
    let mut seen = std::collections::HashSet::new();
    for (i, f) in parsed.files.into_iter().enumerate() {
        let path = FilePath::parse(&f.path)?;
        if !seen.insert(path.clone()) {
            return Err(Error::invalid_field(&format!("files[{i}].path"), format!("{path} appears twice")));
        }
        let bytes = maintenance::decode_content(&format!("files[{i}].content"), &f.content, f.encoding.as_deref())?;
        files.push((path, bytes, f.entry_point));
    }
    let mut deletes = Vec::with_capacity(parsed.delete.len());
    for d in &parsed.delete {
        let path = FilePath::parse(d)?;
        if !seen.insert(path.clone()) {
            return Err(Error::invalid_field("delete", format!("{path} is both written and deleted")));
        }
        deletes.push(path);
    }
    let deleted: Vec<String> = deletes.iter().map(|d| d.to_string()).collect();
    let views = Files::new(app)?.put_many(app, app_id, files, deletes).await?;
    http::ok(&json!({ "app": app_id.as_str(), "files": views, "deleted": deleted }))
}

async fn list_versions(app: &App, app_id: &AppId) -> Result<Response> {
    let meta = app.meta()?;
    let rows = repo::versions(&meta, app_id.as_str()).await?;
    let tags = lifecycle_repo::tags(&meta, app_id.as_str()).await?;
    let versions: Vec<_> = rows
        .iter()
        .map(|v| {
            let named: Vec<&str> = tags.iter().filter(|t| t.version_number == v.version_number).map(|t| t.tag.as_str()).collect();
            json!({
                "tags": named,
                "version_number": v.version_number,
                "changelog": v.changelog,
                "environment": v.environment,
                "storage_strategy": v.storage_strategy,
                "file_count": v.file_count,
                "total_bytes": v.total_bytes,
                "restored_from": v.restored_from,
                "created_at": manifest::iso8601(v.created_at),
            })
        })
        .collect();
    http::ok(&json!({ "app": app_id.as_str(), "versions": versions }))
}

#[derive(Deserialize, Default)]
struct NewVersionBody {
    #[serde(default)]
    changelog: Option<String>,
    #[serde(default)]
    environment: Option<String>,
}

async fn create_version(mut req: Request, app: &App, app_id: &AppId) -> Result<Response> {
    http::require_json_content_type(&req)?;
    let body = http::read_body(&mut req, 64 * 1024).await?;
    let parsed: NewVersionBody = if body.iter().all(u8::is_ascii_whitespace) {
        NewVersionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("body: {e}")))?
    };
    let environment = parsed.environment.unwrap_or_else(|| "development".into());
    if environment.is_empty() || environment.len() > 64 {
        return Err(Error::invalid_field("environment", "must be 1-64 characters"));
    }
    let changelog = parsed.changelog.unwrap_or_default();
    if changelog.len() > 16 * 1024 {
        return Err(Error::invalid_field("changelog", "must be at most 16 KiB"));
    }
    let doc = Files::new(app)?.create_version(app, app_id, changelog, environment).await?;
    http::json(201, &doc)
}

async fn get_version(app: &App, app_id: &AppId, v: i64) -> Result<Response> {
    let (doc, from) = Files::new(app)?.manifest(app_id, v).await?;
    let mut resp = http::ok(&doc)?;
    resp.headers_mut().set("X-R2D1-Manifest-Source", from)?;
    Ok(resp)
}
