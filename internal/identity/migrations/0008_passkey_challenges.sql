-- Passkey ceremonies under way: the WebAuthn challenge and its
-- parameters, bound to the session that asked for it by a hash of the
-- session's id. Nothing personal: the user handle and the credential ids
-- are filled in again from the account when the answer comes. Each row is
-- spent by the first answer and lives minutes.
CREATE TABLE passkey_challenges (
	session_hash BYTEA NOT NULL,
	ceremony TEXT NOT NULL CHECK (ceremony IN ('register', 'login')),
	data TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	PRIMARY KEY (session_hash, ceremony)
);
CREATE INDEX passkey_challenges_expires ON passkey_challenges (expires_at);
