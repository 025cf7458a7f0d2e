-- Campaign mail is stored in batches, each delivered by one job that
-- sends its rows one by one (each still claimed on its own).
ALTER TABLE mail_outbox ADD COLUMN batch_id TEXT NOT NULL DEFAULT '';

CREATE INDEX mail_outbox_batch ON mail_outbox (batch_id) WHERE batch_id <> '';

-- Held mail (no SMTP server configured) is picked up for delivery once one
-- is, oldest first.
CREATE INDEX mail_outbox_held ON mail_outbox (created_at) WHERE status = 'held';
