//! The audit log: one row per change made through the API (writes, deletes, restores,
//! migrations, GC runs, imports, key, invite and credential changes) and per refusal of a valid
//! key (403), with who (the key's public prefix), what (method, route template, target) and how
//! it ended. Which requests are recorded is decided here ([`should_record`]), the filters of
//! `GET /api/admin/audit` are parsed here ([`AuditFilter::parse`]); writing and paging are the
//! repository's.

use serde::Serialize;

use super::rule::{Access, RequestParams};
use crate::error::Error;
use crate::omi::cursor::Cursor;
use crate::omi::query::Params;

/// How a recorded request ended, from its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// 1xx-3xx.
    Ok,
    /// 401 or 403.
    Denied,
    /// Any other 4xx: the request was wrong (validation, conflict, precondition).
    Rejected,
    /// 5xx.
    Failed,
}

impl Outcome {
    pub fn from_status(status: u16) -> Outcome {
        match status {
            401 | 403 => Outcome::Denied,
            400..=499 => Outcome::Rejected,
            500.. => Outcome::Failed,
            _ => Outcome::Ok,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Ok, Outcome::Denied, Outcome::Rejected, Outcome::Failed].into_iter().find(|o| o.as_str() == s)
    }
}

/// A row of `audit_log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub at_ms: i64,
    /// The key's public prefix, `API_TOKEN`, or `None` for a request without a valid key.
    pub key_prefix: Option<String>,
    pub method: String,
    /// The route template (`/api/apps/{app}/files/{path+}`), so filters group like requests.
    pub route: String,
    /// The path parameters (`app=demo path=index.html`), bounded.
    pub target: String,
    pub outcome: Outcome,
    pub status: u16,
}

const MAX_TARGET_CHARS: usize = 512;

/// How scheduled job runs appear under `key_prefix` (the cron trigger has no key).
pub const CRON: &str = "cron";

/// `name=value` pairs of the path parameters, space-separated, cut at 512 characters.
pub fn target(params: &RequestParams) -> String {
    let mut out = String::new();
    for (name, value) in params.path {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    if out.chars().count() > MAX_TARGET_CHARS {
        out = out.chars().take(MAX_TARGET_CHARS - 1).collect();
        out.push('…');
    }
    out
}

/// Whether a request is recorded: every key-protected request that is not a read (whatever its
/// outcome), and every refusal of a valid key (403). Reads are not: they change nothing and
/// would outnumber everything else. Omi's deliveries are not: the index records each one with
/// its delivery id. 401s are not: a stranger could fill the table; the failed-authentication
/// rate limiter counts them instead.
pub fn should_record(access: &Access, method: &str, status: u16) -> bool {
    let keyed = matches!(access, Access::Key(_) | Access::LiveSocket(_));
    let read = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    keyed && status != 401 && (!read || status == 403)
}

/// The cut-off of the retention job: rows older than this go.
pub fn retention_cutoff(now_ms: i64, days: u32) -> i64 {
    now_ms.saturating_sub(i64::from(days) * 86_400_000)
}

pub const DEFAULT_RETENTION_DAYS: u32 = 365;

/// `AUDIT_RETENTION_DAYS`: unset is a year; `0` is refused (an audit log kept for no days is
/// not an audit log).
pub fn parse_retention_days(raw: Option<&str>) -> Result<u32, String> {
    match raw.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_RETENTION_DAYS),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=36_500).contains(d))
            .ok_or_else(|| format!("AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 36500, got {v:?}")),
    }
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// `GET /api/admin/audit?since=&until=&key=&route=&outcome=&cursor=&limit=`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Inclusive, ms.
    pub since: Option<i64>,
    /// Exclusive, ms (`until=2025-01-31` includes the 31st).
    pub until: Option<i64>,
    pub key_prefix: Option<String>,
    pub route: Option<String>,
    pub outcome: Option<Outcome>,
    /// Rows strictly older than this `(at_ms, id)`.
    pub cursor: Option<Cursor>,
    pub limit: u32,
}

impl AuditFilter {
    /// Every bad value is a 400 naming the parameter.
    pub fn parse(pairs: Vec<(String, String)>) -> Result<AuditFilter, Error> {
        let p = Params::new(pairs);
        let since = p.time("since", false)?;
        let until = p.time("until", true)?;
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err(Error::invalid_field("until", "must be after since"));
            }
        }
        let key_prefix = match p.get("key") {
            None => None,
            Some(k) => {
                let k = k.strip_prefix(super::api_key::KEY_SCHEME).map(|rest| rest.split('_').next().unwrap_or("")).unwrap_or(k);
                let named = k == "API_TOKEN" || k == CRON;
                if !named && !super::secret::is_base32(k, super::api_key::PREFIX_CHARS) {
                    return Err(Error::invalid_field("key", "must be a key prefix (8 characters), API_TOKEN or cron"));
                }
                Some(k.to_string())
            }
        };
        let route = match p.get("route") {
            None => None,
            Some(r) if r.starts_with("/api/") && r.len() <= 200 => Some(r.to_string()),
            Some(_) => return Err(Error::invalid_field("route", "must be a route template such as /api/apps/{app}/files/{path+}")),
        };
        let outcome = p
            .get("outcome")
            .map(|o| Outcome::parse(o).ok_or_else(|| Error::invalid_field("outcome", "must be ok, denied, rejected or failed")))
            .transpose()?;
        let cursor = p
            .get("cursor")
            .map(|c| Cursor::decode(c).ok_or_else(|| Error::invalid_field("cursor", "is not a cursor this API issued")))
            .transpose()?;
        let limit = match p.get("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| Error::invalid_field("limit", format!("must be a whole number from 1 to {MAX_LIMIT}")))?,
        };
        Ok(AuditFilter { since, until, key_prefix, route, outcome, cursor, limit })
    }
}

