//! Access rules as data, and the one decision the router makes with them before any handler
//! runs.
//!
//! A route carries an [`Access`]. For [`Access::Key`] the router authenticates the caller into a
//! [`Principal`] (or none), then asks [`KeyRule::authorize`]; the answer is
//! - [`Decision::Allow`] with a [`Grant`] that may force a filter on a list route (a mentor's key
//!   asking `GET /api/omi/logs` without `userId` gets only its own mentor's logs: the handler
//!   reads [`Grant::only`] and filters by it);
//! - [`Decision::Unauthenticated`] (401): no credential, or an unknown, revoked or expired one;
//! - [`Decision::Forbidden`] (403): a valid key without the scope; the message names the
//!   narrowest scope that would have been enough.
//!
//! Parameters are looked up exactly as the handlers read them — path parameters percent-decoded,
//! query parameters percent-decoded with the first occurrence winning and an empty value
//! counting as absent (`omi::query::Params::get`) — so the value that was authorized is the
//! value the handler uses. `?userId=alice&userId=bob` is checked, and served, as `alice`.

use std::collections::BTreeSet;

use serde::Serialize;

use super::scope::{Capability, Reach, Scope, ScopeSet, TargetKind};

/// How a route is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Access {
    /// Anyone: health, Omi's setup check, the enrollment page.
    Open,
    /// Omi's deliveries: a webhook credential (see `access::webhook`), verified after a bounded
    /// read of the body because a signature covers it.
    Webhook,
    /// Omi's assistant calling a chat tool (`omi::tools`): a `v2` `X-Omi-Signature` by the
    /// app's secret over the whole request, verified after a bounded read; the handler serves
    /// only the uid the signed request names (and, under `OMI_ENROLLMENT=required`, only an
    /// enrolled one).
    OmiTool,
    /// An API key or `API_TOKEN`, checked centrally.
    Key(KeyRule),
    /// The live WebSocket: a ticket (see `access::ticket`) offered as a subprotocol, or else a
    /// Bearer credential checked against the rule.
    LiveSocket(Rule),
    /// Exists only in `fault-injection` builds; production answers 404.
    TestOnly,
}

/// What a key must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "needs", rename_all = "camelCase")]
pub enum KeyRule {
    /// Any valid key, whatever its scopes (who-am-I for the dashboard).
    AnyKey,
    Scope(Rule),
}

/// A capability, and which request parameter names its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub capability: Capability,
    pub scoped_by: ScopedBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "param", rename_all = "camelCase")]
pub enum ScopedBy {
    /// The route acts on everything: only the unnarrowed capability will do.
    Nothing,
    /// A path parameter names the mentor or app (`{uid}`, `{app}`).
    Path(&'static str),
    /// A list route's query parameter filters by mentor or app; without it a narrow key is
    /// answered with its own targets only (a forced filter).
    Query(&'static str),
    /// A list route with no filter parameter: a narrow key gets a forced filter.
    Own,
}

impl Rule {
    pub const fn new(capability: Capability, scoped_by: ScopedBy) -> Rule {
        Rule { capability, scoped_by }
    }

    /// The parameter this rule reads, if any (for checking it against a route template).
    pub fn param(&self) -> Option<(&'static str, bool)> {
        match self.scoped_by {
            ScopedBy::Path(p) => Some((p, true)),
            ScopedBy::Query(q) => Some((q, false)),
            ScopedBy::Nothing | ScopedBy::Own => None,
        }
    }
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub credential: Credential,
    pub scopes: ScopeSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `API_TOKEN`: the bootstrap admin.
    BootstrapToken,
    /// A key from `api_keys`.
    ApiKey { id: i64, prefix: String },
}

impl Principal {
    pub fn bootstrap() -> Principal {
        Principal { credential: Credential::BootstrapToken, scopes: ScopeSet::admin() }
    }

    /// How the caller appears in the audit log and in logs: a key's public prefix, never a secret.
    pub fn label(&self) -> &str {
        match &self.credential {
            Credential::BootstrapToken => "API_TOKEN",
            Credential::ApiKey { prefix, .. } => prefix,
        }
    }
}

/// The request's parameters as the handler will read them.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestParams<'a> {
    /// Path parameters by template name, percent-decoded.
    pub path: &'a [(&'a str, &'a str)],
    /// Query pairs in order, percent-decoded.
    pub query: &'a [(&'a str, &'a str)],
}

impl<'a> RequestParams<'a> {
    pub fn path(&self, name: &str) -> Option<&'a str> {
        self.path.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    /// First occurrence wins and empty means absent, as in `omi::query::Params::get`.
    pub fn query(&self, name: &str) -> Option<&'a str> {
        self.query.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).filter(|v| !v.is_empty())
    }
}

