//! Every job the cron trigger runs, by name: the storage core's GC (both workloads) and the
//! Omi workload's own jobs. The runner and the job state are in [`crate::store::jobs`].

use crate::app::App;
use crate::store::jobs::{self, Job};
use crate::{omi, store};

pub fn registered() -> Vec<&'static Job> {
    let mut all: Vec<&'static Job> = vec![&store::gc::JOB];
    all.extend(omi::jobs::JOBS.iter());
    all.push(&crate::admin::CONSISTENCY_JOB);
    all
}

/// The cron trigger: every due job within its budget.
pub async fn run_scheduled(app: &App) -> serde_json::Value {
    serde_json::Value::Array(jobs::run_due(app, &registered()).await)
}
