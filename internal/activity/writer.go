package activity

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"steward/internal/fault"
	"steward/internal/store"
)

// Group commit. Every accepted event goes through one writer goroutine
// that drains a channel: it takes the first waiting event, then whatever
// else is already queued (up to the batch size), writes them in one
// transaction, and only after COMMIT tells each waiting request it may
// answer 202. While one transaction commits, the next batch builds up in
// the channel, so batches grow with load and there is no fixed delay:
// measured on this machine, committing as soon as the queue drains beat
// waiting a fixed 2 ms by 60–80 % on SQLite and 30–60 % on PostgreSQL
// (TOOLING.md). The wait is bounded by one commit of at most BatchSize
// events.
//
// Rollups are held back and written at most every RollupInterval (default
// 1 s), so a second's events collapse into one upsert per distinct value
// instead of several B-tree upserts per event. Both engines keep that
// crash-safe, each its own way: SQLite, whose single writer makes an exact
// watermark possible, writes the held rollups with the id of the last event
// they count, and at start rolls up the events past it (sqlite.go);
// PostgreSQL, where several processes may write, commits each batch with a
// pending row that whoever writes its rollups deletes, and adopts the
// pending rows of writers that died (postgres.go).

type pending struct {
	ev   Event
	done chan error
}

type writer struct {
	c        *Collector
	in       chan *pending
	flushReq chan chan error
	maxBatch int
	every    time.Duration // SQLite rollup interval; 0 = every batch

	mu     sync.RWMutex // guards closed against concurrent submit
	closed bool
	stop   chan struct{}
	exited chan struct{}

	// SQLite only: the pinned connection, its prepared statements, and the
	// rollups of committed events not yet written.
	conn      *sql.Conn
	stmts     map[stmtKey]*sql.Stmt
	held      *totals
	heldCount int
	args      []any // the arguments of one multi-row statement, reused
	// pendings holds the pending events (with their answer channels) of
	// requests already answered: one allocation less per event.
	pendings sync.Pool
	evs      []Event // SQLite: the events of the batch being written, reused

	seen *seenSet

	pg pgState // PostgreSQL only

	batches, events, failures atomic.Int64
	commitNanos               atomic.Int64

	// crashed makes Close leave held rollups unwritten, as a crash would
	// (for tests).
	crashed atomic.Bool
}

// Stats are the writer's counters since start.
type Stats struct {
	Batches, Events, Failures int64
	CommitTime                time.Duration
	// SeenKeys is the number of unique-visitor keys held in memory.
	SeenKeys int64
}

// Stats returns the group-commit counters (for metrics and benchmarks).
func (c *Collector) Stats() Stats {
	return Stats{Batches: c.w.batches.Load(), Events: c.w.events.Load(), Failures: c.w.failures.Load(),
		CommitTime: time.Duration(c.w.commitNanos.Load()), SeenKeys: int64(c.w.seen.Len())}
}

func newWriter(c *Collector, maxBatch, queue int, every time.Duration) *writer {
	return &writer{
		c: c, in: make(chan *pending, queue), flushReq: make(chan chan error), maxBatch: maxBatch, every: every,
		stop: make(chan struct{}), exited: make(chan struct{}),
		stmts: map[stmtKey]*sql.Stmt{}, seen: newSeenSet(seenLimit(c.db.Engine)), held: newTotals(),
	}
}

// submit queues ev and waits until it is committed or failed, or ctx ends.
func (w *writer) submit(ctx context.Context, ev Event) error {
	p, _ := w.pendings.Get().(*pending)
	if p == nil {
		p = &pending{done: make(chan error, 1)}
	}
	p.ev = ev
	release := func() {
		p.ev = Event{}
		w.pendings.Put(p)
	}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		release()
		return fault.New(fault.Conflict, "the server is shutting down; the event was not recorded")
	}
	select {
	case w.in <- p:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		release()
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		// The writer answered and no longer holds p.
		release()
		if err != nil {
			return fault.Wrap(fault.Internal, err, "the event could not be stored")
		}
		return nil
	case <-ctx.Done():
		// The writer still holds p and answers on done (it is buffered):
		// p is simply not reused.
		return ctx.Err()
	}
}

// flush writes the rollups held back (SQLite) and returns when they are
// committed: reports then count every acknowledged event.
func (w *writer) flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case w.flushReq <- reply:
	case <-w.exited:
		return nil // closing flushed everything
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writer) close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
	w.mu.Unlock()
	select {
	case <-w.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("activity: close: %w", ctx.Err())
	}
}

// pgWriters is how many writer goroutines run on PostgreSQL. Several can
// run (each batch is one INSERT statement with its own pending row), and
// would help where commits wait on a slow WAL flush; on this 2-CPU machine
// 2 and 4 writers gave smaller batches (15 and 8 events instead of 26) and
// no more throughput, or less, than one. SQLite has one writer, always.
const pgWriters = 1

// start runs the writer goroutines; exited closes when all have left.
func (w *writer) start(ctx context.Context) {
	n := 1
	if w.c.db.Engine == store.Postgres {
		n = pgWriters
	}
	var wg sync.WaitGroup
	if n == 1 && w.c.db.Engine != store.Postgres {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.checkpoint(ctx, w.stop)
		}()
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	if w.c.db.Engine != store.Postgres {
		go func() {
			wg.Wait()
			close(w.exited)
		}()
		return
	}
	writersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(writersDone)
	}()
	go func() {
		w.pgFlusher(ctx, writersDone)
		close(w.exited)
	}()
}

