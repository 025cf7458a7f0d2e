package identity

import (
	"context"
	"database/sql"
	"slices"
)

// CorrectionHook runs in the transaction of every correction a member
// makes to their own account (a profile field, or a new address once
// confirmed), with the fields changed: package disclosure tells the
// recipients that received them (GDPR Art. 19).
type CorrectionHook func(ctx context.Context, tx *sql.Tx, subjectID string, fields []string) error

// OnCorrected registers h. Register at start-up, before the first request.
func (s *Service) OnCorrected(h CorrectionHook) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.correctionHooks = append(s.correctionHooks, h)
}

// corrected runs the hooks for the fields changed.
func (s *Service) corrected(ctx context.Context, tx *sql.Tx, subjectID string, fields []string) error {
	if len(fields) == 0 {
		return nil
	}
	s.hookMu.Lock()
	hooks := slices.Clone(s.correctionHooks)
	s.hookMu.Unlock()
	for _, h := range hooks {
		if err := h(ctx, tx, subjectID, fields); err != nil {
			return err
		}
	}
	return nil
}
