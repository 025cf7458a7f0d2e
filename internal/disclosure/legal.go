package disclosure

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/policy"
	"steward/internal/store"
)

// Kinds of legal request.
const (
	KindSubpoena   = "subpoena"
	KindCourtOrder = "court-order"
	KindEmergency  = "emergency"
	KindOther      = "other"
)

// Kinds lists the kinds of legal request, in the report's order.
var Kinds = []string{KindSubpoena, KindCourtOrder, KindEmergency, KindOther}

// Decisions on a legal request.
const (
	DecisionPending  = "pending"
	DecisionComplied = "complied"
	DecisionPartly   = "partly"
	DecisionRefused  = "refused"
)

// Decisions lists the decisions, in the report's order.
var Decisions = []string{DecisionComplied, DecisionPartly, DecisionRefused, DecisionPending}

// Notification decisions: tell the people concerned now, after a date (a
// gag order), or never; the last two with the reason.
const (
	NotifyNow   = "now"
	NotifyDelay = "delay"
	NotifyNever = "never"
)

// Limits of what staff write.
const (
	maxAuthority = 200
	maxReason    = 2000
	maxSubjects  = 1000
	mailKind     = "legal-request"
)

// LegalInput is a legal request as staff register it.
type LegalInput struct {
	Kind         string `json:"kind"`
	Jurisdiction string `json:"jurisdiction"` // ISO 3166-1 alpha-2
	Authority    string `json:"authority"`
	// Recipient is the authority recipient the policy declares that data
	// goes to on the request; "" when the policy declares exactly one.
	Recipient      string    `json:"recipient"`
	Subjects       []string  `json:"subjects"`
	Categories     []string  `json:"categories"`
	Deadline       time.Time `json:"deadline,omitzero"`
	Decision       string    `json:"decision"`
	DecisionReason string    `json:"decision_reason"`
	Notify         string    `json:"notify"`
	NotifyAfter    time.Time `json:"notify_after,omitzero"`
	NotifyReason   string    `json:"notify_reason"`
	// Hold, when set, places a legal hold on each subject (or on one of
	// their categories) from the request.
	Hold *HoldInput `json:"hold,omitempty"`
}

// HoldInput is a legal hold asked for with a legal request.
type HoldInput struct {
	Category string    `json:"category"`
	Until    time.Time `json:"until,omitzero"`
	Reason   string    `json:"reason"`
}

