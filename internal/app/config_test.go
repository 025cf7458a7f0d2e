package app

import (
	"context"
	"flag"
	"net/http"
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

// The upload limits and the blob store come from flags or the environment
// given; a limit that is not a number of megabytes is refused.
func TestUploadFlags(t *testing.T) {
	parse := func(args []string, env map[string]string) (Config, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		f := NewFlags(fs, true)
		if err := fs.Parse(args); err != nil {
			return Config{}, err
		}
		return f.Config(func(k string) string { return env[k] })
	}
	cfg, err := parse([]string{"--max-photo-mb", "5"}, map[string]string{"STEWARD_MAX_VIDEO_MB": "100",
		"STEWARD_BLOB_URL": "s3://127.0.0.1:9000/b?tls=false", "STEWARD_S3_ACCESS_KEY": "k", "STEWARD_S3_SECRET_KEY": "s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxPhotoMB != 5 || cfg.MaxVideoMB != 100 || cfg.BlobURL != "s3://127.0.0.1:9000/b?tls=false" || cfg.S3AccessKey != "k" || cfg.S3SecretKey != "s" {
		t.Errorf("config = %+v", cfg)
	}
	for _, bad := range []string{"0", "-1", "lots", "99999999999"} {
		if _, err := parse([]string{"--max-video-mb", bad}, nil); err == nil {
			t.Errorf("--max-video-mb %s accepted", bad)
		}
	}
}

// TestDebugAddr: the profiler listens only on loopback, and when it does
// it answers there.
func TestDebugAddr(t *testing.T) {
	parse := func(v string) (Config, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		f := NewFlags(fs, true)
		if err := fs.Parse([]string{"--debug-addr", v}); err != nil {
			return Config{}, err
		}
		return f.Config(func(string) string { return "" })
	}
	for _, bad := range []string{"0.0.0.0:6060", ":6060", "10.0.0.1:6060", "example.org:6060", "6060"} {
		if _, err := parse(bad); err == nil {
			t.Errorf("--debug-addr %s accepted", bad)
		}
	}
	cfg, err := parse("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := serveDebug(ctx, cfg.DebugAddr)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("profiler: %d", res.StatusCode)
	}
}
