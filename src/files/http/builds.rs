//! HTTP for what a build pipeline calls (issue 13): the whole app (or a version) in one
//! streamed response, the changes since a revision, and signed URLs that fetch a file or an
//! archive without the API key.

use serde::Deserialize;
use serde_json::json;
use worker::{Headers, Request, Response};

use super::{number_param, serve, version_number};
use crate::error::{Error, Result};
use crate::files::changes::{self, ChangeAction, ChangeEntry, Cursor, LogState, Outcome};
use crate::files::export::{self, Format, Selector};
use crate::files::path::{AppId, FilePath};
use crate::files::repo;
use crate::files::service::Files;
use crate::files::signed_url::{self, Pin, UrlKey};
use crate::files::stream::ArchiveFormat;
use crate::http::{self, App};

/// Percent-encodes one path segment the one way signed paths are written (RFC 3986
/// unreserved characters kept), so signing and checking agree whatever a client re-encodes.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_path(p: &str) -> String {
    p.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

/// Sends a planned export: headers that say what it carries, then the streamed body.
async fn send(export: export::Export, format: Format) -> Result<Response> {
    let p = export.plan.clone();
    let headers = Headers::new();
    headers.set("Content-Type", format.content_type())?;
    headers.set("Content-Disposition", &format!("attachment; filename=\"{}.{}\"", p.name, format.extension()))?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("X-R2D1-Export-Files", &p.files.to_string())?;
    headers.set("X-R2D1-Export-Bytes", &p.bytes.to_string())?;
    headers.set("X-R2D1-Export-Complete", if p.complete { "true" } else { "false" })?;
    if let Some(next) = &p.next_after {
        headers.set("X-R2D1-Export-Next-After", &encode_path(next))?;
    }
    headers.set("X-R2D1-Tree-SHA256", &p.tree_sha256)?;
    headers.set("X-R2D1-Subrequests", &p.subrequests.to_string())?;
    if let Some(r) = p.revision {
        headers.set("X-R2D1-Revision", &r.to_string())?;
    }
    if let Some(v) = p.version {
        headers.set("X-R2D1-Version", &v.to_string())?;
    }
    Ok(Response::from_stream(export.into_stream())?.with_headers(headers))
}

fn after_param(req: &Request) -> Result<Option<String>> {
    match http::query_param(req, "after").filter(|a| !a.is_empty()) {
        None => Ok(None),
        Some(a) => Ok(Some(FilePath::parse(&a).map_err(|_| Error::invalid_field("after", "must be a file path"))?.to_string())),
    }
}

/// `GET /api/apps/{app}/export?format=ndjson|tar|tar.gz&version=<n|tag>&after=<path>`: every
/// current file (or a version's) in one streamed response, NDJSON by default.
pub async fn export(req: &Request, app: &App, app_id: &AppId) -> Result<Response> {
    let format = Format::parse(http::query_param(req, "format").as_deref(), Format::Ndjson)?;
    let selector = Selector::parse(http::query_param(req, "version").as_deref())?;
    let after = after_param(req)?;
    let plan =
        export::plan(app.meta()?, app.blobs()?, app_id, &selector, after.as_deref(), format, app.config.subrequest_budget as usize).await?;
    send(plan, format).await
}

/// `GET /api/apps/{app}/versions/{version}/archive?format=tar.gz|tar&after=`: the version as an
/// archive, streamed.
pub async fn archive(req: &Request, app: &App, app_id: &AppId, v: i64) -> Result<Response> {
    let format = Format::parse(http::query_param(req, "format").as_deref(), Format::Archive(ArchiveFormat::TarGz))?;
    if format == Format::Ndjson {
        return Err(Error::invalid_field("format", "must be tar or tar.gz (GET …/export?version= gives NDJSON)"));
    }
    let after = after_param(req)?;
    let plan = export::plan(
        app.meta()?,
        app.blobs()?,
        app_id,
        &Selector::Version(v),
        after.as_deref(),
        format,
        app.config.subrequest_budget as usize,
    )
    .await?;
    send(plan, format).await
}

