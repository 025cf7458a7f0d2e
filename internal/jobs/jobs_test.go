package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/store"
	"steward/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// effects is a table of a test module, so handlers have something to
// write in the same transaction as their completion.
var effects = store.Migrations{Module: "jobstest", FS: fstest.MapFS{
	"0001_effects.sql": {Data: []byte(`CREATE TABLE effects (id TEXT PRIMARY KEY, job_id TEXT NOT NULL)`)},
}}

func mods() []store.Migrations { return []store.Migrations{jobs.Migrations(), effects} }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newRunner(db *store.DB, c clock.Clock) *jobs.Runner {
	r := jobs.NewRunner(db, c, quiet())
	r.SetBackoff(time.Minute, time.Hour)
	return r
}

func count(t *testing.T, db *store.DB, where string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM jobs WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func runDue(t *testing.T, r *jobs.Runner, want int) {
	t.Helper()
	n, err := r.RunDue(context.Background())
	if err != nil {
		t.Fatalf("RunDue: %v", err)
	}
	if n != want {
		t.Fatalf("RunDue ran %d jobs, want %d", n, want)
	}
}

// twoHandles opens two connections pools to one fresh database per
// engine, as two Steward processes would.
func twoHandles(t *testing.T, fn func(t *testing.T, a, b *store.DB)) {
	ctx := context.Background()
	open := func(t *testing.T, url, dir string) *store.DB {
		db, err := store.Open(ctx, url, dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	run := func(t *testing.T, url, dir string) {
		a, b := open(t, url, dir), open(t, url, dir)
		if _, err := a.Migrate(ctx, mods()); err != nil {
			t.Fatal(err)
		}
		fn(t, a, b)
	}
	t.Run("sqlite", func(t *testing.T) { run(t, "", t.TempDir()) })
	t.Run("postgres", func(t *testing.T) { run(t, storetest.PostgresURL(t), "") })
}

func TestEnqueueAndRun(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		r := newRunner(db, clk)
		type payload struct {
			Subject string `json:"subject"`
		}
		var got []payload
		var attempts []int
		r.Handle("test.echo", func(ctx context.Context, j jobs.Job) error {
			var p payload
			if err := j.Decode(&p); err != nil {
				return err
			}
			got = append(got, p)
			attempts = append(attempts, j.Attempt)
			return nil
		})
		if _, err := r.Enqueue(ctx, db, "test.echo", payload{"s1"}, jobs.Options{}); err != nil {
			t.Fatal(err)
		}
		later, err := r.Enqueue(ctx, db, "test.echo", payload{"s2"}, jobs.Options{RunAt: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		runDue(t, r, 1)
		if len(got) != 1 || got[0].Subject != "s1" || attempts[0] != 1 {
			t.Fatalf("handled %v (attempts %v), want [{s1}] at attempt 1", got, attempts)
		}
		if n := count(t, db, `1 = 1`); n != 1 {
			t.Fatalf("%d jobs left, want 1 (the later one; done jobs are deleted)", n)
		}
		info, err := r.Get(ctx, later)
		if err != nil || info.Status != jobs.StatusPending || !info.RunAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("later job = %+v, %v; want pending at %v", info, err, t0.Add(time.Hour))
		}
		clk.Advance(59 * time.Minute)
		runDue(t, r, 0)
		clk.Advance(time.Minute)
		runDue(t, r, 1)
		if len(got) != 2 || got[1].Subject != "s2" {
			t.Fatalf("handled %v, want s1 then s2", got)
		}
	})
}

func TestEnqueueValidates(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		r := newRunner(db, clock.NewFake(t0))
		for _, kind := range []string{"", "Upper", "has space", "a\nb", strings.Repeat("k", 101)} {
			if _, err := r.Enqueue(context.Background(), db, kind, nil, jobs.Options{}); !fault.Is(err, fault.Invalid) {
				t.Errorf("Enqueue(kind %q) error = %v, want invalid", kind, err)
			}
		}
		if _, err := r.Enqueue(context.Background(), db, "ok", nil, jobs.Options{MaxAttempts: -1}); !fault.Is(err, fault.Invalid) {
			t.Errorf("negative MaxAttempts error = %v, want invalid", err)
		}
	})
}

