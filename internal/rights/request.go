package rights

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"steward/internal/audit"
	"steward/internal/clock"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// Type is a kind of rights request.
type Type string

// The request types (GDPR Art. 15 to 21).
const (
	Access        Type = "access"
	Portability   Type = "portability"
	Rectification Type = "rectification"
	Restriction   Type = "restriction"
	Objection     Type = "objection"
	Erasure       Type = "erasure"
)

// Types lists the request types.
func Types() []Type {
	return []Type{Access, Portability, Rectification, Restriction, Objection, Erasure}
}

func (t Type) valid() bool {
	for _, x := range Types() {
		if t == x {
			return true
		}
	}
	return false
}

// Status is where a request stands.
type Status string

// The states of a request. received → verified → in_progress → completed
// or refused; a request whose identity is never proved expires. An
// extension keeps the state and moves the due date (Request.Extended).
const (
	StatusReceived   Status = "received"
	StatusVerified   Status = "verified"
	StatusInProgress Status = "in_progress"
	StatusCompleted  Status = "completed"
	StatusRefused    Status = "refused"
	StatusExpired    Status = "expired"
)

// Final reports whether nothing more happens to a request in this state.
func (s Status) Final() bool {
	return s == StatusCompleted || s == StatusRefused || s == StatusExpired
}

// Channels a request can come by.
const (
	ChannelAccount = "account" // a signed-in member, re-authenticated where needed
	ChannelEmail   = "email"   // a person proving an address with a mailed code
	ChannelStaff   = "staff"   // staff, for instance marking a member under age
)

// Params are the choices of a request: names and ids only, never values.
type Params struct {
	Purposes   []string `json:"purposes,omitempty"`
	Fields     []string `json:"fields,omitempty"`
	Categories []string `json:"categories,omitempty"`
	Items      []string `json:"items,omitempty"`
	// Restrict asks, with a rectification, that processing be restricted
	// while it is assessed (Art. 18(1)(a)).
	Restrict bool `json:"restrict,omitempty"`
	// Lift, with a restriction request, lifts the subject's own
	// restriction.
	Lift bool `json:"lift,omitempty"`
	// UnderAge marks the erasure of a member staff found under age (J26).
	UnderAge bool `json:"under_age,omitempty"`
}

// Request is one rights request.
type Request struct {
	ID        string
	SubjectID string
	Type      Type
	Scope     string // erasure scope
	Params    Params
	// Corrections (rectification: field → corrected value) and Reason
	// (the subject's explanation) are what the subject wrote: sealed at
	// rest, and set only on a request read for someone who may read them
	// (Mine, List, Review).
	Corrections     map[string]string
	Reason          string
	Status          Status
	Channel         string
	FiledBy         string
	SessionID       string
	ReceivedAt      time.Time
	DueAt           time.Time
	VerifyBy        time.Time // zero once verified
	VerifiedAt      time.Time
	CodeExpiresAt   time.Time
	CodeAttempts    int
	ExtendedMonths  int
	ExtensionReason string
	NeedsReview     bool
	RefusalReason   string
	Progress        int
	Phase           string
	Result          json.RawMessage
	HandledBy       string
	CompletedAt     time.Time
	UpdatedAt       time.Time

	codeHash, tokenHash []byte
	createdSubject      bool
	reason, corrections door.Sealed
}

// Extended reports whether the deadline was extended.
func (r Request) Extended() bool { return r.ExtendedMonths > 0 }

// Overdue reports whether an open request is past its due date.
func (r Request) Overdue(now time.Time) bool { return !r.Status.Final() && now.After(r.DueAt) }

// FirstMonthEnds is when the first month after receipt ends: the only time
// an extension may be given (Art. 12(3)).
func (r Request) FirstMonthEnds() time.Time { return clock.AddMonths(r.ReceivedAt, 1) }

// Filing is what a person asks for.
type Filing struct {
	Type        Type
	Scope       string
	Purposes    []string
	Fields      []string
	Categories  []string
	Items       []string
	Corrections map[string]string
	Reason      string
	Restrict    bool
	Lift        bool
}

const (
	maxReason     = 4000
	maxCorrection = 1000
	maxList       = 100
)