/// `GET /api/apps/{app}/changes?since=<revision or cursor>&limit=`: paths added, changed and
/// deleted since then, one page at a time; `resync` when the log cannot answer.
pub async fn changes(req: &Request, app: &App, app_id: &AppId) -> Result<Response> {
    let since = http::query_param(req, "since").filter(|s| !s.is_empty()).unwrap_or_else(|| "0".into());
    let cursor = Cursor::parse(&since)?;
    let limit = number_param(req, "limit", changes::PAGE_LIMIT as u64, 1, changes::PAGE_LIMIT as u64)? as usize;
    let meta = app.meta()?;
    let row = repo::app(&meta, app_id.as_str()).await?.ok_or_else(|| Error::NotFound(format!("no app {app_id}")))?;
    let state = LogState { epoch: row.created_at, current_revision: row.revision, pruned_through: row.changes_pruned_through };
    let page = match changes::check(&cursor, &state) {
        Err(_) => Vec::new(),
        Ok(()) => repo::changes_after(&meta, app_id.as_str(), cursor.revision, cursor.after_path.as_deref(), limit + 1)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(ChangeEntry { revision: r.revision, path: r.path, action: ChangeAction::parse(&r.action)?, sha256: r.sha256 })
            })
            .collect(),
    };
    let outcome: Outcome = changes::changes_since(&cursor, &state, &page, limit);
    http::ok(&json!({ "app": app_id.as_str(), "result": outcome }))
}

// ---------------------------------------------------------------------------------------------
// Signed URLs

fn url_key(app: &App) -> Result<&UrlKey> {
    app.config.signed_url_key.as_ref().ok_or_else(|| Error::NotConfigured("SIGNED_URL_SECRET is not set; signed URLs are off".into()))
}

/// The app's epoch as signed into every URL: a URL made for an app that was deleted and
/// created again under the same id opens nothing of the new one.
const EPOCH_PARAM: &str = "e";
/// Default and longest lifetime, seconds.
const DEFAULT_LIFETIME_SECS: u64 = 3_600;

#[derive(Deserialize)]
struct SignRequest {
    /// `file` (a current file, pinned to its content), `version_file` or `archive` (of a
    /// version, which never changes).
    target: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    version: Option<serde_json::Value>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// `POST /api/apps/{app}/signed-urls`: a URL that fetches one file or archive without the API
/// key until it expires (`expires_in` seconds, default an hour, at most a week).
pub async fn sign(mut req: Request, app: &App, app_id: &AppId) -> Result<Response> {
    let key = url_key(app)?;
    http::require_json_content_type(&req)?;
    let body = http::read_body(&mut req, 8 * 1024).await?;
    let r: SignRequest = serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("body: {e}")))?;
    let files = Files::new(app)?;
    let row = repo::app(&files.meta, app_id.as_str()).await?.ok_or_else(|| Error::NotFound(format!("no app {app_id}")))?;
    let version = || -> Result<Selector> {
        let raw = match r.version.as_ref() {
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::invalid_field("version", "must be a version number or a tag")),
            None => return Err(Error::invalid_field("version", "is required for this target")),
        };
        Selector::parse(Some(&raw))
    };
    let path_of = || -> Result<FilePath> {
        FilePath::parse(r.path.as_deref().ok_or_else(|| Error::invalid_field("path", "is required for this target"))?)
    };
    let mut query: Vec<(String, String)> = vec![(EPOCH_PARAM.into(), row.created_at.to_string())];
    let (path, pin_sha, pin_version) = match r.target.as_str() {
        "file" => {
            let p = path_of()?;
            let rec = files.file(app_id, &p).await?;
            (format!("/api/signed/apps/{}/files/{}", encode_segment(app_id.as_str()), encode_path(p.as_str())), Some(rec.sha256), None)
        }
        "version_file" => {
            let p = path_of()?;
            let v = resolve_version(&files, app_id, version()?).await?;
            files.version_file(app_id, v, &p).await?;
            (format!("/api/signed/apps/{}/versions/{v}/files/{}", encode_segment(app_id.as_str()), encode_path(p.as_str())), None, Some(v))
        }
        "archive" => {
            let v = resolve_version(&files, app_id, version()?).await?;
            repo::version(&files.meta, app_id.as_str(), v)
                .await?
                .ok_or_else(|| Error::NotFound(format!("app {app_id} has no version {v}")))?;
            let format = Format::parse(r.format.as_deref(), Format::Archive(ArchiveFormat::TarGz))?;
            if format == Format::Ndjson {
                return Err(Error::invalid_field("format", "must be tar or tar.gz"));
            }
            query.push(("format".into(), format.extension().into()));
            (format!("/api/signed/apps/{}/versions/{v}/archive", encode_segment(app_id.as_str())), None, Some(v))
        }
        _ => return Err(Error::invalid_field("target", "must be file, version_file or archive")),
    };
    let pin = match (&pin_sha, pin_version) {
        (Some(sha), _) => Pin::Sha256(sha),
        (None, Some(v)) => Pin::Version(v),
        (None, None) => unreachable!("every target pins something"),
    };
    let lifetime = r.expires_in.unwrap_or(DEFAULT_LIFETIME_SECS);
    let signed = signed_url::sign(key, "GET", &path, &query, pin, app.now_ms.div_euclid(1000), lifetime)?;
    let origin = req.url().map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    http::json(
        201,
        &json!({ "url": format!("{origin}{}", signed.url), "path": signed.url, "method": "GET", "expires_at": signed.expires_at }),
    )
}

