-- App files, issue 13: rollout by percentage with a rollback switch, lifecycle (deleting versions
-- and apps, retention, tags, quotas), the change log builders sync from, and the daily R2
-- operation counts the storage report prices.

-- Version numbers come from a counter, never from MAX(version_number) + 1: deleting the newest
-- version must not let its number be given to different files (a signed URL or a tag elsewhere
-- may still name it).
ALTER TABLE apps ADD COLUMN next_version INTEGER NOT NULL DEFAULT 1;
UPDATE apps SET next_version = COALESCE((SELECT MAX(version_number) FROM app_versions v WHERE v.app_id = apps.id), 0) + 1;

-- The app's stable rollout bucket (0-9999, from SHA-256 of its id: src/files/rollout.rs), stored
-- so the migrator's SQL can tell which apps the percentage reaches. NULL until the worker fills
-- it in (SQLite has no SHA-256); a NULL bucket is reached only at 100 %.
ALTER TABLE apps ADD COLUMN rollout_bucket INTEGER CHECK (rollout_bucket IS NULL OR rollout_bucket BETWEEN 0 AND 9999);

-- Per-app quotas (NULL: the APP_MAX_* default, itself unlimited when unset) and retention
-- policy (NULL: keep every version).
ALTER TABLE apps ADD COLUMN max_bytes INTEGER CHECK (max_bytes IS NULL OR max_bytes >= 0);
ALTER TABLE apps ADD COLUMN max_files INTEGER CHECK (max_files IS NULL OR max_files >= 0);
ALTER TABLE apps ADD COLUMN max_versions INTEGER CHECK (max_versions IS NULL OR max_versions >= 0);
ALTER TABLE apps ADD COLUMN retention_keep_last INTEGER CHECK (retention_keep_last IS NULL OR retention_keep_last >= 1);
ALTER TABLE apps ADD COLUMN retention_keep_days INTEGER CHECK (retention_keep_days IS NULL OR retention_keep_days >= 1);

-- Revisions up to this one have no change-log rows (older apps, or rows pruned): a builder whose
-- cursor is older must resync from a full export.
ALTER TABLE apps ADD COLUMN changes_pruned_through INTEGER NOT NULL DEFAULT 0;
UPDATE apps SET changes_pruned_through = revision;

-- A tag names one version of an app; tagged versions are never deleted (retention skips them,
-- an explicit delete is refused until the tag is removed).
CREATE TABLE IF NOT EXISTS app_version_tags (
  app_id         TEXT    NOT NULL,
  tag            TEXT    NOT NULL CHECK (length(tag) BETWEEN 1 AND 32),
  version_number INTEGER NOT NULL,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (app_id, tag),
  FOREIGN KEY (app_id, version_number) REFERENCES app_versions (app_id, version_number)
);
CREATE INDEX IF NOT EXISTS app_version_tags_version ON app_version_tags (app_id, version_number);

-- Every change to an app's current files, one row per path and revision, written in the same
-- batch as the change (src/files/changes.rs). `sha256` is the content after the change (NULL
-- for a deletion).
CREATE TABLE IF NOT EXISTS app_file_changes (
  app_id     TEXT    NOT NULL,
  revision   INTEGER NOT NULL,
  path       TEXT    NOT NULL,
  action     TEXT    NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
  sha256     TEXT    CHECK (sha256 IS NULL OR length(sha256) = 64),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (app_id, revision, path),
  CHECK ((action = 'deleted') = (sha256 IS NULL))
);
CREATE INDEX IF NOT EXISTS app_file_changes_age ON app_file_changes (created_at);

-- Settings an operator changes without a deploy (STORAGE_R2_PERCENT, STORAGE_ROLLBACK); a row
-- here wins over the variable of the same name.
CREATE TABLE IF NOT EXISTS storage_settings (
  name       TEXT    PRIMARY KEY,
  value      TEXT    NOT NULL,
  updated_at INTEGER NOT NULL
);

-- R2 operations the worker made, by UTC day, workload and billing class (src/store/usage.rs).
CREATE TABLE IF NOT EXISTS r2_operations_daily (
  day      TEXT    NOT NULL,
  workload TEXT    NOT NULL,
  class_a  INTEGER NOT NULL DEFAULT 0,
  class_b  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, workload)
);

-- What R2 holds by object kind, counted by listing the bucket (the `storage.census` job, a
-- resumable walk): `next` fills while a pass runs and becomes `current` when it completes. The
-- row of kind `total` counts every object.
CREATE TABLE IF NOT EXISTS r2_census (
  pass        TEXT    NOT NULL CHECK (pass IN ('current', 'next')),
  kind        TEXT    NOT NULL,
  objects     INTEGER NOT NULL DEFAULT 0,
  bytes       INTEGER NOT NULL DEFAULT 0,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  PRIMARY KEY (pass, kind)
);

-- The quota fence: always empty, like gc_fence. A write batch ends by inserting into the column
-- of a quota the app would pass; the named CHECK aborts the whole batch, so two concurrent
-- writes cannot both slip under a limit. The D1 adapter maps each name to the quota it guards.
CREATE TABLE IF NOT EXISTS app_quota_fence (
  bytes    INTEGER CONSTRAINT app_quota_bytes CHECK (bytes IS NULL),
  files    INTEGER CONSTRAINT app_quota_files CHECK (files IS NULL),
  versions INTEGER CONSTRAINT app_quota_versions CHECK (versions IS NULL)
);

INSERT OR IGNORE INTO schema_version (version, name) VALUES (9, 'app_lifecycle');