/// The cursor after the last row of a page (`id` is the row's).
pub fn next_cursor(at_ms: i64, id: i64) -> String {
    Cursor { created_ms: at_ms, seq: id }.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::rule::{KeyRule, Rule, ScopedBy};
    use crate::access::scope::Capability;

    fn parse(q: &[(&str, &str)]) -> Result<AuditFilter, Error> {
        AuditFilter::parse(q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn outcomes_follow_the_status() {
        assert_eq!(Outcome::from_status(200), Outcome::Ok);
        assert_eq!(Outcome::from_status(304), Outcome::Ok);
        assert_eq!(Outcome::from_status(401), Outcome::Denied);
        assert_eq!(Outcome::from_status(403), Outcome::Denied);
        assert_eq!(Outcome::from_status(409), Outcome::Rejected);
        assert_eq!(Outcome::from_status(503), Outcome::Failed);
    }

    #[test]
    fn changes_and_refusals_of_keys_are_recorded_reads_and_strangers_are_not() {
        let keyed = Access::Key(KeyRule::Scope(Rule::new(Capability::AppsWrite, ScopedBy::Path("app"))));
        assert!(should_record(&keyed, "PUT", 200));
        assert!(should_record(&keyed, "DELETE", 412));
        assert!(should_record(&keyed, "POST", 500));
        assert!(should_record(&keyed, "PUT", 403));
        assert!(should_record(&keyed, "GET", 403));
        assert!(!should_record(&keyed, "GET", 200));
        assert!(!should_record(&keyed, "head", 404));
        assert!(!should_record(&keyed, "PUT", 401));
        assert!(!should_record(&Access::Webhook, "POST", 200));
        assert!(!should_record(&Access::Open, "POST", 200));
        assert!(!should_record(&Access::OmiTool, "POST", 200));
    }

    #[test]
    fn the_target_names_the_path_parameters_and_is_bounded() {
        let path = [("app", "demo"), ("path", "src/index.html")];
        assert_eq!(target(&RequestParams { path: &path, query: &[] }), "app=demo path=src/index.html");
        assert_eq!(target(&RequestParams::default()), "");
        let long = "x".repeat(2000);
        let path = [("path", long.as_str())];
        assert_eq!(target(&RequestParams { path: &path, query: &[] }).chars().count(), MAX_TARGET_CHARS);
    }

    #[test]
    fn filters_parse_into_typed_values() {
        let f = parse(&[
            ("since", "2025-01-01"),
            ("until", "2025-01-31"),
            ("key", "abcdefgh"),
            ("route", "/api/apps/{app}/files/{path+}"),
            ("outcome", "denied"),
            ("limit", "10"),
        ])
        .unwrap();
        assert_eq!(f.since, Some(1_735_689_600_000));
        assert_eq!(f.until, Some(1_738_368_000_000));
        assert_eq!(f.key_prefix.as_deref(), Some("abcdefgh"));
        assert_eq!(f.route.as_deref(), Some("/api/apps/{app}/files/{path+}"));
        assert_eq!(f.outcome, Some(Outcome::Denied));
        assert_eq!(f.limit, 10);
        let d = parse(&[]).unwrap();
        assert_eq!(
            (d.since, d.until, d.key_prefix, d.route, d.outcome, d.cursor, d.limit),
            (None, None, None, None, None, None, DEFAULT_LIMIT)
        );
        assert_eq!(parse(&[("key", "API_TOKEN")]).unwrap().key_prefix.as_deref(), Some("API_TOKEN"));
        assert_eq!(parse(&[("key", "cron")]).unwrap().key_prefix.as_deref(), Some("cron"));
        // A whole key pasted by mistake is reduced to its prefix, never kept or echoed.
        let whole = format!("r2d1_abcdefgh_{}", "a".repeat(52));
        assert_eq!(parse(&[("key", &whole)]).unwrap().key_prefix.as_deref(), Some("abcdefgh"));
    }

    #[test]
    fn cursors_round_trip_and_bad_values_name_the_parameter() {
        let c = next_cursor(1_700_000_000_000, 42);
        assert_eq!(parse(&[("cursor", &c)]).unwrap().cursor, Some(Cursor { created_ms: 1_700_000_000_000, seq: 42 }));
        for (name, value) in [
            ("since", "yesterday"),
            ("until", "2025-13-01"),
            ("key", "short"),
            ("key", "ABCDEFGH"),
            ("route", "apps"),
            ("outcome", "maybe"),
            ("cursor", "!!"),
            ("limit", "0"),
            ("limit", "201"),
        ] {
            let e = parse(&[(name, value)]).unwrap_err();
            assert_eq!(e.status(), 400, "{name}={value}");
            assert!(e.to_string().starts_with(name), "{name}={value}: {e}");
        }
        assert!(parse(&[("since", "2025-02-01"), ("until", "2025-01-01")]).unwrap_err().to_string().starts_with("until"));
    }

    #[test]
    fn retention_is_configurable_and_never_zero() {
        assert_eq!(parse_retention_days(None), Ok(DEFAULT_RETENTION_DAYS));
        assert_eq!(parse_retention_days(Some("30")), Ok(30));
        assert!(parse_retention_days(Some("0")).unwrap_err().contains("AUDIT_RETENTION_DAYS"));
        assert!(parse_retention_days(Some("forever")).is_err());
        assert_eq!(retention_cutoff(10 * 86_400_000, 3), 7 * 86_400_000);
        assert_eq!(retention_cutoff(i64::MIN, 3), i64::MIN);
    }
}
