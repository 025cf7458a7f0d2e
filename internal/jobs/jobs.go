// Package jobs owns the one job runner every background task of Steward
// goes through: mail delivery, exports, salt rotation, rollups, retention
// sweeps, notices. Jobs live in the database (table jobs), so they survive
// restarts and are shared by every Steward process on one database.
//
// A worker takes a job by leasing it (lease_owner, lease_until): on
// PostgreSQL with FOR UPDATE SKIP LOCKED, on SQLite through the single
// writer. While a handler runs, its lease is renewed; a worker that
// vanishes lets its lease expire, and the job is run again by another. So a
// job runs at least once and, as long as leases hold, never in two places at
// once. Handlers whose effect must not happen twice (sending a mail) make it
// conditional and complete their job in the same transaction (Complete).
//
// A failed job is retried with exponential backoff and jitter up to its
// maximum attempts, then kept as dead, with a short error, for the console.
// Done jobs are deleted.
package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"steward/internal/clock"
	"steward/internal/fault"
	"steward/internal/store"
)

// Job is one claimed job as a handler sees it.
type Job struct {
	ID   string
	Kind string
	// Payload is the JSON the job was enqueued with. It carries ids, never
	// personal values.
	Payload []byte
	// Attempt counts runs of this job, starting at 1.
	Attempt int
	// MaxAttempts is the attempt after which a failure makes the job dead.
	MaxAttempts int
	// RunAt is when the job was due.
	RunAt time.Time

	lease *lease
}

// lease identifies one claim of a job: the owner and the attempt number
// together, so a worker that lost its lease cannot touch the job again
// even when the same runner claims it anew.
type lease struct {
	owner     string
	completed atomic.Bool
}

// Decode unmarshals the job's payload into v.
func (j Job) Decode(v any) error {
	if err := json.Unmarshal(j.Payload, v); err != nil {
		return Permanent(fmt.Errorf("jobs: decode payload of %s job %s: %w", j.Kind, j.ID, err))
	}
	return nil
}

// LastAttempt reports whether a failure of this run makes the job dead.
func (j Job) LastAttempt() bool { return j.Attempt >= j.MaxAttempts }

// Handler runs one job. Returning nil completes it; an error retries it
// later, unless the error is Permanent or the attempts are used up. The
// context ends when the lease is lost or the runner is stopped hard.
type Handler func(ctx context.Context, j Job) error

// Options tune one enqueued job.
type Options struct {
	// RunAt is when the job becomes due; zero means now.
	RunAt time.Time
	// MaxAttempts bounds the runs of the job; zero means DefaultMaxAttempts.
	MaxAttempts int
	// Key deduplicates: at most one pending job exists per key. Enqueueing
	// a key that has a pending job returns that job's id and adds nothing.
	Key string
	// Priority orders due jobs: higher runs first. Transactional work keeps
	// 0; bulk work (campaign mail) goes below it so it never holds up a
	// password reset.
	Priority int
}

// DefaultMaxAttempts is the attempts of a job enqueued without MaxAttempts.
const DefaultMaxAttempts = 8

// Defaults of a new runner; the setters change them before Start.
const (
	// DefaultLease is short (renewed every third of it while a handler
	// runs): a process that dies holds its jobs only this long, and the
	// lease is reaped within maintainEvery (5 s) after, so a survivor
	// takes a dead process's work over within about 20 seconds.
	DefaultLease        = 15 * time.Second
	DefaultPollInterval = time.Second
	DefaultBackoffBase  = 30 * time.Second
	DefaultBackoffMax   = 6 * time.Hour
)

// ErrLeaseLost is returned by Complete when the job is no longer leased to
// the claim that ran it (its lease expired and another worker took it, or it
// was already completed).
var ErrLeaseLost = errors.New("jobs: lease lost")

// Runner claims due jobs and runs their handlers.
type Runner struct {
	db    *store.DB
	clock clock.Clock
	log   *slog.Logger
	owner string

	mu            sync.Mutex
	handlers      map[string]Handler
	kinds         []string
	periodic      map[string]time.Duration
	lease         time.Duration
	poll          time.Duration
	backoffBase   time.Duration
	backoffMax    time.Duration
	started       bool
	stopped       bool
	stopping      chan struct{}
	hardCtx       context.Context
	hardCancel    context.CancelFunc
	lastMaintain  time.Time
	maintainEvery time.Duration

	wake    chan struct{}
	wg      sync.WaitGroup
	running atomic.Int64
}

