//! What an app may keep (issue 13): retention of versions, version tags, and per-app quotas.
//!
//! - Retention keeps the last N versions and/or the versions newer than D days (a version is
//!   kept if any rule keeps it), and never deletes the newest version or a tagged one. The
//!   answer is a deterministic list of version numbers to delete; deleting them (rows, then
//!   unshared objects through GC) is the storage core's job.
//! - A tag (`production`, `v1.2`) names exactly one version of an app; setting it on another
//!   version moves it. Tagged versions are protected from retention and from deletion.
//! - Quotas cap an app's bytes, files and versions. A change that would take a measure past
//!   its cap is refused with a decision naming the quota; a change that shrinks a measure is
//!   always allowed, so an app over a lowered quota can still clean up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Error;

const DAY_MS: i64 = 86_400_000;
/// Longest `keep_days` accepted (100 years): anything longer is "forever", say so with `None`.
pub const MAX_KEEP_DAYS: u32 = 36_500;
/// Largest `keep_last` accepted.
pub const MAX_KEEP_LAST: u32 = 1_000_000;
/// Tags per app: each is a row read on every version listing.
pub const MAX_TAGS_PER_APP: usize = 100;

/// One version as retention and tagging see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub number: i64,
    pub created_ms: i64,
    pub tagged: bool,
}

/// A per-app retention policy; both `None` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Keep the newest `keep_last` versions (by number).
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Keep versions created less than `keep_days` days ago.
    #[serde(default)]
    pub keep_days: Option<u32>,
}

impl Retention {
    /// A policy from request fields; `keep_last` of 0 would mean "keep only what is protected",
    /// which a client can say with `keep_last: 1`, so 0 is refused as a likely mistake.
    pub fn new(keep_last: Option<u32>, keep_days: Option<u32>) -> Result<Self, Error> {
        if let Some(n) = keep_last {
            if n == 0 || n > MAX_KEEP_LAST {
                return Err(Error::invalid_field("keep_last", format!("must be from 1 to {MAX_KEEP_LAST}")));
            }
        }
        if let Some(d) = keep_days {
            if d == 0 || d > MAX_KEEP_DAYS {
                return Err(Error::invalid_field("keep_days", format!("must be from 1 to {MAX_KEEP_DAYS}")));
            }
        }
        Ok(Retention { keep_last, keep_days })
    }

    pub fn keeps_everything(&self) -> bool {
        self.keep_last.is_none() && self.keep_days.is_none()
    }

    /// Version numbers to delete at `now_ms`, ascending. A version is kept when it is the
    /// newest, tagged, among the `keep_last` newest, or created at or after `now − keep_days`.
    pub fn to_delete(&self, versions: &[VersionInfo], now_ms: i64) -> Vec<i64> {
        if self.keeps_everything() || versions.is_empty() {
            return Vec::new();
        }
        let mut newest_first: Vec<&VersionInfo> = versions.iter().collect();
        newest_first.sort_by_key(|v| std::cmp::Reverse(v.number));
        let keep_last = self.keep_last.map_or(0, |n| n as usize);
        let cutoff = self.keep_days.map(|d| now_ms.saturating_sub(i64::from(d).saturating_mul(DAY_MS)));
        let mut doomed: Vec<i64> = newest_first
            .iter()
            .enumerate()
            .filter(|(rank, v)| {
                let newest = *rank == 0;
                let recent_by_count = *rank < keep_last;
                let recent_by_age = cutoff.is_some_and(|c| v.created_ms >= c);
                !(newest || v.tagged || recent_by_count || recent_by_age)
            })
            .map(|(_, v)| v.number)
            .collect();
        doomed.sort_unstable();
        doomed.dedup();
        doomed
    }
}

/// A validated tag: `[a-z0-9][a-z0-9._-]{0,31}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Tag(String);