func cleanFree(field, s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", fault.FieldError(field, "%s is not valid UTF-8", field)
	}
	s = strings.TrimSpace(s)
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) {
		return "", fault.FieldError(field, "%s contains a control character", field)
	}
	if utf8.RuneCountInString(s) > max {
		return "", &fault.Error{Code: fault.TooLarge, Field: field, Message: fmt.Sprintf("%s is longer than %d characters", field, max)}
	}
	return s, nil
}

func checkNames(field string, list []string) error {
	if len(list) > maxList {
		return &fault.Error{Code: fault.TooLarge, Field: field, Message: fmt.Sprintf("at most %d %s", maxList, field)}
	}
	for _, v := range list {
		if v == "" || len(v) > 200 || strings.ContainsFunc(v, unicode.IsControl) || !utf8.ValidString(v) {
			return fault.FieldError(field, "%s holds an invalid name", field)
		}
	}
	return nil
}

// isDirectMarketing reports whether an objection to purpose stops direct
// marketing: the reserved key, or a purpose the policy marks so.
func (s *Service) isDirectMarketing(purpose string) bool {
	if purpose == policy.DirectMarketing {
		return true
	}
	p := s.pol.Purpose(purpose)
	return p != nil && p.DirectMarketing
}

// validate checks a filing against the policy. account says the subject
// has an account (some fields then belong to the account page).
func (s *Service) validate(ctx context.Context, f *Filing, channel string, hasAccount bool) error {
	if !f.Type.valid() {
		return fault.FieldError("type", "type must be one of access, portability, rectification, restriction, objection, erasure")
	}
	if !s.pol.Offers(string(f.Type)) {
		return &fault.Error{Code: fault.Forbidden, Field: "type", Message: fmt.Sprintf("the privacy policy does not offer the right of %s; write to %s", f.Type, s.pol.Controller.Contact)}
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"purposes", f.Purposes}, {"fields", f.Fields}, {"categories", f.Categories}, {"items", f.Items}} {
		if err := checkNames(l.name, l.list); err != nil {
			return err
		}
	}
	var err error
	if f.Reason, err = cleanFree("reason", f.Reason, maxReason); err != nil {
		return err
	}
	if (f.Reason != "" || len(f.Corrections) > 0) && s.pol.CategoryOfField(fieldRequest) == "" {
		return fault.FieldError("reason", "the privacy policy declares no field %s, so what you write in a request cannot be kept: leave it out, or write to %s",
			fieldRequest, s.pol.Controller.Contact)
	}
	if len(f.Corrections) > maxList {
		return &fault.Error{Code: fault.TooLarge, Field: "corrections", Message: "too many corrections"}
	}
	for k, v := range f.Corrections {
		if err := checkNames("corrections", []string{k}); err != nil {
			return err
		}
		if f.Corrections[k], err = cleanFree("corrections", v, maxCorrection); err != nil {
			return err
		}
	}
	knownField := func(field string) error {
		if s.pol.CategoryOfField(field) == "" {
			return fault.FieldError("fields", "the privacy policy declares no field %q", truncate(field, 64))
		}
		return nil
	}
	knownCategory := func(c string) error {
		if s.pol.Category(c) == nil {
			return fault.FieldError("categories", "the privacy policy declares no category %q", truncate(c, 64))
		}
		return nil
	}
	// Only the parameters of the type are kept.
	keep := Filing{Type: f.Type, Reason: f.Reason}
	switch f.Type {
	case Access, Portability:
	case Rectification:
		fields := append([]string{}, f.Fields...)
		for k := range f.Corrections {
			if !containsStr(fields, k) {
				fields = append(fields, k)
			}
		}
		if len(fields) == 0 {
			return fault.FieldError("fields", "name the fields that are wrong")
		}
		for _, fl := range fields {
			if err := knownField(fl); err != nil {
				return err
			}
			if hasAccount && channel == ChannelAccount && s.pol.SelfEditable(fl) {
				return fault.FieldError("fields", "you can correct %s yourself in your account (PATCH /api/v1/me)", fl)
			}
			if fl == "password" {
				return fault.FieldError("fields", "change your password with the password form")
			}
		}
		if f.Reason == "" {
			return fault.FieldError("reason", "explain why the data is inaccurate or incomplete")
		}
		keep.Fields, keep.Corrections, keep.Restrict = fields, f.Corrections, f.Restrict
	case Restriction:
		for _, c := range f.Categories {
			if err := knownCategory(c); err != nil {
				return err
			}
		}
		keep.Categories, keep.Lift = f.Categories, f.Lift
	case Objection:
		if len(f.Purposes) == 0 {
			return fault.FieldError("purposes", "name the purposes you object to")
		}
		needsReason := false
		for _, pid := range f.Purposes {
			if s.isDirectMarketing(pid) {
				continue
			}
			p := s.pol.Purpose(pid)
			if p == nil {
				return fault.FieldError("purposes", "the privacy policy declares no purpose %q", truncate(pid, 64))
			}
			switch {
			case p.Builtin && pid == policy.SubjectRequest:
				return fault.FieldError("purposes", "answering your own requests cannot be objected to")
			case p.Basis == policy.BasisConsent:
				return fault.FieldError("purposes", "%s is based on your consent: withdraw the consent instead", pid)
			case p.Basis == policy.BasisContract || p.Basis == policy.BasisLegalObligation:
				return fault.FieldError("purposes", "%s is based on %s, which an objection does not apply to (Art. 21 covers legitimate interests)", pid, p.Basis)
			}
			needsReason = true
		}
		if needsReason && f.Reason == "" {
			return fault.FieldError("reason", "give the grounds of your objection, relating to your particular situation (Art. 21(1))")
		}
		keep.Purposes = f.Purposes
	case Erasure:
		if f.Scope == "" {
			f.Scope = string(policy.ScopeAccount)
		}
		sc := policy.ErasureScope(f.Scope)
		switch sc {
		case policy.ScopeAccount, policy.ScopeCategory, policy.ScopeItem, policy.ScopeContent:
		default:
			return fault.FieldError("scope", "scope must be account, category, item or content")
		}
		if er := s.pol.Rights.Erasure; er != nil && len(er.Scopes) > 0 && !containsScope(er.Scopes, sc) {
			return fault.FieldError("scope", "the privacy policy does not offer erasure of scope %s", sc)
		}
		keep.Scope = f.Scope
		switch sc {
		case policy.ScopeCategory:
			if len(f.Fields) == 0 && len(f.Categories) == 0 {
				return fault.FieldError("fields", "name the fields or categories to erase")
			}
			for _, fl := range f.Fields {
				if err := knownField(fl); err != nil {
					return err
				}
			}
			for _, c := range f.Categories {
				if err := knownCategory(c); err != nil {
					return err
				}
			}
			for _, fl := range []string{"email", "password"} {
				c := s.pol.CategoryOfField(fl)
				if containsStr(f.Fields, fl) || (c != "" && containsStr(f.Categories, c)) {
					return fault.FieldError("fields", "erasing your %s would close your account or record: ask for the erasure of scope account", fl)
				}
			}
			keep.Fields, keep.Categories = f.Fields, f.Categories
		case policy.ScopeItem:
			if len(f.Items) == 0 {
				return fault.FieldError("items", "name the records to erase, as the access report lists them")
			}
			sc, err := s.loadedSchema(ctx)
			if err != nil {
				return err
			}
			for _, it := range f.Items {
				if _, _, err := s.parseItem(sc, it); err != nil {
					return err
				}
			}
			keep.Items = f.Items
		}
	}
	*f = keep
	return nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsScope(list []policy.ErasureScope, s policy.ErasureScope) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

