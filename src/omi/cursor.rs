//! Keyset cursors for newest-first listings (and [`RankCursor`], for `sort=relevance`).
//!
//! A cursor is the position of the last row a page returned: `(created_ms, seq)`, the sort key
//! of the index. The next page asks for rows strictly after it, so rows inserted meanwhile
//! (newer ones go before the cursor) never shift the pages that follow: no gaps, no repeats.
//! It is opaque to clients (base64url of `v1:{created_ms}:{seq}`) and parsed strictly, so a
//! forged cursor is a 400, never a query with odd values.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_ms: i64,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}:{}", self.created_ms, self.seq))
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        if s.is_empty() || s.len() > 64 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(s).ok()?;
        let text = std::str::from_utf8(&raw).ok()?;
        let mut parts = text.split(':');
        if parts.next()? != "v1" {
            return None;
        }
        let created_ms: i64 = parts.next()?.parse().ok()?;
        let seq: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || created_ms < 0 || seq < 0 {
            return None;
        }
        Some(Cursor { created_ms, seq })
    }
}

/// How many matches `sort=relevance` ranks: the newest this many (see [`RankCursor`]).
pub const RELEVANCE_WINDOW: u32 = 500;

/// The position in a `sort=relevance` listing: how many ranked rows earlier pages returned,
/// and the index's highest `seq` when the first page was answered (the *pin*).
///
/// Relevance order has no keyset that survives writes: bm25 scores depend on the whole index
/// (term frequencies, average lengths), so every new memory moves every score a little and a
/// `(score, seq)` cursor would skip or repeat rows wholesale. An offset moves only neighbours
/// that swap at the page edge, and it is bounded: ranking covers at most
/// [`RELEVANCE_WINDOW`] matches, so the offset is below it. The pin keeps memories that arrive
/// after the first page out of the later pages' candidates (they would shift every offset);
/// `seq` only grows (AUTOINCREMENT) and a new version keeps its memory's `seq`.
/// Opaque to clients (base64url of `r1:{pin}:{offset}`), parsed as strictly as [`Cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankCursor {
    pub pin: i64,
    pub offset: u32,
}

impl RankCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("r1:{}:{}", self.pin, self.offset))
    }

    pub fn decode(s: &str) -> Option<RankCursor> {
        if s.is_empty() || s.len() > 64 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(s).ok()?;
        let text = std::str::from_utf8(&raw).ok()?;
        let mut parts = text.split(':');
        if parts.next()? != "r1" {
            return None;
        }
        let pin: i64 = parts.next()?.parse().ok()?;
        let offset: u32 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || pin < 0 || offset == 0 || offset >= RELEVANCE_WINDOW {
            return None;
        }
        Some(RankCursor { pin, offset })
    }

    /// The cursor after a page of `limit` rows that started at `self` (the first page: `None`),
    /// if more ranked rows follow (`more`: the page fetched one row beyond its limit).
    pub fn next(from: Option<RankCursor>, pin: i64, limit: u32, more: bool) -> Option<RankCursor> {
        let offset = from.map_or(0, |c| c.offset).checked_add(limit)?;
        (more && offset < RELEVANCE_WINDOW).then_some(RankCursor { pin: from.map_or(pin, |c| c.pin), offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let c = Cursor { created_ms: 1_721_692_785_910, seq: 42 };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }

    #[test]
    fn forged_cursors_are_refused() {
        for bad in [
            "",
            "!!!",
            "v1:1:2",
            &URL_SAFE_NO_PAD.encode("v2:1:2"),
            &URL_SAFE_NO_PAD.encode("v1:1:2:3"),
            &URL_SAFE_NO_PAD.encode("v1:-1:2"),
            &URL_SAFE_NO_PAD.encode("v1:1:2' OR 1=1"),
            &"A".repeat(65),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rank_cursors_round_trip_and_stay_inside_the_window() {
        let c = RankCursor { pin: 123_456, offset: 40 };
        assert_eq!(RankCursor::decode(&c.encode()), Some(c));
        // The two kinds never pass for each other.
        assert_eq!(Cursor::decode(&c.encode()), None);
        assert_eq!(RankCursor::decode(&Cursor { created_ms: 1, seq: 2 }.encode()), None);
        for bad in [
            "",
            "!!!",
            "r1:1:20",
            &URL_SAFE_NO_PAD.encode("r2:1:20"),
            &URL_SAFE_NO_PAD.encode("r1:1:0"),
            &URL_SAFE_NO_PAD.encode("r1:1:-20"),
            &URL_SAFE_NO_PAD.encode("r1:-1:20"),
            &URL_SAFE_NO_PAD.encode(format!("r1:1:{RELEVANCE_WINDOW}")),
            &URL_SAFE_NO_PAD.encode("r1:1:99999999999"),
            &URL_SAFE_NO_PAD.encode("r1:1:20:3"),
            &URL_SAFE_NO_PAD.encode("r1:1:20 OFFSET 0"),
            &"A".repeat(65),
        ] {
            assert_eq!(RankCursor::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_next_rank_cursor_keeps_the_first_pages_pin_and_ends_at_the_window() {
        let first = RankCursor::next(None, 77, 20, true).unwrap();
        assert_eq!(first, RankCursor { pin: 77, offset: 20 });
        // Later pages keep the first page's pin, whatever the index holds now.
        assert_eq!(RankCursor::next(Some(first), 90, 20, true), Some(RankCursor { pin: 77, offset: 40 }));
        assert_eq!(RankCursor::next(Some(first), 77, 20, false), None);
        assert_eq!(RankCursor::next(Some(RankCursor { pin: 1, offset: RELEVANCE_WINDOW - 20 }), 1, 20, true), None);
        assert_eq!(
            RankCursor::next(None, 1, 100, true).map(|c| RankCursor::decode(&c.encode())),
            Some(Some(RankCursor { pin: 1, offset: 100 }))
        );
    }
}
