-- The same key as on PostgreSQL (0003_seen_key.postgres.sql): a seen-key
-- already hashes its site and day. SQLite does not use the table, and
-- cannot change a primary key in place, so it is rebuilt.
CREATE TABLE activity_seen_new (
	site TEXT NOT NULL,
	day TEXT NOT NULL,
	k INTEGER NOT NULL PRIMARY KEY
);
INSERT OR IGNORE INTO activity_seen_new (site, day, k) SELECT site, day, k FROM activity_seen;
DROP TABLE activity_seen;
ALTER TABLE activity_seen_new RENAME TO activity_seen;
