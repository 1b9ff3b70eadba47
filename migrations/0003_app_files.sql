-- Versioned app files (issue 4). Content lives inline in D1, in R2, or both, per the storage
-- policy in src/files/tier.rs. Timestamps are milliseconds since the epoch (INTEGER).

-- One row per app; created by its first write. `revision` goes up with every change to the
-- app's files or versions, so a snapshot or restore can make its whole D1 batch conditional on
-- nothing having changed since it read (optimistic concurrency without a lock).
CREATE TABLE IF NOT EXISTS apps (
  id           TEXT PRIMARY KEY,
  storage_mode TEXT CHECK (storage_mode IS NULL OR storage_mode IN ('database', 'hybrid', 'r2')),
  revision     INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);

-- The current files. A file always has its content somewhere: inline (`content`), in R2
-- (`r2_key`) or both, as `storage_location` says; the CHECK makes any other row impossible.
CREATE TABLE IF NOT EXISTS app_files (
  app_id           TEXT NOT NULL REFERENCES apps (id),
  path             TEXT NOT NULL CHECK (length(path) BETWEEN 1 AND 1024),
  file_type        TEXT NOT NULL CHECK (file_type IN ('text', 'binary')),
  content_type     TEXT NOT NULL,
  size_bytes       INTEGER NOT NULL CHECK (size_bytes >= 0),
  sha256           TEXT NOT NULL CHECK (length(sha256) = 64),
  is_entry_point   INTEGER NOT NULL DEFAULT 0 CHECK (is_entry_point IN (0, 1)),
  storage_location TEXT NOT NULL CHECK (storage_location IN ('database', 'hybrid', 'r2')),
  r2_key           TEXT,
  content          BLOB,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  PRIMARY KEY (app_id, path),
  CHECK (content IS NULL OR length(content) = size_bytes),
  CHECK (
    (storage_location = 'database' AND content IS NOT NULL AND r2_key IS NULL) OR
    (storage_location = 'hybrid' AND content IS NOT NULL AND r2_key IS NOT NULL) OR
    (storage_location = 'r2' AND content IS NULL AND r2_key IS NOT NULL)
  )
);
CREATE INDEX IF NOT EXISTS app_files_r2_key ON app_files (r2_key) WHERE r2_key IS NOT NULL;

-- Snapshots. The manifest is inline when small, else an R2 object at `snapshot_key`;
-- `manifest_sha256` lets a reader tell a damaged or stale manifest from the real one.
CREATE TABLE IF NOT EXISTS app_versions (
  app_id           TEXT NOT NULL REFERENCES apps (id),
  version_number   INTEGER NOT NULL CHECK (version_number >= 1),
  changelog        TEXT NOT NULL DEFAULT '',
  environment      TEXT NOT NULL DEFAULT 'development',
  storage_strategy TEXT NOT NULL CHECK (storage_strategy IN ('inline', 'r2')),
  snapshot_key     TEXT,
  manifest         TEXT,
  manifest_sha256  TEXT NOT NULL CHECK (length(manifest_sha256) = 64),
  manifest_bytes   INTEGER NOT NULL,
  file_count       INTEGER NOT NULL,
  total_bytes      INTEGER NOT NULL,
  restored_from    INTEGER,
  created_at       INTEGER NOT NULL,
  PRIMARY KEY (app_id, version_number),
  CHECK (
    (storage_strategy = 'inline' AND manifest IS NOT NULL AND snapshot_key IS NULL) OR
    (storage_strategy = 'r2' AND manifest IS NULL AND snapshot_key IS NOT NULL)
  )
);
CREATE INDEX IF NOT EXISTS app_versions_snapshot_key ON app_versions (snapshot_key) WHERE snapshot_key IS NOT NULL;

-- Each version's files, with their own reference to the content (a copy of the inline bytes,
-- or the content-addressed R2 key, which the version keeps alive against GC). A deleted line
-- records the last hash and has no content.
CREATE TABLE IF NOT EXISTS app_version_files (
  app_id           TEXT NOT NULL,
  version_number   INTEGER NOT NULL,
  path             TEXT NOT NULL,
  action           TEXT NOT NULL CHECK (action IN ('created', 'updated', 'deleted', 'restored', 'unchanged')),
  file_type        TEXT NOT NULL CHECK (file_type IN ('text', 'binary')),
  content_type     TEXT NOT NULL,
  size_bytes       INTEGER NOT NULL CHECK (size_bytes >= 0),
  sha256           TEXT NOT NULL CHECK (length(sha256) = 64),
  is_entry_point   INTEGER NOT NULL DEFAULT 0,
  storage_location TEXT CHECK (storage_location IS NULL OR storage_location IN ('database', 'hybrid', 'r2')),
  r2_key           TEXT,
  content          BLOB,
  PRIMARY KEY (app_id, version_number, path),
  FOREIGN KEY (app_id, version_number) REFERENCES app_versions (app_id, version_number),
  CHECK (content IS NULL OR length(content) = size_bytes),
  CHECK (
    (action = 'deleted' AND storage_location IS NULL AND content IS NULL AND r2_key IS NULL) OR
    (storage_location = 'database' AND content IS NOT NULL AND r2_key IS NULL) OR
    (storage_location = 'hybrid' AND content IS NOT NULL AND r2_key IS NOT NULL) OR
    (storage_location = 'r2' AND content IS NULL AND r2_key IS NOT NULL)
  )
);
CREATE INDEX IF NOT EXISTS app_version_files_r2_key ON app_version_files (r2_key) WHERE r2_key IS NOT NULL;

-- Every content object in R2 (`apps/{app}/blobs/{sha256}`), written before the D1 rows that
-- point at it. `stored_bytes` is the size after gzip; `last_seen_at` is when a write last
-- reused the object. (A writer that reuses an object checks it still exists after its D1
-- commit, because GC may judge it unreferenced in between.)
CREATE TABLE IF NOT EXISTS blobs (
  r2_key           TEXT PRIMARY KEY,
  app_id           TEXT NOT NULL,
  sha256           TEXT NOT NULL CHECK (length(sha256) = 64),
  size_bytes       INTEGER NOT NULL CHECK (size_bytes >= 0),
  stored_bytes     INTEGER NOT NULL CHECK (stored_bytes >= 0),
  content_encoding TEXT CHECK (content_encoding IS NULL OR content_encoding = 'gzip'),
  created_at       INTEGER NOT NULL,
  last_seen_at     INTEGER NOT NULL
);

-- What references each object: current files and version lines. An object with no
-- references here (and no manifest pointing at it) is garbage once past the grace period.
CREATE VIEW IF NOT EXISTS blob_references AS
SELECT
  b.r2_key,
  b.app_id,
  b.sha256,
  (SELECT COUNT(*) FROM app_files f WHERE f.r2_key = b.r2_key) AS file_refs,
  (SELECT COUNT(*) FROM app_version_files v WHERE v.r2_key = b.r2_key) AS version_refs
FROM blobs b;

INSERT OR IGNORE INTO schema_version (version, name) VALUES (3, 'app_files');
