//! The one route table. Each workload contributes its routes (`omi::http::ROUTES`,
//! `files::http::ROUTES`, `access::http::ROUTES`), the core adds its own, and [`dispatch`]
//! matches the path template, answers 405 (with `Allow`) or 404 as JSON, enforces the route's
//! rule from `access::table` (who may call it, with which scope, and the forced filter a narrow
//! key gets), and only then calls the handler: handlers never check credentials themselves.
//! After the handler, the request goes to the audit log when the audit rules say so.
//!
//! Templates: literal segments, `{name}` (one non-empty segment) and a trailing `{name+}` (the
//! rest of the path, at least one segment). Parameters arrive percent-decoded.

use futures_util::future::LocalBoxFuture;
use worker::{Context, Env, Method, Request, Response};

use crate::access::guard::{self, Caller};
use crate::access::rule::{Access as Rule, RequestParams};
use crate::access::table;
use crate::app::App;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::request::RequestState;
use crate::{access, admin, cors, faults, files, health, http, live, observe, omi, openapi, store};

/// The kind of credential a route takes, as its line in the route table declares it. The rule
/// the router enforces is the route's row in `access::table` (which scope, narrowed by which
/// parameter); a host test keeps the two in agreement, so a route's line says at a glance
/// whether it is open, a webhook or keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, Omi's setup check, the enrollment page).
    Open,
    /// Omi's deliveries: a webhook credential, checked before the body is read (tokens) and on
    /// the bounded body (signatures).
    Webhook,
    /// Omi's assistant calling a chat tool: a `v2` signature, verified by the handler.
    OmiTool,
    /// A Bearer credential: an API key, or `API_TOKEN` (the bootstrap admin), holding the scope
    /// the table names.
    ApiToken,
    /// A live ticket offered as a WebSocket subprotocol, or a Bearer credential.
    ApiTokenOrTicket,
    /// Test builds only (`fault-injection`); absent from production builds' table.
    TestOnly,
}

impl Access {
    /// Whether the table's rule is of this kind.
    pub fn agrees_with(self, rule: &crate::access::rule::Access) -> bool {
        use crate::access::rule::Access as Rule;
        matches!(
            (self, rule),
            (Access::Open, Rule::Open)
                | (Access::Webhook, Rule::Webhook)
                | (Access::OmiTool, Rule::OmiTool)
                | (Access::ApiToken, Rule::Key(_))
                | (Access::ApiTokenOrTicket, Rule::LiveSocket(_))
                | (Access::TestOnly, Rule::TestOnly)
        )
    }
}

pub type Handler = for<'a> fn(Request, &'a App, PathParams) -> LocalBoxFuture<'a, Result<Response>>;

pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: Handler,
}

impl Route {
    /// The path template, as logs and the API document name the route.
    pub fn template(&self) -> &'static str {
        self.path
    }
}

/// Percent-decoded path parameters by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PathParams(Vec<(&'static str, String)>);

impl PathParams {
    /// The parameter's value; templates guarantee every name they declare is present.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// Every route, workload by workload (test-only routes only in test builds).
pub fn all_routes() -> Vec<&'static Route> {
    CORE_ROUTES
        .iter()
        .chain(omi::http::ROUTES)
        .chain(files::http::ROUTES)
        .chain(access::http::ROUTES)
        .chain(TEST_ROUTES.iter())
        .filter(|r| r.access != Access::TestOnly || faults::ENABLED)
        .collect()
}

fn name_of(segment: &str) -> Option<(&str, bool)> {
    let inner = segment.strip_prefix('{')?.strip_suffix('}')?;
    Some(match inner.strip_suffix('+') {
        Some(n) => (n, true),
        None => (inner, false),
    })
}

fn decode(raw: &str) -> Result<String> {
    let bytes =
        crate::files::path::percent_decode(raw).ok_or_else(|| Error::bad_request("invalid_path", "path has a malformed percent escape"))?;
    String::from_utf8(bytes).map_err(|_| Error::bad_request("invalid_path", "path is not valid UTF-8"))
}

