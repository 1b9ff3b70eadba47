//! A chat-tool call, read into a typed request.
//!
//! Omi posts `{uid, app_id, tool_name, geolocation?, ...parameters}` as JSON, or for a GET tool
//! puts the same names in the query. Arguments come from Omi's language model, so they are
//! read leniently (numbers as numbers or strings, dates as `YYYY-MM-DD` or full date-times,
//! unknown names ignored) but checked: a wrong value is a 400 that names the parameter.
//! Relative periods ("this month") are resolved here against the caller's clock, so a request
//! holds concrete UTC instants.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime};
use serde_json::{Map, Value};

use super::signature_v2::query_pairs;
use crate::error::Error;
use crate::omi::keys::check_key_part;
use crate::omi::payload::parse_time_str;

/// The tools r2d1 serves. Their names, paths and methods are what the manifest declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    SearchLogs,
    OpenActionItems,
    SessionsWith,
    MentoringHours,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::SearchLogs, Tool::OpenActionItems, Tool::SessionsWith, Tool::MentoringHours];

    /// The `tool_name` Omi sends.
    pub fn name(self) -> &'static str {
        match self {
            Tool::SearchLogs => "search_mentorship_logs",
            Tool::OpenActionItems => "list_open_action_items",
            Tool::SessionsWith => "summarize_sessions_with",
            Tool::MentoringHours => "mentoring_hours",
        }
    }

    /// The last segment of the tool's path under [`TOOLS_PATH`].
    pub fn slug(self) -> &'static str {
        match self {
            Tool::SearchLogs => "search",
            Tool::OpenActionItems => "action-items",
            Tool::SessionsWith => "sessions-with",
            Tool::MentoringHours => "hours",
        }
    }

    /// Tools that only read take GET, the others POST: Omi supports both, and a GET tool
    /// carries its arguments in the signed query.
    pub fn method(self) -> &'static str {
        match self {
            Tool::SearchLogs | Tool::SessionsWith => "POST",
            Tool::OpenActionItems | Tool::MentoringHours => "GET",
        }
    }

    pub fn path(self) -> String {
        format!("{TOOLS_PATH}{}", self.slug())
    }

    pub fn from_slug(slug: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.slug() == slug)
    }
}

/// Where the tools live.
pub const TOOLS_PATH: &str = "/api/omi/tools/";

/// A half-open UTC interval `[from_ms, to_ms)`; an open end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeRange {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl TimeRange {
    pub fn contains(&self, ms: i64) -> bool {
        self.from_ms.is_none_or(|f| ms >= f) && self.to_ms.is_none_or(|t| ms < t)
    }
}

/// The periods `mentoring_hours` understands, in UTC. Weeks start on Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    ThisWeek,
    LastWeek,
    ThisMonth,
    LastMonth,
    ThisYear,
    LastYear,
    Last7Days,
    Last30Days,
}

impl Period {
    pub const NAMES: [&'static str; 8] =
        ["this_week", "last_week", "this_month", "last_month", "this_year", "last_year", "last_7_days", "last_30_days"];

    pub fn from_name(name: &str) -> Option<Period> {
        let name = name.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        Some(match name.as_str() {
            "this_week" | "week" => Period::ThisWeek,
            "last_week" => Period::LastWeek,
            "this_month" | "month" => Period::ThisMonth,
            "last_month" => Period::LastMonth,
            "this_year" | "year" => Period::ThisYear,
            "last_year" => Period::LastYear,
            "last_7_days" => Period::Last7Days,
            "last_30_days" => Period::Last30Days,
            _ => return None,
        })
    }

    /// The interval, both ends set, for a clock reading `now_ms`.
    pub fn range(self, now_ms: i64) -> TimeRange {
        let now = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let today = now.date_naive();
        let start = |d: NaiveDate| Some(d.and_time(NaiveTime::MIN).and_utc().timestamp_millis());
        let month_start = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(today);
        let next_month = |d: NaiveDate| if d.month() == 12 { month_start(d.year() + 1, 1) } else { month_start(d.year(), d.month() + 1) };
        let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        let this_month = month_start(today.year(), today.month());
        let year = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).unwrap_or(today);
        let (from, to) = match self {
            Period::ThisWeek => (start(monday), start(monday + Duration::days(7))),
            Period::LastWeek => (start(monday - Duration::days(7)), start(monday)),
            Period::ThisMonth => (start(this_month), start(next_month(this_month))),
            Period::LastMonth => {
                let last = if this_month.month() == 1 {
                    month_start(this_month.year() - 1, 12)
                } else {
                    month_start(this_month.year(), this_month.month() - 1)
                };
                (start(last), start(this_month))
            }
            Period::ThisYear => (start(year(today.year())), start(year(today.year() + 1))),
            Period::LastYear => (start(year(today.year() - 1)), start(year(today.year()))),
            Period::Last7Days => (Some(now_ms - 7 * 86_400_000), Some(now_ms)),
            Period::Last30Days => (Some(now_ms - 30 * 86_400_000), Some(now_ms)),
        };
        TimeRange { from_ms: from, to_ms: to }
    }
}

