-- A subject's explicit acceptance of a policy version that reduced rights
-- (M16): subject state, read with the rest of it. Until a subject accepts,
-- the guard applies to them the stricter of the version they are bound by
-- and the current one. Module notice, which kept these rows before, copies
-- them here in its own next migration.
CREATE TABLE subject_policy_acceptances (
	subject_id TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	policy_hash TEXT NOT NULL,
	method TEXT NOT NULL,
	ua_family TEXT NOT NULL DEFAULT '',
	network TEXT NOT NULL DEFAULT '',
	accepted_at TIMESTAMP NOT NULL,
	PRIMARY KEY (subject_id, policy_version)
);
