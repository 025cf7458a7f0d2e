-- Sign-in with the OpenID providers the policy declares. A link joins an
-- account to its account at a provider, found by a keyed digest of the
-- provider's issuer and its id for the person: neither is stored.
-- provider is the policy's id of the provider ("orcid"), so the member
-- sees which services can sign them in; one link per provider.
CREATE TABLE social_links (
	link_index BYTEA PRIMARY KEY,
	subject_id TEXT NOT NULL,
	provider TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	UNIQUE (subject_id, provider)
);

-- Sign-ins under way: the hash of the state the browser carries, the
-- nonce the ID token must bring back and the PKCE verifier. Nothing
-- personal; each row is spent by the first callback that names it, and
-- lives minutes.
CREATE TABLE social_flows (
	state_hash BYTEA PRIMARY KEY,
	provider TEXT NOT NULL,
	nonce TEXT NOT NULL,
	verifier TEXT NOT NULL,
	age_confirmed BOOLEAN NOT NULL DEFAULT FALSE,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);
CREATE INDEX social_flows_expires ON social_flows (expires_at);

-- A link waiting for the password of the account that already holds the
-- address a provider gave: only the hash of the token handed to the
-- browser, the account, the provider and the link's digest.
CREATE TABLE social_pending (
	token_hash BYTEA PRIMARY KEY,
	subject_id TEXT NOT NULL,
	provider TEXT NOT NULL,
	link_index BYTEA NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);
CREATE INDEX social_pending_subject ON social_pending (subject_id);
CREATE INDEX social_pending_expires ON social_pending (expires_at);

-- The picture a provider gave at sign-up: its URL, sealed.
ALTER TABLE accounts ADD COLUMN picture_sealed BYTEA;
