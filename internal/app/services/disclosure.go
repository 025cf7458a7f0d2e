package services

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"steward/internal/disclosure"
	"steward/internal/openid"
	"steward/internal/registry"
	"steward/internal/retention"
	"steward/internal/rights"
	"steward/internal/store"
)

// openDisclosure builds the register of disclosures: recipients' webhook
// secrets and pull keys come from the environment variables the policy
// names; STEWARD_WEBHOOKS_ALLOW_PRIVATE=1 lets webhooks reach private and
// loopback addresses, STEWARD_WEBHOOK_TIMEOUT bounds one attempt. The
// rights engine reads the register for access reports and tells
// recipients of completed changes through it; its erasure empties the
// register's subject ids and keeps the legal register. What a member sees
// of the register and of the audit log leaves out a legal request they
// have not been told of (a gag order).
func (s *Services) openDisclosure(cfg Config) error {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var timeout time.Duration
	if v := getenv("STEWARD_WEBHOOK_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 5*time.Minute {
			return fmt.Errorf("services: STEWARD_WEBHOOK_TIMEOUT: want a duration up to 5m, got %q", v)
		}
		timeout = d
	}
	var err error
	s.Disclosure, err = disclosure.New(disclosure.Deps{DB: s.DB, Clock: s.Clock, Log: s.Log, Policy: s.Policy, Door: s.Door,
		Subjects: s.Subjects, Audit: s.Audit, Jobs: s.Jobs, Outbox: s.Outbox, Getenv: getenv,
		RefKey: s.Master.Derive("disclosure recipient reference v1", 32), AllowPrivate: getenv("STEWARD_WEBHOOKS_ALLOW_PRIVATE") == "1",
		Timeout: timeout, Consents: s.Consent, PlaceHold: s.placeLegalHold})
	if err != nil {
		return err
	}
	h := disclosureRights{s.Disclosure.Holder()}
	s.Rights.Register("disclosures", h)
	s.Rights.Register("disclosure_deliveries", h)
	s.Rights.Register("legal_request_subjects", h)
	s.Rights.Register("audit_log", auditRights{s.Disclosure})
	s.Rights.SetRecipients(rightsRecipients{s.Disclosure})
	// A member's own correction reaches the recipients that received the
	// field (Art. 19), as a reviewed rectification does.
	s.Identity.OnCorrected(func(ctx context.Context, tx *sql.Tx, subjectID string, fields []string) error {
		_, err := s.Disclosure.PropagateCorrection(ctx, tx, subjectID, fields)
		return err
	})
	return nil
}

// disclosureRights hands the register's tables to the rights engine: the
// member sees, exports and erases only what they may be shown (nothing
// of a legal request they have not been told of), and the legal register
// is kept.
type disclosureRights struct{ h *disclosure.Holder }

func (c disclosureRights) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc rights.Scope) (rights.TableOutcome, error) {
	o, err := c.h.Erase(ctx, tx, t, ids, sc.Kind == "account")
	return rights.TableOutcome{Dataset: t.Dataset, Erased: o.Erased, Kept: o.Kept, Why: o.Why, Explanation: o.Explanation}, err
}

func (c disclosureRights) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc rights.Scope) (int, error) {
	return c.h.Left(ctx, q, t, ids, sc.Kind == "account")
}

func (c disclosureRights) Export(ctx context.Context, q store.Q, t registry.Table, ids []string) ([]map[string]any, error) {
	return c.h.Export(ctx, q, t, ids)
}

func (c disclosureRights) Count(ctx context.Context, q store.Q, t registry.Table, ids []string) (int, error) {
	return c.h.Count(ctx, q, t, ids)
}

// auditRights hands the audit log to the rights engine: it is kept
// through every erasure (legal-obligation, as the registry says), and a
// member is shown their entries but those recording a disclosure on a
// legal request they were not told of, which name the authority.
type auditRights struct{ d *disclosure.Service }

func (a auditRights) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, sc rights.Scope) (rights.TableOutcome, error) {
	to := rights.TableOutcome{Dataset: t.Dataset}
	if sc.Kind != "account" {
		return to, nil
	}
	n, err := a.Count(ctx, tx, t, ids)
	if err != nil || n == 0 {
		return to, err
	}
	to.Kept, to.Why = int64(n), t.KeptBecause // the engine says why in words
	return to, nil
}

func (a auditRights) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, sc rights.Scope) (int, error) {
	return 0, nil
}

