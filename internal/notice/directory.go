package notice

import (
	"context"
	"errors"
	"fmt"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
	"steward/internal/subject"
)

// Accounts tells whether a member's address is verified (identity.Service
// satisfies it).
type Accounts interface {
	EmailVerified(ctx context.Context, subjectID string) (bool, error)
}

// SubjectDirectory lists live subjects with an address, in id order,
// through (*subject.Store).ListWithEmail, opens their addresses through
// the door for the notices' purpose, and tells verified addresses of
// members through Accounts.
type SubjectDirectory struct {
	Accounts Accounts
	// Subjects, Door and Purpose are filled in by New from its Deps and
	// the policy when left unset.
	Subjects *subject.Store
	Door     *door.Door
	// Purpose is the purpose notices are mailed for: a legal obligation
	// to tell people of changes that concern them.
	Purpose string
}

// Recipients returns up to limit live subjects with an email address after
// afterID. Someone whose address the door refuses for the notices'
// purpose (a restriction of processing) is returned with Skip set.
func (d SubjectDirectory) Recipients(ctx context.Context, q store.Q, afterID string, limit int) ([]Recipient, error) {
	if d.Subjects == nil || d.Door == nil {
		return nil, errors.New("notice: directory: no subject store or door")
	}
	subs, err := d.Subjects.ListWithEmail(ctx, q, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("notice: directory: %w", err)
	}
	ids := make([]string, len(subs))
	for i, sub := range subs {
		ids[i] = sub.ID
	}
	people, err := d.Door.Subjects(ctx, q, door.System(d.Purpose), ids)
	if err != nil {
		return nil, fmt.Errorf("notice: directory: %w", err)
	}
	out := make([]Recipient, len(subs))
	for i, sub := range subs {
		out[i] = Recipient{SubjectID: sub.ID, Member: sub.Kind == subject.KindMember}
		v, err := people.View(sub.ID)
		if err != nil {
			return nil, fmt.Errorf("notice: directory: %w", err)
		}
		if err := v.Check(d.Door.Policy().CategoryOfField("email")); err != nil {
			den, _ := door.IsDenied(err)
			out[i].Skip = den.Reason.String()
			continue
		}
		if out[i].Email, err = sub.Email(ctx, v); err != nil {
			return nil, fmt.Errorf("notice: directory: %w", err)
		}
	}
	for i := range out {
		if !out[i].Member {
			out[i].Verified = true // the person gave the address themselves
			continue
		}
		if d.Accounts == nil {
			continue
		}
		ok, err := d.Accounts.EmailVerified(ctx, out[i].SubjectID)
		if fault.Is(err, fault.NotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("notice: directory: %w", err)
		}
		out[i].Verified = ok
	}
	return out, nil
}
