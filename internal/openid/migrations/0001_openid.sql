-- Sign-ins in progress: an application asked Steward who is signed in.
-- The request lives for minutes; subject_id is set when the member
-- approves it, code_hash when the code is issued (the code itself is
-- never stored), and the row goes when the code is spent or the request
-- expires.
CREATE TABLE openid_requests (
	id TEXT PRIMARY KEY,
	client_id TEXT NOT NULL,
	redirect_uri TEXT NOT NULL,
	scopes TEXT NOT NULL,
	state TEXT NOT NULL,
	nonce TEXT NOT NULL,
	response_type TEXT NOT NULL,
	response_mode TEXT NOT NULL,
	prompt TEXT NOT NULL,
	max_age INTEGER,
	hint_subject TEXT NOT NULL DEFAULT '',
	code_challenge TEXT NOT NULL,
	code_challenge_method TEXT NOT NULL,
	subject_id TEXT,
	granted_scopes TEXT NOT NULL DEFAULT '',
	auth_time TIMESTAMP,
	amr TEXT NOT NULL DEFAULT '',
	code_hash BYTEA UNIQUE,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);
CREATE INDEX openid_requests_subject ON openid_requests (subject_id);
CREATE INDEX openid_requests_expires ON openid_requests (expires_at);

-- Access tokens issued to applications: the token the application holds
-- is this id encrypted, so a database read alone cannot replay one.
CREATE TABLE openid_tokens (
	id TEXT PRIMARY KEY,
	client_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	scopes TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);
CREATE INDEX openid_tokens_subject ON openid_tokens (subject_id, client_id);
CREATE INDEX openid_tokens_expires ON openid_tokens (expires_at);

-- Applications a member signed in to ("connected applications"): the
-- scopes they were asked about, when, and when the application last
-- received their claims. Revoking deletes the row, its tokens and its
-- pending requests.
CREATE TABLE openid_grants (
	subject_id TEXT NOT NULL,
	client_id TEXT NOT NULL,
	pairwise TEXT NOT NULL,
	scopes TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	last_used_at TIMESTAMP,
	PRIMARY KEY (subject_id, client_id)
);
CREATE INDEX openid_grants_pairwise ON openid_grants (client_id, pairwise);

-- The provider's signing keys: RSA private keys sealed with a key derived
-- from the master key. The newest signs; older ones stay published until
-- no token they signed can still be valid.
CREATE TABLE openid_keys (
	id TEXT PRIMARY KEY,
	algorithm TEXT NOT NULL,
	private_sealed BYTEA NOT NULL,
	created_at TIMESTAMP NOT NULL
);
