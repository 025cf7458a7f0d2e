package activity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// The PostgreSQL path. Several Steward processes may write to one
// database, so SQLite's single watermark cannot work: ids are handed out
// by one sequence to all of them and commit out of order. Instead:
//
//   - A batch of events commits in one statement (so one round trip and
//     one WAL flush) that also inserts a row into activity_pending naming
//     the writer, the batch and the ids of its events.
//   - The events are kept in memory, and about once a second (RollupInterval)
//     the flusher, in one transaction, deletes their pending rows, and
//     aggregates the events of the batches whose rows it deleted: it inserts
//     the new seen-keys (the keys the insert returns decide which visitors
//     are new) and upserts the rollups. A batch whose row was gone had been
//     adopted by another process (below), which counted it; its memory copy
//     is dropped.
//   - Each process holds a session advisory lock on its writer id while it
//     lives. Pending rows of a writer whose lock is free belong to a process
//     that died (PostgreSQL releases the lock when its connection goes):
//     any process adopts them at start and every few seconds after, rolling
//     the events up from the table, in the transaction that deletes the rows.
//
// Whoever deletes a pending row counts its events, so each event is counted
// exactly once, across crashes and processes. Per-batch rollups, measured
// before this design, made the database do ~600 upserts for a batch of 64
// page views; a second's worth aggregates to one upsert per distinct value.

const (
	pgBatch = `WITH a AS (INSERT INTO activity_events (` + eventCols + `)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[])
RETURNING id),
m AS (INSERT INTO activity_member_events (` + memberCols + `)
SELECT * FROM unnest($20::text[], $21::bigint[], $22::text[], $23::timestamptz[], $24::text[], $25::bigint[], $26::bytea[], $27::bytea[], $28::bytea[], $29::bytea[], $30::bytea[], $31::bytea[], $32::bytea[], $33::bytea[], $34::bytea[], $35::bytea[], $36::bytea[], $37::bytea[], $38::bytea[], $39::bytea[])
RETURNING id)
INSERT INTO activity_pending (writer, batch, event_ids, member_ids)
SELECT $40, $41, COALESCE((SELECT array_agg(id) FROM a), '{}'), COALESCE((SELECT array_agg(id) FROM m), '{}')`
	pgSeen = `INSERT INTO activity_seen (site, day, k)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) ON CONFLICT DO NOTHING RETURNING k`
	pgDaily = `INSERT INTO activity_daily (site, dim, day, value, views, visitors, duration_ms, durations)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
ON CONFLICT (site, dim, day, value) DO UPDATE SET views = activity_daily.views + EXCLUDED.views, visitors = activity_daily.visitors + EXCLUDED.visitors, duration_ms = activity_daily.duration_ms + EXCLUDED.duration_ms, durations = activity_daily.durations + EXCLUDED.durations`
	pgHourly = `INSERT INTO activity_hourly (site, hour, views, visitors)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[])
ON CONFLICT (site, hour) DO UPDATE SET views = activity_hourly.views + EXCLUDED.views, visitors = activity_hourly.visitors + EXCLUDED.visitors`
	// Rows are locked in key order, as adoptions lock theirs, so a flush
	// and an adoption touching the same rows cannot deadlock.
	pgUnpend = `DELETE FROM activity_pending WHERE (writer, batch) IN (
SELECT writer, batch FROM activity_pending WHERE (writer, batch) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
ORDER BY writer, batch FOR UPDATE) RETURNING writer, batch`
)

// adoptEvery is how often a process looks for batches a dead one left.
const adoptEvery = 3 * time.Second

// pgState is the PostgreSQL writer's: its identity and lock, and the
// committed batches whose rollups it holds.
type pgState struct {
	mu   sync.Mutex
	id   int64     // writer id, locked by lock while this process lives
	lock *sql.Conn // holds the session advisory lock on id
	seq  int64     // last batch number
	held []heldBatch
}

// heldBatch is a committed batch whose rollups are not written yet.
type heldBatch struct {
	writer, batch int64
	evs           []Event
}

type batchKey struct{ writer, batch int64 }

// pgLock takes a new writer id and its advisory lock, on a connection kept
// for the purpose.
func (w *writer) pgLock(ctx context.Context) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	id := int64(binary.BigEndian.Uint64(b[:]) >> 1)
	conn, err := w.c.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("activity: writer lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, id); err != nil {
		discard(conn) // the lock may have been taken all the same
		return fmt.Errorf("activity: writer lock: %w", err)
	}
	w.pg.mu.Lock()
	old, oldID := w.pg.lock, w.pg.id
	w.pg.id, w.pg.lock = id, conn
	w.pg.mu.Unlock()
	unlock(old, oldID)
	return nil
}

