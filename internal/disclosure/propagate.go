package disclosure

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"sort"

	"steward/internal/audit"
	"steward/internal/registry"
	"steward/internal/store"
)

// Kinds of change a rights request makes that recipients are told of
// (GDPR Art. 19), and the event type each is delivered as.
const (
	ChangeErasure           = "erasure"
	ChangeRectification     = "rectification"
	ChangeRestriction       = "restriction"
	ChangeRestrictionLifted = "restriction-lifted"
)

var changeEvents = map[string]string{
	ChangeErasure:           "subject.erased",
	ChangeRectification:     "subject.rectified",
	ChangeRestriction:       "subject.restricted",
	ChangeRestrictionLifted: "subject.restriction_lifted",
}

// Change is a completed rights request to propagate.
type Change struct {
	// Request is the rights request's id: one propagation per request
	// and recipient, however often it is asked.
	Request string
	Kind    string
	// Subjects are the subject's id and those merged into it.
	Subjects []string
	// Categories are the categories the change affects; nil, all.
	Categories []string
}

// Told is a recipient told of a change, or to be told by hand.
type Told struct {
	Recipient  string   `json:"recipient"`
	Name       string   `json:"name"`
	Categories []string `json:"categories"`
	// Delivery is the event's id; Status is pending (sent by webhook or
	// waiting to be pulled, until acknowledged) or manual (staff tell the
	// recipient by hand).
	Delivery string `json:"event"`
	Status   string `json:"status"`
}

// changed is the data of a rights event: the recipient's reference(s) for
// the subject and what to act on.
type changed struct {
	Subject    string   `json:"subject"`
	Also       []string `json:"also_known_as,omitempty"`
	Change     string   `json:"change"`
	Categories []string `json:"categories"`
	Request    string   `json:"request"`
}

