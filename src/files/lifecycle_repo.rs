//! SQL of an app's lifecycle (issue 13): tags, deleting versions and apps, retention and quota
//! settings, usage, the rollout settings table and the change log's pruning. Statement
//! builders are pure; the `async fn`s run them through [`MetaStore`].
//!
//! Deleting follows the storage core's order: one batch condemns the objects the doomed rows
//! name (marks eligible at once, `store::gc`) and deletes the rows; a sweep then deletes what
//! is still unreferenced. An object another file or version shares is referenced again when
//! the sweep claims, so its mark is dropped and the object stays.

use serde::Deserialize;

use super::lifecycle::{Quota, QuotaKind, Usage, VersionInfo};
use crate::error::Result;
use crate::stmt;
use crate::store::gc::CONDEMN_ON_CONFLICT;
use crate::store::{MetaStore, Statement};

/// Version numbers per statement: well under D1's 100 bound parameters.
const NUMBERS_PER_STATEMENT: usize = 90;

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------------
// Tags

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TagRow {
    pub tag: String,
    pub version_number: i64,
    pub updated_at: i64,
}

pub async fn tags(meta: &MetaStore, app_id: &str) -> Result<Vec<TagRow>> {
    meta.all(stmt!("SELECT tag, version_number, updated_at FROM app_version_tags WHERE app_id = ?1 ORDER BY tag", app_id)).await
}

/// Points `tag` at version `v`, if that version (still) exists; zero changes otherwise.
pub fn set_tag(app_id: &str, tag: &str, v: i64, now_ms: i64) -> Statement {
    stmt!(
        "INSERT INTO app_version_tags (app_id, tag, version_number, created_at, updated_at)
         SELECT ?1, ?2, ?3, ?4, ?4 WHERE EXISTS (SELECT 1 FROM app_versions WHERE app_id = ?1 AND version_number = ?3)
         ON CONFLICT (app_id, tag) DO UPDATE SET version_number = excluded.version_number, updated_at = excluded.updated_at",
        app_id,
        tag,
        v,
        now_ms
    )
}

pub fn delete_tag(app_id: &str, tag: &str) -> Statement {
    stmt!("DELETE FROM app_version_tags WHERE app_id = ?1 AND tag = ?2", app_id, tag)
}

// ---------------------------------------------------------------------------------------------
// Versions as retention sees them

pub async fn version_infos(meta: &MetaStore, app_id: &str) -> Result<Vec<VersionInfo>> {
    #[derive(Deserialize)]
    struct Row {
        version_number: i64,
        created_at: i64,
        tagged: i64,
    }
    let rows: Vec<Row> = meta
        .all(stmt!(
            "SELECT v.version_number, v.created_at,
               EXISTS (SELECT 1 FROM app_version_tags t WHERE t.app_id = v.app_id AND t.version_number = v.version_number) AS tagged
             FROM app_versions v WHERE v.app_id = ?1 ORDER BY v.version_number",
            app_id
        ))
        .await?;
    Ok(rows.into_iter().map(|r| VersionInfo { number: r.version_number, created_ms: r.created_at, tagged: r.tagged != 0 }).collect())
}

// ---------------------------------------------------------------------------------------------
// Deleting

/// Deletes versions `numbers` of an app with their lines, condemning the content objects and
/// manifests they name, and moves the app's revision on (a restore or snapshot that read
/// before this fails its guard rather than copying lines that are gone). A version a tag names
/// makes the batch fail on the tags' foreign key (the caller checked; a concurrent tag is a
/// conflict to retry).
pub fn delete_versions(app_id: &str, numbers: &[i64], reason: &str, now_ms: i64) -> Vec<Statement> {
    let mut out = vec![stmt!("UPDATE apps SET revision = revision + 1, updated_at = ?2 WHERE id = ?1", app_id, now_ms)];
    for chunk in numbers.chunks(NUMBERS_PER_STATEMENT) {
        let list = placeholders(4, chunk.len());
        let with = |sql: String| {
            let mut s = stmt!(sql, app_id, reason, now_ms);
            for n in chunk {
                s = s.bind(*n);
            }
            s
        };
        out.push(with(format!(
            "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at)
             SELECT DISTINCT r2_key, 'app_blob', 'condemned', ?2, ?3, ?3 FROM app_version_files
             WHERE app_id = ?1 AND version_number IN ({list}) AND r2_key IS NOT NULL {CONDEMN_ON_CONFLICT}"
        )));
        out.push(with(format!(
            "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at)
             SELECT snapshot_key, 'snapshot', 'condemned', ?2, ?3, ?3 FROM app_versions
             WHERE app_id = ?1 AND version_number IN ({list}) AND snapshot_key IS NOT NULL {CONDEMN_ON_CONFLICT}"
        )));
        // ?2 and ?3 are bound for the shared numbering; these statements do not use them.
        out.push(with(format!(
            "DELETE FROM app_version_files WHERE app_id = ?1 AND version_number IN ({list}) AND ?2 IS NOT NULL AND ?3 IS NOT NULL"
        )));
        out.push(with(format!(
            "DELETE FROM app_versions WHERE app_id = ?1 AND version_number IN ({list}) AND ?2 IS NOT NULL AND ?3 IS NOT NULL"
        )));
    }
    out
}

