package identity

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"steward/internal/audit"
	"steward/internal/fault"
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
		sub, err := s.subjects.FindByEmail(ctx, tx, norm)
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
		tok, err := s.issueToken(ctx, tx, sub.ID, purposeReset, norm, s.cfg.ResetTTL)
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
	sub, err := s.subjects.Get(ctx, s.db, t.subjectID)
	if err != nil {
		return fmt.Errorf("identity: reset: %w", err)
	}
	if err := checkNewPassword(FieldPassword, pw, personalInputs(a.name.String, sub.Email)); err != nil {
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
		if sub.Email != t.email || sub.MergedInto != "" || sub.Erased() {
			// The address changed since the link was sent.
			return errBadLink()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $2, password_changed_at = $3, updated_at = $3,
				email_verified_at = COALESCE(email_verified_at, $3) WHERE subject_id = $1`, t.subjectID, hash, now); err != nil {
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
	if err := checkNewPassword("new_password", pw, personalInputs(p.Account.Name, p.Account.Email)); err != nil {
		return err
	}
	hash, err := hashPassword(pw, s.cfg.Argon2)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE subject_id = $1`,
			p.Account.SubjectID, hash, now); err != nil {
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
		return s.mailPasswordChanged(ctx, tx, p.Account.SubjectID, p.Account.Email)
	})
}
