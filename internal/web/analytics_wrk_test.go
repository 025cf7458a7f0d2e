package web_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The load test drives the servers with wrk when it is installed (CI
// installs it): a C generator that costs a fraction of the server's CPU
// per request, where the Go client below costs about as much as the
// server and flatters every ratio. The events are the same mix as the Go
// client's, prepared once as raw requests in a Lua script.

// loadDriver sends load to a server's collect endpoint for d.
type loadDriver struct {
	name string
	run  func(url string, d time.Duration) *result
	// inFlight is how many requests a run may leave unanswered when it
	// stops (0: the generator waits for every answer).
	inFlight int64
}

// newLoadDriver picks wrk when it is on the PATH, the Go client
// otherwise (STEWARD_LOADGEN=go forces the Go client).
func newLoadDriver(t *testing.T) loadDriver {
	t.Helper()
	wrk, err := exec.LookPath("wrk")
	if err != nil || os.Getenv("STEWARD_LOADGEN") == "go" {
		return loadDriver{name: "Go client (64 goroutines; costs about as much CPU as the server)",
			run: func(url string, d time.Duration) *result { return drive(url, 64, d, nil) }}
	}
	script := filepath.Join(t.TempDir(), "collect.lua")
	if err := os.WriteFile(script, []byte(wrkScript(4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	return loadDriver{name: "wrk -t2 -c64 (C, event loop)", inFlight: 64, run: func(url string, d time.Duration) *result {
		return driveWrk(t, wrk, script, url, d)
	}}
}

// wrkScript writes n requests of the generator's mix as a Lua table and
// the callbacks that send them in turn and count the answers by status.
func wrkScript(n int) string {
	p := newPayloads()
	r := rand.New(rand.NewPCG(7, 42))
	var b strings.Builder
	b.WriteString("local raw = {\n")
	for range n {
		body, ua, ip := p.event(r, "")
		fmt.Fprintf(&b, "{%q,%q,%q},\n", body, ua, ip)
	}
	b.WriteString(`}
local reqs = {}
local i = 0
c202, c204, cother = 0, 0, 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  for k, v in ipairs(raw) do
    reqs[k] = wrk.format("POST", "/api/v1/collect", {["Content-Type"] = "text/plain;charset=UTF-8", ["Origin"] = "` + loadOrigin + `",
      ["User-Agent"] = v[2], ["X-Forwarded-For"] = v[3]}, v[1])
  end
  i = math.random(#reqs)
end
function request() i = i % #reqs + 1; return reqs[i] end
function response(status, headers, body)
  if status == 202 then c202 = c202 + 1 elseif status == 204 then c204 = c204 + 1 else cother = cother + 1 end
end
function done(summary, latency, requests)
  local a, n, o = 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("c202"); n = n + t:get("c204"); o = o + t:get("cother") end
  io.write(string.format("STATUSES %d %d %d %d\n", a, n, o, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("LATENCY %d %d\n", latency:percentile(50), latency:percentile(99)))
end
`)
	return b.String()
}

// driveWrk runs wrk against url's collect endpoint for d and reads its
// counts, rate and latency percentiles.
func driveWrk(t *testing.T, wrk, script, url string, d time.Duration) *result {
	out, err := exec.Command(wrk, "-t2", "-c64", "-d"+strconv.Itoa(int(d.Round(time.Second)/time.Second))+"s", "--timeout", "10s",
		"-s", script, url+"/api/v1/collect").CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	res := &result{}
	var sockErrs int64
	var p50, p99 int64
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 5 && f[0] == "STATUSES":
			res.accepted, _ = strconv.ParseInt(f[1], 10, 64)
			res.noContent, _ = strconv.ParseInt(f[2], 10, 64)
			res.other, _ = strconv.ParseInt(f[3], 10, 64)
			sockErrs, _ = strconv.ParseInt(f[4], 10, 64)
		case len(f) == 3 && f[0] == "LATENCY":
			p50, _ = strconv.ParseInt(f[1], 10, 64)
			p99, _ = strconv.ParseInt(f[2], 10, 64)
		case len(f) >= 5 && f[1] == "requests" && f[2] == "in":
			secs, err := time.ParseDuration(strings.TrimSuffix(f[3], ","))
			if err == nil {
				res.seconds = secs.Seconds()
			}
		}
	}
	if res.seconds == 0 {
		t.Fatalf("wrk printed no summary:\n%s", out)
	}
	res.other += sockErrs
	res.requests = res.accepted + res.noContent + res.other
	res.turnP50 = append(res.turnP50, time.Duration(p50)*time.Microsecond)
	res.turnP99 = append(res.turnP99, time.Duration(p99)*time.Microsecond)
	return res
}

// turnPercentile is a percentile when only each turn's are known (wrk):
// the median of the turns' p50, the worst of their p99.
func turnPercentile(p50s, p99s []time.Duration, p float64) time.Duration {
	if p >= 0.99 {
		if len(p99s) == 0 {
			return 0
		}
		return slices.Max(p99s)
	}
	if len(p50s) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(p50s))
	return s[len(s)/2]
}
