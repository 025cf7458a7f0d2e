package rights

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/jobs"
	"steward/internal/policy"
	"steward/internal/registry"
)

type jobPayload struct {
	Request string `json:"request"`
	Outbox  string `json:"outbox,omitempty"`
}

// handleProcess carries out a verified request: an export or an erasure.
// Every step can run again: a crashed run is retried by the job runner
// and finishes the work, while the request stays in progress.
func (s *Service) handleProcess(ctx context.Context, j jobs.Job) error {
	var p jobPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	r, err := s.load(ctx, s.db, p.Request)
	if fault.CodeOf(err) == fault.NotFound {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if r.Status.Final() || r.NeedsReview {
		return nil
	}
	if r.Status == StatusVerified {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if err := s.update(ctx, tx, r.ID, map[string]any{"status": string(StatusInProgress)}); err != nil {
				return err
			}
			r.Status = StatusInProgress
			return s.record(ctx, tx, "system", "request_started", r, nil)
		})
		if err != nil {
			return err
		}
	}
	switch r.Type {
	case Access, Portability:
		return s.runExport(ctx, r)
	case Erasure:
		return s.runErasure(ctx, r)
	}
	return jobs.Permanent(fmt.Errorf("rights: nothing to process for a %s request", r.Type))
}

func (s *Service) runExport(ctx context.Context, r Request) error {
	progress := func(pc int) {
		if _, err := s.db.ExecContext(ctx, `UPDATE rights_requests SET progress = $2 WHERE id = $1 AND progress < $2`, r.ID, pc); err != nil {
			s.log.Warn("rights: record progress", "request", r.ID, "error", err.Error())
		}
	}
	progress(5)
	data, res, err := s.buildExport(ctx, r, progress)
	if err != nil {
		return err
	}
	// Sealed under a key of its own, which an erasure destroys; an earlier
	// partial erasure's destroyed key is revived for the new export.
	v, err := s.door.Subject(ctx, s.db, door.Subject(), r.SubjectID)
	if err != nil {
		return err
	}
	sealed, err := v.SealDerived(ctx, exportKeyCategory, data)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	res.ExpiresAt = now.Add(s.cfg.ExportTTL)
	return s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.load(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if cur.Status.Final() {
			return nil // refused by staff meanwhile
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rights_exports (request_id, subject_id, format, content, size, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (request_id) DO UPDATE SET content = excluded.content, size = excluded.size, created_at = excluded.created_at, expires_at = excluded.expires_at`,
			r.ID, r.SubjectID, res.Format, sealed, len(data), now, res.ExpiresAt); err != nil {
			return fmt.Errorf("rights: store export: %w", err)
		}
		return s.complete(ctx, tx, &cur, "system", res)
	})
}

func (s *Service) scopeOf(r Request) Scope {
	return Scope{Kind: policy.ErasureScope(r.Scope), Fields: r.Params.Fields, Categories: r.Params.Categories, Items: r.Params.Items,
		UnderAge: r.Params.UnderAge}
}

// runErasure erases what the request covers. An account is erased in two
// phases: first everything but the outbox and the address, then (in
// handleFinish, once the completion notice has left) those too, so the
// notice reaches the address before the address is gone.
func (s *Service) runErasure(ctx context.Context, r Request) error {
	sc := s.scopeOf(r)
	if sc.Kind == policy.ScopeAccount && strings.HasPrefix(r.Phase, "notice:") {
		return s.enqueueFinish(ctx, s.db, r.ID, strings.TrimPrefix(r.Phase, "notice:"), time.Time{})
	}
	phase := 0
	if sc.Kind == policy.ScopeAccount {
		phase = 1
	}
	out, err := s.erase(ctx, r.SubjectID, sc, phase, false)
	var hold *errLegalHold
	if errors.As(err, &hold) {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			cur, err := s.load(ctx, tx, r.ID)
			if err != nil || cur.Status.Final() {
				return err
			}
			return s.refuse(ctx, tx, &cur, "system", "A legal hold is in force on your data, so it cannot be erased now: "+hold.reason+
				". Once the hold is lifted you may ask again.")
		})
	}
	if err != nil {
		if out != nil && out.Verification != nil {
			s.recordVerification(ctx, r, out.Verification)
		}
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.load(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if cur.Status.Final() {
			return nil
		}
		if err := s.record(ctx, tx, "system", "erasure_verified", cur, map[string]string{
			"tables": fmt.Sprint(out.Verification.TablesChecked), "phase": fmt.Sprint(phase)}); err != nil {
			return err
		}
		if phase == 1 {
			oid, err := s.mailErasure(ctx, tx, cur, out)
			if err != nil {
				return err
			}
			if err := s.update(ctx, tx, cur.ID, map[string]any{"phase": "notice:" + oid, "result": mustJSON(out), "progress": 80}); err != nil {
				return err
			}
			return s.enqueueFinish(ctx, tx, cur.ID, oid, time.Time{})
		}
		if err := s.ledger(ctx, tx, cur, sc); err != nil {
			return err
		}
		return s.complete(ctx, tx, &cur, "system", out)
	})
}

func (s *Service) recordVerification(ctx context.Context, r Request, v *Verification) {
	if err := s.record(ctx, s.db, "system", "erasure_incomplete", r, map[string]string{"remaining": truncate(strings.Join(v.Remaining, "; "), 200)}); err != nil {
		s.log.Warn("rights: record verification", "request", r.ID, "error", err.Error())
	}
}

// enqueueFinish schedules the second phase of an account erasure, below
// mail delivery in priority so that, when both are due, the notice goes
// first.
func (s *Service) enqueueFinish(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id, outbox string, at time.Time) error {
	_, err := s.jobs.Enqueue(ctx, q, jobFinish, jobPayload{Request: id, Outbox: outbox},
		jobs.Options{Key: jobFinish + ":" + id, RunAt: at, Priority: -1, MaxAttempts: 20})
	return err
}

// noticeLeft reports whether an outbox message is no longer waiting to be
// sent (sent, held for the console, failed for good, or gone), or the
// wait is over.
func (s *Service) noticeLeft(ctx context.Context, outboxID string) (bool, error) {
	if outboxID == "" {
		return true, nil
	}
	m, err := s.outbox.Get(ctx, outboxID)
	if fault.CodeOf(err) == fault.NotFound {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if m.Status != "queued" {
		return true, nil
	}
	return !s.clock.Now().Before(m.CreatedAt.Add(s.cfg.NoticeWait)), nil
}

// handleFinish is the second phase of an account erasure.
func (s *Service) handleFinish(ctx context.Context, j jobs.Job) error {
	var p jobPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	r, err := s.load(ctx, s.db, p.Request)
	if fault.CodeOf(err) == fault.NotFound {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	if r.Status.Final() {
		return nil
	}
	left, err := s.noticeLeft(ctx, p.Outbox)
	if err != nil {
		return err
	}
	if !left {
		return s.enqueueFinish(ctx, s.db, r.ID, p.Outbox, s.clock.Now().Add(time.Minute))
	}
	sc := s.scopeOf(r)
	out, err := s.erase(ctx, r.SubjectID, sc, 2, false)
	var hold *errLegalHold
	if errors.As(err, &hold) {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			cur, err := s.load(ctx, tx, r.ID)
			if err != nil || cur.Status.Final() {
				return err
			}
			return s.refuse(ctx, tx, &cur, "system", "A legal hold was placed on your data before its erasure could finish: "+hold.reason+
				". What was erased stays erased; the rest is kept until the hold is lifted, when you may ask again.")
		})
	}
	if err != nil {
		if out != nil && out.Verification != nil {
			s.recordVerification(ctx, r, out.Verification)
		}
		return err
	}
	var first Outcome
	if len(r.Result) > 0 {
		if err := json.Unmarshal(r.Result, &first); err != nil {
			return jobs.Permanent(fmt.Errorf("rights: request %s: phase one result: %w", r.ID, err))
		}
	}
	merged := mergeOutcomes(&first, out)
	if err := s.ledgerFile(r, sc); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := s.load(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if cur.Status.Final() {
			return nil
		}
		if err := s.ledgerRow(ctx, tx, cur, sc); err != nil {
			return err
		}
		if err := s.record(ctx, tx, "system", "erasure_verified", cur, map[string]string{
			"tables": fmt.Sprint(out.Verification.TablesChecked), "phase": "2"}); err != nil {
			return err
		}
		// The address is gone: the notice mailed in phase one was the
		// last word, so completing sends nothing.
		result, err := s.propagate(ctx, tx, &cur, merged)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if err := s.update(ctx, tx, cur.ID, map[string]any{"status": string(StatusCompleted), "completed_at": now, "progress": 100,
			"result": mustJSON(result), "phase": "done"}); err != nil {
			return err
		}
		return s.record(ctx, tx, "system", "request_completed", cur, nil)
	})
}

// mergeOutcomes adds the second phase of an account erasure to the first:
// rows erased in either, what was kept and the verification of the last.
func mergeOutcomes(first, second *Outcome) *Outcome {
	out := *second
	if len(out.Recipients) == 0 {
		// The register was unlinked by the first phase: who received the
		// data was read then.
		out.Recipients = first.Recipients
	}
	agg := map[string]*TableOutcome{}
	for _, list := range [][]TableOutcome{first.Erased, second.Erased} {
		for _, t := range list {
			a := agg[t.Dataset]
			if a == nil {
				a = &TableOutcome{Dataset: t.Dataset}
				agg[t.Dataset] = a
			}
			a.Erased += t.Erased
			for _, c := range t.Cleared {
				if !containsStr(a.Cleared, c) {
					a.Cleared = append(a.Cleared, c)
				}
			}
			if a.Explanation == "" {
				a.Explanation = t.Explanation
			}
		}
	}
	out.Erased = []TableOutcome{}
	for _, name := range sortedKeys(agg) {
		out.Erased = append(out.Erased, *agg[name])
	}
	if len(out.Kept) == 0 {
		out.Kept = first.Kept
	}
	return &out
}

// handleLift lifts a restriction placed while a correction was assessed,
// once the subject was told (Art. 18(3)), keeping what another request
// still needs restricted.
func (s *Service) handleLift(ctx context.Context, j jobs.Job) error {
	var p jobPayload
	if err := j.Decode(&p); err != nil {
		return err
	}
	r, err := s.load(ctx, s.db, p.Request)
	if fault.CodeOf(err) == fault.NotFound {
		return jobs.Permanent(err)
	}
	if err != nil {
		return err
	}
	left, err := s.noticeLeft(ctx, p.Outbox)
	if err != nil {
		return err
	}
	if !left {
		_, err := s.jobs.Enqueue(ctx, s.db, jobLift, p, jobs.Options{Key: jobLift + ":" + r.ID, RunAt: s.clock.Now().Add(time.Minute), Priority: -1})
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		on, cats, err := s.restrictionStillNeeded(ctx, tx, r.SubjectID)
		if err != nil {
			return err
		}
		if err := s.subjects.SetRestriction(ctx, tx, r.SubjectID, on, cats); err != nil {
			if fault.CodeOf(err) == fault.Conflict {
				return nil // erased meanwhile
			}
			return err
		}
		return s.record(ctx, tx, "system", "restriction_lifted", r, nil)
	})
}

// restrictionStillNeeded works out the restriction other requests keep in
// force: the subject's own latest restriction request (unless it lifted),
// and every correction still being assessed with a restriction.
func (s *Service) restrictionStillNeeded(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, subjectID string) (bool, []string, error) {
	rows, err := q.QueryContext(ctx, `SELECT type, status, params FROM rights_requests WHERE subject_id = $1 AND type IN ('restriction', 'rectification')
		ORDER BY received_at DESC, id DESC`, subjectID)
	if err != nil {
		return false, nil, fmt.Errorf("rights: restrictions: %w", err)
	}
	defer rows.Close()
	all := false
	set := map[string]bool{}
	ownSeen := false
	for rows.Next() {
		var typ, status, params string
		if err := rows.Scan(&typ, &status, &params); err != nil {
			return false, nil, fmt.Errorf("rights: restrictions: %w", err)
		}
		var p Params
		_ = json.Unmarshal([]byte(params), &p)
		switch {
		case typ == string(Restriction) && status == string(StatusCompleted) && !ownSeen:
			ownSeen = true
			if p.Lift {
				continue
			}
			if len(p.Categories) == 0 {
				all = true
			}
			for _, c := range p.Categories {
				set[c] = true
			}
		case typ == string(Rectification) && status == string(StatusVerified) && p.Restrict:
			for _, f := range p.Fields {
				if c := s.pol.CategoryOfField(f); c != "" {
					set[c] = true
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return false, nil, err
	}
	if all {
		return true, nil, nil
	}
	var cats []string
	for c := range set {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	return len(cats) > 0, cats, nil
}

// scheduleLift tells the subject their restriction will be lifted and
// lifts it once the notice has left.
func (s *Service) scheduleLift(ctx context.Context, tx *sql.Tx, r Request) error {
	if !r.Params.Restrict {
		return nil
	}
	oid, err := s.mailLift(ctx, tx, r)
	if err != nil {
		return err
	}
	_, err = s.jobs.Enqueue(ctx, tx, jobLift, jobPayload{Request: r.ID, Outbox: oid}, jobs.Options{Key: jobLift + ":" + r.ID, Priority: -1})
	return err
}

// applyCorrections writes an approved rectification into every table
// where the subject has exactly one row holding the field (the account,
// for instance), sealing sensitive fields under the subject's key. A field
// found nowhere, or in several rows, is reported so staff correct it by
// hand; an address is never changed this way, since only a verified link
// may change it.
func (s *Service) applyCorrections(ctx context.Context, tx *sql.Tx, r Request) (map[string]string, error) {
	out := map[string]string{}
	sc, err := s.loadedSchema(ctx)
	if err != nil {
		return nil, err
	}
	// The corrections are opened to carry out the subject's request.
	if err := s.open(ctx, tx, door.Subject(), &r); err != nil {
		return nil, err
	}
	for _, field := range sortedKeys(r.Corrections) {
		value := r.Corrections[field]
		if field == "email" {
			out[field] = "not applied: an address changes only through the link sent to it; change it in your account"
			continue
		}
		applied := 0
		for _, t := range sc.tables {
			if s.holder(t.Name) != nil || t.KeptBecause != "" {
				continue
			}
			for _, c := range t.cols {
				if c.Field != field {
					continue
				}
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.Name)+` WHERE `+quoteIdent(t.SubjectColumn)+` = $1`, r.SubjectID).Scan(&n); err != nil {
					return nil, fmt.Errorf("rights: correct %s: %w", field, err)
				}
				if n != 1 {
					continue
				}
				var v any = value
				if c.Sensitive {
					cat := c.CategoryIn(s.pol.CategoryOfField)
					view, err := s.door.Subject(ctx, tx, door.Subject(), r.SubjectID)
					if err != nil {
						return nil, err
					}
					sealed, err := view.SealCategory(ctx, cat, []byte(value))
					if err != nil {
						return nil, fmt.Errorf("rights: correct %s: %w", field, err)
					}
					v = sealed
				}
				if value == "" && !c.notNull {
					v = nil
				}
				if _, err := tx.ExecContext(ctx, `UPDATE `+quoteIdent(t.Name)+` SET `+quoteIdent(c.Name)+` = $2 WHERE `+quoteIdent(t.SubjectColumn)+` = $1`, r.SubjectID, v); err != nil {
					return nil, fmt.Errorf("rights: correct %s: %w", field, err)
				}
				applied++
			}
		}
		if applied > 0 {
			out[field] = "corrected"
		} else {
			out[field] = "not applied automatically: staff corrected it by hand where it is held"
		}
	}
	for _, f := range r.Params.Fields {
		if _, ok := out[f]; !ok {
			out[f] = "assessed; no corrected value was given"
		}
	}
	return out, nil
}

// handleMaintain expires requests whose identity was never proved and
// deletes exports past their download time.
func (s *Service) handleMaintain(ctx context.Context, _ jobs.Job) error {
	now := s.clock.Now()
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM rights_requests WHERE status = 'received' AND verify_by <= $1 ORDER BY verify_by LIMIT 200`, now)
	if err != nil {
		return fmt.Errorf("rights: maintain: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("rights: maintain: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if err := s.expire(ctx, id); err != nil {
			return err
		}
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM rights_exports WHERE expires_at <= $1`, now); err != nil {
		return fmt.Errorf("rights: maintain: delete old exports: %w", err)
	}
	return nil
}

// expire closes an unverified request. When the request itself brought
// the address into Steward (a stranger may have typed it) and nothing
// else is held about it, the address and the mail sent to it are erased
// too, and no further mail goes to it.
func (s *Service) expire(ctx context.Context, id string) error {
	var cleanup bool
	var r Request
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = s.load(ctx, tx, id); err != nil {
			return err
		}
		if r.Status != StatusReceived {
			return nil
		}
		now := s.clock.Now()
		if err := s.update(ctx, tx, r.ID, map[string]any{"status": string(StatusExpired), "completed_at": now, "code_hash": nil,
			"refusal_reason": "identity was not confirmed in time"}); err != nil {
			return err
		}
		r.Status = StatusExpired
		if err := s.record(ctx, tx, "system", "request_expired", r, nil); err != nil {
			return err
		}
		if r.createdSubject {
			only, err := s.holdsOnlyRequests(ctx, tx, r.SubjectID)
			if err != nil {
				return err
			}
			if only {
				cleanup = true
				return nil
			}
		}
		return s.mailRequest(ctx, tx, r, "expired")
	})
	if err != nil || !cleanup {
		return err
	}
	if _, err := s.erase(ctx, r.SubjectID, Scope{Kind: policy.ScopeAccount}, 0, true); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.ledgerRow(ctx, tx, r, Scope{Kind: policy.ScopeAccount}); err != nil {
			return err
		}
		return s.record(ctx, tx, "system", "unverified_address_erased", r, nil)
	})
}

// holdsOnlyRequests reports whether the subject has nothing but what
// filing requests left: the subject row, the requests, their mail and the
// audit trail.
func (s *Service) holdsOnlyRequests(ctx context.Context, tx *sql.Tx, subjectID string) (bool, error) {
	inv, err := s.inventory(ctx, tx, subjectID)
	if err != nil {
		return false, err
	}
	for _, d := range inv.held() {
		switch d.t.Name {
		case "subjects", "rights_requests", outboxTable, "audit_log", "data_keys":
			continue
		}
		if d.t.Origin == registry.System {
			continue
		}
		return false, nil
	}
	return true, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
