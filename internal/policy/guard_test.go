package policy

import (
	"context"
	"errors"
	"sync"
	"testing"

	"steward/internal/fault"
)

// recorder collects denials, or fails when err is set.
type recorder struct {
	mu      sync.Mutex
	denials []Denial
	err     error
}

func (r *recorder) RecordDenial(_ context.Context, d Denial) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.denials = append(r.denials, d)
	return nil
}

func TestGuardDecide(t *testing.T) {
	g := NewGuard(example(t, "jmir.yaml"), nil)
	consented := &State{SubjectID: "s1", Consents: map[string]bool{"marketing": true, "third-party-marketing": true}}
	objected := &State{SubjectID: "s1", Consents: map[string]bool{"marketing": true}, Objections: map[string]bool{"marketing": true, "analytics": true}}
	dmObjected := &State{SubjectID: "s1", Consents: map[string]bool{"marketing": true, "third-party-marketing": true}, Objections: map[string]bool{DirectMarketing: true}}
	suppressed := &State{SubjectID: "s1", Consents: map[string]bool{"marketing": true}, MarketingSuppressed: true}
	restrictedAll := &State{SubjectID: "s1", Restricted: true}
	restrictedSome := &State{SubjectID: "s1", Restricted: true, RestrictedCategories: []string{"activity"}}
	tests := []struct {
		name              string
		purpose, category string
		s                 *State
		want              Decision
	}{
		{"contract use", "provide-service", "identity", &State{}, Decision{true, ReasonAllowed}},
		{"nil state, contract", "provide-service", "identity", nil, Decision{true, ReasonAllowed}},
		{"unknown purpose", "selling", "identity", &State{}, Decision{false, ReasonUnknownPurpose}},
		{"unknown category", "provide-service", "dreams", &State{}, Decision{false, ReasonUnknownCategory}},
		{"category not used", "quality-training", "identity", &State{}, Decision{false, ReasonNotUsed}},
		{"payment outside payment", "provide-service", "payment", &State{}, Decision{false, ReasonPaymentOutsidePayment}},
		{"payment by payment", "payment", "payment", &State{}, Decision{true, ReasonAllowed}},
		{"consent missing, nil state", "marketing", "identity", nil, Decision{false, ReasonConsentMissing}},
		{"consent missing", "marketing", "identity", &State{}, Decision{false, ReasonConsentMissing}},
		{"consent given", "marketing", "identity", consented, Decision{true, ReasonAllowed}},
		{"objection to purpose", "marketing", "identity", objected, Decision{false, ReasonObjection}},
		{"objection to legitimate interest", "analytics", "activity", objected, Decision{false, ReasonObjection}},
		{"objection to direct marketing stops all of it", "third-party-marketing", "identity", dmObjected, Decision{false, ReasonObjection}},
		{"objection to direct marketing leaves the rest", "provide-service", "identity", dmObjected, Decision{true, ReasonAllowed}},
		{"marketing suppressed", "marketing", "identity", suppressed, Decision{false, ReasonMarketingSuppressed}},
		{"suppression leaves other purposes", "support", "identity", suppressed, Decision{true, ReasonAllowed}},
		{"restricted: contract use denied", "provide-service", "identity", restrictedAll, Decision{false, ReasonRestricted}},
		{"restricted: storage allowed", Storage, "identity", restrictedAll, Decision{true, ReasonAllowed}},
		{"restricted: legal claims allowed", LegalClaims, "identity", restrictedAll, Decision{true, ReasonAllowed}},
		{"restricted: security allowed", Security, "activity", restrictedAll, Decision{true, ReasonAllowed}},
		{"restricted: subject request allowed", SubjectRequest, "identity", restrictedAll, Decision{true, ReasonAllowed}},
		{"restricted: consented marketing denied", "marketing", "identity", &State{Restricted: true, Consents: map[string]bool{"marketing": true}}, Decision{false, ReasonRestricted}},
		{"restricted category denied", "operations", "activity", restrictedSome, Decision{false, ReasonRestricted}},
		{"unrestricted category allowed", "operations", "device", restrictedSome, Decision{true, ReasonAllowed}},
		{"storage may not read payment", Storage, "payment", &State{}, Decision{false, ReasonPaymentOutsidePayment}},
		{"legal claims may not read payment", LegalClaims, "payment", &State{}, Decision{false, ReasonPaymentOutsidePayment}},
		{"subject request reads payment while restricted", SubjectRequest, "payment", restrictedAll, Decision{true, ReasonAllowed}},
		{"built-ins ignore objections", Security, "identity", &State{Objections: map[string]bool{Security: true}}, Decision{true, ReasonAllowed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := g.Decide(tt.purpose, tt.category, tt.s); got != tt.want {
				t.Errorf("Decide(%s, %s) = %+v, want %+v", tt.purpose, tt.category, got, tt.want)
			}
		})
	}
}

