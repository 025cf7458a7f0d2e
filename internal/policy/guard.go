package policy

import (
	"context"
	"fmt"
	"slices"

	"steward/internal/fault"
)

// State is what the guard needs to know about a subject, loaded by
// internal/subject in one query.
type State struct {
	SubjectID            string
	Consents             map[string]bool // purpose id → consent currently given
	Objections           map[string]bool // purpose id → objection in force
	Restricted           bool            // Art. 18 restriction in force
	RestrictedCategories []string        // empty means all categories when Restricted
	MarketingSuppressed  bool            // never send direct marketing
	LegalHold            bool            // read by retention and erasure; the guard ignores it
	// BoundVersion is the newest policy version the subject is bound by:
	// the one they were first recorded under, or a later one they
	// accepted. Guards reads it to choose their guard.
	BoundVersion int
}

// Reason says why the guard decided as it did.
type Reason uint8

const (
	ReasonAllowed Reason = iota
	ReasonUnknownPurpose
	ReasonUnknownCategory
	ReasonNotUsed               // the purpose does not use the category
	ReasonPaymentOutsidePayment // payment data outside payment and subject-request
	ReasonConsentMissing
	ReasonObjection
	ReasonMarketingSuppressed
	ReasonRestricted
	ReasonRoleLacksPurpose // a staff screen named a purpose its role may not name
)

func (r Reason) String() string {
	switch r {
	case ReasonAllowed:
		return "allowed"
	case ReasonUnknownPurpose:
		return "unknown purpose"
	case ReasonUnknownCategory:
		return "unknown category"
	case ReasonNotUsed:
		return "category not used by purpose"
	case ReasonPaymentOutsidePayment:
		return "payment data outside payment"
	case ReasonConsentMissing:
		return "consent missing"
	case ReasonObjection:
		return "objection in force"
	case ReasonMarketingSuppressed:
		return "marketing suppressed"
	case ReasonRestricted:
		return "processing restricted"
	case ReasonRoleLacksPurpose:
		return "the staff role may not use this purpose"
	}
	return "unknown reason"
}

// MarshalText writes the reason as its words.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Decision is the guard's answer.
type Decision struct {
	Allowed bool
	Reason  Reason
}

// Denial is a refused use of personal data. It is the error behind
// (*Guard).Check, and what is audited.
type Denial struct {
	SubjectID string
	Purpose   string
	Category  string
	Reason    Reason
	// Actor is who asked ("staff:ID", "subject", "system"), when known.
	Actor string
	// Count and Minute summarise the denials of a hot path (collection),
	// audited once a minute per kind: how many, in which minute (RFC 3339).
	// A single denial leaves both zero.
	Count  int
	Minute string
}

func (d *Denial) Error() string {
	return fmt.Sprintf("policy: purpose %s may not use %s of subject %s: %s", d.Purpose, d.Category, d.SubjectID, d.Reason)
}

// DenialRecorder records denials (the audit log implements it).
type DenialRecorder interface {
	RecordDenial(ctx context.Context, d Denial) error
}

// gPurpose is a purpose compiled for the guard.
type gPurpose struct {
	id              string
	uses            uint64 // bit i: may use category i
	consent         bool
	directMarketing bool
	readsPayment    bool
	builtin         bool
	subjectRequest  bool
	whileRestricted bool // storage, legal-claims, security, subject-request
}

// Guard answers "may purpose P use category C of this subject now?" from
// the policy and the subject's state. It is immutable and safe for
// concurrent use.
type Guard struct {
	rec        DenialRecorder
	purIdx     map[string]int
	catIdx     map[string]int
	purTable   idTable // purIdx for the hot path
	catTable   idTable // catIdx for the hot path
	purposes   []gPurpose
	categories []string
	payment    uint64 // categories holding payment data
	retention  map[string]Retention
	recipients []*Recipient
}

