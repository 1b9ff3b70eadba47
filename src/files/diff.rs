//! Comparing two versions: which files were added, modified, deleted or left alone, and a
//! unified diff for text.

use std::collections::BTreeMap;

use serde::Serialize;

use super::manifest::FileState;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Modified,
    Deleted,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    pub change: Change,
    pub from_sha256: Option<String>,
    pub to_sha256: Option<String>,
}

/// Per-file comparison of version `from` with version `to` (their live files), sorted by path.
pub fn compare(from: &[FileState], to: &[FileState]) -> Vec<FileChange> {
    let a: BTreeMap<&str, &str> = from.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let b: BTreeMap<&str, &str> = to.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let mut paths: Vec<&str> = a.keys().chain(b.keys()).copied().collect();
    paths.sort_unstable();
    paths.dedup();
    paths
        .into_iter()
        .map(|path| {
            let (x, y) = (a.get(path).copied(), b.get(path).copied());
            let change = match (x, y) {
                (None, Some(_)) => Change::Added,
                (Some(_), None) => Change::Deleted,
                (Some(x), Some(y)) if x == y => Change::Unchanged,
                _ => Change::Modified,
            };
            FileChange { path: path.to_string(), change, from_sha256: x.map(String::from), to_sha256: y.map(String::from) }
        })
        .collect()
}

/// Text above this size is compared by hash only: a diff of megabytes helps no reader and
/// costs the worker's CPU budget.
pub const MAX_DIFF_INPUT_BYTES: usize = 256 * 1024;

/// A unified diff (`---`/`+++` headers, 3 lines of context) of `old` → `new` for `path`; an
/// absent side (added or deleted file) is `/dev/null`.
pub fn unified(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let from = if old.is_some() { format!("a/{path}") } else { "/dev/null".to_string() };
    let to = if new.is_some() { format!("b/{path}") } else { "/dev/null".to_string() };
    similar::TextDiff::from_lines(old.unwrap_or(""), new.unwrap_or("")).unified_diff().context_radius(3).header(&from, &to).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, sha: &str) -> FileState {
        FileState { path: path.into(), sha256: sha.into(), size_bytes: 1 }
    }

    #[test]
    fn every_kind_of_change_is_named() {
        let from = [f("same", "1"), f("edit", "2"), f("gone", "3")];
        let to = [f("same", "1"), f("edit", "9"), f("new", "4")];
        let c = compare(&from, &to);
        let kinds: Vec<(&str, Change)> = c.iter().map(|x| (x.path.as_str(), x.change)).collect();
        assert_eq!(kinds, vec![("edit", Change::Modified), ("gone", Change::Deleted), ("new", Change::Added), ("same", Change::Unchanged)]);
        assert_eq!(c[1].to_sha256, None);
        assert_eq!(c[2].from_sha256, None);
    }

    #[test]
    fn unified_diff_has_headers_and_hunks() {
        let d = unified("src/a.txt", Some("one\ntwo\nthree\n"), Some("one\n2\nthree\n"));
        assert!(d.starts_with("--- a/src/a.txt\n+++ b/src/a.txt\n"), "{d}");
        assert!(d.contains("@@ -1,3 +1,3 @@"));
        assert!(d.contains("-two\n+2\n"));
        let added = unified("n.txt", None, Some("hi\n"));
        assert!(added.starts_with("--- /dev/null\n+++ b/n.txt\n"));
        assert!(added.contains("+hi"));
        assert_eq!(unified("x", Some("same\n"), Some("same\n")), "");
    }
}
