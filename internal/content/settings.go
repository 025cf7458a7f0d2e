package content

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"steward/internal/fault"
)

// DefaultVisibility is who sees what the member posts when they do not
// say: their own choice, or public.
func (s *Service) DefaultVisibility(ctx context.Context, subjectID string) (string, error) {
	var v string
	err := s.d.DB.QueryRowContext(ctx, `SELECT default_visibility FROM content_settings WHERE subject_id = $1`, subjectID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return Public, nil
	}
	if err != nil {
		return "", fmt.Errorf("content: settings: %w", err)
	}
	return v, nil
}

// SetDefaultVisibility records the member's choice of who sees what they
// post when they do not say. It changes nothing already posted.
func (s *Service) SetDefaultVisibility(ctx context.Context, subjectID, visibility string) error {
	if visibility != Public && visibility != Private {
		return fault.FieldError("default_visibility", "must be public or private")
	}
	if _, err := s.d.DB.ExecContext(ctx, `INSERT INTO content_settings (subject_id, default_visibility, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (subject_id) DO UPDATE SET default_visibility = excluded.default_visibility, updated_at = excluded.updated_at`,
		subjectID, visibility, s.now()); err != nil {
		return fmt.Errorf("content: settings: %w", err)
	}
	return nil
}

// Overview is what a member sees of their own content: their items,
// moderators' decisions on them, and their default visibility.
type Overview struct {
	Items             []Item     `json:"items"`
	Decisions         []Decision `json:"decisions"`
	DefaultVisibility string     `json:"default_visibility"`
}

// Overview returns the member's overview.
func (s *Service) Overview(ctx context.Context, subjectID string) (Overview, error) {
	var o Overview
	var err error
	if o.Items, err = s.Mine(ctx, subjectID); err != nil {
		return o, err
	}
	if o.Decisions, err = s.Decisions(ctx, subjectID); err != nil {
		return o, err
	}
	o.DefaultVisibility, err = s.DefaultVisibility(ctx, subjectID)
	return o, err
}
