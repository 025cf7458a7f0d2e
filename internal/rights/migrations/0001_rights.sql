-- Rights requests (GDPR Art. 15-22): one row per request, its state, its
-- deadline and what was done. The subject's own words (reason) and the
-- corrections they asked for are personal data and are cleared when the
-- subject is erased; the row itself is kept as the record that the request
-- was answered (accountability, Art. 5(2)).
CREATE TABLE rights_requests (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	type TEXT NOT NULL CHECK (type IN ('access', 'portability', 'rectification', 'restriction', 'objection', 'erasure')),
	scope TEXT NOT NULL DEFAULT '',
	params TEXT NOT NULL DEFAULT '{}',
	corrections TEXT NOT NULL DEFAULT '{}',
	reason TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL CHECK (status IN ('received', 'verified', 'in_progress', 'completed', 'refused', 'expired')),
	channel TEXT NOT NULL CHECK (channel IN ('account', 'email', 'staff')),
	filed_by TEXT NOT NULL,
	session_id TEXT NOT NULL DEFAULT '',
	received_at TIMESTAMP NOT NULL,
	due_at TIMESTAMP NOT NULL,
	verify_by TIMESTAMP,
	verified_at TIMESTAMP,
	code_hash BYTEA,
	code_expires_at TIMESTAMP,
	code_attempts INTEGER NOT NULL DEFAULT 0,
	token_hash BYTEA,
	extended_months INTEGER NOT NULL DEFAULT 0,
	extension_reason TEXT NOT NULL DEFAULT '',
	needs_review BOOLEAN NOT NULL DEFAULT FALSE,
	refusal_reason TEXT NOT NULL DEFAULT '',
	progress INTEGER NOT NULL DEFAULT 0,
	phase TEXT NOT NULL DEFAULT '',
	result TEXT NOT NULL DEFAULT '',
	created_subject BOOLEAN NOT NULL DEFAULT FALSE,
	handled_by TEXT NOT NULL DEFAULT '',
	completed_at TIMESTAMP,
	updated_at TIMESTAMP NOT NULL
);

CREATE INDEX rights_requests_subject ON rights_requests (subject_id, received_at);
CREATE INDEX rights_requests_queue ON rights_requests (status, due_at);
CREATE UNIQUE INDEX rights_requests_token ON rights_requests (token_hash);

-- Finished exports of access and portability requests, sealed under the
-- subject's "rights-export" data key: an export holds decrypted copies of
-- sealed fields, so it must die with the subject's keys.
CREATE TABLE rights_exports (
	request_id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	format TEXT NOT NULL,
	content BYTEA NOT NULL,
	size BIGINT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);

CREATE INDEX rights_exports_subject ON rights_exports (subject_id);
CREATE INDEX rights_exports_expires ON rights_exports (expires_at);

-- The pseudonymous erasure ledger: who (by id only), what scope, when.
-- `steward rights reapply` replays it after a backup is restored.
CREATE TABLE rights_erasures (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	request_id TEXT NOT NULL,
	scope TEXT NOT NULL,
	params TEXT NOT NULL DEFAULT '{}',
	erased_at TIMESTAMP NOT NULL
);

CREATE INDEX rights_erasures_subject ON rights_erasures (subject_id);
CREATE INDEX rights_erasures_at ON rights_erasures (erased_at);
