-- Newest-first listings hide discarded memories by default. With `discarded` in the index, the
-- page query reads the index in order and the total is counted from the index alone, instead of
-- visiting every row of a mentor to test the flag (5,000 lookups for a busy mentor).
CREATE INDEX IF NOT EXISTS omi_memories_by_user_kept ON omi_memories (user_id, discarded, created_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS omi_memories_by_time_kept ON omi_memories (discarded, created_at DESC, seq DESC);

INSERT OR IGNORE INTO schema_version (version, name) VALUES (4, 'omi_listing_indexes');
