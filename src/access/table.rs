//! Who may call which route: one list, keyed by (method, path template), that drives the
//! router's access check, the generated access test (as JSON, [`table_json`]) and the README's
//! scope table ([`markdown`]). A route the router serves without an entry here fails
//! [`check_routes`], so a new route cannot ship without a rule.
//!
//! Templates are written as the router writes them: `{name}` is one percent-decoded segment,
//! a trailing `{name+}` takes the rest of the path. `HEAD` follows `GET`.

use serde::Serialize;

use super::rule::{Access, KeyRule, Rule, ScopedBy};
use super::scope::Capability::{self, *};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verb {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Head => "HEAD",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    /// From an HTTP method name (case-insensitive); `None` for methods no route serves.
    pub fn parse(method: &str) -> Option<Verb> {
        [Verb::Get, Verb::Head, Verb::Post, Verb::Put, Verb::Patch, Verb::Delete]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(method))
    }
}

/// Which change brought a route. Merge scaffolding: once issues 10, 11, 13, 14 and 15 have landed, every
/// entry is served and [`unrouted`] must come back empty; the field can then go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    Existing,
    Issue10,
    Issue11,
    Issue13,
    Issue12,
    Issue14,
    Issue15,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    pub method: Verb,
    pub template: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub origin: Origin,
}

use Origin::*;
use Verb::{Delete, Get, Patch, Post, Put};

const fn key(capability: Capability, scoped_by: ScopedBy) -> Access {
    Access::Key(KeyRule::Scope(Rule::new(capability, scoped_by)))
}

const NOTHING: ScopedBy = ScopedBy::Nothing;
const OWN: ScopedBy = ScopedBy::Own;
const UID: ScopedBy = ScopedBy::Path("uid");
const USER_ID: ScopedBy = ScopedBy::Query("userId");
const APP: ScopedBy = ScopedBy::Path("app");

const fn r(method: Verb, template: &'static str, access: Access, summary: &'static str, origin: Origin) -> RouteRule {
    RouteRule { method, template, access, summary, origin }
}

