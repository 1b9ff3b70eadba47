//! The SQL of the old app's migration (`omi::migration`): the uid mapping, what a pass found
//! of the old objects, the content-hash backfill, and the report (tables in
//! `migrations/0008_omi_compat.sql`). Statement builders are pure; the async helpers run them
//! through `MetaStore`.

use serde::Deserialize;

use super::legacy::{Conflict, Mapping, MentorReport, Problem};
use crate::error::Result;
use crate::stmt;
use crate::store::{MetaStore, Statement};

/// D1 binds at most 100 parameters per statement.
const KEYS_PER_STATEMENT: usize = 90;

// --- the mapping ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct MappingRow {
    sanitized: String,
    uid: String,
}

pub async fn mapping(meta: &MetaStore) -> Result<Mapping> {
    let rows: Vec<MappingRow> = meta.all(stmt!("SELECT sanitized, uid FROM omi_uid_mapping ORDER BY sanitized")).await?;
    Ok(Mapping::from_pairs(rows.iter().map(|r| (r.sanitized.as_str(), r.uid.as_str()))))
}

/// Replaces the whole mapping, in one transaction.
pub fn replace_mapping(mapping: &Mapping, now: i64) -> Vec<Statement> {
    let pairs: Vec<(&str, &str)> = mapping.pairs().collect();
    let mut out = vec![stmt!("DELETE FROM omi_uid_mapping")];
    for chunk in pairs.chunks(30) {
        let values = (0..chunk.len()).map(|i| format!("(?{}, ?{}, ?1)", 2 * i + 2, 2 * i + 3)).collect::<Vec<_>>().join(", ");
        let mut s = Statement::new(format!("INSERT INTO omi_uid_mapping (sanitized, uid, updated_at) VALUES {values}")).bind(now);
        for (class, uid) in chunk {
            s = s.bind(*class).bind(*uid);
        }
        out.push(s);
    }
    out
}

// --- content hashes of versions stored before 0008 ------------------------------------------------

/// A version row without a content hash.
#[derive(Debug, Clone, Deserialize)]
pub struct Unhashed {
    pub id: i64,
    pub r2_key: String,
    pub sha256: String,
}

pub fn unhashed_versions(after_rowid: i64, limit: u32) -> Statement {
    stmt!(
        "SELECT rowid AS id, r2_key, sha256 FROM omi_memory_versions WHERE content_sha256 IS NULL AND rowid > ?1 ORDER BY rowid LIMIT ?2",
        after_rowid,
        limit
    )
}

/// Records a version's content hash. `OR IGNORE`: a memory stored twice before 0008 (its bytes
/// differing, its content not) keeps the second row without one; both stay readable.
pub fn set_content_hash(rowid: i64, content_sha256: &str) -> Statement {
    stmt!("UPDATE OR IGNORE omi_memory_versions SET content_sha256 = ?2 WHERE rowid = ?1 AND content_sha256 IS NULL", rowid, content_sha256)
}

// --- what a pass found --------------------------------------------------------------------------

/// One old object as the scan classified it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyObject {
    pub key: String,
    pub layout: Option<&'static str>,
    /// `copy`, `unreadable` or `skipped`.
    pub state: &'static str,
    pub spelling: Option<String>,
    pub uid_class: Option<String>,
    pub storable: bool,
    pub class_storable: bool,
    pub memory_id: Option<String>,
    pub content_sha256: Option<String>,
    pub received_ms: Option<i64>,
    pub size_bytes: u64,
    /// JSON array text.
    pub others: Option<String>,
    pub reason: Option<String>,
}

/// A new pass starts from a clean slate: what earlier passes found but did not finish is
/// found again (objects may have changed or gone since). Stored and condemned rows stay: the
/// first still need their cleanup, the second are the ledger of finished work.
pub fn start_pass() -> Statement {
    stmt!("DELETE FROM omi_legacy_objects WHERE state IN ('copy', 'unreadable', 'skipped')")
}

/// Records what the scan found. A key already stored (an interrupted run) keeps its state and
/// joins this pass.
pub fn record_object(pass: i64, o: &LegacyObject, now: i64) -> Statement {
    stmt!(
        "INSERT INTO omi_legacy_objects (key, pass, layout, state, spelling, uid_class, storable, class_storable, memory_id, \
           content_sha256, received_at, size_bytes, others, reason, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (key) DO UPDATE SET pass = excluded.pass, updated_at = excluded.updated_at",
        o.key.as_str(),
        pass,
        o.layout,
        o.state,
        o.spelling.clone(),
        o.uid_class.clone(),
        o.storable,
        o.class_storable,
        o.memory_id.clone(),
        o.content_sha256.clone(),
        o.received_ms,
        o.size_bytes as i64,
        o.others.clone(),
        o.reason.clone(),
        now
    )
}

