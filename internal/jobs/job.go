package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"steward/internal/fault"
	"steward/internal/store"
)

// Job states in jobs.status. Done jobs are deleted.
const (
	StatusPending = "pending"
	StatusRunning = "running"
	StatusDead    = "dead"
)

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

func insertJob(ctx context.Context, q store.Q, kind string, payload []byte, o Options, now time.Time) (string, error) {
	var key any
	if o.Key != "" {
		key = o.Key
	}
	// A pending job with the same key wins; it may be claimed between our
	// failed insert and the look-up, so try again a few times.
	for range 5 {
		id := newID()
		res, err := q.ExecContext(ctx, `INSERT INTO jobs (id, kind, payload, status, dedupe_key, priority, run_at, attempts, max_attempts, last_error, created_at, updated_at)
			VALUES ($1, $2, $3, 'pending', $4, $5, $6, 0, $7, '', $8, $8)
			ON CONFLICT DO NOTHING`,
			id, kind, payload, key, o.Priority, o.RunAt, o.MaxAttempts, now)
		if err != nil {
			return "", fmt.Errorf("jobs: enqueue %s: %w", kind, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return "", fmt.Errorf("jobs: enqueue %s: %w", kind, err)
		} else if n == 1 {
			return id, nil
		}
		if key == nil {
			continue // an id collision, in theory
		}
		var existing string
		err = q.QueryRowContext(ctx, `SELECT id FROM jobs WHERE dedupe_key = $1 AND status = 'pending'`, o.Key).Scan(&existing)
		if err == nil {
			return existing, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("jobs: enqueue %s: find pending duplicate: %w", kind, err)
		}
	}
	return "", fmt.Errorf("jobs: enqueue %s: dedupe key kept changing hands", kind)
}

// kindList renders kinds as placeholders numbered from first, with their
// arguments.
func kindList(first int, kinds []string) (string, []any) {
	marks := make([]string, len(kinds))
	args := make([]any, len(kinds))
	for i, k := range kinds {
		marks[i] = fmt.Sprintf("$%d", first+i)
		args[i] = k
	}
	return strings.Join(marks, ", "), args
}

// claimJob leases the most urgent due job of the given kinds.
func claimJob(ctx context.Context, db *store.DB, owner string, kinds []string, now, until time.Time) (Job, bool, error) {
	in, kindArgs := kindList(4, kinds)
	args := append([]any{owner, until, now}, kindArgs...)
	lock := ""
	if db.Engine == store.Postgres {
		// Concurrent claimers skip each other's rows instead of queueing.
		lock = " FOR UPDATE SKIP LOCKED"
	}
	query := `UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
		WHERE status = 'pending' AND id = (
			SELECT id FROM jobs WHERE status = 'pending' AND run_at <= $3 AND kind IN (` + in + `)
			ORDER BY priority DESC, run_at LIMIT 1` + lock + `)
		RETURNING id, kind, payload, attempts, max_attempts, run_at`
	var j Job
	found := false
	claim := func(q store.Q) error {
		err := q.QueryRowContext(ctx, query, args...).Scan(&j.ID, &j.Kind, &j.Payload, &j.Attempt, &j.MaxAttempts, &j.RunAt)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("jobs: claim: %w", err)
		}
		found = true
		return nil
	}
	var err error
	if db.Engine == store.SQLite {
		// Readers never wait in WAL mode, so look before taking the write
		// lock: idle pollers then leave the single writer to real work.
		var due bool
		in, kindArgs := kindList(2, kinds)
		probe := `SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'pending' AND run_at <= $1 AND kind IN (` + in + `))`
		if err := db.QueryRowContext(ctx, probe, append([]any{now}, kindArgs...)...).Scan(&due); err != nil {
			return Job{}, false, fmt.Errorf("jobs: claim: %w", err)
		}
		if !due {
			return Job{}, false, nil
		}
		// An immediate transaction: SQLite's single writer is the lock.
		err = db.InTx(ctx, func(tx *sql.Tx) error { return claim(tx) })
	} else {
		err = claim(db)
	}
	if err != nil || !found {
		return Job{}, false, err
	}
	j.RunAt = j.RunAt.UTC()
	return j, true, nil
}

