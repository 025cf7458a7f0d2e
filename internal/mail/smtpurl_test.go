package mail

import (
	"strings"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"
)

func TestParseSMTPURL(t *testing.T) {
	cases := []struct {
		url  string
		want smtpConfig
	}{
		{"smtp://relay.example.org", smtpConfig{host: "relay.example.org", port: 587, tls: tlsOpportunistic, timeout: 30 * time.Second}},
		{"smtp://u%40x:p%3Ass@relay.example.org:2525?tls=required", smtpConfig{host: "relay.example.org", port: 2525, user: "u@x", pass: "p:ss", tls: tlsRequired, timeout: 30 * time.Second}},
		{"smtp://127.0.0.1:1025?tls=none", smtpConfig{host: "127.0.0.1", port: 1025, tls: tlsNone, timeout: 30 * time.Second}},
		{"smtps://u:p@smtp.example.org", smtpConfig{host: "smtp.example.org", port: 465, user: "u", pass: "p", tls: tlsImplicit, timeout: 30 * time.Second}},
		{"smtp://u:p@[::1]:25?tls=none&auth=plain&timeout=5s", smtpConfig{host: "::1", port: 25, user: "u", pass: "p", tls: tlsNone, auth: gomail.SMTPAuthPlain, timeout: 5 * time.Second}},
	}
	for _, c := range cases {
		got, err := parseSMTPURL(c.url)
		if err != nil {
			t.Errorf("parseSMTPURL(%q): %v", c.url, err)
			continue
		}
		if got != c.want {
			t.Errorf("parseSMTPURL(%q) = %+v, want %+v", c.url, got, c.want)
		}
		if c.want.pass != "" && strings.Contains(got.String(), c.want.pass+"@") {
			t.Errorf("String() = %q shows the password", got.String())
		}
	}
	for _, bad := range []string{"", "smtp://", "ftp://host", "smtp://host/path", "smtp://host?auth=plain", "smtp://u:p@host?auth=magic", "smtp://host?timeout=-1s"} {
		if _, err := parseSMTPURL(bad); err == nil {
			t.Errorf("parseSMTPURL(%q) accepted", bad)
		}
	}
}
