package activity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"steward/internal/store"
)

// The SQLite path: one process and one writer goroutine own the database's
// writes. The writer keeps one connection with its prepared statements and
// runs BEGIN IMMEDIATE … COMMIT itself. Events go in with multi-row
// INSERTs in power-of-two sizes (a handful of statements cover every
// batch). Their rollups are held back in memory (w.held) and written at
// most every RollupInterval, together with the watermark — the id of the
// last event they count — in activity_rollup_state, inside the next
// batch's transaction. At start, events past the watermark are rolled up,
// so counts are exact across crashes.

const (
	eventCols  = "site, at, visitor, type, page, query, referrer, search, link, asset, name, props, duration_ms, country, region, city, browser, os, screen"
	memberCols = "subject_id, policy_version, site, at, type, duration_ms, page_sealed, query_sealed, referrer_sealed, search_sealed, link_sealed, asset_sealed, name_sealed, props_sealed, country_sealed, region_sealed, city_sealed, browser_sealed, os_sealed, screen_sealed"
)

func eventArgs(args []any, e *Event) []any {
	return append(args, e.Site, e.At, e.Visitor, e.Type, orNull(e.Page), orNull(e.Query), orNull(e.Referrer), orNull(e.Search), orNull(e.Link),
		orNull(e.Asset), orNull(e.Name), orNull(e.Props), e.DurationMS, orNull(e.Country), orNull(e.Region), orNull(e.City), orNull(e.Browser),
		orNull(e.OS), orNull(e.Screen))
}

// orNull binds an empty text as NULL, which the statement stores as an
// empty text (eventRow): the driver copies every bound text into a C
// allocation, and most of an event's texts are empty.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// eventRow is one row of the events insert: the optional texts are bound
// as NULL when empty and stored as empty texts.
var eventRow = func() string {
	var b strings.Builder
	b.WriteString("(?,?,?,?")
	for range 8 { // page … props
		b.WriteString(",coalesce(?,'')")
	}
	b.WriteString(",?")
	for range 6 { // country … screen
		b.WriteString(",coalesce(?,'')")
	}
	b.WriteString(")")
	return b.String()
}()

func memberArgs(args []any, e *Event) []any {
	args = append(args, e.SubjectID, e.PolicyVersion, e.Site, e.At, e.Type, e.DurationMS)
	var none sealedValues // a linked event is always sealed; never store it in the clear
	vals := e.sealed
	if vals == nil {
		vals = &none
	}
	for _, s := range vals {
		args = append(args, s)
	}
	return args
}

// sqliteTables describes each multi-row statement: its prefix, the
// placeholders of one row, and what follows the VALUES list.
var sqliteTables = map[string]struct{ head, row, tail string }{
	"events": {"INSERT INTO activity_events (" + eventCols + ") VALUES ", eventRow, ""},
	"member": {"INSERT INTO activity_member_events (" + memberCols + ") VALUES ", "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", ""},
	"daily": {"INSERT INTO activity_daily (site, dim, day, value, views, visitors, duration_ms, durations) VALUES ", "(?,?,?,?,?,?,?,?)",
		" ON CONFLICT (site, dim, day, value) DO UPDATE SET views = activity_daily.views + excluded.views, visitors = activity_daily.visitors + excluded.visitors, duration_ms = activity_daily.duration_ms + excluded.duration_ms, durations = activity_daily.durations + excluded.durations"},
	"hourly": {"INSERT INTO activity_hourly (site, hour, views, visitors) VALUES ", "(?,?,?,?)",
		" ON CONFLICT (site, hour) DO UPDATE SET views = activity_hourly.views + excluded.views, visitors = activity_hourly.visitors + excluded.visitors"},
}

// maxChunk bounds rows per statement (SQLite allows 32766 parameters).
const maxChunk = 64

// maxHeldEvents bounds the events whose rollups wait in memory.
const maxHeldEvents = 50000

// connect pins the writer's connection.
func (w *writer) connect(ctx context.Context) error {
	if w.conn != nil {
		return nil
	}
	conn, err := w.c.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("activity: writer connection: %w", err)
	}
	// Upserts and multi-row inserts open a statement journal so a failed
	// statement can be undone alone; on a file it costs a pwrite per page
	// touched. A larger page cache keeps the rollup indexes' hot pages.
	// The writer never checkpoints: the checkpointer goroutine does, from
	// another connection, so the copy into the database file and its fsync
	// stay off the path of acknowledgements.
	for _, pragma := range []string{"PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -8000", "PRAGMA wal_autocheckpoint = 0"} {
		if _, err := conn.ExecContext(ctx, pragma); err != nil {
			conn.Close()
			return fmt.Errorf("activity: writer connection: %w", err)
		}
	}
	w.conn = conn
	return nil
}

