//! Every job the cron trigger runs, by name: the storage core's GC and census (both workloads),
//! the Omi workload's own jobs and the app files' retention. The runner and the job state are in [`crate::store::jobs`].

use crate::access::audit::{AuditRecord, Outcome};
use crate::app::App;
use crate::store::jobs::{self, Job};
use crate::{access, files, omi, store};

pub fn registered() -> Vec<&'static Job> {
    let mut all: Vec<&'static Job> = vec![&store::gc::JOB, &store::census::JOB];
    all.extend(omi::jobs::JOBS.iter());
    all.push(&files::retention::JOB);
    all.extend(access::jobs::JOBS.iter());
    all.push(&crate::admin::CONSISTENCY_JOB);
    all
}

/// The cron trigger: every due job within its budget. Each run goes to the audit log as
/// `cron` (a GC run deletes objects; it is recorded like one asked for through the API).
pub async fn run_scheduled(app: &App) -> serde_json::Value {
    let results = jobs::run_due(app, &registered()).await;
    for r in &results {
        let (Some(name), Some(ok)) = (r["job"].as_str(), r["ok"].as_bool()) else { continue };
        let status = if ok { 200 } else { 500 };
        let record = AuditRecord {
            at_ms: app.state.now(),
            key_prefix: Some(access::audit::CRON.to_string()),
            method: "CRON".into(),
            route: "/api/admin/jobs/{name}/run".into(),
            target: format!("name={name}"),
            outcome: Outcome::from_status(status),
            status,
        };
        access::guard::write_audit(app, record).await;
    }
    serde_json::Value::Array(results)
}
