// Package app wires Steward together: it loads the policy, opens and
// migrates the database, publishes the policy version, builds every domain
// service and the HTTP handler, and runs the server and the job runner
// until the context ends. cmd/steward and the end-to-end tests both start
// Steward through here.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"steward/examples"
	"steward/internal/activity"
	"steward/internal/analytics"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/identity"
	"steward/internal/jobs"
	"steward/internal/keys"
	"steward/internal/mail"
	"steward/internal/newsletter"
	"steward/internal/notice"
	"steward/internal/policy"
	"steward/internal/rights"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/subject"
	"steward/internal/web"
)

// LoadPolicy reads the policy file, or the embedded default when path is
// empty. A path "embedded:NAME" names one of the embedded examples.
func LoadPolicy(path string) (*policy.Policy, error) {
	name, data, err := readPolicy(path)
	if err != nil {
		return nil, err
	}
	return policy.Parse(name, data)
}

func readPolicy(path string) (string, []byte, error) {
	if path == "" {
		path = "embedded:" + examples.DefaultPolicy
	}
	if len(path) > 9 && path[:9] == "embedded:" {
		name := path[9:]
		data, err := fs.ReadFile(examples.FS, name)
		if err != nil {
			return "", nil, fmt.Errorf("no embedded policy %q (have jmir.yaml, mixi.yaml)", name)
		}
		return "examples/" + name, data, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("read policy: %w", err)
	}
	return path, data, nil
}

// OpenStore opens and migrates the database the config names.
func OpenStore(ctx context.Context, cfg Config) (*store.DB, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir, store.SQLiteSynchronous(cfg.SQLiteSynchronous))
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx, schema.Migrations()); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.CheckSchema(ctx, schema.Migrations()); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// App is a running Steward's parts.
type App struct {
	Config   Config
	Log      *slog.Logger
	Clock    clock.Clock
	DB       *store.DB
	Policy   policy.Published // the policy file, as published in the database
	Guard    *policy.Guard    // the guard of the policy in force
	Guards   *policy.Guards   // the guard for each subject
	Master   *keys.Master
	Keys     *keys.Keyring
	Subjects *subject.Store
	Audit    *audit.Log
	Jobs     *jobs.Runner
	Outbox   *mail.Outbox
	Identity *identity.Service
	// The consent ledger, newsletters, and policy-change and broadcast
	// notices.
	Consent     *consent.Ledger
	Newsletters *newsletter.Service
	Notices     *notice.Service
	Rights      *rights.Service // rights requests, export and erasure
	// Cookieless collection and the reports read from it.
	Activity  *activity.Collector
	Analytics *analytics.Service
	Metrics   *prometheus.Registry
	Handler   http.Handler

	getenv func(string) string // the process's environment, for Serve
}

// Options adjust Open for tests.
type Options struct {
	Clock clock.Clock
	// PasswordParams, when set, lowers argon2id cost for fast tests.
	Identity func(*identity.Deps)
}

// DevKey reports whether Steward may create a master key in the data
// directory: in --dev, or on the embedded database listening on loopback
// only (the README's first command), never in production.
func (c Config) DevKey() bool {
	return c.Dev || (c.DatabaseURL == "" && c.LoopbackOnly())
}

