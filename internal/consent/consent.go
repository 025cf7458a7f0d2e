// Package consent owns the consent ledger: an append-only history of every
// consent given, withdrawn or refused — by whom (a pseudonymous subject
// id), for which purpose, under which policy version and notice, how (a
// form, the API, an emailed link, a Global Privacy Control signal, staff on
// the person's request), where, when, and with the evidence needed to prove
// it that identifies no one beyond need (browser family, network /24 or
// /48). Every change also updates the subject-state store (package
// subject), which the policy guard reads, and yields a receipt signed with
// the deployment's Ed25519 key that the person can keep and anyone can
// verify offline (VerifyReceipt). The key is derived from the master key
// with HKDF-SHA-256, info SigningInfo ("steward receipt signing v1"), so
// there is no extra secret to store or back up; its public half is served
// at /.well-known/steward/receipt-key as a JWK (?format=pem for PEM).
//
// What a record says (purpose, list scope, collection point, evidence,
// receipt) is sealed with the subject's key for the category of field
// consent and opened through the door: for the subject, and for staff
// proving a consent (Proof). The state in force is decided from blind
// indexes of purpose and scope, without opening anything. The ledger is
// kept after an erasure as proof, and with it that key.
//
// The package also signs the links Steward mails (unsubscribe,
// preferences, confirmation) so that a link cannot be guessed, altered or
// moved to another list or person.
//
// Consent is per purpose. A newsletter list adds a scope: subscribing to
// list L records consent to L's purpose with scope "list:L", and
// unsubscribing withdraws that scope only; an application that signs
// people in with Steward adds scope "client:C", which is consent to what
// that application receives only: it has its own state, and never makes
// the purpose consented. The purpose counts as consented while a
// purpose-wide consent or any list-scoped one is in force; a purpose-wide
// withdrawal (the privacy centre, GPC) ends every scope.
//
// GPC: a "Sec-GPC: 1" signal from a signed-in member opts them out of every
// purpose the policy marks as sale/sharing or third-party marketing. When
// it disagrees with an earlier explicit choice, both are recorded and GPC
// wins; an explicit opt-in made on the site after the signal wins over the
// signal, and repeated signals then change nothing. A signal that meets a
// state it already produced records nothing, so the ledger does not grow
// with every request.
package consent

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/store"
	"steward/internal/subject"
)

// State is the choice a record holds.
type State string

const (
	Given     State = "given"
	Withdrawn State = "withdrawn"
	// Refused is a "no" to a first request for consent: it changes nothing
	// in force but proves the person was asked and declined.
	Refused State = "refused"
)

// Method is how a choice reached Steward.
type Method string

const (
	MethodForm      Method = "form"       // a page of the site or the privacy centre
	MethodAPI       Method = "api"        // the JSON API, called by the site for the person
	MethodEmailLink Method = "email_link" // a signed link in a mail (confirm, unsubscribe)
	MethodGPC       Method = "gpc"        // the Sec-GPC request header
	MethodStaff     Method = "staff"      // staff, on the person's request by mail or phone
)

func (s State) valid() bool { return s == Given || s == Withdrawn || s == Refused }

func (m Method) valid() bool {
	switch m {
	case MethodForm, MethodAPI, MethodEmailLink, MethodGPC, MethodStaff:
		return true
	}
	return false
}

// Record is one row of the ledger.
type Record struct {
	ID              string    `json:"id"`
	SubjectID       string    `json:"subject_id"`
	Purpose         string    `json:"purpose"`
	Scope           string    `json:"scope,omitempty"`
	State           State     `json:"state"`
	Method          Method    `json:"method"`
	CollectionPoint string    `json:"collection_point"`
	PolicyVersion   int       `json:"policy_version"`
	PolicyHash      string    `json:"policy_hash"`
	NoticeHash      string    `json:"notice_hash"`
	Actor           string    `json:"actor"`
	Evidence        Evidence  `json:"evidence"`
	CreatedAt       time.Time `json:"created_at"`
	// Receipt is the signed receipt of this change, as issued.
	Receipt json.RawMessage `json:"receipt"`
}