// pgUnlock ends the writer's lock (its pending rows, if any, may then be
// adopted by another process).
func (w *writer) pgUnlock() {
	w.pg.mu.Lock()
	conn, id := w.pg.lock, w.pg.id
	w.pg.lock = nil
	w.pg.mu.Unlock()
	unlock(conn, id)
}

// unlock releases the session lock on id held by conn (nil: none). Close
// would return the connection to the pool, where the session would keep
// the lock (and re-enter it for this process's own adoption checks): so
// unlock first, and when that is not certain, discard the connection.
func unlock(conn *sql.Conn, id int64) {
	if conn == nil {
		return
	}
	var released bool
	if err := conn.QueryRowContext(context.Background(), `SELECT pg_advisory_unlock($1)`, id).Scan(&released); err != nil || !released {
		discard(conn)
		return
	}
	conn.Close()
}

// discard closes conn's session instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// pgCheckLock replaces the lock when its connection has gone: the old id
// then counts as dead, and its pending rows are adopted like any other's.
func (w *writer) pgCheckLock(ctx context.Context) {
	w.pg.mu.Lock()
	conn := w.pg.lock
	w.pg.mu.Unlock()
	if conn != nil && conn.PingContext(ctx) == nil {
		return
	}
	w.c.log.Warn("activity: the writer's lock connection was lost; taking a new writer id")
	if err := w.pgLock(ctx); err != nil {
		w.c.log.Error("activity: writer lock", "err", err)
	}
}

// startPostgres takes the writer's lock and adopts what dead writers left.
func (w *writer) startPostgres(ctx context.Context) error {
	if err := w.pgLock(ctx); err != nil {
		return err
	}
	return w.adoptOrphans(ctx)
}

// writePostgres commits a batch of events with its pending row and holds
// the events for the next rollup flush.
func (w *writer) writePostgres(ctx context.Context, evs []Event) error {
	anon, linked := splitLinked(evs)
	args := append(pgColumns(anon, false), pgColumns(linked, true)...)
	w.pg.mu.Lock()
	locked := w.pg.lock != nil
	w.pg.mu.Unlock()
	if !locked {
		// Without its lock a writer's batches look abandoned to every
		// process: take one (a start that failed to) or refuse.
		if err := w.pgLock(ctx); err != nil {
			return err
		}
	}
	w.pg.mu.Lock()
	w.pg.seq++
	id, batch := w.pg.id, w.pg.seq
	w.pg.mu.Unlock()
	args = append(args, id, batch)
	// One statement outside a transaction is a transaction of its own.
	if _, err := w.c.db.ExecContext(ctx, pgBatch, args...); err != nil {
		return fmt.Errorf("activity: insert events: %w", err)
	}
	w.pg.mu.Lock()
	w.pg.held = append(w.pg.held, heldBatch{writer: id, batch: batch, evs: evs})
	w.pg.mu.Unlock()
	return nil
}

// pgColumns returns the column arrays of es for pgBatch, in the order of
// eventCols, or of memberCols for linked events.
func pgColumns(es []*Event, member bool) []any {
	n := len(es)
	subj, site, typ := make([]string, n), make([]string, n), make([]string, n)
	ver, visitor, dur := make([]int64, n), make([]int64, n), make([]int64, n)
	at := make([]time.Time, n)
	for i, e := range es {
		subj[i], ver[i], site[i], at[i], visitor[i], typ[i], dur[i] = e.SubjectID, int64(e.PolicyVersion), e.Site, e.At, e.Visitor, e.Type, e.DurationMS
	}
	if member {
		out := []any{subj, ver, site, at, typ, dur}
		for j := range nSealed {
			col := make([][]byte, n)
			for i, e := range es {
				if e.sealed == nil {
					continue // a linked event is always sealed; never store it in the clear
				}
				if v, _ := e.sealed[j].Value(); v != nil {
					col[i] = v.([]byte)
				}
			}
			out = append(out, col)
		}
		return out
	}
	txt := make([][]string, nSealed)
	for j := range txt {
		txt[j] = make([]string, n)
	}
	for i, e := range es {
		for j, v := range e.texts() {
			txt[j][i] = *v
		}
	}
	return []any{site, at, visitor, typ, txt[0], txt[1], txt[2], txt[3], txt[4], txt[5], txt[6], txt[7], dur,
		txt[8], txt[9], txt[10], txt[11], txt[12], txt[13]}
}