/// What a tool was asked, with its arguments checked.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolRequest {
    /// Memories whose title, overview or transcript match `text`, newest first.
    SearchLogs { text: String, range: TimeRange, limit: u32 },
    /// Action items not completed, newest memory first.
    OpenActionItems { limit: u32 },
    /// Memories with a person or team: `person` matched against speaker names, titles,
    /// overviews and transcripts.
    SessionsWith { person: String, range: TimeRange, limit: u32 },
    /// Hours mentored in `range` (both ends set).
    MentoringHours { range: TimeRange },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The Omi uid asking: every read must be limited to this mentor's data.
    pub uid: String,
    pub app_id: Option<String>,
    pub request: ToolRequest,
}

pub const DEFAULT_LIMIT: u32 = 5;
pub const MAX_LIMIT: u32 = 10;
pub const DEFAULT_ACTION_ITEMS: u32 = 10;
pub const MAX_ACTION_ITEMS: u32 = 20;
/// Longer search text is not a question a mentor asks by voice.
pub const MAX_TEXT_CHARS: usize = 200;

fn text_param(params: &Map<String, Value>, name: &str) -> Result<Option<String>, Error> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
            if s.chars().count() > MAX_TEXT_CHARS {
                return Err(Error::invalid_field(name, format!("must be at most {MAX_TEXT_CHARS} characters")));
            }
            Ok(Some(s).filter(|s| !s.is_empty()))
        }
        Some(_) => Err(Error::invalid_field(name, "must be a string")),
    }
}

fn required_text(params: &Map<String, Value>, name: &str) -> Result<String, Error> {
    text_param(params, name)?.ok_or_else(|| Error::bad_request("missing_field", format!("{name}: is required")))
}

/// A count, given as a number or a numeric string, clamped to `1..=max`.
fn limit_param(params: &Map<String, Value>, name: &str, default: u32, max: u32) -> Result<u32, Error> {
    let n = match params.get(name) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(default),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let n = n.filter(|n| n.is_finite() && *n >= 1.0).ok_or_else(|| Error::invalid_field(name, "must be a whole number from 1"))?;
    Ok((n as u32).clamp(1, max))
}

/// `YYYY-MM-DD` (the whole day, UTC) or a date-time. `end` marks the upper bound: a date there
/// means up to the end of that day.
fn date_param(params: &Map<String, Value>, name: &str, end: bool) -> Result<Option<i64>, Error> {
    let Some(raw) = text_param(params, name)? else { return Ok(None) };
    if let Ok(day) = NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        let day = if end { day.succ_opt().unwrap_or(day) } else { day };
        return Ok(Some(day.and_time(NaiveTime::MIN).and_utc().timestamp_millis()));
    }
    parse_time_str(&raw).map(Some).ok_or_else(|| Error::invalid_field(name, format!("{raw:?} is not a date (YYYY-MM-DD)")))
}

fn range_params(params: &Map<String, Value>) -> Result<TimeRange, Error> {
    let range = TimeRange { from_ms: date_param(params, "from", false)?, to_ms: date_param(params, "to", true)? };
    if let (Some(from), Some(to)) = (range.from_ms, range.to_ms) {
        if to <= from {
            return Err(Error::invalid_field("to", "must be after from"));
        }
    }
    Ok(range)
}

/// The parameters of a call: the JSON body's object for POST tools, the query for GET tools.
/// A `uid` in the query of a POST call is also read; if it differs from the body's, the call
/// is refused rather than guessing whose data to read.
fn params_of(tool: Tool, query: &str, body: &[u8]) -> Result<Map<String, Value>, Error> {
    let mut from_query = Map::new();
    for (name, value) in query_pairs(query) {
        // The first of repeated names wins, as most readers of a query do.
        from_query.entry(name).or_insert(Value::String(value));
    }
    if tool.method() == "GET" {
        return Ok(from_query);
    }
    let mut params = match crate::omi::payload::parse_json(body)? {
        Value::Object(o) => o,
        _ => return Err(Error::bad_request("invalid_json", "body must be a JSON object")),
    };
    if let Some(uid) = from_query.remove("uid") {
        match params.get("uid") {
            None | Some(Value::Null) => {
                params.insert("uid".into(), uid);
            }
            Some(body_uid) if *body_uid == uid => {}
            Some(_) => return Err(Error::invalid_field("uid", "differs between the query and the body")),
        }
    }
    Ok(params)
}

