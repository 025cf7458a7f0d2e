package notice_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"steward/examples"
	"steward/internal/app/services"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/identity"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/mail/mailtest"
	"steward/internal/newsletter"
	"steward/internal/notice"
	"steward/internal/policy"
	"steward/internal/schema"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

func mods() []store.Migrations { return schema.Migrations() }

// stack is one process's worth of services under one policy version, as
// `steward serve` wires them.
type stack struct {
	db         *store.DB
	clock      *clock.Fake
	policy     *policy.Policy
	version    policy.Version
	subjects   *subject.Store
	door       *door.Door
	audit      *audit.Log
	runner     *jobs.Runner
	outbox     *mail.Outbox
	identity   *identity.Service
	ledger     *consent.Ledger
	guards     *policy.Guards
	newsletter *newsletter.Service
	notices    *notice.Service
}

func parse(t testing.TB, name string, data []byte) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(name, data)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return p
}

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// start builds the services on db as the app does (services.Build),
// publishing p as the policy in force.
func start(t testing.TB, db *store.DB, clk *clock.Fake, p *policy.Policy, smtp *mailtest.Server) *stack {
	t.Helper()
	cfg := services.Config{BaseURL: "https://steward.example.org", MailFrom: "Steward <steward@example.org>"}
	if smtp != nil {
		cfg.SMTPURL = smtp.URL()
	}
	mk, err := door.NewMaster(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := services.Build(context.Background(), db, p, mk, clk, slog.New(slog.DiscardHandler), cfg, services.Options{
		Identity: func(d *identity.Deps) {
			d.Config.Argon2 = identity.Argon2{Memory: 64, Time: 1, Threads: 1}
			d.Config.Limits = identity.DefaultLimits
			d.Config.Limits.MemoryPerSec, d.Config.Limits.MemoryBurst = 1000, 1000
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	return &stack{db: db, clock: clk, policy: p, version: svc.Policy.Version, subjects: svc.Subjects, door: svc.Door, audit: svc.Audit,
		runner: svc.Jobs, outbox: svc.Outbox, identity: svc.Identity, ledger: svc.Consent, guards: svc.Guards,
		newsletter: svc.Newsletters, notices: svc.Notices}
}

func (s *stack) run(t testing.TB) {
	t.Helper()
	for range 100 {
		n, err := s.runner.RunDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("jobs keep coming")
}

var tokenRE = regexp.MustCompile(`verify-email\?token=([A-Za-z0-9_\-%=]+)`)

// signUp creates a member through identity; verified members follow the
// link of their verification mail.
func (s *stack) signUp(t testing.TB, email string, verify bool) string {
	t.Helper()
	ctx := context.Background()
	if err := s.identity.SignUp(ctx, identity.SignUpInput{Fields: map[string]string{"name": "Member " + email, "email": email},
		Password: "correct horse battery staple tangerine", AgeConfirmed: true}, identity.Meta{IP: netip.MustParseAddr("192.0.2.1")}); err != nil {
		t.Fatal(err)
	}
	sub, err := s.subjects.FindByEmail(ctx, s.db, s.door, email)
	if err != nil {
		t.Fatal(err)
	}
	if verify {
		msgs, err := s.outbox.ForSubject(ctx, s.db, sub.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if mm := tokenRE.FindStringSubmatch(m.Text); mm != nil {
				tok, _ := url.QueryUnescape(mm[1])
				if err := s.identity.VerifyEmail(ctx, tok); err != nil {
					t.Fatal(err)
				}
				return sub.ID
			}
		}
		t.Fatal("no verification mail")
	}
	return sub.ID
}

// reducedMixi is Mixi with a right removed (portability: a reduction of
// rights) and a purpose using one more category (visible to the guard).
func reducedMixi(t testing.TB) *policy.Policy {
	t.Helper()
	src := string(example(t, "mixi.yaml"))
	out := strings.Replace(src, "  portability: {}\n", "", 1)
	out = strings.Replace(out, "uses: [activity, location, support]", "uses: [activity, location, support, identity]", 1)
	if out == src || strings.Count(out, "\n") == strings.Count(src, "\n") {
		t.Fatal("mixi.yaml changed: the test's edits no longer apply")
	}
	return parse(t, "mixi-v2.yaml", []byte(out))
}

// TestPromiseM16_ChangeAnnouncedAndReductionNeedsAcceptance: a significant
// change that reduces rights is mailed to every verified member and every
// subscriber, recorded per recipient; until a member accepts it, the guard
// applies the stricter of the two versions to them; after accepting, the
// new version; people who joined under the new version are bound by it.
func TestPromiseM16_ChangeAnnouncedAndReductionNeedsAcceptance(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
		smtp := mailtest.Start(t)

		v1 := start(t, db, clk, parse(t, "mixi.yaml", example(t, "mixi.yaml")), nil)
		verified := v1.signUp(t, "verified@example.org", true)
		unverified := v1.signUp(t, "unverified@example.org", false)
		if _, err := v1.newsletter.Subscribe(ctx, newsletter.SubscribeInput{List: "updates", Email: "reader@example.org", Method: consent.MethodForm}); err != nil {
			t.Fatal(err)
		}
		reader, _ := v1.subjects.FindByEmail(ctx, db, v1.door, "reader@example.org")
		confirmAll(t, v1, reader.ID)
		commenter, _, _ := v1.subjects.EnsureByEmail(ctx, db, v1.door, door.Subject(), "commenter@example.org", "comment", 1)
		if n, err := v1.notices.Reconcile(ctx); err != nil || n != nil {
			t.Fatalf("first version: Reconcile announced %+v, %v; want nothing", n, err)
		}

		clk.Advance(24 * time.Hour)
		v2 := start(t, db, clk, reducedMixi(t), smtp)
		if v2.version.Number != 2 || !v2.version.Significant || !v2.version.ReducesRights {
			t.Fatalf("version 2: %+v, want significant and reducing rights", v2.version)
		}
		// Starting version 2 announced it.
		ns, err := v2.notices.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n *notice.Notice
		for i := range ns {
			if ns[i].Kind == notice.KindPolicyChange && ns[i].PolicyVersion == 2 {
				n = &ns[i]
			}
		}
		if n == nil {
			t.Fatalf("starting version 2 did not announce it: %+v", ns)
		}
		if again, err := v2.notices.Reconcile(ctx); err != nil || again != nil {
			t.Errorf("second Reconcile: %+v, %v; want nothing new", again, err)
		}
		v2.run(t)
		for _, addr := range []string{"verified@example.org", "reader@example.org"} {
			m := smtp.WaitFor(t, policyNoticeTo(addr), 5*time.Second)
			if !strings.Contains(m.Text, "/privacy/versions/2") || !strings.Contains(m.Text, "accept") {
				t.Errorf("notice to %s lacks the version link or the acceptance text:\n%s", addr, m.Text)
			}
			if m.Header.Get("List-Unsubscribe") != "" {
				t.Errorf("a policy notice carries List-Unsubscribe")
			}
		}
		for _, m := range smtp.Messages() {
			// Mail held while version 1 ran without SMTP (the sign-up
			// verifications) goes out now too; only the notice matters here.
			if !strings.Contains(m.Subject, "privacy policy") {
				continue
			}
			for _, to := range m.To {
				if to == "unverified@example.org" || to == "commenter@example.org" {
					t.Errorf("the policy notice went to %s", to)
				}
			}
		}
		dels, err := v2.notices.Deliveries(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, d := range dels {
			got[d.SubjectID] = d.Status + ":" + d.Reason
		}
		want := map[string]string{verified: "queued:", reader.ID: "queued:", unverified: "skipped:address not verified"}
		for id, w := range want {
			if got[id] != w {
				t.Errorf("delivery of %s: got %q, want %q", id, got[id], w)
			}
		}
		if _, ok := got[commenter.ID]; ok || len(got) != 3 {
			t.Errorf("deliveries: got %v, want exactly members and subscribers", got)
		}

		// Until accepted, the stricter version applies.
		identityCat := v2.policy.CategoryOfField("name")
		decide := func(id string) policy.Decision {
			t.Helper()
			st, err := v2.subjects.State(ctx, db, id)
			if err != nil {
				t.Fatal(err)
			}
			g, err := v2.guards.For(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			return g.Decide("maintain-improve", identityCat, st)
		}
		if d := decide(verified); d.Allowed {
			t.Fatal("before acceptance: the new use is allowed, want the stricter version to deny it")
		}
		pend, err := v2.notices.Pending(ctx, verified)
		if err != nil || len(pend) != 1 || pend[0].Version != 2 || len(pend[0].Reasons) == 0 {
			t.Fatalf("Pending: %+v, %v", pend, err)
		}
		if err := v2.notices.Accept(ctx, verified, 1, consent.MethodForm, consent.Evidence{}); err == nil {
			t.Error("accepting a version that is not in force: got nil error")
		}
		if err := v2.notices.Accept(ctx, verified, 2, consent.MethodForm, consent.Evidence{UserAgentFamily: "Firefox", Network: "192.0.2.0/24"}); err != nil {
			t.Fatal(err)
		}
		if d := decide(verified); !d.Allowed {
			t.Fatalf("after acceptance: denied (%s), want the new version", d.Reason)
		}
		// The batch form campaigns use agrees.
		states, err := v2.subjects.States(ctx, db, []string{verified, reader.ID, "s_unknown"})
		if err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]bool{verified: true, reader.ID: false} {
			g, err := v2.guards.For(ctx, states[id])
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Decide("maintain-improve", identityCat, states[id]).Allowed; got != want {
				t.Errorf("guard for %s from States: allowed %v, want %v", id, got, want)
			}
		}
		if pend, _ := v2.notices.Pending(ctx, verified); len(pend) != 0 {
			t.Errorf("Pending after acceptance: %+v", pend)
		}
		// Email-only people cannot accept: the stricter version stays theirs.
		if d := decide(reader.ID); d.Allowed {
			t.Error("a subscriber who never accepted: allowed, want the stricter version")
		}
		// Someone who joins under version 2 is bound by it.
		newcomer := v2.signUp(t, "newcomer@example.org", true)
		if d := decide(newcomer); !d.Allowed {
			t.Errorf("member who joined under version 2: denied (%s)", d.Reason)
		}
		acc, _ := v2.notices.Acceptances(ctx, verified)
		if len(acc) != 1 || acc[0].PolicyVersion != 2 || acc[0].PolicyHash != v2.policy.Hash() {
			t.Errorf("acceptances: %+v", acc)
		}
	})
}

func confirmAll(t testing.TB, s *stack, subjectID string) {
	t.Helper()
	msgs, err := s.outbox.ForSubject(context.Background(), s.db, subjectID, 10)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`confirm\?token=([^\s]+)`)
	for _, m := range msgs {
		if mm := re.FindStringSubmatch(m.Text); mm != nil {
			tok, _ := url.QueryUnescape(mm[1])
			if err := s.newsletter.Confirm(context.Background(), tok, consent.Evidence{}); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no confirmation mail")
}

// TestPromiseJ14_OwnershipNoticeRecordedPerRecipient: staff announce a
// change of ownership to everyone Steward holds an address for; each send
// is recorded per recipient and the broadcast is audited.
func TestPromiseJ14_OwnershipNoticeRecordedPerRecipient(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := clock.NewFake(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
		smtp := mailtest.Start(t)
		s := start(t, db, clk, parse(t, "jmir.yaml", example(t, "jmir.yaml")), smtp)
		m1 := s.signUp(t, "author@example.org", true)
		c1, _, _ := s.subjects.EnsureByEmail(ctx, db, s.door, door.Subject(), "commenter@example.org", "comment", 1)
		s.run(t)
		smtp.Reset()
		for name, in := range map[string]notice.BroadcastInput{
			"CR/LF subject": {Kind: notice.KindOwnership, Subject: "Hi\r\nBcc: all@example.org", Text: "x"},
			"bad kind":      {Kind: "policy-change", Subject: "x", Text: "x"},
			"empty text":    {Kind: notice.KindOwnership, Subject: "x"},
		} {
			if _, err := s.notices.Broadcast(ctx, "s_admin", in); err == nil {
				t.Errorf("%s: got nil error", name)
			}
		}
		n, err := s.notices.Broadcast(ctx, "s_admin", notice.BroadcastInput{Kind: notice.KindOwnership,
			Subject: "JMIR Publications has a new owner", Text: "On 1 December 2026 JMIR Publications becomes part of Example Group. Your data moves with it, under the same policy."})
		if err != nil {
			t.Fatal(err)
		}
		s.run(t)
		for _, addr := range []string{"author@example.org", "commenter@example.org"} {
			m := smtp.WaitFor(t, mailtest.SentTo(addr), 5*time.Second)
			if m.Subject != "JMIR Publications has a new owner" {
				t.Errorf("subject to %s: %q", addr, m.Subject)
			}
		}
		dels, err := s.notices.Deliveries(ctx, n.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, d := range dels {
			if d.Status != "queued" || d.OutboxID == "" {
				t.Errorf("delivery %+v", d)
			}
			seen[d.SubjectID] = true
		}
		if !seen[m1] || !seen[c1.ID] || len(dels) != 2 {
			t.Errorf("deliveries: %+v", dels)
		}
		got, _ := s.notices.Get(ctx, n.ID)
		if got.Status != "sent" || got.Queued != 2 {
			t.Errorf("notice: %+v", got)
		}
		entries, _ := s.audit.List(ctx, 0, 100)
		found := false
		for _, e := range entries {
			if e.Action == "notice.broadcast" && e.Actor == "staff:s_admin" {
				found = true
			}
		}
		if !found {
			t.Error("the broadcast is not in the audit log")
		}
	})
}

// policyNoticeTo matches the policy-change notice to addr, not the other
// mail (held sign-up mail sent after a restart with SMTP).
func policyNoticeTo(addr string) func(mailtest.Received) bool {
	to := mailtest.SentTo(addr)
	return func(r mailtest.Received) bool { return to(r) && strings.Contains(r.Subject, "privacy policy") }
}

// firstMigrations is m as it stood before its version 2: the schema of a
// database made by the previous release.
func firstMigrations(t testing.TB, m store.Migrations) store.Migrations {
	t.Helper()
	entries, err := fs.ReadDir(m.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	old := fstest.MapFS{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "0001_") {
			b, err := fs.ReadFile(m.FS, e.Name())
			if err != nil {
				t.Fatal(err)
			}
			old[e.Name()] = &fstest.MapFile{Data: b}
		}
	}
	return store.Migrations{Module: m.Module, FS: old}
}

// TestAcceptancesMoveToSubjectState: on a database where notice kept the
// acceptances of policy versions, migrating moves every one of them into
// the subject state, where the guard and Pending read them, and drops the
// old table.
func TestAcceptancesMoveToSubjectState(t *testing.T) {
	var before []store.Migrations
	for _, m := range mods() {
		if m.Module == "subject" || m.Module == "notice" {
			m = firstMigrations(t, m)
		}
		before = append(before, m)
	}
	storetest.Each(t, before, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 10, 2, 9, 0, 0, 0, time.UTC)
		if _, err := db.ExecContext(ctx, `INSERT INTO policy_acceptances (subject_id, policy_version, policy_hash, method, ua_family, network, accepted_at)
			VALUES ('s_one', 2, 'h2', 'form', 'Firefox', '192.0.2.0/24', $1), ('s_one', 3, 'h3', 'api', '', '', $1), ('s_two', 2, 'h2', 'form', '', '', $1)`, at); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Migrate(ctx, mods()); err != nil {
			t.Fatal(err)
		}
		if err := db.CheckSchema(ctx, mods()); err != nil {
			t.Fatal(err)
		}
		subjects := subject.NewStore(db, clock.NewFake(at))
		got, err := subjects.PolicyAcceptances(ctx, db, "s_one")
		if err != nil {
			t.Fatal(err)
		}
		want := []subject.PolicyAcceptance{
			{PolicyVersion: 2, PolicyHash: "h2", Method: "form", UserAgentFamily: "Firefox", Network: "192.0.2.0/24", AcceptedAt: at},
			{PolicyVersion: 3, PolicyHash: "h3", Method: "api", AcceptedAt: at},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("moved acceptances of s_one:\n got %+v\nwant %+v", got, want)
		}
		if two, _ := subjects.PolicyAcceptances(ctx, db, "s_two"); len(two) != 1 {
			t.Errorf("moved acceptances of s_two: %+v", two)
		}
		if _, err := db.ExecContext(ctx, `SELECT 1 FROM policy_acceptances`); err == nil {
			t.Error("policy_acceptances is still there")
		}
	})
}