/// Every route, in the order the README lists them.
pub const ROUTES: &[RouteRule] = &[
    r(Get, "/api/health", Access::Open, "health of R2 and D1, schema version, warnings", Existing),
    r(Get, "/api/openapi.json", Access::Open, "the API contract", Issue15),
    r(
        Get,
        "/api/me",
        Access::Key(KeyRule::AnyKey),
        "the calling key: prefix, name, scopes (the dashboard hides what it cannot use)",
        Issue11,
    ),
    // Omi calls these.
    r(Post, "/api/omi/memory", Access::Webhook, "memory created", Existing),
    r(Post, "/api/omi/conversation", Access::Webhook, "memory created (alias)", Existing),
    r(Post, "/api/omi/transcript", Access::Webhook, "real-time transcript batch", Existing),
    r(Post, "/api/omi/webhook", Access::Webhook, "real-time transcript batch (alias)", Existing),
    r(Post, "/api/omi/day-summary", Access::Webhook, "day summary", Existing),
    r(Get, "/api/omi/setup", Access::Open, "Omi's setup check", Existing),
    // What a browser sees at a webhook URL (no data; the mentor's stats with the API token).
    r(Get, "/api/omi/memory", Access::Open, "what the memory webhook takes; ?uid= with the API token adds the mentor's stats", Issue12),
    r(Get, "/api/omi/conversation", Access::Open, "what the memory webhook takes (alias)", Issue12),
    r(Get, "/api/omi/transcript", Access::Open, "what the real-time transcript webhook takes", Issue12),
    r(Get, "/api/omi/webhook", Access::Open, "what the real-time transcript webhook takes (alias)", Issue12),
    r(Get, "/api/omi/day-summary", Access::Open, "what the day summary webhook takes", Issue12),
    r(Get, "/api/omi/enroll", Access::Open, "Omi app auth step: the invite-code page for ?uid=", Issue11),
    r(Post, "/api/omi/enroll", Access::Open, "Omi app auth step: redeem an invite code for a uid", Issue11),
    // Omi's assistant (chat tools, issue 14).
    r(Get, "/.well-known/omi-tools.json", Access::Open, "the chat tools manifest", Issue14),
    r(Post, "/api/omi/tools/search", Access::OmiTool, "chat tool: search my mentorship logs", Issue14),
    r(Get, "/api/omi/tools/action-items", Access::OmiTool, "chat tool: my open action items", Issue14),
    r(Post, "/api/omi/tools/sessions-with", Access::OmiTool, "chat tool: my sessions with a person or team", Issue14),
    r(Get, "/api/omi/tools/hours", Access::OmiTool, "chat tool: my mentoring hours", Issue14),
    // Omi data.
    r(Get, "/api/omi/logs", key(OmiRead, USER_ID), "memories, newest first; search and filters", Existing),
    r(Get, "/api/omi/logs/{uid}/{memoryId}", key(OmiRead, UID), "one stored memory (any version)", Existing),
    r(Get, "/api/omi/logs/{uid}/{memoryId}/versions", key(OmiRead, UID), "a memory's versions", Existing),
    r(Get, "/api/omi/users", key(OmiExport, OWN), "mentors with counts", Existing),
    r(Get, "/api/omi/users/{uid}/stats", key(OmiExport, UID), "one mentor's totals", Existing),
    r(Delete, "/api/omi/users/{uid}", key(OmiWrite, NOTHING), "erase a mentor: every object and row", Existing),
    r(Get, "/api/omi/analytics/daily", key(OmiExport, USER_ID), "memories and minutes per day", Existing),
    r(Get, "/api/omi/transcripts/{uid}", key(OmiRead, UID), "a mentor's real-time sessions", Existing),
    r(Get, "/api/omi/transcripts/{uid}/{sessionId}", key(OmiRead, UID), "one real-time session", Existing),
    r(Get, "/api/omi/day-summaries/{uid}/{date}", key(OmiRead, UID), "one day summary", Existing),
    r(Get, "/api/omi/export", key(OmiExport, USER_ID), "index entries as CSV, NDJSON or JSON", Existing),
    r(Post, "/api/omi/import", key(OmiWrite, NOTHING), "import legacy logs", Existing),
    r(Post, "/api/omi/reindex", key(StorageAdmin, NOTHING), "index memories found in R2", Existing),
    r(Post, "/api/omi/reconcile", key(StorageAdmin, NOTHING), "reconcile the index with R2", Existing),
    // The programme's view (issue 14).
    r(
        Get,
        "/api/omi/logs/{uid}/{memoryId}/analytics",
        key(OmiRead, UID),
        "a memory's analytics: words, unique words, top words, speakers' talk time, topics",
        Issue14,
    ),
    r(Get, "/api/omi/logs/{uid}/{memoryId}/transcript", key(OmiRead, UID), "the real-time transcript a memory came from, paged", Issue14),
    r(Get, "/api/omi/users/{uid}/analytics", key(OmiExport, UID), "a mentor's hours per week, talk share and top words", Issue14),
    r(Get, "/api/omi/users/{uid}/archive", key(OmiRead, UID), "a mentor's complete data as one archive (GDPR access)", Issue14),
    r(Get, "/api/omi/directory", key(OmiExport, OWN), "the mentor directory: names, cohorts, mentees, uids", Issue14),
    r(Put, "/api/omi/directory/{personId}", key(OmiWrite, NOTHING), "save a person of the mentor directory", Issue14),
    r(Delete, "/api/omi/directory/{personId}", key(OmiWrite, NOTHING), "remove a person from the mentor directory", Issue14),
    r(Get, "/api/omi/programme", key(OmiExport, OWN), "per mentor: sessions and hours per week, last session, who is quiet", Issue14),
    // The old app's data.
    r(Get, "/api/omi/legacy/mapping", key(StorageAdmin, NOTHING), "the old app's sanitised ids → real Omi uids", Issue12),
    r(Put, "/api/omi/legacy/mapping", key(StorageAdmin, NOTHING), "replace the uid mapping (JSON or CSV)", Issue12),
    r(
        Post,
        "/api/omi/legacy/migrate",
        key(StorageAdmin, NOTHING),
        "one step of migrating the old app's R2 objects (dry run first)",
        Issue12,
    ),
    // App files.
    r(Get, "/api/apps", key(AppsRead, OWN), "apps", Existing),
    r(Get, "/api/apps/{app}", key(AppsRead, APP), "an app's settings and policy", Existing),
    r(Put, "/api/apps/{app}", key(AppsWrite, APP), "set an app's storage mode", Existing),
    r(Patch, "/api/apps/{app}", key(AppsWrite, APP), "set an app's storage mode", Existing),
    r(Get, "/api/apps/{app}/files", key(AppsRead, APP), "an app's files", Existing),
    r(Post, "/api/apps/{app}/files:batch", key(AppsWrite, APP), "write and delete files in one step", Existing),
    r(Get, "/api/apps/{app}/files/{path+}", key(AppsRead, APP), "a file's bytes", Existing),
    r(Put, "/api/apps/{app}/files/{path+}", key(AppsWrite, APP), "write a file", Existing),
    r(Delete, "/api/apps/{app}/files/{path+}", key(AppsWrite, APP), "delete a file", Existing),
    r(Get, "/api/apps/{app}/versions", key(AppsRead, APP), "an app's versions", Existing),
    r(Post, "/api/apps/{app}/versions", key(AppsWrite, APP), "snapshot the files as a version", Existing),
    r(Get, "/api/apps/{app}/versions/{version}", key(AppsRead, APP), "a version's manifest", Existing),
    r(Get, "/api/apps/{app}/versions/{version}/files/{path+}", key(AppsRead, APP), "a file as it was in a version", Existing),
    r(Get, "/api/apps/{app}/versions/{version}/diff/{other}", key(AppsRead, APP), "what changed between two versions", Existing),
    r(Post, "/api/apps/{app}/versions/{version}/restore", key(AppsWrite, APP), "make the files a version's again", Existing),
    r(Get, "/api/apps/{app}/versions/{version}/archive", key(AppsRead, APP), "a version as .tar.gz or .tar, streamed", Existing),
    // App lifecycle and builds (issue 13).
    r(Delete, "/api/apps/{app}", key(AppsWrite, APP), "delete an app: every file, version and object it owns", Issue13),
    r(Delete, "/api/apps/{app}/versions/{version}", key(AppsWrite, APP), "delete a version no tag names", Issue13),
    r(Get, "/api/apps/{app}/tags", key(AppsRead, APP), "an app's version tags", Issue13),
    r(Put, "/api/apps/{app}/tags/{tag}", key(AppsWrite, APP), "point a tag at a version", Issue13),
    r(Delete, "/api/apps/{app}/tags/{tag}", key(AppsWrite, APP), "remove a tag", Issue13),
    r(Post, "/api/apps/{app}/retention/run", key(AppsWrite, APP), "apply the app's retention policy now", Issue13),
    r(Get, "/api/apps/{app}/export", key(AppsRead, APP), "every current file (or a version's) as NDJSON, tar or tar.gz, streamed", Issue13),
    r(Get, "/api/apps/{app}/changes", key(AppsRead, APP), "paths added, changed and deleted since a revision", Issue13),
    r(Post, "/api/apps/{app}/signed-urls", key(AppsRead, APP), "a signed, expiring URL for a file or an archive", Issue13),
    r(Get, "/api/signed/apps/{app}/files/{path+}", Access::Open, "a current file by signed URL (the HMAC is the credential)", Issue13),
    r(
        Get,
        "/api/signed/apps/{app}/versions/{version}/files/{path+}",
        Access::Open,
        "a version's file by signed URL (the HMAC is the credential)",
        Issue13,
    ),
    r(Get, "/api/signed/apps/{app}/versions/{version}/archive", Access::Open, "a version's archive by signed URL", Issue13),
    // Storage maintenance.
    r(Get, "/api/admin/consistency", key(StorageAdmin, NOTHING), "D1 against R2", Existing),
    r(Post, "/api/admin/storage/migrate", key(StorageAdmin, NOTHING), "move file content between tiers", Existing),
    r(Post, "/api/admin/storage/rollback", key(StorageAdmin, NOTHING), "move file content back into D1", Existing),
    r(Post, "/api/admin/storage/gc", key(StorageAdmin, NOTHING), "collect unreferenced blobs", Existing),
    r(Post, "/api/admin/storage/import", key(StorageAdmin, NOTHING), "import app snapshots", Existing),
    r(Get, "/api/admin/storage/report", key(StorageAdmin, NOTHING), "storage by tier", Existing),
    r(Get, "/api/admin/jobs", key(StorageAdmin, NOTHING), "state of every scheduled job", Issue10),
    r(Post, "/api/admin/jobs/{name}/run", key(StorageAdmin, NOTHING), "one bounded run of a job now", Issue10),
    r(Get, "/api/admin/storage/rollout", key(StorageAdmin, NOTHING), "the rollout percentage and rollback switch in force", Issue13),
    r(Put, "/api/admin/storage/rollout", key(StorageAdmin, NOTHING), "set the rollout percentage or the rollback switch", Issue13),
    // Access management.
    r(Get, "/api/admin/keys", key(Admin, NOTHING), "API keys (prefixes, never secrets)", Issue11),
    r(Post, "/api/admin/keys", key(Admin, NOTHING), "create a key; its secret is shown once", Issue11),
    r(Delete, "/api/admin/keys/{prefix}", key(Admin, NOTHING), "revoke a key", Issue11),
    r(Get, "/api/admin/mentors/{uid}/credentials", key(Admin, NOTHING), "a mentor's webhook credentials (no secrets)", Issue11),
    r(
        Post,
        "/api/admin/mentors/{uid}/credentials",
        key(Admin, NOTHING),
        "create or rotate a mentor's webhook credential; prints the Omi URLs",
        Issue11,
    ),
    r(Delete, "/api/admin/mentors/{uid}/credentials/{id}", key(Admin, NOTHING), "revoke a mentor's webhook credential", Issue11),
    r(Get, "/api/admin/invites", key(Admin, NOTHING), "invite codes (no codes, only their use)", Issue11),
    r(Post, "/api/admin/invites", key(Admin, NOTHING), "create an invite code; shown once", Issue11),
    r(Delete, "/api/admin/invites/{id}", key(Admin, NOTHING), "revoke an invite code", Issue11),
    r(Get, "/api/admin/enrollment", key(Admin, NOTHING), "enrolled uids, and unenrolled uids whose deliveries were dropped", Issue11),
    r(Post, "/api/admin/enrollment/{uid}", key(Admin, NOTHING), "enroll a uid", Issue11),
    r(Get, "/api/admin/audit", key(Admin, NOTHING), "the audit log, filtered and paged", Issue11),
    // Live feed.
    r(Post, "/api/live/ticket", key(OmiRead, OWN), "a one-minute ticket for the live socket", Existing),
    r(Get, "/api/live", Access::LiveSocket(Rule::new(OmiRead, OWN)), "the live WebSocket; events filtered by the key's mentors", Existing),
    // Test builds only.
    r(Get, "/api/__test/panic", Access::TestOnly, "a deliberate panic", Existing),
    r(Post, "/api/__test/release", Access::TestOnly, "release a pause point", Issue10),
    r(Get, "/api/__test/paused", Access::TestOnly, "parked pause points", Issue10),
    r(Get, "/api/__test/access-table", Access::TestOnly, "the served routes with their rules (the generated access test)", Issue11),
];

