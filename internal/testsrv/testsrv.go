// Package testsrv runs the real servers some tests need (an S3 gateway,
// Stripe's mock server) as child processes: it finds the binary, starts
// it on a free loopback port, waits until it answers and stops it when
// the test ends. Without the binary a test fails under CI, which installs
// it once per machine, and is skipped elsewhere.
package testsrv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binary finds a program on PATH or where go install puts it; install is
// the command that installs it, for the message of a skip.
func Binary(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	if p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", name); fileExists(p) {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (.ci/run installs it)", name)
	}
	t.Skipf("%s is not installed: %s", name, install)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Server is a running child server.
type Server struct {
	Addr string // host:port on loopback
	out  bytes.Buffer
}

// Output is what the server printed, for a failure message.
func (s *Server) Output() string { return s.out.String() }

// Start runs bin with the arguments args gives for a free loopback
// address (and env added to the environment), then calls ready until it
// reports true or 15 seconds pass. The server is killed when the test ends.
func Start(t testing.TB, bin string, args func(addr string) []string, env []string, ready func(addr string) (bool, error)) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().String()}
	l.Close()
	cmd := exec.Command(bin, args(s.Addr)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok, err := ready(s.Addr)
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up on %s: %v\n%s", filepath.Base(bin), s.Addr, err, s.Output())
		}
	}
}
