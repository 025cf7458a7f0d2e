package subject

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"steward/internal/store"
)

// PolicyAcceptance is a subject's explicit acceptance of a policy version
// that reduced their rights, with coarse evidence of how it was given.
type PolicyAcceptance struct {
	PolicyVersion   int
	PolicyHash      string
	Method          string // how it was given: form, api…
	UserAgentFamily string
	Network         string
	AcceptedAt      time.Time
}

// AcceptPolicy records that the subject accepted a policy version (and so
// every change before it): from now on their state's BoundVersion is at
// least that version. AcceptedAt is the store's clock. Accepting a version
// twice keeps the first record.
func (s *Store) AcceptPolicy(ctx context.Context, q store.Q, id string, a PolicyAcceptance) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO subject_policy_acceptances (subject_id, policy_version, policy_hash, method, ua_family, network, accepted_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subject_id, policy_version) DO NOTHING`,
		id, a.PolicyVersion, a.PolicyHash, a.Method, a.UserAgentFamily, a.Network, s.clock.Now()); err != nil {
		return fmt.Errorf("subject: accept policy: %w", err)
	}
	return nil
}

// PolicyAcceptances returns the subject's acceptances, oldest version
// first.
func (s *Store) PolicyAcceptances(ctx context.Context, q store.Q, id string) ([]PolicyAcceptance, error) {
	rows, err := q.QueryContext(ctx, `SELECT policy_version, policy_hash, method, ua_family, network, accepted_at FROM subject_policy_acceptances
		WHERE subject_id = $1 ORDER BY policy_version`, id)
	if err != nil {
		return nil, fmt.Errorf("subject: policy acceptances: %w", err)
	}
	defer rows.Close()
	out := []PolicyAcceptance{}
	for rows.Next() {
		var a PolicyAcceptance
		if err := rows.Scan(&a.PolicyVersion, &a.PolicyHash, &a.Method, &a.UserAgentFamily, &a.Network, &a.AcceptedAt); err != nil {
			return nil, fmt.Errorf("subject: policy acceptances: %w", err)
		}
		a.AcceptedAt = a.AcceptedAt.UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subject: policy acceptances: %w", err)
	}
	return out, nil
}

// mergeAcceptances moves from's acceptances to into; a version both
// accepted stays recorded once, as into accepted it.
func mergeAcceptances(ctx context.Context, tx *sql.Tx, from, into string) error {
	for _, stmt := range []string{
		`DELETE FROM subject_policy_acceptances WHERE subject_id = $1 AND policy_version IN (SELECT policy_version FROM subject_policy_acceptances WHERE subject_id = $2)`,
		`UPDATE subject_policy_acceptances SET subject_id = $2 WHERE subject_id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, stmt, from, into); err != nil {
			return fmt.Errorf("subject: merge policy acceptances: %w", err)
		}
	}
	return nil
}
