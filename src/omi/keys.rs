//! Where Omi data lives in R2. The layout is the old Next.js app's, so tools that read the
//! bucket keep working:
//!
//! - `mobil3-mentorships/by-user/{uid}/{yyyy}/{mm}/{memoryId}-{ts}.json` — the memory, raw;
//! - `mobil3-mentorships/all/{yyyy-mm-dd}/{uid}-{memoryId}-{ts}.json` — the daily copy;
//!
//! where `ts` is the received time in milliseconds since the epoch (UTC).

use chrono::{DateTime, Utc};

pub const ROOT: &str = "mobil3-mentorships";
pub const BY_USER_PREFIX: &str = "mobil3-mentorships/by-user/";
pub const ALL_PREFIX: &str = "mobil3-mentorships/all/";
pub const TRANSCRIPTS_PREFIX: &str = "mobil3-mentorships/transcripts/";
pub const DAY_SUMMARIES_PREFIX: &str = "mobil3-mentorships/day-summaries/";

/// Why a uid or memory id cannot become part of a key.
pub fn check_key_part(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > 128 {
        return Err("must be 1-128 characters");
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err("may contain only A-Z, a-z, 0-9, '.', '_' and '-'");
    }
    // Dots alone would read as path steps to any tool that maps keys onto a file system.
    if value.bytes().all(|b| b == b'.') {
        return Err("must not be only dots");
    }
    Ok(())
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `mobil3-mentorships/by-user/{uid}/{yyyy}/{mm}/{memoryId}-{ts}.json`
pub fn memory_key(uid: &str, memory_id: &str, received_ms: i64) -> String {
    let at = utc(received_ms);
    format!("{BY_USER_PREFIX}{uid}/{}/{memory_id}-{received_ms}.json", at.format("%Y/%m"))
}

/// `mobil3-mentorships/all/{yyyy-mm-dd}/{uid}-{memoryId}-{ts}.json`
pub fn daily_key(uid: &str, memory_id: &str, received_ms: i64) -> String {
    let at = utc(received_ms);
    format!("{ALL_PREFIX}{}/{uid}-{memory_id}-{received_ms}.json", at.format("%Y-%m-%d"))
}

/// Everything stored for one mentor under `by-user/`.
pub fn user_prefix(uid: &str) -> String {
    format!("{BY_USER_PREFIX}{uid}/")
}

/// A real-time transcript batch: `transcripts/{uid}/{session}/{ts}-{sha8}.json`.
pub fn transcript_key(uid: &str, session_id: &str, received_ms: i64, sha256_hex: &str) -> String {
    format!("{ROOT}/transcripts/{uid}/{session_id}/{received_ms}-{}.json", &sha256_hex[..sha256_hex.len().min(16)])
}

pub fn transcript_user_prefix(uid: &str) -> String {
    format!("{ROOT}/transcripts/{uid}/")
}

/// A day summary: `day-summaries/{uid}/{yyyy-mm-dd}/{ts}-{sha16}.json`. Each delivery gets
/// its own key (create-only) and the row points at the newest; a replaced one is condemned for
/// the GC. (Summaries stored before this layout sit at `day-summaries/{uid}/{yyyy-mm-dd}.json`
/// and are read, reconciled and deleted like the others.)
pub fn day_summary_key(uid: &str, date: &str, received_ms: i64, sha256_hex: &str) -> String {
    format!("{ROOT}/day-summaries/{uid}/{date}/{received_ms}-{}.json", &sha256_hex[..sha256_hex.len().min(16)])
}

/// What a transcript key says: `(uid, session, received_ms)`.
pub fn parse_transcript_key(key: &str) -> Option<(String, String, i64)> {
    let rest = key.strip_prefix(ROOT)?.strip_prefix("/transcripts/")?;
    let mut parts = rest.split('/');
    let (uid, session, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (ts, _) = file.strip_suffix(".json")?.split_once('-')?;
    check_key_part(uid).ok()?;
    check_key_part(session).ok()?;
    Some((uid.to_string(), session.to_string(), ts.parse().ok()?))
}

/// What a day-summary key says: `(uid, date, received_ms)`; the older layout has no time.
pub fn parse_day_summary_key(key: &str) -> Option<(String, String, Option<i64>)> {
    let rest = key.strip_prefix(ROOT)?.strip_prefix("/day-summaries/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (uid, date, ts) = match parts.as_slice() {
        [uid, file] => (*uid, file.strip_suffix(".json")?, None),
        [uid, date, file] => (*uid, *date, Some(file.strip_suffix(".json")?.split_once('-')?.0.parse::<i64>().ok()?)),
        _ => return None,
    };
    check_key_part(uid).ok()?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some((uid.to_string(), date.to_string(), ts))
}

pub fn day_summary_user_prefix(uid: &str) -> String {
    format!("{ROOT}/day-summaries/{uid}/")
}

/// Cron rollups.
pub fn daily_rollup_key(date: &str) -> String {
    format!("{ROOT}/analytics/daily-summaries/{date}.json")
}

pub fn user_stats_key(uid: &str) -> String {
    format!("{ROOT}/analytics/user-stats/{uid}.json")
}

/// What a `by-user/` key says about its object: `(uid, memory_id, received_ms)`.
/// Used to rebuild the index from the bucket; `None` for keys of any other shape.
pub fn parse_memory_key(key: &str) -> Option<(String, String, i64)> {
    let rest = key.strip_prefix(BY_USER_PREFIX)?;
    let mut parts = rest.split('/');
    let (uid, yyyy, mm, file) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || yyyy.len() != 4 || mm.len() != 2 {
        return None;
    }
    let stem = file.strip_suffix(".json")?;
    // The memory id may itself contain '-': the timestamp is what follows the last one.
    let (memory_id, ts) = stem.rsplit_once('-')?;
    let ts: i64 = ts.parse().ok()?;
    check_key_part(uid).ok()?;
    check_key_part(memory_id).ok()?;
    Some((uid.to_string(), memory_id.to_string(), ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: i64 = 1_721_692_785_910; // 2024-07-22T23:59:45.910Z

    #[test]
    fn keys_follow_the_old_apps_layout() {
        assert_eq!(memory_key("u1", "m-1", TS), "mobil3-mentorships/by-user/u1/2024/07/m-1-1721692785910.json");
        assert_eq!(daily_key("u1", "m-1", TS), "mobil3-mentorships/all/2024-07-22/u1-m-1-1721692785910.json");
    }

    #[test]
    fn memory_keys_parse_back_even_with_dashes_in_the_id() {
        let id = "0b7c2a1e-3f4d-4c5b-9a8e-1d2c3b4a5f6e";
        let key = memory_key("abcDEF123", id, TS);
        assert_eq!(parse_memory_key(&key), Some(("abcDEF123".into(), id.into(), TS)));
        assert_eq!(parse_memory_key("mobil3-mentorships/all/2024-07-22/u-m-1.json"), None);
        assert_eq!(parse_memory_key("mobil3-mentorships/by-user/u/2024/07/nots.json"), None);
        assert_eq!(parse_memory_key("mobil3-mentorships/by-user/u/2024/07/x/m-1.json"), None);
    }

    #[test]
    fn transcript_and_day_summary_keys_parse_back() {
        let sha = "ab".repeat(32);
        let t = transcript_key("u1", "s-1", TS, &sha);
        assert_eq!(parse_transcript_key(&t), Some(("u1".into(), "s-1".into(), TS)));
        let d = day_summary_key("u1", "2024-07-22", TS, &sha);
        assert_eq!(d, format!("mobil3-mentorships/day-summaries/u1/2024-07-22/{TS}-{}.json", &sha[..16]));
        assert_eq!(parse_day_summary_key(&d), Some(("u1".into(), "2024-07-22".into(), Some(TS))));
        assert_eq!(
            parse_day_summary_key("mobil3-mentorships/day-summaries/u1/2024-07-22.json"),
            Some(("u1".into(), "2024-07-22".into(), None))
        );
        assert_eq!(parse_day_summary_key("mobil3-mentorships/day-summaries/u1/notadate.json"), None);
        assert_eq!(parse_transcript_key("mobil3-mentorships/transcripts/u1/x.json"), None);
    }

    #[test]
    fn key_parts_are_restricted() {
        assert!(check_key_part("Firebase_UID-123.x").is_ok());
        assert!(check_key_part(&"a".repeat(128)).is_ok());
        for bad in ["", "..", ".", "a/b", "a b", "ü", "a%2e", "x\0", &"a".repeat(129)] {
            assert!(check_key_part(bad).is_err(), "{bad:?} accepted");
        }
    }
}
