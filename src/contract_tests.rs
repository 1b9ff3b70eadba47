//! openapi.json (the API contract, at the repository root) against the route table
//! (`access::table::ROUTES`): one source of truth for which routes exist. Host tests only.
//!
//! Every operation of the document must have a rule in the table, with the same kind of
//! access, and every route the router serves today (origin `Existing`) must be in the
//! document. Routes of issues not merged yet are listed by `pending` and become required as
//! their origin turns `Existing`. `{path+}` in the table is `{path}` in the document (OpenAPI
//! names no multi-segment parameter; the document marks it `x-r2d1-multi-segment`), and `HEAD`
//! follows `GET` as in the table.

use serde_json::Value;

use crate::access::rule::Access;
use crate::access::table::{rule_for, Origin, Verb, ROUTES};

const DOCUMENT: &str = include_str!("../openapi.json");
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
fn access_name(access: &Access) -> &'static str {
    match access {
        Access::Open => "open",
        Access::Webhook => "webhook",
        Access::OmiTool => "omi-tool",
        Access::Key(_) | Access::LiveSocket(_) => "api",
        Access::TestOnly => "test-only",
    }
}

#[test]
fn every_documented_operation_has_a_rule_with_the_same_access() {
    let doc = document();
    let mut problems = Vec::new();
    for (verb, template, access) in operations(&doc) {
        match rule_for(verb, &template) {
            None => problems.push(format!("{} {template} is documented but has no route rule", verb.as_str())),
            Some(rule) if access_name(&rule.access) != access => problems.push(format!(
                "{} {template}: x-r2d1-access is {access:?}, the table says {:?}",
                verb.as_str(),
                access_name(&rule.access)
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_served_route_is_documented() {
    let doc = document();
    let documented = operations(&doc);
    let missing: Vec<String> = ROUTES
        .iter()
        .filter(|r| r.origin == Origin::Existing && !matches!(r.access, Access::TestOnly))
        .filter(|r| !documented.iter().any(|(v, t, _)| *v == r.method && *t == r.template))
        .map(|r| format!("{} {}", r.method.as_str(), r.template))
        .collect();
    assert!(missing.is_empty(), "served but not in openapi.json: {missing:#?}");
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
