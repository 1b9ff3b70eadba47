//! The one job runner. Every scheduled job (GC, Omi reconciliation, retention, rollups, …) is
//! a [`Job`] registered by name; the cron trigger runs each due job within a time budget, and
//! `POST /api/admin/jobs/{name}/run` runs one now. State, cursor, last success and last error
//! of every job live in the `jobs` table (migrations/0006), shown at `GET /api/admin/jobs`.
//! A job that fails is recorded and does not stop the others.

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::App;
use crate::error::Result;
use crate::stmt;

/// What a run starts from: the job's persisted cursor and the clock time it must stop by.
#[derive(Debug, Clone)]
pub struct JobInput {
    pub cursor: Option<String>,
    pub deadline_ms: i64,
}

/// What a run leaves: the cursor the next run resumes from, and a report for the log and
/// `GET /api/admin/jobs`.
#[derive(Debug, Clone, Default)]
pub struct JobOutcome {
    pub cursor: Option<String>,
    pub report: Value,
}

pub type JobFn = for<'a> fn(&'a App, JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>>;

pub struct Job {
    pub name: &'static str,
    pub what: &'static str,
    /// A job runs at most this often from the cron (0: every run).
    pub min_interval_ms: i64,
    pub run: JobFn,
}

/// Time one job may use in one cron run (the cron fires every 15 minutes; a run stays far
/// below a cron trigger's limits even when every job uses its whole budget).
pub const CRON_BUDGET_MS: i64 = 20_000;
/// Time a run asked for through the API may use.
pub const API_BUDGET_MS: i64 = 10_000;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct JobRow {
    pub name: String,
    pub cursor: Option<String>,
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub consecutive_failures: i64,
    pub runs: i64,
    pub last_report: Option<String>,
}

/// Whether a job is due at `now` given its state.
pub fn is_due(job: &Job, row: Option<&JobRow>, now: i64) -> bool {
    match row.and_then(|r| r.last_success_at) {
        Some(at) => now - at >= job.min_interval_ms,
        None => true,
    }
}

// --- SQL (the jobs table) ---------------------------------------------------------------------

fn select_all() -> crate::store::Statement {
    stmt!(
        "SELECT name, cursor, last_started_at, last_finished_at, last_success_at, last_error, last_error_at, \
           consecutive_failures, runs, last_report FROM jobs ORDER BY name"
    )
}

fn record_start(name: &str, now: i64) -> crate::store::Statement {
    stmt!(
        "INSERT INTO jobs (name, last_started_at, runs) VALUES (?1, ?2, 1) \
         ON CONFLICT (name) DO UPDATE SET last_started_at = ?2, runs = runs + 1",
        name,
        now
    )
}

fn record_success(name: &str, now: i64, cursor: Option<&str>, report: &str) -> crate::store::Statement {
    stmt!(
        "UPDATE jobs SET cursor = ?3, last_finished_at = ?2, last_success_at = ?2, consecutive_failures = 0, last_report = ?4 \
         WHERE name = ?1",
        name,
        now,
        cursor,
        report
    )
}

fn record_failure(name: &str, now: i64, error: &str) -> crate::store::Statement {
    stmt!(
        "UPDATE jobs SET last_finished_at = ?2, last_error = ?3, last_error_at = ?2, consecutive_failures = consecutive_failures + 1 \
         WHERE name = ?1",
        name,
        now,
        error
    )
}

pub async fn states(app: &App) -> Result<Vec<JobRow>> {
    app.meta()?.all(select_all()).await
}

async fn state(app: &App, name: &str) -> Result<Option<JobRow>> {
    Ok(states(app).await?.into_iter().find(|r| r.name == name))
}

/// Runs `job` once with `budget_ms`, recording start, outcome and cursor. `Err` only when the
/// state itself cannot be written; the job's own failure is recorded and returned as a report.
pub async fn run(app: &App, job: &Job, budget_ms: i64) -> Result<Value> {
    let meta = app.meta()?;
    let prior = state(app, job.name).await?;
    let started = app.state.now();
    meta.run(record_start(job.name, started)).await?;
    let input = JobInput { cursor: prior.and_then(|r| r.cursor), deadline_ms: started + budget_ms };
    match (job.run)(app, input).await {
        Ok(outcome) => {
            let report = outcome.report.to_string();
            meta.run(record_success(job.name, app.state.now(), outcome.cursor.as_deref(), &report)).await?;
            Ok(serde_json::json!({ "job": job.name, "ok": true, "report": outcome.report, "cursor": outcome.cursor }))
        }
        Err(e) => {
            worker::console_error!("r2d1 job {} failed: {e}", job.name);
            meta.run(record_failure(job.name, app.state.now(), &e.to_string())).await?;
            Ok(serde_json::json!({ "job": job.name, "ok": false, "error": { "code": e.code(), "message": e.to_string() } }))
        }
    }
}

/// The cron: every due job in turn, each within its budget; one failing does not stop the rest.
pub async fn run_due(app: &App, jobs: &[&Job]) -> Vec<Value> {
    let rows = states(app).await.unwrap_or_default();
    let mut out = Vec::new();
    for job in jobs {
        let row = rows.iter().find(|r| r.name == job.name);
        if !is_due(job, row, app.state.now()) {
            out.push(serde_json::json!({ "job": job.name, "skipped": "not due" }));
            continue;
        }
        match run(app, job, CRON_BUDGET_MS).await {
            Ok(v) => out.push(v),
            Err(e) => {
                out.push(serde_json::json!({ "job": job.name, "ok": false, "error": { "code": e.code(), "message": e.to_string() } }))
            }
        }
    }
    out
}

/// Moves a job's cursor outside a run (the on-demand routes that take one step of a job).
pub async fn set_cursor(app: &App, name: &str, cursor: Option<&str>) -> Result<()> {
    app.meta()?
        .run(stmt!("INSERT INTO jobs (name, cursor) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET cursor = ?2", name, cursor))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop<'a>(_: &'a App, _: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
        Box::pin(async { Ok(JobOutcome::default()) })
    }

    #[test]
    fn jobs_with_an_interval_wait_until_due() {
        let daily = Job { name: "d", what: "", min_interval_ms: 1000, run: noop };
        let never = JobRow { name: "d".into(), ..Default::default() };
        let ran = JobRow { last_success_at: Some(5000), ..never.clone() };
        assert!(is_due(&daily, None, 0));
        assert!(is_due(&daily, Some(&never), 0));
        assert!(!is_due(&daily, Some(&ran), 5999));
        assert!(is_due(&daily, Some(&ran), 6000));
    }

    #[test]
    fn state_statements_bind_what_they_name() {
        assert_eq!(record_start("gc", 5).params.len(), 2);
        assert_eq!(record_success("gc", 5, None, "{}").params.len(), 4);
        assert!(record_failure("gc", 5, "x").sql.contains("consecutive_failures = consecutive_failures + 1"));
    }
}
