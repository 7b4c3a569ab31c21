-- Tags, metadata and engagement details on events; settings on accounts
-- (issue 4). JSON text in both backends, read and written by Herald only.
ALTER TABLE events ADD COLUMN tags TEXT;
ALTER TABLE events ADD COLUMN metadata TEXT;
ALTER TABLE events ADD COLUMN engagement TEXT;
ALTER TABLE accounts ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
