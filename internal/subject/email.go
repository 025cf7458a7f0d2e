package subject

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"steward/internal/door"
	"steward/internal/store"
)

// emailIndexKind names the blind index of email addresses.
const emailIndexKind = "email"

// fieldEmail is the policy field an address is.
const fieldEmail = "email"

// sealEmail seals a normalised address for the subject and stores it.
func (s *Store) sealEmail(ctx context.Context, q store.Q, d *door.Door, use door.Use, id, norm string) (door.Sealed, error) {
	v, err := d.Subject(ctx, q, use, id)
	if err != nil {
		return door.Sealed{}, err
	}
	sealed, err := v.Seal(ctx, fieldEmail, norm)
	if err != nil {
		return door.Sealed{}, fmt.Errorf("subject: seal email: %w", err)
	}
	if _, err := q.ExecContext(ctx, `UPDATE subjects SET email_sealed = $2 WHERE id = $1`, id, sealed); err != nil {
		return door.Sealed{}, fmt.Errorf("subject: store email: %w", err)
	}
	return sealed, nil
}

// Email opens the subject's address through v, a view of this subject:
// "" when the subject has none.
func (sub Subject) Email(ctx context.Context, v *door.View) (string, error) {
	if !sub.HasEmail {
		return "", nil
	}
	return v.Open(ctx, fieldEmail, sub.email)
}

// Email reads and opens the address of v's subject ("" when none).
func (s *Store) Email(ctx context.Context, q store.Q, v *door.View) (string, error) {
	sub, err := s.Get(ctx, q, v.ID())
	if err != nil {
		return "", err
	}
	return sub.Email(ctx, v)
}

// EmailIndex returns the blind index of an address (normalised first),
// for packages that key their own rows by it.
func EmailIndex(d *door.Door, email string) ([]byte, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	return d.BlindIndex(emailIndexKind, norm), nil
}

// EmailIndexIs reports whether the subject's address is the one with this
// blind index (see EmailIndex), without opening it.
func (sub Subject) EmailIndexIs(index []byte) bool {
	return len(sub.emailIndex) > 0 && bytes.Equal(sub.emailIndex, index)
}

// resealBatch is how many rows one re-sealing transaction converts.
const resealBatch = 200

// Reseal converts the addresses stored in plaintext before they were
// sealed (the legacy email column): each is sealed for storage, indexed,
// and its plaintext emptied in the same statement, in batches of one
// transaction each, so an interrupted run leaves every row either done or
// untouched and the next run carries on; no address is ever stored twice
// in plaintext. Then it seals the evidence of policy acceptances the same
// way. It returns how many rows it converted.
func (s *Store) Reseal(ctx context.Context, d *door.Door) (int, error) {
	n, err := s.resealEmails(ctx, d)
	if err != nil {
		return n, err
	}
	a, err := s.resealAcceptances(ctx, d)
	return n + a, err
}

func (s *Store) resealEmails(ctx context.Context, d *door.Door) (int, error) {
	total := 0
	for {
		n := 0
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT id, email FROM subjects WHERE email IS NOT NULL ORDER BY id LIMIT $1`, resealBatch)
			if err != nil {
				return err
			}
			type legacy struct{ id, email string }
			var batch []legacy
			for rows.Next() {
				var l legacy
				if err := rows.Scan(&l.id, &l.email); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, l)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, l := range batch {
				norm, err := NormalizeEmail(l.email)
				if err != nil {
					norm = strings.ToLower(strings.TrimSpace(l.email)) // stored before today's rules: keep it findable
				}
				v, err := d.Subject(ctx, tx, door.Storage(), l.id)
				if err != nil {
					return err
				}
				sealed, err := v.Seal(ctx, fieldEmail, norm)
				if errors.Is(err, door.ErrShredded) {
					// The category was erased: the plaintext left behind
					// goes too.
					if _, err := tx.ExecContext(ctx, `UPDATE subjects SET email = NULL WHERE id = $1`, l.id); err != nil {
						return err
					}
					continue
				}
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE subjects SET email_sealed = $2, email_index = $3, email = NULL WHERE id = $1`,
					l.id, sealed, d.BlindIndex(emailIndexKind, norm)); err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("subject: reseal: %w", err)
		}
		total += n
		if n < resealBatch {
			return total, nil
		}
	}
}