// TestPromiseJ7_MarketingNeedsConsent: on jmir.yaml, advertising and
// third-party marketing are refused without a consent record and allowed
// with one; every purpose has a basis.
func TestPromiseJ7_MarketingNeedsConsent(t *testing.T) {
	p := example(t, "jmir.yaml")
	rec := &recorder{}
	g := NewGuard(p, rec)
	ctx := context.Background()
	for _, pu := range p.Purposes() {
		if pu.Basis == "" {
			t.Errorf("purpose %s has no basis", pu.ID)
		}
	}
	for _, purpose := range []string{"marketing", "third-party-marketing"} {
		if got := p.Purpose(purpose).Basis; got != BasisConsent {
			t.Fatalf("%s basis = %s, want consent", purpose, got)
		}
		without := &State{SubjectID: "s_member", Consents: map[string]bool{}}
		err := g.Check(ctx, purpose, "identity", without)
		if fault.CodeOf(err) != fault.PurposeDenied {
			t.Fatalf("Check(%s) without consent = %v, want purpose_denied", purpose, err)
		}
		var d *Denial
		if !errors.As(err, &d) || d.Reason != ReasonConsentMissing || d.SubjectID != "s_member" || d.Purpose != purpose {
			t.Errorf("denial = %+v, want consent missing for s_member/%s", d, purpose)
		}
		with := &State{SubjectID: "s_member", Consents: map[string]bool{purpose: true}}
		if err := g.Check(ctx, purpose, "identity", with); err != nil {
			t.Errorf("Check(%s) with consent = %v, want nil", purpose, err)
		}
		withdrawn := &State{SubjectID: "s_member", Consents: map[string]bool{purpose: false}}
		if err := g.Check(ctx, purpose, "identity", withdrawn); err == nil {
			t.Errorf("Check(%s) after withdrawal allowed", purpose)
		}
	}
	if len(rec.denials) != 4 {
		t.Errorf("recorded %d denials, want 4", len(rec.denials))
	}
}

// TestPromiseJ9_PaymentOnlyForPayment: on jmir.yaml, payment data is
// readable by the payment purpose and the member's own request; every
// other purpose, built-ins included, is denied and the denial recorded.
func TestPromiseJ9_PaymentOnlyForPayment(t *testing.T) {
	p := example(t, "jmir.yaml")
	if c := p.Category("payment"); c == nil || !c.Payment {
		t.Fatal("jmir has no payment category")
	}
	rec := &recorder{}
	g := NewGuard(p, rec)
	ctx := context.Background()
	everything := &State{SubjectID: "s_payer", Consents: map[string]bool{}}
	for _, pu := range p.Purposes() {
		everything.Consents[pu.ID] = true
	}
	denied := 0
	for _, pu := range p.Purposes() {
		err := g.Check(ctx, pu.ID, "payment", everything)
		switch pu.ID {
		case PaymentPurpose, SubjectRequest:
			if err != nil {
				t.Errorf("%s may not read payment: %v", pu.ID, err)
			}
		default:
			denied++
			var d *Denial
			if !errors.As(err, &d) || d.Reason != ReasonPaymentOutsidePayment {
				t.Errorf("%s reading payment: err = %v, want payment-outside-payment denial", pu.ID, err)
			}
		}
	}
	if denied < 10 {
		t.Fatalf("only %d purposes tried", denied)
	}
	if len(rec.denials) != denied {
		t.Fatalf("recorded %d denials, want %d", len(rec.denials), denied)
	}
	for _, d := range rec.denials {
		if d.Category != "payment" || d.SubjectID != "s_payer" || d.Reason != ReasonPaymentOutsidePayment {
			t.Errorf("recorded denial %+v", d)
		}
	}
	// billing_address is payment data in JMIR: the field's category decides.
	if got := g.Decide("provide-service", p.CategoryOfField("billing_address"), everything); got.Allowed {
		t.Error("provide-service may read the billing address")
	}
}

