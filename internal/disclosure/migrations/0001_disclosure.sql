-- The register of disclosures: each time personal data left Steward for a
-- recipient, who received it, which fields of which categories, for which
-- purpose, on which basis and when. Never a copy of the data. The
-- recipient knows the subject only by recipient_ref, a keyed digest of the
-- subject id under the recipient's own key; an account erasure empties
-- subject_id and keeps the rest, so the erasure can still be propagated
-- to the recipient (GDPR Art. 19) by that reference.
CREATE TABLE disclosures (
	id TEXT PRIMARY KEY,
	subject_id TEXT,
	recipient_id TEXT NOT NULL,
	recipient_ref TEXT NOT NULL,
	purpose TEXT NOT NULL,
	categories TEXT NOT NULL,
	fields TEXT NOT NULL,
	basis TEXT NOT NULL,
	basis_ref TEXT NOT NULL DEFAULT '',
	actor TEXT NOT NULL,
	disclosed_at TIMESTAMP NOT NULL
);
CREATE INDEX disclosures_subject ON disclosures (subject_id, disclosed_at);
CREATE INDEX disclosures_recipient ON disclosures (recipient_id, disclosed_at);
CREATE INDEX disclosures_ref ON disclosures (recipient_ref);
CREATE INDEX disclosures_time ON disclosures (disclosed_at, id);

-- What is delivered to recipients: a disclosure's fields (sealed under the
-- subject's key until delivered, then emptied), or a rights event (an
-- erasure, rectification or restriction to act on, carrying only the
-- recipient's reference). The id is the event id the recipient sees on
-- every attempt (webhook-id), so it drops repeats. Status: pending (to be
-- sent or pulled), delivered (the endpoint answered 2xx or the recipient
-- pulled it), acknowledged (the recipient confirmed, signed), failed (no
-- attempt left), manual (no endpoint: staff tell the recipient by hand).
CREATE TABLE disclosure_deliveries (
	id TEXT PRIMARY KEY,
	recipient_id TEXT NOT NULL,
	event_type TEXT NOT NULL,
	disclosure_id TEXT,
	rights_request_id TEXT,
	subject_id TEXT,
	seal_category TEXT NOT NULL DEFAULT '',
	body_sealed BYTEA,
	body TEXT,
	status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'acknowledged', 'failed', 'manual')),
	attempts INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	delivered_at TIMESTAMP,
	acknowledged_at TIMESTAMP,
	handled_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX disclosure_deliveries_recipient ON disclosure_deliveries (recipient_id, status, created_at);
CREATE INDEX disclosure_deliveries_request ON disclosure_deliveries (rights_request_id);
CREATE INDEX disclosure_deliveries_subject ON disclosure_deliveries (subject_id);
CREATE UNIQUE INDEX disclosure_deliveries_once ON disclosure_deliveries (rights_request_id, recipient_id, event_type);

-- The delivery log: every attempt, its HTTP status and a short error.
CREATE TABLE disclosure_attempts (
	delivery_id TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	at TIMESTAMP NOT NULL,
	status_code INTEGER NOT NULL,
	error TEXT NOT NULL,
	PRIMARY KEY (delivery_id, attempt)
);

-- Acknowledgement messages already accepted, by their message id, so a
-- replayed acknowledgement is refused.
CREATE TABLE disclosure_acks (
	recipient_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	received_at TIMESTAMP NOT NULL,
	PRIMARY KEY (recipient_id, message_id)
);

-- Legal requests (subpoenas, court orders, emergencies...) with their
-- decision and the decision whether, and when, the people concerned are
-- told. Reason texts are staff's words about the demand, not about a
-- person; the people asked about are in legal_request_subjects.
CREATE TABLE legal_requests (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL CHECK (kind IN ('subpoena', 'court-order', 'emergency', 'other')),
	jurisdiction TEXT NOT NULL,
	authority TEXT NOT NULL,
	recipient_id TEXT NOT NULL,
	categories TEXT NOT NULL,
	received_at TIMESTAMP NOT NULL,
	deadline TIMESTAMP,
	decision TEXT NOT NULL CHECK (decision IN ('pending', 'complied', 'partly', 'refused')),
	decision_reason TEXT NOT NULL DEFAULT '',
	notify TEXT NOT NULL CHECK (notify IN ('now', 'delay', 'never')),
	notify_after TIMESTAMP,
	notify_reason TEXT NOT NULL DEFAULT '',
	accounts INTEGER NOT NULL,
	recorded_by TEXT NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
CREATE INDEX legal_requests_received ON legal_requests (received_at);

-- The transparency report's counts, kept with the register in the same
-- transactions: requests and the accounts they name, by half-year of
-- receipt, kind, jurisdiction and decision.
CREATE TABLE legal_request_tally (
	period TEXT NOT NULL,
	kind TEXT NOT NULL,
	jurisdiction TEXT NOT NULL,
	decision TEXT NOT NULL,
	requests INTEGER NOT NULL,
	accounts INTEGER NOT NULL,
	PRIMARY KEY (period, kind, jurisdiction, decision)
);

-- The subjects a legal request asks about, and when each was told.
CREATE TABLE legal_request_subjects (
	request_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	notified_at TIMESTAMP,
	PRIMARY KEY (request_id, subject_id)
);
CREATE INDEX legal_request_subjects_subject ON legal_request_subjects (subject_id);

-- The transparency report of each half-year that has ended, as published
-- when it ended: later changes to the register do not change it.
CREATE TABLE transparency_periods (
	period TEXT PRIMARY KEY,
	report TEXT NOT NULL,
	published_at TIMESTAMP NOT NULL
);
