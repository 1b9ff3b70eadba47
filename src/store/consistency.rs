//! One consistency check over the object layer, for every kind of both workloads: the rows
//! that reference objects (the kind's reference sources) against the objects a listing finds,
//! merge-joined in key order. Each call covers a bounded key range and returns a cursor, so a
//! bucket of any size is checked in steps. `bytes` mode also reads, decodes and hashes every
//! referenced object instead of trusting its metadata.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::gc::{self, Grace};
use super::kinds::Kind;
use super::object::{self, Read};
use super::{Statement, Store};
use crate::error::Result;

/// How many offending keys a section lists (the counts are always complete).
const SAMPLE: usize = 20;
/// The largest logical object a bytes check decodes (a memory with photos is a few MB).
const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Compare the hash in each object's metadata with the rows'.
    Metadata,
    /// Read every referenced object and hash its decoded bytes.
    Bytes,
}

/// The kinds the check walks (those with reference sources), in cursor order.
pub fn checked_kinds() -> Vec<Kind> {
    Kind::ALL.into_iter().filter(|k| !k.info().refs.is_empty()).collect()
}

#[derive(Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub name: String,
    pub workload: String,
    pub rows: usize,
    pub objects: usize,
    pub rows_without_objects: usize,
    pub sha_mismatches: usize,
    /// Objects nothing references: fresh uploads, condemned objects waiting for the sweep, and…
    pub objects_without_rows: usize,
    /// …those older than the grace that nothing has condemned (what GC or reconciliation
    /// should have dealt with).
    pub orphans_older_than_grace: usize,
    pub bytes_checked: u64,
    pub examples: Vec<String>,
}

impl Section {
    fn note(&mut self, what: String) {
        if self.examples.len() < SAMPLE {
            self.examples.push(what);
        }
    }

    pub fn clean(&self) -> bool {
        self.rows_without_objects == 0 && self.sha_mismatches == 0 && self.objects_without_rows == 0 && self.orphans_older_than_grace == 0
    }
}

/// One referenced key as the rows see it.
#[derive(Debug, Clone, Deserialize)]
pub struct RowKey {
    pub key: String,
    pub sha: Option<String>,
    /// Distinct hashes the rows give this key (more than one: they disagree).
    pub shas: i64,
}

/// One listed object.
#[derive(Debug, Clone)]
pub struct ObjectKey {
    pub key: String,
    pub sha: Option<String>,
    pub uploaded_ms: i64,
}

