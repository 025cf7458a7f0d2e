-- The append-only, hash-chained audit log. seq is assigned as head+1 under
-- a lock, so it is gapless unless a row is deleted behind Steward's back.
CREATE TABLE audit_log (
	seq BIGINT PRIMARY KEY,
	at TIMESTAMP NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	subject_id TEXT,
	detail TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL
);

CREATE INDEX audit_log_subject ON audit_log (subject_id);
CREATE INDEX audit_log_actor ON audit_log (actor);

-- The head of the chain, rewritten with every entry: it makes a truncated
-- tail visible, as long as whoever truncated the log left this row alone.
CREATE TABLE audit_anchor (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	seq BIGINT NOT NULL,
	hash TEXT NOT NULL,
	at TIMESTAMP NOT NULL
);
