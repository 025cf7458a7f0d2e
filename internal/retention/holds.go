package retention

import (
	"context"
	"database/sql"
	"time"

	"steward/internal/audit"
	"steward/internal/fault"
	"steward/internal/subject"
)

// Hold is a legal hold (see subject.Hold).
type Hold = subject.Hold

// Place places a legal hold and records it in the audit log: from then on
// the sweep skips what it covers and erasure keeps it (a hold on a whole
// subject refuses the erasure, with the reason). by is the staff id, or
// "system" when a legal request places it (Source then names the request).
func (s *Service) Place(ctx context.Context, by string, h Hold) (Hold, error) {
	var out Hold
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.PlaceTx(ctx, tx, by, h)
		return err
	})
	return out, err
}

// PlaceTx is Place inside the caller's transaction (a legal request that
// places holds with its own record).
func (s *Service) PlaceTx(ctx context.Context, tx *sql.Tx, by string, h Hold) (Hold, error) {
	if h.Category != "" && s.d.Policy.Category(h.Category) == nil {
		return Hold{}, fault.FieldError("category", "the policy declares no category %q", h.Category)
	}
	h.PlacedBy = by
	out, err := s.d.Subjects.PlaceHold(ctx, tx, h)
	if err != nil {
		return Hold{}, err
	}
	return out, s.audit(ctx, tx, by, "retention.hold_placed", out)
}

// Review keeps a hold until a new expiry, after staff reviewed it.
func (s *Service) Review(ctx context.Context, by, id string, expires time.Time) (Hold, error) {
	var out Hold
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if out, err = s.d.Subjects.ReviewHold(ctx, tx, id, expires); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, "retention.hold_reviewed", out)
	})
	return out, err
}

// Lift ends a hold; what it kept goes at the next sweep if its time is up.
func (s *Service) Lift(ctx context.Context, by, id string) (Hold, error) {
	var out Hold
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if out, err = s.d.Subjects.LiftHold(ctx, tx, id, by); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, "retention.hold_lifted", out)
	})
	return out, err
}

// Holds lists the holds in force (all: every hold ever placed).
func (s *Service) Holds(ctx context.Context, all bool) ([]Hold, error) {
	return s.d.Subjects.Holds(ctx, s.d.DB, all)
}

func (s *Service) audit(ctx context.Context, tx *sql.Tx, by, action string, h Hold) error {
	actor := "system"
	if by != "" && by != "system" {
		actor = "staff:" + by
	}
	return s.d.Audit.Record(ctx, tx, audit.Event{Actor: actor, Action: action, Subject: h.SubjectID, Detail: map[string]string{
		"hold": h.ID, "category": h.Category, "source": h.Source, "expires_at": h.ExpiresAt.Format(time.RFC3339)}})
}
