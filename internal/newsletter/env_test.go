package newsletter_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"steward/examples"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/newsletter"
	"steward/internal/policy"
	"steward/internal/rights"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

func mods() []store.Migrations {
	return append(doortest.Migrations(), consent.Migrations(), jobs.Migrations(), mail.Migrations(), newsletter.Migrations())
}

type env struct {
	db       *store.DB
	clock    *clock.Fake
	policy   *policy.Policy
	subjects *subject.Store
	door     *door.Door
	audit    *audit.Log
	ledger   *consent.Ledger
	links    *consent.Links
	runner   *jobs.Runner
	outbox   *mail.Outbox
	smtp     *mailtest.Server
	svc      *newsletter.Service
}

func loadPolicy(t testing.TB, name string) *policy.Policy {
	t.Helper()
	data, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(name, data)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return p
}

// newEnv wires the service the way the app does, with mail delivered to an
// in-process SMTP server (smtp false: mail is held in the outbox).
func newEnv(t testing.TB, db *store.DB, policyFile string, withSMTP bool, tune func(*newsletter.Deps)) *env {
	t.Helper()
	return newEnvPolicy(t, db, loadPolicy(t, policyFile), withSMTP, tune)
}

func newEnvPolicy(t testing.TB, db *store.DB, p *policy.Policy, withSMTP bool, tune func(*newsletter.Deps)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{db: db, clock: clock.NewFake(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)), policy: p}
	e.subjects = subject.NewStore(db, e.clock)
	e.door = doortest.New(t, db, e.clock, e.policy, e.subjects)
	e.audit = audit.New(db, e.clock)
	master := bytes.Repeat([]byte{9}, 32)
	signer, err := consent.DeriveSigner(master)
	if err != nil {
		t.Fatal(err)
	}
	cp := policy.Published{Policy: e.policy, Version: policy.Version{Number: 1}}
	e.ledger, err = consent.New(consent.Deps{DB: db, Clock: e.clock, Subjects: e.subjects, Audit: e.audit, Signer: signer, Policy: cp, BaseURL: "https://steward.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	e.links, err = consent.DeriveLinks(master, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	e.runner = jobs.NewRunner(db, e.clock, nil)
	cfg := mail.Config{From: "Steward <steward@example.org>"}
	if withSMTP {
		e.smtp = mailtest.Start(t)
		cfg.SMTPURL = e.smtp.URL()
	}
	e.outbox, err = mail.NewOutbox(db, e.clock, e.runner, e.door, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := newsletter.Deps{DB: db, Clock: e.clock, Policy: cp, Guards: policy.NewGuards(db, cp, e.audit, nil), Door: e.door, Subjects: e.subjects, Ledger: e.ledger, Links: e.links,
		Outbox: e.outbox, Jobs: e.runner, Audit: e.audit, BaseURL: "https://steward.example.org"}
	if tune != nil {
		tune(&d)
	}
	e.svc, err = newsletter.New(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SyncLists(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) run(t testing.TB) {
	t.Helper()
	for range 100 {
		n, err := e.runner.RunDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("jobs keep coming")
}

func (e *env) member(t testing.TB, email string) string {
	t.Helper()
	s, err := e.subjects.Create(context.Background(), e.db, e.door, door.Subject(), subject.KindMember, email, "signup", 1)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

var _ = storetest.Each

// allMods is the whole product's schema, for tests that also run the
// rights engine.
func allMods() []store.Migrations { return schema.Migrations() }

// rightsOn builds the rights engine the way the app does, on e's
// database, clock, subjects and audit log, mailing through outbox and
// running its jobs on e.runner, so a test can file a request as a
// signed-in member does.
func (e *env) rightsOn(t testing.TB, outbox *mail.Outbox) *rights.Service {
	t.Helper()
	reg, err := schema.Registry()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := rights.New(rights.Deps{DB: e.db, Clock: e.clock, Policy: policy.Published{Policy: e.policy, Version: policy.Version{Number: 1}},
		Registry: reg, Subjects: e.subjects, Door: e.door, Audit: e.audit, Outbox: outbox, Jobs: e.runner,
		Accounts: memberAccounts{}, BaseURL: "https://steward.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// memberAccounts says every subject holds a member's account, not a staff
// one.
type memberAccounts struct{}

func (memberAccounts) AccountOf(context.Context, string) (rights.Account, error) {
	return rights.Account{}, nil
}

// objectToDirectMarketing files, as the signed-in member subjectID, an
// objection to all direct marketing (the privacy centre's choice), and
// checks it took effect at once.
func objectToDirectMarketing(t testing.TB, rs *rights.Service, subjectID string) {
	t.Helper()
	r, err := rs.File(context.Background(), rights.Requester{SubjectID: subjectID, SessionID: "sess-1"},
		rights.Filing{Type: rights.Objection, Purposes: []string{policy.DirectMarketing}})
	if err != nil {
		t.Fatalf("objection to direct marketing: %v", err)
	}
	if r.Status != rights.StatusCompleted {
		t.Fatalf("objection to direct marketing: %s, want completed at once", r.Status)
	}
}