// Change is a choice to record.
type Change struct {
	SubjectID string
	Purpose   string
	// Scope is "" for the whole purpose, "list:ID" for one newsletter
	// list, or "client:ID" for what one application that signs people in
	// with Steward may receive.
	Scope           string
	State           State
	Method          Method
	CollectionPoint string // the page or endpoint where the choice was made
	Evidence        Evidence
	// Actor is who recorded it: the subject's own id, "staff:<subject id>"
	// or "system" (GPC). Empty means the subject.
	Actor string
}

// Hook runs in the transaction of every recorded change, after the
// subject state was updated. Package newsletter uses it to end
// subscriptions when a purpose-wide consent is withdrawn.
type Hook func(ctx context.Context, q store.Q, r Record) error

// Deps are what the ledger needs.
type Deps struct {
	DB       *store.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Subjects *subject.Store
	// Door seals and opens the records; nil means the door the subject
	// store was given (subject.Store.SealWith), which is the same one.
	Door   *door.Door
	Audit  *audit.Log
	Signer *Signer
	Policy policy.Published
	// BaseURL is the public URL of the deployment; receipts link to the
	// policy version at BaseURL/privacy/versions/N.
	BaseURL string
}

// Ledger records consent changes.
type Ledger struct {
	d Deps

	mu    sync.Mutex
	hooks []Hook
}

// New returns a ledger.
func New(d Deps) (*Ledger, error) {
	if d.DB == nil || d.Clock == nil || d.Subjects == nil || d.Signer == nil || d.Policy.Policy == nil {
		return nil, errors.New("consent: DB, Clock, Subjects, Signer and Policy are required")
	}
	if d.Door == nil {
		d.Door = d.Subjects.Door()
	}
	if d.Door == nil {
		return nil, errors.New("consent: a door is required (Deps.Door, or the subject store's)")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	d.BaseURL = strings.TrimRight(d.BaseURL, "/")
	l := &Ledger{d: d}
	// The ledger rows of a merged subject follow it; the receipts keep the
	// id they were issued to: they are historical proofs.
	d.Subjects.OnMerge(subject.Repoint("consent", "consent_records"))
	return l, nil
}

// OnChange registers a hook run for every recorded change. Register at
// start-up.
func (l *Ledger) OnChange(h Hook) {
	l.mu.Lock()
	l.hooks = append(l.hooks, h)
	l.mu.Unlock()
}

// Signer returns the receipt signer (for the well-known key endpoint).
func (l *Ledger) Signer() *Signer { return l.d.Signer }

// PolicyInForce returns the policy the ledger records against.
func (l *Ledger) PolicyInForce() policy.Published { return l.d.Policy }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the schema of module "consent".
func Migrations() store.Migrations {
	return store.Embedded("consent", migrationFiles)
}

// Tables declares the ledger for the personal-data registry.
func Tables() []registry.Table {
	c := func(name string) registry.Column { return registry.Column{Name: name, Field: fieldConsent} }
	sealed := func(name string) registry.Column {
		return registry.Column{Name: name, Field: fieldConsent, Sensitive: true}
	}
	hashed := func(name string) registry.Column {
		return registry.Column{Name: name, Field: fieldConsent, Hashed: true}
	}
	legacy := func(name string) registry.Column {
		return registry.Column{Name: name, Field: fieldConsent, Legacy: true}
	}
	return []registry.Table{{
		Name: "consent_records", Owner: "consent", Dataset: "consent_records",
		SubjectColumn: "subject_id", Origin: registry.Provided,
		SourceColumn: "method", PolicyVersionColumn: "policy_version",
		// Proof of consent (GDPR Art. 7(1)) is kept after erasure for as long
		// as the policy retains the consent-record category: the rows carry
		// no name, email or address, only the pseudonymous subject id, and
		// what they say is sealed. Keeping the rows keeps the subject's key
		// of their category: the erasure does not destroy a key that still
		// seals kept data.
		KeptBecause: "legal-obligation",
		Description: "The consent ledger: every consent given, withdrawn or refused, with the policy version shown, how and where, coarse evidence and the signed receipt.",
		Columns: []registry.Column{
			{Name: "id"},
			{Name: "subject_id"},
			sealed("purpose_sealed"),
			hashed("purpose_index"),
			legacy("purpose"),
			sealed("scope_sealed"),
			hashed("scope_index"),
			legacy("scope"),
			c("state"),
			c("method"),
			sealed("collection_point_sealed"),
			legacy("collection_point"),
			{Name: "policy_version"},
			{Name: "policy_hash"},
			{Name: "notice_hash"},
			{Name: "actor"},
			sealed("ua_family_sealed"),
			legacy("ua_family"),
			sealed("network_sealed"),
			legacy("network"),
			{Name: "created_at"},
			sealed("receipt_sealed"),
			legacy("receipt"),
		},
	}}
}

// Consentable reports whether a person may give or withdraw consent to the
// purpose through the ledger: consent-based purposes, and purposes a GPC
// signal opts out of (sale/sharing, third-party marketing), whatever their
// basis, where "withdrawn" is an opt-out the person may lift again.
func Consentable(p *policy.Purpose) bool {
	if p == nil || p.Builtin {
		return false
	}
	return p.Basis == policy.BasisConsent || p.SaleOrShare || p.ThirdPartyMarketing
}

// NoticeHash is the SHA-256 (hex) of the text a person was shown when
// asked for the purpose: the purpose's notice, or its description.
func NoticeHash(p *policy.Purpose) string {
	text := p.Notice
	if text == "" {
		text = p.Description
	}
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

const maxCollectionPoint = 200

func cleanText(field, s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", fault.FieldError(field, "%s is not valid UTF-8", field)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "", fault.FieldError(field, "%s contains a control character", field)
	}
	if len(s) > max {
		return "", &fault.Error{Code: fault.TooLarge, Field: field, Message: fmt.Sprintf("%s is longer than %d bytes", field, max)}
	}
	return s, nil
}

func validScope(scope string) bool {
	if scope == "" {
		return true
	}
	id, ok := strings.CutPrefix(scope, "list:")
	if !ok {
		id, ok = strings.CutPrefix(scope, "client:")
	}
	if !ok || id == "" || len(id) > 64 {
		return false
	}
	return !strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	})
}

