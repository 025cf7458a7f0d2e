package notice

import (
	"context"
	"errors"
	"fmt"

	"steward/internal/fault"
	"steward/internal/identity"
	"steward/internal/store"
	"steward/internal/subject"
)

// Accounts tells whether a member's address is verified (identity.Service
// satisfies it).
type Accounts interface {
	AccountOf(ctx context.Context, subjectID string) (identity.Account, error)
}

// SubjectDirectory lists live subjects with an address, in id order,
// through (*subject.Store).ListWithEmail, and tells verified addresses of
// members through Accounts.
type SubjectDirectory struct {
	Accounts Accounts
	// Subjects lists the subjects. New fills it in from Deps.Subjects when
	// it is left nil.
	Subjects *subject.Store
}

// Recipients returns up to limit live subjects with an email address after
// afterID.
func (d SubjectDirectory) Recipients(ctx context.Context, q store.Q, afterID string, limit int) ([]Recipient, error) {
	if d.Subjects == nil {
		return nil, errors.New("notice: directory: no subject store")
	}
	subs, err := d.Subjects.ListWithEmail(ctx, q, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("notice: directory: %w", err)
	}
	out := make([]Recipient, len(subs))
	for i, sub := range subs {
		out[i] = Recipient{SubjectID: sub.ID, Email: sub.Email, Member: sub.Kind == subject.KindMember}
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
