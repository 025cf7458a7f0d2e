-- The consent ledger: append-only. A change of mind is a new row; no row is
-- ever updated. subject_state (package subject) holds what is in force now.
CREATE TABLE consent_records (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	purpose TEXT NOT NULL,
	scope TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL CHECK (state IN ('given', 'withdrawn', 'refused')),
	method TEXT NOT NULL CHECK (method IN ('form', 'api', 'email_link', 'gpc', 'staff')),
	collection_point TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	policy_hash TEXT NOT NULL,
	notice_hash TEXT NOT NULL,
	actor TEXT NOT NULL,
	ua_family TEXT NOT NULL DEFAULT '',
	network TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	receipt TEXT NOT NULL
);

CREATE INDEX consent_records_subject ON consent_records (subject_id, purpose, created_at);