// Record appends a change to the ledger in q (a transaction, so the
// change, the subject state and the audit entry commit together), updates
// the subject state the guard reads, and returns the record with its
// signed receipt.
func (l *Ledger) Record(ctx context.Context, q store.Q, c Change) (Record, error) {
	p := l.d.Policy.Policy
	pu := p.Purpose(c.Purpose)
	if !Consentable(pu) {
		return Record{}, fault.FieldError("purpose", "%q is not a purpose you can consent to under this policy", c.Purpose)
	}
	if !c.State.valid() {
		return Record{}, fault.FieldError("state", "state must be given, withdrawn or refused")
	}
	if !c.Method.valid() {
		return Record{}, fault.FieldError("method", "unknown consent method")
	}
	if !validScope(c.Scope) {
		return Record{}, fault.FieldError("scope", "scope must be empty, list:ID or client:ID")
	}
	cp, err := cleanText("collection_point", c.CollectionPoint, maxCollectionPoint)
	if err != nil {
		return Record{}, err
	}
	sub, err := l.live(ctx, q, c.SubjectID)
	if err != nil {
		return Record{}, err
	}
	hist, err := l.history(ctx, q, sub.ID, c.Purpose)
	if err != nil {
		return Record{}, err
	}
	return l.append(ctx, q, sub.ID, pu, hist, Change{
		SubjectID: sub.ID, Purpose: c.Purpose, Scope: c.Scope, State: c.State, Method: c.Method,
		CollectionPoint: cp, Evidence: c.Evidence, Actor: c.Actor,
	})
}

// Change records c in a transaction of its own.
func (l *Ledger) Change(ctx context.Context, c Change) (Record, error) {
	var rec Record
	err := l.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = l.Record(ctx, tx, c)
		return err
	})
	return rec, err
}

