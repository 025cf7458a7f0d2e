package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"steward/internal/fault"
	"steward/internal/store"
)

// Staff roles. An account with no role is a member.
const (
	RoleAdmin   = "admin"   // everything
	RolePrivacy = "privacy" // rights requests, disclosures, audit
	RoleSupport = "support" // support records, unsubscribe on request
	RoleAnalyst = "analyst" // aggregate reports only
)

// Roles lists the staff roles.
func Roles() []string { return []string{RoleAdmin, RolePrivacy, RoleSupport, RoleAnalyst} }

func validRole(r string) bool {
	for _, x := range Roles() {
		if r == x {
			return true
		}
	}
	return false
}

// Account is what the rest of Steward needs to know about a signed-in
// person. Email comes from the subject; it is "" while a new account waits
// for its first verification.
type Account struct {
	SubjectID     string
	Name          string
	Email         string
	Role          string
	EmailVerified bool
	CreatedAt     time.Time
}

// Staff reports whether the account has a staff role.
func (a Account) Staff() bool { return a.Role != "" }

// LogValue keeps the name and address out of logs.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(slog.String("subject", a.SubjectID), slog.String("role", a.Role))
}

// HasRole reports whether the account holds one of roles. Admin holds
// every role; a member (no role) holds none.
func HasRole(a Account, roles ...string) bool {
	if a.Role == "" {
		return false
	}
	if a.Role == RoleAdmin {
		return true
	}
	for _, r := range roles {
		if r == a.Role {
			return true
		}
	}
	return false
}

// accountRow is the stored account, fields still sealed.
type accountRow struct {
	subjectID       string
	name            sql.NullString
	passwordHash    sql.NullString
	phone           []byte
	company         sql.NullString
	organisation    sql.NullString
	billingAddress  []byte
	location        sql.NullString
	dateOfBirth     []byte
	ageConfirmedAt  sql.NullTime
	role            string
	emailVerifiedAt sql.NullTime
	createdAt       time.Time
}

const accountColumns = `subject_id, name, password_hash, phone, company, organisation, billing_address, location, date_of_birth, age_confirmed_at, role, email_verified_at, created_at`

func scanAccount(row interface{ Scan(...any) error }) (accountRow, error) {
	var a accountRow
	err := row.Scan(&a.subjectID, &a.name, &a.passwordHash, &a.phone, &a.company, &a.organisation, &a.billingAddress,
		&a.location, &a.dateOfBirth, &a.ageConfirmedAt, &a.role, &a.emailVerifiedAt, &a.createdAt)
	a.createdAt = a.createdAt.UTC()
	return a, err
}

func errNoAccount() error { return fault.New(fault.NotFound, "no such account") }

// loadAccount reads one account row. fault.NotFound when there is none.
func loadAccount(ctx context.Context, q store.Q, subjectID string) (accountRow, error) {
	a, err := scanAccount(q.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM accounts WHERE subject_id = $1`, subjectID))
	if errors.Is(err, sql.ErrNoRows) {
		return accountRow{}, errNoAccount()
	}
	if err != nil {
		return accountRow{}, fmt.Errorf("identity: load account: %w", err)
	}
	return a, nil
}

// account returns the public view of a row and the subject's address.
func (a accountRow) account(email string) Account {
	return Account{
		SubjectID: a.subjectID, Name: a.name.String, Email: email, Role: a.role,
		EmailVerified: a.emailVerifiedAt.Valid && email != "", CreatedAt: a.createdAt,
	}
}

// sealedColumn returns the stored bytes of a sealed field.
func (a accountRow) sealed(field string) []byte {
	switch field {
	case FieldPhone:
		return a.phone
	case FieldBillingAddress:
		return a.billingAddress
	case FieldDateOfBirth:
		return a.dateOfBirth
	}
	return nil
}

// plain returns the stored value of a plain field.
func (a accountRow) plain(field string) string {
	switch field {
	case FieldName:
		return a.name.String
	case FieldCompany:
		return a.company.String
	case FieldOrganisation:
		return a.organisation.String
	case FieldLocation:
		return a.location.String
	}
	return ""
}

// AccountOf returns the account of a subject. fault.NotFound when the
// subject has none.
func (s *Service) AccountOf(ctx context.Context, subjectID string) (Account, error) {
	a, err := loadAccount(ctx, s.db, subjectID)
	if err != nil {
		return Account{}, err
	}
	sub, err := s.subjects.Get(ctx, s.db, subjectID)
	if err != nil {
		return Account{}, fmt.Errorf("identity: account subject: %w", err)
	}
	return a.account(sub.Email), nil
}

// storedValues turns cleaned field values into column arguments, sealing
// the sensitive ones under the subject's key for their category.
func (s *Service) storedValues(ctx context.Context, q store.Q, subjectID string, vals map[string]string) (map[string]any, error) {
	out := map[string]any{}
	for field, v := range vals {
		spec, ok := supported[field]
		if !ok || field == FieldEmail {
			continue
		}
		if v == "" {
			out[field] = nil
			continue
		}
		if !spec.sealed {
			out[field] = v
			continue
		}
		sealed, err := s.keys.Seal(ctx, q, subjectID, s.reg.categoryOf(field), []byte(v))
		if err != nil {
			return nil, fmt.Errorf("identity: seal %s: %w", field, err)
		}
		out[field] = sealed
	}
	return out, nil
}