func (a auditRights) Count(ctx context.Context, q store.Q, t registry.Table, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	unshown, err := a.d.Unshown(ctx, q, ids)
	if err != nil {
		return 0, err
	}
	in := `subject_id IN (` + store.Placeholders(len(ids), 1) + `)`
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE `+in, store.Args(ids)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("services: count audit log: %w", err)
	}
	if len(unshown) == 0 {
		return n, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT action, detail FROM audit_log WHERE `+in+` AND action LIKE 'disclosure.%'`, store.Args(ids)...)
	if err != nil {
		return 0, fmt.Errorf("services: count audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var action, detail string
		if err := rows.Scan(&action, &detail); err != nil {
			return 0, fmt.Errorf("services: count audit log: %w", err)
		}
		if disclosure.Reveals(action, detail, unshown) {
			n--
		}
	}
	return n, rows.Err()
}

func (a auditRights) Export(ctx context.Context, q store.Q, t registry.Table, ids []string) ([]map[string]any, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	unshown, err := a.d.Unshown(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = c.Name
	}
	rows, err := q.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM audit_log WHERE subject_id IN (`+store.Placeholders(len(ids), 1)+
		`) ORDER BY seq`, store.Args(ids)...)
	if err != nil {
		return nil, fmt.Errorf("services: export audit log: %w", err)
	}
	out, err := store.Maps(rows, cols, func(m map[string]any) bool {
		return !disclosure.Reveals(textValue(m["action"]), textValue(m["detail"]), unshown)
	})
	if err != nil {
		return nil, fmt.Errorf("services: export audit log: %w", err)
	}
	return out, nil
}

func textValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

// rightsRecipients is the register as the rights engine reads it.
type rightsRecipients struct{ d *disclosure.Service }

func (r rightsRecipients) Received(ctx context.Context, q store.Q, ids []string) ([]rights.Received, error) {
	ds, err := r.d.Shown(ctx, q, ids)
	out := make([]rights.Received, len(ds))
	for i, d := range ds {
		out[i] = rights.Received{Recipient: d.Recipient, Purpose: d.Purpose, Categories: d.Categories, Fields: d.Fields, Basis: d.Basis, At: d.DisclosedAt}
	}
	return out, err
}

func (r rightsRecipients) Propagate(ctx context.Context, tx *sql.Tx, request, change string, ids, cats []string) ([]rights.Told, error) {
	told, err := r.d.Propagate(ctx, tx, disclosure.Change{Request: request, Kind: change, Subjects: ids, Categories: cats})
	out := make([]rights.Told, len(told))
	for i, t := range told {
		out[i] = rights.Told{Recipient: t.Recipient, Name: t.Name, Categories: t.Categories, Event: t.Delivery, Status: t.Status}
	}
	return out, err
}

// legalHoldReview is when a hold a legal request placed without an end is
// next reviewed by staff (holds always carry an expiry to review).
const legalHoldReview = 365 * 24 * time.Hour

// placeLegalHold places the hold a legal request asks for in the
// subject-state store, in the request's own transaction, audited as the
// retention console's are. The retention service is built after the
// register; a request arrives only once both are.
func (s *Services) placeLegalHold(ctx context.Context, q store.Q, h disclosure.Hold) error {
	tx, ok := q.(*sql.Tx)
	if !ok {
		return errors.New("services: a legal hold is placed inside the legal request's transaction")
	}
	until := h.Until
	if until.IsZero() {
		until = s.Clock.Now().Add(legalHoldReview)
	}
	by := strings.TrimPrefix(h.Actor, "staff:")
	_, err := s.Retention.PlaceTx(ctx, tx, by, retention.Hold{SubjectID: h.SubjectID, Category: h.Category, Reason: h.Reason,
		Source: h.Request, ExpiresAt: until})
	return err
}

// openidDisclosures records the claims the OpenID provider releases to an
// application as disclosures to that recipient: on the contract for what
// signing in needs, on the member's consent for that application
// otherwise.
type openidDisclosures struct{ d *disclosure.Service }

func (o openidDisclosures) DiscloseRelease(ctx context.Context, r openid.Release) error {
	req := disclosure.Request{Recipient: r.Client, Purpose: r.Purpose, Subject: r.SubjectID, Values: r.Values,
		Basis: disclosure.BasisContract, Actor: "system", Event: "openid.claims"}
	if r.Consent {
		req.Basis, req.ConsentScope = disclosure.BasisConsent, "client:"+r.Client
	}
	_, err := o.d.Disclose(ctx, req)
	return err
}
