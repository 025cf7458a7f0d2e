package web_test

import (
	"os"
	"testing"
	"time"
)

// TestProfileCollect is the profiling companion of TestLoadCollect: with
// STEWARD_LOADPROF=path it starts Steward (STEWARD_LOADPROF_ENGINE=sqlite
// or postgres) with a CPU profile of its first 6 seconds written to path,
// and drives the collect endpoint at concurrency 64 for those 6 seconds.
//
//	STEWARD_LOADPROF=/tmp/collect.prof go test -run TestProfileCollect ./internal/web/
//	go tool pprof -top /tmp/collect.prof
func TestProfileCollect(t *testing.T) {
	path := os.Getenv("STEWARD_LOADPROF")
	if path == "" {
		t.Skip("set STEWARD_LOADPROF=path to profile the collect endpoint under load")
	}
	engine := os.Getenv("STEWARD_LOADPROF_ENGINE")
	if engine == "" {
		engine = "sqlite"
	}
	env, _ := engineEnv(t, engine)
	c := startChild(t, "steward", append(env, "CHILD_CPUPROFILE="+path)...)
	cpu := c.cpu()
	res := drive(c.url, 64, 6500*time.Millisecond, nil)
	cpu = c.cpu() - cpu
	time.Sleep(300 * time.Millisecond) // let the profile be written
	t.Logf("%s: %.0f req/s, p50 %v, p99 %v, server CPU per request %v", engine, res.rate(),
		res.percentile(0.5), res.percentile(0.99), (cpu / time.Duration(max(res.requests, 1))).Round(time.Microsecond))
}