/// Deletes every row of an app (files, versions and their lines, tags, change log, the app),
/// condemning every object its rows name and `extra_keys` (objects under its prefix no row
/// names, condemned by the caller's statements).
pub fn delete_app(app_id: &str, reason: &str, now_ms: i64) -> Vec<Statement> {
    let condemn = |kind: &str, select: &str| {
        stmt!(
            format!(
                "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at)
                 SELECT DISTINCT k, '{kind}', 'condemned', ?2, ?3, ?3 FROM ({select}) WHERE k IS NOT NULL {CONDEMN_ON_CONFLICT}"
            ),
            app_id,
            reason,
            now_ms
        )
    };
    vec![
        condemn(
            "app_blob",
            "SELECT r2_key AS k FROM app_files WHERE app_id = ?1 UNION SELECT r2_key FROM app_version_files WHERE app_id = ?1",
        ),
        condemn("snapshot", "SELECT snapshot_key AS k FROM app_versions WHERE app_id = ?1"),
        stmt!("DELETE FROM app_version_tags WHERE app_id = ?1", app_id),
        stmt!("DELETE FROM app_version_files WHERE app_id = ?1", app_id),
        stmt!("DELETE FROM app_versions WHERE app_id = ?1", app_id),
        stmt!("DELETE FROM app_files WHERE app_id = ?1", app_id),
        stmt!("DELETE FROM app_file_changes WHERE app_id = ?1", app_id),
        stmt!("DELETE FROM apps WHERE id = ?1", app_id),
    ]
}

// ---------------------------------------------------------------------------------------------
// Settings of an app: retention and quotas

/// Sets the app's retention policy and quotas (NULL: none of its own), creating the app row if
/// needed (with `touch`, the caller's first statement).
pub fn set_limits(app_id: &str, retention: (Option<u32>, Option<u32>), quota: &Quota, now_ms: i64) -> Statement {
    stmt!(
        "UPDATE apps SET retention_keep_last = ?2, retention_keep_days = ?3, max_bytes = ?4, max_files = ?5, max_versions = ?6,
           updated_at = ?7 WHERE id = ?1",
        app_id,
        retention.0,
        retention.1,
        quota.max_bytes,
        quota.max_files,
        quota.max_versions,
        now_ms
    )
}

/// Apps with a retention policy after `after` (by id), for the retention job.
pub async fn apps_with_retention(meta: &MetaStore, after: &str, limit: u32) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let rows: Vec<Id> = meta
        .all(stmt!(
            "SELECT id FROM apps WHERE id > ?1 AND (retention_keep_last IS NOT NULL OR retention_keep_days IS NOT NULL)
             ORDER BY id LIMIT ?2",
            after,
            limit
        ))
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

// ---------------------------------------------------------------------------------------------
// Usage and the quota fence

pub async fn usage(meta: &MetaStore, app_id: &str) -> Result<Usage> {
    #[derive(Deserialize, Default)]
    struct Row {
        bytes: u64,
        files: u64,
        versions: u64,
    }
    let r: Row = meta
        .first(stmt!(
            "SELECT (SELECT COALESCE(SUM(size_bytes), 0) FROM app_files WHERE app_id = ?1) AS bytes,
                    (SELECT COUNT(*) FROM app_files WHERE app_id = ?1) AS files,
                    (SELECT COUNT(*) FROM app_versions WHERE app_id = ?1) AS versions",
            app_id
        ))
        .await?
        .unwrap_or_default();
    Ok(Usage { bytes: r.bytes, files: r.files, versions: r.versions })
}

/// The last statements of a batch that may grow an app: each aborts the whole batch (the
/// named CHECK of `app_quota_fence`) if the app now holds more than its limit and more than it
/// held before (`before`, read by the caller): a measure that does not grow is never refused,
/// and of two concurrent writes that each fit alone, the second one's batch fails.
pub fn quota_fence(app_id: &str, quota: &Quota, before: &Usage) -> Vec<Statement> {
    let measure = |kind: QuotaKind| match kind {
        QuotaKind::Bytes => "(SELECT COALESCE(SUM(size_bytes), 0) FROM app_files WHERE app_id = ?1)",
        QuotaKind::Files => "(SELECT COUNT(*) FROM app_files WHERE app_id = ?1)",
        QuotaKind::Versions => "(SELECT COUNT(*) FROM app_versions WHERE app_id = ?1)",
    };
    [
        (QuotaKind::Bytes, quota.max_bytes, before.bytes),
        (QuotaKind::Files, quota.max_files, before.files),
        (QuotaKind::Versions, quota.max_versions, before.versions),
    ]
    .into_iter()
    .filter_map(|(kind, limit, was)| {
        limit.map(|limit| {
            stmt!(
                format!("INSERT INTO app_quota_fence ({}) SELECT 1 WHERE {} > MAX(?2, ?3)", kind.as_str(), measure(kind)),
                app_id,
                limit,
                was
            )
        })
    })
    .collect()
}

