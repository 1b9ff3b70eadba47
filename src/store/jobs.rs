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
/// Operations a run keeps for recording its outcome (`record_success` / `record_failure`).
const STATE_OPS: u64 = 1;
/// The fewest operations worth starting a job with (its state's writes and a small step);
/// with less left in a cron run, the job waits for the next run.
pub const MIN_JOB_OPS: u64 = 12;

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

/// Whether a job is due at `now` given its state. A job whose last run handed back a cursor
/// has work left (it stopped at its deadline or its operation budget) and is due whatever its
/// interval.
pub fn is_due(job: &Job, row: Option<&JobRow>, now: i64) -> bool {
    if row.is_some_and(|r| r.cursor.is_some() && r.last_success_at.is_some()) {
        return true;
    }
    match row.and_then(|r| r.last_success_at) {
        Some(at) => now - at >= job.min_interval_ms,
        None => true,
    }
}

// --- SQL (the jobs table) ---------------------------------------------------------------------

pub fn select_all() -> crate::store::Statement {
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
/// The job may use the request's operations up to its current limit, less what recording the
/// outcome takes; the run is logged and counted in the metrics (`observe`).
pub async fn run(app: &App, job: &Job, budget_ms: i64) -> Result<Value> {
    let prior = state(app, job.name).await?;
    run_with(app, job, budget_ms, prior).await
}

async fn run_with(app: &App, job: &Job, budget_ms: i64, prior: Option<JobRow>) -> Result<Value> {
    let meta = app.meta()?;
    let start = crate::observe::job_started(&app.state);
    let started = app.state.now();
    meta.run(record_start(job.name, started)).await?;
    let input = JobInput { cursor: prior.and_then(|r| r.cursor), deadline_ms: started + budget_ms };
    let limit = app.state.op_limit();
    app.state.set_op_limit(limit.map(|l| l.saturating_sub(STATE_OPS)));
    let result = (job.run)(app, input).await;
    app.state.set_op_limit(limit);
    let (value, error) = match result {
        Ok(outcome) => {
            let report = outcome.report.to_string();
            meta.run(record_success(job.name, app.state.now(), outcome.cursor.as_deref(), &report)).await?;
            (serde_json::json!({ "job": job.name, "ok": true, "report": outcome.report, "cursor": outcome.cursor }), None)
        }
        Err(e) => {
            worker::console_error!("r2d1 job {} failed: {e}", job.name);
            meta.run(record_failure(job.name, app.state.now(), &e.to_string())).await?;
            let value = serde_json::json!({ "job": job.name, "ok": false, "error": { "code": e.code(), "message": e.to_string() } });
            (value, Some(e))
        }
    };
    crate::observe::job_done(
        &app.env,
        &crate::observe::JobRecord {
            request_id: app.state.notes.borrow().request_id.clone().unwrap_or_else(crate::observe::random_id),
            job: job.name.to_string(),
            trigger: if app.ctx.is_some() { "api" } else { "cron" },
            ok: error.is_none(),
            error: error.as_ref().map(|e| e.code()),
            detail: error.as_ref().and_then(crate::observe::detail_of),
            duration_ms: crate::observe::job_elapsed_ms(&start),
            counters: app.state.counters.snapshot().since(&start.counters),
            op_limit: limit.map(|l| l.saturating_sub(start.counters.operations())),
        },
    );
    Ok(value)
}

/// The order a cron run takes due jobs in: the one that started longest ago (or never) first,
/// so that when the operation budget runs out part way, the jobs left out go first next time.
pub fn cron_order<'a>(jobs: &[&'a Job], rows: &[JobRow]) -> Vec<&'a Job> {
    let started = |j: &Job| rows.iter().find(|r| r.name == j.name).and_then(|r| r.last_started_at).unwrap_or(i64::MIN);
    let mut ordered: Vec<&Job> = jobs.to_vec();
    ordered.sort_by_key(|j| started(j));
    ordered
}

/// The cron: due jobs in [`cron_order`], each within its time budget and with the operations
/// the run has left (one cron invocation has one subrequest budget for all its jobs); a job
/// that would start with fewer than [`MIN_JOB_OPS`] waits for the next run. One failing does
/// not stop the rest.
pub async fn run_due(app: &App, jobs: &[&Job]) -> Vec<Value> {
    let rows = states(app).await.unwrap_or_default();
    let mut out = Vec::new();
    for job in cron_order(jobs, &rows) {
        let row = rows.iter().find(|r| r.name == job.name);
        if !is_due(job, row, app.state.now()) {
            out.push(serde_json::json!({ "job": job.name, "skipped": "not due" }));
            continue;
        }
        if !app.state.can_afford(MIN_JOB_OPS) {
            out.push(serde_json::json!({ "job": job.name, "skipped": "operation budget spent; next run" }));
            continue;
        }
        match run_with(app, job, CRON_BUDGET_MS, row.cloned()).await {
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
        let unfinished = JobRow { cursor: Some("2025-01-14|mentor-7".into()), ..ran.clone() };
        assert!(is_due(&daily, Some(&unfinished), 5001), "a run that stopped early continues at the next cron");
    }

    #[test]
    fn the_cron_takes_the_job_that_waited_longest_first() {
        let (a, b, c) = (
            Job { name: "a", what: "", min_interval_ms: 0, run: noop },
            Job { name: "b", what: "", min_interval_ms: 0, run: noop },
            Job { name: "c", what: "", min_interval_ms: 0, run: noop },
        );
        let rows = vec![
            JobRow { name: "a".into(), last_started_at: Some(30), ..Default::default() },
            JobRow { name: "b".into(), last_started_at: Some(10), ..Default::default() },
        ];
        let order: Vec<&str> = cron_order(&[&a, &b, &c], &rows).iter().map(|j| j.name).collect();
        assert_eq!(order, vec!["c", "b", "a"]);
    }

    #[test]
    fn state_statements_bind_what_they_name() {
        assert_eq!(record_start("gc", 5).params.len(), 2);
        assert_eq!(record_success("gc", 5, None, "{}").params.len(), 4);
        assert!(record_failure("gc", 5, "x").sql.contains("consecutive_failures = consecutive_failures + 1"));
    }
}
