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
	"net/url"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"steward/examples"
	"steward/internal/app/services"
	"steward/internal/clock"
	"steward/internal/content"
	"steward/internal/door"
	"steward/internal/identity"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/retention"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/support"
	"steward/internal/web"
)

// LoadPolicy reads the policy file, or the embedded default when path is
// empty. A path "embedded:NAME" names one of the embedded examples.
func LoadPolicy(path string) (*policy.Policy, error) {
	name, data, err := readPolicy(path)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Parse(name, data)
	if err != nil {
		return nil, err
	}
	// The sweep must be able to apply every retention the policy states.
	reg, err := schema.Registry()
	if err != nil {
		return nil, err
	}
	if err := retention.Check(pol, reg); err != nil {
		return nil, err
	}
	return pol, nil
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

// App is a running Steward's parts: its services and the web layer on
// top of them.
type App struct {
	*services.Services
	Config  Config
	Handler http.Handler

	getenv func(string) string // the process's environment, for Serve
}

// Options adjust Open for tests.
type Options struct {
	Clock clock.Clock
	// Identity, when set, may lower argon2id cost for fast tests.
	Identity func(*identity.Deps)
}

// DevKey reports whether Steward may create (or use) a master key in the
// data directory: in --dev, or on the embedded database listening on
// loopback only (the README's first command), never in production. A
// command that listens on nothing (users create-staff, requests, keys)
// on the embedded database uses the same key serve made there.
func (c Config) DevKey() bool {
	return c.Dev || (c.DatabaseURL == "" && (c.Addr == "" || c.LoopbackOnly()))
}

// Open builds every part of Steward from the config, ready to serve.
func Open(ctx context.Context, cfg Config, getenv func(string) string, log *slog.Logger, opt Options) (*App, error) {
	clk := opt.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	pol, err := LoadPolicy(cfg.PolicyPath)
	if err != nil {
		return nil, err
	}
	db, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	master, err := door.LoadMaster(getenv, cfg.KeyFile, cfg.DataDir, cfg.DevKey(), log)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, getenv: getenv}
	if a.Services, err = services.Build(ctx, db, pol, master, clk, log, services.Config{
		BaseURL: cfg.BaseURL, DefaultBase: "http://" + cfg.Addr, SMTPURL: cfg.SMTPURL, MailFrom: cfg.MailFrom,
		DataDir: cfg.DataDir, ServesDemo: a.servesDemo(), GeoIPPath: cfg.GeoIPPath,
		BlobURL: cfg.BlobURL, S3AccessKey: cfg.S3AccessKey, S3SecretKey: cfg.S3SecretKey,
		Uploads:        content.Limits{MaxPhoto: cfg.MaxPhotoMB << 20, MaxVideo: cfg.MaxVideoMB << 20},
		SupportAddress: cfg.SupportAddress,
		Support:        support.Limits{MaxFile: cfg.MaxAttachmentMB << 20, MaxRecording: cfg.MaxRecordingMB << 20},
		PaymentSecret:  cfg.PaymentSecret,
		Getenv:         getenv,
	}, services.Options{Identity: opt.Identity}); err != nil {
		return nil, err
	}
	if a.Handler, err = web.New(a.webDeps()); err != nil {
		a.Services.Close(ctx)
		return nil, err
	}
	ok = true
	return a, nil
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
	var desk *mail.Listener
	var deskLn net.Listener
	if a.Config.SMTPListen != "" {
		if desk, err = a.supportListener(); err != nil {
			ln.Close()
			return err
		}
		if deskLn, err = net.Listen("tcp", a.Config.SMTPListen); err != nil {
			ln.Close()
			return fmt.Errorf("listen for mail: %w", err)
		}
	}
	if a.Config.DebugAddr != "" {
		dbg, err := serveDebug(ctx, a.Config.DebugAddr)
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(stdout, "Go's profiler is served on http://%s/debug/pprof/ (loopback only).\n", dbg)
	}
	a.Jobs.Start(ctx, 2)
	go a.Door.Run(ctx)
	errc := make(chan error, 2)
	go func() {
		if a.Config.TLSCert != "" {
			errc <- srv.ServeTLS(ln, a.Config.TLSCert, a.Config.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if desk != nil {
		go func() {
			if err := desk.Serve(deskLn); err != nil {
				errc <- fmt.Errorf("mail listener: %w", err)
			}
		}()
	}
	fmt.Fprintf(stdout, "Steward is running with policy %q (version %d).\nOpen %s/ in a browser (privacy notice: %s/privacy).\n",
		a.Policy.Policy.Controller.Name, a.Policy.Number(), url, url)
	if desk != nil {
		fmt.Fprintf(stdout, "Mail to the support desk (%s) is received by SMTP on %s.\n", a.Config.SupportAddress, deskLn.Addr())
	}
	if !a.Outbox.Configured() {
		fmt.Fprintf(stdout, "No mail relay is configured (--smtp-url): mail, verification links included, is held for staff at %s/admin/outbox.\n", url)
	}
	if a.Config.DevKey() {
		fmt.Fprintf(stdout, "Development set-up. Create the first staff account with:\n  steward users create-staff --data-dir %s --email you@example.org --role admin --password-stdin\n", a.Config.DataDir)
	}
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
	if desk != nil {
		// Before the services close: a message being delivered still
		// writes to the database. A sending server that keeps an idle
		// session open is cut off after a while, leaving the HTTP
		// requests the rest of the time.
		mailCtx, cancelMail := context.WithTimeout(shutdownCtx, 5*time.Second)
		if err := desk.Shutdown(mailCtx); err != nil {
			desk.Close()
		}
		cancelMail()
	}
	err = srv.Shutdown(shutdownCtx)
	if cerr := a.Services.Close(shutdownCtx); cerr != nil && err == nil {
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.Services.Close(ctx)
	return a.DB.Close()
}

// supportListener is the SMTP listener of the support desk: it takes mail
// for the desk's addresses only (asked at each recipient) and hands each
// message to the desk, which threads, opens or holds it. With a TLS
// certificate it offers STARTTLS with it.
func (a *App) supportListener() (*mail.Listener, error) {
	cfg := mail.ListenerConfig{Addr: a.Config.SMTPListen, Log: a.Log}
	if u, err := url.Parse(a.Config.BaseURL); err == nil && u.Hostname() != "" {
		cfg.Domain = u.Hostname()
	}
	if a.Config.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.Config.TLSCert, a.Config.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("mail listener: %w", err)
		}
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	lim := a.Support.MailLimits(a.Config.SMTPTrustedAuthServ)
	return mail.NewListener(cfg,
		func(_ context.Context, env mail.Envelope) error { return a.Support.Accepts(env.Rcpt[len(env.Rcpt)-1]) },
		func(ctx context.Context, env mail.Envelope, raw io.Reader) error {
			return a.Support.Deliver(ctx, env.Rcpt, raw, lim)
		}), nil
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
		Ready:       a.DB.PingContext,
		Clock:       a.Clock,
		Log:         a.Log,
		Metrics:     a.Metrics,
		Policy:      a.Policy,
		Versions:    a.Versions,
		Identity:    a.Identity,
		Audit:       a.Audit,
		Outbox:      a.Outbox,
		Consent:     a.Consent,
		Newsletters: a.Newsletters,
		Notices:     a.Notices,
		Rights:      a.Rights,
		Activity:    a.Activity,
		Analytics:   a.Analytics,
		Content:     a.Content,
		Support:     a.Support,
		Payment:     a.Payment,
		OpenID:      a.OpenID,
		Retention:   a.Retention,
		Disclosure:  a.Disclosure,
		Config: web.Config{
			BaseURL:        a.Config.BaseURL,
			Dev:            a.Config.Dev,
			TrustedProxies: a.Config.TrustedProxies,
			TLS:            a.Config.TLSCert != "",
			DemoDir:        demo,
			MetricsToken:   a.Config.MetricsToken,
		},
	}
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
