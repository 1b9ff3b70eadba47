//! Query-string parameters of the log routes, validated into typed values. Every bad value is a
//! 400 naming the parameter: nothing unvalidated reaches SQL (which binds values anyway).

use chrono::NaiveDate;

use super::cursor::{Cursor, RankCursor};
use super::keys::check_key_part;
use super::payload::{parse_time_str, CATEGORIES, MAX_TIME_MS};
use crate::error::Error;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
const MAX_QUERY_CHARS: usize = 200;
const DAY_MS: i64 = 86_400_000;
/// The longest span of the daily analytics, in days.
pub const MAX_DAILY_DAYS: i64 = 366;

/// Query parameters as (name, value) pairs, first occurrence wins.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub fn flag(&self, name: &str) -> Result<bool, Error> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("0") | Some("false") | Some("no") => Ok(false),
            Some("1") | Some("true") | Some("yes") => Ok(true),
            Some(_) => Err(Error::invalid_field(name, "must be true or false")),
        }
    }

    pub fn user_id(&self, name: &str) -> Result<Option<String>, Error> {
        self.get(name).map(|v| check_key_part(v).map(|_| v.to_string()).map_err(|why| Error::invalid_field(name, why))).transpose()
    }

    /// A time bound: `YYYY-MM-DD` (that day's start, or with `end_of_day` the next day's
    /// start, so `to=2025-01-31` includes the 31st), an ISO date-time, or milliseconds; always
    /// between 1970-01-01 and 9999-12-31 (as stored times are), so the arithmetic on it cannot
    /// overflow.
    pub fn time(&self, name: &str, end_of_day: bool) -> Result<Option<i64>, Error> {
        let Some(v) = self.get(name) else { return Ok(None) };
        let out_of_range = || Error::invalid_field(name, "must be between 1970-01-01 and 9999-12-31");
        if let Ok(day) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
            let start = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_millis();
            if !(0..=MAX_TIME_MS).contains(&start) {
                return Err(out_of_range());
            }
            // The end of 9999-12-31 is the last millisecond r2d1 stores, not year 10000 (which
            // renders as no RFC 3339 date-time).
            return Ok(Some(if end_of_day { start.saturating_add(DAY_MS).min(MAX_TIME_MS) } else { start }));
        }
        let ms = match v.parse::<i64>() {
            Ok(ms) if ms >= 0 => Some(ms),
            _ => parse_time_str(v),
        };
        match ms {
            Some(ms) if (0..=MAX_TIME_MS).contains(&ms) => Ok(Some(ms)),
            Some(_) => Err(out_of_range()),
            None => Err(Error::invalid_field(name, "must be YYYY-MM-DD, an ISO-8601 date-time or milliseconds since 1970")),
        }
    }
}

/// The order of a listing: newest first (the default), or by bm25 relevance to `q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Newest,
    Relevance,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogsQuery {
    pub user_id: Option<String>,
    /// A forced filter: only these mentors (a narrow key listing without `userId`). Empty: no
    /// restriction beyond `user_id`.
    pub only_users: Vec<String>,
    pub limit: u32,
    pub sort: Sort,
    /// The newest-first position (`sort=newest`).
    pub cursor: Option<Cursor>,
    /// The relevance position (`sort=relevance`); a cursor of the other order is refused.
    pub rank_cursor: Option<RankCursor>,
    /// Inclusive lower bound on `created_at`, ms.
    pub from_ms: Option<i64>,
    /// Exclusive upper bound on `created_at`, ms.
    pub to_ms: Option<i64>,
    pub category: Option<String>,
    /// An FTS5 expression built from the user's words (see [`fts_expression`]).
    pub fts: Option<String>,
    pub include_discarded: bool,
    pub full: bool,
}