/// The access rule of a route. `HEAD` uses the `GET` route's rule.
pub fn rule_for(method: Verb, template: &str) -> Option<&'static RouteRule> {
    let method = if method == Verb::Head { Verb::Get } else { method };
    ROUTES.iter().find(|r| r.method == method && r.template == template)
}

/// The `{name}` and `{name+}` parameters of a template, names only.
pub fn template_params(template: &str) -> impl Iterator<Item = &str> {
    template.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).map(|p| p.trim_end_matches('+'))
}

/// Problems between the router's routes and this table: a route without a rule, or a rule
/// scoped by a path parameter the route's template does not have. The router's test asserts
/// this is empty.
pub fn check_routes<'a>(routes: impl IntoIterator<Item = (Verb, &'a str)>) -> Vec<String> {
    let mut problems = Vec::new();
    for (method, template) in routes {
        let Some(rule) = rule_for(method, template) else {
            problems.push(format!("{} {template} has no access rule in access::table::ROUTES", method.as_str()));
            continue;
        };
        if let Some(param) = scoping_path_param(&rule.access) {
            if !template_params(template).any(|p| p == param) {
                problems.push(format!("{} {template}: its rule is scoped by {{{param}}}, which the template lacks", method.as_str()));
            }
        }
    }
    problems
}

