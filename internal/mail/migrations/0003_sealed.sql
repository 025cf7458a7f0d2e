-- Every personal value of a message is sealed with its subject's key: the
-- address under the key of the email field's category, what the message
-- says (subject line, bodies, headers, unsubscribe methods, which carry
-- tokens) under the key of the mail field's. The plaintext columns stay,
-- always empty once existing rows are re-sealed at start-up, until a later
-- release drops them.
ALTER TABLE mail_outbox ADD COLUMN to_addr_sealed BYTEA;
ALTER TABLE mail_outbox ADD COLUMN subject_sealed BYTEA;
ALTER TABLE mail_outbox ADD COLUMN body_text_sealed BYTEA;
ALTER TABLE mail_outbox ADD COLUMN body_html_sealed BYTEA;
ALTER TABLE mail_outbox ADD COLUMN headers_sealed BYTEA;
ALTER TABLE mail_outbox ADD COLUMN unsubscribe_url_sealed BYTEA;
ALTER TABLE mail_outbox ADD COLUMN unsubscribe_mailto_sealed BYTEA;

-- The policy purpose a message serves: it is opened through the door for
-- that purpose, at delivery and on the staff screen. Mail queued by an
-- earlier release gets the built-in purpose its kind always served; other
-- kinds keep none, and are suppressed rather than sent for a purpose no one
-- named.
ALTER TABLE mail_outbox ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
UPDATE mail_outbox SET purpose = 'security'
	WHERE kind IN ('verification', 'signup-existing', 'finish-signup', 'password-reset', 'email-change', 'email-change-notice', 'password-changed');
UPDATE mail_outbox SET purpose = 'subject-request' WHERE kind IN ('rights-request', 'newsletter-confirm');