// release closes the pinned connection.
func (w *writer) release() {
	for _, st := range w.stmts {
		st.Close()
	}
	w.stmts = map[stmtKey]*sql.Stmt{}
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// inTx runs fn between BEGIN IMMEDIATE and COMMIT on the pinned
// connection.
func (w *writer) inTx(ctx context.Context, fn func() error) (err error) {
	if err := w.connect(ctx); err != nil {
		return err
	}
	defer func() {
		if err != nil && (errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.Canceled)) {
			w.release() // reconnect next time
		}
	}()
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("activity: begin: %w", err)
	}
	if err := fn(); err != nil {
		_, _ = w.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = w.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("activity: commit: %w", err)
	}
	return nil
}

type stmtKey struct {
	table string
	rows  int
}

// stmt returns the prepared statement inserting n rows into table.
func (w *writer) stmt(ctx context.Context, table string, n int) (*sql.Stmt, error) {
	key := stmtKey{table, n}
	if st, ok := w.stmts[key]; ok {
		return st, nil
	}
	t := sqliteTables[table]
	b := make([]byte, 0, len(t.head)+n*(len(t.row)+1)+len(t.tail))
	b = append(b, t.head...)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, t.row...)
	}
	b = append(b, t.tail...)
	st, err := w.conn.PrepareContext(ctx, string(b))
	if err != nil {
		return nil, fmt.Errorf("activity: prepare %s: %w", table, err)
	}
	w.stmts[key] = st
	return st, nil
}

// chunks splits n rows into power-of-two chunks of at most maxChunk, so
// few distinct statements are ever prepared.
func chunks(n int) []int {
	var out []int
	for n > 0 {
		c := maxChunk
		for c > n {
			c >>= 1
		}
		out = append(out, c)
		n -= c
	}
	return out
}

// execRows runs table's insert over rows rows, each filled by fill(args,
// i), and returns the rowid of the last row inserted.
func (w *writer) execRows(ctx context.Context, table string, rows int, fill func(args []any, i int) []any) (int64, error) {
	i := 0
	var last int64
	args := w.args[:0]
	defer func() {
		clear(args[:cap(args)]) // hold no event's values past its batch
		w.args = args[:0]
	}()
	for _, n := range chunks(rows) {
		st, err := w.stmt(ctx, table, n)
		if err != nil {
			return 0, err
		}
		args = args[:0]
		for j := 0; j < n; j++ {
			args = fill(args, i+j)
		}
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return 0, fmt.Errorf("activity: insert %s: %w", table, err)
		}
		if last, err = res.LastInsertId(); err != nil {
			return 0, fmt.Errorf("activity: insert %s: %w", table, err)
		}
		i += n
	}
	return last, nil
}

// writeRollups upserts rows and moves the watermarks, in the caller's
// transaction.
func (w *writer) writeRollups(ctx context.Context, daily []dailyRow, hourly []hourlyRow, anonID, memberID int64) error {
	if _, err := w.execRows(ctx, "daily", len(daily), func(a []any, i int) []any {
		d := &daily[i]
		return append(a, d.site, d.dim, d.day, d.value, d.views, d.visitors, d.durationMS, d.durations)
	}); err != nil {
		return err
	}
	if _, err := w.execRows(ctx, "hourly", len(hourly), func(a []any, i int) []any {
		h := &hourly[i]
		return append(a, h.site, h.hour, h.views, h.visitors)
	}); err != nil {
		return err
	}
	for name, id := range map[string]int64{"events": anonID, "member_events": memberID} {
		if id == 0 {
			continue
		}
		if _, err := w.conn.ExecContext(ctx, `INSERT INTO activity_rollup_state (name, last_id) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id`, name, id); err != nil {
			return fmt.Errorf("activity: rollup watermark: %w", err)
		}
	}
	return nil
}

