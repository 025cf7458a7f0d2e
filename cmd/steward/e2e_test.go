package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"steward/internal/mail/mailtest"
	"steward/internal/store/storetest"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func noEnv(string) string { return "" }

// server is a Steward started through run, as the binary starts it.
type server struct {
	URL    string
	stdout *syncBuffer
	stderr *syncBuffer
	stop   func() error
}

func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{URL: "http://" + addr, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	done := make(chan error, 1)
	all := append([]string{"serve", "--addr", addr, "--base-url", s.URL}, args...)
	go func() { done <- run(ctx, all, noEnv, strings.NewReader(""), s.stdout, s.stderr) }()
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = fmt.Errorf("server did not stop within 30 s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("server exited early: %v\nstderr:\n%s", err, s.stderr.String())
		default:
		}
		if strings.Contains(s.stdout.String(), s.URL+"/") {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server never said where to point a browser; stdout %q stderr %q", s.stdout.String(), s.stderr.String())
	return nil
}

type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *client) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: bad JSON %q", method, path, raw)
		}
	}
	if out == nil {
		out = map[string]any{"_raw": string(raw)}
	}
	if resp.StatusCode >= 500 {
		c.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (c *client) list(path string) []any {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out any
	json.NewDecoder(resp.Body).Decode(&out)
	switch v := out.(type) {
	case []any:
		return v
	case map[string]any:
		for _, k := range []string{"sessions", "items"} {
			if l, ok := v[k].([]any); ok {
				return l
			}
		}
	}
	c.t.Fatalf("GET %s: want a list, got %v", path, out)
	return nil
}

var tokenRE = regexp.MustCompile(`token=([A-Za-z0-9_\-%]+)`)

func tokenFrom(t *testing.T, link string) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("no token in link %q", link)
	}
	tok, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestFoundationEndToEnd is the foundation's "done when": on each engine a
// person signs up, verifies by the mail received over real SMTP, logs in,
// edits the profile, lists and revokes a session, and afterwards the audit
// log verifies.
func TestFoundationEndToEnd(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--data-dir", dir}
			if engine == "postgres" {
				args = append(args, "--database-url", storetest.PostgresURL(t), "--dev")
			}
			smtp := mailtest.Start(t)
			srv := startServer(t, append(args, "--smtp-url", smtp.URL())...)
			c := &client{t: t, base: srv.URL}

			const email = "ada@example.org"
			const password = "correct horse battery staple 42"
			st, body := c.do("POST", "/api/v1/accounts", map[string]any{"name": "Ada Lovelace", "email": email, "password": password, "age_confirmed": true})
			if st != http.StatusAccepted {
				t.Fatalf("sign-up: %d %v", st, body)
			}
			// The same request for a registered address answers the same.
			st2, body2 := c.do("POST", "/api/v1/accounts", map[string]any{"name": "Someone", "email": email, "password": password + "x", "age_confirmed": true})
			if st2 != st || fmt.Sprint(body2) != fmt.Sprint(body) {
				t.Fatalf("sign-up of a taken address answered %d %v, want %d %v", st2, body2, st, body)
			}

			verify := smtp.WaitFor(t, func(m mailtest.Received) bool {
				return mailtest.SentTo(email)(m) && m.Link(srv.URL+"/verify-email") != ""
			}, 20*time.Second)
			token := tokenFrom(t, verify.Link(srv.URL+"/verify-email"))
			// Following the link with GET must not verify (mail scanners do that).
			resp, err := http.Get(verify.Link(srv.URL + "/verify-email"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if st, b := c.do("POST", "/api/v1/email-verifications/confirm", map[string]any{"token": token}); st >= 300 {
				t.Fatalf("verify: %d %v", st, b)
			}

			st, login := c.do("POST", "/api/v1/sessions", map[string]any{"email": email, "password": password})
			if st != http.StatusCreated {
				t.Fatalf("login: %d %v", st, login)
			}
			c.token = login["token"].(string)
			other := &client{t: t, base: srv.URL}
			_, login2 := other.do("POST", "/api/v1/sessions", map[string]any{"email": email, "password": password})
			other.token = login2["token"].(string)

			st, me := c.do("PATCH", "/api/v1/me", map[string]any{"name": "Ada King"})
			if st != http.StatusOK {
				t.Fatalf("PATCH /me: %d %v", st, me)
			}
			_, me = c.do("GET", "/api/v1/me", nil)
			if !strings.Contains(fmt.Sprint(me), "Ada King") {
				t.Fatalf("GET /me after edit = %v, want the new name", me)
			}

			sessions := c.list("/api/v1/me/sessions")
			if len(sessions) != 2 {
				t.Fatalf("sessions = %d, want 2: %v", len(sessions), sessions)
			}
			var otherID string
			for _, s := range sessions {
				m := s.(map[string]any)
				if cur, _ := m["current"].(bool); !cur {
					otherID, _ = m["id"].(string)
				}
			}
			if otherID == "" {
				t.Fatalf("no non-current session in %v", sessions)
			}
			if st, b := c.do("DELETE", "/api/v1/me/sessions/"+otherID, nil); st >= 300 {
				t.Fatalf("revoke: %d %v", st, b)
			}
			if st, _ := other.do("GET", "/api/v1/me", nil); st != http.StatusUnauthorized {
				t.Fatalf("revoked session still works: %d", st)
			}
			if n := len(c.list("/api/v1/me/sessions")); n != 1 {
				t.Fatalf("sessions after revoke = %d, want 1", n)
			}
			if err := srv.stop(); err != nil {
				t.Fatalf("graceful stop: %v", err)
			}

			var out, errb syncBuffer
			if err := run(context.Background(), append([]string{"audit", "verify"}, args...), noEnv, strings.NewReader(""), &out, &errb); err != nil {
				t.Fatalf("audit verify: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "intact") {
				t.Fatalf("audit verify said %q", out.String())
			}
			for _, secret := range []string{password, email, c.token} {
				if strings.Contains(srv.stderr.String(), secret) {
					t.Errorf("the server log contains a secret or personal value %q", secret)
				}
			}
		})
	}
}
