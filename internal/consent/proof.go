package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"steward/internal/store"
)

// GivenRecord returns the id of the record by which the subject's consent
// to the whole purpose is in force: the newest record of the purpose,
// when it gives consent. "" when none does (never asked, refused,
// withdrawn). It opens nothing: a disclosure on consent names the record
// as its basis.
func (l *Ledger) GivenRecord(ctx context.Context, q store.Q, subjectID, purpose string) (string, error) {
	var id, state string
	err := q.QueryRowContext(ctx, `SELECT id, state FROM consent_records WHERE subject_id = $1 AND purpose_index = $2 AND scope_index IS NULL
		ORDER BY created_at DESC, id DESC LIMIT 1`, subjectID, l.purposeIndex(purpose)).Scan(&id, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("consent: given record: %w", err)
	}
	if State(state) != Given {
		return "", nil
	}
	return id, nil
}

// GivenScopedRecord returns the id of the record by which the subject's
// consent to purpose with scope ("client:ID") is in force: the scope's
// newest record, when it gives consent and no purpose-wide withdrawal or
// refusal came after. "" when none is in force.
func (l *Ledger) GivenScopedRecord(ctx context.Context, q store.Q, subjectID, purpose, scope string) (string, error) {
	in, err := l.ScopeInForce(ctx, q, subjectID, purpose, scope)
	if err != nil || !in {
		return "", err
	}
	var id string
	err = q.QueryRowContext(ctx, `SELECT id FROM consent_records WHERE subject_id = $1 AND purpose_index = $2 AND scope_index = $3
		ORDER BY created_at DESC, id DESC LIMIT 1`, subjectID, l.purposeIndex(purpose), l.scopeIndex(scope)).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("consent: given record: %w", err)
	}
	return id, nil
}