const requestColumns = `id, subject_id, type, scope, params, corrections_sealed, reason_sealed, status, channel, filed_by, session_id,
	received_at, due_at, verify_by, verified_at, code_hash, code_expires_at, code_attempts, token_hash, extended_months,
	extension_reason, needs_review, refusal_reason, progress, phase, result, created_subject, handled_by, completed_at, updated_at`

func scanRequest(row interface{ Scan(...any) error }) (Request, error) {
	var r Request
	var typ, status, params, result string
	var verifyBy, verifiedAt, codeExp, completed sql.NullTime
	err := row.Scan(&r.ID, &r.SubjectID, &typ, &r.Scope, &params, &r.corrections, &r.reason, &status, &r.Channel, &r.FiledBy, &r.SessionID,
		&r.ReceivedAt, &r.DueAt, &verifyBy, &verifiedAt, &r.codeHash, &codeExp, &r.CodeAttempts, &r.tokenHash, &r.ExtendedMonths,
		&r.ExtensionReason, &r.NeedsReview, &r.RefusalReason, &r.Progress, &r.Phase, &result, &r.createdSubject, &r.HandledBy, &completed, &r.UpdatedAt)
	if err != nil {
		return Request{}, err
	}
	r.Type, r.Status = Type(typ), Status(status)
	if err := json.Unmarshal([]byte(params), &r.Params); err != nil {
		return Request{}, fmt.Errorf("rights: request %s params: %w", r.ID, err)
	}
	if result != "" {
		r.Result = json.RawMessage(result)
	}
	r.ReceivedAt, r.DueAt, r.UpdatedAt = r.ReceivedAt.UTC(), r.DueAt.UTC(), r.UpdatedAt.UTC()
	r.VerifyBy, r.VerifiedAt, r.CodeExpiresAt, r.CompletedAt = utc(verifyBy), utc(verifiedAt), utc(codeExp), utc(completed)
	return r, nil
}