// NewGuard compiles the guard of a policy. rec may be nil.
func NewGuard(p *Policy, rec DenialRecorder) *Guard {
	g := &Guard{
		rec:       rec,
		purIdx:    make(map[string]int, len(p.purposes)),
		catIdx:    make(map[string]int, len(p.categories)),
		retention: make(map[string]Retention, len(p.categories)),
	}
	for i, c := range p.categories {
		if i >= maxCategories {
			break // Check refuses such a policy; never index past the mask
		}
		g.catIdx[c.ID] = i
		g.categories = append(g.categories, c.ID)
		if c.Payment {
			g.payment |= 1 << i
		}
		if c.Retention.IsSet() {
			g.retention[c.ID] = c.Retention
		}
	}
	for _, pu := range p.purposes {
		gp := gPurpose{
			id:              pu.ID,
			consent:         pu.Basis == BasisConsent,
			directMarketing: pu.DirectMarketing,
			readsPayment:    pu.ID == PaymentPurpose || pu.ID == SubjectRequest,
			builtin:         pu.Builtin,
			subjectRequest:  pu.ID == SubjectRequest,
			whileRestricted: pu.Builtin,
		}
		for _, c := range pu.Uses {
			if i, ok := g.catIdx[c]; ok {
				gp.uses |= 1 << i
			}
		}
		g.purIdx[pu.ID] = len(g.purposes)
		g.purposes = append(g.purposes, gp)
	}
	g.recipients = append(g.recipients, p.Recipients...)
	g.index()
	return g
}

// index builds the hot-path lookup tables from the maps.
func (g *Guard) index() {
	ids := make([]string, len(g.purposes))
	for i, p := range g.purposes {
		ids[i] = p.id
	}
	g.purTable = newIDTable(ids)
	g.catTable = newIDTable(g.categories)
}

// Decide answers whether purpose may use category of the subject in state
// s (nil: nothing known, so no consent). It does not allocate.
//
// The checks run in this order, and the first that fails is the reason:
// the purpose and category exist; payment data only for payment and
// subject-request; the purpose uses the category; subject-request is then
// always allowed; a restriction covering the category allows only the
// built-ins; the other built-ins are then allowed (an objection to them
// is weighed by staff, not the guard); an objection to the purpose, or for
// direct marketing a marketing suppression or an objection to direct
// marketing, denies; a consent-based purpose needs consent.
func (g *Guard) Decide(purpose, category string, s *State) Decision {
	pi := g.purTable.lookup(purpose)
	if pi < 0 {
		return Decision{Reason: ReasonUnknownPurpose}
	}
	ci := g.catTable.lookup(category)
	if ci < 0 {
		return Decision{Reason: ReasonUnknownCategory}
	}
	gp := &g.purposes[pi]
	bit := uint64(1) << ci
	if g.payment&bit != 0 && !gp.readsPayment {
		return Decision{Reason: ReasonPaymentOutsidePayment}
	}
	if gp.uses&bit == 0 {
		return Decision{Reason: ReasonNotUsed}
	}
	if gp.subjectRequest {
		return Decision{Allowed: true}
	}
	if s == nil {
		if gp.consent {
			return Decision{Reason: ReasonConsentMissing}
		}
		return Decision{Allowed: true}
	}
	if s.Restricted && !gp.whileRestricted && restricts(s.RestrictedCategories, category) {
		return Decision{Reason: ReasonRestricted}
	}
	if gp.builtin {
		return Decision{Allowed: true}
	}
	if s.Objections[purpose] {
		return Decision{Reason: ReasonObjection}
	}
	if gp.directMarketing {
		if s.MarketingSuppressed {
			return Decision{Reason: ReasonMarketingSuppressed}
		}
		if s.Objections[DirectMarketing] {
			return Decision{Reason: ReasonObjection}
		}
	}
	if gp.consent && !s.Consents[purpose] {
		return Decision{Reason: ReasonConsentMissing}
	}
	return Decision{Allowed: true}
}

func restricts(cats []string, category string) bool {
	if len(cats) == 0 {
		return true
	}
	for _, c := range cats {
		if c == category {
			return true
		}
	}
	return false
}

// Check is Decide for code about to read data: nil when allowed;
// otherwise the denial is recorded and returned as an error with code
// fault.PurposeDenied that errors.As finds as a *Denial. If recording
// fails, the returned error wraps both.
func (g *Guard) Check(ctx context.Context, purpose, category string, s *State) error {
	d := g.Decide(purpose, category, s)
	if d.Allowed {
		return nil
	}
	den := &Denial{Purpose: purpose, Category: category, Reason: d.Reason}
	if s != nil {
		den.SubjectID = s.SubjectID
	}
	err := &fault.Error{Code: fault.PurposeDenied, Message: "the privacy policy does not allow this use of personal data (" + d.Reason.String() + ")", Err: den}
	if g.rec != nil {
		if rerr := g.rec.RecordDenial(ctx, *den); rerr != nil {
			return fmt.Errorf("%w; policy: record denial: %w", err, rerr)
		}
	}
	return err
}

