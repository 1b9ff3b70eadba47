//! How index rows look to clients: JSON log entries, CSV records, day series. Pure.

use serde::Serialize;
use serde_json::{json, Value};

use super::analytics::{analyze_memory, STORED_TOP_WORDS};
use super::legacy::sanitize_uid;
use super::repo::{DayRow, LogRow};

pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d").to_string()
}

/// A log entry as the API shows it (camelCase, ISO times). Serialised straight from the row:
/// no intermediate JSON tree on the hot path.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry<'a> {
    pub user_id: &'a str,
    pub memory_id: &'a str,
    pub version: i64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub title: Option<&'a str>,
    pub overview: Option<&'a str>,
    pub emoji: Option<&'a str>,
    pub category: &'a str,
    pub language: Option<&'a str>,
    pub source: Option<&'a str>,
    pub discarded: bool,
    pub segment_count: i64,
    pub word_count: i64,
    pub action_items: ActionItems,
    pub r2_key: &'a str,
    pub sha256: &'a str,
    pub size_bytes: i64,
    pub received_at: String,
    /// The stored memory itself (`full=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Value>,
}

#[derive(Serialize)]
pub struct ActionItems {
    pub total: i64,
    pub open: i64,
}

pub fn log_entry(r: &LogRow) -> LogEntry<'_> {
    LogEntry {
        user_id: &r.user_id,
        memory_id: &r.memory_id,
        version: r.version,
        created_at: iso(r.created_at),
        started_at: r.started_at.map(iso),
        finished_at: r.finished_at.map(iso),
        duration_seconds: r.duration_seconds,
        title: r.title.as_deref(),
        overview: r.overview.as_deref(),
        emoji: r.emoji.as_deref(),
        category: &r.category,
        language: r.language.as_deref(),
        source: r.source.as_deref(),
        discarded: r.discarded != 0,
        segment_count: r.segment_count,
        word_count: r.word_count,
        action_items: ActionItems { total: r.action_items_total, open: r.action_items_open },
        r2_key: &r.r2_key,
        sha256: &r.sha256,
        size_bytes: r.size_bytes,
        received_at: iso(r.received_at),
        memory: None,
    }
}

/// A log in the old app's wrapper shape (`GET /api/omi/logs?format=legacy`), as its dashboard
/// read them: `{memory, processed: {...memory, uid, word_frequency, speaker_stats}, analytics,
/// webhook_received_at, processing_time_ms}`, where `uid` is the mentor's id as the old app
/// sanitised it. The figures are r2d1's (`omi::analytics`), under the old names.
pub fn legacy_log(r: &LogRow, memory: Value) -> Value {
    let figures = analyze_memory(&memory, STORED_TOP_WORDS);
    let word_frequency: serde_json::Map<String, Value> = figures.top_words.iter().map(|w| (w.word.clone(), json!(w.count))).collect();
    let speaker_stats: serde_json::Map<String, Value> = figures
        .speakers
        .iter()
        .map(|s| {
            let stats =
                json!({ "segments": s.segments, "words": s.words, "talk_seconds": s.talk_seconds, "name": s.name, "is_user": s.is_user });
            (s.speaker.clone(), stats)
        })
        .collect();
    let mut processed = match &memory {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    processed.insert("uid".into(), json!(sanitize_uid(&r.user_id)));
    processed.insert("word_frequency".into(), Value::Object(word_frequency));
    processed.insert("speaker_stats".into(), Value::Object(speaker_stats));
    json!({
        "memory": memory,
        "processed": processed,
        "analytics": {
            "title": r.title, "category": r.category, "emoji": r.emoji, "language": r.language,
            "segment_count": r.segment_count, "word_count": r.word_count, "duration_seconds": r.duration_seconds,
            "action_item_count": r.action_items_total, "action_items_completed": r.action_items_total - r.action_items_open,
            "speakers": figures.speakers.len(), "talk_seconds": figures.talk_seconds, "mentor_talk_share": figures.mentor_talk_share,
            "discarded": r.discarded != 0,
        },
        "webhook_received_at": iso(r.received_at),
        "processing_time_ms": 0,
    })
}

pub const CSV_HEADER: &[&str] = &[
    "user_id",
    "memory_id",
    "version",
    "created_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "title",
    "overview",
    "emoji",
    "category",
    "language",
    "source",
    "discarded",
    "segment_count",
    "word_count",
    "action_items_total",
    "action_items_open",
    "r2_key",
    "sha256",
    "size_bytes",
    "received_at",
];

pub fn csv_record(r: &LogRow) -> Vec<String> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    vec![
        r.user_id.clone(),
        r.memory_id.clone(),
        r.version.to_string(),
        iso(r.created_at),
        opt(r.started_at.map(iso)),
        opt(r.finished_at.map(iso)),
        opt(r.duration_seconds.map(|d| d.to_string())),
        opt(r.title.clone()),
        opt(r.overview.clone()),
        opt(r.emoji.clone()),
        r.category.clone(),
        opt(r.language.clone()),
        opt(r.source.clone()),
        (r.discarded != 0).to_string(),
        r.segment_count.to_string(),
        r.word_count.to_string(),
        r.action_items_total.to_string(),
        r.action_items_open.to_string(),
        r.r2_key.clone(),
        r.sha256.clone(),
        r.size_bytes.to_string(),
        iso(r.received_at),
    ]
}

