package disclosure

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strconv"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/policy"
	"steward/internal/store"
)

// Basis is why a disclosure may happen.
type Basis string

const (
	// BasisContract: the purpose's basis is a contract with the subject
	// (a partner fulfilling the order they placed).
	BasisContract Basis = "contract"
	// BasisConsent: the purpose's basis is consent, and the subject's
	// consent is in force in the ledger.
	BasisConsent Basis = "consent"
	// BasisLegalRequest: a legal request on the register asks for it
	// (Request.Reference names it).
	BasisLegalRequest Basis = "legal-request"
	// BasisPurpose: a processor acting on the controller's instructions
	// for a purpose whose own basis holds (legitimate interest, legal
	// obligation): the purpose's basis is recorded.
	BasisPurpose Basis = "purpose"
)

// Request is one disclosure to make.
type Request struct {
	// Recipient is the id of a recipient the policy declares.
	Recipient string
	// Purpose is the purpose it receives the data for: one of its own.
	Purpose string
	// Subject is the subject whose data it is.
	Subject string
	// Values are the fields disclosed, each with its value: what a
	// webhook delivers. The register keeps only the names.
	Values map[string]string
	// Categories are categories handed over as a whole, outside a
	// delivery (a copy given to an authority): recorded, not sent.
	Categories []string
	Basis      Basis
	// Reference is the legal request's id for BasisLegalRequest.
	Reference string
	// ConsentScope narrows a consent basis to the consent given for one
	// use ("client:ID": what an application that signs the person in may
	// receive), which is not consent to the purpose as a whole.
	ConsentScope string
	// Actor is who discloses: "system", "subject", "staff:ID".
	Actor string
	// Role is the staff role a staff actor acts in ("" otherwise): the
	// policy must let it name Purpose.
	Role string
	// Event is the webhook event type ("disclosure.created" when empty),
	// e.g. "order.placed".
	Event string
}

// Disclosure is one recorded disclosure.
type Disclosure struct {
	ID           string    `json:"id"`
	Recipient    string    `json:"recipient"`
	RecipientRef string    `json:"recipient_ref"`
	Purpose      string    `json:"purpose"`
	Categories   []string  `json:"categories"`
	Fields       []string  `json:"fields"`
	Basis        string    `json:"basis"`
	BasisRef     string    `json:"basis_ref,omitempty"`
	Actor        string    `json:"actor"`
	DisclosedAt  time.Time `json:"disclosed_at"`
	// SubjectID is empty once the subject was erased.
	SubjectID string `json:"subject_id,omitempty"`
	// Delivery is the id of its delivery (the event id the recipient
	// sees), "" when nothing is delivered.
	Delivery string `json:"delivery,omitempty"`
}

// Refusal reasons, audited with each refused disclosure.
const (
	RefusedUnknownRecipient = "unknown_recipient"
	RefusedPurpose          = "purpose_not_declared_for_recipient"
	RefusedCategory         = "category_not_declared_for_recipient"
	RefusedField            = "field_not_declared_for_recipient"
	RefusedBasis            = "basis_missing"
	RefusedGuard            = "guard_denied"
	RefusedEmpty            = "nothing_to_disclose"
	RefusedUnknownSubject   = "unknown_subject"
)

// refusal is a refused disclosure: audited, then returned as a coded
// error.
type refusal struct {
	reason string
	guard  string // the guard's reason, for RefusedGuard
	err    *fault.Error
}

func refuse(reason string, code fault.Code, format string, args ...any) *refusal {
	return &refusal{reason: reason, err: fault.New(code, format, args...)}
}

