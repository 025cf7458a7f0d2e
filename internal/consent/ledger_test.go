package consent_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"steward/examples"
	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/consent"
	"steward/internal/door"
	"steward/internal/door/doortest"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/store/storetest"
	"steward/internal/subject"
)

func mods() []store.Migrations {
	return append(doortest.Migrations(), consent.Migrations())
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

type env struct {
	db       *store.DB
	clock    *clock.Fake
	subjects *subject.Store
	door     *door.Door
	audit    *audit.Log
	ledger   *consent.Ledger
	policy   *policy.Policy
	guard    *policy.Guard
}

func newEnv(t testing.TB, db *store.DB, policyFile string) *env {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC))
	p := loadPolicy(t, policyFile)
	subjects := subject.NewStore(db, clk)
	d := doortest.New(t, db, clk, p, subjects)
	al := audit.New(db, clk)
	signer, err := consent.DeriveSigner(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	l, err := consent.New(consent.Deps{DB: db, Clock: clk, Subjects: subjects, Door: d, Audit: al, Signer: signer,
		Policy: policy.Published{Policy: p, Version: policy.Version{Number: 1}}, BaseURL: "https://steward.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{db: db, clock: clk, subjects: subjects, door: d, audit: al, ledger: l, policy: p, guard: policy.NewGuard(p, nil)}
}

func (e *env) member(t testing.TB, email string) string {
	t.Helper()
	s, err := e.subjects.Create(context.Background(), e.db, e.door, door.Subject(), subject.KindMember, email, "signup", 1)
	if err != nil {
		t.Fatal(err)
	}
	return s.ID
}

func (e *env) state(t testing.TB, id string) *policy.State {
	t.Helper()
	st, err := e.subjects.State(context.Background(), e.db, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var ev = consent.Evidence{UserAgentFamily: "Firefox", Network: "203.0.113.0/24"}

// TestPromiseJ7_ThirdPartyMarketingNeedsConsentRecord: under JMIR,
// third-party marketing is allowed only while a consent recorded in the
// ledger is in force; withdrawing it is one call and stops it at once.
func TestPromiseJ7_ThirdPartyMarketingNeedsConsentRecord(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml")
		id := e.member(t, "ada@example.org")
		contact := e.policy.CategoryOfField("email")
		for _, purpose := range []string{"third-party-marketing", "marketing"} {
			if d := e.guard.Decide(purpose, contact, e.state(t, id)); d.Allowed {
				t.Fatalf("%s before any consent: allowed, want denied", purpose)
			}
		}
		rec, err := e.ledger.Change(ctx, consent.Change{SubjectID: id, Purpose: "third-party-marketing", State: consent.Given,
			Method: consent.MethodForm, CollectionPoint: "/account/privacy", Evidence: ev})
		if err != nil {
			t.Fatal(err)
		}
		if d := e.guard.Decide("third-party-marketing", contact, e.state(t, id)); !d.Allowed {
			t.Fatalf("after consent: denied (%s), want allowed", d.Reason)
		}
		if d := e.guard.Decide("marketing", contact, e.state(t, id)); d.Allowed {
			t.Fatal("consent to one purpose allowed another")
		}
		if err := consent.VerifyReceipt(e.ledger.Signer().PublicKey(), rec.Receipt); err != nil {
			t.Fatalf("receipt of the change: %v", err)
		}
		if _, err := e.ledger.Change(ctx, consent.Change{SubjectID: id, Purpose: "third-party-marketing", State: consent.Withdrawn,
			Method: consent.MethodForm, CollectionPoint: "/account/privacy", Evidence: ev}); err != nil {
			t.Fatal(err)
		}
		if d := e.guard.Decide("third-party-marketing", contact, e.state(t, id)); d.Allowed {
			t.Fatal("after withdrawal: allowed, want denied")
		}
		hist, err := e.ledger.History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 || hist[0].State != consent.Given || hist[1].State != consent.Withdrawn {
			t.Fatalf("history: got %+v, want given then withdrawn", hist)
		}
		if hist[0].PolicyVersion != 1 || hist[0].PolicyHash != e.policy.Hash() || hist[0].NoticeHash == "" {
			t.Errorf("record lacks the policy version, hash or notice hash: %+v", hist[0])
		}
		entries, err := e.audit.ForSubject(ctx, db, id)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, en := range entries {
			actions = append(actions, en.Action)
		}
		if !strings.Contains(strings.Join(actions, ","), "consent.given") || !strings.Contains(strings.Join(actions, ","), "consent.withdrawn") {
			t.Errorf("audit actions: got %v, want consent.given and consent.withdrawn", actions)
		}
	})
}

func TestReceiptContents(t *testing.T) {
	db := storetest.SQLite(t, mods())
	e := newEnv(t, db, "jmir.yaml")
	id := e.member(t, "bo@example.org")
	rec, err := e.ledger.Change(context.Background(), consent.Change{SubjectID: id, Purpose: "third-party-marketing",
		State: consent.Given, Method: consent.MethodAPI, CollectionPoint: "PUT /api/v1/me/consents", Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	var r consent.Receipt
	if err := json.Unmarshal(rec.Receipt, &r); err != nil {
		t.Fatal(err)
	}
	if r.ConsentReceiptID != rec.ID || r.PIIPrincipalID != id || r.State != "given" || r.CollectionMethod != "api" ||
		r.PolicyURL != "https://steward.example.org/privacy/versions/1" || r.Services[0].Purposes[0].PurposeID != "third-party-marketing" ||
		r.Evidence != ev || r.Signature == nil || r.Signature.KeyID != e.ledger.Signer().KeyID() {
		t.Errorf("receipt: got %+v", r)
	}
	if strings.Contains(string(rec.Receipt), "bo@example.org") {
		t.Error("the receipt holds the email address")
	}
	// A stored receipt read back still verifies; one with the state
	// flipped does not.
	got, err := e.ledger.Get(context.Background(), id, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := consent.VerifyReceipt(e.ledger.Signer().PublicKey(), got.Receipt); err != nil {
		t.Fatalf("stored receipt: %v", err)
	}
	tampered := bytes.Replace(got.Receipt, []byte(`"state": "given"`), []byte(`"state": "withdrawn"`), 1)
	if err := consent.VerifyReceipt(e.ledger.Signer().PublicKey(), tampered); !errors.Is(err, consent.ErrBadReceipt) {
		t.Fatalf("tampered receipt: got %v, want ErrBadReceipt", err)
	}
	if _, err := e.ledger.Get(context.Background(), e.member(t, "other@example.org"), rec.ID); !fault.Is(err, fault.NotFound) {
		t.Errorf("another subject's record: got %v, want not_found", err)
	}
}

func TestRecordRefusesBadInput(t *testing.T) {
	db := storetest.SQLite(t, mods())
	e := newEnv(t, db, "jmir.yaml")
	id := e.member(t, "cy@example.org")
	ok := consent.Change{SubjectID: id, Purpose: "marketing", State: consent.Given, Method: consent.MethodForm, CollectionPoint: "/x"}
	cases := map[string]struct {
		mut  func(c *consent.Change)
		code fault.Code
	}{
		"unknown purpose":     {func(c *consent.Change) { c.Purpose = "nope" }, fault.Invalid},
		"contract purpose":    {func(c *consent.Change) { c.Purpose = "provide-service" }, fault.Invalid},
		"built-in purpose":    {func(c *consent.Change) { c.Purpose = "security" }, fault.Invalid},
		"bad state":           {func(c *consent.Change) { c.State = "maybe" }, fault.Invalid},
		"bad method":          {func(c *consent.Change) { c.Method = "carrier-pigeon" }, fault.Invalid},
		"CR/LF in point":      {func(c *consent.Change) { c.CollectionPoint = "/x\r\nX-Injected: 1" }, fault.Invalid},
		"overlong point":      {func(c *consent.Change) { c.CollectionPoint = strings.Repeat("a", 201) }, fault.TooLarge},
		"invalid UTF-8 point": {func(c *consent.Change) { c.CollectionPoint = "\xff" }, fault.Invalid},
		"bad scope":           {func(c *consent.Change) { c.Scope = "list:../x" }, fault.Invalid},
		"unknown subject":     {func(c *consent.Change) { c.SubjectID = "s_nobody" }, fault.NotFound},
	}
	for name, c := range cases {
		ch := ok
		c.mut(&ch)
		_, err := e.ledger.Change(context.Background(), ch)
		if fault.CodeOf(err) != c.code {
			t.Errorf("%s: got %v, want %s", name, err, c.code)
		}
	}
	hist, _ := e.ledger.History(context.Background(), id)
	if len(hist) != 0 {
		t.Errorf("refused changes left %d records", len(hist))
	}
}

// TestGPC covers the signal from a signed-in member: recorded once as an
// opt-out of every GPC purpose, idempotent, and its conflict with explicit
// choices: GPC wins over an earlier explicit opt-in; an explicit opt-in
// made after the signal wins over later signals.
func TestGPC(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml")
		gpcPurposes := e.policy.GPCPurposes()
		if len(gpcPurposes) == 0 {
			t.Fatal("jmir.yaml declares no sale/sharing or third-party marketing purpose")
		}
		contact := e.policy.CategoryOfField("email")
		apply := func(id string) []consent.Record {
			t.Helper()
			recs, err := e.ledger.ApplyGPC(ctx, id, ev)
			if err != nil {
				t.Fatal(err)
			}
			return recs
		}
		pending := func(id string) bool {
			t.Helper()
			p, err := e.ledger.GPCPending(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}

		// A member with no earlier choice.
		a := e.member(t, "a@example.org")
		if !pending(a) {
			t.Fatal("GPCPending for a fresh member: false, want true")
		}
		if recs := apply(a); len(recs) != len(gpcPurposes) || recs[0].Method != consent.MethodGPC || recs[0].State != consent.Withdrawn {
			t.Fatalf("first signal: got %+v", recs)
		}
		if pending(a) {
			t.Error("GPCPending after the signal was recorded: true, want false")
		}
		if recs := apply(a); len(recs) != 0 {
			t.Errorf("second signal appended %d records, want 0", len(recs))
		}

		// Conflict 1: explicit opt-in before the signal — GPC wins, both recorded.
		b := e.member(t, "b@example.org")
		if _, err := e.ledger.Change(ctx, consent.Change{SubjectID: b, Purpose: "third-party-marketing", State: consent.Given, Method: consent.MethodForm, CollectionPoint: "/account/privacy"}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		apply(b)
		if d := e.guard.Decide("third-party-marketing", contact, e.state(t, b)); d.Allowed {
			t.Fatal("GPC after an explicit opt-in: still allowed, want GPC to win")
		}
		hist, _ := e.ledger.History(ctx, b)
		if len(hist) != 2 || hist[0].Method != consent.MethodForm || hist[1].Method != consent.MethodGPC {
			t.Fatalf("both choices must be recorded: got %+v", hist)
		}

		// Conflict 2: the person then opts in explicitly on the site, with
		// the signal still on — their later explicit choice stands.
		e.clock.Advance(time.Minute)
		if _, err := e.ledger.Change(ctx, consent.Change{SubjectID: b, Purpose: "third-party-marketing", State: consent.Given, Method: consent.MethodForm, CollectionPoint: "/account/privacy"}); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		if pending(b) {
			t.Error("GPCPending after an explicit opt-in that followed a signal: true, want false")
		}
		if recs := apply(b); len(recs) != 0 {
			t.Errorf("signal after a later explicit opt-in appended %d records, want 0", len(recs))
		}
		if d := e.guard.Decide("third-party-marketing", contact, e.state(t, b)); !d.Allowed {
			t.Errorf("explicit opt-in after GPC: denied (%s), want allowed", d.Reason)
		}
	})
}

// TestListScopes: list-scoped consents keep the purpose in force while any
// list does; a purpose-wide withdrawal ends them all.
func TestListScopes(t *testing.T) {
	db := storetest.SQLite(t, mods())
	ctx := context.Background()
	e := newEnv(t, db, "jmir.yaml")
	id := e.member(t, "d@example.org")
	contact := e.policy.CategoryOfField("email")
	change := func(scope string, s consent.State) {
		t.Helper()
		if _, err := e.ledger.Change(ctx, consent.Change{SubjectID: id, Purpose: "marketing", Scope: scope, State: s, Method: consent.MethodEmailLink, CollectionPoint: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	allowed := func() bool { return e.guard.Decide("marketing", contact, e.state(t, id)).Allowed }
	change("list:a", consent.Given)
	change("list:b", consent.Given)
	change("list:a", consent.Withdrawn)
	if !allowed() {
		t.Fatal("one list still subscribed: denied, want allowed")
	}
	change("", consent.Withdrawn)
	if allowed() {
		t.Fatal("after a purpose-wide withdrawal: allowed, want denied")
	}
	change("list:a", consent.Given)
	if !allowed() {
		t.Fatal("after subscribing again: denied, want allowed")
	}
	choices, err := e.ledger.Choices(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range choices {
		if c.Purpose == "marketing" && (!c.InForce || c.Latest == nil) {
			t.Errorf("Choices(marketing): got %+v, want in force with its latest record", c)
		}
		if c.Purpose == "third-party-marketing" && (c.InForce || c.State != "not_asked") {
			t.Errorf("Choices(third-party-marketing): got %+v, want not asked", c)
		}
	}
}

// TestMergeMovesLedger: an email-only person's consents follow them into
// the account they open.
func TestMergeMovesLedger(t *testing.T) {
	storetest.Each(t, mods(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newEnv(t, db, "jmir.yaml")
		eo, _, err := e.subjects.EnsureByEmail(ctx, db, e.door, door.Subject(), "e@example.org", "newsletter", 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ledger.Change(ctx, consent.Change{SubjectID: eo.ID, Purpose: "marketing", Scope: "list:newsletter", State: consent.Given, Method: consent.MethodEmailLink, CollectionPoint: "x"}); err != nil {
			t.Fatal(err)
		}
		m, err := e.subjects.Create(ctx, db, e.door, door.Subject(), subject.KindMember, "", "signup", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return e.subjects.Merge(ctx, tx, eo.ID, m.ID) }); err != nil {
			t.Fatal(err)
		}
		hist, err := e.ledger.History(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 1 || hist[0].SubjectID != m.ID {
			t.Fatalf("member's history after merge: got %+v", hist)
		}
		// The old id still resolves to the member.
		if old, _ := e.ledger.History(ctx, eo.ID); len(old) != 1 {
			t.Errorf("history by the merged id: got %d records, want 1", len(old))
		}
	})
}
