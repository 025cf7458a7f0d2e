package web_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"steward/examples"
	"steward/internal/app"
)

// Helpers shared by the end-to-end tests of issue 4: a whole Steward
// started through internal/app, as `steward serve` starts it.

// policyWithOrigins returns an example policy whose demo site accepts the
// given origins (the example lists http://127.0.0.1:8080 only).
func policyWithOrigins(t testing.TB, name string, origins ...string) string {
	t.Helper()
	raw, err := fs.ReadFile(examples.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	old := "origins: [http://127.0.0.1:8080, http://localhost:8080]"
	if !bytes.Contains(raw, []byte(old)) {
		t.Fatalf("%s no longer lists the demo origins as %q", name, old)
	}
	raw = bytes.Replace(raw, []byte(old), []byte("origins: ["+strings.Join(origins, ", ")+"]"), 1)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type steward struct {
	app  *app.App
	url  string
	stop func()
}

// startSteward opens and serves Steward on a free loopback port until the
// test ends.
func startSteward(t testing.TB, cfg app.Config, log *slog.Logger) *steward {
	t.Helper()
	return startStewardWith(t, cfg, log, app.Options{})
}

// startStewardWith is startSteward with options, such as a fake clock.
func startStewardWith(t testing.TB, cfg app.Config, log *slog.Logger, opt app.Options) *steward {
	t.Helper()
	return startStewardEnv(t, cfg, log, opt, func(string) string { return "" })
}

// startStewardEnv is startStewardWith with the process environment
// Steward reads (the secrets the policy names).
func startStewardEnv(t testing.TB, cfg app.Config, log *slog.Logger, opt app.Options, getenv func(string) string) *steward {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Open(ctx, cfg, getenv, log, opt)
	if err != nil {
		cancel()
		t.Fatalf("app.Open: %v", err)
	}
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, io.Discard, func(u string) { urls <- u }) }()
	s := &steward{app: a}
	select {
	case s.url = <-urls:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("steward did not start in 30 s")
	}
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
		a.Close()
	}
	t.Cleanup(s.stop)
	return s
}
