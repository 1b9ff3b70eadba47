-- Foundation: a record of which schema the database is on, read by GET /api/health.
-- Each migration appends its own row, so the highest version is the schema in force.
CREATE TABLE IF NOT EXISTS schema_version (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT OR IGNORE INTO schema_version (version, name) VALUES (1, 'foundation');
