-- The same CHECK lists as on PostgreSQL (0002_fixed_values.postgres.sql):
-- how a subscription ended and why a campaign mail was not sent are values
-- code chooses from a fixed set. SQLite cannot add a constraint to a
-- table, so both tables are rebuilt, with the same columns in the same
-- order; a value outside the list becomes the empty method or
-- 'unknown reason'.
CREATE TABLE newsletter_subscriptions_new (
	id TEXT PRIMARY KEY,
	list_id TEXT NOT NULL REFERENCES newsletter_lists (id),
	subject_id TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
	source TEXT NOT NULL,
	source_page TEXT NOT NULL DEFAULT '',
	policy_version INTEGER NOT NULL,
	confirm_nonce TEXT NOT NULL DEFAULT '',
	confirm_sent_at TIMESTAMP,
	confirm_sends INTEGER NOT NULL DEFAULT 0,
	consent_record_id TEXT NOT NULL DEFAULT '',
	tracking BOOLEAN NOT NULL DEFAULT FALSE,
	created_at TIMESTAMP NOT NULL,
	confirmed_at TIMESTAMP,
	unsubscribed_at TIMESTAMP,
	unsubscribe_method TEXT NOT NULL DEFAULT '' CHECK (unsubscribe_method IN ('', 'form', 'api', 'email_link', 'gpc', 'staff')),
	updated_at TIMESTAMP NOT NULL,
	UNIQUE (list_id, subject_id)
);
INSERT INTO newsletter_subscriptions_new (id, list_id, subject_id, status, source, source_page, policy_version, confirm_nonce,
	confirm_sent_at, confirm_sends, consent_record_id, tracking, created_at, confirmed_at, unsubscribed_at, unsubscribe_method, updated_at)
SELECT id, list_id, subject_id, status, source, source_page, policy_version, confirm_nonce,
	confirm_sent_at, confirm_sends, consent_record_id, tracking, created_at, confirmed_at, unsubscribed_at,
	CASE WHEN unsubscribe_method IN ('', 'form', 'api', 'email_link', 'gpc', 'staff') THEN unsubscribe_method ELSE '' END, updated_at
FROM newsletter_subscriptions;
DROP TABLE newsletter_subscriptions;
ALTER TABLE newsletter_subscriptions_new RENAME TO newsletter_subscriptions;
CREATE INDEX newsletter_subscriptions_subject ON newsletter_subscriptions (subject_id);
CREATE INDEX newsletter_subscriptions_send ON newsletter_subscriptions (list_id, status, subject_id);

CREATE TABLE newsletter_sends_new (
	campaign_id TEXT NOT NULL REFERENCES newsletter_campaigns (id),
	subject_id TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('queued', 'skipped')),
	reason TEXT NOT NULL DEFAULT '' CHECK (reason IN ('',
		'unknown purpose', 'unknown category', 'category not used by purpose', 'payment data outside payment',
		'consent missing', 'objection in force', 'marketing suppressed', 'processing restricted',
		'the staff role may not use this purpose', 'unknown reason',
		'unknown subject', 'no address', 'address not usable',
		'at delivery: unknown subject', 'at delivery: unsubscribed',
		'at delivery: unknown purpose', 'at delivery: unknown category', 'at delivery: category not used by purpose',
		'at delivery: payment data outside payment', 'at delivery: consent missing', 'at delivery: objection in force',
		'at delivery: marketing suppressed', 'at delivery: processing restricted',
		'at delivery: the staff role may not use this purpose', 'at delivery: unknown reason')),
	outbox_id TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (campaign_id, subject_id)
);
INSERT INTO newsletter_sends_new (campaign_id, subject_id, status, reason, outbox_id, created_at)
SELECT campaign_id, subject_id, status,
	CASE WHEN reason IN ('',
		'unknown purpose', 'unknown category', 'category not used by purpose', 'payment data outside payment',
		'consent missing', 'objection in force', 'marketing suppressed', 'processing restricted',
		'the staff role may not use this purpose', 'unknown reason',
		'unknown subject', 'no address', 'address not usable',
		'at delivery: unknown subject', 'at delivery: unsubscribed',
		'at delivery: unknown purpose', 'at delivery: unknown category', 'at delivery: category not used by purpose',
		'at delivery: payment data outside payment', 'at delivery: consent missing', 'at delivery: objection in force',
		'at delivery: marketing suppressed', 'at delivery: processing restricted',
		'at delivery: the staff role may not use this purpose', 'at delivery: unknown reason') THEN reason ELSE 'unknown reason' END,
	outbox_id, created_at
FROM newsletter_sends;
DROP TABLE newsletter_sends;
ALTER TABLE newsletter_sends_new RENAME TO newsletter_sends;
CREATE INDEX newsletter_sends_subject ON newsletter_sends (subject_id);
