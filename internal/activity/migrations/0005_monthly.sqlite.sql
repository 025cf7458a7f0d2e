-- Rollups per site-local calendar month ("2006-01") and dimension: what
-- stays of activity_daily once its days are past the activity retention,
-- where the policy keeps monthly aggregates. Visitors are summed daily
-- unique visitors (visitor-days), not unique visitors of the month. In
-- free-text dimensions a value no day of the month saw k visitors of is
-- merged into "(other)"; peak is the most visitors one day of the month
-- gave the value, which decides that.
CREATE TABLE activity_monthly (
	site TEXT NOT NULL,
	dim TEXT NOT NULL,
	month TEXT NOT NULL,
	value TEXT NOT NULL,
	views BIGINT NOT NULL DEFAULT 0,
	visitors BIGINT NOT NULL DEFAULT 0,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	durations BIGINT NOT NULL DEFAULT 0,
	peak BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (site, dim, month, value)
) WITHOUT ROWID;
