//! openapi.json (the API contract, at the repository root) against the router's table
//! (`routes::all_routes`): one source of truth for which routes exist. Host tests only.
//!
//! Every operation of the document must be a route with the same kind of access, and every
//! route (test-only ones aside) must be in the document. The access table
//! (`access::table::ROUTES`) also lists routes of issues not merged yet; `pending` prints those
//! the document lacks. `{path+}` in the router is `{path}` in the document (OpenAPI names no
//! multi-segment parameter; the document marks it `x-r2d1-multi-segment`), and `HEAD` follows
//! `GET` as in the router.

use serde_json::Value;

use crate::access::table::{Origin, Verb, ROUTES};
use crate::routes::{all_routes, Access};

use crate::openapi::DOCUMENT;
const METHODS: [(&str, Verb); 6] =
    [("get", Verb::Get), ("head", Verb::Head), ("post", Verb::Post), ("put", Verb::Put), ("patch", Verb::Patch), ("delete", Verb::Delete)];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

/// (method, template as the table writes it, x-r2d1-access) of every documented operation.
fn operations(doc: &Value) -> Vec<(Verb, String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let template = path.replace("{path}", "{path+}");
        for (name, verb) in METHODS {
            if let Some(op) = item.get(name) {
                out.push((verb, template.clone(), op["x-r2d1-access"].as_str().unwrap_or("").to_string()));
            }
        }
    }
    out
}

/// The document's name for a kind of access.
fn access_name(access: Access) -> &'static str {
    match access {
        Access::Open => "open",
        Access::Webhook => "webhook",
        Access::OmiTool => "omi-tool",
        Access::ApiToken | Access::ApiTokenOrTicket => "api",
        Access::TestOnly => "test-only",
    }
}

/// (method, template, access) of every route the router serves, test-only ones aside.
fn served() -> Vec<(Verb, &'static str, &'static str)> {
    all_routes()
        .into_iter()
        .filter(|r| r.access != Access::TestOnly)
        .map(|r| {
            let verb = Verb::parse(r.method.as_ref()).expect("a verb the table knows");
            (verb, r.path, access_name(r.access))
        })
        .collect()
}

#[test]
fn every_documented_operation_is_a_route_with_the_same_access() {
    let routes = served();
    let mut problems = Vec::new();
    for (verb, template, access) in operations(&document()) {
        // HEAD is served wherever GET is.
        let lookup = if verb == Verb::Head { Verb::Get } else { verb };
        match routes.iter().find(|(v, t, _)| *v == lookup && *t == template) {
            None => problems.push(format!("{} {template} is documented but not routed", verb.as_str())),
            Some((_, _, routed)) if *routed != access => {
                problems.push(format!("{} {template}: x-r2d1-access is {access:?}, the router says {routed:?}", verb.as_str()))
            }
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_route_is_documented() {
    let documented = operations(&document());
    let missing: Vec<String> = served()
        .into_iter()
        .filter(|(v, t, _)| !documented.iter().any(|(dv, dt, _)| dv == v && dt == t))
        .map(|(v, t, _)| format!("{} {t}", v.as_str()))
        .collect();
    assert!(missing.is_empty(), "routed but not in openapi.json: {missing:#?}");
}

/// Routes the table has for issues not merged yet, and whether the document has them: a
/// reminder, not a failure (see the module comment).
#[test]
fn pending_routes_are_listed() {
    let doc = document();
    let documented = operations(&doc);
    let pending: Vec<String> = ROUTES
        .iter()
        .filter(|r| r.origin != Origin::Existing)
        .filter(|r| !documented.iter().any(|(v, t, _)| *v == r.method && *t == r.template))
        .map(|r| format!("{:?}: {} {}", r.origin, r.method.as_str(), r.template))
        .collect();
    eprintln!("routes of unmerged issues not in openapi.json yet: {pending:#?}");
}

/// Each `api` operation's `x-r2d1-scope` is its rule in `access::table` (what the router
/// enforces), so the document cannot promise a scope the worker does not check.
#[test]
fn every_api_operation_documents_its_rule_from_the_access_table() {
    use crate::access::rule::Access as Rule;
    use crate::access::table::rule_for;
    let doc = document();
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let template = path.replace("{path}", "{path+}");
        for (name, verb) in METHODS {
            let Some(op) = item.get(name) else { continue };
            let Some(rule) = rule_for(verb, &template) else { continue };
            let expected = match &rule.access {
                Rule::Key(_) | Rule::LiveSocket(_) => {
                    let mut v = serde_json::to_value(rule.access).expect("a rule serializes");
                    v.as_object_mut().expect("an object").remove("kind");
                    Some(v)
                }
                _ => None,
            };
            let documented = op.get("x-r2d1-scope").cloned();
            if documented != expected {
                problems.push(format!("{} {path}: x-r2d1-scope is {documented:?}, access::table says {expected:?}", verb.as_str()));
            }
            let statuses = op["responses"].as_object().expect("responses");
            if expected.is_some() && template != "/api/me" && !statuses.contains_key("403") {
                problems.push(format!("{} {path}: a key route must document 403 (a key without the scope)", verb.as_str()));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
