package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
