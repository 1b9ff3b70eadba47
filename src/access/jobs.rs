//! Access control's scheduled job, registered with the storage core's runner: the audit log's
//! retention (`AUDIT_RETENTION_DAYS`, a year by default), in bounded deletes within the budget.

use futures_util::future::LocalBoxFuture;
use serde_json::json;

use super::audit::retention_cutoff;
use super::repo;
use crate::app::App;
use crate::error::Result;
use crate::store::jobs::{Job, JobInput, JobOutcome};

/// Rows one statement deletes: D1 statements are bounded in time, and the job repeats.
const ROUND: u32 = 5_000;

pub static JOBS: [Job; 1] = [Job {
    name: "access.audit_retention",
    what: "deletes audit log rows older than AUDIT_RETENTION_DAYS",
    min_interval_ms: 3_600_000,
    run: audit_retention,
}];

fn audit_retention<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let cutoff = retention_cutoff(app.state.now(), app.config.audit_retention_days);
        let meta = app.meta()?;
        let (mut deleted, mut rounds) = (0u64, 0u32);
        loop {
            let changed = meta.run(repo::audit_retention(cutoff, ROUND)).await?.changes;
            deleted += changed;
            rounds += 1;
            if changed < u64::from(ROUND) || app.state.now() >= input.deadline_ms {
                break;
            }
        }
        Ok(JobOutcome { cursor: None, report: json!({ "deleted": deleted, "rounds": rounds, "cutoff": cutoff }) })
    })
}
