package app

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net"
	"net/smtp"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The support desk's flags and environment variables: the listener needs
// the desk's address, the address must be a plain one, the limits are
// megabytes.
func TestSupportFlags(t *testing.T) {
	parse := func(args []string, env map[string]string) (Config, error) {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		f := NewFlags(fs, true)
		if err := fs.Parse(args); err != nil {
			return Config{}, err
		}
		return f.Config(func(k string) string { return env[k] })
	}
	cfg, err := parse([]string{"--smtp-listen", "127.0.0.1:2525", "--max-recording-mb", "50"}, map[string]string{
		"STEWARD_SUPPORT_ADDRESS": "support@example.org", "STEWARD_SMTP_TRUSTED_AUTHSERV": "mx.example.org", "STEWARD_MAX_ATTACHMENT_MB": "10"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SupportAddress != "support@example.org" || cfg.SMTPListen != "127.0.0.1:2525" || cfg.SMTPTrustedAuthServ != "mx.example.org" ||
		cfg.MaxAttachmentMB != 10 || cfg.MaxRecordingMB != 50 {
		t.Errorf("config = %+v", cfg)
	}
	if cfg, err := parse(nil, nil); err != nil || cfg.SMTPListen != "" {
		t.Errorf("the listener is on by default: %q, %v", cfg.SMTPListen, err)
	}
	for _, bad := range [][]string{
		{"--smtp-listen", "127.0.0.1:2525"},
		{"--support-address", "Support <support@example.org>"},
		{"--support-address", "support+x@example.org"},
		{"--support-address", "not an address"},
		{"--support-address", "support@example.org", "--smtp-listen", "2525"},
		{"--max-attachment-mb", "0"},
	} {
		if _, err := parse(bad, nil); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// With --smtp-listen the server receives the desk's mail: a message to the
// desk's address is taken (and held until its sender confirms), one to any
// other address is refused at RCPT; the listener stops with the server,
// an idle session or not.
func TestSupportMailListener(t *testing.T) {
	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), PolicyPath: "embedded:jmir.yaml", Dev: true,
		SupportAddress: "support@steward.test", SMTPListen: "127.0.0.1:0", BaseURL: "http://steward.test"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := Open(ctx, cfg, func(string) string { return "" }, slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var out bytes.Buffer
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- a.Serve(ctx, &out, func(u string) { ready <- u }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("steward did not start in 30 s")
	}
	m := regexp.MustCompile(`received by SMTP on (\S+)\.`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no listener address in %q", out.String())
	}
	addr := m[1]
	msg := []byte("From: Guest <guest@example.org>\r\nTo: support@steward.test\r\nSubject: Hello\r\n\r\nA question.\r\n")
	if err := smtp.SendMail(addr, nil, "guest@example.org", []string{"support@steward.test"}, msg); err != nil {
		t.Fatalf("mail to the desk: %v", err)
	}
	var held int
	if err := a.DB.QueryRow(`SELECT COUNT(*) FROM support_quarantine`).Scan(&held); err != nil || held != 1 {
		t.Errorf("held messages: %d (%v), want 1", held, err)
	}
	if err := smtp.SendMail(addr, nil, "guest@example.org", []string{"postmaster@elsewhere.test"}, msg); err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("mail for another address: %v, want 550", err)
	}
	// A sending server that keeps a session open does not hold the
	// shutdown up.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.Read(make([]byte, 512)) // the greeting
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("an idle SMTP session held the shutdown up")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("the mail listener still answers after the server stopped")
	}
}
