//! What Omi sends, read leniently and turned into validated domain values.
//!
//! Omi's documented example and its backend disagree on spellings (`speakerId` vs `speaker_id`,
//! `apps_response` vs `apps_results`/`plugins_results`) and the backend adds many fields, so we
//! read the JSON as a tree and pick what the index needs: unknown fields are kept (in the raw
//! body, stored unchanged) and never rejected. A field we need that has the wrong type is an
//! error that names the field.

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::analytics::{analyze_memory, MemoryAnalytics, STORED_TOP_WORDS};
use super::keys::check_key_part;
use crate::error::Error;

/// Omi's conversation categories (backend `CategoryEnum`); anything else is indexed as `other`.
pub const CATEGORIES: &[&str] = &[
    "personal",
    "education",
    "health",
    "finance",
    "legal",
    "philosophy",
    "spiritual",
    "science",
    "entrepreneurship",
    "parenting",
    "romantic",
    "travel",
    "inspiration",
    "technology",
    "business",
    "social",
    "work",
    "sports",
    "politics",
    "literature",
    "history",
    "architecture",
    "music",
    "weather",
    "news",
    "entertainment",
    "psychology",
    "real",
    "design",
    "family",
    "economics",
    "environment",
    "other",
];

/// More open items than this in one memory are counted, not kept.
pub const MAX_OPEN_ITEMS_KEPT: usize = 20;
pub const MAX_ITEM_CHARS_KEPT: usize = 300;

/// An action item not completed yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenItem {
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_ms: Option<i64>,
}

/// The indexable facts of one memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub id: String,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub title: Option<String>,
    pub overview: Option<String>,
    pub emoji: Option<String>,
    pub category: String,
    pub language: Option<String>,
    pub source: Option<String>,
    pub discarded: bool,
    pub segment_count: u32,
    /// Words of the transcript as the analytics count them (`analytics.words`): the one word
    /// count r2d1 shows, in stats, totals, exports and the dashboard.
    pub word_count: u32,
    pub action_items_total: u32,
    pub action_items_open: u32,
    /// `speaker: text` lines, for full-text search.
    pub transcript_text: String,
    /// The open action items' text, kept in D1 for the chat tools (at most
    /// [`MAX_OPEN_ITEMS_KEPT`], each cut at [`MAX_ITEM_CHARS_KEPT`] characters).
    pub open_items: Vec<OpenItem>,
    /// Words, speakers' talk time, top words, topics (computed here, once, at ingest).
    pub analytics: MemoryAnalytics,
}

/// Parses `body` as JSON, or a 400 `invalid_json`.
pub fn parse_json(body: &[u8]) -> Result<Value, Error> {
    if body.is_empty() {
        return Err(Error::bad_request("invalid_json", "body is empty; expected a JSON object"));
    }
    let text = std::str::from_utf8(body).map_err(|e| Error::bad_request("invalid_json", format!("body is not valid UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| Error::bad_request("invalid_json", format!("body is not valid JSON: {e}")))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> Error {
    Error::invalid_field(field, format!("must be {expected}, got {}", type_name(got)))
}

/// A string field that may be absent or null.
fn opt_str(obj: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str, field: &str) -> Result<Option<bool>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(field, "true or false", other)),
    }
}

