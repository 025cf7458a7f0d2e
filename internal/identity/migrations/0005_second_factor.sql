-- Second factors: a TOTP authenticator (its secret sealed under the
-- account's credential key) or a passkey (its public credential, sealed
-- the same way), confirmed once the person proved they hold it. last_step
-- is the last TOTP time step accepted, so a code is never accepted twice.
CREATE TABLE second_factors (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('totp', 'passkey')),
	name TEXT NOT NULL DEFAULT '',
	secret_sealed BYTEA,
	credential_id BYTEA,
	last_step BIGINT NOT NULL DEFAULT 0,
	created_at TIMESTAMP NOT NULL,
	confirmed_at TIMESTAMP,
	last_used_at TIMESTAMP
);
CREATE INDEX second_factors_subject ON second_factors (subject_id);

-- Single-use recovery codes, for a lost authenticator: only a hash of each.
CREATE TABLE recovery_codes (
	subject_id TEXT NOT NULL,
	code_hash BYTEA NOT NULL,
	created_at TIMESTAMP NOT NULL,
	used_at TIMESTAMP,
	PRIMARY KEY (subject_id, code_hash)
);

-- When the session's second factor was given (NULL: not yet).
ALTER TABLE sessions ADD COLUMN second_factor_at TIMESTAMP;
