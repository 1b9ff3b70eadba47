//! `/api/admin/…`: operator endpoints over the storage core that span both workloads — the
//! consistency check and the job runner. (Each workload's own operator endpoints live in its
//! `http` module: `/api/admin/storage/…` for files, `/api/omi/import|reindex|reconcile` for Omi.)

use serde_json::json;
use worker::{Request, Response};

use crate::error::{Error, Result};
use crate::http::{self, App};
use crate::store::checks;
use crate::store::consistency::{self, Mode};
use crate::store::jobs::{self, Job, JobInput, JobOutcome};
use crate::{omi, store};
use futures_util::future::LocalBoxFuture;

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
    http::ok(&walk_step(app, cursor.as_deref(), limit, mode, "api").await?)
}

/// Operations a walk step keeps for the Omi index check and recording the walk.
const WALK_RECORD_OPS: u64 = 3;

/// One call of a consistency walk: the check from `cursor` (as far as `limit` keys and the
/// request's operations allow), the Omi index's own invariant at the walk's start, and the
/// counts added to the walk's row (`store::checks`). The route and the `consistency` job.
pub async fn walk_step(app: &App, cursor: Option<&str>, limit: u32, mode: Mode, trigger: &str) -> Result<serde_json::Value> {
    let (walk, inner) = match cursor {
        Some(c) => {
            let (walk, inner) = checks::decode_cursor(c);
            (walk, Some(inner))
        }
        None => (None, None),
    };
    let store = app.store()?;
    let op_limit = app.state.op_limit();
    app.state.set_op_limit(op_limit.map(|l| l.saturating_sub(WALK_RECORD_OPS)));
    let report = consistency::check(&store, app.config.gc_grace, inner, limit, mode).await;
    app.state.set_op_limit(op_limit);
    let report = report?;
    // D1-only invariant of the Omi index, checked once per walk (at its start).
    let index_without_version = if cursor.is_none() { omi::repo::OmiRepo::new(app.meta()?).index_rows_without_version().await? } else { 0 };
    let counts = checks::Counts::of(&report, index_without_version);
    let walk = checks::record(&store.meta, walk, mode, trigger, app.state.now(), report.complete, &counts).await?;
    let totals = json!({
        "rowsWithoutObjects": counts.rows_without_objects,
        "shaMismatches": counts.sha_mismatches,
        "objectsWithoutRows": counts.objects_without_rows,
        "orphansOlderThanGrace": counts.orphans_older_than_grace,
        "indexRowsWithoutVersion": counts.index_rows_without_version,
        "rows": counts.rows,
        "objects": counts.objects,
        "bytesChecked": report.sections.iter().map(|s| s.bytes_checked).sum::<u64>(),
    });
    let clean = report.complete && index_without_version == 0 && report.sections.iter().all(|s| s.clean());
    Ok(json!({
        "success": true,
        "clean": clean,
        "complete": report.complete,
        "nextCursor": report.next_cursor.as_deref().map(|c| checks::encode_cursor(walk, c)),
        "mode": if mode == Mode::Bytes { "bytes" } else { "metadata" },
        "totals": totals,
        "sections": report.sections,
    }))
}

/// Keys one cron run's step of the `consistency` job covers (metadata mode).
const JOB_STEP_KEYS: u32 = 5000;

/// The `consistency` job: a step of a metadata walk per cron run, so `/api/health` learns of
/// rows without objects or orphans without an operator asking. A new walk starts every six
/// hours at most; an unfinished one goes on at every run (its cursor makes it due).
pub static CONSISTENCY_JOB: Job = Job {
    name: "consistency",
    what: "a step of the consistency walk (metadata) per run; the last finished walk's problems show in /api/health",
    min_interval_ms: 6 * 3_600_000,
    run: consistency_job,
};

fn consistency_job<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let step = walk_step(app, input.cursor.as_deref(), JOB_STEP_KEYS, Mode::Metadata, "job").await?;
        let cursor = step["nextCursor"].as_str().map(str::to_string);
        let report = json!({ "complete": step["complete"], "clean": step["clean"], "totals": step["totals"] });
        Ok(JobOutcome { cursor, report })
    })
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
