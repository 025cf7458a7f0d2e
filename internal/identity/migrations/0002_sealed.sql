-- Every personal value at rest is sealed with its subject's key: name,
-- company, organisation, location and the password's hash move to sealed
-- columns (phone, billing address and date of birth already were). The
-- plaintext columns stay, always empty once existing rows are re-sealed at
-- start-up, until a later release drops them.
ALTER TABLE accounts ADD COLUMN name_sealed BYTEA;
ALTER TABLE accounts ADD COLUMN company_sealed BYTEA;
ALTER TABLE accounts ADD COLUMN organisation_sealed BYTEA;
ALTER TABLE accounts ADD COLUMN location_sealed BYTEA;
ALTER TABLE accounts ADD COLUMN password_sealed BYTEA;

-- Sessions keep the browser family and the truncated network sealed too.
ALTER TABLE sessions ADD COLUMN user_agent_sealed BYTEA;
ALTER TABLE sessions ADD COLUMN network_sealed BYTEA;

-- Mail tokens: the address a link went to is sealed, found by its blind
-- index, and each token has an id of its own (the access report names it,
-- never the token's hash). Tokens last hours: the unused ones of the old
-- shape are dropped, and whoever waited on one asks for a new link.
DROP TABLE email_tokens;
CREATE TABLE email_tokens (
	id TEXT PRIMARY KEY,
	token_hash BYTEA NOT NULL UNIQUE,
	subject_id TEXT NOT NULL,
	purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'email-change')),
	email_sealed BYTEA NOT NULL,
	email_index BYTEA NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	used_at TIMESTAMP
);
CREATE INDEX email_tokens_subject ON email_tokens (subject_id, purpose);
CREATE INDEX email_tokens_expires ON email_tokens (expires_at);
CREATE INDEX email_tokens_email ON email_tokens (email_index, purpose);
