//! The Omi index in D1: every SQL statement the Omi routes run. Statement builders are pure
//! (host-tested); `OmiRepo` executes them through `MetaStore`.

use serde::{Deserialize, Serialize};

use super::analytics::{MemoryAnalytics, ANALYTICS_VERSION};
use super::cursor::{Cursor, RankCursor, RELEVANCE_WINDOW};
use super::link;
use super::payload::Memory;
use super::query::LogsQuery;
use crate::error::Result;
use crate::stmt;
use crate::store::{MetaStore, Statement, Value as Param};

/// The columns a log entry shows.
const LOG_COLUMNS: &str = "m.seq, m.user_id, m.memory_id, m.version, m.created_at, m.started_at, m.finished_at, \
     m.duration_seconds, m.title, m.overview, m.emoji, m.category, m.language, m.source, m.discarded, \
     m.segment_count, m.word_count, m.action_items_total, m.action_items_open, m.r2_key, m.sha256, \
     m.size_bytes, m.received_at";

#[derive(Debug, Clone, Deserialize)]
pub struct LogRow {
    pub seq: i64,
    pub user_id: String,
    pub memory_id: String,
    pub version: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub title: Option<String>,
    pub overview: Option<String>,
    pub emoji: Option<String>,
    pub category: String,
    pub language: Option<String>,
    pub source: Option<String>,
    pub discarded: i64,
    pub segment_count: i64,
    pub word_count: i64,
    pub action_items_total: i64,
    pub action_items_open: i64,
    pub r2_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub received_at: i64,
}

impl LogRow {
    pub fn cursor(&self) -> Cursor {
        Cursor { created_ms: self.created_at, seq: self.seq }
    }
}

/// A stored version of a memory.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct VersionRow {
    pub version: i64,
    pub r2_key: String,
    pub sha256: String,
    #[serde(default)]
    pub daily_key: Option<String>,
}

/// A version as `GET /api/omi/logs/{uid}/{memoryId}/versions` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct VersionInfo {
    pub version: i64,
    pub r2_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub received_at: i64,
}

/// A mentor with the running totals the triggers keep.
#[derive(Debug, Clone, Deserialize)]
pub struct UserRow {
    pub user_id: String,
    pub memories: i64,
    pub discarded: i64,
    pub total_duration_seconds: f64,
    pub words: i64,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
}

/// A mentor's aggregate statistics.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StatsRow {
    pub memories: i64,
    pub discarded: Option<i64>,
    pub total_duration_seconds: f64,
    pub words: i64,
    pub segments: i64,
    pub action_items_total: i64,
    pub action_items_completed: i64,
    pub active_days: i64,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CategoryRow {
    pub category: String,
    pub memories: i64,
}

/// Memories, minutes and mentors of one UTC day (days since the epoch).
#[derive(Debug, Clone, Deserialize)]
pub struct DayRow {
    pub day: i64,
    pub memories: i64,
    pub minutes: Option<f64>,
    pub mentors: i64,
}

/// A stored day summary.
#[derive(Debug, Clone, Deserialize)]
pub struct DaySummaryRow {
    pub r2_key: String,
    pub sha256: String,
}

/// Everything needed to index one stored object.
pub struct NewVersion<'a> {
    pub uid: &'a str,
    pub memory: &'a Memory,
    pub sha256: &'a str,
    /// The content hash (`omi::content`): what deduplicates versions.
    pub content_sha256: &'a str,
    pub r2_key: &'a str,
    pub daily_key: Option<&'a str>,
    pub size_bytes: usize,
    pub received_ms: i64,
    pub delivery_id: Option<&'a str>,
}

/// The filters shared by the page query and its count (everything but the cursor).
fn log_filters(q: &LogsQuery) -> (String, Vec<Param>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Param> = Vec::new();
    // Binds `values` in order, numbering the clause's `?`s after the parameters so far.
    let mut add = |clause: &str, values: Vec<Param>| {
        clauses.push(crate::store::meta::numbered(clause, params.len() + 1));
        params.extend(values);
    };
    if let Some(uid) = &q.user_id {
        add("m.user_id = ?", vec![uid.into()]);
    }
    if !q.only_users.is_empty() {
        let slots = vec!["?"; q.only_users.len()].join(", ");
        add(&format!("m.user_id IN ({slots})"), q.only_users.iter().map(Param::from).collect());
    }
    if let Some(from) = q.from_ms {
        add("m.created_at >= ?", vec![from.into()]);
    }
    if let Some(to) = q.to_ms {
        add("m.created_at < ?", vec![to.into()]);
    }
    if let Some(c) = &q.category {
        add("m.category = ?", vec![c.into()]);
    }
    if let Some(fts) = &q.fts {
        // The memory's own text, or the real-time transcript batches linked to it.
        add(
            "m.seq IN (SELECT rowid FROM omi_memories_fts WHERE omi_memories_fts MATCH ? \
             UNION SELECT lm.seq FROM omi_transcripts_fts f JOIN omi_transcript_batches b ON b.seq = f.rowid \
             JOIN omi_memories lm ON lm.user_id = b.user_id AND lm.memory_id = b.memory_id WHERE omi_transcripts_fts MATCH ?)",
            vec![fts.into(), fts.into()],
        );
    }
    if !q.include_discarded {
        add("m.discarded = 0", vec![]);
    }
    let sql = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
    (sql, params)
}

/// Every mentor's running totals, or only those among `only` (a forced filter).
pub fn users_statement(only: &[String]) -> Statement {
    let filter = if only.is_empty() {
        String::new()
    } else {
        format!(" WHERE user_id IN ({})", (1..=only.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", "))
    };
    let mut s = Statement::new(format!(
        "SELECT user_id, memories, discarded, duration_seconds AS total_duration_seconds, words, \
           first_created AS first_seen, last_created AS last_seen \
         FROM omi_user_totals{filter} ORDER BY last_seen DESC, user_id"
    ));
    for u in only {
        s = s.bind(u.as_str());
    }
    s
}

/// Memories and minutes per UTC day in `[from, to)` (widened to whole days), of one mentor,
/// of the mentors among `only`, or of all.
pub fn daily_statement(from_ms: i64, to_ms: i64, uid: Option<&str>, only: &[String]) -> Statement {
    const DAY: i64 = 86_400_000;
    let (first, end) = (from_ms.div_euclid(DAY), (to_ms + DAY - 1).div_euclid(DAY));
    let mut s = stmt!(
        "SELECT day, SUM(memories) AS memories, SUM(duration_seconds) / 60.0 AS minutes, COUNT(*) AS mentors \
         FROM omi_daily_totals WHERE day >= ?1 AND day < ?2",
        first,
        end
    );
    if let Some(uid) = uid {
        s.params.push(uid.into());
        s.sql.push_str(&format!(" AND user_id = ?{}", s.params.len()));
    }
    if !only.is_empty() {
        let start = s.params.len() + 1;
        let slots: Vec<String> = (0..only.len()).map(|i| format!("?{}", start + i)).collect();
        s.sql.push_str(&format!(" AND user_id IN ({})", slots.join(", ")));
        for u in only {
            s.params.push(u.into());
        }
    }
    s.sql.push_str(" GROUP BY day ORDER BY day");
    s
}