// writeSQLite stores a batch; its rollups join the held ones, and all are
// written when they are due.
func (w *writer) writeSQLite(ctx context.Context, evs []Event, agg *rollup) error {
	anon, linked := splitLinked(evs)
	// The memory set is authoritative on SQLite: every candidate is new.
	allNew := func(int64) bool { return true }
	now := time.Now()
	due := w.every <= 0 || (!w.held.empty() && now.Sub(w.held.since) >= w.every) || len(evs)+w.heldEvents() >= maxHeldEvents
	var daily []dailyRow
	var hourly []hourlyRow
	if due {
		daily, hourly = agg.finish(allNew)
	}
	var anonID, memberID int64
	err := w.inTx(ctx, func() error {
		var err error
		if anonID, err = w.execRows(ctx, "events", len(anon), func(a []any, i int) []any { return eventArgs(a, anon[i]) }); err != nil {
			return err
		}
		if memberID, err = w.execRows(ctx, "member", len(linked), func(a []any, i int) []any { return memberArgs(a, linked[i]) }); err != nil {
			return err
		}
		if !due {
			return nil
		}
		hd, hh := w.held.rows()
		if err := w.writeRollups(ctx, hd, hh, 0, 0); err != nil {
			return err
		}
		return w.writeRollups(ctx, daily, hourly, max(anonID, w.held.anonID), max(memberID, w.held.member))
	})
	if err != nil {
		return err
	}
	w.seen.addAll(agg.keys)
	if due {
		w.held = newTotals()
		return nil
	}
	if w.held.empty() {
		w.held.since = now
	}
	agg.credit(allNew)
	w.held.addRollup(agg)
	w.held.anonID = max(w.held.anonID, anonID)
	w.held.member = max(w.held.member, memberID)
	w.heldCount += len(evs)
	return nil
}

func (w *writer) heldEvents() int {
	if w.held.empty() {
		w.heldCount = 0
	}
	return w.heldCount
}

// flushHeld writes the held rollups in a transaction of their own.
func (w *writer) flushHeld(ctx context.Context) error {
	if w.c.db.Engine == store.Postgres || w.held.empty() {
		return nil
	}
	d, h := w.held.rows()
	err := w.inTx(ctx, func() error { return w.writeRollups(ctx, d, h, w.held.anonID, w.held.member) })
	if err != nil {
		w.c.log.Error("activity: writing rollups failed; they are kept and retried", "err", err)
		return err
	}
	w.held = newTotals()
	w.heldCount = 0
	return nil
}

// rebuildGap is how many consecutive older rows end the backward scan of
// the rebuild: ids follow commit order and event times are taken just
// before, so rows of one day are never further apart than a few batches.
const rebuildGap = 10000

