-- One data key per subject and category, wrapped (AES-256-GCM) by the
-- master key named by master_id. Destroying a key sets wrapped to NULL and
-- destroyed_at, and keeps the row as a tombstone so nothing new is sealed
-- under that subject and category by accident.
CREATE TABLE data_keys (
	subject_id TEXT NOT NULL,
	category TEXT NOT NULL,
	wrapped BYTEA,
	master_id TEXT,
	created_at TIMESTAMP NOT NULL,
	destroyed_at TIMESTAMP,
	PRIMARY KEY (subject_id, category)
);