// Retention is the rule for a category under this guard.
func (g *Guard) Retention(category string) (Retention, bool) {
	r, ok := g.retention[category]
	return r, ok
}

// Recipients are the recipients this guard lets data go to.
func (g *Guard) Recipients() []*Recipient { return g.recipients }

// MayDisclose reports whether data of category may go to the recipient
// for purpose: the recipient must be declared with both, and the purpose
// must use the category (promise J11). The subject's state is checked
// separately with Decide.
func (g *Guard) MayDisclose(recipientID, purpose, category string) bool {
	for _, r := range g.recipients {
		if r.ID != recipientID {
			continue
		}
		if !slices.Contains(r.Purposes, purpose) || !slices.Contains(r.Categories, category) {
			return false
		}
		d := g.Decide(purpose, category, nil)
		return d.Allowed || d.Reason == ReasonConsentMissing
	}
	return false
}

// Stricter returns a guard that allows only what both g and other allow:
// a purpose must exist in both and may use a category only if both let
// it; it needs consent if either version bases it on consent, and counts
// as direct marketing if either does; a category is payment data if
// either says so; retention is the shorter of the two; recipients are
// those both name, with the purposes and categories both give them. The
// denial recorder is g's. This is the guard for a member who has not yet
// accepted a change that reduces their rights.
func (g *Guard) Stricter(other *Guard) *Guard {
	s := &Guard{
		rec:       g.rec,
		purIdx:    map[string]int{},
		catIdx:    map[string]int{},
		retention: map[string]Retention{},
	}
	// Categories: the union, so both versions' names resolve; one the
	// other version lacks is used by none of its purposes and so by none
	// of the intersection's.
	addCat := func(id string) {
		if _, ok := s.catIdx[id]; !ok && len(s.categories) < maxCategories {
			s.catIdx[id] = len(s.categories)
			s.categories = append(s.categories, id)
		}
	}
	for _, c := range g.categories {
		addCat(c)
	}
	for _, c := range other.categories {
		addCat(c)
	}
	remap := func(from *Guard, mask uint64) uint64 {
		var out uint64
		for i, c := range from.categories {
			if mask&(1<<i) != 0 {
				if j, ok := s.catIdx[c]; ok {
					out |= 1 << j
				}
			}
		}
		return out
	}
	s.payment = remap(g, g.payment) | remap(other, other.payment)
	for _, a := range g.purposes {
		bi, ok := other.purIdx[a.id]
		if !ok {
			continue
		}
		b := other.purposes[bi]
		s.purIdx[a.id] = len(s.purposes)
		s.purposes = append(s.purposes, gPurpose{
			id:              a.id,
			uses:            remap(g, a.uses) & remap(other, b.uses),
			consent:         a.consent || b.consent,
			directMarketing: a.directMarketing || b.directMarketing,
			readsPayment:    a.readsPayment && b.readsPayment,
			builtin:         a.builtin && b.builtin,
			subjectRequest:  a.subjectRequest && b.subjectRequest,
			whileRestricted: a.whileRestricted && b.whileRestricted,
		})
	}
	for _, c := range s.categories {
		ra, oka := g.retention[c]
		rb, okb := other.retention[c]
		if oka || okb {
			s.retention[c] = Shorter(ra, rb)
		}
	}
	for _, ra := range g.recipients {
		for _, rb := range other.recipients {
			if ra.ID != rb.ID {
				continue
			}
			r := *ra
			r.Purposes = intersect(ra.Purposes, rb.Purposes)
			r.Categories = intersect(ra.Categories, rb.Categories)
			if ra.Country != rb.Country {
				continue // a recipient that moved is a different transfer; neither version alone covers it
			}
			s.recipients = append(s.recipients, &r)
		}
	}
	s.index()
	return s
}

func intersect(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