// TestPromiseJ10_RecordedCallsOnlyForQuality: quality-training reads the
// support records (calls included) and nothing else.
func TestPromiseJ10_RecordedCallsOnlyForQuality(t *testing.T) {
	p := example(t, "jmir.yaml")
	g := NewGuard(p, nil)
	if got := p.CategoryOfField("call_recording"); got != "support" {
		t.Fatalf("call_recording is in %q, want support", got)
	}
	for _, c := range p.Categories() {
		got := g.Decide("quality-training", c.ID, &State{})
		if got.Allowed != (c.ID == "support") {
			t.Errorf("quality-training on %s: %+v", c.ID, got)
		}
	}
}

func TestRestrictionAllowsOnlyBuiltins(t *testing.T) {
	for _, name := range []string{"jmir.yaml", "mixi.yaml"} {
		p := example(t, name)
		g := NewGuard(p, nil)
		s := &State{SubjectID: "s", Restricted: true, Consents: map[string]bool{}}
		for _, pu := range p.Purposes() {
			s.Consents[pu.ID] = true
		}
		for _, pu := range p.Purposes() {
			for _, c := range pu.Uses {
				if p.Category(c).Payment && pu.ID != SubjectRequest && pu.ID != PaymentPurpose {
					continue
				}
				got := g.Decide(pu.ID, c, s)
				if got.Allowed != pu.Builtin {
					t.Errorf("%s: restricted subject, %s on %s: %+v", name, pu.ID, c, got)
				}
				if !pu.Builtin && got.Reason != ReasonRestricted {
					t.Errorf("%s: %s on %s denied for %v, want restricted", name, pu.ID, c, got.Reason)
				}
			}
		}
	}
}

func TestGuardCheckRecordingFails(t *testing.T) {
	boom := errors.New("audit down")
	g := NewGuard(example(t, "jmir.yaml"), &recorder{err: boom})
	err := g.Check(context.Background(), "marketing", "identity", &State{SubjectID: "s"})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap the recording failure", err)
	}
	var d *Denial
	if !errors.As(err, &d) || fault.CodeOf(err) != fault.PurposeDenied {
		t.Errorf("err = %v, want it to stay a purpose_denied *Denial", err)
	}
	if err := g.Check(context.Background(), "provide-service", "identity", &State{}); err != nil {
		t.Errorf("allowed Check = %v", err)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	g := NewGuard(example(t, "jmir.yaml"), nil)
	s := &State{SubjectID: "s", Consents: map[string]bool{"marketing": true}, Objections: map[string]bool{"analytics": true},
		Restricted: true, RestrictedCategories: []string{"device"}}
	for _, c := range []struct{ p, c string }{
		{"marketing", "identity"}, {"analytics", "activity"}, {"operations", "device"}, {"nope", "identity"}, {"provide-service", "payment"},
	} {
		if n := testing.AllocsPerRun(100, func() { g.Decide(c.p, c.c, s) }); n != 0 {
			t.Errorf("Decide(%s, %s) allocates %v times", c.p, c.c, n)
		}
	}
}

func TestMayDisclose(t *testing.T) {
	g := NewGuard(example(t, "jmir.yaml"), nil)
	tests := []struct {
		recipient, purpose, category string
		want                         bool
	}{
		{"payment-processor", "payment", "payment", true},
		{"payment-processor", "marketing", "identity", false}, // J11: not its purpose
		{"support-staff", "support", "support", true},
		{"support-staff", "support", "payment", false},
		{"marketing-services", "marketing", "identity", true}, // consent is checked per subject
		{"acquirer", "business-transfer", "payment", false},
		{"nobody", "payment", "payment", false},
	}
	for _, tt := range tests {
		if got := g.MayDisclose(tt.recipient, tt.purpose, tt.category); got != tt.want {
			t.Errorf("MayDisclose(%s, %s, %s) = %v, want %v", tt.recipient, tt.purpose, tt.category, got, tt.want)
		}
	}
}

