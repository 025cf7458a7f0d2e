package subject

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/store"
)

// PolicyAcceptance is a subject's explicit acceptance of a policy version
// that reduced their rights, with coarse evidence of how it was given.
type PolicyAcceptance struct {
	PolicyVersion   int
	PolicyHash      string
	Method          string // how it was given: one of AcceptanceMethods
	UserAgentFamily string
	Network         string
	AcceptedAt      time.Time
}

// fieldConsent is the policy field an acceptance's evidence is: proof of
// consent, like the consent ledger's records.
const fieldConsent = "consent"

// AcceptanceMethods are the ways an acceptance can reach Steward: the
// consent ledger's methods (package consent), which the table checks.
func AcceptanceMethods() []string { return []string{"form", "api", "email_link", "gpc", "staff"} }

// AcceptPolicy records that the subject accepted a policy version (and so
// every change before it): from now on their state's BoundVersion is at
// least that version. AcceptedAt is the store's clock. Accepting a version
// twice keeps the first record. The evidence is sealed, for the subject's
// own request, through the door the store was given (SealWith).
func (s *Store) AcceptPolicy(ctx context.Context, q store.Q, id string, a PolicyAcceptance) error {
	if !slices.Contains(AcceptanceMethods(), a.Method) {
		return fault.FieldError("method", "unknown acceptance method")
	}
	if s.door == nil {
		return errors.New("subject: accept policy: the store was given no door to seal with")
	}
	v, err := s.door.Subject(ctx, q, door.Subject(), id)
	if err != nil {
		return err
	}
	ua, err := v.Seal(ctx, fieldConsent, a.UserAgentFamily)
	if err != nil {
		return fmt.Errorf("subject: accept policy: %w", err)
	}
	network, err := v.Seal(ctx, fieldConsent, a.Network)
	if err != nil {
		return fmt.Errorf("subject: accept policy: %w", err)
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO subject_policy_acceptances (subject_id, policy_version, policy_hash, method, ua_family_sealed, network_sealed, accepted_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subject_id, policy_version) DO NOTHING`,
		v.ID(), a.PolicyVersion, a.PolicyHash, a.Method, ua, network, s.clock.Now()); err != nil {
		return fmt.Errorf("subject: accept policy: %w", err)
	}
	return nil
}

// PolicyAcceptances returns the subject's acceptances, oldest version
// first, opened for the subject's own request (access and export). The
// evidence of an erased category reads as empty; a row an earlier release
// wrote and Reseal has not reached yet reads as it was written.
func (s *Store) PolicyAcceptances(ctx context.Context, q store.Q, id string) ([]PolicyAcceptance, error) {
	rows, err := q.QueryContext(ctx, `SELECT policy_version, policy_hash, method, ua_family, network, ua_family_sealed, network_sealed, accepted_at
		FROM subject_policy_acceptances WHERE subject_id = $1 ORDER BY policy_version`, id)
	if err != nil {
		return nil, fmt.Errorf("subject: policy acceptances: %w", err)
	}
	type row struct {
		a           PolicyAcceptance
		ua, network door.Sealed
	}
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.a.PolicyVersion, &r.a.PolicyHash, &r.a.Method, &r.a.UserAgentFamily, &r.a.Network,
			&r.ua, &r.network, &r.a.AcceptedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("subject: policy acceptances: %w", err)
		}
		r.a.AcceptedAt = r.a.AcceptedAt.UTC()
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subject: policy acceptances: %w", err)
	}
	out := []PolicyAcceptance{}
	var v *door.View
	open := func(into *string, sealed door.Sealed) error {
		if sealed.IsZero() {
			return nil
		}
		if v == nil {
			if s.door == nil {
				return errors.New("subject: policy acceptances: the store was given no door to open with")
			}
			if v, err = s.door.Subject(ctx, q, door.Subject(), id); err != nil {
				return err
			}
		}
		plain, err := v.Open(ctx, fieldConsent, sealed)
		if errors.Is(err, door.ErrShredded) {
			plain, err = "", nil
		}
		*into = plain
		return err
	}
	for _, r := range list {
		if err := open(&r.a.UserAgentFamily, r.ua); err != nil {
			return nil, fmt.Errorf("subject: policy acceptances: %w", err)
		}
		if err := open(&r.a.Network, r.network); err != nil {
			return nil, fmt.Errorf("subject: policy acceptances: %w", err)
		}
		out = append(out, r.a)
	}
	return out, nil
}

// mergeAcceptances moves from's acceptances to into; a version both
// accepted stays recorded once, as into accepted it. The sealed evidence
// moves as it is: it opens with from's key, which the door tries for a
// merged subject.
func mergeAcceptances(ctx context.Context, tx *sql.Tx, from, into string) error {
	for _, stmt := range []string{
		`DELETE FROM subject_policy_acceptances WHERE subject_id = $1 AND policy_version IN (SELECT policy_version FROM subject_policy_acceptances WHERE subject_id = $2)`,
		`UPDATE subject_policy_acceptances SET subject_id = $2 WHERE subject_id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, stmt, from, into); err != nil {
			return fmt.Errorf("subject: merge policy acceptances: %w", err)
		}
	}
	return nil
}

// resealAcceptances moves the evidence of acceptances an earlier release
// kept in plaintext into the sealed columns, emptying the plaintext, in
// batches of one transaction each (see Reseal). Evidence whose key was
// destroyed, or of a field the policy no longer declares, is dropped.
func (s *Store) resealAcceptances(ctx context.Context, d *door.Door) (int, error) {
	total := 0
	for {
		n := 0
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT subject_id, policy_version, ua_family, network FROM subject_policy_acceptances
				WHERE ua_family <> '' OR network <> '' ORDER BY subject_id, policy_version LIMIT $1`, resealBatch)
			if err != nil {
				return err
			}
			type legacy struct {
				id          string
				version     int
				ua, network string
			}
			var batch []legacy
			for rows.Next() {
				var l legacy
				if err := rows.Scan(&l.id, &l.version, &l.ua, &l.network); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, l)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			_, declared := d.CategoryOf(fieldConsent)
			for _, l := range batch {
				var ua, network door.Sealed
				if declared == nil {
					v, err := d.Subject(ctx, tx, door.Storage(), l.id)
					if err != nil {
						return err
					}
					if ua, err = v.Seal(ctx, fieldConsent, l.ua); err == nil {
						network, err = v.Seal(ctx, fieldConsent, l.network)
					}
					if errors.Is(err, door.ErrShredded) {
						ua, network, err = door.Sealed{}, door.Sealed{}, nil // erased: the plaintext left behind goes too
					}
					if err != nil {
						return err
					}
				}
				if _, err := tx.ExecContext(ctx, `UPDATE subject_policy_acceptances SET ua_family = '', network = '', ua_family_sealed = $3, network_sealed = $4
					WHERE subject_id = $1 AND policy_version = $2`, l.id, l.version, ua, network); err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("subject: reseal policy acceptances: %w", err)
		}
		total += n
		if n < resealBatch {
			return total, nil
		}
	}
}
