//! `GET /api/health`: proves both bindings answer and which schema the database is on, and
//! raises the alerts worth having: a job that is failing or overdue (from the job runner's
//! `jobs` table), or a finished consistency walk that found problems (`consistency_walks`).
//! Any of them turns the status `degraded` (503), so an uptime check on this URL is the alert.
//! It is open, so it names jobs, times and counts, never an error message or a key. It also
//! warns about settings that leave a door open (a shared webhook token, a missing rate limiter).

use serde::{Deserialize, Serialize};
use worker::Response;

use crate::access::enrollment::EnrollmentMode;
use crate::error::Result;
use crate::http::{self, App};
use crate::stmt;
use crate::store::checks::{self, Walk};
use crate::store::jobs::{Job, JobRow};
use crate::store::limiter;

const HOUR_MS: i64 = 3_600_000;
/// How long past its interval a job may go without a successful run before it is overdue.
/// Generous on purpose: on the Free plan one cron run cannot always afford every job (they
/// take turns, the one that waited longest first), and a run that fails is retried 15 minutes
/// later; six hours of silence is a real problem, not a slow cron.
pub const OVERDUE_SLACK_MS: i64 = 6 * HOUR_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Its last run succeeded, recently enough.
    Ok,
    /// It has never run, on a deployment younger than its allowance: the cron has not come
    /// round yet.
    Pending,
    /// No successful run for longer than its interval plus [`OVERDUE_SLACK_MS`].
    Overdue,
    /// Its last run failed.
    Failing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobHealth {
    pub name: &'static str,
    pub status: JobStatus,
    pub last_success_at: Option<i64>,
    pub last_run_at: Option<i64>,
    pub consecutive_failures: i64,
    /// When it becomes overdue without a successful run.
    pub overdue_at: Option<i64>,
}

pub fn overdue_after_ms(job: &Job) -> i64 {
    job.min_interval_ms.max(0) + OVERDUE_SLACK_MS
}

/// A job's health at `now`. `deployed_at`: when the database was created (its first
/// migration), so a job that never ran on an old deployment is overdue, not pending.
pub fn job_health(job: &'static Job, row: Option<&JobRow>, now: i64, deployed_at: Option<i64>) -> JobHealth {
    let allowance = overdue_after_ms(job);
    let last_success_at = row.and_then(|r| r.last_success_at);
    let consecutive_failures = row.map(|r| r.consecutive_failures).unwrap_or(0);
    let since = last_success_at.or(deployed_at);
    let overdue_at = since.map(|t| t.saturating_add(allowance));
    let status = if consecutive_failures > 0 {
        JobStatus::Failing
    } else if overdue_at.is_some_and(|at| now > at) {
        JobStatus::Overdue
    } else if last_success_at.is_none() {
        JobStatus::Pending
    } else {
        JobStatus::Ok
    };
    JobHealth {
        name: job.name,
        status,
        last_success_at,
        last_run_at: row.and_then(|r| r.last_started_at),
        consecutive_failures,
        overdue_at,
    }
}

/// The newest finished consistency walk, as health reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyHealth {
    pub finished_at: i64,
    pub mode: String,
    pub problems: i64,
    pub rows_without_objects: i64,
    pub sha_mismatches: i64,
    pub orphans_older_than_grace: i64,
    pub index_rows_without_version: i64,
}

pub fn consistency_health(walk: &Walk) -> ConsistencyHealth {
    let c = &walk.counts;
    ConsistencyHealth {
        finished_at: walk.finished_at.unwrap_or(walk.started_at),
        mode: walk.mode.clone(),
        problems: c.problems(),
        rows_without_objects: c.rows_without_objects,
        sha_mismatches: c.sha_mismatches,
        orphans_older_than_grace: c.orphans_older_than_grace,
        index_rows_without_version: c.index_rows_without_version,
    }
}

