//! Every job the cron trigger runs, by name: the storage core's GC and census (both workloads),
//! the Omi workload's own jobs and the app files' retention. The runner and the job state are in [`crate::store::jobs`].

use crate::app::App;
use crate::store::jobs::{self, Job};
use crate::{files, omi, store};

pub fn registered() -> Vec<&'static Job> {
    let mut all: Vec<&'static Job> = vec![&store::gc::JOB, &store::census::JOB];
    all.extend(omi::jobs::JOBS.iter());
    all.push(&files::retention::JOB);
    all
}

/// The cron trigger: every due job within its budget.
pub async fn run_scheduled(app: &App) -> serde_json::Value {
    serde_json::Value::Array(jobs::run_due(app, &registered()).await)
}
