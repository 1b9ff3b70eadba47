//! Every kind of object r2d1 writes, as data: where it lives, which workload owns it, whether
//! the GC's listing pass may collect it when nothing references it, and which D1 columns
//! reference it. The object layer, the GC, the consistency check and the jobs are written once
//! over this table; a workload is a set of rows here, not a copy of the machinery.
//!
//! Pure (no `worker`): the SQL fragments built from the table are unit-tested on the host.

/// Who owns a kind: the two workloads r2d1 serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Omi,
    Files,
}

/// One D1 column that names objects of a kind, with the column holding the hash the object's
/// logical bytes must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefSource {
    pub table: &'static str,
    pub key_col: &'static str,
    pub sha_col: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An Omi memory's raw JSON (`by-user/`).
    Memory,
    /// The old tools' per-day copy of a memory (`all/`).
    DailyCopy,
    /// A real-time transcript batch.
    Transcript,
    /// A day summary.
    DaySummary,
    /// Content-addressed app file bytes (`apps/{app}/blobs/{sha256}`).
    AppBlob,
    /// A version manifest too large to stay inline (`apps/{app}/snapshots/{n}.json`).
    Snapshot,
    /// Derived reports the cron writes (`analytics/`); nothing references them.
    Rollup,
}

pub struct KindInfo {
    pub name: &'static str,
    pub workload: Workload,
    /// Every object of the kind is under this prefix (others may share it: see [`Kind::of_key`]).
    pub prefix: &'static str,
    /// Whether the GC's listing pass condemns an unreferenced object of this kind. Omi kinds
    /// are not: an unindexed memory may be a delivery whose D1 write failed, and must be
    /// indexed by reconciliation rather than lost.
    pub listing_gc: bool,
    pub refs: &'static [RefSource],
}

pub const OMI_ROOT: &str = "mobil3-mentorships/";

const MEMORY: KindInfo = KindInfo {
    name: "memory",
    workload: Workload::Omi,
    prefix: "mobil3-mentorships/by-user/",
    listing_gc: false,
    refs: &[RefSource { table: "omi_memory_versions", key_col: "r2_key", sha_col: "sha256" }],
};
const DAILY_COPY: KindInfo = KindInfo {
    name: "daily_copy",
    workload: Workload::Omi,
    prefix: "mobil3-mentorships/all/",
    listing_gc: false,
    refs: &[RefSource { table: "omi_memory_versions", key_col: "daily_key", sha_col: "sha256" }],
};
const TRANSCRIPT: KindInfo = KindInfo {
    name: "transcript",
    workload: Workload::Omi,
    prefix: "mobil3-mentorships/transcripts/",
    listing_gc: false,
    refs: &[RefSource { table: "omi_transcript_batches", key_col: "r2_key", sha_col: "sha256" }],
};
const DAY_SUMMARY: KindInfo = KindInfo {
    name: "day_summary",
    workload: Workload::Omi,
    prefix: "mobil3-mentorships/day-summaries/",
    listing_gc: false,
    refs: &[RefSource { table: "omi_day_summaries", key_col: "r2_key", sha_col: "sha256" }],
};
const APP_BLOB: KindInfo = KindInfo {
    name: "app_blob",
    workload: Workload::Files,
    prefix: "apps/",
    listing_gc: true,
    refs: &[
        RefSource { table: "app_files", key_col: "r2_key", sha_col: "sha256" },
        RefSource { table: "app_version_files", key_col: "r2_key", sha_col: "sha256" },
    ],
};
const SNAPSHOT: KindInfo = KindInfo {
    name: "snapshot",
    workload: Workload::Files,
    prefix: "apps/",
    listing_gc: true,
    refs: &[RefSource { table: "app_versions", key_col: "snapshot_key", sha_col: "manifest_sha256" }],
};
const ROLLUP: KindInfo =
    KindInfo { name: "rollup", workload: Workload::Omi, prefix: "mobil3-mentorships/analytics/", listing_gc: false, refs: &[] };

impl Kind {
    pub const ALL: [Kind; 7] =
        [Kind::Memory, Kind::DailyCopy, Kind::Transcript, Kind::DaySummary, Kind::AppBlob, Kind::Snapshot, Kind::Rollup];

    pub fn info(self) -> &'static KindInfo {
        match self {
            Kind::Memory => &MEMORY,
            Kind::DailyCopy => &DAILY_COPY,
            Kind::Transcript => &TRANSCRIPT,
            Kind::DaySummary => &DAY_SUMMARY,
            Kind::AppBlob => &APP_BLOB,
            Kind::Snapshot => &SNAPSHOT,
            Kind::Rollup => &ROLLUP,
        }
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind a key belongs to, by prefix and (under `apps/`) by shape.
    pub fn of_key(key: &str) -> Option<Kind> {
        if key.starts_with("apps/") {
            let parts: Vec<&str> = key.split('/').collect();
            return match parts.as_slice() {
                ["apps", app, "blobs", _] if !app.is_empty() => Some(Kind::AppBlob),
                ["apps", app, "snapshots", _] if !app.is_empty() => Some(Kind::Snapshot),
                _ => None,
            };
        }
        [Kind::Memory, Kind::DailyCopy, Kind::Transcript, Kind::DaySummary, Kind::Rollup]
            .into_iter()
            .find(|k| key.starts_with(k.info().prefix))
    }

