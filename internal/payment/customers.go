package payment

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"steward/internal/audit"
	"steward/internal/fault"
	"steward/internal/store"
	"steward/internal/subject"
)

// How a customer was matched to a subject.
const (
	linkedByMetadata = "metadata" // the operator's app named the subject in the customer's metadata
	linkedByEmail    = "email"    // the customer's address is the subject's
	linkedByOperator = "operator" // LinkCustomer
)

// errLinkedElse is a link refused because the customer is another
// subject's already.
var errLinkedElse = errors.New("payment: the customer is linked to another subject")

// validID reports whether id has the shape of a processor's id and holds
// nothing that looks like a card number.
func validID(id string) bool { return idRE.MatchString(id) && !looksLikePAN(id) }

// customerEvent links the customer of a customer event to the subject it
// names or whose address it has, and releases what was held for it. A
// customer no subject matches is acknowledged and nothing of it is kept:
// a customer event carries no field the policy declares.
func (s *Service) customerEvent(ctx context.Context, tx *sql.Tx, c customerObject, out *Outcome) (string, error) {
	if !validID(c.ID) {
		return "", fault.FieldError("data.object.id", "the customer id is not valid")
	}
	subjectID, by, err := s.match(ctx, tx, c)
	if err != nil {
		return "", err
	}
	if subjectID == "" {
		out.Reason = reasonUnknown
		return "", nil
	}
	created, released, err := s.link(ctx, tx, subjectID, c.ID, by)
	if errors.Is(err, errLinkedElse) {
		out.Reason = reasonLinkedElse
		return "", nil
	}
	if err != nil {
		return "", err
	}
	out.Released = released
	if created {
		out.Action = ActionLinked
	} else {
		out.Reason = reasonAlreadyLinked
	}
	return subjectID, nil
}

// match finds the subject a customer is: the one the operator's app named
// in the customer's metadata, else the one holding the customer's email
// address (found by its blind index). It returns "" when none does, or
// when that subject was erased.
func (s *Service) match(ctx context.Context, tx *sql.Tx, c customerObject) (string, string, error) {
	if id := c.Metadata.StewardSubject; id != "" && len(id) <= 64 {
		live, err := s.live(ctx, tx, id)
		if err != nil {
			return "", "", err
		}
		if live != "" {
			return live, linkedByMetadata, nil
		}
	}
	if c.Email == "" || len(c.Email) > 254 {
		return "", "", nil
	}
	sub, err := s.d.Subjects.FindByEmail(ctx, tx, s.d.Door, c.Email)
	if fault.Is(err, fault.NotFound) || fault.Is(err, fault.Invalid) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	live, err := s.live(ctx, tx, sub.ID)
	if err != nil || live == "" {
		return "", "", err
	}
	if sub.Kind == subject.KindMember {
		ok, err := s.d.Verified(ctx, live)
		if err != nil || !ok {
			return "", "", err // held until the address is verified or the app links the customer
		}
	}
	return live, linkedByEmail, nil
}

// live follows a subject id through merges to the subject that survived;
// "" for an unknown or erased one.
func (s *Service) live(ctx context.Context, q store.Q, id string) (string, error) {
	for range 8 {
		sub, err := s.d.Subjects.Get(ctx, q, id)
		if fault.Is(err, fault.NotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if sub.MergedInto != "" {
			id = sub.MergedInto
			continue
		}
		if sub.Erased() {
			return "", nil
		}
		return sub.ID, nil
	}
	return "", nil
}

// lockCustomer serialises, on PostgreSQL, the transactions that link a
// customer and those that hold its events: otherwise an event held while
// the customer's link commits could miss its release. SQLite transactions
// already hold the single write lock.
func (s *Service) lockCustomer(ctx context.Context, tx *sql.Tx, customerIndex []byte) error {
	if s.d.DB.Engine != store.Postgres {
		return nil
	}
	key := int64(binary.BigEndian.Uint64(customerIndex[:8]))
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return fmt.Errorf("payment: lock a customer: %w", err)
	}
	return nil
}

// linkedTo returns the subject a customer (by its blind index) is linked
// to, "" when none.
func (s *Service) linkedTo(ctx context.Context, q store.Q, customerIndex []byte) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT subject_id FROM payment_customers WHERE customer_index = $1`, customerIndex).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("payment: find a customer: %w", err)
	}
	return id, nil
}

// link records that the customer is the subject, unless it is already
// (created false) or is another subject (errLinkedElse: a link changes
// only when the subject's rights erase it), and releases to the subject
// what was held for the customer.
func (s *Service) link(ctx context.Context, tx *sql.Tx, subjectID, customerID, by string) (created bool, released int, err error) {
	customerIndex := s.index(indexCustomer, customerID)
	if err := s.lockCustomer(ctx, tx, customerIndex); err != nil {
		return false, 0, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO payment_customers (id, subject_id, customer_index, linked_by, created_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_index) DO NOTHING`, store.NewID("pc_"), subjectID, customerIndex, by, s.now())
	if err != nil {
		return false, 0, fmt.Errorf("payment: link a customer: %w", err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		current, err := s.linkedTo(ctx, tx, customerIndex)
		if err != nil {
			return false, 0, err
		}
		if live, err := s.live(ctx, tx, current); err != nil || live != subjectID {
			if err == nil {
				err = errLinkedElse
			}
			return false, 0, err
		}
	}
	released, err = s.release(ctx, tx, customerIndex, subjectID)
	return n > 0, released, err
}

// LinkCustomer records, for the operator's app, that the processor's
// customer is the subject, and releases to the subject the events held
// for that customer; it returns how many. fault.NotFound for an unknown
// or erased subject, fault.Conflict when the customer is another
// subject's.
func (s *Service) LinkCustomer(ctx context.Context, subjectID, customerID string) (int, error) {
	if !validID(customerID) {
		return 0, fault.FieldError("customer_id", "not a customer id of the payment processor")
	}
	if !s.collects() {
		return 0, fault.New(fault.Conflict, "the privacy policy declares no payment field: nothing is kept of customers")
	}
	var released int
	err := s.d.DB.InTx(ctx, func(tx *sql.Tx) error {
		live, err := s.live(ctx, tx, subjectID)
		if err != nil {
			return err
		}
		if live == "" {
			return fault.New(fault.NotFound, "no such subject")
		}
		var created bool
		created, released, err = s.link(ctx, tx, live, customerID, linkedByOperator)
		if errors.Is(err, errLinkedElse) {
			return fault.New(fault.Conflict, "the customer is linked to another subject")
		}
		if err != nil {
			return err
		}
		if !created && released == 0 {
			return nil
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Actor: "system", Action: "payment.customer_linked", Subject: live,
			Detail: map[string]string{"by": linkedByOperator, "released": strconv.Itoa(released)}})
	})
	if err != nil {
		if fault.CodeOf(err) != fault.Internal {
			return 0, err
		}
		return 0, fmt.Errorf("payment: link a customer: %w", err)
	}
	return released, nil
}
