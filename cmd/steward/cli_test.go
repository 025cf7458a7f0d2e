package main

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"steward/internal/app"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/rights"
	"steward/internal/subject"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb syncBuffer
	err := run(context.Background(), args, noEnv, strings.NewReader(""), &out, &errb)
	return out.String() + errb.String(), err
}

func TestPolicyCheckExamplesPass(t *testing.T) {
	out, err := runCmd(t, "policy", "check", "../../examples/jmir.yaml", "../../examples/mixi.yaml")
	if err != nil {
		t.Fatalf("policy check of the examples failed: %v\n%s", err, out)
	}
	if strings.Count(out, ": ok") != 2 {
		t.Fatalf("output %q, want two ok lines", out)
	}
}

// TestPromiseM3_PartnerCookieContradictionRefused: Mixi's partner cookies
// contradict its no-tracking-cookie promise, and the check says where.
func TestPromiseM3_PartnerCookieContradictionRefused(t *testing.T) {
	out, err := runCmd(t, "policy", "check", "../../internal/policy/testdata/mixi-partner-cookies.yaml")
	if err == nil {
		t.Fatalf("policy check accepted the contradiction:\n%s", out)
	}
	want := "mixi-partner-cookies.yaml:229:"
	if !strings.Contains(out, want) || !strings.Contains(out, "no_tracking_cookies") || !strings.Contains(out, "fix:") {
		t.Fatalf("output lacks %q with the promise and a fix:\n%s", want, out)
	}
}

// A broken policy stops serve with the same messages policy check prints.
func TestServeRefusesBrokenPolicy(t *testing.T) {
	fixture := "../../internal/policy/testdata/mixi-partner-cookies.yaml"
	checkOut, _ := runCmd(t, "policy", "check", fixture)
	_, err := runCmd(t, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--policy", fixture)
	if err == nil {
		t.Fatal("serve started with a broken policy")
	}
	first := strings.SplitN(strings.TrimSpace(checkOut), "\n", 2)[0]
	if !strings.Contains(err.Error(), first) {
		t.Fatalf("serve error %q lacks the check's message %q", err, first)
	}
}

func TestPolicyRenderAndDiff(t *testing.T) {
	for _, format := range []string{"markdown", "html"} {
		out, err := runCmd(t, "policy", "render", "--format", format, "../../examples/jmir.yaml")
		if err != nil {
			t.Fatalf("render %s: %v", format, err)
		}
		if !strings.Contains(out, "JMIR") || len(out) < 2000 {
			t.Fatalf("render %s gave %d bytes without the controller's name", format, len(out))
		}
		if format == "html" && !strings.Contains(out, "<") {
			t.Fatalf("html render is not HTML")
		}
	}
	raw, err := os.ReadFile("../../examples/mixi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Lengthening a retention is a significant change.
	changed := strings.Replace(string(raw), "retention:", "retention:\n  # lengthened below", 1)
	dir := t.TempDir()
	newPath := filepath.Join(dir, "new.yaml")
	os.WriteFile(newPath, []byte(changed), 0o600)
	out, err := runCmd(t, "policy", "diff", "../../examples/mixi.yaml", newPath)
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	if !strings.Contains(strings.ToLower(out), "minor") && !strings.Contains(strings.ToLower(out), "no change") {
		t.Fatalf("a comment-only change was not classified minor/unchanged: %q", out)
	}
	out, err = runCmd(t, "policy", "diff", "../../examples/mixi.yaml", "../../examples/jmir.yaml")
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	if !strings.Contains(strings.ToLower(out), "significant") {
		t.Fatalf("mixi → jmir was not significant: %q", out)
	}
}

func TestUsersCreateStaff(t *testing.T) {
	dir := t.TempDir()
	var out, errb syncBuffer
	err := run(context.Background(), []string{"users", "create-staff", "--data-dir", dir, "--dev", "--email", "dpo@example.org", "--role", "privacy", "--password-stdin"},
		noEnv, strings.NewReader("a long staff passphrase of words\n"), &out, &errb)
	if err != nil {
		t.Fatalf("create-staff: %v\n%s", err, errb.String())
	}
	_, err = runCmd(t, "users", "create-staff", "--data-dir", dir, "--dev", "--email", "x@example.org", "--role", "emperor", "--password-stdin")
	if err == nil {
		t.Fatal("an unknown role was accepted")
	}
}

// TestUsersCreateStaffOnTheDefaultSetUp: the README's first command runs
// serve on the embedded database without --dev; create-staff must work
// there too, with the development key that serve made in the data dir.
func TestUsersCreateStaffOnTheDefaultSetUp(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", dir, "--addr", "127.0.0.1:0"}, noEnv, strings.NewReader(""), &out, &errb)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Open http://") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, errb.String())
	}
	for _, hint := range []string{"/admin/outbox", "users create-staff"} {
		if !strings.Contains(out.String(), hint) {
			t.Errorf("the start banner does not mention %s:\n%s", hint, out.String())
		}
	}
	var cout, cerr syncBuffer
	err := run(context.Background(), []string{"users", "create-staff", "--data-dir", dir, "--email", "admin@example.org", "--role", "admin", "--password-stdin"},
		noEnv, strings.NewReader("a long staff passphrase of words\n"), &cout, &cerr)
	if err != nil {
		t.Fatalf("create-staff on the default set-up: %v\n%s", err, cerr.String())
	}
}