/// Matches `segments` (raw, still percent-encoded) against `template`. `Ok(None)`: no match;
/// `Err`: a match whose parameters do not decode.
pub fn match_template(template: &'static str, segments: &[&str]) -> Result<Option<PathParams>> {
    let parts: Vec<&'static str> = template.trim_start_matches('/').split('/').collect();
    let mut params = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        match name_of(part) {
            Some((name, true)) => {
                let rest = &segments[i.min(segments.len())..];
                if rest.is_empty() {
                    return Ok(None);
                }
                params.push((name, rest.join("/")));
                return decode_all(params).map(Some);
            }
            Some((name, false)) => match segments.get(i) {
                Some(s) if !s.is_empty() => params.push((name, s.to_string())),
                _ => return Ok(None),
            },
            None => {
                if segments.get(i) != Some(part) {
                    return Ok(None);
                }
            }
        }
    }
    if segments.len() != parts.len() {
        return Ok(None);
    }
    decode_all(params).map(Some)
}

fn decode_all(raw: Vec<(&'static str, String)>) -> Result<PathParams> {
    raw.into_iter().map(|(n, v)| Ok((n, decode(&v)?))).collect::<Result<Vec<_>>>().map(PathParams)
}

fn serves(route: &Route, method: &Method) -> bool {
    route.method == *method || (*method == Method::Head && route.method == Method::Get)
}

/// What the table says about a request: the route and its parameters, or the methods the path
/// does answer to (405), or nothing (404).
pub enum Matched {
    Route(&'static Route, PathParams),
    WrongMethod(Vec<&'static str>),
    NotFound,
}

pub fn find(routes: &[&'static Route], method: &Method, path: &str) -> Result<Matched> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut allowed: Vec<&'static str> = Vec::new();
    for route in routes {
        if let Some(params) = match_template(route.path, &segments)? {
            if serves(route, method) {
                return Ok(Matched::Route(route, params));
            }
            let m = method_name(&route.method);
            if !allowed.contains(&m) {
                allowed.push(m);
            }
        }
    }
    if !allowed.is_empty() {
        return Ok(Matched::WrongMethod(allowed));
    }
    // `/api/apps/` lists apps like `/api/apps`: one trailing slash is forgiven.
    match path.strip_suffix('/') {
        Some(shorter) if !shorter.is_empty() && !shorter.ends_with('/') => find(routes, method, shorter),
        _ => Ok(Matched::NotFound),
    }
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Patch => "PATCH",
        Method::Head => "HEAD",
        _ => "OPTIONS",
    }
}

pub fn read_config(env: &Env) -> Result<Config> {
    Config::from_lookup(|name| env.var(name).map(|v| v.to_string()).ok().or_else(|| env.secret(name).map(|v| v.to_string()).ok()))
        .map_err(|e| Error::NotConfigured(format!("configuration error: {e}")))
}

/// The request's own state; in test builds the `X-R2D1-*` headers set its clock, faults and
/// pause points. Production builds ignore those headers entirely.
fn request_state(req: &Request) -> RequestState {
    if faults::ENABLED {
        let now = http::header(req, "X-R2D1-Now").and_then(|v| v.trim().parse::<i64>().ok());
        let fault = http::header(req, "X-R2D1-Fault");
        let pause = http::header(req, "X-R2D1-Pause");
        RequestState::for_test(now, fault.as_deref(), pause.as_deref())
    } else {
        RequestState::at_wall_clock()
    }
}

/// A test build's `X-R2D1-Budget` (production builds ignore it).
fn test_budget(req: &Request) -> Option<u64> {
    if !faults::ENABLED {
        return None;
    }
    http::header(req, "X-R2D1-Budget").and_then(|v| v.trim().parse::<u64>().ok())
}

pub async fn handle(req: Request, env: Env, ctx: Context) -> Response {
    let incoming = observe::Incoming::of(&req);
    let state = request_state(&req);
    incoming.note(&state);
    let origin = http::header(&req, "Origin");
    let config = read_config(&env);
    let allowed = config.as_ref().map(|c| c.allowed_origins.clone()).unwrap_or_default();
    if req.method() == Method::Options {
        return preflight(&req.path(), &allowed, origin.as_deref()).unwrap_or_else(|e| http::error_response(&e));
    }
    let (result, state) = match config {
        Ok(config) => {
            // Every adapter call counts against the plan's per-request limit from here on (test
            // builds: `X-R2D1-Budget` sets another, so one worker can play both plans).
            let budget = test_budget(&req).unwrap_or(config.subrequest_budget as u64);
            state.set_budget(Some(budget));
            let mut app = App::new(env.clone(), config, Some(ctx), state);
            let state = app.state.clone();
            let result = dispatch(req, &mut app).await;
            record_usage(&app);
            (result, state)
        }
        Err(e) => (Err(e), std::rc::Rc::new(state)),
    };
    let (mut resp, error) = match result {
        Ok(resp) => (resp, None),
        Err(e) => (http::error_response(&e), Some(e)),
    };
    // Errors too, so a dashboard on another origin can read why it was refused. (A WebSocket
    // upgrade's headers are immutable: the socket needs none.)
    for (name, value) in cors::response_headers(&allowed, origin.as_deref()) {
        let _ = resp.headers_mut().append(name, &value);
    }
    observe::request_done(&env, &incoming, &state, &resp, error.as_ref());
    resp
}

/// The methods a path answers to, as [`find`] matches it (a trailing slash forgiven).
fn methods_for(path: &str) -> Result<Vec<&'static str>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut methods: Vec<&'static str> = Vec::new();
    for route in all_routes() {
        if match_template(route.path, &segments)?.is_some() {
            let m = method_name(&route.method);
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
    }
    match path.strip_suffix('/') {
        Some(shorter) if methods.is_empty() && !shorter.is_empty() && !shorter.ends_with('/') => methods_for(shorter),
        _ => Ok(methods),
    }
}

/// `OPTIONS` on any route: 204 with `Allow`, and for an allowed origin the CORS preflight
/// headers (no credential needed: browsers send none with a preflight).
fn preflight(path: &str, allowed: &cors::AllowedOrigins, origin: Option<&str>) -> Result<Response> {
    let methods = methods_for(path)?;
    if methods.is_empty() {
        return Err(Error::NotFound(format!("no route for OPTIONS {path}")));
    }
    let mut allow = methods.clone();
    if allow.contains(&"GET") {
        allow.push("HEAD");
    }
    allow.push("OPTIONS");
    let mut resp = Response::empty()?.with_status(204);
    let headers = resp.headers_mut();
    headers.set("Allow", &allow.join(", "))?;
    for (name, value) in cors::preflight_headers(allowed, origin, &methods) {
        headers.append(name, &value)?;
    }
    Ok(resp)
}

/// Adds the request's R2 operations to the isolate's daily totals (and clears them: a streamed
/// body adds its own reads when it ends, see `files::export`); when a flush is due, it runs in
/// `waitUntil`, after the response (see `store::usage`).
fn record_usage(app: &App) {
    let counts = std::mem::take(&mut *app.state.counters.r2_by_class.borrow_mut());
    let Some(stmts) = store::usage::after_request(app.now_ms, &counts) else { return };
    let (Some(ctx), Ok(meta)) = (app.ctx.as_ref(), app.meta()) else { return };
    ctx.wait_until(async move {
        if let Err(e) = meta.batch(stmts).await {
            worker::console_warn!("r2d1 usage: daily R2 operation totals not written: {e}");
        }
    });
}

async fn dispatch(req: Request, app: &mut App) -> Result<Response> {
    let path = req.path();
    let method = req.method();
    match find(&all_routes(), &method, &path)? {
        Matched::Route(route, params) => {
            observe::note_route(&app.state, route, &params, &req);
            let verb = table::Verb::parse(method_name(&method)).ok_or_else(|| Error::Internal(format!("no verb for {method}")))?;
            // Fail closed: a route without a rule is a build mistake the tests catch.
            let rule = table::rule_for(verb, route.template())
                .ok_or_else(|| Error::Internal(format!("{} {} has no access rule", method_name(&method), route.template())))?;
            let path_params: Vec<(&str, &str)> = params.0.iter().map(|(n, v)| (*n, v.as_str())).collect();
            app.caller.access = Some(rule.access);
            let checked = check_access(&rule.access, app, &req, &path_params).await;
            let result = match checked {
                Ok(()) => (route.handler)(req, app, params.clone()).await,
                Err(e) => Err(e),
            };
            let status = match &result {
                Ok(resp) => resp.status_code(),
                Err(e) => e.status(),
            };
            let path_params: Vec<(&str, &str)> = params.0.iter().map(|(n, v)| (*n, v.as_str())).collect();
            guard::audit(app, method_name(&method), route.template(), &path_params, status).await;
            if faults::ENABLED {
                // Test builds show what the request cost, counted by the store adapters.
                if let Ok(mut resp) = result {
                    let c = app.state.counters.snapshot();
                    let value = format!(
                        "route={} d1_statements={} d1_rows_read={} d1_rows_written={} r2_operations={} r2_bytes_read={} r2_bytes_written={} d1_calls={} other_operations={} operations={} r2_class_a={} r2_class_b={}",
                        route.template(),
                        c.d1_statements,
                        c.d1_rows_read,
                        c.d1_rows_written,
                        c.r2_operations,
                        c.r2_bytes_read,
                        c.r2_bytes_written,
                        c.d1_calls,
                        c.other_operations,
                        c.operations(),
                        c.r2_class_a,
                        c.r2_class_b
                    );
                    // A WebSocket upgrade's headers are immutable; the count is then left off.
                    let _ = resp.headers_mut().set("X-R2D1-Counters", &value);
                    return Ok(resp);
                }
            }
            result
        }
        Matched::WrongMethod(allowed) => {
            let error = Error::MethodNotAllowed(format!("method not allowed; use {}", allowed.join(" or ")));
            // Omi reads a tool's failure as `{"error": "text"}`.
            let mut resp =
                if omi::http::tools::is_tool_path(&path) { omi::http::tools::error_response(&error) } else { http::error_response(&error) };
            resp.headers_mut().set("Allow", &allowed.join(", "))?;
            Ok(resp)
        }
        Matched::NotFound => Err(Error::NotFound(format!("no route for {method} {path}"))),
    }
}

/// The route's rule, applied: who the caller is and what the handler may serve go into
/// `app.caller`. Query parameters are read the way the handlers read them (first occurrence,
/// empty means absent), so the value authorized is the value served.
async fn check_access(rule: &Rule, app: &mut App, req: &Request, path: &[(&str, &str)]) -> Result<()> {
    match rule {
        Rule::Open | Rule::TestOnly | Rule::OmiTool => Ok(()),
        Rule::Webhook => {
            let pass = omi::http::webhook::check_access(app, req).await?;
            app.caller.webhook = Some(pass);
            Ok(())
        }
        Rule::Key(key_rule) => {
            let query = http::query_pairs(req);
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let params = RequestParams { path, query: &query };
            let principal = guard::authenticate(app, req).await?;
            if let crate::access::rule::Credential::ApiKey { prefix, .. } = &principal.credential {
                observe::note_key_prefix(&app.state, prefix);
            }
            // Kept before the rule is applied, so a 403 is audited under the key that got it.
            app.caller.principal = Some(principal.clone());
            app.caller.grant = guard::authorize(key_rule, &principal, &params)?;
            Ok(())
        }
        Rule::LiveSocket(live_rule) => {
            let query = http::query_pairs(req);
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let params = RequestParams { path, query: &query };
            let (live, grant) = guard::check_live(app, req, live_rule, &params).await?;
            app.caller = Caller { live: Some(live), grant, ..std::mem::take(&mut app.caller) };
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The core's own routes

macro_rules! route {
    ($method:ident $path:literal, $access:ident, |$req:ident, $app:ident, $p:ident| $body:expr) => {
        $crate::routes::Route {
            method: ::worker::Method::$method,
            path: $path,
            access: $crate::routes::Access::$access,
            handler: |$req, $app, $p| Box::pin(async move { $body }),
        }
    };
}
pub(crate) use route;

static CORE_ROUTES: &[Route] = &[
    route!(Get "/api/health", Open, |_req, app, _p| health::get(app).await),
    route!(Get "/api/openapi.json", Open, |_req, _app, _p| openapi::get()),
    route!(Get "/api/admin/consistency", ApiToken, |req, app, _p| admin::consistency(&req, app).await),
    route!(Get "/api/admin/jobs", ApiToken, |_req, app, _p| admin::jobs(app).await),
    route!(Post "/api/admin/jobs/{name}/run", ApiToken, |_req, app, p| admin::run_job(app, p.get("name")).await),
    route!(Post "/api/live/ticket", ApiToken, |_req, app, _p| live::ticket(app)),
    route!(Get "/api/live", ApiTokenOrTicket, |req, app, _p| live::connect(req, app).await),
];

static TEST_ROUTES: &[Route] = &[
    // Proves a panic becomes a 500 JSON error and the isolate recovers.
    route!(Get "/api/__test/panic", TestOnly, |_req, _app, _p| {
        if faults::ENABLED {
            panic!("deliberate panic for the tests");
        }
        Err(Error::NotFound("no such route".into()))
    }),
    route!(Post "/api/__test/release", TestOnly, |req, _app, _p| {
        let name = http::query_param(&req, "name").ok_or_else(|| Error::bad_request("missing_field", "name: is required"))?;
        faults::release(&name);
        http::ok(&serde_json::json!({ "released": name }))
    }),
    route!(Get "/api/__test/paused", TestOnly, |_req, _app, _p| {
        let parked: serde_json::Map<String, serde_json::Value> = faults::parked().into_iter().map(|(k, v)| (k, v.into())).collect();
        http::ok(&serde_json::json!({ "paused": parked }))
    }),
    // The generated access test walks exactly the routes this build serves, each with the rule
    // the router enforces (a route without one shows `rule: null`, and the test fails).
    route!(Get "/api/__test/access-table", TestOnly, |_req, _app, _p| http::ok(&served_rules())),
];

/// Every served route with its rule from `access::table`.
pub fn served_rules() -> serde_json::Value {
    let rows: Vec<serde_json::Value> = all_routes()
        .iter()
        .map(|r| {
            let name = method_name(&r.method);
            let rule = table::Verb::parse(name).and_then(|v| table::rule_for(v, r.path));
            serde_json::json!({ "method": name, "template": r.path, "rule": rule })
        })
        .collect();
    serde_json::Value::Array(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<&str> {
        path.trim_start_matches('/').split('/').collect()
    }

    fn every_route() -> Vec<&'static Route> {
        CORE_ROUTES
            .iter()
            .chain(omi::http::ROUTES)
            .chain(files::http::ROUTES)
            .chain(access::http::ROUTES)
            .chain(TEST_ROUTES.iter())
            .collect()
    }

    #[test]
    fn templates_are_unique_and_well_formed() {
        let routes = every_route();
        let mut seen = std::collections::HashSet::new();
        for r in &routes {
            assert!(r.path.starts_with("/api/") || r.path.starts_with("/.well-known/"), "{}", r.path);
            let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
            let mut names = std::collections::HashSet::new();
            for (i, p) in parts.iter().enumerate() {
                assert!(!p.is_empty(), "empty segment in {}", r.path);
                if p.contains('{') || p.contains('}') {
                    let (name, rest) = name_of(p).unwrap_or_else(|| panic!("bad parameter {p} in {}", r.path));
                    assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{}", r.path);
                    assert!(names.insert(name), "{name} twice in {}", r.path);
                    assert!(!rest || i == parts.len() - 1, "{{{name}+}} must end {}", r.path);
                }
            }
            let shape: Vec<&str> = parts.iter().map(|p| if p.starts_with('{') { "{}" } else { p }).collect();
            assert!(seen.insert((method_name(&r.method), shape.join("/"))), "duplicate route {} {}", method_name(&r.method), r.path);
            assert_eq!(r.template(), r.path);
        }
    }

    #[test]
    fn parameters_are_matched_and_decoded() {
        let p = match_template("/api/omi/logs/{uid}/{memoryId}", &segs("/api/omi/logs/u%2D1/m1")).unwrap().unwrap();
        assert_eq!((p.get("uid"), p.get("memoryId")), ("u-1", "m1"));
        assert!(match_template("/api/omi/logs/{uid}/{memoryId}", &segs("/api/omi/logs/u1")).unwrap().is_none());
        assert!(match_template("/api/omi/logs/{uid}", &segs("/api/omi/logs/")).unwrap().is_none());
        let p = match_template("/api/apps/{app}/files/{path+}", &segs("/api/apps/a/files/src/a%20b.js")).unwrap().unwrap();
        assert_eq!(p.get("path"), "src/a b.js");
        assert!(match_template("/api/apps/{app}/files/{path+}", &segs("/api/apps/a/files")).unwrap().is_none());
        assert!(match_template("/api/apps/{app}/files:batch", &segs("/api/apps/a/files:batch")).unwrap().is_some());
        assert!(match_template("/api/apps/{app}/files/{path+}", &segs("/api/apps/a/files/%ff")).is_err());
        // an encoded slash stays inside its segment's value, where the path check sees it
        let p = match_template("/api/apps/{app}/files/{path+}", &segs("/api/apps/a/files/a%2F..%2Fb")).unwrap().unwrap();
        assert_eq!(p.get("path"), "a/../b");
    }

    #[test]
    fn the_table_answers_405_with_the_allowed_methods_and_404_otherwise() {
        let routes = all_routes();
        assert!(matches!(find(&routes, &Method::Get, "/api/omi/logs").unwrap(), Matched::Route(r, _) if r.path == "/api/omi/logs"));
        assert!(matches!(find(&routes, &Method::Head, "/api/health").unwrap(), Matched::Route(..)));
        match find(&routes, &Method::Get, "/api/admin/storage/gc").unwrap() {
            Matched::WrongMethod(m) => assert_eq!(m, vec!["POST"]),
            _ => panic!("expected 405"),
        }
        match find(&routes, &Method::Delete, "/api/apps/x/files/a.txt").unwrap() {
            Matched::Route(r, p) => assert_eq!((r.path, p.get("path")), ("/api/apps/{app}/files/{path+}", "a.txt")),
            _ => panic!("expected the file route"),
        }
        assert!(matches!(find(&routes, &Method::Get, "/api/apps/").unwrap(), Matched::Route(r, _) if r.path == "/api/apps"));
        assert!(matches!(find(&routes, &Method::Get, "/api/nothing").unwrap(), Matched::NotFound));
        for alias in ["/api/omi/memory", "/api/omi/conversation", "/api/omi/transcript", "/api/omi/webhook", "/api/omi/day-summary"] {
            assert!(matches!(find(&routes, &Method::Post, alias).unwrap(), Matched::Route(r, _) if r.access == Access::Webhook), "{alias}");
        }
    }

    #[test]
    fn every_route_has_a_rule_in_the_access_table() {
        // The seam for issue 11: `access::table` holds a rule for every (method, template)
        // the router serves; a route added here without one fails this test.
        use crate::access::table::{check_routes, Verb};
        let served: Vec<(Verb, &str)> =
            every_route().iter().map(|r| (Verb::parse(method_name(&r.method)).expect("a verb the table knows"), r.path)).collect();
        assert_eq!(check_routes(served), Vec::<String>::new());
    }

    #[test]
    fn preflights_name_every_method_of_a_path() {
        assert_eq!(methods_for("/api/omi/memory").unwrap(), vec!["POST", "GET"]);
        assert_eq!(methods_for("/api/omi/users/u1").unwrap(), vec!["DELETE"]);
        assert_eq!(methods_for("/api/apps/").unwrap(), vec!["GET"]);
        assert!(methods_for("/api/nothing").unwrap().is_empty());
    }

    #[test]
    fn each_route_declares_the_kind_of_credential_its_rule_takes() {
        use crate::access::table::{rule_for, Verb};
        for r in every_route() {
            let rule = rule_for(Verb::parse(method_name(&r.method)).unwrap(), r.path).unwrap();
            assert!(
                r.access.agrees_with(&rule.access),
                "{} {}: declared {:?}, the table says {:?}",
                method_name(&r.method),
                r.path,
                r.access,
                rule.access
            );
        }
        assert!(!Access::ApiToken.agrees_with(&crate::access::rule::Access::Open));
    }

    #[test]
    fn the_served_rules_list_every_route_with_its_rule() {
        let rules = served_rules();
        let rows = rules.as_array().unwrap();
        assert_eq!(rows.len(), all_routes().len());
        assert!(rows.iter().all(|r| !r["rule"].is_null()));
        let logs = rows.iter().find(|r| r["template"] == "/api/omi/logs").unwrap();
        assert_eq!(logs["rule"]["access"]["capability"], "omi:read");
    }

    #[test]
    fn test_routes_exist_only_in_test_builds() {
        let has = all_routes().iter().any(|r| r.path == "/api/__test/release");
        assert_eq!(has, faults::ENABLED);
    }
}
