package retention

import (
	"context"
	"fmt"
	"time"

	"steward/internal/registry"
	"steward/internal/rights"
)

// bookkeeping are tables whose rows do not keep a person's relationship
// with the site alive: the subject row and its state, its keys, the mail
// sent to it, the audit trail, lifted holds (a hold in force refuses the
// erasure, and the sweep counts the subject as held).
var bookkeeping = map[string]bool{
	"subjects": true, "subject_state": true, "subject_purpose_state": true, "data_keys": true, "item_keys": true,
	"mail_outbox": true, "audit_log": true, "subject_holds": true,
}

// orphanQuery selects people known only by an address, created before $1,
// who have nothing else left: the confirmation mail they were sent led
// nowhere (a subscription never confirmed, a support request or comment
// never confirmed, all pruned by their owners) or everything else of
// theirs has reached its time.
func (s *Service) orphanQuery(count, held bool) string {
	sel := `SELECT s.id FROM subjects s`
	if count {
		sel = `SELECT COUNT(*) FROM subjects s`
	}
	q := sel + ` WHERE s.kind = 'email' AND s.erased_at IS NULL AND s.merged_into IS NULL AND s.created_at < $1`
	for _, t := range s.d.Registry.Personal() {
		if bookkeeping[t.Name] || t.Origin == registry.System {
			continue
		}
		q += ` AND NOT EXISTS (SELECT 1 FROM ` + quoteIdent(t.Name) + ` x WHERE x.` + quoteIdent(t.SubjectColumn) + ` = s.id)`
	}
	// Nothing merged into them either: their data is theirs.
	q += ` AND NOT EXISTS (SELECT 1 FROM subjects m WHERE m.merged_into = s.id)`
	hold := `(EXISTS (SELECT 1 FROM subject_holds h WHERE h.subject_id = s.id AND h.category = '' AND h.lifted_at IS NULL AND h.expires_at > $2)
		OR EXISTS (SELECT 1 FROM subject_state ss WHERE ss.subject_id = s.id AND ss.legal_hold = TRUE))`
	if held {
		return q + ` AND ` + hold
	}
	return q + ` AND NOT ` + hold
}

// orphanCutoff is when a person known only by an address, with nothing
// else left, has been kept long enough: the grace after the relationship
// ends that the policy gives their address's category, and at least
// orphanGrace.
func (s *Service) orphanCutoff(now time.Time) time.Time {
	cut := now.Add(-orphanGrace)
	if r, ok := Rule(s.d.Policy, s.d.Policy.CategoryOfField("email")); ok && !r.Period.IsZero() {
		if c := r.Period.SubtractFrom(now); c.Before(cut) {
			cut = c
		}
	}
	return cut
}

// sweepSubjects erases (or counts) those people through the rights
// engine's erasure.
func (s *Service) sweepSubjects(ctx context.Context, now time.Time, dry bool, rep *Report) error {
	cutoff := s.orphanCutoff(now)
	if err := s.d.DB.QueryRowContext(ctx, s.orphanQuery(true, true), cutoff, now).Scan(&rep.SubjectsHeld); err != nil {
		return fmt.Errorf("retention: count held subjects: %w", err)
	}
	if dry {
		if err := s.d.DB.QueryRowContext(ctx, s.orphanQuery(true, false), cutoff, now).Scan(&rep.SubjectsDue); err != nil {
			return fmt.Errorf("retention: count expired subjects: %w", err)
		}
		return nil
	}
	skip := map[string]bool{} // held this sweep
	for {
		rows, err := s.d.DB.QueryContext(ctx, s.orphanQuery(false, false)+fmt.Sprintf(" ORDER BY s.id LIMIT %d", subjectBatch+len(skip)), cutoff, now)
		if err != nil {
			return fmt.Errorf("retention: expired subjects: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("retention: expired subjects: %w", err)
			}
			if !skip[id] {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("retention: expired subjects: %w", err)
		}
		for _, id := range ids {
			_, err := s.d.Rights.EraseExpired(ctx, id, "retention")
			if _, held := rightsHold(err); held {
				skip[id] = true
				rep.SubjectsHeld++
				continue
			}
			if err != nil {
				return err
			}
			rep.SubjectsErased++
			rep.SubjectsDue++
		}
		if len(ids) < subjectBatch {
			return nil
		}
		if err := s.pause(ctx); err != nil {
			return err
		}
	}
}

// rightsHold reports whether an erasure was refused by a legal hold.
func rightsHold(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	return rights.LegalHoldReason(err)
}