/// One page of logs, newest first, strictly after `q.cursor`; fetches one row more than the
/// limit to know whether another page exists.
pub fn logs_page(q: &LogsQuery) -> Statement {
    let (mut filters, mut params) = log_filters(q);
    if let Some(c) = q.cursor {
        let (a, b) = (params.len() + 1, params.len() + 2);
        let keyset = format!("(m.created_at < ?{a} OR (m.created_at = ?{a} AND m.seq < ?{b}))");
        filters = if filters.is_empty() { format!(" WHERE {keyset}") } else { format!("{filters} AND {keyset}") };
        params.push(c.created_ms.into());
        params.push(c.seq.into());
    }
    params.push((q.limit as i64 + 1).into());
    let sql = format!("SELECT {LOG_COLUMNS} FROM omi_memories m{filters} ORDER BY m.created_at DESC, m.seq DESC LIMIT ?{}", params.len());
    Statement { sql, params }
}

/// bm25 weights of the memory index's columns (title, overview, transcript): words in the
/// title say more about what a conversation was about than the same words said in passing.
const BM25_WEIGHTS: &str = "10.0, 4.0, 1.0";

/// One page of `sort=relevance`: the matches ranked by bm25 (best first, ties newest `seq`
/// first), `q.limit + 1` rows from the cursor's offset.
///
/// The ranking is bounded so that it costs the same at 100,000 memories as at 1,000: only the
/// [`RELEVANCE_WINDOW`] newest matches (`cand`, the newest-first query itself with a larger
/// LIMIT: the filters, a narrow key's mentors and the cursor's pin apply before the window) are
/// scored and sorted. FTS5's `ORDER BY rank LIMIT n` would compute bm25 for every match and
/// could not apply the index's filters (mentor, time, category) before ranking. Finding the
/// matches is what newest-first already does; scoring reads each candidate's positions once.
/// A memory matched through its linked live transcript batches scores by its best batch; one
/// matched both ways takes the better (lower) bm25 of the two.
pub fn relevance_page(q: &LogsQuery) -> Statement {
    let (mut filters, mut params) = log_filters(q);
    if let Some(c) = q.rank_cursor {
        let pin = format!("m.seq <= ?{}", params.len() + 1);
        filters = if filters.is_empty() { format!(" WHERE {pin}") } else { format!("{filters} AND {pin}") };
        params.push(c.pin.into());
    }
    let n = params.len();
    let (window, fts, limit, offset) = (n + 1, n + 2, n + 3, n + 4);
    params.push((RELEVANCE_WINDOW as i64).into());
    params.push(q.fts.clone().unwrap_or_default().into());
    params.push((q.limit as i64 + 1).into());
    params.push((q.rank_cursor.map_or(0, |c| c.offset) as i64).into());
    let sql = format!(
        "WITH cand AS (SELECT m.seq FROM omi_memories m{filters} ORDER BY m.created_at DESC, m.seq DESC LIMIT ?{window}), \
         scored AS (\
           SELECT omi_memories_fts.rowid AS seq, bm25(omi_memories_fts, {BM25_WEIGHTS}) AS score FROM omi_memories_fts \
           WHERE omi_memories_fts MATCH ?{fts} AND omi_memories_fts.rowid IN (SELECT seq FROM cand) \
           UNION ALL \
           SELECT lm.seq AS seq, bm25(omi_transcripts_fts) AS score FROM omi_transcripts_fts \
           JOIN omi_transcript_batches b ON b.seq = omi_transcripts_fts.rowid \
           JOIN omi_memories lm ON lm.user_id = b.user_id AND lm.memory_id = b.memory_id \
           WHERE omi_transcripts_fts MATCH ?{fts} AND lm.seq IN (SELECT seq FROM cand)), \
         best AS (SELECT seq, MIN(score) AS score FROM scored GROUP BY seq) \
         SELECT {LOG_COLUMNS} FROM best JOIN omi_memories m ON m.seq = best.seq \
         ORDER BY best.score, m.seq DESC LIMIT ?{limit} OFFSET ?{offset}"
    );
    Statement { sql, params }
}

/// The pin of a first relevance page: the index's highest `seq` (see [`RankCursor`]).
pub fn newest_seq() -> Statement {
    stmt!("SELECT COALESCE(MAX(seq), 0) AS n FROM omi_memories")
}

/// The total a listing reports. Without time, category or text filters it is read from the
/// running totals the triggers keep (one row per mentor), so it costs the same however many
/// memories there are; otherwise the matching rows are counted.
pub fn logs_count(q: &LogsQuery) -> Statement {
    let unfiltered = q.from_ms.is_none() && q.to_ms.is_none() && q.category.is_none() && q.fts.is_none();
    if unfiltered {
        let n = if q.include_discarded { "memories" } else { "memories - discarded" };
        return match (&q.user_id, q.only_users.as_slice()) {
            (Some(uid), []) => stmt!(format!("SELECT {n} AS n FROM omi_user_totals WHERE user_id = ?1"), uid.as_str()),
            (None, []) => stmt!(format!("SELECT COALESCE(SUM({n}), 0) AS n FROM omi_user_totals")),
            (uid, only) => {
                let mut s = Statement::new(String::new());
                let mut clauses = Vec::new();
                if let Some(uid) = uid {
                    s = s.bind(uid.as_str());
                    clauses.push("user_id = ?1".to_string());
                }
                let first = s.params.len() + 1;
                let slots: Vec<String> = (0..only.len()).map(|i| format!("?{}", first + i)).collect();
                clauses.push(format!("user_id IN ({})", slots.join(", ")));
                for u in only {
                    s = s.bind(u.as_str());
                }
                s.sql = format!("SELECT COALESCE(SUM({n}), 0) AS n FROM omi_user_totals WHERE {}", clauses.join(" AND "));
                s
            }
        };
    }
    let (filters, params) = log_filters(q);
    Statement { sql: format!("SELECT COUNT(*) AS n FROM omi_memories m{filters}"), params }
}