/// Rules the router does not serve (yet). Empty once every origin has merged.
pub fn unrouted<'a>(routes: impl IntoIterator<Item = (Verb, &'a str)> + Clone) -> Vec<&'static RouteRule> {
    ROUTES.iter().filter(|rule| !routes.clone().into_iter().any(|(m, t)| m == rule.method && t == rule.template)).collect()
}

fn scoping_path_param(access: &Access) -> Option<&'static str> {
    let rule = match access {
        Access::Key(KeyRule::Scope(rule)) | Access::LiveSocket(rule) => rule,
        _ => return None,
    };
    match rule.scoped_by {
        ScopedBy::Path(p) => Some(p),
        _ => None,
    }
}

/// The table as JSON, for the generated integration test (served by a test-only route) and
/// for tools.
pub fn table_json() -> serde_json::Value {
    serde_json::to_value(ROUTES).expect("the table serializes")
}

/// Where the README's copy of [`markdown`] starts and ends.
pub const README_START: &str = "<!-- access-table: generated from src/access/table.rs -->";
pub const README_END: &str = "<!-- /access-table -->";

/// The README's scope table. `admin` (and `API_TOKEN`) passes every `key` row.
pub fn markdown() -> String {
    let mut out = String::from("| route | access | scope | a narrow key (`…:{uid}`, `…:{app}`) |\n|---|---|---|---|\n");
    for rule in ROUTES {
        let route = format!("`{} {}`", rule.method.as_str(), rule.template);
        let (access, scope, narrow) = match &rule.access {
            Access::Open => ("open".to_string(), "—".to_string(), "—".to_string()),
            Access::TestOnly => ("test builds only".into(), "—".into(), "—".into()),
            Access::OmiTool => {
                ("Omi chat tool".into(), "—".into(), "`v2` signature by the app's secret; only the signed uid's data".into())
            }
            Access::Webhook => (
                "webhook".into(),
                "—".into(),
                "per-mentor token or signing secret for `?uid=`; the app's signing secret; `OMI_WEBHOOK_TOKEN` while set".into(),
            ),
            Access::Key(KeyRule::AnyKey) => ("key".into(), "any".into(), "yes".into()),
            Access::Key(KeyRule::Scope(rule)) => ("key".into(), format!("`{}`", rule.capability), narrow_text(rule)),
            Access::LiveSocket(rule) => ("ticket or key".into(), format!("`{}`", rule.capability), narrow_text(rule)),
        };
        out.push_str(&format!("| {route} | {access} | {scope} | {narrow} |\n"));
    }
    out
}

