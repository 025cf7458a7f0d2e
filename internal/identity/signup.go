package identity

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
	"steward/internal/subject"
)

// SignUpInput is a sign-up form. Fields holds the registration fields by
// policy field name (name, email, phone, company, organisation,
// billing_address, location, date_of_birth); only those the policy
// declares are accepted.
type SignUpInput struct {
	Fields       map[string]string
	Password     string
	AgeConfirmed bool
}

// Sources of account rows.
const (
	SourceSelf     = "subject"  // the person signed up
	SourceOperator = "operator" // created with steward users create-staff
)

// subjectSourceSignup is the channel recorded on a subject created by a
// sign-up.
const subjectSourceSignup = "signup"

// cleanFields checks a sign-up form against the policy: every field must
// be declared (promise J1), required ones present, each value valid.
// It returns the cleaned values, email normalised.
func (s *Service) cleanFields(in map[string]string) (map[string]string, error) {
	// Look at the keys in a fixed order so the same bad form always gets
	// the same error.
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	out := map[string]string{}
	for _, field := range names {
		if !s.reg.declared(field) {
			if len(field) > 64 {
				field = field[:64]
			}
			return nil, fault.FieldError(field, "this site does not collect %q at sign-up", field)
		}
		v := in[field]
		var err error
		if field == FieldEmail {
			if v, err = subject.NormalizeEmail(v); err != nil {
				return nil, err
			}
		} else if v, err = cleanText(field, v, supported[field]); err != nil {
			return nil, err
		}
		out[field] = v
	}
	if out[FieldEmail] == "" {
		return nil, fault.FieldError(FieldEmail, "an email address is required")
	}
	for _, field := range s.reg.fields {
		if s.reg.required[field] && out[field] == "" {
			return nil, fault.FieldError(field, "%s is required", field)
		}
	}
	return out, nil
}

// checkAge enforces the policy's minimum age (promise J26): by the date of
// birth, computed on today's date from the clock, or by the applicant's
// confirmation, as the policy's age check says. A date of birth given
// under a confirmation policy is checked too.
func (s *Service) checkAge(vals map[string]string, confirmed bool, now time.Time) error {
	min := s.reg.minAge
	if dob := vals[FieldDateOfBirth]; dob != "" {
		d, err := time.Parse(dateLayout, dob)
		if err != nil {
			return fault.FieldError(FieldDateOfBirth, "the date of birth must be a date written YYYY-MM-DD")
		}
		if d.After(now) || d.Year() < 1900 {
			return fault.FieldError(FieldDateOfBirth, "the date of birth is not plausible")
		}
		if min > 0 && ageOn(d, now) < min {
			return &fault.Error{Code: fault.Forbidden, Field: FieldDateOfBirth, Message: fmt.Sprintf("you must be at least %d years old to sign up", min)}
		}
	}
	switch s.reg.ageCheck {
	case ageCheckDateOfBirth:
		if vals[FieldDateOfBirth] == "" {
			return fault.FieldError(FieldDateOfBirth, "the date of birth is required")
		}
	case ageCheckConfirmation:
		if !confirmed {
			return &fault.Error{Code: fault.Forbidden, Field: "age_confirmed", Message: fmt.Sprintf("you must confirm that you are at least %d years old", min)}
		}
	}
	return nil
}

// SignUp creates an account under the policy's registration rules and
// mails a verification link. It returns nil both for a new address and
// for one that already has an account, whose owner is mailed instead, so
// the answer never tells whether an address is registered; the password is
// hashed in both cases so the time taken does not tell either. The errors
// it returns concern only the form itself (fault.Invalid, TooLarge,
// Forbidden for the minimum age) or the rate limit.
func (s *Service) SignUp(ctx context.Context, in SignUpInput, m Meta) error {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return errThrottled()
	}
	pw, err := normalizePassword(FieldPassword, in.Password)
	if err != nil {
		return err
	}
	vals, err := s.cleanFields(in.Fields)
	if err != nil {
		return err
	}
	if err := s.checkAge(vals, in.AgeConfirmed, now); err != nil {
		return err
	}
	email := vals[FieldEmail]
	if err := checkNewPassword(FieldPassword, pw, personalInputs(vals[FieldName], email)); err != nil {
		return err
	}
	cs := s.thr.keys(scopeSignupAccount, scopeSignupIP, email, m.IP)
	if err := s.thr.count(ctx, now, cs); err != nil {
		return err
	}
	hash, err := hashPassword(pw, s.cfg.Argon2)
	if err != nil {
		return err
	}
	// Two sign-ups with one new address race on the subject's unique
	// address: the loser's transaction fails with a conflict and is run
	// again, when it finds the winner's account and mails its owner.
	for attempt := 0; ; attempt++ {
		err = s.db.InTx(ctx, func(tx *sql.Tx) error { return s.signUpTx(ctx, tx, vals, in.AgeConfirmed, hash, now) })
		if fault.CodeOf(err) != fault.Conflict || attempt == 1 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("identity: sign up: %w", err)
	}
	return nil
}

