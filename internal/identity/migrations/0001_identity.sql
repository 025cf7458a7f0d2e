-- Accounts: one row per member or staff subject. The email address lives
-- once, in subjects.email (owned by package subject), where login looks it
-- up; phone, billing address and date of birth are sealed under the
-- subject's data key for their category (BYTEA). password_hash is NULL for
-- an account that signs in another way (OpenID Connect, a later issue).
-- Sub-accounts and authorised users (a later issue) live in their own
-- grants table keyed by subject ids, so nothing here needs to change.
CREATE TABLE accounts (
	subject_id TEXT PRIMARY KEY,
	name TEXT,
	password_hash TEXT,
	phone BYTEA,
	company TEXT,
	organisation TEXT,
	billing_address BYTEA,
	location TEXT,
	date_of_birth BYTEA,
	age_confirmed_at TIMESTAMP,
	role TEXT NOT NULL DEFAULT '' CHECK (role IN ('', 'admin', 'privacy', 'support', 'analyst')),
	email_verified_at TIMESTAMP,
	password_changed_at TIMESTAMP,
	source TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);

CREATE INDEX accounts_role ON accounts (role);

-- Sessions: only the SHA-256 of the bearer token is stored. The network is
-- truncated (IPv4 /24, IPv6 /48) and the user agent reduced to its family,
-- enough for a member to recognise a session and no more.
CREATE TABLE sessions (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	token_hash BYTEA NOT NULL UNIQUE,
	created_at TIMESTAMP NOT NULL,
	last_seen_at TIMESTAMP NOT NULL,
	idle_expires_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	auth_at TIMESTAMP NOT NULL,
	user_agent_family TEXT NOT NULL DEFAULT '',
	network TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sessions_subject ON sessions (subject_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Single-use tokens sent by mail: verification of an address, password
-- reset, change of address. Only the SHA-256 of the token is stored; email
-- is the address the token was sent to (the new one for a change).
CREATE TABLE email_tokens (
	token_hash BYTEA PRIMARY KEY,
	subject_id TEXT NOT NULL,
	purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'email-change')),
	email TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	used_at TIMESTAMP
);

CREATE INDEX email_tokens_subject ON email_tokens (subject_id, purpose);
CREATE INDEX email_tokens_expires ON email_tokens (expires_at);

-- Failure and attempt counts for rate limiting, shared by every process.
-- key is an HMAC of the scope and the email or client network under a
-- server secret: no raw address or IP is ever written here.
CREATE TABLE auth_throttle (
	key TEXT PRIMARY KEY,
	scope TEXT NOT NULL,
	failures INTEGER NOT NULL,
	window_start TIMESTAMP NOT NULL,
	locked_until TIMESTAMP,
	updated_at TIMESTAMP NOT NULL
);

CREATE INDEX auth_throttle_window ON auth_throttle (window_start);

-- The secret the throttle keys are made with, when the operator supplies
-- none: random, created once, shared by every process on the database.
CREATE TABLE identity_secrets (
	name TEXT PRIMARY KEY,
	secret BYTEA NOT NULL,
	created_at TIMESTAMP NOT NULL
);