func (l *Ledger) append(ctx context.Context, q store.Q, subjectID string, pu *policy.Purpose, hist []entry, c Change) (Record, error) {
	now := l.d.Clock.Now()
	// Records of one purpose are ordered by time; never let two share an
	// instant (a fake clock, or two changes in one microsecond), or the
	// order — and with it the state in force — would be ambiguous.
	if n := len(hist); n > 0 && !now.After(hist[n-1].at) {
		now = hist[n-1].at.Add(time.Microsecond)
	}
	actor := c.Actor
	if actor == "" {
		actor = subjectID
	}
	rec := Record{
		ID: store.NewID("cr_"), SubjectID: subjectID, Purpose: pu.ID, Scope: c.Scope, State: c.State,
		Method: c.Method, CollectionPoint: c.CollectionPoint,
		PolicyVersion: l.d.Policy.Number(), PolicyHash: l.d.Policy.Policy.Hash(), NoticeHash: NoticeHash(pu),
		Actor: actor, Evidence: c.Evidence, CreatedAt: now,
	}
	receipt, err := l.d.Signer.Sign(l.receipt(rec, pu))
	if err != nil {
		return Record{}, err
	}
	rec.Receipt = receipt
	if err := l.insert(ctx, q, rec); err != nil {
		return Record{}, err
	}
	hist = append(hist, entry{scope: l.scopeKey(rec.Scope), state: rec.State, method: rec.Method, at: rec.CreatedAt})
	in := effective(hist)
	if pu.Basis == policy.BasisConsent {
		err = l.d.Subjects.SetConsent(ctx, q, subjectID, pu.ID, in)
	} else {
		// An opt-out purpose (sale/sharing on another basis): withdrawing
		// is an objection, giving lifts it.
		err = l.d.Subjects.SetObjection(ctx, q, subjectID, pu.ID, !in)
	}
	if err != nil {
		return Record{}, fmt.Errorf("consent: update subject state: %w", err)
	}
	// What an application may receive has a state of its own, never the
	// purpose's: each application that was ever answered about this
	// purpose, after any change to it (a purpose-wide withdrawal ends it).
	if pu.Basis == policy.BasisConsent {
		for _, r := range l.d.Policy.Policy.Clients() {
			scope := clientScopePrefix + r.ID
			key := l.scopeKey(scope)
			if !slices.ContainsFunc(hist, func(e entry) bool { return e.scope == key }) {
				continue
			}
			if err := l.d.Subjects.SetConsent(ctx, q, subjectID, policy.ScopedConsent(pu.ID, scope), scopeInForce(hist, key)); err != nil {
				return Record{}, fmt.Errorf("consent: update subject state: %w", err)
			}
		}
	}
	if l.d.Audit != nil {
		detail := map[string]string{"purpose": rec.Purpose, "method": string(rec.Method), "record": rec.ID,
			"policy_version": strconv.Itoa(rec.PolicyVersion)}
		if rec.Scope != "" {
			detail["scope"] = rec.Scope
		}
		if err := l.d.Audit.Record(ctx, q, audit.Event{Actor: rec.Actor, Action: "consent." + string(rec.State), Subject: subjectID, Detail: detail}); err != nil {
			return Record{}, fmt.Errorf("consent: audit: %w", err)
		}
	}
	l.mu.Lock()
	hooks := slices.Clone(l.hooks)
	l.mu.Unlock()
	for _, h := range hooks {
		if err := h(ctx, q, rec); err != nil {
			return Record{}, fmt.Errorf("consent: change hook: %w", err)
		}
	}
	return rec, nil
}

// entry is what deciding the state in force needs of one record: its
// scope ("" for the whole purpose; otherwise any key that is the same for
// the same list, such as the scope's blind index), state, method and time.
type entry struct {
	scope  string
	state  State
	method Method
	at     time.Time
}

