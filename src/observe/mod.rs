//! What the worker tells its operator about every request and every job run: one structured
//! log line (JSON on `console.log`, which Workers Logs indexes field by field) and one data
//! point in Workers Analytics Engine (the `METRICS` binding). Their shapes are pure
//! ([`line`], [`point`]) and unit-tested on the host; this module gathers the facts and emits
//! them. Neither ever carries a token, a body or a transcript: only the route template, ids that
//! passed the key check, counts and times.

pub mod line;
pub mod point;

use serde::Serialize;
use worker::{Env, Request, Response};

use crate::request::{CounterSnapshot, RequestState};
use crate::routes::{Access, PathParams, Route};

/// The Analytics Engine binding (wrangler.toml `[[analytics_engine_datasets]]`).
pub const METRICS_BINDING: &str = "METRICS";

/// What a request is about, noted while it runs (`RequestState::notes`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Notes {
    /// The route template the router matched (`None`: no route, a 404 or 405).
    pub route: Option<&'static str>,
    /// Who may call the route: `open`, `webhook`, `api`, `test`.
    pub access: Option<&'static str>,
    pub uid: Option<String>,
    pub memory_id: Option<String>,
    pub app: Option<String>,
    /// The public prefix of the API key that authenticated the request, when one did.
    pub key_prefix: Option<String>,
    /// The request's id (or the cron run's), which its job lines carry too.
    pub request_id: Option<String>,
}

/// An id worth logging: what the key check accepts (1–128 of `[A-Za-z0-9._-]`), so a log line
/// never carries arbitrary client text. Anything else is left out.
pub fn loggable_id(raw: &str) -> Option<String> {
    let ok = !raw.is_empty() && raw.len() <= 128 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    ok.then(|| raw.to_string())
}

pub fn access_name(access: Access) -> &'static str {
    match access {
        Access::Open => "open",
        Access::Webhook => "webhook",
        Access::OmiTool => "omi-tool",
        Access::ApiToken => "api",
        Access::ApiTokenOrTicket => "api-or-ticket",
        Access::TestOnly => "test",
    }
}

/// Notes what the router learned: the route, and the mentor or app it names (path parameters,
/// or the webhook's `uid` / a list's `userId` query parameter).
pub fn note_route(state: &RequestState, route: &Route, params: &PathParams, req: &Request) {
    let mut notes = state.notes.borrow_mut();
    notes.route = Some(route.template());
    notes.access = Some(access_name(route.access));
    let query = |name: &str| crate::http::query_param(req, name);
    let path = |name: &str| Some(params.get(name)).filter(|v| !v.is_empty()).map(str::to_string);
    notes.uid = path("uid").or_else(|| query("uid")).or_else(|| query("userId")).as_deref().and_then(loggable_id);
    notes.memory_id = path("memoryId").as_deref().and_then(loggable_id);
    notes.app = path("app").as_deref().and_then(loggable_id);
}

/// A handler's note of the memory a request is about when the path does not name it (a
/// webhook delivery names it in its body).
pub fn note_memory(state: &RequestState, memory_id: &str) {
    state.notes.borrow_mut().memory_id = loggable_id(memory_id);
}

/// The public prefix of the API key that authenticated the request.
pub fn note_key_prefix(state: &RequestState, prefix: &str) {
    state.notes.borrow_mut().key_prefix = loggable_id(prefix);
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// Cloudflare's `cf-ray` (it names the request in Cloudflare's own logs too), else a random id.
fn request_id(req: &Request) -> String {
    if let Some(ray) = crate::http::header(req, "cf-ray").as_deref().and_then(loggable_id) {
        return ray;
    }
    random_id()
}

pub fn random_id() -> String {
    let mut buf = [0u8; 8];
    if getrandom::fill(&mut buf).is_err() {
        return format!("t{}", now_ms());
    }
    hex::encode(buf)
}

/// What is known of a request before it runs.
pub struct Incoming {
    pub request_id: String,
    pub method: String,
    pub colo: Option<String>,
    pub request_bytes: Option<u64>,
    started_ms: u64,
}

impl Incoming {
    /// Notes the request's id in its state, for the job lines a request may write.
    pub fn note(&self, state: &RequestState) {
        state.notes.borrow_mut().request_id = Some(self.request_id.clone());
    }

    pub fn of(req: &Request) -> Self {
        Incoming {
            request_id: request_id(req),
            method: req.method().to_string(),
            colo: req.cf().map(|cf| cf.colo()).filter(|c| !c.is_empty()),
            request_bytes: crate::http::header(req, "Content-Length").and_then(|v| v.trim().parse().ok()),
            started_ms: now_ms(),
        }
    }
}

/// The facts of one finished request.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub request_id: String,
    pub method: String,
    pub status: u16,
    /// The error code when the request failed (`not_found`, `storage_error`, …).
    pub error: Option<&'static str>,
    /// The error's detail for server-side failures (storage, integrity, internal): what an
    /// operator needs, never shown to the client.
    pub detail: Option<String>,
    pub duration_ms: u64,
    pub counters: CounterSnapshot,
    pub budget: Option<u64>,
    pub notes: Notes,
    pub colo: Option<String>,
    pub request_bytes: Option<u64>,
}

