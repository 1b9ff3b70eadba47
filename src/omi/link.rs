//! Real-time transcripts and the memories they became, and when a session happened.
//!
//! Omi posts real-time transcript batches every few seconds while a conversation goes on, and
//! one memory when it ends. Nothing in either names the other, so they are linked by uid and
//! time: a batch belongs to the memory of the same uid whose span (below) contains the moment
//! the batch was received, give or take [`LINK_SLACK_MS`]. The link is made from whichever
//! side arrives second, inside that side's own D1 batch (the memory's upsert, or the
//! transcript batch's insert), so it costs no extra round trip; a batch already linked is
//! never moved.
//!
//! A session that Omi files under the uid (no `session_id`) grows forever; the link is what
//! cuts it into conversations.
//!
//! Pure: no `worker` calls. `migrations/0010_programme.sql` applies the same rules in SQL to
//! the rows that were there before.

use serde_json::Value;

use super::payload::Memory;

/// Batches arrive while people talk and the memory a little after the end: two minutes
/// either side covers Omi's batching and processing delays without reaching into the next
/// conversation of a mentor who meets mentees back to back (a batch inside a span always wins
/// over one in the slack).
pub const LINK_SLACK_MS: i64 = 120_000;

const DAY_MS: i64 = 86_400_000;

/// `(start, end)` of a memory in ms: `finished_at` (else `created_at`) is the end; `started_at`
/// (else the end minus the duration) the start.
/// Saturating throughout: a transcript's `end` is whatever the sender wrote (`1e300` seconds
/// is a valid JSON number), and a span must not wrap around.
pub fn memory_span(memory: &Memory) -> (i64, i64) {
    let end = memory.finished_ms.unwrap_or(memory.created_ms);
    // `as` saturates a float too large for i64.
    let duration_ms = memory.duration_seconds.filter(|d| d.is_finite() && *d > 0.0).map(|d| (d * 1000.0) as i64).unwrap_or(0);
    let start = memory.started_ms.unwrap_or(end.saturating_sub(duration_ms));
    (start, end)
}

/// The receive times a batch of this memory may have: its span widened by [`LINK_SLACK_MS`].
pub fn link_window(memory: &Memory) -> (i64, i64) {
    let (start, end) = memory_span(memory);
    (start.saturating_sub(LINK_SLACK_MS), end.max(start).saturating_add(LINK_SLACK_MS))
}

/// The day number (days since 1970-01-01, UTC) of the Monday that starts the ISO week of `ms`;
/// 1970-01-01 was a Thursday.
pub fn week_monday(ms: i64) -> i64 {
    let day = ms.div_euclid(DAY_MS);
    day - (day + 3).rem_euclid(7)
}

/// The week a memory counts in (see `analytics::mentor`): that of `started_at`, else of
/// `created_at`.
pub fn memory_week(memory: &Memory) -> i64 {
    week_monday(memory.started_ms.unwrap_or(memory.created_ms))
}

/// The searchable text of a batch's segments: `speaker: text` lines, like a memory's
/// transcript in its search entry.
pub fn batch_text(segments: &[Value]) -> String {
    let mut out = String::new();
    for s in segments.iter().filter_map(Value::as_object) {
        let Some(text) = s.get("text").and_then(Value::as_str).filter(|t| !t.trim().is_empty()) else { continue };
        let who = s.get("speaker_name").and_then(Value::as_str).or_else(|| s.get("speaker").and_then(Value::as_str)).unwrap_or("SPEAKER");
        out.push_str(who);
        out.push_str(": ");
        out.push_str(text);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omi::payload::{memory_from_value, parse_time_str};
    use serde_json::json;

    fn ms(iso: &str) -> i64 {
        parse_time_str(iso).unwrap()
    }

    #[test]
    fn spans_from_start_and_finish_or_from_the_duration() {
        let m = memory_from_value(&json!({"id": "a", "created_at": "2025-01-13T10:46:00Z",
            "started_at": "2025-01-13T10:00:00Z", "finished_at": "2025-01-13T10:45:00Z"}))
        .unwrap();
        assert_eq!(memory_span(&m), (ms("2025-01-13T10:00:00Z"), ms("2025-01-13T10:45:00Z")));
        assert_eq!(link_window(&m), (ms("2025-01-13T09:58:00Z"), ms("2025-01-13T10:47:00Z")));
        // No start or finish: the transcript's 540 s end at created_at.
        let m = memory_from_value(&json!({"id": "b", "created_at": "2025-01-21T09:00:00Z",
            "transcript_segments": [{"text": "a", "start": 5, "end": 65}, {"text": "b", "start": 365, "end": 545}]}))
        .unwrap();
        assert_eq!(memory_span(&m), (ms("2025-01-21T08:51:00Z"), ms("2025-01-21T09:00:00Z")));
        // A transcript that claims to last 1e300 seconds starts as early as an i64 can say.
        let m = memory_from_value(&json!({"id": "d", "created_at": "2025-01-21T09:00:00Z",
            "transcript_segments": [{"text": "a", "start": 0, "end": 1e300}]}))
        .unwrap();
        let (start, end) = memory_span(&m);
        assert!(start < -9_000_000_000_000_000_000 && end == ms("2025-01-21T09:00:00Z"));
        assert_eq!(link_window(&m), (start - LINK_SLACK_MS, ms("2025-01-21T09:02:00Z")));
        // Nothing at all: a moment.
        let m = memory_from_value(&json!({"id": "c", "created_at": "2025-01-21T09:00:00Z"})).unwrap();
        assert_eq!(memory_span(&m), (ms("2025-01-21T09:00:00Z"), ms("2025-01-21T09:00:00Z")));
    }

    #[test]
    fn weeks_start_on_monday() {
        // 1970-01-01 (Thursday) is in the week of Monday 1969-12-29, day -3.
        assert_eq!(week_monday(0), -3);
        assert_eq!(week_monday(ms("2025-01-13T00:00:00Z")), ms("2025-01-13T00:00:00Z") / DAY_MS);
        assert_eq!(week_monday(ms("2025-01-19T23:59:59Z")), ms("2025-01-13T00:00:00Z") / DAY_MS);
        assert_eq!(week_monday(ms("2025-01-20T00:00:00Z")), ms("2025-01-20T00:00:00Z") / DAY_MS);
        // The same as the SQL of the migration for times after 1970.
        for t in [ms("2024-12-30T05:00:00Z"), ms("2025-03-12T18:00:00Z"), 1] {
            let d = t / DAY_MS;
            assert_eq!(week_monday(t), d - ((d + 3) % 7));
        }
    }

    #[test]
    fn batch_text_names_speakers() {
        let segs = [
            json!({"text": "Hola", "speaker": "SPEAKER_00"}),
            json!({"text": "  "}),
            json!({"text": "Qué tal", "speaker": "SPEAKER_01", "speaker_name": "Ana"}),
            json!("x"),
            json!({"text": "sin nombre"}),
        ];
        assert_eq!(batch_text(&segs), "SPEAKER_00: Hola\nAna: Qué tal\nSPEAKER: sin nombre\n");
    }
}
