-- Omi mentorship logs: the index of memories kept in R2.
-- Times are integers, milliseconds since 1970 (UTC). Every row names an R2 object that was
-- written before the row was (see src/omi/ingest.rs).

-- One row per memory: the newest version. `seq` is the stable sort tiebreaker and FTS rowid.
CREATE TABLE IF NOT EXISTS omi_memories (
  seq                INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id            TEXT    NOT NULL,
  memory_id          TEXT    NOT NULL,
  version            INTEGER NOT NULL,
  created_at         INTEGER NOT NULL,
  started_at         INTEGER,
  finished_at        INTEGER,
  duration_seconds   REAL,
  title              TEXT,
  overview           TEXT,
  emoji              TEXT,
  category           TEXT    NOT NULL DEFAULT 'other',
  language           TEXT,
  source             TEXT,
  discarded          INTEGER NOT NULL DEFAULT 0,
  segment_count      INTEGER NOT NULL DEFAULT 0,
  word_count         INTEGER NOT NULL DEFAULT 0,
  action_items_total INTEGER NOT NULL DEFAULT 0,
  action_items_open  INTEGER NOT NULL DEFAULT 0,
  r2_key             TEXT    NOT NULL,
  sha256             TEXT    NOT NULL,
  size_bytes         INTEGER NOT NULL,
  received_at        INTEGER NOT NULL,
  UNIQUE (user_id, memory_id)
);
CREATE INDEX IF NOT EXISTS omi_memories_by_user ON omi_memories (user_id, created_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS omi_memories_by_time ON omi_memories (created_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS omi_memories_by_key ON omi_memories (r2_key);

-- Every stored version of every memory: same id with changed content is a new version.
-- UNIQUE (user_id, memory_id, sha256) is what makes re-deliveries idempotent.
CREATE TABLE IF NOT EXISTS omi_memory_versions (
  user_id     TEXT    NOT NULL,
  memory_id   TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  sha256      TEXT    NOT NULL,
  r2_key      TEXT    NOT NULL UNIQUE,
  daily_key   TEXT,
  size_bytes  INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, memory_id, version),
  UNIQUE (user_id, memory_id, sha256)
);

-- Delivery ids (X-Omi-Delivery / Idempotency-Key) already answered.
CREATE TABLE IF NOT EXISTS omi_deliveries (
  delivery_id TEXT    PRIMARY KEY,
  user_id     TEXT    NOT NULL,
  memory_id   TEXT    NOT NULL,
  sha256      TEXT    NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS omi_deliveries_by_user ON omi_deliveries (user_id);

-- Full-text search over title, overview and transcript; rowid = omi_memories.seq.
-- Contentless: the text lives in R2 already, the index keeps only tokens.
CREATE VIRTUAL TABLE IF NOT EXISTS omi_memories_fts USING fts5(
  title, overview, transcript,
  content = '', contentless_delete = 1,
  tokenize = 'unicode61 remove_diacritics 2'
);

-- Real-time transcript batches, appended per session.
CREATE TABLE IF NOT EXISTS omi_transcript_batches (
  user_id       TEXT    NOT NULL,
  session_id    TEXT    NOT NULL,
  received_at   INTEGER NOT NULL,
  sha256        TEXT    NOT NULL,
  r2_key        TEXT    NOT NULL UNIQUE,
  segment_count INTEGER NOT NULL,
  PRIMARY KEY (user_id, session_id, sha256)
);

-- Day summaries (at most one per user per day; a re-send replaces it).
CREATE TABLE IF NOT EXISTS omi_day_summaries (
  user_id     TEXT    NOT NULL,
  date        TEXT    NOT NULL,
  r2_key      TEXT    NOT NULL,
  sha256      TEXT    NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, date)
);

-- Where resumable background jobs (reconciliation) left off.
CREATE TABLE IF NOT EXISTS omi_job_state (
  job        TEXT PRIMARY KEY,
  cursor     TEXT,
  updated_at INTEGER NOT NULL
);

INSERT OR IGNORE INTO schema_version (version, name) VALUES (2, 'omi');