// startSQLite runs before the writer takes events: it refills the seen
// set with the keys of the events already rolled up on the days that can
// still receive events (or that the catch-up touches), then rolls up the
// events past the watermark — those a crash left without their rollups —
// and writes them.
func (w *writer) startSQLite(ctx context.Context) error {
	c := w.c
	var anonWM, memberWM int64
	rows, err := c.db.QueryContext(ctx, `SELECT name, last_id FROM activity_rollup_state`)
	if err != nil {
		return fmt.Errorf("activity: read rollup watermark: %w", err)
	}
	for rows.Next() {
		var name string
		var id int64
		if err := rows.Scan(&name, &id); err != nil {
			rows.Close()
			return fmt.Errorf("activity: read rollup watermark: %w", err)
		}
		switch name {
		case "events":
			anonWM = id
		case "member_events":
			memberWM = id
		}
	}
	rows.Close()
	now := c.clock.Now()
	since := now.Add(-saltGrace)
	// Events waiting for their rollups may be older than today.
	for _, q := range []struct {
		sql string
		wm  int64
	}{
		{`SELECT at FROM activity_events WHERE id > $1 ORDER BY id LIMIT 1`, anonWM},
		{`SELECT at FROM activity_member_events WHERE id > $1 ORDER BY id LIMIT 1`, memberWM},
	} {
		var at time.Time
		if err := c.db.QueryRowContext(ctx, q.sql, q.wm).Scan(&at); err == nil && at.Before(since) {
			since = at
		} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("activity: find events to roll up: %w", err)
		}
	}
	// first is the earliest day of each site whose keys are needed.
	first := map[string]string{}
	earliest := since
	for _, s := range c.cfg.Sites {
		first[s.ID] = localDay(since, s.Location)
		lt := since.In(s.Location)
		if d := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, s.Location); d.Before(earliest) {
			earliest = d
		}
	}
	// 1. Keys of events already counted, newest first until well before
	// the earliest day needed.
	var batch []Event
	remember := func(force bool) {
		if len(batch) > 0 && (force || len(batch) >= 1000) {
			w.seen.addAll(aggregate(batch, w.seen).keys)
			batch = batch[:0]
		}
	}
	rows, err = c.db.QueryContext(ctx, `SELECT site, at, visitor, type, page, query, referrer, search, link, asset, name, country, region, city, browser, os, screen
FROM activity_events WHERE id <= $1 ORDER BY id DESC`, anonWM)
	if err != nil {
		return fmt.Errorf("activity: rebuild: %w", err)
	}
	older := 0
	for rows.Next() && older < rebuildGap {
		var e Event
		var site string
		var at time.Time
		if err := rows.Scan(&site, &at, &e.Visitor, &e.Type, &e.Page, &e.Query, &e.Referrer, &e.Search, &e.Link, &e.Asset, &e.Name,
			&e.Country, &e.Region, &e.City, &e.Browser, &e.OS, &e.Screen); err != nil {
			rows.Close()
			return fmt.Errorf("activity: rebuild: %w", err)
		}
		if at.Before(earliest) {
			older++
			continue
		}
		older = 0
		if c.place(&e, site, at) && e.Day >= first[site] {
			batch = append(batch, e)
			remember(false)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("activity: rebuild: %w", err)
	}
	remember(true)
	members, err := c.memberEvents(ctx, c.db, nil, nil, `WHERE at >= $1 AND id <= $2`, earliest, memberWM)
	if err != nil {
		return fmt.Errorf("activity: rebuild: %w", err)
	}
	for _, e := range members {
		if e.Day >= first[e.Site] {
			batch = append(batch, e)
			remember(false)
		}
	}
	remember(true)

	// 2. Events past the watermark: count them as they would have been.
	lateDays := map[string]int64{} // per site, the first day caught up
	late := func(e *Event, id int64) {
		if n, err := DayNumber(e.Day); err == nil {
			if m, ok := lateDays[e.Site]; !ok || n < m {
				lateDays[e.Site] = n
			}
		}
	}
	count := func(evs []Event) {
		agg := aggregate(evs, w.seen)
		d, h := agg.finish(func(int64) bool { return true })
		w.seen.addAll(agg.keys)
		w.held.add(d, h)
	}
	catchUpAnon := func(wm, last int64) error {
		rows, err := c.db.QueryContext(ctx, selectAnonEvents+` WHERE id > $1 AND id <= $2 ORDER BY id`, wm, last)
		if err != nil {
			return fmt.Errorf("activity: catch up rollups: %w", err)
		}
		evs, err := c.scanEvents(rows, nil, late)
		if err != nil {
			return fmt.Errorf("activity: catch up rollups: %w", err)
		}
		count(evs)
		return nil
	}
	catchUpMembers := func(wm, last int64) error {
		evs, err := c.memberEvents(ctx, c.db, nil, late, `WHERE id > $1 AND id <= $2 ORDER BY id`, wm, last)
		if err != nil {
			return fmt.Errorf("activity: catch up rollups: %w", err)
		}
		count(evs)
		return nil
	}
	// The events to count end at the last one stored now; the watermarks
	// move there, counted or not (an event of a site no longer configured
	// is skipped), but only once both catch-ups have succeeded.
	var anonMax, memberMax int64
	if err := c.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM activity_events`).Scan(&anonMax); err != nil {
		return fmt.Errorf("activity: catch up rollups: %w", err)
	}
	if err := c.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM activity_member_events`).Scan(&memberMax); err != nil {
		return fmt.Errorf("activity: catch up rollups: %w", err)
	}
	if err := catchUpAnon(anonWM, anonMax); err != nil {
		w.held = newTotals() // nothing half counted is written
		return err
	}
	if err := catchUpMembers(memberWM, memberMax); err != nil {
		w.held = newTotals()
		return err
	}
	if anonMax > anonWM {
		w.held.anonID = anonMax
	}
	if memberMax > memberWM {
		w.held.member = memberMax
	}
	if !w.held.empty() {
		w.held.since = time.Now()
		c.log.Info("activity: rolling up events a restart found without their rollups")
		if err := w.flushHeld(ctx); err != nil {
			return err
		}
	}
	for site, day := range lateDays {
		if err := c.invalidateBlocks(ctx, site, day); err != nil {
			return fmt.Errorf("activity: invalidate blocks: %w", err)
		}
	}
	return nil
}

// checkpointEvery is how often the checkpointer copies the WAL into the
// database file.
const checkpointEvery = time.Second

// checkpoint runs passive WAL checkpoints until stop closes. A passive
// checkpoint never waits for the writer or readers: it copies what it can.
func (w *writer) checkpoint(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := w.c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
				w.c.log.Warn("activity: WAL checkpoint failed", "err", err)
			}
		}
	}
}
