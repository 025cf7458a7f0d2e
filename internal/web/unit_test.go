package web

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"steward/internal/fault"
)

func TestStatusOfEveryCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   fault.Code
		status int
	}{
		{fault.Invalid, 422},
		{fault.NotFound, 404},
		{fault.Unauthorized, 401},
		{fault.Forbidden, 403},
		{fault.Conflict, 409},
		{fault.PurposeDenied, 403},
		{fault.RateLimited, 429},
		{fault.TooLarge, 413},
		{fault.Unsupported, 415},
		{fault.ReauthNeeded, 403},
		{fault.InsecureTransport, 403},
		{fault.Internal, 500},
	}
	for _, tt := range tests {
		p := problemOf(fault.New(tt.code, "message for %s", tt.code))
		if p.Status != tt.status {
			t.Errorf("%s: status = %d, want %d", tt.code, p.Status, tt.status)
		}
		if want := problemTypeBase + string(tt.code); p.Type != want {
			t.Errorf("%s: type = %q, want %q", tt.code, p.Type, want)
		}
		if p.Title == "" {
			t.Errorf("%s: no title", tt.code)
		}
	}
}

func TestProblemHidesInternalErrors(t *testing.T) {
	t.Parallel()
	secret := errors.New("pq: relation accounts: password=hunter2")
	for _, err := range []error{secret, fault.Wrap(fault.Internal, secret, "boom at row 7"), fmt.Errorf("identity: %w", secret)} {
		p := problemOf(err)
		if p.Status != 500 || strings.Contains(p.Detail, "hunter2") || strings.Contains(p.Detail, "row 7") {
			t.Errorf("problemOf(%v) = %+v, want a generic 500", err, p)
		}
	}
	wrapped := fmt.Errorf("web: %w", fault.FieldError("email", "not an address"))
	if p := problemOf(wrapped); p.Status != 422 || p.Field != "email" || p.Detail != "not an address" {
		t.Errorf("problemOf(wrapped field error) = %+v", p)
	}
}

type lockedErr struct{ d time.Duration }

func (e lockedErr) Error() string             { return "locked" }
func (e lockedErr) RetryAfter() time.Duration { return e.d }
func (e lockedErr) Unwrap() error             { return fault.New(fault.RateLimited, "too many attempts") }

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{fault.New(fault.RateLimited, "slow down"), "60"},
		{lockedErr{90*time.Second + time.Millisecond}, "91"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		p := problemOf(tt.err)
		setProblemHeaders(w, p, tt.err)
		if p.Status != 429 {
			t.Fatalf("status = %d, want 429", p.Status)
		}
		if got := w.Header().Get("Retry-After"); got != tt.want {
			t.Errorf("Retry-After = %q, want %q", got, tt.want)
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
		Inner struct {
			Flag bool `json:"flag"`
		} `json:"inner"`
	}
	tests := []struct {
		name        string
		ctype, body string
		status      int // 0 = success
		field       string
	}{
		{"ok", "application/json", `{"name":"a","count":2}`, 0, ""},
		{"ok with charset", "application/json; charset=utf-8", `{"name":"a"}`, 0, ""},
		{"no content type", "", `{"name":"a"}`, 415, ""},
		{"form content type", "application/x-www-form-urlencoded", `name=a`, 415, ""},
		{"latin1", "application/json; charset=iso-8859-1", `{"name":"a"}`, 415, ""},
		{"empty", "application/json", ``, 400, ""},
		{"whitespace", "application/json", "  \n", 400, ""},
		{"array", "application/json", `[1,2]`, 400, ""},
		{"null", "application/json", `null`, 400, ""},
		{"malformed", "application/json", `{"name":`, 400, ""},
		{"syntax", "application/json", `{"name" "a"}`, 400, ""},
		{"wrong type", "application/json", `{"name":5}`, 400, "name"},
		{"wrong nested type", "application/json", `{"inner":{"flag":"yes"}}`, 400, "inner.flag"},
		{"unknown field", "application/json", `{"name":"a","admin":true}`, 400, "admin"},
		{"trailing object", "application/json", `{"name":"a"}{"name":"b"}`, 400, ""},
		{"trailing garbage", "application/json", `{"name":"a"} x`, 400, ""},
		{"invalid utf-8", "application/json", "{\"name\":\"\xff\xfe\"}", 400, ""},
		{"too large", "application/json", `{"name":"` + strings.Repeat("a", 2000) + `"}`, 413, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			w := httptest.NewRecorder()
			r.Body = http.MaxBytesReader(w, r.Body, 1000)
			var v body
			err := decode(r, &v)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("decode accepted %q", tt.body)
			}
			p := problemOf(err)
			if p.Status != tt.status || p.Field != tt.field {
				t.Errorf("problem = %d field %q (%s), want %d field %q", p.Status, p.Field, p.Detail, tt.status, tt.field)
			}
		})
	}
}