// LegalRequest is a legal request on the register.
type LegalRequest struct {
	ID             string            `json:"id"`
	Kind           string            `json:"kind"`
	Jurisdiction   string            `json:"jurisdiction"`
	Authority      string            `json:"authority"`
	Recipient      string            `json:"recipient"`
	Subjects       []string          `json:"subjects"`
	Categories     []string          `json:"categories"`
	ReceivedAt     time.Time         `json:"received_at"`
	Deadline       time.Time         `json:"deadline,omitzero"`
	Decision       string            `json:"decision"`
	DecisionReason string            `json:"decision_reason,omitempty"`
	Notify         string            `json:"notify"`
	NotifyAfter    time.Time         `json:"notify_after,omitzero"`
	NotifyReason   string            `json:"notify_reason,omitempty"`
	Notified       map[string]string `json:"notified"` // subject id → RFC 3339 time told
	RecordedBy     string            `json:"recorded_by"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

func cleanText(field, s string, max int, required bool) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			return "", fault.FieldError(field, "%s is required", field)
		}
		return "", nil
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return "", fault.FieldError(field, "%s must be valid text of at most %d characters", field, max)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
		return "", fault.FieldError(field, "%s may not hold control characters", field)
	}
	return s, nil
}

func conflict(format string, args ...any) error { return fault.New(fault.Conflict, format, args...) }

// validate checks a legal request and fills in its recipient.
func (s *Service) validate(ctx context.Context, q store.Q, in *LegalInput, now time.Time) error {
	if !slices.Contains(Kinds, in.Kind) {
		return fault.FieldError("kind", "kind must be one of %s", strings.Join(Kinds, ", "))
	}
	in.Jurisdiction = strings.ToUpper(strings.TrimSpace(in.Jurisdiction))
	if _, ok := policy.CountryName(in.Jurisdiction); !ok || in.Jurisdiction == policy.UnknownCountry {
		return fault.FieldError("jurisdiction", "jurisdiction is the ISO 3166-1 two-letter code of the requesting authority's country")
	}
	var err error
	if in.Authority, err = cleanText("authority", in.Authority, maxAuthority, true); err != nil {
		return err
	}
	if in.Recipient == "" {
		var auths []string
		for _, r := range s.pol.Recipients {
			if r.Role == policy.RoleAuthority {
				auths = append(auths, r.ID)
			}
		}
		if len(auths) != 1 {
			return fault.FieldError("recipient", "name the authority recipient of the policy the data goes to (%s)", strings.Join(auths, ", "))
		}
		in.Recipient = auths[0]
	}
	rc := s.recipients[in.Recipient]
	if rc == nil || rc.Role != policy.RoleAuthority {
		return fault.FieldError("recipient", "the policy declares no authority recipient %q", clip(in.Recipient, 64))
	}
	if len(in.Subjects) == 0 || len(in.Subjects) > maxSubjects {
		return fault.FieldError("subjects", "name between 1 and %d subjects the request asks about", maxSubjects)
	}
	seen := map[string]bool{}
	for _, id := range in.Subjects {
		if seen[id] {
			return fault.FieldError("subjects", "a subject is named twice")
		}
		seen[id] = true
		if _, err := s.d.Subjects.Get(ctx, q, id); err != nil {
			if fault.Is(err, fault.NotFound) {
				return fault.FieldError("subjects", "no subject %q", clip(id, 64))
			}
			return err
		}
	}
	if len(in.Categories) == 0 {
		return fault.FieldError("categories", "name the categories the request asks for")
	}
	for _, c := range in.Categories {
		if !slices.Contains(rc.Categories, c) {
			return fault.FieldError("categories", "the policy lets %s receive %v, not %q", rc.ID, rc.Categories, clip(c, 64))
		}
	}
	in.Categories = dedupSorted(in.Categories)
	if in.Decision == "" {
		in.Decision = DecisionPending
	}
	if err := s.checkDecision(in.Decision, &in.DecisionReason); err != nil {
		return err
	}
	return s.checkNotify(in.Notify, in.NotifyAfter, &in.NotifyReason, now)
}

func dedupSorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *Service) checkDecision(decision string, reason *string) error {
	if !slices.Contains(Decisions, decision) {
		return fault.FieldError("decision", "decision must be one of %s", strings.Join(Decisions, ", "))
	}
	var err error
	if *reason, err = cleanText("decision_reason", *reason, maxReason, decision != DecisionPending); err != nil {
		return err
	}
	return nil
}

func (s *Service) checkNotify(notify string, after time.Time, reason *string, now time.Time) error {
	var err error
	switch notify {
	case NotifyNow:
		*reason, err = cleanText("notify_reason", *reason, maxReason, false)
		if !after.IsZero() {
			return fault.FieldError("notify_after", "a notification now has no date")
		}
	case NotifyDelay:
		if after.IsZero() {
			return fault.FieldError("notify_after", "a delayed notification needs the date it may be sent")
		}
		if !after.After(now) {
			return fault.FieldError("notify_after", "the notification date %s is in the past: notify now, or give a later date", after.UTC().Format(time.RFC3339))
		}
		*reason, err = cleanText("notify_reason", *reason, maxReason, true)
	case NotifyNever:
		if !after.IsZero() {
			return fault.FieldError("notify_after", "a notification never sent has no date")
		}
		*reason, err = cleanText("notify_reason", *reason, maxReason, true)
	default:
		return fault.FieldError("notify", "notify must be now, delay or never")
	}
	return err
}

// RecordLegalRequest registers a legal request (privacy staff), places
// the holds it asks for, and tells the people concerned at once when the
// decision is to notify now, or schedules the telling for its date.
func (s *Service) RecordLegalRequest(ctx context.Context, staffID string, in LegalInput) (LegalRequest, error) {
	now := s.d.Clock.Now().UTC()
	actor := "staff:" + staffID
	id := store.NewID("lr_")
	if in.Hold != nil && s.d.PlaceHold == nil {
		return LegalRequest{}, conflict("legal holds cannot be placed from a legal request here: the subject-state store offers none")
	}
	if in.Hold != nil {
		var err error
		if in.Hold.Reason, err = cleanText("hold.reason", in.Hold.Reason, maxReason, true); err != nil {
			return LegalRequest{}, err
		}
		if in.Hold.Category != "" && s.pol.Category(in.Hold.Category) == nil {
			return LegalRequest{}, fault.FieldError("hold.category", "the policy declares no category %q", clip(in.Hold.Category, 64))
		}
		if !in.Hold.Until.IsZero() && !in.Hold.Until.After(now) {
			return LegalRequest{}, fault.FieldError("hold.until", "a hold's expiry is in the future")
		}
	}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.validate(ctx, tx, &in, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO legal_requests (id, kind, jurisdiction, authority, recipient_id, categories, received_at, deadline,
			decision, decision_reason, notify, notify_after, notify_reason, accounts, recorded_by, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $7)`,
			id, in.Kind, in.Jurisdiction, in.Authority, in.Recipient, jsonList(in.Categories), now, nullTime(in.Deadline),
			in.Decision, in.DecisionReason, in.Notify, nullTime(in.NotifyAfter), in.NotifyReason, len(in.Subjects), actor); err != nil {
			return errorf("record legal request: %w", err)
		}
		if err := s.tally(ctx, tx, now, in.Kind, in.Jurisdiction, in.Decision, 1, len(in.Subjects)); err != nil {
			return err
		}
		for _, sid := range in.Subjects {
			if _, err := tx.ExecContext(ctx, `INSERT INTO legal_request_subjects (request_id, subject_id) VALUES ($1, $2)`, id, sid); err != nil {
				return errorf("record legal request: %w", err)
			}
			if in.Hold != nil {
				if err := s.d.PlaceHold(ctx, tx, Hold{SubjectID: sid, Category: in.Hold.Category, Reason: in.Hold.Reason, Until: in.Hold.Until,
					Request: id, Actor: actor}); err != nil {
					return err
				}
			}
		}
		if err := s.d.Audit.Record(ctx, tx, audit.Event{Actor: actor, Action: "legal_request.recorded",
			Detail: map[string]string{"request": id, "kind": in.Kind, "jurisdiction": in.Jurisdiction, "decision": in.Decision,
				"notify": in.Notify, "subjects": strconv.Itoa(len(in.Subjects))}}); err != nil {
			return err
		}
		return s.scheduleNotice(ctx, tx, id, in.Notify, in.NotifyAfter)
	})
	if err != nil {
		return LegalRequest{}, err
	}
	s.d.Jobs.Wake()
	return s.LegalRequest(ctx, id)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// scheduleNotice queues the telling of a request's subjects: now, or at