// entryOf is the entry of an opened record.
func entryOf(r Record) entry {
	return entry{scope: r.Scope, state: r.State, method: r.Method, at: r.CreatedAt}
}

// effective computes whether consent to a purpose is in force from its
// records in time order: a purpose-wide "given" counts until a
// purpose-wide withdrawal or refusal, which also ends every list scope; a
// list scope counts until that list is withdrawn.
func effective(hist []entry) bool {
	purposeWide := false
	lists := map[string]bool{}
	for _, r := range hist {
		if clientKey(r.scope) {
			continue // an application's consent is not the purpose's
		}
		given := r.state == Given
		if r.scope == "" {
			purposeWide = given
			if !given {
				clear(lists)
			}
			continue
		}
		lists[r.scope] = given
	}
	if purposeWide {
		return true
	}
	for _, on := range lists {
		if on {
			return true
		}
	}
	return false
}

// ScopeInForce reports whether the subject's consent to purpose with
// scope is in force: the scope's newest record gave it, and no
// purpose-wide withdrawal or refusal came after. Nothing is opened.
func (l *Ledger) ScopeInForce(ctx context.Context, q store.Q, subjectID, purpose, scope string) (bool, error) {
	if scope == "" || !validScope(scope) {
		return false, fault.FieldError("scope", "scope must be list:ID or client:ID")
	}
	hist, err := l.history(ctx, q, subjectID, purpose)
	if err != nil {
		return false, err
	}
	return scopeInForce(hist, l.scopeKey(scope)), nil
}

// scopeInForce decides one scope from a purpose's records in time order:
// its newest record gave it, and no purpose-wide withdrawal or refusal
// came after.
func scopeInForce(hist []entry, key string) bool {
	in := false
	for _, r := range hist {
		switch {
		case r.scope == "" && r.state != Given:
			in = false
		case r.scope == key:
			in = r.state == Given
		}
	}
	return in
}

