//! The SQL of the programme's view: analytics reads, linked and paginated transcripts, the
//! directory, per-week activity, the archive's listing and what the chat tools read. Every
//! mentor-data read filters on the uid it is given; statement builders are pure and
//! host-tested, `ProgrammeRepo` runs them.

use serde::Deserialize;

use super::activity::{Person, UidLast, UidWeek};
use super::archive::{ArchiveCursor, ArchiveRow};
use super::directory::PersonInput;
use crate::error::{Error, Result};
use crate::omi::analytics::mentor::MemoryFacts;
use crate::omi::analytics::Lang;
use crate::omi::cursor::Cursor;
use crate::stmt;
use crate::store::{MetaStore, Statement};

/// The analytics of one indexed memory.
#[derive(Debug, Clone, Deserialize)]
pub struct MemoryAnalyticsRow {
    pub analytics_version: i64,
    pub analytics_json: Option<String>,
    pub word_count: i64,
    pub span_start: Option<i64>,
    pub span_end: Option<i64>,
    pub linked_batches: i64,
}

/// What a mentor's period figures need from one memory (`analytics::mentor::MemoryFacts`
/// without the top words, which D1 sums).
#[derive(Debug, Clone, Deserialize)]
pub struct FactsRow {
    pub started_at: Option<i64>,
    pub created_at: i64,
    pub duration_seconds: Option<f64>,
    pub mentor_talk_seconds: Option<f64>,
    pub mentee_talk_seconds: Option<f64>,
    pub analytics_version: i64,
}