func TestEnqueueInCallersTransaction(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRunner(db, clock.NewFake(t0))
		ran := 0
		r.Handle("test.tx", func(ctx context.Context, j jobs.Job) error { ran++; return nil })
		boom := errors.New("boom")
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := r.Enqueue(ctx, tx, "test.tx", nil, jobs.Options{}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want boom", err)
		}
		runDue(t, r, 0)
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := r.Enqueue(ctx, tx, "test.tx", nil, jobs.Options{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		runDue(t, r, 1)
		if ran != 1 {
			t.Fatalf("ran %d times, want 1 (only the committed job)", ran)
		}
	})
}

func TestRetryWithBackoff(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		r := newRunner(db, clk) // backoff 1m doubling, jitter between half and all
		var attempts []int
		r.Handle("test.flaky", func(ctx context.Context, j jobs.Job) error {
			attempts = append(attempts, j.Attempt)
			if j.Attempt < 3 {
				return fmt.Errorf("flaky attempt %d", j.Attempt)
			}
			return nil
		})
		id, err := r.Enqueue(ctx, db, "test.flaky", nil, jobs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		runDue(t, r, 1)
		info, err := r.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != jobs.StatusPending || info.Attempts != 1 || info.LastError != "flaky attempt 1" {
			t.Fatalf("after one failure: %+v; want pending, 1 attempt, last error kept", info)
		}
		if d := info.RunAt.Sub(t0); d < 30*time.Second || d > time.Minute {
			t.Fatalf("first retry in %v, want between 30s and 1m", d)
		}
		clk.Advance(29 * time.Second)
		runDue(t, r, 0)
		clk.Set(t0.Add(time.Minute))
		runDue(t, r, 1)
		info, _ = r.Get(ctx, id)
		if d := info.RunAt.Sub(t0.Add(time.Minute)); d < time.Minute || d > 2*time.Minute {
			t.Fatalf("second retry in %v, want between 1m and 2m (doubled)", d)
		}
		clk.Advance(59 * time.Second)
		runDue(t, r, 0)
		clk.Advance(61 * time.Second)
		runDue(t, r, 1)
		if fmt.Sprint(attempts) != "[1 2 3]" {
			t.Fatalf("attempts = %v, want [1 2 3]", attempts)
		}
		if _, err := r.Get(ctx, id); !fault.Is(err, fault.NotFound) {
			t.Fatalf("done job still stored: %v", err)
		}
	})
}

func TestDeadAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		r := newRunner(db, clk)
		runs := 0
		fail := true
		r.Handle("test.doomed", func(ctx context.Context, j jobs.Job) error {
			runs++
			if !fail {
				return nil
			}
			// A library error echoing personal values, and long.
			return fmt.Errorf("rcpt alice.smith@example.org from 203.0.113.9 and 2001:db8::1 refused: %s", strings.Repeat("x", 1000))
		})
		id, err := r.Enqueue(ctx, db, "test.doomed", map[string]string{"id": "o1"}, jobs.Options{MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			runDue(t, r, 1)
			clk.Advance(time.Hour)
		}
		runDue(t, r, 0)
		if runs != 3 {
			t.Fatalf("ran %d times, want 3", runs)
		}
		info, err := r.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != jobs.StatusDead || info.Attempts != 3 {
			t.Fatalf("job = %+v, want dead after 3 attempts", info)
		}
		for _, leak := range []string{"alice", "example.org", "203.0.113.9", "2001:db8"} {
			if strings.Contains(info.LastError, leak) {
				t.Errorf("last_error %q contains %q", info.LastError, leak)
			}
		}
		if !strings.Contains(info.LastError, "rcpt [email] from [ip] and [ip] refused") || len(info.LastError) > 310 {
			t.Errorf("last_error = %q (%d bytes), want masked and short", info.LastError, len(info.LastError))
		}
		dead, err := r.List(ctx, jobs.StatusDead, 10)
		if err != nil || len(dead) != 1 || dead[0].ID != id {
			t.Fatalf("List(dead) = %+v, %v; want the dead job", dead, err)
		}
		counts, err := r.Counts(ctx)
		if err != nil || counts[jobs.StatusDead] != 1 || counts[jobs.StatusPending] != 0 {
			t.Fatalf("Counts = %v, %v", counts, err)
		}
		fail = false
		if err := r.Retry(ctx, id); err != nil {
			t.Fatal(err)
		}
		runDue(t, r, 1)
		if runs != 4 {
			t.Fatalf("retried dead job did not run")
		}
		if err := r.Retry(ctx, id); !fault.Is(err, fault.NotFound) {
			t.Fatalf("Retry of a done job = %v, want not_found", err)
		}
	})
}