// NewRunner returns a runner on db. Register handlers (Handle, Every)
// before Start.
func NewRunner(db *store.DB, c clock.Clock, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "steward"
	}
	return &Runner{
		db:            db,
		clock:         c,
		log:           log.With("component", "jobs"),
		owner:         fmt.Sprintf("%s:%d:%s", host, os.Getpid(), newID()[:8]),
		handlers:      map[string]Handler{},
		periodic:      map[string]time.Duration{},
		lease:         DefaultLease,
		poll:          DefaultPollInterval,
		backoffBase:   DefaultBackoffBase,
		backoffMax:    DefaultBackoffMax,
		maintainEvery: 5 * time.Second,
		stopping:      make(chan struct{}),
		wake:          make(chan struct{}, 64),
	}
}

// Owner is the lease owner id of this runner, as stored in jobs.lease_owner.
func (r *Runner) Owner() string { return r.owner }

// SetLease sets how long a claim holds a job without renewal. A handler's
// lease is renewed every third of it while it runs.
func (r *Runner) SetLease(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d > 0 {
		r.lease = d
	}
}

// SetPollInterval sets how often idle workers look for due jobs (Wake
// nudges them sooner), and so how often expired leases are reaped (every
// ten polls, at most every 5 s).
func (r *Runner) SetPollInterval(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d > 0 {
		r.poll = d
		r.maintainEvery = min(10*d, 5*time.Second)
	}
}

// SetBackoff sets the delay before the first retry (doubled for each later
// one) and its cap.
func (r *Runner) SetBackoff(base, max time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if base > 0 {
		r.backoffBase = base
	}
	if max >= r.backoffBase {
		r.backoffMax = max
	}
}

var kindRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

// Handle registers the handler of a kind. A runner claims only the kinds it
// has handlers for, so processes may split work between them.
func (r *Runner) Handle(kind string, h Handler) {
	if !kindRE.MatchString(kind) {
		panic(fmt.Sprintf("jobs: invalid kind %q", kind))
	}
	if h == nil {
		panic("jobs: nil handler for " + kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.handlers[kind]; dup {
		panic("jobs: kind " + kind + " registered twice")
	}
	r.handlers[kind] = h
	r.kinds = append(r.kinds, kind)
	sort.Strings(r.kinds)
}

// Every makes kind a periodic task: one instance is kept scheduled across
// all processes (deduplicated by the key "every:KIND"), the first due at
// once, each next one interval after the previous run was due. Its handler
// is registered with Handle as usual and receives a null payload.
func (r *Runner) Every(kind string, interval time.Duration) {
	if !kindRE.MatchString(kind) {
		panic(fmt.Sprintf("jobs: invalid kind %q", kind))
	}
	if interval <= 0 {
		panic("jobs: interval of " + kind + " must be positive")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.periodic[kind] = interval
}

func periodicKey(kind string) string { return "every:" + kind }

// Enqueue adds a job of kind with payload marshalled as JSON. When q is a
// transaction the job exists only if it commits. Payloads must carry ids,
// never personal values: they are not personal data in the registry and
// are not erased with a subject. Call Wake after the commit to have a
// worker of this process take it at once.
func (r *Runner) Enqueue(ctx context.Context, q store.Q, kind string, payload any, o Options) (string, error) {
	if !kindRE.MatchString(kind) {
		return "", fault.New(fault.Invalid, "jobs: invalid job kind %q", kind)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("jobs: marshal %s payload: %w", kind, err)
	}
	if o.MaxAttempts < 0 || o.MaxAttempts > 1000 {
		return "", fault.New(fault.Invalid, "jobs: max attempts must be between 1 and 1000")
	}
	if len(o.Key) > 200 {
		return "", fault.New(fault.Invalid, "jobs: dedupe key longer than 200 bytes")
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	now := r.clock.Now()
	if o.RunAt.IsZero() {
		o.RunAt = now
	}
	o.RunAt = o.RunAt.UTC().Truncate(time.Microsecond)
	return insertJob(ctx, q, kind, body, o, now)
}

// Wake nudges this process's idle workers to look for due jobs now.
func (r *Runner) Wake() {
	for range cap(r.wake) {
		select {
		case r.wake <- struct{}{}:
		default:
			return
		}
	}
}

// Start launches workers that poll for due jobs until ctx ends or Stop is
// called. It returns at once; a second call does nothing.
func (r *Runner) Start(ctx context.Context, workers int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return
	}
	r.started = true
	if workers < 1 {
		workers = 1
	}
	// Handlers outlive a cancelled start context so that Stop can drain
	// them; only Stop's own deadline cancels them.
	r.hardCtx, r.hardCancel = context.WithCancel(context.WithoutCancel(ctx))
	for range workers {
		r.wg.Add(1)
		go r.worker(ctx)
	}
	r.log.Info("jobs: runner started", "owner", r.owner, "workers", workers, "kinds", len(r.kinds))
}

// Stop makes the workers take no new job and waits for the running ones to
// finish. When ctx ends first, the running handlers' contexts are cancelled
// and Stop returns an error.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	if !r.started || r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	close(r.stopping)
	r.mu.Unlock()

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.hardCancel()
		r.log.Info("jobs: runner stopped", "owner", r.owner)
		return nil
	case <-ctx.Done():
		n := r.running.Load()
		r.hardCancel()
		return fmt.Errorf("jobs: stop: %d job(s) still running: %w", n, ctx.Err())
	}
}

// RunDue claims and runs every job due now, one after another, and returns
// how many it ran (failed runs included). Jobs that a run schedules for
// later are left for later (a handler that keeps enqueueing due work keeps
// it running). For tests and the CLI.
func (r *Runner) RunDue(ctx context.Context) (int, error) {
	if err := r.maintain(ctx); err != nil {
		return 0, err
	}
	n := 0
	for {
		j, ok, err := r.claim(ctx)
		if err != nil {
			return n, err
		}
		if !ok {
			return n, nil
		}
		r.execute(ctx, ctx, j)
		n++
	}
}

func (r *Runner) worker(ctx context.Context) {
	defer r.wg.Done()
	// Spread the first polls of many workers and processes.
	poll := r.settings().poll
	if !r.sleep(ctx, time.Duration(rand.Int64N(int64(poll)/4+1))) {
		return
	}
	for {
		select {
		case <-r.stopping:
			return
		case <-ctx.Done():
			return
		default:
		}
		if r.maintenanceDue() {
			if err := r.maintain(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("jobs: maintenance failed", "err", err)
			}
		}
		j, ok, err := r.claim(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("jobs: claim failed", "err", err)
			}
		}
		if ok {
			r.execute(ctx, r.hardCtx, j)
			continue
		}
		// Up to a quarter of jitter keeps processes from polling in step.
		if !r.sleep(ctx, poll+time.Duration(rand.Int64N(int64(poll)/4+1))) {
			return
		}
	}
}