    /// Keys r2d1 wrote before every object carried `r2d1-writer`: the GC may treat an object
    /// with such a key as ours even without the metadata. Anything else without the metadata
    /// is someone else's and never touched.
    pub fn is_legacy_shape(self, key: &str) -> bool {
        let parts: Vec<&str> = key.split('/').collect();
        match (self, parts.as_slice()) {
            (Kind::AppBlob, ["apps", _, "blobs", sha]) => crate::store::digest::is_sha256_hex(sha),
            (Kind::Snapshot, ["apps", _, "snapshots", name]) => name.strip_suffix(".json").is_some_and(|n| {
                let (version, sha) = n.split_once('-').unwrap_or((n, ""));
                version.parse::<u64>().is_ok() && sha.bytes().all(|b| b.is_ascii_hexdigit())
            }),
            _ => false,
        }
    }

    /// SQL that is true when nothing in D1 references the key `key_expr` (a column or a bound
    /// parameter): the GC's condition for condemning and for claiming.
    pub fn unreferenced_sql(self, key_expr: &str) -> String {
        let refs = self.info().refs;
        if refs.is_empty() {
            return "1".into();
        }
        refs.iter()
            .map(|r| format!("NOT EXISTS (SELECT 1 FROM {} WHERE {} = {key_expr})", r.table, r.key_col))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Every referenced key of the kind with the hash its rows expect, as `(key, sha, shas)`
    /// where `shas` counts distinct hashes (more than one means the rows disagree): the
    /// consistency check's D1 side, in key order.
    pub fn references_sql(self) -> Option<String> {
        let refs = self.info().refs;
        if refs.is_empty() {
            return None;
        }
        let union = refs
            .iter()
            .map(|r| format!("SELECT {k} AS key, {s} AS sha FROM {t} WHERE {k} IS NOT NULL", k = r.key_col, s = r.sha_col, t = r.table))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        Some(format!(
            "SELECT key, MIN(sha) AS sha, COUNT(DISTINCT sha) AS shas FROM ({union}) WHERE key > ?1 AND key LIKE ?2 \
             GROUP BY key ORDER BY key LIMIT ?3"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
        let mut names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Kind::ALL.len());
    }

    #[test]
    fn keys_map_to_their_kind() {
        let sha = "a".repeat(64);
        assert_eq!(Kind::of_key(&format!("apps/x/blobs/{sha}")), Some(Kind::AppBlob));
        assert_eq!(Kind::of_key("apps/x/snapshots/3.json"), Some(Kind::Snapshot));
        assert_eq!(Kind::of_key("apps/x/other/3.json"), None);
        assert_eq!(Kind::of_key("mobil3-mentorships/by-user/u/2024/01/m-1.json"), Some(Kind::Memory));
        assert_eq!(Kind::of_key("mobil3-mentorships/all/2024-01-01/u-m-1.json"), Some(Kind::DailyCopy));
        assert_eq!(Kind::of_key("mobil3-mentorships/transcripts/u/s/1-ab.json"), Some(Kind::Transcript));
        assert_eq!(Kind::of_key("mobil3-mentorships/day-summaries/u/2024-01-01.json"), Some(Kind::DaySummary));
        assert_eq!(Kind::of_key("mobil3-mentorships/analytics/user-stats/u.json"), Some(Kind::Rollup));
        assert_eq!(Kind::of_key("elsewhere/x"), None);
        for k in Kind::ALL {
            assert!(k.info().prefix.ends_with('/'));
        }
    }

    #[test]
    fn only_file_kinds_are_collected_by_listing_and_their_legacy_shapes_are_strict() {
        let listing: Vec<_> = Kind::ALL.into_iter().filter(|k| k.info().listing_gc).collect();
        assert_eq!(listing, vec![Kind::AppBlob, Kind::Snapshot]);
        assert!(Kind::AppBlob.is_legacy_shape(&format!("apps/a/blobs/{}", "0".repeat(64))));
        assert!(!Kind::AppBlob.is_legacy_shape("apps/a/blobs/not-a-hash"));
        assert!(Kind::Snapshot.is_legacy_shape("apps/a/snapshots/12.json"));
        assert!(Kind::Snapshot.is_legacy_shape("apps/a/snapshots/12-abcdef0123456789.json"));
        assert!(!Kind::Snapshot.is_legacy_shape("apps/a/snapshots/x.json"));
    }

    #[test]
    fn reference_sql_covers_every_source() {
        let s = Kind::AppBlob.unreferenced_sql("m.key");
        assert_eq!(
            s,
            "NOT EXISTS (SELECT 1 FROM app_files WHERE r2_key = m.key) AND NOT EXISTS (SELECT 1 FROM app_version_files WHERE r2_key = m.key)"
        );
        assert_eq!(Kind::Rollup.unreferenced_sql("k"), "1");
        assert!(Kind::Rollup.references_sql().is_none());
        let r = Kind::Snapshot.references_sql().unwrap();
        assert!(r.contains("SELECT snapshot_key AS key, manifest_sha256 AS sha FROM app_versions"));
    }
}