/// The latest time r2d1 accepts, 9999-12-31T23:59:59.999Z; the earliest is the epoch. Beyond
/// them a time has no four-digit year to render, and past 2^53 ms D1 hands it back as a float
/// that no row type reads (a memory with such a `created_at` made every listing a 502).
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the epoch of an ISO-8601 / RFC 3339 time (a missing zone means UTC, as
/// Python's naive `isoformat()` produces) or of a number of seconds or milliseconds; between
/// 1970-01-01 and 9999-12-31.
pub fn parse_time(value: &Value, field: &str) -> Result<i64, Error> {
    let ms = match value {
        Value::String(s) => parse_time_str(s).ok_or_else(|| Error::invalid_field(field, format!("{s:?} is not an ISO-8601 date-time")))?,
        Value::Number(n) => {
            let n =
                n.as_f64().filter(|n| n.is_finite() && *n >= 0.0).ok_or_else(|| Error::invalid_field(field, "must be a positive time"))?;
            // Below 10^11 it can only be seconds (10^11 ms is 1973; 10^11 s is year 5138).
            if n < 1e11 {
                (n * 1000.0) as i64
            } else {
                n as i64
            }
        }
        other => return Err(wrong_type(field, "an ISO-8601 date-time string", other)),
    };
    if !(0..=MAX_TIME_MS).contains(&ms) {
        return Err(Error::invalid_field(field, "must be between 1970-01-01 and 9999-12-31"));
    }
    Ok(ms)
}

pub fn parse_time_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    // A space instead of 'T' with a zone, as some Python serialisers write it.
    DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)).ok().map(|t| t.timestamp_millis())
}

fn opt_time(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_time(v, key).map(Some),
    }
}

pub fn normalise_category(raw: Option<&str>) -> String {
    let c = raw.unwrap_or("").trim().to_ascii_lowercase();
    if CATEGORIES.contains(&c.as_str()) {
        c
    } else {
        "other".to_string()
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64).filter(|n| n.is_finite())
}

/// Validates and extracts a memory-created payload.
pub fn memory_from_value(value: &Value) -> Result<Memory, Error> {
    let obj = value
        .as_object()
        .ok_or_else(|| Error::bad_request("invalid_json", format!("body must be a JSON object, got {}", type_name(value))))?;

    let id = match obj.get("id") {
        None | Some(Value::Null) => return Err(Error::bad_request("missing_field", "id: is required")),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(wrong_type("id", "a string", other)),
    };
    check_key_part(&id).map_err(|why| Error::invalid_field("id", why))?;

    let created_ms = match obj.get("created_at") {
        None | Some(Value::Null) => return Err(Error::bad_request("missing_field", "created_at: is required")),
        Some(v) => parse_time(v, "created_at")?,
    };
    let started_ms = opt_time(obj, "started_at")?;
    let finished_ms = opt_time(obj, "finished_at")?;

    let segments = match obj.get("transcript_segments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => return Err(wrong_type("transcript_segments", "an array", other)),
    };
    let mut transcript_text = String::new();
    let (mut first_start, mut last_end) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, seg) in segments.iter().enumerate() {
        let field = format!("transcript_segments[{i}]");
        let seg = seg.as_object().ok_or_else(|| wrong_type(&field, "an object", seg))?;
        let text = opt_str(seg, "text", &format!("{field}.text"))?.unwrap_or_default();
        let speaker =
            seg.get("speaker_name").and_then(Value::as_str).or_else(|| seg.get("speaker").and_then(Value::as_str)).unwrap_or("SPEAKER");
        if !text.is_empty() {
            transcript_text.push_str(speaker);
            transcript_text.push_str(": ");
            transcript_text.push_str(&text);
            transcript_text.push('\n');
        }
        if let Some(s) = number(seg.get("start")) {
            first_start = first_start.min(s);
        }
        if let Some(e) = number(seg.get("end")) {
            last_end = last_end.max(e);
        }
    }

    let empty = Map::new();
    let structured = match obj.get("structured") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(s)) => s,
        Some(other) => return Err(wrong_type("structured", "an object", other)),
    };
    let title = opt_str(structured, "title", "structured.title")?;
    let overview = opt_str(structured, "overview", "structured.overview")?;
    let emoji = opt_str(structured, "emoji", "structured.emoji")?;
    let category = normalise_category(opt_str(structured, "category", "structured.category")?.as_deref());
    let items = match structured.get("action_items") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => return Err(wrong_type("structured.action_items", "an array", other)),
    };
    let mut action_items_open = 0u32;
    let mut open_items = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("structured.action_items[{i}]");
        let item = item.as_object().ok_or_else(|| wrong_type(&field, "an object", item))?;
        let completed = opt_bool(item, "completed", &format!("{field}.completed"))?.unwrap_or(false);
        if !completed {
            action_items_open += 1;
            // Lenient on purpose: an item without text or with an odd due date is still open.
            let description = item.get("description").and_then(Value::as_str).map(str::trim).unwrap_or("");
            if !description.is_empty() && open_items.len() < MAX_OPEN_ITEMS_KEPT {
                let description: String = description.chars().take(MAX_ITEM_CHARS_KEPT).collect();
                let due_ms = item.get("due_at").and_then(|v| parse_time(v, "due_at").ok());
                open_items.push(OpenItem { description, due_ms });
            }
        }
    }

    let duration_seconds = match (started_ms, finished_ms) {
        (Some(s), Some(f)) if f >= s => Some((f - s) as f64 / 1000.0),
        _ if last_end >= first_start => Some(last_end - first_start),
        _ => None,
    };

    // After validation: the analysis skips what it cannot read, the checks above refuse it.
    let analytics = analyze_memory(value, STORED_TOP_WORDS);
    Ok(Memory {
        id,
        created_ms,
        started_ms,
        finished_ms,
        duration_seconds,
        title,
        overview,
        emoji,
        category,
        language: obj.get("language").and_then(Value::as_str).map(str::to_string),
        source: obj.get("source").and_then(Value::as_str).map(str::to_string),
        discarded: opt_bool(obj, "discarded", "discarded")?.unwrap_or(false),
        segment_count: segments.len() as u32,
        word_count: analytics.words,
        action_items_total: items.len() as u32,
        action_items_open,
        transcript_text,
        open_items,
        analytics,
    })
}

