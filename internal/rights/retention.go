package rights

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"steward/internal/audit"
	"steward/internal/policy"
	"steward/internal/store"
)

// What the retention sweep asks of the rights engine: the holder of a
// table (so files go with their rows), the categories a legal hold keeps
// from erasure, and the erasure of a subject whose time is up.

// HolderOf returns the holder registered for a table, or nil when the
// engine erases its rows itself.
func (s *Service) HolderOf(table string) Holder { return s.holder(table) }

// heldCategories returns the categories of the subjects that a legal hold
// in force keeps (a hold on a category of one subject or of everyone).
// Holds on the whole subject refuse the erasure before it is planned.
func (s *Service) heldCategories(ctx context.Context, q store.Q, ids []string) (map[string]bool, error) {
	holds, err := s.subjects.HoldsOn(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, h := range holds {
		if h.Category != "" {
			out[h.Category] = true
		}
	}
	return out, nil
}

// LegalHoldReason reports whether err is an erasure refused because a
// legal hold is in force on the whole subject, and the hold's reason.
func LegalHoldReason(err error) (string, bool) {
	var hold *errLegalHold
	if errors.As(err, &hold) {
		return hold.reason, true
	}
	return "", false
}

// EraseExpired erases a subject whose relationship with the site has ended
// and whose retention has run out (the retention sweep): the whole
// account, with the exemptions the policy lists and the legal holds in
// force, verified like any erasure and recorded in the erasure ledger so a
// restored backup is erased again. There is no one to tell. A hold on the
// whole subject refuses it (LegalHoldReason says why).
func (s *Service) EraseExpired(ctx context.Context, subjectID, why string) (*Outcome, error) {
	sc := Scope{Kind: policy.ScopeAccount}
	out, err := s.erase(ctx, subjectID, sc, 0, false)
	if err != nil {
		return out, err
	}
	r := Request{ID: "rq_retention_" + strings.TrimPrefix(subjectID, "sub_"), SubjectID: subjectID}
	if err := s.ledgerFile(r, sc); err != nil {
		return out, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.ledgerRow(ctx, tx, r, sc); err != nil {
			return err
		}
		return s.recordExpired(ctx, tx, subjectID, why)
	})
	if err != nil {
		return out, fmt.Errorf("rights: erase expired: %w", err)
	}
	return out, nil
}

// recordExpired records the expiry erasure without saying more than why.
func (s *Service) recordExpired(ctx context.Context, tx *sql.Tx, subjectID, why string) error {
	return s.audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "retention.subject_erased", Subject: subjectID, Detail: map[string]string{"why": why}})
}
