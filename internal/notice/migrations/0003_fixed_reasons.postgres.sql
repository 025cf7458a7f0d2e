-- Why a notice was not mailed to someone is a value code chooses from a
-- fixed set (the guard's reason, or the notice's or the outbox's own), so
-- it stays plaintext only with a CHECK list that keeps anything a person
-- typed out of it. A value outside the list, which no release wrote,
-- becomes 'unknown reason'.
UPDATE notice_deliveries SET reason = 'unknown reason' WHERE reason NOT IN ('',
	'unknown purpose', 'unknown category', 'category not used by purpose', 'payment data outside payment',
	'consent missing', 'objection in force', 'marketing suppressed', 'processing restricted',
	'the staff role may not use this purpose', 'unknown reason',
	'address not verified', 'address not usable');
ALTER TABLE notice_deliveries ADD CONSTRAINT notice_deliveries_reason_check CHECK (reason IN ('',
	'unknown purpose', 'unknown category', 'category not used by purpose', 'payment data outside payment',
	'consent missing', 'objection in force', 'marketing suppressed', 'processing restricted',
	'the staff role may not use this purpose', 'unknown reason',
	'address not verified', 'address not usable'));
