-- The same CHECK list as on PostgreSQL (0003_fixed_reasons.postgres.sql):
-- why a notice was not mailed is a value code chooses from a fixed set.
-- SQLite cannot add a constraint to a table, so it is rebuilt with the same
-- columns in the same order; a value outside the list becomes
-- 'unknown reason'.
CREATE TABLE notice_deliveries_new (
	notice_id TEXT NOT NULL REFERENCES notices (id),
	subject_id TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('queued', 'skipped')),
	reason TEXT NOT NULL DEFAULT '' CHECK (reason IN ('',
		'unknown purpose', 'unknown category', 'category not used by purpose', 'payment data outside payment',
		'consent missing', 'objection in force', 'marketing suppressed', 'processing restricted',
		'the staff role may not use this purpose', 'unknown reason',
		'address not verified', 'address not usable')),
	outbox_id TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (notice_id, subject_id)
);
INSERT INTO notice_deliveries_new (notice_id, subject_id, status, reason, outbox_id, created_at)
SELECT notice_id, subject_id, status,
	CASE WHEN reason IN ('',
		'unknown purpose', 'unknown category', 'category not used by purpose', 'payment data outside payment',
		'consent missing', 'objection in force', 'marketing suppressed', 'processing restricted',
		'the staff role may not use this purpose', 'unknown reason',
		'address not verified', 'address not usable') THEN reason ELSE 'unknown reason' END,
	outbox_id, created_at
FROM notice_deliveries;
DROP TABLE notice_deliveries;
ALTER TABLE notice_deliveries_new RENAME TO notice_deliveries;
CREATE INDEX notice_deliveries_subject ON notice_deliveries (subject_id);