/// Reads a call to `tool`; `now_ms` resolves relative periods.
pub fn parse_call(tool: Tool, query: &str, body: &[u8], now_ms: i64) -> Result<ToolCall, Error> {
    let params = params_of(tool, query, body)?;
    let uid = text_param(&params, "uid")?.ok_or_else(|| Error::bad_request("missing_field", "uid: is required"))?;
    check_key_part(&uid).map_err(|why| Error::invalid_field("uid", why))?;
    if let Some(name) = text_param(&params, "tool_name")? {
        if name != tool.name() {
            return Err(Error::invalid_field("tool_name", format!("{name:?} was sent to the {} endpoint", tool.name())));
        }
    }
    let app_id = text_param(&params, "app_id")?;
    let request = match tool {
        Tool::SearchLogs => ToolRequest::SearchLogs {
            text: required_text(&params, "query")?,
            range: range_params(&params)?,
            limit: limit_param(&params, "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        },
        Tool::OpenActionItems => {
            ToolRequest::OpenActionItems { limit: limit_param(&params, "limit", DEFAULT_ACTION_ITEMS, MAX_ACTION_ITEMS)? }
        }
        Tool::SessionsWith => ToolRequest::SessionsWith {
            person: required_text(&params, "person")?,
            range: range_params(&params)?,
            limit: limit_param(&params, "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        },
        Tool::MentoringHours => {
            let explicit = range_params(&params)?;
            let range = match text_param(&params, "period")? {
                Some(name) => {
                    let period = Period::from_name(&name)
                        .ok_or_else(|| Error::invalid_field("period", format!("{name:?} is not one of {}", Period::NAMES.join(", "))))?;
                    period.range(now_ms)
                }
                None if explicit.from_ms.is_some() || explicit.to_ms.is_some() => {
                    TimeRange { from_ms: explicit.from_ms.or(Some(0)), to_ms: explicit.to_ms.or(Some(now_ms)) }
                }
                None => Period::ThisMonth.range(now_ms),
            };
            ToolRequest::MentoringHours { range }
        }
    };
    Ok(ToolCall { uid, app_id, request })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wednesday 15 January 2025, 12:00 UTC.
    const NOW: i64 = 1_736_942_400_000;

    fn ms(iso: &str) -> i64 {
        parse_time_str(iso).unwrap()
    }

    fn range(from: &str, to: &str) -> TimeRange {
        TimeRange { from_ms: Some(ms(from)), to_ms: Some(ms(to)) }
    }

    #[test]
    fn paths_names_and_methods() {
        assert_eq!(Tool::from_slug("hours"), Some(Tool::MentoringHours));
        assert_eq!(Tool::from_slug("nope"), None);
        assert_eq!(Tool::SearchLogs.path(), "/api/omi/tools/search");
        assert_eq!(Tool::OpenActionItems.method(), "GET");
    }

    #[test]
    fn a_search_from_a_json_body() {
        let body = br#"{"uid":"mentor-1","app_id":"r2d1","tool_name":"search_mentorship_logs","query":"  what did I   promise Ana ","from":"2025-01-06","to":"2025-01-12","limit":"3","geolocation":{"latitude":20.6}}"#;
        let call = parse_call(Tool::SearchLogs, "", body, NOW).unwrap();
        assert_eq!(call.uid, "mentor-1");
        assert_eq!(call.app_id.as_deref(), Some("r2d1"));
        assert_eq!(
            call.request,
            ToolRequest::SearchLogs {
                text: "what did I promise Ana".into(),
                range: range("2025-01-06T00:00:00Z", "2025-01-13T00:00:00Z"),
                limit: 3
            }
        );
    }

    #[test]
    fn get_tools_read_the_query() {
        let call = parse_call(Tool::OpenActionItems, "uid=mentor-1&limit=50&tool_name=list_open_action_items", b"", NOW).unwrap();
        assert_eq!(call.request, ToolRequest::OpenActionItems { limit: MAX_ACTION_ITEMS });
        let call = parse_call(Tool::MentoringHours, "uid=mentor-1&period=last+month", b"", NOW).unwrap();
        assert_eq!(call.request, ToolRequest::MentoringHours { range: range("2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z") });
        let call = parse_call(Tool::MentoringHours, "uid=mentor-1", b"", NOW).unwrap();
        assert_eq!(call.request, ToolRequest::MentoringHours { range: range("2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z") });
        let call = parse_call(Tool::MentoringHours, "uid=mentor-1&from=2025-01-01", b"", NOW).unwrap();
        assert_eq!(
            call.request,
            ToolRequest::MentoringHours { range: TimeRange { from_ms: Some(ms("2025-01-01T00:00:00Z")), to_ms: Some(NOW) } }
        );
    }

    #[test]
    fn periods_resolve_in_utc_weeks_from_monday() {
        assert_eq!(Period::ThisWeek.range(NOW), range("2025-01-13T00:00:00Z", "2025-01-20T00:00:00Z"));
        assert_eq!(Period::LastWeek.range(NOW), range("2025-01-06T00:00:00Z", "2025-01-13T00:00:00Z"));
        assert_eq!(Period::ThisYear.range(NOW), range("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"));
        assert_eq!(Period::LastYear.range(NOW), range("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"));
        let december = ms("2024-12-31T23:00:00Z");
        assert_eq!(Period::ThisMonth.range(december), range("2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z"));
        assert_eq!(Period::Last7Days.range(NOW), TimeRange { from_ms: Some(NOW - 7 * 86_400_000), to_ms: Some(NOW) });
        assert_eq!(Period::from_name("Last Month"), Some(Period::LastMonth));
        assert!(range("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z").contains(ms("2025-01-01T23:59:59Z")));
        assert!(!range("2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z").contains(ms("2025-01-02T00:00:00Z")));
    }

    #[test]
    fn a_post_uid_may_come_from_the_query_but_not_disagree() {
        let call = parse_call(Tool::SessionsWith, "uid=mentor-1", br#"{"person":"Ana"}"#, NOW).unwrap();
        assert_eq!(call.uid, "mentor-1");
        assert_eq!(call.request, ToolRequest::SessionsWith { person: "Ana".into(), range: TimeRange::default(), limit: DEFAULT_LIMIT });
        let e = parse_call(Tool::SessionsWith, "uid=mentor-2", br#"{"uid":"mentor-1","person":"Ana"}"#, NOW).unwrap_err();
        assert!(e.to_string().starts_with("uid:"), "{e}");
    }

    #[test]
    fn bad_calls_name_the_parameter() {
        let cases: [(Tool, &str, &[u8], &str); 10] = [
            (Tool::SearchLogs, "", br#"{"query":"x"}"#, "uid"),
            (Tool::SearchLogs, "", br#"{"uid":"../x","query":"x"}"#, "uid"),
            (Tool::SearchLogs, "", br#"{"uid":"m"}"#, "query"),
            (Tool::SearchLogs, "", br#"{"uid":"m","query":"  "}"#, "query"),
            (Tool::SearchLogs, "", br#"{"uid":"m","query":"x","from":"last tuesday"}"#, "from"),
            (Tool::SearchLogs, "", br#"{"uid":"m","query":"x","from":"2025-02-01","to":"2025-01-01"}"#, "to"),
            (Tool::SearchLogs, "", br#"{"uid":"m","query":"x","limit":0}"#, "limit"),
            (Tool::SearchLogs, "", br#"{"uid":"m","query":"x","tool_name":"mentoring_hours"}"#, "tool_name"),
            (Tool::SessionsWith, "", br#"{"uid":"m","person":5}"#, "person"),
            (Tool::MentoringHours, "uid=m&period=fortnight", b"", "period"),
        ];
        for (tool, query, body, field) in cases {
            let e = parse_call(tool, query, body, NOW).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().starts_with(&format!("{field}:")), "{e} should name {field}");
        }
        assert_eq!(parse_call(Tool::SearchLogs, "", b"[1]", NOW).unwrap_err().code(), "invalid_json");
        assert_eq!(parse_call(Tool::SearchLogs, "", b"", NOW).unwrap_err().code(), "invalid_json");
        let long = format!(r#"{{"uid":"m","query":"{}"}}"#, "a".repeat(201));
        assert!(parse_call(Tool::SearchLogs, "", long.as_bytes(), NOW).is_err());
    }
}
