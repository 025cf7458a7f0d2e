package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A retention no sweep can apply is refused by policy check at its line.
func TestPolicyCheckRefusesUndatedRetention(t *testing.T) {
	raw, err := os.ReadFile("../../examples/jmir.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(raw), "  identity: account-lifetime\n", "  identity: 13 months\n", 1)
	path := filepath.Join(t.TempDir(), "jmir-undated.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "policy", "check", path)
	if err == nil || !strings.Contains(out, "jmir-undated.yaml:240:") || !strings.Contains(out, "no column that dates its rows") {
		t.Fatalf("policy check: %v\n%s", err, out)
	}
}

// retention run --dry-run lists the tables and changes nothing; a real run
// reports what it removed.
func TestRetentionRunCommand(t *testing.T) {
	dir := t.TempDir()
	out, err := runCmd(t, "retention", "run", "--dry-run", "--data-dir", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"would remove", "activity_member_events", "support_requests", "13 months", "rows would remove: 0",
		"activity_daily", "activity_monthly", "day ended, coarsened to months", "ADDED TO"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCmd(t, "retention", "run", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "rows removed: 0; keys destroyed: 0") {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "retention", "sweep"); err == nil {
		t.Error("an unknown subcommand was accepted")
	}
}
