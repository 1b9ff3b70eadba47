-- Access control (issue 11): API keys, per-mentor webhook credentials, invite codes and
-- enrollment, and the audit log. Every credential is stored as a hash, except mentors' signing
-- secrets, which an HMAC needs in the clear (see README "Access").

-- API keys: `r2d1_{prefix}_{secret}`. Only the SHA-256 of the whole key is kept; the prefix is
-- the public handle a presented key is looked up by (src/access/api_key.rs).
CREATE TABLE IF NOT EXISTS api_keys (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  prefix       TEXT    NOT NULL UNIQUE,
  hash         TEXT    NOT NULL,
  name         TEXT    NOT NULL,
  -- canonical space-separated scopes (src/access/scope.rs)
  scopes       TEXT    NOT NULL,
  created_at   INTEGER NOT NULL,
  created_by   TEXT,
  expires_at   INTEGER,
  last_used_at INTEGER,
  revoked_at   INTEGER
);

-- Per-mentor webhook credentials (src/access/webhook.rs): a token's SHA-256, or a `whsec_`
-- signing secret. A rotation sets `retires_at` on the replaced ones (valid until then).
CREATE TABLE IF NOT EXISTS mentor_credentials (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  uid        TEXT    NOT NULL,
  kind       TEXT    NOT NULL CHECK (kind IN ('token', 'signingSecret')),
  material   TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  retires_at INTEGER,
  revoked_at INTEGER,
  last_used_at INTEGER
);
CREATE INDEX IF NOT EXISTS mentor_credentials_uid ON mentor_credentials (uid);

-- Invite codes (src/access/enrollment.rs): only the hash of the normalised code is kept.
CREATE TABLE IF NOT EXISTS invites (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  code_hash  TEXT    NOT NULL UNIQUE,
  label      TEXT    NOT NULL,
  max_uses   INTEGER NOT NULL CHECK (max_uses >= 1),
  uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses <= max_uses),
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  created_by TEXT,
  revoked_at INTEGER
);

-- Uids r2d1 stores deliveries for under OMI_ENROLLMENT=required (and whose Omi set-up is
-- complete): linked by an invite code, by an admin, or by a per-mentor credential.
CREATE TABLE IF NOT EXISTS enrollments (
  uid         TEXT    PRIMARY KEY,
  label       TEXT    NOT NULL,
  via         TEXT    NOT NULL CHECK (via IN ('invite', 'admin', 'credential')),
  invite_id   INTEGER,
  enrolled_at INTEGER NOT NULL
);

-- Uids that delivered while not enrolled (OMI_ENROLLMENT=required): answered 2xx, nothing of
-- them stored but this counter, so an admin sees who is asking and can enroll them.
CREATE TABLE IF NOT EXISTS enrollment_requests (
  uid        TEXT    PRIMARY KEY,
  deliveries INTEGER NOT NULL,
  first_at   INTEGER NOT NULL,
  last_at    INTEGER NOT NULL
);

-- The audit log (src/access/audit.rs): every change made through the API and every refusal of
-- a valid key; kept AUDIT_RETENTION_DAYS by the access.audit_retention job.
CREATE TABLE IF NOT EXISTS audit_log (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms      INTEGER NOT NULL,
  key_prefix TEXT,
  method     TEXT    NOT NULL,
  route      TEXT    NOT NULL,
  target     TEXT    NOT NULL,
  outcome    TEXT    NOT NULL CHECK (outcome IN ('ok', 'denied', 'rejected', 'failed')),
  status     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (at_ms, id);
CREATE INDEX IF NOT EXISTS audit_log_key ON audit_log (key_prefix, at_ms, id);

INSERT OR IGNORE INTO schema_version (version, name) VALUES (7, 'access');