func (l *Ledger) receipt(rec Record, pu *policy.Purpose) Receipt {
	p := l.d.Policy.Policy
	consentType := "EXPLICIT"
	if rec.Method == MethodGPC {
		consentType = "GPC"
	}
	var categories []string
	categories = append(categories, pu.Uses...)
	var cats []string
	if pu.DirectMarketing {
		cats = append(cats, "direct-marketing")
	}
	if pu.SaleOrShare {
		cats = append(cats, "sale-or-share")
	}
	if pu.ThirdPartyMarketing {
		cats = append(cats, "third-party-marketing")
	}
	var thirdParties []string
	for _, r := range p.RecipientsFor(pu.ID) {
		if r.Role != policy.RoleProcessor {
			thirdParties = append(thirdParties, r.Name)
		}
	}
	name := pu.Description
	if name == "" {
		name = pu.ID
	}
	return Receipt{
		Version:          ReceiptVersion,
		Jurisdiction:     p.Controller.Authority.Name,
		ConsentTimestamp: rec.CreatedAt.Unix(),
		IssuedAt:         rec.CreatedAt.Format("2006-01-02T15:04:05.000000Z07:00"),
		CollectionMethod: string(rec.Method),
		ConsentReceiptID: rec.ID,
		Language:         "en",
		PIIPrincipalID:   rec.SubjectID,
		PIIControllers: []Controller{{
			Name: p.Controller.Name, Contact: p.Controller.Contact, Address: p.Controller.Address, Email: p.Controller.Contact,
		}},
		PolicyURL: l.d.BaseURL + "/privacy/versions/" + strconv.Itoa(rec.PolicyVersion),
		Services: []Service{{Service: p.Controller.Name, Purposes: []ReceiptPurpose{{
			Purpose: name, PurposeID: pu.ID, ConsentType: consentType,
			PurposeCategory: nonNil(cats), PIICategory: nonNil(categories),
			Termination:          "Withdraw at any time in the privacy centre (/account/privacy) or by the link in any mail.",
			ThirdPartyDisclosure: len(thirdParties) > 0, ThirdPartyName: strings.Join(thirdParties, ", "),
		}}}},
		SPICat:          []string{},
		State:           string(rec.State),
		Scope:           rec.Scope,
		PolicyVersion:   rec.PolicyVersion,
		PolicyHash:      rec.PolicyHash,
		NoticeHash:      rec.NoticeHash,
		CollectionPoint: rec.CollectionPoint,
		Evidence:        rec.Evidence,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// live resolves a subject id, following a merge, and refuses an unknown or
// erased subject.
func (l *Ledger) live(ctx context.Context, q store.Q, id string) (subject.Subject, error) {
	for range 8 {
		sub, err := l.d.Subjects.Get(ctx, q, id)
		if err != nil {
			return subject.Subject{}, err
		}
		if sub.MergedInto != "" {
			id = sub.MergedInto
			continue
		}
		if sub.Erased() {
			return subject.Subject{}, fault.New(fault.Conflict, "the subject was erased")
		}
		return sub, nil
	}
	return subject.Subject{}, fmt.Errorf("consent: merge chain of %s too long", id)
}

// History returns every record of the subject (following a merge), oldest
// first, opened for the subject's own request: for the privacy centre,
// access and export.
func (l *Ledger) History(ctx context.Context, subjectID string) ([]Record, error) {
	return l.records(ctx, l.d.DB, door.Subject(), subjectID, "")
}

// Proof returns every record of the subject (following a merge), oldest
// first, opened for use: staff proving a consent name the purpose their
// screen serves (door.Staff), and a role the policy does not let name it
// is refused and audited.
func (l *Ledger) Proof(ctx context.Context, use door.Use, subjectID string) ([]Record, error) {
	return l.records(ctx, l.d.DB, use, subjectID, "")
}

// Get returns one record of the subject, opened for the subject's own
// request. fault.NotFound for another's.
func (l *Ledger) Get(ctx context.Context, subjectID, recordID string) (Record, error) {
	recs, err := l.records(ctx, l.d.DB, door.Subject(), subjectID, recordID)
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 {
		return Record{}, fault.New(fault.NotFound, "no such consent record")
	}
	return recs[0], nil
}

// Choice is the state in force for one purpose a person can decide on.
type Choice struct {
	Purpose     string `json:"purpose"`
	Description string `json:"description"`
	Notice      string `json:"notice,omitempty"`
	Basis       string `json:"basis"`
	// GPC marks purposes a Global Privacy Control signal opts out of.
	GPC bool `json:"gpc"`
	// State is "given", "withdrawn", "refused", or "not_asked" when there
	// is no record; for opt-out purposes "not_asked" means not opted out.
	State string `json:"state"`
	// InForce is what the guard acts on.
	InForce bool `json:"in_force"`
	// Latest is the last record of the purpose, with its receipt.
	Latest *Record `json:"latest,omitempty"`
}

// Choices returns, for every purpose the person may decide on, what is in
// force and the last record.
func (l *Ledger) Choices(ctx context.Context, subjectID string) ([]Choice, error) {
	hist, err := l.History(ctx, subjectID)
	if err != nil {
		return nil, err
	}
	byPurpose := map[string][]Record{}
	for _, r := range hist {
		if strings.HasPrefix(r.Scope, clientScopePrefix) {
			continue // an application's consent: shown with the application, not the purpose
		}
		byPurpose[r.Purpose] = append(byPurpose[r.Purpose], r)
	}
	var out []Choice
	for _, pu := range l.d.Policy.Policy.Purposes() {
		if !Consentable(pu) {
			continue
		}
		c := Choice{Purpose: pu.ID, Description: pu.Description, Notice: pu.Notice, Basis: string(pu.Basis),
			GPC: pu.SaleOrShare || pu.ThirdPartyMarketing, State: "not_asked"}
		rs := byPurpose[pu.ID]
		if len(rs) > 0 {
			last := rs[len(rs)-1]
			c.Latest = &last
			c.State = string(last.State)
			es := make([]entry, len(rs))
			for i, r := range rs {
				es[i] = entryOf(r)
			}
			c.InForce = effective(es)
		}
		if pu.Basis != policy.BasisConsent && len(rs) == 0 {
			c.InForce = true // an opt-out purpose runs until the person opts out
		}
		out = append(out, c)
	}
	return out, nil
}

// ApplyGPC records a Global Privacy Control signal from a signed-in
// subject: every sale/sharing and third-party-marketing purpose is opted
// out of, unless the signal already did so, or the person opted in
// explicitly on the site after an earlier signal (then their later, explicit
// choice stands). It returns the records it appended (none when nothing
// changed), so repeated requests add nothing. It reads first and takes the
// write lock only when the signal changes something, so a browser that
// sends it on every request costs one read per request.
func (l *Ledger) ApplyGPC(ctx context.Context, subjectID string, ev Evidence) ([]Record, error) {
	pending, err := l.gpcPending(ctx, l.d.DB, subjectID)
	if err != nil || !pending {
		return nil, err
	}
	var out []Record
	err = l.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = l.applyGPC(ctx, tx, subjectID, ev)
		return err
	})
	return out, err
}

