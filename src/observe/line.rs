//! The structured log lines (docs/operations.md, "Logs"): one JSON object per request
//! (`"event":"request"`) and per job run (`"event":"job"`), on one line, so Workers Logs
//! indexes every field. Fields that do not apply are left out rather than `null`.

use serde::Serialize;

use super::{JobRecord, RequestRecord};
use crate::request::CounterSnapshot;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct D1 {
    calls: u64,
    statements: u64,
    rows_read: u64,
    rows_written: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct R2 {
    operations: u64,
    bytes_read: u64,
    bytes_written: u64,
}

fn d1(c: &CounterSnapshot) -> D1 {
    D1 { calls: c.d1_calls, statements: c.d1_statements, rows_read: c.d1_rows_read, rows_written: c.d1_rows_written }
}

fn r2(c: &CounterSnapshot) -> R2 {
    R2 { operations: c.r2_operations, bytes_read: c.r2_bytes_read, bytes_written: c.r2_bytes_written }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestLine<'a> {
    event: &'static str,
    request_id: &'a str,
    method: &'a str,
    /// The route template (`/api/omi/logs/{uid}/{memoryId}`), never the raw path or query.
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    access: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_prefix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    colo: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_bytes: Option<u64>,
    d1: D1,
    r2: R2,
    other_operations: u64,
    /// R2 calls + D1 statements + other subrequests: what the budget counts.
    operations: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<u64>,
}

pub fn request(r: &RequestRecord) -> String {
    let line = RequestLine {
        event: "request",
        request_id: &r.request_id,
        method: &r.method,
        route: r.notes.route,
        status: r.status,
        error: r.error,
        detail: r.detail.as_deref(),
        duration_ms: r.duration_ms,
        access: r.notes.access,
        key_prefix: r.notes.key_prefix.as_deref(),
        uid: r.notes.uid.as_deref(),
        memory_id: r.notes.memory_id.as_deref(),
        app: r.notes.app.as_deref(),
        colo: r.colo.as_deref(),
        request_bytes: r.request_bytes,
        d1: d1(&r.counters),
        r2: r2(&r.counters),
        other_operations: r.counters.other_operations,
        operations: r.counters.operations(),
        budget: r.budget,
    };
    serde_json::to_string(&line).unwrap_or_else(|_| "{\"event\":\"request\",\"error\":\"unserialisable log line\"}".into())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobLine<'a> {
    event: &'static str,
    request_id: &'a str,
    job: &'a str,
    trigger: &'a str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    duration_ms: u64,
    d1: D1,
    r2: R2,
    other_operations: u64,
    operations: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    op_limit: Option<u64>,
}

pub fn job(r: &JobRecord) -> String {
    let line = JobLine {
        event: "job",
        request_id: &r.request_id,
        job: &r.job,
        trigger: r.trigger,
        ok: r.ok,
        error: r.error,
        detail: r.detail.as_deref(),
        duration_ms: r.duration_ms,
        d1: d1(&r.counters),
        r2: r2(&r.counters),
        other_operations: r.counters.other_operations,
        operations: r.counters.operations(),
        op_limit: r.op_limit,
    };
    serde_json::to_string(&line).unwrap_or_else(|_| "{\"event\":\"job\",\"error\":\"unserialisable log line\"}".into())
}

/// The summary line of a cron run (`"event":"cron"`): which jobs ran, were skipped or failed,
/// and the run's operations against its budget. The jobs' own lines carry their detail.
pub fn cron(state: &crate::request::RequestState, report: &serde_json::Value) -> String {
    let jobs: Vec<serde_json::Value> = report
        .as_array()
        .map(|a| {
            a.iter()
                .map(|j| {
                    let outcome = match (j.get("skipped"), j.get("ok").and_then(|v| v.as_bool())) {
                        (Some(why), _) => format!("skipped: {}", why.as_str().unwrap_or("")),
                        (None, Some(true)) => "ok".into(),
                        _ => "failed".into(),
                    };
                    serde_json::json!({ "job": j.get("job"), "outcome": outcome })
                })
                .collect()
        })
        .unwrap_or_default();
    let c = state.counters.snapshot();
    serde_json::json!({
        "event": "cron",
        "requestId": state.notes.borrow().request_id,
        "jobs": jobs,
        "operations": c.operations(),
        "budget": state.budget(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn record() -> RequestRecord {
        crate::observe::sample_request()
    }

    #[test]
    fn a_request_line_is_one_json_object_with_the_documented_fields() {
        let text = request(&record());
        assert!(!text.contains('\n'));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["event"], "request");
        assert_eq!(v["route"], "/api/omi/logs/{uid}/{memoryId}");
        assert_eq!(v["status"], 200);
        assert_eq!(v["durationMs"], 12);
        assert_eq!(v["uid"], "mentor-1");
        assert_eq!(v["memoryId"], "memory_abc123");
        assert_eq!(v["d1"]["statements"], 3);
        assert_eq!(v["d1"]["calls"], 2);
        assert_eq!(v["d1"]["rowsRead"], 40);
        assert_eq!(v["r2"]["operations"], 1);
        assert_eq!(v["r2"]["bytesRead"], 2048);
        assert_eq!(v["operations"], 4);
        assert_eq!(v["budget"], 50);
        // What does not apply is left out.
        for absent in ["error", "detail", "app", "keyPrefix", "colo", "requestBytes"] {
            assert!(v.get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn a_failed_request_names_its_error_and_a_job_line_its_job() {
        let mut r = record();
        r.status = 502;
        r.error = Some("storage_error");
        r.detail = Some("storage failure: R2 get k: network".into());
        let v: Value = serde_json::from_str(&request(&r)).unwrap();
        assert_eq!((v["error"].as_str(), v["detail"].as_str()), (Some("storage_error"), Some("storage failure: R2 get k: network")));

        let j = JobRecord {
            request_id: "r".into(),
            job: "gc".into(),
            trigger: "cron",
            ok: true,
            error: None,
            detail: None,
            duration_ms: 5,
            counters: CounterSnapshot { d1_statements: 20, r2_operations: 2, ..Default::default() },
            op_limit: Some(25),
        };
        let v: Value = serde_json::from_str(&job(&j)).unwrap();
        assert_eq!((v["event"].as_str(), v["job"].as_str(), v["trigger"].as_str()), (Some("job"), Some("gc"), Some("cron")));
        assert_eq!((v["operations"].as_u64(), v["opLimit"].as_u64(), v["ok"].as_bool()), (Some(22), Some(25), Some(true)));
    }
}
