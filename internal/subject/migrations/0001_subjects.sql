-- Subjects: everyone Steward holds data about. Rows are never deleted:
-- erasure clears the personal columns and keeps the id as a tombstone so
-- references from other tables (and the audit log) stay valid.
CREATE TABLE subjects (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL CHECK (kind IN ('member', 'email')),
	email TEXT UNIQUE,
	source TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL,
	merged_into TEXT REFERENCES subjects (id),
	erased_at TIMESTAMP
);

CREATE INDEX subjects_merged_into ON subjects (merged_into);

-- One row per subject with the flags the guard reads.
CREATE TABLE subject_state (
	subject_id TEXT PRIMARY KEY REFERENCES subjects (id),
	restricted BOOLEAN NOT NULL DEFAULT FALSE,
	restricted_categories TEXT NOT NULL DEFAULT '',
	restricted_at TIMESTAMP,
	marketing_suppressed BOOLEAN NOT NULL DEFAULT FALSE,
	marketing_suppressed_at TIMESTAMP,
	legal_hold BOOLEAN NOT NULL DEFAULT FALSE,
	legal_hold_reason TEXT NOT NULL DEFAULT '',
	legal_hold_at TIMESTAMP,
	updated_at TIMESTAMP NOT NULL
);

-- One row per subject and purpose the subject consented to or objected to.
CREATE TABLE subject_purpose_state (
	subject_id TEXT NOT NULL REFERENCES subjects (id),
	purpose TEXT NOT NULL,
	consent BOOLEAN NOT NULL DEFAULT FALSE,
	consent_at TIMESTAMP,
	objection BOOLEAN NOT NULL DEFAULT FALSE,
	objection_at TIMESTAMP,
	updated_at TIMESTAMP NOT NULL,
	PRIMARY KEY (subject_id, purpose)
);