func TestPermanentErrorAndPanic(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRunner(db, clock.NewFake(t0))
		r.Handle("test.permanent", func(ctx context.Context, j jobs.Job) error {
			return jobs.Permanent(errors.New("bad payload"))
		})
		r.Handle("test.panic", func(ctx context.Context, j jobs.Job) error { panic("kaboom") })
		p, _ := r.Enqueue(ctx, db, "test.permanent", nil, jobs.Options{})
		q, _ := r.Enqueue(ctx, db, "test.panic", nil, jobs.Options{})
		runDue(t, r, 2)
		if info, _ := r.Get(ctx, p); info.Status != jobs.StatusDead || info.Attempts != 1 || info.LastError != "bad payload" {
			t.Errorf("permanent failure: %+v, want dead after 1 attempt", info)
		}
		if info, _ := r.Get(ctx, q); info.Status != jobs.StatusPending || !strings.Contains(info.LastError, "panicked: kaboom") {
			t.Errorf("panic: %+v, want pending with the panic as error", info)
		}
	})
}

func TestDedupeKey(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRunner(db, clock.NewFake(t0))
		ran := 0
		r.Handle("test.rollup", func(ctx context.Context, j jobs.Job) error { ran++; return nil })
		a, err := r.Enqueue(ctx, db, "test.rollup", nil, jobs.Options{Key: "rollup:2026-03-01"})
		if err != nil {
			t.Fatal(err)
		}
		var b string
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			b, err = r.Enqueue(ctx, tx, "test.rollup", nil, jobs.Options{Key: "rollup:2026-03-01"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("second enqueue with the same key got id %s, want the pending %s", b, a)
		}
		other, _ := r.Enqueue(ctx, db, "test.rollup", nil, jobs.Options{Key: "rollup:2026-03-02"})
		if other == a {
			t.Fatal("a different key was deduplicated")
		}
		if n := count(t, db, `dedupe_key = $1`, "rollup:2026-03-01"); n != 1 {
			t.Fatalf("%d jobs with the key, want 1", n)
		}
		runDue(t, r, 2)
		c, err := r.Enqueue(ctx, db, "test.rollup", nil, jobs.Options{Key: "rollup:2026-03-01"})
		if err != nil || c == a {
			t.Fatalf("enqueue after the job ran = %s, %v; want a new job", c, err)
		}
		runDue(t, r, 1)
		if ran != 3 {
			t.Fatalf("ran %d, want 3", ran)
		}
	})
}

func TestPriorityAndUnknownKinds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		r := newRunner(db, clk)
		var order []string
		r.Handle("test.order", func(ctx context.Context, j jobs.Job) error {
			var s string
			j.Decode(&s)
			order = append(order, s)
			return nil
		})
		r.Enqueue(ctx, db, "test.order", "bulk-1", jobs.Options{Priority: -10})
		clk.Advance(time.Second)
		r.Enqueue(ctx, db, "test.order", "bulk-2", jobs.Options{Priority: -10})
		clk.Advance(time.Second)
		r.Enqueue(ctx, db, "test.order", "reset", jobs.Options{})
		r.Enqueue(ctx, db, "test.elsewhere", nil, jobs.Options{})
		runDue(t, r, 3)
		if got := strings.Join(order, ","); got != "reset,bulk-1,bulk-2" {
			t.Fatalf("order = %s, want reset,bulk-1,bulk-2", got)
		}
		if n := count(t, db, `kind = 'test.elsewhere' AND status = 'pending'`); n != 1 {
			t.Fatalf("a job of a kind this runner does not handle was claimed")
		}
	})
}

func TestCompleteInHandlersTransaction(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRunner(db, clock.NewFake(t0))
		rollback := true
		r.Handle("test.effect", func(ctx context.Context, j jobs.Job) error {
			return db.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO effects (id, job_id) VALUES ($1, $2)`, fmt.Sprint(j.Attempt), j.ID); err != nil {
					return err
				}
				if err := r.Complete(ctx, tx, j); err != nil {
					return err
				}
				if rollback {
					return errors.New("effect failed after completing")
				}
				return nil
			})
		})
		id, _ := r.Enqueue(ctx, db, "test.effect", nil, jobs.Options{})
		runDue(t, r, 1)
		// The rolled-back transaction took the completion with it.
		if info, err := r.Get(ctx, id); err != nil || info.Status != jobs.StatusPending {
			t.Fatalf("after rollback: %+v, %v; want pending", info, err)
		}
		rollback = false
		if _, err := db.ExecContext(ctx, `UPDATE jobs SET run_at = $1`, t0); err != nil {
			t.Fatal(err)
		}
		runDue(t, r, 1)
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM effects WHERE job_id = $1`, id).Scan(&n)
		if n != 1 {
			t.Fatalf("%d effects, want 1", n)
		}
		if _, err := r.Get(ctx, id); !fault.Is(err, fault.NotFound) {
			t.Fatalf("job not completed with its effect: %v", err)
		}
	})
}

