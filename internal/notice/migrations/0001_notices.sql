-- Notices sent to many people at once: a significant policy change (one per
-- policy version) or a broadcast staff send (change of ownership, breach).
CREATE TABLE notices (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL CHECK (kind IN ('policy-change', 'ownership', 'breach', 'other')),
	policy_version INTEGER,
	subject_line TEXT NOT NULL,
	body_text TEXT NOT NULL,
	audience TEXT NOT NULL CHECK (audience IN ('members-and-subscribers', 'everyone')),
	created_by TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent')),
	cursor_subject TEXT NOT NULL DEFAULT '',
	queued INTEGER NOT NULL DEFAULT 0,
	skipped INTEGER NOT NULL DEFAULT 0,
	created_at TIMESTAMP NOT NULL,
	completed_at TIMESTAMP,
	UNIQUE (kind, policy_version)
);

-- Every notice, recorded per recipient.
CREATE TABLE notice_deliveries (
	notice_id TEXT NOT NULL REFERENCES notices (id),
	subject_id TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('queued', 'skipped')),
	reason TEXT NOT NULL DEFAULT '',
	outbox_id TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (notice_id, subject_id)
);

CREATE INDEX notice_deliveries_subject ON notice_deliveries (subject_id);

-- A member's explicit acceptance of a policy version that reduced rights
-- (M16). Until a member accepts, the guard applies to them the stricter of
-- the version they last accepted and the current one.
CREATE TABLE policy_acceptances (
	subject_id TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	policy_hash TEXT NOT NULL,
	method TEXT NOT NULL,
	ua_family TEXT NOT NULL DEFAULT '',
	network TEXT NOT NULL DEFAULT '',
	accepted_at TIMESTAMP NOT NULL,
	PRIMARY KEY (subject_id, policy_version)
);
