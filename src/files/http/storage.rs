//! HTTP for the storage operator (issue 13): the rollout settings and rollback switch, kept in
//! D1 so they change without a deploy, and the storage report with its cost section.

use serde_json::{json, Value};
use worker::{Request, Response};

use super::{app_filter, flag_param};
use crate::error::{Error, Result};
use crate::files::rollout::{self, PERCENT_SETTING, ROLLBACK_SETTING};
use crate::files::{lifecycle_repo, maintenance, savings};
use crate::http::{self, App};
use crate::store::jobs::{self, API_BUDGET_MS};
use crate::store::{census, usage};

async fn rollout_document(app: &App) -> Result<Value> {
    let meta = app.meta()?;
    let settings = lifecycle_repo::settings(&meta).await?;
    let effective = maintenance::current_rollout(&meta, &app.config).await?;
    let env = app.config.rollout;
    Ok(json!({
        "r2_percent": effective.percent(),
        "rollback": effective.rollback,
        "global_mode": app.config.storage_mode.as_str(),
        "variables": { PERCENT_SETTING: env.percent(), ROLLBACK_SETTING: env.rollback },
        "settings": settings.iter().map(|s| json!({ "name": s.name, "value": s.value, "updated_at": s.updated_at })).collect::<Vec<_>>(),
        "report": savings::rollout_report(&meta, &app.config).await?,
    }))
}

/// `GET /api/admin/storage/rollout`: the percentage and the rollback switch in force (the D1
/// settings over the variables), and apps and bytes in each state.
pub async fn get_rollout(app: &App) -> Result<Response> {
    http::ok(&rollout_document(app).await?)
}

/// `PUT /api/admin/storage/rollout` with `{"r2_percent": 10, "rollback": true}`: a field set
/// to a value is stored in D1 and takes effect on the next request, everywhere; set to null it
/// is removed and the variable applies again; left out, it is left alone.
pub async fn put_rollout(mut req: Request, app: &App) -> Result<Response> {
    http::require_json_content_type(&req)?;
    let body = http::read_body(&mut req, 4 * 1024).await?;
    let parsed: Value = serde_json::from_slice(&body).map_err(|e| Error::bad_request("invalid_json", format!("body: {e}")))?;
    let obj = parsed.as_object().ok_or_else(|| Error::bad_request("invalid_json", "body: must be a JSON object"))?;
    let mut stmts = Vec::new();
    match obj.get("r2_percent") {
        None => {}
        Some(Value::Null) => stmts.push(lifecycle_repo::put_setting(PERCENT_SETTING, None, app.now_ms)),
        Some(v) => {
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Err(Error::invalid_field("r2_percent", "must be a percentage from 0 to 100")),
            };
            let bp = rollout::parse_percent(&text).map_err(|why| Error::invalid_field("r2_percent", why))?;
            stmts.push(lifecycle_repo::put_setting(PERCENT_SETTING, Some(&rollout::format_percent(bp)), app.now_ms));
        }
    }
    match obj.get("rollback") {
        None => {}
        Some(Value::Null) => stmts.push(lifecycle_repo::put_setting(ROLLBACK_SETTING, None, app.now_ms)),
        Some(Value::Bool(b)) => {
            stmts.push(lifecycle_repo::put_setting(ROLLBACK_SETTING, Some(if *b { "true" } else { "false" }), app.now_ms))
        }
        Some(_) => return Err(Error::invalid_field("rollback", "must be true, false or null")),
    }
    if stmts.is_empty() {
        return Err(Error::invalid_field("r2_percent", "give r2_percent and/or rollback"));
    }
    app.meta()?.batch(stmts).await?;
    worker::console_log!("r2d1 rollout settings changed: {}", String::from_utf8_lossy(&body));
    http::ok(&rollout_document(app).await?)
}

/// Census runs a refresh may make (each within the API budget) before reporting.
const REFRESH_RUNS: usize = 5;

/// `GET /api/admin/storage/report[?app=][&refresh=true]`: the app files' tiers, savings and
/// migration progress; without `app`, also the rollout and the cost section over both
/// workloads (`files::savings`). `refresh=true` first completes a census of R2 (bounded).
pub async fn report(req: &Request, app: &App) -> Result<Response> {
    let filter = app_filter(req)?;
    let meta = app.meta()?;
    let mut doc = serde_json::to_value(maintenance::report(&meta, &app.config, filter.as_ref()).await?)?;
    if filter.is_some() {
        return http::ok(&doc);
    }
    if flag_param(req, "refresh")? {
        for _ in 0..REFRESH_RUNS {
            let run = jobs::run(app, &census::JOB, API_BUDGET_MS).await?;
            if run["cursor"].is_null() || run["ok"] == false {
                break;
            }
        }
    }
    // This isolate's R2 operations not yet in the daily totals, this request's so far included
    // (and then cleared, so the request's end does not count them twice).
    let counts = std::mem::take(&mut *app.state.counters.r2_by_class.borrow_mut());
    usage::flush_now(&meta, app.now_ms, &counts).await?;
    let savings = savings::build(&meta, &app.config, app.now_ms).await?;
    if let (Value::Object(map), Value::Object(extra)) = (&mut doc, serde_json::to_value(savings)?) {
        map.extend(extra);
    }
    http::ok(&doc)
}