func (w *writer) run(ctx context.Context) {
	if w.c.db.Engine != store.Postgres {
		defer w.release()
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	var due <-chan time.Time // fires when held rollups are due
	var dueTimer *time.Timer
	flushReq := w.flushReq // on PostgreSQL the flusher answers
	if w.c.db.Engine == store.Postgres {
		flushReq = nil
	}
	batch := make([]*pending, 0, w.maxBatch)
	for {
		if dueTimer == nil && !w.held.empty() {
			dueTimer = time.NewTimer(w.every)
			due = dueTimer.C
		}
		var first *pending
		select {
		case first = <-w.in:
		case <-tick.C:
			w.c.prune(w.c.clock.Now())
			continue
		case <-due:
			dueTimer, due = nil, nil
			w.flushHeld(ctx)
			continue
		case reply := <-flushReq:
			reply <- w.flushHeld(ctx)
			continue
		case <-w.stop:
			// No submit can queue any more (closed is set under the lock
			// every sender holds): commit what is left, write the held
			// rollups and leave.
			for {
				batch = batch[:0]
				for len(batch) < w.maxBatch {
					select {
					case p := <-w.in:
						batch = append(batch, p)
						continue
					default:
					}
					break
				}
				if len(batch) == 0 {
					break
				}
				w.commit(ctx, batch)
			}
			if !w.crashed.Load() {
				w.flushHeld(ctx)
			}
			return
		}
		batch = append(batch[:0], first)
		// Take what is queued; then, while more keeps arriving, yield once
		// and take again. Yielding costs nothing when the CPU is idle (no
		// other goroutine is runnable, so it returns at once), and when the
		// CPU is busy it lets the requests being decoded reach the queue,
		// so one commit serves more of them: its fixed cost (BEGIN, COMMIT,
		// statements) is most of an event's cost in small batches.
		for round := 0; len(batch) < w.maxBatch && round < 3; round++ {
			n := len(batch)
		fill:
			for len(batch) < w.maxBatch {
				select {
				case p := <-w.in:
					batch = append(batch, p)
				default:
					break fill
				}
			}
			if round > 0 && len(batch) == n {
				break
			}
			runtime.Gosched()
		}
		w.commit(ctx, batch)
		if w.held.empty() && dueTimer != nil {
			dueTimer.Stop()
			dueTimer, due = nil, nil
		}
	}
}

// commit writes a batch and answers every waiting request. When the batch
// fails as a whole, each event is retried alone, so one event the database
// refuses cannot fail the others.
func (w *writer) commit(ctx context.Context, batch []*pending) {
	// On SQLite the batch's slice is reused; PostgreSQL keeps a batch's
	// events until their rollups are written (pg.held), so it gets its own.
	var evs []Event
	if w.c.db.Engine == store.Postgres {
		evs = make([]Event, 0, len(batch))
	} else {
		evs = w.evs[:0]
		defer func() {
			clear(evs) // hold no event's values past its batch
			w.evs = evs[:0]
		}()
	}
	for _, p := range batch {
		evs = append(evs, p.ev)
	}
	start := time.Now()
	err := w.write(ctx, evs)
	w.commitNanos.Add(int64(time.Since(start)))
	w.batches.Add(1)
	if err == nil {
		w.events.Add(int64(len(batch)))
	} else {
		w.failures.Add(1)
	}
	if err != nil && len(batch) > 1 {
		w.c.log.Warn("activity: batch failed, retrying events one by one", "events", len(batch), "err", err)
		for _, p := range batch {
			p.done <- w.write(ctx, []Event{p.ev})
		}
		return
	}
	if err != nil {
		w.c.log.Error("activity: event not stored", "err", err)
	}
	for _, p := range batch {
		p.done <- err
	}
}

// write stores evs (and, per engine, their rollups) in one transaction.
func (w *writer) write(ctx context.Context, evs []Event) error {
	if w.c.db.Engine == store.Postgres {
		return w.writePostgres(ctx, evs)
	}
	return w.writeSQLite(ctx, evs, aggregate(evs, w.seen))
}

// seenCacheSize bounds the PostgreSQL seen-key cache (about 16 MB).
const seenCacheSize = 1 << 20

func seenLimit(e store.Engine) int {
	if e == store.Postgres {
		return seenCacheSize
	}
	return 0 // authoritative: never emptied while its day is live
}

// prune forgets what belongs to days that are over: salts and seen-keys.
func (c *Collector) prune(now time.Time) {
	c.salts.prune(now)
	first := map[string]string{}
	for _, s := range c.cfg.Sites {
		first[s.ID] = localDay(now.Add(-saltGrace), s.Location)
	}
	c.w.seen.keep(func(d dayID) bool {
		f, ok := first[d.site]
		return ok && d.day >= f
	})
}

// splitLinked separates the anonymous events from those linked to a
// member's account (stored in their own table).
func splitLinked(evs []Event) (anon, linked []*Event) {
	for i := range evs {
		if evs[i].SubjectID != "" {
			linked = append(linked, &evs[i])
		} else {
			anon = append(anon, &evs[i])
		}
	}
	return anon, linked
}