// The claim of a job is its owner together with the attempt number.
const claimed = `id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'`

func deleteClaimed(ctx context.Context, q store.Q, j Job) (bool, error) {
	res, err := q.ExecContext(ctx, `DELETE FROM jobs WHERE `+claimed, j.ID, j.lease.owner, j.Attempt)
	if err != nil {
		return false, fmt.Errorf("jobs: complete %s: %w", j.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func renewLease(ctx context.Context, q store.Q, j Job, until time.Time) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE jobs SET lease_until = $4 WHERE `+claimed, j.ID, j.lease.owner, j.Attempt, until)
	if err != nil {
		return false, fmt.Errorf("jobs: renew lease of %s: %w", j.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func markDead(ctx context.Context, q store.Q, j Job, now time.Time, msg string) (bool, error) {
	res, err := q.ExecContext(ctx, `UPDATE jobs SET status = 'dead', last_error = $4, lease_owner = NULL, lease_until = NULL, updated_at = $5 WHERE `+claimed,
		j.ID, j.lease.owner, j.Attempt, msg, now)
	if err != nil {
		return false, fmt.Errorf("jobs: mark %s dead: %w", j.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// retryJob puts a failed job back to pending after delay. When another
// pending job with the same dedupe key appeared meanwhile, that one will do
// the work and this one is dropped.
func retryJob(ctx context.Context, db *store.DB, j Job, now time.Time, delay time.Duration, msg string) error {
	_, err := db.ExecContext(ctx, `UPDATE jobs SET status = 'pending', run_at = $4, last_error = $5, lease_owner = NULL, lease_until = NULL, updated_at = $6 WHERE `+claimed,
		j.ID, j.lease.owner, j.Attempt, now.Add(delay), msg, now)
	if store.IsUniqueViolation(err) {
		_, err = deleteClaimed(ctx, db, j)
	}
	if err != nil {
		return fmt.Errorf("jobs: reschedule %s: %w", j.ID, err)
	}
	return nil
}

// reap returns the jobs of vanished workers (lease expired) to pending, or
// marks them dead when that was their last attempt.
func reap(ctx context.Context, db *store.DB, now time.Time) error {
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'dead', last_error = 'lease expired during the last attempt: the worker stopped or hung', lease_owner = NULL, lease_until = NULL, updated_at = $1
			WHERE status = 'running' AND lease_until < $1 AND attempts >= max_attempts`, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE status = 'running' AND lease_until < $1 AND dedupe_key IS NOT NULL
			AND EXISTS (SELECT 1 FROM jobs p WHERE p.status = 'pending' AND p.dedupe_key = jobs.dedupe_key)`, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET status = 'pending', last_error = 'lease expired: the worker stopped or hung', lease_owner = NULL, lease_until = NULL, updated_at = $1
			WHERE status = 'running' AND lease_until < $1`, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("jobs: reap expired leases: %w", err)
	}
	return nil
}

// ensurePeriodic schedules a periodic task unless an instance is pending
// or running. It holds the task's jobs_periodic row while it looks, and
// completing a run takes the same row to schedule the next one, so a
// runner never sees the gap between one period's run and the next
// period's job: each period is scheduled exactly once.
func ensurePeriodic(ctx context.Context, db *store.DB, kind string, now time.Time) error {
	return db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO jobs_periodic (kind, next_at, updated_at) VALUES ($1, $2, $2) ON CONFLICT (kind) DO NOTHING`, kind, now); err != nil {
			return fmt.Errorf("jobs: check periodic %s: %w", kind, err)
		}
		lock := ""
		if db.Engine == store.Postgres {
			lock = " FOR UPDATE" // SQLite's immediate transaction already holds the write lock
		}
		var next time.Time
		if err := tx.QueryRowContext(ctx, `SELECT next_at FROM jobs_periodic WHERE kind = $1`+lock, kind).Scan(&next); err != nil {
			return fmt.Errorf("jobs: check periodic %s: %w", kind, err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE dedupe_key = $1 AND status IN ('pending', 'running')`, periodicKey(kind)).Scan(&n); err != nil {
			return fmt.Errorf("jobs: check periodic %s: %w", kind, err)
		}
		if n > 0 {
			return nil
		}
		_, err := insertJob(ctx, tx, kind, []byte("null"), Options{RunAt: next.UTC(), MaxAttempts: DefaultMaxAttempts, Key: periodicKey(kind)}, now)
		return err
	})
}