/// The statements that record one stored version, as one atomic batch:
/// 1. the version row (its number computed inside the transaction; a duplicate byte hash,
///    content hash or key is ignored, which is what makes concurrent re-deliveries safe);
/// 2. the index row with the memory's analytics, only from the version row this call
///    inserted, and only if it was received later than what the index holds (an import of
///    older content after the webhook stored a newer one becomes a version, not the current one);
/// 3. and 4. the search entry for the index row, if the index now points at this object;
/// 5. and 6. the memory's top words (`omi_memory_words`), likewise;
/// 7. the real-time batches received during the session, linked to the memory (`omi::link`);
/// 8. the delivery id, if any;
/// 9. which version of this content won (ours, or one stored concurrently).
///
/// The analytics ride in the same batch: ingest costs no extra D1 round trip for them.
pub fn record_version(v: &NewVersion) -> Vec<Statement> {
    let m = v.memory;
    let mut stmts = vec![
        stmt!(
            "INSERT INTO omi_memory_versions (user_id, memory_id, version, sha256, r2_key, daily_key, size_bytes, received_at, content_sha256) \
             SELECT ?1, ?2, COALESCE(MAX(version), 0) + 1, ?3, ?4, ?5, ?6, ?7, ?8 FROM omi_memory_versions \
             WHERE user_id = ?1 AND memory_id = ?2 ON CONFLICT DO NOTHING",
            v.uid,
            m.id.as_str(),
            v.sha256,
            v.r2_key,
            v.daily_key,
            v.size_bytes,
            v.received_ms,
            v.content_sha256
        ),
        index_row(v),
        stmt!("DELETE FROM omi_memories_fts WHERE rowid = (SELECT seq FROM omi_memories WHERE r2_key = ?1)", v.r2_key),
        stmt!(
            "INSERT INTO omi_memories_fts (rowid, title, overview, transcript) \
             SELECT seq, ?2, ?3, ?4 FROM omi_memories WHERE r2_key = ?1",
            v.r2_key,
            m.title.clone().unwrap_or_default(),
            m.overview.clone().unwrap_or_default(),
            m.transcript_text.as_str()
        ),
    ];
    stmts.extend(memory_words(v.r2_key, &m.analytics));
    stmts.push(link_batches_to(v.uid, m, v.r2_key));
    if let Some(d) = v.delivery_id {
        stmts.push(stmt!(
            "INSERT INTO omi_deliveries (delivery_id, user_id, memory_id, sha256, received_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (user_id, memory_id, delivery_id) DO NOTHING",
            d,
            v.uid,
            m.id.as_str(),
            v.sha256,
            v.received_ms
        ));
    }
    stmts.push(winner(v.uid, &m.id, v.sha256, v.content_sha256));
    stmts
}

/// The columns the index row takes from the memory and its analytics, in [`index_row`]'s
/// order (`?2` on; `?1` is the object key).
const INDEX_COLUMNS: &str = "created_at, started_at, finished_at, duration_seconds, title, overview, emoji, category, language, \
     source, discarded, segment_count, word_count, action_items_total, action_items_open, analytics_version, analytics_json, \
     analytics_language, unique_words, talk_seconds, mentor_talk_seconds, mentee_talk_seconds, span_start, span_end, week, \
     open_items_json";

/// The index row, only from the version row this batch inserted (found by its key), and only
/// if it was received later than what the index holds: `INSERT … ON CONFLICT DO UPDATE … WHERE newer`.
fn index_row(v: &NewVersion) -> Statement {
    let m = v.memory;
    let a = &m.analytics;
    let columns: Vec<&str> = INDEX_COLUMNS.split(", ").collect();
    let placeholders: Vec<String> = (0..columns.len()).map(|i| format!("?{}", i + 2)).collect();
    let updates: Vec<String> = columns.iter().map(|c| format!("{c} = excluded.{c}")).collect();
    let (span_start, span_end) = link::memory_span(m);
    stmt!(
        format!(
            "INSERT INTO omi_memories (user_id, memory_id, version, {INDEX_COLUMNS}, r2_key, sha256, size_bytes, received_at) \
             SELECT v.user_id, v.memory_id, v.version, {}, v.r2_key, v.sha256, v.size_bytes, v.received_at \
             FROM omi_memory_versions v WHERE v.r2_key = ?1 \
             ON CONFLICT (user_id, memory_id) DO UPDATE SET version = excluded.version, {}, r2_key = excluded.r2_key, \
               sha256 = excluded.sha256, size_bytes = excluded.size_bytes, received_at = excluded.received_at \
             WHERE excluded.received_at > omi_memories.received_at \
               OR (excluded.received_at = omi_memories.received_at AND excluded.version > omi_memories.version)",
            placeholders.join(", "),
            updates.join(", ")
        ),
        v.r2_key,
        m.created_ms,
        m.started_ms,
        m.finished_ms,
        m.duration_seconds,
        m.title.clone(),
        m.overview.clone(),
        m.emoji.clone(),
        m.category.as_str(),
        m.language.clone(),
        m.source.clone(),
        m.discarded,
        m.segment_count,
        m.word_count,
        m.action_items_total,
        m.action_items_open,
        a.version,
        serde_json::to_string(a).unwrap_or_default(),
        a.language.map(|l| l.code()),
        a.unique_words,
        a.talk_seconds,
        a.mentor_talk_seconds,
        a.mentee_talk_seconds,
        span_start,
        span_end,
        link::memory_week(m),
        open_items_json(m)
    )
}

/// `[{description, due_ms}]` of the open action items; `NULL` when there are none.
fn open_items_json(m: &Memory) -> Option<String> {
    (!m.open_items.is_empty()).then(|| serde_json::to_string(&m.open_items).unwrap_or_else(|_| "[]".into()))
}

/// The analytics columns of an index row that already exists (the `omi.analytics` job), only
/// while the row still holds the content they were computed from.
pub fn refresh_analytics(seq: i64, sha256: &str, m: &Memory) -> Vec<Statement> {
    let a = &m.analytics;
    let (span_start, span_end) = link::memory_span(m);
    let mut out = vec![stmt!(
        "UPDATE omi_memories SET word_count = ?3, analytics_version = ?4, analytics_json = ?5, analytics_language = ?6, \
           unique_words = ?7, talk_seconds = ?8, mentor_talk_seconds = ?9, mentee_talk_seconds = ?10, span_start = ?11, \
           span_end = ?12, week = ?13, open_items_json = ?14 \
         WHERE seq = ?1 AND sha256 = ?2",
        seq,
        sha256,
        m.word_count,
        a.version,
        serde_json::to_string(a).unwrap_or_default(),
        a.language.map(|l| l.code()),
        a.unique_words,
        a.talk_seconds,
        a.mentor_talk_seconds,
        a.mentee_talk_seconds,
        span_start,
        span_end,
        link::memory_week(m),
        open_items_json(m)
    )];
    let words = top_words_json(a);
    out.push(stmt!(
        "DELETE FROM omi_memory_words WHERE seq = ?1 AND EXISTS (SELECT 1 FROM omi_memories WHERE seq = ?1 AND sha256 = ?2)",
        seq,
        sha256
    ));
    out.push(stmt!(
        "INSERT INTO omi_memory_words (seq, word, count) \
         SELECT m.seq, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') FROM omi_memories m, json_each(?3) j \
         WHERE m.seq = ?1 AND m.sha256 = ?2",
        seq,
        sha256,
        words
    ));
    out
}

