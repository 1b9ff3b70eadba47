//! "Changes since revision N" (issue 13): what a builder must fetch or remove to catch up with
//! an app's current files, from a per-path change log, one bounded page at a time.
//!
//! The log is `app_file_changes(app_id, revision, path, action, sha256)`: every change to the
//! current files writes, in the same D1 batch that moves `apps.revision`, one row per path it
//! touched (`created`: the path did not exist before; `updated`; `deleted`, with no sha256).
//! A revision's rows therefore appear all at once or not at all.
//!
//! A page is read as `… WHERE app_id = ? AND (revision, path) > cursor ORDER BY revision,
//! path LIMIT limit + 1` and folded per path into the net change since the cursor: a path
//! created and deleted again in between is not mentioned; one updated back and forth is
//! reported `changed` (the builder compares hashes). The cursor after a page is opaque text
//! (`{epoch}:{revision}` or `{epoch}:{revision}:{path, base64url}` inside a revision too large
//! for one page); a plain revision number is accepted as the first `since`.
//!
//! A cursor from before the log was pruned, from the future, or from an app since deleted
//! and recreated (the epoch is the app's `created_at`) gets [`Outcome::Resync`]: the builder
//! fetches the full export (whose header carries the revision to continue from).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use super::manifest::FileState;
use crate::error::Error;

/// Rows per page: more than a `files:batch` can write (500) so a typical revision fits one
/// page, few enough for one D1 read.
pub const PAGE_LIMIT: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Created,
    Updated,
    Deleted,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Created => "created",
            ChangeAction::Updated => "updated",
            ChangeAction::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(ChangeAction::Created),
            "updated" => Some(ChangeAction::Updated),
            "deleted" => Some(ChangeAction::Deleted),
            _ => None,
        }
    }
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEntry {
    pub revision: i64,
    pub path: String,
    pub action: ChangeAction,
    /// The content after the change; `None` for a deletion.
    pub sha256: Option<String>,
}

/// The log rows for a change of the current files from `before` to `after` (any write: a
/// put, a batch, a restore), all at `revision`, sorted by path. Unchanged paths get no row.
pub fn log_entries(revision: i64, before: &[FileState], after: &[FileState]) -> Vec<ChangeEntry> {
    let was: BTreeMap<&str, &str> = before.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let now: BTreeMap<&str, &str> = after.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let mut rows = Vec::new();
    for (path, sha) in &now {
        let action = match was.get(path) {
            None => ChangeAction::Created,
            Some(old) if old != sha => ChangeAction::Updated,
            Some(_) => continue,
        };
        rows.push(ChangeEntry { revision, path: path.to_string(), action, sha256: Some(sha.to_string()) });
    }
    for path in was.keys().filter(|p| !now.contains_key(*p)) {
        rows.push(ChangeEntry { revision, path: path.to_string(), action: ChangeAction::Deleted, sha256: None });
    }
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    rows
}

/// Where a reader stands in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The app's `created_at` when the cursor was made; `None` for a plain revision number.
    pub epoch: Option<i64>,
    pub revision: i64,
    /// Inside a revision: its rows up to this path were read. `None`: all of `revision` was.
    pub after_path: Option<String>,
}

impl Cursor {
    /// A plain revision (`"12"`) or a cursor this module made.
    pub fn parse(raw: &str) -> Result<Cursor, Error> {
        let bad = || Error::invalid_field("since", "must be a revision number or a cursor from a previous answer");
        let number = |s: &str| -> Result<i64, Error> {
            if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        let parts: Vec<&str> = raw.split(':').collect();
        match parts.as_slice() {
            [rev] => Ok(Cursor { epoch: None, revision: number(rev)?, after_path: None }),
            [epoch, rev] => Ok(Cursor { epoch: Some(number(epoch)?), revision: number(rev)?, after_path: None }),
            [epoch, rev, path] => {
                let bytes = URL_SAFE_NO_PAD.decode(path).map_err(|_| bad())?;
                let path = String::from_utf8(bytes).map_err(|_| bad())?;
                if path.is_empty() || path.len() > super::path::MAX_PATH_BYTES {
                    return Err(bad());
                }
                Ok(Cursor { epoch: Some(number(epoch)?), revision: number(rev)?, after_path: Some(path) })
            }
            _ => Err(bad()),
        }
    }

    pub fn encode(&self) -> String {
        let epoch = self.epoch.unwrap_or(0);
        match &self.after_path {
            None => format!("{epoch}:{}", self.revision),
            Some(p) => format!("{epoch}:{}:{}", self.revision, URL_SAFE_NO_PAD.encode(p)),
        }
    }

    /// Whether `e` comes after this cursor in (revision, path) order.
    pub fn precedes(&self, e: &ChangeEntry) -> bool {
        match &self.after_path {
            None => e.revision > self.revision,
            Some(p) => e.revision > self.revision || (e.revision == self.revision && e.path.as_str() > p.as_str()),
        }
    }
}

/// What the app looks like to the change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogState {
    /// The app's `created_at`: a new app under an old id has another epoch.
    pub epoch: i64,
    pub current_revision: i64,
    /// Rows of revisions up to and including this one were pruned (0: none).
    pub pruned_through: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// The rows after the cursor were pruned.
    Pruned,
    /// The cursor is past the app's revision.
    Ahead,
    /// The app was deleted and created again since the cursor was made.
    Recreated,
}