impl Tag {
    pub fn parse(raw: &str) -> Result<Tag, Error> {
        let b = raw.as_bytes();
        let first_ok = b.first().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = b.iter().skip(1).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'));
        if !first_ok || !rest_ok || b.len() > 32 {
            return Err(Error::invalid_field("tag", "must be 1-32 characters of a-z 0-9 . _ -, starting with a letter or digit"));
        }
        Ok(Tag(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What setting a tag does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TagChange {
    /// The tag is new for this app.
    Created,
    /// The tag named another version; it now names this one.
    Moved { from: i64 },
    /// It already named this version.
    Unchanged,
}

/// Plans `tag → version` for an app whose tags are `existing` (tag → version) and whose
/// version numbers are `versions`. Unknown version: 404; a new tag past [`MAX_TAGS_PER_APP`]:
/// 409.
pub fn set_tag(existing: &BTreeMap<Tag, i64>, versions: &[i64], tag: &Tag, version: i64) -> Result<TagChange, Error> {
    if !versions.contains(&version) {
        return Err(Error::NotFound(format!("version {version} does not exist")));
    }
    match existing.get(tag) {
        Some(&v) if v == version => Ok(TagChange::Unchanged),
        Some(&v) => Ok(TagChange::Moved { from: v }),
        None if existing.len() >= MAX_TAGS_PER_APP => {
            Err(Error::Conflict(format!("an app has at most {MAX_TAGS_PER_APP} tags; remove one before adding {tag}")))
        }
        None => Ok(TagChange::Created),
    }
}

/// Whether version `number` may be deleted on request: it must exist and carry no tag (the
/// caller removes tags first, so a `production` version is never lost by accident). The newest
/// version may be deleted explicitly; version numbers must still never be reused (the next
/// number comes from a counter, not from `MAX(version_number) + 1`).
pub fn check_delete(number: i64, versions: &[i64], tags: &BTreeMap<Tag, i64>) -> Result<(), Error> {
    if !versions.contains(&number) {
        return Err(Error::NotFound(format!("version {number} does not exist")));
    }
    let names: Vec<&str> = tags.iter().filter(|(_, v)| **v == number).map(|(t, _)| t.as_str()).collect();
    if !names.is_empty() {
        return Err(Error::Conflict(format!("version {number} is tagged {}; remove the tag before deleting it", names.join(", "))));
    }
    Ok(())
}

/// The measures a quota caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaKind {
    Bytes,
    Files,
    Versions,
}

impl QuotaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKind::Bytes => "bytes",
            QuotaKind::Files => "files",
            QuotaKind::Versions => "versions",
        }
    }

    /// 413 for bytes: the request's content is what does not fit (RFC 9110 §15.5.14, "content
    /// larger than the server is willing to process"), and a smaller upload may succeed.
    /// 409 for files and versions: each request is fine on its own, it conflicts with the
    /// app's current state (§15.5.10), and the client resolves it by deleting files or
    /// versions (or applying retention) and retrying.
    pub fn status(self) -> u16 {
        match self {
            QuotaKind::Bytes => 413,
            QuotaKind::Files | QuotaKind::Versions => 409,
        }
    }
}

/// An app's caps; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    #[serde(default)]
    pub max_bytes: Option<u64>,
    #[serde(default)]
    pub max_files: Option<u64>,
    #[serde(default)]
    pub max_versions: Option<u64>,
}

impl Quota {
    /// Defaults for every app from `APP_MAX_BYTES`, `APP_MAX_FILES`, `APP_MAX_VERSIONS`
    /// (unset or empty: unlimited).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Quota, String> {
        let get = |name: &str| -> Result<Option<u64>, String> {
            match lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v.parse::<u64>().map(Some).map_err(|_| format!("{name} must be a whole number, got {v:?}")),
            }
        };
        Ok(Quota { max_bytes: get("APP_MAX_BYTES")?, max_files: get("APP_MAX_FILES")?, max_versions: get("APP_MAX_VERSIONS")? })
    }

    /// The app's own caps where it set them, else `defaults`.
    pub fn or(self, defaults: Quota) -> Quota {
        Quota {
            max_bytes: self.max_bytes.or(defaults.max_bytes),
            max_files: self.max_files.or(defaults.max_files),
            max_versions: self.max_versions.or(defaults.max_versions),
        }
    }
}

/// What an app holds now: bytes and files of its current files, and its versions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
    pub versions: u64,
}

/// The refusal: which quota, its limit, what the app would reach, and how to answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaExceeded {
    pub quota: QuotaKind,
    pub limit: u64,
    pub current: u64,
    pub requested: u64,
}

impl QuotaExceeded {
    pub fn status(&self) -> u16 {
        self.quota.status()
    }

    pub fn message(&self) -> String {
        format!(
            "app {} quota exceeded: the change would reach {} {} (now {}), the limit is {}",
            self.quota.as_str(),
            self.requested,
            self.quota.as_str(),
            self.current,
            self.limit
        )
    }

    /// `{"error":{"code":"quota_exceeded","message","quota","limit","current","requested"}}`:
    /// the shape of every error body, with the quota named in its own fields.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": {
            "code": "quota_exceeded",
            "message": self.message(),
            "quota": self.quota.as_str(),
            "limit": self.limit,
            "current": self.current,
            "requested": self.requested,
        }})
    }

    /// The same refusal as the crate's error (status 413 or 409, message naming the quota),
    /// for handlers that only return `Error`.
    pub fn into_error(self) -> Error {
        Error::QuotaExceeded {
            quota: self.quota.as_str(),
            limit: self.limit,
            current: self.current,
            requested: self.requested,
            message: self.message(),
        }
    }
}

