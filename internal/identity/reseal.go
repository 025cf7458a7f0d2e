package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"steward/internal/door"
)

// legacyField pairs a plaintext column of an earlier release with the
// sealed column that replaced it.
type legacyField struct {
	field, plain, sealed string
}

var (
	legacyAccount = []legacyField{
		{FieldName, "name", "name_sealed"},
		{FieldCompany, "company", "company_sealed"},
		{FieldOrganisation, "organisation", "organisation_sealed"},
		{FieldLocation, "location", "location_sealed"},
		{FieldPassword, "password_hash", "password_sealed"},
	}
	legacySession = []legacyField{
		{fieldSession, "user_agent_family", "user_agent_sealed"},
		{fieldSession, "network", "network_sealed"},
	}
)

// resealBatch is how many rows one transaction of Reseal moves.
const resealBatch = 200

// Reseal moves the values an earlier release kept in plaintext (account
// name, company, organisation, location and password hash; a session's
// browser family and network) into their sealed columns and empties the
// plaintext ones. A value whose key was destroyed, or of a field the policy no longer
// declares, is dropped. It runs at
// start-up, in batches, and is safe to interrupt and run again; it returns
// the rows it changed.
func (s *Service) Reseal(ctx context.Context) (int, error) {
	a, err := s.reseal(ctx, "accounts", "subject_id", "subject_id", legacyAccount, "NULL")
	if err != nil {
		return a, err
	}
	n, err := s.reseal(ctx, "sessions", "id", "subject_id", legacySession, "''")
	return a + n, err
}

// reseal re-seals the legacy columns of one table; empty is what a
// plaintext column holds once emptied (NULL, or ” where NOT NULL).
func (s *Service) reseal(ctx context.Context, table, key, subjectCol string, fields []legacyField, empty string) (int, error) {
	var plain, pending, cleared []string
	for _, f := range fields {
		plain = append(plain, f.plain)
		pending = append(pending, "("+f.plain+" IS NOT NULL AND "+f.plain+" <> '')")
		cleared = append(cleared, f.plain+" = "+empty)
	}
	query := `SELECT ` + key + `, ` + subjectCol + `, ` + strings.Join(plain, ", ") + ` FROM ` + table +
		` WHERE ` + strings.Join(pending, " OR ") + ` ORDER BY ` + key + ` LIMIT $1`
	total := 0
	for {
		n := 0
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, query, resealBatch)
			if err != nil {
				return err
			}
			type row struct {
				key, subject string
				vals         []sql.NullString
			}
			var batch []row
			for rows.Next() {
				r := row{vals: make([]sql.NullString, len(fields))}
				dest := []any{&r.key, &r.subject}
				for i := range r.vals {
					dest = append(dest, &r.vals[i])
				}
				if err := rows.Scan(dest...); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range batch {
				v, err := s.door.Subject(ctx, tx, door.Storage(), r.subject)
				if err != nil {
					return err
				}
				sets := append([]string{}, cleared...)
				args := []any{r.key}
				for i, f := range fields {
					if !r.vals[i].Valid || r.vals[i].String == "" {
						continue
					}
					if _, err := s.door.CategoryOf(f.field); err != nil {
						continue // the policy no longer declares the field: not kept
					}
					sealed, err := v.Seal(ctx, f.field, r.vals[i].String)
					if errors.Is(err, door.ErrShredded) {
						continue // erased: the plaintext left behind goes too
					}
					if err != nil {
						return err
					}
					args = append(args, sealed)
					sets = append(sets, fmt.Sprintf("%s = $%d", f.sealed, len(args)))
				}
				if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET `+strings.Join(sets, ", ")+` WHERE `+key+` = $1`, args...); err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("identity: reseal %s: %w", table, err)
		}
		total += n
		if n < resealBatch {
			return total, nil
		}
	}
}
