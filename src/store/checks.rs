//! The consistency check's walks, persisted (migrations/0011, `consistency_walks`): a walk is
//! the calls from a first call without a cursor to the one that completes it, and each call
//! adds its counts to the walk's row. The walk's id travels in the cursor (`{id}.{inner}`), so
//! the calls of one walk find their row. `/api/health` reads the newest finished walk.

use serde::{Deserialize, Serialize};

use super::consistency::{Mode, Report};
use super::{MetaStore, Statement};
use crate::error::Result;
use crate::stmt;

/// Walks kept; older rows are dropped when a new walk starts.
const KEEP: i64 = 100;

/// The counts one call found (summed over its sections) or a walk found so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows: i64,
    pub objects: i64,
    pub rows_without_objects: i64,
    pub sha_mismatches: i64,
    pub objects_without_rows: i64,
    pub orphans_older_than_grace: i64,
    pub index_rows_without_version: i64,
}

impl Counts {
    pub fn of(report: &Report, index_rows_without_version: i64) -> Counts {
        let sum = |f: fn(&super::consistency::Section) -> usize| report.sections.iter().map(f).sum::<usize>() as i64;
        Counts {
            rows: sum(|s| s.rows),
            objects: sum(|s| s.objects),
            rows_without_objects: sum(|s| s.rows_without_objects),
            sha_mismatches: sum(|s| s.sha_mismatches),
            objects_without_rows: sum(|s| s.objects_without_rows),
            orphans_older_than_grace: sum(|s| s.orphans_older_than_grace),
            index_rows_without_version,
        }
    }

    /// What an operator must look at: rows naming missing or damaged objects, orphans nothing
    /// condemned, index rows without a version. Objects without rows alone are not on the
    /// list: fresh uploads and condemned objects waiting for the sweep are normal.
    pub fn problems(&self) -> i64 {
        self.rows_without_objects + self.sha_mismatches + self.orphans_older_than_grace + self.index_rows_without_version
    }
}

/// A walk's cursor: the walk's id, then the check's own cursor.
pub fn encode_cursor(walk: Option<i64>, inner: &str) -> String {
    match walk {
        Some(id) => format!("{id}.{inner}"),
        None => inner.to_string(),
    }
}

/// The walk id and the check's cursor; a cursor without an id continues a walk that is not
/// recorded (the counts are still returned).
pub fn decode_cursor(cursor: &str) -> (Option<i64>, &str) {
    match cursor.split_once('.') {
        Some((id, inner)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => match id.parse() {
            Ok(id) => (Some(id), inner),
            Err(_) => (None, cursor),
        },
        _ => (None, cursor),
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Metadata => "metadata",
        Mode::Bytes => "bytes",
    }
}

/// A new walk with its first call's counts; returns its id. Drops walks beyond the newest
/// [`KEEP`] in the same batch.
pub fn start(mode: Mode, trigger: &str, now: i64, complete: bool, c: &Counts) -> Vec<Statement> {
    vec![
        stmt!(
            "INSERT INTO consistency_walks (mode, trigger, started_at, updated_at, finished_at, calls, rows_checked, objects_checked, \
               rows_without_objects, sha_mismatches, objects_without_rows, orphans_older_than_grace, index_rows_without_version) \
             VALUES (?1, ?2, ?3, ?3, CASE WHEN ?4 THEN ?3 END, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
            mode_name(mode),
            trigger,
            now,
            complete,
            c.rows,
            c.objects,
            c.rows_without_objects,
            c.sha_mismatches,
            c.objects_without_rows,
            c.orphans_older_than_grace,
            c.index_rows_without_version
        ),
        stmt!("DELETE FROM consistency_walks WHERE id <= (SELECT MAX(id) FROM consistency_walks) - ?1", KEEP),
    ]
}

/// Adds a later call's counts to an unfinished walk (a finished or unknown walk is left alone).
pub fn add(walk: i64, now: i64, complete: bool, c: &Counts) -> Statement {
    stmt!(
        "UPDATE consistency_walks SET updated_at = ?2, finished_at = CASE WHEN ?3 THEN ?2 END, calls = calls + 1, \
           rows_checked = rows_checked + ?4, objects_checked = objects_checked + ?5, \
           rows_without_objects = rows_without_objects + ?6, sha_mismatches = sha_mismatches + ?7, \
           objects_without_rows = objects_without_rows + ?8, orphans_older_than_grace = orphans_older_than_grace + ?9, \
           index_rows_without_version = index_rows_without_version + ?10 \
         WHERE id = ?1 AND finished_at IS NULL",
        walk,
        now,
        complete,
        c.rows,
        c.objects,
        c.rows_without_objects,
        c.sha_mismatches,
        c.objects_without_rows,
        c.orphans_older_than_grace,
        c.index_rows_without_version
    )
}

/// The newest finished walk.
pub fn latest_finished() -> Statement {
    stmt!(
        "SELECT id, mode, trigger, started_at, finished_at, calls, rows_checked AS rows, objects_checked AS objects, \
           rows_without_objects, sha_mismatches, objects_without_rows, orphans_older_than_grace, index_rows_without_version \
         FROM consistency_walks WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1"
    )
}

/// A finished walk as `/api/health` reports it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Walk {
    pub id: i64,
    pub mode: String,
    pub trigger: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub calls: i64,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Deserialize)]
struct Id {
    id: i64,
}

/// Records one call of a walk; returns the walk's id (a new one when `walk` is `None`).
pub async fn record(
    meta: &MetaStore,
    walk: Option<i64>,
    mode: Mode,
    trigger: &str,
    now: i64,
    complete: bool,
    c: &Counts,
) -> Result<Option<i64>> {
    match walk {
        Some(id) => {
            meta.run(add(id, now, complete, c)).await?;
            Ok(Some(id))
        }
        None => {
            let rows = meta.batch_results(start(mode, trigger, now, complete, c)).await?;
            Ok(rows.first().map(|r| r.rows::<Id>()).transpose()?.and_then(|r| r.into_iter().next()).map(|r| r.id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_carry_the_walk() {
        assert_eq!(encode_cursor(Some(7), "2:apps/a/blobs/x"), "7.2:apps/a/blobs/x");
        assert_eq!(decode_cursor("7.2:apps/a/blobs/x.y"), (Some(7), "2:apps/a/blobs/x.y"));
        assert_eq!(decode_cursor("2:apps/a/blobs/x.y"), (None, "2:apps/a/blobs/x.y"));
        assert_eq!(decode_cursor(".2:x"), (None, ".2:x"));
        assert_eq!(encode_cursor(None, "1:k"), "1:k");
        assert_eq!(decode_cursor("99999999999999999999999.1:k"), (None, "99999999999999999999999.1:k"));
    }

    #[test]
    fn only_real_problems_count() {
        let c = Counts { objects_without_rows: 5, ..Default::default() };
        assert_eq!(c.problems(), 0);
        let c = Counts { rows_without_objects: 1, sha_mismatches: 2, orphans_older_than_grace: 3, index_rows_without_version: 4, ..c };
        assert_eq!(c.problems(), 10);
    }

    #[test]
    fn statements_bind_what_they_name() {
        let c = Counts::default();
        let s = start(Mode::Bytes, "job", 5, true, &c);
        assert_eq!(s[0].params.len(), 11);
        assert!(s[0].sql.contains("RETURNING id"));
        assert_eq!(add(3, 5, false, &c).params.len(), 10);
        assert!(add(3, 5, false, &c).sql.contains("finished_at IS NULL"));
    }
}
