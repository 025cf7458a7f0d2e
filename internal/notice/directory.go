package notice

import (
	"context"
	"fmt"

	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/store"
)

// Accounts tells whether a member's address is verified (identity.Service
// satisfies it).
type Accounts interface {
	AccountOf(ctx context.Context, subjectID string) (identity.Account, error)
}

// SubjectDirectory lists live subjects with an address, in id order.
//
// It reads the subjects table of package subject directly, because that
// package offers no listing yet; it should move behind a
// (*subject.Store).List(ctx, q, afterID, limit) when one exists. It only
// reads, and only the columns a listing needs.
type SubjectDirectory struct {
	Accounts Accounts
}

// Recipients returns up to limit live subjects with an email address after
// afterID.
func (d SubjectDirectory) Recipients(ctx context.Context, q store.Q, afterID string, limit int) ([]Recipient, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, kind, email FROM subjects
		WHERE id > $1 AND email IS NOT NULL AND merged_into IS NULL AND erased_at IS NULL ORDER BY id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("notice: directory: %w", err)
	}
	var out []Recipient
	for rows.Next() {
		var r Recipient
		var kind string
		if err := rows.Scan(&r.SubjectID, &kind, &r.Email); err != nil {
			rows.Close()
			return nil, fmt.Errorf("notice: directory: %w", err)
		}
		r.Member = kind == "member"
		out = append(out, r)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("notice: directory: %w", err)
	}
	for i := range out {
		if !out[i].Member {
			out[i].Verified = true // the person gave the address themselves
			continue
		}
		if d.Accounts == nil {
			continue
		}
		a, err := d.Accounts.AccountOf(ctx, out[i].SubjectID)
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("notice: directory: %w", err)
		}
		out[i].Verified = a.EmailVerified
	}
	return out, nil
}
