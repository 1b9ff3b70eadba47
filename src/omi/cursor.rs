//! Keyset cursors for newest-first listings.
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
}
