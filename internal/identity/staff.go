package identity

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/subject"
)

// CreateStaff gives the account with email a staff role (admin, privacy,
// support or analyst) and password, creating the account when there is
// none. The operator vouches for the address, so it is marked verified.
// Existing sessions of the account end: they were opened under the old
// role and lifetime.
func (s *Service) CreateStaff(ctx context.Context, email, role, password string) error {
	role = strings.TrimSpace(role)
	if !validRole(role) {
		return fault.FieldError("role", "role must be one of %s", strings.Join(Roles(), ", "))
	}
	norm, err := subject.NormalizeEmail(email)
	if err != nil {
		return err
	}
	pw, err := normalizePassword(FieldPassword, password)
	if err != nil {
		return err
	}
	if err := checkNewPassword(FieldPassword, pw, personalInputs("", norm)); err != nil {
		return err
	}
	hash, err := hashPassword(pw, s.cfg.Argon2)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		// The operator sets the account up for the person to work with:
		// the service they will provide.
		use := door.Use{Purpose: policy.Security, Actor: door.ActorCLI}
		sub, err := s.subjects.FindByEmail(ctx, tx, s.door, norm)
		switch {
		case fault.CodeOf(err) == fault.NotFound:
			if sub, err = s.subjects.Create(ctx, tx, s.door, use, subject.KindMember, norm, SourceOperator, s.policyVersion); err != nil {
				return err
			}
		case err != nil:
			return err
		case sub.Kind == subject.KindEmailOnly:
			// Someone known by this address (a subscriber) becomes staff:
			// they keep their id and their data.
			if err := s.subjects.SetKind(ctx, tx, sub.ID, subject.KindMember); err != nil {
				return err
			}
		}
		sealed, err := s.sealPassword(ctx, tx, use, sub.ID, hash)
		if err != nil {
			return err
		}
		_, err = loadAccount(ctx, tx, sub.ID)
		switch {
		case err == nil:
			if _, err := tx.ExecContext(ctx, `UPDATE accounts SET role = $2, password_sealed = $3, password_changed_at = $4, updated_at = $4,
					email_verified_at = COALESCE(email_verified_at, $4) WHERE subject_id = $1`, sub.ID, role, sealed, now); err != nil {
				return fmt.Errorf("identity: create staff: %w", err)
			}
			if _, err := s.revokeAll(ctx, tx, sub.ID, ""); err != nil {
				return err
			}
		case fault.CodeOf(err) == fault.NotFound:
			if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (subject_id, password_sealed, role, email_verified_at, password_changed_at, source, policy_version, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $4, $5, $6, $4, $4)`, sub.ID, sealed, role, now, SourceOperator, s.policyVersion); err != nil {
				return fmt.Errorf("identity: create staff: %w", err)
			}
		default:
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "staff.created", Subject: sub.ID, Detail: map[string]string{"role": role}})
	})
}