/// Whether `cursor` can be served from the log, checked before reading a page.
pub fn check(cursor: &Cursor, state: &LogState) -> Result<(), ResyncReason> {
    if cursor.epoch.is_some_and(|e| e != state.epoch) {
        return Err(ResyncReason::Recreated);
    }
    if cursor.revision > state.current_revision {
        return Err(ResyncReason::Ahead);
    }
    let fully_read = if cursor.after_path.is_some() { cursor.revision - 1 } else { cursor.revision };
    if fully_read < state.pruned_through {
        return Err(ResyncReason::Pruned);
    }
    Ok(())
}

/// A path whose current content the builder must fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathState {
    pub path: String,
    pub sha256: String,
    /// The revision of its last change in this page.
    pub revision: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeSet {
    pub added: Vec<PathState>,
    pub changed: Vec<PathState>,
    pub deleted: Vec<String>,
    /// Pass as `since` for the next call.
    pub cursor: String,
    /// More rows wait after this page: call again at once with `cursor`.
    pub has_more: bool,
    pub revision: i64,
}

/// The answer to "changes since".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Changes(ChangeSet),
    /// The log cannot answer: fetch the full export and continue from its revision.
    Resync {
        reason: ResyncReason,
        revision: i64,
    },
}

/// Folds one page into net changes. `page` is what the query returned for `cursor` with
/// `LIMIT limit + 1`; rows not after the cursor are ignored and the rest put in order, so a
/// sloppy caller cannot make the answer wrong, only short.
pub fn changes_since(cursor: &Cursor, state: &LogState, page: &[ChangeEntry], limit: usize) -> Outcome {
    if let Err(reason) = check(cursor, state) {
        return Outcome::Resync { reason, revision: state.current_revision };
    }
    let limit = limit.max(1);
    let mut rows: Vec<&ChangeEntry> = page.iter().filter(|e| cursor.precedes(e) && e.revision <= state.current_revision).collect();
    rows.sort_by(|a, b| (a.revision, &a.path).cmp(&(b.revision, &b.path)));
    rows.dedup_by(|a, b| a.revision == b.revision && a.path == b.path);
    let has_more = rows.len() > limit;
    let next_row = rows.get(limit).copied();
    rows.truncate(limit);

    // Per path: did it exist before the page (its first row is not a creation), and its last row.
    let mut net: BTreeMap<&str, (bool, &ChangeEntry)> = BTreeMap::new();
    for &e in &rows {
        net.entry(e.path.as_str()).and_modify(|(_, last)| *last = e).or_insert((e.action != ChangeAction::Created, e));
    }
    let mut set = ChangeSet {
        added: Vec::new(),
        changed: Vec::new(),
        deleted: Vec::new(),
        cursor: String::new(),
        has_more,
        revision: state.current_revision,
    };
    for (path, (existed, last)) in net {
        let state_of =
            |e: &ChangeEntry| PathState { path: path.to_string(), sha256: e.sha256.clone().unwrap_or_default(), revision: e.revision };
        match (existed, last.action) {
            (false, ChangeAction::Deleted) => {}
            (true, ChangeAction::Deleted) => set.deleted.push(path.to_string()),
            (false, _) => set.added.push(state_of(last)),
            (true, _) => set.changed.push(state_of(last)),
        }
    }

    let epoch = Some(state.epoch);
    let next = match (rows.last(), next_row) {
        // Cut inside a revision: continue after the last path read.
        (Some(last), Some(next)) if next.revision == last.revision => {
            Cursor { epoch, revision: last.revision, after_path: Some(last.path.clone()) }
        }
        (Some(last), _) => Cursor { epoch, revision: last.revision, after_path: None },
        // Nothing new: stay where the reader was (a partly read revision is now fully read,
        // since a revision's rows are written together).
        (None, _) => Cursor { epoch, revision: cursor.revision, after_path: None },
    };
    set.cursor = next.encode();
    Outcome::Changes(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: LogState = LogState { epoch: 1_700_000_000_000, current_revision: 10, pruned_through: 0 };

    fn e(revision: i64, path: &str, action: ChangeAction, sha: Option<&str>) -> ChangeEntry {
        ChangeEntry { revision, path: path.into(), action, sha256: sha.map(String::from) }
    }

    fn set(o: Outcome) -> ChangeSet {
        match o {
            Outcome::Changes(s) => s,
            other => panic!("expected changes, got {other:?}"),
        }
    }

    fn fs(path: &str, sha: &str) -> FileState {
        FileState { path: path.into(), sha256: sha.into(), size_bytes: 1 }
    }

    fn log() -> Vec<ChangeEntry> {
        use ChangeAction::*;
        vec![
            e(1, "a", Created, Some("a1")),
            e(1, "b", Created, Some("b1")),
            e(2, "a", Updated, Some("a2")),
            e(3, "tmp", Created, Some("t1")),
            e(4, "tmp", Deleted, None),
            e(5, "b", Deleted, None),
            e(6, "c", Created, Some("c1")),
            e(7, "a", Updated, Some("a3")),
            e(7, "c", Updated, Some("c2")),
        ]
    }

    fn from(since: i64, limit: usize) -> ChangeSet {
        let cursor = Cursor { epoch: None, revision: since, after_path: None };
        let page: Vec<ChangeEntry> = log().into_iter().filter(|x| cursor.precedes(x)).take(limit + 1).collect();
        set(changes_since(&cursor, &STATE, &page, limit))
    }

    #[test]
    fn net_changes_since_a_revision() {
        let s = from(1, PAGE_LIMIT);
        // `a` existed at 1 and changed; `b` existed and went; `tmp` came and went; `c` is new.
        assert_eq!(s.changed, vec![PathState { path: "a".into(), sha256: "a3".into(), revision: 7 }]);
        assert_eq!(s.deleted, vec!["b".to_string()]);
        assert_eq!(s.added, vec![PathState { path: "c".into(), sha256: "c2".into(), revision: 7 }]);
        assert!(!s.has_more);
        assert_eq!(s.cursor, format!("{}:7", STATE.epoch));
        assert_eq!(s.revision, 10);
        let all = from(0, PAGE_LIMIT);
        assert_eq!(all.added.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), vec!["a", "c"]);
        assert!(all.changed.is_empty() && all.deleted.is_empty());
        let none = from(7, PAGE_LIMIT);
        assert!(none.added.is_empty() && none.changed.is_empty() && none.deleted.is_empty());
        assert_eq!(none.cursor, format!("{}:7", STATE.epoch));
    }

    /// Replaying page after page from any start, with any page size, ends at the same files as
    /// the app's: the property a builder relies on.
    #[test]
    fn paging_through_the_log_reaches_the_current_files() {
        let truth: BTreeMap<String, String> = [("a", "a3"), ("c", "c2")].iter().map(|(p, s)| (p.to_string(), s.to_string())).collect();
        for limit in 1..=10 {
            for start in [0i64, 1, 3] {
                // The builder's files at `start`.
                let mut files: BTreeMap<String, String> = BTreeMap::new();
                for x in log().iter().filter(|x| x.revision <= start) {
                    match &x.sha256 {
                        Some(s) => files.insert(x.path.clone(), s.clone()),
                        None => files.remove(&x.path),
                    };
                }
                let mut cursor = Cursor { epoch: None, revision: start, after_path: None };
                for _round in 0..100 {
                    let page: Vec<ChangeEntry> = log().into_iter().filter(|x| cursor.precedes(x)).take(limit + 1).collect();
                    let s = set(changes_since(&cursor, &STATE, &page, limit));
                    for p in s.added.iter().chain(&s.changed) {
                        files.insert(p.path.clone(), p.sha256.clone());
                    }
                    for p in &s.deleted {
                        assert!(files.remove(p).is_some(), "deleted {p} that the builder did not have");
                    }
                    for p in &s.added {
                        assert!(log().iter().any(|x| x.path == p.path), "{p:?}");
                    }
                    cursor = Cursor::parse(&s.cursor).unwrap();
                    if !s.has_more {
                        break;
                    }
                }
                assert_eq!(files, truth, "limit {limit}, start {start}");
            }
        }
    }

    #[test]
    fn a_page_cut_inside_a_revision_continues_after_the_last_path() {
        let s = from(6, 1);
        assert!(s.has_more);
        let c = Cursor::parse(&s.cursor).unwrap();
        assert_eq!(c, Cursor { epoch: Some(STATE.epoch), revision: 7, after_path: Some("a".into()) });
        assert!(!c.precedes(&e(7, "a", ChangeAction::Updated, Some("a3"))));
        assert!(c.precedes(&e(7, "c", ChangeAction::Updated, Some("c2"))));
        // A page that ends exactly at a revision's end gets a plain cursor.
        let s = from(4, 1);
        assert!(s.has_more);
        assert_eq!(s.cursor, format!("{}:5", STATE.epoch));
    }

    #[test]
    fn stale_cursors_ask_for_a_resync() {
        let c = |epoch, revision, after: Option<&str>| Cursor { epoch, revision, after_path: after.map(String::from) };
        let pruned = LogState { pruned_through: 5, ..STATE };
        assert_eq!(check(&c(None, 4, None), &pruned), Err(ResyncReason::Pruned));
        assert_eq!(check(&c(None, 5, None), &pruned), Ok(()));
        assert_eq!(check(&c(None, 5, Some("x")), &pruned), Err(ResyncReason::Pruned));
        assert_eq!(check(&c(None, 6, Some("x")), &pruned), Ok(()));
        assert_eq!(check(&c(None, 11, None), &STATE), Err(ResyncReason::Ahead));
        assert_eq!(check(&c(Some(1), 3, None), &STATE), Err(ResyncReason::Recreated));
        assert_eq!(check(&c(Some(STATE.epoch), 3, None), &STATE), Ok(()));
        let o = changes_since(&c(None, 11, None), &STATE, &log(), 10);
        assert_eq!(o, Outcome::Resync { reason: ResyncReason::Ahead, revision: 10 });
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["status"], "resync");
        assert_eq!(json["reason"], "ahead");
    }

    #[test]
    fn rows_outside_the_cursor_or_out_of_order_cannot_corrupt_the_answer() {
        let cursor = Cursor { epoch: None, revision: 5, after_path: None };
        let mut page = log();
        page.reverse();
        page.push(e(99, "future", ChangeAction::Created, Some("f")));
        let s = set(changes_since(&cursor, &STATE, &page, PAGE_LIMIT));
        assert_eq!(s.added.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), vec!["c"]);
        assert_eq!(s.changed.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), vec!["a"]);
        assert!(s.deleted.is_empty());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for c in [
            Cursor { epoch: Some(5), revision: 0, after_path: None },
            Cursor { epoch: Some(1_700_000_000_000), revision: 42, after_path: Some("src/a b/ü.js".into()) },
        ] {
            assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        }
        assert_eq!(Cursor::parse("12").unwrap(), Cursor { epoch: None, revision: 12, after_path: None });
        for bad in ["", "-1", "x", "1:2:3:4", "1:", ":1", "1:2:!!", "1:2:", "99999999999999999999", "1.5", " 1"] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
        let long = URL_SAFE_NO_PAD.encode("a".repeat(1025));
        assert!(Cursor::parse(&format!("1:2:{long}")).is_err());
        assert_eq!(Cursor::parse("x").unwrap_err().status(), 400);
    }

    #[test]
    fn log_rows_for_a_write_name_each_changed_path_once() {
        let before = [fs("a", "1"), fs("b", "2"), fs("c", "3")];
        let after = [fs("a", "1"), fs("b", "9"), fs("d", "4")];
        let rows = log_entries(8, &before, &after);
        assert_eq!(
            rows,
            vec![
                e(8, "b", ChangeAction::Updated, Some("9")),
                e(8, "c", ChangeAction::Deleted, None),
                e(8, "d", ChangeAction::Created, Some("4")),
            ]
        );
        assert!(log_entries(9, &after, &after).is_empty());
        for a in [ChangeAction::Created, ChangeAction::Updated, ChangeAction::Deleted] {
            assert_eq!(ChangeAction::parse(a.as_str()), Some(a));
        }
    }
}