/// Marks an index row whose object could not be analysed (unreadable JSON) as done, so the
/// job does not read it again until the analytics version moves on.
pub fn give_up_analytics(seq: i64, sha256: &str) -> Statement {
    stmt!("UPDATE omi_memories SET analytics_version = ?3 WHERE seq = ?1 AND sha256 = ?2", seq, sha256, ANALYTICS_VERSION)
}

/// `[[word, count], …]`: one parameter for the whole list (D1 binds at most 100).
fn top_words_json(a: &MemoryAnalytics) -> String {
    let pairs: Vec<(&str, u32)> = a.top_words.iter().map(|w| (w.word.as_str(), w.count)).collect();
    serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into())
}

/// The memory's top words replace the ones of the row's previous version, if the index now
/// points at this object.
fn memory_words(r2_key: &str, a: &MemoryAnalytics) -> Vec<Statement> {
    vec![
        stmt!("DELETE FROM omi_memory_words WHERE seq = (SELECT seq FROM omi_memories WHERE r2_key = ?1)", r2_key),
        stmt!(
            "INSERT INTO omi_memory_words (seq, word, count) \
             SELECT m.seq, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]') FROM omi_memories m, json_each(?2) j \
             WHERE m.r2_key = ?1",
            r2_key,
            top_words_json(a)
        ),
    ]
}

/// Real-time batches of this uid received within the memory's window and not linked yet now
/// belong to it (only if the index now points at this object).
fn link_batches_to(uid: &str, m: &Memory, r2_key: &str) -> Statement {
    let (from, to) = link::link_window(m);
    stmt!(
        "UPDATE omi_transcript_batches SET memory_id = ?2 \
         WHERE user_id = ?1 AND memory_id IS NULL AND received_at >= ?3 AND received_at <= ?4 \
           AND EXISTS (SELECT 1 FROM omi_memories WHERE r2_key = ?5)",
        uid,
        m.id.as_str(),
        from,
        to,
        r2_key
    )
}

/// The version that holds these bytes or this content (the first, if an older row without a
/// content hash holds the bytes and a newer one the content).
fn winner(uid: &str, memory_id: &str, sha256: &str, content_sha256: &str) -> Statement {
    stmt!(
        "SELECT version, r2_key, sha256, daily_key FROM omi_memory_versions \
         WHERE user_id = ?1 AND memory_id = ?2 AND (sha256 = ?3 OR content_sha256 = ?4) ORDER BY version LIMIT 1",
        uid,
        memory_id,
        sha256,
        content_sha256
    )
}

#[derive(Debug, Deserialize)]
pub struct Count {
    pub n: i64,
}

#[derive(Debug, Deserialize)]
pub struct KeyRow {
    pub r2_key: String,
    #[serde(default)]
    pub daily_key: Option<String>,
}

pub struct OmiRepo {
    meta: MetaStore,
}

impl OmiRepo {
    pub fn new(meta: MetaStore) -> Self {
        OmiRepo { meta }
    }

    /// The version already stored for these bytes or this content, or for this delivery id of
    /// this mentor's memory (delivery ids are scoped to uid and memory: another mentor's or
    /// memory's reuse of an id is a new delivery).
    pub async fn find_existing(
        &self,
        uid: &str,
        memory_id: &str,
        sha256: &str,
        content_sha256: &str,
        delivery_id: Option<&str>,
    ) -> Result<Option<VersionRow>> {
        let found = match delivery_id {
            Some(d) => {
                self.meta
                    .first::<VersionRow>(stmt!(
                        "SELECT * FROM (SELECT version, r2_key, sha256, daily_key FROM omi_memory_versions \
                           WHERE user_id = ?1 AND memory_id = ?2 AND (sha256 = ?3 OR content_sha256 = ?5) ORDER BY version LIMIT 1) \
                         UNION ALL \
                         SELECT v.version, v.r2_key, v.sha256, v.daily_key FROM omi_deliveries d JOIN omi_memory_versions v \
                           ON v.user_id = d.user_id AND v.memory_id = d.memory_id AND v.sha256 = d.sha256 \
                         WHERE d.user_id = ?1 AND d.memory_id = ?2 AND d.delivery_id = ?4 LIMIT 1",
                        uid,
                        memory_id,
                        sha256,
                        d,
                        content_sha256
                    ))
                    .await?
            }
            None => self.meta.first::<VersionRow>(winner(uid, memory_id, sha256, content_sha256)).await?,
        };
        Ok(found)
    }

    /// Which of `records` (uid, memory id, sha256) are stored already, by position: one
    /// statement for the whole list (an import checks its body at once).
    pub async fn stored_versions(&self, records: &[(&str, &str, &str)]) -> Result<std::collections::HashSet<usize>> {
        #[derive(Deserialize)]
        struct At {
            i: i64,
        }
        let list = serde_json::to_string(records)?;
        let rows: Vec<At> = self
            .meta
            .all(stmt!(
                "SELECT CAST(j.key AS INTEGER) AS i FROM json_each(?1) j JOIN omi_memory_versions v \
                   ON v.user_id = json_extract(j.value, '$[0]') AND v.memory_id = json_extract(j.value, '$[1]') \
                  AND v.sha256 = json_extract(j.value, '$[2]')",
                list
            ))
            .await?;
        Ok(rows.into_iter().filter_map(|r| usize::try_from(r.i).ok()).collect())
    }

    /// Records a stored object (see [`record_version`]) and returns the version that holds
    /// this content: ours, or the one a concurrent delivery stored first.
    /// The store this repository writes through (for batches the storage core fences).
    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// A page of logs and the total matching the filters, from one consistent snapshot.
    pub async fn logs(&self, q: &LogsQuery) -> Result<(Vec<LogRow>, i64)> {
        let results = self.meta.batch_results(vec![logs_page(q), logs_count(q)]).await?;
        let (Some(page), Some(count)) = (results.first(), results.get(1)) else {
            return Err(crate::error::Error::Internal("D1 batch returned fewer results than statements".into()));
        };
        let count: Vec<Count> = count.rows()?;
        Ok((page.rows()?, count.first().map(|c| c.n).unwrap_or(0)))
    }

