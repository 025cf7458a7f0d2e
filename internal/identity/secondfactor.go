package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"steward/internal/audit"
	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// What a session still owes (Principal.SecondFactor).
const (
	SecondFactorVerify = "verify"
	SecondFactorEnrol  = "enrol"
)

// Kinds of second factor.
const (
	FactorTOTP    = "totp"
	FactorPasskey = "passkey"
)

// Throttle scope of second-factor attempts, counted per account.
const scopeSecondFactor = "second-factor:account"

// recoveryCodes is how many recovery codes an account gets.
const recoveryCodes = 10

// totpPeriod is the TOTP time step (RFC 6238's default, what every
// authenticator app uses).
const totpPeriod = 30

// Factor is a confirmed second factor, as its owner sees it.
type Factor struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// SecondFactorRequired reports whether an account must use a second
// factor: staff whose role's purposes reach any category of personal data
// under the policy (an admin holds every role). Members may opt in.
func (s *Service) SecondFactorRequired(a Account) bool {
	if a.Role == "" {
		return false
	}
	if a.Role == RoleAdmin {
		return true
	}
	r := s.policy.Policy.StaffRole(a.Role)
	if r == nil {
		return false
	}
	for _, id := range r.Purposes {
		if p := s.policy.Policy.Purpose(id); p != nil && len(p.Uses) > 0 {
			return true
		}
	}
	return false
}

// owedFactor is what a session of the account owes before it may reach
// personal data, when no second factor was given in it yet.
func (s *Service) owedFactor(ctx context.Context, q store.Q, a Account) (string, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM second_factors WHERE subject_id = $1 AND confirmed_at IS NOT NULL`,
		a.SubjectID).Scan(&n); err != nil {
		return "", fmt.Errorf("identity: read second factors: %w", err)
	}
	switch {
	case n > 0:
		return SecondFactorVerify, nil
	case s.SecondFactorRequired(a):
		return SecondFactorEnrol, nil
	}
	return "", nil
}

// SecondFactors lists the account's confirmed second factors.
func (s *Service) SecondFactors(ctx context.Context, subjectID string) ([]Factor, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, name, created_at, last_used_at FROM second_factors
WHERE subject_id = $1 AND confirmed_at IS NOT NULL ORDER BY created_at, id`, subjectID)
	if err != nil {
		return nil, fmt.Errorf("identity: list second factors: %w", err)
	}
	defer rows.Close()
	var out []Factor
	for rows.Next() {
		var f Factor
		var used sql.NullTime
		if err := rows.Scan(&f.ID, &f.Kind, &f.Name, &f.CreatedAt, &used); err != nil {
			return nil, err
		}
		f.CreatedAt, f.LastUsedAt = f.CreatedAt.UTC(), used.Time.UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}

// TOTPEnrolment is an authenticator being added: the secret to type in or
// the otpauth URL to scan. Shown once; until it is confirmed with a code,
// it is not a factor.
type TOTPEnrolment struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	URL    string `json:"otpauth_url"`
}

// BeginTOTP starts adding an authenticator app to the principal's account.
// An earlier enrolment not confirmed is dropped.
func (s *Service) BeginTOTP(ctx context.Context, p Principal) (TOTPEnrolment, error) {
	if err := s.addingAllowed(p); err != nil {
		return TOTPEnrolment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.policy.Policy.Controller.Name, AccountName: "account " + shortID(p.Account.SubjectID),
		Period: totpPeriod, SecretSize: 20, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("identity: make a TOTP secret: %w", err)
	}
	e := TOTPEnrolment{ID: "f_" + newSessionID(), Secret: key.Secret(), URL: key.URL()}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		v, err := s.door.Subject(ctx, tx, door.System(policy.Security), p.Account.SubjectID)
		if err != nil {
			return err
		}
		sealed, err := v.Seal(ctx, FieldPassword, e.Secret)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM second_factors WHERE subject_id = $1 AND confirmed_at IS NULL`, p.Account.SubjectID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO second_factors (id, subject_id, kind, name, secret_sealed, created_at) VALUES ($1, $2, 'totp', 'Authenticator app', $3, $4)`,
			e.ID, p.Account.SubjectID, sealed, s.clock.Now())
		return err
	})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("identity: begin TOTP: %w", err)
	}
	return e, nil
}