/// The facts of one job run.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub request_id: String,
    pub job: String,
    /// `cron` (the scheduled trigger) or `api` (`POST /api/admin/jobs/{name}/run`, or the
    /// routes that take one step of a job).
    pub trigger: &'static str,
    pub ok: bool,
    pub error: Option<&'static str>,
    pub detail: Option<String>,
    pub duration_ms: u64,
    pub counters: CounterSnapshot,
    /// The operations the job was allowed (its share of the run's budget).
    pub op_limit: Option<u64>,
}

/// At most this much of an error's detail goes into a log line.
const MAX_DETAIL: usize = 300;

pub fn detail_of(e: &crate::error::Error) -> Option<String> {
    e.is_server_side().then(|| {
        let text = e.to_string();
        match text.char_indices().nth(MAX_DETAIL) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    })
}

/// The request is done: its log line and its data point.
pub fn request_done(env: &Env, incoming: &Incoming, state: &RequestState, resp: &Response, error: Option<&crate::error::Error>) {
    let record = RequestRecord {
        request_id: incoming.request_id.clone(),
        method: incoming.method.clone(),
        status: resp.status_code(),
        error: error.map(|e| e.code()),
        detail: error.and_then(detail_of),
        duration_ms: now_ms().saturating_sub(incoming.started_ms),
        counters: state.counters.snapshot(),
        budget: state.budget(),
        notes: state.notes.borrow().clone(),
        colo: incoming.colo.clone(),
        request_bytes: incoming.request_bytes,
    };
    worker::console_log!("{}", line::request(&record));
    write_point(env, &point::request(&record));
}

/// A job run is done: its log line and its data point.
pub fn job_done(env: &Env, record: &JobRecord) {
    worker::console_log!("{}", line::job(record));
    write_point(env, &point::job(record));
}

/// When a job started: what `job_finished` measures from.
pub struct JobStart {
    pub at_ms: u64,
    pub counters: CounterSnapshot,
}

pub fn job_started(state: &RequestState) -> JobStart {
    JobStart { at_ms: now_ms(), counters: state.counters.snapshot() }
}

pub fn job_elapsed_ms(start: &JobStart) -> u64 {
    now_ms().saturating_sub(start.at_ms)
}

/// The binding is optional: without it (an old wrangler.toml, a local run without the
/// dataset) nothing is written and nothing fails.
fn write_point(env: &Env, p: &point::DataPoint) {
    let Ok(dataset) = env.analytics_engine(METRICS_BINDING) else { return };
    let mut builder = worker::AnalyticsEngineDataPointBuilder::new().indexes([p.index.as_str()]);
    for blob in &p.blobs {
        builder = builder.add_blob(blob.as_str());
    }
    let built = builder.doubles(p.doubles.iter().copied()).build();
    if let Err(e) = dataset.write_data_point(&built) {
        worker::console_warn!("r2d1 metrics: data point not written: {e}");
    }
}

/// A request record for the shape tests of [`line`] and [`point`].
#[cfg(test)]
pub(crate) fn sample_request() -> RequestRecord {
    RequestRecord {
        request_id: "8f1c2a".into(),
        method: "GET".into(),
        status: 200,
        error: None,
        detail: None,
        duration_ms: 12,
        counters: CounterSnapshot {
            d1_statements: 3,
            d1_calls: 2,
            d1_rows_read: 40,
            d1_rows_written: 0,
            r2_operations: 1,
            r2_bytes_read: 2048,
            r2_bytes_written: 0,
            other_operations: 0,
            r2_class_a: 0,
            r2_class_b: 1,
        },
        budget: Some(50),
        notes: Notes {
            route: Some("/api/omi/logs/{uid}/{memoryId}"),
            access: Some("api"),
            uid: Some("mentor-1".into()),
            memory_id: Some("memory_abc123".into()),
            ..Default::default()
        },
        colo: None,
        request_bytes: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_key_shaped_ids_are_logged() {
        assert_eq!(loggable_id("mentor-1"), Some("mentor-1".into()));
        assert_eq!(loggable_id("memory_abc.1"), Some("memory_abc.1".into()));
        assert_eq!(loggable_id(""), None);
        assert_eq!(loggable_id("a b"), None);
        assert_eq!(loggable_id("x\ny"), None);
        assert_eq!(loggable_id(&"a".repeat(129)), None);
        assert_eq!(loggable_id("tok=secret&x"), None);
    }

    #[test]
    fn only_server_side_errors_carry_detail_and_it_is_bounded() {
        use crate::error::Error;
        assert_eq!(detail_of(&Error::NotFound("no memory x".into())), None);
        let long = Error::Storage("x".repeat(1000));
        let d = detail_of(&long).unwrap();
        assert!(d.chars().count() <= MAX_DETAIL + 1 && d.ends_with('…'));
        assert_eq!(detail_of(&Error::Internal("boom".into())).as_deref(), Some("internal error: boom"));
    }
}
