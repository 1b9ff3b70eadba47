//! The Omi workload's scheduled jobs, registered with the storage core's runner
//! (`store::jobs`); each is bounded by the deadline the runner gives it.

use futures_util::future::LocalBoxFuture;
use serde_json::json;

use super::maintenance::{self, RECONCILE_GRACE_MS};
use super::migration;
use crate::app::App;
use crate::error::Result;
use crate::store::jobs::{Job, JobInput, JobOutcome};

const RECONCILE_PAGE: u32 = 200;

pub static JOBS: [Job; 5] = [
    Job {
        name: "omi.reconcile",
        what: "indexes memories, transcripts and day summaries the index does not know; condemns our leftovers",
        min_interval_ms: 0,
        run: reconcile,
    },
    Job {
        name: "omi.retention",
        what: "deletes memories, transcript batches and day summaries older than RETENTION_DAYS",
        min_interval_ms: 0,
        run: retention,
    },
    Job { name: "omi.rollups", what: "daily summary and per-mentor stats documents in R2", min_interval_ms: 86_400_000, run: rollups },
    Job {
        name: "omi.analytics",
        what: "recomputes analytics older than the current version from R2; makes older transcript batches searchable",
        min_interval_ms: 0,
        run: analytics,
    },
    Job {
        name: "omi.content_hashes",
        what: "content hashes for memory versions stored before migration 0008, so imports deduplicate against them",
        min_interval_ms: 0,
        run: content_hashes,
    },
];

const HASH_PAGE: u32 = 100;

fn reconcile<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let mut cursor = input.cursor;
        let (mut scanned, mut indexed, mut removed, mut pages) = (0, 0, 0, 0);
        loop {
            // A page that could not adopt one object would make no progress: leave it to the
            // next run (the cursor stays where it is).
            if !app.state.can_afford(maintenance::PAGE_OPS) {
                break;
            }
            let r = maintenance::reconcile_step(app, cursor, RECONCILE_PAGE, RECONCILE_GRACE_MS).await?;
            scanned += r.scanned;
            indexed += r.indexed;
            removed += r.removed_orphans;
            pages += 1;
            cursor = r.next_cursor;
            // A whole walk per run at most: the next run starts over at the first key.
            if cursor.is_none() || r.out_of_budget || app.state.now() >= input.deadline_ms {
                break;
            }
        }
        Ok(JobOutcome { cursor, report: json!({ "pages": pages, "scanned": scanned, "indexed": indexed, "removedOrphans": removed }) })
    })
}

fn retention<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move { Ok(JobOutcome { cursor: None, report: maintenance::retention(app, input.deadline_ms).await? }) })
}

fn rollups<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let (report, cursor) = maintenance::rollups(app, input.cursor.as_deref()).await?;
        Ok(JobOutcome { cursor, report })
    })
}

fn analytics<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let (cursor, report) = super::reanalyze::run(app, input.cursor, input.deadline_ms).await?;
        Ok(JobOutcome { cursor, report })
    })
}

/// Walks the versions without a content hash once; the cursor then stays at the last rowid
/// seen (every version stored since 0008 has its hash), so later runs cost one empty query.
fn content_hashes<'a>(app: &'a App, input: JobInput) -> LocalBoxFuture<'a, Result<JobOutcome>> {
    Box::pin(async move {
        let store = app.store()?;
        let mut after = input.cursor.as_deref().and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
        let mut step = migration::StepReport::default();
        loop {
            let (last, more) = migration::hashes(&store, after, HASH_PAGE, &mut step).await?;
            after = last.unwrap_or(after).max(after);
            if !more || app.state.now() >= input.deadline_ms {
                break;
            }
        }
        Ok(JobOutcome { cursor: Some(after.to_string()), report: json!({ "hashed": step.hashed, "skipped": step.hash_skipped }) })
    })
}