/// What the handler may serve.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// `Some`: serve only these mentors or apps (a narrow key on a list route without a filter).
    pub only: Option<Only>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Only {
    pub kind: TargetKind,
    /// Never empty.
    pub values: BTreeSet<String>,
}

impl Grant {
    pub fn unrestricted() -> Grant {
        Grant { only: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Grant),
    /// 401: no credential, or one that is unknown, revoked or expired.
    Unauthenticated,
    /// 403: the key is valid but lacks `missing`.
    Forbidden {
        missing: Scope,
    },
}

impl Decision {
    pub fn status(&self) -> u16 {
        match self {
            Decision::Allow(_) => 200,
            Decision::Unauthenticated => 401,
            Decision::Forbidden { .. } => 403,
        }
    }

    /// The client-facing message of a refusal.
    pub fn message(&self) -> Option<String> {
        match self {
            Decision::Allow(_) => None,
            Decision::Unauthenticated => {
                Some("missing, unknown, revoked or expired credential; send Authorization: Bearer <API key or API_TOKEN>".into())
            }
            Decision::Forbidden { missing } => Some(format!("this key lacks the scope {missing}")),
        }
    }
}

impl KeyRule {
    pub fn authorize(&self, principal: Option<&Principal>, params: &RequestParams) -> Decision {
        let Some(principal) = principal else { return Decision::Unauthenticated };
        match self {
            KeyRule::AnyKey => Decision::Allow(Grant::unrestricted()),
            KeyRule::Scope(rule) => rule.authorize(&principal.scopes, params),
        }
    }
}

impl Rule {
    /// The decision for an authenticated caller holding `scopes`.
    pub fn authorize(&self, scopes: &ScopeSet, params: &RequestParams) -> Decision {
        let capability = self.capability;
        let target = match self.scoped_by {
            ScopedBy::Nothing => return allow_if(scopes.grants(capability, None), Scope::all(capability)),
            // A template without the parameter is a table mistake (`table::check_routes`
            // catches it in a test); until then only the unnarrowed capability passes.
            ScopedBy::Path(name) => params.path(name),
            ScopedBy::Query(name) => params.query(name),
            ScopedBy::Own => None,
        };
        match (target, self.scoped_by) {
            (Some(t), _) => {
                let narrowest = match capability.target_kind() {
                    Some(_) => Scope::one(capability, t),
                    None => Scope::all(capability),
                };
                allow_if(scopes.grants(capability, Some(t)), narrowest)
            }
            (None, ScopedBy::Query(_) | ScopedBy::Own) => match (scopes.reach(capability), capability.target_kind()) {
                (Reach::All, _) => Decision::Allow(Grant::unrestricted()),
                (Reach::Only(values), Some(kind)) => Decision::Allow(Grant { only: Some(Only { kind, values }) }),
                _ => Decision::Forbidden { missing: Scope::all(capability) },
            },
            (None, _) => allow_if(scopes.grants(capability, None), Scope::all(capability)),
        }
    }
}

fn allow_if(granted: bool, missing: Scope) -> Decision {
    if granted {
        Decision::Allow(Grant::unrestricted())
    } else {
        Decision::Forbidden { missing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Capability::*;

    fn key(scopes: &str) -> Principal {
        Principal { credential: Credential::ApiKey { id: 1, prefix: "abcdefgh".into() }, scopes: ScopeSet::parse(scopes).unwrap() }
    }

    fn decide(rule: Rule, who: &Principal, path: &[(&str, &str)], query: &[(&str, &str)]) -> Decision {
        KeyRule::Scope(rule).authorize(Some(who), &RequestParams { path, query })
    }

    fn forbidden(scope: &str) -> Decision {
        Decision::Forbidden { missing: Scope::parse(scope).unwrap() }
    }

    fn only(kind: TargetKind, values: &[&str]) -> Decision {
        Decision::Allow(Grant { only: Some(Only { kind, values: values.iter().map(|v| v.to_string()).collect() }) })
    }

    const OPEN: Decision = Decision::Allow(Grant { only: None });

    #[test]
    fn no_principal_is_unauthenticated_whatever_the_rule() {
        let none = RequestParams::default();
        assert_eq!(KeyRule::AnyKey.authorize(None, &none), Decision::Unauthenticated);
        assert_eq!(KeyRule::Scope(Rule::new(OmiRead, ScopedBy::Own)).authorize(None, &none), Decision::Unauthenticated);
        assert_eq!(KeyRule::AnyKey.authorize(Some(&key("apps:read:x")), &none), OPEN);
    }

    #[test]
    fn path_scoped_routes_need_that_target() {
        let rule = Rule::new(OmiRead, ScopedBy::Path("uid"));
        let alice = key("omi:read:alice");
        assert_eq!(decide(rule, &alice, &[("uid", "alice"), ("memoryId", "m1")], &[]), OPEN);
        assert_eq!(decide(rule, &alice, &[("uid", "bob")], &[]), forbidden("omi:read:bob"));
        assert_eq!(decide(rule, &key("omi:read"), &[("uid", "bob")], &[]), OPEN);
        assert_eq!(decide(rule, &key("omi:export"), &[("uid", "bob")], &[]), forbidden("omi:read:bob"));
        // A route whose template lacks the parameter fails closed for narrow keys.
        assert_eq!(decide(rule, &alice, &[("user", "alice")], &[]), forbidden("omi:read"));
        assert_eq!(decide(rule, &key("omi:read"), &[], &[]), OPEN);
    }

    #[test]
    fn list_routes_filter_or_force_a_filter() {
        let rule = Rule::new(OmiRead, ScopedBy::Query("userId"));
        let alice = key("omi:read:alice");
        assert_eq!(decide(rule, &alice, &[], &[("userId", "alice")]), OPEN);
        assert_eq!(decide(rule, &alice, &[], &[("userId", "bob")]), forbidden("omi:read:bob"));
        assert_eq!(decide(rule, &alice, &[], &[]), only(TargetKind::Mentor, &["alice"]));
        assert_eq!(decide(rule, &alice, &[], &[("userId", "")]), only(TargetKind::Mentor, &["alice"]));
        assert_eq!(decide(rule, &key("omi:read:a omi:read:b"), &[], &[]), only(TargetKind::Mentor, &["a", "b"]));
        assert_eq!(decide(rule, &key("omi:read"), &[], &[]), OPEN);
        assert_eq!(decide(rule, &key("apps:read"), &[], &[]), forbidden("omi:read"));
    }

    #[test]
    fn the_first_query_value_is_the_one_checked() {
        let rule = Rule::new(OmiRead, ScopedBy::Query("userId"));
        let alice = key("omi:read:alice");
        assert_eq!(decide(rule, &alice, &[], &[("userId", "alice"), ("userId", "bob")]), OPEN);
        assert_eq!(decide(rule, &alice, &[], &[("userId", "bob"), ("userId", "alice")]), forbidden("omi:read:bob"));
    }

    #[test]
    fn implied_capabilities_count() {
        let export = Rule::new(OmiExport, ScopedBy::Query("userId"));
        assert_eq!(decide(export, &key("omi:read:alice"), &[], &[("userId", "alice")]), OPEN);
        assert_eq!(decide(export, &key("omi:read:alice"), &[], &[("userId", "bob")]), forbidden("omi:export:bob"));
        assert_eq!(decide(export, &key("omi:read:alice"), &[], &[]), only(TargetKind::Mentor, &["alice"]));
        assert_eq!(decide(export, &key("omi:export"), &[], &[]), OPEN);
        let read_app = Rule::new(AppsRead, ScopedBy::Path("app"));
        assert_eq!(decide(read_app, &key("apps:write:demo"), &[("app", "demo")], &[]), OPEN);
        let write_app = Rule::new(AppsWrite, ScopedBy::Path("app"));
        assert_eq!(decide(write_app, &key("apps:read:demo"), &[("app", "demo")], &[]), forbidden("apps:write:demo"));
        let apps = Rule::new(AppsRead, ScopedBy::Own);
        assert_eq!(decide(apps, &key("apps:write:b apps:read:a"), &[], &[]), only(TargetKind::App, &["a", "b"]));
    }

    #[test]
    fn unnarrowed_routes_need_the_whole_capability() {
        let rule = Rule::new(StorageAdmin, ScopedBy::Nothing);
        assert_eq!(decide(rule, &key("storage:admin"), &[], &[]), OPEN);
        assert_eq!(decide(rule, &key("apps:write omi:read"), &[], &[]), forbidden("storage:admin"));
        assert_eq!(decide(rule, &Principal::bootstrap(), &[], &[]), OPEN);
        // An unnarrowable capability scoped by a path parameter still names the plain scope.
        let delete = Rule::new(OmiWrite, ScopedBy::Path("uid"));
        assert_eq!(decide(delete, &key("omi:read:alice"), &[("uid", "alice")], &[]), forbidden("omi:write"));
        assert_eq!(decide(delete, &key("omi:write"), &[("uid", "alice")], &[]), OPEN);
        let admin_only = Rule::new(Admin, ScopedBy::Nothing);
        assert_eq!(decide(admin_only, &key("storage:admin omi:write omi:read apps:write"), &[], &[]), forbidden("admin"));
    }

    #[test]
    fn refusals_carry_status_and_a_message_naming_the_scope() {
        assert_eq!(Decision::Unauthenticated.status(), 401);
        let f = forbidden("omi:read:bob");
        assert_eq!(f.status(), 403);
        assert!(f.message().unwrap().contains("omi:read:bob"));
        assert_eq!(OPEN.status(), 200);
        assert_eq!(Principal::bootstrap().label(), "API_TOKEN");
        assert_eq!(key("admin").label(), "abcdefgh");
    }
}