// its date (one job per date, so an extension's later date gets its own
// and the earlier one finds nothing to do).
func (s *Service) scheduleNotice(ctx context.Context, q store.Q, id, notify string, after time.Time) error {
	switch notify {
	case NotifyNow:
		_, err := s.d.Jobs.Enqueue(ctx, q, JobNotify, notifyJob{Request: id}, jobs.Options{Key: JobNotify + ":" + id + ":now"})
		return err
	case NotifyDelay:
		_, err := s.d.Jobs.Enqueue(ctx, q, JobNotify, notifyJob{Request: id}, jobs.Options{RunAt: after,
			Key: JobNotify + ":" + id + ":" + strconv.FormatInt(after.Unix(), 10)})
		return err
	}
	return nil
}

type notifyJob struct {
	Request string `json:"request"`
}

// Decide records the decision on a request with its reason.
func (s *Service) Decide(ctx context.Context, staffID, id, decision, reason string) (LegalRequest, error) {
	if err := s.checkDecision(decision, &reason); err != nil {
		return LegalRequest{}, err
	}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var kind, jur, old string
		var received time.Time
		var accounts int
		err := tx.QueryRowContext(ctx, `SELECT kind, jurisdiction, decision, received_at, accounts FROM legal_requests WHERE id = $1`, id).
			Scan(&kind, &jur, &old, &received, &accounts)
		if errors.Is(err, sql.ErrNoRows) {
			return fault.New(fault.NotFound, "no such legal request")
		}
		if err != nil {
			return errorf("decide: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE legal_requests SET decision = $2, decision_reason = $3, updated_at = $4 WHERE id = $1`,
			id, decision, reason, s.d.Clock.Now().UTC()); err != nil {
			return errorf("decide: %w", err)
		}
		if old != decision {
			if err := s.tally(ctx, tx, received, kind, jur, old, -1, -accounts); err != nil {
				return err
			}
			if err := s.tally(ctx, tx, received, kind, jur, decision, 1, accounts); err != nil {
				return err
			}
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "staff:" + staffID, Action: "legal_request.decided",
			Detail: map[string]string{"request": id, "decision": decision}})
	})
	if err != nil {
		return LegalRequest{}, err
	}
	return s.LegalRequest(ctx, id)
}

