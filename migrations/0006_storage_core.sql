-- The storage core (issue 10): GC marks and fence, the job runner's state, delivery ids scoped
-- to mentor and memory, and the indexes the GC's reference checks and retention need.

-- One row per object the GC has an opinion about. `condemned`: nothing referenced it (listing
-- pass, after the grace) or its rows were deleted (explicit); eligible for deletion from
-- `eligible_at`. `deleting`: a sweep claimed it (`claim`, `claimed_at`) after checking, in the
-- same batch, that nothing references it. `deleted`: gone from R2 at `deleted_at` (a tombstone
-- kept for the grace, so a writer whose put raced the deletion is fenced). See src/store/gc.rs.
CREATE TABLE IF NOT EXISTS gc_marks (
  key          TEXT    PRIMARY KEY,
  kind         TEXT    NOT NULL,
  state        TEXT    NOT NULL CHECK (state IN ('condemned', 'deleting', 'deleted')),
  reason       TEXT    NOT NULL,
  condemned_at INTEGER NOT NULL,
  eligible_at  INTEGER NOT NULL,
  claim        TEXT,
  claimed_at   INTEGER,
  deleted_at   INTEGER
);
CREATE INDEX IF NOT EXISTS gc_marks_sweep ON gc_marks (kind, state, eligible_at);
CREATE INDEX IF NOT EXISTS gc_marks_claim ON gc_marks (claim) WHERE claim IS NOT NULL;

-- The fence: always empty. A writer's batch inserts the keys it references that the GC is
-- deleting (or deleted since the writer's put); any such row violates the named CHECK, which
-- aborts the whole batch. The D1 adapter maps the constraint's name to one typed error.
CREATE TABLE IF NOT EXISTS gc_fence (
  key TEXT CONSTRAINT gc_fence_tripped CHECK (key IS NULL)
);

-- Every registered job's state (src/store/jobs.rs), shown at GET /api/admin/jobs.
CREATE TABLE IF NOT EXISTS jobs (
  name                 TEXT    PRIMARY KEY,
  cursor               TEXT,
  last_started_at      INTEGER,
  last_finished_at     INTEGER,
  last_success_at      INTEGER,
  last_error           TEXT,
  last_error_at        INTEGER,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  runs                 INTEGER NOT NULL DEFAULT 0,
  last_report          TEXT
);
-- The reconciliation cursor walked memories only: it is the first of the prefixes it walks now.
INSERT OR IGNORE INTO jobs (name, cursor)
SELECT 'omi.reconcile', CASE WHEN cursor IS NULL THEN NULL ELSE '0:' || cursor END FROM omi_job_state WHERE job = 'reconcile';
DROP TABLE IF EXISTS omi_job_state;

-- Delivery ids are scoped to the mentor and the memory: another mentor's (or memory's) reuse of
-- an id is a new delivery, not a duplicate.
CREATE TABLE IF NOT EXISTS omi_deliveries_scoped (
  user_id     TEXT    NOT NULL,
  memory_id   TEXT    NOT NULL,
  delivery_id TEXT    NOT NULL,
  sha256      TEXT    NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, memory_id, delivery_id)
);
INSERT OR IGNORE INTO omi_deliveries_scoped (user_id, memory_id, delivery_id, sha256, received_at)
SELECT user_id, memory_id, delivery_id, sha256, received_at FROM omi_deliveries;
DROP TABLE IF EXISTS omi_deliveries;
ALTER TABLE omi_deliveries_scoped RENAME TO omi_deliveries;

-- The GC's NOT EXISTS checks look objects up by key in every reference source.
CREATE INDEX IF NOT EXISTS omi_memory_versions_daily_key ON omi_memory_versions (daily_key) WHERE daily_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS omi_day_summaries_r2_key ON omi_day_summaries (r2_key);
-- Retention walks transcripts by time and summaries by date.
CREATE INDEX IF NOT EXISTS omi_transcript_batches_received ON omi_transcript_batches (received_at);
CREATE INDEX IF NOT EXISTS omi_day_summaries_date ON omi_day_summaries (date);

INSERT OR IGNORE INTO schema_version (version, name) VALUES (6, 'storage_core');
