package identity_test

import (
	"context"
	"database/sql"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"steward/examples"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/identity"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// fastArgon2 keeps the suite quick; one test checks the defaults.
var fastArgon2 = identity.Argon2{Memory: 64, Time: 1, Threads: 1}

func mods() []store.Migrations {
	return append(doortest.Migrations(), jobs.Migrations(), mail.Migrations(), identity.Migrations())
}

// env is one Steward's worth of identity collaborators on a database.
type env struct {
	t        testing.TB
	db       *store.DB
	clock    *clock.Fake
	subjects *subject.Store
	door     *door.Door
	audit    *audit.Log
	outbox   *mail.Outbox
	policy   *policy.Policy
	svc      *identity.Service
	cfg      identity.Config
	seen     map[string]bool // outbox ids lastMail returned
	// getenv holds the client secrets of the policy's identity providers
	// (newSocialEnv).
	getenv func(string) string
}

var start = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// newEnv builds a service under an example policy ("jmir.yaml",
// "mixi.yaml") or a policy given as *policy.Policy.
func newEnv(t testing.TB, db *store.DB, pol any, tune ...func(*identity.Config)) *env {
	t.Helper()
	var p *policy.Policy
	switch v := pol.(type) {
	case string:
		p = loadExample(t, v)
	case *policy.Policy:
		p = v
	}
	c := clock.NewFake(start)
	log := slog.New(slog.DiscardHandler)
	runner := jobs.NewRunner(db, c, log)
	subjects := subject.NewStore(db, c)
	d := doortest.New(t, db, c, p, subjects)
	outbox, err := mail.NewOutbox(db, c, runner, d, mail.Config{From: "Steward <steward@example.org>"}, log)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, clock: c, subjects: subjects, door: d,
		audit: audit.New(db, c), outbox: outbox, policy: p, seen: map[string]bool{}}
	e.cfg = identity.Config{Argon2: fastArgon2}
	e.cfg.Limits = identity.DefaultLimits
	e.cfg.Limits.MemoryPerSec = 1000
	e.cfg.Limits.MemoryBurst = 1000
	for _, f := range tune {
		f(&e.cfg)
	}
	e.svc = e.newService()
	return e
}

// newService returns another Service on the same database, as a second
// process or a restart would have.
func (e *env) newService() *identity.Service {
	e.t.Helper()
	svc, err := identity.New(identity.Deps{
		DB: e.db, Clock: e.clock, Log: slog.New(slog.DiscardHandler), Subjects: e.subjects, Door: e.door, Audit: e.audit,
		Outbox: e.outbox, Jobs: jobs.NewRunner(e.db, e.clock, nil), Policy: policy.Published{Policy: e.policy, Version: policy.Version{Number: 1}}, BaseURL: "https://steward.example.org", Config: e.cfg,
		Getenv: e.getenv,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

func make32() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func loadExample(t testing.TB, name string) *policy.Policy {
	t.Helper()
	raw, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(name, raw)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return p
}

// variant parses an example policy after edit changed its YAML tree.
func variant(t testing.TB, name string, edit func(root *yaml.Node)) *policy.Policy {
	t.Helper()
	raw, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc.Content[0])
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("variant-"+name, out)
	if err != nil {
		t.Fatalf("parse variant of %s: %v", name, err)
	}
	return p
}

// child returns the value node of key in a mapping, creating it (as an
// empty node of kind) when absent.
func child(m *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Value: key}
	v := &yaml.Node{Kind: kind}
	if kind == yaml.SequenceNode {
		v.Style = yaml.FlowStyle
	}
	m.Content = append(m.Content, k, v)
	return v
}

func setScalar(m *yaml.Node, key, value string) {
	n := child(m, key, yaml.ScalarNode)
	n.Kind, n.Tag, n.Value, n.Content = yaml.ScalarNode, "", value, nil
}

func seqValues(n *yaml.Node) []string {
	var out []string
	for _, c := range n.Content {
		out = append(out, c.Value)
	}
	return out
}

func appendSeq(n *yaml.Node, v string) {
	if !slices.Contains(seqValues(n), v) {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
	}
}

// withDateOfBirth turns an example policy into one that checks age by a
// sealed date of birth, declared beside the name.
func withDateOfBirth(t testing.TB, name string) *policy.Policy {
	return variant(t, name, func(root *yaml.Node) {
		cats := child(root, "categories", yaml.MappingNode)
		placed := false
		for i := 0; i+1 < len(cats.Content); i += 2 {
			cat := cats.Content[i+1]
			fields := child(cat, "fields", yaml.SequenceNode)
			if slices.Contains(seqValues(fields), "date_of_birth") {
				placed = true
				appendSeq(child(cat, "sensitive", yaml.SequenceNode), "date_of_birth")
				break
			}
		}
		for i := 0; !placed && i+1 < len(cats.Content); i += 2 {
			cat := cats.Content[i+1]
			fields := child(cat, "fields", yaml.SequenceNode)
			if slices.Contains(seqValues(fields), "name") {
				appendSeq(fields, "date_of_birth")
				appendSeq(child(cat, "sensitive", yaml.SequenceNode), "date_of_birth")
				placed = true
			}
		}
		reg := child(root, "registration", yaml.MappingNode)
		appendSeq(child(reg, "fields", yaml.SequenceNode), "date_of_birth")
		setScalar(reg, "age_check", "date_of_birth")
		setScalar(root, "minimum_age", "18")
	})
}

var tokenRE = regexp.MustCompile(`token=([A-Za-z0-9_-]{43})`)

// mails returns the outbox messages to an address, oldest first.
func (e *env) mails(to string) []mail.Stored {
	e.t.Helper()
	all, err := e.outbox.List(context.Background(), mail.AsRecipient, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []mail.Stored
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].To == to {
			out = append(out, all[i])
		}
	}
	return out
}

