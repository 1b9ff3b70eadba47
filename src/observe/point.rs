//! The Analytics Engine data point written once per request and once per job run
//! (docs/operations.md, "Metrics", documents the same columns and queries them). Positions
//! are the schema: Analytics Engine names columns `index1`, `blob1…blob20`, `double1…double20`
//! by position, so a field is only ever appended, never moved.

use super::{JobRecord, RequestRecord};
use crate::request::CounterSnapshot;

#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    /// `index1`: the sampling key. `"{METHOD} {route}"` for requests, `"job {name}"` for jobs.
    pub index: String,
    pub blobs: Vec<String>,
    pub doubles: Vec<f64>,
}

/// What `blob1…` hold, in order.
pub const BLOBS: [&str; 10] = [
    "kind: request or job",
    "method (requests) or trigger: cron or api (jobs)",
    "route template (requests) or job name (jobs)",
    "error code, empty on success",
    "mentor uid, when the request names one",
    "app id, when the request names one",
    "API key prefix, when a key authenticated the request",
    "access: open, webhook, omi-tool, api, api-or-ticket, test",
    "Cloudflare colo",
    "request id (cf-ray)",
];

/// What `double1…` hold, in order.
pub const DOUBLES: [&str; 12] = [
    "status (jobs: 200 when the run succeeded, 500 when it failed)",
    "duration in ms",
    "D1 statements",
    "D1 rows read",
    "D1 rows written",
    "R2 operations",
    "R2 bytes read",
    "R2 bytes written",
    "other subrequests (Cache API, Durable Object)",
    "operations: R2 + D1 statements + other (what the budget counts)",
    "request body bytes (Content-Length), 0 when unknown",
    "D1 calls (a batch is one)",
];

/// Analytics Engine refuses an index longer than this.
const MAX_INDEX_BYTES: usize = 96;

fn index(text: String) -> String {
    if text.len() <= MAX_INDEX_BYTES {
        return text;
    }
    let mut cut = MAX_INDEX_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
}

fn counts(status: f64, duration_ms: u64, c: &CounterSnapshot, request_bytes: u64) -> Vec<f64> {
    vec![
        status,
        duration_ms as f64,
        c.d1_statements as f64,
        c.d1_rows_read as f64,
        c.d1_rows_written as f64,
        c.r2_operations as f64,
        c.r2_bytes_read as f64,
        c.r2_bytes_written as f64,
        c.other_operations as f64,
        c.operations() as f64,
        request_bytes as f64,
        c.d1_calls as f64,
    ]
}

pub fn request(r: &RequestRecord) -> DataPoint {
    let route = r.notes.route.unwrap_or("(no route)");
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    DataPoint {
        index: index(format!("{} {route}", r.method)),
        blobs: vec![
            "request".into(),
            r.method.clone(),
            route.into(),
            r.error.unwrap_or("").into(),
            text(&r.notes.uid),
            text(&r.notes.app),
            text(&r.notes.key_prefix),
            r.notes.access.unwrap_or("").into(),
            text(&r.colo),
            r.request_id.clone(),
        ],
        doubles: counts(r.status as f64, r.duration_ms, &r.counters, r.request_bytes.unwrap_or(0)),
    }
}

pub fn job(r: &JobRecord) -> DataPoint {
    DataPoint {
        index: index(format!("job {}", r.job)),
        blobs: vec![
            "job".into(),
            r.trigger.into(),
            r.job.clone(),
            r.error.unwrap_or("").into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            r.request_id.clone(),
        ],
        doubles: counts(if r.ok { 200.0 } else { 500.0 }, r.duration_ms, &r.counters, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_point_has_the_documented_columns() {
        let p = request(&crate::observe::sample_request());
        assert_eq!(p.index, "GET /api/omi/logs/{uid}/{memoryId}");
        assert_eq!(p.blobs.len(), BLOBS.len());
        assert_eq!(p.doubles.len(), DOUBLES.len());
        assert_eq!(&p.blobs[..5], &["request", "GET", "/api/omi/logs/{uid}/{memoryId}", "", "mentor-1"]);
        assert_eq!(p.blobs[7], "api");
        assert_eq!(p.blobs[9], "8f1c2a");
        // status, duration, D1 statements, rows read/written, R2 ops, bytes, other, operations
        assert_eq!(&p.doubles[..10], &[200.0, 12.0, 3.0, 40.0, 0.0, 1.0, 2048.0, 0.0, 0.0, 4.0]);
        assert_eq!(p.doubles[11], 2.0);
    }

    #[test]
    fn a_job_point_has_the_same_columns_and_an_unmatched_request_a_placeholder_route() {
        let j = JobRecord {
            request_id: "r".into(),
            job: "omi.reconcile".into(),
            trigger: "api",
            ok: false,
            error: Some("storage_error"),
            detail: None,
            duration_ms: 7,
            counters: CounterSnapshot::default(),
            op_limit: None,
        };
        let p = job(&j);
        assert_eq!(p.index, "job omi.reconcile");
        assert_eq!((p.blobs.len(), p.doubles.len()), (BLOBS.len(), DOUBLES.len()));
        assert_eq!(&p.blobs[..4], &["job", "api", "omi.reconcile", "storage_error"]);
        assert_eq!(p.doubles[0], 500.0);

        let mut r = crate::observe::sample_request();
        r.notes.route = None;
        assert_eq!(request(&r).blobs[2], "(no route)");
        assert!(index("x".repeat(200)).len() <= MAX_INDEX_BYTES);
    }

    #[test]
    fn docs_describe_every_column() {
        let doc = include_str!("../../docs/operations.md");
        for i in 1..=BLOBS.len() {
            assert!(doc.contains(&format!("`blob{i}`")), "docs/operations.md does not describe blob{i}");
        }
        for i in 1..=DOUBLES.len() {
            assert!(doc.contains(&format!("`double{i}`")), "docs/operations.md does not describe double{i}");
        }
        assert!(doc.contains("`index1`"));
    }
}
