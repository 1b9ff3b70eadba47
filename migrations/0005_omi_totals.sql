-- Running totals per mentor and per mentor-day, kept by triggers on omi_memories, so that the
-- listing's total, the mentor list and daily analytics cost the same at 100,000 memories as at
-- 1,000 (they read a row per mentor or per mentor-day instead of every memory). Triggers run
-- inside the writing transaction, so every path — webhook, import, reindex, retention, deleting
-- a mentor — keeps them exact without knowing they exist.

CREATE TABLE IF NOT EXISTS omi_user_totals (
  user_id          TEXT PRIMARY KEY,
  memories         INTEGER NOT NULL,
  discarded        INTEGER NOT NULL,
  duration_seconds REAL    NOT NULL,
  words            INTEGER NOT NULL,
  first_created    INTEGER,
  last_created     INTEGER
);

CREATE TABLE IF NOT EXISTS omi_daily_totals (
  day              INTEGER NOT NULL, -- days since 1970-01-01 (UTC) of created_at
  user_id          TEXT    NOT NULL,
  memories         INTEGER NOT NULL,
  duration_seconds REAL    NOT NULL,
  PRIMARY KEY (day, user_id)
);

CREATE TRIGGER IF NOT EXISTS omi_memories_totals_insert AFTER INSERT ON omi_memories
BEGIN
  INSERT INTO omi_user_totals (user_id, memories, discarded, duration_seconds, words, first_created, last_created)
  VALUES (NEW.user_id, 1, NEW.discarded, COALESCE(NEW.duration_seconds, 0), NEW.word_count, NEW.created_at, NEW.created_at)
  ON CONFLICT (user_id) DO UPDATE SET
    memories = memories + 1, discarded = discarded + NEW.discarded,
    duration_seconds = duration_seconds + COALESCE(NEW.duration_seconds, 0), words = words + NEW.word_count,
    first_created = MIN(COALESCE(first_created, NEW.created_at), NEW.created_at),
    last_created = MAX(COALESCE(last_created, NEW.created_at), NEW.created_at);
  INSERT INTO omi_daily_totals (day, user_id, memories, duration_seconds)
  VALUES (NEW.created_at / 86400000, NEW.user_id, 1, COALESCE(NEW.duration_seconds, 0))
  ON CONFLICT (day, user_id) DO UPDATE SET
    memories = memories + 1, duration_seconds = duration_seconds + COALESCE(NEW.duration_seconds, 0);
END;

CREATE TRIGGER IF NOT EXISTS omi_memories_totals_delete AFTER DELETE ON omi_memories
BEGIN
  UPDATE omi_user_totals SET
    memories = memories - 1, discarded = discarded - OLD.discarded,
    duration_seconds = duration_seconds - COALESCE(OLD.duration_seconds, 0), words = words - OLD.word_count,
    first_created = (SELECT MIN(created_at) FROM omi_memories WHERE user_id = OLD.user_id),
    last_created = (SELECT MAX(created_at) FROM omi_memories WHERE user_id = OLD.user_id)
  WHERE user_id = OLD.user_id;
  DELETE FROM omi_user_totals WHERE user_id = OLD.user_id AND memories <= 0;
  UPDATE omi_daily_totals SET
    memories = memories - 1, duration_seconds = duration_seconds - COALESCE(OLD.duration_seconds, 0)
  WHERE day = OLD.created_at / 86400000 AND user_id = OLD.user_id;
  DELETE FROM omi_daily_totals WHERE day = OLD.created_at / 86400000 AND user_id = OLD.user_id AND memories <= 0;
END;

-- A new version replaces the index row in place: take the old one out, put the new one in.
CREATE TRIGGER IF NOT EXISTS omi_memories_totals_update AFTER UPDATE ON omi_memories
BEGIN
  UPDATE omi_user_totals SET
    discarded = discarded - OLD.discarded + NEW.discarded,
    duration_seconds = duration_seconds - COALESCE(OLD.duration_seconds, 0) + COALESCE(NEW.duration_seconds, 0),
    words = words - OLD.word_count + NEW.word_count,
    first_created = (SELECT MIN(created_at) FROM omi_memories WHERE user_id = NEW.user_id),
    last_created = (SELECT MAX(created_at) FROM omi_memories WHERE user_id = NEW.user_id)
  WHERE user_id = NEW.user_id;
  UPDATE omi_daily_totals SET
    memories = memories - 1, duration_seconds = duration_seconds - COALESCE(OLD.duration_seconds, 0)
  WHERE day = OLD.created_at / 86400000 AND user_id = OLD.user_id;
  DELETE FROM omi_daily_totals WHERE day = OLD.created_at / 86400000 AND user_id = OLD.user_id AND memories <= 0;
  INSERT INTO omi_daily_totals (day, user_id, memories, duration_seconds)
  VALUES (NEW.created_at / 86400000, NEW.user_id, 1, COALESCE(NEW.duration_seconds, 0))
  ON CONFLICT (day, user_id) DO UPDATE SET
    memories = memories + 1, duration_seconds = duration_seconds + COALESCE(NEW.duration_seconds, 0);
END;

-- Databases that already hold memories start with their totals.
INSERT OR REPLACE INTO omi_user_totals (user_id, memories, discarded, duration_seconds, words, first_created, last_created)
SELECT user_id, COUNT(*), SUM(discarded), COALESCE(SUM(duration_seconds), 0), SUM(word_count), MIN(created_at), MAX(created_at)
FROM omi_memories GROUP BY user_id;
INSERT OR REPLACE INTO omi_daily_totals (day, user_id, memories, duration_seconds)
SELECT created_at / 86400000, user_id, COUNT(*), COALESCE(SUM(duration_seconds), 0)
FROM omi_memories GROUP BY created_at / 86400000, user_id;

INSERT OR IGNORE INTO schema_version (version, name) VALUES (5, 'omi_totals');