// Open builds every part of Steward from the config, ready to serve.
func Open(ctx context.Context, cfg Config, getenv func(string) string, log *slog.Logger, opt Options) (*App, error) {
	a := &App{Config: cfg, Log: log, Clock: opt.Clock, getenv: getenv}
	if a.Clock == nil {
		a.Clock = clock.Real{}
	}
	pol, err := LoadPolicy(cfg.PolicyPath)
	if err != nil {
		return nil, err
	}
	db, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.DB = db
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	if a.Master, err = keys.LoadMaster(getenv, cfg.KeyFile, cfg.DataDir, cfg.DevKey(), log); err != nil {
		return nil, err
	}
	a.Audit = audit.New(db, a.Clock)
	if err := a.publishPolicy(ctx, pol); err != nil {
		return nil, err
	}
	a.Guards = policy.NewGuards(db, a.Policy, a.Audit, log)
	a.Guard = a.Guards.Current()
	a.Keys = keys.NewKeyring(db, a.Master, a.Clock)
	a.Subjects = subject.NewStore(db, a.Clock)
	a.Jobs = jobs.NewRunner(db, a.Clock, log)
	if a.Outbox, err = mail.NewOutbox(db, a.Clock, a.Jobs, mail.Config{SMTPURL: cfg.SMTPURL, From: cfg.MailFrom}, log); err != nil {
		return nil, err
	}
	deps := identity.Deps{
		DB: db, Clock: a.Clock, Log: log, Subjects: a.Subjects, Keys: a.Keys, Audit: a.Audit,
		Outbox: a.Outbox, Jobs: a.Jobs, Policy: a.Policy, BaseURL: cfg.BaseURL,
		Config: identity.Config{Secret: a.Master.Derive("identity throttle v1", 32)},
	}
	if opt.Identity != nil {
		opt.Identity(&deps)
	}
	if a.Identity, err = identity.New(deps); err != nil {
		return nil, err
	}
	if err := a.openConsent(ctx); err != nil {
		return nil, err
	}
	if err := a.openRights(); err != nil {
		return nil, err
	}
	a.Metrics = prometheus.NewRegistry()
	a.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.openAnalytics(ctx); err != nil {
		return nil, err
	}
	if a.Handler, err = web.New(a.webDeps()); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// publishPolicy publishes the policy file as version N+1 when its hash
// differs from the last published one, and audits the publication.
func (a *App) publishPolicy(ctx context.Context, pol *policy.Policy) error {
	v, published, err := policy.Publish(ctx, a.DB, pol, a.Clock.Now())
	if err != nil {
		return err
	}
	a.Policy = policy.Published{Policy: pol, Version: v}
	if published {
		class := "minor"
		if v.Significant {
			class = "significant"
		}
		a.Log.Info("policy published", "version", v.Number, "hash", v.Hash[:12], "classification", class)
		return a.Audit.Record(ctx, a.DB, audit.Event{Actor: "system", Action: "policy.published",
			Detail: map[string]string{"version": fmt.Sprint(v.Number), "hash": v.Hash, "classification": class}})
	}
	return nil
}

// Serve listens and serves until ctx ends, then shuts down gracefully:
// the listener closes, in-flight requests finish, running jobs drain.
// ready, when not nil, is called with the base URL once listening.
func (a *App) Serve(ctx context.Context, stdout io.Writer, ready func(url string)) error {
	tuneGC(ctx, a.getenv)
	ln, err := net.Listen("tcp", a.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http"
	if a.Config.TLSCert != "" {
		scheme = "https"
	}
	url := scheme + "://" + ln.Addr().String()
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	if a.Config.TLSCert != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	a.Jobs.Start(ctx, 2)
	errc := make(chan error, 1)
	go func() {
		if a.Config.TLSCert != "" {
			errc <- srv.ServeTLS(ln, a.Config.TLSCert, a.Config.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	fmt.Fprintf(stdout, "Steward is running with policy %q (version %d).\nOpen %s/ in a browser (privacy notice: %s/privacy).\n",
		a.Policy.Policy.Controller.Name, a.Policy.Number(), url, url)
	a.Log.Info("serving", "addr", ln.Addr().String(), "database", a.DB.Location)
	if ready != nil {
		ready(url)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if cerr := a.Activity.Close(shutdownCtx); cerr != nil && err == nil {
		err = cerr // events still queued could not be committed in time
	}
	if jerr := a.Jobs.Stop(shutdownCtx); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Close commits the events still queued and releases the database.
func (a *App) Close() error {
	if a.Activity != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Activity.Close(ctx)
	}
	return a.DB.Close()
}

// servesDemo reports whether /demo/ serves the example site: in
// development, or on the embedded default.
func (a *App) servesDemo() bool { return a.Config.Dev || a.Config.PolicyPath == "" }

func (a *App) webDeps() web.Deps {
	var demo fs.FS
	if a.servesDemo() {
		if sub, err := fs.Sub(examples.FS, "site"); err == nil {
			demo = sub
		}
	}
	return web.Deps{
		DB:            a.DB,
		Clock:         a.Clock,
		Log:           a.Log,
		Metrics:       a.Metrics,
		Policy:        a.Policy.Policy,
		PolicyVersion: a.Policy.Number(),
		Identity:      a.Identity,
		Audit:         a.Audit,
		Outbox:        a.Outbox,
		Consent:       a.Consent,
		Newsletters:   a.Newsletters,
		Notices:       a.Notices,
		Rights:        a.Rights,
		Activity:      a.Activity,
		Analytics:     a.Analytics,
		Config: web.Config{
			BaseURL:        a.Config.BaseURL,
			Dev:            a.Config.Dev,
			TrustedProxies: a.Config.TrustedProxies,
			TLS:            a.Config.TLSCert != "",
			DemoDir:        demo,
		},
	}
}

// openConsent builds the consent ledger (receipts signed with an Ed25519
// key derived from the master key), newsletters and notices (which mail
// policy changes to newsletter subscribers too); syncs the policy's
// lists; and announces the version in force when it is a significant
// change not yet announced.
func (a *App) openConsent(ctx context.Context) error {
	signer, err := consent.NewSigner(a.Master.Derive(consent.SigningInfo, 32))
	if err != nil {
		return err
	}
	links, err := consent.NewLinks(a.Master.Derive(consent.LinkInfo, 32), a.Clock)
	if err != nil {
		return err
	}
	baseURL := a.Config.BaseURL
	if baseURL == "" {
		baseURL = "http://" + a.Config.Addr
	}
	if a.Consent, err = consent.New(consent.Deps{DB: a.DB, Clock: a.Clock, Log: a.Log, Subjects: a.Subjects, Audit: a.Audit,
		Signer: signer, Policy: a.Policy, BaseURL: baseURL}); err != nil {
		return err
	}
	if a.Newsletters, err = newsletter.New(newsletter.Deps{DB: a.DB, Clock: a.Clock, Log: a.Log, Policy: a.Policy, Guards: a.Guards,
		Subjects: a.Subjects, Ledger: a.Consent, Links: links, Outbox: a.Outbox, Jobs: a.Jobs, Audit: a.Audit, BaseURL: baseURL}); err != nil {
		return err
	}
	if a.Notices, err = notice.New(notice.Deps{DB: a.DB, Clock: a.Clock, Log: a.Log, Policy: a.Policy, Guards: a.Guards,
		Subjects: a.Subjects, Outbox: a.Outbox, Jobs: a.Jobs, Audit: a.Audit, Directory: notice.SubjectDirectory{Accounts: a.Identity},
		Subscribers: a.Newsletters, BaseURL: baseURL}); err != nil {
		return err
	}
	if err := a.Newsletters.SyncLists(ctx); err != nil {
		return err
	}
	if n, err := a.Notices.Reconcile(ctx); err != nil {
		return err
	} else if n != nil {
		a.Log.Info("policy change announced", "notice", n.ID, "version", n.PolicyVersion)
	}
	return nil
}

// openRights builds the rights service over the whole registry. Its
// erasure ledger is also appended to a file in the data directory, which
// `steward rights reapply` reads after a backup is restored; keep that
// file out of the database's backups.
func (a *App) openRights() error {
	reg, err := schema.Registry()
	if err != nil {
		return err
	}
	cfg := rights.Config{}
	if a.Config.DataDir != "" {
		cfg.LedgerPath = filepath.Join(a.Config.DataDir, "erasure-ledger.jsonl")
	}
	a.Rights, err = rights.New(rights.Deps{DB: a.DB, Clock: a.Clock, Log: a.Log, Policy: a.Policy,
		Registry: reg, Subjects: a.Subjects, Keys: a.Keys, Audit: a.Audit, Outbox: a.Outbox, Jobs: a.Jobs, Accounts: rightsAccounts{a.Identity},
		BaseURL: a.Config.BaseURL, Config: cfg})
	return err
}

// rightsAccounts tells the rights engine what it needs to know about
// accounts, from identity.
type rightsAccounts struct{ identity *identity.Service }

func (r rightsAccounts) AccountOf(ctx context.Context, subjectID string) (rights.Account, error) {
	a, err := r.identity.AccountOf(ctx, subjectID)
	if err != nil {
		return rights.Account{}, err
	}
	return rights.Account{Staff: a.Staff()}, nil
}

// The garbage collector's pacing while serving, unless the operator set
// GOGC or GOMEMLIMIT. With GOGC=200 the heap may grow to three times the
// live data between collections instead of two: under the collect load
// test that cut the server's CPU per event from about 58 to 50 µs, but
// raised peak RSS from about 115 to 160 MB. So a soft memory limit holds
// the heap to gcHeapFloor, or twice the live data once that is larger:
// a small heap gets the cheaper pacing, a large one (a big site's
// unique-visitor keys on SQLite) tends to GOGC=100 rather than to
// collecting all the time near a fixed limit.
const (
	gcPercent   = 200
	gcHeapFloor = 120 << 20
	gcRetune    = 5 * time.Second
)

// tuneGC applies the pacing above until ctx ends. getenv is the process's
// environment, which the runtime read GOGC and GOMEMLIMIT from.
func tuneGC(ctx context.Context, getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	retune := func() {
		metrics.Read(sample)
		limit := int64(gcHeapFloor)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			limit = max(limit, 2*int64(sample[0].Value.Uint64()))
		}
		debug.SetMemoryLimit(limit)
	}
	retune()
	go func() {
		t := time.NewTicker(gcRetune)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				retune()
			}
		}
	}()
}
