-- Batches of events whose rollups are not written yet (PostgreSQL). Each
-- batch of events commits with its row here, in one statement; the writer
-- holds the batch's rollups in memory for up to a second and writes them in
-- a transaction that deletes the row. A process that dies leaves its rows;
-- another process (or the same one restarted) rolls those events up from
-- activity_events once the dead writer's advisory lock is free. Whoever
-- deletes a row counts its events, so each is counted exactly once.
CREATE TABLE activity_pending (
	writer BIGINT NOT NULL,
	batch BIGINT NOT NULL,
	event_ids BIGINT[] NOT NULL,
	member_ids BIGINT[] NOT NULL,
	created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (writer, batch)
);