// SetNotification changes the notification decision: an extension of a
// delay (a later date, with the reason), telling now, or never. A request
// whose subjects were all told cannot be changed.
func (s *Service) SetNotification(ctx context.Context, staffID, id, notify string, after time.Time, reason string) (LegalRequest, error) {
	now := s.d.Clock.Now().UTC()
	if err := s.checkNotify(notify, after, &reason, now); err != nil {
		return LegalRequest{}, err
	}
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		lr, err := s.legalRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(lr.Notified) == len(lr.Subjects) && len(lr.Subjects) > 0 {
			return conflict("everyone this request concerns was told already")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE legal_requests SET notify = $2, notify_after = $3, notify_reason = $4, updated_at = $5 WHERE id = $1`,
			id, notify, nullTime(after), reason, now); err != nil {
			return errorf("set notification: %w", err)
		}
		if err := s.d.Audit.Record(ctx, tx, audit.Event{Actor: "staff:" + staffID, Action: "legal_request.notification_changed",
			Detail: map[string]string{"request": id, "notify": notify, "after": fmtTime(after)}}); err != nil {
			return err
		}
		return s.scheduleNotice(ctx, tx, id, notify, after)
	})
	if err != nil {
		return LegalRequest{}, err
	}
	s.d.Jobs.Wake()
	return s.LegalRequest(ctx, id)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// notifyDue is the job that tells a request's subjects, when the request
// still says so and its date has come.
func (s *Service) notifyDue(ctx context.Context, j jobs.Job) error {
	var p notifyJob
	if err := j.Decode(&p); err != nil {
		return jobs.Permanent(err)
	}
	return s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		lr, err := s.legalRequest(ctx, tx, p.Request)
		if fault.Is(err, fault.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.notify(ctx, tx, lr)
	})
}

// notify tells the request's subjects not told yet, as lr was read.
func (s *Service) notify(ctx context.Context, tx *sql.Tx, lr LegalRequest) error {
	now := s.d.Clock.Now()
	switch {
	case lr.Notify == NotifyNever:
		return nil
	case lr.Notify == NotifyDelay && now.Before(lr.NotifyAfter):
		return nil // extended: the later date has its own job
	}
	for _, sid := range lr.Subjects {
		if _, done := lr.Notified[sid]; done {
			continue
		}
		if err := s.tell(ctx, tx, lr, sid); err != nil {
			return err
		}
	}
	return nil
}

// tell mails one subject of a legal request and records it. A subject
// with no address (erased, or known by none) is recorded as told with
// nothing sent: there is no one to tell. The telling is claimed first, in
// the transaction that queues the mail: of two notify jobs that read the
// subject untold, only the one whose claim changed the row mails.
func (s *Service) tell(ctx context.Context, tx *sql.Tx, lr LegalRequest, subjectID string) error {
	res, err := tx.ExecContext(ctx, `UPDATE legal_request_subjects SET notified_at = $3 WHERE request_id = $1 AND subject_id = $2 AND notified_at IS NULL`,
		lr.ID, subjectID, s.d.Clock.Now().UTC())
	if err != nil {
		return errorf("record notification: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // told already
	}
	sub, err := s.d.Subjects.Get(ctx, tx, subjectID)
	sent := false
	switch {
	case fault.Is(err, fault.NotFound):
	case err != nil:
		return err
	case sub.HasEmail:
		v, err := s.d.Door.Subject(ctx, tx, door.Subject(), sub.ID)
		if err != nil {
			return err
		}
		addr, err := sub.Email(ctx, v)
		if errors.Is(err, door.ErrShredded) {
			break
		}
		if err != nil {
			return err
		}
		text := s.noticeText(lr)
		if _, err := s.d.Outbox.Enqueue(ctx, tx, mail.Message{SubjectID: sub.ID, To: addr, Subject: "A legal request about your data",
			Text: text, Kind: mailKind, Purpose: policy.SubjectRequest}); err != nil {
			return err
		}
		sent = true
	}
	return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "legal_request.subject_notified", Subject: subjectID,
		Detail: map[string]string{"request": lr.ID, "mailed": strconv.FormatBool(sent)}})
}

var kindWords = map[string]string{KindSubpoena: "a subpoena", KindCourtOrder: "a court order", KindEmergency: "an emergency request",
	KindOther: "a legal request"}

var decisionWords = map[string]string{DecisionComplied: "we complied with it", DecisionPartly: "we complied with part of it",
	DecisionRefused: "we refused it", DecisionPending: "we have not decided yet"}

func (s *Service) noticeText(lr LegalRequest) string {
	country, _ := policy.CountryName(lr.Jurisdiction)
	var b strings.Builder
	fmt.Fprintf(&b, "On %s we received %s from %s (%s) asking for your data: %s.\n\n", lr.ReceivedAt.UTC().Format("2 January 2006"),
		kindWords[lr.Kind], lr.Authority, country, strings.Join(lr.Categories, ", "))
	fmt.Fprintf(&b, "Our decision: %s.", decisionWords[lr.Decision])
	if lr.DecisionReason != "" {
		fmt.Fprintf(&b, " %s", lr.DecisionReason)
	}
	if lr.Notify == NotifyDelay && lr.NotifyReason != "" {
		fmt.Fprintf(&b, "\n\nWe could not tell you before %s: %s", lr.NotifyAfter.UTC().Format("2 January 2006"), lr.NotifyReason)
	}
	b.WriteString("\n\nYour privacy centre lists who received your data, this request included.")
	b.WriteString("\n\n— " + s.pol.Controller.Name + " (" + s.pol.Controller.Contact + ")\n")
	return b.String()
}

// DiscloseOnRequest discloses a subject's categories to the request's
// authority, through Disclose with the request as the basis; the
// request must be decided complied or partly and ask for them.
func (s *Service) DiscloseOnRequest(ctx context.Context, staffID, role, id, subjectID string, categories []string) (Disclosure, error) {
	lr, err := s.LegalRequest(ctx, id)
	if err != nil {
		return Disclosure{}, err
	}
	rc := s.recipients[lr.Recipient]
	if rc == nil || len(rc.Purposes) == 0 {
		return Disclosure{}, conflict("legal request %s names the recipient %q, which the privacy policy no longer declares: "+
			"nothing can be disclosed on it until the policy declares the authority again", lr.ID, clip(lr.Recipient, 64))
	}
	pur := ""
	for _, p := range rc.Purposes {
		if pu := s.pol.Purpose(p); pu != nil && pur == "" {
			ok := true
			for _, c := range categories {
				ok = ok && slices.Contains(pu.Uses, c)
			}
			if ok {
				pur = p
			}
		}
	}
	if pur == "" {
		pur = rc.Purposes[0]
	}
	return s.Disclose(ctx, Request{Recipient: lr.Recipient, Purpose: pur, Subject: subjectID, Categories: categories,
		Basis: BasisLegalRequest, Reference: id, Actor: "staff:" + staffID, Role: role})
}

// LegalRequest returns one request.
func (s *Service) LegalRequest(ctx context.Context, id string) (LegalRequest, error) {
	return s.legalRequest(ctx, s.d.DB, id)
}

const legalCols = `id, kind, jurisdiction, authority, recipient_id, categories, received_at, deadline, decision, decision_reason, notify,
	notify_after, notify_reason, recorded_by, updated_at`

func scanLegal(sc interface{ Scan(...any) error }) (LegalRequest, error) {
	var lr LegalRequest
	var cats string
	var deadline, after sql.NullTime
	err := sc.Scan(&lr.ID, &lr.Kind, &lr.Jurisdiction, &lr.Authority, &lr.Recipient, &cats, &lr.ReceivedAt, &deadline, &lr.Decision,
		&lr.DecisionReason, &lr.Notify, &after, &lr.NotifyReason, &lr.RecordedBy, &lr.UpdatedAt)
	if err != nil {
		return lr, err
	}
	lr.Categories = parseList(cats)
	lr.ReceivedAt, lr.UpdatedAt = lr.ReceivedAt.UTC(), lr.UpdatedAt.UTC()
	if deadline.Valid {
		lr.Deadline = deadline.Time.UTC()
	}
	if after.Valid {
		lr.NotifyAfter = after.Time.UTC()
	}
	return lr, nil
}

func (s *Service) legalRequest(ctx context.Context, q store.Q, id string) (LegalRequest, error) {
	lr, err := scanLegal(q.QueryRowContext(ctx, `SELECT `+legalCols+` FROM legal_requests WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return LegalRequest{}, fault.New(fault.NotFound, "no such legal request")
	}
	if err != nil {
		return LegalRequest{}, errorf("legal request: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT subject_id, notified_at FROM legal_request_subjects WHERE request_id = $1 ORDER BY subject_id`, id)
	if err != nil {
		return LegalRequest{}, errorf("legal request: %w", err)
	}
	defer rows.Close()
	lr.Subjects, lr.Notified = []string{}, map[string]string{}
	for rows.Next() {
		var sid string
		var at sql.NullTime
		if err := rows.Scan(&sid, &at); err != nil {
			return LegalRequest{}, errorf("legal request: %w", err)
		}
		lr.Subjects = append(lr.Subjects, sid)
		if at.Valid {
			lr.Notified[sid] = at.Time.UTC().Format(time.RFC3339)
		}
	}
	return lr, rows.Err()
}

// LegalRequests lists the register, newest first.
func (s *Service) LegalRequests(ctx context.Context, limit int) ([]LegalRequest, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+legalCols+` FROM legal_requests ORDER BY received_at DESC, id LIMIT `+strconv.Itoa(limit))
	if err != nil {
		return nil, errorf("legal requests: %w", err)
	}
	defer rows.Close()
	out := []LegalRequest{}
	for rows.Next() {
		lr, err := scanLegal(rows)
		if err != nil {
			return nil, errorf("legal requests: %w", err)
		}
		out = append(out, lr)
	}
	return out, rows.Err()
}

// tally adds to the transparency report's counts of the half-year of
// received, in the transaction that changes the register; an ended
// half-year's figures are stored first (freeze), so they stay those of
// its end.
func (s *Service) tally(ctx context.Context, tx *sql.Tx, received time.Time, kind, jur, decision string, requests, accounts int) error {
	if err := s.freeze(ctx, tx, received, s.d.Clock.Now().UTC()); err != nil {
		return err
	}
	period, _, _ := half(received)
	_, err := tx.ExecContext(ctx, `INSERT INTO legal_request_tally (period, kind, jurisdiction, decision, requests, accounts)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (period, kind, jurisdiction, decision)
		DO UPDATE SET requests = legal_request_tally.requests + excluded.requests, accounts = legal_request_tally.accounts + excluded.accounts`,
		period, kind, jur, decision, requests, accounts)
	if err != nil {
		return errorf("tally: %w", err)
	}
	return nil
}
