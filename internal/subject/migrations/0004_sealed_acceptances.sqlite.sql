-- The evidence of an acceptance (browser family, network) is sealed with
-- the subject's key for the category of field consent, like the consent
-- ledger's. The plaintext columns stay, always empty once existing rows
-- are re-sealed at start-up, until a later release drops them. The method
-- is one of the consent ledger's methods, written by code only: it stays
-- in plaintext, checked (SQLite adds a check only by making the table
-- again).
CREATE TABLE subject_policy_acceptances_new (
	subject_id TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	policy_hash TEXT NOT NULL,
	method TEXT NOT NULL CHECK (method IN ('form', 'api', 'email_link', 'gpc', 'staff')),
	ua_family TEXT NOT NULL DEFAULT '',
	network TEXT NOT NULL DEFAULT '',
	accepted_at TIMESTAMP NOT NULL,
	ua_family_sealed BYTEA,
	network_sealed BYTEA,
	PRIMARY KEY (subject_id, policy_version)
);
INSERT INTO subject_policy_acceptances_new (subject_id, policy_version, policy_hash, method, ua_family, network, accepted_at)
	SELECT subject_id, policy_version, policy_hash, method, ua_family, network, accepted_at FROM subject_policy_acceptances;
DROP TABLE subject_policy_acceptances;
ALTER TABLE subject_policy_acceptances_new RENAME TO subject_policy_acceptances;
