package subject

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"steward/internal/fault"
	"steward/internal/registry"
	"steward/internal/store"
)

// Hold is a legal hold: while it is in force (placed, not lifted, not past
// its expiry) the retention sweep skips what it covers and erasure keeps
// it. It covers a subject's data (SubjectID, every category when Category
// is ""), or one category of everyone's (SubjectID "").
type Hold struct {
	ID        string `json:"id"`
	SubjectID string `json:"subject_id,omitempty"`
	Category  string `json:"category,omitempty"`
	Reason    string `json:"reason"`
	// Source says who asked: "staff", or the id of the legal request that
	// placed it.
	Source    string     `json:"source"`
	PlacedBy  string     `json:"placed_by"`
	PlacedAt  time.Time  `json:"placed_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	LiftedAt  *time.Time `json:"lifted_at,omitempty"`
	LiftedBy  string     `json:"lifted_by,omitempty"`
}

// InForce reports whether the hold applies at now.
func (h Hold) InForce(now time.Time) bool { return h.LiftedAt == nil && now.Before(h.ExpiresAt) }

// Covers reports whether the hold covers a subject's category ("" subject:
// a category-wide hold is asked about; "" category: any of the subject's).
func (h Hold) Covers(subjectID, category string) bool {
	return (h.SubjectID == "" || h.SubjectID == subjectID) && (h.Category == "" || h.Category == category)
}

// HoldTables declares the holds table for the registry.
func HoldTables() []registry.Table {
	return []registry.Table{{
		Name: "subject_holds", Owner: "subject", Dataset: "legal_holds",
		SubjectColumn: "subject_id", Origin: registry.Observed, Source: "staff",
		KeptBecause: "legal-hold",
		Description: "Legal holds on your data or a category of everyone's: while one is in force, what it covers is neither deleted " +
			"when its time is up nor erased on request. The reason is written by staff and names no one.",
		Columns: []registry.Column{{Name: "id"}, {Name: "subject_id"}, {Name: "category"}, {Name: "reason"}, {Name: "source"},
			{Name: "placed_by"}, {Name: "placed_at"}, {Name: "expires_at"}, {Name: "lifted_at"}, {Name: "lifted_by"}},
	}}
}

// maxHold bounds how far ahead a hold's expiry may be set: staff review it
// at least this often.
const maxHold = 5 * 366 * 24 * time.Hour

var holdSourceRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,80}$`)

// validate checks a hold before it is placed.
func (h *Hold) validate(now time.Time) error {
	h.Reason = strings.TrimSpace(h.Reason)
	switch {
	case h.SubjectID == "" && h.Category == "":
		return fault.FieldError("subject_id", "a hold covers a subject, a category, or a subject's category: name at least one")
	case h.Reason == "":
		return fault.FieldError("reason", "a legal hold needs a reason")
	case len([]rune(h.Reason)) > maxReasonLen:
		return fault.FieldError("reason", "the reason is longer than %d characters", maxReasonLen)
	case strings.ContainsFunc(h.Reason, unicode.IsControl):
		return fault.FieldError("reason", "the reason contains a control character")
	case !holdSourceRE.MatchString(h.Source):
		return fault.FieldError("source", "the source is \"staff\" or a legal request id (letters, digits, . _ : -)")
	case h.ExpiresAt.IsZero() || !h.ExpiresAt.After(now):
		return fault.FieldError("expires_at", "a hold needs an expiry in the future; staff review it before then")
	case h.ExpiresAt.Sub(now) > maxHold:
		return fault.FieldError("expires_at", "a hold expires within five years; extend it when it is reviewed")
	case len(h.Category) > 64 || strings.ContainsFunc(h.Category, unicode.IsControl):
		return fault.FieldError("category", "not a category id")
	}
	return nil
}