fn narrow_text(rule: &Rule) -> String {
    let Some(kind) = rule.capability.target_kind() else { return "—".into() };
    let target = match kind {
        super::scope::TargetKind::Mentor => "uid",
        super::scope::TargetKind::App => "app",
    };
    let narrow = format!("`{}:{{{target}}}`", rule.capability);
    match rule.scoped_by {
        ScopedBy::Nothing => "—".into(),
        ScopedBy::Path(p) => format!("{narrow} for that `{{{p}}}`"),
        ScopedBy::Query(q) => format!("{narrow} with `{q}={{{target}}}`; without `{q}`, only its own {target}s"),
        ScopedBy::Own => format!("{narrow}: only its own {target}s"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn routes_are_unique_and_well_formed() {
        let mut seen = HashSet::new();
        for rule in ROUTES {
            assert!(seen.insert((rule.method, rule.template)), "duplicate {} {}", rule.method.as_str(), rule.template);
            assert!(rule.template.starts_with("/api/") || rule.template.starts_with("/.well-known/"), "{}", rule.template);
            assert_ne!(rule.method, Verb::Head, "HEAD follows GET: {}", rule.template);
            let segments: Vec<&str> = rule.template.split('/').skip(1).collect();
            for (i, seg) in segments.iter().enumerate() {
                assert!(!seg.is_empty(), "{}", rule.template);
                if seg.contains('{') || seg.contains('}') {
                    assert!(seg.starts_with('{') && seg.ends_with('}'), "a parameter is a whole segment: {}", rule.template);
                    if seg.ends_with("+}") {
                        assert_eq!(i, segments.len() - 1, "{{name+}} comes last: {}", rule.template);
                    }
                }
            }
        }
    }

    #[test]
    fn every_path_scoped_rule_names_a_parameter_of_its_template() {
        let all: Vec<(Verb, &str)> = ROUTES.iter().map(|r| (r.method, r.template)).collect();
        assert_eq!(check_routes(all.clone()), Vec::<String>::new());
        assert!(unrouted(all).is_empty());
    }

    #[test]
    fn a_route_without_a_rule_is_reported() {
        let problems = check_routes([(Verb::Get, "/api/omi/logs"), (Verb::Post, "/api/omi/new-thing")]);
        assert_eq!(problems, vec!["POST /api/omi/new-thing has no access rule in access::table::ROUTES".to_string()]);
        // A router that spells a parameter differently is caught, not silently opened.
        let problems = check_routes([(Verb::Get, "/api/omi/transcripts/{userId}")]);
        assert!(problems[0].contains("no access rule"));
    }

    #[test]
    fn head_follows_get_and_methods_parse() {
        assert_eq!(rule_for(Verb::Head, "/api/apps/{app}/files/{path+}"), rule_for(Verb::Get, "/api/apps/{app}/files/{path+}"));
        assert!(rule_for(Verb::Post, "/api/health").is_none());
        assert_eq!(Verb::parse("delete"), Some(Verb::Delete));
        assert_eq!(Verb::parse("OPTIONS"), None);
    }

    #[test]
    fn every_data_route_needs_a_key_and_no_write_is_open() {
        for rule in ROUTES {
            let data = rule.template.starts_with("/api/apps") || rule.template.starts_with("/api/admin");
            if data {
                assert!(matches!(rule.access, Access::Key(_)), "{} {}", rule.method.as_str(), rule.template);
            }
            if rule.method != Verb::Get {
                let open_by_design = rule.template == "/api/omi/enroll";
                assert!(rule.access != Access::Open || open_by_design, "{} {} is an open write", rule.method.as_str(), rule.template);
            }
        }
    }

    #[test]
    fn mentor_data_routes_are_scoped_by_the_mentor() {
        // The routes a mentor key must not cross: each names the uid it serves, or forces a filter.
        // The old app's migration is storage administration over every mentor, not a mentor's data.
        for rule in ROUTES.iter().filter(|r| r.template.starts_with("/api/omi/legacy/")) {
            assert_eq!(rule.access, key(StorageAdmin, NOTHING), "{}", rule.template);
        }
        let webhook_descriptions =
            ["/api/omi/memory", "/api/omi/conversation", "/api/omi/transcript", "/api/omi/webhook", "/api/omi/day-summary"];
        for rule in ROUTES
            .iter()
            .filter(|r| r.template.starts_with("/api/omi/") && !r.template.starts_with("/api/omi/legacy/") && r.method == Verb::Get)
        {
            match rule.access {
                Access::Key(KeyRule::Scope(Rule { capability, scoped_by })) => {
                    assert!(matches!(capability, OmiRead | OmiExport), "{}", rule.template);
                    let scoped = match scoped_by {
                        ScopedBy::Path(p) => p == "uid",
                        ScopedBy::Query(q) => q == "userId",
                        ScopedBy::Own => true,
                        ScopedBy::Nothing => false,
                    };
                    assert!(scoped, "{} is not scoped by its mentor", rule.template);
                }
                // The setup check and enrollment, and what a webhook URL says in a browser (no
                // data: the memory route adds a mentor's stats only for the API token).
                Access::Open => {
                    assert!(["/api/omi/setup", "/api/omi/enroll"].contains(&rule.template) || webhook_descriptions.contains(&rule.template))
                }
                Access::OmiTool => assert!(rule.template.starts_with("/api/omi/tools/")),
                other => panic!("{}: unexpected {other:?}", rule.template),
            }
        }
    }

    #[test]
    fn every_chat_tool_has_its_route() {
        use crate::omi::tools::call::Tool;
        for tool in Tool::ALL {
            let method = Verb::parse(tool.method()).unwrap();
            let rule = rule_for(method, &tool.path()).unwrap_or_else(|| panic!("no rule for {} {}", tool.method(), tool.path()));
            assert_eq!(rule.access, Access::OmiTool);
        }
        assert_eq!(ROUTES.iter().filter(|r| r.access == Access::OmiTool).count(), Tool::ALL.len());
    }

    #[test]
    fn the_markdown_table_has_a_row_per_route() {
        let md = markdown();
        assert_eq!(md.lines().count(), ROUTES.len() + 2);
        assert!(md.contains(
            "| `GET /api/omi/logs` | key | `omi:read` | `omi:read:{uid}` with `userId={uid}`; without `userId`, only its own uids |"
        ));
        assert!(md.contains("| `DELETE /api/omi/users/{uid}` | key | `omi:write` | — |"));
        assert!(md.contains("| `PUT /api/apps/{app}/files/{path+}` | key | `apps:write` | `apps:write:{app}` for that `{app}` |"));
    }

    /// The README's scope table is this list rendered: a route added here without the README
    /// updated fails (`cargo test print_the_readme_scope_table -- --ignored --nocapture`
    /// prints the table to paste).
    #[test]
    fn the_readme_shows_this_table() {
        let readme = include_str!("../../README.md");
        let start = readme.find(README_START).expect("README has the scope table's start marker");
        let end = readme.find(README_END).expect("README has the scope table's end marker");
        let shown = readme[start + README_START.len()..end].trim();
        assert!(shown == markdown().trim(), "README's scope table is out of date; replace it with:\n{}", markdown());
    }

    #[test]
    #[ignore]
    fn print_the_readme_scope_table() {
        println!("{README_START}\n{}{README_END}", markdown());
    }

    #[test]
    fn the_json_table_carries_the_rules() {
        let json = table_json();
        let logs = json.as_array().unwrap().iter().find(|r| r["template"] == "/api/omi/logs").unwrap();
        assert_eq!(logs["method"], "GET");
        assert_eq!(logs["access"]["kind"], "key");
        assert_eq!(logs["access"]["needs"], "scope");
        assert_eq!(logs["access"]["capability"], "omi:read");
        assert_eq!(logs["access"]["scopedBy"], serde_json::json!({ "by": "query", "param": "userId" }));
    }
}