// TestConsentVerifyOffline: a receipt issued by a running deployment
// verifies offline with `steward consent verify`, both against the key
// derived from the master key and against the published public key, and a
// tampered copy fails.
func TestConsentVerifyOffline(t *testing.T) {
	dir := t.TempDir()
	cfg := app.Config{DataDir: dir, Dev: true, Addr: "127.0.0.1:0", BaseURL: "http://127.0.0.1:8080"}
	a, err := app.Open(context.Background(), cfg, noEnv, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := a.Subjects.Create(context.Background(), a.DB, a.Door, door.Subject(), subject.KindEmailOnly, "reader@example.org", "subject", a.Policy.Number())
	if err != nil {
		t.Fatal(err)
	}
	var purpose string
	for _, p := range a.Policy.Policy.ConsentPurposes() {
		purpose = p.ID
		break
	}
	rec, err := a.Consent.Change(context.Background(), consent.Change{SubjectID: sub.ID, Purpose: purpose, State: consent.Given, Method: consent.MethodAPI, CollectionPoint: "/test"})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	receipt := filepath.Join(dir, "receipt.json")
	os.WriteFile(receipt, rec.Receipt, 0o600)
	if out, err := runCmd(t, "consent", "verify", "--data-dir", dir, "--dev", receipt); err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("verify with the derived key: %v %s", err, out)
	}
	pubFile := filepath.Join(dir, "pub.txt")
	os.WriteFile(pubFile, []byte(base64.StdEncoding.EncodeToString(a.Consent.Signer().PublicKey())), 0o600)
	if out, err := runCmd(t, "consent", "verify", "--public-key", pubFile, receipt); err != nil {
		t.Fatalf("verify with the public key: %v %s", err, out)
	}
	tampered := strings.Replace(string(rec.Receipt), purpose, purpose+"x", 1)
	os.WriteFile(receipt, []byte(tampered), 0o600)
	if _, err := runCmd(t, "consent", "verify", "--public-key", pubFile, receipt); err == nil {
		t.Fatal("a tampered receipt verified")
	}
}

func TestKeysRotate(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	_, oldText, _ := door.GenerateMaster()
	_, newText, _ := door.GenerateMaster()
	oldFile, newFile := filepath.Join(t.TempDir(), "old.key"), filepath.Join(t.TempDir(), "new.key")
	os.WriteFile(oldFile, []byte(oldText), 0o600)
	os.WriteFile(newFile, []byte(newText), 0o600)
	open := func(keyFile string) (*app.App, error) {
		return app.Open(ctx, app.Config{DataDir: dir, KeyFile: keyFile, BaseURL: "http://127.0.0.1:8080"}, noEnv, slog.New(slog.DiscardHandler), app.Options{})
	}
	// A member's address, sealed under a data key wrapped by the old master.
	a, err := open(oldFile)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := a.Subjects.Create(ctx, a.DB, a.Door, door.Subject(), subject.KindMember, "rotate@example.org", "test", 1)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if out, err := runCmd(t, "keys", "rotate", "--data-dir", dir, "--key-file", oldFile, "--new-key-file", newFile); err != nil || !strings.Contains(out, "re-wrapped") {
		t.Fatalf("rotate: %v %s", err, out)
	}
	// Under the new master the address opens.
	a, err = open(newFile)
	if err != nil {
		t.Fatal(err)
	}
	sub, err = a.Subjects.Get(ctx, a.DB, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := doortest.Email(t, a.Door, a.DB, sub); got != "rotate@example.org" {
		t.Fatalf("address under the new master = %q", got)
	}
	a.Close()
	// The old master no longer opens it.
	if a, err = open(oldFile); err == nil {
		defer a.Close()
		v, err := a.Door.Subject(ctx, a.DB, door.Subject(), sub.ID)
		if err == nil {
			if _, err = sub.Email(ctx, v); err == nil {
				t.Fatal("the old master still opens a rotated key")
			}
		}
	}
}

// TestRequestsListShow: the staff queue from the command line lists a
// request by due date and shows it, and showing it is audited.
func TestRequestsListShow(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, err := app.Open(ctx, app.Config{DataDir: dir, Dev: true, BaseURL: "http://127.0.0.1:8080"}, noEnv, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	req, err := a.Rights.FileByEmail(ctx, "reader@example.org", rights.Filing{Type: rights.Access}, netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	out, err := runCmd(t, "requests", "list", "--data-dir", dir, "--dev")
	if err != nil || !strings.Contains(out, req.ID) || !strings.Contains(out, "access") {
		t.Fatalf("requests list: %v\n%s", err, out)
	}
	out, err = runCmd(t, "requests", "show", "--data-dir", dir, "--dev", req.ID)
	if err != nil || !strings.Contains(out, `"due_at"`) || !strings.Contains(out, req.ID) {
		t.Fatalf("requests show: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "requests", "show", "--data-dir", dir, "--dev", "r_nosuch"); err == nil {
		t.Fatal("showing an unknown request succeeded")
	}
	db, err := app.OpenStore(ctx, app.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	entries, err := audit.New(db, clock.Real{}).ForSubject(ctx, db, req.SubjectID)
	if err != nil {
		t.Fatal(err)
	}
	read := false
	for _, e := range entries {
		read = read || e.Action == "staff.read"
	}
	if !read {
		t.Fatal("showing a request was not audited as a staff read")
	}
}
