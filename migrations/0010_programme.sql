-- The programme's view (issue 14): per-memory analytics stored beside the index row, each
-- memory's top words for period top-words, real-time transcript batches linked to the memory
-- they became and searchable, and the mentor directory.

-- Analytics of the indexed (newest) version, computed at ingest by omi::analytics. Rows
-- written before this migration have analytics_version 0: the omi.analytics job reads their
-- objects and fills these in (and recomputes rows whenever ANALYTICS_VERSION moves on).
ALTER TABLE omi_memories ADD COLUMN analytics_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE omi_memories ADD COLUMN analytics_json TEXT;
ALTER TABLE omi_memories ADD COLUMN analytics_language TEXT;
ALTER TABLE omi_memories ADD COLUMN unique_words INTEGER;
ALTER TABLE omi_memories ADD COLUMN talk_seconds REAL;
ALTER TABLE omi_memories ADD COLUMN mentor_talk_seconds REAL;
ALTER TABLE omi_memories ADD COLUMN mentee_talk_seconds REAL;
-- The open action items' text ([{description, due_ms}]), for the chat tools: the memory's JSON
-- is in R2, and listing a mentor's open items must not read every memory.
ALTER TABLE omi_memories ADD COLUMN open_items_json TEXT;
-- When the session happened (omi::link::memory_span): real-time batches received inside it
-- (with a little slack) belong to this memory.
ALTER TABLE omi_memories ADD COLUMN span_start INTEGER;
ALTER TABLE omi_memories ADD COLUMN span_end INTEGER;
-- The ISO week of COALESCE(started_at, created_at), as the day number (days since 1970) of
-- its Monday: hours and sessions per week group by it.
ALTER TABLE omi_memories ADD COLUMN week INTEGER;

-- The same rules as omi::link for the rows already there.
UPDATE omi_memories SET
  span_end = COALESCE(finished_at, created_at),
  span_start = COALESCE(started_at, COALESCE(finished_at, created_at) - CAST(COALESCE(duration_seconds, 0) * 1000 AS INTEGER)),
  week = COALESCE(started_at, created_at) / 86400000 - ((COALESCE(started_at, created_at) / 86400000 + 3) % 7);

CREATE INDEX IF NOT EXISTS omi_memories_by_user_week ON omi_memories (user_id, week);
CREATE INDEX IF NOT EXISTS omi_memories_by_user_span ON omi_memories (user_id, span_end);
CREATE INDEX IF NOT EXISTS omi_memories_stale_analytics ON omi_memories (analytics_version, seq);

-- Each memory's top words (analytics::STORED_TOP_WORDS of them); a mentor's top words over a
-- period are their sums. Keyed by the index row, replaced with each new version, and gone with
-- the row (trigger), whichever path deletes it.
CREATE TABLE IF NOT EXISTS omi_memory_words (
  seq   INTEGER NOT NULL,
  word  TEXT    NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (seq, word)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS omi_memories_words_delete AFTER DELETE ON omi_memories
BEGIN
  DELETE FROM omi_memory_words WHERE seq = OLD.seq;
END;

-- Real-time transcript batches: a stable number (the search entry's rowid), the memory they
-- became (same uid, received within the memory's span), and whether their text is searchable
-- yet (batches stored before this migration are indexed by the omi.analytics job).
ALTER TABLE omi_transcript_batches ADD COLUMN seq INTEGER;
ALTER TABLE omi_transcript_batches ADD COLUMN memory_id TEXT;
ALTER TABLE omi_transcript_batches ADD COLUMN text_indexed INTEGER NOT NULL DEFAULT 0;
UPDATE omi_transcript_batches SET seq = rowid;
CREATE UNIQUE INDEX IF NOT EXISTS omi_transcript_batches_seq ON omi_transcript_batches (seq);
CREATE INDEX IF NOT EXISTS omi_transcript_batches_session ON omi_transcript_batches (user_id, session_id, received_at, r2_key);
CREATE INDEX IF NOT EXISTS omi_transcript_batches_memory ON omi_transcript_batches (user_id, memory_id, received_at, r2_key);
CREATE INDEX IF NOT EXISTS omi_transcript_batches_unindexed ON omi_transcript_batches (text_indexed, seq);

-- (SQLite resolves a subquery's ORDER BY without the outer row: the preference for a batch
-- inside a span over one in the slack is computed as a column first.)
UPDATE omi_transcript_batches SET memory_id = (
  SELECT memory_id FROM (
    SELECT m.memory_id, m.span_start,
      (omi_transcript_batches.received_at BETWEEN m.span_start AND m.span_end) AS inside
    FROM omi_memories m
    WHERE m.user_id = omi_transcript_batches.user_id
      AND m.span_end >= omi_transcript_batches.received_at - 120000
      AND m.span_start <= omi_transcript_batches.received_at + 120000
  ) ORDER BY inside DESC, span_start DESC
  LIMIT 1
) WHERE memory_id IS NULL;

-- Full-text search over real-time transcripts; rowid = omi_transcript_batches.seq.
CREATE VIRTUAL TABLE IF NOT EXISTS omi_transcripts_fts USING fts5(
  text,
  content = '', contentless_delete = 1,
  tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER IF NOT EXISTS omi_transcript_batches_fts_delete AFTER DELETE ON omi_transcript_batches
BEGIN
  DELETE FROM omi_transcripts_fts WHERE rowid = OLD.seq;
END;

-- The mentor directory: a person (mentor), their cohort and mentees' names, and the Omi uids
-- that are theirs (several when a mentor changes device or account; a uid is one person's).
CREATE TABLE IF NOT EXISTS omi_people (
  id         TEXT    PRIMARY KEY,
  name       TEXT    NOT NULL,
  cohort     TEXT,
  mentees    TEXT    NOT NULL DEFAULT '[]', -- JSON array of names
  updated_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS omi_person_uids (
  uid       TEXT PRIMARY KEY,
  person_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS omi_person_uids_person ON omi_person_uids (person_id);

INSERT OR IGNORE INTO schema_version (version, name) VALUES (10, 'programme');
