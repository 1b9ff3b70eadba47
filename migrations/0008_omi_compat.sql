-- Issue 12: Omi as it really sends, and the old app's data carried over.

-- The content hash (src/omi/content.rs): the same memory serialised differently (Omi's wire
-- bytes, an import's re-serialisation) is one version. `sha256` stays the hash of the stored
-- bytes, which every read verifies. Rows stored before this migration get theirs from the
-- omi.content_hashes job (or the legacy migration's first phase); NULLs never conflict.
ALTER TABLE omi_memory_versions ADD COLUMN content_sha256 TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS omi_memory_versions_content ON omi_memory_versions (user_id, memory_id, content_sha256);
CREATE INDEX IF NOT EXISTS omi_memory_versions_content_missing ON omi_memory_versions (user_id) WHERE content_sha256 IS NULL;

-- The old app's sanitised uids → real Omi uids (PUT /api/omi/legacy/mapping). `sanitized` is
-- the old app's id (legacy::uid_class), `uid` a storable r2d1 uid.
CREATE TABLE IF NOT EXISTS omi_uid_mapping (
  sanitized  TEXT    PRIMARY KEY,
  uid        TEXT    NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS omi_uid_mapping_uid ON omi_uid_mapping (uid);

-- What the server-side migration found of the old app's R2 objects (POST /api/omi/legacy/migrate):
-- one row per object, from the scan of one pass (`pass`: the pass's start time, ms).
--   copy        readable and attributed, its content not stored yet
--   stored      its content is stored in r2d1 (`stored_uid`, `stored_key`)
--   condemned   stored, and the old object condemned for the GC (a ledger of finished work)
--   unreadable  not JSON, no memory id, a name that disagrees with the wrapper, no mentor, …
--   skipped     under the old prefixes but in none of the old layouts
CREATE TABLE IF NOT EXISTS omi_legacy_objects (
  key            TEXT    PRIMARY KEY,
  pass           INTEGER NOT NULL,
  layout         TEXT,
  state          TEXT    NOT NULL CHECK (state IN ('copy', 'stored', 'condemned', 'unreadable', 'skipped')),
  spelling       TEXT,    -- the mentor as the copy spells it (legacy::attribute)
  uid_class      TEXT,    -- its sanitised class: the mapping's key
  storable       INTEGER, -- 1 when `spelling` can be an r2d1 uid itself
  class_storable INTEGER, -- 1 when `uid_class` can
  memory_id      TEXT,
  content_sha256 TEXT,
  received_at    INTEGER,
  size_bytes     INTEGER,
  others         TEXT,    -- JSON array of other uids the copy names (a conflict; the wrapper wins)
  reason         TEXT,    -- why it is unreadable
  stored_uid     TEXT,
  stored_key     TEXT,
  updated_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS omi_legacy_objects_state ON omi_legacy_objects (state, pass);

-- Each copy with the uid it is stored under: the mapping's real uid for its sanitised class;
-- else its own spelling when storable; else its class when storable; else NULL (map it).
-- `mapped`: the uid is one the mapping names. Mirrors legacy::Mapping::resolve.
CREATE VIEW IF NOT EXISTS omi_legacy_resolved AS
SELECT o.*,
       COALESCE(m.uid, CASE WHEN o.storable = 1 THEN o.spelling WHEN o.class_storable = 1 THEN o.uid_class END) AS uid,
       (m.uid IS NOT NULL OR EXISTS (SELECT 1 FROM omi_uid_mapping r WHERE r.uid = o.spelling)) AS mapped
FROM omi_legacy_objects o LEFT JOIN omi_uid_mapping m ON m.sanitized = o.uid_class;

INSERT OR IGNORE INTO schema_version (version, name) VALUES (8, 'omi_compat');
