// Package servicestest builds every domain service the way the app does,
// for the tests of one capability: an example policy, a fixed master key,
// a fake clock, cheap argon2id and roomy rate limits, and members signed
// up through the real flow.
package servicestest

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"steward/examples"
	"steward/internal/app/services"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/identity"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
)

// Example parses an example policy file ("jmir.yaml", "mixi.yaml").
func Example(t testing.TB, name string) *policy.Policy {
	t.Helper()
	data, err := fs.ReadFile(examples.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// Build builds the services on db under pol, with cfg (a temporary data
// directory and a base URL when unset) and log (discarded when nil). The
// clock starts on 10 March 2026 at noon UTC. The services close when the
// test ends.
func Build(t testing.TB, db *store.DB, pol *policy.Policy, cfg services.Config, log *slog.Logger) (*services.Services, *clock.Fake) {
	t.Helper()
	master, err := door.NewMaster(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://steward.test"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := clock.NewFake(time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC))
	svc, err := services.Build(context.Background(), db, pol, master, clk, log, cfg, services.Options{Identity: func(d *identity.Deps) {
		d.Config.Argon2 = identity.Argon2{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
		d.Config.Limits = identity.Limits{Window: 15 * time.Minute, LoginAccount: 1000, LoginIP: 1000, SignupAccount: 1000,
			SignupIP: 1000, ResetAccount: 1000, ResetIP: 1000, MemoryPerSec: 1000, MemoryBurst: 1000, MemoryMaxIPs: 1000}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	return svc, clk
}

// Password is the password of the members tests sign up.
const Password = "correct horse battery staple 9"

// UnverifiedMember signs a member up (their address not yet confirmed)
// and returns their subject id.
func UnverifiedMember(t testing.TB, svc *services.Services, email, name string) string {
	t.Helper()
	ctx := context.Background()
	meta := identity.Meta{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: "test"}
	if err := svc.Identity.SignUp(ctx, identity.SignUpInput{Fields: map[string]string{"email": email, "name": name},
		Password: Password, AgeConfirmed: true}, meta); err != nil {
		t.Fatalf("sign up %s: %v", email, err)
	}
	sub, err := svc.Subjects.FindByEmail(ctx, svc.DB, svc.Door, email)
	if err != nil {
		t.Fatal(err)
	}
	return sub.ID
}

var tokenRE = regexp.MustCompile(`token=([A-Za-z0-9_-]+)`)

// Member signs a member up and confirms their address with the link
// mailed to it, and returns their subject id.
func Member(t testing.TB, svc *services.Services, email, name string) string {
	t.Helper()
	ctx := context.Background()
	UnverifiedMember(t, svc, email, name)
	list, err := svc.Outbox.List(ctx, mail.AsRecipient, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if tok := tokenRE.FindStringSubmatch(m.Text); m.To == email && m.Kind == identity.MailVerification && tok != nil {
			if err := svc.Identity.VerifyEmail(ctx, tok[1]); err != nil {
				t.Fatal(err)
			}
			sub, err := svc.Subjects.FindByEmail(ctx, svc.DB, svc.Door, email)
			if err != nil {
				t.Fatal(err)
			}
			return sub.ID
		}
	}
	t.Fatalf("no verification mail to %s", email)
	return ""
}