// Propagate tells every recipient that received the subjects' affected
// categories of a completed change, inside the transaction that completes
// it: a signed event to each recipient with a webhook (through the job
// runner, until acknowledged), a pending event for each that pulls, and a
// manual entry for staff for the others. The event carries only the
// recipient's own reference for the subject, so an erasure is propagated
// after the email address is gone. Repeating it for the same request adds
// nothing.
func (s *Service) Propagate(ctx context.Context, tx *sql.Tx, c Change) ([]Told, error) {
	event, ok := changeEvents[c.Kind]
	if !ok || c.Request == "" || len(c.Subjects) == 0 {
		return nil, errorf("propagate: a change names its request, a known kind and its subjects")
	}
	out := []Told{}
	now := s.d.Clock.Now().UTC()
	wake := false
	// One read of the register: the subjects' rows, and those whose
	// subject id an account erasure emptied, found by each recipient's
	// reference.
	var refs []string
	for _, r := range s.pol.Recipients {
		for _, id := range c.Subjects {
			refs = append(refs, reference(s.recipients[r.ID].refKey, id))
		}
	}
	args := append(store.Args(c.Subjects), store.Args(refs)...)
	// A disclosure on a legal request the subject was not told of is left
	// out: the subject sees who was told, and would learn of the request.
	rows, err := tx.QueryContext(ctx, `SELECT d.recipient_id, d.recipient_ref, d.categories FROM disclosures d WHERE (d.subject_id IN (`+
		store.Placeholders(len(c.Subjects), 1)+`) OR d.recipient_ref IN (`+store.Placeholders(len(refs), 1+len(c.Subjects))+`)) AND `+
		shownSQL(1, len(c.Subjects)), args...)
	if err != nil {
		return nil, errorf("propagate: %w", err)
	}
	type seenBy struct {
		cats map[string]bool
		refs []string
	}
	received := map[string]*seenBy{}
	for rows.Next() {
		var rid, ref, cats string
		if err := rows.Scan(&rid, &ref, &cats); err != nil {
			rows.Close()
			return nil, errorf("propagate: %w", err)
		}
		rc := s.recipients[rid]
		if rc == nil || !slices.Contains(c.Subjects, subjectOf(rc, ref, c.Subjects)) {
			continue // another recipient's reference that happens to match, or a recipient no longer declared
		}
		sb := received[rid]
		if sb == nil {
			sb = &seenBy{cats: map[string]bool{}}
			received[rid] = sb
		}
		if !slices.Contains(sb.refs, ref) {
			sb.refs = append(sb.refs, ref)
		}
		for _, cat := range parseList(cats) {
			if c.Categories == nil || slices.Contains(c.Categories, cat) {
				sb.cats[cat] = true
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, errorf("propagate: %w", err)
	}
	for _, r := range s.pol.Recipients {
		rc := s.recipients[r.ID]
		sb := received[r.ID]
		if sb == nil {
			continue
		}
		got, seen := sb.cats, sb.refs
		if len(got) == 0 {
			continue
		}
		cats := make([]string, 0, len(got))
		for cat := range got {
			cats = append(cats, cat)
		}
		sort.Strings(cats)
		sort.Strings(seen)
		primary := reference(rc.refKey, c.Subjects[0])
		data := changed{Subject: primary, Change: c.Kind, Categories: cats, Request: c.Request}
		for _, ref := range seen {
			if ref != primary {
				data.Also = append(data.Also, ref)
			}
		}
		body, err := json.Marshal(payload{Type: event, Timestamp: now, Data: data})
		if err != nil {
			return nil, errorf("propagate: %w", err)
		}
		status := StatusManual
		if rc.webhook() || rc.pulls() {
			status = StatusPending
		}
		id := store.NewID("msg_")
		res, err := tx.ExecContext(ctx, `INSERT INTO disclosure_deliveries (id, recipient_id, event_type, rights_request_id, body, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (rights_request_id, recipient_id, event_type) DO NOTHING`,
			id, rc.ID, event, c.Request, string(body), status, now)
		if err != nil {
			return nil, errorf("propagate: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Told already: report the first telling.
			if err := tx.QueryRowContext(ctx, `SELECT id, status FROM disclosure_deliveries WHERE rights_request_id = $1 AND recipient_id = $2 AND event_type = $3`,
				c.Request, rc.ID, event).Scan(&id, &status); err != nil {
				return nil, errorf("propagate: %w", err)
			}
		} else if rc.webhook() {
			if err := s.enqueue(ctx, tx, id); err != nil {
				return nil, err
			}
			wake = true
		}
		out = append(out, Told{Recipient: rc.ID, Name: rc.Name, Categories: cats, Delivery: id, Status: status})
	}
	if len(out) > 0 {
		ids := make([]string, len(out))
		for i, t := range out {
			ids[i] = t.Recipient + ":" + t.Status
		}
		if err := s.d.Audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "disclosure.propagated", Subject: c.Subjects[0],
			Detail: map[string]string{"request": c.Request, "change": c.Kind, "recipients": jsonList(ids)}}); err != nil {
			return nil, err
		}
	}
	if wake {
		s.d.Jobs.Wake()
	}
	return out, nil
}

// Told lists the recipients told of a rights request's change, with each
// delivery's status now: who was told, who acknowledged, who is to be
// told by hand.
func (s *Service) Told(ctx context.Context, rightsRequest string) ([]Delivery, error) {
	rows, err := s.d.DB.QueryContext(ctx, `SELECT `+deliveryCols+` FROM disclosure_deliveries WHERE rights_request_id = $1 ORDER BY recipient_id`, rightsRequest)
	if err != nil {
		return nil, errorf("told: %w", err)
	}
	return scanDeliveries(rows)
}

// MarkTold records that staff told a recipient by hand of a change.
func (s *Service) MarkTold(ctx context.Context, staffID, delivery string) (Delivery, error) {
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE disclosure_deliveries SET status = 'acknowledged', acknowledged_at = $2, handled_by = $3
			WHERE id = $1 AND status IN ('manual', 'failed')`, delivery, s.d.Clock.Now().UTC(), "staff:"+staffID)
		if err != nil {
			return errorf("mark told: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := s.GetDelivery(ctx, delivery); err != nil {
				return err
			}
			return conflict("only a delivery to be made by hand, or one that failed, is marked as told by hand")
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "staff:" + staffID, Action: "disclosure.told_by_hand",
			Detail: map[string]string{"delivery": delivery}})
	})
	if err != nil {
		return Delivery{}, err
	}
	return s.GetDelivery(ctx, delivery)
}

// Holder is the rights engine's view of the register: an account erasure
// empties the subject id of the subject's disclosures (the recipient's
// reference stays, so the erasure can be propagated by it) and drops what
// deliveries still carry; the legal register is kept. The subject is shown
// (Export, Count) and erases only what they may see: nothing of a legal
// request they have not been told of (gag.go).
type Holder struct{ s *Service }

// Holder returns the register's erasure holder.
func (s *Service) Holder() *Holder { return &Holder{s: s} }

// Erase empties the subject ids of the table's rows the subject may see
// on an account erasure (other scopes do not touch the register). A
// delivery still carrying data is not sent.
func (h *Holder) Erase(ctx context.Context, tx *sql.Tx, t registry.Table, ids []string, account bool) (Outcome, error) {
	if t.Name == "legal_request_subjects" {
		return h.eraseLegal(ctx, tx, t, ids, account)
	}
	if !account || len(ids) == 0 {
		return Outcome{}, nil
	}
	where, err := shownWhere(t.Name, len(ids))
	if err != nil {
		return Outcome{}, err
	}
	alias := registerTables[t.Name].alias
	in := `(SELECT ` + alias + `.id FROM ` + t.Name + ` ` + alias + ` WHERE ` + where + `)`
	var q string
	switch t.Name {
	case "disclosures":
		q = `UPDATE disclosures SET subject_id = NULL WHERE id IN ` + in
	case "disclosure_deliveries":
		q = `UPDATE disclosure_deliveries SET subject_id = NULL, body_sealed = NULL,
			status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
			last_error = CASE WHEN status = 'pending' THEN 'not sent: the subject was erased first' ELSE last_error END
			WHERE id IN ` + in
	}
	res, err := tx.ExecContext(ctx, q, store.Args(ids)...)
	if err != nil {
		return Outcome{}, errorf("erase %s: %w", t.Name, err)
	}
	n, _ := res.RowsAffected()
	return Outcome{Erased: n}, nil
}

// Left counts the table's rows an account erasure should have unlinked
// and are still linked to the subjects.
func (h *Holder) Left(ctx context.Context, q store.Q, t registry.Table, ids []string, account bool) (int, error) {
	if !account || len(ids) == 0 || t.Name == "legal_request_subjects" {
		return 0, nil
	}
	return h.Count(ctx, q, t, ids)
}

// subjectOf returns which of the subjects a recipient's reference names
// ("" for none).
func subjectOf(rc *recipient, ref string, subjects []string) string {
	for _, id := range subjects {
		if reference(rc.refKey, id) == ref {
			return id
		}
	}
	return ""
}

// PropagateCorrection tells the recipients of a subject's data of a
// correction made without a rights request (a field the subject edits
// themself), inside the transaction that makes it (Art. 19): the
// categories are those of the fields, and the change gets an id of its
// own ("chg_…") in place of a request's.
func (s *Service) PropagateCorrection(ctx context.Context, tx *sql.Tx, subjectID string, fields []string) ([]Told, error) {
	var cats []string
	for _, f := range fields {
		if c := s.pol.CategoryOfField(f); c != "" && !slices.Contains(cats, c) {
			cats = append(cats, c)
		}
	}
	if len(cats) == 0 {
		return []Told{}, nil
	}
	return s.Propagate(ctx, tx, Change{Request: store.NewID("chg_"), Kind: ChangeRectification, Subjects: []string{subjectID}, Categories: cats})
}