func (l *Ledger) applyGPC(ctx context.Context, q store.Q, subjectID string, ev Evidence) ([]Record, error) {
	purposes := l.d.Policy.Policy.GPCPurposes()
	if len(purposes) == 0 {
		return nil, nil
	}
	sub, err := l.live(ctx, q, subjectID)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, id := range purposes {
		pu := l.d.Policy.Policy.Purpose(id)
		hist, err := l.history(ctx, q, sub.ID, id)
		if err != nil {
			return nil, err
		}
		if !gpcNeeded(hist) {
			continue
		}
		rec, err := l.append(ctx, q, sub.ID, pu, hist, Change{
			SubjectID: sub.ID, Purpose: id, State: Withdrawn, Method: MethodGPC,
			CollectionPoint: "Sec-GPC request header", Evidence: ev, Actor: "system",
		})
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// gpcNeeded decides whether a GPC signal must be recorded for a purpose
// with this history (time order):
//   - the last record came from GPC: nothing new to say;
//   - the last record is an explicit "given" made after an earlier GPC
//     record: the person opted in on the site knowing their browser sends
//     the signal, and that later explicit choice stands;
//   - otherwise (no record, an explicit choice from before any signal, or
//     an explicit withdrawal): record the signal once.
func gpcNeeded(hist []entry) bool {
	n := len(hist)
	if n == 0 {
		return true
	}
	last := hist[n-1]
	if last.method == MethodGPC {
		return false
	}
	if last.state == Given {
		for _, r := range hist[:n-1] {
			if r.method == MethodGPC {
				return false
			}
		}
	}
	return true
}

// GPCPending reports, without writing, whether a signal from the subject
// would change anything.
func (l *Ledger) GPCPending(ctx context.Context, subjectID string) (bool, error) {
	return l.gpcPending(ctx, l.d.DB, subjectID)
}

func (l *Ledger) gpcPending(ctx context.Context, q store.Q, subjectID string) (bool, error) {
	purposes := l.d.Policy.Policy.GPCPurposes()
	if len(purposes) == 0 {
		return false, nil
	}
	// The purposes are compared by their blind index: nothing is opened
	// on this path, which a browser sending the signal takes on every
	// request.
	rows, err := q.QueryContext(ctx, `SELECT purpose_index, state, method FROM consent_records
		WHERE subject_id = $1 ORDER BY created_at, id`, subjectID)
	if err != nil {
		return false, fmt.Errorf("consent: gpc: %w", err)
	}
	defer rows.Close()
	byPurpose := map[string][]entry{}
	for rows.Next() {
		var index []byte
		var e entry
		if err := rows.Scan(&index, &e.state, &e.method); err != nil {
			return false, fmt.Errorf("consent: gpc: %w", err)
		}
		byPurpose[string(index)] = append(byPurpose[string(index)], e)
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("consent: gpc: %w", err)
	}
	for _, id := range purposes {
		if gpcNeeded(byPurpose[string(l.purposeIndex(id))]) {
			return true, nil
		}
	}
	return false, nil
}
