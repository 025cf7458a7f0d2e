-- Staff roles for quality reviewers of support records and for billing. SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt with its rows.
CREATE TABLE accounts_new (
	subject_id TEXT PRIMARY KEY,
	name TEXT,
	password_hash TEXT,
	phone BYTEA,
	company TEXT,
	organisation TEXT,
	billing_address BYTEA,
	location TEXT,
	date_of_birth BYTEA,
	age_confirmed_at TIMESTAMP,
	role TEXT NOT NULL DEFAULT '' CHECK (role IN ('', 'admin', 'privacy', 'support', 'analyst', 'moderator', 'quality', 'billing')),
	email_verified_at TIMESTAMP,
	password_changed_at TIMESTAMP,
	source TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	name_sealed BYTEA,
	company_sealed BYTEA,
	organisation_sealed BYTEA,
	location_sealed BYTEA,
	password_sealed BYTEA
);
INSERT INTO accounts_new SELECT subject_id, name, password_hash, phone, company, organisation, billing_address, location,
	date_of_birth, age_confirmed_at, role, email_verified_at, password_changed_at, source, policy_version, created_at, updated_at,
	name_sealed, company_sealed, organisation_sealed, location_sealed, password_sealed FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_new RENAME TO accounts;
CREATE INDEX accounts_role ON accounts (role);