// ---------------------------------------------------------------------------------------------
// Rollout settings

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SettingRow {
    pub name: String,
    pub value: String,
    pub updated_at: i64,
}

pub async fn settings(meta: &MetaStore) -> Result<Vec<SettingRow>> {
    meta.all(stmt!("SELECT name, value, updated_at FROM storage_settings ORDER BY name")).await
}

/// Sets a setting (`Some`) or removes it so the variable applies again (`None`).
pub fn put_setting(name: &str, value: Option<&str>, now_ms: i64) -> Statement {
    match value {
        Some(v) => stmt!(
            "INSERT INTO storage_settings (name, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            name,
            v,
            now_ms
        ),
        None => stmt!("DELETE FROM storage_settings WHERE name = ?1", name),
    }
}

/// Per app: its mode override and its current files' count and bytes by location (the
/// rollout report).
#[derive(Debug, Clone, Deserialize)]
pub struct AppLocationRow {
    pub app_id: String,
    pub storage_mode: Option<String>,
    pub location: Option<String>,
    pub files: u64,
    pub bytes: u64,
}

pub async fn app_locations(meta: &MetaStore) -> Result<Vec<AppLocationRow>> {
    meta.all(stmt!(
        "SELECT a.id AS app_id, a.storage_mode, f.storage_location AS location, COUNT(f.path) AS files,
           COALESCE(SUM(f.size_bytes), 0) AS bytes
         FROM apps a LEFT JOIN app_files f ON f.app_id = a.id GROUP BY a.id, f.storage_location ORDER BY a.id"
    ))
    .await
}

// ---------------------------------------------------------------------------------------------
// Change log pruning

/// Log rows older than `cutoff_ms` go; each app whose rows went records the newest revision it
/// lost, so a cursor from before it is told to resync.
pub fn prune_changes(cutoff_ms: i64) -> Vec<Statement> {
    vec![
        stmt!(
            "UPDATE apps SET changes_pruned_through = MAX(changes_pruned_through,
               (SELECT MAX(revision) FROM app_file_changes c WHERE c.app_id = apps.id AND c.created_at < ?1))
             WHERE id IN (SELECT DISTINCT app_id FROM app_file_changes WHERE created_at < ?1)",
            cutoff_ms
        ),
        stmt!("DELETE FROM app_file_changes WHERE created_at < ?1", cutoff_ms),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::repo::MAX_PARAMS;

    #[test]
    fn deleting_many_versions_stays_under_the_parameter_limit() {
        let numbers: Vec<i64> = (1..=200).collect();
        let stmts = delete_versions("app", &numbers, "retention", 5);
        assert!(stmts.iter().all(|s| s.params.len() <= MAX_PARAMS));
        // revision bump + 3 chunks × (condemn blobs, condemn snapshots, delete lines, delete versions)
        assert_eq!(stmts.len(), 1 + 3 * 4);
        let bound: usize = stmts[1..].iter().step_by(4).map(|s| s.params.len() - 3).sum();
        assert_eq!(bound, 200);
        // Marks first, rows after: an object is never unreferenced without its mark.
        assert!(stmts[1].sql.contains("INSERT INTO gc_marks") && stmts[3].sql.starts_with("DELETE FROM app_version_files"));
    }

    #[test]
    fn deleting_an_app_condemns_before_it_deletes_and_removes_parents_last() {
        let stmts = delete_app("demo", "app deleted", 1);
        let first_delete = stmts.iter().position(|s| s.sql.starts_with("DELETE")).unwrap();
        assert!(stmts[..first_delete].iter().all(|s| s.sql.contains("INSERT INTO gc_marks")));
        assert!(stmts.last().unwrap().sql.starts_with("DELETE FROM apps"));
        let order: Vec<usize> = ["app_version_tags", "app_version_files", "app_versions ", "app_files "]
            .iter()
            .map(|t| stmts.iter().position(|s| s.sql.contains(&format!("DELETE FROM {t}"))).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "children before parents: {order:?}");
    }

    #[test]
    fn the_quota_fence_checks_only_limits_that_are_set() {
        let before = Usage { bytes: 10, files: 2, versions: 1 };
        assert!(quota_fence("a", &Quota::default(), &before).is_empty());
        let q = Quota { max_bytes: Some(100), max_files: None, max_versions: Some(3) };
        let stmts = quota_fence("a", &q, &before);
        assert_eq!(stmts.len(), 2);
        assert!(stmts[0].sql.starts_with("INSERT INTO app_quota_fence (bytes)"));
        assert_eq!(stmts[0].params, vec!["a".into(), 100u64.into(), 10u64.into()]);
        assert!(stmts[1].sql.contains("app_quota_fence (versions)"));
    }
}
