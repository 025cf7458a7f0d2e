-- Staff roles for quality reviewers of support records and for billing.
ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check CHECK (role IN ('', 'admin', 'privacy', 'support', 'analyst', 'moderator', 'quality', 'billing'));