/// Checks the usage an app would have after a change (`after`) against `quota`, given what it
/// has `now`. Checked in the order bytes, files, versions; a measure that does not grow is
/// never refused.
pub fn check_quota(quota: &Quota, now: Usage, after: Usage) -> Result<(), QuotaExceeded> {
    let checks = [
        (QuotaKind::Bytes, quota.max_bytes, now.bytes, after.bytes),
        (QuotaKind::Files, quota.max_files, now.files, after.files),
        (QuotaKind::Versions, quota.max_versions, now.versions, after.versions),
    ];
    for (kind, limit, current, requested) in checks {
        if let Some(limit) = limit {
            if requested > limit && requested > current {
                return Err(QuotaExceeded { quota: kind, limit, current, requested });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn v(number: i64, age_days: i64, tagged: bool) -> VersionInfo {
        VersionInfo { number, created_ms: NOW - age_days * DAY_MS, tagged }
    }

    fn tags(pairs: &[(&str, i64)]) -> BTreeMap<Tag, i64> {
        pairs.iter().map(|(t, v)| (Tag::parse(t).unwrap(), *v)).collect()
    }

    #[test]
    fn keep_last_n_never_drops_newest_or_tagged() {
        let versions: Vec<VersionInfo> = (1..=10).map(|n| v(n, 100 - n, n == 2)).collect();
        let r = Retention::new(Some(3), None).unwrap();
        assert_eq!(r.to_delete(&versions, NOW), vec![1, 3, 4, 5, 6, 7]);
        // Shuffled input, same answer.
        let mut shuffled = versions.clone();
        shuffled.reverse();
        shuffled.swap(0, 5);
        assert_eq!(r.to_delete(&shuffled, NOW), vec![1, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn keep_days_uses_an_inclusive_cutoff() {
        let versions = [v(1, 40, false), v(2, 30, false), v(3, 29, false), v(4, 1, false)];
        let r = Retention::new(None, Some(30)).unwrap();
        assert_eq!(r.to_delete(&versions, NOW), vec![1]);
        // Newest survives even when it is old.
        let old = [v(1, 400, false), v(2, 300, false)];
        assert_eq!(r.to_delete(&old, NOW), vec![1]);
    }

    #[test]
    fn both_rules_keep_the_union() {
        let versions = [v(1, 90, false), v(2, 60, false), v(3, 10, false), v(4, 5, false), v(5, 1, false)];
        let r = Retention::new(Some(2), Some(30)).unwrap();
        // 4, 5 by count; 3, 4, 5 by age.
        assert_eq!(r.to_delete(&versions, NOW), vec![1, 2]);
    }

    #[test]
    fn no_policy_or_no_versions_deletes_nothing() {
        assert_eq!(Retention::default().to_delete(&[v(1, 999, false), v(2, 0, false)], NOW), Vec::<i64>::new());
        assert_eq!(Retention::new(Some(1), None).unwrap().to_delete(&[], NOW), Vec::<i64>::new());
        assert_eq!(Retention::new(Some(1), Some(1)).unwrap().to_delete(&[v(7, 999, false)], NOW), Vec::<i64>::new());
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let r = Retention::new(Some(1), Some(MAX_KEEP_DAYS)).unwrap();
        let versions =
            [VersionInfo { number: 1, created_ms: i64::MIN, tagged: false }, VersionInfo { number: 2, created_ms: 0, tagged: false }];
        assert_eq!(r.to_delete(&versions, i64::MIN), Vec::<i64>::new());
        assert_eq!(r.to_delete(&versions, i64::MAX), vec![1]);
    }

    #[test]
    fn retention_fields_are_validated() {
        assert!(Retention::new(Some(0), None).is_err());
        assert!(Retention::new(None, Some(0)).is_err());
        assert!(Retention::new(None, Some(MAX_KEEP_DAYS + 1)).is_err());
        assert!(Retention::new(Some(MAX_KEEP_LAST + 1), None).is_err());
        let e = Retention::new(Some(0), None).unwrap_err();
        assert!(e.to_string().contains("keep_last"));
        let parsed: Retention = serde_json::from_str(r#"{"keep_last": 5}"#).unwrap();
        assert_eq!(parsed, Retention { keep_last: Some(5), keep_days: None });
    }

    #[test]
    fn tags_are_short_lower_case_names() {
        for ok in ["production", "v1.2.3", "0", "a-b_c.d", &"x".repeat(32)] {
            assert_eq!(Tag::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "Production", "-x", ".x", "_x", "a b", "a/b", "ä", &"x".repeat(33), "x\n"] {
            assert!(Tag::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_tag_names_one_version_and_moves() {
        let existing = tags(&[("production", 3), ("staging", 5)]);
        let versions = [1, 2, 3, 4, 5];
        let prod = Tag::parse("production").unwrap();
        assert_eq!(set_tag(&existing, &versions, &prod, 3).unwrap(), TagChange::Unchanged);
        assert_eq!(set_tag(&existing, &versions, &prod, 5).unwrap(), TagChange::Moved { from: 3 });
        assert_eq!(set_tag(&existing, &versions, &Tag::parse("qa").unwrap(), 1).unwrap(), TagChange::Created);
        assert_eq!(set_tag(&existing, &versions, &prod, 9).unwrap_err().status(), 404);
        let full: BTreeMap<Tag, i64> = (0..MAX_TAGS_PER_APP).map(|i| (Tag::parse(&format!("t{i}")).unwrap(), 1)).collect();
        assert_eq!(set_tag(&full, &versions, &Tag::parse("one-more").unwrap(), 1).unwrap_err().status(), 409);
        assert_eq!(set_tag(&full, &versions, &Tag::parse("t0").unwrap(), 2).unwrap(), TagChange::Moved { from: 1 });
    }

    #[test]
    fn tagged_versions_cannot_be_deleted() {
        let t = tags(&[("production", 3), ("stable", 3)]);
        let e = check_delete(3, &[1, 2, 3], &t).unwrap_err();
        assert_eq!(e.status(), 409);
        assert!(e.to_string().contains("production, stable"), "{e}");
        assert_eq!(check_delete(9, &[1, 2, 3], &t).unwrap_err().status(), 404);
        assert!(check_delete(2, &[1, 2, 3], &t).is_ok());
        assert!(check_delete(1, &[1], &BTreeMap::new()).is_ok());
    }

    #[test]
    fn quotas_refuse_growth_past_a_limit_with_the_right_status() {
        let q = Quota { max_bytes: Some(1_000), max_files: Some(10), max_versions: Some(3) };
        let now = Usage { bytes: 900, files: 9, versions: 3 };
        assert!(check_quota(&q, now, Usage { bytes: 1_000, files: 10, versions: 3 }).is_ok());
        let bytes = check_quota(&q, now, Usage { bytes: 1_001, files: 11, ..now }).unwrap_err();
        assert_eq!((bytes.quota, bytes.status(), bytes.limit, bytes.requested), (QuotaKind::Bytes, 413, 1_000, 1_001));
        let files = check_quota(&q, now, Usage { files: 11, ..now }).unwrap_err();
        assert_eq!((files.quota, files.status()), (QuotaKind::Files, 409));
        let versions = check_quota(&q, now, Usage { versions: 4, ..now }).unwrap_err();
        assert_eq!((versions.quota, versions.status()), (QuotaKind::Versions, 409));
        let body = versions.body();
        assert_eq!(body["error"]["code"], "quota_exceeded");
        assert_eq!(body["error"]["quota"], "versions");
        assert!(body["error"]["message"].as_str().unwrap().contains("versions quota"));
        assert_eq!(bytes.clone().into_error().status(), 413);
        assert_eq!(files.into_error().status(), 409);
    }

    #[test]
    fn an_app_over_a_lowered_quota_may_still_shrink() {
        let q = Quota { max_bytes: Some(100), max_files: Some(1), max_versions: None };
        let now = Usage { bytes: 500, files: 5, versions: 40 };
        assert!(check_quota(&q, now, Usage { bytes: 400, files: 4, versions: 41 }).is_ok());
        assert!(check_quota(&q, now, now).is_ok());
        assert_eq!(check_quota(&q, now, Usage { bytes: 501, ..now }).unwrap_err().quota, QuotaKind::Bytes);
        assert!(check_quota(&Quota::default(), now, Usage { bytes: u64::MAX, files: u64::MAX, versions: u64::MAX }).is_ok());
    }

    #[test]
    fn quota_defaults_come_from_settings() {
        let q = Quota::from_lookup(|k| match k {
            "APP_MAX_BYTES" => Some("1000000".into()),
            "APP_MAX_FILES" => Some(" ".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(q, Quota { max_bytes: Some(1_000_000), max_files: None, max_versions: None });
        assert!(Quota::from_lookup(|k| (k == "APP_MAX_FILES").then(|| "many".into())).unwrap_err().contains("APP_MAX_FILES"));
        let app = Quota { max_files: Some(5), ..Quota::default() };
        assert_eq!(app.or(q), Quota { max_bytes: Some(1_000_000), max_files: Some(5), max_versions: None });
    }
}
