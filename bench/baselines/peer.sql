-- Schema of the JS peer baseline (bench/baselines/peer.mjs): r2d1's design, one table.
-- The primary key clusters a mentor's rows together (WITHOUT ROWID), so per-user aggregates
-- read one contiguous range; two indexes serve newest-first listing per user and overall, a
-- third daily analytics.
CREATE TABLE IF NOT EXISTS memories (
  user_id        TEXT    NOT NULL,
  memory_id      TEXT    NOT NULL,
  version        INTEGER NOT NULL,
  content_sha256 TEXT    NOT NULL,
  created_ms     INTEGER NOT NULL,
  created_at     TEXT    NOT NULL,
  started_at     TEXT,
  finished_at    TEXT,
  language       TEXT,
  source         TEXT,
  day            TEXT    NOT NULL,
  title          TEXT    NOT NULL,
  overview       TEXT    NOT NULL,
  emoji          TEXT,
  category       TEXT    NOT NULL,
  discarded      INTEGER NOT NULL,
  segments       INTEGER NOT NULL,
  words          INTEGER NOT NULL,
  duration_s     REAL    NOT NULL,
  action_items   INTEGER NOT NULL,
  action_done    INTEGER NOT NULL,
  bytes          INTEGER NOT NULL,
  r2_key         TEXT    NOT NULL,
  received_ms    INTEGER NOT NULL,
  PRIMARY KEY (user_id, memory_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS memories_user_newest ON memories (user_id, created_ms DESC, memory_id DESC);
CREATE INDEX IF NOT EXISTS memories_newest ON memories (created_ms DESC, memory_id DESC);
-- Daily analytics: a covering index, so the per-day GROUP BY reads the index alone.
CREATE INDEX IF NOT EXISTS memories_day ON memories (day, user_id, duration_s);