func (s *Service) signUpTx(ctx context.Context, tx *sql.Tx, vals map[string]string, ageConfirmed bool, hash string, now time.Time) error {
	email := vals[FieldEmail]
	existing, err := s.subjects.FindByEmail(ctx, tx, s.door, email)
	switch {
	case err == nil:
		a, err := loadAccount(ctx, tx, existing.ID)
		if err == nil {
			return s.signUpExisting(ctx, tx, existing.ID, email, a)
		}
		if fault.CodeOf(err) != fault.NotFound {
			return err
		}
		// A person known only by this address (a commenter, a
		// subscriber): the account gets a subject of its own, without the
		// address, and the two are merged when the address is verified.
		return s.createAccount(ctx, tx, vals, ageConfirmed, hash, now, false)
	case fault.CodeOf(err) == fault.NotFound:
		return s.createAccount(ctx, tx, vals, ageConfirmed, hash, now, true)
	default:
		return err
	}
}

// createAccount records a member subject and its account and mails the
// verification link. withEmail is false when an email-only subject holds
// the address: the new member gets it only at verification.
func (s *Service) createAccount(ctx context.Context, tx *sql.Tx, vals map[string]string, ageConfirmed bool, hash string, now time.Time, withEmail bool) error {
	email := vals[FieldEmail]
	subjEmail := ""
	if withEmail {
		subjEmail = email
	}
	sub, err := s.subjects.Create(ctx, tx, s.door, door.Subject(), subject.KindMember, subjEmail, subjectSourceSignup, s.policyVersion)
	if err != nil {
		return err
	}
	v, err := s.door.Subject(ctx, tx, door.Subject(), sub.ID)
	if err != nil {
		return err
	}
	stored, err := s.storedValues(ctx, v, vals)
	if err != nil {
		return err
	}
	password, err := v.Seal(ctx, FieldPassword, hash)
	if err != nil {
		return fmt.Errorf("identity: seal password: %w", err)
	}
	var ageAt any
	if ageConfirmed && s.reg.ageCheck == ageCheckConfirmation {
		ageAt = now
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO accounts (subject_id, name_sealed, password_sealed, phone, company_sealed, organisation_sealed, billing_address,
			location_sealed, date_of_birth, age_confirmed_at, role, email_verified_at, password_changed_at, source, policy_version, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', NULL, $11, $12, $13, $11, $11)`,
		sub.ID, stored[columnOf(FieldName)], password, stored[columnOf(FieldPhone)], stored[columnOf(FieldCompany)], stored[columnOf(FieldOrganisation)],
		stored[columnOf(FieldBillingAddress)], stored[columnOf(FieldLocation)], stored[columnOf(FieldDateOfBirth)], ageAt, now, SourceSelf, s.policyVersion)
	if err != nil {
		return fmt.Errorf("identity: insert account: %w", err)
	}
	tok, err := s.issueToken(ctx, tx, door.Subject(), sub.ID, purposeVerify, email, s.cfg.VerifyTTL)
	if err != nil {
		return err
	}
	if err := s.mailVerification(ctx, tx, sub.ID, email, tok); err != nil {
		return err
	}
	detail := map[string]string{"source": SourceSelf, "fields": joinKeys(vals)}
	if !withEmail {
		detail["merge"] = "on-verification"
	}
	return s.audit.Record(ctx, tx, audit.Event{Actor: sub.ID, Action: "account.signup", Subject: sub.ID, Detail: detail})
}

// signUpExisting answers a sign-up with an address that has an account:
// nothing about the account changes. A verified owner is told someone
// tried; an unverified account's owner gets a link that confirms the
// address by choosing a new password, so whoever started the account
// earlier (perhaps not the owner) loses it.
func (s *Service) signUpExisting(ctx context.Context, tx *sql.Tx, subjectID, email string, a accountRow) error {
	if err := s.audit.Record(ctx, tx, audit.Event{Actor: "anonymous", Action: "account.signup_existing", Subject: subjectID}); err != nil {
		return err
	}
	if a.emailVerifiedAt.Valid {
		return s.mailSignupExisting(ctx, tx, subjectID, email)
	}
	tok, err := s.issueToken(ctx, tx, door.System(policy.Security), subjectID, purposeReset, email, s.cfg.ResetTTL)
	if err != nil {
		return err
	}
	return s.mailFinishSignup(ctx, tx, subjectID, email, tok)
}

// VerifyEmail spends a verification or change-of-address token. For a
// new account it marks the address verified (merging in the email-only
// subject that held it, promise M1); for a change it makes the new
// address the account's. fault.Invalid for a bad, used or expired link,
// fault.Conflict when the address went to another account meanwhile.
func (s *Service) VerifyEmail(ctx context.Context, token string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := s.spendToken(ctx, tx, token, purposeVerify, purposeEmailChange)
		if err != nil {
			return err
		}
		sub, err := s.subjects.Get(ctx, tx, t.subjectID)
		if err != nil {
			return fmt.Errorf("identity: verify: %w", err)
		}
		if sub.MergedInto != "" || sub.Erased() {
			return errBadLink()
		}
		if t.purpose == purposeVerify && sub.HasEmail && !sub.EmailIndexIs(t.emailIndex) {
			// The address changed since the link was sent.
			return errBadLink()
		}
		if !sub.EmailIndexIs(t.emailIndex) {
			email, err := s.address(ctx, tx, door.Subject(), t)
			if err != nil {
				return err
			}
			if err := s.claimEmail(ctx, tx, sub.ID, email); err != nil {
				return err
			}
		}
		now := s.clock.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET email_verified_at = $2, updated_at = $2 WHERE subject_id = $1`, sub.ID, now); err != nil {
			return fmt.Errorf("identity: verify: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM email_tokens WHERE subject_id = $1 AND purpose = $2 AND used_at IS NULL`, sub.ID, t.purpose); err != nil {
			return fmt.Errorf("identity: verify: %w", err)
		}
		action := "account.email_verified"
		if t.purpose == purposeEmailChange {
			action = "account.email_changed"
			if err := s.corrected(ctx, tx, sub.ID, []string{FieldEmail}); err != nil {
				return err
			}
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: sub.ID, Action: action, Subject: sub.ID})
	})
}

