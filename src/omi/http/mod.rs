//! HTTP for the Omi workload (`/api/omi/…`): the routes (the kind of credential each takes;
//! the scope is its row in `access::table`), and thin handlers that parse the request, call the
//! domain (`ingest`, `maintenance`, the repo) and render JSON.

pub mod archive;
pub mod export;
pub mod logs;
pub mod maintenance;
pub mod programme;
pub mod tools;
pub mod transcripts;
pub mod webhook;

use crate::error::{Error, Result};
use futures_util::future::LocalBoxFuture;
use worker::{Request, Response};

use crate::app::App;
use crate::omi::tools::call::Tool;
use crate::routes::{route, PathParams, Route};
use webhook::Hook;

pub static ROUTES: &[Route] = &[
    route!(Post "/api/omi/memory", Webhook, |req, app, _p| webhook::memory(req, app).await),
    route!(Post "/api/omi/conversation", Webhook, |req, app, _p| webhook::memory(req, app).await),
    route!(Post "/api/omi/transcript", Webhook, |req, app, _p| webhook::transcript(req, app).await),
    route!(Post "/api/omi/webhook", Webhook, |req, app, _p| webhook::transcript(req, app).await),
    route!(Post "/api/omi/day-summary", Webhook, |req, app, _p| webhook::day_summary(req, app).await),
    route!(Get "/api/omi/setup", Open, |req, app, _p| webhook::setup(&req, app).await),
    // A mentor pasting a webhook URL into a browser sees it is alive (HEAD follows GET). One
    // handler for the five: a closure each would be five copies of it in the wasm.
    described("/api/omi/memory"),
    described("/api/omi/conversation"),
    described("/api/omi/transcript"),
    described("/api/omi/webhook"),
    described("/api/omi/day-summary"),
    route!(Get "/api/omi/logs", ApiToken, |req, app, _p| logs::list(&req, app).await),
    route!(Get "/api/omi/logs/{uid}/{memoryId}", ApiToken, |req, app, p| logs::one(&req, app, p.get("uid"), p.get("memoryId")).await),
    route!(Get "/api/omi/logs/{uid}/{memoryId}/versions", ApiToken, |_req, app, p| logs::versions(app, p.get("uid"), p.get("memoryId")).await),
    route!(Get "/api/omi/users", ApiToken, |_req, app, _p| logs::users(app).await),
    route!(Get "/api/omi/users/{uid}/stats", ApiToken, |_req, app, p| logs::stats(app, p.get("uid")).await),
    route!(Delete "/api/omi/users/{uid}", ApiToken, |_req, app, p| maintenance::delete_user(app, p.get("uid")).await),
    route!(Get "/api/omi/analytics/daily", ApiToken, |req, app, _p| logs::daily(&req, app).await),
    route!(Get "/api/omi/transcripts/{uid}", ApiToken, |req, app, p| transcripts::sessions(&req, app, p.get("uid")).await),
    route!(Get "/api/omi/transcripts/{uid}/{sessionId}", ApiToken, |req, app, p| transcripts::session(&req, app, p.get("uid"), p.get("sessionId")).await),
    route!(Get "/api/omi/day-summaries/{uid}/{date}", ApiToken, |_req, app, p| logs::day_summary(app, p.get("uid"), p.get("date")).await),
    route!(Get "/api/omi/export", ApiToken, |req, app, _p| export::export(&req, app).await),
    route!(Post "/api/omi/import", ApiToken, |req, app, _p| maintenance::import(req, app).await),
    route!(Post "/api/omi/reindex", ApiToken, |req, app, _p| maintenance::reindex(&req, app).await),
    route!(Post "/api/omi/reconcile", ApiToken, |req, app, _p| maintenance::reconcile(&req, app).await),
    // The programme's view (issue 14): analytics, linked transcripts, the archive, the
    // directory, activity.
    route!(Get "/api/omi/logs/{uid}/{memoryId}/analytics", ApiToken, |_req, app, p| programme::memory(app, p.get("uid"), p.get("memoryId")).await),
    route!(Get "/api/omi/logs/{uid}/{memoryId}/transcript", ApiToken, |req, app, p| transcripts::memory(&req, app, p.get("uid"), p.get("memoryId")).await),
    route!(Get "/api/omi/users/{uid}/analytics", ApiToken, |req, app, p| programme::mentor(&req, app, p.get("uid")).await),
    route!(Get "/api/omi/users/{uid}/archive", ApiToken, |req, app, p| archive::archive(&req, app, p.get("uid")).await),
    route!(Get "/api/omi/directory", ApiToken, |_req, app, _p| programme::directory(app).await),
    route!(Put "/api/omi/directory/{personId}", ApiToken, |req, app, p| programme::save_person(req, app, p.get("personId")).await),
    route!(Delete "/api/omi/directory/{personId}", ApiToken, |_req, app, p| programme::delete_person(app, p.get("personId")).await),
    route!(Get "/api/omi/programme", ApiToken, |req, app, _p| programme::activity(&req, app).await),
    // Omi's assistant (chat tools).
    route!(Get "/.well-known/omi-tools.json", Open, |req, _app, _p| tools::manifest(&req)),
    route!(Post "/api/omi/tools/search", OmiTool, |req, app, _p| tools::call(req, app, Tool::SearchLogs).await),
    route!(Get "/api/omi/tools/action-items", OmiTool, |req, app, _p| tools::call(req, app, Tool::OpenActionItems).await),
    route!(Post "/api/omi/tools/sessions-with", OmiTool, |req, app, _p| tools::call(req, app, Tool::SessionsWith).await),
    route!(Get "/api/omi/tools/hours", OmiTool, |req, app, _p| tools::call(req, app, Tool::MentoringHours).await),
    // The old app's data (issue 12).
    route!(Get "/api/omi/legacy/mapping", ApiToken, |_req, app, _p| maintenance::mapping(app).await),
    route!(Put "/api/omi/legacy/mapping", ApiToken, |req, app, _p| maintenance::put_mapping(req, app).await),
    route!(Post "/api/omi/legacy/migrate", ApiToken, |req, app, _p| maintenance::migrate(&req, app).await),
];

const fn described(path: &'static str) -> Route {
    Route { method: worker::Method::Get, path, access: crate::routes::Access::Open, handler: describe }
}

fn describe(req: Request, app: &App, _p: PathParams) -> LocalBoxFuture<'_, Result<Response>> {
    Box::pin(async move {
        let hook = match req.path().trim_end_matches('/') {
            "/api/omi/transcript" | "/api/omi/webhook" => Hook::Transcript,
            "/api/omi/day-summary" => Hook::DaySummary,
            _ => Hook::Memory,
        };
        webhook::describe_route(&req, app, hook).await
    })
}

/// The forced filter of a list route: the mentors a narrow key may see when it did not name one
/// (empty: no restriction). The router put it in `app.caller.grant`.
fn only_mentors(app: &crate::http::App) -> Vec<String> {
    match &app.caller.grant.only {
        Some(only) if only.kind == crate::access::scope::TargetKind::Mentor => only.values.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A path segment that names a mentor or memory, validated like the webhook's `uid`.
fn key_part(field: &str, raw: &str) -> Result<String> {
    super::keys::check_key_part(raw).map_err(|why| Error::invalid_field(field, why))?;
    Ok(raw.to_string())
}
