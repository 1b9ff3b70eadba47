//! Versions: what changed per file since the previous version, and the manifest document that
//! records a version (kept inline in D1 when small, else in R2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What happened to a file in a version, relative to the version before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Deleted,
    Restored,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Restored => "restored",
            Action::Unchanged => "unchanged",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(Action::Created),
            "updated" => Some(Action::Updated),
            "deleted" => Some(Action::Deleted),
            "restored" => Some(Action::Restored),
            "unchanged" => Some(Action::Unchanged),
            _ => None,
        }
    }
}

/// One file as a snapshot sees it: enough to tell whether it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// A file's line in a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub path: String,
    pub action: Action,
    pub sha256: String,
    pub size_bytes: u64,
}

/// Per-file actions of a new version whose files are `next`, given the live files of the
/// previous version (`previous`, empty for the first). A restore marks every file whose content
/// differs from the previous version `restored` instead of `created`/`updated`. Files that were
/// in `previous` but not in `next` are listed as `deleted` with their last hash. Sorted by path.
pub fn plan_version(previous: &[FileState], next: &[FileState], restoring: bool) -> Vec<Planned> {
    let before: BTreeMap<&str, &FileState> = previous.iter().map(|f| (f.path.as_str(), f)).collect();
    let after: BTreeMap<&str, &FileState> = next.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut planned = Vec::with_capacity(after.len() + before.len());
    for (path, now) in &after {
        let action = match before.get(path) {
            Some(was) if was.sha256 == now.sha256 => Action::Unchanged,
            _ if restoring => Action::Restored,
            Some(_) => Action::Updated,
            None => Action::Created,
        };
        planned.push(Planned { path: path.to_string(), action, sha256: now.sha256.clone(), size_bytes: now.size_bytes });
    }
    for (path, was) in &before {
        if !after.contains_key(path) {
            planned.push(Planned {
                path: path.to_string(),
                action: Action::Deleted,
                sha256: was.sha256.clone(),
                size_bytes: was.size_bytes,
            });
        }
    }
    planned.sort_by(|a, b| a.path.cmp(&b.path));
    planned
}

/// Manifests up to this size stay in the `app_versions` row; larger ones go to R2, so a
/// version of a big app does not make every version listing read a large row.
pub const MANIFEST_INLINE_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub action: Action,
    pub sha256: String,
    pub size_bytes: u64,
    /// `None` for a deleted file, which has no content in this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub app: String,
    pub version_number: i64,
    pub changelog: String,
    pub environment: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<i64>,
    pub file_count: u64,
    pub total_bytes: u64,
    pub files: Vec<ManifestFile>,
}

/// What describes a version besides its files.
pub struct VersionHeader {
    pub app: String,
    pub version_number: i64,
    pub changelog: String,
    pub environment: String,
    pub created_ms: i64,
    pub restored_from: Option<i64>,
}

impl Manifest {
    /// The manifest of a planned version; `location` says where a kept file's content lives
    /// (deleted lines have none).
    pub fn build(header: VersionHeader, planned: &[Planned], location: impl Fn(&str) -> Option<String>) -> Manifest {
        let (file_count, total_bytes) = totals(planned);
        Manifest {
            app: header.app,
            version_number: header.version_number,
            changelog: header.changelog,
            environment: header.environment,
            created_at: iso8601(header.created_ms),
            restored_from: header.restored_from,
            file_count,
            total_bytes,
            files: planned
                .iter()
                .map(|p| ManifestFile {
                    path: p.path.clone(),
                    action: p.action,
                    sha256: p.sha256.clone(),
                    size_bytes: p.size_bytes,
                    storage_location: if p.action == Action::Deleted { None } else { location(&p.path) },
                })
                .collect(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serialises")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Whether the serialised manifest is small enough to stay inline in D1.
    pub fn fits_inline(serialised: &[u8]) -> bool {
        serialised.len() <= MANIFEST_INLINE_MAX
    }
}

/// Count and bytes of the files a version holds (deleted lines excluded).
pub fn totals(planned: &[Planned]) -> (u64, u64) {
    planned.iter().filter(|p| p.action != Action::Deleted).fold((0, 0), |(n, b), p| (n + 1, b + p.size_bytes))
}

/// RFC 3339 UTC with milliseconds, from milliseconds since the epoch.
pub fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, sha: &str) -> FileState {
        FileState { path: path.into(), sha256: sha.into(), size_bytes: sha.len() as u64 }
    }

    fn actions(p: &[Planned]) -> Vec<(&str, Action)> {
        p.iter().map(|x| (x.path.as_str(), x.action)).collect()
    }

    #[test]
    fn first_version_creates_everything() {
        let p = plan_version(&[], &[f("b", "2"), f("a", "1")], false);
        assert_eq!(actions(&p), vec![("a", Action::Created), ("b", Action::Created)]);
    }

    #[test]
    fn later_versions_see_updates_deletes_and_unchanged() {
        let prev = [f("keep", "1"), f("edit", "2"), f("gone", "3")];
        let next = [f("keep", "1"), f("edit", "22"), f("new", "4")];
        let p = plan_version(&prev, &next, false);
        assert_eq!(
            actions(&p),
            vec![("edit", Action::Updated), ("gone", Action::Deleted), ("keep", Action::Unchanged), ("new", Action::Created)]
        );
        let gone = p.iter().find(|x| x.path == "gone").unwrap();
        assert_eq!(gone.sha256, "3");
        assert_eq!(totals(&p), (3, 1 + 2 + 1));
    }

    #[test]
    fn a_restore_marks_changed_files_restored() {
        let prev = [f("a", "new"), f("extra", "x")];
        let next = [f("a", "old"), f("b", "back"), f("c", "same")];
        let prev_with_c = [prev[0].clone(), prev[1].clone(), f("c", "same")];
        let p = plan_version(&prev_with_c, &next, true);
        assert_eq!(
            actions(&p),
            vec![("a", Action::Restored), ("b", Action::Restored), ("c", Action::Unchanged), ("extra", Action::Deleted)]
        );
    }

    #[test]
    fn manifest_round_trips_and_knows_its_size() {
        let m = Manifest {
            app: "demo".into(),
            version_number: 3,
            changelog: "fix".into(),
            environment: "production".into(),
            created_at: iso8601(0),
            restored_from: Some(1),
            file_count: 1,
            total_bytes: 5,
            files: vec![ManifestFile {
                path: "a".into(),
                action: Action::Created,
                sha256: "00".into(),
                size_bytes: 5,
                storage_location: Some("database".into()),
            }],
        };
        let bytes = m.to_bytes();
        assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
        assert!(Manifest::fits_inline(&bytes));
        assert!(!Manifest::fits_inline(&vec![b' '; MANIFEST_INLINE_MAX + 1]));
        assert_eq!(m.created_at, "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn actions_round_trip() {
        for a in [Action::Created, Action::Updated, Action::Deleted, Action::Restored, Action::Unchanged] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
    }
}
