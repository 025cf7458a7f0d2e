package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/subject"
)

// Profile is the account's personal data as its owner sees it: every
// field the policy declares for accounts, opened through the door for the
// owner's own request, and which of them the owner may change directly
// (promise M8). The others are corrected through a reviewed rectification
// request.
type Profile struct {
	Account Account
	// Email is the account's address ("" while a new account waits for
	// its first verification).
	Email string
	// Fields holds the value of each declared field ("" when not given).
	Fields map[string]string
	// Order lists the declared fields in the policy's order.
	Order []string
	// Editable says which fields the owner may change directly.
	Editable map[string]bool
	// PendingEmail is a new address waiting for its confirmation link.
	PendingEmail string
	// Unreadable lists sealed fields whose key was destroyed (erased
	// data): they have no value any more.
	Unreadable []string
	// Picture is the URL of the picture a provider gave at sign-up ("" when
	// none).
	Picture string
}

// Profile returns the principal's profile, read for their own request
// (the built-in purpose subject-request, which the guard allows in every
// state).
func (s *Service) Profile(ctx context.Context, p Principal) (Profile, error) {
	a, err := loadAccount(ctx, s.db, p.Account.SubjectID)
	if err != nil {
		return Profile{}, err
	}
	sub, err := s.subjects.Get(ctx, s.db, p.Account.SubjectID)
	if err != nil {
		return Profile{}, fmt.Errorf("identity: profile: %w", err)
	}
	v, err := s.door.Subject(ctx, s.db, door.Subject(), sub.ID)
	if err != nil {
		return Profile{}, err
	}
	pr := Profile{Account: a.account(sub.HasEmail), Fields: map[string]string{}, Editable: map[string]bool{}}
	if pr.Email, err = sub.Email(ctx, v); errors.Is(err, door.ErrShredded) {
		pr.Unreadable = append(pr.Unreadable, FieldEmail)
	} else if err != nil {
		return Profile{}, fmt.Errorf("identity: profile: %w", err)
	}
	for _, field := range s.reg.profileFields() {
		pr.Order = append(pr.Order, field)
		pr.Editable[field] = s.reg.editable(field)
		if field == FieldEmail {
			pr.Fields[field] = pr.Email
			continue
		}
		val, err := v.Open(ctx, field, a.sealed(field))
		if errors.Is(err, door.ErrShredded) {
			pr.Unreadable = append(pr.Unreadable, field)
			pr.Fields[field] = ""
			continue
		}
		if err != nil {
			return Profile{}, fmt.Errorf("identity: open %s: %w", field, err)
		}
		pr.Fields[field] = val
	}
	if !a.picture.IsZero() {
		if pr.Picture, err = v.Open(ctx, FieldPicture, a.picture); errors.Is(err, door.ErrShredded) {
			pr.Unreadable = append(pr.Unreadable, FieldPicture)
		} else if err != nil {
			return Profile{}, fmt.Errorf("identity: open %s: %w", FieldPicture, err)
		}
	}
	if pr.PendingEmail, err = s.pendingEmail(ctx, v, purposeEmailChange, true); err != nil {
		return Profile{}, err
	}
	if pr.PendingEmail == "" && !sub.HasEmail {
		// A new account whose address is still held by an email-only
		// subject: the address it signed up with waits for verification.
		if pr.PendingEmail, err = s.pendingEmail(ctx, v, purposeVerify, false); err != nil {
			return Profile{}, err
		}
	}
	return pr, nil
}

// pendingEmail opens the address of the subject's newest mail token of a
// purpose (only an unspent, unexpired one when live), "" when none.
func (s *Service) pendingEmail(ctx context.Context, v *door.View, purpose string, live bool) (string, error) {
	query := `SELECT email_sealed FROM email_tokens WHERE subject_id = $1 AND purpose = $2`
	args := []any{v.ID(), purpose}
	if live {
		query += ` AND used_at IS NULL AND expires_at > $3`
		args = append(args, s.clock.Now())
	}
	var sealed door.Sealed
	err := s.db.QueryRowContext(ctx, query+` ORDER BY created_at DESC LIMIT 1`, args...).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("identity: profile: %w", err)
	}
	return v.Open(ctx, FieldEmail, sealed)
}