// addingAllowed refuses a new factor to a session that has not given the
// account's existing one (a stolen password must not be enough to add an
// authenticator of the thief's), and to one whose password was not given
// recently (a session left open on a shared computer must not be enough
// to lock its owner out behind someone else's authenticator).
func (s *Service) addingAllowed(p Principal) error {
	if p.SecondFactor == SecondFactorVerify {
		return fault.New(fault.SecondFactorNeeded, "give your existing second factor first")
	}
	if !p.Privileged(s.clock.Now()) {
		return fault.New(fault.ReauthNeeded, "confirm your password to add a second factor")
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	return id
}

// ConfirmTOTP confirms an enrolment with a code from the app: the factor
// counts from now, the session has given it, and — the first time — the
// account gets its recovery codes, returned once.
func (s *Service) ConfirmTOTP(ctx context.Context, p Principal, enrolmentID, code string, m Meta) ([]string, error) {
	if err := s.addingAllowed(p); err != nil {
		return nil, err
	}
	var codes []string
	err := s.secondFactorAttempt(ctx, p, m, func(tx *sql.Tx, now time.Time) (bool, error) {
		var secret door.Sealed
		err := tx.QueryRowContext(ctx, `SELECT secret_sealed FROM second_factors WHERE id = $1 AND subject_id = $2 AND kind = 'totp' AND confirmed_at IS NULL`,
			enrolmentID, p.Account.SubjectID).Scan(&secret)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fault.New(fault.NotFound, "no such enrolment: start again")
		}
		if err != nil {
			return false, err
		}
		ok, err := s.useTOTP(ctx, tx, enrolmentID, p.Account.SubjectID, secret, code, now, true)
		if !ok || err != nil {
			return false, err
		}
		codes, err = s.factorAdded(ctx, tx, p.Account.SubjectID, FactorTOTP, enrolmentID, now)
		return err == nil, err
	})
	return codes, err
}

// factorAdded finishes adding a factor in its transaction: recovery codes
// the first time (returned once), the owner told by mail, the audit.
func (s *Service) factorAdded(ctx context.Context, tx *sql.Tx, subjectID, kind, factorID string, now time.Time) ([]string, error) {
	var codes []string
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE subject_id = $1 AND used_at IS NULL`, subjectID).Scan(&have); err != nil {
		return nil, err
	}
	if have == 0 {
		var err error
		if codes, err = s.newRecoveryCodes(ctx, tx, subjectID, now); err != nil {
			return nil, err
		}
	}
	a, err := loadAccount(ctx, tx, subjectID)
	if err != nil {
		return nil, err
	}
	if _, to, err := s.personal(ctx, tx, door.System(policy.Security), a); err != nil {
		return nil, err
	} else if to != "" {
		if err := s.mailFactorAdded(ctx, tx, subjectID, to, kind); err != nil {
			return nil, err
		}
	}
	return codes, s.audit.Record(ctx, tx, audit.Event{Actor: subjectID, Action: "account.second_factor_added", Subject: subjectID,
		Detail: map[string]string{"kind": kind, "factor": factorID}})
}

// useTOTP checks a code against a factor's secret within one step of now
// and accepts it only for a step later than the last one accepted (a code
// is never accepted twice, even within its window). confirm sets the
// factor's confirmation.
func (s *Service) useTOTP(ctx context.Context, tx *sql.Tx, id, subjectID string, secret door.Sealed, code string, now time.Time, confirm bool) (bool, error) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return false, nil
	}
	v, err := s.door.Subject(ctx, tx, door.System(policy.Security), subjectID)
	if err != nil {
		return false, err
	}
	key, err := v.Open(ctx, FieldPassword, secret)
	if err != nil {
		return false, err
	}
	for _, skew := range []int64{0, -1, 1} {
		at := now.Add(time.Duration(skew*totpPeriod) * time.Second)
		ok, err := totp.ValidateCustom(code, key, at, totp.ValidateOpts{Period: totpPeriod, Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil || !ok {
			continue
		}
		step := at.Unix() / totpPeriod
		set := `last_step = $3, last_used_at = $4`
		if confirm {
			set += `, confirmed_at = $4`
		}
		res, err := tx.ExecContext(ctx, `UPDATE second_factors SET `+set+` WHERE id = $1 AND subject_id = $2 AND last_step < $3`, id, subjectID, step, now)
		if err != nil {
			return false, err
		}
		n, _ := res.RowsAffected()
		return n == 1, nil
	}
	return false, nil
}

// newRecoveryCodes replaces the account's recovery codes with new ones.
func (s *Service) newRecoveryCodes(ctx context.Context, tx *sql.Tx, subjectID string, now time.Time) ([]string, error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE subject_id = $1`, subjectID); err != nil {
		return nil, err
	}
	codes := make([]string, recoveryCodes)
	for i := range codes {
		var b [10]byte
		rand.Read(b[:])
		c := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
		codes[i] = c[:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
		if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (subject_id, code_hash, created_at) VALUES ($1, $2, $3)`,
			subjectID, recoveryHash(codes[i]), now); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

// recoveryHash is the stored form of a recovery code: 80 random bits need
// no slow hash.
func recoveryHash(code string) []byte {
	c := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
	h := sha256.Sum256([]byte("steward recovery code v1|" + c))
	return h[:]
}

// RegenerateRecoveryCodes gives the account new recovery codes (the old
// ones stop working). It needs a session that gave its second factor and
// a recent password.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p Principal) ([]string, error) {
	if p.SecondFactor != "" || p.Session.SecondFactorAt.IsZero() {
		return nil, fault.New(fault.Forbidden, "give your second factor first")
	}
	if !p.Privileged(s.clock.Now()) {
		return nil, fault.New(fault.ReauthNeeded, "confirm your password to continue")
	}
	var codes []string
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if codes, err = s.newRecoveryCodes(ctx, tx, p.Account.SubjectID, s.clock.Now()); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "account.recovery_codes_renewed", Subject: p.Account.SubjectID})
	})
	return codes, err
}

// VerifySecondFactor takes a code from an authenticator app, or a recovery
// code, for a session that owes its second factor. Attempts are throttled
// per account like passwords; a code already used is refused.
func (s *Service) VerifySecondFactor(ctx context.Context, p Principal, code string, m Meta) error {
	return s.secondFactorAttempt(ctx, p, m, func(tx *sql.Tx, now time.Time) (bool, error) {
		rows, err := tx.QueryContext(ctx, `SELECT id, secret_sealed FROM second_factors WHERE subject_id = $1 AND kind = 'totp' AND confirmed_at IS NOT NULL`,
			p.Account.SubjectID)
		if err != nil {
			return false, err
		}
		type factor struct {
			id     string
			secret door.Sealed
		}
		var fs []factor
		for rows.Next() {
			var f factor
			if err := rows.Scan(&f.id, &f.secret); err != nil {
				rows.Close()
				return false, err
			}
			fs = append(fs, f)
		}
		rows.Close()
		for _, f := range fs {
			ok, err := s.useTOTP(ctx, tx, f.id, p.Account.SubjectID, f.secret, code, now, false)
			if err != nil {
				return false, err
			}
			if ok {
				return true, s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "session.second_factor", Subject: p.Account.SubjectID,
					Detail: map[string]string{"kind": FactorTOTP, "session": p.Session.ID}})
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $3 WHERE subject_id = $1 AND code_hash = $2 AND used_at IS NULL`,
			p.Account.SubjectID, recoveryHash(code), now)
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return true, s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "session.second_factor", Subject: p.Account.SubjectID,
				Detail: map[string]string{"kind": "recovery-code", "session": p.Session.ID}})
		}
		return false, nil
	})
}