/// CSV text for `rows` (with the header line first when `header`), quoted by the `csv` crate.
pub fn csv_chunk(rows: &[LogRow], header: bool) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    if header {
        let _ = w.write_record(CSV_HEADER);
    }
    for r in rows {
        let _ = w.write_record(csv_record(r));
    }
    w.into_inner().unwrap_or_default()
}

/// One entry per UTC day in `[from_ms, to_ms)`, zeros where `rows` (from `OmiRepo::daily`)
/// have none.
/// The caller bounds the range (`query::daily_range`); the loop itself cannot overflow.
pub fn day_series(rows: &[DayRow], from_ms: i64, to_ms: i64) -> Vec<Value> {
    const DAY: i64 = 86_400_000;
    let mut out = Vec::new();
    let mut i = 0;
    // Days d with d * DAY < to_ms, without multiplying d (which overflowed for huge bounds).
    let last = to_ms.saturating_sub(1).div_euclid(DAY);
    for d in from_ms.div_euclid(DAY)..=last {
        let mut entry = json!({ "date": day(d.saturating_mul(DAY)), "memories": 0, "minutes": 0.0, "mentors": 0 });
        while i < rows.len() && rows[i].day < d {
            i += 1;
        }
        if i < rows.len() && rows[i].day == d {
            entry["memories"] = json!(rows[i].memories);
            entry["minutes"] = json!((rows[i].minutes.unwrap_or(0.0) * 10.0).round() / 10.0);
            entry["mentors"] = json!(rows[i].mentors);
        }
        out.push(entry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> LogRow {
        LogRow {
            seq: 1,
            user_id: "u".into(),
            memory_id: "m".into(),
            version: 1,
            created_at: 0,
            started_at: None,
            finished_at: None,
            duration_seconds: Some(1.5),
            title: Some("Hello, \"world\"\nnext".into()),
            overview: None,
            emoji: None,
            category: "work".into(),
            language: None,
            source: None,
            discarded: 0,
            segment_count: 1,
            word_count: 2,
            action_items_total: 0,
            action_items_open: 0,
            r2_key: "k".into(),
            sha256: "s".into(),
            size_bytes: 3,
            received_at: 0,
        }
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let text = String::from_utf8(csv_chunk(&[row()], true)).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rec = reader.records().next().unwrap().unwrap();
        assert_eq!(&rec[7], "Hello, \"world\"\nnext");
        assert_eq!(reader.headers().unwrap().len(), CSV_HEADER.len());
    }

    #[test]
    fn day_series_fills_gaps() {
        let rows = vec![DayRow { day: 1, memories: 3, minutes: Some(12.345), mentors: 2 }];
        let s = day_series(&rows, 0, 3 * 86_400_000);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0]["memories"], 0);
        assert_eq!(s[1]["date"], "1970-01-02");
        assert_eq!(s[1]["memories"], 3);
        assert_eq!(s[1]["minutes"], 12.3);
        // Partial days at either end count; an empty range is empty.
        assert_eq!(day_series(&[], 1, 86_400_001).len(), 2);
        assert!(day_series(&[], 5, 0).is_empty());
        assert_eq!(day_series(&[], i64::MIN, i64::MIN + 1).len(), 1);
        assert!(day_series(&[], i64::MAX, i64::MIN).is_empty());
    }
}
