-- Every published version of the policy, kept for ever (promise M16): the
-- raw file as published, its canonical hash, and how the change from the
-- version before was classified.
CREATE TABLE policy_versions (
	number INTEGER PRIMARY KEY,
	hash TEXT NOT NULL,
	effective_date TEXT NOT NULL,
	published_at TIMESTAMP NOT NULL,
	classification TEXT NOT NULL,
	significant BOOLEAN NOT NULL,
	reduces_rights BOOLEAN NOT NULL,
	reasons TEXT NOT NULL,
	raw BYTEA NOT NULL
);
