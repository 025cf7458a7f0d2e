package app

import (
	"context"
	"flag"
	"testing"
)

// STEWARD_SQLITE_SYNCHRONOUS reaches the database through the environment
// the process was given, not through the process's own.
func TestSQLiteSynchronousFromGivenEnvironment(t *testing.T) {
	t.Setenv("STEWARD_SQLITE_SYNCHRONOUS", "OFF")
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	f := NewFlags(fs, false)
	if err := fs.Parse([]string{"--data-dir", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Config(func(k string) string {
		if k == "STEWARD_SQLITE_SYNCHRONOUS" {
			return "FULL"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got int
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != 2 {
		t.Errorf("synchronous = %d, want 2 (FULL, as the given environment says)", got)
	}
}
