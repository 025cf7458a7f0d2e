package rights

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"steward/internal/door"
	"steward/internal/fault"
	"steward/internal/policy"
	"steward/internal/store"
)

// fieldRequest is the policy field of what a subject writes in a request
// (their reason, the corrections they ask for): the policy puts it in a
// category (support in the examples), whose key seals it.
const fieldRequest = "support_request"

// Staff is who reads requests on a staff screen: a staff member (their
// subject id) in the role they act in, or an operator at the command line
// (Operator). What a subject wrote opens for them only when the policy
// lets the role name subject-request; a refusal is audited.
type Staff struct {
	ID   string // the staff member's subject id; "" for the command line
	Role string
}

// Operator is an operator at the command line, who already holds the
// database and the master key.
func Operator() Staff { return Staff{} }

// actor names the reader in the audit log.
func (st Staff) actor() string {
	if st.ID == "" {
		return door.ActorCLI
	}
	return "staff:" + st.ID
}

// use is the door's use of a staff reading of requests.
func (st Staff) use() (door.Use, error) {
	switch {
	case st.ID == "":
		return door.Use{Purpose: policy.SubjectRequest, Actor: door.ActorCLI}, nil
	case st.Role == "":
		return door.Use{}, fault.New(fault.Forbidden, "a staff member reads requests in a staff role")
	}
	return door.Staff(st.ID, st.Role, policy.SubjectRequest), nil
}

// sealWords seals what the subject wrote in r for them. It is kept to
// answer their request, the subject-request purpose. A key destroyed by an
// earlier erasure of the category is made anew: a new request is new data
// the person gives now.
func (s *Service) sealWords(ctx context.Context, q store.Q, r *Request) error {
	if r.Reason == "" && len(r.Corrections) == 0 {
		r.reason, r.corrections = door.Sealed{}, door.Sealed{}
		return nil
	}
	for attempt := 0; ; attempt++ {
		v, err := s.door.Subject(ctx, q, door.Subject(), r.SubjectID)
		if err != nil {
			return err
		}
		err = s.sealWordsIn(ctx, v, r)
		if errors.Is(err, door.ErrShredded) && attempt == 0 {
			cat, cerr := s.door.CategoryOf(fieldRequest)
			if cerr != nil {
				return cerr
			}
			if err := s.door.Revive(ctx, q, v.ID(), cat); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

func (s *Service) sealWordsIn(ctx context.Context, v *door.View, r *Request) error {
	var err error
	if r.reason, err = v.Seal(ctx, fieldRequest, r.Reason); err != nil {
		return fmt.Errorf("rights: keep the reason: %w", err)
	}
	r.corrections = door.Sealed{}
	if len(r.Corrections) > 0 {
		b, _ := json.Marshal(r.Corrections)
		if r.corrections, err = v.Seal(ctx, fieldRequest, string(b)); err != nil {
			return fmt.Errorf("rights: keep the corrections: %w", err)
		}
	}
	return nil
}

// openWords opens what the subject wrote in r through v, a view of the
// subject. Words erased with their key read as nothing.
func openWords(ctx context.Context, v *door.View, r *Request) error {
	reason, err := v.Open(ctx, fieldRequest, r.reason)
	if errors.Is(err, door.ErrShredded) {
		return nil
	}
	if err != nil {
		return err
	}
	corrections, err := v.Open(ctx, fieldRequest, r.corrections)
	if errors.Is(err, door.ErrShredded) {
		return nil
	}
	if err != nil {
		return err
	}
	r.Reason = reason
	if corrections != "" {
		if err := json.Unmarshal([]byte(corrections), &r.Corrections); err != nil {
			return fmt.Errorf("rights: request %s corrections: %w", r.ID, err)
		}
	}
	return nil
}

// open opens what the subject wrote in r for use.
func (s *Service) open(ctx context.Context, q store.Q, use door.Use, r *Request) error {
	if r.reason.IsZero() && r.corrections.IsZero() {
		return nil
	}
	v, err := s.door.Subject(ctx, q, use, r.SubjectID)
	if err != nil {
		return err
	}
	return openWords(ctx, v, r)
}

// Reseal moves what subjects wrote in requests filed under an earlier
// release (the plaintext reason and corrections) into the sealed columns
// and empties the plaintext, in batches of one transaction each: an
// interrupted run leaves every row done or untouched and the next run
// carries on. Words whose key was destroyed, or when the policy no longer
// declares the field, are dropped. It runs at start-up and returns the
// rows it changed.
func (s *Service) Reseal(ctx context.Context) (int, error) {
	_, undeclared := s.door.CategoryOf(fieldRequest)
	total := 0
	for {
		n := 0
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT id, subject_id, reason, corrections FROM rights_requests
				WHERE reason <> '' OR (corrections <> '{}' AND corrections <> '') ORDER BY id LIMIT $1`, resealBatch)
			if err != nil {
				return err
			}
			var batch []Request
			for rows.Next() {
				var r Request
				var corrections string
				if err := rows.Scan(&r.ID, &r.SubjectID, &r.Reason, &corrections); err != nil {
					rows.Close()
					return err
				}
				if err := json.Unmarshal([]byte(corrections), &r.Corrections); err != nil {
					r.Corrections = nil // unreadable: nothing can be applied from it
				}
				batch = append(batch, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, r := range batch {
				if undeclared == nil {
					v, err := s.door.Subject(ctx, tx, door.Storage(), r.SubjectID)
					if err != nil {
						return err
					}
					err = s.sealWordsIn(ctx, v, &r)
					if errors.Is(err, door.ErrShredded) {
						r.reason, r.corrections, err = door.Sealed{}, door.Sealed{}, nil // erased: the plaintext left behind goes too
					}
					if err != nil {
						return err
					}
				}
				if _, err := tx.ExecContext(ctx, `UPDATE rights_requests SET reason = '', corrections = '{}', reason_sealed = $2, corrections_sealed = $3
					WHERE id = $1`, r.ID, r.reason, r.corrections); err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("rights: reseal requests: %w", err)
		}
		total += n
		if n < resealBatch {
			return total, nil
		}
	}
}

// resealBatch is how many rows one transaction of Reseal moves.
const resealBatch = 200
