//! A mentor's complete data as one archive (the GDPR access request): every stored version
//! of every memory, every real-time transcript batch and every day summary, byte for byte as
//! Omi sent them, plus a manifest. Streamed through `files::stream`'s tar writer, object by
//! object, so its size is not bounded by the worker's memory.
//!
//! Each object is one R2 read, and a request may only make so many subrequests (50 on the
//! Free plan: `SUBREQUEST_BUDGET`). A mentor whose data needs more is served in parts: each
//! part is a complete archive of the next objects in a fixed order, and names the next part
//! in `X-R2D1-Next-Cursor`. With a Paid plan's budget one part usually holds everything.
//!
//! Layout, under `r2d1-{uid}/`:
//! - `manifest.json` (first part): the uid, its directory entry, counts, what each file is;
//! - `memories/{memoryId}/v{version}.json`;
//! - `transcripts/{sessionId}/{receivedMs}-{sha16}.json`;
//! - `day-summaries/{date}.json`.
//!
//! Pure: paths, the cursor and the budget.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

/// The order objects are archived in, and their kinds.
pub const MEMORY: i64 = 1;
pub const TRANSCRIPT: i64 = 2;
pub const DAY_SUMMARY: i64 = 3;

/// D1 calls a part makes besides its R2 reads (the listing, the manifest's facts).
pub const RESERVED_SUBREQUESTS: u32 = 4;
/// However large the budget, a part reads at most this many objects: a response should end
/// in minutes, not hours.
pub const MAX_OBJECTS_PER_PART: u32 = 2000;

/// One object of the mentor, as the listing query returns it. `name` and `n` mean, by kind:
/// memory id and version; session id and received ms; date and nothing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ArchiveRow {
    pub kind: i64,
    pub sort_key: String,
    pub r2_key: String,
    pub sha256: String,
    pub name: String,
    pub n: Option<i64>,
}

/// The file name of a row inside the archive's top directory.
pub fn entry_path(row: &ArchiveRow) -> String {
    let n = row.n.unwrap_or(0);
    match row.kind {
        MEMORY => format!("memories/{}/v{n}.json", row.name),
        TRANSCRIPT => format!("transcripts/{}/{n}-{}.json", row.name, &row.sha256[..row.sha256.len().min(16)]),
        _ => format!("day-summaries/{}.json", row.name),
    }
}

/// Where a part starts: after `(kind, sort_key)`; `part` numbers the parts from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveCursor {
    pub part: u32,
    pub kind: i64,
    pub sort_key: String,
}

impl ArchiveCursor {
    pub fn first() -> ArchiveCursor {
        ArchiveCursor { part: 1, kind: 0, sort_key: String::new() }
    }

    pub fn after(part: u32, row: &ArchiveRow) -> ArchiveCursor {
        ArchiveCursor { part, kind: row.kind, sort_key: row.sort_key.clone() }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("a1:{}:{}:{}", self.part, self.kind, self.sort_key))
    }

    /// Strict: anything this API did not hand out is `None`.
    pub fn decode(s: &str) -> Option<ArchiveCursor> {
        if s.is_empty() || s.len() > 1024 {
            return None;
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let mut parts = text.splitn(4, ':');
        if parts.next()? != "a1" {
            return None;
        }
        let part: u32 = parts.next()?.parse().ok()?;
        let kind: i64 = parts.next()?.parse().ok()?;
        let sort_key = parts.next()?.to_string();
        ((2..=1_000_000).contains(&part) && (MEMORY..=DAY_SUMMARY).contains(&kind)).then_some(ArchiveCursor { part, kind, sort_key })
    }
}

/// How many objects one part reads under a budget of `budget` subrequests.
pub fn objects_per_part(budget: u32) -> u32 {
    budget.saturating_sub(RESERVED_SUBREQUESTS).clamp(1, MAX_OBJECTS_PER_PART)
}

/// `r2d1-{uid}`, or `r2d1-{uid}-part{n}` after the first part.
pub fn archive_name(uid: &str, part: u32) -> String {
    if part <= 1 {
        format!("r2d1-{uid}")
    } else {
        format!("r2d1-{uid}-part{part}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: i64, name: &str, n: Option<i64>) -> ArchiveRow {
        ArchiveRow {
            kind,
            sort_key: format!("{name}/{}", n.unwrap_or(0)),
            r2_key: "k".into(),
            sha256: "0123456789abcdef0123".into(),
            name: name.into(),
            n,
        }
    }

    #[test]
    fn paths_by_kind() {
        assert_eq!(entry_path(&row(MEMORY, "mem-1", Some(2))), "memories/mem-1/v2.json");
        assert_eq!(entry_path(&row(TRANSCRIPT, "s1", Some(1736942400000))), "transcripts/s1/1736942400000-0123456789abcdef.json");
        assert_eq!(entry_path(&row(DAY_SUMMARY, "2025-01-15", None)), "day-summaries/2025-01-15.json");
    }

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        let c = ArchiveCursor::after(2, &row(TRANSCRIPT, "s:1", Some(5)));
        assert_eq!(ArchiveCursor::decode(&c.encode()), Some(c));
        for bad in ["", "x", &URL_SAFE_NO_PAD.encode("a1:1:1:x"), &URL_SAFE_NO_PAD.encode("a1:2:9:x"), &URL_SAFE_NO_PAD.encode("v1:2:1:x")]
        {
            assert_eq!(ArchiveCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_budget_leaves_room_for_d1() {
        assert_eq!(objects_per_part(50), 46);
        assert_eq!(objects_per_part(2), 1);
        assert_eq!(objects_per_part(10_000), MAX_OBJECTS_PER_PART);
        assert_eq!(archive_name("u1", 1), "r2d1-u1");
        assert_eq!(archive_name("u1", 3), "r2d1-u1-part3");
    }
}