/// A version number, or the one a tag names now (a URL names the version, never the tag, so
/// moving the tag later does not change what it opens).
async fn resolve_version(files: &Files, app_id: &AppId, selector: Selector) -> Result<i64> {
    match selector {
        Selector::Version(n) => Ok(n),
        Selector::Tag(t) => crate::files::lifecycle_repo::tags(&files.meta, app_id.as_str())
            .await?
            .iter()
            .find(|r| r.tag == t.as_str())
            .map(|r| r.version_number)
            .ok_or_else(|| Error::NotFound(format!("app {app_id} has no tag {t}"))),
        Selector::Current => Err(Error::invalid_field("version", "is required for this target")),
    }
}

/// Checks a signed request against `pin` and the app's epoch. Every failure is a 401.
fn check(req: &Request, app: &App, path: &str, pin: Pin<'_>, created_at: i64) -> Result<()> {
    let key = url_key(app)?;
    let query = http::query_pairs(req);
    signed_url::verify(key, req.method().as_ref(), path, &query, pin, app.now_ms.div_euclid(1000))?;
    let epoch = query.iter().find(|(k, _)| k == EPOCH_PARAM).map(|(_, v)| v.as_str());
    if epoch != Some(created_at.to_string().as_str()) {
        return Err(Error::Unauthorized("signed URL is for an app that no longer exists".into()));
    }
    Ok(())
}

async fn app_epoch(files: &Files, app_id: &AppId) -> Result<i64> {
    // A missing app answers like a bad signature: the URL is the credential, and it opens nothing.
    Ok(repo::app(&files.meta, app_id.as_str())
        .await?
        .ok_or_else(|| Error::Unauthorized("signed URL does not match this request".into()))?
        .created_at)
}

/// `GET /api/signed/apps/{app}/files/{path+}?e&exp&sig`: a current file, while it still has the
/// content the URL was made for.
pub async fn signed_file(req: &Request, app: &App, app_id: &AppId, path: &FilePath) -> Result<Response> {
    let files = Files::new(app)?;
    let epoch = app_epoch(&files, app_id).await?;
    let canonical = format!("/api/signed/apps/{}/files/{}", encode_segment(app_id.as_str()), encode_path(path.as_str()));
    let rec = match files.file(app_id, path).await {
        Ok(rec) => rec,
        Err(Error::NotFound(_)) => return Err(Error::Unauthorized("signed URL does not match this request".into())),
        Err(e) => return Err(e),
    };
    check(req, app, &canonical, Pin::Sha256(&rec.sha256), epoch)?;
    serve(req, &files, &format!("{app_id} {path}"), &rec).await
}

/// `GET /api/signed/apps/{app}/versions/{version}/files/{path+}`: a file as it was in a version.
pub async fn signed_version_file(req: &Request, app: &App, app_id: &AppId, v: &str, path: &FilePath) -> Result<Response> {
    let v = version_number(v)?;
    let files = Files::new(app)?;
    let epoch = app_epoch(&files, app_id).await?;
    let canonical = format!("/api/signed/apps/{}/versions/{v}/files/{}", encode_segment(app_id.as_str()), encode_path(path.as_str()));
    check(req, app, &canonical, Pin::Version(v), epoch)?;
    let rec = files.version_file(app_id, v, path).await?;
    serve(req, &files, &format!("{app_id} v{v} {path}"), &rec).await
}

/// `GET /api/signed/apps/{app}/versions/{version}/archive?format&e&exp&sig`: a version's archive.
pub async fn signed_archive(req: &Request, app: &App, app_id: &AppId, v: &str) -> Result<Response> {
    let v = version_number(v)?;
    let files = Files::new(app)?;
    let epoch = app_epoch(&files, app_id).await?;
    let canonical = format!("/api/signed/apps/{}/versions/{v}/archive", encode_segment(app_id.as_str()));
    check(req, app, &canonical, Pin::Version(v), epoch)?;
    archive(req, app, app_id, v).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_paths_are_encoded_one_way() {
        assert_eq!(encode_path("src/a b/ü.js"), "src/a%20b/%C3%BC.js");
        assert_eq!(encode_segment("demo-1.x_~"), "demo-1.x_~");
        assert_eq!(encode_path("a%2Fb"), "a%252Fb");
    }
}