    /// A `sort=relevance` page (see [`relevance_page`]), the total matching the filters, and
    /// the page's next cursor: one D1 batch, one snapshot.
    pub async fn ranked(&self, q: &LogsQuery) -> Result<(Vec<LogRow>, i64, Option<RankCursor>)> {
        let results = self.meta.batch_results(vec![relevance_page(q), logs_count(q), newest_seq()]).await?;
        let [page, count, pin] = results.as_slice() else {
            return Err(crate::error::Error::Internal("D1 batch returned fewer results than statements".into()));
        };
        let mut rows: Vec<LogRow> = page.rows()?;
        let count: Vec<Count> = count.rows()?;
        let pin: Vec<Count> = pin.rows()?;
        let more = rows.len() > q.limit as usize;
        rows.truncate(q.limit as usize);
        let next = RankCursor::next(q.rank_cursor, pin.first().map_or(0, |c| c.n), q.limit, more);
        Ok((rows, count.first().map_or(0, |c| c.n), next))
    }

    /// A page without the count (export).
    pub async fn logs_page(&self, q: &LogsQuery) -> Result<Vec<LogRow>> {
        self.meta.all(logs_page(q)).await
    }

    pub async fn version(&self, uid: &str, memory_id: &str, version: Option<i64>) -> Result<Option<VersionRow>> {
        match version {
            Some(n) => {
                self.meta
                    .first(stmt!(
                        "SELECT version, r2_key, sha256, daily_key FROM omi_memory_versions WHERE user_id = ?1 AND memory_id = ?2 AND version = ?3",
                        uid, memory_id, n
                    ))
                    .await
            }
            None => {
                self.meta
                    .first(stmt!(
                        "SELECT version, r2_key, sha256, NULL AS daily_key FROM omi_memories WHERE user_id = ?1 AND memory_id = ?2",
                        uid, memory_id
                    ))
                    .await
            }
        }
    }

    pub async fn versions(&self, uid: &str, memory_id: &str) -> Result<Vec<VersionInfo>> {
        self.meta
            .all(stmt!(
                "SELECT version, r2_key, sha256, size_bytes, received_at FROM omi_memory_versions \
                 WHERE user_id = ?1 AND memory_id = ?2 ORDER BY version",
                uid,
                memory_id
            ))
            .await
    }

    /// Every mentor with counts, from the running totals (a row per mentor).
    pub async fn users(&self) -> Result<Vec<UserRow>> {
        self.meta.all(users_statement(&[])).await
    }

    /// The mentors among `only` (a narrow key's), or every mentor when `only` is empty.
    pub async fn users_among(&self, only: &[String]) -> Result<Vec<UserRow>> {
        self.meta.all(users_statement(only)).await
    }

    /// Totals, categories, from one snapshot.
    pub async fn user_stats(&self, uid: &str) -> Result<(StatsRow, Vec<CategoryRow>)> {
        let results = self
            .meta
            .batch_results(vec![
                stmt!(
                    "SELECT COUNT(*) AS memories, SUM(discarded) AS discarded, \
                       COALESCE(SUM(duration_seconds), 0) AS total_duration_seconds, \
                       COALESCE(SUM(word_count), 0) AS words, COALESCE(SUM(segment_count), 0) AS segments, \
                       COALESCE(SUM(action_items_total), 0) AS action_items_total, \
                       COALESCE(SUM(action_items_total - action_items_open), 0) AS action_items_completed, \
                       COUNT(DISTINCT created_at / 86400000) AS active_days, \
                       MIN(created_at) AS first, MAX(created_at) AS last \
                     FROM omi_memories WHERE user_id = ?1",
                    uid
                ),
                stmt!(
                    "SELECT category, COUNT(*) AS memories FROM omi_memories WHERE user_id = ?1 \
                     GROUP BY category ORDER BY memories DESC, category",
                    uid
                ),
            ])
            .await?;
        let totals = results.first().map(|r| r.rows::<StatsRow>()).transpose()?.and_then(|r| r.into_iter().next()).unwrap_or_default();
        let categories = results.get(1).map(|r| r.rows::<CategoryRow>()).transpose()?.unwrap_or_default();
        Ok((totals, categories))
    }

    /// Memories and minutes per UTC day in `[from, to)` (widened to whole days), from the
    /// per-mentor-day totals; days without memories are absent.
    pub async fn daily(&self, from_ms: i64, to_ms: i64, uid: Option<&str>) -> Result<Vec<DayRow>> {
        self.meta.all(daily_statement(from_ms, to_ms, uid, &[])).await
    }

    /// [`daily`](Self::daily) restricted to the mentors among `only` (empty: no restriction).
    pub async fn daily_among(&self, from_ms: i64, to_ms: i64, uid: Option<&str>, only: &[String]) -> Result<Vec<DayRow>> {
        self.meta.all(daily_statement(from_ms, to_ms, uid, only)).await
    }

    pub async fn has_user(&self, uid: &str) -> Result<bool> {
        let found: Option<Count> = self
            .meta
            .first(stmt!(
                "SELECT 1 AS n WHERE EXISTS (SELECT 1 FROM omi_memories WHERE user_id = ?1) \
                   OR EXISTS (SELECT 1 FROM omi_transcript_batches WHERE user_id = ?1) \
                   OR EXISTS (SELECT 1 FROM omi_day_summaries WHERE user_id = ?1)",
                uid
            ))
            .await?;
        Ok(found.is_some())
    }