/// Where the merge of one step ends: the smaller of the two sides' last keys, when a side was
/// cut by its limit; `None` when both sides were read to the end of the kind.
pub fn merge_bound(rows: &[RowKey], rows_full: bool, objects_last: Option<&str>, objects_truncated: bool) -> Option<String> {
    let a = rows_full.then(|| rows.last().map(|r| r.key.clone())).flatten();
    let b = objects_truncated.then(|| objects_last.map(str::to_string)).flatten();
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The pure half of a step: compares rows and objects up to `bound` (hashes from the objects'
/// metadata when `by_metadata`; in bytes mode the caller hashes the bytes instead). Returns
/// the keys of objects without rows older than the grace (the caller drops marked ones).
pub fn compare(
    section: &mut Section,
    rows: &[RowKey],
    objects: &[ObjectKey],
    bound: Option<&str>,
    old_before_ms: i64,
    by_metadata: bool,
) -> Vec<String> {
    let within = |k: &str| bound.is_none_or(|b| k <= b);
    let found: BTreeMap<&str, &ObjectKey> = objects.iter().filter(|o| within(&o.key)).map(|o| (o.key.as_str(), o)).collect();
    let named: BTreeSet<&str> = rows.iter().filter(|r| within(&r.key)).map(|r| r.key.as_str()).collect();
    section.rows += named.len();
    section.objects += found.len();
    for r in rows.iter().filter(|r| within(&r.key)) {
        match found.get(r.key.as_str()) {
            None => {
                section.rows_without_objects += 1;
                section.note(format!("row without object: {}", r.key));
            }
            Some(o) => {
                let disagree = r.shas > 1 || (by_metadata && matches!((&r.sha, &o.sha), (Some(a), Some(b)) if a != b));
                if disagree {
                    section.sha_mismatches += 1;
                    section.note(format!("sha256 mismatch: {}", r.key));
                }
            }
        }
    }
    let mut old = Vec::new();
    for o in found.values().filter(|o| !named.contains(o.key.as_str())) {
        section.objects_without_rows += 1;
        section.note(format!("object without row: {}", o.key));
        if o.uploaded_ms < old_before_ms {
            old.push(o.key.clone());
        }
    }
    old
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub sections: Vec<Section>,
    /// The walk reached the end of the last kind in this call.
    pub complete: bool,
    pub next_cursor: Option<String>,
}

fn parse_cursor(cursor: Option<&str>) -> (usize, String) {
    match cursor.and_then(|c| c.split_once(':')) {
        Some((i, key)) => match i.parse::<usize>() {
            Ok(i) if i < checked_kinds().len() => (i, key.to_string()),
            _ => (0, String::new()),
        },
        None => (0, String::new()),
    }
}

fn references(kind: Kind, after: &str, limit: u32) -> Statement {
    let sql = kind.references_sql().expect("checked kinds have references");
    crate::stmt!(sql, after, format!("{}%", kind.info().prefix), limit)
}

/// The most keys one step can take with `left` operations: the references query, the
/// listing, the mark lookups for orphans (one statement per 95 keys) and, in bytes mode, one
/// read per key.
pub fn affordable_step(left: u64, want: u32, mode: Mode) -> u32 {
    let cost = |n: u64| 2 + n.div_ceil(95) + if mode == Mode::Bytes { n } else { 0 };
    let (mut lo, mut hi) = (0u64, want as u64);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if cost(mid) <= left {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo as u32
}

/// Checks up to about `limit` keys from `cursor` onwards, as many as the request's operation
/// budget allows.
pub async fn check(store: &Store, grace: Grace, cursor: Option<&str>, limit: u32, mode: Mode) -> Result<Report> {
    let kinds = checked_kinds();
    let (mut index, mut after) = parse_cursor(cursor);
    let mut budget = limit.max(1) as usize;
    let mut report = Report::default();
    let old_before = store.request().now() - grace.ms();
    let mut sections: BTreeMap<usize, Section> = BTreeMap::new();
    while budget > 0 {
        // Out of operations: stop here, the cursor says where the next call goes on.
        let step = affordable_step(store.request().ops_left(), budget.min(1000) as u32, mode);
        if step == 0 {
            break;
        }
        let kind = kinds[index];
        let info = kind.info();
        let section = sections.entry(index).or_insert_with(|| Section {
            name: info.name.to_string(),
            workload: format!("{:?}", info.workload).to_lowercase(),
            ..Default::default()
        });
        let rows: Vec<RowKey> = store.meta.all(references(kind, &after, step)).await?;
        let rows_full = rows.len() == step as usize;
        let page = store.blobs.list_page_after(info.prefix, None, (!after.is_empty()).then(|| after.clone()), step).await?;
        let objects_last = page.objects.last().map(|o| o.key.clone());
        let objects: Vec<ObjectKey> = page
            .objects
            .iter()
            .filter(|o| Kind::of_key(&o.key) == Some(kind))
            .map(|o| ObjectKey { key: o.key.clone(), sha: object::sha_of(o), uploaded_ms: o.uploaded_ms as i64 })
            .collect();
        let bound = merge_bound(&rows, rows_full, objects_last.as_deref(), page.cursor.is_some());
        let old = compare(section, &rows, &objects, bound.as_deref(), old_before, mode == Mode::Metadata);
        if !old.is_empty() {
            let marked: BTreeSet<String> =
                gc::marks(store, &old).await?.into_iter().filter(|m| m.state != "deleted").map(|m| m.key).collect();
            for k in old.into_iter().filter(|k| !marked.contains(k)) {
                section.orphans_older_than_grace += 1;
                section.note(format!("orphan older than the grace: {k}"));
            }
        }
        if mode == Mode::Bytes {
            let within = |k: &str| bound.as_deref().is_none_or(|b| k <= b);
            for r in rows.iter().filter(|r| within(&r.key) && r.shas == 1 && objects.iter().any(|o| o.key == r.key)) {
                let Some(sha) = &r.sha else { continue };
                match object::read(&store.blobs, &r.key, sha, MAX_OBJECT_BYTES).await? {
                    Read::Ok(bytes) => section.bytes_checked += bytes.len() as u64,
                    Read::Missing => {
                        section.rows_without_objects += 1;
                        section.note(format!("row without object: {}", r.key));
                    }
                    Read::Corrupt(why) => {
                        section.sha_mismatches += 1;
                        section.note(format!("bytes of {} {why}", r.key));
                    }
                }
            }
        }
        let used = rows.len().max(page.objects.len()).max(1);
        budget = budget.saturating_sub(used);
        match bound {
            Some(b) => after = b,
            None if index + 1 < kinds.len() => {
                index += 1;
                after = String::new();
            }
            None => {
                report.complete = true;
                break;
            }
        }
    }
    if !report.complete {
        report.next_cursor = Some(format!("{index}:{after}"));
    }
    report.sections = sections.into_values().collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: &str, sha: &str) -> RowKey {
        RowKey { key: k.into(), sha: Some(sha.into()), shas: 1 }
    }

    fn obj(k: &str, sha: Option<&str>, at: i64) -> ObjectKey {
        ObjectKey { key: k.into(), sha: sha.map(str::to_string), uploaded_ms: at }
    }

    #[test]
    fn finds_each_kind_of_difference() {
        let rows = [row("a", "1"), row("b", "2"), row("c", "3"), RowKey { key: "e".into(), sha: Some("5".into()), shas: 2 }];
        let objects = [obj("a", Some("1"), 0), obj("b", Some("x"), 0), obj("d", None, 0), obj("e", Some("5"), 0), obj("f", None, 100)];
        let mut s = Section::default();
        let old = compare(&mut s, &rows, &objects, None, 50, true);
        assert_eq!((s.rows_without_objects, s.sha_mismatches, s.objects_without_rows), (1, 2, 2));
        assert_eq!(old, vec!["d".to_string()]);
        assert!(!s.clean());
    }

    #[test]
    fn legacy_objects_without_a_hash_are_not_mismatches() {
        let mut s = Section::default();
        compare(&mut s, &[row("a", "1")], &[obj("a", None, 0)], None, 0, true);
        assert!(s.clean());
    }

    #[test]
    fn a_step_compares_only_up_to_the_shorter_side() {
        let rows = [row("a", "1"), row("c", "1")];
        let objects = [obj("a", Some("1"), 0), obj("b", Some("1"), 0)];
        // the listing was cut after "b": "c" is left for the next step, not reported missing
        let bound = merge_bound(&rows, false, Some("b"), true);
        assert_eq!(bound.as_deref(), Some("b"));
        let mut s = Section::default();
        compare(&mut s, &rows, &objects, bound.as_deref(), 0, true);
        assert_eq!((s.rows, s.objects, s.rows_without_objects, s.objects_without_rows), (1, 2, 0, 1));
        assert_eq!(merge_bound(&rows, true, Some("b"), true).as_deref(), Some("b"));
        assert_eq!(merge_bound(&rows, true, Some("z"), true).as_deref(), Some("c"));
        assert_eq!(merge_bound(&rows, false, Some("z"), false), None);
    }

    #[test]
    fn a_step_takes_what_the_operations_left_allow() {
        assert_eq!(affordable_step(u64::MAX, 1000, Mode::Bytes), 1000);
        assert_eq!(affordable_step(50, 1000, Mode::Metadata), 1000);
        assert_eq!(affordable_step(3, 1000, Mode::Metadata), 95);
        assert_eq!(affordable_step(2, 1000, Mode::Metadata), 0);
        assert_eq!(affordable_step(50, 200, Mode::Bytes), 47);
        assert_eq!(affordable_step(3, 200, Mode::Bytes), 0);
    }

    #[test]
    fn cursors_resume_and_foreign_ones_restart() {
        assert_eq!(parse_cursor(Some("2:mobil3-mentorships/transcripts/u")), (2, "mobil3-mentorships/transcripts/u".into()));
        assert_eq!(parse_cursor(Some("99:x")), (0, String::new()));
        assert_eq!(parse_cursor(None), (0, String::new()));
        assert_eq!(checked_kinds().len(), 6);
    }
}