// sleep waits d or until woken; it reports false when the runner stops.
func (r *Runner) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-r.stopping:
		return false
	case <-r.wake:
		return true
	case <-t.C:
		return true
	}
}

type settings struct {
	lease, poll, base, max time.Duration
	kinds                  []string
	periodic               map[string]time.Duration
}

func (r *Runner) settings() settings {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := make(map[string]time.Duration, len(r.periodic))
	for k, v := range r.periodic {
		p[k] = v
	}
	return settings{lease: r.lease, poll: r.poll, base: r.backoffBase, max: r.backoffMax,
		kinds: append([]string(nil), r.kinds...), periodic: p}
}

func (r *Runner) handler(kind string) Handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handlers[kind]
}

func (r *Runner) interval(kind string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.periodic[kind]
}

// maintenanceDue reports whether this runner should reap expired leases and
// re-check its periodic tasks now; one worker at a time does it.
func (r *Runner) maintenanceDue() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.lastMaintain) < r.maintainEvery {
		return false
	}
	r.lastMaintain = now
	return true
}

func (r *Runner) maintain(ctx context.Context) error {
	s := r.settings()
	now := r.clock.Now()
	if err := reap(ctx, r.db, now); err != nil {
		return err
	}
	kinds := make([]string, 0, len(s.periodic))
	for k := range s.periodic {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		if err := ensurePeriodic(ctx, r.db, kind, now); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) claim(ctx context.Context) (Job, bool, error) {
	s := r.settings()
	if len(s.kinds) == 0 {
		return Job{}, false, nil
	}
	now := r.clock.Now()
	j, ok, err := claimJob(ctx, r.db, r.owner, s.kinds, now, now.Add(s.lease))
	if err != nil || !ok {
		return j, ok, err
	}
	j.lease = &lease{owner: r.owner}
	return j, true, nil
}

// execute runs a claimed job and records its outcome. The bookkeeping
// queries run even when the handler's context was cancelled, so a hard stop
// still records the failure.
func (r *Runner) execute(ctx, handlerParent context.Context, j Job) {
	r.running.Add(1)
	defer r.running.Add(-1)
	start := time.Now()
	err := r.call(handlerParent, j)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	log := r.log.With("job", j.ID, "kind", j.Kind, "attempt", j.Attempt)
	if err == nil {
		// Deleting the job and scheduling a periodic task's next run commit
		// together, so no other process ever sees the task unscheduled.
		var lost bool
		cerr := r.db.InTx(bctx, func(tx *sql.Tx) error {
			var err error
			lost, err = r.complete(bctx, tx, j)
			return err
		})
		switch {
		case cerr != nil:
			log.Error("jobs: record completion failed", "err", cerr)
		case lost && !j.lease.completed.Load():
			log.Warn("jobs: job finished after its lease was lost; it may run again")
		default:
			log.Debug("jobs: job done", "ms", time.Since(start).Milliseconds())
		}
		return
	}
	s := r.settings()
	msg := ErrorText(err)
	if IsPermanent(err) || j.Attempt >= j.MaxAttempts {
		if ferr := r.kill(bctx, j, msg); ferr != nil {
			log.Error("jobs: record dead job failed", "err", ferr)
		}
		log.Warn("jobs: job dead", "err", msg)
		return
	}
	delay := backoff(s.base, s.max, j.Attempt)
	if d, ok := retryDelay(err); ok {
		delay = d
	}
	if ferr := retryJob(bctx, r.db, j, r.clock.Now(), delay, msg); ferr != nil {
		log.Error("jobs: record failure failed", "err", ferr)
		return
	}
	log.Info("jobs: job failed, will retry", "err", msg, "retry_in", delay.Round(time.Second).String())
}

// call runs the handler with a renewed lease and turns a panic into an
// error.
func (r *Runner) call(parent context.Context, j Job) (err error) {
	h := r.handler(j.Kind)
	if h == nil {
		return Permanent(fmt.Errorf("jobs: no handler for kind %s", j.Kind))
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stop := r.heartbeat(ctx, cancel, j)
	defer stop()
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("jobs: handler panicked", "job", j.ID, "kind", j.Kind, "stack", string(debug.Stack()))
			err = fmt.Errorf("jobs: handler panicked: %v", p)
		}
	}()
	return h(ctx, j)
}