// pgHeld reports whether rollups are held.
func (w *writer) pgHeld() bool {
	w.pg.mu.Lock()
	defer w.pg.mu.Unlock()
	return len(w.pg.held) > 0
}

// flushPostgres writes the rollups of the held batches. On an error they
// stay held and are retried. Batches whose pending row another process
// deleted (it adopted them, believing this writer dead) are dropped: it
// counted them.
func (w *writer) flushPostgres(ctx context.Context) error {
	w.pg.mu.Lock()
	held := w.pg.held
	w.pg.held = nil
	w.pg.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	writers, batches := make([]int64, len(held)), make([]int64, len(held))
	for i, h := range held {
		writers[i], batches[i] = h.writer, h.batch
	}
	var agg *rollup
	lost := 0
	err := w.c.db.InTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, pgUnpend, writers, batches)
		if err != nil {
			return fmt.Errorf("activity: clear pending batches: %w", err)
		}
		mine := map[batchKey]bool{}
		for rows.Next() {
			var k batchKey
			if err := rows.Scan(&k.writer, &k.batch); err != nil {
				rows.Close()
				return fmt.Errorf("activity: clear pending batches: %w", err)
			}
			mine[k] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("activity: clear pending batches: %w", err)
		}
		var batches [][]Event
		lost = 0
		for _, h := range held {
			if mine[batchKey{h.writer, h.batch}] {
				batches = append(batches, h.evs)
			} else {
				lost++
			}
		}
		agg = aggregateBatches(batches, w.seen)
		agg.sortCandidates()
		return w.c.writeRollupsPostgres(ctx, tx, agg)
	})
	if err != nil {
		w.pg.mu.Lock()
		w.pg.held = append(held, w.pg.held...)
		w.pg.mu.Unlock()
		w.c.log.Error("activity: writing rollups failed; they are kept and retried", "err", err)
		return err
	}
	w.seen.addAll(agg.keys)
	if lost > 0 {
		w.c.log.Warn("activity: another process adopted some held batches and counted them", "batches", lost)
		w.pgCheckLock(ctx)
	}
	return nil
}