func utc(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

func errNoRequest() error { return fault.New(fault.NotFound, "no such request") }

// load reads one request; on PostgreSQL inside a transaction it locks the
// row, so two workers or two staff members never change it at once.
func (s *Service) load(ctx context.Context, q store.Q, id string) (Request, error) {
	lock := ""
	if _, inTx := q.(*sql.Tx); inTx && s.db.Engine == store.Postgres {
		lock = " FOR UPDATE"
	}
	r, err := scanRequest(q.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM rights_requests WHERE id = $1`+lock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, errNoRequest()
	}
	if err != nil {
		return Request{}, fmt.Errorf("rights: load request: %w", err)
	}
	return r, nil
}

// insert stores a new request, sealing what the subject wrote in it.
func (s *Service) insert(ctx context.Context, q store.Q, r Request) error {
	params, _ := json.Marshal(r.Params)
	if err := s.sealWords(ctx, q, &r); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, `INSERT INTO rights_requests (id, subject_id, type, scope, params, corrections_sealed, reason_sealed, status, channel, filed_by,
		session_id, received_at, due_at, verify_by, verified_at, code_hash, code_expires_at, needs_review, created_subject, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		r.ID, r.SubjectID, string(r.Type), r.Scope, string(params), r.corrections, r.reason, string(r.Status), r.Channel, r.FiledBy,
		r.SessionID, r.ReceivedAt, r.DueAt, nullTime(r.VerifyBy), nullTime(r.VerifiedAt), r.codeHash, nullTime(r.CodeExpiresAt),
		r.NeedsReview, r.createdSubject, r.ReceivedAt)
	if err != nil {
		return fmt.Errorf("rights: insert request: %w", err)
	}
	return nil
}

// setStatus moves a request to a state with the given columns changed.
func (s *Service) update(ctx context.Context, q store.Q, id string, sets map[string]any) error {
	sets["updated_at"] = s.clock.Now()
	cols := make([]string, 0, len(sets))
	args := []any{id}
	for _, k := range sortedKeys(sets) {
		args = append(args, sets[k])
		// Column names are this file's constants, never input.
		cols = append(cols, fmt.Sprintf("%s = $%d", k, len(args)))
	}
	if _, err := q.ExecContext(ctx, `UPDATE rights_requests SET `+strings.Join(cols, ", ")+` WHERE id = $1`, args...); err != nil {
		return fmt.Errorf("rights: update request: %w", err)
	}
	return nil
}

// record audits a transition or an action on a request.
func (s *Service) record(ctx context.Context, q store.Q, actor, action string, r Request, detail map[string]string) error {
	d := map[string]string{"request": r.ID, "type": string(r.Type)}
	for k, v := range detail {
		d[k] = v
	}
	if r.Scope != "" {
		d["scope"] = r.Scope
	}
	return s.audit.Record(ctx, q, audit.Event{Actor: actor, Action: "rights." + action, Subject: r.SubjectID, Detail: d})
}

// askedID is a request id as the audit log may quote it: only what has
// the shape of an id, never whatever a client put in the path.
func askedID(id string) string {
	if len(id) > 40 || !plainKey(id) {
		return "(malformed)"
	}
	return id
}

func hashSecret(id, secret string) []byte {
	h := sha256.Sum256([]byte("steward rights v1|" + id + "|" + secret))
	return h[:]
}

// List returns the subject's requests, newest first, with what they wrote
// in them opened for them.
func (s *Service) List(ctx context.Context, subjectID string) ([]Request, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+requestColumns+` FROM rights_requests WHERE subject_id = $1 ORDER BY received_at DESC, id`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("rights: list requests: %w", err)
	}
	var out []Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("rights: list requests: %w", err)
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rights: list requests: %w", err)
	}
	var v *door.View
	for i := range out {
		if out[i].reason.IsZero() && out[i].corrections.IsZero() {
			continue
		}
		if v == nil {
			if v, err = s.door.Subject(ctx, s.db, door.Subject(), subjectID); err != nil {
				return nil, err
			}
		}
		if err := openWords(ctx, v, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Get returns a request, unaudited, without what the subject wrote in it:
// for the engine's own use and tests. Staff read requests through Review.
func (s *Service) Get(ctx context.Context, id string) (Request, error) { return s.load(ctx, s.db, id) }

// Review returns a request to staff, with what the person wrote opened
// for subject-request in the reader's role: a role the policy does not
// let name it is refused, and the refusal audited. The reading is audited
// before anything is shown: when the record cannot be written, nothing is.
func (s *Service) Review(ctx context.Context, by Staff, id string) (Request, error) {
	use, err := by.use()
	if err != nil {
		return Request{}, err
	}
	r, err := s.load(ctx, s.db, id)
	if err != nil {
		return Request{}, err
	}
	if err := s.open(ctx, s.db, use, &r); err != nil {
		return Request{}, err
	}
	if err := s.audit.Record(ctx, s.db, audit.Event{Actor: by.actor(), Action: "staff.read", Subject: r.SubjectID,
		Detail: map[string]string{"view": "rights.request", "request": r.ID}}); err != nil {
		return Request{}, err
	}
	return r, nil
}

// Mine returns the subject's own request, with what they wrote in it.
// Another subject's request, or none, is the same fault.NotFound, and the
// attempt is audited: requests for one subject never reveal anything
// about another.
func (s *Service) Mine(ctx context.Context, subjectID, id string) (Request, error) {
	r, err := s.mine(ctx, subjectID, id)
	if err != nil {
		return Request{}, err
	}
	if err := s.open(ctx, s.db, door.Subject(), &r); err != nil {
		return Request{}, err
	}
	return r, nil
}

// mine is Mine without opening what the subject wrote.
func (s *Service) mine(ctx context.Context, subjectID, id string) (Request, error) {
	r, err := s.load(ctx, s.db, id)
	if err == nil && r.SubjectID == subjectID {
		return r, nil
	}
	if err != nil && fault.CodeOf(err) != fault.NotFound {
		return Request{}, err
	}
	if aerr := s.audit.Record(ctx, s.db, audit.Event{Actor: subjectID, Action: "rights.request_denied", Subject: subjectID,
		Detail: map[string]string{"asked": askedID(id), "why": "not-yours-or-unknown"}}); aerr != nil {
		return Request{}, aerr
	}
	return Request{}, errNoRequest()
}

// Queue returns requests for staff, ordered by due date: the open ones
// (received, verified, in progress) unless all is set. It names people by
// id only: what they wrote stays sealed (Review opens it). The reading is
// audited.
func (s *Service) Queue(ctx context.Context, by Staff, all bool, limit int) ([]Request, error) {
	out, err := s.queue(ctx, all, limit)
	if err != nil {
		return nil, err
	}
	if err := s.audit.Record(ctx, s.db, audit.Event{Actor: by.actor(), Action: "staff.read",
		Detail: map[string]string{"view": "rights.queue", "count": strconv.Itoa(len(out))}}); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) queue(ctx context.Context, all bool, limit int) ([]Request, error) {
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	where := `WHERE status IN ('received', 'verified', 'in_progress')`
	if all {
		where = ""
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+requestColumns+` FROM rights_requests `+where+` ORDER BY due_at, received_at, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("rights: queue: %w", err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("rights: queue: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
