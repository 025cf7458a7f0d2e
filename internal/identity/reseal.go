package identity

import (
	"context"
	"fmt"

	"steward/internal/door"
)

var (
	legacyAccount = []door.LegacyColumn{
		{Field: FieldName, Plain: "name", Sealed: "name_sealed"},
		{Field: FieldCompany, Plain: "company", Sealed: "company_sealed"},
		{Field: FieldOrganisation, Plain: "organisation", Sealed: "organisation_sealed"},
		{Field: FieldLocation, Plain: "location", Sealed: "location_sealed"},
		{Field: FieldPassword, Plain: "password_hash", Sealed: "password_sealed"},
	}
	legacySession = []door.LegacyColumn{
		{Field: fieldSession, Plain: "user_agent_family", Sealed: "user_agent_sealed"},
		{Field: fieldSession, Plain: "network", Sealed: "network_sealed"},
	}
)

// Reseal moves the values an earlier release kept in plaintext (account
// name, company, organisation, location and password hash; a session's
// browser family and network) into their sealed columns and empties the
// plaintext ones (door.Reseal). It runs at start-up and is safe to
// interrupt and run again; it returns the rows it changed.
func (s *Service) Reseal(ctx context.Context) (int, error) {
	a, err := s.door.Reseal(ctx, s.db, door.ResealTable{Table: "accounts", Key: "subject_id", SubjectColumn: "subject_id",
		Columns: legacyAccount, Empty: "NULL"})
	if err != nil {
		return a, fmt.Errorf("identity: %w", err)
	}
	n, err := s.door.Reseal(ctx, s.db, door.ResealTable{Table: "sessions", Key: "id", SubjectColumn: "subject_id",
		Columns: legacySession, Empty: "''"})
	if err != nil {
		err = fmt.Errorf("identity: %w", err)
	}
	return a + n, err
}