func TestLocalPath(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"/account":              "/account",
		"/account?x=1":          "/account?x=1",
		"":                      "",
		"https://evil.example/": "",
		"//evil.example/":       "",
		"/\\evil.example":       "",
		"account":               "",
		"/a\r\nSet-Cookie: x=1": "",
		"javascript:alert(1)":   "",
	}
	for in, want := range tests {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClientBehindProxies(t *testing.T) {
	t.Parallel()
	s := &server{d: Deps{Config: Config{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}}}}
	tests := []struct {
		name   string
		remote string
		hdr    map[string]string
		tls    bool
		ip     string
		https  bool
	}{
		{"direct", "203.0.113.9:5555", nil, false, "203.0.113.9", false},
		{"direct tls", "203.0.113.9:5555", nil, true, "203.0.113.9", true},
		{"untrusted peer XFF ignored", "203.0.113.9:5555",
			map[string]string{"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"}, false, "203.0.113.9", false},
		{"untrusted peer Forwarded ignored", "203.0.113.9:5555",
			map[string]string{"Forwarded": "for=198.51.100.1;proto=https"}, false, "203.0.113.9", false},
		{"trusted peer XFF", "10.0.0.5:80",
			map[string]string{"X-Forwarded-For": "198.51.100.1", "X-Forwarded-Proto": "https"}, false, "198.51.100.1", true},
		{"client cannot prepend its own XFF", "10.0.0.5:80",
			map[string]string{"X-Forwarded-For": "1.1.1.1, 198.51.100.1"}, false, "198.51.100.1", false},
		{"chain of trusted proxies", "10.0.0.5:80",
			map[string]string{"X-Forwarded-For": "198.51.100.1, 10.1.1.1", "X-Forwarded-Proto": "https, http"}, false, "198.51.100.1", true},
		{"garbage XFF keeps peer", "10.0.0.5:80",
			map[string]string{"X-Forwarded-For": "not-an-ip"}, false, "10.0.0.5", false},
		{"Forwarded ipv6", "[fd00::1]:80",
			map[string]string{"Forwarded": `for="[2001:db8:cafe::17]:4711";proto=https`}, false, "2001:db8:cafe::17", true},
		{"Forwarded chain", "10.0.0.5:80",
			map[string]string{"Forwarded": `for=198.51.100.7;proto=https, for=10.2.2.2;proto=http`}, false, "198.51.100.7", true},
		{"Forwarded unknown stops", "10.0.0.5:80",
			map[string]string{"Forwarded": `for=unknown;proto=https`}, false, "10.0.0.5", false},
		{"mapped ipv4 peer", "[::ffff:203.0.113.9]:5555", nil, false, "203.0.113.9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			c := s.clientOf(r)
			if c.IP.String() != tt.ip || c.HTTPS != tt.https {
				t.Errorf("client = %s https=%v, want %s https=%v", c.IP, c.HTTPS, tt.ip, tt.https)
			}
		})
	}
}

func TestTruncatedNetwork(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"203.0.113.77":        "203.0.113.0/24",
		"2001:db8:cafe:1::17": "2001:db8:cafe::/48",
		"::ffff:203.0.113.77": "::ffff:203.0.113.77/48",
	}
	for in, want := range tests {
		ip := netip.MustParseAddr(in)
		if in == "::ffff:203.0.113.77" {
			// clientOf unmaps before anything is logged.
			ip = ip.Unmap()
			want = "203.0.113.0/24"
		}
		if got := truncatedNetwork(ip); got != want {
			t.Errorf("truncatedNetwork(%s) = %s, want %s", in, got, want)
		}
	}
	if got := truncatedNetwork(netip.Addr{}); got != "" {
		t.Errorf("truncatedNetwork(invalid) = %q", got)
	}
}