/// One record of a legacy export: a bare Omi memory, or the old app's wrapper
/// `{memory, processed, analytics, webhook_received_at, …}`.
#[derive(Debug)]
pub struct LegacyRecord {
    /// The memory itself, as the bytes we store.
    pub memory: Value,
    pub uid: Option<String>,
    pub received_ms: Option<i64>,
}

pub fn unwrap_legacy(value: Value) -> Result<LegacyRecord, Error> {
    let Value::Object(mut obj) = value else {
        return Err(Error::bad_request("invalid_json", "each record must be a JSON object"));
    };
    let uid_of =
        |o: &Map<String, Value>| ["uid", "userId", "user_id"].iter().find_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_string));
    let is_wrapper = matches!(obj.get("memory"), Some(Value::Object(_))) && !obj.contains_key("id");
    if is_wrapper {
        let received_ms = match obj.get("webhook_received_at") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_time(v, "webhook_received_at")?),
        };
        let uid = uid_of(&obj);
        let memory = obj.remove("memory").unwrap_or(Value::Null);
        let uid = uid.or_else(|| memory.as_object().and_then(uid_of));
        Ok(LegacyRecord { memory, uid, received_ms })
    } else {
        let uid = uid_of(&obj);
        Ok(LegacyRecord { memory: Value::Object(obj), uid, received_ms: None })
    }
}

/// A real-time transcript batch: Omi's documented bare array of segments, or the backend's
/// `{"session_id", "segments"}`.
#[derive(Debug)]
pub struct TranscriptBatch {
    pub session_id: Option<String>,
    pub segments: Vec<Value>,
}