    pub async fn indexed_keys(&self, keys: &[String]) -> Result<Vec<String>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // D1 binds at most 100 parameters per statement.
        let mut found = Vec::new();
        for chunk in keys.chunks(90) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
            let mut s = Statement::new(format!("SELECT r2_key FROM omi_memory_versions WHERE r2_key IN ({})", placeholders.join(", ")));
            for k in chunk {
                s = s.bind(k.as_str());
            }
            let rows: Vec<KeyRow> = self.meta.all(s).await?;
            found.extend(rows.into_iter().map(|r| r.r2_key));
        }
        Ok(found)
    }

    /// Index rows that name a key no version row has (must never happen).
    pub async fn index_rows_without_version(&self) -> Result<i64> {
        let c: Option<Count> = self
            .meta
            .first(stmt!(
                "SELECT COUNT(*) AS n FROM omi_memories m WHERE NOT EXISTS (SELECT 1 FROM omi_memory_versions v WHERE v.r2_key = m.r2_key)"
            ))
            .await?;
        Ok(c.map(|c| c.n).unwrap_or(0))
    }

    // --- transcripts and day summaries ---------------------------------------------------

    pub async fn day_summary(&self, uid: &str, date: &str) -> Result<Option<DaySummaryRow>> {
        self.meta.first(stmt!("SELECT r2_key, sha256 FROM omi_day_summaries WHERE user_id = ?1 AND date = ?2", uid, date)).await
    }

    // --- deletion ---------------------------------------------------------------------------

    /// Every R2 key the index knows for a mentor (with derived daily keys), for the answer of
    /// a deletion. The deletion itself condemns from the rows inside its batch.
    pub async fn user_keys(&self, uid: &str) -> Result<Vec<String>> {
        let rows = self
            .meta
            .batch_rows::<KeyRow>(vec![
                stmt!(format!("SELECT r2_key, {DAILY_KEY} AS daily_key FROM omi_memory_versions v WHERE user_id = ?1"), uid),
                stmt!("SELECT r2_key, NULL AS daily_key FROM omi_transcript_batches WHERE user_id = ?1", uid),
                stmt!("SELECT r2_key, NULL AS daily_key FROM omi_day_summaries WHERE user_id = ?1", uid),
            ])
            .await?;
        Ok(rows.into_iter().flatten().flat_map(|r| std::iter::once(r.r2_key).chain(r.daily_key)).collect())
    }

    /// Memories created before `cutoff_ms` (retention), oldest first, at most `limit`.
    pub async fn expired(&self, cutoff_ms: i64, limit: u32) -> Result<Vec<i64>> {
        #[derive(Deserialize)]
        struct Seq {
            seq: i64,
        }
        let rows: Vec<Seq> = self
            .meta
            .all(stmt!("SELECT seq FROM omi_memories WHERE created_at < ?1 ORDER BY created_at LIMIT ?2", cutoff_ms, limit))
            .await?;
        Ok(rows.into_iter().map(|r| r.seq).collect())
    }
}

/// A version row's daily-copy key: the recorded one, else the one the key layout derives from
/// the memory key (reindexed and imported versions may have none recorded, but the old app
/// and older r2d1 builds wrote the copy all the same). `v` is the version row's alias.
const DAILY_KEY: &str = "COALESCE(v.daily_key, 'mobil3-mentorships/all/' || strftime('%Y-%m-%d', v.received_at / 1000, 'unixepoch') \
     || '/' || v.user_id || '-' || v.memory_id || '-' || v.received_at || '.json')";

/// The upsert tail every condemnation from rows shares (see `store::gc::condemn`).
const CONDEMN_CONFLICT: &str = "ON CONFLICT (key) DO UPDATE SET state = 'condemned', kind = excluded.kind, reason = excluded.reason, \
     condemned_at = excluded.condemned_at, eligible_at = excluded.eligible_at, claim = NULL, claimed_at = NULL, deleted_at = NULL \
     WHERE gc_marks.state != 'deleting'";

/// Condemns (eligible at once) every object the rows selected by `from_where` name, in the
/// same batch that deletes those rows: `from_where` is the FROM…WHERE over
/// `omi_memory_versions v`, with its parameters from `?3` on.
fn condemn_versions(from_where: &str, reason: &str, now: i64) -> Statement {
    stmt!(
        format!(
            "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at) \
             SELECT v.r2_key, 'memory', 'condemned', ?1, ?2, ?2 {from_where} \
             UNION ALL SELECT {DAILY_KEY}, 'daily_copy', 'condemned', ?1, ?2, ?2 {from_where} {CONDEMN_CONFLICT}"
        ),
        reason,
        now
    )
}

/// Deleting a mentor: the count of memories, then every row of the mentor, with condemned
/// marks for every object those rows name, in one transaction. Rows go first; the objects are
/// the GC's (a failed R2 delete is finished by the next sweep, and reconciliation never
/// re-indexes a marked key).
pub fn delete_user(uid: &str, now: i64) -> Vec<Statement> {
    let reason = "mentor deleted";
    vec![
        stmt!("SELECT COUNT(*) AS n FROM omi_memories WHERE user_id = ?1", uid),
        condemn_versions("FROM omi_memory_versions v WHERE v.user_id = ?3", reason, now).bind(uid),
        stmt!(
            format!(
                "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at) \
                 SELECT r2_key, 'transcript', 'condemned', ?1, ?2, ?2 FROM omi_transcript_batches WHERE user_id = ?3 \
                 UNION ALL SELECT r2_key, 'day_summary', 'condemned', ?1, ?2, ?2 FROM omi_day_summaries WHERE user_id = ?3 \
                 {CONDEMN_CONFLICT}"
            ),
            reason,
            now,
            uid
        ),
        stmt!("DELETE FROM omi_memories_fts WHERE rowid IN (SELECT seq FROM omi_memories WHERE user_id = ?1)", uid),
        stmt!("DELETE FROM omi_memories WHERE user_id = ?1", uid),
        stmt!("DELETE FROM omi_memory_versions WHERE user_id = ?1", uid),
        stmt!("DELETE FROM omi_deliveries WHERE user_id = ?1", uid),
        stmt!("DELETE FROM omi_transcript_batches WHERE user_id = ?1", uid),
        stmt!("DELETE FROM omi_day_summaries WHERE user_id = ?1", uid),
    ]
}

/// Retention of memories: the given memories' rows (every version) go, and every object they
/// name is condemned, in one transaction. D1 binds at most 100 parameters: chunks of 90 seqs.
pub fn retire_memories(seqs: &[i64], now: i64) -> Vec<Statement> {
    let mut out = Vec::new();
    for chunk in seqs.chunks(90) {
        let list = (0..chunk.len()).map(|i| format!("?{}", i + 3)).collect::<Vec<_>>().join(", ");
        let pairs = format!("SELECT user_id, memory_id FROM omi_memories WHERE seq IN ({list})");
        let mut condemn =
            condemn_versions(&format!("FROM omi_memory_versions v WHERE (v.user_id, v.memory_id) IN ({pairs})"), "retention", now);
        let own = |sql: String| chunk.iter().fold(Statement::new(sql), |s, seq| s.bind(*seq));
        let shifted = (0..chunk.len()).map(|i| format!("?{}", i + 1)).collect::<Vec<_>>().join(", ");
        for seq in chunk {
            condemn = condemn.bind(*seq);
        }
        out.push(condemn);
        out.push(own(format!(
            "DELETE FROM omi_memory_versions WHERE (user_id, memory_id) IN (SELECT user_id, memory_id FROM omi_memories WHERE seq IN ({shifted}))"
        )));
        out.push(own(format!("DELETE FROM omi_memories_fts WHERE rowid IN ({shifted})")));
        out.push(own(format!("DELETE FROM omi_memories WHERE seq IN ({shifted})")));
    }
    out
}

