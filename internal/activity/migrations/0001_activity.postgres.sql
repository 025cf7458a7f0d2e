-- Daily secret salts, one per site and site-local day. A row lives only
-- while its day lasts (plus a short grace) and is then deleted, so visitor
-- hashes of different days cannot be linked.
CREATE TABLE activity_salts (
	site TEXT NOT NULL,
	day TEXT NOT NULL,
	salt BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (site, day)
);

-- Anonymous events: no subject, no IP, no user agent. The visitor column is
-- the truncated keyed hash of that day; once the day's salt is gone it
-- links events of one day only. Id order is commit order, which retention
-- walks instead of an index on at.
CREATE TABLE activity_events (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	site TEXT NOT NULL,
	at TIMESTAMPTZ NOT NULL,
	visitor BIGINT NOT NULL,
	type TEXT NOT NULL,
	page TEXT NOT NULL DEFAULT '',
	query TEXT NOT NULL DEFAULT '',
	referrer TEXT NOT NULL DEFAULT '',
	search TEXT NOT NULL DEFAULT '',
	link TEXT NOT NULL DEFAULT '',
	asset TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL DEFAULT '',
	props TEXT NOT NULL DEFAULT '',
	duration_ms BIGINT NOT NULL DEFAULT 0,
	country TEXT NOT NULL DEFAULT '',
	region TEXT NOT NULL DEFAULT '',
	city TEXT NOT NULL DEFAULT '',
	browser TEXT NOT NULL DEFAULT '',
	os TEXT NOT NULL DEFAULT '',
	screen TEXT NOT NULL DEFAULT ''
);

-- Events of signed-in members, linked to their account because the policy
-- says so (link_to_account). They are the member's personal data: export
-- and erasure find them by subject_id.
CREATE TABLE activity_member_events (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	subject_id TEXT NOT NULL,
	policy_version INTEGER NOT NULL,
	site TEXT NOT NULL,
	at TIMESTAMPTZ NOT NULL,
	type TEXT NOT NULL,
	page TEXT NOT NULL DEFAULT '',
	query TEXT NOT NULL DEFAULT '',
	referrer TEXT NOT NULL DEFAULT '',
	search TEXT NOT NULL DEFAULT '',
	link TEXT NOT NULL DEFAULT '',
	asset TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL DEFAULT '',
	props TEXT NOT NULL DEFAULT '',
	duration_ms BIGINT NOT NULL DEFAULT 0,
	country TEXT NOT NULL DEFAULT '',
	region TEXT NOT NULL DEFAULT '',
	city TEXT NOT NULL DEFAULT '',
	browser TEXT NOT NULL DEFAULT '',
	os TEXT NOT NULL DEFAULT '',
	screen TEXT NOT NULL DEFAULT ''
);
CREATE INDEX activity_member_events_subject ON activity_member_events (subject_id);
CREATE INDEX activity_member_events_at ON activity_member_events (at);

-- Which (visitor, dimension, value) keys were already counted on a day, so
-- unique visitors are exact across batches and processes. Used on
-- PostgreSQL; SQLite's single writer keeps the set in memory and rebuilds
-- it from activity_events at start. Deleted with the day's salt.
-- UNLOGGED: its random-key inserts wrote a full-page image to the WAL for
-- nearly every key and made commits several times slower. The cost is that
-- a crash of the database server (not of Steward) empties it, and visitors
-- seen before that crash may be counted again that day.
CREATE UNLOGGED TABLE activity_seen (
	site TEXT NOT NULL,
	day TEXT NOT NULL,
	k BIGINT NOT NULL,
	PRIMARY KEY (site, day, k)
);

-- Rollups per site-local day and dimension (page, referrer, search,
-- country, ...). "total" with value '' holds the site's daily totals.
-- Byte-order collation: reports group and sort by these columns, and the
-- locale's collation made that several times slower.
CREATE TABLE activity_daily (
	site TEXT COLLATE "C" NOT NULL,
	dim TEXT COLLATE "C" NOT NULL,
	day TEXT COLLATE "C" NOT NULL,
	value TEXT COLLATE "C" NOT NULL,
	views BIGINT NOT NULL DEFAULT 0,
	visitors BIGINT NOT NULL DEFAULT 0,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	durations BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (site, dim, day, value)
);

-- Site totals per site-local hour; hour is the UTC instant the local hour
-- starts, so zones with half- and quarter-hour offsets are exact.
CREATE TABLE activity_hourly (
	site TEXT NOT NULL,
	hour TIMESTAMPTZ NOT NULL,
	views BIGINT NOT NULL DEFAULT 0,
	visitors BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (site, hour)
);

-- How far rollups have counted: the id of the last event of each table
-- they include (SQLite holds rollups back up to a second and writes them
-- with this watermark; at start, events past it are rolled up).
CREATE TABLE activity_rollup_state (
	name TEXT NOT NULL PRIMARY KEY,
	last_id BIGINT NOT NULL
);

-- Sums of activity_daily over aligned blocks of 2^level site-local days
-- (level 1..8: 2 to 256 days; block n covers day numbers n*2^level to
-- (n+1)*2^level - 1, counted from 1970-01-01). Built by a job once every
-- day of a block is over, so a report over a long range reads a few block
-- rows per value instead of one row per day.
CREATE TABLE activity_blocks (
	site TEXT COLLATE "C" NOT NULL,
	dim TEXT COLLATE "C" NOT NULL,
	level INTEGER NOT NULL,
	block INTEGER NOT NULL,
	value TEXT COLLATE "C" NOT NULL,
	views BIGINT NOT NULL DEFAULT 0,
	visitors BIGINT NOT NULL DEFAULT 0,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	durations BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (site, dim, level, block, value)
);