// PlaceHold records a hold in q and returns it with its id. The subject
// must exist and not be erased (a merged id places the hold on the
// subject it was merged into).
func (s *Store) PlaceHold(ctx context.Context, q store.Q, h Hold) (Hold, error) {
	now := s.clock.Now()
	if err := h.validate(now); err != nil {
		return Hold{}, err
	}
	if h.SubjectID != "" {
		sub, err := s.live(ctx, q, h.SubjectID)
		if err != nil {
			return Hold{}, err
		}
		h.SubjectID = sub.ID
	}
	h.ID, h.PlacedAt, h.LiftedAt, h.LiftedBy = store.NewID("hold"), now, nil, ""
	h.ExpiresAt = h.ExpiresAt.UTC().Truncate(time.Microsecond)
	var subj any
	if h.SubjectID != "" {
		subj = h.SubjectID
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO subject_holds (id, subject_id, category, reason, source, placed_by, placed_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, h.ID, subj, h.Category, h.Reason, h.Source, h.PlacedBy, h.PlacedAt, h.ExpiresAt); err != nil {
		return Hold{}, fmt.Errorf("subject: place hold: %w", err)
	}
	return h, nil
}

// ReviewHold sets a hold's new expiry (staff reviewed it and keep it).
func (s *Store) ReviewHold(ctx context.Context, q store.Q, id string, expires time.Time) (Hold, error) {
	h, err := s.GetHold(ctx, q, id)
	if err != nil {
		return Hold{}, err
	}
	if h.LiftedAt != nil {
		return Hold{}, fault.New(fault.Conflict, "the hold was lifted")
	}
	h.ExpiresAt = expires.UTC().Truncate(time.Microsecond)
	if err := h.validate(s.clock.Now()); err != nil {
		return Hold{}, err
	}
	if _, err := q.ExecContext(ctx, `UPDATE subject_holds SET expires_at = $2 WHERE id = $1`, id, h.ExpiresAt); err != nil {
		return Hold{}, fmt.Errorf("subject: review hold: %w", err)
	}
	return h, nil
}

// LiftHold ends a hold. Lifting a lifted hold is fault.Conflict.
func (s *Store) LiftHold(ctx context.Context, q store.Q, id, by string) (Hold, error) {
	now := s.clock.Now()
	res, err := q.ExecContext(ctx, `UPDATE subject_holds SET lifted_at = $2, lifted_by = $3 WHERE id = $1 AND lifted_at IS NULL`, id, now, by)
	if err != nil {
		return Hold{}, fmt.Errorf("subject: lift hold: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.GetHold(ctx, q, id); err != nil {
			return Hold{}, err
		}
		return Hold{}, fault.New(fault.Conflict, "the hold was already lifted")
	}
	return s.GetHold(ctx, q, id)
}

const holdColumns = `id, subject_id, category, reason, source, placed_by, placed_at, expires_at, lifted_at, lifted_by`

func scanHold(sc interface{ Scan(...any) error }) (Hold, error) {
	var h Hold
	var subj sql.NullString
	var lifted sql.NullTime
	if err := sc.Scan(&h.ID, &subj, &h.Category, &h.Reason, &h.Source, &h.PlacedBy, &h.PlacedAt, &h.ExpiresAt, &lifted, &h.LiftedBy); err != nil {
		return Hold{}, err
	}
	h.SubjectID = subj.String
	h.PlacedAt, h.ExpiresAt = h.PlacedAt.UTC(), h.ExpiresAt.UTC()
	if lifted.Valid {
		t := lifted.Time.UTC()
		h.LiftedAt = &t
	}
	return h, nil
}

// GetHold returns one hold; fault.NotFound when there is none.
func (s *Store) GetHold(ctx context.Context, q store.Q, id string) (Hold, error) {
	h, err := scanHold(q.QueryRowContext(ctx, `SELECT `+holdColumns+` FROM subject_holds WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Hold{}, fault.New(fault.NotFound, "no such hold")
	}
	if err != nil {
		return Hold{}, fmt.Errorf("subject: hold: %w", err)
	}
	return h, nil
}

// Holds lists holds, newest first: only those in force at now unless all.
func (s *Store) Holds(ctx context.Context, q store.Q, all bool) ([]Hold, error) {
	query := `SELECT ` + holdColumns + ` FROM subject_holds`
	var args []any
	if !all {
		query += ` WHERE lifted_at IS NULL AND expires_at > $1`
		args = append(args, s.clock.Now())
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY placed_at DESC, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("subject: holds: %w", err)
	}
	defer rows.Close()
	out := []Hold{}
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, fmt.Errorf("subject: holds: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// HoldsOn returns the holds in force that cover any of the subject ids
// (themselves, or a category of everyone), including the flag an older
// release set on subject_state, as a subject-wide hold.
func (s *Store) HoldsOn(ctx context.Context, q store.Q, ids []string) ([]Hold, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT `+holdColumns+` FROM subject_holds WHERE lifted_at IS NULL AND expires_at > $1
		AND (subject_id IS NULL OR subject_id IN (`+store.Placeholders(len(ids), 2)+`)) ORDER BY placed_at, id`,
		append([]any{s.clock.Now()}, store.Args(ids)...)...)
	if err != nil {
		return nil, fmt.Errorf("subject: holds on: %w", err)
	}
	defer rows.Close()
	var out []Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, fmt.Errorf("subject: holds on: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// subjectWideHold returns the reason of a hold in force on the whole of
// the subject's data, if any.
func (s *Store) subjectWideHold(ctx context.Context, q store.Q, id string) (bool, string, error) {
	var reason string
	err := q.QueryRowContext(ctx, `SELECT reason FROM subject_holds WHERE subject_id = $1 AND category = '' AND lifted_at IS NULL
		AND expires_at > $2 ORDER BY placed_at LIMIT 1`, id, s.clock.Now()).Scan(&reason)
	if errors.Is(err, sql.ErrNoRows) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("subject: legal hold: %w", err)
	}
	return true, reason, nil
}

func mergeHolds(ctx context.Context, tx *sql.Tx, from, into string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE subject_holds SET subject_id = $2 WHERE subject_id = $1`, from, into); err != nil {
		return fmt.Errorf("subject: merge: holds: %w", err)
	}
	return nil
}
