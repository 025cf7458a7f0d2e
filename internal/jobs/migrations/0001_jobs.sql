-- One row per background job. Payloads are JSON holding ids only, never
-- personal values, so this table holds no personal data.
CREATE TABLE jobs (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	payload BYTEA NOT NULL,
	status TEXT NOT NULL,
	dedupe_key TEXT,
	priority INTEGER NOT NULL DEFAULT 0,
	run_at TIMESTAMP NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL,
	lease_owner TEXT,
	lease_until TIMESTAMP,
	last_error TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);

-- Claiming walks this index in order and stops at the first due row.
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at) WHERE status = 'pending';

-- The reaper finds running jobs whose worker vanished.
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE status = 'running';

-- At most one pending job per dedupe key.
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL;

CREATE INDEX jobs_key ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL;

CREATE INDEX jobs_dead ON jobs (updated_at) WHERE status = 'dead';