// Disclose makes one disclosure: the one way personal data leaves Steward
// for a recipient. It checks the request against the policy (the
// recipient declared, the purpose one of its own, every field and
// category one it may receive and the purpose uses — J11), requires the
// basis (M12), asks the guard with the subject's current state (consent
// in force, no objection or restriction), records the disclosure with the
// recipient's reference for the subject, and queues its delivery when the
// recipient has a webhook or pulls. Anything refused is audited and
// returned as fault.PurposeDenied (fault.Invalid for a malformed
// request, fault.NotFound for an unknown subject).
func (s *Service) Disclose(ctx context.Context, r Request) (Disclosure, error) {
	var out Disclosure
	var ref *refusal
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, ref, err = s.disclose(ctx, tx, r)
		if ref != nil {
			return ref.err
		}
		return err
	})
	if ref != nil {
		if aerr := s.auditRefusal(ctx, r, ref); aerr != nil {
			return Disclosure{}, errors.Join(ref.err, aerr)
		}
		return Disclosure{}, ref.err
	}
	if err != nil {
		return Disclosure{}, err
	}
	if out.Delivery != "" {
		s.d.Jobs.Wake()
	}
	return out, nil
}

func (s *Service) auditRefusal(ctx context.Context, r Request, ref *refusal) error {
	actor := r.Actor
	if actor == "" {
		actor = "system"
	}
	detail := map[string]string{"recipient": clip(r.Recipient, 64), "purpose": clip(r.Purpose, 64), "basis": clip(string(r.Basis), 32),
		"reason": ref.reason}
	if ref.guard != "" {
		detail["guard"] = ref.guard
	}
	return s.d.Audit.Record(ctx, s.d.DB, audit.Event{Actor: actor, Action: "disclosure.refused", Subject: clip(r.Subject, 64), Detail: detail})
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// check validates the request against the policy and returns the
// recipient and the sorted fields and categories.
func (s *Service) check(r Request) (*recipient, []string, []string, *refusal) {
	rc := s.recipients[r.Recipient]
	if rc == nil {
		return nil, nil, nil, refuse(RefusedUnknownRecipient, fault.PurposeDenied, "the privacy policy declares no recipient %q", clip(r.Recipient, 64))
	}
	if !slices.Contains(rc.Purposes, r.Purpose) {
		return nil, nil, nil, refuse(RefusedPurpose, fault.PurposeDenied, "recipient %s may not receive data for %q: the policy declares it only for %v (J11)",
			rc.ID, clip(r.Purpose, 64), rc.Purposes)
	}
	pu := s.pol.Purpose(r.Purpose)
	if pu == nil {
		return nil, nil, nil, refuse(RefusedPurpose, fault.PurposeDenied, "the privacy policy declares no purpose %q", r.Purpose)
	}
	cats := map[string]bool{}
	fields := make([]string, 0, len(r.Values))
	for f := range r.Values {
		cat := s.pol.CategoryOfField(f)
		if cat == "" {
			return nil, nil, nil, refuse(RefusedField, fault.PurposeDenied, "the privacy policy declares no field %q", clip(f, 64))
		}
		if !rc.MayReceiveField(f, cat) {
			return nil, nil, nil, refuse(RefusedField, fault.PurposeDenied, "recipient %s may not receive the field %s", rc.ID, f)
		}
		cats[cat] = true
		fields = append(fields, f)
	}
	for _, c := range r.Categories {
		if s.pol.Category(c) == nil {
			return nil, nil, nil, refuse(RefusedCategory, fault.PurposeDenied, "the privacy policy declares no category %q", clip(c, 64))
		}
		if len(rc.Fields) > 0 {
			// A recipient limited to some fields never receives a whole
			// category.
			return nil, nil, nil, refuse(RefusedCategory, fault.PurposeDenied, "recipient %s receives only the fields %v, never a whole category", rc.ID, rc.Fields)
		}
		cats[c] = true
	}
	if len(cats) == 0 {
		return nil, nil, nil, refuse(RefusedEmpty, fault.Invalid, "a disclosure names the fields or categories it discloses")
	}
	out := make([]string, 0, len(cats))
	for c := range cats {
		if !slices.Contains(rc.Categories, c) || !slices.Contains(pu.Uses, c) {
			return nil, nil, nil, refuse(RefusedCategory, fault.PurposeDenied, "recipient %s may not receive %s for %s (J11)", rc.ID, c, r.Purpose)
		}
		out = append(out, c)
	}
	sort.Strings(out)
	sort.Strings(fields)
	return rc, fields, out, nil
}

// basis checks the basis the request names against the purpose and the
// policy's promises, and returns the reference to record.
func (s *Service) basis(ctx context.Context, q store.Q, r Request, rc *recipient, cats []string) (string, *refusal, error) {
	pu := s.pol.Purpose(r.Purpose)
	sharing := rc.Role != policy.RoleProcessor
	switch r.Basis {
	case BasisLegalRequest:
		if r.Reference == "" {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "a disclosure on a legal request names the request"), nil
		}
		lr, err := s.legalRequest(ctx, q, r.Reference)
		if fault.Is(err, fault.NotFound) {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "no legal request %q is on the register", clip(r.Reference, 64)), nil
		}
		if err != nil {
			return "", nil, err
		}
		if rc.Role != policy.RoleAuthority {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "a legal request is answered only to an authority; %s is a %s", rc.ID, rc.Role), nil
		}
		if lr.Decision != DecisionComplied && lr.Decision != DecisionPartly {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "legal request %s is %s: nothing is disclosed on it", lr.ID, lr.Decision), nil
		}
		if !slices.Contains(lr.Subjects, r.Subject) {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "legal request %s does not ask about this subject", lr.ID), nil
		}
		for _, c := range cats {
			if !slices.Contains(lr.Categories, c) {
				return "", refuse(RefusedBasis, fault.PurposeDenied, "legal request %s does not ask for %s", lr.ID, c), nil
			}
		}
		return lr.ID, nil, nil
	case BasisConsent:
		if pu.Basis != policy.BasisConsent {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "%s is based on %s, not consent", pu.ID, pu.Basis), nil
		}
		if s.d.Consents == nil {
			return "", nil, nil // the guard requires the consent in force
		}
		var id string
		var err error
		if r.ConsentScope != "" {
			id, err = s.d.Consents.GivenScopedRecord(ctx, q, r.Subject, pu.ID, r.ConsentScope)
		} else {
			id, err = s.d.Consents.GivenRecord(ctx, q, r.Subject, pu.ID)
		}
		if err != nil {
			return "", nil, err
		}
		if id == "" {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "no consent to %s is recorded in the ledger", pu.ID), nil
		}
		return id, nil, nil
	case BasisContract:
		if pu.Basis != policy.BasisContract {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "%s is based on %s, not a contract", pu.ID, pu.Basis), nil
		}
	case BasisPurpose:
		if rc.Role != policy.RoleProcessor {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "only a processor receives data on its purpose's own basis; %s is a %s", rc.ID, rc.Role), nil
		}
		if pu.Basis == policy.BasisConsent {
			return "", refuse(RefusedBasis, fault.PurposeDenied, "%s is based on consent: name the consent basis", pu.ID), nil
		}
		return string(pu.Basis), nil, nil
	default:
		return "", refuse(RefusedBasis, fault.PurposeDenied, "a disclosure needs a basis: contract, consent, legal-request or purpose"), nil
	}
	// M12: a site that promises no sharing without consent shares with
	// others than its processors only on consent or a legal request.
	if sharing && s.pol.Promises.NoSharingWithoutConsent {
		return "", refuse(RefusedBasis, fault.PurposeDenied, "the privacy policy promises no sharing without consent or a legal reason (M12)"), nil
	}
	return "", nil, nil
}