// lastMail returns the one mail of kind to an address that the test has
// not looked at yet (the outbox orders mails by a time the fake clock
// keeps still, so "newest" is "not seen before").
func (e *env) lastMail(to, kind string) mail.Stored {
	e.t.Helper()
	var fresh []mail.Stored
	for _, m := range e.mails(to) {
		if m.Kind == kind && !e.seen[m.ID] {
			fresh = append(fresh, m)
		}
	}
	if len(fresh) != 1 {
		var kinds []string
		for _, m := range e.mails(to) {
			kinds = append(kinds, m.Kind)
		}
		e.t.Fatalf("%d new mails of kind %s to %s, want 1 (all mails to it: %v)", len(fresh), kind, to, kinds)
	}
	e.seen[fresh[0].ID] = true
	return fresh[0]
}

// tokenIn returns the token in a mail's link.
func tokenIn(t testing.TB, m mail.Stored) string {
	t.Helper()
	match := tokenRE.FindStringSubmatch(m.Text)
	if match == nil {
		t.Fatalf("no token link in mail %q", m.Text)
	}
	return match[1]
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// actions returns the audit actions recorded about a subject, oldest first.
func (e *env) actions(subjectID string) []string {
	e.t.Helper()
	entries, err := e.audit.ForSubject(context.Background(), e.db, subjectID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		out = append(out, en.Action)
	}
	slices.Sort(out)
	return out
}

var meta = identity.Meta{IP: netip.MustParseAddr("198.51.100.23"), UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}

const goodPassword = "tangerine orbit lantern"

// signUp signs up and verifies a member, returning their subject id.
func (e *env) signUp(fields map[string]string, verify bool) string {
	e.t.Helper()
	ctx := context.Background()
	if err := e.svc.SignUp(ctx, identity.SignUpInput{Fields: fields, Password: goodPassword, AgeConfirmed: true}, meta); err != nil {
		e.t.Fatalf("sign up: %v", err)
	}
	m := e.lastMail(fields["email"], identity.MailVerification)
	if verify {
		if err := e.svc.VerifyEmail(ctx, tokenIn(e.t, m)); err != nil {
			e.t.Fatalf("verify: %v", err)
		}
	}
	return m.SubjectID
}

// minimalFields returns the required registration fields of the policy
// with plausible values.
func (e *env) minimalFields(email string) map[string]string {
	f := map[string]string{"email": email}
	for _, name := range e.policy.Registration.Required {
		if _, ok := f[name]; !ok && name != "password" {
			f[name] = sampleValue(name)
		}
	}
	if e.policy.Registration.AgeCheck == policy.AgeDateOfBirth {
		f["date_of_birth"] = sampleValue("date_of_birth")
	}
	return f
}

func sampleValue(field string) string {
	switch field {
	case "name":
		return "Grace Hopper"
	case "phone":
		return "+1 202 555 0143"
	case "company":
		return "Remington Rand"
	case "organisation":
		return "US Navy"
	case "billing_address":
		return "1 Harbour Street\nArlington VA"
	case "location":
		return "Arlington, US"
	case "date_of_birth":
		return "1980-12-09"
	}
	return "x"
}

// openColumn opens a sealed field of an account for security (the
// purpose the password serves).
func (e *env) openColumn(column, field, subjectID string) string {
	e.t.Helper()
	v, err := e.door.Subject(context.Background(), e.db, door.System(policy.Security), subjectID)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := v.OpenBytes(context.Background(), field, rawColumn(e.t, e.db, column, subjectID))
	if err != nil {
		e.t.Fatalf("open %s: %v", column, err)
	}
	return string(b)
}

func rawColumn(t testing.TB, db *store.DB, column, subjectID string) []byte {
	t.Helper()
	var b []byte
	err := db.QueryRowContext(context.Background(), `SELECT `+column+` FROM accounts WHERE subject_id = $1`, subjectID).Scan(&b)
	if err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	return b
}
