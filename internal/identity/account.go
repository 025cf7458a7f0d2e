package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
)

// Staff roles. An account with no role is a member.
const (
	RoleAdmin   = "admin"   // everything
	RolePrivacy = "privacy" // rights requests, disclosures, audit
	RoleSupport = "support" // support records, unsubscribe on request
	RoleAnalyst = "analyst" // aggregate reports only
	// RoleModerator reviews reported posts and comments.
	RoleModerator = "moderator"
	// RoleQuality reviews support exchanges and recorded calls for quality
	// and training, and sees nothing else of a member.
	RoleQuality = "quality"
	// RoleBilling takes payments: the only staff who read payment data.
	RoleBilling = "billing"
)

// Roles lists the staff roles.
func Roles() []string {
	return []string{RoleAdmin, RolePrivacy, RoleSupport, RoleAnalyst, RoleModerator, RoleQuality, RoleBilling}
}

func validRole(r string) bool {
	for _, x := range Roles() {
		if r == x {
			return true
		}
	}
	return false
}

// Account is what the rest of Steward needs to know about a signed-in
// person: who, in which role, whether their address is verified. Nothing
// personal: the name, the address and the rest are sealed, and read
// through the door (Profile, for the owner).
type Account struct {
	SubjectID     string
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

// accountRow is the stored account, its fields sealed.
type accountRow struct {
	subjectID       string
	name            door.Sealed
	password        door.Sealed
	phone           door.Sealed
	company         door.Sealed
	organisation    door.Sealed
	billingAddress  door.Sealed
	location        door.Sealed
	dateOfBirth     door.Sealed
	picture         door.Sealed
	ageConfirmedAt  sql.NullTime
	role            string
	emailVerifiedAt sql.NullTime
	createdAt       time.Time
}

const accountColumns = `subject_id, name_sealed, password_sealed, phone, company_sealed, organisation_sealed, billing_address, location_sealed, date_of_birth, picture_sealed, age_confirmed_at, role, email_verified_at, created_at`

func scanAccount(row interface{ Scan(...any) error }) (accountRow, error) {
	var a accountRow
	err := row.Scan(&a.subjectID, &a.name, &a.password, &a.phone, &a.company, &a.organisation, &a.billingAddress,
		&a.location, &a.dateOfBirth, &a.picture, &a.ageConfirmedAt, &a.role, &a.emailVerifiedAt, &a.createdAt)
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

// account returns the public view of a row; hasEmail says the subject
// holds an address.
func (a accountRow) account(hasEmail bool) Account {
	return Account{SubjectID: a.subjectID, Role: a.role, EmailVerified: a.emailVerifiedAt.Valid && hasEmail, CreatedAt: a.createdAt}
}

// sealed returns the stored value of a field.
func (a accountRow) sealed(field string) door.Sealed {
	switch field {
	case FieldName:
		return a.name
	case FieldPhone:
		return a.phone
	case FieldCompany:
		return a.company
	case FieldOrganisation:
		return a.organisation
	case FieldBillingAddress:
		return a.billingAddress
	case FieldLocation:
		return a.location
	case FieldDateOfBirth:
		return a.dateOfBirth
	}
	return door.Sealed{}
}

// columnOf names the accounts column holding a field. The names come from
// this fixed list, never from a request.
func columnOf(field string) string {
	switch field {
	case FieldPhone, FieldBillingAddress, FieldDateOfBirth:
		return field
	case FieldName, FieldCompany, FieldOrganisation, FieldLocation:
		return field + "_sealed"
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
	return a.account(sub.HasEmail), nil
}

// storedValues seals cleaned field values for the view's subject and use,
// keyed by their column.
func (s *Service) storedValues(ctx context.Context, v *door.View, vals map[string]string) (map[string]any, error) {
	out := map[string]any{}
	for field, val := range vals {
		col := columnOf(field)
		if col == "" {
			continue
		}
		sealed, err := v.Seal(ctx, field, val)
		if err != nil {
			return nil, fmt.Errorf("identity: seal %s: %w", field, err)
		}
		out[col] = sealed
	}
	return out, nil
}

// EmailVerified reports whether the subject's account has a verified
// address. fault.NotFound when the subject has no account.
func (s *Service) EmailVerified(ctx context.Context, subjectID string) (bool, error) {
	a, err := s.AccountOf(ctx, subjectID)
	return a.EmailVerified, err
}