func TestEverySchedulesOnceAcrossRunners(t *testing.T) {
	t.Parallel()
	twoHandles(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		var runs atomic.Int32
		var runners []*jobs.Runner
		for _, db := range []*store.DB{a, b} {
			r := newRunner(db, clk)
			r.Every("test.sweep", time.Hour)
			r.Handle("test.sweep", func(ctx context.Context, j jobs.Job) error { runs.Add(1); return nil })
			runners = append(runners, r)
		}
		both := func() {
			var wg sync.WaitGroup
			for _, r := range runners {
				wg.Go(func() {
					if _, err := r.RunDue(ctx); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		both()
		if got := runs.Load(); got != 1 {
			t.Fatalf("first round ran the periodic task %d times, want 1", got)
		}
		if n := count(t, a, `dedupe_key = 'every:test.sweep'`); n != 1 {
			t.Fatalf("%d scheduled instances, want 1", n)
		}
		clk.Advance(30 * time.Minute)
		both()
		clk.Advance(30 * time.Minute)
		both()
		both()
		if got := runs.Load(); got != 2 {
			t.Fatalf("after an hour the task ran %d times, want 2", got)
		}
		// Started runners keep it at one instance too.
		for _, r := range runners {
			r.SetPollInterval(5 * time.Millisecond)
			r.Start(ctx, 2)
		}
		clk.Advance(time.Hour)
		for _, r := range runners {
			r.Wake()
		}
		deadline := time.Now().Add(5 * time.Second)
		for runs.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		for _, r := range runners {
			if err := r.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := runs.Load(); got != 3 {
			t.Fatalf("started runners ran the task to %d runs, want 3", got)
		}
		if n := count(t, a, `dedupe_key = 'every:test.sweep'`); n != 1 {
			t.Fatalf("%d scheduled instances, want 1", n)
		}
	})
}

func TestTwoRunnersNeverRunAJobTwice(t *testing.T) {
	t.Parallel()
	twoHandles(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		const total = 200
		var mu sync.Mutex
		seen := map[string]int{}
		var done atomic.Int32
		var runners []*jobs.Runner
		for _, db := range []*store.DB{a, b} {
			r := jobs.NewRunner(db, clock.Real{}, quiet())
			r.SetPollInterval(5 * time.Millisecond)
			r.Handle("test.count", func(ctx context.Context, j jobs.Job) error {
				mu.Lock()
				seen[j.ID]++
				mu.Unlock()
				done.Add(1)
				return nil
			})
			runners = append(runners, r)
		}
		enq := runners[0]
		for i := range total {
			if _, err := enq.Enqueue(ctx, a, "test.count", i, jobs.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range runners {
			r.Start(ctx, 4)
		}
		deadline := time.Now().Add(60 * time.Second)
		for done.Load() < total && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let a double run, if any, show
		for _, r := range runners {
			if err := r.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for id, n := range seen {
			if n != 1 {
				t.Errorf("job %s ran %d times", id, n)
			}
		}
		if len(seen) != total {
			t.Fatalf("%d distinct jobs ran, want %d", len(seen), total)
		}
		if n := count(t, a, `1 = 1`); n != 0 {
			t.Fatalf("%d jobs left", n)
		}
	})
}

func TestLeaseExpiryRerunsJobOfVanishedWorker(t *testing.T) {
	t.Parallel()
	twoHandles(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		started := make(chan struct{})
		release := make(chan struct{})
		var runsA, runsB atomic.Int32

		hung := jobs.NewRunner(a, clk, quiet())
		hung.SetLease(time.Minute)
		hung.SetPollInterval(5 * time.Millisecond)
		hung.Handle("test.work", func(ctx context.Context, j jobs.Job) error {
			runsA.Add(1)
			close(started)
			<-release // the worker hangs: no heartbeat reaches the database in time
			return nil
		})
		other := jobs.NewRunner(b, clk, quiet())
		other.Handle("test.work", func(ctx context.Context, j jobs.Job) error {
			runsB.Add(1)
			if j.Attempt != 2 {
				t.Errorf("re-run attempt = %d, want 2", j.Attempt)
			}
			return nil
		})
		id, _ := hung.Enqueue(ctx, a, "test.work", nil, jobs.Options{})
		hung.Start(ctx, 1)
		hung.Wake()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("first runner never took the job")
		}
		runDue(t, other, 0) // leased: not taken
		clk.Advance(61 * time.Second)
		runDue(t, other, 1) // lease expired: reaped and re-run
		close(release)
		if err := hung.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if runsA.Load() != 1 || runsB.Load() != 1 {
			t.Fatalf("runs = %d, %d; want 1 each", runsA.Load(), runsB.Load())
		}
		if _, err := other.Get(ctx, id); !fault.Is(err, fault.NotFound) {
			t.Fatalf("job not done: %v", err)
		}
	})
}

func TestLeaseExpiryOnLastAttemptMarksDead(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(t0)
		r := newRunner(db, clk)
		r.Handle("test.work", func(ctx context.Context, j jobs.Job) error { return nil })
		id, _ := r.Enqueue(ctx, db, "test.work", nil, jobs.Options{MaxAttempts: 1})
		// A worker that claimed it and vanished.
		if _, err := db.ExecContext(ctx, `UPDATE jobs SET status = 'running', attempts = 1, lease_owner = 'gone', lease_until = $1`, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute)
		runDue(t, r, 0)
		info, err := r.Get(ctx, id)
		if err != nil || info.Status != jobs.StatusDead || !strings.Contains(info.LastError, "lease expired") {
			t.Fatalf("job = %+v, %v; want dead by lease expiry", info, err)
		}
	})
}

func TestStopDrainsRunningJob(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := jobs.NewRunner(db, clock.Real{}, quiet())
		r.SetPollInterval(5 * time.Millisecond)
		started := make(chan struct{})
		release := make(chan struct{})
		var finished atomic.Bool
		r.Handle("test.slow", func(ctx context.Context, j jobs.Job) error {
			close(started)
			select {
			case <-release:
				finished.Store(true)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		id, _ := r.Enqueue(ctx, db, "test.slow", nil, jobs.Options{})
		runCtx, cancelRun := context.WithCancel(ctx)
		defer cancelRun()
		r.Start(runCtx, 2)
		r.Wake()
		<-started
		stopped := make(chan error, 1)
		go func() { stopped <- r.Stop(ctx) }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a job was running", err)
		case <-time.After(100 * time.Millisecond):
		}
		// A job enqueued now is not taken any more.
		late, _ := r.Enqueue(ctx, db, "test.slow", nil, jobs.Options{})
		r.Wake()
		close(release)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop = %v", err)
		}
		if !finished.Load() {
			t.Fatal("Stop returned before the job finished")
		}
		if _, err := r.Get(ctx, id); !fault.Is(err, fault.NotFound) {
			t.Fatalf("drained job not completed: %v", err)
		}
		if info, err := r.Get(ctx, late); err != nil || info.Status != jobs.StatusPending {
			t.Fatalf("job enqueued during Stop = %+v, %v; want still pending", info, err)
		}
	})
}

func TestStopDeadlineCancelsHandlers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := jobs.NewRunner(db, clock.Real{}, quiet())
		r.SetPollInterval(5 * time.Millisecond)
		started := make(chan struct{})
		cancelled := make(chan struct{})
		r.Handle("test.stuck", func(ctx context.Context, j jobs.Job) error {
			close(started)
			<-ctx.Done()
			close(cancelled)
			return ctx.Err()
		})
		id, _ := r.Enqueue(ctx, db, "test.stuck", nil, jobs.Options{})
		r.Start(ctx, 1)
		r.Wake()
		<-started
		stopCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := r.Stop(stopCtx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v, want deadline exceeded", err)
		}
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Fatal("handler context not cancelled by the stop deadline")
		}
		// The interrupted run is recorded as a failure to retry.
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, err := r.Get(ctx, id)
			if err == nil && info.Status == jobs.StatusPending && info.Attempts == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("interrupted job = %+v, %v; want pending for retry", info, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}
