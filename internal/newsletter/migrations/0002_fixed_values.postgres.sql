-- Columns that hold a value code chooses from a fixed set stay plaintext
-- only with a CHECK list, so that nothing a person typed can land in them:
-- how a subscription ended (a consent method), and why a campaign mail was
-- not sent (the guard's reason, or the campaign's or the outbox's own).
-- A value outside the list, which no release wrote, becomes the empty
-- method or 'unknown reason'.
UPDATE newsletter_subscriptions SET unsubscribe_method = ''
	WHERE unsubscribe_method NOT IN ('', 'form', 'api', 'email_link', 'gpc', 'staff');
ALTER TABLE newsletter_subscriptions ADD CONSTRAINT newsletter_subscriptions_unsubscribe_method_check
	CHECK (unsubscribe_method IN ('', 'form', 'api', 'email_link', 'gpc', 'staff'));

UPDATE newsletter_sends SET reason = 'unknown reason' WHERE reason NOT IN ('',
	'unknown purpose', 'unknown category', 'category not used by purpose', 'payment data outside payment',
	'consent missing', 'objection in force', 'marketing suppressed', 'processing restricted',
	'the staff role may not use this purpose', 'unknown reason',
	'unknown subject', 'no address', 'address not usable',
	'at delivery: unknown subject', 'at delivery: unsubscribed',
	'at delivery: unknown purpose', 'at delivery: unknown category', 'at delivery: category not used by purpose',
	'at delivery: payment data outside payment', 'at delivery: consent missing', 'at delivery: objection in force',
	'at delivery: marketing suppressed', 'at delivery: processing restricted',
	'at delivery: the staff role may not use this purpose', 'at delivery: unknown reason');
ALTER TABLE newsletter_sends ADD CONSTRAINT newsletter_sends_reason_check CHECK (reason IN ('',
	'unknown purpose', 'unknown category', 'category not used by purpose', 'payment data outside payment',
	'consent missing', 'objection in force', 'marketing suppressed', 'processing restricted',
	'the staff role may not use this purpose', 'unknown reason',
	'unknown subject', 'no address', 'address not usable',
	'at delivery: unknown subject', 'at delivery: unsubscribed',
	'at delivery: unknown purpose', 'at delivery: unknown category', 'at delivery: category not used by purpose',
	'at delivery: payment data outside payment', 'at delivery: consent missing', 'at delivery: objection in force',
	'at delivery: marketing suppressed', 'at delivery: processing restricted',
	'at delivery: the staff role may not use this purpose', 'at delivery: unknown reason'));