// UpdateProfile applies the owner's changes to their profile, all or
// nothing. Self-editable fields change at once; a field the policy does
// not let the owner edit is fault.Forbidden (correcting it is a reviewed
// rectification request), an unknown one fault.Invalid. A field sent with
// its current value is not a change, so a form may post every field. A new
// email address needs re-authentication (password, unless the session is
// privileged) and takes effect only when confirmed by the link mailed to
// it; the old address is told.
func (s *Service) UpdateProfile(ctx context.Context, p Principal, changes map[string]string, password string) (Profile, error) {
	cur, err := s.Profile(ctx, p)
	if err != nil {
		return Profile{}, err
	}
	names := make([]string, 0, len(changes))
	for k := range changes {
		names = append(names, k)
	}
	sort.Strings(names)
	vals := map[string]string{}
	newEmail := ""
	for _, field := range names {
		if field == FieldPassword {
			return Profile{}, fault.FieldError(field, "change the password with the password form")
		}
		if _, known := cur.Fields[field]; !known {
			if len(field) > 64 {
				field = field[:64]
			}
			return Profile{}, fault.FieldError(field, "the account has no field %q", field)
		}
		v := changes[field]
		if field == FieldEmail {
			if v, err = subject.NormalizeEmail(v); err != nil {
				return Profile{}, err
			}
		} else if v, err = cleanText(field, v, supported[field]); err != nil {
			return Profile{}, err
		}
		if v == cur.Fields[field] {
			continue
		}
		if !cur.Editable[field] {
			return Profile{}, &fault.Error{Code: fault.Forbidden, Field: field,
				Message: fmt.Sprintf("%s cannot be changed here; ask for a correction in the privacy centre", field)}
		}
		if v == "" && s.reg.required[field] {
			return Profile{}, fault.FieldError(field, "%s is required", field)
		}
		if field == FieldEmail {
			newEmail = v
			continue
		}
		vals[field] = v
	}
	if _, ok := vals[FieldDateOfBirth]; ok {
		if err := s.checkAge(map[string]string{FieldDateOfBirth: vals[FieldDateOfBirth]}, true, s.clock.Now()); err != nil {
			return Profile{}, err
		}
	}
	if newEmail != "" {
		if err := s.Reauthenticate(ctx, p, password); err != nil {
			return Profile{}, err
		}
	}
	if len(vals) == 0 && newEmail == "" {
		return cur, nil
	}
	now := s.clock.Now()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if len(vals) > 0 {
			v, err := s.door.Subject(ctx, tx, door.Subject(), p.Account.SubjectID)
			if err != nil {
				return err
			}
			stored, err := s.storedValues(ctx, v, vals)
			if err != nil {
				return err
			}
			sets := make([]string, 0, len(stored)+1)
			args := []any{p.Account.SubjectID, now}
			changed := make([]string, 0, len(stored))
			for _, field := range SupportedFields() {
				val, ok := stored[columnOf(field)]
				if !ok {
					continue
				}
				args = append(args, val)
				// Column names come from the fixed list of supported
				// fields, never from the request.
				sets = append(sets, fmt.Sprintf("%s = $%d", columnOf(field), len(args)))
				changed = append(changed, field)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE accounts SET `+strings.Join(sets, ", ")+`, updated_at = $2 WHERE subject_id = $1`, args...); err != nil {
				return fmt.Errorf("identity: update profile: %w", err)
			}
			if err := s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "account.profile_updated", Subject: p.Account.SubjectID,
				Detail: map[string]string{"fields": strings.Join(changed, ",")}}); err != nil {
				return err
			}
			if err := s.corrected(ctx, tx, p.Account.SubjectID, changed); err != nil {
				return err
			}
		}
		if newEmail != "" {
			return s.requestEmailChange(ctx, tx, p, cur.Email, newEmail, now)
		}
		return nil
	})
	if err != nil {
		return Profile{}, err
	}
	return s.Profile(ctx, p)
}

// requestEmailChange mails a confirmation link to the new address and a
// notice to the old one. An address that belongs to another account is
// treated like a free one here (the link then fails with a conflict), so
// the form does not reveal who is registered.
func (s *Service) requestEmailChange(ctx context.Context, tx *sql.Tx, p Principal, oldEmail, newEmail string, now time.Time) error {
	tok, err := s.issueToken(ctx, tx, door.Subject(), p.Account.SubjectID, purposeEmailChange, newEmail, s.cfg.EmailChangeTTL)
	if err != nil {
		return err
	}
	if err := s.mailEmailChange(ctx, tx, p.Account.SubjectID, newEmail, tok); err != nil {
		return err
	}
	if oldEmail != "" && p.Account.EmailVerified {
		if err := s.mailEmailChangeNotice(ctx, tx, p.Account.SubjectID, oldEmail, newEmail); err != nil {
			return err
		}
	}
	return s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "account.email_change_requested", Subject: p.Account.SubjectID})
}