// schedulePeriodic records when a periodic task is next due, taking its
// jobs_periodic row, and schedules that run. q is the transaction that
// completes (or buries) the previous run.
func schedulePeriodic(ctx context.Context, q store.Q, kind string, next, now time.Time) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO jobs_periodic (kind, next_at, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (kind) DO UPDATE SET next_at = excluded.next_at, updated_at = excluded.updated_at`, kind, next, now); err != nil {
		return fmt.Errorf("jobs: schedule periodic %s: %w", kind, err)
	}
	_, err := insertJob(ctx, q, kind, []byte("null"), Options{RunAt: next, MaxAttempts: DefaultMaxAttempts, Key: periodicKey(kind)}, now)
	return err
}

// Info describes a stored job, for the staff console.
type Info struct {
	ID          string
	Kind        string
	Status      string
	Key         string
	Priority    int
	Attempts    int
	MaxAttempts int
	RunAt       time.Time
	LeaseOwner  string
	LeaseUntil  *time.Time
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const infoColumns = `id, kind, status, dedupe_key, priority, attempts, max_attempts, run_at, lease_owner, lease_until, last_error, created_at, updated_at`

func scanInfo(s interface{ Scan(...any) error }) (Info, error) {
	var i Info
	var key, owner sql.NullString
	var until sql.NullTime
	if err := s.Scan(&i.ID, &i.Kind, &i.Status, &key, &i.Priority, &i.Attempts, &i.MaxAttempts, &i.RunAt, &owner, &until, &i.LastError, &i.CreatedAt, &i.UpdatedAt); err != nil {
		return Info{}, err
	}
	i.Key, i.LeaseOwner = key.String, owner.String
	if until.Valid {
		t := until.Time.UTC()
		i.LeaseUntil = &t
	}
	i.RunAt, i.CreatedAt, i.UpdatedAt = i.RunAt.UTC(), i.CreatedAt.UTC(), i.UpdatedAt.UTC()
	return i, nil
}

// List returns up to limit jobs in status ("" for all), most recently
// updated first.
func (r *Runner) List(ctx context.Context, status string, limit int) ([]Info, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	query := `SELECT ` + infoColumns + ` FROM jobs`
	args := []any{limit}
	if status != "" {
		query += ` WHERE status = $2`
		args = append(args, status)
	}
	query += ` ORDER BY updated_at DESC, id LIMIT $1`
	rows, err := r.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	defer rows.Close()
	var out []Info
	for rows.Next() {
		i, err := scanInfo(rows)
		if err != nil {
			return nil, fmt.Errorf("jobs: list: %w", err)
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// Get returns one job, or a not_found fault (done jobs are deleted).
func (r *Runner) Get(ctx context.Context, id string) (Info, error) {
	i, err := scanInfo(r.db.QueryRowContext(ctx, `SELECT `+infoColumns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Info{}, fault.New(fault.NotFound, "no such job")
	}
	if err != nil {
		return Info{}, fmt.Errorf("jobs: get: %w", err)
	}
	return i, nil
}

// Counts returns how many jobs are in each status, for metrics and the
// console.
func (r *Runner) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM jobs GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("jobs: count: %w", err)
	}
	defer rows.Close()
	out := map[string]int{StatusPending: 0, StatusRunning: 0, StatusDead: 0}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("jobs: count: %w", err)
		}
		out[s] = n
	}
	return out, rows.Err()
}

// Retry gives a dead job a fresh set of attempts, due now.
func (r *Runner) Retry(ctx context.Context, id string) error {
	now := r.clock.Now()
	res, err := r.db.ExecContext(ctx, `UPDATE jobs SET status = 'pending', attempts = 0, run_at = $2, updated_at = $2 WHERE id = $1 AND status = 'dead'`, id, now)
	if store.IsUniqueViolation(err) {
		return fault.New(fault.Conflict, "a pending job with the same key exists")
	}
	if err != nil {
		return fmt.Errorf("jobs: retry %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fault.New(fault.NotFound, "no dead job with this id")
	}
	r.Wake()
	return nil
}