pub fn transcript_batch_from_value(value: Value) -> Result<TranscriptBatch, Error> {
    let (session_id, segments) = match value {
        Value::Array(a) => (None, a),
        Value::Object(mut o) => {
            let session_id = match o.remove("session_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(other) => return Err(wrong_type("session_id", "a string", &other)),
            };
            let segments = match o.remove("segments") {
                Some(Value::Array(a)) => a,
                None | Some(Value::Null) => return Err(Error::bad_request("missing_field", "segments: is required")),
                Some(other) => return Err(wrong_type("segments", "an array", &other)),
            };
            (session_id, segments)
        }
        other => {
            return Err(Error::bad_request(
                "invalid_json",
                format!("body must be an array of segments or an object, got {}", type_name(&other)),
            ))
        }
    };
    for (i, seg) in segments.iter().enumerate() {
        let field = format!("segments[{i}]");
        let obj = seg.as_object().ok_or_else(|| wrong_type(&field, "an object", seg))?;
        opt_str(obj, "text", &format!("{field}.text"))?;
    }
    if let Some(s) = &session_id {
        check_key_part(s).map_err(|why| Error::invalid_field("session_id", why))?;
    }
    Ok(TranscriptBatch { session_id, segments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOCS_EXAMPLE: &str = include_str!("../../tests/fixtures/omi/memory_created.docs.json");

    fn err_message(e: Error) -> String {
        e.body()["error"]["message"].as_str().unwrap().to_string()
    }

    #[test]
    fn the_documented_example_parses() {
        let m = memory_from_value(&parse_json(DOCS_EXAMPLE.as_bytes()).unwrap()).unwrap();
        assert_eq!(m.id, "memory_abc123");
        assert_eq!(m.created_ms, 1_721_692_785_910);
        assert_eq!(m.duration_seconds, Some(60.0));
        assert_eq!(m.title.as_deref(), Some("Project Timeline Discussion"));
        assert_eq!(m.category, "work");
        assert_eq!(m.segment_count, 1);
        assert_eq!(m.word_count, 5);
        assert_eq!((m.action_items_total, m.action_items_open), (1, 1));
        assert!(!m.discarded);
        assert_eq!(m.transcript_text, "John: Let's discuss the project timeline.\n");
    }

    #[test]
    fn the_backend_shape_parses_too() {
        let v = json!({
            "id": "0b7c2a1e-3f4d", "created_at": "2025-01-02T03:04:05Z",
            "transcript_segments": [{"text": "hi there", "speaker_id": 1, "speaker": "SPEAKER_01", "start": 2.5, "end": 4.0}],
            "structured": {"title": "T", "category": "Romance", "action_items": [{"description": "x", "completed": true, "due_at": null}]},
            "apps_results": [{"app_id": "a", "content": "c"}], "plugins_results": [], "source": "omi",
            "language": "en", "status": "completed", "photos": [{"base64": "AAAA"}], "discarded": null
        });
        let m = memory_from_value(&v).unwrap();
        assert_eq!(m.category, "other"); // `romance` is not Omi's spelling
        assert_eq!(m.duration_seconds, Some(1.5));
        assert_eq!((m.action_items_total, m.action_items_open), (1, 0));
        assert_eq!(m.source.as_deref(), Some("omi"));
        assert_eq!(m.transcript_text, "SPEAKER_01: hi there\n");
    }

    #[test]
    fn times_outside_1970_to_9999_are_refused_by_name() {
        // Found by schemathesis: `created_at: 1e19` was stored as i64::MAX, which D1 returns as
        // a float, and every listing that met the row failed.
        for (field, value) in [
            ("created_at", json!(1e19)),
            ("created_at", json!(253_402_300_800_000i64)),
            ("created_at", json!("10000-01-01T00:00:00")),
            ("created_at", json!("1969-12-31T23:59:59Z")),
            ("started_at", json!("-200000-01-01T00:00:00")),
            ("finished_at", json!(1e300)),
        ] {
            let mut v = json!({"id": "x", "created_at": "2025-01-01T00:00:00Z"});
            v[field] = value.clone();
            let e = memory_from_value(&v).unwrap_err();
            assert_eq!(e.status(), 400, "{field}={value}");
            assert!(err_message(e).starts_with(&format!("{field}:")), "{field}={value}");
        }
        assert_eq!(parse_time(&json!(MAX_TIME_MS), "t").unwrap(), MAX_TIME_MS);
        assert_eq!(parse_time(&json!("9999-12-31T23:59:59.999Z"), "t").unwrap(), MAX_TIME_MS);
        assert_eq!(parse_time(&json!(0), "t").unwrap(), 0);
    }

    #[test]
    fn required_fields_and_types_are_named_in_errors() {
        let cases = [
            (json!({"created_at": "2025-01-01T00:00:00Z"}), "id"),
            (json!({"id": 5, "created_at": "2025-01-01T00:00:00Z"}), "id"),
            (json!({"id": "a/b", "created_at": "2025-01-01T00:00:00Z"}), "id"),
            (json!({"id": "x"}), "created_at"),
            (json!({"id": "x", "created_at": "yesterday"}), "created_at"),
            (json!({"id": "x", "created_at": "2025-01-01T00:00:00Z", "transcript_segments": {}}), "transcript_segments"),
            (json!({"id": "x", "created_at": "2025-01-01T00:00:00Z", "transcript_segments": [1]}), "transcript_segments[0]"),
            (json!({"id": "x", "created_at": "2025-01-01T00:00:00Z", "structured": {"title": 3}}), "structured.title"),
            (json!({"id": "x", "created_at": "2025-01-01T00:00:00Z", "discarded": "no"}), "discarded"),
            (
                json!({"id": "x", "created_at": "2025-01-01T00:00:00Z", "structured": {"action_items": [{"completed": "yes"}]}}),
                "structured.action_items[0].completed",
            ),
        ];
        for (value, field) in cases {
            let e = memory_from_value(&value).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(err_message(e).starts_with(&format!("{field}:")), "{value} should name {field}");
        }
        assert_eq!(memory_from_value(&json!([1])).unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn times_accept_iso_with_or_without_zone_and_numbers() {
        assert_eq!(parse_time_str("2024-07-22T23:59:45.910559+00:00"), Some(1_721_692_785_910));
        assert_eq!(parse_time_str("2024-07-22T23:59:45.910559"), Some(1_721_692_785_910));
        assert_eq!(parse_time_str("2024-07-22 23:59:45"), Some(1_721_692_785_000));
        assert_eq!(parse_time(&json!(1_721_692_785), "t").unwrap(), 1_721_692_785_000);
        assert_eq!(parse_time(&json!(1_721_692_785_910i64), "t").unwrap(), 1_721_692_785_910);
        assert!(parse_time(&json!(-1), "t").is_err());
        assert_eq!(parse_time_str("not a date"), None);
    }

    #[test]
    fn bad_json_is_invalid_json() {
        for body in [&b""[..], b"{", b"\xff\xfe", b"nul"] {
            assert_eq!(parse_json(body).unwrap_err().code(), "invalid_json");
        }
    }

    #[test]
    fn legacy_wrappers_unwrap_and_bare_memories_pass_through() {
        let w = unwrap_legacy(json!({"memory": {"id": "m1", "created_at": "2025-01-01T00:00:00Z"}, "processed": {}, "webhook_received_at": "2025-01-01T00:00:01Z", "uid": "u1"})).unwrap();
        assert_eq!(w.memory["id"], "m1");
        assert_eq!(w.uid.as_deref(), Some("u1"));
        assert_eq!(w.received_ms, Some(1_735_689_601_000));
        let b = unwrap_legacy(json!({"id": "m2", "created_at": "2025-01-01T00:00:00Z", "uid": "u2"})).unwrap();
        assert_eq!(b.memory["id"], "m2");
        assert_eq!(b.uid.as_deref(), Some("u2"));
        assert!(unwrap_legacy(json!("x")).is_err());
    }

    #[test]
    fn transcript_batches_take_both_shapes() {
        let bare = transcript_batch_from_value(json!([{"text": "a"}, {"text": "b"}])).unwrap();
        assert_eq!((bare.session_id, bare.segments.len()), (None, 2));
        let obj = transcript_batch_from_value(json!({"session_id": "s1", "segments": [{"text": "a"}]})).unwrap();
        assert_eq!(obj.session_id.as_deref(), Some("s1"));
        assert!(transcript_batch_from_value(json!({"session_id": "s1"})).is_err());
        assert!(transcript_batch_from_value(json!({"session_id": "../x", "segments": []})).is_err());
        assert!(transcript_batch_from_value(json!([{"text": 1}])).is_err());
    }
}
