//! `/api/admin/…`: operator endpoints over the storage core that span both workloads — the
//! consistency check and the job runner. (Each workload's own operator endpoints live in its
//! `http` module: `/api/admin/storage/…` for files, `/api/omi/import|reindex|reconcile` for Omi.)

use serde_json::json;
use worker::{Request, Response};

use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::store::consistency::{self, Mode};
use crate::store::jobs;
use crate::{omi, store};

/// `GET /api/admin/consistency[?cursor=&limit=&mode=bytes]`: rows against objects for every
/// kind, a bounded key range per call; `nextCursor` continues, `complete` says the walk ended.
pub async fn consistency(req: &Request, app: &App) -> Result<Response> {
    let mode = match http::query_param(req, "mode").as_deref() {
        None | Some("") | Some("metadata") => Mode::Metadata,
        Some("bytes") => Mode::Bytes,
        Some(_) => return Err(Error::invalid_field("mode", "must be metadata or bytes")),
    };
    let (default, max) = if mode == Mode::Bytes { (200, 1000) } else { (5000, 20000) };
    let limit = match http::query_param(req, "limit") {
        None => default,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Error::invalid_field("limit", format!("must be a whole number from 1 to {max}")))?,
    };
    let cursor = http::query_param(req, "cursor").filter(|c| !c.is_empty());
    let store = app.store()?;
    let report = consistency::check(&store, app.config.gc_grace, cursor.as_deref(), limit, mode).await?;
    // D1-only invariant of the Omi index, checked once per walk (at its start).
    let index_without_version = if cursor.is_none() { omi::repo::OmiRepo::new(app.meta()?).index_rows_without_version().await? } else { 0 };
    let sum = |f: fn(&consistency::Section) -> usize| report.sections.iter().map(f).sum::<usize>();
    let totals = json!({
        "rowsWithoutObjects": sum(|s| s.rows_without_objects),
        "shaMismatches": sum(|s| s.sha_mismatches),
        "objectsWithoutRows": sum(|s| s.objects_without_rows),
        "orphansOlderThanGrace": sum(|s| s.orphans_older_than_grace),
        "indexRowsWithoutVersion": index_without_version,
        "rows": sum(|s| s.rows),
        "objects": sum(|s| s.objects),
        "bytesChecked": report.sections.iter().map(|s| s.bytes_checked).sum::<u64>(),
    });
    let clean = report.complete && index_without_version == 0 && report.sections.iter().all(|s| s.clean());
    http::ok(&json!({
        "success": true,
        "clean": clean,
        "complete": report.complete,
        "nextCursor": report.next_cursor,
        "mode": if mode == Mode::Bytes { "bytes" } else { "metadata" },
        "totals": totals,
        "sections": report.sections,
    }))
}

/// `GET /api/admin/jobs`: every registered job with its state.
pub async fn jobs(app: &App) -> Result<Response> {
    let rows = jobs::states(app).await?;
    let now = app.state.now();
    let list: Vec<_> = crate::jobs::registered()
        .into_iter()
        .map(|job| {
            let row = rows.iter().find(|r| r.name == job.name);
            let report = row.and_then(|r| r.last_report.as_deref()).and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok());
            json!({
                "name": job.name,
                "what": job.what,
                "minIntervalMs": job.min_interval_ms,
                "due": jobs::is_due(job, row, now),
                "cursor": row.and_then(|r| r.cursor.clone()),
                "runs": row.map(|r| r.runs).unwrap_or(0),
                "lastStartedAt": row.and_then(|r| r.last_started_at),
                "lastFinishedAt": row.and_then(|r| r.last_finished_at),
                "lastSuccessAt": row.and_then(|r| r.last_success_at),
                "lastError": row.and_then(|r| r.last_error.clone()),
                "lastErrorAt": row.and_then(|r| r.last_error_at),
                "consecutiveFailures": row.map(|r| r.consecutive_failures).unwrap_or(0),
                "lastReport": report,
            })
        })
        .collect();
    http::ok(&json!({ "success": true, "jobs": list }))
}

/// `POST /api/admin/jobs/{name}/run`: one bounded run now, due or not.
pub async fn run_job(app: &App, name: &str) -> Result<Response> {
    let job = crate::jobs::registered()
        .into_iter()
        .find(|j| j.name == name)
        .ok_or_else(|| Error::NotFound(format!("no job {name}; GET /api/admin/jobs lists them")))?;
    let result = store::jobs::run(app, job, jobs::API_BUDGET_MS).await?;
    http::ok(&result)
}
