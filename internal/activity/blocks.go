package activity

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"steward/internal/store"
)

// Blocks: sums of the daily rollup over aligned blocks of 2, 4, … 256
// site-local days (activity_blocks). A report over a range reads whole
// blocks where it can and daily rows at its edges: a 30-day range takes
// some five pieces instead of thirty days, a year some fifteen instead of
// 365. Blocks are built by a job, and only once every day in them is over
// (its salt destroyed: no event can be added to it any more), so a built
// block never changes — except when a SQLite restart rolls up events a
// crash left behind, which invalidates the blocks of those days.

// MaxBlockLevel is the largest block: 2^8 = 256 days.
const MaxBlockLevel = 8

// JobBlocks builds the blocks of days that are over.
const JobBlocks = "activity.blocks"

// DayNumber returns the number of days from 1970-01-01 to day
// ("2006-01-02"), the index blocks are aligned on.
func DayNumber(day string) (int64, error) {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return 0, err
	}
	return t.Unix() / 86400, nil
}

// DayOfNumber is the inverse of DayNumber.
func DayOfNumber(n int64) string { return time.Unix(n*86400, 0).UTC().Format(time.DateOnly) }

// BlockMarker names the row of activity_rollup_state that holds the next
// block to build of a site and level; reports read it to know which blocks
// exist.
func BlockMarker(site string, level int) string { return "blocks:" + site + ":" + strconv.Itoa(level) }

// BuildBlocks builds every block whose days are all over, for each site,
// and returns how many it built. Each block commits with its marker, so a
// crash or a second process never builds one twice.
func (c *Collector) BuildBlocks(ctx context.Context) (int, error) {
	return BuildBlocks(ctx, c.db, c.cfg.Sites, c.clock.Now())
}

// BuildBlocks is the job's work for given sites at instant now.
func BuildBlocks(ctx context.Context, db *store.DB, sites []Site, now time.Time) (int, error) {
	built := 0
	for _, s := range sites {
		// Days before the earliest day still open to events are final.
		lastFinal, err := DayNumber(localDay(now.Add(-saltGrace-time.Minute), s.Location))
		if err != nil {
			return built, err
		}
		lastFinal--
		var first sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT MIN(day) FROM activity_daily WHERE site = $1`, s.ID).Scan(&first); err != nil {
			return built, fmt.Errorf("activity: blocks: %w", err)
		}
		if !first.Valid {
			continue
		}
		firstN, err := DayNumber(first.String)
		if err != nil {
			return built, fmt.Errorf("activity: blocks: bad day %q", first.String)
		}
		for level := 1; level <= MaxBlockLevel; level++ {
			n, err := buildLevel(ctx, db, s.ID, level, firstN, lastFinal)
			built += n
			if err != nil {
				return built, err
			}
		}
	}
	return built, nil
}

func buildLevel(ctx context.Context, db *store.DB, site string, level int, firstN, lastFinal int64) (int, error) {
	marker := BlockMarker(site, level)
	var next int64
	err := db.QueryRowContext(ctx, `SELECT last_id FROM activity_rollup_state WHERE name = $1`, marker).Scan(&next)
	switch {
	case err == sql.ErrNoRows:
		next = firstN >> level
	case err != nil:
		return 0, fmt.Errorf("activity: blocks: %w", err)
	}
	built := 0
	for ((next+1)<<level)-1 <= lastFinal {
		b := next
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			var q string
			var args []any
			if level == 1 {
				q = `INSERT INTO activity_blocks (site, dim, level, block, value, views, visitors, duration_ms, durations)
SELECT site, dim, 1, CAST($2 AS BIGINT), value, SUM(views), SUM(visitors), SUM(duration_ms), SUM(durations)
FROM activity_daily WHERE site = $1 AND day >= $3 AND day <= $4 GROUP BY site, dim, value`
				args = []any{site, b, DayOfNumber(b << 1), DayOfNumber(b<<1 + 1)}
			} else {
				q = `INSERT INTO activity_blocks (site, dim, level, block, value, views, visitors, duration_ms, durations)
SELECT site, dim, CAST($2 AS INTEGER), CAST($3 AS BIGINT), value, SUM(views), SUM(visitors), SUM(duration_ms), SUM(durations)
FROM activity_blocks WHERE site = $1 AND level = $4 AND block >= $5 AND block <= $6 GROUP BY site, dim, value`
				args = []any{site, level, b, level - 1, 2 * b, 2*b + 1}
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO activity_rollup_state (name, last_id) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id`, marker, b+1)
			return err
		})
		if err != nil {
			return built, fmt.Errorf("activity: build %s block %d: %w", marker, b, err)
		}
		built++
		next = b + 1
	}
	return built, nil
}

// invalidateBlocks drops the blocks of a site that cover day or later
// ones, for events of a finished day rolled up late; the job builds them
// again.
func (c *Collector) invalidateBlocks(ctx context.Context, site string, day int64) error {
	return c.db.InTx(ctx, func(tx *sql.Tx) error {
		for level := 1; level <= MaxBlockLevel; level++ {
			b := day >> level
			if _, err := tx.ExecContext(ctx, `DELETE FROM activity_blocks WHERE site = $1 AND level = $2 AND block >= $3`, site, level, b); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE activity_rollup_state SET last_id = $2 WHERE name = $1 AND last_id > $2`,
				BlockMarker(site, level), b); err != nil {
				return err
			}
		}
		return nil
	})
}
