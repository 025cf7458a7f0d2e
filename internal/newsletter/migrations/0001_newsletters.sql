-- Lists: those the policy declares (source 'policy', synced at start) and
-- those staff add (source 'staff'). No personal data.
CREATE TABLE newsletter_lists (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	purpose TEXT NOT NULL,
	double_opt_in BOOLEAN NOT NULL,
	track_opens BOOLEAN NOT NULL DEFAULT FALSE,
	track_clicks BOOLEAN NOT NULL DEFAULT FALSE,
	source TEXT NOT NULL CHECK (source IN ('policy', 'staff')),
	open BOOLEAN NOT NULL DEFAULT TRUE,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);

-- One row per subject and list: the subscription's life (pending,
-- confirmed, unsubscribed) and the evidence of how it began and ended.
CREATE TABLE newsletter_subscriptions (
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
	unsubscribe_method TEXT NOT NULL DEFAULT '',
	updated_at TIMESTAMP NOT NULL,
	UNIQUE (list_id, subject_id)
);

CREATE INDEX newsletter_subscriptions_subject ON newsletter_subscriptions (subject_id);
CREATE INDEX newsletter_subscriptions_send ON newsletter_subscriptions (list_id, status, subject_id);

-- Campaigns staff compose. created_by is the staff member's pseudonymous
-- subject id; the text is the operator's, not personal data.
CREATE TABLE newsletter_campaigns (
	id TEXT PRIMARY KEY,
	list_id TEXT NOT NULL REFERENCES newsletter_lists (id),
	subject_line TEXT NOT NULL,
	body_text TEXT NOT NULL,
	body_html TEXT NOT NULL DEFAULT '',
	created_by TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent')),
	cursor_subject TEXT NOT NULL DEFAULT '',
	queued INTEGER NOT NULL DEFAULT 0,
	skipped INTEGER NOT NULL DEFAULT 0,
	created_at TIMESTAMP NOT NULL,
	completed_at TIMESTAMP
);

-- One row per campaign and recipient considered at send time: sent (with
-- the outbox message) or skipped (with the guard's reason). It makes a
-- batch job safe to re-run and shows what each person was sent.
CREATE TABLE newsletter_sends (
	campaign_id TEXT NOT NULL REFERENCES newsletter_campaigns (id),
	subject_id TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('queued', 'skipped')),
	reason TEXT NOT NULL DEFAULT '',
	outbox_id TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (campaign_id, subject_id)
);

CREATE INDEX newsletter_sends_subject ON newsletter_sends (subject_id);

-- Open and click events: recorded only when the policy allows tracking for
-- the list and the recipient consented to it.
CREATE TABLE newsletter_events (
	id TEXT PRIMARY KEY,
	campaign_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('open', 'click')),
	url TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL
);

CREATE INDEX newsletter_events_subject ON newsletter_events (subject_id);
CREATE INDEX newsletter_events_campaign ON newsletter_events (campaign_id);