pub fn logs_query(p: &Params) -> Result<LogsQuery, Error> {
    let limit = match p.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| Error::invalid_field("limit", format!("must be a whole number from 1 to {MAX_LIMIT}")))?,
    };
    let sort = match p.get("sort") {
        None | Some("newest") => Sort::Newest,
        Some("relevance") => Sort::Relevance,
        Some(_) => return Err(Error::invalid_field("sort", "must be newest or relevance")),
    };
    let forged = || Error::bad_request("invalid_cursor", "cursor: is not a cursor this API returned for this sort");
    let (mut cursor, mut rank_cursor) = (None, None);
    if let Some(c) = p.get("cursor") {
        match sort {
            Sort::Newest => cursor = Some(Cursor::decode(c).ok_or_else(forged)?),
            Sort::Relevance => rank_cursor = Some(RankCursor::decode(c).ok_or_else(forged)?),
        }
    }
    let category = p
        .get("category")
        .map(|c| {
            let c = c.trim().to_ascii_lowercase();
            if CATEGORIES.contains(&c.as_str()) {
                Ok(c)
            } else {
                Err(Error::invalid_field("category", "is not one of Omi's categories"))
            }
        })
        .transpose()?;
    let fts = p.get("q").map(fts_expression).transpose()?;
    if sort == Sort::Relevance && fts.is_none() {
        return Err(Error::invalid_field("sort", "relevance needs q (the words to rank by)"));
    }
    let (from_ms, to_ms) = range(p)?;
    Ok(LogsQuery {
        user_id: p.user_id("userId")?,
        only_users: Vec::new(),
        limit,
        sort,
        cursor,
        rank_cursor,
        from_ms,
        to_ms,
        category,
        fts,
        include_discarded: p.flag("include_discarded")?,
        full: p.flag("full")?,
    })
}

/// `from`/`to`, checked to be in order.
pub fn range(p: &Params) -> Result<(Option<i64>, Option<i64>), Error> {
    let from = p.time("from", false)?;
    let to = p.time("to", true)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(Error::invalid_field("to", "must be after from"));
        }
    }
    Ok((from, to))
}

/// Turns free text into a safe FTS5 expression: every word becomes a quoted prefix term, so
/// FTS operators and quotes in the input are plain text, never syntax. Words are ANDed.
pub fn fts_expression(q: &str) -> Result<String, Error> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::invalid_field("q", format!("must be at most {MAX_QUERY_CHARS} characters")));
    }
    let terms: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '_')
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{}\"*", w.replace('"', "")))
        .collect();
    if terms.is_empty() {
        return Err(Error::invalid_field("q", "must contain at least one word"));
    }
    Ok(terms.join(" "))
}

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
    Json,
}

pub fn export_format(p: &Params) -> Result<ExportFormat, Error> {
    match p.get("format").unwrap_or("ndjson").to_ascii_lowercase().as_str() {
        "csv" => Ok(ExportFormat::Csv),
        "ndjson" | "jsonl" => Ok(ExportFormat::Ndjson),
        "json" => Ok(ExportFormat::Json),
        _ => Err(Error::invalid_field("format", "must be csv, ndjson or json")),
    }
}