// adoptOrphans rolls up the pending batches of every writer whose process
// is gone.
func (w *writer) adoptOrphans(ctx context.Context) error {
	w.pg.mu.Lock()
	me := w.pg.id
	w.pg.mu.Unlock()
	rows, err := w.c.db.QueryContext(ctx, `SELECT DISTINCT writer FROM activity_pending WHERE writer <> $1`, me)
	if err != nil {
		return fmt.Errorf("activity: find pending batches: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("activity: find pending batches: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("activity: find pending batches: %w", err)
	}
	for _, id := range ids {
		if err := w.adopt(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// adopt rolls up the pending batches of writer id if its lock is free, in
// the transaction that deletes them.
func (w *writer) adopt(ctx context.Context, id int64) error {
	var agg *rollup
	lateDays := map[string]int64{}
	err := w.c.db.InTx(ctx, func(tx *sql.Tx) error {
		var free bool
		if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, id).Scan(&free); err != nil {
			return err
		}
		if !free {
			return nil // its process lives
		}
		var anonIDs, memberIDs []int64
		rows, err := tx.QueryContext(ctx, `WITH d AS (DELETE FROM activity_pending WHERE (writer, batch) IN (
SELECT writer, batch FROM activity_pending WHERE writer = $1 ORDER BY writer, batch FOR UPDATE) RETURNING event_ids, member_ids)
SELECT false, unnest(event_ids) FROM d UNION ALL SELECT true, unnest(member_ids) FROM d`, id)
		if err != nil {
			return err
		}
		for rows.Next() {
			var member bool
			var e int64
			if err := rows.Scan(&member, &e); err != nil {
				rows.Close()
				return err
			}
			if member {
				memberIDs = append(memberIDs, e)
			} else {
				anonIDs = append(anonIDs, e)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(anonIDs)+len(memberIDs) == 0 {
			return nil
		}
		late := func(e *Event, _ int64) {
			if n, err := DayNumber(e.Day); err == nil {
				if m, ok := lateDays[e.Site]; !ok || n < m {
					lateDays[e.Site] = n
				}
			}
		}
		var evs []Event
		if len(anonIDs) > 0 {
			rows, err := tx.QueryContext(ctx, selectAnonEvents+` WHERE id = ANY($1) ORDER BY id`, anonIDs)
			if err != nil {
				return err
			}
			if evs, err = w.c.scanEvents(rows, evs, late); err != nil {
				return err
			}
		}
		if len(memberIDs) > 0 {
			if evs, err = w.c.memberEvents(ctx, tx, evs, late, `WHERE id = ANY($1) ORDER BY id`, memberIDs); err != nil {
				return err
			}
		}
		agg = aggregate(evs, w.seen)
		agg.sortCandidates()
		return w.c.writeRollupsPostgres(ctx, tx, agg)
	})
	if err != nil {
		return fmt.Errorf("activity: adopt pending batches: %w", err)
	}
	if agg == nil {
		return nil
	}
	w.seen.addAll(agg.keys)
	w.c.log.Info("activity: rolled up events a stopped process left without their rollups")
	for site, day := range lateDays {
		if err := w.c.invalidateBlocks(ctx, site, day); err != nil {
			return fmt.Errorf("activity: invalidate blocks: %w", err)
		}
	}
	return nil
}

// writeRollupsPostgres inserts agg's seen-keys, credits the visitors whose
// keys were new, and upserts the rollups, in tx. Rows go in sorted order,
// so concurrent writers lock them in one order and cannot deadlock.
func (c *Collector) writeRollupsPostgres(ctx context.Context, tx *sql.Tx, agg *rollup) error {
	newKeys := map[int64]bool{}
	if n := len(agg.candidates); n > 0 {
		site, day, k := make([]string, n), make([]string, n), make([]int64, n)
		for i, c := range agg.candidates {
			site[i], day[i], k[i] = c.site, c.day, c.k
		}
		rows, err := tx.QueryContext(ctx, pgSeen, site, day, k)
		if err != nil {
			return fmt.Errorf("activity: insert seen: %w", err)
		}
		for rows.Next() {
			var key int64
			if err := rows.Scan(&key); err != nil {
				rows.Close()
				return fmt.Errorf("activity: insert seen: %w", err)
			}
			newKeys[key] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("activity: insert seen: %w", err)
		}
	}
	daily, hourly := agg.finish(func(k int64) bool { return newKeys[k] })
	if n := len(daily); n > 0 {
		site, dim, day, value := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		views, visitors, durMS, durN := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, d := range daily {
			site[i], dim[i], day[i], value[i] = d.site, d.dim, d.day, d.value
			views[i], visitors[i], durMS[i], durN[i] = d.views, d.visitors, d.durationMS, d.durations
		}
		if _, err := tx.ExecContext(ctx, pgDaily, site, dim, day, value, views, visitors, durMS, durN); err != nil {
			return fmt.Errorf("activity: upsert daily rollups: %w", err)
		}
	}
	if n := len(hourly); n > 0 {
		site := make([]string, n)
		hour := make([]time.Time, n)
		views, visitors := make([]int64, n), make([]int64, n)
		for i, h := range hourly {
			site[i], hour[i], views[i], visitors[i] = h.site, h.hour, h.views, h.visitors
		}
		if _, err := tx.ExecContext(ctx, pgHourly, site, hour, views, visitors); err != nil {
			return fmt.Errorf("activity: upsert hourly rollups: %w", err)
		}
	}
	return nil
}

// pgFlusher writes held rollups every interval and on request, adopts
// dead writers' batches, and after the writers have stopped (done) writes
// the last rollups and ends the lock.
func (w *writer) pgFlusher(ctx context.Context, done <-chan struct{}) {
	every := w.every
	if every <= 0 {
		every = 50 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	adopt := time.NewTicker(adoptEvery)
	defer adopt.Stop()
	for {
		select {
		case <-tick.C:
			if w.pgHeld() {
				_ = w.flushPostgres(ctx)
			}
		case <-adopt.C:
			w.pgCheckLock(ctx)
			if err := w.adoptOrphans(ctx); err != nil {
				w.c.log.Error("activity: adopting pending batches failed; retried", "err", err)
			}
		case reply := <-w.flushReq:
			err := w.flushPostgres(ctx)
			if err == nil {
				err = w.adoptOrphans(ctx)
			}
			reply <- err
		case <-done:
			if !w.crashed.Load() {
				if err := w.flushPostgres(ctx); err != nil {
					w.c.log.Error("activity: last rollups not written; another process will adopt them", "err", err)
				}
			}
			w.pgUnlock()
			return
		}
	}
}
