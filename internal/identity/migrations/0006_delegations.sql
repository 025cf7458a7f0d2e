-- Accounts shared between holders: a sub-account whose holder lets the
-- primary read some of its data, or an authorised user who may read some
-- of the primary's. Until the invitation is accepted, subject_id and
-- reader_id are empty and only the blind index of the address invited and
-- the hash of the link are kept.
CREATE TABLE delegations (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL CHECK (kind IN ('sub-account', 'authorised-user')),
	primary_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	reader_id TEXT NOT NULL,
	categories TEXT NOT NULL,
	may_request BOOLEAN NOT NULL DEFAULT FALSE,
	status TEXT NOT NULL CHECK (status IN ('invited', 'active', 'revoked')),
	invite_index BYTEA,
	token_hash BYTEA UNIQUE,
	expires_at TIMESTAMP NOT NULL,
	created_at TIMESTAMP NOT NULL,
	accepted_at TIMESTAMP,
	revoked_at TIMESTAMP
);
-- The grant check: one indexed lookup per read.
CREATE INDEX delegations_reader ON delegations (reader_id, subject_id, status);
CREATE INDEX delegations_primary ON delegations (primary_id);
CREATE INDEX delegations_subject ON delegations (subject_id);