/// Why the status is `degraded`, one line each (empty: `ok`).
pub fn alerts(r2: bool, d1: bool, jobs: &[JobHealth], consistency: Option<&ConsistencyHealth>) -> Vec<String> {
    let mut out = Vec::new();
    if !r2 {
        out.push("R2 (BUCKET) does not answer".to_string());
    }
    if !d1 {
        out.push("D1 (DB) does not answer".to_string());
    }
    for j in jobs {
        match j.status {
            JobStatus::Failing => out.push(format!("job {} is failing ({} run(s) in a row)", j.name, j.consecutive_failures)),
            JobStatus::Overdue => out.push(format!("job {} is overdue: no successful run since it was due", j.name)),
            JobStatus::Ok | JobStatus::Pending => {}
        }
    }
    if let Some(c) = consistency.filter(|c| c.problems > 0) {
        out.push(format!("the last consistency check found {} problem(s)", c.problems));
    }
    out
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    r2: bool,
    d1: bool,
    schema_version: Option<i64>,
    jobs: Vec<JobHealth>,
    consistency: Option<ConsistencyHealth>,
    alerts: Vec<String>,
    /// The rate-limit bindings present (a missing one means no limit of that kind).
    limiters: serde_json::Map<String, serde_json::Value>,
    enrollment: EnrollmentMode,
    /// Settings an operator should change; they do not make the worker unhealthy.
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct SchemaRow {
    version: Option<i64>,
    deployed_at: Option<i64>,
}

/// What D1 holds for health, read in one batch (one round trip).
struct Stored {
    schema_version: Option<i64>,
    deployed_at: Option<i64>,
    jobs: Vec<JobRow>,
    walk: Option<Walk>,
}

async fn stored(app: &App) -> Result<Stored> {
    let meta = app.meta()?;
    let results = meta
        .batch_results(vec![
            stmt!(
                "SELECT MAX(version) AS version, CAST(strftime('%s', MIN(applied_at)) AS INTEGER) * 1000 AS deployed_at FROM schema_version"
            ),
            crate::store::jobs::select_all(),
            checks::latest_finished(),
        ])
        .await?;
    let schema = results.first().map(|r| r.rows::<SchemaRow>()).transpose()?.and_then(|r| r.into_iter().next());
    Ok(Stored {
        schema_version: schema.as_ref().and_then(|s| s.version),
        deployed_at: schema.and_then(|s| s.deployed_at),
        jobs: results.get(1).map(|r| r.rows::<JobRow>()).transpose()?.unwrap_or_default(),
        walk: results.get(2).map(|r| r.rows::<Walk>()).transpose()?.and_then(|r| r.into_iter().next()),
    })
}

/// What an operator should know about the configuration (pure: tested on the host).
pub fn warnings(legacy_webhook_token: bool, api_token: bool, missing_limiters: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if legacy_webhook_token {
        out.push(
            "OMI_WEBHOOK_TOKEN is set: anyone holding it can write as any mentor. Give each mentor a credential \
             (POST /api/admin/mentors/{uid}/credentials) and unset it."
                .to_string(),
        );
    }
    if !api_token {
        out.push("API_TOKEN is not set: only API keys open the API, and live tickets cannot be issued.".to_string());
    }
    for name in missing_limiters {
        out.push(format!("the rate-limit binding {name} is missing: that limit is not enforced (see wrangler.toml [[ratelimits]])"));
    }
    out
}

/// Whether `OMI_WEBHOOK_TOKEN` opens the webhooks: set, and not ignored because the app's
/// signing secret is (signature mode).
pub fn legacy_token_accepted(config: &crate::config::Config) -> bool {
    config.omi_webhook_token.is_some() && config.omi_signing_secret.is_none()
}

async fn schema_only(app: &App) -> Option<i64> {
    #[derive(Deserialize)]
    struct Version {
        version: Option<i64>,
    }
    let meta = app.meta().ok()?;
    meta.first::<Version>(stmt!("SELECT MAX(version) AS version FROM schema_version")).await.ok().flatten().and_then(|r| r.version)
}

pub async fn get(app: &App) -> Result<Response> {
    // A HEAD of a key that never exists is the cheapest call that still reaches the bucket.
    let r2 = match app.blobs() {
        Ok(blobs) => blobs.head("__r2d1_health_probe").await.is_ok(),
        Err(_) => false,
    };
    let mut unread = None;
    let stored = match stored(app).await {
        Ok(s) => Some(s),
        Err(e) => {
            worker::console_error!("r2d1 health: D1 read failed: {e}");
            // Tell a database that answers but lacks the jobs' tables (migrations not
            // applied) from one that does not answer.
            let version = schema_only(app).await;
            version.map(|v| {
                unread = Some("the job and consistency state could not be read: are the D1 migrations applied?".to_string());
                Stored { schema_version: Some(v), deployed_at: None, jobs: Vec::new(), walk: None }
            })
        }
    };
    let d1 = stored.as_ref().is_some_and(|s| s.schema_version.is_some());
    let now = app.state.now();
    let jobs: Vec<JobHealth> = match &stored {
        Some(s) => crate::jobs::registered()
            .into_iter()
            .map(|job| job_health(job, s.jobs.iter().find(|r| r.name == job.name), now, s.deployed_at))
            .collect(),
        None => Vec::new(),
    };
    let consistency = stored.as_ref().and_then(|s| s.walk.as_ref()).map(consistency_health);
    let mut alerts = alerts(r2, d1, &jobs, consistency.as_ref());
    alerts.extend(unread);
    let mut limiters = serde_json::Map::new();
    let mut missing = Vec::new();
    for name in limiter::ALL {
        let bound = limiter::is_bound(&app.env, name);
        limiters.insert(name.to_string(), bound.into());
        if !bound {
            missing.push(name);
        }
    }
    let body = Health {
        status: if alerts.is_empty() { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        r2,
        d1,
        schema_version: stored.as_ref().and_then(|s| s.schema_version),
        jobs,
        consistency,
        alerts,
        limiters,
        enrollment: app.config.omi_enrollment,
        warnings: warnings(legacy_token_accepted(&app.config), app.config.api_token.is_some(), &missing),
    };
    http::json(if body.alerts.is_empty() { 200 } else { 503 }, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::checks::Counts;

    fn noop<'a>(
        _: &'a App,
        _: crate::store::jobs::JobInput,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<crate::store::jobs::JobOutcome>> {
        Box::pin(async { Ok(Default::default()) })
    }

    static EVERY_RUN: Job = Job { name: "gc", what: "", min_interval_ms: 0, run: noop };
    static DAILY: Job = Job { name: "omi.rollups", what: "", min_interval_ms: 24 * HOUR_MS, run: noop };

    fn row(success: Option<i64>, failures: i64) -> JobRow {
        JobRow {
            name: "x".into(),
            last_success_at: success,
            last_started_at: success,
            consecutive_failures: failures,
            ..Default::default()
        }
    }

    #[test]
    fn a_job_is_ok_pending_overdue_or_failing() {
        let now = 100 * HOUR_MS;
        assert_eq!(job_health(&EVERY_RUN, Some(&row(Some(now - HOUR_MS), 0)), now, Some(0)).status, JobStatus::Ok);
        assert_eq!(job_health(&EVERY_RUN, Some(&row(Some(now - 7 * HOUR_MS), 0)), now, Some(0)).status, JobStatus::Overdue);
        assert_eq!(job_health(&DAILY, Some(&row(Some(now - 25 * HOUR_MS), 0)), now, Some(0)).status, JobStatus::Ok);
        assert_eq!(job_health(&DAILY, Some(&row(Some(now - 31 * HOUR_MS), 0)), now, Some(0)).status, JobStatus::Overdue);
        assert_eq!(job_health(&EVERY_RUN, Some(&row(Some(now - HOUR_MS), 2)), now, Some(0)).status, JobStatus::Failing);
        // Never run: pending on a young deployment, overdue on an old one.
        assert_eq!(job_health(&EVERY_RUN, None, now, Some(now - HOUR_MS)).status, JobStatus::Pending);
        assert_eq!(job_health(&EVERY_RUN, None, now, Some(now - 7 * HOUR_MS)).status, JobStatus::Overdue);
        assert_eq!(job_health(&EVERY_RUN, None, now, None).status, JobStatus::Pending);
        let h = job_health(&DAILY, Some(&row(Some(now), 0)), now, None);
        assert_eq!(h.overdue_at, Some(now + 30 * HOUR_MS));
    }

    #[test]
    fn alerts_name_what_is_wrong_and_only_that() {
        let now = 100 * HOUR_MS;
        let ok = job_health(&EVERY_RUN, Some(&row(Some(now), 0)), now, None);
        let failing = job_health(&DAILY, Some(&row(Some(now), 3)), now, None);
        assert!(alerts(true, true, std::slice::from_ref(&ok), None).is_empty());
        let walk = |counts: Counts| Walk {
            id: 1,
            mode: "metadata".into(),
            trigger: "job".into(),
            started_at: 1,
            finished_at: Some(2),
            calls: 1,
            counts,
        };
        let clean = consistency_health(&walk(Counts { objects_without_rows: 3, ..Default::default() }));
        assert!(alerts(true, true, std::slice::from_ref(&ok), Some(&clean)).is_empty(), "objects waiting for the GC are no problem");
        let broken = consistency_health(&walk(Counts { rows_without_objects: 2, ..Default::default() }));
        let a = alerts(false, true, &[ok, failing], Some(&broken));
        assert_eq!(a.len(), 3);
        assert!(a[0].contains("R2") && a[1].contains("omi.rollups is failing (3 run(s)") && a[2].contains("2 problem(s)"));
    }

    #[test]
    fn open_doors_are_named() {
        assert!(warnings(false, true, &[]).is_empty());
        let w = warnings(true, false, &["AUTH_LIMITER"]);
        assert_eq!(w.len(), 3);
        assert!(w[0].contains("write as any mentor"));
        assert!(w[2].contains("AUTH_LIMITER"));
    }
}
