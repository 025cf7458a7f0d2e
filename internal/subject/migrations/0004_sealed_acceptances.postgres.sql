-- The evidence of an acceptance (browser family, network) is sealed with
-- the subject's key for the category of field consent, like the consent
-- ledger's. The plaintext columns stay, always empty once existing rows
-- are re-sealed at start-up, until a later release drops them. The method
-- is one of the consent ledger's methods, written by code only: it stays
-- in plaintext, checked.
ALTER TABLE subject_policy_acceptances ADD COLUMN ua_family_sealed BYTEA;
ALTER TABLE subject_policy_acceptances ADD COLUMN network_sealed BYTEA;
ALTER TABLE subject_policy_acceptances ADD CONSTRAINT subject_policy_acceptances_method
	CHECK (method IN ('form', 'api', 'email_link', 'gpc', 'staff'));