/// One content of one memory, with every old copy that holds it.
#[derive(Debug, Clone, Deserialize)]
pub struct PlannedVersion {
    pub uid: String,
    pub memory_id: String,
    pub content_sha256: String,
    pub received_at: i64,
    /// JSON array of the copies' keys.
    pub keys: String,
}

impl PlannedVersion {
    pub fn keys(&self) -> Vec<String> {
        serde_json::from_str(&self.keys).unwrap_or_default()
    }
}

/// The next versions to store, by mentor and memory, each memory's in received order.
pub fn next_versions(pass: i64, limit: u32) -> Statement {
    stmt!(
        "SELECT uid, memory_id, content_sha256, MIN(received_at) AS received_at, json_group_array(key) AS keys \
         FROM omi_legacy_resolved WHERE pass = ?1 AND state = 'copy' AND uid IS NOT NULL \
         GROUP BY uid, memory_id, content_sha256 ORDER BY uid, memory_id, MIN(received_at), content_sha256 LIMIT ?2",
        pass,
        limit
    )
}

fn keyed<'a>(sql_head: &str, keys: &'a [String], first_param: usize) -> Vec<(String, &'a [String])> {
    keys.chunks(KEYS_PER_STATEMENT)
        .map(|chunk| {
            let list = (0..chunk.len()).map(|i| format!("?{}", i + first_param)).collect::<Vec<_>>().join(", ");
            (format!("{sql_head} ({list})"), chunk)
        })
        .collect()
}

/// The copies at `keys` are stored: their content is the version at `stored_key`.
pub fn mark_stored(keys: &[String], uid: &str, stored_key: &str, now: i64) -> Vec<Statement> {
    keyed(
        "UPDATE omi_legacy_objects SET state = 'stored', stored_uid = ?1, stored_key = ?2, updated_at = ?3 WHERE state = 'copy' AND key IN",
        keys,
        4,
    )
    .into_iter()
    .map(|(sql, chunk)| chunk.iter().fold(stmt!(sql, uid, stored_key, now), |s, k| s.bind(k.as_str())))
    .collect()
}

/// The copies at `keys` could not be read back when their content was to be stored.
pub fn mark_unreadable(keys: &[String], reason: &str, now: i64) -> Vec<Statement> {
    keyed("UPDATE omi_legacy_objects SET state = 'unreadable', reason = ?1, updated_at = ?2 WHERE state = 'copy' AND key IN", keys, 3)
        .into_iter()
        .map(|(sql, chunk)| chunk.iter().fold(stmt!(sql, reason, now), |s, k| s.bind(k.as_str())))
        .collect()
}

/// Old objects whose content is stored, waiting to be condemned.
pub fn stored_keys(limit: u32) -> Statement {
    stmt!("SELECT key FROM omi_legacy_objects WHERE state = 'stored' ORDER BY key LIMIT ?1", limit)
}

