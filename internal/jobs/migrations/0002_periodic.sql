-- One row per periodic task kind: the lock that decides, across processes,
-- whether the task's next instance still has to be scheduled, and when it
-- is due. Scheduling a run and completing the previous one both take the
-- row, so two runners can never both schedule the same period.
CREATE TABLE jobs_periodic (
	kind TEXT PRIMARY KEY,
	next_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