// heartbeat renews the job's lease while its handler runs and cancels the
// handler when the lease is lost, so work stops before someone else
// repeats it.
func (r *Runner) heartbeat(ctx context.Context, cancel context.CancelFunc, j Job) (stop func()) {
	d := r.settings().lease
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				ok, err := renewLease(ctx, r.db, j, r.clock.Now().Add(d))
				if err != nil {
					r.log.Warn("jobs: lease renewal failed", "job", j.ID, "err", err)
					continue
				}
				if !ok {
					r.log.Warn("jobs: lease lost while running; cancelling", "job", j.ID, "kind", j.Kind)
					cancel()
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// Complete finishes j within q, typically the transaction in which the
// handler records its effect, so the effect and the completion commit
// together. It returns ErrLeaseLost when the job is no longer this claim's
// (then the transaction should still commit only what is safe to commit
// twice). The handler returns nil afterwards; if the transaction rolls
// back, the runner completes the job itself.
func (r *Runner) Complete(ctx context.Context, q store.Q, j Job) error {
	if j.lease == nil {
		return errors.New("jobs: complete: job was not claimed by a runner")
	}
	lost, err := r.complete(ctx, q, j)
	if err != nil {
		return err
	}
	if lost {
		return ErrLeaseLost
	}
	j.lease.completed.Store(true)
	return nil
}

func (r *Runner) complete(ctx context.Context, q store.Q, j Job) (lost bool, err error) {
	if j.lease == nil {
		return true, nil
	}
	ok, err := deleteClaimed(ctx, q, j)
	if err != nil || !ok {
		return !ok, err
	}
	return false, r.scheduleNext(ctx, q, j)
}

func (r *Runner) kill(ctx context.Context, j Job, msg string) error {
	return r.db.InTx(ctx, func(tx *sql.Tx) error {
		ok, err := markDead(ctx, tx, j, r.clock.Now(), msg)
		if err != nil || !ok {
			return err
		}
		return r.scheduleNext(ctx, tx, j)
	})
}

// scheduleNext keeps a periodic task going after a run that completed or
// died: the next run is due one interval after this one was, or now when
// that has passed already.
func (r *Runner) scheduleNext(ctx context.Context, q store.Q, j Job) error {
	iv := r.interval(j.Kind)
	if iv == 0 {
		return nil
	}
	now := r.clock.Now()
	next := j.RunAt.Add(iv)
	if next.Before(now) {
		next = now
	}
	return schedulePeriodic(ctx, q, j.Kind, next.UTC().Truncate(time.Microsecond), now)
}