func (s *Service) disclose(ctx context.Context, tx *sql.Tx, r Request) (Disclosure, *refusal, error) {
	rc, fields, cats, ref := s.check(r)
	if ref != nil {
		return Disclosure{}, ref, nil
	}
	basisRef, ref, err := s.basis(ctx, tx, r, rc, cats)
	if ref != nil || err != nil {
		return Disclosure{}, ref, err
	}
	actor := r.Actor
	if actor == "" {
		actor = door.ActorSystem
	}
	use := door.Use{Purpose: r.Purpose, Actor: actor, Role: r.Role}
	if r.Basis == BasisConsent {
		use.Scope = r.ConsentScope
	}
	v, err := s.d.Door.Subject(ctx, tx, use, r.Subject)
	if fault.Is(err, fault.NotFound) {
		return Disclosure{}, refuse(RefusedUnknownSubject, fault.NotFound, "no such subject"), nil
	}
	if err != nil {
		return Disclosure{}, nil, err
	}
	for _, c := range cats {
		// The door audits its own denial (restriction, objection, consent
		// missing); the refusal of the disclosure is audited as well.
		if err := v.AllowedCategory(ctx, c); err != nil {
			if den, ok := door.IsDenied(err); ok {
				var ferr *fault.Error
				if !errors.As(err, &ferr) {
					return Disclosure{}, nil, err
				}
				return Disclosure{}, &refusal{reason: RefusedGuard, guard: den.Reason.String(), err: ferr}, nil
			}
			return Disclosure{}, nil, err
		}
	}
	now := s.d.Clock.Now().UTC()
	d := Disclosure{ID: store.NewID("dsc_"), Recipient: rc.ID, RecipientRef: reference(rc.refKey, v.ID()), Purpose: r.Purpose,
		Categories: cats, Fields: fields, Basis: string(r.Basis), BasisRef: basisRef, Actor: actor, DisclosedAt: now, SubjectID: v.ID()}
	if _, err := tx.ExecContext(ctx, `INSERT INTO disclosures (id, subject_id, recipient_id, recipient_ref, purpose, categories, fields, basis, basis_ref, actor, disclosed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		d.ID, d.SubjectID, d.Recipient, d.RecipientRef, d.Purpose, jsonList(cats), jsonList(fields), d.Basis, d.BasisRef, actor, now); err != nil {
		return Disclosure{}, nil, errorf("record: %w", err)
	}
	if err := s.d.Audit.Record(ctx, tx, audit.Event{Actor: actor, Action: "disclosure.recorded", Subject: d.SubjectID,
		Detail: map[string]string{"disclosure": d.ID, "recipient": d.Recipient, "purpose": d.Purpose, "basis": d.Basis,
			"categories": jsonList(cats), "fields": jsonList(fields)}}); err != nil {
		return Disclosure{}, nil, err
	}
	// A recipient declared with a webhook whose secret is missing gets a
	// delivery all the same: the job finds no secret and lists it for
	// staff (manual), so an order is never silently undelivered.
	if len(r.Values) > 0 && (rc.Webhook != nil || rc.pulls()) {
		event := r.Event
		if event == "" {
			event = "disclosure.created"
		}
		if d.Delivery, err = s.queueData(ctx, tx, v, rc, d, event, r.Values); err != nil {
			return Disclosure{}, nil, err
		}
	}
	return d, nil, nil
}

// payload is the body of a delivered event (Standard Webhooks: type,
// timestamp, data).
type payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// disclosed is the data of a disclosure event.
type disclosed struct {
	Subject    string            `json:"subject"`
	Disclosure string            `json:"disclosure"`
	Purpose    string            `json:"purpose"`
	Fields     map[string]string `json:"fields"`
}

// queueData seals the disclosure's fields under the subject's key for its
// first category and queues their delivery.
func (s *Service) queueData(ctx context.Context, tx *sql.Tx, v *door.View, rc *recipient, d Disclosure, event string, values map[string]string) (string, error) {
	id := store.NewID("msg_")
	body, err := json.Marshal(payload{Type: event, Timestamp: d.DisclosedAt, Data: disclosed{Subject: d.RecipientRef, Disclosure: d.ID,
		Purpose: d.Purpose, Fields: values}})
	if err != nil {
		return "", errorf("encode: %w", err)
	}
	cat := d.Categories[0]
	sealed, err := v.SealCategory(ctx, cat, body)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO disclosure_deliveries (id, recipient_id, event_type, disclosure_id, subject_id, seal_category, body_sealed, status, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)`, id, rc.ID, event, d.ID, d.SubjectID, cat, sealed, d.DisclosedAt); err != nil {
		return "", errorf("queue delivery: %w", err)
	}
	if rc.Webhook != nil {
		if err := s.enqueue(ctx, tx, id); err != nil {
			return "", err
		}
	}
	return id, nil
}

