package app

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"slices"
	"testing"
)

// The demo page Steward serves itself may send events from Steward's own
// address on any port (the example policies name 8080), and only in the
// modes that serve the demo.
func TestDemoSiteAllowsStewardsOwnOrigin(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"embedded default", Config{Addr: "127.0.0.1:9123", BaseURL: "http://127.0.0.1:9123"}, true},
		{"operator policy, not dev", Config{Addr: "127.0.0.1:9123", BaseURL: "http://127.0.0.1:9123", PolicyPath: "embedded:jmir.yaml"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = t.TempDir()
			tc.cfg.Dev = tc.cfg.PolicyPath == ""
			key := base64.StdEncoding.EncodeToString(make([]byte, 32)) // a test key, outside dev mode
			getenv := func(name string) string {
				if name == "STEWARD_MASTER_KEY" {
					return key
				}
				return ""
			}
			a, err := Open(context.Background(), tc.cfg, getenv, log, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for _, s := range a.Activity.Sites() {
				if s.ID != "demo" {
					continue
				}
				for _, o := range []string{"http://127.0.0.1:9123", "http://localhost:9123"} {
					if got := slices.Contains(s.Origins, o) && s.AllowsOrigin(o); got != tc.want {
						t.Errorf("origin %s allowed = %v, want %v (origins %v)", o, got, tc.want, s.Origins)
					}
				}
				if !s.AllowsOrigin("http://127.0.0.1:8080") {
					t.Error("the policy's own origins are gone")
				}
				return
			}
			t.Fatal("no demo site")
		})
	}
}
