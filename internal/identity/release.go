package identity

import (
	"context"
	"errors"
	"fmt"

	"steward/internal/door"
)

// Released is what Release opens of an account for an application the
// member signs in to.
type Released struct {
	// Values holds each field asked for that has a value.
	Values map[string]string
	// EmailVerified says the address in Values was confirmed by its owner.
	EmailVerified bool
}

// Release opens the named fields of an account for u, the use of a
// recipient the policy declares (the door refuses a purpose the guard
// does not allow for this subject, or a field of a category the purpose
// does not use). A field without a value, or whose key was destroyed, is
// left out: nothing is invented.
func (s *Service) Release(ctx context.Context, u door.Use, subjectID string, fields []string) (Released, error) {
	a, err := loadAccount(ctx, s.db, subjectID)
	if err != nil {
		return Released{}, err
	}
	sub, err := s.subjects.Get(ctx, s.db, subjectID)
	if err != nil {
		return Released{}, fmt.Errorf("identity: release: %w", err)
	}
	v, err := s.door.Subject(ctx, s.db, u, sub.ID)
	if err != nil {
		return Released{}, err
	}
	out := Released{Values: map[string]string{}}
	for _, field := range fields {
		var val string
		switch field {
		case FieldEmail:
			if !sub.HasEmail {
				continue
			}
			if err := v.Allowed(ctx, FieldEmail); err != nil {
				return Released{}, err
			}
			val, err = sub.Email(ctx, v)
			out.EmailVerified = a.emailVerifiedAt.Valid
		case FieldPicture:
			if a.picture.IsZero() {
				continue
			}
			val, err = v.Open(ctx, field, a.picture)
		default:
			sealed := a.sealed(field)
			if sealed.IsZero() {
				continue
			}
			val, err = v.Open(ctx, field, sealed)
		}
		if errors.Is(err, door.ErrShredded) {
			continue
		}
		if err != nil {
			return Released{}, fmt.Errorf("identity: release %s: %w", field, err)
		}
		if val != "" {
			out.Values[field] = val
		}
	}
	return out, nil
}
