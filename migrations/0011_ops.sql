-- Operations (issue 15): what /api/health's alerts read besides the jobs table.

-- The consistency check's walks (src/store/checks.rs). A walk is the calls from a first call
-- without a cursor to the one that completes it (GET /api/admin/consistency, or the
-- `consistency` job a step per cron run); each call adds its counts to the walk's row.
-- /api/health reports the newest finished walk and turns `degraded` when it found problems.
CREATE TABLE IF NOT EXISTS consistency_walks (
  id                         INTEGER PRIMARY KEY AUTOINCREMENT,
  mode                       TEXT    NOT NULL CHECK (mode IN ('metadata', 'bytes')),
  trigger                    TEXT    NOT NULL CHECK (trigger IN ('api', 'job')),
  started_at                 INTEGER NOT NULL,
  updated_at                 INTEGER NOT NULL,
  finished_at                INTEGER,
  calls                      INTEGER NOT NULL DEFAULT 0,
  rows_checked               INTEGER NOT NULL DEFAULT 0,
  objects_checked            INTEGER NOT NULL DEFAULT 0,
  rows_without_objects       INTEGER NOT NULL DEFAULT 0,
  sha_mismatches             INTEGER NOT NULL DEFAULT 0,
  objects_without_rows       INTEGER NOT NULL DEFAULT 0,
  orphans_older_than_grace   INTEGER NOT NULL DEFAULT 0,
  index_rows_without_version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS consistency_walks_finished ON consistency_walks (finished_at) WHERE finished_at IS NOT NULL;

INSERT OR IGNORE INTO schema_version (version, name) VALUES (11, 'ops');
