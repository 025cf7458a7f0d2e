-- The durable outbox: every message Steward sends, with its delivery state.
-- Rows are personal data of subject_id (address and content).
CREATE TABLE mail_outbox (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	to_addr TEXT NOT NULL,
	subject TEXT NOT NULL,
	body_text TEXT NOT NULL,
	body_html TEXT NOT NULL DEFAULT '',
	headers TEXT NOT NULL DEFAULT '{}',
	list_id TEXT NOT NULL DEFAULT '',
	unsubscribe_url TEXT NOT NULL DEFAULT '',
	unsubscribe_mailto TEXT NOT NULL DEFAULT '',
	campaign_id TEXT NOT NULL DEFAULT '',
	message_id TEXT NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	claim_owner TEXT,
	claim_until TIMESTAMP,
	created_at TIMESTAMP NOT NULL,
	sent_at TIMESTAMP
);

CREATE INDEX mail_outbox_created ON mail_outbox (created_at);
CREATE INDEX mail_outbox_subject ON mail_outbox (subject_id);
CREATE INDEX mail_outbox_campaign ON mail_outbox (campaign_id, status) WHERE campaign_id <> '';