impl FactsRow {
    pub fn facts(&self) -> MemoryFacts {
        MemoryFacts {
            started_ms: self.started_at,
            created_ms: self.created_at,
            duration_seconds: self.duration_seconds,
            mentor_talk_seconds: self.mentor_talk_seconds.unwrap_or(0.0),
            mentee_talk_seconds: self.mentee_talk_seconds.unwrap_or(0.0),
            top_words: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WordRow {
    pub word: String,
    pub count: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct LangRow {
    es: i64,
    en: i64,
}

/// One real-time batch on a page.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchRow {
    pub seq: i64,
    pub session_id: String,
    pub r2_key: String,
    pub sha256: String,
    pub received_at: i64,
    pub segment_count: i64,
    pub memory_id: Option<String>,
}

impl BatchRow {
    pub fn cursor(&self) -> Cursor {
        Cursor { created_ms: self.received_at, seq: self.seq }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionRow {
    pub session_id: String,
    pub batches: i64,
    pub segments: i64,
    pub memories: i64,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// A memory with open action items.
#[derive(Debug, Clone, Deserialize)]
pub struct OpenItemsRow {
    pub title: Option<String>,
    pub at_ms: i64,
    pub open_items_json: Option<String>,
    pub action_items_open: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct PersonRow {
    id: String,
    name: String,
    cohort: Option<String>,
    mentees: String,
}

#[derive(Debug, Clone, Deserialize)]
struct PersonUidRow {
    uid: String,
    person_id: String,
}

#[derive(Debug, Deserialize)]
struct UidRow {
    user_id: String,
}

#[derive(Debug, Deserialize)]
struct Count {
    n: i64,
}

/// Where a batch page starts: after the cursor, in `(received_at, seq)` order.
fn after(cursor: Option<Cursor>) -> (i64, i64) {
    cursor.map(|c| (c.created_ms, c.seq)).unwrap_or((-1, -1))
}

/// A page of a session's batches, oldest first, one more than `limit` (is there a next page?).
pub fn session_page(uid: &str, session: &str, cursor: Option<Cursor>, limit: u32) -> Statement {
    let (t, seq) = after(cursor);
    stmt!(
        "SELECT seq, session_id, r2_key, sha256, received_at, segment_count, memory_id FROM omi_transcript_batches \
         WHERE user_id = ?1 AND session_id = ?2 AND (received_at > ?3 OR (received_at = ?3 AND seq > ?4)) \
         ORDER BY received_at, seq LIMIT ?5",
        uid,
        session,
        t,
        seq,
        limit + 1
    )
}

/// A page of the batches linked to one memory, oldest first, one more than `limit`.
pub fn memory_transcript_page(uid: &str, memory_id: &str, cursor: Option<Cursor>, limit: u32) -> Statement {
    let (t, seq) = after(cursor);
    stmt!(
        "SELECT seq, session_id, r2_key, sha256, received_at, segment_count, memory_id FROM omi_transcript_batches \
         WHERE user_id = ?1 AND memory_id = ?2 AND (received_at > ?3 OR (received_at = ?3 AND seq > ?4)) \
         ORDER BY received_at, seq LIMIT ?5",
        uid,
        memory_id,
        t,
        seq,
        limit + 1
    )
}

/// A mentor's sessions, newest first; with `fts`, only those with a batch whose text matches
/// (counted whole).
pub fn sessions(uid: &str, fts: Option<&str>) -> Statement {
    let mut s = stmt!(
        "SELECT session_id, COUNT(*) AS batches, SUM(segment_count) AS segments, COUNT(DISTINCT memory_id) AS memories, \
           MIN(received_at) AS first, MAX(received_at) AS last FROM omi_transcript_batches WHERE user_id = ?1",
        uid
    );
    if let Some(fts) = fts {
        s.sql.push_str(
            " AND session_id IN (SELECT b.session_id FROM omi_transcript_batches b WHERE b.user_id = ?1 \
               AND b.seq IN (SELECT rowid FROM omi_transcripts_fts WHERE omi_transcripts_fts MATCH ?2))",
        );
        s = s.bind(fts);
    }
    s.sql.push_str(" GROUP BY session_id ORDER BY last DESC LIMIT 500");
    s
}

/// The time a memory counts at (as `analytics::mentor` places it in a week).
const AT: &str = "COALESCE(started_at, created_at)";

/// A mentor's sessions in `[from, to)` for the period figures, and the period's top words
/// summed from each memory's stored top words. Discarded fragments are not sessions.
pub fn mentor_period(uid: &str, from_ms: i64, to_ms: i64, top_n: u32, max_memories: u32) -> Vec<Statement> {
    vec![
        stmt!(
            format!(
                "SELECT started_at, created_at, duration_seconds, mentor_talk_seconds, mentee_talk_seconds, analytics_version \
                 FROM omi_memories WHERE user_id = ?1 AND discarded = 0 AND {AT} >= ?2 AND {AT} < ?3 ORDER BY {AT} LIMIT ?4"
            ),
            uid,
            from_ms,
            to_ms,
            max_memories
        ),
        stmt!(
            format!(
                "SELECT w.word, SUM(w.count) AS count FROM omi_memories m JOIN omi_memory_words w ON w.seq = m.seq \
                 WHERE m.user_id = ?1 AND m.discarded = 0 AND COALESCE(m.started_at, m.created_at) >= ?2 \
                   AND COALESCE(m.started_at, m.created_at) < ?3 \
                 GROUP BY w.word ORDER BY count DESC, w.word LIMIT ?4"
            ),
            uid,
            from_ms,
            to_ms,
            top_n
        ),
    ]
}

/// How many of a mentor's memories were guessed Spanish and English.
fn languages(uid: &str) -> Statement {
    stmt!(
        "SELECT COALESCE(SUM(analytics_language = 'es'), 0) AS es, COALESCE(SUM(analytics_language = 'en'), 0) AS en \
         FROM omi_memories WHERE user_id = ?1",
        uid
    )
}

/// The rows that save a person: the entry, its uids replaced (a uid another person had moves
/// here), in one batch.
pub fn save_person(id: &str, p: &PersonInput, now_ms: i64) -> Vec<Statement> {
    vec![
        stmt!(
            "INSERT INTO omi_people (id, name, cohort, mentees, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, cohort = excluded.cohort, mentees = excluded.mentees, \
               updated_at = excluded.updated_at",
            id,
            p.name.as_str(),
            p.cohort.clone(),
            serde_json::to_string(&p.mentees).unwrap_or_else(|_| "[]".into()),
            now_ms
        ),
        stmt!("DELETE FROM omi_person_uids WHERE person_id = ?1", id),
        stmt!(
            "INSERT INTO omi_person_uids (uid, person_id) SELECT value, ?1 FROM json_each(?2) WHERE true \
             ON CONFLICT (uid) DO UPDATE SET person_id = excluded.person_id",
            id,
            serde_json::to_string(&p.uids).unwrap_or_else(|_| "[]".into())
        ),
    ]
}

pub fn delete_person(id: &str) -> Vec<Statement> {
    vec![
        stmt!("SELECT COUNT(*) AS n FROM omi_people WHERE id = ?1", id),
        stmt!("DELETE FROM omi_person_uids WHERE person_id = ?1", id),
        stmt!("DELETE FROM omi_people WHERE id = ?1", id),
    ]
}

/// Erasing a mentor's uid (`DELETE /api/omi/users/{uid}`) removes it from the directory, and
/// the person too once no uid is left: their name is personal data of that mentor.
pub fn forget_uid(uid: &str) -> Vec<Statement> {
    vec![
        stmt!(
            "DELETE FROM omi_people WHERE id = (SELECT person_id FROM omi_person_uids WHERE uid = ?1) \
               AND NOT EXISTS (SELECT 1 FROM omi_person_uids o WHERE o.person_id = omi_people.id AND o.uid != ?1)",
            uid
        ),
        stmt!("DELETE FROM omi_person_uids WHERE uid = ?1", uid),
    ]
}

/// Sessions (not discarded) and their seconds per uid and ISO week, from the Monday `from_week`.
pub fn sessions_per_week(from_week: i64) -> Statement {
    stmt!(
        "SELECT user_id, week, COUNT(*) AS sessions, SUM(duration_seconds) AS seconds FROM omi_memories \
         WHERE discarded = 0 AND week >= ?1 GROUP BY user_id, week",
        from_week
    )
}

/// Every uid with memories, its count and its last session (one index seek per uid).
pub fn last_sessions() -> Statement {
    stmt!(
        "SELECT t.user_id, t.memories, (SELECT MAX(m.created_at) FROM omi_memories m WHERE m.user_id = t.user_id AND m.discarded = 0) \
           AS last_ms FROM omi_user_totals t"
    )
}

/// The next objects of a mentor's archive after `cursor`, in (kind, sort key) order, one more
/// than `limit`. Sort keys are zero-padded so text order is numeric order.
pub fn archive_page(uid: &str, cursor: &ArchiveCursor, limit: u32) -> Statement {
    stmt!(
        "SELECT kind, sort_key, r2_key, sha256, name, n FROM ( \
           SELECT 1 AS kind, memory_id || '/' || printf('%012d', version) AS sort_key, r2_key, sha256, memory_id AS name, version AS n \
             FROM omi_memory_versions WHERE user_id = ?1 \
           UNION ALL SELECT 2, session_id || '/' || printf('%015d', received_at) || '/' || r2_key, r2_key, sha256, session_id, received_at \
             FROM omi_transcript_batches WHERE user_id = ?1 \
           UNION ALL SELECT 3, date, r2_key, sha256, date, NULL FROM omi_day_summaries WHERE user_id = ?1) \
         WHERE kind > ?2 OR (kind = ?2 AND sort_key > ?3) ORDER BY kind, sort_key LIMIT ?4",
        uid,
        cursor.kind,
        cursor.sort_key.as_str(),
        limit + 1
    )
}

/// What an archive's manifest counts.
pub fn archive_counts(uid: &str) -> Statement {
    stmt!(
        "SELECT (SELECT COUNT(*) FROM omi_memories WHERE user_id = ?1) AS memories, \
           (SELECT COUNT(*) FROM omi_memory_versions WHERE user_id = ?1) AS versions, \
           (SELECT COUNT(*) FROM omi_transcript_batches WHERE user_id = ?1) AS transcriptBatches, \
           (SELECT COUNT(DISTINCT session_id) FROM omi_transcript_batches WHERE user_id = ?1) AS transcriptSessions, \
           (SELECT COUNT(*) FROM omi_day_summaries WHERE user_id = ?1) AS daySummaries",
        uid
    )
}

/// Column names are the JSON names of the manifest.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveCounts {
    pub memories: i64,
    pub versions: i64,
    pub transcript_batches: i64,
    pub transcript_sessions: i64,
    pub day_summaries: i64,
}

pub struct ProgrammeRepo {
    meta: MetaStore,
}

impl ProgrammeRepo {
    pub fn new(meta: MetaStore) -> Self {
        ProgrammeRepo { meta }
    }

    pub async fn memory_analytics(&self, uid: &str, memory_id: &str) -> Result<Option<MemoryAnalyticsRow>> {
        self.meta
            .first(stmt!(
                "SELECT m.analytics_version, m.analytics_json, m.word_count, m.span_start, m.span_end, \
                   (SELECT COUNT(*) FROM omi_transcript_batches b WHERE b.user_id = m.user_id AND b.memory_id = m.memory_id) \
                   AS linked_batches \
                 FROM omi_memories m WHERE m.user_id = ?1 AND m.memory_id = ?2",
                uid,
                memory_id
            ))
            .await
    }

    /// The period's memories and top words, and the mentor's language, from one snapshot.
    pub async fn mentor_period(
        &self,
        uid: &str,
        from_ms: i64,
        to_ms: i64,
        top_n: u32,
        max_memories: u32,
    ) -> Result<(Vec<FactsRow>, Vec<WordRow>, Lang)> {
        let mut stmts = mentor_period(uid, from_ms, to_ms, top_n, max_memories);
        stmts.push(languages(uid));
        let results = self.meta.batch_results(stmts).await?;
        let [facts, words, lang] = results.as_slice() else {
            return Err(Error::Internal("D1 batch returned fewer results than statements".into()));
        };
        let lang: LangRow = lang.rows()?.into_iter().next().unwrap_or_default();
        Ok((facts.rows()?, words.rows()?, crate::omi::analytics::majority_language(lang.es as u32, lang.en as u32)))
    }

    /// The language a mentor's answers are given in: that of most of their memories.
    pub async fn language(&self, uid: &str) -> Result<Lang> {
        let lang: LangRow = self.meta.first(languages(uid)).await?.unwrap_or_default();
        Ok(crate::omi::analytics::majority_language(lang.es as u32, lang.en as u32))
    }

    pub async fn batches(&self, page: Statement) -> Result<Vec<BatchRow>> {
        self.meta.all(page).await
    }

    pub async fn sessions(&self, uid: &str, fts: Option<&str>) -> Result<Vec<SessionRow>> {
        self.meta.all(sessions(uid, fts)).await
    }

    /// Memories with open action items, newest first (at most `limit`), the mentor's total of
    /// open items, and the language, from one snapshot.
    pub async fn open_items(&self, uid: &str, limit: u32) -> Result<(Vec<OpenItemsRow>, i64, Lang)> {
        let results = self
            .meta
            .batch_results(vec![
                stmt!(
                    "SELECT title, COALESCE(started_at, created_at) AS at_ms, open_items_json, action_items_open FROM omi_memories \
                     WHERE user_id = ?1 AND discarded = 0 AND action_items_open > 0 ORDER BY created_at DESC, seq DESC LIMIT ?2",
                    uid,
                    limit
                ),
                stmt!("SELECT COALESCE(SUM(action_items_open), 0) AS n FROM omi_memories WHERE user_id = ?1 AND discarded = 0", uid),
                languages(uid),
            ])
            .await?;
        let [rows, total, lang] = results.as_slice() else {
            return Err(Error::Internal("D1 batch returned fewer results than statements".into()));
        };
        let total: i64 = total.rows::<Count>()?.first().map(|c| c.n).unwrap_or(0);
        let lang: LangRow = lang.rows()?.into_iter().next().unwrap_or_default();
        Ok((rows.rows()?, total, crate::omi::analytics::majority_language(lang.es as u32, lang.en as u32)))
    }

    /// Every person with their uids, and the uids with memories that no person names.
    pub async fn directory(&self) -> Result<(Vec<Person>, Vec<String>)> {
        let results = self
            .meta
            .batch_results(vec![
                stmt!("SELECT id, name, cohort, mentees FROM omi_people ORDER BY name COLLATE NOCASE, id"),
                stmt!("SELECT uid, person_id FROM omi_person_uids ORDER BY uid"),
                stmt!("SELECT user_id FROM omi_user_totals WHERE user_id NOT IN (SELECT uid FROM omi_person_uids) ORDER BY user_id"),
            ])
            .await?;
        let [people, uids, loose] = results.as_slice() else {
            return Err(Error::Internal("D1 batch returned fewer results than statements".into()));
        };
        let uids: Vec<PersonUidRow> = uids.rows()?;
        let people = people
            .rows::<PersonRow>()?
            .into_iter()
            .map(|p| Person {
                uids: uids.iter().filter(|u| u.person_id == p.id).map(|u| u.uid.clone()).collect(),
                mentees: serde_json::from_str(&p.mentees).unwrap_or_default(),
                id: p.id,
                name: p.name,
                cohort: p.cohort,
            })
            .collect();
        Ok((people, loose.rows::<UidRow>()?.into_iter().map(|u| u.user_id).collect()))
    }

    pub async fn save_person(&self, id: &str, p: &PersonInput, now_ms: i64) -> Result<()> {
        self.meta.batch(save_person(id, p, now_ms)).await?;
        Ok(())
    }

    /// `false` when there was no such person.
    pub async fn delete_person(&self, id: &str) -> Result<bool> {
        let results = self.meta.batch_results(delete_person(id)).await?;
        Ok(results.first().map(|r| r.rows::<Count>()).transpose()?.and_then(|r| r.into_iter().next()).map(|c| c.n).unwrap_or(0) > 0)
    }

    pub async fn activity(&self, from_week: i64) -> Result<(Vec<UidWeek>, Vec<UidLast>)> {
        let results = self.meta.batch_results(vec![sessions_per_week(from_week), last_sessions()]).await?;
        let [weeks, last] = results.as_slice() else {
            return Err(Error::Internal("D1 batch returned fewer results than statements".into()));
        };
        Ok((weeks.rows()?, last.rows()?))
    }

    pub async fn archive_page(&self, uid: &str, cursor: &ArchiveCursor, limit: u32) -> Result<Vec<ArchiveRow>> {
        self.meta.all(archive_page(uid, cursor, limit)).await
    }

    pub async fn archive_counts(&self, uid: &str) -> Result<ArchiveCounts> {
        Ok(self.meta.first(archive_counts(uid)).await?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_start_after_their_cursor_and_fetch_one_more() {
        let s = session_page("u", "s", Some(Cursor { created_ms: 5, seq: 7 }), 20);
        assert!(s.sql.contains("(received_at > ?3 OR (received_at = ?3 AND seq > ?4))"));
        assert_eq!(s.params.last(), Some(&crate::store::Value::Int(21)));
        let first = memory_transcript_page("u", "m", None, 10);
        assert_eq!(first.params[2], crate::store::Value::Int(-1));
        assert!(first.sql.contains("user_id = ?1 AND memory_id = ?2"));
    }

    #[test]
    fn every_mentor_read_filters_on_the_uid() {
        for s in mentor_period("u", 0, 1, 5, 10).into_iter().chain([sessions("u", Some("x")), languages("u"), archive_counts("u")]) {
            assert!(s.sql.contains("user_id = ?1"), "{}", s.sql);
            assert_eq!(s.params[0], crate::store::Value::Text("u".into()));
        }
        let a = archive_page("u", &ArchiveCursor::first(), 10);
        assert_eq!(a.sql.matches("WHERE user_id = ?1").count(), 3);
    }

    #[test]
    fn saving_a_person_binds_lists_as_one_parameter() {
        let p = PersonInput { name: "A".into(), cohort: None, mentees: vec!["x".into()], uids: vec!["u1".into(), "u2".into()] };
        let stmts = save_person("a", &p, 1);
        assert_eq!(stmts.len(), 3);
        assert_eq!(stmts[2].params[1], crate::store::Value::Text(r#"["u1","u2"]"#.into()));
        assert!(stmts.iter().all(|s| s.params.len() <= 100));
    }
}