// claimEmail gives a proven address to subjectID: free, it is simply set;
// held by an email-only subject, that subject is merged in (its comments,
// subscriptions and choices become the member's); held by another
// account, fault.Conflict.
func (s *Service) claimEmail(ctx context.Context, tx *sql.Tx, subjectID, email string) error {
	other, err := s.subjects.FindByEmail(ctx, tx, s.door, email)
	switch {
	case fault.CodeOf(err) == fault.NotFound:
		return s.subjects.SetEmail(ctx, tx, s.door, door.Subject(), subjectID, email)
	case err != nil:
		return err
	}
	if other.ID == subjectID {
		return nil
	}
	if _, err := loadAccount(ctx, tx, other.ID); err == nil {
		return &fault.Error{Code: fault.Conflict, Field: FieldEmail, Message: "this email address now belongs to another account"}
	} else if fault.CodeOf(err) != fault.NotFound {
		return err
	}
	if err := s.subjects.Merge(ctx, tx, other.ID, subjectID); err != nil {
		return err
	}
	if err := s.audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "subject.merged", Subject: subjectID, Detail: map[string]string{"from": other.ID}}); err != nil {
		return err
	}
	// Merge moves the address only to a subject without one; after a
	// change of address the member still holds the old one.
	return s.subjects.SetEmail(ctx, tx, s.door, door.Subject(), subjectID, email)
}

// ResendVerification mails a new verification link to an account that
// has not verified its address. It returns nil whatever the address, so
// it tells nothing; only the rate limit and a malformed address are
// errors.
func (s *Service) ResendVerification(ctx context.Context, email string, m Meta) error {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return errThrottled()
	}
	norm, err := subject.NormalizeEmail(email)
	if err != nil {
		return err
	}
	cs := s.thr.keys(scopeSignupAccount, scopeSignupIP, norm, m.IP)
	if err := s.thr.count(ctx, now, cs); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		subjectID, err := s.unverifiedAccount(ctx, tx, norm)
		if err != nil || subjectID == "" {
			return err
		}
		tok, err := s.issueToken(ctx, tx, door.System(policy.Security), subjectID, purposeVerify, norm, s.cfg.VerifyTTL)
		if err != nil {
			return err
		}
		return s.mailVerification(ctx, tx, subjectID, norm, tok)
	})
}

// unverifiedAccount returns the account waiting to verify email: the
// subject holding it, or a new member that signed up while an email-only
// subject held it (found by its pending verification). "" when none.
func (s *Service) unverifiedAccount(ctx context.Context, q store.Q, email string) (string, error) {
	sub, err := s.subjects.FindByEmail(ctx, q, s.door, email)
	switch {
	case err == nil && sub.Kind == subject.KindMember:
		a, err := loadAccount(ctx, q, sub.ID)
		if fault.CodeOf(err) == fault.NotFound || (err == nil && a.emailVerifiedAt.Valid) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return sub.ID, nil
	case err != nil && fault.CodeOf(err) != fault.NotFound:
		return "", err
	}
	index, err := subject.EmailIndex(s.door, email)
	if err != nil {
		return "", err
	}
	var id string
	err = q.QueryRowContext(ctx, `SELECT t.subject_id FROM email_tokens t JOIN accounts a ON a.subject_id = t.subject_id
		WHERE t.email_index = $1 AND t.purpose = 'verify' AND a.email_verified_at IS NULL ORDER BY t.created_at DESC LIMIT 1`, index).Scan(&id)
	if err == sql.ErrNoRows {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("identity: find unverified account: %w", err)
	}
	// Only a member still without an address is waiting for this one.
	pending, err := s.subjects.Get(ctx, q, id)
	if err != nil || pending.HasEmail || pending.MergedInto != "" {
		return "", err
	}
	return id, nil
}

func joinKeys(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ","
		}
		out += k
	}
	return out
}
