-- Issue 16: a message's spam score (spamd), on its accepted and held events:
-- JSON {"score", "threshold", "rules"}.
ALTER TABLE events ADD COLUMN spam TEXT;