/// The day range of the daily analytics: default the last 30 days up to `now_ms`, at most
/// [`MAX_DAILY_DAYS`]. Checked arithmetic throughout: a span that overflows is too long, never
/// a wrapped-around small one (which once built a day series until the isolate died).
pub fn daily_range(p: &Params, now_ms: i64) -> Result<(i64, i64), Error> {
    let (from, to) = range(p)?;
    let to = match to {
        Some(t) => t,
        None => now_ms.div_euclid(DAY_MS).saturating_add(1).saturating_mul(DAY_MS),
    };
    let from = from.unwrap_or_else(|| to.saturating_sub(30 * DAY_MS));
    match to.checked_sub(from) {
        Some(span) if span <= MAX_DAILY_DAYS * DAY_MS => Ok((from, to)),
        _ => Err(Error::invalid_field("from", format!("the range may span at most {MAX_DAILY_DAYS} days"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults() {
        let q = logs_query(&params(&[])).unwrap();
        assert_eq!(q.limit, 20);
        assert!(q.user_id.is_none() && q.cursor.is_none() && q.fts.is_none());
        assert!(!q.include_discarded && !q.full);
    }

    #[test]
    fn every_bad_value_names_its_parameter() {
        for (k, v) in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "99999999999"),
            ("limit", "ten"),
            ("category", "romance"),
            ("userId", "a/b"),
            ("userId", "x' OR '1'='1"),
            ("from", "last week"),
            ("include_discarded", "maybe"),
            ("full", "2"),
            ("q", "\"*"),
        ] {
            let e = logs_query(&params(&[(k, v)])).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().starts_with(k), "{k}={v}: {e}");
        }
        assert_eq!(logs_query(&params(&[("cursor", "forged")])).unwrap_err().code(), "invalid_cursor");
        assert!(logs_query(&params(&[("from", "2025-02-01"), ("to", "2025-01-01")])).is_err());
    }

    #[test]
    fn relevance_needs_words_and_its_own_cursor() {
        assert_eq!(logs_query(&params(&[])).unwrap().sort, Sort::Newest);
        assert_eq!(logs_query(&params(&[("sort", "newest")])).unwrap().sort, Sort::Newest);
        let q = logs_query(&params(&[("sort", "relevance"), ("q", "plan")])).unwrap();
        assert_eq!((q.sort, q.rank_cursor), (Sort::Relevance, None));
        for bad in [vec![("sort", "oldest")], vec![("sort", "RELEVANCE"), ("q", "plan")], vec![("sort", "relevance")]] {
            let e = logs_query(&params(&bad)).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().starts_with("sort"), "{bad:?}: {e}");
        }
        let rank = RankCursor { pin: 9, offset: 20 }.encode();
        let newest = Cursor { created_ms: 5, seq: 7 }.encode();
        let q = logs_query(&params(&[("sort", "relevance"), ("q", "plan"), ("cursor", &rank)])).unwrap();
        assert_eq!((q.cursor, q.rank_cursor), (None, Some(RankCursor { pin: 9, offset: 20 })));
        // A cursor of the other order is as forged as any.
        let e = logs_query(&params(&[("sort", "relevance"), ("q", "plan"), ("cursor", &newest)])).unwrap_err();
        assert_eq!(e.code(), "invalid_cursor");
        assert_eq!(logs_query(&params(&[("cursor", &rank)])).unwrap_err().code(), "invalid_cursor");
    }

    #[test]
    fn dates_bound_whole_days() {
        let q = logs_query(&params(&[("from", "2025-01-01"), ("to", "2025-01-31")])).unwrap();
        assert_eq!(q.from_ms, Some(1_735_689_600_000));
        assert_eq!(q.to_ms, Some(1_735_689_600_000 + 31 * DAY_MS));
    }

    #[test]
    fn search_text_cannot_inject_fts_syntax() {
        assert_eq!(fts_expression("project timeline").unwrap(), "\"project\"* \"timeline\"*");
        assert_eq!(fts_expression("a\" OR title:*").unwrap(), "\"a\"* \"OR\"* \"title\"*");
        assert_eq!(fts_expression("don't").unwrap(), "\"don't\"*");
        assert!(fts_expression("   ").is_err());
        assert!(fts_expression(&"x".repeat(201)).is_err());
    }

    #[test]
    fn daily_range_defaults_to_thirty_days_and_is_bounded() {
        let now = 1_735_689_600_000 + 5 * DAY_MS + 1234;
        let (f, t) = daily_range(&params(&[]), now).unwrap();
        assert_eq!(t - f, 30 * DAY_MS);
        assert!(t > now);
        assert!(daily_range(&params(&[("from", "2020-01-01"), ("to", "2025-01-01")]), now).is_err());
    }

    #[test]
    fn time_bounds_outside_the_calendar_are_refused_not_wrapped() {
        // Found by the contract tests: this pair overflowed `to - from`, passed the span check
        // and built a day series until the isolate died (17 s, then a 500).
        let e = daily_range(&params(&[("from", "-0001-01-01"), ("to", "9223372036854775807")]), 0).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().starts_with("from"), "{e}");
        for (k, v) in [
            ("from", "-0001-01-01"),
            ("from", "+275760-01-01"),
            ("to", "10000-01-01"),
            ("to", "9223372036854775807"),
            ("to", "253402300800000"),
            ("from", "1969-12-31T23:59:59Z"),
            ("from", "+262142-01-01T00:00:00Z"),
        ] {
            let e = logs_query(&params(&[(k, v)])).unwrap_err();
            assert_eq!(e.status(), 400, "{k}={v}");
            assert!(e.to_string().starts_with(k), "{k}={v}: {e}");
        }
        // The edges themselves are fine, and the last day ends at MAX_TIME_MS.
        let q = logs_query(&params(&[("from", "1970-01-01"), ("to", "9999-12-31")])).unwrap();
        assert_eq!((q.from_ms, q.to_ms), (Some(0), Some(MAX_TIME_MS)));
        assert_eq!(logs_query(&params(&[("to", &MAX_TIME_MS.to_string())])).unwrap().to_ms, Some(MAX_TIME_MS));
        // A valid year-long span at the end of the calendar neither overflows nor is refused.
        let (f, t) = daily_range(&params(&[("from", "9999-01-01"), ("to", "9999-12-31")]), 0).unwrap();
        assert_eq!(t - f, 365 * DAY_MS - 1);
        assert_eq!(super::super::render::day_series(&[], f, t).len(), 365);
        // And the default range works at any clock, even a nonsense one.
        assert!(daily_range(&params(&[]), i64::MAX).is_ok());
        assert!(daily_range(&params(&[]), i64::MIN).is_ok());
    }
}