// secondFactorAttempt runs one throttled attempt: check decides, in a
// transaction, whether the factor was given. A success marks the session
// and clears the account's count; a failure counts against it, is audited,
// and changes nothing else.
func (s *Service) secondFactorAttempt(ctx context.Context, p Principal, m Meta, check func(tx *sql.Tx, now time.Time) (bool, error)) error {
	now := s.clock.Now()
	if !s.thr.allowMemory(m.IP, now) {
		return errThrottled()
	}
	// Every attempt is counted before its code is checked (and the count
	// cleared on success), so guesses sent in parallel cannot all slip in
	// under the limit.
	cs := s.thr.keys(scopeSecondFactor, scopeLoginIP, "subject:"+p.Account.SubjectID, m.IP)
	if err := s.thr.count(ctx, now, cs); err != nil {
		return err
	}
	ok := false
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if ok, err = check(tx, now); err != nil || !ok {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET second_factor_at = $2 WHERE id = $1`, p.Session.ID, now); err != nil {
			return err
		}
		return s.thr.reset(ctx, tx, cs[0])
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return err
		}
		return fmt.Errorf("identity: second factor: %w", err)
	}
	if ok {
		return nil
	}
	err = s.audit.Record(ctx, s.db, audit.Event{Actor: p.Account.SubjectID, Action: "session.second_factor_failed", Subject: p.Account.SubjectID,
		Detail: map[string]string{"session": p.Session.ID}})
	if err != nil {
		return fmt.Errorf("identity: second factor: %w", err)
	}
	return fault.New(fault.Unauthorized, "that code is not right, or was used already")
}

// RemoveSecondFactor removes one of the account's factors. It needs a
// session that gave its second factor and a recent password; a staff
// account that must use a second factor cannot remove its last one.
func (s *Service) RemoveSecondFactor(ctx context.Context, p Principal, id string) error {
	if p.SecondFactor != "" || p.Session.SecondFactorAt.IsZero() {
		return fault.New(fault.Forbidden, "give your second factor first")
	}
	if !p.Privileged(s.clock.Now()) {
		return fault.New(fault.ReauthNeeded, "confirm your password to continue")
	}
	fs, err := s.SecondFactors(ctx, p.Account.SubjectID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(fs, func(f Factor) bool { return f.ID == id }) {
		return fault.New(fault.NotFound, "no such second factor")
	}
	if len(fs) == 1 && s.SecondFactorRequired(p.Account) {
		return fault.New(fault.Conflict, "your role needs a second factor: add another before you remove this one")
	}
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM second_factors WHERE id = $1 AND subject_id = $2`, id, p.Account.SubjectID); err != nil {
			return err
		}
		if len(fs) == 1 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE subject_id = $1`, p.Account.SubjectID); err != nil {
				return err
			}
		}
		return s.audit.Record(ctx, tx, audit.Event{Actor: p.Account.SubjectID, Action: "account.second_factor_removed", Subject: p.Account.SubjectID,
			Detail: map[string]string{"factor": id}})
	})
}
