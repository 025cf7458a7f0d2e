-- The subscription limit per client network, shared by every process on
-- the database: a token bucket per network, found by a keyed digest of
-- the network (never the network itself).
CREATE TABLE newsletter_rate (
	network_index BYTEA PRIMARY KEY,
	tokens DOUBLE PRECISION NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
CREATE INDEX newsletter_rate_updated ON newsletter_rate (updated_at);