pub fn mark_condemned(keys: &[String], now: i64) -> Vec<Statement> {
    keyed("UPDATE omi_legacy_objects SET state = 'condemned', updated_at = ?1 WHERE state = 'stored' AND key IN", keys, 2)
        .into_iter()
        .map(|(sql, chunk)| chunk.iter().fold(stmt!(sql, now), |s, k| s.bind(k.as_str())))
        .collect()
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyRow {
    pub key: String,
}

// --- the report ------------------------------------------------------------------------------------

/// How many entries each list of the report shows (the counts are always complete).
pub const REPORT_LIST_LIMIT: u32 = 100;

/// What the report counts: copies of this pass that are attributed and storable.
const COUNTED: &str = "pass = ?1 AND state IN ('copy', 'stored', 'condemned') AND uid IS NOT NULL";

pub fn report_statements(pass: i64) -> Vec<Statement> {
    let n = REPORT_LIST_LIMIT;
    vec![
        stmt!(
            format!(
                "SELECT uid, MAX(mapped) AS mapped, COUNT(DISTINCT memory_id) AS memories, \
                   COUNT(DISTINCT memory_id || char(10) || content_sha256) AS versions, COUNT(*) AS copies \
                 FROM omi_legacy_resolved WHERE {COUNTED} GROUP BY uid ORDER BY uid"
            ),
            pass
        ),
        stmt!(
            format!(
                "SELECT COUNT(DISTINCT uid || char(10) || memory_id) AS memories, \
                   COUNT(DISTINCT uid || char(10) || memory_id || char(10) || content_sha256) AS versions, COUNT(*) AS copies, \
                   COUNT(DISTINCT CASE WHEN state != 'copy' THEN uid || char(10) || memory_id || char(10) || content_sha256 END) AS stored_versions \
                 FROM omi_legacy_resolved WHERE {COUNTED}"
            ),
            pass
        ),
        stmt!("SELECT key AS source, reason FROM omi_legacy_objects WHERE pass = ?1 AND state = 'unreadable' ORDER BY key LIMIT ?2", pass, n),
        stmt!(
            "SELECT key AS source, spelling AS uid, others FROM omi_legacy_objects WHERE pass = ?1 AND others IS NOT NULL ORDER BY key LIMIT ?2",
            pass,
            n
        ),
        stmt!("SELECT key FROM omi_legacy_objects WHERE pass = ?1 AND state = 'skipped' ORDER BY key LIMIT ?2", pass, n),
        stmt!(
            "SELECT DISTINCT spelling AS key FROM omi_legacy_resolved WHERE pass = ?1 AND state = 'copy' AND uid IS NULL ORDER BY spelling LIMIT ?2",
            pass,
            n
        ),
        stmt!(
            "SELECT state, COUNT(*) AS n FROM omi_legacy_objects WHERE pass = ?1 GROUP BY state \
             UNION ALL SELECT 'earlier', COUNT(*) FROM omi_legacy_objects WHERE pass != ?1 AND state = 'condemned' \
             UNION ALL SELECT 'conflicts', COUNT(*) FROM omi_legacy_objects WHERE pass = ?1 AND others IS NOT NULL",
            pass
        ),
        // Versions of this pass whose content r2d1 holds already (by an earlier run, the
        // webhook or an import), under the mentor they resolve to.
        stmt!(
            "SELECT COUNT(*) AS n FROM (SELECT DISTINCT uid, memory_id, content_sha256 FROM omi_legacy_resolved \
               WHERE pass = ?1 AND state = 'copy' AND uid IS NOT NULL) x \
             WHERE EXISTS (SELECT 1 FROM omi_memory_versions v WHERE v.user_id = x.uid AND v.memory_id = x.memory_id \
               AND v.content_sha256 = x.content_sha256)",
            pass
        ),
    ]
}

#[derive(Debug, Clone, Deserialize)]
pub struct MentorRow {
    pub uid: String,
    pub mapped: i64,
    pub memories: i64,
    pub versions: i64,
    pub copies: i64,
}

impl From<MentorRow> for MentorReport {
    fn from(r: MentorRow) -> Self {
        MentorReport {
            uid: r.uid,
            mapped: r.mapped != 0,
            memories: r.memories as usize,
            versions: r.versions as usize,
            copies: r.copies as usize,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TotalsRow {
    pub memories: i64,
    pub versions: i64,
    pub copies: i64,
    pub stored_versions: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProblemRow {
    pub source: String,
    pub reason: Option<String>,
}

impl From<ProblemRow> for Problem {
    fn from(r: ProblemRow) -> Self {
        Problem { source: r.source, reason: r.reason.unwrap_or_default() }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConflictRow {
    pub source: String,
    pub uid: Option<String>,
    pub others: String,
}

impl From<ConflictRow> for Conflict {
    fn from(r: ConflictRow) -> Self {
        Conflict { source: r.source, uid: r.uid.unwrap_or_default(), others: serde_json::from_str(&r.others).unwrap_or_default() }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct StateCount {
    pub state: String,
    pub n: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_stay_under_the_parameter_limit() {
        let keys: Vec<String> = (0..250).map(|i| format!("mobil3-mentorships/all/2024-01-01/u-{i}-1.json")).collect();
        for stmts in [mark_stored(&keys, "u", "k", 1), mark_unreadable(&keys, "r", 1), mark_condemned(&keys, 1)] {
            assert_eq!(stmts.len(), 3);
            assert!(stmts.iter().all(|s| s.params.len() <= 100));
            let bound: usize = stmts
                .iter()
                .map(|s| s.params.iter().filter(|p| matches!(p, crate::store::Value::Text(t) if t.starts_with("mobil3"))).count())
                .sum();
            assert_eq!(bound, 250);
        }
        let pairs: Vec<(String, String)> = (0..70).map(|i| (format!("s{i}"), format!("U{i}"))).collect();
        let mapping = Mapping::from_pairs(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        let stmts = replace_mapping(&mapping, 5);
        assert_eq!(stmts.len(), 1 + 3);
        assert!(stmts.iter().all(|s| s.params.len() <= 100));
        assert_eq!(stmts[1].params.len(), 1 + 60);
        assert!(stmts[1].sql.ends_with("(?60, ?61, ?1)"));
    }

    #[test]
    fn a_recorded_object_binds_every_column_in_order() {
        let o = LegacyObject { key: "k".into(), state: "copy", storable: true, size_bytes: 7, ..Default::default() };
        let s = record_object(3, &o, 9);
        assert_eq!(s.params.len(), 15);
        assert_eq!(s.params[0], crate::store::Value::Text("k".into()));
        assert_eq!(s.params[1], crate::store::Value::Int(3));
        assert_eq!(s.params[14], crate::store::Value::Int(9));
    }
}
