//! Comparing what D1 says is stored with what R2 holds. Pure: the admin route gathers both
//! sides and this module reports rows without objects, objects without rows and hash
//! mismatches.

use std::collections::HashMap;

use serde::Serialize;

/// One side's view of an object: its key and, when known, the sha256 of its bytes.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub sha256: Option<String>,
}

impl Entry {
    /// Entries from D1 rows that carry the key in column `key` and the hash in `sha256`.
    pub fn from_rows(rows: &[serde_json::Value], key: &str) -> Vec<Entry> {
        rows.iter()
            .filter_map(|v| Some(Entry { key: v[key].as_str()?.to_string(), sha256: v["sha256"].as_str().map(str::to_string) }))
            .collect()
    }
}

/// How many offending keys a report lists (the counts are always complete).
const SAMPLE: usize = 20;

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub name: String,
    pub rows: usize,
    pub objects: usize,
    pub rows_without_objects: usize,
    pub objects_without_rows: usize,
    pub sha_mismatches: usize,
    pub examples: Vec<String>,
}

impl Section {
    pub fn clean(&self) -> bool {
        self.rows_without_objects == 0 && self.objects_without_rows == 0 && self.sha_mismatches == 0
    }
}

/// `rows` are what the index names, `objects` what a listing found under the section's prefix.
pub fn compare(name: &str, rows: &[Entry], objects: &[Entry]) -> Section {
    let found: HashMap<&str, Option<&str>> = objects.iter().map(|o| (o.key.as_str(), o.sha256.as_deref())).collect();
    let named: HashMap<&str, ()> = rows.iter().map(|r| (r.key.as_str(), ())).collect();
    let mut examples = Vec::new();
    let (mut missing, mut mismatched) = (0, 0);
    for r in rows {
        match found.get(r.key.as_str()) {
            None => {
                missing += 1;
                if examples.len() < SAMPLE {
                    examples.push(format!("row without object: {}", r.key));
                }
            }
            Some(sha) => {
                if let (Some(expected), Some(actual)) = (r.sha256.as_deref(), sha) {
                    if expected != *actual {
                        mismatched += 1;
                        if examples.len() < SAMPLE {
                            examples.push(format!("sha256 mismatch: {}", r.key));
                        }
                    }
                }
            }
        }
    }
    let mut orphans = 0;
    for o in objects {
        if !named.contains_key(o.key.as_str()) {
            orphans += 1;
            if examples.len() < SAMPLE {
                examples.push(format!("object without row: {}", o.key));
            }
        }
    }
    Section {
        name: name.to_string(),
        rows: rows.len(),
        objects: objects.len(),
        rows_without_objects: missing,
        objects_without_rows: orphans,
        sha_mismatches: mismatched,
        examples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, sha: Option<&str>) -> Entry {
        Entry { key: key.into(), sha256: sha.map(str::to_string) }
    }

    #[test]
    fn finds_each_kind_of_difference() {
        let rows = [e("a", Some("1")), e("b", Some("2")), e("c", None)];
        let objects = [e("a", Some("1")), e("b", Some("x")), e("d", None)];
        let s = compare("t", &rows, &objects);
        assert_eq!((s.rows_without_objects, s.objects_without_rows, s.sha_mismatches), (1, 1, 1));
        assert!(!s.clean());
        assert_eq!(s.examples.len(), 3);
    }

    #[test]
    fn identical_sides_are_clean() {
        let side = [e("a", Some("1")), e("b", None)];
        assert!(compare("t", &side, &side).clean());
    }
}
