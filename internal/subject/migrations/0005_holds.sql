-- Legal holds: a subject's data, one category of it, or one category of
-- everyone's, kept from the retention sweep and from erasure while the hold
-- is in force (placed, not lifted, not past its expiry, which staff review).
CREATE TABLE subject_holds (
	id TEXT PRIMARY KEY,
	subject_id TEXT REFERENCES subjects (id),
	category TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL,
	source TEXT NOT NULL,
	placed_by TEXT NOT NULL,
	placed_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	lifted_at TIMESTAMP,
	lifted_by TEXT NOT NULL DEFAULT ''
);

CREATE INDEX subject_holds_subject ON subject_holds (subject_id);