/// Retention of transcript batches received before `cutoff_ms`, at most `limit`: rows go and
/// their objects are condemned, in one transaction; the delete returns the keys it removed.
pub fn retire_transcripts(cutoff_ms: i64, limit: u32, now: i64) -> Vec<Statement> {
    let pick = "SELECT r2_key FROM omi_transcript_batches WHERE received_at < ?3 ORDER BY received_at LIMIT ?4";
    vec![
        stmt!(
            format!(
                "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at) \
                 SELECT r2_key, 'transcript', 'condemned', ?1, ?2, ?2 FROM omi_transcript_batches WHERE r2_key IN ({pick}) {CONDEMN_CONFLICT}"
            ),
            "retention",
            now,
            cutoff_ms,
            limit
        ),
        // RETURNING counts the rows: D1's `changes` would also count what the search entries'
        // delete trigger (migration 0010) changes.
        stmt!(
            format!("DELETE FROM omi_transcript_batches WHERE r2_key IN ({}) RETURNING r2_key", pick.replace("?3", "?1").replace("?4", "?2")),
            cutoff_ms,
            limit
        ),
    ]
}

/// Retention of day summaries dated before `cutoff_date` (YYYY-MM-DD), at most `limit`.
pub fn retire_day_summaries(cutoff_date: &str, limit: u32, now: i64) -> Vec<Statement> {
    let pick = "SELECT r2_key FROM omi_day_summaries WHERE date < ?3 ORDER BY date LIMIT ?4";
    vec![
        stmt!(
            format!(
                "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at) \
                 SELECT r2_key, 'day_summary', 'condemned', ?1, ?2, ?2 FROM omi_day_summaries WHERE r2_key IN ({pick}) {CONDEMN_CONFLICT}"
            ),
            "retention",
            now,
            cutoff_date,
            limit
        ),
        stmt!(
            format!("DELETE FROM omi_day_summaries WHERE r2_key IN ({})", pick.replace("?3", "?1").replace("?4", "?2")),
            cutoff_date,
            limit
        ),
    ]
}

/// Records a transcript batch, searchable, and linked to the memory of this uid whose span
/// holds its receive time (see `omi::link`); no change when the same content is already
/// recorded for the session (the caller then removes the object only if *it* created it).
/// Three statements: the row (with the next `seq`: D1 runs a batch as one transaction, so
/// `MAX + 1` cannot be taken twice), then its search entry replaced.
pub fn record_transcript_batch(
    uid: &str,
    session: &str,
    received_ms: i64,
    sha: &str,
    key: &str,
    segments: usize,
    text: &str,
) -> Vec<Statement> {
    vec![
        stmt!(
            "INSERT INTO omi_transcript_batches (user_id, session_id, received_at, sha256, r2_key, segment_count, seq, memory_id, text_indexed) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT COALESCE(MAX(seq), 0) + 1 FROM omi_transcript_batches), \
               (SELECT memory_id FROM omi_memories WHERE user_id = ?1 AND span_end >= ?3 - ?7 AND span_start <= ?3 + ?7 \
                ORDER BY (?3 BETWEEN span_start AND span_end) DESC, span_start DESC LIMIT 1), 1) \
             ON CONFLICT DO NOTHING",
            uid,
            session,
            received_ms,
            sha,
            key,
            segments,
            link::LINK_SLACK_MS
        ),
        stmt!("DELETE FROM omi_transcripts_fts WHERE rowid = (SELECT seq FROM omi_transcript_batches WHERE r2_key = ?1)", key),
        stmt!("INSERT INTO omi_transcripts_fts (rowid, text) SELECT seq, ?2 FROM omi_transcript_batches WHERE r2_key = ?1", key, text),
    ]
}

/// A batch recorded before its text was searchable (the `omi.analytics` job): its search
/// entry, and the flag.
pub fn index_transcript_text(seq: i64, text: &str) -> Vec<Statement> {
    vec![
        stmt!("DELETE FROM omi_transcripts_fts WHERE rowid = ?1", seq),
        stmt!("INSERT INTO omi_transcripts_fts (rowid, text) SELECT seq, ?2 FROM omi_transcript_batches WHERE seq = ?1", seq, text),
        stmt!("UPDATE omi_transcript_batches SET text_indexed = 1 WHERE seq = ?1", seq),
    ]
}

/// Which object holds this content of the session (read after [`record_transcript_batch`]).
pub fn transcript_batch_key(uid: &str, session: &str, sha: &str) -> Statement {
    stmt!("SELECT r2_key FROM omi_transcript_batches WHERE user_id = ?1 AND session_id = ?2 AND sha256 = ?3", uid, session, sha)
}