func TestStricter(t *testing.T) {
	oldText := exampleText(t, "jmir.yaml")
	// The new version: personalisation moves from consent... the other way
	// round: it was consent-based before and is legitimate interest now;
	// operations also reads identity; activity is kept longer; a recipient
	// gains a purpose and a new one appears.
	oldText = edit(t, oldText, `  personalisation:
    description: Offering you a personalised experience and tailoring our services to you.
    basis: legitimate-interest
    interest: providing you with services and content that are useful to you
`, `  personalisation:
    description: Offering you a personalised experience and tailoring our services to you.
    basis: consent
    notice: Personalise what I see.
`)
	newText := exampleText(t, "jmir.yaml")
	newText = edit(t, newText, "    uses: [activity, device, location]\n  personalisation:", "    uses: [activity, device, location, identity]\n  personalisation:")
	newText = edit(t, newText, "  activity: 13 months", "  activity: 25 months")
	newText = edit(t, newText, "    purposes: [security]\n", "    purposes: [security, operations]\n")
	oldP, newP := mustParse(t, "old", oldText), mustParse(t, "new", newText)
	rec := &recorder{}
	s := NewGuard(oldP, rec).Stricter(NewGuard(newP, nil))
	st := &State{SubjectID: "s"}
	tests := []struct {
		purpose, category string
		want              Decision
	}{
		{"operations", "identity", Decision{false, ReasonNotUsed}},             // only the new version allows it
		{"operations", "activity", Decision{true, ReasonAllowed}},              // both allow it
		{"personalisation", "activity", Decision{false, ReasonConsentMissing}}, // consent in the old version
		{"payment", "payment", Decision{true, ReasonAllowed}},
		{"provide-service", "payment", Decision{false, ReasonPaymentOutsidePayment}},
		{SubjectRequest, "payment", Decision{true, ReasonAllowed}},
	}
	for _, tt := range tests {
		if got := s.Decide(tt.purpose, tt.category, st); got != tt.want {
			t.Errorf("stricter Decide(%s, %s) = %+v, want %+v", tt.purpose, tt.category, got, tt.want)
		}
	}
	if r, _ := s.Retention("activity"); r.String() != "13 months, then monthly aggregates" {
		t.Errorf("stricter retention of activity = %s, want 13 months, then monthly aggregates", r)
	}
	if s.MayDisclose("fraud-prevention", "operations", "activity") {
		t.Error("stricter guard lets fraud-prevention receive data for operations, which only the new version names")
	}
	if !s.MayDisclose("fraud-prevention", "security", "activity") {
		t.Error("stricter guard refuses what both versions allow")
	}
	if err := s.Check(context.Background(), "operations", "identity", st); err == nil || len(rec.denials) != 1 {
		t.Errorf("stricter Check = %v, recorded %d; want a recorded denial", err, len(rec.denials))
	}
	// Symmetric: the order of the two versions does not matter.
	s2 := NewGuard(newP, nil).Stricter(NewGuard(oldP, nil))
	for _, tt := range tests {
		if got := s2.Decide(tt.purpose, tt.category, st); got != tt.want {
			t.Errorf("reversed stricter Decide(%s, %s) = %+v, want %+v", tt.purpose, tt.category, got, tt.want)
		}
	}
}

func BenchmarkGuardDecide(b *testing.B) {
	g := NewGuard(example(b, "jmir.yaml"), nil)
	s := &State{SubjectID: "s_bench", Consents: map[string]bool{"marketing": true, "third-party-marketing": false},
		Objections: map[string]bool{"personalisation": true}}
	cases := []struct {
		name, purpose, category string
		allowed                 bool
	}{
		{"allowed/contract", "provide-service", "activity", true},
		{"allowed/consent", "marketing", "identity", true},
		{"denied/consent", "third-party-marketing", "identity", false},
		{"denied/objection", "personalisation", "activity", false},
		{"denied/payment", "operations", "payment", false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if g.Decide(c.purpose, c.category, s).Allowed != c.allowed {
					b.Fatal("wrong decision")
				}
			}
		})
	}
}
