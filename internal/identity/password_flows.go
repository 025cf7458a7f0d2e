package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// RequestPasswordReset mails a reset link to the account with the
// address. It returns nil for an unknown address too, and does the same
// work up to the lookup, so the answer tells nothing. Only a malformed
// address and the rate limit are errors. An unverified account's link also
// verifies the address (following it proves the mailbox).
func (s *Service) RequestPasswordReset(ctx context.Context, email string, m Meta) error {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return errThrottled()
	}
	norm, err := subject.NormalizeEmail(email)
	if err != nil {
		return err
	}
	cs := s.thr.keys(scopeResetAccount, scopeResetIP, norm, m.IP)
	if err := s.thr.count(ctx, now, cs); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		sub, err := s.subjects.FindByEmail(ctx, tx, s.door, norm)
		if fault.CodeOf(err) == fault.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		a, err := loadAccount(ctx, tx, sub.ID)
		if fault.CodeOf(err) == fault.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		tok, err := s.issueToken(ctx, tx, door.System(policy.Security), sub.ID, purposeReset, norm, s.cfg.ResetTTL)
		if err != nil {
			return err
		}
		if err := s.mailReset(ctx, tx, sub.ID, norm, tok, a.emailVerifiedAt.Valid); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: "anonymous", Action: "account.password_reset_requested", Subject: sub.ID})
	})
}

// ResetPassword sets a new password with a reset link, ends every session
// of the account and marks the address verified when the link went to the
// account's current address. The new password is checked before the link
// is spent, so a refused password leaves the link usable.
func (s *Service) ResetPassword(ctx context.Context, token, newPassword string, m Meta) error {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return errThrottled()
	}
	pw, err := normalizePassword(FieldPassword, newPassword)
	if err != nil {
		return err
	}
	t, err := s.peekToken(ctx, s.db, token, purposeReset)
	if err != nil {
		return err
	}
	a, err := loadAccount(ctx, s.db, t.subjectID)
	if err != nil {
		return errBadLink()
	}
	name, email, err := s.personal(ctx, s.db, door.System(policy.Security), a)
	if err != nil {
		return fmt.Errorf("identity: reset: %w", err)
	}
	if err := checkNewPassword(FieldPassword, pw, personalInputs(name, email)); err != nil {
		return err
	}
	hash, err := hashPassword(pw, s.cfg.Argon2)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := s.spendToken(ctx, tx, token, purposeReset)
		if err != nil {
			return err
		}
		sub, err := s.subjects.Get(ctx, tx, t.subjectID)
		if err != nil {
			return fmt.Errorf("identity: reset: %w", err)
		}
		if !sub.EmailIndexIs(t.emailIndex) || sub.MergedInto != "" || sub.Erased() {
			// The address changed since the link was sent.
			return errBadLink()
		}
		sealed, err := s.sealPassword(ctx, tx, door.System(policy.Security), t.subjectID, hash)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_sealed = $2, password_changed_at = $3, updated_at = $3,
				email_verified_at = COALESCE(email_verified_at, $3) WHERE subject_id = $1`, t.subjectID, sealed, now); err != nil {
			return fmt.Errorf("identity: reset: %w", err)
		}
		n, err := s.revokeAll(ctx, tx, t.subjectID, "")
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM email_tokens WHERE subject_id = $1 AND purpose = $2 AND used_at IS NULL`, t.subjectID, purposeReset); err != nil {
			return fmt.Errorf("identity: reset: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: t.subjectID, Action: "account.password_reset", Subject: t.subjectID,
			Detail: map[string]string{"sessions_revoked": strconv.FormatInt(n, 10)}})
	})
}

// ChangePassword sets a new password for the signed-in account. It needs
// re-authentication (the current password, unless the session logged in
// within ReauthWindow), ends every other session and tells the owner by
// mail.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next string) error {
	pw, err := normalizePassword("new_password", next)
	if err != nil {
		return err
	}
	if err := s.Reauthenticate(ctx, p, current); err != nil {
		return err
	}
	a, err := loadAccount(ctx, s.db, p.Account.SubjectID)
	if err != nil {
		return err
	}
	name, email, err := s.personal(ctx, s.db, door.Subject(), a)
	if err != nil {
		return err
	}
	if err := checkNewPassword("new_password", pw, personalInputs(name, email)); err != nil {
		return err
	}
	hash, err := hashPassword(pw, s.cfg.Argon2)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		sealed, err := s.sealPassword(ctx, tx, door.Subject(), p.Account.SubjectID, hash)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_sealed = $2, password_changed_at = $3, updated_at = $3 WHERE subject_id = $1`,
			p.Account.SubjectID, sealed, now); err != nil {
			return fmt.Errorf("identity: change password: %w", err)
		}
		n, err := s.revokeAll(ctx, tx, p.Account.SubjectID, p.Session.ID)
		if err != nil {
			return err
		}
		if err := s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "account.password_changed", Subject: p.Account.SubjectID,
			Detail: map[string]string{"sessions_revoked": strconv.FormatInt(n, 10)}}); err != nil {
			return err
		}
		// An unverified account is mailed nothing but verification.
		if !p.Account.EmailVerified {
			return nil
		}
		return s.mailPasswordChanged(ctx, tx, p.Account.SubjectID, email)
	})
}

// personal opens the name and address of an account's subject for use:
// the password screen compares a new password with them.
func (s *Service) personal(ctx context.Context, q store.Q, use door.Use, a accountRow) (name, email string, err error) {
	v, err := s.door.Subject(ctx, q, use, a.subjectID)
	if err != nil {
		return "", "", err
	}
	if name, err = v.Open(ctx, FieldName, a.name); err != nil && !errors.Is(err, door.ErrShredded) {
		return "", "", err
	}
	if email, err = s.subjects.Email(ctx, q, v); err != nil && !errors.Is(err, door.ErrShredded) {
		return "", "", err
	}
	return name, email, nil
}

// sealPassword seals a password's hash for the subject.
func (s *Service) sealPassword(ctx context.Context, q store.Q, use door.Use, subjectID, hash string) (door.Sealed, error) {
	v, err := s.door.Subject(ctx, q, use, subjectID)
	if err != nil {
		return door.Sealed{}, err
	}
	sealed, err := v.Seal(ctx, FieldPassword, hash)
	if err != nil {
		return door.Sealed{}, fmt.Errorf("identity: seal password: %w", err)
	}
	return sealed, nil
}

// passwordHash opens an account's password hash for use ("" when the
// account has none).
func (s *Service) passwordHash(ctx context.Context, q store.Q, use door.Use, a accountRow) (string, error) {
	if a.password.IsZero() {
		return "", nil
	}
	v, err := s.door.Subject(ctx, q, use, a.subjectID)
	if err != nil {
		return "", err
	}
	return v.Open(ctx, FieldPassword, a.password)
}