/// Records a day summary stored at `key` if it is at least as new as the one recorded: the
/// replaced object is condemned in the same batch, and the last statement reads which key the
/// day now points at (an older delivery arriving late loses).
pub fn record_day_summary(uid: &str, date: &str, key: &str, sha: &str, received_ms: i64, now: i64) -> Vec<Statement> {
    vec![
        stmt!(
            format!(
                "INSERT INTO gc_marks (key, kind, state, reason, condemned_at, eligible_at) \
                 SELECT r2_key, 'day_summary', 'condemned', 'replaced', ?5, ?5 FROM omi_day_summaries \
                 WHERE user_id = ?1 AND date = ?2 AND r2_key != ?3 AND received_at <= ?4 {CONDEMN_CONFLICT}"
            ),
            uid,
            date,
            key,
            received_ms,
            now
        ),
        stmt!(
            "INSERT INTO omi_day_summaries (user_id, date, r2_key, sha256, received_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (user_id, date) DO UPDATE SET r2_key = excluded.r2_key, sha256 = excluded.sha256, received_at = excluded.received_at \
             WHERE excluded.received_at >= omi_day_summaries.received_at",
            uid,
            date,
            key,
            sha,
            received_ms
        ),
        stmt!("SELECT r2_key, sha256 FROM omi_day_summaries WHERE user_id = ?1 AND date = ?2", uid, date),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::omi::query::{logs_query, Params};

    fn q(pairs: &[(&str, &str)]) -> LogsQuery {
        logs_query(&Params::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())).unwrap()
    }

    #[test]
    fn a_forced_filter_restricts_pages_counts_mentors_and_days() {
        let mut narrow = q(&[("category", "work")]);
        narrow.only_users = vec!["alice".into(), "amy".into()];
        let s = logs_page(&narrow);
        assert!(s.sql.contains("WHERE m.user_id IN (?1, ?2) AND m.category = ?3"), "{}", s.sql);
        assert_eq!(s.params.len(), 4);
        let count = logs_count(&narrow);
        assert!(count.sql.contains("IN ("), "{}", count.sql);
        let mut totals = q(&[]);
        totals.only_users = vec!["alice".into()];
        let t = logs_count(&totals);
        assert_eq!(t.sql, "SELECT COALESCE(SUM(memories - discarded), 0) AS n FROM omi_user_totals WHERE user_id IN (?1)");
        let mut both = q(&[("userId", "alice")]);
        both.only_users = vec!["alice".into(), "amy".into()];
        let b = logs_count(&both);
        assert_eq!(
            b.sql,
            "SELECT COALESCE(SUM(memories - discarded), 0) AS n FROM omi_user_totals WHERE user_id = ?1 AND user_id IN (?2, ?3)"
        );
        assert_eq!(b.params.len(), 3);
        let u = users_statement(&["a".into(), "b".into()]);
        assert!(u.sql.contains("WHERE user_id IN (?1, ?2)"));
        assert!(!users_statement(&[]).sql.contains("WHERE"));
        let d = daily_statement(0, 86_400_000, Some("a"), &["a".into(), "b".into()]);
        assert!(d.sql.contains("AND user_id = ?3 AND user_id IN (?4, ?5)"), "{}", d.sql);
        assert_eq!(d.params.len(), 5);
    }

    #[test]
    fn page_query_numbers_its_parameters_in_order() {
        let c = Cursor { created_ms: 5, seq: 7 }.encode();
        let s = logs_page(&q(&[("userId", "u1"), ("category", "work"), ("q", "plan"), ("cursor", &c), ("limit", "10")]));
        assert!(s.sql.contains(
            "m.user_id = ?1 AND m.category = ?2 AND m.seq IN (SELECT rowid FROM omi_memories_fts WHERE omi_memories_fts MATCH ?3 UNION"
        ));
        assert!(s.sql.contains("WHERE omi_transcripts_fts MATCH ?4) AND m.discarded = 0"));
        assert_eq!(s.params[2], s.params[3], "both searches bind the same terms");
        assert!(s.sql.contains("m.discarded = 0 AND (m.created_at < ?5 OR (m.created_at = ?5 AND m.seq < ?6))"));
        assert!(s.sql.ends_with("ORDER BY m.created_at DESC, m.seq DESC LIMIT ?7"));
        assert_eq!(s.params.len(), 7);
        assert_eq!(s.params[6], Param::Int(11));
    }

    #[test]
    fn relevance_ranks_a_bounded_window_of_the_filtered_matches() {
        let mut rq = q(&[("userId", "u1"), ("q", "plan"), ("sort", "relevance"), ("limit", "10")]);
        rq.only_users = vec!["u1".into(), "u2".into()];
        let s = relevance_page(&rq);
        // The filters (and a narrow key's mentors) apply inside the window, before ranking.
        assert!(
            s.sql.starts_with("WITH cand AS (SELECT m.seq FROM omi_memories m WHERE m.user_id = ?1 AND m.user_id IN (?2, ?3) AND m.seq IN"),
            "{}",
            s.sql
        );
        assert!(s.sql.contains("m.discarded = 0 ORDER BY m.created_at DESC, m.seq DESC LIMIT ?6)"), "{}", s.sql);
        assert!(s.sql.contains("omi_memories_fts MATCH ?7 AND omi_memories_fts.rowid IN (SELECT seq FROM cand)"));
        assert!(s.sql.contains("omi_transcripts_fts MATCH ?7 AND lm.seq IN (SELECT seq FROM cand)"));
        assert!(s.sql.ends_with("ORDER BY best.score, m.seq DESC LIMIT ?8 OFFSET ?9"), "{}", s.sql);
        assert_eq!(s.params.len(), 9);
        assert_eq!(s.params[5], Param::Int(RELEVANCE_WINDOW as i64));
        assert_eq!(s.params[6], s.params[3], "the ranking matches the same terms as the filter");
        assert_eq!((&s.params[7], &s.params[8]), (&Param::Int(11), &Param::Int(0)));
        // A later page: the pin bounds the candidates, the offset comes from the cursor.
        rq.rank_cursor = Some(RankCursor { pin: 42, offset: 30 });
        let s = relevance_page(&rq);
        assert!(s.sql.contains("m.discarded = 0 AND m.seq <= ?6 ORDER BY m.created_at DESC, m.seq DESC LIMIT ?7)"), "{}", s.sql);
        assert_eq!(s.params[5], Param::Int(42));
        assert_eq!(s.params.len(), 10);
        assert_eq!(s.params[9], Param::Int(30));
    }

    #[test]
    fn count_ignores_the_cursor_and_limit() {
        let c = Cursor { created_ms: 5, seq: 7 }.encode();
        let s = logs_count(&q(&[("cursor", &c), ("include_discarded", "1"), ("category", "work")]));
        assert_eq!(s.sql, "SELECT COUNT(*) AS n FROM omi_memories m WHERE m.category = ?1");
        assert_eq!(s.params.len(), 1);
    }

    #[test]
    fn retention_and_deletion_stay_under_the_parameter_limit_and_condemn_before_deleting() {
        let seqs: Vec<i64> = (0..200).collect();
        let stmts = retire_memories(&seqs, 5);
        assert_eq!(stmts.len(), 3 * 4);
        assert!(stmts.iter().all(|s| s.params.len() <= 100));
        assert!(stmts[0].sql.starts_with("INSERT INTO gc_marks"));
        assert!(stmts[0].sql.contains("'daily_copy'"));
        let d = delete_user("u", 5);
        assert!(
            d.iter().position(|s| s.sql.starts_with("INSERT INTO gc_marks")).unwrap()
                < d.iter().position(|s| s.sql.starts_with("DELETE")).unwrap()
        );
        assert_eq!(retire_transcripts(1, 2, 3)[1].params.len(), 2);
        assert_eq!(record_day_summary("u", "2024-01-01", "k", "s", 1, 2).len(), 3);
    }

    #[test]
    fn unfiltered_totals_come_from_the_running_totals() {
        assert_eq!(logs_count(&q(&[])).sql, "SELECT COALESCE(SUM(memories - discarded), 0) AS n FROM omi_user_totals");
        let s = logs_count(&q(&[("userId", "u1"), ("include_discarded", "1")]));
        assert_eq!(s.sql, "SELECT memories AS n FROM omi_user_totals WHERE user_id = ?1");
        assert_eq!(s.params, vec![Param::Text("u1".into())]);
    }
}
