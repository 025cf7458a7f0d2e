-- Batches of events whose rollups are not written yet. Used on PostgreSQL
-- only (see 0002_pending.postgres.sql); SQLite's single writer keeps an
-- exact watermark in activity_rollup_state instead. The table exists on
-- both engines so the schema and the registry are the same.
CREATE TABLE activity_pending (
	writer INTEGER NOT NULL,
	batch INTEGER NOT NULL,
	event_ids TEXT NOT NULL,
	member_ids TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (writer, batch)
);