func (s *Service) enqueue(ctx context.Context, q store.Q, delivery string) error {
	_, err := s.d.Jobs.Enqueue(ctx, q, JobDeliver, deliverJob{Delivery: delivery},
		jobs.Options{Key: JobDeliver + ":" + delivery, MaxAttempts: s.d.MaxAttempts})
	return err
}

type deliverJob struct {
	Delivery string `json:"delivery"`
}

func jsonList(ss []string) string {
	if ss == nil {
		ss = []string{}
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

func parseList(s string) []string {
	var out []string
	if json.Unmarshal([]byte(s), &out) != nil || out == nil {
		return []string{}
	}
	return out
}

// Received lists every disclosure of the subjects' data, newest first,
// those on a legal request under a gag included: what staff see. The
// member's own views read Shown.
func (s *Service) Received(ctx context.Context, q store.Q, subjectIDs []string) ([]Disclosure, error) {
	if len(subjectIDs) == 0 {
		return []Disclosure{}, nil
	}
	return s.list(ctx, q, `WHERE d.subject_id IN (`+store.Placeholders(len(subjectIDs), 1)+`) ORDER BY d.disclosed_at DESC, d.id`, store.Args(subjectIDs)...)
}

// Filter selects disclosures for the staff log.
type Filter struct {
	Recipient string
	Purpose   string
	Basis     string
	BasisRef  string // the legal request (or other reference) the basis names
	Subject   string
	From, To  time.Time
	Limit     int
}

// Log lists disclosures for staff, newest first.
func (s *Service) Log(ctx context.Context, f Filter) ([]Disclosure, error) {
	where, args := "WHERE 1 = 1", []any{}
	add := func(cond string, v any) {
		args = append(args, v)
		where += " AND " + cond + " $" + itoa(len(args))
	}
	if f.Recipient != "" {
		add("d.recipient_id =", f.Recipient)
	}
	if f.Purpose != "" {
		add("d.purpose =", f.Purpose)
	}
	if f.Basis != "" {
		add("d.basis =", f.Basis)
	}
	if f.BasisRef != "" {
		add("d.basis_ref =", f.BasisRef)
	}
	if f.Subject != "" {
		add("d.subject_id =", f.Subject)
	}
	if !f.From.IsZero() {
		add("d.disclosed_at >=", f.From)
	}
	if !f.To.IsZero() {
		add("d.disclosed_at <", f.To)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	return s.list(ctx, s.d.DB, where+" ORDER BY d.disclosed_at DESC, d.id LIMIT "+itoa(f.Limit), args...)
}

func itoa(n int) string { return strconv.Itoa(n) }

func (s *Service) list(ctx context.Context, q store.Q, tail string, args ...any) ([]Disclosure, error) {
	rows, err := q.QueryContext(ctx, `SELECT d.id, COALESCE(d.subject_id, ''), d.recipient_id, d.recipient_ref, d.purpose, d.categories, d.fields,
		d.basis, d.basis_ref, d.actor, d.disclosed_at,
		COALESCE((SELECT x.id FROM disclosure_deliveries x WHERE x.disclosure_id = d.id), '')
		FROM disclosures d `+tail, args...)
	if err != nil {
		return nil, errorf("list: %w", err)
	}
	defer rows.Close()
	out := []Disclosure{}
	for rows.Next() {
		var d Disclosure
		var cats, fields string
		if err := rows.Scan(&d.ID, &d.SubjectID, &d.Recipient, &d.RecipientRef, &d.Purpose, &cats, &fields, &d.Basis, &d.BasisRef,
			&d.Actor, &d.DisclosedAt, &d.Delivery); err != nil {
			return nil, errorf("scan: %w", err)
		}
		d.DisclosedAt = d.DisclosedAt.UTC()
		d.Categories, d.Fields = parseList(cats), parseList(fields)
		out = append(out, d)
	}
	return out, rows.Err()
}

// RecipientName is the declared name of a recipient ("" when unknown).
func (s *Service) RecipientName(id string) string {
	if rc := s.recipients[id]; rc != nil {
		return rc.Name
	}
	return ""
}
